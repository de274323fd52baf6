"""Fully connected layer: ``y = x @ weight.T + bias`` (``minicnn.functional.linear``)."""
import numpy as np

from .. import functional as F
from .._validate import float_array, float_dtype, positive_int
from . import init
from .module import Module, Parameter, grad_target, param_data


class Linear(Module):
    """``Linear(in_features, out_features)``: input ``(N, in_features)``, output ``(N, out_features)``.

    ``weight`` is ``(out_features, in_features)`` and ``bias`` ``(out_features,)``, initialised as
    PyTorch does (Kaiming-uniform with ``a=sqrt(5)``, bias ``U(-1/sqrt(in), 1/sqrt(in))``).
    The input is cast to the layer's dtype. The products run in Numba kernels, one block of samples
    per thread (see ``minicnn.set_num_threads``).
    """

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, rng=None):
        super().__init__()
        self.in_features = positive_int("in_features", in_features)
        self.out_features = positive_int("out_features", out_features)
        self.dtype = float_dtype("dtype", dtype)
        self.weight = Parameter(np.empty((self.out_features, self.in_features), self.dtype))
        self.bias = Parameter(np.empty(self.out_features, self.dtype)) if bias else None
        init.reset_default_(self.weight, self.bias, rng=rng)

    def forward(self, x):
        x = float_array("x", x, self.dtype)
        y, ctx = F.linear_forward(x, self.weight.data, param_data(self.bias))
        self._save_ctx(ctx)
        return y

    def backward(self, dy):
        """``dy (N, out_features)`` -> ``dx (N, in_features)``; adds into ``weight.grad`` and ``bias.grad``."""
        dx, _, _ = F.linear_backward(dy, self._pop_ctx(), dweight=grad_target(self.weight),
                                     dbias=grad_target(self.bias))
        return dx

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
