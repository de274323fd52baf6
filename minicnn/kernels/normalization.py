"""Per-row normalisation kernels: LayerNorm, GroupNorm and InstanceNorm (GroupNorm with one channel
per group), forward and backward. ``minicnn.functional.layer_norm`` / ``group_norm`` /
``instance_norm`` call them.

Every one of these normalises ROWS that are contiguous in memory: LayerNorm's rows are the trailing
``normalized_shape`` values of each sample (``x`` viewed ``(R, D)``); GroupNorm's are the
``C / G * L`` values of one group of one sample (``x`` viewed ``(N * G, C / G, L)``, the affine
parameters per channel). Each kernel is a serial ``_<name>_rows(..., lo, hi)`` over a range of rows
(called directly for small inputs, where starting a parallel region costs more than it saves) and a
parallel ``_<name>(..., n_chunks)`` that splits the rows into ``n_chunks`` contiguous ranges
(``prange``), so no two threads write one value.

Memory passes. Each kernel does ALL the work of one row before the next row, so that a row's second
read comes from cache instead of memory (a LayerNorm row over (64, 32, 32) is 256 KiB, an
InstanceNorm row over 32x32 is 4 KiB; the L2 cache of the 2-core EPYC this was tuned on is 1 MiB per
core, its L3 32 MiB): the forward reads x once from memory and writes y once (statistics, then the
normalised row), the backward reads dy and x once and writes dx once (the two row sums, then dx; the
weight and bias gradients are summed in the same passes). Before, the statistics, the normalisation
and (GroupNorm, InstanceNorm) the backward's row sums were separate kernels over the whole array:
3 memory passes forward and 5 backward instead of 2 and 3.

Statistics in ONE pass per row with float64 accumulators: ``sum(x - s)`` and ``sum((x - s)^2)`` with
the shift ``s = row[0]``, then ``var = E[(x-s)^2] - E[x-s]^2``. Why float64: a float32 running sum
over a row of 65536 values (LayerNorm over (64, 32, 32)) loses about log2(65536) = 16 of float32's 24
bits, and the one-pass variance subtracts two such sums; why the shift: it removes the row's offset
before squaring, so the subtraction does not cancel when ``|mean| >> std``. The reductions are
compiled with ``jit_reassoc`` (any summation order), so they vectorise instead of serialising on the
add latency. The elementwise passes compute in x's dtype (``x.dtype.type(v)`` casts a float64 row
constant).

Backward (standard closed form, ``K`` values per row, ``xhat = (x - mean) * rstd``, ``g = dy * weight``):
``dx = rstd * (g - mean(g) - xhat * mean(g * xhat))``; ``dweight = sum(dy * xhat)``, ``dbias = sum(dy)``
over the rows. An EMPTY output array means "not wanted" (its work is skipped).
"""
import numpy as np
from numba import prange

from .._config import jit, jit_parallel, jit_reassoc
from .common import _block


@jit_reassoc
def _shifted_moments(row, s):
    """``(sum(row - s), sum((row - s)^2))`` in float64 for a 1-D row (the shift ``s`` in the row's dtype;
    summed in any order: ``jit_reassoc`` lets the loop vectorise)."""
    a = np.float64(0.0)
    q = np.float64(0.0)
    for i in range(row.shape[0]):
        d = np.float64(row[i] - s)
        a += d
        q += d * d
    return a, q


@jit
def _mean_rstd(a, q, shift, K, eps):
    """``(mean, 1 / sqrt(var + eps))`` (float64) of a row of ``K`` values from its shifted sums
    (:func:`_shifted_moments`, shift ``shift``); the biased variance, clipped at 0."""
    d = a / K
    return shift + d, 1.0 / np.sqrt(max(q / K - d * d, 0.0) + eps)


# -- LayerNorm: x2 (R, D), weight / bias (D,) or empty -------------------------------------------------
@jit
def _layer_norm_row(x, m, s, weight, bias, y):
    """One row: ``y = (x - m) * s * weight + bias`` (``y = (x - m) * s`` when ``weight`` is empty)."""
    if weight.size > 0:
        for j in range(x.shape[0]):
            y[j] = (x[j] - m) * s * weight[j] + bias[j]
    else:
        for j in range(x.shape[0]):
            y[j] = (x[j] - m) * s


