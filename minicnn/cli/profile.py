"""Profile a model's training (or inference) step layer by layer with ``minicnn.profiler``.

    minicnn-profile --model lenet5                              # a model of minicnn.models, by name
    minicnn-profile --model path/to/net.py:build --input-shape 3,32,32
    minicnn-profile --model lenet5 --batch-size 256 --steps 30 --threads 2 --algorithms --torch --out prof/

(``minicnn-profile`` is installed by ``pip install``; ``python scripts/profile.py`` in a clone is the same.)

A step (``--mode train``, the default): ``zero_grad``, forward, loss (cross-entropy against random labels
when the output is ``(N, K)``; otherwise a fixed random output gradient), backward, SGD with momentum.
``--mode eval``: the forward alone, in eval mode under ``minicnn.no_grad()``. The first ``--warmup``
steps (and any step during which Numba compiled) are recorded but left out of the statistics; compile
time is reported on its own line.

Printed: the profiler's table (per module and per module type: self and total ms per step, share of
the step, GFLOP/s and % of this machine's measured FP32 peak for convolutions and linear layers, GB/s
for the others). ``--algorithms``: every convolution timed alone (forward + backward, median of
``--steps`` calls) under each algorithm of ``minicnn.functional.CONV_ALGORITHMS``, with the one "auto"
picks and the fastest. ``--torch``: the PyTorch twin of the model (same layers, same weights) trained
the same way, layer by layer side by side (PyTorch's backward per layer: from the gradient reaching the
layer to it reaching the next one, the way autograd runs a chain). ``--out DIR``: ``table.md``,
``profile.json`` (everything printed, as data), ``trace.json`` (Chrome trace events: open it in
https://ui.perfetto.dev or chrome://tracing) and ``profile.png`` (when matplotlib is installed).
Bad input: a one-line message on stderr and exit status 2.
"""
import argparse
import importlib.util
import os
import statistics
import sys
import time

import numpy as np

PROG = "minicnn-profile"
LR, MOMENTUM = 0.01, 0.9


class UsageError(Exception):
    """A bad flag value: reported in one line, exit status 2."""


# -- the model ----------------------------------------------------------------------------------------
def model_factories():
    """{name: factory} of the networks of ``minicnn.models`` (its ``MODELS`` registry)."""
    from .. import models

    return dict(models.MODELS)


def build_model(spec):
    """(model, label) for ``--model``: a name of ``minicnn.models`` (any case) or ``file.py:factory``."""
    from ..nn import Module

    if ":" in spec and spec.split(":", 1)[0].endswith(".py"):
        path, factory_name = spec.rsplit(":", 1)
        if not os.path.isfile(path):
            raise UsageError(f"--model: no such file {path!r}")
        module_spec = importlib.util.spec_from_file_location(f"_minicnn_profile_{os.getpid()}", path)
        module = importlib.util.module_from_spec(module_spec)
        sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
        try:
            module_spec.loader.exec_module(module)
        finally:
            sys.path.pop(0)
        factory = getattr(module, factory_name, None)
        if not callable(factory):
            raise UsageError(f"--model: {path} has no callable {factory_name!r}")
        label = spec
    else:
        factories = model_factories()
        factory = factories.get(spec.lower())
        if factory is None:
            raise UsageError(f"--model: unknown model {spec!r}; minicnn.models has {', '.join(sorted(factories))} "
                             f"(or give path/to/file.py:factory)")
        label = None
    model = factory()
    label = label or type(model).__name__
    if not isinstance(model, Module):
        raise UsageError(f"--model: {spec} returned a {type(model).__name__}, not a minicnn Module")
    return model, label


def default_input_shape(model):
    """The per-sample input shape a model declares (``input_shape``), or LeNet-5's; else None."""
    shape = getattr(model, "input_shape", None)
    if shape is not None:
        return tuple(shape)
    from ..models import LeNet5

    if isinstance(model, LeNet5):
        return (model.in_channels, 28, 28)
    return None


def parse_shape(text):
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise UsageError(f"--input-shape must be integers separated by commas (e.g. 3,32,32), got {text!r}") from None
    if not shape or min(shape) < 1:
        raise UsageError(f"--input-shape must be integers >= 1 (e.g. 3,32,32), got {text!r}")
    return shape


