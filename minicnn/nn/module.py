"""Parameter, Module and Sequential: the containers every layer is built from, with PyTorch's names.

How a forward and its backward are paired (no autograd tape)
------------------------------------------------------------
Every subclass's ``forward`` and ``backward`` are wrapped once, when the class is defined
(``Module.__init_subclass__``), so that the rules below and the hooks hold for every module, including
a user's module with its own backward:

- A forward with gradients enabled (outside ``minicnn.no_grad()``) can be differentiated once: its
  module's ``backward`` may be called once per such forward; one more raises
  ``BackwardBeforeForwardError`` (as PyTorch refuses a second backward through the same graph).
- A module called several times inside ONE outermost forward (shared weights, e.g. the same block
  applied twice by a parent's forward) keeps what each call needs on a stack: its backward calls take
  them in reverse order (the parent's backward runs its children in reverse), and the parameter
  gradients of all the calls add up.
- Each outermost forward (a module called when no other module's forward is running) starts a new
  graph: a module forgets what its forwards in an earlier graph kept the next time it runs in a new
  one. So repeated forwards without backward (evaluation without ``no_grad()``) keep nothing beyond
  the last one, and a module used twice must be called from a parent module's forward (not twice at
  the top level) for both calls to be differentiated.
- Hooks (``register_forward_pre_hook``, ``register_forward_hook``, ``register_full_backward_pre_hook``,
  ``register_full_backward_hook``, and the global ``register_module_*`` twins) run in registration
  order, global ones first, each returning a handle with ``remove()``; an exception in a hook reaches
  the caller. With no hook registered, hooks cost two checks per call; the pairing above costs a few
  dictionary operations per call (nothing per array element).
- A backward that raises (e.g. a ``dy`` of the wrong shape) leaves its forward to differentiate: the
  corrected call works.

Layers keep what their backward needs ONLY through ``Module._save_ctx(ctx)`` / ``Module._pop_ctx()``.
"""
import functools
import itertools
import threading
from collections import OrderedDict

import numpy as np

from .._validate import float_dtype
from ..grad_mode import _state as _grad_state


class BackwardBeforeForwardError(RuntimeError, ValueError):
    """``backward`` was called on a module that has no forward pass left to differentiate (none ran,
    it ran inside ``no_grad()``, or its backward already ran)."""


class Parameter:
    """A trainable array ``data`` and the gradient ``grad`` that backward passes accumulate into.

    ``requires_grad=False`` freezes it: layers compute no gradient for it and optimizers skip it.
    """

    def __init__(self, data, requires_grad=True):
        data = np.array(data, copy=True, order="C")
        if data.dtype.kind != "f":
            raise TypeError(f"Parameter data must be a floating-point array, got dtype {data.dtype}")
        self.data = data
        self.grad = np.zeros_like(data)
        self.requires_grad = bool(requires_grad)

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    def numel(self):
        """The number of elements of ``data``."""
        return int(self.data.size)

    def requires_grad_(self, requires_grad=True):
        """Freeze (False) or unfreeze (True) this parameter, in place; returns it."""
        self.requires_grad = bool(requires_grad)
        return self

    def zero_grad(self):
        self.grad.fill(0)

    def __repr__(self):
        frozen = "" if self.requires_grad else ", requires_grad=False"
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype}{frozen})"


def grad_target(param):
    """What a layer passes to a functional backward for ``param`` (see ``minicnn.functional``): its
    ``.grad``, into which the gradient is added, or False (not computed) when ``param`` is None or frozen."""
    if param is None or not param.requires_grad:
        return False
    return param.grad


def param_data(param):
    """What a layer passes to a functional forward for an optional ``param``: its ``.data``, or None."""
    return None if param is None else param.data


# -- graphs: which forwards a backward belongs to ------------------------------------------------------
class _Graph:
    """How deep inside module forwards we are, and the number of the current outermost forward (its
    "graph"): one per thread (``_graph_of_thread``)."""
    __slots__ = ("depth", "generation")

    def __init__(self):
        self.depth = 0
        self.generation = 0


class _GraphOfThread(threading.local):
    # One thread-local read per module call, then plain attributes: a threading.local's own attributes
    # cost about three times as much to read and write (measured with timeit: 0.29 against 0.12 us for
    # what a forward does with them).
    def __init__(self):
        self.graph = _Graph()