@jit
def layer_norm_forward_rows(x2, weight, bias, eps, y2, mean, rstd, lo, hi):
    """Rows ``lo:hi``: ``mean[r]`` and ``rstd[r] = 1 / sqrt(var + eps)`` (x's dtype, ``(R,)``) of row
    ``r``, then the row normalised into ``y2`` (:func:`_layer_norm_row`; the row's second read hits
    cache)."""
    D = x2.shape[1]
    for r in range(lo, hi):
        a, q = _shifted_moments(x2[r], x2[r, 0])
        m, s = _mean_rstd(a, q, np.float64(x2[r, 0]), D, eps)
        mean[r] = m
        rstd[r] = s
        _layer_norm_row(x2[r], mean[r], rstd[r], weight, bias, y2[r])


@jit_parallel
def layer_norm_forward(x2, weight, bias, eps, y2, mean, rstd, n_chunks):
    """:func:`layer_norm_forward_rows` over all rows, ``n_chunks`` ranges in parallel."""
    R = x2.shape[0]
    for t in prange(n_chunks):
        lo, hi = _block(t, n_chunks, R)
        layer_norm_forward_rows(x2, weight, bias, eps, y2, mean, rstd, lo, hi)


@jit_reassoc
def _layer_norm_row_sums(dy, x, m, s, weight):
    """One row: ``(sum(g), sum(g * xhat))`` (float64, summed in any order), ``g = dy * weight`` (``dy``
    when ``weight`` is empty)."""
    sg = np.float64(0.0)
    sgx = np.float64(0.0)
    if weight.size > 0:
        for j in range(x.shape[0]):
            g = dy[j] * weight[j]
            sg += g
            sgx += g * ((x[j] - m) * s)
    else:
        for j in range(x.shape[0]):
            sg += dy[j]
            sgx += dy[j] * ((x[j] - m) * s)
    return sg, sgx


@jit
def _layer_norm_row_dx(dy, x, m, s, weight, a, b, dx):
    """One row: ``dx = s * (g - a - xhat * b)`` (``a = mean(g)``, ``b = mean(g * xhat)``)."""
    if weight.size > 0:
        for j in range(x.shape[0]):
            dx[j] = s * (dy[j] * weight[j] - a - (x[j] - m) * s * b)
    else:
        for j in range(x.shape[0]):
            dx[j] = s * (dy[j] - a - (x[j] - m) * s * b)


@jit
def _layer_norm_row_dx_dw(dy, x, m, s, weight, a, b, dx, dw, db):
    """:func:`_layer_norm_row_dx` fused with the parameter gradients: ``dw += dy * xhat``, ``db += dy``
    (``weight`` not empty)."""
    for j in range(x.shape[0]):
        xh = (x[j] - m) * s
        dx[j] = s * (dy[j] * weight[j] - a - xh * b)
        dw[j] += dy[j] * xh
        db[j] += dy[j]


@jit
def _layer_norm_2rows_dx_dw(dy0, x0, m0, s0, a0, b0, dx0, dy1, x1, m1, s1, a1, b1, dx1, weight, dw, db):
    """:func:`_layer_norm_row_dx_dw` for two rows at once: the float64 ``dw`` / ``db`` are read and
    written once per two rows (per row they moved more bytes than dy, x and dx together: 2 x 16 bytes
    against 12 per value in float32; measured 15-25% faster than one row at a time over (64, 32, 32))."""
    for j in range(x0.shape[0]):
        xh0 = (x0[j] - m0) * s0
        xh1 = (x1[j] - m1) * s1
        dx0[j] = s0 * (dy0[j] * weight[j] - a0 - xh0 * b0)
        dx1[j] = s1 * (dy1[j] * weight[j] - a1 - xh1 * b1)
        dw[j] += dy0[j] * xh0 + dy1[j] * xh1
        db[j] += dy0[j] + dy1[j]


@jit
def _layer_norm_row_dw(dy, x, m, s, dw, db):
    """One row's parameter gradients only: ``dw += dy * xhat``, ``db += dy``."""
    for j in range(x.shape[0]):
        dw[j] += dy[j] * ((x[j] - m) * s)
        db[j] += dy[j]