# -- the steps --------------------------------------------------------------------------------------
class Step:
    """One training or evaluation step of ``model`` on a fixed batch (the same data every step). What the
    loss is is decided on the first call, from the output: cross-entropy against random labels for an
    ``(N, K)`` output, else a fixed random output gradient (so every kernel first runs inside the profile)."""

    def __init__(self, model, x, mode, seed=0):
        from .. import nn, optim

        self.model, self.x, self.mode = model, x, mode
        self.rng = np.random.default_rng(seed)
        self.criterion = nn.CrossEntropyLoss()
        self.labels = self.dy = None
        model.train(mode == "train")
        if mode == "train":
            self.optimizer = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def __call__(self):
        from .. import no_grad
        from ..profiler import record_function

        model = self.model
        if self.mode == "eval":
            with no_grad():
                model(self.x)
            return
        with record_function("zero_grad"):
            model.zero_grad()
        out = model(self.x)
        if self.labels is None and self.dy is None:
            if out.ndim == 2:
                self.labels = self.rng.integers(0, out.shape[1], out.shape[0])
            else:
                self.dy = self.rng.standard_normal(out.shape).astype(out.dtype)
        if self.labels is not None:
            self.criterion(out, self.labels)
            dy = self.criterion.backward()
        else:
            dy = self.dy
        model.backward(dy)
        with record_function("optimizer.step"):
            self.optimizer.step()


def run_profile(model, x, mode, steps, warmup):
    """(profile, step) of ``warmup + steps`` steps; the loss module is profiled with the model."""
    from .. import profiler

    step = Step(model, x, mode)
    with profiler.profile(model, step.criterion, warmup=warmup) as prof:
        for _ in range(warmup + steps):
            step()
            prof.step()
    return prof, step


# -- convolution algorithms -----------------------------------------------------------------------------
def time_algorithms(model, root, stats, repeats):
    """Each convolution of ``model`` (at the input shape the profile saw) under every algorithm: forward
    + backward median ms, or why it cannot run; plus what "auto" picks and the fastest."""
    from .. import functional as F
    from ..nn import Conv2d

    shapes = {r["name"]: r["inputs"][0] for r in stats["modules"]
              if r["type"] == "Conv2d" and r["phase"] == "forward" and r["inputs"] != "varies"}
    rows = []
    rng = np.random.default_rng(0)
    for name, layer in model.named_modules():
        path = f"{root}.{name}" if name else root
        if not isinstance(layer, Conv2d) or path not in shapes:
            continue
        x = rng.standard_normal(shapes[path]).astype(layer.weight.data.dtype)
        w = layer.weight.data
        b = None if layer.bias is None else layer.bias.data
        geometry = (layer.stride, layer.padding, layer.dilation)
        extra = {"groups": layer.groups} if getattr(layer, "groups", 1) != 1 else {}
        row = {"layer": path, "input": list(x.shape), "ms": {}, "unsupported": {}}
        for algorithm in F.CONV_ALGORITHMS + ("auto",):
            try:
                y, ctx = F.conv2d_forward(x, w, b, *geometry, **extra, algorithm=algorithm)
            except ValueError as e:
                row["unsupported"][algorithm] = str(e)
                continue
            if algorithm == "auto":
                row["auto_picks"] = ctx.algorithm
                continue
            dy = np.ones_like(y)
            times = []
            for _ in range(repeats + 1):  # the first call warms (and may compile): not counted
                t0 = time.perf_counter()
                y, ctx = F.conv2d_forward(x, w, b, *geometry, **extra, algorithm=algorithm)
                F.conv2d_backward(dy, ctx, dx=layer.input_grad)
                times.append(time.perf_counter() - t0)
            row["ms"][algorithm] = statistics.median(times[1:]) * 1e3
        row["fastest"] = min(row["ms"], key=row["ms"].get) if row["ms"] else None
        rows.append(row)
    return rows


def algorithms_table(rows):
    from .. import functional as F
    from ..profiler import markdown_table

    header = ["convolution", "input"] + [f"{a} ms" for a in F.CONV_ALGORITHMS] + ["auto picks", "fastest"]
    body = [[r["layer"], "x".join(map(str, r["input"]))]
            + [f"{r['ms'][a]:.3f}" if a in r["ms"] else "n/a" for a in F.CONV_ALGORITHMS]
            + [r.get("auto_picks", "n/a"), r["fastest"] or "n/a"] for r in rows]
    notes = [f"- {r['layer']}: {a} cannot run it ({why})" for r in rows for a, why in r["unsupported"].items()]
    return "\n".join([markdown_table(header, body)] + ([""] + notes if notes else []))


