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
Conv2d layer runs every other convolution through the tiled kernels (below, with the micro-kernels of
``minicnn.kernels.tile``), which build no im2col matrix: measured 1.1-3.0x (forward) and 1.3-2.1x
(weight gradient) faster than the im2col + OpenBLAS functions below, on LeNet's conv2 and 3x3 layers of
3-64 channels.
"""
import numba
import numpy as np
from numba import prange

from .._config import JIT_OPTIONS, jit, jit_parallel, kernel_blas_single_threaded, thread_blocks
from .._validate import float_input, input_shape_arg, out_array, pair
from .im2col import _inside, _u, conv_geometry
from .tile import MR, NR, tile_6x16, tile_6x16_add


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


@jit
def _pad_sample(x, n, ph, pw, xpad):
    """``xpad[n]`` (C, H + 2*ph, W + 2*pw) = ``x[n]`` (C, H, W) with a zero border."""
    C, H, W = x.shape[1:]
    if ph or pw:
        xpad[n] = 0
    for c in range(C):
        for h in range(H):
            src = x[n, c, h]
            dst = xpad[n, c, h + ph]
            for w in range(W):
                dst[_u(w + pw)] = src[_u(w)]


@jit_parallel
def _pad_input(x, ph, pw, xpad):
    """``xpad`` (N, C, H + 2*ph, W + 2*pw) = ``x`` (N, C, H, W) with a zero border."""
    for n in prange(x.shape[0]):
        _pad_sample(x, n, ph, pw, xpad)


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
# Implicit GEMMs with the register-blocked micro-kernels of ``minicnn.kernels.tile`` on a zero-padded
# copy of the input, flattened per sample: output pixel p's window starts at ``pos[p]`` and tap
# t = (c, i, j) reads ``pos[p] + off[t]`` (``off`` from _tap_offsets), so 6 pixels (forward) or 6 taps
# (weight gradient) times 16 output channels is one tile call. Output channels go in blocks of 16
# lanes, zero-padded.
#
# The stride-1 input gradient works on planes laid on the padded width Wp, as the direct kernels do:
# with dy at ``q = oh*Wp + ow`` (junk columns zero), tap (c, i, j) adds ``W[f, c, i, j] * dy[f, q]``
# to the padded input gradient at ``q + i*dh*Wp + j*dw``. For one kernel row i, 16 consecutive
# gradient positions of 6 input channels are then one tile call summed over (j, f): kw*F terms, each
# reading dy shifted by j*dw. Measured: LeNet conv2's whole backward (batch 64) 1.7x faster than with
# W.T @ dy + col2im, which other strides keep; on 32-64 channels of 32x32, 1.1x. Slower: one tile per
# tap (6 channels x 16 positions summed over f only: 1.3x slower on conv2, F = 16 terms per call is
# too short), a tiled correlation of the zero-bordered dy (most of it zeros).
#
# Each pass is one parallel region (one block of samples per thread: packing, tiles and the per-block
# parameter gradients, reduced after the loop).
@jit
def _window_positions(OH, OW, sh, sw, Wp):
    """``pos[oh*OW + ow] = oh*sh*Wp + ow*sw``: where each window starts in a padded plane of width Wp."""
    pos = np.empty(OH * OW, np.int64)
    for oh in range(OH):
        for ow in range(OW):
            pos[oh * OW + ow] = oh * sh * Wp + ow * sw
    return pos


@jit
def _zeros(n, like):
    """np.zeros(n) of ``like``'s dtype, allocated serially: in a parallel kernel np.zeros would be a
    parallel region of its own (threads woken and joined once more)."""
    return np.zeros(n, like.dtype)


@jit
def _lanes_weight(weight):
    """``weight`` (F, C, kh, kw) as (ceil(F/16), T, 16), flat: [f // 16, t, f % 16] = weight[f].flat[t]."""
    F = weight.shape[0]
    T = weight.size // F
    w2 = weight.reshape(F, T)
    wt = np.zeros(((F + NR - 1) // NR) * T * NR, weight.dtype)
    for f in range(F):
        for t in range(T):
            wt[((f // NR) * T + t) * NR + f % NR] = w2[f, t]
    return wt


@jit
def _row_grouped_weight(weight):
    """``weight`` (F, C, kh, kw) as (kh, ceil(C/6), kw*F, 6), flat: [i, c // 6, j*F + f, c % 6] =
    weight[f, c, i, j]; zero past channel C."""
    F, C, kh, kw = weight.shape
    G = (C + MR - 1) // MR
    wg = np.zeros(kh * G * kw * F * MR, weight.dtype)
    for f in range(F):
        for c in range(C):
            for i in range(kh):
                for j in range(kw):
                    wg[(((i * G + c // MR) * kw + j) * F + f) * MR + c % MR] = weight[f, c, i, j]
    return wg


@jit
def _steps(n, step):
    """``[0, step, 2*step, ...]`` (n,), allocated serially (see _zeros)."""
    return np.arange(n) * step


@jit
def _block_rows(starts, i0, rows):
    """``rows[r] = starts[min(i0 + r, end)]``: a partial last block repeats its last row."""
    last = starts.shape[0] - 1
    for r in range(MR):
        rows[r] = starts[min(i0 + r, last)]


@jit_parallel
def _tiled_forward(x, weight, bias, ph, pw, pos, off, n_blocks, copy, xpad, y):
    """``y`` (N, F, P) = ``bias`` + the convolution of ``x`` (N, C, H, W) by ``weight`` (F, C, kh, kw),
    read from ``xpad`` (N, C, H + 2*ph, W + 2*pw): if ``copy``, the kernel first writes the zero-padded
    ``x`` there; if not, ``xpad`` must already hold it (``x`` itself when unpadded). ``pos`` (P,) are
    the window starts, ``off`` (T,) the tap offsets."""
    N, F, P = y.shape
    T = off.shape[0]
    S = xpad.shape[1] * xpad.shape[2] * xpad.shape[3]
    nfb = (F + NR - 1) // NR
    wt = _lanes_weight(weight)
    lanes = _steps(T, NR)  # b offsets of consecutive 16-wide rows
    Pr = (P + MR - 1) // MR * MR
    for b in prange(n_blocks):
        yt = np.empty(Pr * NR, y.dtype)  # one sample's output for 16 channels, transposed: [p, lane]
        rows = np.empty(MR, np.int64)
        cbase = np.empty(MR, np.int64)
        for n in range(b * N // n_blocks, (b + 1) * N // n_blocks):
            if copy:
                _pad_sample(x, n, ph, pw, xpad)
            src = xpad[n].reshape(S)
            yn = y[n]
            for fb in range(nfb):
                for p0 in range(0, P, MR):
                    _block_rows(pos, p0, rows)
                    for r in range(MR):
                        cbase[r] = (p0 + r) * NR
                    tile_6x16(src, rows, off, wt, fb * T * NR, lanes, yt, cbase)
                for lane in range(min(NR, F - fb * NR)):
                    f = fb * NR + lane
                    row = yn[f]
                    bf = bias[f]
                    for p in range(P):
                        row[p] = yt[p * NR + lane] + bf


@numba.njit(fastmath={"reassoc"}, **JIT_OPTIONS)
def _add_row_sums(m, out):
    """``out[i] += sum of m[i]`` for ``m`` (R, L); ``reassoc`` lets the sums vectorise (3.5x faster on
    LeNet conv2's dy than one add after the other)."""
    for i in range(m.shape[0]):
        row = m[i]
        s = 0.0
        for j in range(m.shape[1]):
            s += row[_u(j)]
        out[i] += s


@jit_parallel
def _tiled_backward(xpad, dy, weight, pos, off, geometry, n_blocks, weight_grad, bias_grad, dx):
    """Adds the weight gradient to ``weight_grad`` (F, C, kh, kw) and, if ``bias_grad`` is not empty,
    the bias gradient to ``bias_grad`` (F,); if ``dx`` (N, C, H, W) is not empty, sets it to the input
    gradient. ``xpad`` (N, C, Hp, Wp) is the padded input of the forward pass, ``dy`` (N, F, OH, OW),
    ``geometry`` = (kh, kw, sh, sw, ph, pw, dh, dw, OH, OW) of conv_geometry."""
    kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = geometry
    N, F = dy.shape[0], dy.shape[1]
    C, Hp, Wp = xpad.shape[1], xpad.shape[2], xpad.shape[3]
    S, P, T = C * Hp * Wp, OH * OW, off.shape[0]
    nfb = (F + NR - 1) // NR
    Tr = (T + MR - 1) // MR * MR
    parts = _zeros(n_blocks * nfb * Tr * NR, dy).reshape(n_blocks, nfb * Tr * NR)  # [b][fb, t, lane]
    bias_parts = _zeros(n_blocks * F, dy).reshape(n_blocks, F)
    lanes = _steps(P, NR)
    want_input = dx.size > 0
    gather = want_input and sh == 1 and sw == 1
    # Stride-1 input gradient (see above): dy on the padded width Wp, after a margin of (kw-1)*dw zeros;
    # kernel row i adds to the padded plane from i*dh*Wp on, Lp positions.
    G = (C + MR - 1) // MR
    margin = (kw - 1) * dw
    Lp = ((OH - 1) * Wp + OW + margin + NR - 1) // NR * NR
    Ld = margin + Lp  # dy row length
    Lx = (kh - 1) * dh * Wp + Lp  # >= Hp*Wp
    wg = _row_grouped_weight(weight) if gather else _zeros(0, dy)
    steps = _steps(kw * F, MR)  # a offsets of t = (j, f) in wg
    taps = _zeros(kw * F, off)  # b offsets of t = (j, f) in the dy rows
    for j in range(kw):
        for f in range(F):
            taps[j * F + f] = f * Ld - j * dw
    QB = max(NR, 4096 // F // NR * NR)  # positions per pass over the kernel rows: F*QB values of dy in L1
    w2 = weight.reshape(F, T)
    for b in prange(n_blocks):
        part = parts[b]
        dyt = np.zeros(nfb * P * NR, dy.dtype)  # dy[n] transposed in blocks of 16 channels
        dyw = np.zeros((F * Ld) if gather else 0, dy.dtype)  # dy[n] on the padded width
        dxw = np.empty((G * MR * Lx) if gather else 0, dy.dtype)  # padded plane gradients
        dcols = np.empty((T, P) if want_input and not gather else (0, 0), dy.dtype)
        rows = np.empty(MR, np.int64)
        cbase = np.empty(MR, np.int64)
        for n in range(b * N // n_blocks, (b + 1) * N // n_blocks):
            dyn = dy[n].reshape(F, P)
            _add_row_sums(dyn, bias_parts[b])
            for f in range(F):
                dyf = dyn[f]
                lane0 = (f // NR) * P * NR + f % NR
                for p in range(P):
                    dyt[_u(lane0 + p * NR)] = dyf[_u(p)]
                if gather:
                    for oh in range(OH):
                        row0 = f * Ld + margin + oh * Wp
                        for ow in range(OW):
                            dyw[_u(row0 + ow)] = dyf[_u(oh * OW + ow)]
            src = xpad[n].reshape(S)
            # Weight gradient: 6 taps x 16 output channels per tile, summed over the pixels.
            for t0 in range(0, Tr, MR):
                _block_rows(off, t0, rows)
                for fb in range(nfb):
                    for r in range(MR):
                        cbase[r] = (fb * Tr + t0 + r) * NR
                    tile_6x16_add(src, rows, pos, dyt, fb * P * NR, lanes, part, cbase)
            if gather:
                dxw[:] = 0
                for p_start in range(0, Lp, QB):
                    for i in range(kh):
                        for g in range(G):
                            for r in range(MR):
                                rows[r] = (i * G + g) * kw * F * MR + r
                            for p0 in range(p_start, min(p_start + QB, Lp), NR):
                                for r in range(MR):
                                    cbase[r] = (g * MR + r) * Lx + i * dh * Wp + p0
                                tile_6x16_add(wg, rows, steps, dyw, margin + p0, taps, dxw, cbase)
                for c in range(C):
                    for h in range(dx.shape[2]):
                        dst = dx[n, c, h]
                        s0 = c * Lx + (h + ph) * Wp + pw
                        for w in range(dx.shape[3]):
                            dst[_u(w)] = dxw[_u(s0 + w)]
            elif want_input:
                np.dot(w2.T, dyn, dcols)
                _col2im_sample(dcols, n, kh, kw, sh, sw, ph, pw, dh, dw, dx)
    wgrad = weight_grad.reshape(F, T)
    for f in range(F):
        for t in range(T):
            s = 0.0
            for b in range(n_blocks):
                s += parts[b, ((f // NR) * Tr + t) * NR + f % NR]
            wgrad[f, t] += s
    for f in range(bias_grad.shape[0]):
        s = 0.0
        for b in range(n_blocks):
            s += bias_parts[b, f]
        bias_grad[f] += s


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
