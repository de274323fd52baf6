"""Per-channel kernels on NCHW arrays: ``Dropout2d`` scales whole channels."""
from numba import prange

from .._config import jit_parallel
from .pool import _plane


@jit_parallel
def scale_planes(x, scale, y):
    """``y[n, c] = x[n, c] * scale[n, c]`` for ``x`` and ``y`` (N, C, H, W), ``scale`` (N, C): Dropout2d's
    forward and backward (``scale`` is 0 or ``1 / (1 - p)`` per channel)."""
    N, C, H, W = x.shape
    for p in prange(N * C):
        n, c = _plane(p, C)
        s = scale[n, c]
        xf, yf = x[n, c].reshape(H * W), y[n, c].reshape(H * W)
        for i in range(H * W):
            yf[i] = xf[i] * s
