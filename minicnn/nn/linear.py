"""Fully connected layer: ``y = x @ weight.T + bias`` (Numba kernels in ``minicnn.kernels.linear``)."""
import numpy as np

from .._config import kernel_blas_single_threaded, thread_blocks
from .._validate import float_array, float_dtype, grad_array, positive_int
from ..kernels.linear import _linear_backward, _linear_forward
from . import init
from .module import BackwardBeforeForwardError, Module, Parameter


class Linear(Module):
    """``Linear(in_features, out_features)``: input ``(N, in_features)``, output ``(N, out_features)``.

    ``weight`` is ``(out_features, in_features)`` and ``bias`` ``(out_features,)``, initialised as
    PyTorch does (Kaiming-uniform with ``a=sqrt(5)``, bias ``U(-1/sqrt(in), 1/sqrt(in))``).
    The products run in Numba kernels, one block of samples per thread (see ``minicnn.set_num_threads``).
    """

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, rng=None):
        super().__init__()
        self.in_features = positive_int("in_features", in_features)
        self.out_features = positive_int("out_features", out_features)
        self.dtype = float_dtype("dtype", dtype)
        self.weight = Parameter(np.empty((self.out_features, self.in_features), self.dtype))
        self.bias = Parameter(np.empty(self.out_features, self.dtype)) if bias else None
        init.reset_default_(self.weight, self.bias, rng=rng)
        self._zero_bias = np.zeros(self.out_features, self.dtype)  # stands in for a missing bias
        self._scratch = None  # (weight_parts, bias_parts) reused by backward
        self._x = None

    def forward(self, x):
        x = float_array("x", x, self.dtype, ndim=2, shape_hint="(N, in_features)")
        if x.shape[1] != self.in_features:
            raise ValueError(
                f"Linear expected input of shape (N, {self.in_features}) (in_features={self.in_features}), "
                f"got shape {x.shape}")
        N = x.shape[0]
        y = np.empty((N, self.out_features), self.dtype)
        self._x = x
        if N == 0:
            return y
        kernel_blas_single_threaded()
        bias = self._zero_bias if self.bias is None else self.bias.data
        _linear_forward(x, self.weight.data, bias, thread_blocks(N), y)
        return y

    def backward(self, dy):
        """``dy (N, out_features)`` -> ``dx (N, in_features)``; adds into ``weight.grad`` and ``bias.grad``."""
        if self._x is None:
            raise BackwardBeforeForwardError("Linear.backward called before forward")
        x = self._x
        N, F, K = x.shape[0], self.out_features, self.in_features
        dy = grad_array("dy", dy, (N, F), self.dtype)
        dx = np.empty((N, K), self.dtype)
        if N == 0:
            return dx
        nb = thread_blocks(N)
        if self._scratch is None or self._scratch[0].shape[0] != nb:
            self._scratch = (np.empty((nb, F, K), self.dtype), np.empty((nb, F), self.dtype))
        kernel_blas_single_threaded()
        bias_grad = self._zero_bias[:0] if self.bias is None else self.bias.grad  # empty: no bias gradient
        _linear_backward(dy, x, self.weight.data, nb, *self._scratch, self.weight.grad, bias_grad, True, dx)
        return dx

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
