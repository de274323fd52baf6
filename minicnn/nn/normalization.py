"""LayerNorm, GroupNorm and InstanceNorm2d with PyTorch's names, arguments and defaults (thin layers
over ``minicnn.functional.layer_norm`` / ``group_norm`` / ``instance_norm``). Each casts its input to
the layer's dtype (float32 unless built with ``dtype=np.float64``)."""
import numbers

import numpy as np

from .. import functional as F
from .._validate import axis_size, boolean, float_array, float_dtype, positive_int, real
from .batchnorm import _NormBase
from .module import Module, Parameter, grad_target, param_data


class LayerNorm(Module):
    """``LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=True)``: each sample normalised over
    its trailing ``normalized_shape`` dimensions (an int or a tuple), then scaled and shifted by the
    learnable ``weight`` (ones) and ``bias`` (zeros) of shape ``normalized_shape``."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, dtype=np.float32):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else normalized_shape
        if not isinstance(shape, (tuple, list)) or not shape:
            raise TypeError(f"normalized_shape must be an int or a non-empty tuple of ints, got {normalized_shape!r}")
        self.normalized_shape = tuple(positive_int("normalized_shape", s) for s in shape)
        self.eps = real("eps", eps, 0.0, low_open=True)
        self.elementwise_affine = boolean("elementwise_affine", elementwise_affine)
        self.dtype = float_dtype("dtype", dtype)
        if self.elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, self.dtype))
            self.bias = Parameter(np.zeros(self.normalized_shape, self.dtype))
        else:
            self.weight = self.bias = None

    def forward(self, x):
        x = float_array("x", x, self.dtype)
        y, ctx = F.layer_norm_forward(x, self.normalized_shape, param_data(self.weight), param_data(self.bias), self.eps)
        self._save_ctx(ctx)
        return y

    def backward(self, dy):
        dx, _, _ = F.layer_norm_backward(dy, self._pop_ctx(), dweight=grad_target(self.weight),
                                         dbias=grad_target(self.bias))
        return dx

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """``GroupNorm(num_groups, num_channels, eps=1e-5, affine=True)`` on input ``(N, num_channels, ...)``:
    statistics over each group of ``num_channels / num_groups`` consecutive channels of a sample,
    per-channel learnable ``weight`` (ones) and ``bias`` (zeros)."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, dtype=np.float32):
        super().__init__()
        self.num_groups = positive_int("num_groups", num_groups)
        self.num_channels = positive_int("num_channels", num_channels)
        if self.num_channels % self.num_groups:
            raise ValueError(f"num_channels ({self.num_channels}) must be divisible by num_groups "
                             f"({self.num_groups})")
        self.eps = real("eps", eps, 0.0, low_open=True)
        self.affine = boolean("affine", affine)
        self.dtype = float_dtype("dtype", dtype)
        if self.affine:
            self.weight = Parameter(np.ones(self.num_channels, self.dtype))
            self.bias = Parameter(np.zeros(self.num_channels, self.dtype))
        else:
            self.weight = self.bias = None

    def forward(self, x):
        x = float_array("x", x, self.dtype)
        if x.ndim < 2:
            raise ValueError(f"x must be (N, C, ...) with at least 2 dimensions, got shape {x.shape}")
        axis_size("x", x, 1, self.num_channels, "channels (num_channels)")
        y, ctx = F.group_norm_forward(x, self.num_groups, param_data(self.weight), param_data(self.bias), self.eps)
        self._save_ctx(ctx)
        return y

    def backward(self, dy):
        dx, _, _ = F.group_norm_backward(dy, self._pop_ctx(), dweight=grad_target(self.weight),
                                         dbias=grad_target(self.bias))
        return dx

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class InstanceNorm2d(_NormBase):
    """``InstanceNorm2d(num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False)``
    on ``(N, C, H, W)``: each channel of each sample normalised over (H, W). With
    ``track_running_stats`` the running mean / unbiased variance (batch averages of the per-sample
    ones) are kept in training mode and used in eval mode; ``affine`` adds per-channel ``weight`` /
    ``bias``. PyTorch's rules, including ``momentum=None`` passing 0 (no update)."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False,
                 dtype=np.float32):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)

    def forward(self, x):
        x = float_array("x", x, self.dtype, ndim=4, shape_hint="(N, C, H, W)")
        axis_size("x", x, 1, self.num_features, "channels (num_features)")
        use_input_stats = self.training or not self.track_running_stats
        y, ctx = F.instance_norm_forward(x, self.running_mean, self.running_var, param_data(self.weight),
                                         param_data(self.bias), use_input_stats,
                                         0.0 if self.momentum is None else self.momentum, self.eps)
        if self.training and self.track_running_stats:
            self.num_batches_tracked = np.array(self.num_batches_tracked + 1, dtype=np.int64)
        self._save_ctx(ctx)
        return y

    def backward(self, dy):
        dx, _, _ = F.instance_norm_backward(dy, self._pop_ctx(), dweight=grad_target(self.weight),
                                            dbias=grad_target(self.bias))
        return dx

