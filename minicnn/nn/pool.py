"""MaxPool2d and AvgPool2d: PyTorch's pooling layers (floor mode) on NCHW float32/float64 arrays."""
import numpy as np

from .._validate import float_input, grad_array
from ..kernels.pool import (
    INDEX_DTYPE,
    _avg_pool2d_backward,
    _avg_pool2d_forward,
    _max_pool2d_backward,
    _max_pool2d_forward,
    _max_pool2d_values,
    pool_output_shape,
    pool_params,
)
from .module import BackwardBeforeForwardError, Module


def _show(p):
    """A (h, w) pair as PyTorch prints it when given an int: ``2`` for ``(2, 2)``."""
    return p[0] if p[0] == p[1] else p


class _Pool2d(Module):
    """Shared arguments of the pooling layers: ``kernel_size``, ``stride`` (None: the kernel size)
    and ``padding``, each an int or an (h, w) pair, with ``0 <= padding <= kernel_size // 2``.

    Pooling has no parameters and no dtype of its own: the output has the input's float dtype
    (float32 or float64; float16 computes in float32). Stored as (h, w) pairs.
    """

    _state_from = "forward"  # the forward whose state backward needs, for its error message

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = pool_params(kernel_size, stride, padding)
        self._input_shape = None  # (N, C, H, W) of the last forward input; None before forward
        self._dtype = None

    def _forward_setup(self, x):
        """Validate ``x``; remember its shape and dtype for backward; return (x, output shape)."""
        x = float_input("input", x, 4, "(N, C, H, W)")
        shape = pool_output_shape(x.shape, self.kernel_size, self.stride, self.padding)
        self._input_shape, self._dtype = x.shape, x.dtype
        return x, shape

    def _backward_setup(self, dy):
        if self._input_shape is None:
            raise BackwardBeforeForwardError(f"{type(self).__name__}.backward called before {self._state_from}")
        shape = pool_output_shape(self._input_shape, self.kernel_size, self.stride, self.padding)
        return grad_array("dy", dy, shape, self._dtype)

    def _args(self):
        return (*self.kernel_size, *self.stride, *self.padding)

    def extra_repr(self):
        return f"kernel_size={_show(self.kernel_size)}, stride={_show(self.stride)}, padding={_show(self.padding)}"


class MaxPool2d(_Pool2d):
    """Max over each window; padding is -inf. The first maximum in row-major window order wins ties
    (and NaN propagates), as in PyTorch. ``(N, C, H, W) -> (N, C, OH, OW)``, with
    ``OH = (H + 2 * padding - kernel_size) // stride + 1`` (likewise OW).

    Backward routes each window's gradient to the element that won it (overlapping windows add). In
    eval mode forward does not record the positions (1.8-2.4x faster for 2x2 windows, measured), so
    backward needs a training-mode forward.
    """

    _state_from = "a training-mode forward (eval-mode forwards keep nothing for backward)"

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__(kernel_size, stride, padding)
        self._argmax = None  # flat plane index of each window's maximum, INDEX_DTYPE, (N, C, OH, OW)

    def forward(self, x):
        x, shape = self._forward_setup(x)
        y = np.empty(shape, dtype=x.dtype)
        if not self.training:  # nothing to route back: the maxima without their positions
            self._input_shape = None
            _max_pool2d_values(x, *self._args(), y)
            return y
        # argmax never leaves the layer, so its buffer is reused while the shape repeats.
        if self._argmax is None or self._argmax.shape != shape:
            self._argmax = np.empty(shape, dtype=INDEX_DTYPE)
        _max_pool2d_forward(x, *self._args(), y, self._argmax)
        return y

    def backward(self, dy):
        dy = self._backward_setup(dy)
        dx = np.empty(self._input_shape, dtype=self._dtype)
        _max_pool2d_backward(dy, self._argmax, dx)
        return dx


class AvgPool2d(_Pool2d):
    """Mean over each window, dividing by ``kh * kw`` with padded zeros counted (PyTorch's
    ``count_include_pad=True``). ``(N, C, H, W) -> (N, C, OH, OW)`` as for MaxPool2d."""

    def forward(self, x):
        x, shape = self._forward_setup(x)
        y = np.empty(shape, dtype=x.dtype)
        _avg_pool2d_forward(x, *self._args(), y)
        return y

    def backward(self, dy):
        dy = self._backward_setup(dy)
        dx = np.empty(self._input_shape, dtype=self._dtype)
        _avg_pool2d_backward(dy, *self._args(), dx)
        return dx
