"""minicnn.distributed: world-size-1 behaviour in process, and 2 real MPI ranks through mpiexec.

The multi-rank tests launch ``mpiexec -n 2 python -m mpi4py tests/mpi_worker.py SCENARIOS 2`` (the
scenarios are described there) and are skipped when mpi4py or mpiexec is missing.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import minicnn
import minicnn.distributed as dist
from minicnn import nn
from minicnn.data import DataLoader

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKER = os.path.join(HERE, "mpi_worker.py")
RANKS = 2


# -- launching real ranks ---------------------------------------------------------------------------
def find_mpiexec():
    """The mpiexec of this Python's environment (the ``mpich`` wheel puts it next to python), else PATH's."""
    local = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return local if os.access(local, os.X_OK) else shutil.which("mpiexec")


def mpi_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_"))}
    env["NUMBA_NUM_THREADS"] = "1"  # 2 ranks x 1 thread on the 2 cores
    return env


needs_mpi = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or find_mpiexec() is None,
    reason="mpi4py or mpiexec not installed (pip install -e \".[mpi]\")")


def launch(scenarios, timeout, with_m_mpi4py=True):
    cmd = [find_mpiexec(), "-n", str(RANKS), sys.executable]
    cmd += ["-m", "mpi4py"] if with_m_mpi4py else []
    cmd += [WORKER, ",".join(scenarios), str(RANKS)]
    start = time.monotonic()
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=mpi_env(), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{' '.join(cmd)} did not end within {timeout} s:\n{e.stdout}\n{e.stderr}")
    return done, time.monotonic() - start


SCENARIOS = ("syncbn_layer", "equivalence", "frozen", "batchnorm_stats", "sampler", "mismatch", "small_dataset")


@needs_mpi
def test_two_ranks():
    """One launch for every numerical and protocol scenario (a launch costs seconds): SyncBatchNorm on
    slices = BatchNorm2d on the batch; 2 ranks x B/2 = 1 process x B after every step for SGD and Adam
    in float64 (1e-10) and float32 (1e-5), bit-identical ranks; frozen parameters; running statistics;
    the sampler's coverage; different models and a too-small data set raise on every rank."""
    # Generous: a cold Numba cache compiles every kernel on both ranks at once.
    done, _ = launch(SCENARIOS, timeout=900)
    assert done.returncode == 0, f"exit status {done.returncode}\n{done.stdout}\n{done.stderr}"
    for name in SCENARIOS:
        for rank in range(RANKS):
            assert f"rank {rank}: {name} passed" in done.stdout, done.stdout + done.stderr


@needs_mpi
@pytest.mark.parametrize("scenario", ["abort", "abort_context", "abort_hook"])
def test_failing_rank_ends_the_job(scenario):
    """Rank 1 raises while rank 0 waits in a barrier: the job must end (nonzero) instead of hanging;
    under ``python -m mpi4py``, and without it through abort_on_exception() or install_excepthook()."""
    done, seconds = launch([scenario], timeout=60, with_m_mpi4py=scenario == "abort")
    assert done.returncode != 0
    assert "rank 1 fails on purpose" in done.stderr
    assert seconds < 60


# -- a world of size 1 -------------------------------------------------------------------------------
def test_world_of_one_without_launcher():
    assert dist.init() == (0, 1)
    assert dist.is_initialized() and dist.get_rank() == 0 and dist.get_world_size() == 1
    assert dist.init() == (0, 1)
    a = np.arange(4.0)
    assert dist.all_reduce(a, op="max") is a and np.array_equal(a, np.arange(4.0))
    assert dist.broadcast(a) is a
    assert dist.broadcast_object({"x": 1}) == {"x": 1}
    assert dist.all_gather_object(3) == [3]
    dist.barrier()


def run_python(code, **env):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_"))}
    environment.update(env)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=120)


BLOCK_MPI4PY = "import sys; sys.modules['mpi4py'] = None; sys.modules['mpi4py.MPI'] = None\n"


