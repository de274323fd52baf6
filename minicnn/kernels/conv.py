"""2-D convolution (cross-correlation, as PyTorch's conv2d): im2col + BLAS, or direct loops.

im2col + GEMM works per sample on the TRANSPOSE of ``im2col``'s matrix: ``cols[n] = im2col(x[n:n+1]).T``
of shape ``(K, P)`` (row ``(c, i, j)``, column ``(oh, ow)``), ``K = C*kh*kw``, ``P = OH*OW``. That
layout is built and scattered back with contiguous runs along ``ow`` (3x faster than the
row-per-window layout, whose rows are ``kw``-long runs), and its products need no transposes:

    forward          y[n] (F, P)     = W2 (F, K) @ cols[n] + b        (W2 = weight.reshape(F, K))
    weight gradient  dW (F, K)      += dy[n] (F, P) @ cols[n].T
    input gradient   dcols (K, P)    = W2.T @ dy[n]                   then dx[n] = col2im(dcols)

Each pass is ONE parallel region: the samples are split into one block per thread, and each thread
runs im2col, the GEMMs (Numba's ``np.dot``, i.e. single-threaded BLAS) and col2im for its samples.
Weight/bias gradients go to per-block buffers, summed afterwards (no race).

For one input channel and stride 1 (LeNet's first layer) direct loop kernels are faster (below). The
Conv2d layer runs the output and the weight gradient otherwise as tiled implicit GEMMs (below, with the
micro-kernel of ``minicnn.kernels.tile``): measured 1.4-2.6x (forward) and 1.0-1.8x (weight gradient)
faster than im2col + OpenBLAS on LeNet's conv2 and 3x3 layers of 3-64 channels.
"""
import numba
import numpy as np
from numba import prange

from .._config import JIT_OPTIONS, jit, jit_parallel, kernel_blas_single_threaded, thread_blocks
from .._validate import float_input, input_shape_arg, out_array, pair
from .im2col import _inside, _u, conv_geometry
from .tile import tile_4x16


# ------------------------------------------------------------------------------ im2col + GEMM
@jit
def _im2col_sample(x, n, kh, kw, sh, sw, ph, pw, dh, dw, cols):
    """Fill ``cols`` (C*kh*kw, OH*OW) with ``im2col(x[n:n+1]).T`` for ``x`` (N, C, H, W)."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    OH = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    OW = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if sh == 1 and sw == 1 and ph == 0 and pw == 0 and dh == 1 and dw == 1:
        # Common case (no padding, stride and dilation 1), without the general case's bounds logic:
        # measured 1.7x faster on LeNet's conv2.
        for c in range(C):
            for i in range(kh):
                for j in range(kw):
                    row = cols[(c * kh + i) * kw + j]
                    for oh in range(OH):
                        xrow = x[n, c, oh + i]
                        for ow in range(OW):
                            row[_u(oh * OW + ow)] = xrow[_u(ow + j)]
        return
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                row = cols[(c * kh + i) * kw + j]
                off = j * dw - pw  # output column ow reads input column ow*sw + off
                ow_lo, ow_hi = _inside(off, sw, OW, W)  # the others read padding
                for oh in range(OH):
                    h = oh * sh - ph + i * dh
                    base = oh * OW
                    if h < 0 or h >= H:
                        for ow in range(OW):
                            row[_u(base + ow)] = 0
                        continue
                    xrow = x[n, c, h]
                    for ow in range(ow_lo):
                        row[_u(base + ow)] = 0
                    if sw == 1:  # contiguous copy (vectorised)
                        for ow in range(ow_lo, ow_hi):
                            row[_u(base + ow)] = xrow[_u(ow + off)]
                    else:
                        for ow in range(ow_lo, ow_hi):
                            row[_u(base + ow)] = xrow[_u(ow * sw + off)]
                    for ow in range(ow_hi, OW):
                        row[_u(base + ow)] = 0


@jit
def _col2im_sample(cols, n, kh, kw, sh, sw, ph, pw, dh, dw, x):
    """Set ``x[n]`` (C, H, W) to ``col2im(cols.T)`` for ``cols`` (C*kh*kw, OH*OW): every entry added to
    the pixel it was read from; pixels no window covers get 0."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    OH = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    OW = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    x[n] = 0
    if sh == 1 and sw == 1 and ph == 0 and pw == 0 and dh == 1 and dw == 1:  # as in _im2col_sample
        for c in range(C):
            for i in range(kh):
                for j in range(kw):
                    row = cols[(c * kh + i) * kw + j]
                    for oh in range(OH):
                        xrow = x[n, c, oh + i]
                        for ow in range(OW):
                            xrow[_u(ow + j)] += row[_u(oh * OW + ow)]
        return
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                row = cols[(c * kh + i) * kw + j]
                off = j * dw - pw
                ow_lo, ow_hi = _inside(off, sw, OW, W)
                for oh in range(OH):
                    h = oh * sh - ph + i * dh
                    if h < 0 or h >= H:
                        continue
                    xrow = x[n, c, h]
                    base = oh * OW
                    if sw == 1:
                        for ow in range(ow_lo, ow_hi):
                            xrow[_u(ow + off)] += row[_u(base + ow)]
                    else:
                        for ow in range(ow_lo, ow_hi):
                            xrow[_u(ow * sw + off)] += row[_u(base + ow)]


