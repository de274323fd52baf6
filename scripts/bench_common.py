"""Helpers shared by bench_kernels.py and bench.py: thread settings, versions, statistics, interleaved
timing, sub-processes and Markdown tables."""
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np


def load_minicnn():
    """(minicnn, None) when its layers are implemented, else (None, reason)."""
    try:
        import minicnn
        import minicnn.models
        import minicnn.nn

        minicnn.nn.Conv2d(1, 1, 1)
        minicnn.nn.MaxPool2d(2)
        minicnn.nn.AvgPool2d(2)
        return minicnn, None
    except Exception as e:  # placeholders raise TypeError/AttributeError/ImportError
        return None, f"minicnn not ready ({type(e).__name__}: {e})"


def load_torch():
    """(torch, None) when installed, else (None, reason)."""
    try:
        import torch

        return torch, None
    except ImportError as e:
        return None, f"PyTorch not installed ({e})"


def default_threads():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def set_threads(threads, minicnn=None, torch=None):
    """The same thread count for minicnn (Numba), the NumPy baseline (BLAS) and PyTorch's intra-op pool."""
    if minicnn is not None:
        minicnn.set_num_threads(threads)  # Numba threads; its kernels' BLAS stays at one thread
    else:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    if torch is not None:
        torch.set_num_threads(threads)


class ThreadSettings:
    """Each contender's thread settings for ``threads``, re-applied before each of its turns.

    minicnn gets what ``minicnn.set_num_threads(threads)`` sets up (Numba threads; the BLAS its kernels
    call stays single-threaded); PyTorch gets ``torch.set_num_threads(threads)``; the NumPy baseline, whose only
    parallelism is BLAS, gets ``threads`` BLAS threads. Re-applying matters because BLAS limits are
    per process: whatever minicnn chooses for BLAS must not silently change the baseline's.
    """

    def __init__(self, threads, minicnn=None, torch=None):
        self.threads = threads
        set_threads(threads, minicnn, torch)
        try:
            from threadpoolctl import threadpool_info

            self.minicnn_limits = {p["prefix"]: p["num_threads"] for p in threadpool_info()}
        except ImportError:
            self.minicnn_limits = None

    def apply(self, name):
        if self.minicnn_limits is None or name == "pytorch":
            return
        from threadpoolctl import threadpool_limits

        if name == "numpy":
            threadpool_limits(self.threads, user_api="blas")
        else:
            threadpool_limits(self.minicnn_limits)

    def describe(self):
        return {"minicnn (Numba; threadpoolctl limits)": self.minicnn_limits, "numpy (BLAS)": self.threads,
                "pytorch (torch.set_num_threads)": self.threads}


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
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads, "
                        f"{os.path.basename(p.get('filepath', ''))})" for p in threadpool_info()
                        if p.get("user_api") == "blas"]
    except ImportError:
        info["blas"] = ["threadpoolctl not installed"]
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
    return info


def print_versions(info):
    print(f"- CPU: {info['cpu']} ({info['cores']} cores); threads used by every contender: {info['threads']}")
    print(f"- Python {info['python']}, NumPy {info['numpy']}, Numba {info['numba']}, "
          f"PyTorch {info['torch'] or 'not installed'}")
    print(f"- BLAS (threadpoolctl): {'; '.join(info['blas']) or 'none found'}")
    ts = info.get("thread_settings")
    if ts:
        limits = ts["minicnn (Numba; threadpoolctl limits)"]
        limits = ", ".join(f"{k} {v}" for k, v in limits.items()) if limits else "n/a"
        print(f"- Threads per contender, re-applied before each turn: minicnn = minicnn.set_num_threads"
              f"({info['threads']}) (Numba {info['threads']}; {limits}); NumPy baseline = {info['threads']} BLAS "
              f"threads; PyTorch = torch.set_num_threads({info['threads']})")


def summary(samples):
    """Median and spread (25th/75th percentiles, IQR) of a list of seconds, in milliseconds."""
    a = np.asarray(samples, dtype=np.float64) * 1e3
    p25, med, p75 = np.percentile(a, [25, 50, 75])
    return {"median_ms": float(med), "p25_ms": float(p25), "p75_ms": float(p75), "iqr_ms": float(p75 - p25),
            "min_ms": float(a.min()), "n": int(a.size)}


def interleaved(names, rounds, warmup, measure_once, pause=0.0, before=None):
    """Run ``measure_once(name)`` (returns a dict of values) for every contender in every round, the
    starting contender rotating from round to round so that slow phases of a noisy machine hit all of
    them alike. The first ``warmup`` rounds are discarded. Returns {name: {key: [value, ...]}}.

    ``pause`` seconds of sleep before each measurement let the previous contender's idle worker
    threads stop spinning (OpenBLAS and OpenMP threads busy-wait for a while after each parallel
    region), so that they do not steal the cores from the next contender. ``before(name)`` runs
    (untimed) before each measurement, e.g. ``ThreadSettings.apply``."""
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


def markdown_table(header, rows):
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def check(name, value, op, threshold, unit=""):
    """A target: {name, value, threshold, op, status} with status PASS, FAIL or SKIP (no value)."""
    if value is None:
        status = "SKIP"
    else:
        status = "PASS" if (value >= threshold if op == ">=" else value <= threshold if op == "<=" else
                            value < threshold if op == "<" else value > threshold) else "FAIL"
    return {"target": name, "value": value, "op": op, "threshold": threshold, "unit": unit, "status": status}


def print_targets(targets):
    rows = [[t["target"], fmt(t["value"], 3) + (f" {t['unit']}" if t["unit"] and t["value"] is not None else ""),
             f"{t['op']} {t['threshold']}{(' ' + t['unit']) if t['unit'] else ''}", t["status"]] for t in targets]
    print(markdown_table(["target", "measured", "required", "result"], rows))


def write_json(path, data):
    with open(path, "w") as f:
        json.dump(data, f, indent=2, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
    print(f"\nResults written to {path}")
