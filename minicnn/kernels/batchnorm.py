"""Batch normalisation kernels on ``x`` viewed as ``(N, C, L)`` (``L = H * W`` for NCHW input);
``minicnn.functional.batch_norm`` calls them.

Each kernel is a serial ``<name>_rows(..., lo, hi)`` over a range of channels (the statistics) or of
``(n, c)`` rows (the elementwise passes), and a parallel ``<name>(..., n_chunks)`` that splits them
into ``n_chunks`` contiguous ranges (``prange``). ``minicnn.functional`` runs the serial version below
``_config.ELEMENTWISE_PARALLEL_MIN_SIZE`` values: a LeNet-sized batch has ~1e5 values per layer, and
a Numba parallel region costs more to start than it saves at that size on a shared 2-core machine
(measured: 15 us to 20 ms per launch under load). Sums are kept in float64 whatever the array dtype,
and compiled with ``jit_reassoc`` (summed in any order), so that they vectorise instead of
serialising on the add latency.
"""
import numpy as np
from numba import prange

from .._config import jit, jit_parallel, jit_reassoc
from .common import _block


@jit_reassoc
def channel_mean_var_rows(x, mean, var, lo, hi):
    """Channels ``lo:hi`` of ``x (N, C, L)``: mean and biased variance over ``N`` and ``L`` (two passes:
    the mean, then the squared deviations from it), into float64 ``mean`` / ``var`` ``(C,)``."""
    N, _, L = x.shape
    count = N * L
    for c in range(lo, hi):
        s = np.float64(0.0)  # float64 sums also without the JIT
        for n in range(N):
            for i in range(L):
                s += x[n, c, i]
        m = s / count
        q = np.float64(0.0)
        for n in range(N):
            for i in range(L):
                d = x[n, c, i] - m
                q += d * d
        mean[c] = m
        var[c] = q / count


@jit_parallel
def channel_mean_var(x, mean, var, n_chunks):
    """:func:`channel_mean_var_rows` over all C channels, ``n_chunks`` ranges in parallel."""
    C = x.shape[1]
    for t in prange(n_chunks):
        lo, hi = _block(t, n_chunks, C)
        channel_mean_var_rows(x, mean, var, lo, hi)


@jit
def normalize_rows(x, mean, scale, shift, y, lo, hi):
    """Rows ``p = n * C + c`` in ``lo:hi``: ``y[n, c, i] = (x[n, c, i] - mean[c]) * scale[c] + shift[c]``;
    per-channel arrays in x's dtype."""
    C, L = x.shape[1], x.shape[2]
    for p in range(lo, hi):
        n = p // C
        c = p - n * C
        m = mean[c]
        s = scale[c]
        b = shift[c]
        for i in range(L):
            y[n, c, i] = (x[n, c, i] - m) * s + b


@jit_parallel
def normalize(x, mean, scale, shift, y, n_chunks):
    """:func:`normalize_rows` over all N * C rows, ``n_chunks`` ranges in parallel."""
    rows = x.shape[0] * x.shape[1]
    for t in prange(n_chunks):
        lo, hi = _block(t, n_chunks, rows)
        normalize_rows(x, mean, scale, shift, y, lo, hi)


@jit_reassoc
def backward_sums_rows(dy, x, mean, invstd, sum_dy, sum_dy_xhat, lo, hi):
    """Channels ``lo:hi``: ``sum(dy)`` and ``sum(dy * xhat)`` with ``xhat = (x - mean) * invstd`` (float64,
    summed in any order)."""
    N, _, L = x.shape
    for c in range(lo, hi):
        m = mean[c]
        s = np.float64(0.0)
        t = np.float64(0.0)
        for n in range(N):
            for i in range(L):
                g = dy[n, c, i]
                s += g
                t += g * (x[n, c, i] - m)
        sum_dy[c] = s
        sum_dy_xhat[c] = t * invstd[c]


@jit_parallel
def backward_sums(dy, x, mean, invstd, sum_dy, sum_dy_xhat, n_chunks):
    """:func:`backward_sums_rows` over all C channels, ``n_chunks`` ranges in parallel."""
    C = x.shape[1]
    for t in prange(n_chunks):
        lo, hi = _block(t, n_chunks, C)
        backward_sums_rows(dy, x, mean, invstd, sum_dy, sum_dy_xhat, lo, hi)


@jit
def backward_input_rows(dy, x, mean, scale, dy_mean, slope, dx, lo, hi):
    """Rows ``p = n * C + c`` in ``lo:hi``:
    ``dx[n, c, i] = scale[c] * (dy[n, c, i] - dy_mean[c] - (x[n, c, i] - mean[c]) * slope[c])``.

    Training mode (``M = N * L`` values per channel): ``scale = gamma * invstd``,
    ``dy_mean = sum(dy) / M``, ``slope = invstd * sum(dy * xhat) / M``, which is
    ``dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat))``.
    Eval mode (constant statistics): ``dy_mean = slope = 0``.
    """
    C, L = x.shape[1], x.shape[2]
    for p in range(lo, hi):
        n = p // C
        c = p - n * C
        m = mean[c]
        k = scale[c]
        a = dy_mean[c]
        b = slope[c]
        for i in range(L):
            dx[n, c, i] = k * (dy[n, c, i] - a - (x[n, c, i] - m) * b)


@jit_parallel
def backward_input(dy, x, mean, scale, dy_mean, slope, dx, n_chunks):
    """:func:`backward_input_rows` over all N * C rows, ``n_chunks`` ranges in parallel."""
    rows = x.shape[0] * x.shape[1]
    for t in prange(n_chunks):
        lo, hi = _block(t, n_chunks, rows)
        backward_input_rows(dy, x, mean, scale, dy_mean, slope, dx, lo, hi)