# -- the PyTorch twin ----------------------------------------------------------------------------------
def torch_twin(torch, module, path="", paths=None):
    """(torch module, {torch leaf module: minicnn path}) built from ``module``'s layers, weights copied.
    Raises UsageError naming the first module that has no PyTorch counterpart here."""
    from .. import nn

    tnn = torch.nn
    paths = {} if paths is None else paths

    def copy(dst, src):
        with torch.no_grad():
            dst.copy_(torch.from_numpy(np.ascontiguousarray(src)))

    m = module
    if isinstance(m, nn.Sequential):
        children = [torch_twin(torch, child, f"{path}.{name}", paths)[0] for name, child in m.named_children()]
        return tnn.Sequential(*children), paths
    if isinstance(m, nn.Residual):
        body = torch_twin(torch, m.body, f"{path}.body", paths)[0]
        shortcut = None if m.shortcut is None else torch_twin(torch, m.shortcut, f"{path}.shortcut", paths)[0]
        return _TorchResidual(torch)(body, shortcut), paths
    if isinstance(m, nn.Conv2d):
        t = tnn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding,
                       dilation=m.dilation, groups=getattr(m, "groups", 1), bias=m.bias is not None,
                       dtype=_torch_dtype(torch, m.weight.data))
        copy(t.weight, m.weight.data)
        if m.bias is not None:
            copy(t.bias, m.bias.data)
    elif isinstance(m, nn.Linear):
        t = tnn.Linear(m.in_features, m.out_features, bias=m.bias is not None, dtype=_torch_dtype(torch, m.weight.data))
        copy(t.weight, m.weight.data)
        if m.bias is not None:
            copy(t.bias, m.bias.data)
    elif isinstance(m, nn.ReLU):
        t = tnn.ReLU()
    elif isinstance(m, nn.MaxPool2d):
        t = tnn.MaxPool2d(m.kernel_size, m.stride, m.padding, dilation=getattr(m, "dilation", 1),
                          ceil_mode=getattr(m, "ceil_mode", False))
    elif isinstance(m, nn.AvgPool2d):
        t = tnn.AvgPool2d(m.kernel_size, m.stride, m.padding, ceil_mode=getattr(m, "ceil_mode", False),
                          count_include_pad=getattr(m, "count_include_pad", True))
    elif isinstance(m, nn.BatchNorm2d):
        t = tnn.BatchNorm2d(m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine,
                            track_running_stats=m.track_running_stats, dtype=_torch_dtype(torch, np.zeros(1, m.dtype)))
        if m.affine:
            copy(t.weight, m.weight.data)
            copy(t.bias, m.bias.data)
        if m.track_running_stats:
            copy(t.running_mean, m.running_mean)
            copy(t.running_var, m.running_var)
    elif isinstance(m, nn.AdaptiveAvgPool2d):
        t = tnn.AdaptiveAvgPool2d(m.output_size)
    elif isinstance(m, nn.Flatten):
        t = tnn.Flatten(getattr(m, "start_dim", 1), getattr(m, "end_dim", -1))
    elif isinstance(m, nn.Dropout):
        t = tnn.Dropout(m.p)
    else:
        raise UsageError(f"--torch: no PyTorch twin for {path.lstrip('.') or 'the model'} ({type(m).__name__}); "
                         f"supported: Sequential (and its subclasses), Residual, Conv2d, Linear, ReLU, MaxPool2d, "
                         f"AvgPool2d, AdaptiveAvgPool2d, BatchNorm2d, Flatten, Dropout")
    paths[t] = path
    return t, paths


def _TorchResidual(torch):
    """PyTorch's counterpart of ``nn.Residual``: ``body(x) + shortcut(x)``, the identity when None."""
    class Residual(torch.nn.Module):
        def __init__(self, body, shortcut):
            super().__init__()
            self.body, self.shortcut = body, shortcut

        def forward(self, x):
            return self.body(x) + (x if self.shortcut is None else self.shortcut(x))

    return Residual


def _torch_dtype(torch, array):
    return torch.float64 if array.dtype == np.float64 else torch.float32


