"""Channel dropout (PyTorch's ``dropout2d``): in training, zero each whole channel ``x[n, c]`` with
probability ``p`` and scale the others by ``1 / (1 - p)``; otherwise the identity.

Shapes: ``x`` (N, C, H, W), float32 or float64; the output has its shape. The mask is drawn from
``rng`` as ``nn.Dropout`` draws it: None uses minicnn's default generator (``minicnn.manual_seed``
fixes it), an int seeds a new Generator, or pass a ``numpy.random.Generator``.
"""
from typing import NamedTuple, Optional, Tuple

import numpy as np

from .. import _validate as V
from ..kernels.channel import scale_planes
from ..random import as_rng


class Dropout2dCtx(NamedTuple):
    scale: Optional[np.ndarray]   # (N, C): 0 or 1 / (1 - p) per channel; None: the identity was applied
    shape: Tuple[int, int, int, int]
    dtype: np.dtype


def dropout2d(x, p=0.5, training=True, rng=None):
    """Channel dropout, the forward alone: ``y`` (N, C, H, W)."""
    return dropout2d_forward(x, p, training, rng)[0]


def dropout2d_forward(x, p=0.5, training=True, rng=None):
    """Channel dropout -> ``(y, ctx)``; ``p = 1`` zeroes everything (output and gradient), as PyTorch."""
    x = V.float_input("input", x, 4, "(N, C, H, W)")
    p = V.real("p", p, 0.0, 1.0)
    if not V.boolean("training", training) or p == 0.0:
        return x.copy(), Dropout2dCtx(None, x.shape, x.dtype)
    N, C = x.shape[:2]
    if p == 1.0:
        scale = np.zeros((N, C), dtype=x.dtype)
    else:
        keep = as_rng(rng).random((N, C), dtype=x.dtype) >= p
        scale = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    y = np.empty_like(x)
    scale_planes(x, scale, y)
    return y, Dropout2dCtx(scale, x.shape, x.dtype)


def dropout2d_backward(dy, ctx):
    """``dx`` (N, C, H, W): ``dy`` scaled by the forward's per-channel factors."""
    dy = V.grad_array("dy", dy, ctx.shape, ctx.dtype)
    if ctx.scale is None:
        return dy.copy()
    dx = np.empty_like(dy)
    scale_planes(dy, ctx.scale, dx)
    return dx
