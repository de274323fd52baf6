"""ReLU kernels, elementwise on flat arrays (float32 or float64); ``minicnn.functional.relu`` calls them.

The backward pass uses the forward *output*: ``y > 0`` exactly where ``x > 0``, so no mask is kept.
The serial kernels serve small arrays: the work is memory-bound and a single thread already runs
3-5x faster than ``np.maximum(x, 0)``; from ``_config.ELEMENTWISE_PARALLEL_MIN_SIZE`` values on the
parallel versions (one contiguous chunk per thread) are used, e.g. for LeNet's first ReLU
(0.3-1.2 M values at batch 64-256).
"""
from numba import prange

from .._config import jit, jit_parallel
from .common import _block


@jit
def relu_forward_kernel(x, y):
    """``y = max(x, 0)`` on flat arrays; NaN stays NaN (as in PyTorch)."""
    for i in range(x.size):
        v = x[i]
        if v <= 0:
            y[i] = 0
        else:
            y[i] = v


@jit
def relu_backward_kernel(dy, y, dx):
    """``dx = dy * (y > 0)`` on flat arrays (gradient 0 at 0, as PyTorch)."""
    for i in range(dy.size):
        if y[i] > 0:
            dx[i] = dy[i]
        else:
            dx[i] = 0


@jit_parallel
def relu_forward_parallel_kernel(x, y, n_chunks):
    """:func:`relu_forward_kernel` split into ``n_chunks`` contiguous chunks, run in parallel."""
    size = x.size
    for t in prange(n_chunks):
        lo, hi = _block(t, n_chunks, size)
        relu_forward_kernel(x[lo:hi], y[lo:hi])


@jit_parallel
def relu_backward_parallel_kernel(dy, y, dx, n_chunks):
    """:func:`relu_backward_kernel` split into ``n_chunks`` contiguous chunks, run in parallel."""
    size = dy.size
    for t in prange(n_chunks):
        lo, hi = _block(t, n_chunks, size)
        relu_backward_kernel(dy[lo:hi], y[lo:hi], dx[lo:hi])
