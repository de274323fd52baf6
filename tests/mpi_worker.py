"""One rank of a multi-rank test, launched by tests/test_distributed.py as

    mpiexec -n WORLD python -m mpi4py tests/mpi_worker.py SCENARIO WORLD

Each scenario asserts on every rank and prints ``rank R: SCENARIO passed`` at the end; a failed
assertion on any rank ends the job with a nonzero status (``-m mpi4py`` aborts on an unhandled
exception). Small shapes: the point is the numerics and the protocol, not the speed.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import minicnn  # noqa: E402
import minicnn.distributed as dist  # noqa: E402
from minicnn import nn  # noqa: E402
from minicnn.data import DataLoader  # noqa: E402
from minicnn.optim import SGD, Adam  # noqa: E402

GLOBAL_BATCH = 12  # divisible by 2, 3, 4 and 6 ranks
STEPS = 4


def small_net(bn, dtype, seed):
    """conv - batch norm - ReLU - max pool - linear on (N, 2, 8, 8) input, 5 classes.

    The convolution has no bias: batch norm cancels it, so its true gradient is 0 and Adam would turn
    the rounding noise in it (float32: ~1e-8, above Adam's eps) into full-size steps of either sign."""
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1, bias=False, dtype=dtype, rng=rng),
        bn(4, dtype=dtype),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 5, dtype=dtype, rng=rng),
    )


def make_optimizer(name, params):
    if name == "sgd":
        return SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3)
    return Adam(params, lr=0.01)


def flat_state(model):
    """Every parameter and buffer of ``model``, concatenated as float64 (and the raw bytes)."""
    arrays = [np.asarray(a) for a in model.state_dict().values()]
    return np.concatenate([a.astype(np.float64).ravel() for a in arrays]), b"".join(a.tobytes() for a in arrays)


