"""Fully connected layer: ``y = x @ weight.T + bias`` (matrix products go to BLAS through NumPy)."""
import numpy as np

from .._validate import float_array, float_dtype, grad_array, positive_int
from . import init
from .module import BackwardBeforeForwardError, Module, Parameter


class Linear(Module):
    """``Linear(in_features, out_features)``: input ``(N, in_features)``, output ``(N, out_features)``.

    ``weight`` is ``(out_features, in_features)`` and ``bias`` ``(out_features,)``, initialised as
    PyTorch does (Kaiming-uniform with ``a=sqrt(5)``, bias ``U(-1/sqrt(in), 1/sqrt(in))``).
    """

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, rng=None):
        super().__init__()
        self.in_features = positive_int("in_features", in_features)
        self.out_features = positive_int("out_features", out_features)
        self.dtype = float_dtype("dtype", dtype)
        self.weight = Parameter(np.empty((self.out_features, self.in_features), self.dtype))
        self.bias = Parameter(np.empty(self.out_features, self.dtype)) if bias else None
        init.reset_default_(self.weight, self.bias, rng=rng)
        self._x = None

    def forward(self, x):
        x = float_array("x", x, self.dtype, ndim=2, shape_hint="(N, in_features)")
        if x.shape[1] != self.in_features:
            raise ValueError(
                f"Linear expected input of shape (N, {self.in_features}) (in_features={self.in_features}), "
                f"got shape {x.shape}")
        self._x = x
        y = x @ self.weight.data.T
        if self.bias is not None:
            y += self.bias.data
        return y

    def backward(self, dy):
        """``dy (N, out_features)`` -> ``dx (N, in_features)``; adds into ``weight.grad`` and ``bias.grad``."""
        if self._x is None:
            raise BackwardBeforeForwardError("Linear.backward called before forward")
        x = self._x
        dy = grad_array("dy", dy, (x.shape[0], self.out_features), self.dtype)
        self.weight.grad += dy.T @ x
        if self.bias is not None:
            self.bias.grad += dy.sum(axis=0)
        return dy @ self.weight.data

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
