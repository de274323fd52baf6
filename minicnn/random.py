"""The default random generator that layers draw their initial weights from.

``minicnn.manual_seed(s)`` resets it, so that one seed fixes every initialisation, as
``torch.manual_seed`` does. Every function that draws also takes an explicit ``rng``.
"""
import numpy as np

from ._validate import _is_int

_default = np.random.default_rng(0)


def manual_seed(seed):
    """Reset the default generator to ``np.random.default_rng(seed)`` and return it."""
    global _default
    _default = np.random.default_rng(seed)
    return _default


def default_rng():
    """The current default generator."""
    return _default


def as_rng(rng):
    """``rng`` as a Generator: ``None`` means the default generator, an int seeds a new one."""
    if rng is None:
        return _default
    if isinstance(rng, np.random.Generator):
        return rng
    if _is_int(rng):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator, got {type(rng).__name__}")
