"""Gradient clipping with PyTorch's names and rules: ``clip_grad_norm_`` and ``clip_grad_value_``.

Both act in place on the ``.grad`` of the given parameters that require gradients (frozen parameters
have no gradient to clip, as in PyTorch where their ``.grad`` is None).
"""
import math
import numbers

import numpy as np

from .module import Parameter


def _grads(parameters):
    if isinstance(parameters, Parameter):
        parameters = [parameters]
    try:
        parameters = list(parameters)
    except TypeError:
        raise TypeError(f"parameters must be a Parameter or an iterable of Parameters, got "
                        f"{type(parameters).__name__}") from None
    for i, p in enumerate(parameters):
        if not isinstance(p, Parameter):
            raise TypeError(f"parameters must hold minicnn.nn.Parameter objects, entry {i} is {type(p).__name__}")
    return [p.grad for p in parameters if p.requires_grad]


def _number(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    return float(value)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale the gradients so that their joint ``norm_type``-norm (as if concatenated into one vector)
    is at most ``max_norm``; returns that total norm before clipping (a NumPy float64 scalar).

    PyTorch's rule: ``coef = min(max_norm / (total_norm + 1e-6), 1)`` and every gradient is multiplied
    by ``coef``. ``norm_type`` is a positive number or ``float('inf')`` (the largest absolute entry).
    ``error_if_nonfinite=True`` raises ``RuntimeError`` when the total norm is nan or inf (nothing is
    changed); otherwise such a norm is returned and the gradients are scaled by the resulting coefficient
    (nan/inf), as PyTorch does. Norms are accumulated in float64.
    """
    grads = _grads(parameters)
    max_norm = _number("max_norm", max_norm)
    norm_type = _number("norm_type", norm_type)
    if norm_type <= 0:
        raise ValueError(f"norm_type must be > 0 (or inf), got {norm_type}")
    if not grads:
        return np.float64(0.0)
    if math.isinf(norm_type):
        total = max(float(np.max(np.abs(g))) if g.size else 0.0 for g in grads)
    else:
        norms = np.array([np.linalg.norm(g.reshape(-1).astype(np.float64), norm_type) if g.size else 0.0
                          for g in grads])
        total = float(np.linalg.norm(norms, norm_type))
    total = np.float64(total)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients is non-finite ({total}), so "
                           f"it cannot be clipped; set error_if_nonfinite=False to clip anyway")
    coef = min(max_norm / (total + 1e-6), 1.0) if np.isfinite(total) else max_norm / (total + 1e-6)
    if coef != 1.0:
        for g in grads:
            g *= g.dtype.type(coef)
    return total


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient entry into ``[-clip_value, clip_value]``, in place (``clip_value`` >= 0)."""
    grads = _grads(parameters)
    clip_value = _number("clip_value", clip_value)
    if clip_value < 0:
        raise ValueError(f"clip_value must be >= 0, got {clip_value}")
    for g in grads:
        np.clip(g, -clip_value, clip_value, out=g)
