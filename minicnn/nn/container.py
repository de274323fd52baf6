"""Containers: ``ModuleList``, ``ModuleDict`` (PyTorch's APIs) and the branching blocks ``Residual``,
``Concat`` and ``Parallel`` (with the merge modules ``Add`` and ``Multiply``), whose backward applies
the chain rule to their children, so that skip connections and branches need no hand-written backward.

Branch order: every branch sees the same input, the branches run in order in forward and their
backward passes run in REVERSE order (so a module shared by two branches pops its saved state last
in, first out), and the input gradients of all branches add up.
"""

import numpy as np

from .._validate import _is_int
from ..functional import add
from .module import Module, Sequential


def _check_module(owner, what, m):
    if not isinstance(m, Module):
        raise TypeError(f"{owner} takes Modules: {what} is {type(m).__name__}")
    return m


class ModuleList(Module):
    """A list of sub-modules that ``parameters()``, ``train()``, ``state_dict()`` (keys ``"0.weight"``, ...)
    and ``to()`` see; PyTorch's API: indexing (a slice gives a ModuleList), ``len``, iteration,
    ``append``, ``extend``, ``insert``, ``pop``, ``+=``, item assignment and deletion. It has no forward:
    call its modules from a parent's forward (and their backward passes from the parent's backward)."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _items(self):
        return [m for _, m in self.named_children()]

    def _reset(self, items):
        for name in [n for n, _ in self.named_children()]:
            delattr(self, name)
        for i, m in enumerate(items):
            setattr(self, str(i), m)

    def _index(self, i):
        if not _is_int(i):
            raise TypeError(f"ModuleList indices must be ints or slices, got {type(i).__name__}")
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} is out of range for a ModuleList of length {n}")
        return i % n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return ModuleList(self._items()[i])
        return self._items()[self._index(i)]

    def __setitem__(self, i, module):
        i = self._index(i)
        setattr(self, str(i), _check_module("ModuleList", f"item {i}", module))

    def __delitem__(self, i):
        items = self._items()
        if isinstance(i, slice):
            del items[i]
        else:
            del items[self._index(i)]
        self._reset(items)

    def __len__(self):
        return sum(1 for _ in self.named_children())

    def __iter__(self):
        return iter(self._items())

    def __iadd__(self, modules):
        return self.extend(modules)

    def __add__(self, other):
        return ModuleList(self._items() + list(other))

    def append(self, module):
        """Add ``module`` at the end; returns self."""
        setattr(self, str(len(self)), _check_module("ModuleList", f"item {len(self)}", module))
        return self

    def extend(self, modules):
        """Append every module of the iterable ``modules``; returns self."""
        if isinstance(modules, Module) and not isinstance(modules, (ModuleList, Sequential)):
            raise TypeError(f"ModuleList.extend takes an iterable of Modules, got {type(modules).__name__}")
        for m in list(modules):
            self.append(m)
        return self

    def insert(self, index, module):
        """Insert ``module`` before position ``index`` (as ``list.insert``)."""
        if not _is_int(index):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        items = self._items()
        items.insert(index, _check_module("ModuleList", "the inserted item", module))
        self._reset(items)

    def pop(self, index=-1):
        """Remove and return the module at ``index`` (the last by default)."""
        items = self._items()
        m = items.pop(self._index(index))
        self._reset(items)
        return m

    def __repr__(self):
        return super().__repr__() if len(self) else "ModuleList()"


class ModuleDict(Module):
    """An ordered dict of named sub-modules that ``parameters()``, ``train()`` and ``state_dict()``
    (keys ``"name.weight"``) see; PyTorch's API: ``d[key]``, assignment, ``del``, ``len``, iteration over
    keys, ``in``, ``keys()``, ``items()``, ``values()``, ``update()``, ``pop()``, ``clear()``.

    Keys are strings without ``"."``, not starting with ``"_"``, and not the name of a Module method or
    attribute (each module is stored as an attribute of that name). It has no forward."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def _check_key(self, key):
        if not isinstance(key, str):
            raise TypeError(f"ModuleDict keys must be strings, got {type(key).__name__}")
        if not key or "." in key or key.startswith("_"):
            raise ValueError(f"ModuleDict key {key!r} must be a non-empty string without '.' that does not "
                             f"start with '_'")
        if hasattr(type(self), key) or (key in self.__dict__ and not isinstance(self.__dict__[key], Module)):
            raise ValueError(f"ModuleDict key {key!r} is the name of a ModuleDict attribute or method; "
                             f"choose another key")
        return key

    def __getitem__(self, key):
        value = self.__dict__.get(key) if isinstance(key, str) else None
        if not isinstance(value, Module):
            raise KeyError(key)
        return value

    def __setitem__(self, key, module):
        setattr(self, self._check_key(key), _check_module("ModuleDict", f"the value of key {key!r}", module))

    def __delitem__(self, key):
        self[key]  # noqa: B018  (KeyError if absent)
        delattr(self, key)

    def __len__(self):
        return sum(1 for _ in self.named_children())

    def __iter__(self):
        return iter(self.keys())

    def __contains__(self, key):
        return isinstance(key, str) and isinstance(self.__dict__.get(key), Module)

    def keys(self):
        return [k for k, _ in self.named_children()]

    def values(self):
        return [m for _, m in self.named_children()]

    def items(self):
        return list(self.named_children())

    def update(self, modules):
        """Add (or replace) entries from a mapping or an iterable of ``(key, module)`` pairs."""
        pairs = modules.items() if hasattr(modules, "items") else modules
        for pair in pairs:
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise TypeError(f"ModuleDict.update takes a mapping or (key, module) pairs, got {pair!r}")
            self[pair[0]] = pair[1]

    def pop(self, key):
        m = self[key]
        del self[key]
        return m

    def clear(self):
        for k in self.keys():
            del self[k]

    def __repr__(self):
        return super().__repr__() if len(self) else "ModuleDict()"


