"""Pooling layers with PyTorch's names and arguments: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d,
AdaptiveMaxPool2d, MaxUnpool2d. Each is one ``minicnn.functional`` call forward and one backward.

Pooling has no parameters and no dtype of its own: the output has the input's float dtype (float32 or
float64; float16 computes in float32). Window arguments are stored as (h, w) pairs.
"""
import numpy as np

from .. import _validate as V
from .. import functional as F
from ..grad_mode import is_grad_enabled
from .module import Module


def _show(p):
    """A (h, w) pair as PyTorch prints it when given an int: ``2`` for ``(2, 2)``."""
    return p[0] if p[0] == p[1] else p


class MaxPool2d(Module):
    """``MaxPool2d(kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False)``:
    the max over each window; padding is -inf; the first maximum in row-major window order wins ties
    (and NaN propagates), as in PyTorch. ``(N, C, H, W) -> (N, C, OH, OW)`` with ``OH =
    floor_or_ceil((H + 2*padding - dilation*(kernel_size-1) - 1) / stride) + 1`` (see
    ``minicnn.functional.pool``); with ``return_indices`` forward returns ``(y, indices)`` (int64).

    Backward routes each window's gradient to the element that won it (overlapping windows add).
    Under ``minicnn.no_grad()`` forward does not record the positions (1.8-2.4x faster for 2x2
    windows, measured), and neither does it in eval mode: there a backward is rare (saliency maps,
    adversarial inputs), so forward keeps ``x`` (by reference: change it in place and that backward
    is wrong) and backward finds the positions first. Gradients are the same in both modes.
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.dilation = V.pool_params(
            kernel_size, stride, padding, dilation)
        self.return_indices = V.boolean("return_indices", return_indices)
        self.ceil_mode = V.boolean("ceil_mode", ceil_mode)

    def _args(self):
        return self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode

    def forward(self, x):
        if not is_grad_enabled():
            return F.max_pool2d(x, *self._args(), return_indices=self.return_indices)
        if not self.training and not self.return_indices:
            y = F.max_pool2d(x, *self._args())
            self._save_ctx(x)  # the positions are found by backward, if it comes
            return y
        y, ctx = F.max_pool2d_forward(x, *self._args(), return_indices=self.return_indices)
        self._save_ctx(ctx)
        return (y, ctx.indices) if self.return_indices else y

    def backward(self, dy):
        ctx = self._pop_ctx()
        if isinstance(ctx, np.ndarray):  # the input of an eval-mode forward
            ctx = F.max_pool2d_forward(ctx, *self._args())[1]
        return F.max_pool2d_backward(dy, ctx)

    def extra_repr(self):
        return (f"kernel_size={_show(self.kernel_size)}, stride={_show(self.stride)}, "
                f"padding={_show(self.padding)}, dilation={_show(self.dilation)}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """``AvgPool2d(kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
    divisor_override=None)``: the mean over each window, as PyTorch (each window's sum divided by
    ``divisor_override``, else by its size clipped to the padded input, or to the input when
    ``count_include_pad=False``). ``(N, C, H, W) -> (N, C, OH, OW)`` as MaxPool2d (no dilation)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        self.kernel_size, self.stride, self.padding, _ = V.pool_params(kernel_size, stride, padding)
        self.ceil_mode = V.boolean("ceil_mode", ceil_mode)
        self.count_include_pad = V.boolean("count_include_pad", count_include_pad)
        self.divisor_override = V.avg_pool_divisor(divisor_override)

    def forward(self, x):
        y, ctx = F.avg_pool2d_forward(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                                      self.count_include_pad, self.divisor_override)
        self._save_ctx(ctx)
        return y

    def backward(self, dy):
        return F.avg_pool2d_backward(dy, self._pop_ctx())

    def extra_repr(self):
        return f"kernel_size={_show(self.kernel_size)}, stride={_show(self.stride)}, padding={_show(self.padding)}"


class _AdaptivePool2d(Module):
    """``output_size``: an int, or a pair of ints or None (None: the input's size), as PyTorch."""

    def __init__(self, output_size):
        super().__init__()
        V.adaptive_output_size(output_size, (1, 1, 1, 1))  # checked now; None entries resolve per input
        self.output_size = output_size

    def extra_repr(self):
        return f"output_size={self.output_size!r}"


class AdaptiveAvgPool2d(_AdaptivePool2d):
    """``AdaptiveAvgPool2d(output_size)``: average pooling to a fixed output size; window ``o`` of ``O``
    over ``S`` covers ``[floor(o*S/O), ceil((o+1)*S/O))``. ``AdaptiveAvgPool2d(1)`` is global average
    pooling. ``(N, C, H, W) -> (N, C, OH, OW)``."""

    def forward(self, x):
        y, ctx = F.adaptive_avg_pool2d_forward(x, self.output_size)
        self._save_ctx(ctx)
        return y

    def backward(self, dy):
        return F.adaptive_avg_pool2d_backward(dy, self._pop_ctx())


class AdaptiveMaxPool2d(_AdaptivePool2d):
    """``AdaptiveMaxPool2d(output_size, return_indices=False)``: max pooling to a fixed output size,
    windows as AdaptiveAvgPool2d, ties and NaN as MaxPool2d; with ``return_indices`` forward returns
    ``(y, indices)`` (int64)."""

    def __init__(self, output_size, return_indices=False):
        super().__init__(output_size)
        self.return_indices = V.boolean("return_indices", return_indices)

    def forward(self, x):
        y, ctx = F.adaptive_max_pool2d_forward(x, self.output_size, self.return_indices)
        self._save_ctx(ctx)
        return (y, ctx.indices) if self.return_indices else y

    def backward(self, dy):
        return F.adaptive_max_pool2d_backward(dy, self._pop_ctx())


class MaxUnpool2d(Module):
    """``MaxUnpool2d(kernel_size, stride=None, padding=0)``: the partial inverse of MaxPool2d.
    ``forward(x, indices, output_size=None)``: ``x`` and ``indices`` (N, C, H, W) (from
    ``MaxPool2d(..., return_indices=True)``) -> (N, C, OH, OW), zero except each ``x`` element at its
    index; ``OH = (H - 1) * stride - 2 * padding + kernel_size`` unless ``output_size`` is given
    ((OH, OW) or (N, C, OH, OW), within one stride of that). Backward gives the gradient for ``x``."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = V.pair("kernel_size", kernel_size, minimum=1)
        self.stride = self.kernel_size if stride is None else V.pair("stride", stride, minimum=1)
        self.padding = V.pair("padding", padding, minimum=0)

    def forward(self, x, indices, output_size=None):
        y, ctx = F.max_unpool2d_forward(x, indices, self.kernel_size, self.stride, self.padding, output_size)
        self._save_ctx(ctx)
        return y

    def backward(self, dy):
        return F.max_unpool2d_backward(dy, self._pop_ctx())

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
