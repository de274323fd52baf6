"""Inverted dropout: in training, zero each element with probability ``p`` and scale the rest by
``1 / (1 - p)``, so that eval mode (the identity) needs no rescaling."""
import numbers

import numpy as np

from .._validate import float_input, grad_array
from ..random import as_rng
from .module import BackwardBeforeForwardError, Module


class Dropout(Module):
    """``Dropout(p=0.5, rng=None)`` on input of any shape; keeps the input's float dtype.

    ``p`` must be in ``[0, 1]``. ``p = 0`` is the identity; ``p = 1`` zeroes everything (output and
    gradient), as PyTorch. The mask is drawn from ``rng``: ``None`` uses the default generator at
    each forward (so ``minicnn.manual_seed`` fixes it), an int seeds a private Generator, or pass a
    ``numpy.random.Generator``. ``self.rng`` may be reassigned, e.g. to replay the same mask.
    In eval mode forward and backward are the identity.
    """

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        if not isinstance(p, numbers.Real) or isinstance(p, bool):
            raise TypeError(f"dropout probability p must be a number, got {p!r}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability p must be in [0, 1], got {p}")
        self.p = float(p)
        self.rng = None if rng is None else as_rng(rng)
        self._mask = None      # 0 or 1/(1-p) per element; None in eval mode
        self._y_shape = None

    def forward(self, x):
        x = float_input("x", x)
        self._y_shape, self._dtype = x.shape, x.dtype
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        if self.p == 1.0:
            self._mask = np.zeros_like(x)
            return np.zeros_like(x)
        keep = as_rng(self.rng).random(x.shape, dtype=x.dtype) >= self.p
        self._mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.p))
        return x * self._mask

    def backward(self, dy):
        if self._y_shape is None:
            raise BackwardBeforeForwardError("Dropout.backward called before forward")
        dy = grad_array("dy", dy, self._y_shape, self._dtype)
        return dy if self._mask is None else dy * self._mask

    def extra_repr(self):
        return f"p={self.p}"
