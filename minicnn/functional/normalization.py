"""Normalisations with PyTorch's semantics: ``batch_norm`` (kernels in ``minicnn.kernels.batchnorm``),
``layer_norm``, ``group_norm`` and ``instance_norm`` (``minicnn.kernels.normalization``); each as
``op``, ``op_forward`` -> ``(y, ctx)`` and ``op_backward``."""
import math
import numbers
from typing import NamedTuple, Optional

import numpy as np

from .._validate import (at_least_ndim, boolean, buffer, float_array, float_input, grad_array, grad_request, integer,
                         real, vector)
from ..kernels import batchnorm as _bn_k
from ..kernels import normalization as _norm_k
from .activation import parallel_chunks, run_rows


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


def _running_buffers(running_mean, running_var, C):
    """Both running statistics checked as writable ``(C,)`` float arrays, or both None."""
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must be given together (or both None)")
    if running_mean is None:
        return None, None
    return buffer("running_mean", running_mean, C), buffer("running_var", running_var, C)


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
    running_mean, running_var = _running_buffers(running_mean, running_var, C)
    if running_mean is None and not training:
        raise ValueError("batch_norm with training=False needs running_mean and running_var")
    weight = None if weight is None else vector("weight", weight, C, np.float64, "one per channel of x")
    bias = None if bias is None else vector("bias", bias, C, x.dtype, "one per channel of x")
    if training:
        if count <= 1:
            raise ValueError(f"batch_norm in training mode needs more than 1 value per channel "
                             f"(N * H * W > 1), got input of shape {x.shape}")
        mean, var = np.empty(C, np.float64), np.empty(C, np.float64)
        run_rows(_bn_k.channel_mean_var_rows, _bn_k.channel_mean_var, C, x3.size, x3, mean, var)
        if running_mean is not None:
            _update_running(running_mean, momentum, mean)
            _update_running(running_var, momentum, var * (count / (count - 1)))
    else:
        mean, var = running_mean.astype(np.float64), running_var.astype(np.float64)
    invstd = 1.0 / np.sqrt(var + eps)
    scale = invstd if weight is None else invstd * weight
    mean = mean.astype(x.dtype)
    y = np.empty(x.shape, x.dtype)
    run_rows(_bn_k.normalize_rows, _bn_k.normalize, N * C, x3.size, x3, mean, scale.astype(x.dtype),
             np.zeros(C, x.dtype) if bias is None else bias, y.reshape(x3.shape))
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
        run_rows(_bn_k.backward_sums_rows, _bn_k.backward_sums, C, x3.size, dy3, x3, ctx.mean, ctx.invstd, sum_dy,
                 sum_dy_xhat)
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
    run_rows(_bn_k.backward_input_rows, _bn_k.backward_input, N * C, x3.size, dy3, x3, ctx.mean, scale.astype(dtype),
             dy_mean.astype(dtype), slope.astype(dtype), dx.reshape(x3.shape))
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
    run_rows(_bn_k.channel_mean_var_rows, _bn_k.channel_mean_var, C, x3.size, x3, mean, var)
    return mean, var


# -- LayerNorm, GroupNorm, InstanceNorm (per-row statistics, kernels in minicnn.kernels.normalization) --
def _normalized_shape(normalized_shape, x):
    """``normalized_shape`` (an int or a tuple of ints) checked against x's trailing dimensions."""
    shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else normalized_shape
    if not isinstance(shape, (tuple, list)) or not shape or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in shape):
        raise TypeError(f"normalized_shape must be a positive int or a non-empty tuple of positive ints, "
                        f"got {normalized_shape!r}")
    shape = tuple(int(s) for s in shape)
    if x.shape[x.ndim - len(shape):] != shape or x.ndim < len(shape):
        raise ValueError(f"normalized_shape {shape} must match the trailing dimensions of x, got x of shape "
                         f"{x.shape}")
    return shape


class LayerNormCtx(NamedTuple):
    """What ``layer_norm_backward`` needs: ``x`` viewed ``(R, D)`` (``D`` = the normalized_shape's
    size), its shape, per-row ``mean`` and ``rstd = 1 / sqrt(var + eps)`` (x's dtype, ``(R,)``),
    ``weight`` (x's dtype, ``(D,)``, or None) and whether a bias was added."""
    x2: np.ndarray
    shape: tuple
    normalized_shape: tuple
    mean: np.ndarray
    rstd: np.ndarray
    weight: Optional[np.ndarray]
    has_bias: bool


def _affine_pair(w, b, n, dtype):
    """The kernels' (weight, bias): both empty without affine, else both of ``n`` values (the missing
    one as ones / zeros)."""
    if w is None and b is None:
        return np.empty(0, dtype), np.empty(0, dtype)
    return (np.ones(n, dtype) if w is None else w.reshape(-1)), (np.zeros(n, dtype) if b is None else b.reshape(-1))


