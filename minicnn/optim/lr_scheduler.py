"""Learning-rate schedulers with PyTorch's names and values.

Use as in PyTorch: create the scheduler after the optimizer, call ``optimizer.step()`` then
``scheduler.step()`` once per epoch (per batch for ``OneCycleLR``). Creating a scheduler sets each
group's ``'lr'`` to the schedule's first value and stores ``'initial_lr'`` in every group.

To resume, restore both ``optimizer.load_state_dict(...)`` and ``scheduler.load_state_dict(...)``
(the learning rates live in the optimizer's groups; ``CosineAnnealingLR`` computes the next one from
the current one, as PyTorch's recursive form does).
"""
import bisect
import copy
import math
from collections.abc import Mapping

from .._validate import boolean, integer, positive_int, real
from .optimizer import Optimizer


def _positive(name, value):
    return real(name, value, 0.0, low_open=True)


class LRScheduler:
    """Base class: subclasses implement ``get_lr()``, the group learning rates at ``last_epoch``.

    Attributes: ``optimizer``, ``base_lrs`` (each group's ``'initial_lr'``), ``last_epoch`` (number
    of ``step()`` calls since creation; 0 right after creation).
    """

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = -1
        self._step_count = 0
        self.step()

    def get_lr(self):
        raise NotImplementedError(f"{type(self).__name__} does not implement get_lr")

    def step(self):
        """Advance the schedule by one and set each group's ``'lr'``."""
        groups = self.optimizer.param_groups
        if len(groups) != len(self.base_lrs):
            raise ValueError(f"the optimizer has {len(groups)} parameter groups, but the scheduler was "
                             f"created for {len(self.base_lrs)}")
        self._step_count += 1
        self.last_epoch += 1
        for group, lr in zip(groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in groups]

    def get_last_lr(self):
        """The learning rates set by the last ``step()`` (a new list)."""
        return list(self._last_lr)

    def state_dict(self):
        """A copy of every attribute except the optimizer (PyTorch's layout)."""
        return {key: copy.deepcopy(value) for key, value in vars(self).items() if key != "optimizer"}

    def load_state_dict(self, state_dict):
        """Restore a ``state_dict()`` of the same kind of scheduler (``ValueError`` if it does not fit)."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        expected = set(vars(self)) - {"optimizer"}
        missing = sorted(expected - set(state_dict))
        unexpected = sorted(set(state_dict) - expected)
        if missing or unexpected:
            raise ValueError(f"cannot load state_dict into {type(self).__name__}: missing keys {missing}, "
                             f"unexpected keys {unexpected}")
        base_lrs = state_dict["base_lrs"]
        if not isinstance(base_lrs, (list, tuple)) or len(base_lrs) != len(self.optimizer.param_groups):
            raise ValueError(f"state_dict['base_lrs'] must have one entry per parameter group "
                             f"({len(self.optimizer.param_groups)}), got {base_lrs!r}")
        last_epoch = state_dict["last_epoch"]
        try:
            integer("state_dict['last_epoch']", last_epoch, 0)
        except TypeError as exc:  # a state that does not fit is a ValueError, as for the other entries
            raise ValueError(str(exc)) from None
        for key, value in state_dict.items():
            setattr(self, key, copy.deepcopy(value))
        self.base_lrs = list(self.base_lrs)
        self._last_lr = list(self._last_lr)


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs:
    ``lr = base_lr * gamma ** (last_epoch // step_size)``."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        self.step_size = positive_int("step_size", step_size)
        self.gamma = _positive("gamma", gamma)
        super().__init__(optimizer)

    def get_lr(self):
        factor = self.gamma ** (self.last_epoch // self.step_size)
        return [base_lr * factor for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` at each milestone epoch:
    ``lr = base_lr * gamma ** (number of milestones <= last_epoch)``. A milestone listed twice
    counts twice, as in PyTorch."""

    def __init__(self, optimizer, milestones, gamma=0.1):
        try:
            milestones = list(milestones)
        except TypeError:
            raise TypeError(f"milestones must be an iterable of ints, got {milestones!r}") from None
        self.milestones = sorted(integer(f"milestones[{i}]", m, 0) for i, m in enumerate(milestones))
        self.gamma = _positive("gamma", gamma)
        super().__init__(optimizer)

    def get_lr(self):
        factor = self.gamma ** bisect.bisect_right(self.milestones, self.last_epoch)
        return [base_lr * factor for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from each ``base_lr`` down to ``eta_min`` over ``T_max`` epochs:
    ``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * last_epoch / T_max)) / 2``, continuing as a
    cosine (back up) beyond ``T_max``.

    Computed with PyTorch's recursive form (the next lr from the current one), so the values equal
    ``torch.optim.lr_scheduler.CosineAnnealingLR``'s and follow any change made to ``group['lr']``.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0):
        self.T_max = positive_int("T_max", T_max)
        self.eta_min = real("eta_min", eta_min, 0.0)
        super().__init__(optimizer)

    def get_lr(self):
        groups = self.optimizer.param_groups
        t, T = self.last_epoch, self.T_max
        if t == 0:
            return [group["lr"] for group in groups]
        if (t - 1 - T) % (2 * T) == 0:  # leaving the minimum: cos(pi*(t-1)/T) = -1, ratio undefined
            return [group["lr"] + (base_lr - self.eta_min) * (1 - math.cos(math.pi / T)) / 2
                    for base_lr, group in zip(self.base_lrs, groups)]
        ratio = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        return [ratio * (group["lr"] - self.eta_min) + self.eta_min for group in groups]


