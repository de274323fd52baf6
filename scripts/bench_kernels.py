"""Kernel benchmark: minicnn's convolution and pooling layers (every convolution algorithm) against the
plain-NumPy im2col baseline and PyTorch (CPU, float32), in one run, interleaved.

    python scripts/bench_kernels.py [--rounds 25] [--threads 2] [--pause 0.1] [--quick] [--cold-start]
                                    [--case SPEC ...] [--json PATH]

Cases: by default LeNet-5's convolutions, two larger ones and 2x2 pooling on three shapes; or your own
with ``--case`` (repeatable), in this syntax (each size an int, or ``HxW`` for height and width; quote
it in a shell, where ``>`` redirects):

    conv:N,C,H,W->F[,k=3][,s=1][,p=0][,d=1][,g=1][,nobias][,nodx]
        F output channels, kernel k, stride s, zero padding p, dilation d, groups g;
        nobias: no bias; nodx: no input gradient (as a network's first layer)
    maxpool:N,C,H,W[,k=2][,s=k][,p=0][,d=1][,ceil]
    avgpool:N,C,H,W[,k=2][,s=k][,p=0][,ceil][,nopad]
        ceil: ceil_mode; nopad: count_include_pad=False

e.g. ``--case 'conv:32,64,56,56->64,k=3,p=1' --case 'conv:8,32,28,28->32,k=3,p=1,g=32' --case
maxpool:32,64,112,112,k=3,s=2,p=1``. A contender that cannot run a case (an algorithm that does not
support it, an option this minicnn or the NumPy baseline lacks) is left out of that case, and the
reason is printed.

Convolutions run under ``minicnn`` (``algorithm="auto"``, the layer's default) and under each of
``minicnn.functional.CONV_ALGORITHMS`` on its own ("im2col", "direct", "tiled"); speed-ups compare
``minicnn`` (auto) with the others.

For each case it times forward, backward and forward+backward of the LAYERS (what users run):
``y = layer(x)`` then ``dx = layer.backward(dy)`` for minicnn and the baseline, ``y = module(x)`` then
``y.backward(dy)`` (autograd) for PyTorch. Every contender gets the same float32 input ``x``, the same
output gradient ``dy`` and the same weights. Within each round the contenders run one after the other,
the first one rotating from round to round, so machine noise hits all alike. Reported: median
milliseconds with the inter-quartile range (IQR), GFLOP/s, and the speed-up of minicnn
(= other's median time / minicnn's median time; > 1 means minicnn is faster).

FLOP counts (defined here, used for every contender):
- convolution, one pass = 2 * N * F * OH * OW * (C / groups) * kh * kw (multiply + add; bias ignored).
  Forward is one pass; backward is two (weight and input gradients) or one without input gradient.
- pooling forward = N * C * OH * OW * kh * kw (one comparison or add per window element); backward =
  N * C * OH * OW for max pooling (one add per output) and N * C * OH * OW * kh * kw for average pooling.

Before each measurement the script sleeps ``--pause`` seconds (default 0.1) so that the worker threads of
the contender measured just before (OpenBLAS and OpenMP threads spin for a while after each parallel
region) are idle and do not steal the cores; then it runs the contender untimed for 20 ms (waking its
own threads and cores) and times the next forward and backward.

Start-up, only with ``--cold-start``: a sub-process with a fresh, empty ``NUMBA_CACHE_DIR`` imports
minicnn and calls every kernel once (the cold-start JIT compile time); a second sub-process with the
cache it left measures the time from its start (just before the parent launches it) to its first
computed layer output. ``--quick`` (a smoke test: 4 of the default cases, one of each kind, or your
``--case`` ones, at batch 2; 2 rounds, no pause, a 2 ms warm-up) takes about 5 s on 2 cores once the
kernels are in Numba's cache, PyTorch's import about a third of it. Nothing is written unless ``--json
PATH`` is given. The BLAS libraries are told apart by path and
each contender's thread setting is made once, in its own library (see ``bench_common.ThreadSettings``).
"""
import argparse
import re
import sys
import time
from typing import NamedTuple

import numpy as np

import bench_common as bc
import numpy_baseline as nb

