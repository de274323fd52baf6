"""Training-speed benchmark: LeNet-5 in minicnn against PyTorch (CPU) and the plain-NumPy baseline.

    python scripts/bench.py [--batches 30] [--rounds 10] [--threads 2] [--pause 0.2] [--quick] [--no-subprocess]
                            [--cold-start] [--json PATH]

All three contenders train the same LeNet-5 (conv 1->6 k5 p2, max-pool 2, ReLU, conv 6->16 k5, max-pool 2,
ReLU, flatten, 400-120-84-10 with ReLU) from the same initial weights, with cross-entropy loss
and SGD (lr 0.01, momentum 0.9), on the same float32 batches: the MNIST test set when found
(``--data-dir`` or ``$MINICNN_MNIST_DIR``), random images otherwise.
One round = ``--batches`` training steps per contender; the contenders take turns within each round,
the first one rotating, so machine noise hits all alike, with a ``--pause`` before each turn so that
the previous contender's spinning BLAS/OpenMP worker threads are idle. Reported: images per second (median over
rounds, with the IQR) at batch 64 and 256, evaluation throughput (forward only, batch 1000), a
per-layer profile of one minicnn training step (``minicnn.profiler``), the peak memory of each
contender, and with ``--cold-start`` the JIT compile time of a cold start and the start-up time of a
second (cached) process. Nothing is written unless ``--json PATH`` is given.

Peak memory: each contender trains in its own fresh sub-process and reports its peak resident set
size (VmHWM of /proc/self/status: everything the process touched, interpreter, libraries, data and
training buffers included). Not ``ru_maxrss``: Linux carries it over fork + exec, so a child would
report the parent's peak. Not ``tracemalloc``: it does not see PyTorch's (or BLAS's) allocations.
"""
import argparse
import os
import sys
import time

import numpy as np

import bench_common as bc
import numpy_baseline as nb

CONTENDERS = ["minicnn", "numpy", "pytorch"]
LABELS = {"minicnn": "minicnn", "numpy": "NumPy im2col", "pytorch": "PyTorch"}
LR, MOMENTUM = 0.01, 0.9


# -- contenders ------------------------------------------------------------------------------------
class MinicnnContender:
    def __init__(self, mc, seed=0, model="lenet5"):
        self.mc = mc
        self.model = mc.models.MODELS[model](rng=seed)
        self.criterion = mc.nn.CrossEntropyLoss()
        self.optimizer = mc.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)

    def arrays(self):
        return [p.data for p in self.model.parameters()]

    def train_step(self, x, y):
        self.model.zero_grad()
        loss = self.criterion(self.model(x), y)
        self.model.backward(self.criterion.backward())
        self.optimizer.step()
        return loss

    def predict(self, x):
        self.model.eval()
        try:
            with self.mc.no_grad():  # as PyTorch's inference_mode: keep nothing for backward
                return self.model(x)
        finally:
            self.model.train()


class NumpyContender:
    def __init__(self, seed=0):
        self.model = nb.lenet5(rng=seed)
        self.optimizer = nb.SGD(self.model.params, lr=LR, momentum=MOMENTUM)

    def arrays(self):
        return [p for p, _ in self.model.params]

    def train_step(self, x, y):
        return nb.train_step(self.model, self.optimizer, x, y)

    def predict(self, x):
        return self.model(x)


class TorchContender:
    def __init__(self, torch, seed=0, twin_of=None):
        """LeNet-5, or with ``twin_of`` (a minicnn model) the same architecture with its weights."""
        nn = torch.nn
        torch.manual_seed(seed)
        self.torch = torch
        if twin_of is not None:
            from minicnn.cli.profile import torch_twin

            self.model = torch_twin(torch, twin_of)[0]
            self.criterion = nn.CrossEntropyLoss()
            self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
            return
        self.model = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(6, 16, 5), nn.MaxPool2d(2), nn.ReLU(),
            nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
        )
        self.criterion = nn.CrossEntropyLoss()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)

    def arrays(self):
        return [p.data.numpy() for p in self.model.parameters()]  # views: writing them sets the weights

    def train_step(self, x, y):
        self.optimizer.zero_grad()
        loss = self.criterion(self.model(self.torch.from_numpy(x)), self.torch.from_numpy(y))
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def predict(self, x):
        self.model.eval()
        try:
            with self.torch.inference_mode():
                return self.model(self.torch.from_numpy(x)).numpy()
        finally:
            self.model.train()


