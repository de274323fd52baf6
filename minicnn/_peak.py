"""This machine's peaks, measured (never assumed): FP32 FMA throughput and memory-copy bandwidth on the
threads in use, for the profiler's "% of peak" and GB/s columns.

``machine_peaks()`` measures once per process and thread count and caches the result (the first call
costs well under a second, plus compiling or loading two small kernels); ``measure_fma_gflops()`` and
``measure_copy_gbps()`` measure again on every call. Each figure is the median of ``repeats`` samples,
each sample timing enough work (at least ``min_seconds``) that timer resolution and one interruption by
another process do not decide it.
"""
import statistics
import time
from contextlib import contextmanager
from typing import NamedTuple

import numba
import numpy as np

from ._config import JIT_DISABLED, PEAK_COPY_BYTES
from ._validate import positive_int
from .kernels.peak import fma_chains, parallel_copy


class Peaks(NamedTuple):
    """Measured peaks for ``threads`` threads: ``fma_gflops`` (FP32, GFLOP/s, an FMA counted as 2 FLOPs)
    and ``copy_gbps`` (GB/s, 1e9 bytes, read + written)."""
    threads: int
    fma_gflops: float
    copy_gbps: float


_cache = {}  # threads -> Peaks


@contextmanager
def _threads(threads):
    """Numba's thread count set to ``threads`` (None: as it is) inside the block, restored after."""
    before = numba.get_num_threads()
    if threads is None:
        yield before
        return
    limit = numba.config.NUMBA_NUM_THREADS
    threads = positive_int("threads", threads)
    if threads > limit:
        raise ValueError(f"threads must be an integer from 1 to {limit} (NUMBA_NUM_THREADS), got {threads}")
    numba.set_num_threads(threads)
    try:
        yield threads
    finally:
        numba.set_num_threads(before)


def _timed(run, size):
    t0 = time.perf_counter()
    work = run(size)
    return work, time.perf_counter() - t0


def _rate(run, size, repeats, min_seconds, max_seconds=1.0):
    """Median over ``repeats`` samples of (work done / seconds), ``run(size)`` returning its work.

    ``size`` is first doubled until a call takes at least ``min_seconds`` AND doubling the size made
    the call at least 1.6x longer: the time is then the work's, not a fixed cost such as waking
    threads that another process keeps off the cores (on a busy machine a parallel region can wait a
    scheduler tick, milliseconds, to start). ``max_seconds`` bounds that search. One untimed call first
    warms threads and pages."""
    run(size)
    _, t = _timed(run, size)
    while t < max_seconds:
        _, t2 = _timed(run, 2 * size)
        size *= 2
        if t2 >= min_seconds and t2 >= 1.6 * t:
            break
        t = t2
    samples = []
    for _ in range(positive_int("repeats", repeats)):
        work, seconds = _timed(run, size)
        samples.append(work / seconds)
    return statistics.median(samples)


def measure_fma_gflops(threads=None, repeats=5, min_seconds=0.02):
    """FP32 FMA throughput in GFLOP/s on ``threads`` threads (default: Numba's current count), measured
    now: per thread, ``PEAK_FMA_CHAINS`` independent ``acc = acc * a + b`` chains (see
    ``minicnn.kernels.peak``); median of ``repeats`` samples."""
    with _threads(threads) as n:
        return _rate(lambda iters: fma_chains(iters, n), 1024, repeats, min_seconds) / 1e9


def measure_copy_gbps(threads=None, repeats=5, min_seconds=0.02, nbytes=None):
    """Memory-copy bandwidth in GB/s (bytes read + written) on ``threads`` threads, measured now: a
    parallel copy between two float32 arrays of ``nbytes`` each (default ``PEAK_COPY_BYTES``; 16 KiB when
    the JIT is disabled, where the figure only shows the code runs); median of ``repeats`` samples."""
    if nbytes is None:
        nbytes = 16 * 2**10 if JIT_DISABLED else PEAK_COPY_BYTES
    n = positive_int("nbytes", nbytes, minimum=4) // 4
    src = np.ones(n, np.float32)
    dst = np.zeros(n, np.float32)

    def run(copies):
        work = 0
        for _ in range(copies):
            work += parallel_copy(src, dst)
        return work

    with _threads(threads):
        return _rate(run, 1, repeats, min_seconds) / 1e9


def machine_peaks(threads=None):
    """``Peaks`` for ``threads`` threads (default: Numba's current count), measured on the first call for
    that count in this process and cached."""
    n = numba.get_num_threads() if threads is None else positive_int("threads", threads)
    if n not in _cache:
        _cache[n] = Peaks(n, measure_fma_gflops(n), measure_copy_gbps(n))
    return _cache[n]