@jit
def _layer_norm_row_constants(dy, x, m, s, weight):
    """One row's ``(mean(g), mean(g * xhat))`` in x's dtype (:func:`_layer_norm_row_sums`)."""
    sg, sgx = _layer_norm_row_sums(dy, x, m, s, weight)
    D = x.shape[0]
    return x.dtype.type(sg / D), x.dtype.type(sgx / D)


@jit
def layer_norm_backward_rows(dy2, x2, mean, rstd, weight, dx2, dw, db, lo, hi):
    """Rows ``lo:hi``: the input gradient into ``dx2`` (if not empty); ``dy * xhat`` and ``dy`` added into
    ``dw`` / ``db`` ``(D,)`` (empty: not wanted; when wanted with ``dx2``, ``weight`` must not be empty:
    ones for a bias without a weight). Per row: the two row sums, then one pass writing dx and adding
    the parameter gradients (the row's second read hits cache); with the parameter gradients, two rows
    per pass (:func:`_layer_norm_2rows_dx_dw`)."""
    want_dx = dx2.size > 0
    want_dw = dw.size > 0
    if want_dx and want_dw:
        r = lo
        while r + 1 < hi:
            a0, b0 = _layer_norm_row_constants(dy2[r], x2[r], mean[r], rstd[r], weight)
            a1, b1 = _layer_norm_row_constants(dy2[r + 1], x2[r + 1], mean[r + 1], rstd[r + 1], weight)
            _layer_norm_2rows_dx_dw(dy2[r], x2[r], mean[r], rstd[r], a0, b0, dx2[r],
                                    dy2[r + 1], x2[r + 1], mean[r + 1], rstd[r + 1], a1, b1, dx2[r + 1], weight, dw, db)
            r += 2
        if r < hi:  # an odd row
            a, b = _layer_norm_row_constants(dy2[r], x2[r], mean[r], rstd[r], weight)
            _layer_norm_row_dx_dw(dy2[r], x2[r], mean[r], rstd[r], weight, a, b, dx2[r], dw, db)
    elif want_dx:
        for r in range(lo, hi):
            a, b = _layer_norm_row_constants(dy2[r], x2[r], mean[r], rstd[r], weight)
            _layer_norm_row_dx(dy2[r], x2[r], mean[r], rstd[r], weight, a, b, dx2[r])
    elif want_dw:
        for r in range(lo, hi):
            _layer_norm_row_dw(dy2[r], x2[r], mean[r], rstd[r], dw, db)


@jit_parallel
def layer_norm_backward(dy2, x2, mean, rstd, weight, dx2, dw_partial, db_partial, n_chunks):
    """:func:`layer_norm_backward_rows` over all rows, ``n_chunks`` ranges in parallel, range ``t``
    adding into ``dw_partial[t]`` / ``db_partial[t]`` (``(n_chunks, D)``, zeroed and summed over t by
    the caller, so threads never add into one entry; ``(n_chunks, 0)``: not wanted)."""
    R = x2.shape[0]
    for t in prange(n_chunks):
        lo, hi = _block(t, n_chunks, R)
        layer_norm_backward_rows(dy2, x2, mean, rstd, weight, dx2, dw_partial[t], db_partial[t], lo, hi)


# -- GroupNorm: x3 (N * G, Cg, L), row r = n * G + g, weight / bias (G * Cg,) or empty ---------------------
@jit
def _group_norm_row(x, m, s, weight, bias, c0, y):
    """One row ``x (Cg, L)``: ``y[c] = (x[c] - m) * s * weight[c0 + c] + bias[c0 + c]`` (no affine when
    ``weight`` is empty)."""
    dt = x.dtype.type
    affine = weight.size > 0
    mt = dt(m)
    for c in range(x.shape[0]):
        scale = dt(s * weight[c0 + c]) if affine else dt(s)
        shift = bias[c0 + c] if affine else dt(0.0)
        for i in range(x.shape[1]):
            y[c, i] = (x[c, i] - mt) * scale + shift