@jit_parallel
def _im2col_t(x, kh, kw, sh, sw, ph, pw, dh, dw, cols):
    """``cols[n]`` (C*kh*kw, OH*OW) = ``im2col(x[n:n+1]).T`` for every sample n."""
    for n in prange(x.shape[0]):
        _im2col_sample(x, n, kh, kw, sh, sw, ph, pw, dh, dw, cols[n])


@jit_parallel
def _col2im_t(cols, kh, kw, sh, sw, ph, pw, dh, dw, x):
    """``x[n]`` = ``col2im(cols[n].T)`` for every sample n (the adjoint of :func:`_im2col_t`)."""
    for n in prange(x.shape[0]):
        _col2im_sample(cols[n], n, kh, kw, sh, sw, ph, pw, dh, dw, x)


# The samples are split into ``n_blocks`` contiguous ranges, one per thread, and each thread runs
# its samples' im2col, GEMMs (Numba's np.dot: single-threaded BLAS, see minicnn._config.kernel_blas_single_threaded)
# and col2im. One parallel region per pass and no second thread pool: on two cores, BLAS threads
# spinning next to Numba's made every pass 2-5x slower than the sum of its parts (measured).
@jit_parallel
def _forward_blocks(x, w2, bias, kh, kw, sh, sw, ph, pw, dh, dw, n_blocks, cols, y):
    """``y[n]`` (F, P) = ``w2`` (F, K) @ ``cols[n]`` + ``bias``, where ``cols[n]`` (K, P) is filled with
    im2col(sample n)."""
    N = x.shape[0]
    F, P = y.shape[1], y.shape[2]
    # Small outputs (LeNet's conv2: F*P = 1600) as y[n].T = cols[n].T @ w2.T (P, F), then transposed
    # into y[n] in cache: measured 10-20% faster than w2 @ cols[n], whose 16-row result BLAS handles
    # poorly. Large outputs (e.g. 64 channels of 32x32) directly: there the transposing copy costs more.
    transposed = F * P <= 4096
    for b in prange(n_blocks):
        tmp = np.empty((P, F) if transposed else (1, 1), dtype=y.dtype)
        for n in range(b * N // n_blocks, (b + 1) * N // n_blocks):
            cn = cols[n]
            _im2col_sample(x, n, kh, kw, sh, sw, ph, pw, dh, dw, cn)
            yn = y[n]
            if transposed:
                np.dot(cn.T, w2.T, tmp)
                for f in range(F):
                    yrow = yn[f]
                    bf = bias[f]
                    for p in range(P):
                        yrow[_u(p)] = tmp[p, f] + bf
            else:
                np.dot(w2, cn, yn)
                for f in range(F):
                    yrow = yn[f]
                    bf = bias[f]
                    for p in range(P):
                        yrow[_u(p)] += bf


@jit_parallel
def _backward_blocks(dy, w2, cols, kh, kw, sh, sw, ph, pw, dh, dw, n_blocks, weight_parts, bias_parts,
                     dcols, dx, want_params, want_input):
    """For ``dy`` (N, F, P): if ``want_params``, ``weight_parts[b]`` (K, F) and ``bias_parts[b]`` (F,) =
    the TRANSPOSED weight gradient and the bias gradient summed over block b's samples (from ``cols``
    (N, K, P)); if ``want_input``, ``dx`` (N, C, H, W) = the input gradient (``dcols[b]`` (K, P) is
    block b's scratch)."""
    N, F, P = dy.shape
    K = w2.shape[1]
    for b in prange(n_blocks):
        tmp = np.empty((K, F), dtype=w2.dtype)
        part = weight_parts[b]
        bpart = bias_parts[b]
        if want_params:
            part[:] = 0
            bpart[:] = 0
        for n in range(b * N // n_blocks, (b + 1) * N // n_blocks):
            dyn = dy[n]
            if want_params:
                # cols[n] @ dy[n].T (K, F): measured 5-40% faster in BLAS than dy[n] @ cols[n].T (F, K)
                # (LeNet's conv2 and 32-64-channel 3x3 layers).
                np.dot(cols[n], dyn.T, tmp)
                for k in range(K):
                    prow = part[k]
                    trow = tmp[k]
                    for f in range(F):
                        prow[_u(f)] += trow[_u(f)]
                for f in range(F):
                    grow = dyn[f]
                    s = 0.0
                    for p in range(P):
                        s += grow[_u(p)]
                    bpart[f] += s
            if want_input:
                dc = dcols[b]
                np.dot(w2.T, dyn, dc)
                _col2im_sample(dc, n, kh, kw, sh, sw, ph, pw, dh, dw, dx)


# ------------------------------------------------------------------------------ direct kernels
# Direct (loop) kernels, without im2col or BLAS. They win when a window holds few values (one input
# channel, e.g. LeNet's first layer), where im2col's copies and the GEMMs' memory traffic cost more
# than the arithmetic (measured on LeNet conv1: forward+backward 3.4 ms against 4.3 ms, one thread).
# Stride-1 direct kernels on a zero-padded copy of the input. Laid on the padded width Wp, an output
# plane is one flat run q = oh*Wp + ow (columns ow >= OW are junk, never copied out) and kernel offset
# (i, j) reads the padded input at q + i*dh*Wp + j*dw, so every inner loop is one long contiguous
# vectorised run instead of OH short rows. ``reassoc`` lets the dot products vectorise.
_jit_parallel_reassoc = numba.njit(parallel=True, fastmath={"reassoc", "contract"}, **JIT_OPTIONS)


@jit_parallel
def _pad_input(x, ph, pw, xpad):
    """``xpad`` (N, C, H + 2*ph, W + 2*pw) = ``x`` (N, C, H, W) with a zero border."""
    N, C, H, W = x.shape
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        xpad[n, c] = 0
        for h in range(H):
            src = x[n, c, h]
            dst = xpad[n, c, h + ph]
            for w in range(W):
                dst[_u(w + pw)] = src[_u(w)]


@jit
def _tap_offsets(C, kh, kw, Hp, Wp, dh, dw):
    """Tap ``t = (c, i, j)`` of a kernel reads a flat padded sample (C*Hp*Wp,) at ``q + offset[t]``."""
    offset = np.empty(C * kh * kw, np.int64)
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                offset[(c * kh + i) * kw + j] = (c * Hp + i * dh) * Wp + j * dw
    return offset


@_jit_parallel_reassoc
def _direct_forward_s1(xpad, weight, bias, dh, dw, y):
    """``y`` (N, F, OH, OW) = stride-1 conv of the padded input ``xpad`` (N, C, Hp, Wp) + bias."""
    N, C, Hp, Wp = xpad.shape
    F, _, kh, kw = weight.shape
    OH, OW = y.shape[2], y.shape[3]
    L = (OH - 1) * Wp + OW
    T = C * kh * kw
    offset = _tap_offsets(C, kh, kw, Hp, Wp, dh, dw)
    for t in prange(N * F):
        n = t // F
        f = t - n * F
        src = xpad[n].reshape(C * Hp * Wp)
        wf = weight[f].reshape(T)
        acc = np.empty(L, dtype=y.dtype)
        acc[:] = bias[f]
        # Eight taps per pass over the plane: one load and store of acc per eight multiply-adds
        # instead of one per tap (measured 1.5x faster on LeNet's conv1).
        g = 0
        while g + 8 <= T:
            w0, w1, w2, w3 = wf[g], wf[g + 1], wf[g + 2], wf[g + 3]
            w4, w5, w6, w7 = wf[g + 4], wf[g + 5], wf[g + 6], wf[g + 7]
            s0, s1, s2, s3 = src[offset[g]:], src[offset[g + 1]:], src[offset[g + 2]:], src[offset[g + 3]:]
            s4, s5, s6, s7 = src[offset[g + 4]:], src[offset[g + 5]:], src[offset[g + 6]:], src[offset[g + 7]:]
            for q in range(L):
                acc[_u(q)] += (w0 * s0[_u(q)] + w1 * s1[_u(q)] + w2 * s2[_u(q)] + w3 * s3[_u(q)]
                               + w4 * s4[_u(q)] + w5 * s5[_u(q)] + w6 * s6[_u(q)] + w7 * s7[_u(q)])
            g += 8
        for g in range(g, T):
            wv = wf[g]
            s0 = src[offset[g]:]
            for q in range(L):
                acc[_u(q)] += wv * s0[_u(q)]
        for oh in range(OH):
            dst = y[n, f, oh]
            for ow in range(OW):
                dst[_u(ow)] = acc[_u(oh * Wp + ow)]


@jit_parallel
def _spread_grad(dy, Wp, dy_wide):
    """``dy_wide`` (N, F, (OH-1)*Wp + OW): ``dy`` (N, F, OH, OW) laid on rows of width Wp, zero gaps."""
    N, F, OH, OW = dy.shape
    for t in prange(N * F):
        n = t // F
        f = t - n * F
        dst = dy_wide[n, f]
        dst[:] = 0
        for oh in range(OH):
            src = dy[n, f, oh]
            for ow in range(OW):
                dst[_u(oh * Wp + ow)] = src[_u(ow)]


@_jit_parallel_reassoc
def _direct_backward_params_s1(xpad, dy_wide, dh, dw, weight_grad, bias_grad):
    """Add the stride-1 weight gradient into ``weight_grad`` (F, C, kh, kw), and the bias gradient
    into ``bias_grad`` if it has F entries; one output channel per thread: no race."""
    N, C, Hp, Wp = xpad.shape
    F, _, kh, kw = weight_grad.shape
    L = dy_wide.shape[2]
    T = C * kh * kw
    offset = _tap_offsets(C, kh, kw, Hp, Wp, dh, dw)
    for f in prange(F):
        acc = np.zeros(T, dtype=np.float64)
        zero = np.zeros(1, dtype=xpad.dtype)[0]  # each dot product sums in the input's precision
        sb = 0.0
        for n in range(N):
            g = dy_wide[n, f]
            src = xpad[n].reshape(C * Hp * Wp)
            for q in range(L):
                sb += g[_u(q)]
            # Four taps' dot products per pass: each load of g serves four multiply-adds
            # (measured 1.5x faster on LeNet's conv1 than one tap per pass).
            t = 0
            while t + 4 <= T:
                s0, s1, s2, s3 = src[offset[t]:], src[offset[t + 1]:], src[offset[t + 2]:], src[offset[t + 3]:]
                a0 = a1 = a2 = a3 = zero
                for q in range(L):
                    gq = g[_u(q)]
                    a0 += gq * s0[_u(q)]
                    a1 += gq * s1[_u(q)]
                    a2 += gq * s2[_u(q)]
                    a3 += gq * s3[_u(q)]
                acc[t] += a0
                acc[t + 1] += a1
                acc[t + 2] += a2
                acc[t + 3] += a3
                t += 4
            for t in range(t, T):
                s0 = src[offset[t]:]
                a0 = zero
                for q in range(L):
                    a0 += g[_u(q)] * s0[_u(q)]
                acc[t] += a0
        wg = weight_grad[f].reshape(T)
        for t in range(T):
            wg[t] += acc[t]
        if bias_grad.shape[0] == F:
            bias_grad[f] += sb


@jit_parallel
def _direct_backward_input_s1(dy_wide, weight, ph, pw, dh, dw, dx):
    """Set ``dx`` (N, C, H, W) to the stride-1 input gradient; one (n, c) plane per iteration."""
    N, C, H, W = dx.shape
    F, _, kh, kw = weight.shape
    L = dy_wide.shape[2]
    Hp, Wp = H + 2 * ph, W + 2 * pw
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        acc = np.zeros(Hp * Wp, dtype=dx.dtype)  # gradient of the padded plane
        for f in range(F):
            g = dy_wide[n, f]
            for i in range(kh):
                for j in range(kw):
                    wv = weight[f, c, i, j]
                    off = i * dh * Wp + j * dw
                    for q in range(L):
                        acc[_u(q + off)] += wv * g[_u(q)]
        for h in range(H):
            dst = dx[n, c, h]
            for w in range(W):
                dst[_u(w)] = acc[_u((h + ph) * Wp + w + pw)]


# ------------------------------------------------------------------------------ tiled kernels
# Implicit GEMM with the register-blocked micro-kernels of ``minicnn.kernels.tile``: output pixel p's
# window starts at flat position ``pos[p]`` of a padded sample and tap t = (c, i, j) reads
# ``pos[p] + off[t]`` (``off`` from _tap_offsets), so a block of pixels times a block of channels is
# one tile call and no im2col matrix is built (training keeps only the padded input for backward).
# Output channels go in blocks of 16, zero-padded. The input gradient stays W.T @ dy + col2im
# (_backward_blocks): as a tiled correlation of the bordered dy it measured 1.3x slower on LeNet's
# conv2 (most of the bordered dy is zeros) and 1.2x slower on 64 -> 64 channels of 32x32.
@jit
def _window_positions(OH, OW, sh, sw, Wp):
    """``pos[oh*OW + ow] = oh*sh*Wp + ow*sw``: where each window starts in a padded plane of width Wp."""
    pos = np.empty(OH * OW, np.int64)
    for oh in range(OH):
        for ow in range(OW):
            pos[oh * OW + ow] = oh * sh * Wp + ow * sw
    return pos


@jit_parallel
def _pack_lanes(m, out):
    """``out`` (N, nb, T, NR) = ``m`` (N, R, T) transposed in blocks of NR rows:
    ``out[n, b, t, l] = m[n, b*NR + l, t]``, 0 past row R."""
    N, R, T = m.shape
    nb, NR = out.shape[1], out.shape[3]
    for n in prange(N):
        for b in range(nb):
            blk = out[n, b]
            for t in range(T):
                for lane in range(NR):
                    r = b * NR + lane
                    blk[t, lane] = m[n, r, t] if r < R else 0


@jit_parallel
def _tiled_forward(xpad, wt, bias, pos, off, n_blocks, y):
    """``y`` (N, F, P) = ``bias`` + the convolution of ``xpad`` (N, C, Hp, Wp), with the weight packed
    as ``wt`` (ceil(F/16), T, 16) by _pack_lanes; ``pos`` (P,) window starts, ``off`` (T,) tap offsets."""
    N, F, P = y.shape
    S = xpad.shape[1] * xpad.shape[2] * xpad.shape[3]
    for b in prange(n_blocks):
        c = np.empty((4, 16), y.dtype)
        base = np.empty(4, np.int64)
        for n in range(b * N // n_blocks, (b + 1) * N // n_blocks):
            src = xpad[n].reshape(S)
            yn = y[n]
            for p0 in range(0, P, 4):
                m = min(4, P - p0)
                for r in range(4):  # a last partial block repeats its last pixel
                    base[r] = pos[p0 + min(r, m - 1)]
                for fb in range(wt.shape[0]):
                    tile_4x16(src, base, off, wt[fb], c)
                    for lane in range(min(16, F - fb * 16)):
                        f = fb * 16 + lane
                        row = yn[f]
                        bf = bias[f]
                        for r in range(m):
                            row[p0 + r] = c[r, lane] + bf


@jit_parallel
def _tiled_backward_weight(xpad, dyt, pos, off, n_blocks, parts):
    """``parts[b]`` (ceil(F/16), T, 16) = the weight gradient, transposed and packed as _pack_lanes
    packs, summed over block b's samples: ``parts[b, fb, t, l] = sum over n, p of
    xpad[n].flat[pos[p] + off[t]] * dyt[n, fb, p, l]``, with ``dyt`` (N, ceil(F/16), P, 16) = dy packed."""
    N = xpad.shape[0]
    S = xpad.shape[1] * xpad.shape[2] * xpad.shape[3]
    nfb, T = parts.shape[1], parts.shape[2]
    for b in prange(n_blocks):
        part = parts[b]
        part[:] = 0
        c = np.empty((4, 16), parts.dtype)
        base = np.empty(4, np.int64)
        for n in range(b * N // n_blocks, (b + 1) * N // n_blocks):
            src = xpad[n].reshape(S)
            for t0 in range(0, T, 4):
                m = min(4, T - t0)
                for r in range(4):
                    base[r] = off[t0 + min(r, m - 1)]
                for fb in range(nfb):
                    tile_4x16(src, base, pos, dyt[n, fb], c)
                    dst = part[fb]
                    for r in range(m):
                        for lane in range(16):
                            dst[t0 + r, lane] += c[r, lane]


@jit_parallel
def _bias_grad(dy, db, accumulate):
    """``db[f] (+)= sum over n, p of dy[n, f, p]`` for ``dy`` (N, F, P)."""
    N, F, P = dy.shape
    for f in prange(F):
        s = 0.0
        for n in range(N):
            src = dy[n, f]
            for p in range(P):
                s += src[_u(p)]
        if accumulate:
            db[f] += s
        else:
            db[f] = s


# ------------------------------------------------------------------------------ public wrappers
def _dy_array(dy, shape, dtype):
    dy = float_input("dy", dy, 4, "(N, F, OH, OW)")
    if dy.shape != shape:
        raise ValueError(f"dy must have the output's shape {shape}, got {dy.shape}")
    return dy.astype(dtype, copy=False)


def _apply(result, out, accumulate):
    if out is None:
        return result
    if accumulate:
        out += result
    else:
        out[...] = result
    return out


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1, out=None, cols=None):
    """Convolve ``x`` (N, C, H, W) with ``weight`` (F, C, kh, kw), plus ``bias`` (F,) if given.

    Returns ``(y, cols)``: ``y`` (N, F, OH, OW) and ``cols`` (N, C*kh*kw, OH*OW), where ``cols[n]`` is
    ``im2col(x[n:n+1]).T``; :func:`conv2d_backward_weight` takes it. ``out`` and ``cols``, if given, are
    C-contiguous arrays of these shapes and ``x``'s dtype that are filled instead of allocating.
    """
    x = float_input("x", x, 4, "(N, C, H, W)")
    weight = float_input("weight", weight, 4, "(F, C, kh, kw)").astype(x.dtype, copy=False)
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"weight must have as many input channels as x: weight.shape[1] = {weight.shape[1]}, "
                         f"x.shape[1] = {x.shape[1]}")
    kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = conv_geometry(x.shape, weight.shape[2:], stride, padding, dilation)
    N, C = x.shape[:2]
    F = weight.shape[0]
    if bias is None:
        bias = np.zeros(F, dtype=x.dtype)
    else:
        bias = float_input("bias", bias, 1, "(F,)").astype(x.dtype, copy=False)
        if bias.shape != (F,):
            raise ValueError(f"bias must have shape (F,) = {(F,)}, got {bias.shape}")
    K, P = C * kh * kw, OH * OW
    cols = out_array("cols", cols, (N, K, P), x.dtype)
    y = out_array("out", out, (N, F, OH, OW), x.dtype)
    kernel_blas_single_threaded()
    _forward_blocks(x, weight.reshape(F, K), bias, kh, kw, sh, sw, ph, pw, dh, dw, thread_blocks(N), cols,
                    y.reshape(N, F, P))
    return y, cols


def conv2d_backward_weight(dy, cols, kernel_size, out=None, accumulate=False):
    """Weight gradient ``dW`` (F, C, kh, kw) of the convolution that produced ``dy``'s output.

    ``dy`` (N, F, OH, OW) is the output gradient and ``cols`` (N, C*kh*kw, OH*OW) the array that
    :func:`conv2d_forward` returned. With ``out`` given, the gradient is written into it (added to it
    if ``accumulate``) and ``out`` is returned.
    """
    cols = float_input("cols", cols, 3, "(N, C*kh*kw, OH*OW)")
    kh, kw = pair("kernel_size", kernel_size)
    N, K, P = cols.shape
    if K % (kh * kw):
        raise ValueError(f"cols has {K} rows per sample, not a multiple of kh*kw = {kh * kw} "
                         f"(kernel_size {(kh, kw)})")
    dy = float_input("dy", dy, 4, "(N, F, OH, OW)").astype(cols.dtype, copy=False)
    F = dy.shape[1]
    if dy.shape[0] != N or dy.shape[2] * dy.shape[3] != P:
        raise ValueError(f"dy of shape {dy.shape} does not match cols of shape {cols.shape} "
                         f"(expected N = {N} and OH*OW = {P})")
    shape = (F, K // (kh * kw), kh, kw)
    if out is not None:
        out_array("out", out, shape, cols.dtype)
    nb = thread_blocks(N)
    parts, bias_parts = np.empty((nb, K, F), cols.dtype), np.empty((nb, F), cols.dtype)
    kernel_blas_single_threaded()
    _backward_blocks(dy.reshape(N, F, P), np.empty((F, K), cols.dtype), cols, kh, kw, 1, 1, 0, 0, 1, 1, nb,
                     parts, bias_parts, np.empty((nb, 1, 1), cols.dtype), np.empty((N, 1, 1, 1), cols.dtype),
                     True, False)  # dcols and dx: not touched without want_input
    return _apply(parts.sum(axis=0).T.reshape(shape), out, accumulate)


def conv2d_backward_bias(dy, out=None, accumulate=False):
    """Bias gradient ``db`` (F,) = the sum of ``dy`` (N, F, OH, OW) over n, oh, ow. With ``out`` given,
    it is written into it (added to it if ``accumulate``) and ``out`` is returned."""
    dy = float_input("dy", dy, 4, "(N, F, OH, OW)")
    F = dy.shape[1]
    accumulate = out is not None and accumulate  # a new array is set, not added to
    out = out_array("out", out, (F,), dy.dtype)
    _bias_grad(dy.reshape(dy.shape[0], F, -1), out, bool(accumulate))
    return out


def conv2d_backward_input(dy, weight, input_shape, stride=1, padding=0, dilation=1, out=None):
    """Input gradient ``dx`` (N, C, H, W) of the convolution of an input of ``input_shape`` with
    ``weight`` (F, C, kh, kw), given the output gradient ``dy`` (N, F, OH, OW)."""
    input_shape = input_shape_arg(input_shape)
    weight = float_input("weight", weight, 4, "(F, C, kh, kw)")
    N, C, H, W = input_shape
    F = weight.shape[0]
    if weight.shape[1] != C:
        raise ValueError(f"weight must have as many input channels as input_shape: weight.shape[1] = "
                         f"{weight.shape[1]}, input_shape[1] = {C}")
    kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = conv_geometry(input_shape, weight.shape[2:], stride, padding, dilation)
    dy = _dy_array(dy, (N, F, OH, OW), weight.dtype)
    dx = out_array("out", out, input_shape, weight.dtype)
    K, P, nb = C * kh * kw, OH * OW, thread_blocks(N)
    unused = np.empty((nb, 1, 1), weight.dtype)  # cols and weight parts: not read without want_params
    kernel_blas_single_threaded()
    _backward_blocks(dy.reshape(N, F, P), weight.reshape(F, K), unused, kh, kw, sh, sw, ph, pw, dh, dw, nb,
                     unused, np.empty((nb, 1), weight.dtype), np.empty((nb, K, P), weight.dtype), dx,
                     False, True)
    return dx