def test_minicnn_runs_without_mpi4py():
    code = BLOCK_MPI4PY + (
        "import numpy as np, minicnn, minicnn.distributed as dist\n"
        "from minicnn import nn\n"
        "print(dist.init())\n"
        "m = dist.DistributedDataParallel(nn.Linear(3, 2))\n"
        "print(m(np.ones((1, 3), np.float32)).shape, len(dist.DistributedSampler(5)))\n")
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["(0, 1)", "(1, 2) 5"]


def test_launcher_without_mpi4py_is_an_error():
    """Under a launcher that started several ranks, a missing mpi4py would make each rank train alone."""
    done = run_python(BLOCK_MPI4PY + "import minicnn.distributed as d; d.init()", PMI_SIZE="2", PMI_RANK="1")
    assert done.returncode != 0
    assert "mpi4py is not installed" in done.stderr and "2 ranks" in done.stderr
    done = run_python(BLOCK_MPI4PY + "import minicnn.distributed as d; print(d.init())", PMI_SIZE="1", PMI_RANK="0")
    assert done.returncode == 0 and done.stdout.strip() == "(0, 1)", done.stderr


def test_import_does_not_load_mpi4py():
    done = run_python("import sys, minicnn, minicnn.distributed as d; d.init(); print('mpi4py' in sys.modules)")
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr


def test_collective_arguments_are_checked():
    with pytest.raises(TypeError, match="array must be a numpy.ndarray"):
        dist.all_reduce([1.0, 2.0])
    with pytest.raises(ValueError, match="C-contiguous"):
        dist.all_reduce(np.zeros((3, 4))[:, ::2])
    with pytest.raises(ValueError, match="op must be one of"):
        dist.all_reduce(np.zeros(3), op="mean")
    with pytest.raises(ValueError, match="root must be a rank from 0 to 0"):
        dist.broadcast(np.zeros(3), root=1)


def test_abort_on_exception_reraises_in_a_world_of_one():
    with pytest.raises(KeyError):
        with dist.abort_on_exception():
            raise KeyError("x")


def tiny_net(bn=nn.BatchNorm2d, seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, dtype=np.float64, rng=rng), bn(3, dtype=np.float64),
                         nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 2, dtype=np.float64, rng=rng))


def test_ddp_passes_through_in_a_world_of_one():
    net = tiny_net()
    grads = [p.grad for p in net.parameters()]
    model = dist.DistributedDataParallel(net)
    x = np.random.default_rng(1).standard_normal((2, 1, 4, 4))
    y = model(x)
    np.testing.assert_array_equal(y, tiny_net()(x))
    model.zero_grad()
    model.backward(np.ones_like(y))
    assert all(p.grad is g for p, g in zip(net.parameters(), grads))  # not re-pointed: nothing to reduce
    assert model.gradient_buffers == [] and model.allreduce_calls == 0
    assert list(model.state_dict())[0] == "module.0.weight"
    with model.no_sync():
        model.backward(np.ones_like(model(x)))
    with pytest.raises(TypeError, match="module must be a minicnn.nn.Module"):
        dist.DistributedDataParallel(lambda x: x)


# -- the sampler ------------------------------------------------------------------------------------------
CASES = [(10, 3, False), (10, 3, True), (12, 4, False), (12, 4, True), (7, 7, False), (8, 7, True), (9, 2, False),
         (1, 1, False), (5, 4, True)]


@pytest.mark.parametrize("n, replicas, drop_last", CASES)
def test_sampler_matches_pytorch_without_shuffle(n, replicas, drop_last):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DistributedSampler as TorchSampler
    for rank in range(replicas):
        ours = dist.DistributedSampler(n, num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last)
        theirs = TorchSampler(range(n), num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last)
        assert len(ours) == len(theirs)
        assert list(map(int, ours)) == list(theirs), (rank, torch.__version__)


