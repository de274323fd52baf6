#!/usr/bin/env python3
"""LeNet-5 training speed when other programs keep cores busy: the thread settings side by side.

    python scripts/bench_load.py                 # quiet machine, then with one busy process
    python scripts/bench_load.py --busy 0 1 2 --rounds 7 --batches 60

For each number of busy processes (``--busy``: pure-Python spin loops started next to the benchmark) it
runs every setting below in a fresh process (environment variables such as OMP_WAIT_POLICY only act
before the thread pool starts), ``--rounds`` rounds of ``--batches`` training steps (batch 64, Adam, the
digits scaled to 28x28) after an untimed warm-up, settings taking turns round by round, and prints the
median images per second [IQR] and the ratios to one thread under the same load:

- ``1 thread``; ``N threads`` (Numba's default threading layer, OpenMP here);
- ``N threads, OMP_WAIT_POLICY=PASSIVE`` (OpenMP threads sleep instead of spinning between regions);
- ``N threads, workqueue`` (Numba's own pool, whose threads sleep between regions);
- ``N threads, tbb`` (when the tbb package is installed);
- ``load-aware`` (what ``minicnn-train`` picks without ``--threads``: ``minicnn._config.load_aware_threads``);
- PyTorch with 1 and N threads, when installed.

N is the number of cores. The issue's target: under load the default must do no worse than one thread.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np


def settings(cores):
    out = [("1 thread", {}, 1), (f"{cores} threads", {}, cores),
           (f"{cores} threads, OMP_WAIT_POLICY=PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE"}, cores),
           (f"{cores} threads, workqueue", {"NUMBA_THREADING_LAYER": "workqueue"}, cores)]
    try:
        import tbb  # noqa: F401
        out.append((f"{cores} threads, tbb", {"NUMBA_THREADING_LAYER": "tbb"}, cores))
    except ImportError:
        pass
    out.append(("load-aware (minicnn-train default)", {}, "auto"))
    try:
        import torch  # noqa: F401
        out += [("PyTorch 1 thread", {}, ("torch", 1)), (f"PyTorch {cores} threads", {}, ("torch", cores))]
    except ImportError:
        pass
    return out


def child(threads, batches, rounds):
    """One setting in this process: rounds of ``batches`` steps; prints JSON {img_per_s: [...], threads}."""
    from minicnn.data import DIGITS_MEAN, DIGITS_STD, load_digits

    (x, y), _ = load_digits()
    x = ((x[:, None] / 255.0 - DIGITS_MEAN) / DIGITS_STD).astype(np.float32)
    batch = 64
    batches_x = [x[(i * batch) % (len(x) - batch):][:batch] for i in range(batches)]
    batches_y = [y[(i * batch) % (len(x) - batch):][:batch] for i in range(batches)]
    if isinstance(threads, list):  # PyTorch
        import torch

        torch.set_num_threads(threads[1])
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.MaxPool2d(2), torch.nn.ReLU(), torch.nn.Conv2d(6, 16, 5),
            torch.nn.MaxPool2d(2), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(400, 120), torch.nn.ReLU(),
            torch.nn.Linear(120, 84), torch.nn.ReLU(), torch.nn.Linear(84, 10))
        opt = torch.optim.Adam(model.parameters())
        loss_fn = torch.nn.CrossEntropyLoss()
        tx, ty = [torch.from_numpy(b) for b in batches_x], [torch.from_numpy(b) for b in batches_y]

        def step(i):
            opt.zero_grad()
            loss_fn(model(tx[i]), ty[i]).backward()
            opt.step()
        used = threads[1]
    else:
        import minicnn
        from minicnn import nn, optim
        from minicnn._config import load_aware_threads

        used = load_aware_threads() if threads == "auto" else threads
        minicnn.set_num_threads(used)
        model = minicnn.models.LeNet5(rng=0)
        opt = optim.Adam(model.parameters())
        loss_fn = nn.CrossEntropyLoss()
        minicnn.warmup(model, (batch, 1, 28, 28), opt, loss_fn, eval=False)

        def step(i):
            opt.zero_grad()
            loss_fn(model(batches_x[i]), batches_y[i])
            model.backward(loss_fn.backward())
            opt.step()
    for i in range(min(10, batches)):  # untimed: threads awake, caches warm
        step(i)
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(batches):
            step(i)
        rates.append(batch * batches / (time.perf_counter() - start))
    print(json.dumps({"img_per_s": rates, "threads": used}))


def run_setting(env, threads, batches, rounds):
    code = (f"import sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
            f"sys.path.insert(0, {os.path.dirname(os.path.dirname(os.path.abspath(__file__)))!r}); "
            f"import bench_load; bench_load.child({json.dumps(threads)}, {batches}, {rounds})")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "MINICNN_COMPILE_NOTICE": "0", **env}, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"setting {env} {threads} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--busy", type=int, nargs="+", default=[0, 1], help="busy processes to run next to it (default: 0 1)")
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds per setting (default 5)")
    ap.add_argument("--batches", type=int, default=40, help="training steps per round (default 40)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    table = settings(cores)
    results, loads = {}, {}
    for busy in args.busy:
        spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
        try:
            time.sleep(2 if busy else 0)
            loads[busy] = os.getloadavg()[0]  # what else runs: the numbers only mean much on a quiet machine
            rates = {name: [] for name, _, _ in table}
            used = {}
            for r in range(args.rounds):  # settings take turns: a drift of the machine hits all alike
                order = table[r % len(table):] + table[:r % len(table)]
                for name, env, threads in order:
                    res = run_setting(env, threads, args.batches, 1)
                    rates[name] += res["img_per_s"]
                    used[name] = res["threads"]
                    print(f"  busy {busy}, round {r + 1}/{args.rounds}: {name}: {res['img_per_s'][0]:.0f} img/s",
                          file=sys.stderr, flush=True)
        finally:
            for p in spinners:
                p.kill()
                p.wait()
        results[busy] = {name: {"median": statistics.median(v), "q1": float(np.percentile(v, 25)),
                                "q3": float(np.percentile(v, 75)), "threads": used[name]}
                         for name, v in rates.items()}
    base = {busy: res["1 thread"]["median"] for busy, res in results.items()}
    print(f"LeNet-5 training, batch 64, Adam: images/s, median [IQR] of {args.rounds} rounds of {args.batches} "
          f"steps; {cores} cores; 1-minute load average before each column: "
          + ", ".join(f"{loads[b]:.1f}" for b in args.busy))
    head = "| setting | " + " | ".join(f"{b} busy: img/s | vs 1 thread" for b in args.busy) + " |"
    print(head)
    print("|" + "---|" * (1 + 2 * len(args.busy)))
    for name, _, _ in table:
        cells = []
        for busy in args.busy:
            r = results[busy][name]
            label = f" ({r['threads']} thr)" if name.startswith("load-aware") else ""
            cells += [f"{r['median']:.0f} [{r['q3'] - r['q1']:.0f}]{label}", f"{r['median'] / base[busy]:.2f}x"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.json:
        from minicnn._io import write_json

        write_json(args.json, {"cores": cores, "rounds": args.rounds, "batches": args.batches, "load_average": loads,
                               "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
