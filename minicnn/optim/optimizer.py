"""Optimizer base class: parameter groups, per-parameter state and PyTorch's ``state_dict`` layout.

Subclasses (``SGD``, ``Adam``, ``AdamW``) implement ``step`` with a Numba kernel per parameter that
updates ``Parameter.data`` in place, and describe their per-parameter state in ``_state_spec`` so
that ``load_state_dict`` can check a saved state before touching anything.
"""
import copy
from collections.abc import Mapping

import numpy as np

from .._validate import _is_int, real
from ..nn.module import Parameter


def check_lr(lr, allow_zero=False):
    """A learning rate as a float: finite and > 0 (>= 0 with ``allow_zero``, e.g. a loaded state)."""
    return real("lr", lr, 0.0, low_open=not allow_zero)


def param_views(p):
    """``(data, grad)`` of Parameter ``p`` as flat 1-D arrays; ``data`` is a view written in place."""
    data, grad = p.data, p.grad
    if type(data) is np.ndarray and type(grad) is np.ndarray and grad.dtype is data.dtype \
            and grad.shape == data.shape:
        flags = data.flags
        if flags.c_contiguous and flags.writeable and grad.flags.c_contiguous:
            return data.ravel(), grad.ravel()  # the common case (views: both are C-contiguous)
    if not isinstance(data, np.ndarray) or not data.flags.c_contiguous or not data.flags.writeable:
        raise ValueError(
            f"{p!r}: data must be a writeable C-contiguous array, updated in place (never rebind .data)")
    if not isinstance(grad, np.ndarray) or grad.shape != data.shape:
        raise ValueError(f"{p!r}: grad must be an array of the parameter's shape {data.shape}, "
                         f"got {getattr(grad, 'shape', type(grad).__name__)}")
    if grad.dtype != data.dtype or not grad.flags.c_contiguous:
        grad = np.ascontiguousarray(grad, dtype=data.dtype)
    return data.reshape(-1), grad.reshape(-1)