_graph_of_thread = _GraphOfThread()


# -- hooks -------------------------------------------------------------------------------------------
_HOOK_KINDS = ("forward_pre", "forward", "backward_pre", "backward")


class RemovableHandle:
    """Returned by every ``register_*hook``: ``handle.remove()`` unregisters the hook (idempotent);
    also a context manager that removes it on exit."""

    _ids = itertools.count()

    def __init__(self, table, on_remove):
        self.id = next(RemovableHandle._ids)
        self._table = table
        self._on_remove = on_remove

    def remove(self):
        if self._table.pop(self.id, None) is not None:
            self._on_remove()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class _GlobalHooks:
    def __init__(self):
        self.tables = {kind: OrderedDict() for kind in _HOOK_KINDS}
        self.active = False

    def refresh(self):
        self.active = any(self.tables.values())


_global_hooks = _GlobalHooks()


def _check_hook(hook):
    if not callable(hook):
        raise TypeError(f"hook must be callable, got {type(hook).__name__}")
    return hook


def _register_global(kind, hook):
    table = _global_hooks.tables[kind]
    handle = RemovableHandle(table, _global_hooks.refresh)
    table[handle.id] = _check_hook(hook)
    _global_hooks.refresh()
    return handle


def register_module_forward_pre_hook(hook):
    """A forward pre-hook for EVERY module (runs before each module's own): ``hook(module, args)``,
    may return replacement args. Returns a handle with ``remove()``."""
    return _register_global("forward_pre", hook)


def register_module_forward_hook(hook):
    """A forward hook for every module: ``hook(module, args, output)``, may return a replacement output."""
    return _register_global("forward", hook)


def register_module_full_backward_pre_hook(hook):
    """A backward pre-hook for every module: ``hook(module, grad_output)``, may return a replacement
    grad_output (a tuple: the arguments given to ``backward``)."""
    return _register_global("backward_pre", hook)


def register_module_full_backward_hook(hook):
    """A backward hook for every module: ``hook(module, grad_input, grad_output)``, may return a
    replacement grad_input (a tuple: ``backward``'s result, one entry per input)."""
    return _register_global("backward", hook)


def _hooks_of(module, kind):
    """The hooks to run for ``module``, global ones first, as a list (a hook may remove itself)."""
    hooks = list(_global_hooks.tables[kind].values()) if _global_hooks.active else []
    own = module.__dict__["_hooks"]
    if own is not None:
        hooks.extend(own[kind].values())
    return hooks


def _as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


def _forward_hooked(module, raw, args, kwargs):
    for hook in _hooks_of(module, "forward_pre"):
        result = hook(module, args)
        if result is not None:
            args = _as_tuple(result)
    out = raw(module, *args, **kwargs)
    for hook in _hooks_of(module, "forward"):
        result = hook(module, args, out)
        if result is not None:
            out = result
    return out


def _backward_hooked(module, raw, args, kwargs):
    grad_output = args
    for hook in _hooks_of(module, "backward_pre"):
        result = hook(module, grad_output)
        if result is not None:
            grad_output = _as_tuple(result)
    dx = raw(module, *grad_output, **kwargs)
    multiple = isinstance(dx, tuple)
    grad_input = dx if multiple else (dx,)
    for hook in _hooks_of(module, "backward"):
        result = hook(module, grad_input, grad_output)
        if result is not None:
            grad_input = _as_tuple(result)
    return grad_input if multiple or len(grad_input) != 1 else grad_input[0]


# -- the wrappers every subclass's forward and backward get ------------------------------------------
def _wrap_forward(raw):
    @functools.wraps(raw)
    def forward(self, *args, **kwargs):
        d = self.__dict__
        try:
            if d["_in_forward"]:  # a subclass's forward calling super().forward(): one call
                return raw(self, *args, **kwargs)
        except KeyError:
            raise _not_initialised(self) from None
        graph = _graph_of_thread.graph
        depth = graph.depth
        if depth == 0:
            graph.generation += 1
        grad = _grad_state.enabled
        if grad and d["_gen"] != graph.generation:
            _new_graph(d, graph.generation)
        graph.depth = depth + 1
        d["_in_forward"] = True
        try:
            if d["_hooks"] is None and not _global_hooks.active:
                out = raw(self, *args, **kwargs)
            else:
                out = _forward_hooked(self, raw, args, kwargs)
        finally:
            d["_in_forward"] = False
            graph.depth = depth
        if grad:
            d["_pending"] += 1
            d["_backward_done"] = False
        return out

    forward._minicnn_wrapped = True
    return forward


