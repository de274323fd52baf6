"""Helpers shared by bench_kernels.py and bench.py: thread settings, versions, statistics, interleaved
timing, sub-processes and the shared flags. Importing it puts this clone's minicnn first on sys.path."""
import argparse
import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

# This clone's minicnn first. Not imported here: a memory-measuring child imports one framework only.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# -- start-up and exit of a script ------------------------------------------------------------------
_gc_paused = False


def pause_gc_for_startup():
    """For a script's ``__main__``, before ``main()``: no garbage collection during the imports and the
    set-up (importing PyTorch, NumPy, Numba and minicnn allocates millions of objects, nearly all kept,
    and the collector would go over them again and again: about 20% of the start-up); ``end_startup()``
    resumes it. Not for ``main()`` called from another program (tests), which keeps its collector."""
    global _gc_paused
    if gc.isenabled():
        gc.disable()
        _gc_paused = True


def end_startup():
    """Call once the imports and the set-up are done, before anything is timed: when
    ``pause_gc_for_startup()`` paused the collector, what start-up created goes to the permanent
    generation (``gc.freeze()``: later collections, also those inside timed calls, skip it) and
    collection resumes. Does nothing otherwise."""
    global _gc_paused
    if _gc_paused:
        gc.freeze()
        gc.enable()
        _gc_paused = False


def exit_code(rc):
    """``sys.exit(exit_code(main()))`` in a script: freezes what is alive (``gc.freeze()``) so that the
    interpreter's final collection does not go over every object of PyTorch, Numba and minicnn once more
    (about half a second); the objects are still finalised as usual. Returns ``rc``."""
    gc.freeze()
    return rc


def load_minicnn():
    """(minicnn, None): this clone's minicnn (bench_common puts it first on sys.path); the form the
    benchmark scripts of other branches call (no probe: minicnn is complete)."""
    import minicnn

    return minicnn, None


def load_torch():
    """(torch, None) when installed, else (None, reason)."""
    try:
        import torch

        return torch, None
    except ImportError as e:
        return None, f"PyTorch not installed ({e})"


def default_threads():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def add_common_args(ap, rounds, warmup, pause):
    """The flags both benchmarks take, with each script's defaults for ``--rounds``, ``--warmup`` and
    ``--pause``."""
    ap.add_argument("--rounds", "--repeats", dest="rounds", type=int, default=rounds,
                    help=f"timed rounds (default {rounds})")
    ap.add_argument("--warmup", type=int, default=warmup, help=f"untimed rounds first (default {warmup})")
    ap.add_argument("--pause", type=float, default=pause,
                    help="seconds of sleep before each measurement, so that the previous contender's "
                         f"spinning BLAS/OpenMP threads go idle (default {pause})")
    ap.add_argument("--threads", type=int, default=default_threads(),
                    help="threads for every contender (default: the cores this process may use)")
    ap.add_argument("--quick", action="store_true", help="smoke test: tiny sizes, 2 rounds; numbers are meaningless")
    ap.add_argument("--cold-start", action="store_true",
                    help="also measure the cold start (a sub-process with an empty Numba cache compiles "
                         "everything) and a second, cached process")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH (nothing is written "
                                                   "without it)")
    ap.add_argument("--child-startup", action="store_true", help=argparse.SUPPRESS)


def _owner(path):
    """Which installed package a shared library ships with, by its path: the folder under site-packages
    (``numpy.libs`` -> numpy, ``torch/lib`` -> torch), else the library's own folder."""
    parts = os.path.realpath(path).split(os.sep)
    for marker in ("site-packages", "dist-packages"):
        if marker in parts[:-1]:
            top = parts[parts.index(marker) + 1]
            return top[:-len(".libs")] if top.endswith(".libs") else top
    return os.path.dirname(os.path.realpath(path))


