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
def softmax_cross_entropy_kernel(logits, labels, smoothing, probs, losses):
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
def cross_entropy_backward_kernel(probs, labels, smoothing, scale, dlogits):
    """``dlogits[n, k] = scale * (probs[n, k] - s / K - (1 - s) * [k == labels[n]])``."""
    N, K = probs.shape
    uniform = smoothing / K
    for n in range(N):
        for k in range(K):
            dlogits[n, k] = scale * (probs[n, k] - uniform)
        dlogits[n, labels[n]] -= scale * (1.0 - smoothing)


# -- the general path: weights, ignore_index, any reduction, (N, C, L) input, class-probability targets --
# ``logp`` (N, C, L) are log-probabilities (``nll_loss``'s input, or log_softmax of the logits); rows are
# the (n, l) pairs. ``w`` (C,) class weights, EMPTY for none. ``dloss`` holds one value per row
# (reduction "none", ``per_row``) or one for all; ``scale`` the reduction's factor.
@jit
def _class_weight(w, c):
    return w[c] if w.size > 0 else 1.0


@jit
def nll_forward(logp, target, w, ignore_index, smoothing, losses):
    """Per row: ``losses[n, l] = (1 - s) * -w[y] * logp[y] + s / C * sum_c -w[c] * logp[c]`` (0 where
    ``y == ignore_index``); returns the sum of ``w[y]`` over the rows not ignored (the mean's divisor)."""
    N, C, L = logp.shape
    total_weight = np.float64(0.0)
    for n in range(N):
        for i in range(L):
            y = target[n, i]
            if y == ignore_index:
                losses[n, i] = 0.0
                continue
            wy = _class_weight(w, y)
            total_weight += wy
            v = -(1.0 - smoothing) * wy * logp[n, y, i]
            if smoothing > 0:
                acc = np.float64(0.0)
                for c in range(C):
                    acc += _class_weight(w, c) * logp[n, c, i]
                v -= smoothing / C * acc
            losses[n, i] = v
    return total_weight


@jit
def nll_backward(target, w, ignore_index, dloss, per_row, scale, dlogp):
    """``dlogp[n, y, l] = -scale * dloss * w[y]`` at each row's target (``dlogp`` zeroed by the caller)."""
    N, C, L = dlogp.shape
    for n in range(N):
        for i in range(L):
            y = target[n, i]
            if y != ignore_index:
                g = dloss[n * L + i] if per_row else dloss[0]
                dlogp[n, y, i] = -scale * g * _class_weight(w, y)


@jit
def cross_entropy_general_backward(logp, target, w, ignore_index, smoothing, dloss, per_row, scale, dx):
    """Gradient w.r.t. the LOGITS of :func:`nll_forward` applied to ``logp = log_softmax(logits)``:
    ``dx[c] = g * (p[c] * S - (1 - s) * w[y] * [c == y] - s / C * w[c])`` with ``p = exp(logp)``,
    ``S = (1 - s) * w[y] + s / C * sum_k w[k]`` and ``g = scale * dloss`` (0 for ignored rows)."""
    N, C, L = logp.shape
    w_sum = np.float64(C)
    if w.size > 0:
        w_sum = 0.0
        for c in range(C):
            w_sum += w[c]
    for n in range(N):
        for i in range(L):
            y = target[n, i]
            if y == ignore_index:
                for c in range(C):
                    dx[n, c, i] = 0
                continue
            g = scale * (dloss[n * L + i] if per_row else dloss[0])
            wy = _class_weight(w, y)
            S = (1.0 - smoothing) * wy + smoothing / C * w_sum
            for c in range(C):
                dx[n, c, i] = g * (np.exp(logp[n, c, i]) * S - smoothing / C * _class_weight(w, c))
            dx[n, y, i] -= g * (1.0 - smoothing) * wy


@jit
def soft_cross_entropy_forward(logp, target, w, smoothing, losses):
    """Class-probability targets ``target (N, C, L)``: ``losses[n, l] = -sum_c w[c] * t'[c] * logp[c]``
    with ``t' = (1 - s) * t + s / C``."""
    N, C, L = logp.shape
    for n in range(N):
        for i in range(L):
            acc = np.float64(0.0)
            for c in range(C):
                acc += _class_weight(w, c) * ((1.0 - smoothing) * target[n, c, i] + smoothing / C) * logp[n, c, i]
            losses[n, i] = -acc


@jit
def soft_cross_entropy_backward(logp, target, w, smoothing, dloss, per_row, scale, dx):
    """``dx[c] = g * (p[c] * sum_k w[k] t'[k] - w[c] t'[c])``, ``g = scale * dloss``."""
    N, C, L = logp.shape
    for n in range(N):
        for i in range(L):
            g = scale * (dloss[n * L + i] if per_row else dloss[0])
            S = np.float64(0.0)
            for c in range(C):
                S += _class_weight(w, c) * ((1.0 - smoothing) * target[n, c, i] + smoothing / C)
            for c in range(C):
                tc = (1.0 - smoothing) * target[n, c, i] + smoothing / C
                dx[n, c, i] = g * (np.exp(logp[n, c, i]) * S - _class_weight(w, c) * tc)
