"""Data-parallel training over MPI (through mpi4py), as Horovod and PyTorch's DistributedDataParallel do it.

Every rank (process) holds the whole model and trains on its own share of each batch; after each
``backward`` the gradients are averaged over the ranks with one Allreduce, so every rank takes the same
optimizer step and the parameters stay identical::

    import minicnn.distributed as dist
    rank, world = dist.init()                      # (0, 1) without an MPI launcher
    model = dist.DistributedDataParallel(build_model())
    sampler = dist.DistributedSampler(len(labels), seed=0)
    loader = DataLoader(images, labels, batch_size=global_batch // world, sampler=sampler)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)                   # a new shuffle per epoch, the same on every rank
        for x, y in loader:
            model.zero_grad()
            loss = criterion(model(x), y)
            model.backward(criterion.backward())   # the gradients are averaged here
            optimizer.step()

Launch with ``mpiexec -n 2 python -m mpi4py script.py`` (``-m mpi4py`` makes an unhandled exception
on one rank abort the whole job instead of leaving the others waiting forever; without it, wrap the
script in :func:`abort_on_exception` or call :func:`install_excepthook`).

mpi4py is optional (``pip install -e ".[mpi]"``) and imported only when an MPI launcher started the
process or the script imported it itself; a plain ``python script.py`` is a world of size 1, in which
every call here is a no-op (the wrapper passes through, the sampler yields every index).
"""
import contextlib
import numbers
import os
import signal
import sys
import time
import traceback

import numpy as np

from ._validate import boolean, inplace_array, integer
from .nn.module import Module

__all__ = ["init", "is_initialized", "get_rank", "get_world_size", "get_local_world_size", "all_reduce",
           "broadcast", "broadcast_object", "all_gather_object", "barrier", "abort", "abort_on_exception",
           "install_excepthook", "deferred_interrupts", "DistributedDataParallel", "DistributedSampler",
           "sync_batchnorm_stats"]

# Environment variables an MPI launcher sets in every rank (MPICH/Hydra and Intel MPI: PMI_*,
# Open MPI: OMPI_*, PMIx-based launchers such as srun --mpi=pmix: PMIX_RANK, MVAPICH: MV2_*).
_LAUNCHER_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
_LAUNCHER_VARS = _LAUNCHER_SIZE_VARS + ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")


class _State:
    initialized = False
    rank = 0
    world_size = 1
    local_world_size = 1
    comm = None  # mpi4py communicator when world_size > 1, else None
    MPI = None   # the mpi4py.MPI module when world_size > 1


_state = _State()


def _launcher_world_size():
    """The world size an MPI launcher announced in the environment (0 when no launcher is seen)."""
    for var in _LAUNCHER_SIZE_VARS:
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    return 1 if any(v in os.environ for v in _LAUNCHER_VARS) else 0


def _import_mpi():
    """``mpi4py.MPI`` when the script already imported it (``python -m mpi4py`` does) or a launcher
    started this process and mpi4py is installed; else None. Importing it initialises MPI."""
    if sys.modules.get("mpi4py.MPI") is not None:
        return sys.modules["mpi4py.MPI"]
    launched = _launcher_world_size()
    if not launched:
        return None
    try:
        from mpi4py import MPI
    except ImportError:
        if launched > 1:
            raise RuntimeError(
                f"this process was started by an MPI launcher as one of {launched} ranks, but mpi4py "
                f"is not installed, so every rank would train alone on the whole data set: install it "
                f"with pip install -e \".[mpi]\" (or pip install mpi4py against your cluster's MPI)") from None
        return None
    return MPI


def init():
    """Join the MPI job (if any) and return ``(rank, world_size)``.

    ``(0, 1)`` when no MPI launcher started the process or mpi4py is missing. With a launcher that
    announced more than one rank, a missing mpi4py, or an mpi4py of another MPI installation (which
    sees a world of one), is a ``RuntimeError`` instead of N ranks each training alone. A second call
    returns the same pair. Uses ``MPI.COMM_WORLD``.
    """
    if _state.initialized:
        return _state.rank, _state.world_size
    MPI = _import_mpi()
    if MPI is not None:
        comm = MPI.COMM_WORLD
        announced = _launcher_world_size()
        if announced > 1 and comm.Get_size() != announced:
            raise RuntimeError(
                f"the MPI launcher started {announced} ranks but mpi4py sees a world of {comm.Get_size()}: "
                f"mpiexec and mpi4py belong to different MPI installations ({MPI.Get_library_version()[:40]!r}); "
                f"use the mpiexec of the MPI that mpi4py was built for, and only one MPI per environment")
        if comm.Get_size() > 1:
            _state.comm, _state.MPI = comm, MPI
            _state.rank, _state.world_size = comm.Get_rank(), comm.Get_size()
            node = comm.Split_type(MPI.COMM_TYPE_SHARED)  # the ranks that share this machine
            _state.local_world_size = node.Get_size()
            node.Free()
    _state.initialized = True
    return _state.rank, _state.world_size