def relative_error(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def scenario_equivalence(rank, world):
    """N ranks with B/N samples each end where one process with the whole batch B ends, step by step."""
    assert GLOBAL_BATCH % world == 0
    local = GLOBAL_BATCH // world
    data_rng = np.random.default_rng(7)
    for dtype, tolerance in ((np.float64, 1e-10), (np.float32, 1e-5)):
        x_all = data_rng.standard_normal((STEPS * GLOBAL_BATCH, 2, 8, 8)).astype(dtype)
        y_all = data_rng.integers(0, 5, STEPS * GLOBAL_BATCH)
        for opt_name in ("sgd", "adam"):
            reference = small_net(nn.BatchNorm2d, dtype, seed=100)  # one process, the whole batch
            # Every rank builds its model from another seed: the wrapper must broadcast rank 0's.
            model = dist.DistributedDataParallel(small_net(nn.SyncBatchNorm, dtype, seed=100 + rank))
            ref_opt = make_optimizer(opt_name, reference.parameters())
            opt = make_optimizer(opt_name, model.parameters())
            ref_loss_fn, loss_fn = nn.CrossEntropyLoss(), nn.CrossEntropyLoss()
            start_err = relative_error(flat_state(model.module)[0], flat_state(reference)[0])
            assert start_err == 0.0, f"rank {rank}: parameters not broadcast from rank 0 ({start_err})"
            for step in range(STEPS):
                xb = x_all[step * GLOBAL_BATCH:(step + 1) * GLOBAL_BATCH]
                yb = y_all[step * GLOBAL_BATCH:(step + 1) * GLOBAL_BATCH]
                reference.zero_grad()
                ref_loss_fn(reference(xb), yb)
                reference.backward(ref_loss_fn.backward())
                ref_opt.step()

                mine = slice(rank * local, (rank + 1) * local)
                model.zero_grad()
                loss_fn(model(xb[mine]), yb[mine])
                model.backward(loss_fn.backward())
                opt.step()

                values, raw = flat_state(model.module)
                err = relative_error(values, flat_state(reference)[0])
                assert err < tolerance, (f"rank {rank} {np.dtype(dtype).name} {opt_name} step {step}: relative "
                                         f"error {err:.3g} against one process (tolerance {tolerance})")
                everyone = dist.all_gather_object(raw)
                assert all(r == everyone[0] for r in everyone), \
                    f"{np.dtype(dtype).name} {opt_name} step {step}: parameters differ between ranks"
            # Every trained parameter's gradient is a view of the one buffer of its dtype.
            (flat,) = model.gradient_buffers
            for p in model.parameters():
                assert np.shares_memory(p.grad, flat)
            assert model.allreduce_calls == STEPS


def scenario_syncbn_layer(rank, world):
    """SyncBatchNorm on each rank's slice = BatchNorm2d on the whole batch: outputs, input gradients,
    running statistics, and the parameter gradients summed over the ranks."""
    local = GLOBAL_BATCH // world
    mine = slice(rank * local, (rank + 1) * local)
    data = np.random.default_rng(11)
    for affine, momentum in ((True, 0.1), (False, None), (True, None)):
        x = data.standard_normal((GLOBAL_BATCH, 3, 4, 5)) * 2.0 + 0.5
        dy = data.standard_normal(x.shape)
        ref = nn.BatchNorm2d(3, affine=affine, momentum=momentum, dtype=np.float64)
        bn = nn.SyncBatchNorm(3, affine=affine, momentum=momentum, dtype=np.float64)
        if affine:
            for layer in (ref, bn):
                layer.weight.data[:] = [0.5, -1.5, 2.0]
                layer.bias.data[:] = [0.1, 0.2, -0.3]
        for _ in range(2):
            y_ref, y = ref(x), bn(x[mine])
            dx_ref, dx = ref.backward(dy), bn.backward(dy[mine])
        np.testing.assert_allclose(y, y_ref[mine], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dx, dx_ref[mine], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(bn.running_mean, ref.running_mean, rtol=1e-12)
        np.testing.assert_allclose(bn.running_var, ref.running_var, rtol=1e-12)
        assert int(bn.num_batches_tracked) == int(ref.num_batches_tracked) == 2
        if affine:
            for p, p_ref in ((bn.weight, ref.weight), (bn.bias, ref.bias)):
                np.testing.assert_allclose(dist.all_reduce(p.grad.copy()), p_ref.grad, rtol=1e-10)
        bn.eval()
        ref.eval()
        np.testing.assert_allclose(bn(x[mine]), ref(x)[mine], rtol=1e-12, atol=1e-12)


def scenario_frozen(rank, world):
    """A frozen parameter is left out of the gradient buffer and keeps its value."""
    net = small_net(nn.BatchNorm2d, np.float64, seed=5)
    net[0].weight.requires_grad = False
    model = dist.DistributedDataParallel(net)
    (flat,) = model.gradient_buffers
    assert flat.size == sum(p.data.size for p in net.parameters()) - net[0].weight.data.size
    before = net[0].weight.data.copy()
    x = np.random.default_rng(rank).standard_normal((4, 2, 8, 8))
    loss_fn = nn.CrossEntropyLoss()
    model.zero_grad()
    loss_fn(model(x), np.arange(4) % 5)
    model.backward(loss_fn.backward())
    SGD([p for p in model.parameters() if p.requires_grad], lr=0.1).step()
    assert np.array_equal(net[0].weight.data, before)
    # (the batch norm's running statistics stay local: compare the parameters only)
    everyone = dist.all_gather_object(b"".join(p.data.tobytes() for p in net.parameters()))
    assert all(r == everyone[0] for r in everyone)


def scenario_batchnorm_stats(rank, world):
    """sync_batchnorm_stats makes the local running statistics equal to their average."""
    bn = nn.BatchNorm2d(3, dtype=np.float64)
    bn(np.random.default_rng(rank).standard_normal((4, 3, 2, 2)) + rank)
    mine = (bn.running_mean.copy(), bn.running_var.copy())
    gathered = dist.all_gather_object(mine)
    dist.sync_batchnorm_stats(bn)
    assert np.allclose(bn.running_mean, np.mean([g[0] for g in gathered], axis=0), rtol=1e-14)
    assert np.allclose(bn.running_var, np.mean([g[1] for g in gathered], axis=0), rtol=1e-14)
    everyone = dist.all_gather_object((bn.running_mean.tobytes(), bn.running_var.tobytes()))
    assert all(e == everyone[0] for e in everyone)


def scenario_sampler(rank, world):
    """Over all ranks, each epoch covers every sample once (plus the padding, or minus the dropped)."""
    for n, drop_last, shuffle in ((10, False, True), (11, False, True), (11, True, True), (9, False, False),
                                  (world, False, True), (world + 1, True, False)):
        sampler = dist.DistributedSampler(n, shuffle=shuffle, seed=3, drop_last=drop_last)
        orders = []
        for epoch in (0, 1):
            sampler.set_epoch(epoch)
            labels = np.arange(n)
            loader = DataLoader(np.zeros((n, 1, 2, 2), np.float32), labels, batch_size=2, sampler=sampler)
            seen = np.concatenate([y for _, y in loader])
            assert np.array_equal(seen, sampler.indices())
            everyone = dist.all_gather_object(seen)
            assert len({len(e) for e in everyone}) == 1, "ranks got different numbers of samples"
            interleaved = np.stack(everyone, axis=1).ravel()  # the global order: rank r took [r::world]
            counts = np.bincount(interleaved, minlength=n)
            if drop_last:
                assert counts.max() == 1 and counts.sum() == (n // world) * world
            else:
                assert counts.min() >= 1 and counts.sum() == -(-n // world) * world
                pad = counts.sum() - n
                assert np.array_equal(interleaved[n:], interleaved[:pad]), "padding must repeat the start"
            orders.append(interleaved)
        if shuffle and n > 3:
            assert not np.array_equal(orders[0], orders[1]), "set_epoch must change the shuffle"


def expect_error_on_every_rank(rank, fn, *fragments):
    try:
        fn()
    except ValueError as e:
        message = str(e)
        for fragment in fragments:
            assert fragment in message, f"rank {rank}: {fragment!r} not in the message {message!r}"
        return message
    raise AssertionError(f"rank {rank}: no ValueError raised")


def scenario_mismatch(rank, world):
    """Different models on different ranks: the same clear error on every rank."""
    dtype = np.float32

    def shapes():
        out = 5 if rank == 0 else 6
        rng = np.random.default_rng(0)
        return nn.Sequential(nn.Flatten(), nn.Linear(8, out, dtype=dtype, rng=rng))

    def dtypes():
        return nn.Sequential(nn.Linear(8, 5, dtype=np.float64 if rank == world - 1 else np.float32))

    def extra():
        layers = [nn.Linear(8, 5)] + ([nn.BatchNorm2d(2)] if rank == world - 1 else [])
        return nn.Sequential(*layers)

    expect_error_on_every_rank(rank, lambda: dist.DistributedDataParallel(shapes()), "different models",
                               "'1.weight'", "(5, 8)", "(6, 8)", "rank 1")
    expect_error_on_every_rank(rank, lambda: dist.DistributedDataParallel(dtypes()), "float64", "float32",
                               f"rank {world - 1}")
    expect_error_on_every_rank(rank, lambda: dist.DistributedDataParallel(extra()), "'1.running_mean'",
                               f"exists on rank {world - 1} but not on rank 0")
    dist.barrier()  # the job is still usable after the errors
    dist.DistributedDataParallel(nn.Linear(3, 2, rng=rank))


def scenario_small_dataset(rank, world):
    """A world larger than the data set: an error on every rank."""
    expect_error_on_every_rank(rank, lambda: dist.DistributedSampler(world - 1), f"{world - 1} samples",
                               f"{world} ranks")


def scenario_abort(rank, world):
    """Rank 1 fails while rank 0 waits in a collective that rank 1 never reaches."""
    dist.barrier()
    if rank == 1:
        raise RuntimeError("rank 1 fails on purpose")
    dist.barrier()  # never completes: the abort must end this rank
    time.sleep(600)


def scenario_abort_context(rank, world):
    """The same without ``-m mpi4py``: abort_on_exception() ends every rank."""
    with dist.abort_on_exception():
        scenario_abort(rank, world)


def scenario_abort_hook(rank, world):
    """The same through install_excepthook(): the exception escapes the script."""
    dist.install_excepthook()
    scenario_abort(rank, world)


SCENARIOS = {name[len("scenario_"):]: fn for name, fn in globals().items() if name.startswith("scenario_")}


def main():
    scenarios, expected_world = sys.argv[1].split(","), int(sys.argv[2])
    rank, world = dist.init()
    assert world == expected_world, (
        f"expected a world of {expected_world} ranks, got {world}: mpiexec and mpi4py belong to different "
        f"MPI installations?")
    minicnn.set_num_threads(1)
    for name in scenarios:
        SCENARIOS[name](rank, world)
        dist.barrier()
        print(f"rank {rank}: {name} passed", flush=True)


if __name__ == "__main__":
    main()
