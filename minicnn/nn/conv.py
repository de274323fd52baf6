"""Conv2d: 2-D convolution layer (cross-correlation, as PyTorch's), over ``minicnn.functional.conv2d``."""
import numpy as np

from .. import functional as F
from ..grad_mode import is_grad_enabled
from .._validate import choice, float_array, float_dtype, pair, positive_int
from .init import reset_default_
from .module import Module, Parameter, grad_target


class Conv2d(Module):
    """Applies ``y[n, f] = bias[f] + sum_c weight[f, c] (*) x[n, c]`` to ``x`` (N, C, H, W).

    ``kernel_size``, ``stride``, ``padding`` (zeros) and ``dilation`` are ints or ``(h, w)`` pairs.
    ``weight`` is a Parameter (out_channels, in_channels, kh, kw) and ``bias`` a Parameter
    (out_channels,) or None, initialised as PyTorch does. With ``input_grad=False`` backward computes
    only the parameter gradients and returns None (for a network's first layer). ``algorithm`` is one of
    ``minicnn.functional.CONV_ALGORITHMS`` or "auto" (see ``minicnn.functional.conv``).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=True,
                 dtype=np.float32, rng=None, input_grad=True, algorithm="auto"):
        super().__init__()
        self.in_channels = positive_int("in_channels", in_channels)
        self.out_channels = positive_int("out_channels", out_channels)
        self.kernel_size = pair("kernel_size", kernel_size)
        self.stride = pair("stride", stride)
        self.padding = pair("padding", padding, minimum=0)
        self.dilation = pair("dilation", dilation)
        self.dtype = float_dtype("dtype", dtype)
        self.input_grad = bool(input_grad)
        self.algorithm = choice("algorithm", algorithm, F.CONV_ALGORITHMS + ("auto",))
        if algorithm == "direct" and self.stride != (1, 1):
            raise ValueError(f"algorithm 'direct' supports stride 1 only, got stride {self.stride}")
        C, (kh, kw) = self.in_channels, self.kernel_size
        self.weight = Parameter(np.zeros((self.out_channels, C, kh, kw), self.dtype))
        self.bias = Parameter(np.zeros(self.out_channels, self.dtype)) if bias else None
        reset_default_(self.weight, self.bias, rng)

    def forward(self, x):
        """``x`` (N, C, H, W) -> ``y`` (N, out_channels, OH, OW), a new array."""
        x = float_array("x", x, self.dtype, ndim=4, shape_hint="(N, C, H, W)")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x must have in_channels = {self.in_channels} channels (dimension 1 of "
                             f"(N, C, H, W)), got shape {x.shape}")
        bias = None if self.bias is None else self.bias.data
        args = (x, self.weight.data, bias, self.stride, self.padding, self.dilation)
        if not is_grad_enabled():  # keep nothing: unpadded inputs are then read in place
            self._save_ctx(None)
            return F.conv2d(*args, algorithm=self.algorithm)
        y, ctx = F.conv2d_forward(*args, algorithm=self.algorithm)
        self._save_ctx(ctx)
        return y

    def backward(self, dy):
        """Adds the parameter gradients into ``weight.grad`` / ``bias.grad``; returns ``dx`` (N, C, H, W)
        (a new array), or None if ``input_grad`` is False."""
        dx, _, _ = F.conv2d_backward(dy, self._pop_ctx(), dx=self.input_grad, dweight=grad_target(self.weight),
                                     dbias=grad_target(self.bias))
        return dx

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.bias is None:
            s += ", bias=False"
        if self.dtype != np.float32:
            s += f", dtype={self.dtype}"
        if not self.input_grad:
            s += ", input_grad=False"
        if self.algorithm != "auto":
            s += f", algorithm={self.algorithm!r}"
        return s