def is_initialized():
    """Whether :func:`init` has been called."""
    return _state.initialized


def get_rank():
    """This process's rank, 0 to ``world_size - 1`` (0 before :func:`init` and in a world of size 1)."""
    return _state.rank


def get_world_size():
    """The number of ranks (1 before :func:`init`, without a launcher, or without mpi4py)."""
    return _state.world_size


def get_local_world_size():
    """The number of ranks on this machine (1 before :func:`init` and in a world of size 1): divide
    the machine's cores by it to choose each rank's thread count."""
    return _state.local_world_size


def _comm():
    """The communicator, calling :func:`init` first if needed; None in a world of size 1."""
    if not _state.initialized:
        init()
    return _state.comm


# -- collectives (no-ops in a world of size 1) ------------------------------------------------------
_OPS = ("sum", "max", "min")
# Before MPI_Abort, time for the launcher to forward what this rank last wrote (its traceback): MPICH's
# launcher ended a job with that output lost once in CI (an empty stderr), when the abort followed the
# write at once. Not tuned: a failing job is not in a hurry.
ABORT_GRACE_SECONDS = 0.5


def all_reduce(array, op="sum"):
    """Reduce ``array`` over all ranks IN PLACE (``op``: ``"sum"``, ``"max"`` or ``"min"``); every rank
    ends with the same result, which is returned. ``array``: a writeable C-contiguous numeric array."""
    array = inplace_array("array", array)
    if op not in _OPS:
        raise ValueError(f"op must be one of {', '.join(map(repr, _OPS))}, got {op!r}")
    comm = _comm()
    if comm is not None and array.size:
        MPI = _state.MPI
        comm.Allreduce(MPI.IN_PLACE, array, op={"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op])
    return array


def _root(root):
    root = integer("root", root, 0)
    _comm()  # init() first, so that the world size is known
    if root >= get_world_size():
        raise ValueError(f"root must be a rank from 0 to {get_world_size() - 1}, got {root!r}")
    return root


def broadcast(array, root=0):
    """Overwrite ``array`` IN PLACE on every rank with rank ``root``'s values; returns it."""
    array = inplace_array("array", array)
    root = _root(root)
    comm = _comm()
    if comm is not None and array.size:
        comm.Bcast(array, root=root)
    return array


def broadcast_object(obj, root=0):
    """Rank ``root``'s ``obj`` (any picklable object) on every rank."""
    root = _root(root)
    comm = _comm()
    return obj if comm is None else comm.bcast(obj, root=root)


def all_gather_object(obj):
    """A list of every rank's ``obj`` (picklable), in rank order, on every rank."""
    comm = _comm()
    return [obj] if comm is None else comm.allgather(obj)


def barrier():
    """Wait until every rank has called ``barrier``."""
    comm = _comm()
    if comm is not None:
        comm.Barrier()


# -- a failing rank ends the job -------------------------------------------------------------------
def abort(code=1):
    """End every rank of the job at once with exit status ``code`` (``MPI_Abort``); in a world of size 1,
    ``sys.exit(code)``."""
    comm = _comm()
    if comm is None:
        sys.exit(code)
    sys.stdout.flush()
    sys.stderr.flush()
    time.sleep(ABORT_GRACE_SECONDS)
    comm.Abort(code)
    os._exit(code)  # MPICH's MPI_Abort can return before the launcher kills this process


def _report_and_abort(exc_type, exc, tb, code):
    sys.stdout.flush()
    traceback.print_exception(exc_type, exc, tb)
    print(f"minicnn.distributed: rank {get_rank()} of {get_world_size()} failed; aborting every rank",
          file=sys.stderr)
    abort(code)


def _is_clean_exit(exc):
    return isinstance(exc, SystemExit) and exc.code in (None, 0)


@contextlib.contextmanager
def abort_on_exception(code=1):
    """``with abort_on_exception():`` around a rank's work: an exception escaping from it prints this
    rank's traceback and aborts every rank (``MPI_Abort(code)``), so the others do not wait forever in
    a collective the failed rank will never reach. ``sys.exit(0)`` passes through; in a world of size
    1 the exception is simply re-raised. (``python -m mpi4py script.py`` does the same for the whole
    script.)"""
    try:
        yield
    except BaseException as exc:  # noqa: B036 - KeyboardInterrupt on one rank must end the others too
        if get_world_size() > 1 and not _is_clean_exit(exc):
            _report_and_abort(type(exc), exc, exc.__traceback__, code)
        raise


def install_excepthook(code=1):
    """Make an unhandled exception on this rank print its traceback and abort every rank (as
    :func:`abort_on_exception` around the whole script). No-op in a world of size 1."""
    if get_world_size() <= 1:
        return
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        if _is_clean_exit(exc):
            return previous(exc_type, exc, tb)
        _report_and_abort(exc_type, exc, tb, code)

    sys.excepthook = hook


@contextlib.contextmanager
def deferred_interrupts():
    """``with deferred_interrupts() as interrupted:`` around a training loop, so that Ctrl-C stops every
    rank at the same point instead of leaving some of them waiting in a collective forever.

    Inside, SIGINT (which ``mpiexec`` forwards to every rank) only sets a flag. ``interrupted()`` is a
    collective (call it on every rank at the same points, e.g. after each step): it returns True on
    every rank once any rank got the signal; then raise ``KeyboardInterrupt`` and stop. In a world of
    size 1 (or outside the main thread) nothing changes: Ctrl-C raises ``KeyboardInterrupt`` at once
    and ``interrupted()`` returns False.
    """
    comm = _comm()
    if comm is None or not _in_main_thread():
        yield lambda: False
        return
    flag = np.zeros(1, np.int32)

    def handler(signum, frame):
        flag[0] = 1

    def interrupted():
        # Reduce a copy: the handler may run between the reduction and the read (a signal that arrives
        # while a rank waits in MPI is handled as the call returns), and writing into the reduced
        # buffer itself made that rank alone see True: it stopped while the others trained on, and
        # the job hung (seen in CI, and in 1 of 30 Ctrl-Cs of a 2-rank run under load).
        return bool(all_reduce(flag.copy(), op="max")[0])

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


def _in_main_thread():
    import threading

    return threading.current_thread() is threading.main_thread()


# -- the data-parallel wrapper -----------------------------------------------------------------------
def _model_signature(module):
    """What must agree on every rank: each parameter's and buffer's name, shape, dtype (and whether
    the parameter is trained), in order."""
    sig = [("parameter", name, tuple(p.data.shape), p.data.dtype.str, bool(p.requires_grad))
           for name, p in module.named_parameters()]
    sig += [("buffer", name, tuple(np.shape(b)), np.asarray(b).dtype.str)
            for name, b in module.named_buffers() if b is not None]
    return sig


def _describe(entry):
    kind, name, shape, dtype = entry[:4]
    text = f"shape {shape} dtype {np.dtype(dtype).name}"
    if kind == "parameter" and not entry[4]:
        text += " (frozen)"
    return text


def _signature_differences(reference, other, rank):
    """Lines describing how rank ``rank``'s signature differs from rank 0's (empty when equal)."""
    ref = {(e[0], e[1]): e for e in reference}
    oth = {(e[0], e[1]): e for e in other}
    lines = []
    for key, e in ref.items():
        if key not in oth:
            lines.append(f"{key[0]} '{key[1]}' ({_describe(e)}) exists on rank 0 but not on rank {rank}")
        elif oth[key] != e:
            lines.append(f"{key[0]} '{key[1]}' has {_describe(e)} on rank 0 but {_describe(oth[key])} "
                         f"on rank {rank}")
    for key, e in oth.items():
        if key not in ref:
            lines.append(f"{key[0]} '{key[1]}' ({_describe(e)}) exists on rank {rank} but not on rank 0")
    if not lines and [(e[0], e[1]) for e in reference] != [(e[0], e[1]) for e in other]:
        lines.append(f"rank {rank} holds the same parameters and buffers in a different order")
    return lines


class DistributedDataParallel(Module):
    """``DistributedDataParallel(module)``: ``module`` trained data-parallel over the MPI ranks.

    ``forward`` and ``backward`` call the module's; after ``backward`` the gradients of the trained
    parameters are averaged over the ranks by one in-place Allreduce per dtype. For this every trained
    parameter's ``.grad`` is re-pointed, once, at a slice of ONE contiguous buffer per dtype (no copy
    per step): do not rebind ``.grad`` afterwards (``zero_grad`` and in-place updates are fine), and
    freeze or unfreeze parameters and change dtypes before wrapping. Frozen parameters are left out.

    At construction (every rank must construct it, in the same order as any other collective call):
    rank 0's parameters and buffers are broadcast to every rank, after checking that every rank built
    the same model (names, shapes, dtypes): otherwise every rank raises ``ValueError`` saying what
    differs. Batch-norm running statistics then stay local per rank: call
    :func:`sync_batchnorm_stats` before evaluating or saving, or use ``nn.SyncBatchNorm``.

    Each rank should take ``global_batch / world_size`` samples per step (see
    :class:`DistributedSampler`); with a mean-reduced loss, the averaged gradient is then that of the
    global batch. ``state_dict()`` keys carry the ``module.`` prefix (as PyTorch's): save
    ``ddp.module.state_dict()`` to load into an unwrapped model. In a world of size 1 the wrapper only
    passes calls through.

    Attributes: ``module``; ``allreduce_seconds`` and ``allreduce_calls``, the wall time spent in (and
    the number of) gradient Allreduces so far.
    """

    def __init__(self, module):
        if not isinstance(module, Module):
            raise TypeError(f"module must be a minicnn.nn.Module, got {type(module).__name__}")
        super().__init__()
        self.module = module
        self.allreduce_seconds = 0.0
        self.allreduce_calls = 0
        self._require_sync = True
        self._buckets = []  # one contiguous gradient buffer per dtype
        self._views = []    # (name, parameter, its .grad view into a bucket)
        self._frozen = []   # (name, parameter) left out of the buckets
        comm = _comm()
        if comm is None:
            return
        self._check_same_model()
        self._broadcast_state()
        self._build_buckets()

    def _check_same_model(self):
        signatures = all_gather_object(_model_signature(self.module))
        problems = []
        for rank, sig in enumerate(signatures[1:], start=1):
            problems += _signature_differences(signatures[0], sig, rank)
        if problems:
            shown = problems[:8] + ([f"... and {len(problems) - 8} more"] if len(problems) > 8 else [])
            raise ValueError("DistributedDataParallel: the ranks built different models (every rank must "
                             "build the same one): " + "; ".join(shown))

    def _broadcast_state(self):
        for _, p in self.module.named_parameters():
            broadcast(p.data)
        buffers = {}
        for name, b in self.module.named_buffers():
            if b is None:
                continue
            buffers[name] = broadcast(np.array(b, copy=True, order="C"))
        if buffers:
            self.module.load_state_dict(buffers, strict=False)

    def _build_buckets(self):
        by_dtype = {}
        for name, p in self.module.named_parameters():
            if p.requires_grad:
                by_dtype.setdefault(p.data.dtype, []).append((name, p))
            else:
                self._frozen.append((name, p))
        for dtype, items in by_dtype.items():
            flat = np.zeros(sum(p.data.size for _, p in items), dtype)
            offset = 0
            for name, p in items:
                view = flat[offset:offset + p.data.size].reshape(p.data.shape)
                np.copyto(view, p.grad, casting="unsafe")  # keep what was already accumulated
                p.grad = view
                self._views.append((name, p, view))
                offset += p.data.size
            self._buckets.append(flat)

    # -- pass-through -------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def backward(self, *args, **kwargs):
        """The module's ``backward``, then (unless inside :meth:`no_sync`) the gradient average."""
        dx = self.module.backward(*args, **kwargs)
        if self._require_sync:
            self.sync_gradients()
        return dx

    @contextlib.contextmanager
    def no_sync(self):
        """Inside, ``backward`` only accumulates local gradients (gradient accumulation); the first
        ``backward`` after it averages everything accumulated."""
        previous, self._require_sync = self._require_sync, False
        try:
            yield
        finally:
            self._require_sync = previous

    def sync_gradients(self):
        """Average the trained parameters' gradients over the ranks, in place (``backward`` calls it)."""
        if not self._buckets:
            return
        for name, p, view in self._views:
            if p.grad is not view:
                raise RuntimeError(f"DistributedDataParallel: the .grad of parameter '{name}' was rebound to "
                                   f"another array after wrapping; update it in place (e.g. zero_grad())")
        for name, p in self._frozen:
            if p.requires_grad:
                raise RuntimeError(f"DistributedDataParallel: parameter '{name}' was unfrozen after wrapping; "
                                   f"set requires_grad before building the wrapper")
        world = get_world_size()
        start = time.perf_counter()
        for flat in self._buckets:
            _state.comm.Allreduce(_state.MPI.IN_PLACE, flat, op=_state.MPI.SUM)
            np.divide(flat, world, out=flat)
        self.allreduce_seconds += time.perf_counter() - start
        self.allreduce_calls += 1

    @property
    def gradient_buffers(self):
        """The contiguous gradient buffers (one per dtype) that the ``.grad`` arrays are views of."""
        return list(self._buckets)

    def extra_repr(self):
        return f"world_size={get_world_size()}"


# -- sampling ------------------------------------------------------------------------------------------
class DistributedSampler:
    """This rank's share of the indices ``0 .. dataset_len - 1``, with PyTorch's rules.

    Every rank draws the same permutation (``shuffle=True``; from ``seed`` and the epoch set by
    :meth:`set_epoch`, so each epoch has a new order), makes its length a multiple of
    ``num_replicas`` by repeating indices from its start (or, with ``drop_last``, by dropping the tail),
    and takes ``indices[rank::num_replicas]``: ``len(sampler)`` indices, the same count on every rank,
    together every sample once per epoch (plus the repeated ones). Call ``set_epoch(epoch)`` before
    each epoch. ``num_replicas`` and ``rank`` default to the world size and this process's rank.
    ``dataset_len``: an int, or an object with ``len()``. Iterating yields int64 indices for
    ``DataLoader(..., sampler=sampler)``.
    """

    def __init__(self, dataset_len, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if not isinstance(dataset_len, numbers.Integral) and hasattr(dataset_len, "__len__"):
            dataset_len = len(dataset_len)
        self.dataset_len = integer("dataset_len", dataset_len, 1)
        if num_replicas is None or rank is None:
            world_rank, world_size = init()
            num_replicas = world_size if num_replicas is None else num_replicas
            rank = world_rank if rank is None else rank
        self.num_replicas = integer("num_replicas", num_replicas, 1)
        self.rank = integer("rank", rank, 0)
        if self.rank >= self.num_replicas:
            raise ValueError(f"rank must be < num_replicas ({self.num_replicas}), got {self.rank}")
        if self.dataset_len < self.num_replicas:
            raise ValueError(f"DistributedSampler: the data set has {self.dataset_len} samples, fewer than the "
                             f"{self.num_replicas} ranks (num_replicas): every rank needs at least one sample")
        self.shuffle, self.drop_last = boolean("shuffle", shuffle), boolean("drop_last", drop_last)
        self.seed = integer("seed", seed, 0)
        self.epoch = 0
        if self.drop_last:
            self.num_samples = self.dataset_len // self.num_replicas
        else:
            self.num_samples = -(-self.dataset_len // self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch):
        """Use the shuffle of ``epoch`` (an int >= 0) for the next passes."""
        self.epoch = integer("epoch", epoch, 0)

    def indices(self):
        """This rank's indices for the current epoch, an int64 array of length ``len(self)``."""
        n = self.dataset_len
        if self.shuffle:
            # The epoch is mixed into the seed (not added to it), so (seed, epoch) pairs never collide.
            order = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch])).permutation(n)
        else:
            order = np.arange(n)
        if self.drop_last:
            order = order[:self.total_size]
        else:
            order = np.resize(order, self.total_size)  # repeats from the start
        return order[self.rank:self.total_size:self.num_replicas].astype(np.int64)

    def __iter__(self):
        return iter(self.indices())

    def __len__(self):
        return self.num_samples

    def __repr__(self):
        return (f"DistributedSampler(dataset_len={self.dataset_len}, num_replicas={self.num_replicas}, "
                f"rank={self.rank}, shuffle={self.shuffle}, seed={self.seed}, drop_last={self.drop_last})")


# -- batch norm -----------------------------------------------------------------------------------------
def sync_batchnorm_stats(model):
    """Average every batch-norm layer's ``running_mean`` and ``running_var`` over the ranks (in one
    Allreduce), so that evaluation and checkpoints see the same statistics on every rank; returns
    ``model``. Call it on every rank, before evaluating or saving. No-op in a world of size 1.

    A layer counts as batch norm when it tracks running statistics (``track_running_stats`` and
    ``running_mean`` / ``running_var`` arrays), so any such normalisation layer is included.
    """
    if not isinstance(model, Module):
        raise TypeError(f"model must be a minicnn.nn.Module, got {type(model).__name__}")
    if _comm() is None:
        return model
    layers = [m for m in model.modules()
              if getattr(m, "track_running_stats", False)
              and isinstance(getattr(m, "running_mean", None), np.ndarray)
              and isinstance(getattr(m, "running_var", None), np.ndarray)]
    if not layers:
        return model
    flat = np.concatenate([np.concatenate([np.ravel(m.running_mean), np.ravel(m.running_var)])
                           for m in layers]).astype(np.float64)
    all_reduce(flat)
    flat /= get_world_size()
    offset = 0
    for m in layers:
        for attr in ("running_mean", "running_var"):
            current = getattr(m, attr)
            value = flat[offset:offset + current.size].reshape(current.shape).astype(current.dtype)
            setattr(m, attr, value)
            offset += current.size
    return model