def layer_norm_forward(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the trailing ``normalized_shape`` dimensions of ``x``:
    ``(x - mean) / sqrt(var + eps) * weight + bias`` (biased variance; ``weight`` / ``bias`` of shape
    ``normalized_shape``, optional). Returns ``(y, LayerNormCtx)``, ``y`` of x's shape."""
    x = float_input("x", x)
    shape = _normalized_shape(normalized_shape, x)
    eps = real("eps", eps, 0.0, low_open=True)
    D = math.prod(shape)
    x2 = x.reshape(-1, D)
    dt = x.dtype
    w = None if weight is None else float_array("weight", weight, dt)
    b = None if bias is None else float_array("bias", bias, dt)
    for name, v in (("weight", w), ("bias", b)):
        if v is not None and v.shape != shape:
            raise ValueError(f"{name} must have the shape of normalized_shape {shape}, got {v.shape}")
    R = x2.shape[0]
    mean, rstd = np.empty(R, dt), np.empty(R, dt)
    y = np.empty(x.shape, dt)
    wk, bk = _affine_pair(w, b, D, dt)
    run_rows(_norm_k.layer_norm_forward_rows, _norm_k.layer_norm_forward, R, x2.size, x2, wk, bk, eps,
             y.reshape(x2.shape), mean, rstd)
    return y, LayerNormCtx(x2, x.shape, shape, mean, rstd, None if w is None else w.reshape(-1), b is not None)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """PyTorch's ``F.layer_norm`` (see :func:`layer_norm_forward`)."""
    return layer_norm_forward(x, normalized_shape, weight, bias, eps)[0]


def layer_norm_backward(dy, ctx, *, dx=True, dweight=True, dbias=True):
    """Gradients of ``layer_norm``: returns ``(dx, dweight, dbias)`` (``dweight = sum(dy * xhat)``,
    ``dbias = sum(dy)`` over the rows, in normalized_shape's shape; None without weight / bias)."""
    x2, dt = ctx.x2, ctx.x2.dtype
    R, D = x2.shape
    dy2 = grad_array("dy", dy, ctx.shape, dt).reshape(x2.shape)
    want_input = boolean("dx", dx)
    ns = ctx.normalized_shape
    dweight = grad_request("dweight", dweight, ns, dt) if ctx.weight is not None else None
    dbias = grad_request("dbias", dbias, ns, dt) if ctx.has_bias else None
    n_chunks = parallel_chunks(x2.size)
    width = D if (dweight is not None or dbias is not None) else 0
    dw_partial, db_partial = np.zeros((n_chunks, width)), np.zeros((n_chunks, width))  # one row per range
    out = np.empty(ctx.shape if want_input else (0,), dt)
    if ctx.weight is not None:
        weight = ctx.weight
    else:  # the kernel's parameter-gradient pass multiplies by a weight: ones for a bias alone
        weight = np.ones(D, dt) if width and want_input else np.empty(0, dt)
    args = (dy2, x2, ctx.mean, ctx.rstd, weight, out.reshape(x2.shape if want_input else (0, 0)))
    if n_chunks == 1:
        _norm_k.layer_norm_backward_rows(*args, dw_partial[0], db_partial[0], 0, R)
    else:
        _norm_k.layer_norm_backward(*args, dw_partial, db_partial, n_chunks)
    if dweight is not None:
        dweight += dw_partial.sum(axis=0).astype(dt).reshape(ns)
    if dbias is not None:
        dbias += db_partial.sum(axis=0).astype(dt).reshape(ns)
    return (out if want_input else None), dweight, dbias


class GroupNormCtx(NamedTuple):
    """What ``group_norm_backward`` needs: ``x`` viewed ``(N * G, C / G, L)`` (one row per sample and
    group), the number of groups ``G``, x's shape, per-(sample, group) float64 ``mean`` and ``rstd``
    ``(N, G)``, ``weight`` (x's dtype, ``(C,)``, or None) and whether a bias was added."""
    x3: np.ndarray
    groups: int
    shape: tuple
    mean: np.ndarray
    rstd: np.ndarray
    weight: Optional[np.ndarray]
    has_bias: bool


def group_norm_forward(x, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalise ``x (N, C, ...)`` over each group of ``C / num_groups`` consecutive channels (and all
    trailing dimensions) of each sample, then scale and shift per channel (``weight`` / ``bias``
    ``(C,)``, optional). ``num_groups`` must divide ``C``. Returns ``(y, GroupNormCtx)``."""
    x = float_input("x", x)
    at_least_ndim("x", x, 2, "(N, C, ...)")
    G = integer("num_groups", num_groups, 1)
    eps = real("eps", eps, 0.0, low_open=True)
    N, C = x.shape[:2]
    if C % G:
        raise ValueError(f"num_groups ({G}) must divide the number of channels (num_channels) of x, "
                         f"got x of shape {x.shape}")
    L = math.prod(x.shape[2:])
    if N and C * L == 0:
        raise ValueError(f"x must have at least one value per group, got shape {x.shape}")
    dt = x.dtype
    w = None if weight is None else vector("weight", weight, C, dt, "one per channel of x")
    b = None if bias is None else vector("bias", bias, C, dt, "one per channel of x")
    x3 = x.reshape(N * G, C // G, L)
    mean, rstd = np.empty(N * G), np.empty(N * G)
    y = np.empty(x.shape, dt)
    wk, bk = _affine_pair(w, b, C, dt)
    run_rows(_norm_k.group_norm_forward_rows, _norm_k.group_norm_forward, N * G, x.size, x3, G, wk, bk, eps,
             y.reshape(x3.shape), mean, rstd)
    return y, GroupNormCtx(x3, G, x.shape, mean.reshape(N, G), rstd.reshape(N, G), w, b is not None)


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    """PyTorch's ``F.group_norm`` (see :func:`group_norm_forward`)."""
    return group_norm_forward(x, num_groups, weight, bias, eps)[0]


def group_norm_backward(dy, ctx, *, dx=True, dweight=True, dbias=True):
    """Gradients of ``group_norm``: returns ``(dx, dweight, dbias)``; per channel ``dweight = sum(dy *
    xhat)``, ``dbias = sum(dy)`` over samples and trailing dimensions (None without weight / bias)."""
    x3, dt, G = ctx.x3, ctx.x3.dtype, ctx.groups
    R, Cg, L = x3.shape
    N, C = R // G, G * Cg
    dy3 = grad_array("dy", dy, ctx.shape, dt).reshape(x3.shape)
    want_input = boolean("dx", dx)
    dweight = grad_request("dweight", dweight, (C,), dt) if ctx.weight is not None else None
    dbias = grad_request("dbias", dbias, (C,), dt) if ctx.has_bias else None
    sum_dy, sum_dy_xhat = np.empty((R, Cg)), np.empty((R, Cg))  # per (sample, channel): the parameters' terms
    out = np.empty(ctx.shape if want_input else (0,), dt)
    run_rows(_norm_k.group_norm_backward_rows, _norm_k.group_norm_backward, R, x3.size, dy3, x3, G,
             ctx.mean.reshape(R), ctx.rstd.reshape(R), np.empty(0, dt) if ctx.weight is None else ctx.weight,
             out.reshape(x3.shape if want_input else (0, 0, 0)), sum_dy, sum_dy_xhat)
    if dweight is not None:
        dweight += sum_dy_xhat.reshape(N, C).sum(axis=0).astype(dt)
    if dbias is not None:
        dbias += sum_dy.reshape(N, C).sum(axis=0).astype(dt)
    return (out if want_input else None), dweight, dbias


class InstanceNormCtx(NamedTuple):
    """``instance_norm``'s ctx: the group-norm ctx (statistics of each sample's channel) or, with
    ``use_input_stats=False``, the batch-norm ctx (running statistics, constants)."""
    group: Optional[GroupNormCtx]
    batch: Optional[BatchNormCtx]


def instance_norm_forward(x, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                          momentum=0.1, eps=1e-5):
    """PyTorch's ``F.instance_norm`` on ``x (N, C, ...)``: each channel of each sample normalised by
    its own mean and biased variance (``use_input_stats=True``; then, when given, the running
    statistics ``(C,)`` are updated in place with the batch average of the per-sample mean and
    UNBIASED variance, as PyTorch), or by ``running_mean`` / ``running_var`` (``use_input_stats=False``).
    ``weight`` / ``bias`` ``(C,)`` optional. Returns ``(y, InstanceNormCtx)``."""
    x = float_input("x", x)
    at_least_ndim("x", x, 3, "(N, C, L, ...)")
    use_input_stats = boolean("use_input_stats", use_input_stats)
    momentum = real("momentum", momentum, 0.0, 1.0)
    eps = real("eps", eps, 0.0, low_open=True)
    N, C = x.shape[:2]
    L = math.prod(x.shape[2:])
    if not use_input_stats:
        y, ctx = batch_norm_forward(x, running_mean, running_var, weight, bias, False, momentum, eps)
        return y, InstanceNormCtx(None, ctx)
    if L <= 1:
        raise ValueError(f"instance_norm with input statistics needs more than 1 value per channel, "
                         f"got x of shape {x.shape}")
    running_mean, running_var = _running_buffers(running_mean, running_var, C)
    y, ctx = group_norm_forward(x, C, weight, bias, eps)
    if running_mean is not None:
        var = 1.0 / ctx.rstd ** 2 - eps  # (N, C) biased per-instance variances
        _update_running(running_mean, momentum, ctx.mean.mean(axis=0))
        _update_running(running_var, momentum, (var * (L / (L - 1))).mean(axis=0))
    return y, InstanceNormCtx(ctx, None)


def instance_norm(x, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """PyTorch's ``F.instance_norm`` (see :func:`instance_norm_forward`)."""
    return instance_norm_forward(x, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)[0]


def instance_norm_backward(dy, ctx, *, dx=True, dweight=True, dbias=True):
    """Gradients of ``instance_norm``: ``(dx, dweight, dbias)`` (input statistics differentiated,
    running statistics constant)."""
    if ctx.group is not None:
        return group_norm_backward(dy, ctx.group, dx=dx, dweight=dweight, dbias=dbias)
    return batch_norm_backward(dy, ctx.batch, dx=dx, dweight=dweight, dbias=dbias)