@jit
def group_norm_forward_rows(x3, G, weight, bias, eps, y3, mean, rstd, lo, hi):
    """Rows ``lo:hi`` of ``x3 (N * G, Cg, L)``: ``mean[r]`` and ``rstd[r] = 1 / sqrt(var + eps)`` (float64
    ``(N * G,)``), then the row normalised into ``y3`` (:func:`_group_norm_row`)."""
    R, Cg, L = x3.shape
    for r in range(lo, hi):
        a = np.float64(0.0)
        q = np.float64(0.0)
        shift = np.float64(x3[r, 0, 0])
        for c in range(Cg):  # the row's channels are contiguous: one shift for the whole row
            ac, qc = _shifted_moments(x3[r, c], x3[r, 0, 0])
            a += ac
            q += qc
        m, s = _mean_rstd(a, q, shift, Cg * L, eps)
        mean[r] = m
        rstd[r] = s
        _group_norm_row(x3[r], m, s, weight, bias, (r % G) * Cg, y3[r])


@jit_parallel
def group_norm_forward(x3, G, weight, bias, eps, y3, mean, rstd, n_chunks):
    """:func:`group_norm_forward_rows` over all N * G rows, ``n_chunks`` ranges in parallel."""
    R = x3.shape[0]
    for t in prange(n_chunks):
        lo, hi = _block(t, n_chunks, R)
        group_norm_forward_rows(x3, G, weight, bias, eps, y3, mean, rstd, lo, hi)


@jit_reassoc
def _channel_sums(dy, x, m):
    """One channel's 1-D ``dy``, ``x``: ``(sum(dy), sum(dy * (x - m)))`` in float64 (any order; centred:
    no cancellation when |mean| >> std)."""
    s = np.float64(0.0)
    p = np.float64(0.0)
    for i in range(x.shape[0]):
        d = dy[i]
        s += d
        p += d * (x[i] - m)
    return s, p


@jit
def _group_norm_row_dx(dy, x, m, scale, qt, kt, dx):
    """One channel: ``dx = scale * dy - qt * (x - m) + kt`` (x's dtype)."""
    for i in range(x.shape[0]):
        dx[i] = scale * dy[i] - qt * (x[i] - m) + kt


@jit
def group_norm_backward_rows(dy3, x3, G, mean, rstd, weight, dx3, sum_dy, sum_dy_xhat, lo, hi):
    """Rows ``lo:hi`` of ``x3 (N * G, Cg, L)``: per channel ``sum_dy[r, c] = sum(dy)`` and
    ``sum_dy_xhat[r, c] = sum(dy * xhat)`` (float64 ``(N * G, Cg)``: the parameter gradients' terms),
    then (``dx3`` not empty) ``dx = rstd * weight[c] * dy - q * (x - mean) + k`` with the row constants
    ``q = rstd^3 * sum(g * (x - mean)) / K``, ``k = -rstd * sum(g) / K`` (``g = dy * weight``), the row's
    second read hitting cache."""
    R, Cg, L = x3.shape
    dt = x3.dtype.type
    affine = weight.size > 0
    want_dx = dx3.size > 0
    K = Cg * L
    for r in range(lo, hi):
        c0 = (r % G) * Cg
        s = rstd[r]
        mt = dt(mean[r])
        sg = np.float64(0.0)
        sgx = np.float64(0.0)
        for c in range(Cg):
            a, p = _channel_sums(dy3[r, c], x3[r, c], mt)
            sum_dy[r, c] = a
            sum_dy_xhat[r, c] = p * s
            w = np.float64(weight[c0 + c]) if affine else 1.0
            sg += w * a
            sgx += w * p
        if want_dx:
            qt = dt(s * s * s * sgx / K)
            kt = dt(-s * sg / K)
            for c in range(Cg):
                scale = dt(s * weight[c0 + c]) if affine else dt(s)
                _group_norm_row_dx(dy3[r, c], x3[r, c], mt, scale, qt, kt, dx3[r, c])


@jit_parallel
def group_norm_backward(dy3, x3, G, mean, rstd, weight, dx3, sum_dy, sum_dy_xhat, n_chunks):
    """:func:`group_norm_backward_rows` over all N * G rows, ``n_chunks`` ranges in parallel."""
    R = x3.shape[0]
    for t in prange(n_chunks):
        lo, hi = _block(t, n_chunks, R)
        group_norm_backward_rows(dy3, x3, G, mean, rstd, weight, dx3, sum_dy, sum_dy_xhat, lo, hi)
