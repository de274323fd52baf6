"""Batch normalisation over the channels of NCHW input, with PyTorch's semantics
(``minicnn.functional.batch_norm``)."""
import numpy as np

from .. import functional as F
from .._validate import axis_size, float_array, float_dtype, positive_int, real
from .module import Module, Parameter, grad_target, param_data


class _NormBase(Module):
    """What batch and instance normalisation share (as PyTorch's ``_NormBase``): ``num_features``,
    ``eps``, ``momentum``, the optional per-channel ``weight`` (ones) / ``bias`` (zeros) and the
    running statistics buffers (``running_mean`` zeros, ``running_var`` ones, ``num_batches_tracked``)."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 dtype=np.float32):
        super().__init__()
        self.num_features = positive_int("num_features", num_features)
        self.eps = real("eps", eps, 0.0, low_open=True)
        self.momentum = None if momentum is None else real("momentum", momentum, 0.0, 1.0)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.dtype = float_dtype("dtype", dtype)
        C = self.num_features
        if self.affine:
            self.weight = Parameter(np.ones(C, self.dtype))
            self.bias = Parameter(np.zeros(C, self.dtype))
        else:
            self.weight = self.bias = None
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(C, self.dtype))
            self.register_buffer("running_var", np.ones(C, self.dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean = np.zeros(self.num_features, self.dtype)
            self.running_var = np.ones(self.num_features, self.dtype)
            self.num_batches_tracked = np.array(0, dtype=np.int64)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    """Batch normalisation over dim 1 (the channels) of ``(N, num_features, ...)`` input; the
    subclasses say which input shapes they take (``_input_ndims``).

    Training mode (or ``track_running_stats=False``): normalise with the batch's per-channel mean and
    biased variance; with ``track_running_stats`` the buffers are updated as
    ``running = (1 - momentum) * running + momentum * batch`` using the *unbiased* batch variance,
    and ``num_batches_tracked`` counts the updates (``momentum=None``: cumulative average,
    ``momentum = 1 / num_batches_tracked``). Eval mode: normalise with the running statistics.
    ``affine=True`` adds the learnable per-channel ``weight`` (ones) and ``bias`` (zeros).
    The input is cast to the layer's dtype.
    """
    _input_ndims = (4,)
    _shape_hint = "4-D (N, C, H, W)"

    def forward(self, x):
        x = float_array("x", x, self.dtype)
        if x.ndim not in self._input_ndims:
            raise ValueError(f"x must be {self._shape_hint}, got shape {x.shape}")
        axis_size("x", x, 1, self.num_features, "channels (num_features)")
        update = self.training and self.track_running_stats
        momentum = self.momentum
        if momentum is None:  # cumulative average
            momentum = 1.0 / float(self.num_batches_tracked + 1) if update else 0.0
        y, ctx = F.batch_norm_forward(
            x, self.running_mean, self.running_var, param_data(self.weight),
            param_data(self.bias), training=self.training or not self.track_running_stats,
            momentum=momentum, eps=self.eps)
        if update:
            self.num_batches_tracked = np.array(self.num_batches_tracked + 1, dtype=np.int64)
        self._save_ctx(ctx)
        return y

    def backward(self, dy):
        """``dy`` (the output's shape) -> ``dx``; adds into ``weight.grad`` / ``bias.grad`` when affine.

        Differentiates the statistics when they came from the batch (training mode), and treats
        the running statistics as constants in eval mode.
        """
        dx, _, _ = F.batch_norm_backward(dy, self._pop_ctx(), dweight=grad_target(self.weight),
                                         dbias=grad_target(self.bias))
        return dx


class BatchNorm2d(_BatchNorm):
    """``BatchNorm2d(num_features)`` on input ``(N, num_features, H, W)`` (see :class:`_BatchNorm`)."""


class BatchNorm1d(_BatchNorm):
    """``BatchNorm1d(num_features)`` on input ``(N, num_features)`` or ``(N, num_features, L)``
    (statistics over N, and L when present; see :class:`_BatchNorm`)."""
    _input_ndims = (2, 3)
    _shape_hint = "2-D (N, C) or 3-D (N, C, L)"