def run_torch(torch, model, root, x, mode, steps, warmup, labels, dy):
    """Per-leaf forward and backward median ms of the PyTorch twin over ``steps`` steps (after
    ``warmup``), and the median step ms. Forward: the layer's call; backward: from the gradient reaching
    the layer (its backward pre-hook) to the next layer's, the last until ``backward()`` returns."""
    twin, paths = torch_twin(torch, model)
    paths = {m: root + p for m, p in paths.items()}
    events = []
    for m in paths:
        m.register_forward_pre_hook(lambda mod, args: events.append(("f0", mod, time.perf_counter())))
        m.register_forward_hook(lambda mod, args, out: events.append(("f1", mod, time.perf_counter())))
        m.register_full_backward_pre_hook(lambda mod, g: events.append(("b0", mod, time.perf_counter())))
    xt = torch.from_numpy(x)
    twin.train(mode == "train")
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(twin.parameters(), lr=LR, momentum=MOMENTUM)
    fwd = {p: [] for p in paths.values()}
    bwd = {p: [] for p in paths.values()}
    step_ms = []
    import warnings

    # A layer whose input needs no gradient (the first) gets its pre-hook when its output's gradient
    # arrives, which is all this timing uses; PyTorch warns about exactly that.
    warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
    for k in range(warmup + steps):
        events.clear()
        t0 = time.perf_counter()
        if mode == "eval":
            with torch.no_grad():
                twin(xt)
            t_end = time.perf_counter()
        else:
            optimizer.zero_grad()
            out = twin(xt)
            if labels is not None:
                criterion(out, torch.from_numpy(labels)).backward()
            else:
                out.backward(torch.from_numpy(dy))
            t_end = time.perf_counter()
            optimizer.step()
        t_step = time.perf_counter()
        if k < warmup:
            continue
        step_ms.append((t_step - t0) * 1e3)
        opened = {}
        backward = []
        for kind, mod, t in events:
            if kind == "f0":
                opened[mod] = t
            elif kind == "f1":
                fwd[paths[mod]].append((t - opened.pop(mod)) * 1e3)
            else:
                backward.append((mod, t))
        for (mod, t), nxt in zip(backward, [t for _, t in backward[1:]] + [t_end]):
            bwd[paths[mod]].append((nxt - t) * 1e3)
    med = lambda v: statistics.median(v) if v else None  # noqa: E731
    return {"forward_ms": {p: med(v) for p, v in fwd.items()}, "backward_ms": {p: med(v) for p, v in bwd.items()},
            "step_ms": statistics.median(step_ms), "threads": torch.get_num_threads()}


def side_by_side(stats, theirs):
    from ..profiler import markdown_table

    mine = {(r["name"], r["phase"]): r["self_ms"] for r in stats["modules"]}
    rows = []
    for path, t_fwd in theirs["forward_ms"].items():
        row = [path]
        for phase, t in (("forward", t_fwd), ("backward", theirs["backward_ms"].get(path))):
            m = mine.get((path, phase))
            row += [_ms(m), _ms(t), f"{t / m:.2f}x" if m and t else ""]
        rows.append(row)
    mine_step = stats["steps"]["median_ms"]
    rows.append(["whole step (median)", _ms(mine_step), _ms(theirs["step_ms"]),
                 f"{theirs['step_ms'] / mine_step:.2f}x" if mine_step else "", "", "", ""])
    return markdown_table(["layer", "minicnn fwd ms", "PyTorch fwd ms", "PyTorch / minicnn",
                           "minicnn bwd ms", "PyTorch bwd ms", "PyTorch / minicnn"], rows)


def _ms(v):
    return "" if v is None else f"{v:.3f}"


# -- main ------------------------------------------------------------------------------------------------
def parse_args(argv):
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                 epilog=__doc__[__doc__.index("A step"):],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="lenet5",
                    help="a model of minicnn.models by name (default lenet5), or path/to/file.py:factory (a function "
                         "returning a minicnn Module)")
    ap.add_argument("--input-shape", metavar="C,H,W", help="the shape of one sample (default: the model's)")
    ap.add_argument("--batch-size", type=int, default=64, help="default 64")
    ap.add_argument("--steps", type=int, default=20, help="profiled steps after the warm-up (default 20)")
    ap.add_argument("--warmup", type=int, default=2, help="steps first, left out of the statistics (default 2)")
    ap.add_argument("--threads", type=int, help="threads for minicnn (and PyTorch); default: Numba's default")
    ap.add_argument("--mode", choices=("train", "eval"), default="train",
                    help="training step (default) or forward only")
    ap.add_argument("--sort-by", default="order", help="table order: order (default), self, total, calls, gflops, name")
    ap.add_argument("--algorithms", action="store_true", help="time every convolution under each algorithm")
    ap.add_argument("--torch", action="store_true", help="PyTorch twin of the model, layer by layer side by side")
    ap.add_argument("--out", metavar="DIR", help="write table.md, profile.json, trace.json and profile.png into DIR")
    ap.add_argument("--seed", type=int, default=0, help="seed of the input batch (default 0)")
    return ap, ap.parse_args(argv)


