"""JIT options and thread settings, in one place.

Every kernel in ``minicnn.kernels`` is compiled with these options, so that changing them here changes
them everywhere. ``cache=True`` writes compiled machine code next to the sources, so a second process
loads it instead of compiling again.
"""
import os

import numba

# No bounds checks (the Python layer validates shapes once); NumPy's error model so that division by
# zero gives inf/nan like NumPy instead of raising inside a kernel.
JIT_OPTIONS = dict(cache=True, nogil=True, error_model="numpy", boundscheck=False)


def jit(fn):
    """Compile ``fn`` as a serial kernel."""
    return numba.njit(**JIT_OPTIONS)(fn)


def jit_parallel(fn):
    """Compile ``fn`` as a kernel whose ``prange`` loops run on Numba's thread pool."""
    return numba.njit(parallel=True, **JIT_OPTIONS)(fn)


def set_num_threads(n):
    """Use ``n`` threads for Numba kernels and for BLAS, so the two never oversubscribe the cores.

    ``n`` must be between 1 and ``numba.config.NUMBA_NUM_THREADS`` (set by the environment variable
    ``NUMBA_NUM_THREADS``, default: the number of cores).
    """
    limit = numba.config.NUMBA_NUM_THREADS
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= limit:
        raise ValueError(f"threads must be an integer from 1 to {limit} (NUMBA_NUM_THREADS), got {n!r}")
    numba.set_num_threads(n)
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)


def get_num_threads():
    """The number of threads Numba kernels use."""
    return numba.get_num_threads()


JIT_DISABLED = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")
