"""Elementwise sum of two flat same-dtype arrays (``minicnn.functional.add``): the add of residual
connections and of branch gradients.

Memory-bound like ReLU: serial below ``_config.ELEMENTWISE_PARALLEL_MIN_SIZE`` values, split into one
contiguous chunk per Numba thread from there on. The threshold was measured on ReLU (see ``_config``);
the add reads two arrays instead of one and was not measured separately.
"""
from numba import prange

from .._config import jit, jit_parallel
from .common import _block


@jit
def add_flat(a, b, out):
    """``out = a + b`` on flat arrays of one dtype (``out`` may be ``a`` or ``b``)."""
    for i in range(out.size):
        out[i] = a[i] + b[i]


@jit_parallel
def add_flat_parallel(a, b, out, n_chunks):
    """:func:`add_flat` split into ``n_chunks`` contiguous chunks, run in parallel."""
    size = out.size
    for t in prange(n_chunks):
        lo, hi = _block(t, n_chunks, size)
        add_flat(a[lo:hi], b[lo:hi], out[lo:hi])