def blas_libraries():
    """Every BLAS/OpenMP library loaded, told apart by path (NumPy's and scipy's OpenBLAS have the same
    name, libscipy_openblas): [{owner, user_api, internal_api, version, threads, file}]. Read only."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return []
    return [{"owner": _owner(lib.filepath), "user_api": lib.user_api, "internal_api": lib.internal_api,
             "version": lib.version, "threads": lib.num_threads, "file": os.path.basename(lib.filepath)}
            for lib in ThreadpoolController().lib_controllers]


def set_threads(threads, minicnn=None, torch=None):
    """``ThreadSettings(threads, minicnn, torch)``: every contender's threads, each in its own library."""
    return ThreadSettings(threads, minicnn, torch)


class ThreadSettings:
    """Each contender's threads, set once, each in its own library, so that no contender's turn changes
    another's settings:

    - minicnn: ``minicnn.set_num_threads(threads)`` (Numba's pool; the BLAS its kernels call, scipy's,
      stays at one thread);
    - the NumPy baseline, whose only parallelism is BLAS: NumPy's own BLAS (found by path) at ``threads``;
    - PyTorch: ``torch.set_num_threads(threads)``.
    When NumPy and scipy share one BLAS, minicnn leaves it alone and the baseline's setting holds.
    """

    def __init__(self, threads, minicnn=None, torch=None):
        self.threads, self.has_minicnn, self.has_torch = threads, minicnn is not None, torch is not None
        if minicnn is not None:
            minicnn.set_num_threads(threads)
        try:
            from threadpoolctl import ThreadpoolController

            for lib in ThreadpoolController().lib_controllers:
                if lib.user_api == "blas" and _owner(lib.filepath) == "numpy":
                    lib.set_num_threads(threads)
        except ImportError:
            pass
        if torch is not None:
            torch.set_num_threads(threads)

    def describe(self):
        return {"minicnn": f"minicnn.set_num_threads({self.threads})" if self.has_minicnn else None,
                "numpy": f"NumPy's BLAS at {self.threads}",
                "pytorch": f"torch.set_num_threads({self.threads})" if self.has_torch else None,
                "libraries": blas_libraries()}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions(threads, torch=None):
    import numba

    info = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "torch": torch.__version__ if torch is not None else None,
        "cpu": cpu_model(),
        "cores": default_threads(),
        "threads": threads,
    }
    info["blas"] = blas_libraries()
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
    return info


def print_versions(info):
    print(f"- CPU: {info['cpu']} ({info['cores']} cores); threads used by every contender: {info['threads']}")
    print(f"- Python {info['python']}, NumPy {info['numpy']}, Numba {info['numba']}, "
          f"PyTorch {info['torch'] or 'not installed'}")
    libs = "; ".join(f"{lib['owner']}'s {lib['internal_api']}{' ' + lib['version'] if lib['version'] else ''} "
                     f"({lib['file']}, {lib['threads']} thread{'s' if lib['threads'] != 1 else ''})"
                     for lib in info["blas"])
    print(f"- BLAS/OpenMP libraries by path (threadpoolctl, read after the settings): {libs or 'none found'}")
    ts = info.get("thread_settings")
    if ts:
        parts = [f"minicnn = {ts['minicnn']} (Numba; scipy's BLAS inside its kernels at 1)" if ts["minicnn"] else None,
                 f"NumPy baseline = {ts['numpy']}", f"PyTorch = {ts['pytorch']}" if ts["pytorch"] else None]
        print("- Threads per contender, each set once in its own library: " + "; ".join(p for p in parts if p))


def summary(values, scale=1e3, suffix="_ms"):
    """Median and spread of ``values`` times ``scale``: median, 25th/75th percentiles, IQR, min and count,
    keys ending in ``suffix``. The defaults take seconds and give milliseconds (``median_ms``, ...);
    ``summary(rates, 1, "")`` keeps the unit (``median``, ...)."""
    a = np.asarray(values, dtype=np.float64) * scale
    p25, med, p75 = np.percentile(a, [25, 50, 75])
    out = {"median": float(med), "p25": float(p25), "p75": float(p75), "iqr": float(p75 - p25),
           "min": float(a.min())}
    out = {k + suffix: v for k, v in out.items()}
    out["n"] = int(a.size)
    return out


