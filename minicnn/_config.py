"""JIT options and thread settings, in one place.

Every kernel in ``minicnn.kernels`` is compiled with these options, so that changing them here changes
them everywhere. ``cache=True`` writes compiled machine code next to the sources, so a second process
loads it instead of compiling again.
"""
import os
import time

import numba
from numba.np.ufunc import parallel as _numba_parallel

from ._validate import _is_int

# No bounds checks (the Python layer validates shapes once); NumPy's error model so that division by
# zero gives inf/nan like NumPy instead of raising inside a kernel.
JIT_OPTIONS = dict(cache=True, nogil=True, error_model="numpy", boundscheck=False)


# MINICNN_SERIAL_KERNELS=1 compiles the prange loops of jit_parallel kernels as plain loops: the same
# arithmetic (the work is split into thread_blocks explicitly, not by prange), compiled 2-3x faster
# (parfor lowering dominates compile time: LeNet-5's parallel kernels took 24.7 s of CPU against 10.1 s
# serial, measured with process_time). The test suite uses it (tests/conftest.py); such builds are
# cached apart (numba.config.CACHE_DIR below), so that a training run never loads a serial build.
PARALLEL = os.environ.get("MINICNN_SERIAL_KERNELS", "0").strip() in ("", "0")
if not PARALLEL:
    numba.config.CACHE_DIR = os.path.join(
        numba.config.CACHE_DIR or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                                               "minicnn"), "serial-kernels")


# glibc gives freed heap memory back to the OS once more than twice its (dynamic) mmap threshold is
# free at the top of the heap; a training step frees and re-allocates megabytes of activations and
# gradients, so each step then faults in fresh, kernel-zeroed pages: LeNet-5 at batch 64 took 671
# minor page faults per step (2.7 MB: conv1's dy laid on the padded width and max pooling's dx), 336 at
# batch 32, resnet20 at batch 128 15,788 (62 MB), mobilenet_small 7,345 (measured with getrusage).
# With arrays under MALLOC_MMAP_THRESHOLD taken from the heap and up to MALLOC_TRIM_THRESHOLD kept free
# at its top: 1.1, 1.1, 0 and 0 faults per step (a 64 MB trim threshold still left mobilenet_small
# 5,282). The peak memory is unchanged; what a step freed stays with the process for the next step.
# MINICNN_KEEP_HEAP=0 leaves glibc's defaults alone (the settings are process-wide).
MALLOC_MMAP_THRESHOLD = 32 << 20  # glibc's own ceiling for its dynamic threshold
MALLOC_TRIM_THRESHOLD = 512 << 20


def keep_heap():
    """Apply the malloc settings above (glibc only; elsewhere, or with MINICNN_KEEP_HEAP=0, nothing)."""
    if os.environ.get("MINICNN_KEEP_HEAP", "1").strip() == "0":
        return False
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
    return bool(mallopt(M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD))


keep_heap()


def jit(fn):
    """Compile ``fn`` as a serial kernel."""
    return numba.njit(**JIT_OPTIONS)(fn)


def jit_inline(fn):
    """Compile ``fn`` as a serial helper that Numba inlines into every caller (its IR, before LLVM), so
    that a loop calling it can be vectorised even when LLVM would not inline a call that large."""
    return numba.njit(inline="always", **JIT_OPTIONS)(fn)


def jit_parallel(fn):
    """Compile ``fn`` as a kernel whose ``prange`` loops run on Numba's thread pool (plain loops with
    ``MINICNN_SERIAL_KERNELS=1``)."""
    return numba.njit(parallel=PARALLEL, **JIT_OPTIONS)(fn)


def jit_reassoc(fn=None, *, parallel=False):
    """Compile ``fn`` (serial, or parallel with ``@jit_reassoc(parallel=True)``) allowing floating-point
    reassociation and contraction (FMA), so that its sums vectorise: only for kernels whose sums may run
    in any order (their docstrings say so). The flags do not pass to the kernels it calls."""
    if fn is None:
        return lambda f: jit_reassoc(f, parallel=parallel)
    return numba.njit(parallel=parallel, fastmath={"reassoc", "contract"}, **JIT_OPTIONS)(fn)


