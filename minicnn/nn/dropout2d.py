"""Dropout2d: PyTorch's channel dropout layer over ``minicnn.functional.dropout2d``."""
from .. import _validate as V
from .. import functional as F
from ..random import as_rng
from .module import Module


class Dropout2d(Module):
    """``Dropout2d(p=0.5, rng=None)`` on (N, C, H, W) input: in training, each channel ``x[n, c]`` is
    zeroed with probability ``p`` and the others scaled by ``1 / (1 - p)``; in eval mode the identity.
    ``rng`` as ``nn.Dropout``: None draws from minicnn's default generator at each forward, an int
    seeds a private Generator, or pass a ``numpy.random.Generator``."""

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        self.p = V.real("p", p, 0.0, 1.0)
        self.rng = None if rng is None else as_rng(rng)

    def forward(self, x):
        y, ctx = F.dropout2d_forward(x, self.p, self.training, self.rng)
        self._save_ctx(ctx)
        return y

    def backward(self, dy):
        return F.dropout2d_backward(dy, self._pop_ctx())

    def extra_repr(self):
        return f"p={self.p}"
