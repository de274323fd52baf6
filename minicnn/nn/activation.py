"""Activations: thin layers over ``minicnn.functional``'s activations (ReLU, LeakyReLU, ELU, GELU, SiLU,
Sigmoid, Tanh, Hardswish, ReLU6, PReLU, Softmax, LogSoftmax) and Identity."""
import numpy as np

from .. import functional as F
from .._validate import choice, float_dtype, integer, positive_int, real
from .module import Module, Parameter, grad_target


class ReLU(Module):
    """Elementwise ``max(x, 0)`` on input of any shape; keeps the input's float dtype.

    Backward uses the saved output (``y > 0`` exactly where ``x > 0``); the gradient at 0 is 0.
    """

    def forward(self, x):
        y, ctx = F.relu_forward(x)
        self._save_ctx(ctx)
        return y

    def backward(self, dy):
        return F.relu_backward(dy, self._pop_ctx())


# -- activations over minicnn.functional.activation ------------------------------------------------
class _Elementwise(Module):
    """An activation without parameters: forward ``F.<name>_forward(x, **args)``, backward
    ``F.<name>_backward(dy, ctx)``; any input shape, the input's float dtype. ``args`` are the
    attributes named in ``_arg_names`` (each subclass only names its op and its arguments)."""
    _name = None
    _arg_names = ()

    def _args(self):
        return {k: getattr(self, k) for k in self._arg_names}

    def forward(self, x):
        y, ctx = getattr(F, self._name + "_forward")(x, **self._args())
        self._save_ctx(ctx)
        return y

    def backward(self, dy):
        return getattr(F, self._name + "_backward")(dy, self._pop_ctx())

    def extra_repr(self):
        return ", ".join(f"{k}={v!r}" for k, v in self._args().items())


class LeakyReLU(_Elementwise):
    """``x if x > 0 else negative_slope * x``."""
    _name, _arg_names = "leaky_relu", ("negative_slope",)

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = real("negative_slope", negative_slope)


class ELU(_Elementwise):
    """``x if x > 0 else alpha * (exp(x) - 1)``."""
    _name, _arg_names = "elu", ("alpha",)

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = real("alpha", alpha)


class GELU(_Elementwise):
    """``x * Phi(x)`` (``approximate="none"``) or its tanh approximation (``approximate="tanh"``)."""
    _name, _arg_names = "gelu", ("approximate",)

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = choice("approximate", approximate, ("none", "tanh"))


class SiLU(_Elementwise):
    """``x * sigmoid(x)`` (also called swish)."""
    _name = "silu"


class Sigmoid(_Elementwise):
    """``1 / (1 + exp(-x))``, stable at any input."""
    _name = "sigmoid"


class Tanh(_Elementwise):
    """``tanh(x)``."""
    _name = "tanh"


class Hardswish(_Elementwise):
    """``x * relu6(x + 3) / 6``."""
    _name = "hardswish"


class ReLU6(_Elementwise):
    """``min(max(x, 0), 6)``."""
    _name = "relu6"


class Softmax(_Elementwise):
    """Softmax along ``dim`` (``dim=None``: PyTorch's legacy choice, 0 for 0-, 1- and 3-D input, else 1)."""
    _name, _arg_names = "softmax", ("dim",)

    def __init__(self, dim=None):
        super().__init__()
        self.dim = None if dim is None else integer("dim", dim)

    def forward(self, x):
        dim = self.dim
        if dim is None:
            dim = 0 if np.ndim(x) in (0, 1, 3) else 1
        y, ctx = getattr(F, self._name + "_forward")(x, dim)
        self._save_ctx(ctx)
        return y


class LogSoftmax(Softmax):
    """Log-softmax along ``dim`` (by log-sum-exp); ``dim=None`` as in :class:`Softmax`."""
    _name = "log_softmax"


class Identity(Module):
    """``y = x`` (returns the input itself, as PyTorch); backward returns ``dy``. Any arguments are
    accepted and ignored, as in PyTorch."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        self._save_ctx(np.shape(x))
        return x

    def backward(self, dy):
        shape = self._pop_ctx()
        if np.shape(dy) != shape:
            raise ValueError(f"dy must have the output's shape {shape}, got {np.shape(dy)}")
        return dy


class PReLU(Module):
    """``x if x > 0 else weight[c] * x`` with a learnable slope per channel (dim 1) when
    ``num_parameters > 1`` (it must equal the input's channels), else one shared slope; ``weight``
    starts at ``init``."""

    def __init__(self, num_parameters=1, init=0.25, dtype=np.float32):
        super().__init__()
        self.num_parameters = positive_int("num_parameters", num_parameters)
        init = real("init", init)
        self.weight = Parameter(np.full(self.num_parameters, init, float_dtype("dtype", dtype)))

    def forward(self, x):
        y, ctx = F.prelu_forward(x, self.weight.data)
        self._save_ctx(ctx)
        return y

    def backward(self, dy):
        dx, _ = F.prelu_backward(dy, self._pop_ctx(), dweight=grad_target(self.weight))
        return dx

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"
