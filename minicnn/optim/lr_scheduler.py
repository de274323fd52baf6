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
import types
from collections.abc import Mapping

import numpy as np

from .._validate import _is_int, boolean, integer, positive_int, real
from .optimizer import Optimizer


def _positive(name, value):
    return real(name, value, 0.0, low_open=True)


def _check_state_keys(scheduler, state_dict):
    """``TypeError`` unless ``state_dict`` is a mapping; ``ValueError`` unless its keys are exactly the
    scheduler's attributes but the optimizer (what ``state_dict()`` saves)."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
    expected = set(vars(scheduler)) - {"optimizer"}
    missing, unexpected = sorted(expected - set(state_dict)), sorted(set(state_dict) - expected)
    if missing or unexpected:
        raise ValueError(f"cannot load state_dict into {type(scheduler).__name__}: missing keys {missing}, "
                         f"unexpected keys {unexpected}")


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

    def _closed_form_lr(self):
        """The learning rates at ``last_epoch`` computed from ``base_lrs`` alone (schedules with a
        recursive ``get_lr`` override this; the others' ``get_lr`` is already a closed form)."""
        return self.get_lr()

    def _restart(self):
        """Jump to epoch 0 of this schedule (PyTorch's deprecated ``step(0)``, which ``SequentialLR``
        uses at each milestone): ``last_epoch = 0`` and the closed-form learning rates."""
        self._step_count += 1
        self.last_epoch = 0
        for group, lr in zip(self.optimizer.param_groups, self._closed_form_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self):
        """A copy of every attribute except the optimizer (PyTorch's layout)."""
        return {key: copy.deepcopy(value) for key, value in vars(self).items() if key != "optimizer"}

    def load_state_dict(self, state_dict):
        """Restore a ``state_dict()`` of the same kind of scheduler (``ValueError`` if it does not fit)."""
        _check_state_keys(self, state_dict)
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

    def _closed_form_lr(self):
        return [self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base_lr in self.base_lrs]


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


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every epoch: ``lr = base_lr * gamma ** last_epoch``
    (computed recursively, ``lr = lr * gamma``, as PyTorch)."""

    def __init__(self, optimizer, gamma):
        self.gamma = _positive("gamma", gamma)
        super().__init__(optimizer)

    def get_lr(self):
        if self.last_epoch == 0:
            return [group["lr"] for group in self.optimizer.param_groups]
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _closed_form_lr(self):
        return [base_lr * self.gamma ** self.last_epoch for base_lr in self.base_lrs]


class LambdaLR(LRScheduler):
    """``lr = base_lr * lr_lambda(last_epoch)``; ``lr_lambda`` is one function or a list with one per
    parameter group. ``state_dict()`` leaves the functions out (plain functions and lambdas cannot be
    saved); for a callable object it keeps a copy of its ``__dict__``, as PyTorch does."""

    def __init__(self, optimizer, lr_lambda):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        n = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n:
                raise ValueError(f"Expected {n} lr_lambdas (one per parameter group), but got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * n
        for f in self.lr_lambdas:
            if not callable(f):
                raise TypeError(f"lr_lambda must be a function (or a list of functions), got {type(f).__name__}")
        super().__init__(optimizer)

    def get_lr(self):
        lrs = []
        for base_lr, f in zip(self.base_lrs, self.lr_lambdas):
            factor = f(self.last_epoch)
            lrs.append(base_lr * real("the value returned by lr_lambda", factor))
        return lrs

    def state_dict(self):
        state = {key: copy.deepcopy(value) for key, value in vars(self).items()
                 if key not in ("optimizer", "lr_lambdas")}
        state["lr_lambdas"] = [None if isinstance(f, types.FunctionType) else copy.deepcopy(vars(f))
                               for f in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict):
        if not isinstance(state_dict, Mapping) or "lr_lambdas" not in state_dict:
            raise ValueError("a LambdaLR state_dict must be a dict with an 'lr_lambdas' entry")
        state_dict = dict(state_dict)
        lambdas = state_dict.pop("lr_lambdas")
        if not isinstance(lambdas, (list, tuple)) or len(lambdas) != len(self.lr_lambdas):
            raise ValueError(f"state_dict['lr_lambdas'] must have {len(self.lr_lambdas)} entries, got {lambdas!r}")
        keep = self.lr_lambdas
        self.__dict__.pop("lr_lambdas")
        try:
            super().load_state_dict(state_dict)
        finally:
            self.lr_lambdas = keep
        for f, saved in zip(self.lr_lambdas, lambdas):
            if saved is not None:
                vars(f).update(copy.deepcopy(saved))


class LinearLR(LRScheduler):
    """Scale the learning rate linearly from ``start_factor * base_lr`` to ``end_factor * base_lr`` over
    ``total_iters`` epochs, then keep it: ``lr = base_lr * (start_factor + (end_factor - start_factor) *
    min(last_epoch, total_iters) / total_iters)`` (computed recursively, as PyTorch). A warm-up: use in
    ``SequentialLR`` before another schedule."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5):
        start_factor = real("start_factor", start_factor)
        end_factor = real("end_factor", end_factor)
        if not 0 < start_factor <= 1:
            raise ValueError(f"Starting multiplicative factor (start_factor) expected to be greater than 0 and "
                             f"less or equal to 1, got {start_factor!r}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"Ending multiplicative factor (end_factor) expected to be between 0 and 1, "
                             f"got {end_factor!r}")
        self.start_factor, self.end_factor = start_factor, end_factor
        self.total_iters = positive_int("total_iters", total_iters)
        super().__init__(optimizer)

    def get_lr(self):
        groups = self.optimizer.param_groups
        if self.last_epoch == 0:
            return [group["lr"] * self.start_factor for group in groups]
        if self.last_epoch > self.total_iters:
            return [group["lr"] for group in groups]
        d = self.end_factor - self.start_factor
        factor = 1.0 + d / (self.total_iters * self.start_factor + (self.last_epoch - 1) * d)
        return [group["lr"] * factor for group in groups]

    def _closed_form_lr(self):
        d = self.end_factor - self.start_factor
        f = self.start_factor + d * min(self.total_iters, self.last_epoch) / self.total_iters
        return [base_lr * f for base_lr in self.base_lrs]


class SequentialLR(LRScheduler):
    """Run ``schedulers`` one after the other, switching at the epochs in ``milestones`` (one fewer than
    schedulers), PyTorch's ``SequentialLR``: e.g. ``SequentialLR(opt, [LinearLR(opt, 0.1, total_iters=5),
    CosineAnnealingLR(opt, T_max=95)], milestones=[5])`` warms up for 5 epochs then anneals. At each
    milestone the next scheduler restarts at its epoch 0 (from its base learning rates).
    ``state_dict()`` holds every scheduler's state."""

    def __init__(self, optimizer, schedulers, milestones):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        schedulers = list(schedulers) if isinstance(schedulers, (list, tuple)) else schedulers
        if not isinstance(schedulers, list) or not schedulers:
            raise ValueError(f"SequentialLR expects a non-empty list of schedulers, got {schedulers!r}")
        for i, sch in enumerate(schedulers):
            if not isinstance(sch, LRScheduler) or isinstance(sch, (SequentialLR, ReduceLROnPlateau)):
                raise TypeError(f"SequentialLR expects learning-rate schedulers, but schedulers[{i}] is "
                                f"{type(sch).__name__}")
            if sch.optimizer is not optimizer:
                raise ValueError(f"SequentialLR expects all schedulers to belong to the same optimizer, but "
                                 f"schedulers[{i}] has a different one")
        try:
            milestones = list(milestones)
        except TypeError:
            raise TypeError(f"milestones must be a list of ints, got {milestones!r}") from None
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR expects the number of schedulers provided to be one more than the "
                             f"number of milestones, but got {len(schedulers)} schedulers and {len(milestones)} "
                             f"milestones")
        for m in milestones:
            if not _is_int(m) or m < 1:
                raise ValueError(f"milestones must be positive ints, got {milestones!r}")
        if milestones != sorted(milestones):
            raise ValueError(f"milestones must be increasing, got {milestones!r}")
        self.optimizer = optimizer
        self._schedulers = schedulers
        self._milestones = [int(m) for m in milestones]
        self.last_epoch = 0
        self._step_count = 1
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        for group in optimizer.param_groups:  # undo what creating the schedulers did ...
            group["lr"] = group["initial_lr"]
        for sch in schedulers:
            sch.last_epoch -= 1
        first = schedulers[0]  # ... and redo the first one's initial step
        first._step_count = 0
        first.step()
        self._last_lr = first.get_last_lr()

    def get_lr(self):
        return self._schedulers[bisect.bisect_right(self._milestones, self.last_epoch)].get_last_lr()

    def step(self):
        self._step_count += 1
        self.last_epoch += 1
        idx = bisect.bisect_right(self._milestones, self.last_epoch)
        sch = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            sch._restart()
        else:
            sch.step()
        self._last_lr = sch.get_last_lr()

    def state_dict(self):
        state = {key: copy.deepcopy(value) for key, value in vars(self).items()
                 if key not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [sch.state_dict() for sch in self._schedulers]
        return state

    def load_state_dict(self, state_dict):
        _check_state_keys(self, state_dict)
        saved = state_dict["_schedulers"]
        if not isinstance(saved, (list, tuple)) or len(saved) != len(self._schedulers):
            raise ValueError(f"state_dict['_schedulers'] must hold {len(self._schedulers)} scheduler states")
        for sch, s in zip(self._schedulers, saved):
            sch.load_state_dict(s)
        for key, value in state_dict.items():
            if key != "_schedulers":
                setattr(self, key, copy.deepcopy(value))


class ReduceLROnPlateau(LRScheduler):
    """Reduce each group's learning rate by ``factor`` once a metric has stopped improving for more than
    ``patience`` epochs, PyTorch's ``ReduceLROnPlateau``; call ``step(metric)`` after each evaluation.

    ``mode`` "min" (lower is better) or "max"; an epoch improves on ``best`` when the metric is below
    ``best * (1 - threshold)`` ("rel", "min"), ``best - threshold`` ("abs", "min"), above
    ``best * (1 + threshold)`` ("rel", "max") or ``best + threshold`` ("abs", "max"). After a reduction,
    ``cooldown`` epochs pass before bad epochs count again. ``lr = max(lr * factor, min_lr)``, and only
    when that changes the rate by more than ``eps``. ``min_lr`` is one number or one per group.
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel",
                 cooldown=0, min_lr=0, eps=1e-8):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        factor = real("factor", factor, 0.0, 1.0, high_open=True)  # PyTorch: "Factor should be < 1.0"
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        patience, cooldown = integer("patience", patience, 0), integer("cooldown", cooldown, 0)

        def non_negative(name, value):
            return real(name, value, 0.0)

        self.optimizer = optimizer
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor = factor
        self.patience, self.cooldown = int(patience), int(cooldown)
        self.threshold = non_negative("threshold", threshold)
        self.eps = non_negative("eps", eps)
        self.min_lrs = _per_group("min_lr", min_lr, optimizer, non_negative)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        # (LRScheduler.__init__ is not called: this schedule moves on step(metric), not on a formula)

    def _is_better(self, a):
        best = self.best
        if self.mode == "min":
            return a < (best * (1.0 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold)
        return a > (best * (self.threshold + 1.0) if self.threshold_mode == "rel" else best + self.threshold)

    @property
    def in_cooldown(self):
        return self.cooldown_counter > 0

    def step(self, metrics):
        """Record the epoch's ``metrics`` (a number) and reduce the learning rates if it is time."""
        current = _real_or_nan("metrics", metrics)
        self.last_epoch += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
                old = float(group["lr"])
                new = max(old * self.factor, min_lr)
                if old - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_lr(self):
        return self.get_last_lr()

    def load_state_dict(self, state_dict):
        _check_state_keys(self, state_dict)
        if len(state_dict["min_lrs"]) != len(self.optimizer.param_groups):
            raise ValueError(f"state_dict['min_lrs'] must have one entry per parameter group "
                             f"({len(self.optimizer.param_groups)})")
        for key, value in state_dict.items():
            setattr(self, key, copy.deepcopy(value))


def _real_or_nan(name, value):
    """``value`` as a float (a NumPy scalar or 0-d array too); nan is allowed (it never improves)."""
    try:
        value = float(np.asarray(value).item()) if np.ndim(value) == 0 else None
    except (TypeError, ValueError):
        value = None
    if value is None or isinstance(value, bool):
        raise TypeError(f"{name} must be a number (e.g. the validation loss)")
    return value
