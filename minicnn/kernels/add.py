"""Elementwise sum of two same-shape arrays, the add of residual connections and of branch gradients.

Memory-bound like ReLU: serial below ``_config.ELEMENTWISE_PARALLEL_MIN_SIZE`` values, split into one
contiguous chunk per Numba thread from there on. The threshold was measured on ReLU (see ``_config``);
the add reads two arrays instead of one and was not measured separately.
"""
import numba
import numpy as np
from numba import prange

from .._config import ELEMENTWISE_PARALLEL_MIN_SIZE, jit, jit_parallel


@jit
def _add(a, b, out):
    """``out = a + b`` on flat arrays of one dtype (``out`` may be ``a`` or ``b``)."""
    for i in range(out.size):
        out[i] = a[i] + b[i]


@jit_parallel
def _add_parallel(a, b, out, n_chunks):
    """:func:`_add` split into ``n_chunks`` contiguous chunks, run in parallel."""
    size = out.size
    for t in prange(n_chunks):
        lo, hi = t * size // n_chunks, (t + 1) * size // n_chunks
        _add(a[lo:hi], b[lo:hi], out[lo:hi])


def add(a, b, out=None):
    """``a + b`` for two arrays of the same shape, into ``out`` (a new array when None; ``out`` may be
    ``a`` or ``b`` to add in place). Same-dtype float32/float64 C-contiguous operands run in a compiled
    kernel; anything else (mixed dtypes, views) falls back to ``numpy.add`` with NumPy's type promotion.
    Raises ``ValueError`` naming both shapes when they differ."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"cannot add arrays of shapes {a.shape} and {b.shape}: the shapes must be equal")
    fast = (a.dtype == b.dtype and a.dtype in (np.float32, np.float64) and a.flags.c_contiguous
            and b.flags.c_contiguous)
    if out is None:
        out = np.empty(a.shape, np.result_type(a, b))
    fast = fast and out.dtype == a.dtype and out.shape == a.shape and out.flags.c_contiguous
    if not fast:
        return np.add(a, b, out=out)
    if out.size >= ELEMENTWISE_PARALLEL_MIN_SIZE:
        _add_parallel(a.reshape(-1), b.reshape(-1), out.reshape(-1), numba.get_num_threads())
    else:
        _add(a.reshape(-1), b.reshape(-1), out.reshape(-1))
    return out
