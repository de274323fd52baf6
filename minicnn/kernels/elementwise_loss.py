"""Elementwise losses (MSE, L1, SmoothL1, Huber, BCE, BCE with logits), forward and backward, on flat
arrays ``x`` (prediction) and ``t`` (target) of one dtype; ``minicnn.functional``'s ``mse_loss`` and
friends call them.

Optional per-element arrays (an EMPTY array means "none"): ``w`` a weight, ``pw`` BCE-with-logits'
``pos_weight`` (both already broadcast to x's shape by the caller). ``p`` is SmoothL1's ``beta`` or
Huber's ``delta``. Serial: a loss is one pass over the network's output, small next to the network.
Per-element losses and the total are float64 (a float32 running sum of a large batch loses digits).

Formulas (PyTorch's): ``d = x - t``;
MSE ``d^2``; L1 ``|d|``; SmoothL1 ``d^2 / (2 beta)`` if ``|d| < beta`` else ``|d| - beta / 2``;
Huber ``d^2 / 2`` if ``|d| < delta`` else ``delta * (|d| - delta / 2)``;
BCE ``-(t * max(log x, -100) + (1 - t) * max(log(1 - x), -100))``;
BCE with logits ``pw * t * softplus(-x) + (1 - t) * softplus(x)``, ``softplus(z) = max(z, 0) +
log1p(exp(-|z|))``: never overflows, and no cancellation (PyTorch's equivalent
``(1 - t) * x + (1 + (pw - 1) t) * softplus(-x)`` gives 0 instead of 1.9e-22 at x = -50, t = 0).
"""
import numpy as np

from .._config import jit

MSE, L1, SMOOTH_L1, HUBER, BCE, BCE_WITH_LOGITS = range(6)


@jit
def _sign(d):
    return 1.0 if d > 0 else (-1.0 if d < 0 else 0.0)


@jit
def _loss_value(op, x, t, p, pw):
    """One element's loss (float64)."""
    x = np.float64(x)
    t = np.float64(t)
    d = x - t
    if op == MSE:
        return d * d
    if op == L1:
        return abs(d)
    if op == SMOOTH_L1:
        return 0.5 * d * d / p if abs(d) < p else abs(d) - 0.5 * p
    if op == HUBER:
        return 0.5 * d * d if abs(d) < p else p * (abs(d) - 0.5 * p)
    if op == BCE:
        log_x = max(np.log(x), -100.0) if x > 0 else -100.0
        log_1mx = max(np.log1p(-x), -100.0) if x < 1 else -100.0
        return -(t * log_x + (1.0 - t) * log_1mx)
    # BCE_WITH_LOGITS: pw * t * softplus(-x) + (1 - t) * softplus(x), softplus(z) = max(z, 0) + log1p(exp(-|z|))
    tail = np.log1p(np.exp(-abs(x)))
    return pw * t * (max(-x, 0.0) + tail) + (1.0 - t) * (max(x, 0.0) + tail)


@jit
def _loss_grad(op, x, t, p, pw):
    """One element's ``d loss / d x`` (float64), PyTorch's subgradients at the kinks."""
    x = np.float64(x)
    t = np.float64(t)
    d = x - t
    if op == MSE:
        return 2.0 * d
    if op == L1:
        return _sign(d)
    if op == SMOOTH_L1:
        return d / p if abs(d) < p else _sign(d)
    if op == HUBER:
        return d if abs(d) < p else p * _sign(d)
    if op == BCE:
        # PyTorch's: (x - t) / max((1 - x) * x, 1e-12)
        return d / max((1.0 - x) * x, 1e-12)
    # BCE_WITH_LOGITS: (pw * t + 1 - t) * sigmoid(x) - pw * t
    s = 1.0 / (1.0 + np.exp(-x)) if x >= 0 else np.exp(x) / (1.0 + np.exp(x))
    return (pw * t + 1.0 - t) * s - pw * t


@jit
def elementwise_loss_forward(x, t, w, pw, op, p, losses):
    """Returns the float64 sum of the per-element losses (times ``w``) and writes them into
    ``losses`` (float64, unless empty)."""
    keep = losses.size > 0
    weighted = w.size > 0
    positive = pw.size > 0
    total = np.float64(0.0)
    for i in range(x.size):
        v = _loss_value(op, x[i], t[i], p, pw[i] if positive else 1.0)
        if weighted:
            v *= w[i]
        total += v
        if keep:
            losses[i] = v
    return total


@jit
def elementwise_loss_backward(x, t, w, pw, op, p, dloss, scale, dx):
    """``dx[i] = scale * dloss[i or 0] * w[i] * d loss_i / d x_i``; ``dloss`` holds one value per
    element (reduction "none") or one for all."""
    per_element = dloss.size == x.size
    weighted = w.size > 0
    positive = pw.size > 0
    for i in range(x.size):
        g = scale * dloss[i if per_element else 0] * _loss_grad(op, x[i], t[i], p, pw[i] if positive else 1.0)
        if weighted:
            g *= w[i]
        dx[i] = g
