"""Weight initialisation as PyTorch does it, drawing from a ``numpy.random.Generator``.

Each function fills ``tensor`` (an ndarray or a Parameter) in place and returns it. ``rng`` is a
Generator, an int seed, or ``None`` for the default generator (``minicnn.manual_seed``).
"""
import math

import numpy as np

from ..random import as_rng
from .module import Parameter


def _array(tensor):
    return tensor.data if isinstance(tensor, Parameter) else tensor


def _fans(shape):
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a tensor of at least 2 dimensions, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for ``nonlinearity`` (as ``torch.nn.init.calculate_gain``)."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    raise ValueError(f"nonlinearity must be one of linear, conv2d, sigmoid, tanh, relu, leaky_relu; got {nonlinearity!r}")


def _fan(shape, mode):
    fan_in, fan_out = _fans(shape)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")


def uniform_(tensor, a=0.0, b=1.0, rng=None):
    arr = _array(tensor)
    arr[...] = as_rng(rng).uniform(a, b, size=arr.shape)
    return tensor


def normal_(tensor, mean=0.0, std=1.0, rng=None):
    arr = _array(tensor)
    arr[...] = as_rng(rng).normal(mean, std, size=arr.shape)
    return tensor


def zeros_(tensor):
    _array(tensor)[...] = 0
    return tensor


def ones_(tensor):
    _array(tensor)[...] = 1
    return tensor


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", rng=None):
    arr = _array(tensor)
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(arr.shape, mode))
    return uniform_(tensor, -bound, bound, rng)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", rng=None):
    arr = _array(tensor)
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(arr.shape, mode))
    return normal_(tensor, 0.0, std, rng)


def xavier_uniform_(tensor, gain=1.0, rng=None):
    fan_in, fan_out = _fans(_array(tensor).shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, rng)


def xavier_normal_(tensor, gain=1.0, rng=None):
    fan_in, fan_out = _fans(_array(tensor).shape)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng)


def reset_default_(weight, bias=None, rng=None):
    """PyTorch's default for Conv2d and Linear: Kaiming-uniform with a=sqrt(5), bias U(-1/sqrt(fan_in), ..)."""
    rng = as_rng(rng)
    kaiming_uniform_(weight, a=math.sqrt(5), rng=rng)
    if bias is not None:
        fan_in, _ = _fans(_array(weight).shape)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        uniform_(bias, -bound, bound, rng)