def set_num_threads(n):
    """Use ``n`` threads for minicnn's kernels (Numba's thread pool).

    minicnn runs on ONE thread pool, Numba's: every matrix product on the hot path is called inside a
    Numba kernel (``np.dot`` there calls scipy's BLAS, kept at one thread by
    :func:`kernel_blas_single_threaded`), and the parallelism comes from ``prange`` (one block of rows
    or samples per thread). A second pool (a multi-threaded BLAS) waking up between Numba's parallel
    regions cost up to a scheduler tick (4 ms) per switch on two cores (measured). NumPy's own BLAS is
    not touched: its thread count stays the user's choice (it is not used in the training step).

    ``n`` must be between 1 and ``numba.config.NUMBA_NUM_THREADS`` (set by the environment variable
    ``NUMBA_NUM_THREADS``, default: the number of cores).
    """
    limit = numba.config.NUMBA_NUM_THREADS
    if not _is_int(n) or not 1 <= n <= limit:
        raise ValueError(f"threads must be an integer from 1 to {limit} (NUMBA_NUM_THREADS), got {n!r}")
    numba.set_num_threads(int(n))
    kernel_blas_single_threaded()


_kernel_blas = None  # (threadpoolctl controller, its thread count reader) of the BLAS behind Numba's np.dot


def kernel_blas_single_threaded():
    """Keep the BLAS that Numba's ``np.dot`` calls (scipy's, behind ``scipy.linalg.cython_blas``) at
    one thread: kernels call it from every Numba thread, each on its own block. Call before each
    kernel that calls ``np.dot`` (layers do): the first call finds the library (~50 ms), later calls
    only read its thread count (~0.1 us) and reset it if someone changed it (e.g. ``threadpool_limits``).
    When scipy's BLAS is not a library of its own (e.g. shared with NumPy), nothing is changed."""
    global _kernel_blas
    if _kernel_blas is None:
        import scipy
        import scipy.linalg.cython_blas  # noqa: F401  (loads the library)
        from threadpoolctl import ThreadpoolController

        scipy_dir = os.path.dirname(os.path.realpath(scipy.__file__))  # .../scipy; its BLAS: .../scipy.libs
        _kernel_blas = [(lib, _thread_count_reader(lib)) for lib in ThreadpoolController().lib_controllers
                        if lib.user_api == "blas" and os.path.realpath(lib.filepath).startswith(scipy_dir)]
    for lib, read in _kernel_blas:
        if read() != 1:
            lib.set_num_threads(1)


def _thread_count_reader(lib):
    """A function returning ``lib.num_threads``: for OpenBLAS the library's own C getter, the one
    threadpoolctl's ``get_num_threads`` looks up and calls (0.09 against 0.32 us a call through
    threadpoolctl, measured with timeit; several kernels a step call kernel_blas_single_threaded), else
    (or when threadpoolctl's lookup is not there) the controller's method."""
    method = lib.get_num_threads
    get_symbol = getattr(lib, "_get_symbol", None)
    if getattr(lib, "internal_api", None) != "openblas" or get_symbol is None:
        return method
    try:
        getter = get_symbol("omp_get_max_threads" if lib.threading_layer == "openmp" else "openblas_get_num_threads")
        if getter is not None and getter() == method():
            return getter
    except Exception:  # noqa: BLE001  (any surprise: the controller's own method)
        pass
    return method


def thread_blocks(n):
    """How many blocks to split ``n`` samples or rows into for the block kernels: one per Numba thread,
    at most one per item (each block's GEMM runs on its own thread)."""
    return max(1, min(n, get_num_threads()))


# Where the kernel cannot tell how many threads are runnable now (no /proc/loadavg), a core counts as
# taken by other programs for every LOAD_PER_BUSY_CORE of the 1-minute load average (a process spinning
# on a core adds 1.0). Not measured: scripts/bench_load.py measures the choice.
LOAD_PER_BUSY_CORE = 0.75
# Reads of the runnable-thread count, 2 ms apart, whose smallest counts: a process that only runs for
# an instant (a shell, the ps of a monitor) is not a busy core.
RUNNABLE_READS = 5


def busy_cores():
    """How many cores other programs keep busy now: the threads running or waiting to run (Linux's
    /proc/loadavg, which counts this one too), the fewest of ``RUNNABLE_READS`` reads. The 1-minute load
    average it replaces lagged: just after another job ended it still counted it (issue 17)."""
    try:
        counts = []
        for i in range(RUNNABLE_READS):
            if i:
                time.sleep(0.002)
            with open("/proc/loadavg") as f:
                counts.append(int(f.read().split()[3].split("/")[0]))
        return max(0, min(counts) - 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.getloadavg()[0] / LOAD_PER_BUSY_CORE)
    except (AttributeError, OSError):  # not available on this system: none
        return 0


