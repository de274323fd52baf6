"""Losses: ``cross_entropy`` (PyTorch's ``F.cross_entropy``, mean reduction, with label smoothing),
``cross_entropy_forward`` -> ``(loss, CrossEntropyCtx)``, ``cross_entropy_backward``; kernels in
``minicnn.kernels.loss``."""
from typing import NamedTuple

import numpy as np

from .._validate import class_indices, float_input, real
from ..kernels.loss import _cross_entropy_backward, _softmax_cross_entropy


class CrossEntropyCtx(NamedTuple):
    """What ``cross_entropy_backward`` needs: ``probs = softmax(logits)`` (N, K) in the logits'
    dtype, the int64 ``target`` (N,) and ``label_smoothing``."""
    probs: np.ndarray
    target: np.ndarray
    label_smoothing: float


def cross_entropy_forward(logits, target, label_smoothing=0.0):
    """Mean over the batch of ``(1 - s) * (-log p[y]) + s * mean_k(-log p[k])``, ``p = softmax(logits)``,
    ``s = label_smoothing`` in ``[0, 1]`` (PyTorch's definition), computed with the log-sum-exp trick.

    ``logits`` (N, K) finite floats with N, K >= 1; ``target`` (N,) integer class indices in ``[0, K)``.
    Returns ``(loss, CrossEntropyCtx)``; ``loss`` is a ``numpy.float64`` scalar.
    """
    logits = float_input("logits", logits, 2, "(N, K)")
    N, K = logits.shape
    if N == 0 or K == 0:
        raise ValueError(f"logits must have N >= 1 rows and K >= 1 classes, got shape {logits.shape}")
    target = class_indices("target", target, N, K)
    label_smoothing = real("label_smoothing", label_smoothing, 0.0, 1.0)
    if not np.isfinite(logits).all():
        raise ValueError("logits must be finite, got NaN or infinity")
    probs = np.empty_like(logits)
    losses = np.empty(N, np.float64)
    _softmax_cross_entropy(logits, target, label_smoothing, probs, losses)
    return losses.mean(), CrossEntropyCtx(probs, target, label_smoothing)


def cross_entropy(logits, target, label_smoothing=0.0):
    """The mean cross-entropy loss of ``logits`` (N, K) against ``target`` (N,) (see
    :func:`cross_entropy_forward`), a ``numpy.float64`` scalar."""
    return cross_entropy_forward(logits, target, label_smoothing)[0]


def cross_entropy_backward(ctx, dloss=1.0):
    """``dloss * d loss / d logits``: an (N, K) array of the logits' dtype; ``dloss`` a real scalar."""
    dloss = real("dloss", dloss)
    probs = ctx.probs
    dlogits = np.empty_like(probs)
    _cross_entropy_backward(probs, ctx.target, ctx.label_smoothing, dloss / probs.shape[0], dlogits)
    return dlogits
