"""Adam and AdamW (decoupled weight decay), with PyTorch's update rules."""
import numpy as np

from .._config import jit
from .._validate import boolean, real
from .optimizer import Optimizer, check_lr, param_views


# The kernels compute in the parameter's dtype, in PyTorch's operation order, and have no
# data-dependent branches in their loops so that LLVM vectorises them (float32 here is ~4x faster
# than float64 arithmetic with branches). Options become coefficients: ``sign`` = -1 for maximize,
# ``decay`` = 1 - lr * weight_decay (AdamW, else 1), ``l2`` = weight_decay (Adam, else 0).


@jit
def _adam_update(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, amsgrad, sign, decay, l2, one_minus_beta1,
                 beta2, one_minus_beta2, eps, step_size, bias_correction2_sqrt):
    """One Adam/AdamW step on flat arrays, in place. With ``amsgrad`` the step normalises by the running
    maximum of ``exp_avg_sq``, kept in ``max_exp_avg_sq`` (not touched otherwise; the branch does not
    depend on the data, so LLVM hoists it out of the loop)."""
    dt = param.dtype.type  # scalars arrive as Python floats (fast dispatch) and are cast here
    sign, decay, l2, one_minus_beta1, beta2 = dt(sign), dt(decay), dt(l2), dt(one_minus_beta1), dt(beta2)
    one_minus_beta2, eps, step_size = dt(one_minus_beta2), dt(eps), dt(step_size)
    bias_correction2_sqrt = dt(bias_correction2_sqrt)
    for i in range(param.shape[0]):
        p = param[i] * decay
        g = sign * grad[i] + l2 * p
        m = exp_avg[i] + one_minus_beta1 * (g - exp_avg[i])
        v = beta2 * exp_avg_sq[i] + one_minus_beta2 * g * g
        exp_avg[i] = m
        exp_avg_sq[i] = v
        if amsgrad:
            v = np.maximum(max_exp_avg_sq[i], v)  # propagates nan, as torch.maximum
            max_exp_avg_sq[i] = v
        param[i] = p - step_size * (m / (np.sqrt(v) / bias_correction2_sqrt + eps))


class Adam(Optimizer):
    """Adam (Kingma & Ba), PyTorch's ``torch.optim.Adam`` update rule.

    For each parameter ``p`` with gradient ``g`` (negated if ``maximize``), at step ``t = 1, 2, ...``::

        g = g + weight_decay * p                    (Adam: L2 penalty in the gradient)
        p = p * (1 - lr * weight_decay)             (AdamW / decoupled_weight_decay instead)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_hat = max(v_hat, v) if amsgrad else v
        p = p - lr / (1 - beta1**t) * m / (sqrt(v_hat) / sqrt(1 - beta2**t) + eps)

    State per parameter: ``'step'`` (int), ``'exp_avg'`` (m), ``'exp_avg_sq'`` (v) and, with
    amsgrad, ``'max_exp_avg_sq'`` (v_hat).
    """

    _state_spec = {"step": "count", "exp_avg": "array", "exp_avg_sq": "array", "max_exp_avg_sq": "array"}
    _required_state = ("step", "exp_avg", "exp_avg_sq")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 maximize=False, decoupled_weight_decay=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _check_group(self, group, loading=False):
        group["lr"] = check_lr(group["lr"], allow_zero=loading)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        group["betas"] = (real("beta parameter at index 0 (betas[0])", betas[0], 0.0, 1.0, high_open=True),
                          real("beta parameter at index 1 (betas[1])", betas[1], 0.0, 1.0, high_open=True))
        group["eps"] = real("epsilon value (eps)", group["eps"], 0.0)
        group["weight_decay"] = real("weight_decay", group["weight_decay"], 0.0)
        group["amsgrad"] = boolean("amsgrad", group["amsgrad"])
        group["maximize"] = boolean("maximize", group["maximize"])
        group["decoupled_weight_decay"] = boolean("decoupled_weight_decay", group["decoupled_weight_decay"])

    def step(self, closure=None):
        """Update every parameter once, in place; returns ``closure()`` if given (called first)."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
            beta1, beta2 = float(group["betas"][0]), float(group["betas"][1])
            amsgrad = bool(group["amsgrad"])
            sign = -1.0 if group["maximize"] else 1.0
            if group["decoupled_weight_decay"]:
                decay, l2 = 1.0 - lr * weight_decay, 0.0
            else:
                decay, l2 = 1.0, weight_decay
            for p in group["params"]:
                data, grad = param_views(p)
                state = self.state.setdefault(p, {})
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = np.zeros_like(p.data)
                    state["exp_avg_sq"] = np.zeros_like(p.data)
                if amsgrad and "max_exp_avg_sq" not in state:
                    state["max_exp_avg_sq"] = np.zeros_like(p.data)
                state["step"] += 1
                step = state["step"]
                coefficients = (sign, decay, l2, 1.0 - beta1, beta2, 1.0 - beta2, eps,
                                lr / (1.0 - beta1 ** step), (1.0 - beta2 ** step) ** 0.5)
                exp_avg, exp_avg_sq = state["exp_avg"].reshape(-1), state["exp_avg_sq"].reshape(-1)
                max_exp_avg_sq = state["max_exp_avg_sq"].reshape(-1) if amsgrad else exp_avg_sq  # unused then
                _adam_update(data, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, amsgrad, *coefficients)
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), PyTorch's ``torch.optim.AdamW``:
    each step first shrinks ``p`` by ``(1 - lr * weight_decay)``, then applies the Adam update
    without any L2 term in the gradient. See ``Adam`` for the full rule."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize, decoupled_weight_decay=True)

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        for group in self.param_groups:  # as PyTorch: AdamW always decays decoupled
            group["decoupled_weight_decay"] = True