def load_aware_threads():
    """How many threads to use now: the cores this process may run on, less those other programs keep
    busy (:func:`busy_cores`), at least 1 and at most ``NUMBA_NUM_THREADS``. On two cores with one other
    busy process, two threads ran at about half the speed of one (issue 17); one thread per free core
    degrades no worse than one thread would."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores - busy_cores(), cores, numba.config.NUMBA_NUM_THREADS))


def get_num_threads():
    """The number of threads Numba kernels use (``numba.get_num_threads()``, for this thread). Once
    Numba's thread pool runs, its C getter is read directly: ``numba.get_num_threads`` takes two locks on
    every call to check that the pool runs (0.65 against 0.09 us a call, measured with timeit; every
    block kernel asks)."""
    global _numba_thread_count
    if _numba_thread_count is not None:
        return _numba_thread_count()
    n = numba.get_num_threads()  # starts the pool if it does not run yet
    getter = getattr(_numba_parallel, "_get_num_threads", None)  # (set by Numba when it starts the pool)
    if getter is not None and getattr(_numba_parallel, "_is_initialized", False) and getter() == n:
        _numba_thread_count = getter
    return n


_numba_thread_count = None  # Numba's C getter of the thread count, once its thread pool runs


# -- tuning constants of the convolution kernels, each with the measurement that set it ---------------
# The im2col algorithm computes outputs of up to this many values per sample (F*OH*OW; LeNet's conv2:
# 1600) as y[n].T = cols[n].T @ W2.T, transposed in cache: measured 10-20% faster than W2 @ cols[n],
# whose 16-row result BLAS handles poorly; larger ones (64 channels of 32x32) directly, where the copy
# costs more.
IM2COL_TRANSPOSED_PRODUCT_MAX = 4096
# The tiled stride-1 input gradient sums over kernel rows in passes over this many values of dy
# (F channels x positions): chosen so that they stay in a 32 KiB L1 cache, not tuned by measurement.
TILED_INPUT_GRAD_DY_VALUES = 4096

JIT_DISABLED = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")


def _vector_bits():
    """512 where Numba compiles for AVX-512 (the host's features, or NUMBA_CPU_FEATURES), else 256."""
    features = numba.config.CPU_FEATURES
    if features is None:
        import llvmlite.binding

        features = llvmlite.binding.get_host_cpu_features().flatten()
    return 512 if "+avx512f" in features.split(",") else 256


VECTOR_BITS = _vector_bits()
# With 512-bit vectors the tiled kernels use 32-lane tiles (6 x 32 float32: 12 of the 32 registers)
# over a dimension (output channels per group; positions in the stride-1 input gradient) of at least
# this many values, 16-lane ones below it (one register per row: 6 FMA chains, too few to hide the
# latency, but 32 lanes would be half zeros). Measured on a 2-core AVX-512 Xeon, 2 threads, tiled
# forward / backward, median of 30 calls, three processes a side alternating, against 6 x 16 tiles
# in AVX2 registers: 64 -> 64 3x3 on (32, 64, 32, 32) 10.4-11.5 / 19.3-20.8 ms against 13.4-13.7 /
# 25.0-26.0; (128, 32, 16, 16) -> 32 3.0-3.1 / 5.2-5.3 against 3.1-3.3 / 6.6-7.0; LeNet's conv2
# (F = 16, 16 lanes) 0.16-0.19 / 0.36-0.39 against 0.18-0.19 / 0.40-0.42. 32 lanes from 33 values
# on: (128, 32, 16, 16) forward 3.05-3.13 ms against 2.72-2.89 from 17.
TILE_WIDE_MIN = 17

# Elementwise kernels (ReLU, ...) switch from their serial to their parallel (one chunk per thread)
# version at this many values: below it a parallel region's start-up costs more than it saves
# (measured on an idle 2-core machine, float32 ReLU forward/backward: 3e5 values 38/56 us serial
# against 29/43 us parallel; 1.2e6 values 164/350 us against 100/144 us).
# The row kernels (softmax, PReLU, LayerNorm, GroupNorm, InstanceNorm) use the same threshold on their
# input's size: also memory-bound passes, not measured separately.
ELEMENTWISE_PARALLEL_MIN_SIZE = 1 << 17

# Independent accumulator chains per thread in the FP32 FMA peak micro-benchmark (minicnn/kernels/peak.py):
# enough to hide the FMA latency on two FMA ports (AVX2: 16 ymm registers of 8 floats; AVX-512: 8 zmm of 16)
# without spilling. Measured on the 2-core AMD EPYC of this project (AVX2, 1 thread, median of 7): 64
# chains 116 GFLOP/s, 128 chains 116 GFLOP/s, 16 or 32 chains 27 GFLOP/s (latency-bound).
PEAK_FMA_CHAINS = 128
# Bytes per array of the memory-copy bandwidth micro-benchmark: far larger than the last-level caches of
# common CPUs, so that the copy streams from and to memory (not yet measured against smaller sizes).
PEAK_COPY_BYTES = 64 * 2**20