def _per_group(name, value, optimizer, check):
    """``value`` (one number, or a list with one per parameter group) as a checked list."""
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name} must have one value per parameter group: {name} has {len(value)} "
                             f"values, the optimizer has {n} groups")
        return [check(name, v) for v in value]
    return [check(name, value)] * n


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin), PyTorch's ``torch.optim.lr_scheduler.OneCycleLR``; step it
    after every batch.

    The learning rate rises from ``max_lr / div_factor`` to ``max_lr`` over the first
    ``pct_start * total_steps`` steps, then falls to ``max_lr / div_factor / final_div_factor``
    (with ``three_phase``: back to the initial lr by ``2 * pct_start * total_steps``, then down to the
    minimum). With ``cycle_momentum`` the momentum (SGD's ``'momentum'``, or Adam's ``betas[0]``)
    moves the opposite way between ``max_momentum`` and ``base_momentum``. ``anneal_strategy`` is
    ``'cos'`` or ``'linear'``. ``total_steps`` or both ``epochs`` and ``steps_per_epoch`` give the
    length; stepping more than ``total_steps`` times raises ``ValueError``.

    Differs from PyTorch only where PyTorch divides by zero (a phase of zero length, e.g.
    ``pct_start * total_steps == 1``): that phase's end value is used.
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85,
                 max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        if total_steps is not None:
            self.total_steps = positive_int("total_steps", total_steps)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = positive_int("epochs", epochs) * positive_int("steps_per_epoch", steps_per_epoch)
        else:
            raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")
        pct_start = real("pct_start", pct_start, 0.0, 1.0)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        three_phase, cycle_momentum = boolean("three_phase", three_phase), boolean("cycle_momentum", cycle_momentum)
        div_factor = _positive("div_factor", div_factor)
        final_div_factor = _positive("final_div_factor", final_div_factor)
        max_lrs = _per_group("max_lr", max_lr, optimizer, _positive)

        n = self.total_steps
        if three_phase:
            self._schedule_phases = [
                dict(end_step=float(pct_start * n) - 1, start_lr="initial_lr", end_lr="max_lr",
                     start_momentum="max_momentum", end_momentum="base_momentum"),
                dict(end_step=float(2 * pct_start * n) - 2, start_lr="max_lr", end_lr="initial_lr",
                     start_momentum="base_momentum", end_momentum="max_momentum"),
                dict(end_step=float(n - 1), start_lr="initial_lr", end_lr="min_lr",
                     start_momentum="max_momentum", end_momentum="max_momentum"),
            ]
        else:
            self._schedule_phases = [
                dict(end_step=float(pct_start * n) - 1, start_lr="initial_lr", end_lr="max_lr",
                     start_momentum="max_momentum", end_momentum="base_momentum"),
                dict(end_step=float(n - 1), start_lr="max_lr", end_lr="min_lr",
                     start_momentum="base_momentum", end_momentum="max_momentum"),
            ]

        self.cycle_momentum = cycle_momentum
        self.use_beta1 = "betas" in optimizer.defaults
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError("optimizer must support momentum or beta1 with `cycle_momentum` option enabled")
            upper = 1.0 if self.use_beta1 else math.inf  # Adam's beta1 must stay below 1

            def momentum_value(name, value):
                return real(name, value, 0.0, upper, high_open=True)

            max_momentums = _per_group("max_momentum", max_momentum, optimizer, momentum_value)
            base_momentums = _per_group("base_momentum", base_momentum, optimizer, momentum_value)
        # Everything is checked: now change the groups.
        for i, group in enumerate(optimizer.param_groups):
            group["initial_lr"] = max_lrs[i] / div_factor
            group["max_lr"] = max_lrs[i]
            group["min_lr"] = group["initial_lr"] / final_div_factor
            if cycle_momentum:
                if self.use_beta1:
                    group["betas"] = (max_momentums[i], *group["betas"][1:])
                else:
                    group["momentum"] = max_momentums[i]
                group["max_momentum"] = max_momentums[i]
                group["base_momentum"] = base_momentums[i]
        super().__init__(optimizer)

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        step_num = self.last_epoch
        if step_num > self.total_steps:
            raise ValueError(f"Tried to step {step_num} times. The specified number of total steps is "
                             f"{self.total_steps}")
        lrs = []
        last = len(self._schedule_phases) - 1
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if step_num <= end_step or i == last:
                    length = end_step - start_step
                    pct = (step_num - start_step) / length if length != 0 else 1.0
                    lr = self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct)
                    if self.cycle_momentum:
                        momentum = self._anneal(group[phase["start_momentum"]], group[phase["end_momentum"]], pct)
                    break
                start_step = end_step
            lrs.append(lr)
            if self.cycle_momentum:
                if self.use_beta1:
                    group["betas"] = (momentum, *group["betas"][1:])
                else:
                    group["momentum"] = momentum
        return lrs

    def step(self):
        """Advance by one step; ``ValueError`` (and nothing changes) beyond ``total_steps``."""
        if self.last_epoch + 1 > self.total_steps:
            raise ValueError(f"Tried to step {self.last_epoch + 1} times. The specified number of total "
                             f"steps is {self.total_steps}")
        super().step()
