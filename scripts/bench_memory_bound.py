"""Memory-bound layers, forward + backward, against PyTorch and against this machine's memory-copy
bandwidth measured in the same run (issue 13's speed target: at least as fast as PyTorch, and within
2x of the copy time of the same bytes).

    python scripts/bench_memory_bound.py [--shape 128 64 32 32] [--threads 2] [--repeats 9] [--pause 0.05]

Layers: ReLU, LeakyReLU, GELU, SiLU, Sigmoid, Tanh, BatchNorm2d, GroupNorm(8), LayerNorm over (C, H, W)
(with its default affine parameters, and without), InstanceNorm2d (its default: no affine parameters,
and with them) and the residual add (``nn.Residual(nn.Identity())`` when minicnn has it), float32.
``--only NAME ...`` runs some of them (names as in the table, e.g. ``--only "LayerNorm(C,H,W)"
InstanceNorm2d``).
One sample = one ``y = layer(x); dx = layer.backward(dy)`` (PyTorch: ``y = layer(x); y.backward(dy)``
with ``x.grad`` reset), built by ``bench_layers.contenders``. The contenders alternate within each
round, the first one rotating.

The copy baseline is a Numba parallel kernel (one contiguous chunk per thread, as minicnn's elementwise
kernels) copying one array of the input's size: ``copy`` reads and writes it once (2 array passes).
Each layer's ``copy-equiv`` is the copy time scaled to the minimum traffic of a forward + backward that
touches every array once: 5 passes for the activations and normalisations (forward: read x, write y;
backward: read dy and the saved x or y, write dx), 4 for the residual add (read x twice or x and the
body's output, write y; backward: read dy, write dx). Reported: medians in ms with the IQR,
``torch / minicnn`` (> 1: minicnn faster) and ``minicnn / copy-equiv`` (the target: <= 2).
"""
import argparse
import sys
import time

import numba
import numpy as np
from numba import prange

import bench_common as bc
from bench_layers import contenders


@numba.njit(parallel=True, cache=True)
def _copy(src, dst, n_chunks):
    size = src.size
    for t in prange(n_chunks):
        for i in range(t * size // n_chunks, (t + 1) * size // n_chunks):
            dst[i] = src[i]


def cases(shape):
    """(name, minicnn factory, torch factory, array passes of the minimum traffic)."""
    N, C, H, W = shape
    out = [("ReLU", lambda nn: nn.ReLU(), lambda tnn: tnn.ReLU(), 5),
           ("LeakyReLU", lambda nn: nn.LeakyReLU(), lambda tnn: tnn.LeakyReLU(), 5),
           ("GELU", lambda nn: nn.GELU(), lambda tnn: tnn.GELU(), 5),
           ("GELU tanh", lambda nn: nn.GELU("tanh"), lambda tnn: tnn.GELU("tanh"), 5),
           ("SiLU", lambda nn: nn.SiLU(), lambda tnn: tnn.SiLU(), 5),
           ("Sigmoid", lambda nn: nn.Sigmoid(), lambda tnn: tnn.Sigmoid(), 5),
           ("Tanh", lambda nn: nn.Tanh(), lambda tnn: tnn.Tanh(), 5),
           ("BatchNorm2d", lambda nn: nn.BatchNorm2d(C), lambda tnn: tnn.BatchNorm2d(C), 5),
           ("GroupNorm(8)", lambda nn: nn.GroupNorm(8, C), lambda tnn: tnn.GroupNorm(8, C), 5),
           ("LayerNorm(C,H,W)", lambda nn: nn.LayerNorm((C, H, W)), lambda tnn: tnn.LayerNorm((C, H, W)), 5),
           ("LayerNorm(C,H,W) no affine", lambda nn: nn.LayerNorm((C, H, W), elementwise_affine=False),
            lambda tnn: tnn.LayerNorm((C, H, W), elementwise_affine=False), 5),
           ("InstanceNorm2d", lambda nn: nn.InstanceNorm2d(C), lambda tnn: tnn.InstanceNorm2d(C), 5),
           ("InstanceNorm2d affine", lambda nn: nn.InstanceNorm2d(C, affine=True),
            lambda tnn: tnn.InstanceNorm2d(C, affine=True), 5)]
    out.append(("residual add", lambda nn: nn.Residual(nn.Identity()), lambda tnn: _TorchResidual(), 4))
    return out


class _TorchResidual:
    """``y = x + x`` (identity body and shortcut), as ``nn.Residual(nn.Identity())``."""

    def __call__(self, x):
        return x + x


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", type=int, nargs=4, default=[128, 64, 32, 32], metavar=("N", "C", "H", "W"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--pause", type=float, default=0.05)
    ap.add_argument("--only", nargs="*", help="layer names to run, as in the table (default: all)")
    args = ap.parse_args(argv)
    known = [c[0] for c in cases(tuple(args.shape))]
    unknown = [n for n in args.only or () if n not in known]
    if unknown:
        ap.error(f"unknown layer name(s) {unknown} for --only; choose from {known}")
    mc, why = bc.load_minicnn()
    if mc is None:
        raise SystemExit(why)
    torch, why_not = bc.load_torch()
    bc.set_threads(args.threads, mc, torch)
    bc.print_versions(bc.versions(args.threads, torch))
    if torch is None:
        print(f"- {why_not}: minicnn and the copy baseline only")
    shape = tuple(args.shape)
    src = np.random.default_rng(0).standard_normal(int(np.prod(shape))).astype(np.float32)
    dst = np.empty_like(src)
    print(f"shape {shape} float32 ({src.nbytes / 2**20:.0f} MiB per array), {args.threads} threads")

    def copy_once():
        _copy(src, dst, numba.get_num_threads())

    copy_once()
    rows = []
    for name, make_ours, make_theirs, passes in cases(shape):
        if args.only and name not in args.only:
            continue
        if name == "residual add" and not hasattr(mc.nn, "Residual"):
            print(f"  {name}: skipped (this minicnn has no nn.Residual)")
            continue
        runs = contenders(mc, torch, make_ours, make_theirs, shape, shape, np.random.default_rng(0))
        runs["copy"] = copy_once
        names = [n for n in ("minicnn", "torch", "copy") if n in runs]

        def measure_once(who):
            t0 = time.perf_counter()
            runs[who]()
            return {"t": time.perf_counter() - t0}

        samples = bc.interleaved(names, args.repeats, args.warmup, measure_once, args.pause)
        st = {n: bc.summary(samples[n]["t"]) for n in names}
        copy_equiv = st["copy"]["median_ms"] * passes / 2
        cell = {n: f"{st[n]['median_ms']:.2f} [{st[n]['iqr_ms']:.2f}]" if n in st else "n/a"
                for n in ("minicnn", "torch", "copy")}
        ours = st.get("minicnn", {}).get("median_ms")
        rows.append([name, cell["minicnn"], cell["torch"], cell["copy"], f"{copy_equiv:.2f}",
                     bc.fmt(st["torch"]["median_ms"] / ours if ours and "torch" in st else None),
                     bc.fmt(ours / copy_equiv if ours else None)])
        print(f"  {name}: done", flush=True)
    print()
    print(bc.markdown_table(["layer, forward + backward", "minicnn ms [IQR]", "torch ms [IQR]", "copy ms [IQR]",
                             "copy-equiv ms", "torch / minicnn", "minicnn / copy-equiv"], rows))


if __name__ == "__main__":
    sys.exit(main())
