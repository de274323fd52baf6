"""Dropout2d: PyTorch's channel dropout layer over ``minicnn.functional.dropout2d``."""
from .dropout import _DropoutNd


class Dropout2d(_DropoutNd):
    """``Dropout2d(p=0.5, rng=None)`` on (N, C, H, W) input: in training, each channel ``x[n, c]`` is
    zeroed with probability ``p`` and the others scaled by ``1 / (1 - p)``; in eval mode the identity.
    ``rng`` as ``nn.Dropout``: None draws from minicnn's default generator at each forward, an int
    seeds a private Generator, or pass a ``numpy.random.Generator``."""
    _name = "dropout2d"
