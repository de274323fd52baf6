"""Shape operations: ``flatten`` (PyTorch's ``torch.flatten``), ``flatten_forward`` -> ``(y, FlattenCtx)``,
``flatten_backward`` (a reshape back)."""
import math
from typing import NamedTuple

import numpy as np

from .._validate import float_input, grad_array, integer


class FlattenCtx(NamedTuple):
    """What ``flatten_backward`` needs: the input's ``x_shape``, the output's ``y_shape`` and ``dtype``."""
    x_shape: tuple
    y_shape: tuple
    dtype: np.dtype


def flatten_forward(x, start_dim=1, end_dim=-1):
    """Merge dimensions ``start_dim..end_dim`` (inclusive; negative ones count from the end) of ``x``
    into one: ``(N, C, H, W) -> (N, C*H*W)`` by default. ``y`` is a view of ``x`` (a reshape);
    returns ``(y, FlattenCtx)``."""
    x = float_input("x", x)
    start_arg, end_arg = integer("start_dim", start_dim), integer("end_dim", end_dim)
    nd = x.ndim
    start = start_arg + nd if start_arg < 0 else start_arg
    end = end_arg + nd if end_arg < 0 else end_arg
    if not (0 <= start < nd and 0 <= end < nd):
        raise ValueError(f"flatten(start_dim={start_arg}, end_dim={end_arg}) is out of range for a "
                         f"{nd}-D input of shape {x.shape}")
    if start > end:
        raise ValueError(f"flatten start_dim ({start_arg}) must not come after end_dim ({end_arg}) "
                         f"for input of shape {x.shape}")
    y = x.reshape(x.shape[:start] + (math.prod(x.shape[start:end + 1]),) + x.shape[end + 1:])
    return y, FlattenCtx(x.shape, y.shape, x.dtype)


def flatten(x, start_dim=1, end_dim=-1):
    """``x`` with dimensions ``start_dim..end_dim`` merged (see :func:`flatten_forward`)."""
    return flatten_forward(x, start_dim, end_dim)[0]


def flatten_backward(dy, ctx):
    """``dy`` (the output's shape) reshaped to the input's shape."""
    return grad_array("dy", dy, ctx.y_shape, ctx.dtype).reshape(ctx.x_shape)
