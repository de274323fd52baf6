"""Per-row normalisation kernels: LayerNorm, GroupNorm and InstanceNorm (GroupNorm with one channel
per group), forward and backward. ``minicnn.functional.layer_norm`` / ``group_norm`` /
``instance_norm`` call them.

Every one of these normalises ROWS that are contiguous in memory: LayerNorm's rows are the trailing
``normalized_shape`` values of each sample (``x`` viewed ``(R, D)``); GroupNorm's are the
``C / G * L`` values of one group of one sample (``x`` viewed ``(N * G, C / G * L)``, or
``(N, G, C / G, L)`` where the affine parameters are per channel). Each kernel is a serial
``_<name>_rows(..., lo, hi)`` over a range of rows (called directly for small inputs, where starting
a parallel region costs more than it saves) and a parallel ``_<name>(..., n_chunks)`` that splits the
rows into ``n_chunks`` contiguous ranges (``prange``), so no two threads write one value.

Statistics in ONE pass per row with float64 accumulators: ``sum(x - s)`` and ``sum((x - s)^2)`` with
the shift ``s = row[0]``, then ``var = E[(x-s)^2] - E[x-s]^2``. Why float64: a float32 running sum
over a row of 65536 values (LayerNorm over (64, 32, 32)) loses about log2(65536) = 16 of float32's 24
bits, and the one-pass variance subtracts two such sums; why the shift: it removes the row's offset
before squaring, so the subtraction does not cancel when ``|mean| >> std``. The reductions are
compiled with ``jit_reassoc`` (any summation order), so they vectorise instead of serialising on the
add latency.

Backward (standard closed form, ``K`` values per row, ``xhat = (x - mean) * rstd``, ``g = dy * weight``):
``dx = rstd * (g - mean(g) - xhat * mean(g * xhat))``; ``dweight = sum(dy * xhat)``, ``dbias = sum(dy)``
over the rows. An EMPTY output array means "not wanted" (its work is skipped).
"""
import numpy as np
from numba import prange

from .._config import jit, jit_parallel, jit_reassoc


@jit_reassoc
def _shifted_moments(row):
    """``(sum(row - s), sum((row - s)^2))`` in float64 with ``s = row[0]``, for a 1-D row of >= 1 values
    (summed in any order: ``jit_reassoc`` lets the loop vectorise)."""
    s = row[0]
    a = np.float64(0.0)
    q = np.float64(0.0)
    for i in range(row.shape[0]):
        d = np.float64(row[i] - s)
        a += d
        q += d * d
    return a, q


@jit
def row_mean_var_rows(x2, mean, var, lo, hi):
    """Rows ``lo:hi`` of ``x2 (R, K)``: ``mean[r]`` and the biased ``var[r]`` (float64 arrays ``(R,)``)."""
    K = x2.shape[1]
    for r in range(lo, hi):
        a, q = _shifted_moments(x2[r])
        d = a / K
        mean[r] = x2[r, 0] + d
        var[r] = max(q / K - d * d, 0.0)


