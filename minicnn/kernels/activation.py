"""ReLU forward and backward, elementwise on arrays of any shape (float32 or float64).

The backward pass uses the forward *output*: ``y > 0`` exactly where ``x > 0``, so no mask is kept.
Serial kernels for small arrays: the work is memory-bound, a single thread already runs 3-5x faster
than ``np.maximum(x, 0)``, and a parallel region's start-up cost exceeds its gain below about 1e5
values; above ``PARALLEL_MIN_SIZE`` the layer uses the parallel versions (measured on an idle 2-core
machine, float32: 3e5 values 38/56 us serial forward/backward against 29/43 us parallel; 1.2e6 values
164/350 us against 100/144 us).
"""
import numpy as np
from numba import prange

from .._config import jit, jit_parallel


@jit
def _relu_forward(x, y):
    """``y = max(x, 0)`` on flat arrays; NaN stays NaN (as in PyTorch)."""
    for i in range(x.size):
        v = x[i]
        if v <= 0:
            y[i] = 0
        else:
            y[i] = v


@jit
def _relu_backward(dy, y, dx):
    """``dx = dy * (y > 0)`` on flat arrays (gradient 0 at 0, as PyTorch)."""
    for i in range(dy.size):
        if y[i] > 0:
            dx[i] = dy[i]
        else:
            dx[i] = 0


def _check(name, a, dtype=None, shape=None):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {a.dtype}")
    if shape is not None and a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")


def relu_forward(x, out=None):
    """``max(x, 0)`` for a float32/float64 array ``x`` of any shape; ``out`` (same shape and dtype) may be ``x``."""
    _check("x", x)
    if out is None:
        out = np.empty_like(x)
    _check("out", out, x.dtype, x.shape)
    _relu_forward(x.reshape(-1), out.reshape(-1))
    return out


def relu_backward(dy, y, out=None):
    """Input gradient of ReLU from the upstream gradient ``dy`` and the forward output ``y`` (same shape)."""
    _check("y", y)
    _check("dy", dy, y.dtype, y.shape)
    if out is None:
        out = np.empty_like(dy)
    _check("out", out, y.dtype, y.shape)
    _relu_backward(dy.reshape(-1), y.reshape(-1), out.reshape(-1))
    return out


# Parallel versions for large arrays (e.g. LeNet's first ReLU: 0.3-1.2 M values at batch 64-256): one
# contiguous chunk per thread.
PARALLEL_MIN_SIZE = 1 << 17


@jit_parallel
def _relu_forward_parallel(x, y, n_chunks):
    """:func:`_relu_forward` split into ``n_chunks`` contiguous chunks, run in parallel."""
    size = x.size
    for t in prange(n_chunks):
        lo, hi = t * size // n_chunks, (t + 1) * size // n_chunks
        _relu_forward(x[lo:hi], y[lo:hi])


@jit_parallel
def _relu_backward_parallel(dy, y, dx, n_chunks):
    """:func:`_relu_backward` split into ``n_chunks`` contiguous chunks, run in parallel."""
    size = dy.size
    for t in prange(n_chunks):
        lo, hi = t * size // n_chunks, (t + 1) * size // n_chunks
        _relu_backward(dy[lo:hi], y[lo:hi], dx[lo:hi])
