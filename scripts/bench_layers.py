"""Layer benchmark: minicnn's Linear, ReLU, BatchNorm2d, Dropout and CrossEntropyLoss against PyTorch
(CPU, float32), forward and backward at LeNet-5 shapes (batch 64; one ReLU at batch 256, above the
parallel threshold), and issue 12's pooling cases at their shapes, in one run, interleaved.

    python scripts/bench_layers.py [--repeats 25] [--threads 2] [--calls 20] [--pause 0.05]

Only the public layer API (``y = layer(x)``, ``dx = layer.backward(dy)``) is used, so the same script
runs on any commit: run it on the commit before a change and right after it, on the same machine, and
compare the minicnn columns. Each sample times ``--calls`` consecutive calls (one call of these layers
takes microseconds, below the timer's useful resolution); the contenders alternate within each round,
the first one rotating. Reported: median microseconds per call with the inter-quartile range, and
``torch / minicnn`` (the speed-up of minicnn; > 1 means minicnn is faster).
"""
import argparse
import time

import numpy as np

import bench_common as bc

N = 64
# (name, minicnn layer factory, torch module factory, input shape, output shape; None: the loss)
CASES = [
    ("Linear 400->120", lambda nn: nn.Linear(400, 120), lambda tnn: tnn.Linear(400, 120), (N, 400), (N, 120)),
    ("Linear 84->10", lambda nn: nn.Linear(84, 10), lambda tnn: tnn.Linear(84, 10), (N, 84), (N, 10)),
    ("ReLU (64, 6, 14, 14)", lambda nn: nn.ReLU(), lambda tnn: tnn.ReLU(), (N, 6, 14, 14), (N, 6, 14, 14)),
    ("ReLU (256, 6, 14, 14)", lambda nn: nn.ReLU(), lambda tnn: tnn.ReLU(), (256, 6, 14, 14), (256, 6, 14, 14)),
    ("ReLU (64, 120)", lambda nn: nn.ReLU(), lambda tnn: tnn.ReLU(), (N, 120), (N, 120)),
    ("BatchNorm2d(6) train", lambda nn: nn.BatchNorm2d(6), lambda tnn: tnn.BatchNorm2d(6),
     (N, 6, 28, 28), (N, 6, 28, 28)),
    ("Dropout(0.5) train", lambda nn: nn.Dropout(0.5, rng=0), lambda tnn: tnn.Dropout(0.5), (N, 400), (N, 400)),
    ("CrossEntropyLoss (64, 10)", lambda nn: nn.CrossEntropyLoss(), lambda tnn: tnn.CrossEntropyLoss(),
     (N, 10), None),
    # Issue 12's pooling targets (each faster than PyTorch), at their own shapes.
    ("AdaptiveAvgPool2d(1) (128, 256, 8, 8)", lambda nn: nn.AdaptiveAvgPool2d(1),
     lambda tnn: tnn.AdaptiveAvgPool2d(1), (128, 256, 8, 8), (128, 256, 1, 1)),
    ("Upsample(scale_factor=2) (32, 64, 32, 32)", lambda nn: nn.Upsample(scale_factor=2),
     lambda tnn: tnn.Upsample(scale_factor=2), (32, 64, 32, 32), (32, 64, 64, 64)),
    ("MaxPool2d(3, 2, 1, ceil_mode=True) (32, 64, 56, 56)", lambda nn: nn.MaxPool2d(3, 2, 1, ceil_mode=True),
     lambda tnn: tnn.MaxPool2d(3, 2, 1, ceil_mode=True), (32, 64, 56, 56), (32, 64, 29, 29)),
]
CONTENDERS = ["minicnn", "torch"]


def contenders(mc, torch, make_ours, make_theirs, in_shape, out_shape, rng):
    x = rng.standard_normal(in_shape).astype(np.float32)
    labels = rng.integers(0, in_shape[1], in_shape[0])
    dy = None if out_shape is None else rng.standard_normal(out_shape).astype(np.float32)
    ours = make_ours(mc.nn)
    if out_shape is None:
        def run_ours():
            ours(x, labels)
            return ours.backward()
    else:
        def run_ours():
            ours(x)
            return ours.backward(dy)
    result = {"minicnn": run_ours}
    if torch is not None:
        theirs = make_theirs(torch.nn)
        xt = torch.from_numpy(x).requires_grad_(True)
        lt = torch.from_numpy(labels)
        dyt = None if dy is None else torch.from_numpy(dy)

        def run_theirs():
            xt.grad = None
            if dyt is None:
                theirs(xt, lt).backward()
            else:
                theirs(xt).backward(dyt)
            return xt.grad

        result["torch"] = run_theirs
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=25)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--calls", type=int, default=20, help="calls per timed sample")
    ap.add_argument("--threads", type=int, default=bc.default_threads())
    ap.add_argument("--pause", type=float, default=0.05)
    args = ap.parse_args(argv)
    import minicnn as mc

    torch, why_not = bc.load_torch()
    settings = bc.ThreadSettings(args.threads, mc, torch)
    bc.print_versions(dict(bc.versions(args.threads, torch), thread_settings=settings.describe()))
    if torch is None:
        print(f"- {why_not}: minicnn only")
    rng = np.random.default_rng(0)
    rows = []
    for name, make_ours, make_theirs, in_shape, out_shape in CASES:
        try:
            runs = contenders(mc, torch, make_ours, make_theirs, in_shape, out_shape, rng)
        except AttributeError as e:  # a layer the minicnn of this commit does not have
            print(f"  {name}: skipped ({e})", flush=True)
            continue
        names = [n for n in CONTENDERS if n in runs]

        def measure_once(who):
            run = runs[who]
            run()  # untimed: wakes the contender's threads after the pause
            t0 = time.perf_counter()
            for _ in range(args.calls):
                run()
            return {"fwd+bwd": (time.perf_counter() - t0) / args.calls}

        samples = bc.interleaved(names, args.repeats, args.warmup, measure_once, args.pause)
        stats = {n: bc.summary(samples[n]["fwd+bwd"]) for n in names}
        row = [name]
        for n in CONTENDERS:
            s = stats.get(n)
            row.append("n/a" if s is None else f"{s['median_ms'] * 1e3:.1f} [{s['iqr_ms'] * 1e3:.1f}]")
        ratio = stats["torch"]["median_ms"] / stats["minicnn"]["median_ms"] if "torch" in stats else None
        row.append(bc.fmt(ratio))
        rows.append(row)
        print(f"  {name}: done", flush=True)
    print()
    print(bc.markdown_table(["layer, forward + backward", "minicnn us [IQR]", "torch us [IQR]",
                             "torch / minicnn"], rows))


if __name__ == "__main__":
    main()
