"""The "direct" convolution algorithm (stride 1): loops over the taps, no im2col matrix, no BLAS.

It wins when a window holds few values (one input channel, e.g. LeNet's first layer), where im2col's
copies and the products' memory traffic cost more than the arithmetic (measured on LeNet conv1:
forward+backward 3.4 ms against 4.3 ms, one thread). The kernels work on a zero-padded copy of the
input: laid on the padded width Wp, an output plane is one flat run ``q = oh*Wp + ow`` (columns
``ow >= OW`` are junk, never copied out) and tap (i, j) reads the padded input at
``q + i*dh*Wp + j*dw``, so every inner loop is one long contiguous vectorised run instead of OH short
rows:

- forward: ``minicnn.kernels.tile`` tiles of 6 output channels x 16 or 32 consecutive q (one sample's
  input read once per 6 channels, the sums in registers). LeNet conv1, batch 64, 2 threads, AVX-512:
  93 us with the padding, against 167 us for the padding and eight taps per pass over a memory
  accumulator per channel (``_accumulate_taps``);
- weight gradient: dot products of dy (laid on the same width) with the shifted input, four taps per
  pass;
- input gradient: the correlation of that dy, with a margin of zeros, with the kernel, eight taps
  per pass (``_accumulate_taps``): 140 us on LeNet conv1 against 270 us scattering each tap of dy into
  the plane (three memory accesses per multiply-add instead of about one).

Their dot products may be summed in any order (``jit_reassoc``), which lets them vectorise.
"""
import numpy as np
from numba import prange

from .._config import jit, jit_parallel, jit_reassoc
from .common import _block, _lay_on_width, _pad_sample, _steps, _u
from .tile import MR, tile


@jit
def tap_offsets(C, kh, kw, Hp, Wp, dh, dw):
    """Tap ``t = (c, i, j)`` of a kernel reads a flat padded sample (C*Hp*Wp,) at ``q + offset[t]``."""
    offset = np.empty(C * kh * kw, np.int64)
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                offset[(c * kh + i) * kw + j] = (c * Hp + i * dh) * Wp + j * dw
    return offset


@jit_reassoc
def _accumulate_taps(src, offset, wf, acc):
    """``acc[q] += sum over taps t of wf[t] * src[offset[t] + q]``, eight taps per pass over ``acc``: one
    load and store of acc per eight multiply-adds instead of one per tap (measured 1.5x faster on
    LeNet's conv1)."""
    T, L = offset.shape[0], acc.shape[0]
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
    if g + 4 <= T:  # (a stride-2 depthwise gradient's phases have 4, 2, 2 and 1 taps)
        w0, w1, w2, w3 = wf[g], wf[g + 1], wf[g + 2], wf[g + 3]
        s0, s1, s2, s3 = src[offset[g]:], src[offset[g + 1]:], src[offset[g + 2]:], src[offset[g + 3]:]
        for q in range(L):
            acc[_u(q)] += w0 * s0[_u(q)] + w1 * s1[_u(q)] + w2 * s2[_u(q)] + w3 * s3[_u(q)]
        g += 4
    for g in range(g, T):
        wv = wf[g]
        s0 = src[offset[g]:]
        for q in range(L):
            acc[_u(q)] += wv * s0[_u(q)]


