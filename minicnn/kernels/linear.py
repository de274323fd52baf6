"""Fully connected layer kernels: ``y = x @ weight.T + bias`` and its gradients.

The matrix products run inside Numba (``np.dot`` = scipy's BLAS on one thread, see
``minicnn._config.kernel_blas_single_threaded``), one block of rows (samples) per Numba thread, so a
training step uses one thread pool only. Row blocks write disjoint rows of ``y`` and ``dx``; the
weight/bias gradients go to per-block buffers summed afterwards (no race).
"""
import numpy as np
from numba import prange

from .._config import jit_parallel
from .im2col import _u


@jit_parallel
def _linear_forward(x, weight, bias, n_blocks, y):
    """``y`` (N, F) = ``x`` (N, K) @ ``weight`` (F, K).T + ``bias`` (F,). Needs ``1 <= n_blocks <= N``."""
    N, F = y.shape
    for b in prange(n_blocks):
        lo, hi = b * N // n_blocks, (b + 1) * N // n_blocks
        yb = y[lo:hi]
        np.dot(x[lo:hi], weight.T, yb)
        for n in range(hi - lo):
            row = yb[n]
            for f in range(F):
                row[_u(f)] += bias[_u(f)]


@jit_parallel
def _linear_backward(dy, x, weight, n_blocks, weight_parts, bias_parts, weight_grad, bias_grad,
                     want_input, dx):
    """Add ``dy.T @ x`` (F, K) into ``weight_grad`` and the column sums of ``dy`` (N, F) into
    ``bias_grad`` if it has F entries; if ``want_input``, ``dx`` (N, K) = ``dy @ weight``.
    ``weight_parts`` (n_blocks, F, K) and ``bias_parts`` (n_blocks, F) are scratch. Needs
    ``1 <= n_blocks <= N``."""
    N, F = dy.shape
    K = x.shape[1]
    for b in prange(n_blocks):
        lo, hi = b * N // n_blocks, (b + 1) * N // n_blocks
        dyb = dy[lo:hi]
        np.dot(dyb.T, x[lo:hi], weight_parts[b])
        bp = bias_parts[b]
        bp[:] = 0
        for n in range(hi - lo):
            row = dyb[n]
            for f in range(F):
                bp[_u(f)] += row[_u(f)]
        if want_input:
            np.dot(dyb, weight, dx[lo:hi])
    for f in prange(F):
        g = weight_grad[f]
        for b in range(n_blocks):
            p = weight_parts[b, f]
            for k in range(K):
                g[_u(k)] += p[_u(k)]
    if bias_grad.shape[0] == F:
        for b in range(n_blocks):
            for f in range(F):
                bias_grad[f] += bias_parts[b, f]
