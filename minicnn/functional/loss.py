"""Losses with PyTorch's names, arguments, defaults and formulas: ``mse_loss``, ``l1_loss``,
``smooth_l1_loss``, ``huber_loss``, ``binary_cross_entropy``, ``binary_cross_entropy_with_logits``,
``nll_loss`` and ``cross_entropy``; each also as ``op_forward -> (loss, ctx)`` and
``op_backward(ctx, dloss=1.0) -> d loss / d input``. Kernels in ``minicnn.kernels.elementwise_loss`` and
``minicnn.kernels.loss``.

``reduction``: ``"mean"`` (default) or ``"sum"`` give a ``numpy.float64`` scalar (``loss.item()``
works), ``"none"`` the per-element (per-sample for the class losses) losses as an array of the
input's dtype. ``dloss`` is the upstream gradient: a real scalar for "mean" / "sum", an array of the
loss's shape for "none" (the default 1 means all ones). The gradient has the input's shape and dtype.
"""
from typing import NamedTuple, Optional

import numpy as np

from .._validate import (choice, class_index_array, class_indices, float_array, float_input, integer, real,
                         same_shape, vector)
from ..kernels import elementwise_loss as _el
from ..kernels.elementwise_loss import elementwise_loss_backward, elementwise_loss_forward
from ..kernels.loss import (cross_entropy_backward_kernel, softmax_cross_entropy_kernel, cross_entropy_general_backward,
                            nll_backward, nll_forward, soft_cross_entropy_backward, soft_cross_entropy_forward)
from .activation import log_softmax

REDUCTIONS = ("mean", "sum", "none")
_EMPTY = np.empty(0)


def _reduction(reduction):
    return choice("reduction", reduction, REDUCTIONS)


def _dloss(dloss, reduction, shape):
    """The upstream gradient as a flat float64 array: one value ("mean" / "sum"), one per loss entry
    ("none"; a scalar is broadcast)."""
    if reduction != "none":
        return np.array([real("dloss", dloss)])
    if np.ndim(dloss) == 0:
        return np.full(int(np.prod(shape, dtype=np.int64)), real("dloss", dloss))
    d = float_array("dloss", dloss, np.float64)
    same_shape("dloss", d, shape)
    return d.reshape(-1)


def _target_like(target, x):
    """A float ``target`` of exactly x's shape, cast to x's dtype."""
    target = float_array("target", target, x.dtype)
    if target.shape != x.shape:
        raise ValueError(f"target must have the input's shape {x.shape}, got {target.shape}")
    return target


def _broadcast(name, v, x):
    """An optional array broadcast to x's shape (C-contiguous, x's dtype); EMPTY when None."""
    if v is None:
        return np.empty(0, x.dtype)
    v = float_array(name, v, x.dtype)
    try:
        return np.ascontiguousarray(np.broadcast_to(v, x.shape))
    except ValueError:
        raise ValueError(f"{name} of shape {v.shape} cannot be broadcast to the input's shape {x.shape}") from None


# -- elementwise losses -----------------------------------------------------------------------------------
class ElementwiseLossCtx(NamedTuple):
    """What an elementwise loss's backward needs: the kernel's op code, ``input`` and ``target`` (x's
    dtype), the optional per-element ``weight`` / ``pos_weight`` (broadcast, EMPTY when none), the
    constant ``param`` (beta or delta), the ``reduction``."""
    op: int
    input: np.ndarray
    target: np.ndarray
    weight: np.ndarray
    pos_weight: np.ndarray
    param: float
    reduction: str


def _elementwise_forward(op, input, target, reduction, param=0.0, weight=None, pos_weight=None):
    x = float_input("input", input)
    t = _target_like(target, x)
    reduction = _reduction(reduction)
    if op == _el.BCE and x.size and (not (x.min() >= 0 and x.max() <= 1)):
        raise ValueError("input must hold probabilities in [0, 1] for binary_cross_entropy, got values in "
                         f"[{x.min()}, {x.max()}]")
    w = _broadcast("weight", weight, x)
    pw = _broadcast("pos_weight", pos_weight, x)
    losses = np.empty(x.shape if reduction == "none" else 0)
    total = elementwise_loss_forward(x.reshape(-1), t.reshape(-1), w.reshape(-1), pw.reshape(-1), op, param,
                                      losses.reshape(-1))
    if reduction == "none":
        loss = losses.astype(x.dtype)
    else:
        loss = np.float64(total) if reduction == "sum" else np.float64(total / x.size if x.size else np.nan)
    return loss, ElementwiseLossCtx(op, x, t, w, pw, param, reduction)


