"""Activations: ``relu`` (``relu_forward`` -> ``(y, ReLUCtx)``, ``relu_backward``), elementwise on
arrays of any shape; kernels in ``minicnn.kernels.activation``."""
from typing import NamedTuple

import numpy as np

from .._config import ELEMENTWISE_PARALLEL_MIN_SIZE, get_num_threads
from .._validate import float_input, grad_array
from ..kernels.activation import _relu_backward, _relu_backward_parallel, _relu_forward, _relu_forward_parallel


def run_elementwise(serial, parallel, *arrays):
    """Run an elementwise kernel on same-sized arrays, flattened: ``serial(*flat)`` below
    ``ELEMENTWISE_PARALLEL_MIN_SIZE`` values, else ``parallel(*flat, n_threads)`` (one chunk per thread)."""
    flat = [a.reshape(-1) for a in arrays]
    if flat[0].size >= ELEMENTWISE_PARALLEL_MIN_SIZE:
        parallel(*flat, get_num_threads())
    else:
        serial(*flat)


class ReLUCtx(NamedTuple):
    """What ``relu_backward`` needs: the forward output ``y`` (``y > 0`` exactly where ``x > 0``)."""
    y: np.ndarray


def relu_forward(x):
    """``y = max(x, 0)`` elementwise on ``x`` of any shape (NaN stays NaN); returns ``(y, ReLUCtx)``."""
    x = float_input("x", x)
    y = np.empty_like(x)
    run_elementwise(_relu_forward, _relu_forward_parallel, x, y)
    return y, ReLUCtx(y)


def relu(x):
    """``max(x, 0)`` elementwise, of ``x``'s shape (see :func:`relu_forward`)."""
    return relu_forward(x)[0]


def relu_backward(dy, ctx):
    """``dx = dy * (y > 0)`` (the gradient at 0 is 0, as PyTorch), ``dy`` of the output's shape."""
    y = ctx.y
    dy = grad_array("dy", dy, y.shape, y.dtype)
    dx = np.empty_like(y)
    run_elementwise(_relu_backward, _relu_backward_parallel, dy, y, dx)
    return dx
