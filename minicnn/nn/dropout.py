"""Inverted dropout (``minicnn.functional.dropout``): in training, zero each element with probability
``p`` and scale the rest by ``1 / (1 - p)``, so that eval mode (the identity) needs no rescaling."""
from .. import functional as F
from .._validate import real
from ..random import as_rng
from .module import Module


class _DropoutNd(Module):
    """What Dropout and Dropout2d share (as PyTorch's ``_DropoutNd``): ``p`` in ``[0, 1]``, ``rng`` and
    one functional call forward (``F.<_name>_forward(x, p, training, rng)``) and one backward."""
    _name = None

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        self.p = real("p", p, 0.0, 1.0)
        self.rng = None if rng is None else as_rng(rng)

    def forward(self, x):
        y, ctx = getattr(F, self._name + "_forward")(x, self.p, self.training, self.rng)
        self._save_ctx(ctx)
        return y

    def backward(self, dy):
        return getattr(F, self._name + "_backward")(dy, self._pop_ctx())

    def extra_repr(self):
        return f"p={self.p}"


class Dropout(_DropoutNd):
    """``Dropout(p=0.5, rng=None)`` on input of any shape; keeps the input's float dtype.

    ``p`` must be in ``[0, 1]``. ``p = 0`` is the identity; ``p = 1`` zeroes everything (output and
    gradient), as PyTorch. The mask is drawn from ``rng``: ``None`` uses the default generator at
    each forward (so ``minicnn.manual_seed`` fixes it), an int seeds a private Generator, or pass a
    ``numpy.random.Generator``. ``self.rng`` may be reassigned, e.g. to replay the same mask.
    In eval mode forward and backward are the identity.
    """
    _name = "dropout"
