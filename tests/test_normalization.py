"""BatchNorm1d, LayerNorm, GroupNorm, InstanceNorm2d: forward against the loop references (naive.py),
backward against central differences in float64 (gradcheck), PyTorch when installed (values,
gradients, running statistics), accuracy at a large offset, and bad input."""
import numpy as np
import pytest

import naive
import minicnn.functional as F
from minicnn import gradcheck, nn

TOL = {np.float32: dict(rtol=1e-5, atol=2e-5), np.float64: dict(rtol=1e-11, atol=1e-12)}


def _randomize(layer, rng):
    for p in layer.parameters():
        p.data[...] = rng.standard_normal(p.shape)
    return layer


# -- forward against the references ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,ns", [((4, 6), 6), ((2, 3, 5), (5,)), ((2, 3, 4, 5), (3, 4, 5)), ((7, 1), 1)])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_reference(rng, dtype, shape, ns, affine):
    layer = _randomize(nn.LayerNorm(ns, elementwise_affine=affine, dtype=dtype), rng)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    y = layer(x)
    assert y.dtype == dtype and y.shape == x.shape
    ref = naive.layer_norm(x, np.atleast_1d(ns), None if not affine else layer.weight.data,
                           None if not affine else layer.bias.data)
    np.testing.assert_allclose(y, ref, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,groups", [((2, 6, 3, 4), 3), ((3, 4, 5), 1), ((2, 4), 4), ((1, 8, 2, 3), 2)])
def test_group_norm_matches_reference(rng, dtype, shape, groups):
    layer = _randomize(nn.GroupNorm(groups, shape[1], dtype=dtype), rng)
    x = (rng.standard_normal(shape) * 2 - 1).astype(dtype)
    np.testing.assert_allclose(layer(x), naive.group_norm(x, groups, layer.weight.data, layer.bias.data),
                               **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_instance_norm_is_group_norm_with_one_channel_per_group(rng, dtype):
    x = rng.standard_normal((3, 4, 5, 6)).astype(dtype)
    layer = nn.InstanceNorm2d(4, dtype=dtype)
    np.testing.assert_allclose(layer(x), naive.group_norm(x, 4), **TOL[dtype])
    layer = _randomize(nn.InstanceNorm2d(4, affine=True, dtype=dtype), rng)
    np.testing.assert_allclose(layer(x), naive.group_norm(x, 4, layer.weight.data, layer.bias.data), **TOL[dtype])


def test_statistics_accurate_at_a_large_offset(rng):
    # float32 rows with |mean| / std = 1e4: the shifted one-pass sums keep the variance accurate
    x = (1e4 + rng.standard_normal((4, 4096))).astype(np.float32)
    ref = naive.layer_norm(x, (4096,))
    np.testing.assert_allclose(F.layer_norm(x, 4096), ref, atol=2e-3)
    x4 = x.reshape(4, 4, 32, 32)
    np.testing.assert_allclose(F.group_norm(x4, 2), naive.group_norm(x4, 2), atol=2e-3)


def test_constant_rows_give_the_bias(rng):
    x = np.full((2, 3, 4), 7.0)
    ln = _randomize(nn.LayerNorm(4, dtype=np.float64), rng)
    np.testing.assert_allclose(ln(x), np.broadcast_to(ln.bias.data, x.shape))


def test_functional_bias_without_weight(rng):
    x = rng.standard_normal((3, 5))
    b = rng.standard_normal(5)
    np.testing.assert_allclose(F.layer_norm(x, (5,), None, b), naive.layer_norm(x, (5,), None, b), rtol=1e-12)
    y, ctx = F.layer_norm_forward(x, 5, None, b)
    dx, dw, db = F.layer_norm_backward(np.ones_like(x), ctx)
    assert dw is None
    np.testing.assert_allclose(db, np.full(5, 3.0))


# -- backward against the references (the fused row kernels: rows in pairs, an odd row, many rows) -------
def _ln_grads(x, dy, ns, w, b, **flags):
    y, ctx = F.layer_norm_forward(x, ns, w, b)
    flags.setdefault("dweight", True if w is None else np.zeros_like(w))
    flags.setdefault("dbias", True if b is None else np.zeros_like(b))
    dx, dw, db = F.layer_norm_backward(dy, ctx, **flags)
    return y, dx, dw, db


@pytest.mark.parametrize("rows", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("affine", ["both", "bias", "none"])
def test_layer_norm_backward_matches_reference(rng, rows, affine):
    x = rng.standard_normal((rows, 3, 7)) * 2 + 1
    dy = rng.standard_normal(x.shape)
    w = rng.standard_normal((3, 7)) if affine == "both" else None
    b = rng.standard_normal((3, 7)) if affine != "none" else None
    _, dx, dw, db = _ln_grads(x, dy, (3, 7), w, b)
    rdx, rdw, rdb = naive.layer_norm_backward(x, dy, (3, 7), w)
    np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-12)
    if w is not None:
        np.testing.assert_allclose(dw, rdw, rtol=1e-10, atol=1e-12)
    if b is not None:
        np.testing.assert_allclose(db, rdb, rtol=1e-10, atol=1e-12)
    # only the parameter gradients (no dx pass), only dx
    _, no_dx, dw2, db2 = _ln_grads(x, dy, (3, 7), w, b, dx=False)
    assert no_dx is None
    for got, ref, p in ((dw2, rdw, w), (db2, rdb, b)):
        if p is not None:
            np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    _, dx3, _, _ = _ln_grads(x, dy, (3, 7), w, b, dweight=False, dbias=False)
    np.testing.assert_allclose(dx3, rdx, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape,groups", [((3, 6, 4, 5), 3), ((5, 4, 7), 4), ((1, 2, 3, 3), 1)])
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_backward_matches_reference(rng, shape, groups, affine):
    x = rng.standard_normal(shape) * 2 - 1
    dy = rng.standard_normal(shape)
    C = shape[1]
    w = rng.standard_normal(C) if affine else None
    b = rng.standard_normal(C) if affine else None
    y, ctx = F.group_norm_forward(x, groups, w, b)
    dx, dw, db = F.group_norm_backward(dy, ctx, dweight=np.zeros(C) if affine else True,
                                       dbias=np.zeros(C) if affine else True)
    rdx, rdw, rdb = naive.group_norm_backward(x, dy, groups, w)
    np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-12)
    if affine:
        np.testing.assert_allclose(dw, rdw, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(db, rdb, rtol=1e-10, atol=1e-12)
        no_dx, dw2, db2 = F.group_norm_backward(dy, ctx, dx=False, dweight=np.zeros(C), dbias=np.zeros(C))
        assert no_dx is None
        np.testing.assert_allclose(dw2, rdw, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(db2, rdb, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine", [True, False])
def test_many_rows_split_across_threads(rng, dtype, affine):
    # above ELEMENTWISE_PARALLEL_MIN_SIZE values the rows are split into one range per thread: an odd
    # number of rows (a range with an odd row for LayerNorm's two-row pass, a count that is not a
    # multiple of the threads) and many short rows (InstanceNorm: 7 * 9 rows of 45 * 47 values)
    from minicnn._config import ELEMENTWISE_PARALLEL_MIN_SIZE as LIMIT
    tol = TOL[dtype] if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    x = (rng.standard_normal((7, 3, 90, 80)) * 3 + 2).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    assert x.size >= LIMIT
    ns = x.shape[1:]
    w = rng.standard_normal(ns).astype(dtype) if affine else None
    b = rng.standard_normal(ns).astype(dtype) if affine else None
    y, dx, dw, db = _ln_grads(x, dy, ns, w, b)
    np.testing.assert_allclose(y, naive.layer_norm(x, ns, w, b), **tol)
    rdx, rdw, rdb = naive.layer_norm_backward(x, dy, ns, w)
    np.testing.assert_allclose(dx, rdx, **tol)
    if affine:
        np.testing.assert_allclose(dw, rdw, **tol)
        np.testing.assert_allclose(db, rdb, **tol)
    x = (rng.standard_normal((7, 9, 45, 47)) * 3 + 2).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    assert x.size >= LIMIT
    layer = _randomize(nn.InstanceNorm2d(9, affine=affine, dtype=dtype), rng)
    wv = layer.weight.data if affine else None
    np.testing.assert_allclose(layer(x), naive.group_norm(x, 9, wv, None if not affine else layer.bias.data), **tol)
    rdx, rdw, rdb = naive.group_norm_backward(x, dy, 9, wv)
    np.testing.assert_allclose(layer.backward(dy), rdx, **tol)
    if affine:
        np.testing.assert_allclose(layer.weight.grad, rdw, **tol)
        np.testing.assert_allclose(layer.bias.grad, rdb, **tol)


# -- backward: central differences (float64) ------------------------------------------------------------
@pytest.mark.parametrize("make,shape", [
    (lambda: nn.LayerNorm((3, 4), dtype=np.float64), (2, 5, 3, 4)),
    (lambda: nn.LayerNorm(6, elementwise_affine=False, dtype=np.float64), (3, 6)),
    (lambda: nn.GroupNorm(2, 6, dtype=np.float64), (2, 6, 3, 2)),
    (lambda: nn.GroupNorm(3, 3, affine=False, dtype=np.float64), (2, 3, 5)),
    (lambda: nn.InstanceNorm2d(3, dtype=np.float64), (2, 3, 2, 3)),
    (lambda: nn.InstanceNorm2d(3, affine=True, track_running_stats=True, dtype=np.float64), (2, 3, 2, 3)),
    (lambda: nn.BatchNorm1d(4, dtype=np.float64), (5, 4)),
    (lambda: nn.BatchNorm1d(3, dtype=np.float64), (4, 3, 2)),
], ids=["ln", "ln-noaffine", "gn", "gn-noaffine", "in", "in-affine-track", "bn1d", "bn1d-3d"])
def test_gradcheck(rng, make, shape):
    layer = _randomize(make(), rng)
    x = rng.standard_normal(shape) * 2 + 0.5
    gradcheck(layer, (x,))
    if hasattr(layer, "running_mean") and layer.running_mean is not None:
        layer.eval()  # running statistics: constants
        gradcheck(layer, (x,))


def test_frozen_parameters_get_no_gradient(rng):
    for layer in (nn.LayerNorm(4, dtype=np.float64), nn.GroupNorm(2, 4, dtype=np.float64)):
        layer.weight.requires_grad = False
        x = rng.standard_normal((3, 4))
        layer(x)
        layer.backward(np.ones_like(x))
        assert not layer.weight.grad.any() and layer.bias.grad.any()


def test_parameter_gradients_accumulate(rng):
    layer = _randomize(nn.GroupNorm(2, 4, dtype=np.float64), rng)
    x, dy = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 4, 5))
    layer(x)
    layer.backward(dy)
    once = layer.weight.grad.copy()
    layer(x)
    layer.backward(dy)
    np.testing.assert_allclose(layer.weight.grad, 2 * once)


# -- bad input -------------------------------------------------------------------------------------------
def test_bad_input_names_the_argument(rng):
    with pytest.raises(ValueError, match="normalized_shape"):
        nn.LayerNorm((4, 5))(rng.standard_normal((2, 5, 4)))
    with pytest.raises(ValueError, match="normalized_shape"):
        F.layer_norm(rng.standard_normal(3), (2, 3))
    with pytest.raises(TypeError, match="normalized_shape"):
        nn.LayerNorm("4")
    with pytest.raises(ValueError, match="num_groups"):
        nn.GroupNorm(3, 4)
    with pytest.raises(ValueError, match="num_groups"):
        F.group_norm(rng.standard_normal((2, 4, 3)), 3)
    with pytest.raises(ValueError, match="num_channels"):
        nn.GroupNorm(2, 4)(rng.standard_normal((2, 6, 3)))
    with pytest.raises(ValueError, match="weight"):
        F.group_norm(rng.standard_normal((2, 4, 3)), 2, np.ones(3))
    with pytest.raises(ValueError, match="num_features"):
        nn.InstanceNorm2d(3)(rng.standard_normal((2, 4, 3, 3)))
    with pytest.raises(ValueError, match="x must be 4-D"):
        nn.InstanceNorm2d(3)(rng.standard_normal((2, 3, 3)))
    with pytest.raises(ValueError, match="x must be 2-D"):
        nn.BatchNorm1d(3)(rng.standard_normal((2, 3, 3, 3)))
    with pytest.raises(ValueError, match="more than 1 value"):
        F.instance_norm(rng.standard_normal((2, 3, 1)))
    with pytest.raises(ValueError, match="eps"):
        nn.LayerNorm(3, eps=0)
    layer = nn.LayerNorm(3)
    layer(rng.standard_normal((2, 3)))
    with pytest.raises(ValueError, match="dy"):
        layer.backward(np.ones((3, 2)))


# -- PyTorch ---------------------------------------------------------------------------------------------
def _torch_pair(torch, layer, tlayer, x, dy):
    y = layer(x)
    dx = layer.backward(dy)
    tx = torch.tensor(x, requires_grad=True)
    ty = tlayer(tx)
    ty.backward(torch.tensor(dy))
    return y, dx, ty.detach().numpy(), tx.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_against_pytorch(rng, dtype):
    torch = pytest.importorskip("torch")
    tdt = torch.float32 if dtype == np.float32 else torch.float64
    tol = dict(rtol=1e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    x = (rng.standard_normal((4, 6, 5, 3)) * 3 + 2).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    cases = [(nn.LayerNorm((5, 3), dtype=dtype), torch.nn.LayerNorm((5, 3), dtype=tdt)),
             (nn.GroupNorm(3, 6, dtype=dtype), torch.nn.GroupNorm(3, 6, dtype=tdt)),
             (nn.InstanceNorm2d(6, affine=True, track_running_stats=True, dtype=dtype),
              torch.nn.InstanceNorm2d(6, affine=True, track_running_stats=True, dtype=tdt)),
             (nn.InstanceNorm2d(6, momentum=None, track_running_stats=True, dtype=dtype),
              torch.nn.InstanceNorm2d(6, momentum=None, track_running_stats=True, dtype=tdt))]
    for layer, tlayer in cases:
        _randomize(layer, rng)
        with torch.no_grad():
            for p, tp in zip(layer.parameters(), tlayer.parameters()):
                tp[...] = torch.tensor(p.data)
        for mode in ("train", "eval"):
            getattr(layer, mode)()
            getattr(tlayer, mode)()
            for p in layer.parameters():
                p.zero_grad()
            tlayer.zero_grad()
            y, dx, ty, tdx = _torch_pair(torch, layer, tlayer, x, dy)
            np.testing.assert_allclose(y, ty, **tol)
            np.testing.assert_allclose(dx, tdx, **tol)
            for p, tp in zip(layer.parameters(), tlayer.parameters()):
                np.testing.assert_allclose(p.grad, tp.grad.numpy(), **tol)
            if getattr(layer, "running_mean", None) is not None:
                np.testing.assert_allclose(layer.running_mean, tlayer.running_mean.numpy(), **tol)
                np.testing.assert_allclose(layer.running_var, tlayer.running_var.numpy(), **tol)


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5)])
def test_batch_norm_1d_against_pytorch(rng, shape):
    torch = pytest.importorskip("torch")
    layer = _randomize(nn.BatchNorm1d(3, dtype=np.float64), rng)
    tlayer = torch.nn.BatchNorm1d(3, dtype=torch.float64)
    with torch.no_grad():
        tlayer.weight[...] = torch.tensor(layer.weight.data)
        tlayer.bias[...] = torch.tensor(layer.bias.data)
    x, dy = rng.standard_normal(shape) * 2 + 1, rng.standard_normal(shape)
    for mode in ("train", "eval"):
        getattr(layer, mode)()
        getattr(tlayer, mode)()
        y, dx, ty, tdx = _torch_pair(torch, layer, tlayer, x, dy)
        np.testing.assert_allclose(y, ty, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dx, tdx, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.running_var, tlayer.running_var.numpy(), rtol=1e-12)


def test_parallel_row_kernels_match_the_serial_ones(rng):
    # from ELEMENTWISE_PARALLEL_MIN_SIZE values on, rows are split across threads (per-range weight
    # gradient buffers); samples are independent, so halves of the batch (serial) must agree
    from minicnn._config import ELEMENTWISE_PARALLEL_MIN_SIZE as LIMIT
    x = rng.standard_normal((8, 4, 64, 65)).astype(np.float64)
    assert x.size >= LIMIT and x.size // 2 < LIMIT
    dy = rng.standard_normal(x.shape)
    for make in (lambda: nn.LayerNorm((4, 64, 65), dtype=np.float64), lambda: nn.GroupNorm(2, 4, dtype=np.float64),
                 lambda: nn.InstanceNorm2d(4, affine=True, dtype=np.float64),
                 lambda: nn.PReLU(4, dtype=np.float64), lambda: nn.PReLU(dtype=np.float64),
                 lambda: nn.Softmax(1), lambda: nn.LogSoftmax(-1)):
        big, half = make(), make()
        y, dx = big(x), big.backward(dy)
        for part in (slice(0, 4), slice(4, 8)):
            np.testing.assert_allclose(half(x[part]), y[part], rtol=1e-12, atol=1e-13)
            np.testing.assert_allclose(half.backward(dy[part]), dx[part], rtol=1e-12, atol=1e-13)
        for pb, ph in zip(big.parameters(), half.parameters()):
            np.testing.assert_allclose(pb.grad, ph.grad, rtol=1e-10)  # the halves' gradients accumulated


def test_batch_norm_parallel_kernels(rng):
    # above ELEMENTWISE_PARALLEL_MIN_SIZE values the batch-norm passes run across threads (channel
    # ranges for the sums, (n, c) rows for the elementwise passes)
    from minicnn._config import ELEMENTWISE_PARALLEL_MIN_SIZE as LIMIT
    x = rng.standard_normal((4, 8, 64, 65)) * 2 + 3
    assert x.size >= LIMIT
    layer = _randomize(nn.BatchNorm2d(8, dtype=np.float64), rng)
    y = layer(x)
    ref, means, variances = naive.batch_norm_train(x, layer.weight.data, layer.bias.data, 1e-5)
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-11)
    layer.backward(np.ones_like(x))
    gradcheck(layer, (x,), samples=12)
    layer.eval()
    gradcheck(layer, (x,), samples=12)