# (name, --case spec, target): the default cases.
DEFAULT_CASES = [
    ("LeNet conv1", "conv:64,1,28,28->6,k=5,p=2", "lenet"),
    ("LeNet conv1, no input grad", "conv:64,1,28,28->6,k=5,p=2,nodx", "lenet"),
    ("LeNet conv2", "conv:64,6,14,14->16,k=5", "lenet"),
    ("conv 64->64 k3 p1", "conv:32,64,32,32->64,k=3,p=1", "large"),
    ("conv 32->64 k3 s2 p1", "conv:32,32,32,32->64,k=3,s=2,p=1", "large"),
] + [(f"{kind} pool 2x2 on {'x'.join(map(str, shape))}", f"{kind}pool:{','.join(map(str, shape))},k=2", "pool")
     for shape in [(64, 6, 28, 28), (64, 16, 10, 10), (32, 64, 32, 32)] for kind in ("max", "avg")]
# --quick: one case of each kind of the default set (a LeNet-like padded 5x5 convolution, a larger strided
# 3x3 one on which the "direct" algorithm is left out, max and average pooling), at batch 2.
QUICK_CASES = ["LeNet conv1", "conv 32->64 k3 s2 p1", "max pool 2x2 on 64x6x28x28", "avg pool 2x2 on 64x6x28x28"]
BASELINES = ["numpy", "pytorch"]
WARM_SECONDS = 0.02  # how long a contender runs untimed before each timed call (see time_case)
QUICK_WARM_SECONDS = 0.002  # --quick: numbers are meaningless anyway, the run must end in ~10 s
LABELS = {"minicnn": "minicnn (auto)", "numpy": "NumPy im2col", "pytorch": "PyTorch"}


# -- cases -------------------------------------------------------------------------------------------
class Case(NamedTuple):
    """One convolution or pooling configuration; pairs are (height, width)."""
    kind: str  # "conv", "maxpool" or "avgpool"
    shape: tuple  # (N, C, H, W)
    out_channels: int = 0  # convolutions only
    kernel: tuple = (2, 2)
    stride: tuple = (2, 2)
    padding: tuple = (0, 0)
    dilation: tuple = (1, 1)
    groups: int = 1
    bias: bool = True
    input_grad: bool = True
    ceil_mode: bool = False
    count_include_pad: bool = True

    def output_hw(self):
        return tuple(out_size(self.shape[2 + i], self.kernel[i], self.stride[i], self.padding[i],
                              self.dilation[i], self.ceil_mode) for i in range(2))

    def output_shape(self):
        F = self.out_channels if self.kind == "conv" else self.shape[1]
        return (self.shape[0], F) + self.output_hw()


