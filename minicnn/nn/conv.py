"""Conv2d: 2-D convolution layer (cross-correlation, as PyTorch's), over ``minicnn.functional.conv2d``."""
import numpy as np

from .. import functional as F
from ..grad_mode import is_grad_enabled
from .._validate import (choice, conv_padding, conv_padding_arg, float_array, float_dtype, groups_arg, pair,
                         positive_int)
from .init import reset_default_
from .module import Module, Parameter, grad_target, param_data


class Conv2d(Module):
    """Applies ``y[n, f] = bias[f] + sum_c weight[f, c] (*) x[n, c]`` to ``x`` (N, C, H, W).

    ``kernel_size``, ``stride``, ``padding`` and ``dilation`` are ints or ``(h, w)`` pairs; ``padding``
    may also be "same" (stride 1) or "valid". ``groups`` splits the channels into groups convolved
    separately (depthwise: ``groups == in_channels``). ``padding_mode`` is "zeros", "reflect",
    "replicate" or "circular": as in PyTorch, a mode other than zeros pads the input explicitly
    (``F.pad``) and then convolves without padding. ``weight`` is a Parameter (out_channels,
    in_channels // groups, kh, kw) and ``bias`` a Parameter (out_channels,) or None, initialised as PyTorch does. With ``input_grad=False`` backward computes
    only the parameter gradients and returns None (for a network's first layer). ``algorithm`` is one of
    ``minicnn.functional.CONV_ALGORITHMS`` or "auto" (see ``minicnn.functional.conv``).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", dtype=np.float32, rng=None, input_grad=True, algorithm="auto"):
        super().__init__()
        self.in_channels = positive_int("in_channels", in_channels)
        self.out_channels = positive_int("out_channels", out_channels)
        self.kernel_size = pair("kernel_size", kernel_size)
        self.stride = pair("stride", stride)
        self.padding = conv_padding(padding)
        self.dilation = pair("dilation", dilation)
        self.groups = groups_arg(groups, self.in_channels, self.out_channels)
        self.padding_mode = choice("padding_mode", padding_mode, ("zeros", "reflect", "replicate", "circular"))
        sym, extra = conv_padding_arg(self.padding, self.kernel_size, self.stride, self.dilation)
        sym = pair("padding", sym, minimum=0)
        # The explicit pads of a non-zeros padding_mode, F.pad's order (left, right, top, bottom).
        self._pads = (sym[1], sym[1] + extra[1], sym[0], sym[0] + extra[0])
        self.dtype = float_dtype("dtype", dtype)
        self.input_grad = bool(input_grad)
        self.algorithm = choice("algorithm", algorithm, F.CONV_ALGORITHMS + ("auto",))
        if algorithm == "direct" and self.stride != (1, 1):
            raise ValueError(f"algorithm 'direct' supports stride 1 only, got stride {self.stride}")
        C, (kh, kw) = self.in_channels, self.kernel_size
        self.weight = Parameter(np.zeros((self.out_channels, C // self.groups, kh, kw), self.dtype))
        self.bias = Parameter(np.zeros(self.out_channels, self.dtype)) if bias else None
        reset_default_(self.weight, self.bias, rng)

    def forward(self, x):
        """``x`` (N, C, H, W) -> ``y`` (N, out_channels, OH, OW), a new array."""
        x = float_array("x", x, self.dtype, ndim=4, shape_hint="(N, C, H, W)")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x must have in_channels = {self.in_channels} channels (dimension 1 of "
                             f"(N, C, H, W)), got shape {x.shape}")
        bias = param_data(self.bias)
        padding, pad_ctx = self.padding, None
        if self.padding_mode != "zeros":
            x, pad_ctx = F.pad_forward(x, self._pads, self.padding_mode)
            padding = 0
        args = (x, self.weight.data, bias, self.stride, padding, self.dilation, self.groups)
        if not is_grad_enabled():  # keep nothing: unpadded inputs are then read in place
            self._save_ctx(None)
            return F.conv2d(*args, algorithm=self.algorithm)
        y, ctx = F.conv2d_forward(*args, algorithm=self.algorithm)
        self._save_ctx(ctx if pad_ctx is None else (ctx, pad_ctx))
        return y

    def backward(self, dy):
        """Adds the parameter gradients into ``weight.grad`` / ``bias.grad``; returns ``dx`` (N, C, H, W)
        (a new array), or None if ``input_grad`` is False."""
        ctx, pad_ctx = self._pop_ctx(), None
        if self.padding_mode != "zeros":
            ctx, pad_ctx = ctx
        dx, _, _ = F.conv2d_backward(dy, ctx, dx=self.input_grad, dweight=grad_target(self.weight),
                                     dbias=grad_target(self.bias))
        return dx if pad_ctx is None or dx is None else F.pad_backward(dx, pad_ctx)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding!r}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        if self.bias is None:
            s += ", bias=False"
        if self.dtype != np.float32:
            s += f", dtype={self.dtype}"
        if not self.input_grad:
            s += ", input_grad=False"
        if self.algorithm != "auto":
            s += f", algorithm={self.algorithm!r}"
        return s