class Optimizer:
    """Base class of optimizers, with PyTorch's interface.

    ``params`` is an iterable of ``Parameter`` objects, or of dicts (parameter groups) each holding
    ``'params'`` and any hyper-parameters that override ``defaults`` for that group.

    Attributes: ``param_groups`` (list of dicts with ``'params'`` and hyper-parameters such as
    ``'lr'``, which schedulers and users may change between steps), ``state`` (dict mapping each
    Parameter to its per-parameter state, filled at the first ``step``), ``defaults``.
    """

    # Per-parameter state entries: name -> "array" (shaped like the parameter, its dtype) or
    # "count" (a non-negative int). ``_required_state`` must all be present in a non-empty state.
    _state_spec = {}
    _required_state = ()

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}
        self.param_groups = []
        if isinstance(params, (Parameter, np.ndarray, Mapping, str)):
            raise TypeError("params must be an iterable of Parameters or of dicts (parameter groups), "
                            f"got {type(params).__name__}")
        if isinstance(params, (set, frozenset)):
            raise TypeError("params must be an ordered iterable (e.g. a list): a set's order changes "
                            "between runs, which breaks state_dict")
        try:
            param_groups = list(params)
        except TypeError:
            raise TypeError("params must be an iterable of Parameters or of dicts (parameter groups), "
                            f"got {type(params).__name__}") from None
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], Mapping):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    # -- groups ---------------------------------------------------------------------------------
    def _check_group(self, group, loading=False):
        """Validate (and normalise, in place) the hyper-parameters of ``group``; subclasses extend.

        ``loading`` is true for groups from ``load_state_dict``, whose lr may have been annealed to 0.
        """
        group["lr"] = check_lr(group["lr"], allow_zero=loading)

    def add_param_group(self, param_group):
        """Add a parameter group: a dict with ``'params'`` and optional hyper-parameter overrides."""
        if not isinstance(param_group, Mapping):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        if "params" not in group:
            raise ValueError("param_group must have a 'params' entry")
        params = group["params"]
        if isinstance(params, Parameter):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters must be an ordered iterable (e.g. a list), not a set")
        else:
            try:
                params = list(params)
            except TypeError:
                raise TypeError("param_group['params'] must be a Parameter or an iterable of Parameters, "
                                f"got {type(params).__name__}") from None
        g = len(self.param_groups)
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(f"optimizer can only optimize minicnn.nn.Parameter objects, but entry {i} "
                                f"of parameter group {g} is {type(p).__name__}")
            if p.data.dtype not in (np.float32, np.float64):
                raise TypeError(f"parameter {i} of parameter group {g} has dtype {p.data.dtype}; "
                                "optimizers support float32 and float64")
        group["params"] = params
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._check_group(group)
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"parameter group {g} contains the same parameter more than once")
        existing = {id(p) for grp in self.param_groups for p in grp["params"]}
        if any(id(p) in existing for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    # -- stepping -------------------------------------------------------------------------------
    @staticmethod
    def _trainable(group):
        """``(p, data, grad)`` for each parameter of ``group`` that requires gradients (``param_views``):
        a frozen parameter gets no update and no state, as in PyTorch (where its grad is None)."""
        for p in group["params"]:
            if p.requires_grad:
                data, grad = param_views(p)
                yield p, data, grad

    def zero_grad(self):
        """Set the gradient of every parameter to zero, in place."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad.fill(0)

    def step(self, closure=None):
        """Update every parameter once; ``closure`` (optional) recomputes and returns the loss."""
        raise NotImplementedError(f"{type(self).__name__} does not implement step")

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self):
        """The optimizer's state in PyTorch's layout, as copies (later steps do not change it).

        ``{'state': {index: {name: value}}, 'param_groups': [{hyper-parameters..., 'params':
        [index, ...]}]}``, where parameters are numbered 0, 1, ... in group order.
        """
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index[id(p)] = len(index)
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if self.state.get(p):
                    state[index[id(p)]] = {k: (v.copy() if isinstance(v, np.ndarray) else copy.deepcopy(v))
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def _load_param_state(self, p, saved, where):
        """A validated copy of one parameter's saved state (see ``_state_spec``)."""
        if not isinstance(saved, Mapping):
            raise ValueError(f"{where} must be a dict, got {type(saved).__name__}")
        unknown = [k for k in saved if k not in self._state_spec]
        if unknown:
            raise ValueError(f"{where} has unexpected entries {unknown}; {type(self).__name__} keeps "
                             f"{sorted(self._state_spec)}")
        if not saved:
            return {}
        missing = [k for k in self._required_state if k not in saved]
        if missing:
            raise ValueError(f"{where} is missing entries {missing}")
        state = {}
        for key, value in saved.items():
            if self._state_spec[key] == "array":
                arr = np.asarray(value)
                if arr.shape != p.data.shape:
                    raise ValueError(f"{where}[{key!r}] has shape {arr.shape}, but the parameter has "
                                     f"shape {p.data.shape}")
                if arr.dtype.kind not in "fiu":
                    raise ValueError(f"{where}[{key!r}] must be a float array, got dtype {arr.dtype}")
                state[key] = np.array(arr, dtype=p.data.dtype, order="C", copy=True)
            else:  # "count"
                count = np.asarray(value)
                if count.shape != () or count.dtype.kind not in "fiu" or count != np.floor(count) or count < 0:
                    raise ValueError(f"{where}[{key!r}] must be a non-negative integer, got {value!r}")
                state[key] = int(count)
        return state

    def load_state_dict(self, state_dict):
        """Load a state from ``state_dict()`` (this optimizer's or a compatible one's).

        The saved hyper-parameters replace the groups' current ones (as PyTorch); the saved state is
        copied and cast to each parameter's dtype. Everything is checked first: on a mismatch
        (number of groups, group sizes, state shapes, ...) a ``ValueError`` says what, and nothing
        is changed.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        for key in ("state", "param_groups"):
            if key not in state_dict:
                raise ValueError(f"optimizer state_dict is missing its {key!r} entry")
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved_groups, (list, tuple)) or not all(isinstance(g, Mapping) for g in saved_groups):
            raise ValueError("state_dict['param_groups'] must be a list of dicts")
        if not isinstance(saved_state, Mapping):
            raise ValueError("state_dict['state'] must be a dict")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter groups, but the "
                             f"optimizer has {len(self.param_groups)}")
        id_map = {}
        new_groups = []
        for g, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            indices = saved.get("params")
            if not isinstance(indices, (list, tuple)) or not all(_is_int(i) for i in indices):
                raise ValueError(f"state_dict['param_groups'][{g}]['params'] must be a list of ints")
            if len(indices) != len(group["params"]):
                raise ValueError(f"loaded parameter group {g} has {len(indices)} parameters, but the "
                                 f"optimizer's group {g} has {len(group['params'])}")
            for i, p in zip(indices, group["params"]):
                if int(i) in id_map:
                    raise ValueError(f"parameter index {i} appears more than once in state_dict['param_groups']")
                id_map[int(i)] = p
            missing = [k for k in self.defaults if k not in saved]
            if missing:
                raise ValueError(f"loaded parameter group {g} is missing hyper-parameters {missing}")
            # Saved values win; entries only the current group has (e.g. a scheduler's 'initial_lr')
            # are kept.
            new_group = {k: v for k, v in group.items() if k != "params"}
            new_group.update((k, copy.deepcopy(v)) for k, v in saved.items() if k != "params")
            new_group["params"] = group["params"]
            try:
                self._check_group(new_group, loading=True)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"loaded parameter group {g}: {exc}") from None
            new_groups.append(new_group)
        new_state = {}
        for key, saved in saved_state.items():
            if not _is_int(key) or int(key) not in id_map:
                raise ValueError(f"state_dict['state'] has an entry for {key!r}, which is not the index "
                                 "of a parameter in state_dict['param_groups']")
            p = id_map[int(key)]
            entry = self._load_param_state(p, saved, f"state_dict['state'][{key!r}]")
            if entry:
                new_state[p] = entry
        self.param_groups = new_groups
        self.state = new_state
