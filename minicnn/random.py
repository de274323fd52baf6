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


def get_rng_state(rng):
    """The state of a PCG64 ``numpy.random.Generator`` (NumPy's default) as 6 uint64 words (its 128-bit
    integers split in two), an array that ``minicnn.save`` stores exactly."""
    state = rng.bit_generator.state
    if state["bit_generator"] != "PCG64":
        raise TypeError(f"only PCG64 generators' states can be saved, got {state['bit_generator']}")
    s, inc = state["state"]["state"], state["state"]["inc"]
    mask = (1 << 64) - 1
    return np.array([s >> 64, s & mask, inc >> 64, inc & mask, state["has_uint32"], state["uinteger"]],
                    dtype=np.uint64)


def set_rng_state(rng, words):
    """Restore a state from ``get_rng_state`` into the PCG64 generator ``rng``."""
    if rng.bit_generator.state["bit_generator"] != "PCG64":
        raise TypeError(f"only PCG64 generators' states can be restored, got {rng.bit_generator.state['bit_generator']}")
    words = [int(w) for w in np.asarray(words, dtype=np.uint64).reshape(-1)]
    if len(words) != 6:
        raise ValueError(f"a generator state must hold 6 uint64 words, got {len(words)}")
    rng.bit_generator.state = {"bit_generator": "PCG64",
                               "state": {"state": (words[0] << 64) | words[1], "inc": (words[2] << 64) | words[3]},
                               "has_uint32": words[4], "uinteger": words[5]}
