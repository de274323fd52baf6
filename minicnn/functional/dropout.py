"""Inverted dropout: ``dropout`` (PyTorch's ``F.dropout``), ``dropout_forward`` -> ``(y, DropoutCtx)``,
``dropout_backward``. In training each element is zeroed with probability ``p`` and the rest scaled
by ``1 / (1 - p)``, so that eval mode (the identity) needs no rescaling."""
from typing import NamedTuple, Optional

import numpy as np

from .._validate import boolean, float_input, grad_array, real
from ..random import as_rng


class DropoutCtx(NamedTuple):
    """What ``dropout_backward`` needs: ``mask`` (0 or ``1 / (1 - p)`` per element, x's shape and
    dtype; None when the forward was the identity), and the output's ``shape`` and ``dtype``."""
    mask: Optional[np.ndarray]
    shape: tuple
    dtype: np.dtype


def dropout_forward(x, p=0.5, training=True, rng=None):
    """``y = x * mask`` for ``x`` of any shape; returns ``(y, DropoutCtx)``.

    ``p`` in ``[0, 1]``: ``p = 0`` or ``training=False`` is the identity (``y`` is ``x`` itself, as
    PyTorch), ``p = 1`` zeroes everything. The mask is drawn from ``rng`` (``minicnn.random.as_rng``:
    None is the default generator, so ``minicnn.manual_seed`` fixes it; an int seed; a Generator).
    """
    x = float_input("x", x)
    p = real("p", p, 0.0, 1.0)
    training = boolean("training", training)
    rng = as_rng(rng)
    if not training or p == 0.0:
        return x, DropoutCtx(None, x.shape, x.dtype)
    if p == 1.0:
        mask = np.zeros_like(x)
        return np.zeros_like(x), DropoutCtx(mask, x.shape, x.dtype)
    keep = rng.random(x.shape, dtype=x.dtype) >= p
    mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return x * mask, DropoutCtx(mask, x.shape, x.dtype)


def dropout(x, p=0.5, training=True, rng=None):
    """Inverted dropout of ``x`` (see :func:`dropout_forward`)."""
    return dropout_forward(x, p, training, rng)[0]


def dropout_backward(dy, ctx):
    """``dx = dy * mask`` (``dy`` itself after an identity forward), ``dy`` of the output's shape."""
    dy = grad_array("dy", dy, ctx.shape, ctx.dtype)
    return dy if ctx.mask is None else dy * ctx.mask
