"""Pooling: max, average, adaptive average / max, and max unpooling, with PyTorch's arguments and rules.

Shapes: input ``x`` (N, C, H, W), float32 or float64 (other floats cast); output (N, C, OH, OW) with
``OH = floor_or_ceil((H + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1`` (ceil with
``ceil_mode``, where the last window must start inside the input or the left padding), likewise OW.
``kernel_size``, ``stride`` (None: the kernel size), ``padding`` and ``dilation`` are ints or
(h, w) pairs, with ``0 <= padding <= kernel_size // 2`` as PyTorch.

Max pooling pads with -inf, sends each window's gradient to its FIRST maximum (row-major window
order) and propagates NaN as PyTorch. Its indices are flat per-plane positions ``h * W + w``
(PyTorch's); ``return_indices=True`` gives them as int64, as PyTorch does.
"""
from typing import NamedTuple, Tuple

import numpy as np

from .. import _validate as V
from ..kernels import pool as K

class MaxPool2dCtx(NamedTuple):
    """What max pooling's (and adaptive max pooling's) backward needs."""
    indices: np.ndarray        # (N, C, OH, OW) flat plane index of each window's maximum (int32, or int64)
    input_shape: Tuple[int, int, int, int]
    dtype: np.dtype


class AvgPool2dCtx(NamedTuple):
    """What average pooling's backward needs: the geometry and the divisor rule."""
    input_shape: Tuple[int, int, int, int]
    dtype: np.dtype
    output_shape: Tuple[int, int, int, int]
    geometry: tuple                                  # the kernels' (kh, kw, sh, sw, ph, pw, dh, dw, OH, OW)
    count_include_pad: bool
    divisor_override: int                            # 0: none


class AdaptiveAvgPool2dCtx(NamedTuple):
    input_shape: Tuple[int, int, int, int]
    dtype: np.dtype
    output_shape: Tuple[int, int, int, int]


class MaxUnpool2dCtx(NamedTuple):
    indices: np.ndarray        # (N, C, H, W) where each input element was written in the output plane
    input_shape: Tuple[int, int, int, int]
    dtype: np.dtype
    output_shape: Tuple[int, int, int, int]


# -- max pooling ----------------------------------------------------------------------------------------
def _max_pool_setup(x, kernel_size, stride, padding, dilation, ceil_mode, index_dtype):
    """(x, output shape, geometry tuple), validated."""
    kernel, stride, padding, dilation = V.pool_params(kernel_size, stride, padding, dilation)
    x = V.pool_input("input", x, index_dtype)
    g = V.pool_geometry(x.shape, kernel, stride, padding, dilation, ceil_mode)
    return x, x.shape[:2] + g[8:], g


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling, the forward alone: ``y`` (N, C, OH, OW), or ``(y, indices)`` (int64) with
    ``return_indices``. Without indices the maxima are found without recording their positions
    (faster; nothing is kept for a backward)."""
    if V.boolean("return_indices", return_indices):
        y, ctx = max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)
        return y, ctx.indices
    x, shape, geometry = _max_pool_setup(x, kernel_size, stride, padding, dilation, ceil_mode, None)
    y = np.empty(shape, dtype=x.dtype)
    whole_2x2 = K.is_whole_2x2(geometry, x.shape[2], x.shape[3])
    (K.max_pool2d_values_2x2 if whole_2x2 else K.max_pool2d_values)(x, geometry, y)
    return y


def max_pool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling -> ``(y, ctx)``; ``ctx.indices`` (N, C, OH, OW) are the flat plane positions of the
    maxima: ``V.POOL_INDEX_DTYPE`` (int32, less memory traffic), or PyTorch's int64 with
    ``return_indices``."""
    index_dtype = np.int64 if V.boolean("return_indices", return_indices) else V.POOL_INDEX_DTYPE
    x, shape, geometry = _max_pool_setup(x, kernel_size, stride, padding, dilation, ceil_mode, index_dtype)
    y = np.empty(shape, dtype=x.dtype)
    indices = np.empty(shape, dtype=index_dtype)
    whole_2x2 = K.is_whole_2x2(geometry, x.shape[2], x.shape[3])
    (K.max_pool2d_forward_2x2 if whole_2x2 else K.max_pool2d_forward)(x, geometry, y, indices)
    return y, MaxPool2dCtx(indices, x.shape, x.dtype)


def max_pool2d_backward(dy, ctx):
    """``dx`` (N, C, H, W): zero except that each window's ``dy`` (N, C, OH, OW) is added at its maximum."""
    dy = V.grad_array("dy", dy, ctx.indices.shape, ctx.dtype)
    dx = np.empty(ctx.input_shape, dtype=ctx.dtype)
    K.max_pool2d_backward(dy, ctx.indices, dx)
    return dx


