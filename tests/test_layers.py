"""Linear, ReLU, Flatten, Dropout, BatchNorm2d: forward against textbook references, backward against
central differences (minicnn.gradcheck and naive.numerical_grad), PyTorch semantics, bad input."""
import numpy as np
import pytest

import naive
from minicnn import gradcheck, nn
import minicnn.functional as F
from minicnn.nn.module import BackwardBeforeForwardError


# ---------------------------------------------------------------------------------------------
# Linear
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_forward_matches_reference(rng, dtype):
    for _ in range(10):
        N, I, O = (int(v) for v in rng.integers(1, 7, size=3))
        bias = bool(rng.integers(2))
        layer = nn.Linear(I, O, bias=bias, dtype=dtype, rng=rng)
        x = rng.standard_normal((N, I)).astype(dtype)
        y = layer(x)
        assert y.dtype == dtype and y.shape == (N, O)
        ref = naive.linear(x, layer.weight.data, None if layer.bias is None else layer.bias.data)
        np.testing.assert_allclose(y, ref, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


def test_linear_init_like_pytorch(rng):
    layer = nn.Linear(400, 120, rng=rng)
    bound = 1 / np.sqrt(400)  # kaiming_uniform(a=sqrt(5)) gives the same bound as the bias
    assert layer.weight.shape == (120, 400) and layer.bias.shape == (120,)
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.weight.data).max() > 0.95 * bound
    assert np.abs(layer.bias.data).max() <= bound
    assert layer.weight.dtype == np.float32
    assert nn.Linear(3, 2, rng=5).weight.data.tolist() == nn.Linear(3, 2, rng=5).weight.data.tolist()


def test_linear_gradcheck_random_shapes(rng):
    for _ in range(6):
        N, I, O = (int(v) for v in rng.integers(1, 6, size=3))
        layer = nn.Linear(I, O, bias=bool(rng.integers(2)), dtype=np.float64, rng=rng)
        assert gradcheck(layer, rng.standard_normal((N, I)))


