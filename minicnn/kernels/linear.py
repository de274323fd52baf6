"""Fully connected layer kernels: ``y = x @ weight.T + bias`` and its gradients.

The matrix products run inside Numba (``np.dot`` = scipy's BLAS on one thread, see
``minicnn._config.kernel_blas_single_threaded``, which callers run first), one block of rows
(samples) per Numba thread, so a training step uses one thread pool only. Row blocks write disjoint
rows of ``y`` and ``dx``; the weight/bias gradients go to per-block buffers summed afterwards (no race).
Optional outputs: an empty array (size 0) means "not wanted".
"""
import numpy as np
from numba import prange

from .._config import jit, jit_parallel
from .common import _block, _u


@jit
def _add_to_rows(rows, v):
    """``rows[n, :] += v`` for every row of ``rows`` (R, F)."""
    F = v.shape[0]
    for n in range(rows.shape[0]):
        row = rows[n]
        for f in range(F):
            row[_u(f)] += v[_u(f)]


@jit
def _add_column_sums(rows, out):
    """``out += rows.sum(axis=0)`` for ``rows`` (R, F), row by row."""
    F = out.shape[0]
    for n in range(rows.shape[0]):
        row = rows[n]
        for f in range(F):
            out[_u(f)] += row[_u(f)]


@jit
def _add_block_parts(parts, f, out):
    """``out += parts[:, f].sum(axis=0)`` for ``parts`` (B, F, K), in block order."""
    K = out.shape[0]
    for b in range(parts.shape[0]):
        p = parts[b, f]
        for k in range(K):
            out[_u(k)] += p[_u(k)]


@jit_parallel
def linear_forward_kernel(x, weight, bias, n_blocks, y):
    """``y`` (N, F) = ``x`` (N, K) @ ``weight`` (F, K).T + ``bias`` (F,). Needs ``1 <= n_blocks <= N``."""
    N = y.shape[0]
    for b in prange(n_blocks):
        lo, hi = _block(b, n_blocks, N)
        yb = y[lo:hi]
        np.dot(x[lo:hi], weight.T, yb)
        _add_to_rows(yb, bias)


@jit_parallel
def linear_backward_kernel(dy, x, weight, n_blocks, weight_parts, bias_parts, weight_grad, bias_grad, dx):
    """Add ``dy.T @ x`` (F, K) into ``weight_grad`` and the column sums of ``dy`` (N, F) into
    ``bias_grad``; ``dx`` (N, K) = ``dy @ weight``. Each output may be empty (not wanted); the
    scratch ``weight_parts`` (n_blocks, F, K) and ``bias_parts`` (n_blocks, F) then may be too.
    Needs ``1 <= n_blocks <= N``."""
    N, F = dy.shape
    want_weight, want_bias, want_input = weight_grad.size > 0, bias_grad.size > 0, dx.size > 0
    for b in prange(n_blocks):
        lo, hi = _block(b, n_blocks, N)
        dyb = dy[lo:hi]
        if want_weight:
            np.dot(dyb.T, x[lo:hi], weight_parts[b])
        if want_bias:
            bias_parts[b, :] = 0
            _add_column_sums(dyb, bias_parts[b])
        if want_input:
            np.dot(dyb, weight, dx[lo:hi])
    if want_weight:
        for f in prange(F):
            _add_block_parts(weight_parts, f, weight_grad[f])
    if want_bias:
        _add_column_sums(bias_parts, bias_grad)
