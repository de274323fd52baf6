"""Batch normalisation over the channels of NCHW input, with PyTorch's semantics."""
import numbers

import numpy as np

from .._validate import float_array, float_dtype, grad_array, positive_int
from ..kernels.batchnorm import batch_norm_backward, batch_norm_forward, batch_norm_stats
from .module import BackwardBeforeForwardError, Module, Parameter


class BatchNorm2d(Module):
    """``BatchNorm2d(num_features)`` on input ``(N, num_features, H, W)``.

    Training mode (or ``track_running_stats=False``): normalise with the batch's per-channel mean and
    biased variance; with ``track_running_stats`` the buffers are updated as
    ``running = (1 - momentum) * running + momentum * batch`` using the *unbiased* batch variance,
    and ``num_batches_tracked`` counts the updates (``momentum=None``: cumulative average,
    ``momentum = 1 / num_batches_tracked``). Eval mode: normalise with the running statistics.
    ``affine=True`` adds the learnable per-channel ``weight`` (ones) and ``bias`` (zeros).
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 dtype=np.float32):
        super().__init__()
        self.num_features = positive_int("num_features", num_features)
        if not isinstance(eps, numbers.Real) or isinstance(eps, bool) or not eps > 0:
            raise ValueError(f"eps must be a positive number, got {eps!r}")
        if momentum is not None and (not isinstance(momentum, numbers.Real) or isinstance(momentum, bool)
                                     or not 0.0 <= momentum <= 1.0):
            raise ValueError(f"momentum must be None or a number in [0, 1], got {momentum!r}")
        self.eps = float(eps)
        self.momentum = None if momentum is None else float(momentum)
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
        self._saved = None

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean = np.zeros(self.num_features, self.dtype)
            self.running_var = np.ones(self.num_features, self.dtype)
            self.num_batches_tracked = np.array(0, dtype=np.int64)

    def forward(self, x):
        x = float_array("x", x, self.dtype, ndim=4, shape_hint="(N, C, H, W)")
        if x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm2d expected {self.num_features} channels (num_features), "
                             f"got input of shape {x.shape}")
        N, C, H, W = x.shape
        count = N * H * W
        use_batch_stats = self.training or not self.track_running_stats
        if use_batch_stats:
            if self.training and count <= 1:
                raise ValueError(f"BatchNorm2d in training mode needs more than 1 value per channel "
                                 f"(N * H * W > 1), got input of shape {x.shape}")
            if count == 0:
                raise ValueError(f"BatchNorm2d needs a non-empty input, got shape {x.shape}")
            mean, var = batch_norm_stats(x)
            if self.training and self.track_running_stats:
                self._update_running_stats(mean, var * (count / (count - 1)))
        else:
            mean = self.running_mean.astype(np.float64)
            var = self.running_var.astype(np.float64)
        invstd = 1.0 / np.sqrt(var + self.eps)
        weight = None if self.weight is None else self.weight.data
        bias = None if self.bias is None else self.bias.data
        y = batch_norm_forward(x, mean, invstd, weight, bias)
        self._saved = (x, mean, invstd, use_batch_stats)
        return y

    def _update_running_stats(self, mean, unbiased_var):
        self.num_batches_tracked = np.array(self.num_batches_tracked + 1, dtype=np.int64)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean = ((1.0 - factor) * self.running_mean + factor * mean).astype(self.dtype)
        self.running_var = ((1.0 - factor) * self.running_var + factor * unbiased_var).astype(self.dtype)

    def backward(self, dy):
        """``dy (N, C, H, W)`` -> ``dx``; adds into ``weight.grad`` / ``bias.grad`` when affine.

        Differentiates the statistics when they came from the batch (training mode), and treats
        the running statistics as constants in eval mode.
        """
        if self._saved is None:
            raise BackwardBeforeForwardError("BatchNorm2d.backward called before forward")
        x, mean, invstd, use_batch_stats = self._saved
        dy = grad_array("dy", dy, x.shape, self.dtype)
        weight = None if self.weight is None else self.weight.data
        dx, dweight, dbias = batch_norm_backward(dy, x, mean, invstd, weight, training=use_batch_stats)
        if self.affine:
            self.weight.grad += dweight.astype(self.dtype)
            self.bias.grad += dbias.astype(self.dtype)
        return dx

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")
