"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay (PyTorch's rule)."""
import numpy as np

from .._config import jit
from .._validate import boolean, real
from .optimizer import Optimizer, check_lr


# The kernels compute in the parameter's dtype, in PyTorch's operation order, with no branches in
# their loops (so LLVM vectorises them): options become coefficients, ``sign`` = -1 for maximize;
# the update direction is ``g_coef * g + buf_coef * buf``, i.e. (1, momentum) for Nesterov and
# (0, 1) otherwise; on the first step (``buf`` zero) ``buf_keep`` = 0 and ``g_keep`` = 1 give buf = g.


@jit
def _sgd_update(param, grad, sign, weight_decay, lr):
    """Plain SGD step on flat arrays, in place."""
    dt = param.dtype.type  # scalars arrive as Python floats (fast dispatch) and are cast here
    sign, weight_decay, lr = dt(sign), dt(weight_decay), dt(lr)
    for i in range(param.shape[0]):
        g = sign * grad[i] + weight_decay * param[i]
        param[i] = param[i] - lr * g


@jit
def _sgd_momentum_update(param, grad, buf, sign, weight_decay, lr, buf_keep, g_keep, g_coef, buf_coef):
    """SGD step with a momentum buffer ``buf`` (updated in place too)."""
    dt = param.dtype.type
    sign, weight_decay, lr, buf_keep, g_keep = dt(sign), dt(weight_decay), dt(lr), dt(buf_keep), dt(g_keep)
    g_coef, buf_coef = dt(g_coef), dt(buf_coef)
    for i in range(param.shape[0]):
        g = sign * grad[i] + weight_decay * param[i]
        b = buf_keep * buf[i] + g_keep * g
        buf[i] = b
        param[i] = param[i] - lr * (g_coef * g + buf_coef * b)


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch's ``torch.optim.SGD`` update rule.

    For each parameter ``p`` with gradient ``g`` (negated if ``maximize``)::

        g = g + weight_decay * p
        if momentum != 0:
            b = g                                       (first step)
            b = momentum * b + (1 - dampening) * g      (later steps)
            g = g + momentum * b if nesterov else b
        p = p - lr * g

    State per parameter: ``'momentum_buffer'`` (only when momentum is non-zero).
    """

    _state_spec = {"momentum_buffer": "array"}
    _required_state = ("momentum_buffer",)

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group, loading=False):
        group["lr"] = check_lr(group["lr"], allow_zero=loading)
        group["momentum"] = real("momentum", group["momentum"], 0.0)
        group["dampening"] = real("dampening", group["dampening"], 0.0, 1.0)
        group["weight_decay"] = real("weight_decay", group["weight_decay"], 0.0)
        group["nesterov"] = boolean("nesterov", group["nesterov"])
        group["maximize"] = boolean("maximize", group["maximize"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum > 0 and zero dampening, got "
                             f"momentum={group['momentum']}, dampening={group['dampening']}")

    def step(self, closure=None):
        """Update every parameter once, in place; returns ``closure()`` if given (called first)."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            lr, momentum = float(group["lr"]), float(group["momentum"])
            weight_decay, dampening = float(group["weight_decay"]), float(group["dampening"])
            sign = -1.0 if group["maximize"] else 1.0
            g_coef, buf_coef = (1.0, momentum) if group["nesterov"] else (0.0, 1.0)
            for p, data, grad in self._trainable(group):
                if momentum == 0.0:
                    _sgd_update(data, grad, sign, weight_decay, lr)
                    continue
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {}
                buf = state.get("momentum_buffer")
                if buf is not None:
                    buf_keep, g_keep = momentum, 1.0 - dampening
                else:  # PyTorch's first step: the buffer is the gradient itself
                    buf = state["momentum_buffer"] = np.zeros_like(p.data)
                    buf_keep, g_keep = 0.0, 1.0
                _sgd_momentum_update(data, grad, buf.ravel(), sign, weight_decay, lr, buf_keep, g_keep, g_coef,
                                     buf_coef)
        return loss