def _sum_gradients(grads):
    """The sum of the branch input gradients (None entries: branches without an input gradient). The
    first add makes a new array, later adds go into it in place: a branch's array is never written."""
    grads = [g for g in grads if g is not None]
    if not grads:
        return None
    if len(grads) == 1:
        return grads[0]
    total = add(grads[0], grads[1])
    for g in grads[2:]:
        if np.shape(g) == total.shape and np.result_type(total, g) == total.dtype:
            add(total, g, out=total)
        else:
            total = add(total, g)
    return total


class Residual(Module):
    """``Residual(body, shortcut=None)``: ``y = body(x) + shortcut(x)``, with ``shortcut`` the identity
    when None (a ResNet block: ``Residual(Sequential(conv, bn, relu, conv, bn))`` then a ReLU; a
    projection: ``shortcut=Sequential(Conv2d(..., 1, stride=2), BatchNorm2d(...))``).

    Both paths must give the same shape. Backward: ``dx = body.backward(dy) + shortcut.backward(dy)``
    (``+ dy`` for the identity). The adds run in a compiled kernel (``minicnn.functional.add``)."""

    def __init__(self, body, shortcut=None):
        super().__init__()
        self.body = _check_module("Residual", "body", body)
        self.shortcut = None if shortcut is None else _check_module("Residual", "shortcut", shortcut)

    def forward(self, x):
        out = self.body(x)
        skip = x if self.shortcut is None else self.shortcut(x)
        if np.shape(out) != np.shape(skip):
            raise ValueError(f"Residual: the body's output has shape {np.shape(out)} but the "
                             f"{'input (identity shortcut)' if self.shortcut is None else 'shortcut output'} "
                             f"has shape {np.shape(skip)}; they must be equal to be added")
        return add(out, skip)

    def backward(self, dy):
        d_skip = dy if self.shortcut is None else self.shortcut.backward(dy)
        d_body = self.body.backward(dy)
        return _sum_gradients([d_body, d_skip])


class Concat(Module):
    """``Concat(*branches, dim=1)``: every branch sees the input; their outputs are concatenated along
    ``dim`` (Inception blocks; DenseNet or U-Net skips as ``Concat(Identity(), inner)``).

    The outputs must agree in every dimension but ``dim`` (negative ``dim`` counts from the end).
    Backward splits ``dy`` along ``dim``, runs each branch's backward on its part (last branch first)
    and sums the input gradients."""

    def __init__(self, *branches, dim=1):
        super().__init__()
        if not branches:
            raise ValueError("Concat needs at least one branch")
        if not _is_int(dim):
            raise TypeError(f"dim must be an int, got {dim!r}")
        self.dim = int(dim)
        self.branches = ModuleList([_check_module("Concat", f"branch {i}", b) for i, b in enumerate(branches)])

    def forward(self, x):
        outs = [b(x) for b in self.branches]
        first = np.shape(outs[0])
        nd = len(first)
        if not -nd <= self.dim < nd:
            raise ValueError(f"Concat dim={self.dim} is out of range for the branches' {nd}-D outputs")
        dim = self.dim % nd
        for i, o in enumerate(outs):
            s = np.shape(o)
            if len(s) != nd or s[:dim] != first[:dim] or s[dim + 1:] != first[dim + 1:]:
                raise ValueError(f"Concat(dim={self.dim}): branch {i}'s output has shape {s}, which does not "
                                 f"match branch 0's {first} outside dimension {dim}")
        sizes = [np.shape(o)[dim] for o in outs]
        self._save_ctx((dim, sizes))
        return np.concatenate(outs, axis=dim)

    def backward(self, dy):
        dim, sizes = self._pop_ctx()
        dy = np.asarray(dy)
        if dy.ndim <= dim or dy.shape[dim] != sum(sizes):
            raise ValueError(f"dy must have the output's size {sum(sizes)} in dimension {dim}, got shape "
                             f"{dy.shape}")
        parts = np.split(dy, np.cumsum(sizes)[:-1], axis=dim)
        grads = [b.backward(np.ascontiguousarray(p)) for b, p in zip(reversed(self.branches), reversed(parts))]
        return _sum_gradients(grads)

    def extra_repr(self):
        return f"dim={self.dim}"


