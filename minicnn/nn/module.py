"""Parameter, Module and Sequential: the containers every layer is built from, with PyTorch's names."""
import functools
from collections import OrderedDict

import numpy as np

from ..grad_mode import is_grad_enabled


class BackwardBeforeForwardError(RuntimeError, ValueError):
    """``backward`` was called on a layer that has no forward pass to differentiate."""


class Parameter:
    """A trainable array ``data`` and the gradient ``grad`` that backward passes accumulate into."""

    def __init__(self, data):
        data = np.array(data, copy=True, order="C")
        if data.dtype.kind != "f":
            raise TypeError(f"Parameter data must be a floating-point array, got dtype {data.dtype}")
        self.data = data
        self.grad = np.zeros_like(data)
        self.requires_grad = True

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    def zero_grad(self):
        self.grad.fill(0)

    def __repr__(self):
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


def grad_target(param):
    """What a layer passes to a functional backward for ``param`` (see ``minicnn.functional``): its
    ``.grad``, into which the gradient is added, or False (not computed) when ``param`` is None or frozen."""
    if param is None or not param.requires_grad:
        return False
    return param.grad


def _restoring_ctx(backward):
    """``backward`` that puts the ctx back if it raises (a bad ``dy`` leaves the module as it was)."""
    @functools.wraps(backward)
    def wrapped(self, *args, **kwargs):
        ctx = getattr(self, "_ctx", None)
        try:
            return backward(self, *args, **kwargs)
        except BaseException:
            self._ctx = ctx
            raise
    return wrapped


class Module:
    """Base class of layers and models.

    Subclasses call ``super().__init__()``, assign parameters, buffers (``register_buffer``) and
    sub-modules as attributes, and implement ``forward(x)`` and ``backward(dy)``; ``backward`` adds
    into each parameter's ``.grad`` and returns the gradient with respect to the input.
    """

    def __init__(self):
        self.training = True
        self._buffer_names = []
        self._ctx = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "backward" in cls.__dict__:
            cls.backward = _restoring_ctx(cls.__dict__["backward"])

    # -- what backward needs: kept by forward, taken by backward -------------------------------
    def _save_ctx(self, ctx):
        """Keep ``ctx`` (a functional ``op_forward``'s second result) for the next ``backward``; None
        inside ``minicnn.no_grad()``, where forwards keep nothing."""
        self._ctx = ctx if is_grad_enabled() else None

    def _pop_ctx(self):
        """The ctx the last forward kept; raises if there is none (no forward, or it ran under no_grad)."""
        ctx = self._ctx
        if ctx is None:
            raise BackwardBeforeForwardError(
                f"{type(self).__name__}.backward needs a forward pass with gradients enabled first "
                f"(outside minicnn.no_grad())")
        self._ctx = None
        return ctx

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, dy):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def register_buffer(self, name, array):
        """Store ``array`` as attribute ``name``, saved in ``state_dict`` but not trained."""
        if name not in self._buffer_names:
            self._buffer_names.append(name)
        setattr(self, name, np.asarray(array))

    # -- traversal ----------------------------------------------------------------------------
    def named_children(self):
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self):
        return (m for _, m in self.named_children())

    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (m for _, m in self.named_modules())

    def _named_members(self, get_members):
        seen = set()
        for prefix, module in self.named_modules():
            for name, value in get_members(module):
                if id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{prefix}.{name}" if prefix else name), value

    def named_parameters(self):
        return self._named_members(
            lambda m: [(n, v) for n, v in vars(m).items() if isinstance(v, Parameter)])

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self):
        return self._named_members(lambda m: [(n, getattr(m, n)) for n in m._buffer_names])

    # -- modes and gradients ------------------------------------------------------------------
    def train(self, mode=True):
        for m in self.modules():
            m.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad.fill(0)

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self):
        """Copies of every parameter and buffer, keyed by dotted name (``"0.weight"``, ...)."""
        state = OrderedDict()
        for name, p in self.named_parameters():
            state[name] = p.data.copy()
        for name, b in self.named_buffers():
            state[name] = np.array(b, copy=True)
        return state

    def load_state_dict(self, state_dict, strict=True):
        """Copy ``state_dict``'s arrays into this module's parameters and buffers, in place.

        Raises ``ValueError`` listing every missing, unexpected and wrongly shaped entry; with
        ``strict=False`` missing and unexpected keys are allowed (shapes must still match).
        Nothing is changed unless every entry fits.
        """
        targets = OrderedDict()
        for name, p in self.named_parameters():
            targets[name] = ("param", p)
        for prefix, module in self.named_modules():
            for b in module._buffer_names:
                targets[f"{prefix}.{b}" if prefix else b] = ("buffer", (module, b))
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"state_dict must be a mapping of names to arrays, got {type(state_dict).__name__}")
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        mismatched = []
        for name, (kind, target) in targets.items():
            if name not in state_dict:
                continue
            current = target.data if kind == "param" else getattr(*target)
            value = np.asarray(state_dict[name])
            if value.shape != np.shape(current):
                mismatched.append(f"{name}: expected shape {np.shape(current)}, got {value.shape}")
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if mismatched:
            problems.append("wrong shapes: " + "; ".join(mismatched))
        if problems:
            raise ValueError(f"cannot load state_dict into {type(self).__name__}: " + " | ".join(problems))
        for name, (kind, target) in targets.items():
            if name not in state_dict:
                continue
            value = np.asarray(state_dict[name])
            if kind == "param":
                np.copyto(target.data, value, casting="unsafe")
            else:
                module, attr = target
                current = np.asarray(getattr(module, attr))
                setattr(module, attr, value.astype(current.dtype, copy=True))

    # -- printing -------------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in children]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


class Sequential(Module):
    """Runs its modules in order; ``backward`` runs their backward passes in reverse."""

    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential takes Modules, argument {i} is {type(m).__name__}")
            setattr(self, str(i), m)

    def forward(self, x):
        for m in self.children():
            x = m(x)
        return x

    def backward(self, dy):
        for m in reversed(list(self.children())):
            dy = m.backward(dy)
        return dy

    def __getitem__(self, i):
        return list(self.children())[i]

    def __len__(self):
        return sum(1 for _ in self.children())

    def __iter__(self):
        return self.children()