@pytest.mark.parametrize("n, replicas, drop_last", CASES)
def test_sampler_covers_every_sample_once_per_epoch(n, replicas, drop_last):
    for epoch in (0, 1, 5):
        parts = []
        for rank in range(replicas):
            s = dist.DistributedSampler(n, num_replicas=replicas, rank=rank, seed=4, drop_last=drop_last)
            s.set_epoch(epoch)
            parts.append(s.indices())
        assert len({len(p) for p in parts}) == 1
        order = np.stack(parts, axis=1).ravel()
        counts = np.bincount(order, minlength=n)
        if drop_last:
            assert counts.max() <= 1 and counts.sum() == n // replicas * replicas
        else:
            assert counts.min() == 1 or (counts.min() >= 1 and order.size > n)
            assert order.size == -(-n // replicas) * replicas
            assert np.array_equal(order[n:], order[:order.size - n])  # padding repeats the start
            assert np.array_equal(np.sort(order[:n]), np.arange(n))


def test_sampler_shuffle_is_seeded_and_changes_with_the_epoch():
    def order(seed, epoch):
        s = dist.DistributedSampler(50, num_replicas=2, rank=0, seed=seed)
        s.set_epoch(epoch)
        return s.indices()
    assert np.array_equal(order(0, 3), order(0, 3))
    assert not np.array_equal(order(0, 0), order(0, 1))
    assert not np.array_equal(order(0, 1), order(1, 0))  # the epoch is mixed in, not added
    assert not np.array_equal(order(0, 0), np.arange(0, 50, 2))


def test_sampler_defaults_to_the_world_and_rejects_bad_input():
    s = dist.DistributedSampler(range(6))
    assert (s.num_replicas, s.rank, len(s)) == (1, 0, 6)
    with pytest.raises(ValueError, match="3 samples, fewer than the 4 ranks"):
        dist.DistributedSampler(3, num_replicas=4, rank=0)
    with pytest.raises(ValueError, match="rank must be < num_replicas"):
        dist.DistributedSampler(8, num_replicas=2, rank=2)
    with pytest.raises(TypeError, match="num_replicas must be an int"):
        dist.DistributedSampler(8, num_replicas=2.0, rank=0)
    with pytest.raises(ValueError, match="dataset_len must be >= 1"):
        dist.DistributedSampler(0, num_replicas=1, rank=0)
    with pytest.raises(TypeError, match="shuffle must be a bool"):
        dist.DistributedSampler(8, num_replicas=1, rank=0, shuffle="yes")
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        s.set_epoch(-1)


def test_dataloader_takes_a_sampler():
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1) * np.ones((1, 2, 2), np.uint8)
    labels = np.arange(10)
    sampler = dist.DistributedSampler(10, num_replicas=3, rank=2, seed=1)
    loader = DataLoader(images, labels, batch_size=3, sampler=sampler)
    assert len(loader) == 2 and loader.num_samples == 4
    batches = list(loader)
    assert [len(y) for _, y in batches] == [3, 1]
    seen = np.concatenate([y for _, y in batches])
    assert np.array_equal(seen, sampler.indices())
    assert np.allclose(np.concatenate([x for x, _ in batches])[:, 0, 0, 0] * 255, seen)
    with pytest.raises(ValueError, match="excludes shuffle=True"):
        DataLoader(images, labels, sampler=sampler, shuffle=True)
    with pytest.raises(ValueError, match="sampler yielded an index outside"):
        list(DataLoader(images, labels, sampler=[3, 10]))


# -- batch norm ------------------------------------------------------------------------------------------
def test_sync_batchnorm_is_batchnorm_in_a_world_of_one():
    x = np.random.default_rng(2).standard_normal((4, 3, 5, 5)) * 3 + 1
    dy = np.random.default_rng(3).standard_normal(x.shape)
    ref, bn = nn.BatchNorm2d(3, dtype=np.float64), nn.SyncBatchNorm(3, dtype=np.float64)
    for _ in range(2):
        np.testing.assert_array_equal(bn(x), ref(x))
        np.testing.assert_array_equal(bn.backward(dy), ref.backward(dy))
    np.testing.assert_array_equal(bn.weight.grad, ref.weight.grad)
    np.testing.assert_array_equal(bn.running_var, ref.running_var)
    ref.eval()
    bn.eval()
    np.testing.assert_array_equal(bn(x), ref(x))
    assert dist.sync_batchnorm_stats(bn) is bn