def interleaved(names, rounds, warmup, measure_once, pause=0.0, before=None):
    """Run ``measure_once(name)`` (returns a dict of values) for every contender in every round, the
    starting contender rotating from round to round so that slow phases of a noisy machine hit all of
    them alike. The first ``warmup`` rounds are discarded. Returns {name: {key: [value, ...]}}.

    ``pause`` seconds of sleep before each measurement let the previous contender's idle worker
    threads stop spinning (OpenBLAS and OpenMP threads busy-wait for a while after each parallel
    region), so that they do not steal the cores from the next contender. ``before(name)`` runs
    (untimed) before each measurement."""
    results = {n: {} for n in names}
    for r in range(warmup + rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            if before is not None:
                before(name)
            if pause:
                time.sleep(pause)
            sample = measure_once(name)
            if r >= warmup:
                for key, value in sample.items():
                    results[name].setdefault(key, []).append(value)
    return results


def run_child(args, env=None, timeout=900):
    """Run ``python args...``; the child prints one JSON object as its last stdout line. Returns
    (parsed JSON, wall seconds from just before the process was started to its exit, start epoch)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    start_epoch = time.time()
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], env=full_env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"sub-process {args} failed with exit code {proc.returncode}:\n{proc.stderr[-3000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1]), wall, start_epoch


def measure_startup(script, threads, first_key, result_key):
    """Cold start (an empty NUMBA_CACHE_DIR: everything compiles), then a second process that loads that
    cache. Each runs ``script --child-startup`` and reports the epoch time of its first result under
    ``first_key``; ``result_key`` names the second process's seconds from launch to that result."""
    cache = tempfile.mkdtemp(prefix="minicnn-bench-cache-")
    try:
        env = {"NUMBA_CACHE_DIR": cache}
        args = [os.path.abspath(script), "--child-startup", "--threads", str(threads)]
        cold, cold_wall, _ = run_child(args, env)
        warm, warm_wall, warm_start = run_child(args, env)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return {"cold": {"steps": cold["steps"], "process_wall_s": cold_wall},
            "warm": {"steps": warm["steps"], "process_wall_s": warm_wall,
                     result_key: warm[first_key] - warm_start}}


def rss_mib():
    """(current, peak) resident set size of this process in MiB, from /proc/self/status (VmRSS, VmHWM).

    Not ``getrusage().ru_maxrss``: Linux keeps ru_maxrss across fork + exec, so a sub-process started
    by a big parent would report the parent's peak. VmHWM belongs to the process's own address space.
    """
    fields = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    fields[key] = int(value.split()[0]) / 1024  # kB
    except OSError:
        pass
    if len(fields) < 2:  # not Linux: ru_maxrss (KiB on Linux, bytes on macOS)
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = peak / 2**20 if sys.platform == "darwin" else peak / 1024
        return fields.get("VmRSS", peak), peak
    return fields["VmRSS"], fields["VmHWM"]


def fmt(v, digits=2):
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    return f"{v:.{digits}f}"


def check(name, value, op, threshold, unit=""):
    """A target: {name, value, threshold, op, status} with status PASS, FAIL or SKIP (no value)."""
    if value is None:
        status = "SKIP"
    else:
        status = "PASS" if (value >= threshold if op == ">=" else value <= threshold if op == "<=" else
                            value < threshold if op == "<" else value > threshold) else "FAIL"
    return {"target": name, "value": value, "op": op, "threshold": threshold, "unit": unit, "status": status}


def markdown_table(header, rows):
    from minicnn.profiler import markdown_table  # the one table formatter

    return markdown_table(header, rows)


def print_targets(targets):
    rows = [[t["target"], fmt(t["value"], 3) + (f" {t['unit']}" if t["unit"] and t["value"] is not None else ""),
             f"{t['op']} {t['threshold']}{(' ' + t['unit']) if t['unit'] else ''}", t["status"]] for t in targets]
    print(markdown_table(["target", "measured", "required", "result"], rows))


def write_json(path, data):
    with open(path, "w") as f:
        json.dump(data, f, indent=2, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
    print(f"\nResults written to {path}")