def test_linear_backward_against_numerical_grad(rng):
    layer = nn.Linear(4, 3, dtype=np.float64, rng=rng)
    x = rng.standard_normal((5, 4))
    dy = rng.standard_normal((5, 3))
    layer(x)
    dx = layer.backward(dy)
    f = lambda: float(np.sum(layer(x) * dy))
    np.testing.assert_allclose(dx, naive.numerical_grad(f, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(layer.weight.grad, naive.numerical_grad(f, layer.weight.data), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(layer.bias.grad, dy.sum(0), rtol=1e-12)
    # gradients accumulate until zero_grad
    layer(x)
    layer.backward(dy)
    np.testing.assert_allclose(layer.bias.grad, 2 * dy.sum(0), rtol=1e-12)
    layer.zero_grad()
    assert not layer.weight.grad.any()


@pytest.mark.parametrize("threads", [1, 2])
def test_linear_row_blocks_match_reference(rng, threads):
    # The kernels split the rows into one block per thread; check every block count and odd sizes.
    import numba

    import minicnn

    before = numba.get_num_threads()
    minicnn.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        for N in (1, 2, 3, 37):
            for bias in (True, False):
                layer = nn.Linear(13, 7, bias=bias, dtype=np.float64, rng=rng)
                x = rng.standard_normal((N, 13))
                dy = rng.standard_normal((N, 7))
                ref = naive.linear(x, layer.weight.data, None if layer.bias is None else layer.bias.data)
                np.testing.assert_allclose(layer(x), ref, rtol=1e-12, atol=1e-12)
                layer.weight.grad[:] = 1.0  # backward adds into the gradient
                dx = layer.backward(dy)
                np.testing.assert_allclose(dx, dy @ layer.weight.data, rtol=1e-12, atol=1e-12)
                np.testing.assert_allclose(layer.weight.grad, 1.0 + dy.T @ x, rtol=1e-12, atol=1e-12)
                if bias:
                    np.testing.assert_allclose(layer.bias.grad, dy.sum(0), rtol=1e-12, atol=1e-12)
    finally:
        minicnn.set_num_threads(before)


def test_linear_errors(rng):
    layer = nn.Linear(4, 3)
    with pytest.raises(BackwardBeforeForwardError, match="needs a forward pass"):
        layer.backward(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"2-D \(N, in_features\)"):
        layer(np.zeros((2, 2, 4), np.float32))
    with pytest.raises(ValueError, match=r"in_features=4.*\(2, 5\)"):
        layer(np.zeros((2, 5), np.float32))
    with pytest.raises(TypeError, match="floating-point"):
        layer(np.zeros((2, 4), np.int64))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        layer([[1.0, 2.0, 3.0, 4.0]])
    y = layer(np.zeros((2, 4), np.float64))  # cast to the layer's dtype
    assert y.dtype == np.float32
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(2, 3\)"):
        layer.backward(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="in_features must be >= 1"):
        nn.Linear(0, 3)
    with pytest.raises(TypeError, match="dtype"):
        nn.Linear(2, 3, dtype=np.int32)
    assert repr(nn.Linear(4, 3, bias=False)) == "Linear(in_features=4, out_features=3, bias=False)"


# ---------------------------------------------------------------------------------------------
# ReLU
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_forward_backward(rng, dtype):
    relu = nn.ReLU()
    for shape in [(7,), (3, 5), (2, 3, 4, 5), (1, 1, 1, 1)]:
        x = rng.standard_normal(shape).astype(dtype)
        y = relu(x)
        assert y.dtype == dtype
        np.testing.assert_array_equal(y, np.where(x > 0, x, 0))
        dy = rng.standard_normal(shape).astype(dtype)
        np.testing.assert_array_equal(relu.backward(dy), np.where(x > 0, dy, 0))
        np.testing.assert_array_equal(F.relu(x), y)
        y2, ctx = F.relu_forward(x)
        np.testing.assert_array_equal(F.relu_backward(dy, ctx), np.where(x > 0, dy, 0))


def test_relu_nan_zero_and_noncontiguous():
    relu = nn.ReLU()
    x = np.array([np.nan, 0.0, -0.0, -1.0, 2.0, np.inf, -np.inf])
    y = relu(x)
    assert np.isnan(y[0]) and y[1:].tolist() == [0, 0, 0, 2, np.inf, 0]
    np.testing.assert_array_equal(relu.backward(np.ones_like(x)), [0, 0, 0, 0, 1, 1, 0])
    x = np.arange(-6.0, 6.0).reshape(3, 4).T  # not C-contiguous
    np.testing.assert_array_equal(relu(x), np.maximum(x, 0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_large_arrays_parallel_path(rng, dtype):
    from minicnn._config import ELEMENTWISE_PARALLEL_MIN_SIZE as PARALLEL_MIN_SIZE

    relu = nn.ReLU()
    x = rng.standard_normal(PARALLEL_MIN_SIZE + 1001).astype(dtype).reshape(-1, 1, 1)  # odd size: uneven chunks
    x[::997] = np.nan
    x[1::991] = 0.0
    y = relu(x)
    np.testing.assert_array_equal(y, np.where(np.isnan(x), x, np.maximum(x, 0)))
    dy = rng.standard_normal(x.shape).astype(dtype)
    np.testing.assert_array_equal(relu.backward(dy), np.where(x > 0, dy, 0))


def test_relu_gradcheck(rng):
    for shape in [(4, 3), (2, 3, 4, 2)]:
        x = rng.standard_normal(shape)
        x[np.abs(x) < 1e-3] = 0.5  # stay away from the kink
        assert gradcheck(nn.ReLU(), x)


def test_relu_errors():
    relu = nn.ReLU()
    with pytest.raises(BackwardBeforeForwardError):
        relu.backward(np.ones(3))
    with pytest.raises(TypeError, match="floating-point"):
        relu(np.arange(3))
    relu(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(2, 3\)"):
        relu.backward(np.ones((3, 2), np.float32))
    with pytest.raises(ValueError, match="dy must have the output's shape"):
        F.relu_backward(np.ones(3), F.relu_forward(np.ones(4))[1])
    assert repr(relu) == "ReLU()"


# ---------------------------------------------------------------------------------------------
# Flatten
def test_flatten_shapes_like_pytorch(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    cases = {(1, -1): (2, 60), (0, -1): (120,), (2, 3): (2, 3, 20), (-3, -2): (2, 12, 5), (1, 1): (2, 3, 4, 5)}
    for (s, e), shape in cases.items():
        f = nn.Flatten(s, e)
        y = f(x)
        assert y.shape == shape
        np.testing.assert_array_equal(y.reshape(-1), x.reshape(-1))
        dy = rng.standard_normal(shape)
        np.testing.assert_array_equal(f.backward(dy), dy.reshape(x.shape))
    assert gradcheck(nn.Flatten(), x)


def test_flatten_errors():
    f = nn.Flatten()
    with pytest.raises(BackwardBeforeForwardError):
        f.backward(np.ones(3))
    with pytest.raises(ValueError, match="out of range for a 1-D input"):
        f(np.ones(3))
    with pytest.raises(ValueError, match="must not come after"):
        nn.Flatten(2, 1)(np.ones((2, 3, 4)))
    with pytest.raises(TypeError, match="start_dim must be an int"):
        nn.Flatten(1.0)
    with pytest.raises(TypeError, match="floating-point"):
        f(np.ones((2, 3), dtype=np.int32))
    f(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(2, 12\)"):
        f.backward(np.ones((2, 3, 4)))
    assert repr(f) == "Flatten(start_dim=1, end_dim=-1)"


# ---------------------------------------------------------------------------------------------
# Dropout
def test_dropout_statistics_and_scaling():
    d = nn.Dropout(0.3, rng=0)
    x = np.ones((200, 500), np.float32)
    y = d(x)
    assert y.dtype == np.float32
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    dy = np.full_like(x, 2.0)
    np.testing.assert_allclose(d.backward(dy), np.where(kept, 2 / 0.7, 0), rtol=1e-6)
    assert abs(y.mean() - 1.0) < 0.01  # inverted dropout keeps the expectation


def test_dropout_seeded_and_eval_identity(rng):
    x = rng.standard_normal((4, 6))
    a, b = nn.Dropout(0.5, rng=3), nn.Dropout(0.5, rng=3)
    np.testing.assert_array_equal(a(x), b(x))
    assert not np.array_equal(a(x), a(x))  # the generator advances: a new mask every forward
    a.eval()
    np.testing.assert_array_equal(a(x), x)
    np.testing.assert_array_equal(a.backward(x * 2), x * 2)
    a.train()
    import minicnn
    minicnn.manual_seed(11)
    first = nn.Dropout(0.5)(x)
    minicnn.manual_seed(11)
    np.testing.assert_array_equal(nn.Dropout(0.5)(x), first)


def test_dropout_p_zero_and_one(rng):
    x = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(nn.Dropout(0.0)(x), x)
    d = nn.Dropout(1.0)
    assert not d(x).any() and not d.backward(x).any()


def test_dropout_gradcheck_with_replayed_mask(rng):
    """Train-mode dropout is a fixed linear map once its mask is fixed: replay the same generator."""
    d = nn.Dropout(0.4)

    def fn(x):
        d.rng = np.random.default_rng(7)
        return d(x), d.backward

    assert gradcheck(fn, rng.standard_normal((3, 5)))
    # in eval mode it is deterministic by itself
    assert gradcheck(nn.Dropout(0.4).eval(), rng.standard_normal((3, 5)))


def test_dropout_errors():
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got -0.1"):
        nn.Dropout(-0.1)
    with pytest.raises(TypeError, match="p must be a number"):
        nn.Dropout("0.5")
    with pytest.raises(TypeError, match="rng"):
        nn.Dropout(0.5, rng="seed")
    d = nn.Dropout()
    with pytest.raises(BackwardBeforeForwardError):
        d.backward(np.ones(3))
    with pytest.raises(TypeError, match="floating-point"):
        d(np.ones(3, dtype=np.int8))
    d(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(2, 3\)"):
        d.backward(np.ones(6))
    assert repr(d) == "Dropout(p=0.5)"


# ---------------------------------------------------------------------------------------------
# BatchNorm2d
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_matches_reference(rng, dtype):
    for _ in range(8):
        N, C, H, W = (int(v) for v in rng.integers(1, 5, size=4))
        if N * H * W < 2:
            N = 2
        x = (rng.standard_normal((N, C, H, W)) * 3 + 5).astype(dtype)
        gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
        ref, m_ref, v_ref = naive.batch_norm_train(x, gamma, beta, 1e-5)
        running_mean, running_var = np.zeros(C), np.ones(C)
        y = F.batch_norm(x, running_mean, running_var, gamma, beta, training=True, momentum=1.0)
        count = N * H * W
        np.testing.assert_allclose(running_mean, m_ref, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(running_var, v_ref * count / (count - 1), rtol=1e-9, atol=1e-10)
        tol = 1e-4 if dtype == np.float32 else 1e-10
        np.testing.assert_allclose(y, ref, rtol=tol, atol=tol)
        bn = nn.BatchNorm2d(C, dtype=dtype)
        bn.weight.data[:], bn.bias.data[:] = gamma, beta
        np.testing.assert_allclose(bn(x), ref, rtol=tol, atol=tol)


def test_batch_norm_backward_against_numerical(rng):
    x = rng.standard_normal((3, 2, 2, 3))
    gamma = rng.standard_normal(2)
    dy = rng.standard_normal(x.shape)

    def f():
        return float(np.sum(F.batch_norm(x, None, None, gamma, training=True) * dy))

    _, ctx = F.batch_norm_forward(x, None, None, gamma, training=True)
    dx, dgamma, dbeta = F.batch_norm_backward(dy, ctx)
    assert dbeta is None  # no bias in the forward
    np.testing.assert_allclose(dx, naive.numerical_grad(f, x), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dgamma, naive.numerical_grad(f, gamma), rtol=1e-5, atol=1e-7)


def _random_bn(rng, C, **kwargs):
    bn = nn.BatchNorm2d(C, dtype=np.float64, **kwargs)
    if bn.affine:
        bn.weight.data[:] = rng.standard_normal(C)
        bn.bias.data[:] = rng.standard_normal(C)
    if bn.track_running_stats:
        bn.running_mean[:] = rng.standard_normal(C)
        bn.running_var[:] = rng.uniform(0.5, 2, C)
    return bn


def test_batchnorm_gradcheck_train_and_eval(rng):
    for _ in range(4):
        N, C, H, W = (int(v) for v in rng.integers(1, 4, size=4))
        N += 1
        for affine in (True, False):
            bn = _random_bn(rng, C, affine=affine)
            x = rng.standard_normal((N, C, H, W)) * 2 + 1
            running = bn.running_mean.copy(), bn.running_var.copy()
            assert gradcheck(bn, x)  # training mode: statistics depend on x
            # gradcheck restored the running statistics it updated many times
            np.testing.assert_array_equal(bn.running_mean, running[0])
            np.testing.assert_array_equal(bn.running_var, running[1])
            assert int(bn.num_batches_tracked) == 0
            bn.eval()
            assert gradcheck(bn, x)
    # no running statistics: batch statistics in both modes
    bn = _random_bn(rng, 2, track_running_stats=False).eval()
    assert gradcheck(bn, rng.standard_normal((2, 2, 2, 2)))


def test_batchnorm_running_stats_and_momentum(rng):
    x = (rng.standard_normal((4, 3, 2, 2)) * 2 + 1).astype(np.float32)
    bn = nn.BatchNorm2d(3)
    bn(x)
    mean = x.mean(axis=(0, 2, 3))
    var_unbiased = x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_mean, 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * var_unbiased, rtol=1e-5)
    assert int(bn.num_batches_tracked) == 1 and bn.running_mean.dtype == np.float32
    # momentum=None: cumulative average of the batch statistics
    bn = nn.BatchNorm2d(3, momentum=None)
    batches = [rng.standard_normal((2, 3, 2, 2)).astype(np.float32) for _ in range(3)]
    for b in batches:
        bn(b)
    np.testing.assert_allclose(bn.running_mean, np.mean([b.mean(axis=(0, 2, 3)) for b in batches], axis=0),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.running_var, np.mean([b.var(axis=(0, 2, 3), ddof=1) for b in batches], axis=0),
                               rtol=1e-5)
    # eval mode uses the running statistics and does not update them
    bn.eval()
    before = bn.running_mean.copy()
    y = bn(x)
    ref = (x - bn.running_mean[None, :, None, None]) / np.sqrt(bn.running_var[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(bn.running_mean, before)
    assert set(bn.state_dict()) == {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
    assert set(nn.BatchNorm2d(3, affine=False, track_running_stats=False).state_dict()) == set()


def test_batchnorm_against_torch(rng):
    torch = pytest.importorskip("torch")
    for momentum in (0.1, None):
        ours = nn.BatchNorm2d(4, momentum=momentum)
        ref = torch.nn.BatchNorm2d(4, momentum=momentum)
        with torch.no_grad():
            w, b = rng.standard_normal(4).astype(np.float32), rng.standard_normal(4).astype(np.float32)
            ref.weight.copy_(torch.from_numpy(w))
            ref.bias.copy_(torch.from_numpy(b))
        ours.weight.data[:], ours.bias.data[:] = w, b
        for step in range(3):
            x = (rng.standard_normal((5, 4, 3, 3)) * 3 + step).astype(np.float32)
            dy = rng.standard_normal(x.shape).astype(np.float32)
            xt = torch.from_numpy(x).requires_grad_(True)
            yt = ref(xt)
            yt.backward(torch.from_numpy(dy))
            y = ours(x)
            dx = ours.backward(dy)
            np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(ours.weight.grad, ref.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(ours.bias.grad, ref.bias.grad.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(ours.running_mean, ref.running_mean.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ours.running_var, ref.running_var.numpy(), rtol=1e-5, atol=1e-6)
        assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked) == 3
        ours.eval()
        ref.eval()
        x = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
        xt = torch.from_numpy(x).requires_grad_(True)
        yt = ref(xt)
        dy = rng.standard_normal(x.shape).astype(np.float32)
        yt.backward(torch.from_numpy(dy))
        np.testing.assert_allclose(ours(x), yt.detach().numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(ours.backward(dy), xt.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_batchnorm_errors():
    bn = nn.BatchNorm2d(3)
    with pytest.raises(BackwardBeforeForwardError):
        bn.backward(np.ones((2, 3, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"4-D \(N, C, H, W\)"):
        bn(np.ones((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"expected 3 channels.*\(2, 4, 2, 2\)"):
        bn(np.ones((2, 4, 2, 2), np.float32))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(np.ones((1, 3, 1, 1), np.float32))
    bn.eval()
    assert bn(np.ones((1, 3, 1, 1), np.float32)).shape == (1, 3, 1, 1)  # fine with running statistics
    with pytest.raises(TypeError, match="floating-point"):
        bn(np.ones((2, 3, 2, 2), np.int64))
    assert bn(np.ones((2, 3, 2, 2), np.float64)).dtype == np.float32
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(2, 3, 2, 2\)"):
        bn.backward(np.ones((2, 3, 2, 1), np.float32))
    with pytest.raises(ValueError, match="eps must be > 0, got 0"):
        nn.BatchNorm2d(3, eps=0)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\], got 2"):
        nn.BatchNorm2d(3, momentum=2)
    with pytest.raises(ValueError, match="num_features must be >= 1"):
        nn.BatchNorm2d(0)
    assert repr(nn.BatchNorm2d(3)) == \
        "BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"


def test_batchnorm_state_dict_round_trip(rng):
    bn = nn.BatchNorm2d(3)
    for _ in range(2):
        bn(rng.standard_normal((4, 3, 2, 2)).astype(np.float32) * 2 + 1)
    other = nn.BatchNorm2d(3)
    other.load_state_dict(bn.state_dict())
    assert int(other.num_batches_tracked) == 2
    x = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
    np.testing.assert_array_equal(bn.eval()(x), other.eval()(x))


def test_one_thread_pool_policy(rng):
    # set_num_threads sets Numba's threads and keeps the BLAS behind Numba's np.dot (scipy's) at one
    # thread, without touching NumPy's BLAS; layers re-pin it if someone changed it.
    import os

    import scipy
    from threadpoolctl import threadpool_info, threadpool_limits

    import minicnn

    scipy_dir = os.path.dirname(os.path.realpath(scipy.__file__))

    def blas_threads():
        libs = [p for p in threadpool_info() if p["user_api"] == "blas"]
        ours = [p["num_threads"] for p in libs if os.path.realpath(p["filepath"]).startswith(scipy_dir)]
        others = [p["num_threads"] for p in libs if not os.path.realpath(p["filepath"]).startswith(scipy_dir)]
        return ours, others

    before = minicnn.get_num_threads()
    _, others_before = blas_threads()
    minicnn.set_num_threads(1)
    try:
        ours, others = blas_threads()
        assert all(n == 1 for n in ours) and others == others_before
        threadpool_limits(2)  # a user raises every BLAS; the next layer call pins scipy's back
        layer = nn.Linear(4, 3, rng=rng)
        layer(rng.standard_normal((5, 4)).astype(np.float32))
        assert all(n == 1 for n in blas_threads()[0])
    finally:
        threadpool_limits({"blas": others_before[0]} if others_before else None)
        minicnn.set_num_threads(before)