def test_convert_sync_batchnorm_keeps_parameters_buffers_and_mode():
    net = tiny_net()
    net.eval()
    old = net[1]
    old.running_mean = np.array([1.0, 2.0, 3.0])
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    assert converted is net and type(net[1]) is nn.SyncBatchNorm
    assert net[1].weight is old.weight and net[1].bias is old.bias
    np.testing.assert_array_equal(net[1].running_mean, [1.0, 2.0, 3.0])
    assert not net[1].training and net[1].eps == old.eps and net[1].dtype == np.float64
    assert list(net.state_dict()) == list(tiny_net().state_dict())
    single = nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm2d(2, affine=False, momentum=None))
    assert type(single) is nn.SyncBatchNorm and single.weight is None and single.momentum is None
    with pytest.raises(TypeError, match="module must be a minicnn.nn.Module"):
        nn.SyncBatchNorm.convert_sync_batchnorm("bn")


def test_sync_batchnorm_stats_rejects_a_non_module():
    with pytest.raises(TypeError, match="model must be a minicnn.nn.Module"):
        dist.sync_batchnorm_stats(None)


def test_distributed_is_exported():
    assert minicnn.distributed is dist and nn.SyncBatchNorm.__name__ == "SyncBatchNorm"


def test_functional_batch_norm_stats():
    import minicnn.functional as F
    x = (np.random.default_rng(5).standard_normal((3, 4, 5, 6)) * 2 + 3).astype(np.float32)
    mean, var = F.batch_norm_stats(x)
    assert mean.dtype == var.dtype == np.float64 and mean.shape == (4,)
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(var, x.astype(np.float64).var(axis=(0, 2, 3)), rtol=1e-10)
    mean2, var2 = F.batch_norm_stats(x[:, :, 0, 0])  # (N, C)
    np.testing.assert_allclose(var2, x[:, :, 0, 0].astype(np.float64).var(axis=0), rtol=1e-10)
    with pytest.raises(ValueError, match="x must be"):
        F.batch_norm_stats(np.zeros(3))
    with pytest.raises(ValueError, match="at least one value per channel"):
        F.batch_norm_stats(np.zeros((0, 3, 2, 2)))
    with pytest.raises(TypeError, match="x must be"):
        F.batch_norm_stats([[1.0]])


@needs_mpi
def test_launcher_of_another_mpi_is_an_error():
    """A launcher that announced 2 ranks while mpi4py sees a world of one (two MPI installations)."""
    done = run_python("import mpi4py.MPI, minicnn.distributed as d; d.init()", PMI_SIZE="2", PMI_RANK="0")
    assert done.returncode != 0 and "different MPI installations" in done.stderr, done.stderr


def test_ctrl_c_as_a_reduction_returns_is_seen_by_every_rank_at_the_same_check(monkeypatch):
    """A SIGINT that arrives while a rank waits in ``interrupted()``'s reduction is handled as the call
    returns; every rank must still get the reduction's answer (False here: the other rank sent 0),
    and all see True at the next check. Reading the reduced buffer itself, which the handler had just
    set, made one rank alone stop, and a 2-rank job hung."""
    import signal

    class FakeMPI:
        IN_PLACE, SUM, MAX, MIN = object(), "sum", "max", "min"

    class OtherRankSendsZero:  # a world of two; the SIGINT comes as this rank's call returns
        def Allreduce(self, _, buf, op):
            buf[...] = np.maximum(buf, 0)
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)

    monkeypatch.setattr(dist._state, "initialized", True)
    monkeypatch.setattr(dist._state, "world_size", 2)
    monkeypatch.setattr(dist._state, "comm", OtherRankSendsZero())
    monkeypatch.setattr(dist._state, "MPI", FakeMPI)
    with dist.deferred_interrupts() as interrupted:
        assert interrupted() is False  # what the other rank, which sent 0, sees too
        assert interrupted() is True
