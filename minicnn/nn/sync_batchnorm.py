"""Batch normalisation whose batch statistics are those of the global batch over all MPI ranks."""
import numpy as np

from .. import distributed as dist
from .. import functional as F
from .._validate import axis_size, float_array
from .batchnorm import BatchNorm2d
from .module import Module, grad_target


class SyncBatchNorm(BatchNorm2d):
    """``SyncBatchNorm(num_features)``: ``BatchNorm2d`` (same arguments, parameters and buffers) that,
    in training mode under ``minicnn.distributed`` with more than one rank, normalises every rank's
    ``(N_r, C, H, W)`` input with the mean and biased variance of the GLOBAL batch.

    Forward: one Allreduce of the per-channel value count, sum and sum of squares (float64, from each
    rank's mean and variance), so the normalisation and the running statistics are those of one
    process holding the whole batch. Backward: one Allreduce of the two per-channel sums ``sum(dy)``
    and ``sum(dy * xhat)`` that the input gradient depends on; ``weight.grad`` and ``bias.grad`` get
    this rank's own sums, which ``DistributedDataParallel`` then averages like every other gradient.
    Every rank must call forward and backward the same number of times.

    In eval mode, and in a world of size 1, it is ``BatchNorm2d`` exactly (same numerics).
    The variance is ``E[x^2] - E[x]^2`` of the pooled sums: in float64 this loses about
    ``(mean / std)^2`` ulps, negligible unless a channel's mean is many orders above its spread.
    """

    def forward(self, x):
        self._synced = self.training and dist.get_world_size() > 1
        if not self._synced:
            return super().forward(x)
        x = float_array("x", x, self.dtype, ndim=4, shape_hint="(N, C, H, W)")
        axis_size("x", x, 1, self.num_features, "channels (num_features)")
        N, C, H, W = x.shape
        count = N * H * W
        mean, var = F.batch_norm_stats(x)
        pooled = dist.all_reduce(np.concatenate([[count], count * mean, count * (var + mean * mean)]))
        total = pooled[0]
        if total <= 1:
            raise ValueError(f"SyncBatchNorm in training mode needs more than 1 value per channel over all "
                             f"ranks (sum of N * H * W > 1), got {int(total)}")
        mean = pooled[1:C + 1] / total
        var = np.maximum(pooled[C + 1:] / total - mean * mean, 0.0)
        if self.track_running_stats:
            self.num_batches_tracked = np.array(self.num_batches_tracked + 1, dtype=np.int64)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            for running, batch in ((self.running_mean, mean), (self.running_var, var * (total / (total - 1)))):
                np.copyto(running, (1.0 - factor) * running + factor * batch, casting="unsafe")
        # Normalise with the global statistics as constants; a weight and bias always (ones and zeros
        # without affine: the same numerics) so that the backward returns both per-channel sums.
        weight = np.ones(C, self.dtype) if self.weight is None else self.weight.data
        bias = np.zeros(C, self.dtype) if self.bias is None else self.bias.data
        y, ctx = F.batch_norm_forward(x, mean, var, weight, bias, training=False, eps=self.eps)
        self._save_ctx((ctx, x, mean, var, weight, total))
        return y

    def backward(self, dy):
        """``dy (N, C, H, W)`` -> ``dx``; adds this rank's sums into ``weight.grad`` / ``bias.grad``."""
        if not getattr(self, "_synced", False):
            return super().backward(dy)
        ctx, x, mean, var, weight, total = self._pop_ctx()
        # With constant statistics: dx = weight * invstd * dy, and this rank's sum(dy * xhat), sum(dy).
        dx, sum_dy_xhat, sum_dy = F.batch_norm_backward(dy, ctx, dweight=True, dbias=True)
        for param, local_sum in ((self.weight, sum_dy_xhat), (self.bias, sum_dy)):
            target = grad_target(param)
            if target is not False:
                target += local_sum
        C = self.num_features
        sums = dist.all_reduce(np.concatenate([sum_dy, sum_dy_xhat]).astype(np.float64))
        # The statistics' share: dx -= weight * invstd * (sum(dy) + xhat * sum(dy * xhat)) / M, over the
        # global batch; batch_norm (eval) computes xhat * w' + b' with xhat = (x - mean) * invstd.
        k = weight.astype(np.float64) / np.sqrt(var + self.eps) / total
        dx += F.batch_norm(x, mean, var, weight=-k * sums[C:], bias=-k * sums[:C], training=False, eps=self.eps)
        return dx

    @classmethod
    def convert_sync_batchnorm(cls, module):
        """Replace every ``BatchNorm2d`` in ``module`` (or ``module`` itself) by a ``SyncBatchNorm``
        holding the same parameters (the same ``Parameter`` objects), buffers and mode; returns the
        converted module (``module`` itself unless it was a ``BatchNorm2d``)."""
        if not isinstance(module, Module):
            raise TypeError(f"module must be a minicnn.nn.Module, got {type(module).__name__}")
        if isinstance(module, BatchNorm2d) and not isinstance(module, cls):
            new = cls(module.num_features, eps=module.eps, momentum=module.momentum, affine=module.affine,
                      track_running_stats=module.track_running_stats, dtype=module.dtype)
            new.weight, new.bias = module.weight, module.bias
            if module.track_running_stats:
                new.running_mean = module.running_mean
                new.running_var = module.running_var
                new.num_batches_tracked = module.num_batches_tracked
            new.training = module.training
            return new
        for name, child in list(module.named_children()):
            converted = cls.convert_sync_batchnorm(child)
            if converted is not child:
                setattr(module, name, converted)
        return module