def _wrap_backward(raw):
    @functools.wraps(raw)
    def backward(self, *args, **kwargs):
        d = self.__dict__
        try:
            if d["_in_backward"]:  # a subclass's backward calling super().backward()
                return raw(self, *args, **kwargs)
        except KeyError:
            raise _not_initialised(self) from None
        if d["_pending"] <= 0:
            raise BackwardBeforeForwardError(_no_forward_message(self))
        d["_in_backward"] = True
        ctx_stack = list(d["_ctx_stack"])
        try:
            if d["_hooks"] is None and not _global_hooks.active:
                dx = raw(self, *args, **kwargs)
            else:
                dx = _backward_hooked(self, raw, args, kwargs)
        except BaseException:
            d["_ctx_stack"] = ctx_stack  # a backward that raises (e.g. a bad dy) leaves the module as it was
            raise
        finally:
            d["_in_backward"] = False
        d["_pending"] -= 1
        d["_backward_done"] = True
        return dx

    backward._minicnn_wrapped = True
    return backward


def between_calls():
    """A module's call bookkeeping when no forward or backward runs and nothing is kept for a backward
    (what ``__init__`` starts with), as a new dict of its ``__dict__`` entries."""
    return {"_in_forward": False, "_in_backward": False, "_backward_done": False, "_gen": -1, "_pending": 0,
            "_ctx_stack": []}


def _new_graph(d, generation):
    """Forget what forwards of an earlier graph kept (see the module docstring); every module of a model
    comes here once per training step, usually with nothing kept (its backward took it)."""
    d["_gen"] = generation
    if d["_pending"] or d["_ctx_stack"]:
        d["_pending"] = 0
        d["_ctx_stack"] = []


def _no_forward_message(module):
    name = type(module).__name__
    if module.__dict__.get("_backward_done"):
        return (f"{name}.backward was called again after one forward: each forward can be differentiated "
                f"once (as PyTorch refuses a second backward through the same graph); run the forward again "
                f"(a module used twice must be called twice inside one parent module's forward)")
    return (f"{name}.backward called before forward: it needs a forward pass with gradients enabled first "
            f"(a forward inside minicnn.no_grad() keeps nothing for backward)")


_INTERNAL_ATTRIBUTES = frozenset(
    ["training", "_buffer_names", "_hooks", "_ctx_stack", "_gen", "_pending", "_backward_done", "_in_forward",
     "_in_backward", "_child_cache"])


def _not_initialised(module):
    name = type(module).__name__
    return AttributeError(
        f"{name} is not initialised: {name}.__init__ must call super().__init__() first, before assigning "
        f"parameters, buffers or sub-modules (Module.__init__ sets up training mode, buffers and hooks)")


def _plain_container_members(value):
    """The Modules and Parameters directly inside a plain list, tuple, set or dict (else [])."""
    if isinstance(value, dict):
        items = value.values()
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = value
    else:
        return []
    return [v for v in items if isinstance(v, (Module, Parameter))]


def _plain_container_error(owner, name, value):
    kind = type(value).__name__
    return TypeError(
        f"{type(owner).__name__}.{name} is a plain {kind} holding Modules or Parameters: minicnn does not look "
        f"inside plain lists, tuples and dicts, so parameters(), train(), state_dict() and the optimizers would "
        f"not see them (they would silently not be trained); use nn.ModuleList or nn.ModuleDict instead, or "
        f"assign each one as an attribute")