def _elementwise_backward(ctx, dloss=1.0):
    x = ctx.input
    d = _dloss(dloss, ctx.reduction, x.shape)
    scale = 1.0 / x.size if ctx.reduction == "mean" and x.size else 1.0
    dx = np.empty_like(x)
    elementwise_loss_backward(x.reshape(-1), ctx.target.reshape(-1), ctx.weight.reshape(-1),
                               ctx.pos_weight.reshape(-1), ctx.op, ctx.param, d, scale, dx.reshape(-1))
    return dx


# One public triple per loss below (op_forward, op, op_backward) with PyTorch's signature and the formula in
# its docstring; the work itself is shared, in _elementwise_forward / _elementwise_backward.
def mse_loss_forward(input, target, reduction="mean"):
    """``(input - target)^2`` reduced; ``input`` and ``target`` of one shape. Returns ``(loss, ctx)``."""
    return _elementwise_forward(_el.MSE, input, target, reduction)


def mse_loss(input, target, reduction="mean"):
    """PyTorch's ``F.mse_loss``."""
    return mse_loss_forward(input, target, reduction)[0]


def mse_loss_backward(ctx, dloss=1.0):
    """``dloss * 2 * (input - target)`` (divided by the number of elements for "mean")."""
    return _elementwise_backward(ctx, dloss)


def l1_loss_forward(input, target, reduction="mean"):
    """``|input - target|`` reduced. Returns ``(loss, ctx)``."""
    return _elementwise_forward(_el.L1, input, target, reduction)


def l1_loss(input, target, reduction="mean"):
    """PyTorch's ``F.l1_loss``."""
    return l1_loss_forward(input, target, reduction)[0]


def l1_loss_backward(ctx, dloss=1.0):
    """``dloss * sign(input - target)`` (0 where equal)."""
    return _elementwise_backward(ctx, dloss)


def smooth_l1_loss_forward(input, target, reduction="mean", beta=1.0):
    """``d^2 / (2 beta)`` where ``|d| < beta`` else ``|d| - beta / 2`` (``d = input - target``;
    ``beta = 0`` is the L1 loss). Returns ``(loss, ctx)``."""
    return _elementwise_forward(_el.SMOOTH_L1, input, target, reduction, real("beta", beta, 0.0))


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """PyTorch's ``F.smooth_l1_loss``."""
    return smooth_l1_loss_forward(input, target, reduction, beta)[0]


def smooth_l1_loss_backward(ctx, dloss=1.0):
    """``dloss * d / beta`` where ``|d| < beta`` else ``dloss * sign(d)``."""
    return _elementwise_backward(ctx, dloss)


def huber_loss_forward(input, target, reduction="mean", delta=1.0):
    """``d^2 / 2`` where ``|d| < delta`` else ``delta * (|d| - delta / 2)``. Returns ``(loss, ctx)``."""
    return _elementwise_forward(_el.HUBER, input, target, reduction, real("delta", delta, 0.0, low_open=True))


def huber_loss(input, target, reduction="mean", delta=1.0):
    """PyTorch's ``F.huber_loss``."""
    return huber_loss_forward(input, target, reduction, delta)[0]


def huber_loss_backward(ctx, dloss=1.0):
    """``dloss * d`` where ``|d| < delta`` else ``dloss * delta * sign(d)``."""
    return _elementwise_backward(ctx, dloss)


def binary_cross_entropy_forward(input, target, weight=None, reduction="mean"):
    """``-weight * (t * log(x) + (1 - t) * log(1 - x))`` with each log clamped at -100 (PyTorch's);
    ``input`` probabilities in [0, 1] (else ``ValueError``), ``weight`` broadcast to the input's
    shape. Returns ``(loss, ctx)``."""
    return _elementwise_forward(_el.BCE, input, target, reduction, weight=weight)


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """PyTorch's ``F.binary_cross_entropy``."""
    return binary_cross_entropy_forward(input, target, weight, reduction)[0]


def binary_cross_entropy_backward(ctx, dloss=1.0):
    """``dloss * weight * (x - t) / max(x * (1 - x), 1e-12)`` (PyTorch's)."""
    return _elementwise_backward(ctx, dloss)


def binary_cross_entropy_with_logits_forward(input, target, weight=None, reduction="mean", pos_weight=None):
    """``-weight * (pos_weight * t * log(sigmoid(x)) + (1 - t) * log(1 - sigmoid(x)))``, computed as
    ``weight * (pos_weight * t * softplus(-x) + (1 - t) * softplus(x))`` with a stable softplus (finite
    for any finite logits, no cancellation); ``weight`` and ``pos_weight`` broadcast to the input's
    shape (``pos_weight`` usually one per class, the last dimension). Returns ``(loss, ctx)``."""
    return _elementwise_forward(_el.BCE_WITH_LOGITS, input, target, reduction, weight=weight,
                                pos_weight=pos_weight)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """PyTorch's ``F.binary_cross_entropy_with_logits``."""
    return binary_cross_entropy_with_logits_forward(input, target, weight, reduction, pos_weight)[0]


