"""Batch normalisation with PyTorch's ``F.batch_norm`` semantics: ``batch_norm``, ``batch_norm_forward``
-> ``(y, BatchNormCtx)``, ``batch_norm_backward``; kernels in ``minicnn.kernels.batchnorm``."""
import math
from typing import NamedTuple, Optional

import numpy as np

from .._validate import at_least_ndim, boolean, buffer, float_input, grad_array, grad_request, real, vector
from ..kernels.batchnorm import _backward_input, _backward_sums, _channel_mean_var, _normalize


class BatchNormCtx(NamedTuple):
    """What ``batch_norm_backward`` needs: ``x`` viewed as ``(N, C, L)``, the per-channel ``mean``
    (x's dtype) and ``invstd = 1 / sqrt(var + eps)`` (float64) it was normalised with, ``weight``
    (float64, or None), whether a bias was added, and ``batch_stats``: the statistics were the
    batch's own (training), so the backward differentiates them too."""
    x3: np.ndarray
    shape: tuple
    mean: np.ndarray
    invstd: np.ndarray
    weight: Optional[np.ndarray]
    has_bias: bool
    batch_stats: bool


def _update_running(running, factor, batch):
    """``running = (1 - factor) * running + factor * batch``, in place in running's dtype."""
    np.copyto(running, (1.0 - factor) * running + factor * batch, casting="unsafe")


def batch_norm_forward(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
                       eps=1e-5):
    """Normalise each channel of ``x (N, C, ...)``: ``(x - mean) / sqrt(var + eps) * weight + bias``.

    ``training=True``: ``mean`` and the biased ``var`` are the batch's (over N and the trailing
    dimensions; more than one value per channel needed) and, when given, the running statistics
    ``(C,)`` are updated in place: ``running = (1 - momentum) * running + momentum * batch``, with
    the UNBIASED batch variance for ``running_var`` (as PyTorch). ``training=False``: normalise
    with ``running_mean`` / ``running_var`` (required). ``weight`` / ``bias`` ``(C,)`` are optional
    (cast to x's dtype). Returns ``(y, BatchNormCtx)``, ``y`` of x's shape.
    """
    x = float_input("x", x)
    at_least_ndim("x", x, 2, "(N, C, ...)")
    training = boolean("training", training)
    momentum = real("momentum", momentum, 0.0, 1.0)
    eps = real("eps", eps, 0.0, low_open=True)
    N, C = x.shape[:2]
    x3 = x.reshape(N, C, math.prod(x.shape[2:]))
    count = N * x3.shape[2]
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must be given together (or both None)")
    if running_mean is not None:
        running_mean = buffer("running_mean", running_mean, C)
        running_var = buffer("running_var", running_var, C)
    elif not training:
        raise ValueError("batch_norm with training=False needs running_mean and running_var")
    weight = None if weight is None else vector("weight", weight, C, np.float64, "one per channel of x")
    bias = None if bias is None else vector("bias", bias, C, x.dtype, "one per channel of x")
    if training:
        if count <= 1:
            raise ValueError(f"batch_norm in training mode needs more than 1 value per channel "
                             f"(N * H * W > 1), got input of shape {x.shape}")
        mean, var = np.empty(C, np.float64), np.empty(C, np.float64)
        _channel_mean_var(x3, mean, var)
        if running_mean is not None:
            _update_running(running_mean, momentum, mean)
            _update_running(running_var, momentum, var * (count / (count - 1)))
    else:
        mean, var = running_mean.astype(np.float64), running_var.astype(np.float64)
    invstd = 1.0 / np.sqrt(var + eps)
    scale = invstd if weight is None else invstd * weight
    mean = mean.astype(x.dtype)
    y = np.empty(x.shape, x.dtype)
    _normalize(x3, mean, scale.astype(x.dtype), np.zeros(C, x.dtype) if bias is None else bias,
               y.reshape(x3.shape))
    return y, BatchNormCtx(x3, x.shape, mean, invstd, weight, bias is not None, training)


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """PyTorch's ``F.batch_norm``: ``y`` of ``x``'s shape (see :func:`batch_norm_forward`)."""
    return batch_norm_forward(x, running_mean, running_var, weight, bias, training, momentum, eps)[0]


def batch_norm_backward(dy, ctx, *, dx=True, dweight=True, dbias=True):
    """Gradients of ``batch_norm`` from ``dy`` (x's shape): returns ``(dx, dweight, dbias)``.

    With batch statistics (training) the mean and variance depend on ``x`` and are differentiated;
    running statistics are constants. ``dweight`` += ``sum(dy * xhat)``, ``dbias`` += ``sum(dy)`` per
    channel (None when the forward had no weight / bias). Flags as in ``minicnn.functional``.
    """
    x3, dtype = ctx.x3, ctx.x3.dtype
    N, C, L = x3.shape
    dy3 = grad_array("dy", dy, ctx.shape, dtype).reshape(x3.shape)
    want_input = boolean("dx", dx)
    dweight = grad_request("dweight", dweight, (C,), dtype) if ctx.weight is not None else None
    dbias = grad_request("dbias", dbias, (C,), dtype) if ctx.has_bias else None
    if dweight is not None or dbias is not None or (want_input and ctx.batch_stats):
        sum_dy, sum_dy_xhat = np.empty(C, np.float64), np.empty(C, np.float64)
        _backward_sums(dy3, x3, ctx.mean, ctx.invstd, sum_dy, sum_dy_xhat)
        if dweight is not None:
            dweight += sum_dy_xhat.astype(dtype)
        if dbias is not None:
            dbias += sum_dy.astype(dtype)
    if not want_input:
        return None, dweight, dbias
    scale = ctx.invstd if ctx.weight is None else ctx.invstd * ctx.weight
    if ctx.batch_stats:
        dy_mean = sum_dy / (N * L)
        slope = ctx.invstd * sum_dy_xhat / (N * L)
    else:
        dy_mean = slope = np.zeros(C)
    dx = np.empty(ctx.shape, dtype)
    _backward_input(dy3, x3, ctx.mean, scale.astype(dtype), dy_mean.astype(dtype), slope.astype(dtype),
                    dx.reshape(x3.shape))
    return dx, dweight, dbias


def batch_norm_stats(x):
    """Per-channel ``(mean, var)`` of ``x (N, C, ...)`` over N and the trailing dimensions: float64
    arrays ``(C,)``, the biased variance (what ``batch_norm`` normalises with in training mode). For
    statistics pooled from several parts of a batch (e.g. ``nn.SyncBatchNorm`` over MPI ranks)."""
    x = float_input("x", x)
    at_least_ndim("x", x, 2, "(N, C, ...)")
    N, C = x.shape[:2]
    x3 = x.reshape(N, C, math.prod(x.shape[2:]))
    if N * x3.shape[2] == 0:
        raise ValueError(f"x must have at least one value per channel, got shape {x.shape}")
    mean, var = np.empty(C, np.float64), np.empty(C, np.float64)
    _channel_mean_var(x3, mean, var)
    return mean, var