def out_size(size, k, s, p, d=1, ceil=False):
    """PyTorch's output size; with ``ceil`` a last partial window counts if it starts inside the input
    or the left padding (PyTorch's ceil_mode rule)."""
    if not ceil:
        return nb.out_size(size, k, s, p, d)
    o = -(-(size + 2 * p - d * (k - 1) - 1) // s) + 1
    return o - 1 if (o - 1) * s >= size + p else o


_CASE_FLAGS = {"conv": ("nobias", "nodx"), "maxpool": ("ceil",), "avgpool": ("ceil", "nopad")}
_FLAG_FIELDS = {"nobias": ("bias", False), "nodx": ("input_grad", False), "ceil": ("ceil_mode", True),
                "nopad": ("count_include_pad", False)}
_CASE_KEYS = {"conv": ("k", "s", "p", "d", "g"), "maxpool": ("k", "s", "p", "d"), "avgpool": ("k", "s", "p")}


def parse_case(text):
    """A ``Case`` from the ``--case`` syntax (see the module docstring); a ``ValueError`` that quotes the
    case and says what is wrong otherwise."""
    def fail(why):
        raise ValueError(f"--case {text!r}: {why}")

    kind, sep, rest = text.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in _CASE_KEYS:
        fail("must start with conv:, maxpool: or avgpool:")
    fields = {}
    if kind == "conv":
        dims, arrow, tail = rest.partition("->")
        if not arrow:
            fail("a convolution needs '->F' after N,C,H,W (F: output channels), e.g. 'conv:8,3,32,32->16,k=3' "
                 "(in quotes: in a shell '>' redirects)")
        F_text, *options = tail.split(",")
        if not re.fullmatch(r"\d+", F_text.strip()) or int(F_text) < 1:
            fail(f"F (the output channels after '->') must be an integer >= 1, got {F_text!r}")
        fields["out_channels"] = int(F_text)
        dims = dims.split(",")
    else:
        items = rest.split(",")
        dims, options = items[:4], items[4:]
    if len(dims) != 4 or not all(re.fullmatch(r"\d+", d.strip()) for d in dims):
        fail(f"the input shape must be N,C,H,W (4 integers), got {','.join(dims)!r}")
    shape = tuple(int(d) for d in dims)
    if min(shape) < 1:
        fail(f"every size of N,C,H,W must be >= 1, got {shape}")
    sizes = {}
    for item in (o.strip() for o in options):
        key, eq, value = item.partition("=")
        if not item:
            fail("an empty option (two commas in a row?)")
        if not eq:
            if item not in _CASE_FLAGS[kind]:
                fail(f"unknown flag {item!r} for {kind} (flags: {', '.join(_CASE_FLAGS[kind])})")
            fields[_FLAG_FIELDS[item][0]] = _FLAG_FIELDS[item][1]
            continue
        if key not in _CASE_KEYS[kind]:
            fail(f"unknown option {key + '='!r} for {kind} (options: {', '.join(k + '=' for k in _CASE_KEYS[kind])})")
        if key in sizes:
            fail(f"option {key}= is given twice")
        m = re.fullmatch(r"(\d+)(?:x(\d+))?", value.strip())
        if not m or (key == "g" and m.group(2)):
            fail(f"{key}= must be an integer{'' if key == 'g' else ' or HxW (e.g. 3 or 3x5)'}, got {value!r}")
        sizes[key] = int(m.group(1)) if key == "g" else (int(m.group(1)), int(m.group(2) or m.group(1)))
    kernel = sizes.get("k", (3, 3) if kind == "conv" else (2, 2))
    case = Case(kind, shape, kernel=kernel, stride=sizes.get("s", (1, 1) if kind == "conv" else kernel),
                padding=sizes.get("p", (0, 0)), dilation=sizes.get("d", (1, 1)), groups=sizes.get("g", 1), **fields)
    for key, v in (("k", case.kernel), ("s", case.stride), ("d", case.dilation), ("g", (case.groups,))):
        if min(v) < 1:
            fail(f"{key}= must be >= 1, got {v if len(v) > 1 else v[0]}")
    if kind != "conv" and (case.padding[0] > kernel[0] // 2 or case.padding[1] > kernel[1] // 2):
        fail(f"pooling padding must be at most half the kernel (p <= k // 2), got p={case.padding}, k={kernel}")
    if kind == "conv" and (shape[1] % case.groups or case.out_channels % case.groups):
        fail(f"groups g={case.groups} must divide both C={shape[1]} and F={case.out_channels}")
    if min(case.output_hw()) < 1:
        fail(f"the output would be empty: {case.output_hw()} from H, W = {shape[2:]} with k={kernel}, "
             f"s={case.stride}, p={case.padding}, d={case.dilation}")
    return case


def case_flops(case):
    """FLOPs of each pass: convolution one pass = 2 * N * F * OH * OW * (C / groups) * kh * kw, backward
    two passes (one without the input gradient); pooling as in the module docstring."""
    N, C = case.shape[:2]
    (OH, OW), (kh, kw) = case.output_hw(), case.kernel
    if case.kind == "conv":
        fwd = 2 * N * case.out_channels * OH * OW * (C // case.groups) * kh * kw
        bwd = fwd * (2 if case.input_grad else 1)
    else:
        fwd = N * C * OH * OW * kh * kw
        bwd = N * C * OH * OW * (1 if case.kind == "maxpool" else kh * kw)
    return {"fwd": fwd, "bwd": bwd, "fwd+bwd": fwd + bwd}


# -- contenders: each is (reset, forward, backward); reset runs untimed before forward ---------------
def _options(case, names):
    """Keyword arguments for the options of ``case`` that differ from the defaults (so that a layer which
    lacks an option fails only when the case uses it)."""
    defaults = Case(case.kind, case.shape)
    values = {"dilation": case.dilation, "groups": case.groups, "ceil_mode": case.ceil_mode,
              "count_include_pad": case.count_include_pad}
    return {k: values[k] for k in names if values[k] != getattr(defaults, k)}


def conv_algorithms(mc):
    # (getattr twice: the harness also times minicnn versions from before minicnn.functional, for a
    # same-harness before/after comparison)
    return list(getattr(getattr(mc, "functional", None), "CONV_ALGORITHMS", ()))


def _minicnn_conv(mc, case, algorithm):
    C, F = case.shape[1], case.out_channels
    kwargs = _options(case, ("dilation", "groups"))
    if algorithm is not None:
        kwargs["algorithm"] = algorithm
    return mc.nn.Conv2d(C, F, case.kernel, stride=case.stride, padding=case.padding, bias=case.bias,
                        input_grad=case.input_grad, rng=0, **kwargs)


def _layer_contender(layer, x, dy):
    return (lambda: None, lambda: layer(x), lambda: layer.backward(dy))


def conv_contenders(mc, torch, case, x, dy):
    """{name: (reset, forward, backward)} and {name: why it cannot run this case}."""
    out, skipped = {}, {}
    try:
        ref = _minicnn_conv(mc, case, None)
        out["minicnn"] = _layer_contender(ref, x, dy)
    except (TypeError, ValueError) as e:
        skipped["minicnn"] = f"{type(e).__name__}: {e}"
        ref = None
    weight = ref.weight.data if ref is not None else np.random.default_rng(0).standard_normal(
        (case.out_channels, case.shape[1] // case.groups) + case.kernel).astype(np.float32) * 0.1
    bias = (ref.bias.data if ref is not None and ref.bias is not None else np.zeros(case.out_channels, np.float32))
    for algorithm in conv_algorithms(mc) if ref is not None else ():
        try:
            layer = _minicnn_conv(mc, case, algorithm)
            layer.load_state_dict(ref.state_dict())
            layer(x[:1])  # an algorithm that cannot run this configuration says so here
            out[algorithm] = _layer_contender(layer, x, dy)
        except (TypeError, ValueError) as e:
            skipped[algorithm] = f"{type(e).__name__}: {e}"
    if case.groups != 1:
        skipped["numpy"] = "the NumPy baseline has no groups"
    else:
        base = nb.Conv2d(case.shape[1], case.out_channels, case.kernel, case.stride, case.padding, case.dilation,
                         input_grad=case.input_grad, rng=0)
        base.weight[...] = weight
        base.bias[...] = bias
        out["numpy"] = _layer_contender(base, x, dy)
    if torch is not None:
        module = torch.nn.Conv2d(case.shape[1], case.out_channels, case.kernel, stride=case.stride,
                                 padding=case.padding, dilation=case.dilation, groups=case.groups, bias=case.bias)
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(weight))
            if case.bias:
                module.bias.copy_(torch.from_numpy(bias))
        out["pytorch"] = _torch_contender(torch, module, x, dy, case.input_grad)
    return out, skipped


def pool_contenders(mc, torch, case, x, dy):
    out, skipped = {}, {}
    is_max = case.kind == "maxpool"
    names = ("dilation", "ceil_mode") if is_max else ("ceil_mode", "count_include_pad")
    kwargs = _options(case, names)
    try:
        layer = (mc.nn.MaxPool2d if is_max else mc.nn.AvgPool2d)(case.kernel, case.stride, case.padding, **kwargs)
        out["minicnn"] = _layer_contender(layer, x, dy)
    except (TypeError, ValueError) as e:
        skipped["minicnn"] = f"{type(e).__name__}: {e}"
    if kwargs:
        skipped["numpy"] = f"the NumPy baseline has no {', '.join(kwargs)}"
    else:
        base = (nb.MaxPool2d if is_max else nb.AvgPool2d)(case.kernel, case.stride, case.padding)
        out["numpy"] = _layer_contender(base, x, dy)
    if torch is not None:
        module = (torch.nn.MaxPool2d(case.kernel, case.stride, case.padding, **kwargs) if is_max
                  else torch.nn.AvgPool2d(case.kernel, case.stride, case.padding, **kwargs))
        out["pytorch"] = _torch_contender(torch, module, x, dy, True)
    return out, skipped


def _torch_contender(torch, module, x, dy, input_grad):
    xt = torch.from_numpy(x).requires_grad_(input_grad)
    dyt = torch.from_numpy(dy)
    state = {}

    def reset():
        xt.grad = None  # a fresh input gradient each time, as the layers return

    def forward():
        state["y"] = module(xt)
        return state["y"]

    def backward():
        state["y"].backward(dyt)
        return xt.grad

    return reset, forward, backward


def time_case(contenders, rounds, warmup, pause, warm_seconds=WARM_SECONDS):
    names = list(contenders)
    outputs = {}

    def measure_once(name):
        reset, forward, backward = contenders[name]
        # Untimed calls first, for WARM_SECONDS: after the pause the cores idle and the worker threads
        # sleep, and waking them is not what a training loop that calls the layer again and again
        # pays. A fixed time rather than a fixed number of calls, so that a fast contender is not timed
        # while still cold: on LeNet's conv2, after 3 untimed calls minicnn's next call took 1.35x its
        # steady time and PyTorch's (2.3x longer calls) 1.03x; after 20 ms both were steady (measured).
        end = time.perf_counter() + warm_seconds
        while True:
            reset()
            forward()
            backward()
            if time.perf_counter() >= end:
                break
        reset()
        t0 = time.perf_counter()
        y = forward()
        t1 = time.perf_counter()
        dx = backward()
        t2 = time.perf_counter()
        outputs[name] = (y, dx)
        return {"fwd": t1 - t0, "bwd": t2 - t1, "fwd+bwd": t2 - t0}

    samples = bc.interleaved(names, rounds, warmup, measure_once, pause)
    return samples, _agreement(outputs)


def _agreement(outputs):
    """Largest relative difference of each contender's y and dx from the NumPy baseline's (PyTorch's when
    the baseline cannot run the case): a check that all contenders compute the same thing."""
    def arr(a):
        return None if a is None else (a.detach().numpy() if hasattr(a, "detach") else np.asarray(a))

    ref = "numpy" if "numpy" in outputs else "pytorch" if "pytorch" in outputs else next(iter(outputs))
    ref_y, ref_dx = (arr(a) for a in outputs[ref])
    diffs = {}
    for name, (y, dx) in outputs.items():
        y, dx = arr(y), arr(dx)
        d = float(np.abs(y - ref_y).max() / (np.abs(ref_y).max() + 1e-30))
        if dx is not None and ref_dx is not None:
            d = max(d, float(np.abs(dx - ref_dx).max() / (np.abs(ref_dx).max() + 1e-30)))
        diffs[name] = d
    return diffs


def run_kernels(mc, torch, cases, rounds, warmup, quick, pause):
    """Time every (name, Case, target) in ``cases``; returns one result entry per case."""
    rng = np.random.default_rng(0)
    results = []
    for name, case, target in cases:
        if quick:
            case = case._replace(shape=(min(2, case.shape[0]),) + tuple(case.shape[1:]))
        x = rng.standard_normal(case.shape, dtype=np.float32)
        dy = rng.standard_normal(case.output_shape(), dtype=np.float32)
        build = conv_contenders if case.kind == "conv" else pool_contenders
        contenders, skipped = build(mc, torch, case, x, dy)
        flops = case_flops(case)
        samples, diffs = time_case(contenders, rounds, warmup, pause, QUICK_WARM_SECONDS if quick else WARM_SECONDS)
        entry = {"case": name, "spec": case._asdict(), "shape": list(case.shape), "target": target, "flops": flops,
                 "max_rel_diff": diffs, "skipped": skipped, "contenders": {}}
        for cname, by_pass in samples.items():
            entry["contenders"][cname] = {}
            for pss, secs in by_pass.items():
                st = bc.summary(secs)
                st["gflops"] = flops[pss] / (st["median_ms"] * 1e-3) / 1e9
                entry["contenders"][cname][pss] = st
        mine = entry["contenders"].get("minicnn")
        for other in BASELINES:
            theirs = entry["contenders"].get(other)
            entry[f"speedup_vs_{other}"] = {
                pss: (theirs[pss]["median_ms"] / mine[pss]["median_ms"] if mine and theirs else None)
                for pss in ("fwd", "bwd", "fwd+bwd")}
        algos = {a: entry["contenders"][a]["fwd+bwd"]["median_ms"] for a in conv_algorithms(mc)
                 if a in entry["contenders"]}
        entry["fastest_algorithm"] = min(algos, key=algos.get) if algos else None
        results.append(entry)
        print(f"  {name}: done", file=sys.stderr, flush=True)
    return results


# -- start-up sub-processes ------------------------------------------------------------------------
def child_startup(threads):
    """Runs in a sub-process: import minicnn and call every kernel once (float32), timing each step.
    Prints one JSON line; ``first_output_epoch`` is the wall-clock time of the first layer output."""
    t0 = time.perf_counter()
    import minicnn

    steps = {"import minicnn": time.perf_counter() - t0}
    minicnn.set_num_threads(threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 1, 28, 28), dtype=np.float32)
    first_output_epoch = None

    def step(name, fn):
        nonlocal first_output_epoch
        t = time.perf_counter()
        out = fn()
        steps[name] = time.perf_counter() - t
        if first_output_epoch is None:
            first_output_epoch = time.time()
        return out

    conv = minicnn.nn.Conv2d(1, 6, 5, padding=2)
    y = step("Conv2d forward", lambda: conv(x))
    step("Conv2d backward", lambda: conv.backward(y))
    conv_no_dx = minicnn.nn.Conv2d(1, 6, 5, padding=2, input_grad=False)
    y = conv_no_dx(x)
    step("Conv2d backward, no input grad", lambda: conv_no_dx.backward(y))
    for cls in (minicnn.nn.MaxPool2d, minicnn.nn.AvgPool2d):
        pool = cls(2)
        y = step(f"{cls.__name__} forward", lambda: pool(x))
        step(f"{cls.__name__} backward", lambda: pool.backward(y))
    # The functional calls the layers above do not make.
    F = minicnn.functional
    cols = step("functional.im2col", lambda: F.im2col(x, 3, padding=1))
    step("functional.col2im", lambda: F.col2im(cols, x.shape, 3, padding=1))
    w, b = conv.weight.data, conv.bias.data
    for algorithm in ("im2col", "tiled"):  # the layer above ran "direct"
        y, ctx = step(f"functional.conv2d_forward ({algorithm})",
                      lambda: F.conv2d_forward(x, w, b, padding=2, algorithm=algorithm))
        step(f"functional.conv2d_backward ({algorithm})", lambda: F.conv2d_backward(y, ctx))
    step("functional.max_pool2d (no positions)", lambda: F.max_pool2d(x, 2))
    steps["total (import + every first call)"] = time.perf_counter() - t0
    return {"steps": steps, "first_output_epoch": first_output_epoch}


# -- report ----------------------------------------------------------------------------------------
def label(name):
    return LABELS.get(name, f"minicnn {name}")


def print_report(info, results, startup, names, notes):
    print("\n## Kernel benchmark\n")
    bc.print_versions(info)
    for note in notes:
        print(f"- {note}")
    print("- Each cell: median ms [IQR] over the timed rounds, then GFLOP/s from the median; speed-up = "
          "other's median / minicnn (auto)'s median (> 1: minicnn faster); n/a: cannot run this case.\n")
    header = ["case", "pass"] + [f"{label(n)} ms [IQR] GFLOP/s" for n in names]
    header += [f"speed-up vs {LABELS[o]}" for o in BASELINES if o in names]
    rows = []
    for e in results:
        for pss in ("fwd", "bwd", "fwd+bwd"):
            row = [e["case"] if pss == "fwd" else "", pss]
            for n in names:
                st = e["contenders"].get(n, {}).get(pss)
                row.append("n/a" if st is None else
                           f"{st['median_ms']:.3f} [{st['iqr_ms']:.3f}] {st['gflops']:.1f}")
            for other in BASELINES:
                if other in names:
                    sp = e[f"speedup_vs_{other}"][pss]
                    row.append("n/a" if sp is None else f"{sp:.2f}x")
            rows.append(row)
    print(bc.markdown_table(header, rows))
    conv = [e for e in results if e["fastest_algorithm"]]
    if conv:
        print("\nFastest convolution algorithm per case (forward + backward): " + "; ".join(
            f"{e['case']}: {e['fastest_algorithm']}" for e in conv))
    for e in results:
        for n, why in e["skipped"].items():
            print(f"- {e['case']}: {label(n)} left out ({why})")
    if startup:
        print("\n### Start-up (minicnn)\n")
        rows = [[step, f"{cold_s:.3f}", f"{startup['warm']['steps'].get(step, float('nan')):.3f}"]
                for step, cold_s in startup["cold"]["steps"].items()]
        rows.append(["whole process (wall)", f"{startup['cold']['process_wall_s']:.3f}",
                     f"{startup['warm']['process_wall_s']:.3f}"])
        print(bc.markdown_table(["step", "cold: empty cache, compiles (s)", "second process: cached (s)"], rows))
        print(f"\nSecond process, from its start to its first layer output: "
              f"{startup['warm']['to_first_output_s']:.3f} s")
    print()


def targets_for(results, startup):
    targets = []
    for e in results:
        sp = e["speedup_vs_pytorch"]["fwd+bwd"]
        if e["target"] == "lenet":
            targets.append(bc.check(f"{e['case']} fwd+bwd speed-up vs PyTorch", sp, ">=", 2.0, "x"))
        elif e["target"] == "large":
            ratio = None if sp is None else 1.0 / sp
            targets.append(bc.check(f"{e['case']} fwd+bwd time / PyTorch's", ratio, "<=", 1.25, "x"))
        elif e["target"] == "pool":
            targets.append(bc.check(f"{e['case']} fwd+bwd speed-up vs PyTorch", sp, ">", 1.0, "x"))
    if startup is not None:
        targets.append(bc.check("cached second process to first layer output", startup["warm"]["to_first_output_s"],
                                "<", 2.0, "s"))
    return targets


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__[__doc__.index("Cases:"):
                                 __doc__.index("Convolutions run under")],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    bc.add_common_args(ap, rounds=25, warmup=3, pause=0.1)
    ap.add_argument("--case", action="append", metavar="SPEC", default=[],
                    help="a convolution or pooling configuration to time instead of the default cases "
                         "(repeatable; syntax below)")
    args = ap.parse_args(argv)
    if args.child_startup:
        import json

        print(json.dumps(child_startup(args.threads)))
        return 0
    try:
        cases = ([(spec, parse_case(spec), "custom") for spec in args.case] if args.case else
                 [(name, parse_case(spec), target) for name, spec, target in DEFAULT_CASES
                  if not args.quick or name in QUICK_CASES])
    except ValueError as e:
        ap.error(str(e))
    if args.quick:
        args.rounds, args.warmup, args.pause = 2, 0, 0.0

    import minicnn as mc

    torch, torch_note = bc.load_torch()
    settings = bc.ThreadSettings(args.threads, mc, torch)
    info = bc.versions(args.threads, torch)
    info["thread_settings"] = settings.describe()
    notes = [n for n in (torch_note,) if n]
    if args.quick:
        notes.append(f"--quick: {'the --case cases' if args.case else f'{len(cases)} of the {len(DEFAULT_CASES)} default cases'}"
                     f" at batch 2 (the names keep the full shapes), 2 rounds; numbers are meaningless")
    bc.end_startup()

    results = run_kernels(mc, torch, cases, args.rounds, args.warmup, args.quick, args.pause)
    startup = None
    if args.cold_start:
        print("  start-up sub-processes (cold compile, then cached)...", file=sys.stderr, flush=True)
        startup = bc.measure_startup(__file__, args.threads, "first_output_epoch", "to_first_output_s")
    order = ["minicnn"] + conv_algorithms(mc) + BASELINES
    names = [n for n in order if any(n in e["contenders"] for e in results)]
    print_report(info, results, startup, names, notes)
    targets = targets_for(results, startup)
    if targets:
        print("### Targets\n")
        bc.print_targets(targets)
    if args.json:
        bc.write_json(args.json, {"versions": info, "notes": notes, "rounds": args.rounds,
                                  "warmup": args.warmup, "results": results, "startup": startup,
                                  "targets": targets})
    return 0


if __name__ == "__main__":
    bc.pause_gc_for_startup()
    sys.exit(bc.exit_code(main()))
