"""Kernel benchmark: minicnn's convolution and pooling layers against the plain-NumPy im2col baseline
and PyTorch (CPU, float32), in one run, interleaved.

    python scripts/bench_kernels.py [--repeats 25] [--threads 2] [--pause 0.1] [--quick] [--json PATH] [--no-startup]

For each case it times forward, backward and forward+backward of the LAYERS (what users run):
``y = layer(x)`` then ``dx = layer.backward(dy)`` for minicnn and the baseline, ``y = module(x)`` then
``y.backward(dy)`` (autograd) for PyTorch. Every contender gets the same float32 input ``x``, the same
output gradient ``dy`` and the same weights. Within each round the contenders run one after the other,
the first one rotating from round to round, so machine noise hits all alike. Reported: median
milliseconds with the inter-quartile range (IQR), GFLOP/s, and the speed-up of minicnn
(= other's median time / minicnn's median time; > 1 means minicnn is faster).

FLOP counts (defined here, used for every contender):
- convolution, one pass = 2 * N * F * OH * OW * C * kh * kw (multiply + add; bias ignored).
  Forward is one pass; backward is two (weight and input gradients) or one without input gradient.
- pooling forward = N * C * OH * OW * kh * kw (one comparison or add per window element); backward =
  N * C * OH * OW for max pooling (one add per output) and N * C * OH * OW * kh * kw for average pooling.

Before each measurement the script sleeps ``--pause`` seconds (default 0.1) so that the worker threads of
the contender measured just before (OpenBLAS and OpenMP threads spin for a while after each parallel
region) are idle and do not steal the cores; then it runs the contender untimed for 20 ms (waking its
own threads and cores) and times the next forward and backward.

Start-up: a sub-process with a fresh, empty ``NUMBA_CACHE_DIR`` imports minicnn and calls every kernel
once (the cold-start JIT compile time); a second sub-process with the cache it left measures the time
from its start (just before the parent launches it) to its first computed layer output.
"""
import argparse
import sys
import time

import numpy as np

import bench_common as bc
import numpy_baseline as nb

# (name, (N, C, H, W), F, kernel, stride, padding, input_grad, target)
CONV_CASES = [
    ("LeNet conv1", (64, 1, 28, 28), 6, 5, 1, 2, True, "lenet"),
    ("LeNet conv1, no input grad", (64, 1, 28, 28), 6, 5, 1, 2, False, "lenet"),
    ("LeNet conv2", (64, 6, 14, 14), 16, 5, 1, 0, True, "lenet"),
    ("conv 64->64 k3 p1", (32, 64, 32, 32), 64, 3, 1, 1, True, "large"),
    ("conv 32->64 k3 s2 p1", (32, 32, 32, 32), 64, 3, 2, 1, True, "large"),
]
POOL_SHAPES = [(64, 6, 28, 28), (64, 16, 10, 10), (32, 64, 32, 32)]
ALGORITHMS = ["im2col", "direct", "tiled"]  # minicnn's convolution algorithms, each also timed on its own
CONTENDERS = ["minicnn"] + ALGORITHMS + ["numpy", "pytorch"]
WARM_SECONDS = 0.02  # how long a contender runs untimed before each timed call (see time_case)
LABELS = {"minicnn": "minicnn (auto)", "im2col": "im2col", "direct": "direct", "tiled": "tiled",
          "numpy": "NumPy im2col", "pytorch": "PyTorch"}


def conv_flops(shape, F, k, s, p, input_grad):
    N, C, H, W = shape
    OH, OW = nb.out_size(H, k, s, p), nb.out_size(W, k, s, p)
    one = 2 * N * F * OH * OW * C * k * k
    bwd = one * (2 if input_grad else 1)
    return {"fwd": one, "bwd": bwd, "fwd+bwd": one + bwd}


def pool_flops(kind, shape, k=2, s=2):
    N, C, H, W = shape
    OH, OW = nb.out_size(H, k, s, 0), nb.out_size(W, k, s, 0)
    fwd = N * C * OH * OW * k * k
    bwd = N * C * OH * OW * (1 if kind == "max" else k * k)
    return {"fwd": fwd, "bwd": bwd, "fwd+bwd": fwd + bwd}


