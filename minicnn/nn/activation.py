"""ReLU: ``y = max(x, 0)`` elementwise (Numba kernels in ``minicnn.kernels.activation``)."""
import numba
import numpy as np

from .._validate import float_input, grad_array
from ..kernels.activation import (PARALLEL_MIN_SIZE, _relu_backward, _relu_backward_parallel, _relu_forward,
                                  _relu_forward_parallel)
from .module import BackwardBeforeForwardError, Module


class ReLU(Module):
    """Elementwise ``max(x, 0)`` on input of any shape; keeps the input's float dtype.

    Backward uses the saved output (``y > 0`` exactly where ``x > 0``); the gradient at 0 is 0.
    """

    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x):
        x = float_input("x", x)
        y = np.empty_like(x)
        if x.size >= PARALLEL_MIN_SIZE:
            _relu_forward_parallel(x.reshape(-1), y.reshape(-1), numba.get_num_threads())
        else:
            _relu_forward(x.reshape(-1), y.reshape(-1))
        self._y = y
        return y

    def backward(self, dy):
        if self._y is None:
            raise BackwardBeforeForwardError("ReLU.backward called before forward")
        y = self._y
        dy = grad_array("dy", dy, y.shape, y.dtype)
        dx = np.empty_like(y)
        if y.size >= PARALLEL_MIN_SIZE:
            _relu_backward_parallel(dy.reshape(-1), y.reshape(-1), dx.reshape(-1), numba.get_num_threads())
        else:
            _relu_backward(dy.reshape(-1), y.reshape(-1), dx.reshape(-1))
        return dx
