"""What minicnn.profiler costs and whether its layer times add up: a model's training step with and
without the profiler, interleaved.

    python scripts/bench_profiler.py [--model lenet5] [--batch-size 64] [--steps 20] [--rounds 10]
                                     [--threads 2] [--quick] [--json PATH]

One round = ``--steps`` training steps plain, then ``--steps`` steps inside ``minicnn.profiler.profile``
(the order alternating from round to round, so that machine noise hits both alike). Reported: the
median step time of each (over rounds, with the IQR), the overhead ratio (profiled / plain, target <=
1.10), and, from the profiled rounds, the sum of the modules' self times against the profiler's own
step time (target: within 10%; the step here is nothing but module calls and the optimizer, which
runs in a ``record_function`` range). ``--model`` takes what ``minicnn-profile --model`` takes.

A profiled round's time runs from entering the ``profile`` block to leaving it (its set-up and
clean-up, once per block, spread over its steps; also printed on their own); ``prof.stats()``, the
analysis after the block, is not in it.
"""
import argparse
import sys
import time

import numpy as np

import bench_common as bc


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    bc.add_common_args(ap, rounds=10, warmup=1, pause=0.0)
    ap.add_argument("--model", default="lenet5", help="as minicnn-profile --model (default lenet5)")
    ap.add_argument("--input-shape", metavar="C,H,W", help="the shape of one sample (default: the model's)")
    ap.add_argument("--batch-size", type=int, default=64, help="default 64")
    ap.add_argument("--steps", type=int, default=20, help="training steps per round and variant (default 20)")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.warmup, args.steps = 2, 1, 2

    import minicnn
    from minicnn.cli import profile as cli

    settings = bc.ThreadSettings(args.threads, minicnn)
    try:
        model, label = cli.build_model(args.model)
        shape = cli.parse_shape(args.input_shape) if args.input_shape else cli.default_input_shape(model)
    except cli.UsageError as e:
        ap.error(str(e))
    if shape is None:
        ap.error(f"--input-shape is needed: {label} does not declare input_shape")
    x = np.random.default_rng(0).random((args.batch_size,) + shape).astype(np.float32)
    step = cli.Step(model, x, "train")
    step()  # compiles (or loads) every kernel before anything is timed
    stats = []

    def once(name):
        # Profiled: from entering the block to leaving it (its set-up and clean-up spread over the
        # steps); prof.stats(), the analysis after the block, is not timed.
        if name == "plain":
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            return {"step_ms": (time.perf_counter() - t0) / args.steps * 1e3}
        start = time.perf_counter()
        with minicnn.profiler.profile(model, step.criterion, peaks=False) as prof:
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
                prof.step()
            t1 = time.perf_counter()
        end = time.perf_counter()
        stats.append(prof.stats())
        return {"step_ms": (end - start) / args.steps * 1e3, "enter_exit_ms": (t0 - start + end - t1) * 1e3}

    samples = bc.interleaved(["plain", "profiled"], args.rounds, args.warmup, once, args.pause)
    res = {name: bc.summary(d["step_ms"], 1) for name, d in samples.items()}
    enter_exit_ms = float(np.median(samples["profiled"]["enter_exit_ms"]))
    overhead = res["profiled"]["median_ms"] / res["plain"]["median_ms"]
    counted = stats[args.warmup:]
    in_modules = float(np.median([s["in_modules_ms"] for s in counted]))
    step_ms = float(np.median([s["steps"]["mean_ms"] for s in counted]))
    share = float(np.median([s["steps"]["in_modules_share_median"] for s in counted]))
    info = dict(bc.versions(args.threads), thread_settings=settings.describe())
    print(f"\n## Profiler overhead and consistency: {label}, input {'x'.join(map(str, x.shape))}\n")
    bc.print_versions(info)
    if args.quick:
        print("- --quick: 2 steps per round, 2 rounds; numbers are meaningless")
    print(f"- {args.rounds} rounds of {args.steps} training steps per variant after {args.warmup} warm-up round(s)\n")
    print(bc.markdown_table(["variant", "step ms (median over rounds)", "IQR"],
                            [[n, f"{r['median_ms']:.3f}", f"{r['iqr_ms']:.3f}"] for n, r in res.items()]))
    print(f"\nEntering and leaving the profile block (once per block of {args.steps} steps, in the profiled "
          f"step time): {enter_exit_ms:.3f} ms (median)")
    print(f"\nSum of the modules' self times {in_modules:.3f} ms against the profiler's step {step_ms:.3f} ms "
          f"(means; {in_modules / step_ms:.3f}x); per step, modules cover {100 * share:.1f}% of it (median)\n")
    targets = [bc.check("profiled / plain step time", overhead, "<=", 1.10, "x"),
               bc.check("module self times / profiled step time (median over steps), distance from 1",
                        abs(share - 1.0), "<=", 0.10)]
    bc.print_targets(targets)
    if args.json:
        bc.write_json(args.json, {"versions": info, "model": label, "input_shape": list(x.shape), "steps": args.steps,
                                  "rounds": args.rounds, "results": res, "overhead": overhead,
                                  "enter_exit_ms": enter_exit_ms,
                                  "in_modules_ms": in_modules, "profiled_step_ms": step_ms,
                                  "in_modules_share_median": share, "targets": targets})
    return 0


if __name__ == "__main__":
    sys.exit(main())