# -- average pooling ------------------------------------------------------------------------------------
def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Average pooling, the forward alone: ``y`` (N, C, OH, OW). Each window's sum is divided by
    ``divisor_override`` if given, else by the window's size clipped to the padded input
    (``count_include_pad=True``: padded zeros count) or to the input (False), as PyTorch."""
    return avg_pool2d_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)[0]


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                       divisor_override=None):
    """Average pooling -> ``(y, ctx)``; arguments as :func:`avg_pool2d`."""
    kernel, stride, padding, dilation = V.pool_params(kernel_size, stride, padding)
    divisor = V.avg_pool_divisor(divisor_override) or 0
    x = V.pool_input("input", x)
    g = V.pool_geometry(x.shape, kernel, stride, padding, dilation, ceil_mode)
    shape = x.shape[:2] + g[8:]
    y = np.empty(shape, dtype=x.dtype)
    ctx = AvgPool2dCtx(x.shape, x.dtype, shape, g, V.boolean("count_include_pad", count_include_pad), divisor)
    K.avg_pool2d_forward(x, g, ctx.count_include_pad, divisor, y)
    return y, ctx


def avg_pool2d_backward(dy, ctx):
    """``dx`` (N, C, H, W): each input element gathers ``dy / divisor`` from every window covering it."""
    dy = V.grad_array("dy", dy, ctx.output_shape, ctx.dtype)
    dx = np.empty(ctx.input_shape, dtype=ctx.dtype)
    K.avg_pool2d_backward(dy, ctx.geometry, ctx.count_include_pad, ctx.divisor_override, dx)
    return dx


# -- adaptive pooling -----------------------------------------------------------------------------------
def _adaptive_setup(x, output_size, index_dtype=None):
    x = V.pool_input("input", x, index_dtype)
    out = V.adaptive_output_size(output_size, x.shape)
    return x, x.shape[:2] + out


def adaptive_avg_pool2d(x, output_size):
    """Adaptive average pooling, the forward alone: ``y`` (N, C, OH, OW) for ``output_size`` (an int, or
    a pair of ints or None: the input's size). Window ``o`` of ``O`` over ``S`` covers
    ``[floor(o * S / O), ceil((o + 1) * S / O))`` (PyTorch's rule; windows overlap when O does not
    divide S); output 1x1 is global average pooling, one pass over each plane."""
    return adaptive_avg_pool2d_forward(x, output_size)[0]


def adaptive_avg_pool2d_forward(x, output_size):
    """Adaptive average pooling -> ``(y, ctx)``; arguments as :func:`adaptive_avg_pool2d`."""
    x, shape = _adaptive_setup(x, output_size)
    y = np.empty(shape, dtype=x.dtype)
    if shape[2:] == (1, 1):  # global average pooling
        K.global_avg_pool2d_forward(x.reshape(-1), x.shape[2] * x.shape[3], y.reshape(-1))
    else:
        K.adaptive_avg_pool2d_forward(x, y)
    return y, AdaptiveAvgPool2dCtx(x.shape, x.dtype, shape)


def adaptive_avg_pool2d_backward(dy, ctx):
    """``dx`` (N, C, H, W): each window spreads ``dy / its size`` over its elements."""
    dy = V.grad_array("dy", dy, ctx.output_shape, ctx.dtype)
    dx = np.empty(ctx.input_shape, dtype=ctx.dtype)
    if ctx.output_shape[2:] == (1, 1):
        K.global_avg_pool2d_backward(dy.reshape(-1), dx.shape[2] * dx.shape[3], dx.reshape(-1))
    else:
        K.adaptive_avg_pool2d_backward(dy, dx)
    return dx


def adaptive_max_pool2d(x, output_size, return_indices=False):
    """Adaptive max pooling, the forward alone: ``y`` (N, C, OH, OW), or ``(y, indices)`` (int64) with
    ``return_indices``; windows as :func:`adaptive_avg_pool2d`, ties and NaN as :func:`max_pool2d`."""
    y, ctx = adaptive_max_pool2d_forward(x, output_size, return_indices)
    return (y, ctx.indices) if return_indices else y


def adaptive_max_pool2d_forward(x, output_size, return_indices=False):
    """Adaptive max pooling -> ``(y, ctx)``; ``ctx.indices`` as in :func:`max_pool2d_forward`."""
    index_dtype = np.int64 if V.boolean("return_indices", return_indices) else V.POOL_INDEX_DTYPE
    x, shape = _adaptive_setup(x, output_size, index_dtype)
    y = np.empty(shape, dtype=x.dtype)
    indices = np.empty(shape, dtype=index_dtype)
    K.adaptive_max_pool2d_forward(x, y, indices)
    return y, MaxPool2dCtx(indices, x.shape, x.dtype)


adaptive_max_pool2d_backward = max_pool2d_backward
"""``dx`` (N, C, H, W) of adaptive max pooling: each window's ``dy`` added at its maximum (as max pooling)."""


# -- max unpooling --------------------------------------------------------------------------------------
def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Max unpooling, the forward alone (PyTorch's ``F.max_unpool2d``): ``y`` (N, C, OH, OW), zero except
    ``x[n, c].flat[q]`` at ``y[n, c].flat[indices[n, c].flat[q]]``. ``indices`` (N, C, H, W) come from
    ``max_pool2d(..., return_indices=True)``; the output size is ``(H - 1) * stride - 2 * padding +
    kernel_size`` or ``output_size`` ((OH, OW) or (N, C, OH, OW), within one stride of that)."""
    return max_unpool2d_forward(x, indices, kernel_size, stride, padding, output_size)[0]


def max_unpool2d_forward(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Max unpooling -> ``(y, ctx)``; arguments as :func:`max_unpool2d`."""
    kernel = V.pair("kernel_size", kernel_size, minimum=1)
    stride = kernel if stride is None else V.pair("stride", stride, minimum=1)
    padding = V.pair("padding", padding, minimum=0)
    x = V.pool_input("input", x)
    out = V.unpool_output_size(x.shape, kernel, stride, padding, output_size)
    indices = V.pool_indices("indices", indices, x.shape, out[0] * out[1])
    shape = x.shape[:2] + out
    y = np.empty(shape, dtype=x.dtype)
    K.max_unpool2d_forward(x, indices, y)
    return y, MaxUnpool2dCtx(indices, x.shape, x.dtype, shape)


def max_unpool2d_backward(dy, ctx):
    """``dx`` (N, C, H, W): each input element's gradient is ``dy`` (N, C, OH, OW) where it was written."""
    dy = V.grad_array("dy", dy, ctx.output_shape, ctx.dtype)
    dx = np.empty(ctx.input_shape, dtype=ctx.dtype)
    K.max_unpool2d_backward(dy, ctx.indices, dx)
    return dx
