"""RMSprop (Hinton's lecture notes; the centered variant of Graves 2013), with PyTorch's update rule."""
import numpy as np

from .._config import jit
from .._validate import boolean, real
from .optimizer import Optimizer, check_lr


# As in sgd.py and adam.py: computed in the parameter's dtype, in PyTorch's operation order; the options
# are loop-invariant flags (LLVM hoists them) or coefficients (``sign`` = -1 for maximize). Arrays that
# an option does not use are passed as another state array and not touched.


@jit
def _rmsprop_update(param, grad, square_avg, grad_avg, buf, centered, use_momentum, sign, weight_decay, alpha,
                    one_minus_alpha, eps, momentum, lr):
    dt = param.dtype.type  # scalars arrive as Python floats and are cast here
    sign, weight_decay, alpha, one_minus_alpha = dt(sign), dt(weight_decay), dt(alpha), dt(one_minus_alpha)
    eps, momentum, lr = dt(eps), dt(momentum), dt(lr)
    for i in range(param.shape[0]):
        g = sign * grad[i] + weight_decay * param[i]
        v = alpha * square_avg[i] + one_minus_alpha * g * g
        square_avg[i] = v
        if centered:
            m = grad_avg[i] + one_minus_alpha * (g - grad_avg[i])
            grad_avg[i] = m
            v = v - m * m
        avg = np.sqrt(v) + eps
        if use_momentum:
            b = momentum * buf[i] + g / avg
            buf[i] = b
            param[i] = param[i] - lr * b
        else:
            param[i] = param[i] - lr * (g / avg)


class RMSprop(Optimizer):
    """RMSprop, PyTorch's ``torch.optim.RMSprop`` update rule.

    For each parameter ``p`` with gradient ``g`` (negated if ``maximize``)::

        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        m = m + (1 - alpha) * (g - m)                 (centered only: the mean gradient)
        avg = sqrt(v - m * m) if centered else sqrt(v)
        avg = avg + eps
        b = momentum * b + g / avg;  p = p - lr * b    (momentum > 0)
        p = p - lr * g / avg                           (momentum = 0)

    State per parameter: ``'step'``, ``'square_avg'`` (v), ``'momentum_buffer'`` (b, momentum > 0) and
    ``'grad_avg'`` (m, centered). Frozen parameters (``requires_grad=False``) are skipped.
    """

    _state_spec = {"step": "count", "square_avg": "array", "momentum_buffer": "array", "grad_avg": "array"}
    _required_state = ("step", "square_avg")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False, *,
                 maximize=False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    # As in SGD, Adam and Adagrad, _check_group and step are written out per optimizer: each checks its own
    # hyper-parameters (PyTorch's names, bounds and messages) and reads its own group entries for its own
    # kernel, so they look alike in shape but share no logic beyond Optimizer's (check_lr, _trainable).
    def _check_group(self, group, loading=False):
        group["lr"] = check_lr(group["lr"], allow_zero=loading)
        group["alpha"] = real("alpha value (alpha)", group["alpha"], 0.0)
        group["eps"] = real("epsilon value (eps)", group["eps"], 0.0)
        group["weight_decay"] = real("weight_decay", group["weight_decay"], 0.0)
        group["momentum"] = real("momentum", group["momentum"], 0.0)
        group["centered"] = boolean("centered", group["centered"])
        group["maximize"] = boolean("maximize", group["maximize"])

    def step(self, closure=None):
        """Update every parameter once, in place; returns ``closure()`` if given (called first)."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
            weight_decay, momentum = float(group["weight_decay"]), float(group["momentum"])
            centered, use_momentum = bool(group["centered"]), momentum > 0
            sign = -1.0 if group["maximize"] else 1.0
            for p, data, grad in self._trainable(group):
                state = self.state.setdefault(p, {})
                if not state:
                    state["step"] = 0
                    state["square_avg"] = np.zeros_like(p.data)
                if use_momentum and "momentum_buffer" not in state:
                    state["momentum_buffer"] = np.zeros_like(p.data)
                if centered and "grad_avg" not in state:
                    state["grad_avg"] = np.zeros_like(p.data)
                state["step"] += 1
                square_avg = state["square_avg"].reshape(-1)
                grad_avg = state["grad_avg"].reshape(-1) if centered else square_avg  # unused then
                buf = state["momentum_buffer"].reshape(-1) if use_momentum else square_avg  # unused then
                _rmsprop_update(data, grad, square_avg, grad_avg, buf, centered, use_momentum, sign, weight_decay,
                                alpha, 1.0 - alpha, eps, momentum, lr)
        return loss
