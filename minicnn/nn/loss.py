"""Cross-entropy loss on logits, with PyTorch's ``CrossEntropyLoss`` semantics (mean reduction)."""
import numbers

import numpy as np

from .._validate import float_input
from ..kernels.loss import _cross_entropy_backward, _softmax_cross_entropy
from .module import BackwardBeforeForwardError, Module


class CrossEntropyLoss(Module):
    """``loss = criterion(logits, labels)`` then ``dlogits = criterion.backward()``.

    ``logits`` is a float array ``(N, K)``, ``labels`` an integer array ``(N,)`` with values in
    ``[0, K)``. The loss is the mean over the batch of
    ``(1 - s) * (-log p[y]) + s * mean_k(-log p[k])`` with ``p = softmax(logits)`` and
    ``s = label_smoothing`` (exactly PyTorch's definition), computed with the log-sum-exp trick so
    any finite logits give a finite loss. ``forward`` returns a Python float; ``backward(dy=1.0)``
    returns ``dy * d loss / d logits`` as an ``(N, K)`` array of the logits' dtype.
    """

    def __init__(self, label_smoothing=0.0):
        super().__init__()
        if not isinstance(label_smoothing, numbers.Real) or isinstance(label_smoothing, bool):
            raise TypeError(f"label_smoothing must be a number, got {label_smoothing!r}")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        self._probs = None
        self._labels = None

    def forward(self, logits, labels):
        logits = float_input("logits", logits, 2, "(N, K)")
        N, K = logits.shape
        if N == 0 or K == 0:
            raise ValueError(f"logits must have N >= 1 rows and K >= 1 classes, got shape {logits.shape}")
        labels = np.asarray(labels)
        if labels.dtype.kind not in "iu":
            raise TypeError(f"labels must be an integer array of class indices, got dtype {labels.dtype}")
        if labels.ndim != 1:
            raise ValueError(f"labels must be 1-D (N,), got shape {labels.shape}")
        if labels.shape[0] != N:
            raise ValueError(f"labels must hold one class index per row of logits: expected {N} labels, "
                             f"got {labels.shape[0]}")
        low, high = labels.min(), labels.max()
        if low < 0 or high >= K:
            bad = low if low < 0 else high
            raise ValueError(f"labels must be class indices in [0, {K}) for logits with {K} classes, got {bad}")
        if not np.isfinite(logits).all():
            raise ValueError("logits must be finite, got NaN or infinity")
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        probs = np.empty_like(logits)
        losses = np.empty(N, np.float64)
        _softmax_cross_entropy(logits, labels, self.label_smoothing, probs, losses)
        self._probs, self._labels = probs, labels
        return float(losses.mean())

    def backward(self, dy=1.0):
        """Gradient of the (mean) loss w.r.t. the logits, times the scalar upstream gradient ``dy``."""
        if self._probs is None:
            raise BackwardBeforeForwardError("CrossEntropyLoss.backward called before forward")
        if np.ndim(dy) != 0 or not np.isrealobj(dy) or np.asarray(dy).dtype.kind not in "fiu":
            raise ValueError(f"dy must be a real scalar (the loss is a scalar), got {dy!r}")
        probs = self._probs
        dlogits = np.empty_like(probs)
        _cross_entropy_backward(probs, self._labels, self.label_smoothing, float(dy) / probs.shape[0], dlogits)
        return dlogits

    def extra_repr(self):
        return f"label_smoothing={self.label_smoothing}" if self.label_smoothing else ""