def binary_cross_entropy_with_logits_backward(ctx, dloss=1.0):
    """``dloss * weight * ((pos_weight * t + 1 - t) * sigmoid(x) - pos_weight * t)``."""
    return _elementwise_backward(ctx, dloss)


# -- class losses: nll_loss and cross_entropy ---------------------------------------------------------------
def _class_input(name, input):
    """``input (N, C)`` or ``(N, C, d1, ...)`` as ``(x, x3)``, ``x3`` the ``(N, C, L)`` view."""
    x = float_input(name, input)
    if x.ndim < 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must be (N, C) or (N, C, d1, ...) with N, C >= 1, got shape {x.shape}")
    return x, x.reshape(x.shape[0], x.shape[1], -1)


def _class_weights(weight, C):
    """The class ``weight`` as float64 ``(C,)``; EMPTY when None."""
    return _EMPTY if weight is None else vector("weight", weight, C, np.float64, "one per class")


def _reduce_rows(losses, total_weight, reduction, dtype, shape):
    """The class losses' reduction: mean = sum / total weight (PyTorch's weighted mean)."""
    if reduction == "none":
        return losses.reshape(shape).astype(dtype), 1.0
    total = losses.sum()
    if reduction == "sum":
        return np.float64(total), 1.0
    with np.errstate(divide="ignore", invalid="ignore"):  # every row ignored: nan, as PyTorch
        total_weight = np.float64(total_weight)
        return total / total_weight, 1.0 / total_weight


class NLLLossCtx(NamedTuple):
    """What ``nll_loss_backward`` needs: the input's shape and dtype, the int64 ``target`` ``(N, L)``,
    the class ``weight`` (float64, EMPTY for none), ``ignore_index``, ``reduction`` and the mean's
    ``scale`` (1 / total weight)."""
    shape: tuple
    dtype: np.dtype
    target: np.ndarray
    weight: np.ndarray
    ignore_index: int
    reduction: str
    scale: float


