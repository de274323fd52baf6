"""Container benchmark: the residual add (``Residual``), ``Concat`` and the squeeze-and-excitation product
(``Parallel(..., merge=Multiply())``), forward + backward on (128, 64, 32, 32) float32, against PyTorch
and against this machine's memory-copy bandwidth, measured in the same run, interleaved.

    python scripts/bench_containers.py [--repeats 15] [--threads 2] [--batch 128]

Self-contained (NumPy, minicnn's public API, PyTorch when installed). Reported per case: median
milliseconds of minicnn and torch with their inter-quartile ranges, ``torch / minicnn`` (> 1: minicnn
faster), and minicnn's bytes moved per second against ``numpy.copyto``'s on the same array size
(``copy GB/s / minicnn GB/s``: 1 means as fast as a copy; the issue's target is <= 2). Bytes moved
count each array read or written once: the residual add reads 2 and writes 1 array forward and the
same backward.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout's minicnn


def make_identity(nn):
    class Identity(nn.Module):
        def forward(self, x):
            return x

        def backward(self, dy):
            return dy

    return Identity


def cases(mc, torch, batch, rng):
    nn = mc.nn
    Identity = make_identity(nn)
    shape = (batch, 64, 32, 32)
    x = rng.standard_normal(shape).astype(np.float32)
    half = (batch, 32, 32, 32)
    xh = rng.standard_normal(half).astype(np.float32)
    gate = rng.random((batch, 64, 1, 1)).astype(np.float32)
    out = []

    # residual add: y = x + x, dx = dy + dy
    res = nn.Residual(Identity())

    def ours_res():
        res(x)
        return res.backward(x)

    def torch_res():
        xt = torch.from_numpy(x).requires_grad_(True)
        (xt + xt).backward(torch.from_numpy(x))
        return xt.grad

    out.append(("Residual add (identity body)", ours_res, torch_res if torch else None, 6 * x.nbytes, x.nbytes))

    # concat of two branches that see the same (N, 32, 32, 32) input
    cat = nn.Concat(Identity(), Identity())

    def ours_cat():
        cat(xh)
        return cat.backward(x)

    def torch_cat():
        xt = torch.from_numpy(xh).requires_grad_(True)
        torch.cat([xt, xt], dim=1).backward(torch.from_numpy(x))
        return xt.grad

    # in units of the full (N, 64, 32, 32) array: forward reads 2 halves and writes the output (2);
    # backward copies dy's two halves out (read 1, write 1) and adds them (read 1, write 1/2): 5.5 in all
    out.append(("Concat(2 x 32 channels)", ours_cat, torch_cat if torch else None, int(5.5 * x.nbytes), x.nbytes))

    mul = nn.Multiply()

    def ours_mul():
        mul(x, gate)
        return mul.backward(x)

    def torch_mul():
        xt = torch.from_numpy(x).requires_grad_(True)
        gt = torch.from_numpy(gate).requires_grad_(True)
        (xt * gt).backward(torch.from_numpy(x))
        return xt.grad

    # forward reads x writes y; backward reads dy, gate -> dx, reads dy, x -> reduced gate gradient
    out.append(("Multiply (N,C,H,W) x (N,C,1,1)", ours_mul, torch_mul if torch else None, 5 * x.nbytes, x.nbytes))
    return out


def median_iqr(v):
    q = statistics.quantiles(v, n=4)
    return statistics.median(v), q[2] - q[0]


def main(argv=None):
    # its own options and timing loop: this script is self-contained (see the docstring), not on bench_common
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args(argv)
    import minicnn as mc
    mc.set_num_threads(args.threads)
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    print(f"- threads {args.threads}, numpy {np.__version__}, torch {torch.__version__ if torch else 'not installed'}")
    rng = np.random.default_rng(0)
    rows = []
    for name, ours, theirs, moved, size in cases(mc, torch, args.batch, rng):
        src = np.ones(size // 4, np.float32)
        dst = np.empty_like(src)
        runs = {"minicnn": ours, "copy": lambda: np.copyto(dst, src)}
        if theirs is not None:
            runs["torch"] = theirs
        for run in runs.values():
            run()  # compile / warm
        samples = {k: [] for k in runs}
        order = list(runs)
        for r in range(max(args.repeats, 2)):
            for k in order[r % len(order):] + order[:r % len(order)]:  # rotate who goes first
                t0 = time.perf_counter()
                runs[k]()
                samples[k].append(time.perf_counter() - t0)
        m_ours, iqr_ours = median_iqr(samples["minicnn"])
        m_copy, _ = median_iqr(samples["copy"])
        copy_gbs = 2 * size / m_copy / 1e9  # a copy reads and writes the array
        ours_gbs = moved / m_ours / 1e9
        if "torch" in samples:
            m_t, iqr_t = median_iqr(samples["torch"])
            torch_col, ratio = f"{m_t * 1e3:.2f} [{iqr_t * 1e3:.2f}]", f"{m_t / m_ours:.2f}"
        else:
            torch_col, ratio = "n/a", "n/a"
        rows.append([name, f"{m_ours * 1e3:.2f} [{iqr_ours * 1e3:.2f}]", torch_col, ratio, f"{ours_gbs:.1f}",
                     f"{copy_gbs:.1f}", f"{copy_gbs / ours_gbs:.2f}"])
    header = ["case, forward + backward", "minicnn ms [IQR]", "torch ms [IQR]", "torch / minicnn", "minicnn GB/s",
              "copy GB/s", "copy / minicnn"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
