"""Convolution variants against PyTorch, forward + backward, in the same run: depthwise 3x3 (stride 1 and 2),
grouped 3x3 (groups=4) and ConvTranspose2d k4 s2 p1 (the speed cases of issue 12).

    python scripts/bench_variants.py [--threads 2] [--rounds 15] [--warmup 3]

The grouped case runs twice: "auto" ("tiled") and "im2col" (both with every (sample, group) pair as a sample, all in one
pass), to check "auto"'s rule for groups. Prints, per case, each contender's median forward+backward time (ms) over interleaved rounds (the
starting contender rotates; warm-up rounds untimed) and PyTorch's median divided by minicnn's (> 1:
minicnn is faster), and checks that both computed the same output. Both compute the input, weight
and bias gradients. ``run_variants()`` returns the rows, for scripts/bench_kernels.py to absorb.
"""
import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # bench_common, and this clone's minicnn first
import bench_common as bc  # noqa: E402

# (name, function, x shape, arguments; "algorithm" for F.conv2d, default "auto")
CASES = [
    ("depthwise 3x3 s1 (64, 32, 32, 32)", "conv2d", (64, 32, 32, 32), dict(out=32, k=3, stride=1, padding=1, groups=32)),
    ("depthwise 3x3 s2 (64, 128, 16, 16)", "conv2d", (64, 128, 16, 16), dict(out=128, k=3, stride=2, padding=1, groups=128)),
    ("grouped 3x3 g4 (32, 64, 32, 32) -> 64 [auto: tiled]", "conv2d", (32, 64, 32, 32),
     dict(out=64, k=3, stride=1, padding=1, groups=4)),
    ("grouped 3x3 g4 (32, 64, 32, 32) -> 64 [im2col]", "conv2d", (32, 64, 32, 32),
     dict(out=64, k=3, stride=1, padding=1, groups=4, algorithm="im2col")),
    ("conv_transpose k4 s2 p1 (32, 64, 16, 16) -> 32", "conv_transpose2d", (32, 64, 16, 16),
     dict(out=32, k=4, stride=2, padding=1, groups=1)),
]
WARM_SECONDS = 0.05  # untimed calls before each timed one (see bench_kernels.time_case)


def _arrays(op, shape, a, rng):
    C = shape[1]
    if op == "conv2d":
        wshape = (a["out"], C // a["groups"], a["k"], a["k"])
    else:
        wshape = (C, a["out"] // a["groups"], a["k"], a["k"])
    x = rng.standard_normal(shape, dtype=np.float32)
    w = (rng.standard_normal(wshape, dtype=np.float32) * 0.1).astype(np.float32)
    b = rng.standard_normal(a["out"], dtype=np.float32)
    return x, w, b


def _minicnn_contender(F, op, x, w, b, a):
    forward = getattr(F, op + "_forward")
    backward = getattr(F, op + "_backward")
    args = dict(stride=a["stride"], padding=a["padding"], groups=a["groups"])
    if "algorithm" in a:
        args["algorithm"] = a["algorithm"]
    state = {}

    def fwd():
        state["y"], state["ctx"] = forward(x, w, b, **args)
        return state["y"]

    def bwd(dy):
        return backward(dy, state["ctx"])[0]

    return fwd, bwd


def _torch_contender(torch, op, x, w, b, a):
    fn = getattr(torch.nn.functional, op)
    xt, wt, bt = (torch.from_numpy(v).requires_grad_() for v in (x, w, b))
    state = {}

    def fwd():
        for t in (xt, wt, bt):
            t.grad = None
        state["y"] = fn(xt, wt, bt, stride=a["stride"], padding=a["padding"], groups=a["groups"])
        return state["y"].detach().numpy()

    def bwd(dy):
        state["y"].backward(torch.from_numpy(dy))
        return xt.grad.numpy()

    return fwd, bwd


def run_variants(threads=2, rounds=15, warmup=3, cases=CASES):
    """Rows ``(case, minicnn median ms, pytorch median ms, pytorch / minicnn, max |difference| of the
    outputs)`` for each case (PyTorch's entries None when it is not installed)."""
    import minicnn
    import minicnn.functional as F

    torch, _ = bc.load_torch()
    bc.set_threads(threads, minicnn, torch)
    rows = []
    for name, op, shape, a in cases:
        x, w, b = _arrays(op, shape, a, np.random.default_rng(0))
        contenders = {"minicnn": _minicnn_contender(F, op, x, w, b, a)}
        if torch is not None:
            contenders["pytorch"] = _torch_contender(torch, op, x, w, b, a)
        dy = np.random.default_rng(1).standard_normal(contenders["minicnn"][0]().shape, dtype=np.float32)
        outputs = {}

        def measure_once(who):
            fwd, bwd = contenders[who]
            end = time.perf_counter() + WARM_SECONDS
            while time.perf_counter() < end:
                fwd()
                bwd(dy)
            t0 = time.perf_counter()
            y = fwd()
            dx = bwd(dy)
            outputs[who] = (np.asarray(y), np.asarray(dx))
            return {"fwd+bwd": time.perf_counter() - t0}

        samples = bc.interleaved(list(contenders), rounds, warmup, measure_once)
        ours = bc.summary(samples["minicnn"]["fwd+bwd"])["median_ms"]
        theirs = bc.summary(samples["pytorch"]["fwd+bwd"])["median_ms"] if torch is not None else None
        diff = (max(float(np.abs(outputs["minicnn"][i] - outputs["pytorch"][i]).max()) for i in range(2))
                if torch is not None else None)
        rows.append((name, ours, theirs, theirs / ours if theirs else None, diff))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args(argv)
    rows = run_variants(args.threads, args.rounds, args.warmup)
    header = ["case (float32, forward + backward)", "minicnn ms", "pytorch ms", "pytorch / minicnn", "max |diff|"]
    print(bc.markdown_table(header, [[r[0], bc.fmt(r[1]), bc.fmt(r[2]), bc.fmt(r[3]),
                                      "-" if r[4] is None else f"{r[4]:.1e}"] for r in rows]))


if __name__ == "__main__":
    main()
