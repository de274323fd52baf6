"""Softmax and log-softmax along one axis, forward and backward.

The array is viewed as ``(O, K, I)``: ``K`` is the softmax axis, ``O`` the axes before it, ``I`` those
after it (``I = 1`` for the last axis, where each row is contiguous). One row is the ``K`` values at
one ``(o, i)``. A serial ``_<name>_rows(..., lo, hi)`` over a range of rows (called directly for
small inputs) and a parallel ``_<name>(..., n_chunks)`` splitting the rows into ``n_chunks``
contiguous ranges. Each row is
shifted by its maximum before ``exp`` (log-sum-exp), so any finite input gives a finite result; the
sums are float64 (``K`` can be large, and the log-softmax backward subtracts ``exp(y) * sum(dy)``).
"""
import numpy as np
from numba import prange

from .._config import jit, jit_parallel
from .common import _block
from .loss import _row_max, _softmax_row


@jit
def _softmax_slice(z, y, log):
    """One row ``z`` (a 1-D view, strided when the axis is not the last): ``y = softmax(z)`` or, with
    ``log``, ``y = z - max - log(sum(exp(z - max)))``."""
    top = _row_max(z)
    log_total, _ = _softmax_row(z, top, y)
    if log:
        shift = top + log_total
        for k in range(z.shape[0]):
            y[k] = z[k] - shift


@jit
def _softmax_backward_slice(g, y, dx, log):
    """One row (1-D views): softmax ``dx = y * (g - sum(g * y))``; log-softmax ``dx = g - exp(y) * sum(g)``."""
    K = y.shape[0]
    acc = np.float64(0.0)
    if log:
        for k in range(K):
            acc += g[k]
        for k in range(K):
            dx[k] = g[k] - np.exp(y[k]) * acc
    else:
        for k in range(K):
            acc += g[k] * y[k]
        for k in range(K):
            dx[k] = y[k] * (g[k] - acc)


@jit
def softmax_forward_rows(x, y, log, lo, hi):
    """Rows ``r = o * I + i`` in ``lo:hi`` of ``x (O, K, I)`` into ``y``; ``log`` selects log-softmax."""
    I = x.shape[2]
    for r in range(lo, hi):
        o = r // I
        i = r - o * I
        _softmax_slice(x[o, :, i], y[o, :, i], log)


@jit_parallel
def softmax_forward(x, y, log, n_chunks):
    """:func:`softmax_forward_rows` over all O * I rows, ``n_chunks`` ranges in parallel."""
    rows = x.shape[0] * x.shape[2]
    for t in prange(n_chunks):
        lo, hi = _block(t, n_chunks, rows)
        softmax_forward_rows(x, y, log, lo, hi)


@jit
def softmax_backward_rows(dy, y, dx, log, lo, hi):
    """Rows ``lo:hi``: the input gradient from the output ``y`` (all ``(O, K, I)``)."""
    I = y.shape[2]
    for r in range(lo, hi):
        o = r // I
        i = r - o * I
        _softmax_backward_slice(dy[o, :, i], y[o, :, i], dx[o, :, i], log)


@jit_parallel
def softmax_backward(dy, y, dx, log, n_chunks):
    """:func:`softmax_backward_rows` over all O * I rows, ``n_chunks`` ranges in parallel."""
    rows = y.shape[0] * y.shape[2]
    for t in prange(n_chunks):
        lo, hi = _block(t, n_chunks, rows)
        softmax_backward_rows(dy, y, dx, log, lo, hi)