# -- contenders: each is (reset, forward, backward); reset runs untimed before forward ---------------
def conv_contenders(mc, torch, x, dy, F, k, s, p, input_grad):
    C = x.shape[1]
    base = nb.Conv2d(C, F, k, s, p, input_grad=input_grad, rng=0)
    out = {}
    if mc is not None:
        layer = mc.nn.Conv2d(C, F, k, stride=s, padding=p, input_grad=input_grad)
        base.weight[...], base.bias[...] = layer.weight.data, layer.bias.data
        out["minicnn"] = (lambda: None, lambda: layer(x), lambda: layer.backward(dy))
        for algorithm in ALGORITHMS:
            if algorithm == "direct" and s != 1:
                continue  # stride 1 only
            alayer = mc.nn.Conv2d(C, F, k, stride=s, padding=p, input_grad=input_grad, algorithm=algorithm)
            alayer.load_state_dict(layer.state_dict())
            out[algorithm] = (lambda: None, lambda al=alayer: al(x), lambda al=alayer: al.backward(dy))
    out["numpy"] = (lambda: None, lambda: base(x), lambda: base.backward(dy))
    if torch is not None:
        module = torch.nn.Conv2d(C, F, k, stride=s, padding=p)
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(base.weight))
            module.bias.copy_(torch.from_numpy(base.bias))
        out["pytorch"] = _torch_contender(torch, module, x, dy, input_grad)
    return out


def pool_contenders(mc, torch, kind, x, dy):
    out = {}
    if mc is not None:
        layer = (mc.nn.MaxPool2d if kind == "max" else mc.nn.AvgPool2d)(2)
        out["minicnn"] = (lambda: None, lambda: layer(x), lambda: layer.backward(dy))
    base = (nb.MaxPool2d if kind == "max" else nb.AvgPool2d)(2)
    out["numpy"] = (lambda: None, lambda: base(x), lambda: base.backward(dy))
    if torch is not None:
        module = torch.nn.MaxPool2d(2) if kind == "max" else torch.nn.AvgPool2d(2)
        out["pytorch"] = _torch_contender(torch, module, x, dy, True)
    return out


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


def time_case(contenders, repeats, warmup, pause, before=None):
    names = [n for n in CONTENDERS if n in contenders]
    outputs = {}

    def measure_once(name):
        reset, forward, backward = contenders[name]
        # Untimed calls first, for WARM_SECONDS: after the pause the cores idle and the worker threads
        # sleep, and waking them is not what a training loop that calls the layer again and again
        # pays. A fixed time rather than a fixed number of calls, so that a fast contender is not timed
        # while still cold: on LeNet's conv2, after 3 untimed calls minicnn's next call took 1.35x its
        # steady time and PyTorch's (2.3x longer calls) 1.03x; after 20 ms both were steady (measured).
        end = time.perf_counter() + WARM_SECONDS
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

    samples = bc.interleaved(names, repeats, warmup, measure_once, pause, before)
    return samples, _agreement(outputs)


def _agreement(outputs):
    """Largest relative difference of each contender's y and dx from the baseline's (sanity check that
    all contenders compute the same thing)."""
    def arr(a):
        return None if a is None else (a.detach().numpy() if hasattr(a, "detach") else np.asarray(a))

    ref_y, ref_dx = (arr(a) for a in outputs["numpy"])
    diffs = {}
    for name, (y, dx) in outputs.items():
        y, dx = arr(y), arr(dx)
        d = float(np.abs(y - ref_y).max() / (np.abs(ref_y).max() + 1e-30))
        if dx is not None and ref_dx is not None:
            d = max(d, float(np.abs(dx - ref_dx).max() / (np.abs(ref_dx).max() + 1e-30)))
        diffs[name] = d
    return diffs


