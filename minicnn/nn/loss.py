"""Loss modules with PyTorch's names, arguments and defaults (thin layers over ``minicnn.functional``'s
losses): ``loss = criterion(input, target)``, then ``dinput = criterion.backward()``.

The loss is a ``numpy.float64`` scalar for ``reduction="mean"`` (default) or ``"sum"`` and an array
(per element, or per sample for the class losses) for ``"none"``. ``backward(dy=1.0)`` returns
``dy * d loss / d input`` with ``dy`` a real scalar, or an array of the loss's shape for "none".
"""
import numpy as np

from .. import functional as F
from .._validate import choice, float_array, integer, real
from .module import Module

_REDUCTIONS = ("mean", "sum", "none")


class _Loss(Module):
    """A loss: forward ``F.<name>_forward(input, target, **args)``, backward ``F.<name>_backward(ctx, dy)``;
    ``args`` are the attributes named in ``_arg_names`` (each subclass only names its op and its arguments)."""
    _name = None
    _arg_names = ("reduction",)

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = choice("reduction", reduction, _REDUCTIONS)

    def _args(self):
        return {k: getattr(self, k) for k in self._arg_names}

    def forward(self, input, target):
        loss, ctx = getattr(F, self._name + "_forward")(input, target, **self._args())
        self._save_ctx(ctx)
        return loss

    def backward(self, dy=1.0):
        """``dy * d loss / d input`` (input's shape and dtype)."""
        if self.reduction != "none":
            dy = real("dy", dy)
        return getattr(F, self._name + "_backward")(self._pop_ctx(), dy)

    def extra_repr(self):
        return ", ".join(f"{k}={v!r}" for k, v in self._args().items() if not isinstance(v, np.ndarray)
                         and v is not None and (k != "reduction" or v != "mean"))


def _optional_weight(name, weight):
    return None if weight is None else float_array(name, weight, np.float64)


class MSELoss(_Loss):
    """``(input - target)^2``, reduced."""
    _name = "mse_loss"


class L1Loss(_Loss):
    """``|input - target|``, reduced."""
    _name = "l1_loss"


class SmoothL1Loss(_Loss):
    """``d^2 / (2 beta)`` for ``|d| < beta``, else ``|d| - beta / 2`` (``d = input - target``)."""
    _name, _arg_names = "smooth_l1_loss", ("reduction", "beta")

    def __init__(self, reduction="mean", beta=1.0):
        super().__init__(reduction)
        self.beta = real("beta", beta, 0.0)


class HuberLoss(_Loss):
    """``d^2 / 2`` for ``|d| < delta``, else ``delta * (|d| - delta / 2)``."""
    _name, _arg_names = "huber_loss", ("reduction", "delta")

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction)
        self.delta = real("delta", delta, 0.0, low_open=True)


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities ``input`` in [0, 1] (logs clamped at -100, as PyTorch);
    ``weight`` broadcast to the input's shape."""
    _name, _arg_names = "binary_cross_entropy", ("weight", "reduction")

    def __init__(self, weight=None, reduction="mean"):
        super().__init__(reduction)
        self.weight = _optional_weight("weight", weight)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid + binary cross-entropy in one stable formula; ``pos_weight`` weighs the positive term
    (broadcast to the input, usually one per class), ``weight`` every element."""
    _name, _arg_names = "binary_cross_entropy_with_logits", ("weight", "reduction", "pos_weight")

    def __init__(self, weight=None, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        self.weight = _optional_weight("weight", weight)
        self.pos_weight = _optional_weight("pos_weight", pos_weight)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities ``input (N, C)`` / ``(N, C, d1, ...)`` at the
    class indices ``target``; class ``weight`` ``(C,)``, entries equal to ``ignore_index`` skipped."""
    _name, _arg_names = "nll_loss", ("weight", "ignore_index", "reduction")

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        self.weight = _optional_weight("weight", weight)
        self.ignore_index = integer("ignore_index", ignore_index)


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of logits ``(N, C)`` / ``(N, C, d1, ...)`` against class indices
    (``(N,)`` / ``(N, d1, ...)``) or class probabilities (a float target of the logits' shape), with
    class ``weight``, ``ignore_index``, ``reduction`` and ``label_smoothing`` (PyTorch's definitions,
    see ``minicnn.functional.cross_entropy``); log-sum-exp, so any finite logits give a finite loss.
    The default case (2-D logits, indices, no weight) runs one fused kernel pass."""
    _name = "cross_entropy"
    _arg_names = ("weight", "ignore_index", "reduction", "label_smoothing")

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(reduction)
        self.weight = _optional_weight("weight", weight)
        self.ignore_index = integer("ignore_index", ignore_index)
        self.label_smoothing = real("label_smoothing", label_smoothing, 0.0, 1.0)

    def extra_repr(self):
        return f"label_smoothing={self.label_smoothing}" if self.label_smoothing else ""