@jit_parallel
def direct_forward(x, weight, bias, g, n_blocks, nr, xbuf, y):
    """``y`` (N, F, OH, OW) = the stride-1 convolution of ``x`` (N, C, H, W) + bias. The zero-padded
    input (N, C, Hp, Wp) is written first to the start of ``xbuf``, a flat buffer with ``nr`` more
    values (zeroed): a tile reads up to nr - 1 values past a sample's last window, into the next
    sample (which another thread may be writing) or the slack: junk lanes, dropped.
    Tiles of 6 output channels x ``nr`` (16 or 32) positions on the padded width."""
    kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = g
    N, C, H, W = x.shape
    Hp, Wp = H + 2 * ph, W + 2 * pw
    F, T = weight.shape[0], C * kh * kw
    S, L = C * Hp * Wp, (OH - 1) * Wp + OW
    xpad = xbuf[:N * S].reshape(N, C, Hp, Wp)
    xbuf[N * S:] = 0
    Lr, Fr = (L + nr - 1) // nr * nr, (F + MR - 1) // MR * MR
    off = tap_offsets(C, kh, kw, Hp, Wp, dh, dw)
    taps = _steps(T, 1)
    wflat = weight.reshape(F * T)
    for b in prange(n_blocks):
        acc = np.empty(Fr * Lr, y.dtype)  # one sample's outputs on the padded width: [f, q]
        rows = np.empty(MR, np.int64)
        cbase = np.empty(MR, np.int64)
        lo, hi = _block(b, n_blocks, N)
        for n in range(lo, hi):
            _pad_sample(x, n, ph, pw, xpad)
            for f0 in range(0, F, MR):
                for r in range(MR):
                    rows[r] = min(f0 + r, F - 1) * T
                for q0 in range(0, L, nr):
                    for r in range(MR):
                        cbase[r] = (f0 + r) * Lr + q0
                    tile(wflat, rows, taps, xbuf, n * S + q0, off, acc, cbase, nr)
            for f in range(F):
                bf = bias[f]
                for oh in range(OH):
                    dst = y[n, f, oh]
                    a0 = f * Lr + oh * Wp
                    for ow in range(OW):
                        dst[_u(ow)] = acc[_u(a0 + ow)] + bf


@jit
def grad_margin(g, Wp):
    """The zeros before and after each dy plane laid on the padded width Wp (``spread_grad``) for the
    input gradient: the offset of the last tap, so that every tap of every input position reads inside
    the plane."""
    kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = g
    return (kh - 1) * dh * Wp + (kw - 1) * dw


@jit_parallel
def spread_grad(dy, Wp, margin, dy_wide):
    """``dy_wide`` (N, F, margin + (OH-1)*Wp + OW + margin): ``dy`` (N, F, OH, OW) laid on rows of width
    Wp after ``margin`` zeros, zero gaps and zeros after."""
    N, F = dy.shape[0], dy.shape[1]
    for t in prange(N * F):
        n = t // F
        f = t - n * F
        dst = dy_wide[n, f]
        dst[:] = 0
        _lay_on_width(dy[n, f], Wp, dst, margin)


@jit_reassoc
def _add_tap_dots(gq, src, offset, zero, acc):
    """``acc[t] += sum over q of gq[q] * src[offset[t] + q]``, four taps per pass: each load of gq serves
    four multiply-adds (measured 1.5x faster on LeNet's conv1 than one tap per pass). Each dot product
    sums in the input's precision, from ``zero`` (a 0 of that dtype: made once by the caller, since an
    allocation per call cost ~0.1 ms of conv1's backward, measured)."""
    T, L = offset.shape[0], gq.shape[0]
    t = 0
    while t + 4 <= T:
        s0, s1, s2, s3 = src[offset[t]:], src[offset[t + 1]:], src[offset[t + 2]:], src[offset[t + 3]:]
        a0 = a1 = a2 = a3 = zero
        for q in range(L):
            v = gq[_u(q)]
            a0 += v * s0[_u(q)]
            a1 += v * s1[_u(q)]
            a2 += v * s2[_u(q)]
            a3 += v * s3[_u(q)]
        acc[t] += a0
        acc[t + 1] += a1
        acc[t + 2] += a2
        acc[t + 3] += a3
        t += 4
    for t in range(t, T):
        s0 = src[offset[t]:]
        a0 = zero
        for q in range(L):
            a0 += gq[_u(q)] * s0[_u(q)]
        acc[t] += a0


