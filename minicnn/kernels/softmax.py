"""Softmax and log-softmax along one axis, forward and backward.

The array is viewed as ``(O, K, I)``: ``K`` is the softmax axis, ``O`` the axes before it, ``I`` those
after it (``I = 1`` for the last axis, where each row is contiguous). One row is the ``K`` values at
one ``(o, i)``; rows are split into ``n_chunks`` contiguous ranges run in parallel. Each row is
shifted by its maximum before ``exp`` (log-sum-exp), so any finite input gives a finite result; the
sums are float64 (``K`` can be large, and the log-softmax backward subtracts ``exp(y) * sum(dy)``).
"""
import numpy as np
from numba import prange

from .._config import jit, jit_parallel


@jit
def _row_max(x, o, i):
    K = x.shape[1]
    top = x[o, 0, i]
    for k in range(1, K):
        if x[o, k, i] > top:
            top = x[o, k, i]
    return top


@jit
def _softmax_row(x, y, o, i, log):
    """One row: ``y = softmax(x)`` or, with ``log``, ``y = x - max - log(sum(exp(x - max)))``."""
    K = x.shape[1]
    top = _row_max(x, o, i)
    total = np.float64(0.0)
    for k in range(K):
        e = np.exp(x[o, k, i] - top)
        total += e
        if not log:
            y[o, k, i] = e
    if log:
        shift = top + np.log(total)
        for k in range(K):
            y[o, k, i] = x[o, k, i] - shift
    else:
        inv = 1.0 / total
        for k in range(K):
            y[o, k, i] *= inv


@jit
def _softmax_backward_row(dy, y, dx, o, i, log):
    """Softmax: ``dx = y * (dy - sum(dy * y))``; log-softmax: ``dx = dy - exp(y) * sum(dy)``."""
    K = y.shape[1]
    acc = np.float64(0.0)
    if log:
        for k in range(K):
            acc += dy[o, k, i]
        for k in range(K):
            dx[o, k, i] = dy[o, k, i] - np.exp(y[o, k, i]) * acc
    else:
        for k in range(K):
            acc += dy[o, k, i] * y[o, k, i]
        for k in range(K):
            dx[o, k, i] = y[o, k, i] * (dy[o, k, i] - acc)


@jit_parallel
def _softmax_forward(x, y, log, n_chunks):
    """Every row of ``x (O, K, I)`` into ``y``; ``log`` selects log-softmax."""
    O, K, I = x.shape
    rows = O * I
    for t in prange(n_chunks):
        for r in range(t * rows // n_chunks, (t + 1) * rows // n_chunks):
            o = r // I
            _softmax_row(x, y, o, r - o * I, log)


@jit_parallel
def _softmax_backward(dy, y, dx, log, n_chunks):
    """Input gradient from the output ``y`` (both ``(O, K, I)``)."""
    O, K, I = y.shape
    rows = O * I
    for t in prange(n_chunks):
        for r in range(t * rows // n_chunks, (t + 1) * rows // n_chunks):
            o = r // I
            _softmax_backward_row(dy, y, dx, o, r - o * I, log)