class Module:
    """Base class of layers and models.

    Subclasses call ``super().__init__()`` first, assign parameters, buffers (``register_buffer``) and
    sub-modules as attributes (several sub-modules: ``ModuleList`` / ``ModuleDict``, never a plain list
    or dict), and implement ``forward(x)`` and ``backward(dy)``; ``backward`` adds into each parameter's
    ``.grad`` (``grad_target(p)``) and returns the gradient with respect to the input. See the module
    docstring for how forwards and backwards are paired and for hooks.
    """

    def __init__(self):
        d = self.__dict__
        d["training"] = True
        d["_buffer_names"] = []
        d["_hooks"] = None  # {kind: OrderedDict(id -> hook)} once a hook is registered
        d.update(between_calls())

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name, wrap in (("forward", _wrap_forward), ("backward", _wrap_backward)):
            fn = cls.__dict__.get(name)
            if callable(fn) and not getattr(fn, "_minicnn_wrapped", False) and not isinstance(fn, type):
                setattr(cls, name, wrap(fn))

    def __getattr__(self, name):  # only called when normal lookup fails
        if name in _INTERNAL_ATTRIBUTES and "_gen" not in self.__dict__:
            raise _not_initialised(self)
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __setattr__(self, name, value):
        if isinstance(value, (Module, Parameter)):
            if "_gen" not in self.__dict__:
                raise _not_initialised(self)
        elif isinstance(value, (list, tuple, dict, set, frozenset)) and name not in _INTERNAL_ATTRIBUTES:
            members = _plain_container_members(value)
            if members:
                registered = {id(v) for v in self.__dict__.values()}
                if any(id(m) not in registered for m in members):
                    raise _plain_container_error(self, name, value)
        d = self.__dict__
        if "_child_cache" in d and (isinstance(value, Module) or isinstance(d.get(name), Module)):
            del d["_child_cache"]
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self.__dict__.pop("_child_cache", None)
        object.__delattr__(self, name)

    def _child_tuple(self):
        """``tuple(self.children())``, kept until an attribute holding a Module is set or deleted (what
        a container's forward and backward iterate on every call: rebuilding it from ``vars()`` cost
        ~0.5 us per child and call, measured with timeit on a 12-module Sequential)."""
        d = self.__dict__
        children = d.get("_child_cache")
        if children is None:
            children = d["_child_cache"] = tuple(self.children())
        return children

    # -- what backward needs: kept by forward, taken by backward -------------------------------
    def _save_ctx(self, ctx):
        """Keep ``ctx`` (a functional ``op_forward``'s second result) for a later ``backward``; nothing
        inside ``minicnn.no_grad()``. A module called several times in one graph keeps one ctx per call."""
        if not _grad_state.enabled:
            return
        d = self.__dict__
        generation = _graph_of_thread.graph.generation
        if d["_gen"] != generation:
            _new_graph(d, generation)
        d["_ctx_stack"].append(ctx)

    def _pop_ctx(self):
        """The ctx of the latest forward not yet differentiated (last in, first out); raises
        ``BackwardBeforeForwardError`` if there is none (no forward, under no_grad, or already used)."""
        stack = self.__dict__["_ctx_stack"]
        if not stack:
            raise BackwardBeforeForwardError(_no_forward_message(self))
        return stack.pop()

    @property
    def _ctx(self):
        """The ctx the next ``backward`` would take (None if there is none)."""
        stack = self.__dict__["_ctx_stack"]
        return stack[-1] if stack else None

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

    # -- hooks ----------------------------------------------------------------------------------
    def _register_hook(self, kind, hook):
        d = self.__dict__
        if d["_hooks"] is None:
            d["_hooks"] = {k: OrderedDict() for k in _HOOK_KINDS}
        table = d["_hooks"][kind]

        def on_remove():
            if d["_hooks"] is not None and not any(d["_hooks"].values()):
                d["_hooks"] = None  # back to the hook-free fast path

        handle = RemovableHandle(table, on_remove)
        table[handle.id] = _check_hook(hook)
        return handle

    def register_forward_pre_hook(self, hook):
        """``hook(module, args)`` runs before each forward (``args``: the positional arguments, a tuple);
        if it returns something other than None, that replaces args (a non-tuple becomes a 1-tuple).
        Returns a handle; ``handle.remove()`` unregisters it."""
        return self._register_hook("forward_pre", hook)

    def register_forward_hook(self, hook):
        """``hook(module, args, output)`` runs after each forward; a non-None result replaces the output."""
        return self._register_hook("forward", hook)

    def register_full_backward_pre_hook(self, hook):
        """``hook(module, grad_output)`` runs before each backward (``grad_output``: the arguments given to
        ``backward``, a tuple, e.g. ``(dy,)``); a non-None result replaces them."""
        return self._register_hook("backward_pre", hook)

    def register_full_backward_hook(self, hook):
        """``hook(module, grad_input, grad_output)`` runs after each backward (``grad_input``: what backward
        returned, as a tuple, one entry per input); a non-None result replaces grad_input."""
        return self._register_hook("backward", hook)

    # -- traversal ----------------------------------------------------------------------------
    def named_children(self):
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self):
        return (m for _, m in self.named_children())

    def named_modules(self, prefix=""):
        if "_gen" not in self.__dict__:
            raise _not_initialised(self)
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

    def _check_plain_containers(self):
        """Raise if a plain list/tuple/dict attribute holds a Module or Parameter that is not registered
        (e.g. ``self.layers = []`` filled later with ``append``)."""
        modules = list(self.modules())
        registered = {id(m) for m in modules}
        registered.update(id(v) for m in modules for v in vars(m).values() if isinstance(v, Parameter))
        for m in modules:
            for name, value in vars(m).items():
                if name not in _INTERNAL_ATTRIBUTES and any(id(v) not in registered
                                                            for v in _plain_container_members(value)):
                    raise _plain_container_error(m, name, value)

    def _named_parameters(self):
        return self._named_members(
            lambda m: [(n, v) for n, v in vars(m).items() if isinstance(v, Parameter)])

    def named_parameters(self):
        """``(dotted name, Parameter)`` pairs, each parameter once; raises ``TypeError`` if a plain
        list/tuple/dict attribute holds an unregistered Module or Parameter (see ``ModuleList``)."""
        self._check_plain_containers()
        return self._named_parameters()

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
        for _, p in self._named_parameters():  # called every step: without the container check
            p.grad.fill(0)

    def requires_grad_(self, requires_grad=True):
        """Freeze (False) or unfreeze (True) every parameter of this module and its sub-modules; frozen
        parameters get no gradient and optimizers skip them. Returns self."""
        for p in self.parameters():
            p.requires_grad = bool(requires_grad)
        return self

    def apply(self, fn):
        """Call ``fn(module)`` on every sub-module (children first, as PyTorch) and on self; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def to(self, dtype):
        """Cast every parameter (data and grad), float buffer and float array the modules keep to ``dtype``
        (np.float32 or np.float64), and set each module's ``dtype`` attribute; returns self.

        Parameters get new arrays: cast a model before creating its optimizer (as in PyTorch). What
        forwards kept for backward is dropped (run the forward again), and reused work arrays are
        reallocated on next use.
        """
        dtype = float_dtype("dtype", dtype)
        seen = set()
        for m in self.modules():
            for name, value in list(vars(m).items()):
                if isinstance(value, Parameter):
                    if id(value) not in seen:
                        seen.add(id(value))
                        value.data = value.data.astype(dtype)
                        value.grad = value.grad.astype(dtype)
                elif isinstance(value, np.ndarray):
                    if value.dtype.kind == "f":
                        object.__setattr__(m, name, value.astype(dtype))
                elif isinstance(value, np.dtype) and value.kind == "f" and name == "dtype":
                    object.__setattr__(m, name, dtype)
                elif name.startswith("_") and name not in _INTERNAL_ATTRIBUTES and _holds_arrays(value):
                    object.__setattr__(m, name, type(value)() if isinstance(value, dict) else None)
            _new_graph(m.__dict__, -1)
        return self

    def double(self):
        """``to(np.float64)``."""
        return self.to(np.float64)

    def float(self):
        """``to(np.float32)``."""
        return self.to(np.float32)

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


def _holds_arrays(value):
    """Whether ``value`` is a cache of arrays (a tuple, list or dict with an ndarray inside)."""
    if isinstance(value, dict):
        value = list(value.values())
    return isinstance(value, (tuple, list)) and any(isinstance(v, np.ndarray) for v in value)


class Sequential(Module):
    """Runs its modules in order; ``backward`` runs their backward passes in reverse.

    Indexing gives a module, slicing a new ``Sequential`` of the same (shared) modules, as PyTorch.
    """

    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential takes Modules, argument {i} is {type(m).__name__}")
            setattr(self, str(i), m)

    def forward(self, x):
        for m in self._child_tuple():
            x = m(x)
        return x

    def backward(self, dy):
        for m in reversed(self._child_tuple()):
            dy = m.backward(dy)
        return dy

    def __getitem__(self, i):
        children = list(self.children())
        if isinstance(i, slice):
            return Sequential(*children[i])
        return children[i]

    def __len__(self):
        return sum(1 for _ in self.children())

    def __iter__(self):
        return self.children()
