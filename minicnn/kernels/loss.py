"""Softmax cross-entropy on logits ``(N, K)`` with integer labels ``(N,)``, with label smoothing.

One serial pass per row (N x K is tiny next to the network): max, shifted exponentials, their sum; the loss is computed
from shifted logits ``z - max`` so it stays finite for any finite logits (log-sum-exp trick).
"""
import numpy as np

from .._config import jit


@jit
def _softmax_cross_entropy(logits, labels, smoothing, probs, losses):
    """Per row n: ``probs[n] = softmax(logits[n])`` and
    ``losses[n] = (1 - s) * (lse - z_y) + s * (lse - mean_k z_k)`` with ``lse = log(sum(exp(z)))``.
    """
    N, K = logits.shape
    for n in range(N):
        top = logits[n, 0]
        for k in range(1, K):
            if logits[n, k] > top:
                top = logits[n, k]
        total = np.float64(0.0)  # float64 sums, also when run without the JIT
        shifted_sum = np.float64(0.0)
        for k in range(K):
            z = logits[n, k] - top
            e = np.exp(z)
            probs[n, k] = e
            total += e
            shifted_sum += z
        inv = 1.0 / total
        for k in range(K):
            probs[n, k] *= inv
        log_total = np.log(total)  # lse - top
        target = logits[n, labels[n]] - top
        losses[n] = (1.0 - smoothing) * (log_total - target) + smoothing * (log_total - shifted_sum / K)


@jit
def _cross_entropy_backward(probs, labels, smoothing, scale, dlogits):
    """``dlogits[n, k] = scale * (probs[n, k] - s / K - (1 - s) * [k == labels[n]])``."""
    N, K = probs.shape
    uniform = smoothing / K
    for n in range(N):
        for k in range(K):
            dlogits[n, k] = scale * (probs[n, k] - uniform)
        dlogits[n, labels[n]] -= scale * (1.0 - smoothing)


def _check(logits, labels, label_smoothing):
    if not isinstance(logits, np.ndarray) or logits.dtype not in (np.float32, np.float64):
        raise TypeError("logits must be a float32 or float64 numpy array")
    if logits.ndim != 2 or logits.shape[0] == 0 or logits.shape[1] == 0:
        raise ValueError(f"logits must be 2-D (N, K) with N, K >= 1, got shape {logits.shape}")
    if not isinstance(labels, np.ndarray) or labels.dtype.kind not in "iu":
        raise TypeError("labels must be an integer numpy array")
    if labels.shape != (logits.shape[0],):
        raise ValueError(f"labels must have shape ({logits.shape[0]},), got {labels.shape}")
    if labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise ValueError(f"labels must be in [0, {logits.shape[1]}), got range [{labels.min()}, {labels.max()}]")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    return np.ascontiguousarray(logits), np.ascontiguousarray(labels, dtype=np.int64)


def cross_entropy_forward(logits, labels, label_smoothing=0.0):
    """Returns ``(losses, probs)``: per-sample losses (float64 ``(N,)``) and softmax probabilities
    (``(N, K)``, logits' dtype). The mean of ``losses`` is PyTorch's ``cross_entropy``."""
    logits, labels = _check(logits, labels, label_smoothing)
    probs = np.empty_like(logits)
    losses = np.empty(logits.shape[0], np.float64)
    _softmax_cross_entropy(logits, labels, float(label_smoothing), probs, losses)
    return losses, probs


def cross_entropy_backward(probs, labels, label_smoothing=0.0, scale=None):
    """Gradient of the mean loss w.r.t. the logits, times ``scale / N`` (default ``scale=1``)."""
    probs, labels = _check(probs, labels, label_smoothing)
    N = probs.shape[0]
    dlogits = np.empty_like(probs)
    factor = (1.0 if scale is None else float(scale)) / N
    _cross_entropy_backward(probs, labels, float(label_smoothing), factor, dlogits)
    return dlogits
