"""The "direct" convolution algorithm (stride 1): loops over the taps, no im2col matrix, no BLAS.

It wins when a window holds few values (one input channel, e.g. LeNet's first layer), where im2col's
copies and the products' memory traffic cost more than the arithmetic (measured on LeNet conv1:
forward+backward 3.4 ms against 4.3 ms, one thread). The kernels work on a zero-padded copy of the
input: laid on the padded width Wp, an output plane is one flat run ``q = oh*Wp + ow`` (columns
``ow >= OW`` are junk, never copied out) and tap (i, j) reads the padded input at
``q + i*dh*Wp + j*dw``, so every inner loop is one long contiguous vectorised run instead of OH short
rows. Their dot products may be summed in any order (``jit_reassoc``), which lets them vectorise.
"""
import numpy as np
from numba import prange

from .._config import jit, jit_parallel, jit_reassoc
from .common import _u


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


@jit_reassoc(parallel=True)
def direct_forward(xpad, weight, bias, g, y):
    """``y`` (N, F, OH, OW) = the stride-1 convolution of the padded input ``xpad`` (N, C, Hp, Wp) + bias."""
    kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = g
    N, C, Hp, Wp = xpad.shape
    F = weight.shape[0]
    L = (OH - 1) * Wp + OW
    T = C * kh * kw
    offset = tap_offsets(C, kh, kw, Hp, Wp, dh, dw)
    for t in prange(N * F):
        n = t // F
        f = t - n * F
        acc = np.empty(L, dtype=y.dtype)
        acc[:] = bias[f]
        _accumulate_taps(xpad[n].reshape(C * Hp * Wp), offset, weight[f].reshape(T), acc)
        for oh in range(OH):
            dst = y[n, f, oh]
            for ow in range(OW):
                dst[_u(ow)] = acc[_u(oh * Wp + ow)]


@jit_parallel
def spread_grad(dy, Wp, dy_wide):
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
def direct_backward_params(xpad, dy_wide, g, weight_grad, bias_grad):
    """Adds the stride-1 weight gradient into ``weight_grad`` (F, C, kh, kw) and the bias gradient into
    ``bias_grad`` (F,), each skipped when empty; one output channel per thread: no race."""
    kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = g
    N, C, Hp, Wp = xpad.shape
    F, L = dy_wide.shape[1], dy_wide.shape[2]
    T = C * kh * kw
    offset = tap_offsets(C, kh, kw, Hp, Wp, dh, dw)
    zero = np.zeros(1, dtype=xpad.dtype)[0]
    for f in prange(F):
        acc = np.zeros(T, dtype=np.float64)
        sb = 0.0
        for n in range(N):
            gq = dy_wide[n, f]
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


@jit_parallel
def direct_backward_input(dy_wide, weight, g, dx):
    """Set ``dx`` (N, C, H, W) to the stride-1 input gradient; one (n, c) plane per iteration."""
    kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = g
    N, C, H, W = dx.shape
    F = weight.shape[0]
    L = dy_wide.shape[2]
    Hp, Wp = H + 2 * ph, W + 2 * pw
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        acc = np.zeros(Hp * Wp, dtype=dx.dtype)  # gradient of the padded plane
        for f in range(F):
            gq = dy_wide[n, f]
            for i in range(kh):
                for j in range(kw):
                    wv = weight[f, c, i, j]
                    off = i * dh * Wp + j * dw
                    for q in range(L):
                        acc[_u(q + off)] += wv * gq[_u(q)]
        for h in range(H):
            dst = dx[n, c, h]
            for w in range(W):
                dst[_u(w)] = acc[_u((h + ph) * Wp + w + pw)]