@jit_parallel
def row_mean_var(x2, mean, var, n_chunks):
    """:func:`row_mean_var_rows` over all rows, ``n_chunks`` ranges in parallel."""
    R = x2.shape[0]
    for t in prange(n_chunks):
        row_mean_var_rows(x2, mean, var, t * R // n_chunks, (t + 1) * R // n_chunks)


# -- LayerNorm: x2 (R, D), weight / bias (D,) or empty -------------------------------------------------
@jit
def layer_norm_forward_rows(x2, mean, rstd, weight, bias, y2, lo, hi):
    """Rows ``lo:hi``: ``y = (x - mean[r]) * rstd[r] * weight[j] + bias[j]`` (no affine when ``weight`` is
    empty; ``mean``/``rstd`` in x's dtype)."""
    D = x2.shape[1]
    affine = weight.size > 0
    for r in range(lo, hi):
        m = mean[r]
        s = rstd[r]
        if affine:
            for j in range(D):
                y2[r, j] = (x2[r, j] - m) * s * weight[j] + bias[j]
        else:
            for j in range(D):
                y2[r, j] = (x2[r, j] - m) * s


@jit_parallel
def layer_norm_forward(x2, mean, rstd, weight, bias, y2, n_chunks):
    """:func:`layer_norm_forward_rows` over all rows, ``n_chunks`` ranges in parallel."""
    R = x2.shape[0]
    for t in prange(n_chunks):
        layer_norm_forward_rows(x2, mean, rstd, weight, bias, y2, t * R // n_chunks, (t + 1) * R // n_chunks)


@jit_reassoc
def _layer_norm_row_sums(dy, x, m, s, weight, dw, db):
    """One row: returns ``(sum(g), sum(g * xhat))`` (float64, summed in any order) and, when ``dw`` is not
    empty, adds ``dy * xhat`` into ``dw`` and ``dy`` into ``db`` (this chunk's rows)."""
    D = x.shape[0]
    affine = weight.size > 0
    want_dw = dw.size > 0
    sg = np.float64(0.0)
    sgx = np.float64(0.0)
    for j in range(D):
        xh = (x[j] - m) * s
        g = dy[j] * weight[j] if affine else dy[j]
        sg += g
        sgx += g * xh
        if want_dw:
            dw[j] += dy[j] * xh
            db[j] += dy[j]
    return sg, sgx


@jit
def layer_norm_backward_rows(dy2, x2, mean, rstd, weight, dx2, dw, db, lo, hi):
    """Rows ``lo:hi``: the input gradient into ``dx2`` (if not empty); ``dy * xhat`` and ``dy`` added into
    the float64 ``dw`` / ``db`` ``(D,)`` (empty: not wanted)."""
    D = x2.shape[1]
    affine = weight.size > 0
    want_dx = dx2.size > 0
    for r in range(lo, hi):
        m = mean[r]
        s = rstd[r]
        sg, sgx = _layer_norm_row_sums(dy2[r], x2[r], m, s, weight, dw, db)
        if want_dx:
            a = sg / D
            b = sgx / D
            for j in range(D):
                xh = (x2[r, j] - m) * s
                g = dy2[r, j] * weight[j] if affine else dy2[r, j]
                dx2[r, j] = s * (g - a - xh * b)


@jit_parallel
def layer_norm_backward(dy2, x2, mean, rstd, weight, dx2, dw_partial, db_partial, n_chunks):
    """:func:`layer_norm_backward_rows` over all rows, ``n_chunks`` ranges in parallel, range ``t``
    adding into ``dw_partial[t]`` / ``db_partial[t]`` (float64 ``(n_chunks, D)``, zeroed and summed over
    t by the caller, so threads never add into one entry; ``(n_chunks, 0)``: not wanted)."""
    R = x2.shape[0]
    for t in prange(n_chunks):
        layer_norm_backward_rows(dy2, x2, mean, rstd, weight, dx2, dw_partial[t], db_partial[t],
                                  t * R // n_chunks, (t + 1) * R // n_chunks)


# -- GroupNorm: x4 (N, G, Cg, L), weight / bias (G * Cg,) or empty ------------------------------------------
@jit
def group_norm_forward_rows(x4, mean, rstd, weight, bias, y4, lo, hi):
    """Rows ``r = n * G + g`` in ``lo:hi``: ``y[n, g, c, l] = (x - mean[n, g]) * rstd[n, g] * weight[g*Cg + c]
    + bias[g*Cg + c]`` (``mean``/``rstd`` ``(N, G)`` in x's dtype; no affine when ``weight`` is empty)."""
    N, G, Cg, L = x4.shape
    affine = weight.size > 0
    for r in range(lo, hi):
        n = r // G
        g = r - n * G
        m = mean[n, g]
        for c in range(Cg):
            scale = rstd[n, g] * weight[g * Cg + c] if affine else rstd[n, g]
            shift = bias[g * Cg + c] if affine else 0
            for i in range(L):
                y4[n, g, c, i] = (x4[n, g, c, i] - m) * scale + shift


@jit_parallel
def group_norm_forward(x4, mean, rstd, weight, bias, y4, n_chunks):
    """:func:`group_norm_forward_rows` over all N * G rows, ``n_chunks`` ranges in parallel."""
    rows = x4.shape[0] * x4.shape[1]
    for t in prange(n_chunks):
        group_norm_forward_rows(x4, mean, rstd, weight, bias, y4, t * rows // n_chunks,
                                 (t + 1) * rows // n_chunks)


@jit_reassoc
def group_norm_channel_sums_rows(dy4, x4, mean, sum_dy, sum_dy_xc, lo, hi):
    """Rows ``r = n * G + g`` in ``lo:hi``, per channel of the group (float64 ``(N, G * Cg)``, summed in any
    order): ``sum_dy = sum_l dy`` and ``sum_dy_xc = sum_l dy * (x - mean[n, g])`` (centred: no
    cancellation when |mean| >> std)."""
    N, G, Cg, L = x4.shape
    for r in range(lo, hi):
        n = r // G
        g = r - n * G
        m = mean[n, g]
        for c in range(Cg):
            s = np.float64(0.0)
            p = np.float64(0.0)
            for i in range(L):
                d = dy4[n, g, c, i]
                s += d
                p += d * (x4[n, g, c, i] - m)
            sum_dy[n, g * Cg + c] = s
            sum_dy_xc[n, g * Cg + c] = p


@jit_parallel
def group_norm_channel_sums(dy4, x4, mean, sum_dy, sum_dy_xc, n_chunks):
    """:func:`group_norm_channel_sums_rows` over all N * G rows, ``n_chunks`` ranges in parallel."""
    rows = x4.shape[0] * x4.shape[1]
    for t in prange(n_chunks):
        group_norm_channel_sums_rows(dy4, x4, mean, sum_dy, sum_dy_xc, t * rows // n_chunks,
                                      (t + 1) * rows // n_chunks)


@jit
def group_norm_backward_input_rows(dy4, x4, mean, rstd, weight, q, k, dx4, lo, hi):
    """Rows ``r = n * G + g`` in ``lo:hi``: ``dx = rstd * weight[c] * dy - q[n, g] * (x - mean[n, g]) + k[n, g]``,
    the closed form with the row constants ``q = rstd^3 * sum(g * (x - mean)) / K`` and
    ``k = -rstd * sum(g) / K``."""
    N, G, Cg, L = x4.shape
    affine = weight.size > 0
    for r in range(lo, hi):
        n = r // G
        g = r - n * G
        m = mean[n, g]
        a = q[n, g]
        b = k[n, g]
        for c in range(Cg):
            scale = rstd[n, g] * weight[g * Cg + c] if affine else rstd[n, g]
            for i in range(L):
                dx4[n, g, c, i] = scale * dy4[n, g, c, i] - a * (x4[n, g, c, i] - m) + b


@jit_parallel
def group_norm_backward_input(dy4, x4, mean, rstd, weight, q, k, dx4, n_chunks):
    """:func:`group_norm_backward_input_rows` over all N * G rows, ``n_chunks`` ranges in parallel."""
    rows = x4.shape[0] * x4.shape[1]
    for t in prange(n_chunks):
        group_norm_backward_input_rows(dy4, x4, mean, rstd, weight, q, k, dx4, t * rows // n_chunks,
                                        (t + 1) * rows // n_chunks)