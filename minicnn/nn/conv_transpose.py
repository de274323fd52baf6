"""ConvTranspose2d: transposed 2-D convolution layer (PyTorch's names, arguments, weight layout)."""
import numpy as np

from .. import functional as F
from .._validate import (choice, float_array, float_dtype, groups_arg, output_padding_arg, output_size_padding, pair,
                         positive_int)
from ..grad_mode import is_grad_enabled
from .init import reset_default_
from .module import Module, Parameter, grad_target, param_data


class ConvTranspose2d(Module):
    """The transposed convolution of ``x`` (N, in_channels, H, W) (``F.conv_transpose2d``): ``y`` (N,
    out_channels, OH, OW) with ``OH = (H-1)*sh - 2*ph + dh*(kh-1) + oph + 1``.

    ``weight`` is a Parameter (in_channels, out_channels // groups, kh, kw) and ``bias`` (out_channels,)
    or None, initialised as PyTorch does. ``forward(x, output_size=(OH, OW))`` picks the output padding
    that gives that size (as PyTorch; it must lie between the smallest size and stride - 1 more).
    ``padding_mode`` must be ``"zeros"`` (the only mode PyTorch's ConvTranspose2d supports).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", dtype=np.float32, rng=None):
        super().__init__()
        self.in_channels = positive_int("in_channels", in_channels)
        self.out_channels = positive_int("out_channels", out_channels)
        self.groups = groups_arg(groups, self.in_channels, self.out_channels)
        self.kernel_size = pair("kernel_size", kernel_size)
        self.stride = pair("stride", stride)
        self.padding = pair("padding", padding, minimum=0)
        self.dilation = pair("dilation", dilation)
        self.output_padding = output_padding_arg(output_padding, self.stride, self.dilation)
        self.padding_mode = choice("padding_mode", padding_mode, ("zeros",))
        self.dtype = float_dtype("dtype", dtype)
        kh, kw = self.kernel_size
        self.weight = Parameter(np.zeros((self.in_channels, self.out_channels // self.groups, kh, kw), self.dtype))
        self.bias = Parameter(np.zeros(self.out_channels, self.dtype)) if bias else None
        reset_default_(self.weight, self.bias, rng)

    def forward(self, x, output_size=None):
        """``x`` (N, in_channels, H, W) -> ``y`` (N, out_channels, OH, OW), a new array."""
        x = float_array("x", x, self.dtype, 4, "(N, C, H, W)")
        op = self.output_padding
        if output_size is not None:
            op = output_size_padding(output_size, x.shape[2:], self.kernel_size, self.stride, self.padding,
                                     self.dilation)
        args = (self.weight.data, param_data(self.bias), self.stride, self.padding, op,
                self.groups, self.dilation)
        if not is_grad_enabled():
            return F.conv_transpose2d(x, *args)
        y, ctx = F.conv_transpose2d_forward(x, *args)
        self._save_ctx(ctx)
        return y

    def backward(self, dy):
        """Adds the parameter gradients into ``weight.grad`` / ``bias.grad``; returns ``dx`` (N, in_channels, H, W)."""
        dx, _, _ = F.conv_transpose2d_backward(dy, self._pop_ctx(), dweight=grad_target(self.weight),
                                               dbias=grad_target(self.bias))
        return dx

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        for name, default in (("padding", (0, 0)), ("output_padding", (0, 0)), ("dilation", (1, 1))):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.dtype != np.float32:
            s += f", dtype={self.dtype}"
        return s
