"""``minicnn.summary(model, input_shape)``: a torchinfo-style table of every module's output shape,
parameter count and forward multiply-adds, and the same data returned as a ``ModelSummary``.

Multiply-adds follow torchinfo's convention (its "Mult-Adds" column), counted from each module's own
parameters: a convolution counts ``(weight + bias elements) * N * OH * OW`` (every weight used once per
output position; so one multiply-add per kernel tap, plus the bias adds), any other module with
parameters ``N * (its parameter count)`` (a linear layer: ``N * (in * out + out)``), and modules without
parameters (activations, pooling, containers) 0. One multiply-add is two FLOPs; fvcore counts the same
multiply-adds without the bias term.

The model runs one forward on a seeded random input in eval mode inside ``no_grad()`` (as torchinfo
does), through forward hooks; its training flags, buffers and saved state are left as they were.
"""
import dataclasses

import numpy as np

from ._validate import _is_int, float_dtype
from .grad_mode import no_grad
from .nn.module import Module, Parameter

__all__ = ["summary", "ModelSummary", "LayerSummary"]


@dataclasses.dataclass
class LayerSummary:
    """One row: one call of one module (a module called twice has two rows)."""
    name: str              # dotted name in the model ("" for the model itself)
    type: str              # class name
    depth: int             # 0 for the model, 1 for its children, ...
    index: int             # 1-based position among the rows of its parent (torchinfo's "depth-idx")
    output_shape: tuple
    num_params: int        # parameters the module holds itself (not its sub-modules')
    trainable_params: int  # of those, the ones with requires_grad
    mult_adds: int         # forward multiply-adds of this call (see the module docstring)
    is_leaf: bool          # no sub-modules


@dataclasses.dataclass
class ModelSummary:
    rows: list
    input_shape: tuple
    total_params: int
    trainable_params: int
    total_mult_adds: int
    input_bytes: int
    forward_backward_bytes: int  # outputs of the leaf modules, twice (the activation and its gradient)
    params_bytes: int

    @property
    def non_trainable_params(self):
        return self.total_params - self.trainable_params

    def __str__(self):
        return _table(self)


def _own_params(module):
    return [v for v in vars(module).values() if isinstance(v, Parameter)]


def _mult_adds(module, out_shape):
    params = _own_params(module)
    if not params or not out_shape:
        return 0
    count = sum(p.numel() for p in params)
    if "Conv" in type(module).__name__:
        return int(count * out_shape[0] * int(np.prod(out_shape[2:], dtype=np.int64)))
    return int(count * out_shape[0])


def summary(model, input_shape, dtype=None, verbose=True, seed=0):
    """Run ``model`` once on a random input of ``input_shape`` (a tuple of positive ints, e.g.
    ``(1, 1, 28, 28)``) and return a :class:`ModelSummary`; ``verbose`` also prints its table.
    ``dtype``: the input's dtype, by default the model's first parameter's (float32 without any)."""
    if not isinstance(model, Module):
        raise TypeError(f"model must be a minicnn.nn.Module, got {type(model).__name__}")
    if not (isinstance(input_shape, (tuple, list)) and input_shape and all(_is_int(s) and s >= 1 for s in input_shape)):
        raise ValueError(f"input_shape must be a non-empty tuple of positive ints, got {input_shape!r}")
    input_shape = tuple(int(s) for s in input_shape)
    params = model.parameters()
    if dtype is None:
        dtype = params[0].data.dtype if params else np.float32
    dtype = float_dtype("dtype", dtype)
    x = np.random.default_rng(seed).standard_normal(input_shape).astype(dtype)

    names = {}
    for name, m in model.named_modules():
        names.setdefault(id(m), name)
    rows, open_rows, child_counts = [], [], [0]

    def pre(module, args):
        depth = len(open_rows)
        child_counts[-1] += 1
        own = _own_params(module)
        row = LayerSummary(names.get(id(module), "?"), type(module).__name__, depth, child_counts[-1], (),
                           sum(p.numel() for p in own), sum(p.numel() for p in own if p.requires_grad), 0,
                           not any(True for _ in module.children()))
        rows.append(row)
        open_rows.append(row)
        child_counts.append(0)

    def post(module, args, out):
        row = open_rows.pop()
        child_counts.pop()
        row.output_shape = tuple(np.shape(out))
        row.mult_adds = _mult_adds(module, row.output_shape)

    modules = list({id(m): m for m in model.modules()}.values())
    training = [m.training for m in modules]
    buffers = [(m, b, np.array(getattr(m, b), copy=True)) for m in modules for b in m._buffer_names]
    handles = []
    try:
        for m in modules:
            handles.append(m.register_forward_pre_hook(pre))
            handles.append(m.register_forward_hook(post))
        model.eval()
        with no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        for m, flag in zip(modules, training):
            m.training = flag
        for m, b, value in buffers:
            setattr(m, b, value)

    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    result = ModelSummary(
        rows=rows, input_shape=input_shape, total_params=total, trainable_params=trainable,
        total_mult_adds=sum(r.mult_adds for r in rows), input_bytes=x.nbytes,
        forward_backward_bytes=2 * sum(int(np.prod(r.output_shape, dtype=np.int64)) * dtype.itemsize
                                       for r in rows if r.is_leaf),
        params_bytes=sum(p.data.nbytes for p in params))
    if verbose:
        print(result)
    return result


def _units(n):
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6)):
        if n >= scale:
            return unit, n / scale
    return "M", n / 1e6


def _table(s):
    rows = s.rows
    labels = []
    for i, r in enumerate(rows):
        if r.depth == 0:
            labels.append(r.type)
            continue
        last = not any(o.depth == r.depth for o in rows[i + 1:_next_at_or_above(rows, i, r.depth - 1)])
        labels.append("│    " * (r.depth - 1) + ("└─" if last else "├─") + f"{r.type}: {r.depth}-{r.index}")
    width = max([40] + [len(label) + 2 for label in labels])
    header = f"{'Layer (type:depth-idx)':<{width}}{'Output Shape':<25}{'Param #':>15}{'Mult-Adds':>15}"
    line = "=" * len(header)
    out = [line, header, line]
    for label, r in zip(labels, rows):
        params = f"{r.num_params:,}" if r.num_params else "--"  # torchinfo prints -- for none
        macs = f"{r.mult_adds:,}" if r.mult_adds else "--"
        out.append(f"{label:<{width}}{str(list(r.output_shape)):<25}{params:>15}{macs:>15}")
    unit, value = _units(s.total_mult_adds)
    mb = 1e6
    out += [line, f"Total params: {s.total_params:,}", f"Trainable params: {s.trainable_params:,}",
            f"Non-trainable params: {s.non_trainable_params:,}", f"Total mult-adds ({unit}): {value:.2f}", line,
            f"Input size (MB): {s.input_bytes / mb:.2f}",
            f"Forward/backward pass size (MB): {s.forward_backward_bytes / mb:.2f}",
            f"Params size (MB): {s.params_bytes / mb:.2f}",
            f"Estimated Total Size (MB): {(s.input_bytes + s.forward_backward_bytes + s.params_bytes) / mb:.2f}",
            line]
    return "\n".join(out)


def _next_at_or_above(rows, i, depth):
    """The index of the first row after ``i`` at ``depth`` or shallower (the end of i's parent)."""
    for j in range(i + 1, len(rows)):
        if rows[j].depth <= depth:
            return j
    return len(rows)
