"""Softmax cross-entropy kernels on logits ``(N, K)`` with integer labels ``(N,)``, with label smoothing;
``minicnn.functional.cross_entropy`` calls them.

One serial pass per row (N x K is tiny next to the network): max, shifted exponentials, their sum; the loss is computed
from shifted logits ``z - max`` so it stays finite for any finite logits (log-sum-exp trick).
"""
import numpy as np

from .._config import jit


@jit
def _row_max(row):
    """The largest entry of the 1-D ``row``."""
    top = row[0]
    for k in range(1, row.shape[0]):
        if row[k] > top:
            top = row[k]
    return top


@jit
def _softmax_row(z, top, p):
    """``p = softmax(z)`` computed from ``z - top``; returns ``(log(sum(exp(z - top))), sum(z - top))``
    (float64 sums, also when run without the JIT)."""
    K = z.shape[0]
    total = np.float64(0.0)
    shifted_sum = np.float64(0.0)
    for k in range(K):
        d = z[k] - top
        e = np.exp(d)
        p[k] = e
        total += e
        shifted_sum += d
    inv = 1.0 / total
    for k in range(K):
        p[k] *= inv
    return np.log(total), shifted_sum


@jit
def _softmax_cross_entropy(logits, labels, smoothing, probs, losses):
    """Per row n: ``probs[n] = softmax(logits[n])`` and
    ``losses[n] = (1 - s) * (lse - z_y) + s * (lse - mean_k z_k)`` with ``lse = log(sum(exp(z)))``.
    """
    N, K = logits.shape
    for n in range(N):
        top = _row_max(logits[n])
        log_total, shifted_sum = _softmax_row(logits[n], top, probs[n])  # log_total = lse - top
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
