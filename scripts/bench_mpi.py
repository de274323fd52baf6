"""Data-parallel benchmark: LeNet-5 training on 2 MPI ranks x 1 thread against 1 rank x 2 threads.

    python scripts/bench_mpi.py [--batch 64] [--steps 60] [--rounds 5] [--no-torch] [--latency-us US]
                                [--json PATH]

Each configuration trains LeNet-5 (float32, SGD lr 0.01 momentum 0.9, random 28x28 images) at the same
GLOBAL batch: ``mpiexec -n 2 python -m mpi4py scripts/bench_mpi.py --worker ...`` (each rank takes
half of the batch, ``minicnn.distributed.DistributedDataParallel``, ``NUMBA_NUM_THREADS=1``) and one
process with 2 threads; PyTorch (when installed) does the same with its own DistributedDataParallel
on the gloo backend, in the same run. Every configuration runs once per round in its own fresh
processes, the first one rotating from round to round; 5 warm-up steps (compilation) are not timed.

Printed: images per second (median over all timed steps of all rounds) per configuration and the
ratios 2 ranks / 1 rank; minicnn's Allreduce time per step and its share of the step (the benchmark
runs the backward under ``no_sync()``, then a barrier, timed apart as waiting for the slower rank,
then ``sync_gradients()``, timed as the Allreduce proper); a one-element Allreduce's time between the
two local ranks; and a scaling estimate for 2 to 64 machines at 10 and 100 Gbit/s.

The estimate (weak scaling: each machine takes the measured per-rank batch and computes it in the
measured per-rank compute time, the 2-rank step minus its Allreduce and waiting) adds a ring Allreduce, which
sends ``2 (N - 1) / N`` of the gradient bytes per machine per step, plus ``2 (N - 1)`` message
latencies: ``step(N) = compute + 2 (N-1)/N * bytes / bandwidth + 2 (N-1) * latency``. The latency
per message is the local one-element Allreduce time / 2 measured here (shared memory: a lower bound
for a real network) unless ``--latency-us`` gives your network's. minicnn does not overlap the
Allreduce with the backward pass, so nothing is hidden. An estimate, not a measurement.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np

import bench_common as bc

HERE = os.path.dirname(os.path.abspath(__file__))
LR, MOMENTUM = 0.01, 0.9
WARMUP_STEPS = 5
MACHINES = (2, 4, 8, 16, 32, 64)
NETWORKS_GBIT = (10, 100)


# -- workers (one process per rank) -------------------------------------------------------------------
def data_batches(batch, seed, count=4):
    rng = np.random.default_rng(seed)
    return [(rng.random((batch, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, batch)) for _ in range(count)]


def minicnn_worker(args, rank, world):
    import minicnn
    import minicnn.distributed as dist

    minicnn.set_num_threads(args.threads)
    local = args.batch // world
    model = dist.DistributedDataParallel(minicnn.models.LeNet5(rng=0))
    criterion = minicnn.nn.CrossEntropyLoss()
    optimizer = minicnn.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    batches = data_batches(local, seed=rank)
    steps, wait, comm = [], [], []
    for i in range(WARMUP_STEPS + args.steps):
        x, y = batches[i % len(batches)]
        t0 = time.perf_counter()
        model.zero_grad()
        criterion(model(x), y)
        with model.no_sync():  # the same work as model.backward(), with the waiting timed apart:
            model.backward(criterion.backward())
        t1 = time.perf_counter()
        dist.barrier()  # waiting for the slower rank (load imbalance, noise), not communication
        t2 = time.perf_counter()
        model.sync_gradients()  # the Allreduce proper, all ranks present
        t3 = time.perf_counter()
        optimizer.step()
        t4 = time.perf_counter()
        if i >= WARMUP_STEPS:
            steps.append(t4 - t0)
            wait.append(t2 - t1)
            comm.append(t3 - t2)
    one = np.zeros(1, np.float32)
    latency = []
    for i in range(220):
        t0 = time.perf_counter()
        dist.all_reduce(one)
        if i >= 20:
            latency.append(time.perf_counter() - t0)
    grad_bytes = sum(p.data.nbytes for p in model.parameters())
    return {"step_s": steps, "allreduce_s": comm if world > 1 else None, "wait_s": wait if world > 1 else None,
            "one_element_allreduce_s": latency if world > 1 else None, "gradient_bytes": grad_bytes}


def torch_worker(args, rank, world):
    import torch
    from torch import nn

    torch.set_num_threads(args.threads)
    if world > 1:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
        port = None
        if rank == 0:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        port = comm.bcast(port, root=0)
        torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                             world_size=world)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(6, 16, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in data_batches(args.batch // world, rank)]
    steps = []
    for i in range(WARMUP_STEPS + args.steps):
        x, y = batches[i % len(batches)]
        t0 = time.perf_counter()
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()
        if i >= WARMUP_STEPS:
            steps.append(time.perf_counter() - t0)
    if world > 1:
        torch.distributed.destroy_process_group()
    return {"step_s": steps, "allreduce_s": None, "one_element_allreduce_s": None}


def worker(args):
    sys.path.insert(0, os.path.dirname(HERE))
    import minicnn.distributed as dist

    rank, world = dist.init()
    if args.batch % world:
        raise SystemExit(f"--batch {args.batch} is not divisible by the {world} ranks")
    result = (minicnn_worker if args.worker == "minicnn" else torch_worker)(args, rank, world)
    result.update(world=world, threads=args.threads)
    if rank == 0:
        print(json.dumps(result), flush=True)


# -- the driver ---------------------------------------------------------------------------------------------
def mpiexec():
    local = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.access(local, os.X_OK):
        return local
    from shutil import which

    return which("mpiexec")


def run_config(framework, ranks, threads, args):
    cmd = [sys.executable]
    if ranks > 1:
        cmd = [mpiexec(), "-n", str(ranks), sys.executable, "-m", "mpi4py"]
    cmd += [os.path.abspath(__file__), "--worker", framework, "--threads", str(threads),
            "--batch", str(args.batch), "--steps", str(args.steps)]
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])


def scaling_rows(compute_s, grad_bytes, per_machine_batch, latency_s):
    rows = []
    for n in MACHINES:
        row = [n, n * per_machine_batch]
        for gbit in NETWORKS_GBIT:
            comm = 2 * (n - 1) / n * grad_bytes * 8 / (gbit * 1e9) + 2 * (n - 1) * latency_s
            step = compute_s + comm
            row += [bc.fmt(step * 1e3, 2), f"{n * per_machine_batch / step:,.0f}", f"{compute_s / step:.0%}"]
        rows.append(row)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=64, help="global batch (default 64)")
    p.add_argument("--steps", type=int, default=60, help="timed steps per configuration and round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    p.add_argument("--latency-us", type=float, default=None,
                   help="per-message network latency for the estimate (default: measured locally)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    p.add_argument("--worker", choices=("minicnn", "torch"), help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.batch % 2 or args.batch < 2:
        p.error(f"--batch must be even (2 ranks), got {args.batch}")
    if mpiexec() is None:
        raise SystemExit("mpiexec not found: pip install -e \".[mpi]\"")
    frameworks = ["minicnn"]
    torch, why = bc.load_torch()
    if torch is not None and not args.no_torch:
        frameworks.append("torch")
    elif not args.no_torch:
        print(f"PyTorch left out: {why}")
    configs = [(f, r, t) for f in frameworks for r, t in ((2, 1), (1, 2))]
    samples = {c: [] for c in configs}
    comm, wait, latency, grad_bytes = [], [], [], None
    for rnd in range(args.rounds):
        k = rnd % len(configs)
        for config in configs[k:] + configs[:k]:
            res = run_config(*config, args)
            samples[config] += res["step_s"]
            if config == ("minicnn", 2, 1):
                comm += res["allreduce_s"]
                wait += res["wait_s"]
                latency += res["one_element_allreduce_s"]
                grad_bytes = res["gradient_bytes"]
        print(f"round {rnd + 1}/{args.rounds} done", flush=True)

    med = {c: float(np.median(s)) for c, s in samples.items()}
    rate = {c: args.batch / m for c, m in med.items()}
    name = {"minicnn": "minicnn", "torch": "PyTorch"}
    rows = []
    for f in frameworks:
        two, one = (f, 2, 1), (f, 1, 2)
        rows.append([name[f], f"{rate[two]:,.0f}", f"{rate[one]:,.0f}", f"{rate[two] / rate[one]:.2f}x",
                     bc.fmt(med[two] * 1e3), bc.fmt(med[one] * 1e3)])
    print(f"\nLeNet-5 training, global batch {args.batch}, median of {args.rounds} x {args.steps} steps\n")
    print(bc.markdown_table(["", "2 ranks x 1 thread img/s", "1 rank x 2 threads img/s", "ratio 2r/1r",
                             "step ms (2r)", "step ms (1r)"], rows))
    comm_med, step_med = float(np.median(comm)), med[("minicnn", 2, 1)]
    two_rank = samples[("minicnn", 2, 1)]
    compute = float(np.median(np.asarray(two_rank) - np.asarray(comm) - np.asarray(wait)))
    wait_med = float(np.median(wait))
    one_element = float(np.median(latency))
    latency_s = one_element / 2 if args.latency_us is None else args.latency_us * 1e-6
    print(f"\nminicnn, 2 ranks: Allreduce of {grad_bytes:,} gradient bytes {comm_med * 1e6:.0f} us per step "
          f"(median), {comm_med / step_med:.1%} of the {step_med * 1e3:.2f} ms step; waiting for the other rank "
          f"{wait_med * 1e6:.0f} us; compute {compute * 1e3:.2f} ms; a one-element Allreduce {one_element * 1e6:.1f} us")
    source = ("--latency-us" if args.latency_us is not None
              else "measured here over shared memory: a lower bound for a network")
    print(f"\nScaling estimate (weak scaling, {args.batch // 2} images per machine per step, ring Allreduce, "
          f"latency {latency_s * 1e6:.1f} us per message, {source}):\n")
    header = ["machines", "global batch"]
    for gbit in NETWORKS_GBIT:
        header += [f"{gbit} Gbit/s step ms", f"{gbit} Gbit/s img/s", f"{gbit} Gbit/s efficiency"]
    print(bc.markdown_table(header, scaling_rows(compute, grad_bytes, args.batch // 2, latency_s)))
    targets = [bc.check("minicnn 2 ranks x 1 thread / 1 rank x 2 threads", rate[("minicnn", 2, 1)] /
                        rate[("minicnn", 1, 2)], ">=", 0.9, "x")]
    print()
    bc.print_targets(targets)
    if args.json:
        bc.write_json(args.json, {"batch": args.batch, "steps": args.steps, "rounds": args.rounds,
                                  "median_step_s": {"-".join(map(str, c)): m for c, m in med.items()},
                                  "allreduce_median_s": comm_med, "wait_median_s": wait_med,
                                  "compute_median_s": compute,
                                  "one_element_allreduce_s": one_element, "gradient_bytes": grad_bytes,
                                  "targets": targets})


if __name__ == "__main__":
    main()
