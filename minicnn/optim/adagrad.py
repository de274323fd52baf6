"""Adagrad (Duchi, Hazan & Singer), with PyTorch's update rule."""
import numpy as np

from .._config import jit
from .._validate import boolean, real
from .optimizer import Optimizer, check_lr


@jit
def _adagrad_update(param, grad, state_sum, sign, weight_decay, clr, eps):
    """One Adagrad step on flat arrays, in place, in the parameter's dtype and PyTorch's order."""
    dt = param.dtype.type
    sign, weight_decay, clr, eps = dt(sign), dt(weight_decay), dt(clr), dt(eps)
    for i in range(param.shape[0]):
        g = sign * grad[i] + weight_decay * param[i]
        s = state_sum[i] + g * g
        state_sum[i] = s
        param[i] = param[i] - clr * (g / (np.sqrt(s) + eps))


class Adagrad(Optimizer):
    """Adagrad, PyTorch's ``torch.optim.Adagrad`` update rule.

    For each parameter ``p`` with gradient ``g`` (negated if ``maximize``), at step ``t = 1, 2, ...``::

        g = g + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g                          (s starts at initial_accumulator_value)
        p = p - clr * g / (sqrt(s) + eps)

    State per parameter: ``'step'`` and ``'sum'`` (s), created at construction as PyTorch does.
    Frozen parameters (``requires_grad=False``) are skipped.
    """

    _state_spec = {"step": "count", "sum": "array"}
    _required_state = ("step", "sum")

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10, *,
                 maximize=False):
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps, maximize=maximize)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    def _init_state(self, p, group):
        self.state[p] = {"step": 0, "sum": np.full_like(p.data, group["initial_accumulator_value"])}

    def _check_group(self, group, loading=False):
        group["lr"] = check_lr(group["lr"], allow_zero=loading)
        group["lr_decay"] = real("lr_decay value", group["lr_decay"], 0.0)
        group["weight_decay"] = real("weight_decay value", group["weight_decay"], 0.0)
        group["initial_accumulator_value"] = real("initial_accumulator_value", group["initial_accumulator_value"], 0.0)
        group["eps"] = real("epsilon value (eps)", group["eps"], 0.0)
        group["maximize"] = boolean("maximize", group["maximize"])

    def step(self, closure=None):
        """Update every parameter once, in place; returns ``closure()`` if given (called first)."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            lr, lr_decay, eps = float(group["lr"]), float(group["lr_decay"]), float(group["eps"])
            weight_decay = float(group["weight_decay"])
            sign = -1.0 if group["maximize"] else 1.0
            for p, data, grad in self._trainable(group):
                state = self.state.get(p)
                if not state:  # a group added later, or a loaded empty state
                    self._init_state(p, group)
                    state = self.state[p]
                state["step"] += 1
                clr = lr / (1.0 + (state["step"] - 1) * lr_decay)
                _adagrad_update(data, grad, state["sum"].reshape(-1), sign, weight_decay, clr, eps)
        return loss
