"""Micro-benchmark kernels that measure the machine (``minicnn._peak``): FP32 FMA throughput and
memory-copy bandwidth on Numba's thread pool."""
import numpy as np
from numba import prange

from .._config import PEAK_FMA_CHAINS, jit_parallel, jit_reassoc


@jit_reassoc(parallel=True)
def _fma_chains(iters, a, b, out):
    """For each of ``out.size`` blocks (one per thread), ``PEAK_FMA_CHAINS`` independent chains of
    ``acc = acc * a + b`` (one FMA = 2 FLOPs each) ``iters`` times; ``out[t]`` is block t's sum, so that
    nothing is optimised away. FLOPs = 2 * out.size * iters * PEAK_FMA_CHAINS."""
    for t in prange(out.size):
        acc = np.empty(PEAK_FMA_CHAINS, np.float32)
        for j in range(PEAK_FMA_CHAINS):
            acc[j] = np.float32(j) * np.float32(1e-3)
        for _ in range(iters):
            for j in range(PEAK_FMA_CHAINS):
                acc[j] = acc[j] * a + b
        s = np.float32(0.0)
        for j in range(PEAK_FMA_CHAINS):
            s += acc[j]
        out[t] = s


@jit_parallel
def _copy(src, dst):
    """``dst[:] = src`` (1-D, same size), split across the threads."""
    for i in prange(src.size):
        dst[i] = src[i]


def fma_chains(iters, threads):
    """Run ``_fma_chains`` with one block per thread; returns the FLOPs done."""
    out = np.empty(int(threads), np.float32)
    _fma_chains(int(iters), np.float32(0.999), np.float32(1e-3), out)
    return 2 * int(threads) * int(iters) * PEAK_FMA_CHAINS


def parallel_copy(src, dst):
    """``dst[:] = src`` for 1-D float32 arrays of one size (checked); returns the bytes read + written."""
    if src.ndim != 1 or dst.shape != src.shape or src.dtype != np.float32 or dst.dtype != np.float32:
        raise ValueError(f"src and dst must be 1-D float32 arrays of one size, got {src.shape} {src.dtype} "
                         f"and {dst.shape} {dst.dtype}")
    _copy(src, dst)
    return 2 * src.nbytes