def make_contender(name, mc=None, torch=None):
    if name == "minicnn":
        return MinicnnContender(mc)
    if name == "numpy":
        return NumpyContender()
    return TorchContender(torch)


def make_contenders(mc, torch):
    """All available contenders, every one starting from the first one's weights."""
    out = {}
    for name, ok in (("minicnn", mc is not None), ("numpy", True), ("pytorch", torch is not None)):
        if ok:
            out[name] = make_contender(name, mc, torch)
    reference = next(iter(out.values())).arrays()
    for c in out.values():
        arrays = c.arrays()
        if [a.shape for a in arrays] != [a.shape for a in reference]:
            raise RuntimeError(f"{type(c).__name__} parameters {[a.shape for a in arrays]} do not match "
                               f"{[a.shape for a in reference]}")
        for dst, src in zip(arrays, reference):
            dst[...] = src
    return out


def bench_model(mc, torch, name, args):
    """Training (batch 128) and evaluation (batch 256) img/s of ``minicnn.models.MODELS[name]`` and its
    PyTorch twin (same weights, same synthetic 3x32x32 batches), and each one's peak memory."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1024, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, 1024)
    res = {"versions": dict(bc.versions(args.threads, torch)), "model": name, "rounds": args.rounds,
           "batches": args.batches, "train": {}, "eval": {}}

    def pair():
        ours = MinicnnContender(mc, model=name)
        out = {"minicnn": ours}
        if torch is not None:
            out["pytorch"] = TorchContender(torch, twin_of=ours.model)
        return out

    print(f"  {name}: training, batch 128...", file=sys.stderr, flush=True)
    res["train"]["128"], res["train_last_loss"] = measure_training(pair(), (x, y), 128, args.batches, args.rounds,
                                                                   args.warmup, args.pause)
    print(f"  {name}: evaluation, batch 256...", file=sys.stderr, flush=True)
    res["eval"]["256"], _ = measure_eval(pair(), (x, y), args.eval_batches, args.rounds, args.warmup, args.pause,
                                         batch=256, reference="pytorch" if torch is not None else "minicnn")
    if not args.no_subprocess:
        print(f"  {name}: peak memory sub-processes...", file=sys.stderr, flush=True)
        res["memory"] = measure_memory(list(pair()), (128,), args.batches, args.threads, model=name)
    print(f"\n## Training benchmark: {name} (synthetic 3x32x32 input)\n")
    bc.print_versions(res["versions"])
    names = [n for n in ("minicnn", "pytorch") if n in res["train"]["128"]]
    throughput_table("Training throughput", res["train"], names)
    throughput_table("Evaluation throughput (forward only)", res["eval"], names)
    for batch, by_name in (res.get("memory") or {}).items():
        print(f"\nPeak RSS, batch {batch}: " + "; ".join(f"{LABELS[n]} {m['peak_rss_mib']:.0f} MiB"
                                                        for n, m in by_name.items()))
    if args.json:
        bc.write_json(args.json, res)
    return 0


def batches_of(x, y, batch, count):
    """``count`` consecutive batches, wrapping around the data set; contiguous float32/int64 copies."""
    idx = (np.arange(batch * count) % len(x)).reshape(count, batch)
    return [(np.ascontiguousarray(x[i]), np.ascontiguousarray(y[i])) for i in idx]


# -- measurements ----------------------------------------------------------------------------------
def measure_training(contenders, data, batch, batches, rounds, warmup, pause, before=None):
    chunk = batches_of(*data, batch, batches)
    last_loss = {}

    def once(name):
        step = contenders[name].train_step
        t0 = time.perf_counter()
        for xb, yb in chunk:
            loss = step(xb, yb)
        last_loss[name] = float(loss)
        return {"images_per_s": batch * batches / (time.perf_counter() - t0)}

    samples = bc.interleaved(list(contenders), rounds, warmup, once, pause, before)
    return _rates(samples, "images_per_s"), last_loss


# measure_training and measure_eval each write their timed loop out, so that only the step / predict call
# runs inside the timing (no callback per batch); each keeps what it checks (the last loss, the logits).
def measure_eval(contenders, data, eval_batches, rounds, warmup, pause, before=None, batch=1000, reference="numpy"):
    chunk = batches_of(*data, batch, eval_batches)
    agree = {}

    def once(name):
        predict = contenders[name].predict
        t0 = time.perf_counter()
        for xb, _ in chunk:
            logits = predict(xb)
        agree[name] = np.asarray(logits)
        return {"images_per_s": batch * eval_batches / (time.perf_counter() - t0)}

    samples = bc.interleaved(list(contenders), rounds, warmup, once, pause, before)
    ref = agree[reference]
    diffs = {n: float(np.abs(v - ref).max() / (np.abs(ref).max() + 1e-30)) for n, v in agree.items()}
    return _rates(samples, "images_per_s"), diffs


def _rates(samples, key):
    return {name: bc.summary(d[key], 1, "") for name, d in samples.items()}


def profile_minicnn(mc, data, batch, steps):
    """``minicnn.profiler`` on ``steps`` training steps (after one warm-up step): per-layer forward and
    backward ms, the loss and optimizer, and what lies outside the modules (zero_grad, Python)."""
    c = MinicnnContender(mc)
    model, criterion, optimizer = c.model, c.criterion, c.optimizer
    xb, yb = batches_of(*data, batch, 1)[0]
    with mc.profiler.profile(model, criterion, warmup=1) as prof:
        for _ in range(steps + 1):
            model.zero_grad()
            criterion(model(xb), yb)
            model.backward(criterion.backward())
            with mc.profiler.record_function("optimizer.step"):
                optimizer.step()
            prof.step()
    st = prof.stats()
    rows = {(r["name"], r["phase"]): r for r in st["modules"]}
    layers = [{"layer": f"{k}: {layer!r}", "fwd_ms": rows[(f"LeNet5.{k}", "forward")]["self_ms"],
               "bwd_ms": rows[(f"LeNet5.{k}", "backward")]["self_ms"]} for k, layer in enumerate(model)]
    return {"batch": batch, "steps": steps, "step_ms": st["steps"]["mean_ms"], "layers": layers,
            "table": prof.table(sort_by="order", stats=st), "stats": st}


# -- sub-processes ---------------------------------------------------------------------------------
def child_memory(name, batch, batches, threads, model="lenet5"):
    """Runs in a fresh sub-process: import one framework, train ``batches`` steps, report peak RSS.
    ``model`` other than lenet5: that network (PyTorch: its twin) on synthetic 3x32x32 images."""
    mc = torch = None
    if name == "minicnn" or model != "lenet5":
        import minicnn as mc  # the twin is built from minicnn's model
    if name == "pytorch":
        import torch
    bc.ThreadSettings(threads, mc if name == "minicnn" else None, torch)
    if model == "lenet5":
        x, y, _ = nb.load_images(10000)
        contender = make_contender(name, mc, torch)
    else:
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((4 * batch, 3, 32, 32), dtype=np.float32), rng.integers(0, 10, 4 * batch)
        net = mc.models.MODELS[model](rng=0)
        if name == "minicnn":
            contender = MinicnnContender(mc, model=model)
        else:
            contender = TorchContender(torch, twin_of=net)
        del net
    _, setup_peak = bc.rss_mib()
    for k in range(batches):  # one batch at a time, so the data set is not copied
        idx = (np.arange(batch) + k * batch) % len(x)
        contender.train_step(np.ascontiguousarray(x[idx]), np.ascontiguousarray(y[idx]))
    _, peak = bc.rss_mib()
    return {"peak_rss_mib": peak, "setup_rss_mib": setup_peak}


def measure_memory(names, batch_sizes, batches, threads, model="lenet5"):
    out = {}
    for batch in batch_sizes:
        for name in names:
            res, wall, _ = bc.run_child([os.path.abspath(__file__), "--child-memory", name, "--batch", str(batch),
                                         "--batches", str(batches), "--threads", str(threads), "--model", model])
            out.setdefault(str(batch), {})[name] = res
    return out


def child_startup(threads):
    """Runs in a sub-process: import minicnn, build LeNet-5, train one batch of 64, evaluate one batch
    of 1000; prints the time of each step and the wall-clock time the first training batch ended."""
    t0 = time.perf_counter()
    import minicnn

    steps = {"import minicnn": time.perf_counter() - t0}
    minicnn.set_num_threads(threads)
    rng = np.random.default_rng(0)
    x = rng.random((64, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 64)
    t = time.perf_counter()
    c = MinicnnContender(minicnn)
    steps["build LeNet5, loss, SGD"] = time.perf_counter() - t
    t = time.perf_counter()
    c.train_step(x, y)
    steps["first training step (batch 64)"] = time.perf_counter() - t
    first_batch_epoch = time.time()
    t = time.perf_counter()
    c.predict(rng.random((1000, 1, 28, 28), dtype=np.float32))
    steps["first eval forward (batch 1000)"] = time.perf_counter() - t
    steps["total"] = time.perf_counter() - t0
    return {"steps": steps, "first_batch_epoch": first_batch_epoch}


# -- report ----------------------------------------------------------------------------------------
def ratio(rates, a, b):
    if a in rates and b in rates:
        return rates[a]["median"] / rates[b]["median"]
    return None


def throughput_table(title, by_batch, names):
    print(f"\n### {title}\n")
    header = ["batch"] + [f"{LABELS[n]} img/s [IQR]" for n in names]
    header += ["minicnn / PyTorch", "minicnn / NumPy"]
    rows = []
    for batch, rates in by_batch.items():
        row = [batch] + [f"{rates[n]['median']:.0f} [{rates[n]['iqr']:.0f}]" for n in names]
        row += [bc.fmt(ratio(rates, "minicnn", "pytorch")) + "x" if ratio(rates, "minicnn", "pytorch") else "n/a",
                bc.fmt(ratio(rates, "minicnn", "numpy")) + "x" if ratio(rates, "minicnn", "numpy") else "n/a"]
        rows.append(row)
    print(bc.markdown_table(header, rows))


def print_report(res, names):
    print("\n## Training benchmark: LeNet-5\n")
    bc.print_versions(res["versions"])
    print(f"- Data: {res['data']}")
    for note in res["notes"]:
        print(f"- {note}")
    print(f"- {res['batches']} steps per round, {res['rounds']} timed rounds after {res['warmup']} warm-up "
          f"round(s); img/s = median over rounds [IQR]. SGD lr {LR}, momentum {MOMENTUM}; cross-entropy.")
    throughput_table("Training throughput", res["train"], names)
    losses = "; ".join(f"{LABELS[n]} {v:.4f}" for n, v in res["train_last_loss"].get("64", {}).items())
    print(f"\nLast training loss at batch 64 (same start weights and batches, so these should agree): {losses}")
    throughput_table("Evaluation throughput (forward only)", {"1000": res["eval"]}, names)
    print("\nLargest relative difference of the evaluation logits from the NumPy baseline's: "
          + "; ".join(f"{LABELS[n]} {d:.1e}" for n, d in res["eval_max_rel_diff"].items()))
    prof = res.get("profile")
    if prof:
        print(f"\n### Profile of minicnn's training step (batch {prof['batch']}, {prof['steps']} steps, "
              f"minicnn.profiler)\n")
        print(prof["table"])
    mem = res.get("memory")
    if mem:
        print("\n### Peak memory (peak RSS of a fresh sub-process that trains "
              f"{res['memory_batches']} batches; VmHWM)\n")
        rows = []
        for batch, by_name in mem.items():
            for n in names:
                m = by_name[n]
                rows.append([batch, LABELS[n], f"{m['setup_rss_mib']:.0f}", f"{m['peak_rss_mib']:.0f}",
                             f"{m['peak_rss_mib'] - m['setup_rss_mib']:.0f}"])
        print(bc.markdown_table(["batch", "contender", "after import + data + model (MiB)", "peak (MiB)",
                                 "added by training (MiB)"], rows))
    st = res.get("startup")
    if st:
        print("\n### Start-up (minicnn)\n")
        rows = [[k, f"{v:.3f}", f"{st['warm']['steps'].get(k, float('nan')):.3f}"] for k, v in st["cold"]["steps"].items()]
        rows.append(["whole process (wall)", f"{st['cold']['process_wall_s']:.3f}", f"{st['warm']['process_wall_s']:.3f}"])
        print(bc.markdown_table(["step", "cold: empty cache, compiles (s)", "second process: cached (s)"], rows))
        print(f"\nSecond process, from its start to the end of its first training batch: "
              f"{st['warm']['to_first_batch_s']:.3f} s")
    print("\n### Targets\n")
    bc.print_targets(res["targets"])


def targets_for(res):
    t = [bc.check("batch 64 training img/s vs PyTorch", ratio(res["train"].get("64", {}), "minicnn", "pytorch"),
                  ">=", 2.0, "x"),
         bc.check("batch 256 training img/s vs PyTorch", ratio(res["train"].get("256", {}), "minicnn", "pytorch"),
                  ">=", 1.3, "x")]
    mem = res.get("memory") or {}
    for batch in ("64", "256"):
        by = mem.get(batch, {})
        value = (by["minicnn"]["peak_rss_mib"] / by["pytorch"]["peak_rss_mib"]
                 if "minicnn" in by and "pytorch" in by else None)
        t.append(bc.check(f"peak memory (batch {batch}) / PyTorch's", value, "<=", 1.0, "x"))
    t.append(bc.check("eval img/s (batch 1000) vs PyTorch", ratio(res["eval"], "minicnn", "pytorch"), ">=", 2.0, "x"))
    st = res.get("startup")
    t.append(bc.check("cached second process to first training batch",
                      st["warm"]["to_first_batch_s"] if st else None, "<", 2.0, "s"))
    return t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, default=30, help="training steps per contender per round (default 30)")
    ap.add_argument("--model", default="lenet5",
                    help="lenet5 (default: on MNIST images, with the NumPy baseline), or another of "
                         "minicnn.models.MODELS against its PyTorch twin on synthetic 3x32x32 batches")
    # 10 rounds: the machine's speed drifts, more rounds steady the median.
    bc.add_common_args(ap, rounds=10, warmup=1, pause=0.2)
    ap.add_argument("--eval-batches", type=int, default=10, help="batches of 1000 per evaluation round (default 10)")
    ap.add_argument("--profile-steps", type=int, default=20, help="steps of the per-layer profile (default 20)")
    ap.add_argument("--data-dir", metavar="DIR",
                    help="folder with the MNIST test set (default: $MINICNN_MNIST_DIR, else random images)")
    ap.add_argument("--no-subprocess", action="store_true",
                    help="skip the sub-process measurements (peak memory; the cold start runs only with --cold-start)")
    ap.add_argument("--child-memory", metavar="CONTENDER", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=64, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_memory or args.child_startup:
        import json

        out = (child_memory(args.child_memory, args.batch, args.batches, args.threads, args.model) if args.child_memory
               else child_startup(args.threads))
        print(json.dumps(out))
        return 0
    if args.quick:
        args.batches, args.rounds, args.warmup, args.eval_batches, args.profile_steps = 2, 2, 1, 1, 2
        args.pause = 0.0

    import minicnn as mc

    torch, torch_note = bc.load_torch()
    settings = bc.ThreadSettings(args.threads, mc, torch)
    if args.model != "lenet5":
        if args.model not in mc.models.MODELS:
            ap.error(f"--model must be one of {', '.join(mc.models.MODELS)}, got {args.model!r}")
        return bench_model(mc, torch, args.model, args)
    if args.data_dir:
        os.environ["MINICNN_MNIST_DIR"] = args.data_dir  # also for the memory sub-processes
    x, y, source = nb.load_images(10000)
    res = {"versions": dict(bc.versions(args.threads, torch), thread_settings=settings.describe()), "data": source,
           "notes": [n for n in (torch_note,) if n], "batches": args.batches, "rounds": args.rounds,
           "warmup": args.warmup, "eval_batches": args.eval_batches}
    if args.quick:
        res["notes"].append("--quick: 2 steps per round, 2 rounds; numbers are meaningless")
    contenders = make_contenders(mc, torch)
    names = list(contenders)

    res["train"], res["train_last_loss"] = {}, {}
    for batch in (64, 256):
        print(f"  training, batch {batch}...", file=sys.stderr, flush=True)
        # Fresh models per batch size, all from the same weights again.
        contenders = make_contenders(mc, torch)
        res["train"][str(batch)], res["train_last_loss"][str(batch)] = measure_training(
            contenders, (x, y), batch, args.batches, args.rounds, args.warmup, args.pause)
    print("  evaluation...", file=sys.stderr, flush=True)
    contenders = make_contenders(mc, torch)  # same weights again, so that the logits can be compared
    res["eval"], res["eval_max_rel_diff"] = measure_eval(contenders, (x, y), args.eval_batches, args.rounds,
                                                         args.warmup, args.pause)
    print("  profile...", file=sys.stderr, flush=True)
    res["profile"] = profile_minicnn(mc, (x, y), 64, args.profile_steps)
    if not args.no_subprocess:
        res["memory_batches"] = args.batches
        print("  peak memory sub-processes...", file=sys.stderr, flush=True)
        res["memory"] = measure_memory(names, (64, 256), args.batches, args.threads)
    if args.cold_start:
        print("  start-up sub-processes (cold compile, then cached)...", file=sys.stderr, flush=True)
        res["startup"] = bc.measure_startup(__file__, args.threads, "first_batch_epoch", "to_first_batch_s")
    res["targets"] = targets_for(res)
    print_report(res, names)
    if args.json:
        bc.write_json(args.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