class Parallel(Module):
    """``Parallel(*branches, merge)``: every branch sees the input ``x``; ``y = merge(b1(x), b2(x), ...)``.

    ``merge`` is a Module taking one argument per branch whose ``backward(dy)`` returns a tuple of the
    gradients of its inputs (``Add()`` and ``Multiply()`` do; so does any user module that follows
    this rule). Squeeze-and-excitation:
    ``Parallel(Identity(), Sequential(AvgPool2d(H), Conv2d(C, C // r, 1), ReLU(), Conv2d(C // r, C, 1),
    Sigmoid()), merge=Multiply())``. Backward: ``merge.backward(dy)``, then each branch's backward
    on its gradient (last branch first), summed."""

    def __init__(self, *branches, merge):
        super().__init__()
        if not branches:
            raise ValueError("Parallel needs at least one branch")
        self.branches = ModuleList([_check_module("Parallel", f"branch {i}", b) for i, b in enumerate(branches)])
        self.merge = _check_module("Parallel", "merge", merge)

    def forward(self, x):
        return self.merge(*[b(x) for b in self.branches])

    def backward(self, dy):
        grads = self.merge.backward(dy)
        n = len(self.branches)
        if n == 1 and not isinstance(grads, (tuple, list)):
            grads = (grads,)
        if not isinstance(grads, (tuple, list)) or len(grads) != n:
            raise ValueError(f"Parallel: merge.backward must return one gradient per branch ({n}), got "
                             f"{type(grads).__name__}" + (f" of length {len(grads)}" if isinstance(grads, (tuple, list)) else ""))
        return _sum_gradients([b.backward(g) for b, g in zip(reversed(self.branches), reversed(grads))])


def _unbroadcast(g, shape):
    """Sum ``g`` down to ``shape`` (the gradient of a broadcast operand)."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return np.ascontiguousarray(g)


def _shapes(name, xs):
    if not xs:
        raise ValueError(f"{name} needs at least one input")
    for i, x in enumerate(xs):
        if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
            raise TypeError(f"{name} input {i} must be a floating-point numpy.ndarray, got "
                            f"{getattr(x, 'dtype', type(x).__name__)}")
    shapes = [x.shape for x in xs]
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(f"{name}: the inputs' shapes {shapes} do not broadcast together") from None
    return shapes


class Add(Module):
    """``Add()(a, b, ...)``: the elementwise sum of its inputs (NumPy broadcasting); backward returns
    a tuple with ``dy`` summed down to each input's shape. A merge for ``Parallel``."""

    def forward(self, *xs):
        shapes = _shapes("Add", xs)
        self._save_ctx(shapes)
        if len(xs) == 2 and xs[0].shape == xs[1].shape:
            return add(xs[0], xs[1])
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return np.array(out, copy=True) if out is xs[0] else out

    def backward(self, dy):
        shapes = self._pop_ctx()
        dy = np.asarray(dy)
        return tuple(_unbroadcast(dy, s) for s in shapes)


class Multiply(Module):
    """``Multiply()(a, b, ...)``: the elementwise product of its inputs (NumPy broadcasting, e.g. an
    ``(N, C, H, W)`` map times ``(N, C, 1, 1)`` channel weights); backward returns a tuple: for each
    input, ``dy`` times the product of the others, summed down to that input's shape."""

    def forward(self, *xs):
        _shapes("Multiply", xs)
        self._save_ctx(xs)
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return np.array(out, copy=True) if out is xs[0] else out

    def backward(self, dy):
        xs = self._pop_ctx()
        dy = np.asarray(dy)
        grads = []
        for i, x in enumerate(xs):
            g = dy
            for j, other in enumerate(xs):
                if j != i:
                    g = g * other
            grads.append(_unbroadcast(np.broadcast_to(g, np.broadcast_shapes(g.shape, x.shape)), x.shape))
        return tuple(grads)