def main(argv=None):
    ap, args = parse_args(argv)
    try:
        return _run(args)
    except UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2


def _run(args):
    import minicnn
    from ..profiler import profile

    for flag, value, low in (("--batch-size", args.batch_size, 1), ("--steps", args.steps, 1),
                             ("--warmup", args.warmup, 0)):
        if value < low:
            raise UsageError(f"{flag} must be >= {low}, got {value}")
    if args.sort_by not in profile.SORT_KEYS:
        raise UsageError(f"--sort-by must be one of {', '.join(profile.SORT_KEYS)}, got {args.sort_by!r}")
    torch = None
    if args.torch:
        try:
            import torch
        except ImportError:
            raise UsageError("--torch needs PyTorch (pip install torch)") from None
    if args.threads is not None:
        try:
            minicnn.set_num_threads(args.threads)
        except ValueError as e:
            raise UsageError(f"--threads: {e}") from None
        if torch is not None:
            torch.set_num_threads(args.threads)
    minicnn.manual_seed(args.seed)
    model, label = build_model(args.model)
    shape = parse_shape(args.input_shape) if args.input_shape else default_input_shape(model)
    if shape is None:
        raise UsageError(f"--input-shape is needed: {label} does not declare input_shape")
    dtype = next((p.data.dtype for p in model.parameters()), np.dtype(np.float32))
    x = np.random.default_rng(args.seed).random((args.batch_size,) + shape).astype(dtype)
    if torch is not None:  # fail before profiling if there is no twin; it starts from these weights
        torch_twin(torch, model)
        start_state = model.state_dict()
    print(f"{PROG}: {label}, input {'x'.join(map(str, x.shape))}, {args.mode}, {args.warmup} warm-up + {args.steps} "
          f"steps, {minicnn.get_num_threads()} thread(s)", file=sys.stderr, flush=True)
    try:
        prof, step = run_profile(model, x, args.mode, args.steps, args.warmup)
    except (ValueError, TypeError) as e:
        raise UsageError(f"the model does not run on input {x.shape}: {e}") from None
    stats = prof.stats()
    table = prof.table(sort_by=args.sort_by, stats=stats)
    report = {"model": label, "input_shape": list(x.shape), "mode": args.mode, "steps": args.steps,
              "warmup": args.warmup, "stats": stats}
    sections = [f"## minicnn profile: {label}, input {'x'.join(map(str, x.shape))}, {args.mode}\n", table]
    if args.algorithms:
        report["algorithms"] = time_algorithms(model, type(model).__name__, stats, args.steps)
        sections += ["\n### Convolution algorithms (each layer alone, forward + backward, median ms)\n",
                     algorithms_table(report["algorithms"])]
    if torch is not None:
        model.load_state_dict(start_state)
        report["torch"] = run_torch(torch, model, type(model).__name__, x, args.mode, args.steps, args.warmup,
                                    step.labels, step.dy)
        sections += [f"\n### Side by side with PyTorch {torch.__version__} ({report['torch']['threads']} thread(s); "
                     f"median ms per step; minicnn: self time)\n", side_by_side(stats, report["torch"])]
    text = "\n".join(sections)
    print(text)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        from .._io import atomic_write, write_json

        atomic_write(os.path.join(args.out, "table.md"), lambda f: f.write((text + "\n").encode("utf-8")))
        write_json(os.path.join(args.out, "profile.json"), report)
        prof.export_chrome_trace(os.path.join(args.out, "trace.json"))
        written = ["table.md", "profile.json", "trace.json"]
        try:
            prof.plot(os.path.join(args.out, "profile.png"))
            written.append("profile.png")
        except ImportError:
            print(f"{PROG}: matplotlib is not installed: no profile.png", file=sys.stderr)
        print(f"\n{PROG}: wrote {', '.join(written)} into {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
