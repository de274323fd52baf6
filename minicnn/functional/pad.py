"""Padding of the last two axes: ``F.pad`` (PyTorch's names, pad-tuple order and limits), forward and backward."""
from typing import NamedTuple

import numpy as np

from .._validate import float_input, grad_array, pad_arg
from ..kernels.pad import pad_backward as _pad_backward_kernel
from ..kernels.pad import pad_forward as _pad_forward_kernel
from ..kernels.pad import pad_index


class PadCtx(NamedTuple):
    """What :func:`pad_backward` needs: the input's shape and the two index maps."""
    input_shape: tuple
    rows: tuple  # (index (OH,), lo, hi) of kernels.pad.pad_index along the height
    cols: tuple  # the same along the width
    dtype: np.dtype


def pad_forward(x, pad, mode="constant", value=0.0):
    """Pad ``x`` (N, C, H, W): returns ``(y, ctx)`` with ``y`` (N, C, H + top + bottom, W + left + right).

    ``pad`` is PyTorch's tuple, last axis first: ``(left, right)`` or ``(left, right, top, bottom)``
    (ints; negative values crop). ``mode``: ``"constant"`` (``value``), ``"reflect"`` (the edge pixel
    not repeated; every pad smaller than its axis), ``"replicate"`` (the edge repeated) or
    ``"circular"`` (wrapped around; every pad at most its axis). Non-constant modes take 4 pads.
    """
    x = float_input("x", x, 4, "(N, C, H, W)")
    left, right, top, bottom, value = pad_arg(pad, mode, value, x.shape)
    rows = pad_index(x.shape[2], top, bottom, mode)
    cols = pad_index(x.shape[3], left, right, mode)
    y = np.empty(x.shape[:2] + (rows[0].shape[0], cols[0].shape[0]), x.dtype)
    _pad_forward_kernel(x, rows[0], cols[0], cols[1], cols[2], x.dtype.type(value), y)
    return y, PadCtx(x.shape, rows, cols, x.dtype)


def pad(x, pad, mode="constant", value=0.0):
    """The padded ``x`` (see :func:`pad_forward`), as ``torch.nn.functional.pad``."""
    return pad_forward(x, pad, mode, value)[0]


def pad_backward(dy, ctx):
    """``dx`` (N, C, H, W): ``dy`` (the padded shape) folded back onto the input, every output
    pixel's gradient added to the pixel it was read from (the constant's gradient is dropped)."""
    rows, cols = ctx.rows, ctx.cols
    dy = grad_array("dy", dy, ctx.input_shape[:2] + (rows[0].shape[0], cols[0].shape[0]), ctx.dtype)
    dx = np.empty(ctx.input_shape, ctx.dtype)
    _pad_backward_kernel(dy, rows[0], cols[0], cols[1], cols[2], dx)
    return dx