@jit_reassoc(parallel=True)
def direct_backward_params(xpad, dy, g, weight_grad, bias_grad):
    """Adds the stride-1 weight gradient into ``weight_grad`` (F, C, kh, kw) and the bias gradient into
    ``bias_grad`` (F,), each skipped when empty, from the forward's padded input ``xpad`` (N, C, Hp, Wp)
    and ``dy`` (N, F, OH, OW); one output channel per thread: no race. Each dy plane is laid on the
    padded width in a buffer of the thread's (LeNet conv1 without input gradient, batch 64, single
    calls after 20 ms of warm-up: the backward took 0.195 ms against 0.27 with a separate
    ``spread_grad`` pass into a (N, F, L) array)."""
    kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = g
    N, C, Hp, Wp = xpad.shape
    F = dy.shape[1]
    L = (OH - 1) * Wp + OW
    T = C * kh * kw
    offset = tap_offsets(C, kh, kw, Hp, Wp, dh, dw)
    zero = np.zeros(1, dtype=xpad.dtype)[0]
    for f in prange(F):
        gq = np.zeros(L, dtype=dy.dtype)  # dy[n, f] at q = oh*Wp + ow; the gaps stay zero
        acc = np.zeros(T, dtype=np.float64)
        sb = 0.0
        for n in range(N):
            _lay_on_width(dy[n, f], Wp, gq, 0)
            if bias_grad.size > 0:
                for q in range(L):
                    sb += gq[_u(q)]
            if weight_grad.size > 0:
                _add_tap_dots(gq, xpad[n].reshape(C * Hp * Wp), offset, zero, acc)
        if weight_grad.size > 0:
            wg = weight_grad[f].reshape(T)
            for t in range(T):
                wg[t] += acc[t]
        if bias_grad.size > 0:
            bias_grad[f] += sb


@jit
def _input_grad_taps(weight, g, Wp, Ld):
    """For the input gradient as a correlation of ``spread_grad``'s rows (length Ld) with the kernel:
    tap t = (f, i, j) of input position u (on the padded width, from the first unpadded pixel) reads
    ``dy_wide[n].flat[offset[t] + u]``, weighted by ``wt[c, t] = weight[f, c, i, j]``."""
    kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = g
    F, C = weight.shape[0], weight.shape[1]
    T = F * kh * kw
    base = grad_margin(g, Wp) + ph * Wp + pw
    offset = np.empty(T, np.int64)
    wt = np.empty((C, T), weight.dtype)
    for f in range(F):
        for i in range(kh):
            for j in range(kw):
                t = (f * kh + i) * kw + j
                offset[t] = f * Ld + base - (i * dh * Wp + j * dw)
                for c in range(C):
                    wt[c, t] = weight[f, c, i, j]
    return offset, wt


@jit_parallel
def direct_backward_input(dy_wide, weight, g, n_blocks, dx):
    """Set ``dx`` (N, C, H, W) to the stride-1 input gradient from ``spread_grad``'s ``dy_wide``: each
    (n, c) plane a correlation of the spread dy with the kernel (``_input_grad_taps``), eight taps per
    pass; the planes split into ``n_blocks`` blocks."""
    kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = g
    N, C, H, W = dx.shape
    F, Ld = dy_wide.shape[1], dy_wide.shape[2]
    Wp = W + 2 * pw
    Lx = (H - 1) * Wp + W
    offset, wt = _input_grad_taps(weight, g, Wp, Ld)
    for b in prange(n_blocks):
        acc = np.empty(Lx, dx.dtype)  # a plane's gradient on the padded width
        lo, hi = _block(b, n_blocks, N * C)
        for t in range(lo, hi):
            n = t // C
            c = t - n * C
            acc[:] = 0
            _accumulate_taps(dy_wide[n].reshape(F * Ld), offset, wt[c], acc)
            for h in range(H):
                dst = dx[n, c, h]
                for w in range(W):
                    dst[_u(w)] = acc[_u(h * Wp + w)]