def run_kernels(mc, torch, repeats, warmup, quick, pause, before=None):
    rng = np.random.default_rng(0)
    results = []
    cases = [("conv",) + c for c in CONV_CASES]
    cases += [("pool", f"{kind} pool 2x2 on {'x'.join(map(str, s))}", s, kind)
              for s in POOL_SHAPES for kind in ("max", "avg")]
    for case in cases:
        kind, name, shape = case[0], case[1], case[2]
        if quick:
            shape = (2,) + tuple(shape[1:])
        x = rng.standard_normal(shape, dtype=np.float32)
        if kind == "conv":
            F, k, s, p, input_grad, target = case[3:]
            N, C, H, W = shape
            dy = rng.standard_normal((N, F, nb.out_size(H, k, s, p), nb.out_size(W, k, s, p)), dtype=np.float32)
            contenders = conv_contenders(mc, torch, x, dy, F, k, s, p, input_grad)
            flops = conv_flops(shape, F, k, s, p, input_grad)
        else:
            pool_kind = case[3]
            target = "pool"
            dy = rng.standard_normal(shape[:2] + (shape[2] // 2, shape[3] // 2), dtype=np.float32)
            contenders = pool_contenders(mc, torch, pool_kind, x, dy)
            flops = pool_flops(pool_kind, shape)
        samples, diffs = time_case(contenders, repeats, warmup, pause, before)
        entry = {"case": name, "shape": list(shape), "target": target, "flops": flops, "max_rel_diff": diffs,
                 "contenders": {}}
        for cname, by_pass in samples.items():
            entry["contenders"][cname] = {}
            for pss, secs in by_pass.items():
                st = bc.summary(secs)
                st["gflops"] = flops[pss] / (st["median_ms"] * 1e-3) / 1e9
                entry["contenders"][cname][pss] = st
        for other in ("pytorch", "numpy"):
            entry[f"speedup_vs_{other}"] = {
                pss: (entry["contenders"][other][pss]["median_ms"] / entry["contenders"]["minicnn"][pss]["median_ms"]
                      if "minicnn" in entry["contenders"] and other in entry["contenders"] else None)
                for pss in ("fwd", "bwd", "fwd+bwd")}
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
    from minicnn.kernels import pool as k  # pooling moves to minicnn.functional with its own issue
    y, argmax = step("kernels.max_pool2d_forward", lambda: k.max_pool2d_forward(x, 2))
    step("kernels.max_pool2d_backward", lambda: k.max_pool2d_backward(y, argmax, x.shape))
    y = step("kernels.avg_pool2d_forward", lambda: k.avg_pool2d_forward(x, 2))
    step("kernels.avg_pool2d_backward", lambda: k.avg_pool2d_backward(y, x.shape, 2))
    steps["total (import + every first call)"] = time.perf_counter() - t0
    return {"steps": steps, "first_output_epoch": first_output_epoch}


# -- report ----------------------------------------------------------------------------------------
def print_report(info, results, startup, names, notes):
    print("\n## Kernel benchmark\n")
    bc.print_versions(info)
    for note in notes:
        print(f"- {note}")
    print("- Times: median ms [IQR] over the timed rounds; GFLOP/s from the median; speed-up = other's "
          "median / minicnn's median (> 1: minicnn faster).\n")
    header = ["case", "pass"]
    for n in names:
        header += [f"{LABELS[n]} ms [IQR]", "GFLOP/s"]
    for other in ("pytorch", "numpy"):
        if "minicnn" in names and other in names:
            header.append(f"speed-up vs {LABELS[other]}")
    rows = []
    for e in results:
        for pss in ("fwd", "bwd", "fwd+bwd"):
            row = [e["case"] if pss == "fwd" else "", pss]
            for n in names:
                if n not in e["contenders"]:  # an algorithm that does not run this case
                    row += ["n/a", ""]
                    continue
                st = e["contenders"][n][pss]
                row += [f"{st['median_ms']:.3f} [{st['iqr_ms']:.3f}]", f"{st['gflops']:.1f}"]
            for other in ("pytorch", "numpy"):
                if "minicnn" in names and other in names:
                    row.append(f"{e[f'speedup_vs_{other}'][pss]:.2f}x")
            rows.append(row)
    print(bc.markdown_table(header, rows))
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
        else:
            targets.append(bc.check(f"{e['case']} fwd+bwd speed-up vs PyTorch", sp, ">", 1.0, "x"))
    warm = startup["warm"]["to_first_output_s"] if startup else None
    targets.append(bc.check("cached second process to first layer output", warm, "<", 2.0, "s"))
    return targets


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=25, help="timed rounds per case (default 25)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default 3)")
    ap.add_argument("--pause", type=float, default=0.1,
                    help="seconds of sleep before each measurement, so that the previous contender's "
                         "spinning BLAS/OpenMP threads go idle (default 0.1)")
    ap.add_argument("--threads", type=int, default=bc.default_threads(), help="threads for every contender")
    ap.add_argument("--quick", action="store_true", help="smoke test: batch 2, 2 rounds, 1 warm-up")
    ap.add_argument("--no-startup", action="store_true", help="skip the cold/cached start-up sub-processes")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--child-startup", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_startup:
        import json

        print(json.dumps(child_startup(args.threads)))
        return 0
    if args.quick:
        args.repeats, args.warmup, args.pause = 2, 1, 0.0

    mc, mc_note = bc.load_minicnn()
    torch, torch_note = bc.load_torch()
    settings = bc.ThreadSettings(args.threads, mc, torch)
    info = bc.versions(args.threads, torch)
    info["thread_settings"] = settings.describe()
    notes = [n for n in (mc_note, torch_note) if n]
    if args.quick:
        notes.append("--quick: batch 2 and 2 rounds; numbers are meaningless")

    results = run_kernels(mc, torch, args.repeats, args.warmup, args.quick, args.pause, settings.apply)
    startup = None
    if mc is not None and not args.no_startup:
        print("  start-up sub-processes (cold compile, then cached)...", file=sys.stderr, flush=True)
        startup = bc.measure_startup(__file__, args.threads, "first_output_epoch", "to_first_output_s")
    names = [n for n in CONTENDERS if any(n in e["contenders"] for e in results)]
    print_report(info, results, startup, names, notes)
    targets = targets_for(results, startup)
    print("### Targets\n")
    bc.print_targets(targets)
    if args.json:
        bc.write_json(args.json, {"versions": info, "notes": notes, "repeats": args.repeats,
                                  "warmup": args.warmup, "results": results, "startup": startup,
                                  "targets": targets})
    return 0


if __name__ == "__main__":
    sys.exit(main())