def nll_loss_forward(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """``-weight[y] * input[n, y]`` per sample (``input`` log-probabilities ``(N, C)`` or ``(N, C, d1,
    ...)``, ``target`` class indices ``(N,)`` or ``(N, d1, ...)``; entries equal to ``ignore_index``
    count 0 and are left out of the mean, which divides by the sum of ``weight[y]``)."""
    x, x3 = _class_input("input", input)
    N, C, L = x3.shape
    reduction = _reduction(reduction)
    ignore_index = integer("ignore_index", ignore_index)
    target = class_index_array("target", target, (N,) + x.shape[2:], C, ignore_index).reshape(N, L)
    w = _class_weights(weight, C)
    losses = np.empty((N, L))
    total_weight = nll_forward(x3, target, w, ignore_index, 0.0, losses)
    loss, scale = _reduce_rows(losses, total_weight, reduction, x.dtype, (N,) + x.shape[2:])
    return loss, NLLLossCtx(x.shape, x.dtype, target, w, ignore_index, reduction, scale)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """PyTorch's ``F.nll_loss``."""
    return nll_loss_forward(input, target, weight, ignore_index, reduction)[0]


def nll_loss_backward(ctx, dloss=1.0):
    """``-dloss * weight[y]`` at each sample's target entry, 0 elsewhere (divided by the total weight
    for "mean")."""
    N, C = ctx.shape[:2]
    d = _dloss(dloss, ctx.reduction, (N,) + ctx.shape[2:])
    dx = np.zeros(ctx.shape, ctx.dtype)
    nll_backward(ctx.target, ctx.weight, ctx.ignore_index, d, ctx.reduction == "none", ctx.scale,
                  dx.reshape(N, C, -1))
    return dx


class CrossEntropyCtx(NamedTuple):
    """What ``cross_entropy_backward`` needs. Fast path (2-D logits, class indices, no weight or
    ignored entries, "mean"/"sum"): ``probs = softmax(logits)``; otherwise ``logp = log_softmax``
    ``(N, C, L)`` and ``logits_shape``. Then the int64 ``target`` (``(N,)`` or ``(N, L)``) or the
    class probabilities ``(N, C, L)``, ``weight`` (float64, EMPTY for none), ``ignore_index``,
    ``label_smoothing``, ``reduction`` and the reduction's ``scale``."""
    probs: Optional[np.ndarray]
    target: np.ndarray
    label_smoothing: float
    logp: Optional[np.ndarray] = None
    logits_shape: tuple = ()
    weight: np.ndarray = _EMPTY
    ignore_index: int = -100
    reduction: str = "mean"
    scale: float = 1.0


def cross_entropy_forward(input, target, weight=None, *, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Softmax cross-entropy of ``input`` logits ``(N, C)`` or ``(N, C, d1, ...)`` (finite) against
    ``target``: class indices ``(N,)`` / ``(N, d1, ...)`` (entries equal to ``ignore_index`` left out)
    or class probabilities of the input's shape (a float array). Per sample, with ``s =
    label_smoothing`` in [0, 1] and ``w`` the class ``weight`` (ones by default):
    indices ``(1 - s) * -w[y] log p[y] + s / C * sum_c -w[c] log p[c]``, the mean dividing by the sum
    of ``w[y]``; probabilities ``-sum_c w[c] t'[c] log p[c]`` with ``t' = (1 - s) t + s / C``, the
    mean dividing by the number of samples (PyTorch's definitions). Log-sum-exp throughout.
    Returns ``(loss, CrossEntropyCtx)``."""
    x, x3 = _class_input("input", input)
    N, C, L = x3.shape
    reduction = _reduction(reduction)
    ignore_index = integer("ignore_index", ignore_index)
    label_smoothing = real("label_smoothing", label_smoothing, 0.0, 1.0)
    if not np.isfinite(x).all():
        raise ValueError("input must be finite logits, got NaN or infinity")
    w = _class_weights(weight, C)
    soft = isinstance(target, np.ndarray) and target.dtype.kind == "f"
    if not soft:
        target_nd, ignored = class_indices("target", target, (N,) + x.shape[2:], C, ignore_index)
        if x.ndim == 2 and w.size == 0 and reduction != "none" and not ignored:
            # the default case: one fused kernel pass (softmax, loss) per row
            probs = np.empty_like(x)
            losses = np.empty(N, np.float64)
            softmax_cross_entropy_kernel(x, target_nd, label_smoothing, probs, losses)
            total = losses.sum()
            loss = np.float64(total / N) if reduction == "mean" else np.float64(total)
            return loss, CrossEntropyCtx(probs, target_nd, label_smoothing, reduction=reduction,
                                         scale=1.0 / N if reduction == "mean" else 1.0)
    logp = log_softmax(x3, 1)
    losses = np.empty((N, L))
    if soft:
        t3 = _target_like(target, x).reshape(x3.shape)
        soft_cross_entropy_forward(logp, t3, w, label_smoothing, losses)
        loss, scale = _reduce_rows(losses, N * L, reduction, x.dtype, (N,) + x.shape[2:])
        return loss, CrossEntropyCtx(None, t3, label_smoothing, logp, x.shape, w, ignore_index, reduction, scale)
    target2 = target_nd.reshape(N, L)
    total_weight = nll_forward(logp, target2, w, ignore_index, label_smoothing, losses)
    loss, scale = _reduce_rows(losses, total_weight, reduction, x.dtype, (N,) + x.shape[2:])
    return loss, CrossEntropyCtx(None, target2, label_smoothing, logp, x.shape, w, ignore_index, reduction, scale)


def cross_entropy(input, target, weight=None, *, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """PyTorch's ``F.cross_entropy`` (see :func:`cross_entropy_forward`): a ``numpy.float64`` for
    "mean" / "sum", per-sample losses for "none"."""
    return cross_entropy_forward(input, target, weight, ignore_index=ignore_index, reduction=reduction,
                                 label_smoothing=label_smoothing)[0]


def cross_entropy_backward(ctx, dloss=1.0):
    """``d loss / d logits`` times ``dloss``: an array of the logits' shape and dtype
    (``softmax - smoothed one-hot`` per sample, weighted, divided by the mean's divisor)."""
    if ctx.probs is not None:  # the fast path
        probs = ctx.probs
        dlogits = np.empty_like(probs)
        cross_entropy_backward_kernel(probs, ctx.target, ctx.label_smoothing, real("dloss", dloss) * ctx.scale, dlogits)
        return dlogits
    logp = ctx.logp
    N, C, L = logp.shape
    d = _dloss(dloss, ctx.reduction, (N,) + ctx.logits_shape[2:])
    per_row = ctx.reduction == "none"
    dx = np.empty(ctx.logits_shape, logp.dtype)
    if ctx.target.ndim == 3:
        soft_cross_entropy_backward(logp, ctx.target, ctx.weight, ctx.label_smoothing, d, per_row, ctx.scale,
                                     dx.reshape(logp.shape))
    else:
        cross_entropy_general_backward(logp, ctx.target, ctx.weight, ctx.ignore_index, ctx.label_smoothing, d,
                                        per_row, ctx.scale, dx.reshape(logp.shape))
    return dx
