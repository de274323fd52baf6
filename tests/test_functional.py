"""minicnn.functional (linear, relu, batch_norm, dropout, flatten, cross_entropy): against the naive
references, every backward against float64 central differences, the gradient flags (False skips and
returns None, an array is added into), bad input naming the argument, and PyTorch when installed."""
import numpy as np
import pytest

import minicnn.functional as F
import naive
from minicnn._config import ELEMENTWISE_PARALLEL_MIN_SIZE


def check_grad(f, x, analytic, rtol=1e-6, atol=1e-8):
    """``analytic`` against central differences of the scalar ``f()`` w.r.t. the float64 array ``x``."""
    np.testing.assert_allclose(analytic, naive.numerical_grad(f, x), rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------------------------
# linear
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_reference(rng, dtype, bias):
    for N, K, Fo in [(1, 1, 1), (5, 4, 3), (37, 13, 7)]:
        x = rng.standard_normal((N, K)).astype(dtype)
        w = rng.standard_normal((Fo, K)).astype(dtype)
        b = rng.standard_normal(Fo).astype(dtype) if bias else None
        y = F.linear(x, w, b)
        assert y.dtype == dtype and y.shape == (N, Fo) and y.flags.c_contiguous
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(y, naive.linear(x, w, b), rtol=tol, atol=tol)


def test_linear_backward_against_finite_differences(rng):
    x, w, b = rng.standard_normal((5, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    dy = rng.standard_normal((5, 3))
    f = lambda: float(np.sum(F.linear(x, w, b) * dy))
    _, ctx = F.linear_forward(x, w, b)
    dx, dw, db = F.linear_backward(dy, ctx)
    check_grad(f, x, dx)
    check_grad(f, w, dw)
    check_grad(f, b, db)


def test_linear_gradient_flags(rng):
    x, w, b = rng.standard_normal((6, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    dy = rng.standard_normal((6, 3))
    _, ctx = F.linear_forward(x, w, b)
    dx, dw, db = F.linear_backward(dy, ctx)
    assert F.linear_backward(dy, ctx, dx=False, dweight=False, dbias=False) == (None, None, None)
    only_dx = F.linear_backward(dy, ctx, dweight=False, dbias=False)
    np.testing.assert_array_equal(only_dx[0], dx)
    assert only_dx[1:] == (None, None)
    gw, gb = np.ones((3, 4)), np.full(3, 2.0)
    out = F.linear_backward(dy, ctx, dx=False, dweight=gw, dbias=gb)
    assert out[0] is None and out[1] is gw and out[2] is gb  # added into and returned
    np.testing.assert_allclose(gw, 1 + dw, rtol=1e-12)
    np.testing.assert_allclose(gb, 2 + db, rtol=1e-12)
    # no bias in the forward: no bias gradient
    _, ctx = F.linear_forward(x, w)
    assert F.linear_backward(dy, ctx)[2] is None
    # an empty batch: empty outputs, nothing added
    _, ctx = F.linear_forward(np.zeros((0, 4)), w, b)
    dx0, dw0, db0 = F.linear_backward(np.zeros((0, 3)), ctx)
    assert dx0.shape == (0, 4) and not dw0.any() and not db0.any()


def test_linear_dtypes(rng):
    x = rng.standard_normal((2, 4))
    w32 = rng.standard_normal((3, 4)).astype(np.float32)
    assert F.linear(x, w32).dtype == np.float64  # weights take the input's dtype
    assert F.linear(x.astype(np.float16), w32).dtype == np.float32  # float16 is cast to float32
    assert F.linear(np.asfortranarray(x), w32).flags.c_contiguous


# ---------------------------------------------------------------------------------------------
# relu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [7, ELEMENTWISE_PARALLEL_MIN_SIZE + 1001])  # serial and parallel kernels
def test_relu_matches_reference(rng, dtype, size):
    x = rng.standard_normal(size).astype(dtype)
    x[::5] = 0.0
    x[1::97] = np.nan
    y, ctx = F.relu_forward(x)
    np.testing.assert_array_equal(y, naive.relu(x))
    np.testing.assert_array_equal(F.relu(x), y)
    dy = rng.standard_normal(size).astype(dtype)
    np.testing.assert_array_equal(F.relu_backward(dy, ctx), naive.relu_grad(dy, x))


def test_relu_backward_against_finite_differences(rng):
    x = rng.standard_normal((3, 4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # away from the kink
    dy = rng.standard_normal(x.shape)
    _, ctx = F.relu_forward(x)
    check_grad(lambda: float(np.sum(F.relu(x) * dy)), x, F.relu_backward(dy, ctx))


def test_relu_casts_other_floats():
    assert F.relu(np.ones(3, np.float16)).dtype == np.float32
    assert F.relu(np.ones(3, np.longdouble)).dtype == np.float64


# ---------------------------------------------------------------------------------------------
# batch_norm
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_training_matches_reference_and_updates_running_stats(rng, dtype):
    N, C, H, W = 3, 4, 2, 5
    x = (rng.standard_normal((N, C, H, W)) * 3 + 2).astype(dtype)
    gamma, beta = rng.standard_normal(C).astype(dtype), rng.standard_normal(C).astype(dtype)
    ref, mean, var = naive.batch_norm_train(x, gamma, beta, 1e-5)
    rm, rv = rng.standard_normal(C).astype(dtype), rng.uniform(0.5, 2, C).astype(dtype)
    rm0, rv0 = rm.copy(), rv.copy()
    y = F.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=0.3)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol)
    count = N * H * W
    np.testing.assert_allclose(rm, 0.7 * rm0 + 0.3 * mean, rtol=tol, atol=tol)  # updated in place
    np.testing.assert_allclose(rv, 0.7 * rv0 + 0.3 * var * count / (count - 1), rtol=tol, atol=tol)  # unbiased
    assert rm.dtype == dtype
    # eval: the running statistics, unchanged
    before = rm.copy(), rv.copy()
    y = F.batch_norm(x, rm, rv, gamma, beta)
    expected = (x - rm[:, None, None]) / np.sqrt(rv[:, None, None] + 1e-5) * gamma[:, None, None] + beta[:, None, None]
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)
    np.testing.assert_array_equal(rm, before[0])
    np.testing.assert_array_equal(rv, before[1])


def test_batch_norm_any_trailing_dims(rng):
    x = rng.standard_normal((6, 3))  # (N, C): BatchNorm1d's case
    y = F.batch_norm(x, None, None, training=True)
    np.testing.assert_allclose(y, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), rtol=1e-10)
    x3 = rng.standard_normal((2, 3, 5))
    np.testing.assert_allclose(F.batch_norm(x3, None, None, training=True),
                               F.batch_norm(x3[..., None], None, None, training=True)[..., 0], rtol=1e-12)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_backward_against_finite_differences(rng, training):
    C = 3
    x = rng.standard_normal((4, C, 2, 3)) * 2 + 1
    gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
    rm, rv = rng.standard_normal(C), rng.uniform(0.5, 2, C)
    dy = rng.standard_normal(x.shape)

    def f():
        # copies: the training forward updates the running statistics in place
        return float(np.sum(F.batch_norm(x, rm.copy(), rv.copy(), gamma, beta, training=training) * dy))

    _, ctx = F.batch_norm_forward(x, rm.copy(), rv.copy(), gamma, beta, training=training)
    dx, dgamma, dbeta = F.batch_norm_backward(dy, ctx)
    check_grad(f, x, dx, rtol=1e-5, atol=1e-7)
    check_grad(f, gamma, dgamma, rtol=1e-5, atol=1e-7)
    check_grad(f, beta, dbeta, rtol=1e-5, atol=1e-7)


def test_batch_norm_gradient_flags(rng):
    x = rng.standard_normal((4, 3, 2, 2))
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    dy = rng.standard_normal(x.shape)
    _, ctx = F.batch_norm_forward(x, None, None, gamma, beta, training=True)
    dx, dg, db = F.batch_norm_backward(dy, ctx)
    assert F.batch_norm_backward(dy, ctx, dx=False, dweight=False, dbias=False) == (None, None, None)
    r = F.batch_norm_backward(dy, ctx, dweight=False, dbias=False)
    np.testing.assert_array_equal(r[0], dx)
    assert r[1:] == (None, None)
    gg, gb = np.ones(3), np.ones(3)
    r = F.batch_norm_backward(dy, ctx, dx=False, dweight=gg, dbias=gb)
    assert r[0] is None and r[1] is gg and r[2] is gb
    np.testing.assert_allclose(gg, 1 + dg, rtol=1e-12)
    np.testing.assert_allclose(gb, 1 + db, rtol=1e-12)
    _, ctx = F.batch_norm_forward(x, None, None, training=True)  # no weight, no bias
    assert F.batch_norm_backward(dy, ctx)[1:] == (None, None)


# ---------------------------------------------------------------------------------------------
# dropout
def test_dropout_mask_scale_and_backward(rng):
    x = rng.standard_normal((40, 50))
    y, ctx = F.dropout_forward(x, 0.3, rng=np.random.default_rng(1))
    kept = ctx.mask != 0
    np.testing.assert_allclose(ctx.mask[kept], 1 / 0.7, rtol=1e-12)
    np.testing.assert_array_equal(y, x * ctx.mask)
    np.testing.assert_array_equal(F.dropout(x, 0.3, rng=np.random.default_rng(1)), y)  # the same seed
    dy = rng.standard_normal(x.shape)
    # with a fixed mask dropout is linear: its gradient is the mask
    f = lambda: float(np.sum(F.dropout(x, 0.3, rng=np.random.default_rng(1)) * dy))
    check_grad(f, x, F.dropout_backward(dy, ctx))


def test_dropout_identity_and_p_one(rng):
    x = rng.standard_normal((3, 4))
    for kwargs in (dict(training=False), dict(p=0.0)):
        y, ctx = F.dropout_forward(x, **kwargs)
        assert y is x and ctx.mask is None
        np.testing.assert_array_equal(F.dropout_backward(x, ctx), x)
    y, ctx = F.dropout_forward(x, 1.0)
    assert not y.any() and not F.dropout_backward(x, ctx).any()
    assert F.dropout(x.astype(np.float16), 0.5, rng=0).dtype == np.float32


# ---------------------------------------------------------------------------------------------
# flatten
def test_flatten_and_backward(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    for (s, e), shape in {(1, -1): (2, 60), (0, -1): (120,), (-3, -2): (2, 12, 5), (2, 2): (2, 3, 4, 5)}.items():
        y, ctx = F.flatten_forward(x, s, e)
        assert y.shape == shape and np.array_equal(y, x.reshape(shape))
        np.testing.assert_array_equal(F.flatten(x, s, e), y)
        dy = rng.standard_normal(shape)
        np.testing.assert_array_equal(F.flatten_backward(dy, ctx), dy.reshape(x.shape))


# ---------------------------------------------------------------------------------------------
# cross_entropy
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_matches_reference(rng, dtype):
    for N, K in [(1, 1), (4, 3), (8, 11)]:
        for s in (0.0, 0.25, 1.0):
            logits = (rng.standard_normal((N, K)) * 3).astype(dtype)
            target = rng.integers(0, K, N)
            loss, ctx = F.cross_entropy_forward(logits, target, s)
            assert isinstance(loss, np.float64) and loss == F.cross_entropy(logits, target, s)
            tol = 1e-5 if dtype == np.float32 else 1e-12
            assert loss == pytest.approx(naive.cross_entropy(logits, target, s), rel=tol, abs=tol)
            d = F.cross_entropy_backward(ctx)
            assert d.dtype == dtype
            np.testing.assert_allclose(d, naive.cross_entropy_grad(logits, target, s), rtol=tol, atol=tol)
            np.testing.assert_allclose(F.cross_entropy_backward(ctx, 2.5), 2.5 * d, rtol=tol, atol=tol)


def test_cross_entropy_backward_against_finite_differences(rng):
    logits = rng.standard_normal((5, 7))
    target = rng.integers(0, 7, 5)
    for s in (0.0, 0.2):
        _, ctx = F.cross_entropy_forward(logits, target, s)
        check_grad(lambda: float(F.cross_entropy(logits, target, s)), logits, F.cross_entropy_backward(ctx),
                   atol=1e-9)


# ---------------------------------------------------------------------------------------------
# bad input: each error names the argument
def _linear_ctx():
    return F.linear_forward(np.ones((2, 4)), np.ones((3, 4)), np.ones(3))[1]


def _bn_ctx():
    return F.batch_norm_forward(np.ones((2, 3, 2, 2)), None, None, np.ones(3), np.ones(3), training=True)[1]


BAD = [
    (lambda: F.linear([[1.0]], np.ones((1, 1))), TypeError, "x must be a numpy.ndarray"),
    (lambda: F.linear(np.ones((2, 4), np.int64), np.ones((3, 4))), TypeError, "x must be a floating-point"),
    (lambda: F.linear(np.ones((2, 2, 4)), np.ones((3, 4))), ValueError, r"x must be 2-D \(N, in_features\)"),
    (lambda: F.linear(np.ones((2, 4)), np.ones(4)), ValueError, "weight must be 2-D"),
    (lambda: F.linear(np.ones((2, 5)), np.ones((3, 4))), ValueError, r"in_features=4.*x of shape \(2, 5\)"),
    (lambda: F.linear(np.ones((2, 4)), np.ones((3, 4)), np.ones(4)), ValueError, r"bias must have shape \(3,\)"),
    (lambda: F.linear_backward(np.ones((2, 4)), _linear_ctx()), ValueError, r"dy must have the output's shape"),
    (lambda: F.linear_backward(np.ones((2, 3)), _linear_ctx(), dx="yes"), TypeError, "dx must be a bool"),
    (lambda: F.linear_backward(np.ones((2, 3)), _linear_ctx(), dweight=np.ones((4, 3))), ValueError, "dweight must be"),
    (lambda: F.linear_backward(np.ones((2, 3)), _linear_ctx(), dbias=np.ones(3, np.float32)), ValueError,
     "dbias must be a writable C-contiguous float64"),
    (lambda: F.linear_backward(np.ones((2, 3)), _linear_ctx(), dweight=1), TypeError, "dweight must be True"),
    (lambda: F.relu("x"), TypeError, "x must be a numpy.ndarray"),
    (lambda: F.relu(np.arange(3)), TypeError, "x must be a floating-point"),
    (lambda: F.relu_backward(np.ones(3), F.relu_forward(np.ones(4))[1]), ValueError, "dy must have the output's shape"),
    (lambda: F.batch_norm(np.ones(3), None, None, training=True), ValueError, r"x must be \(N, C, ...\)"),
    (lambda: F.batch_norm(np.ones((2, 3, 2)), np.zeros(4), np.ones(4)), ValueError, r"running_mean must be .*\(3,\)"),
    (lambda: F.batch_norm(np.ones((2, 3, 2)), np.zeros(3), None), ValueError, "running_mean and running_var"),
    (lambda: F.batch_norm(np.ones((2, 3, 2)), [0.0] * 3, [1.0] * 3), TypeError, "running_mean must be a numpy"),
    (lambda: F.batch_norm(np.ones((2, 3, 2)), None, None), ValueError, "training=False needs running_mean"),
    (lambda: F.batch_norm(np.ones((2, 3, 2)), None, None, np.ones(2), training=True), ValueError,
     r"weight must have shape \(3,\)"),
    (lambda: F.batch_norm(np.ones((2, 3, 2)), None, None, training=True, momentum=2), ValueError,
     r"momentum must be in \[0, 1\], got 2"),
    (lambda: F.batch_norm(np.ones((2, 3, 2)), None, None, training=True, eps=0), ValueError, "eps must be > 0"),
    (lambda: F.batch_norm(np.ones((2, 3, 2)), None, None, training=1), TypeError, "training must be a bool"),
    (lambda: F.batch_norm(np.ones((1, 3, 1)), None, None, training=True), ValueError, "more than 1 value per channel"),
    (lambda: F.batch_norm_backward(np.ones((2, 3, 2)), _bn_ctx()), ValueError, "dy must have the output's shape"),
    (lambda: F.batch_norm_backward(np.ones((2, 3, 2, 2)), _bn_ctx(), dweight=np.ones(4)), ValueError, "dweight must be"),
    (lambda: F.dropout(np.ones(3), 1.5), ValueError, r"p must be in \[0, 1\], got 1.5"),
    (lambda: F.dropout(np.ones(3), "0.5"), TypeError, "p must be a number"),
    (lambda: F.dropout(np.ones(3), 0.5, training="no"), TypeError, "training must be a bool"),
    (lambda: F.dropout(np.ones(3), 0.5, rng="seed"), TypeError, "rng must be"),
    (lambda: F.flatten(np.ones((2, 3)), 1.5), TypeError, "start_dim must be an int"),
    (lambda: F.flatten(np.ones((2, 3)), 0, 2), ValueError, "out of range for a 2-D input"),
    (lambda: F.flatten(np.ones((2, 3, 4)), 2, 1), ValueError, "must not come after"),
    (lambda: F.cross_entropy(np.zeros((3, 4)), np.zeros(3)), TypeError, "target must be an integer array"),
    (lambda: F.cross_entropy(np.zeros((3, 4)), np.zeros(2, int)), ValueError, "expected 3 labels, got 2"),
    (lambda: F.cross_entropy(np.zeros((3, 4)), np.array([0, 4, 1])), ValueError, r"target must be .*\[0, 4\).*got 4"),
    (lambda: F.cross_entropy(np.zeros(4), np.zeros(4, int)), ValueError, r"logits must be 2-D \(N, K\)"),
    (lambda: F.cross_entropy(np.full((1, 2), np.nan), np.zeros(1, int)), ValueError, "logits must be finite"),
    (lambda: F.cross_entropy(np.zeros((3, 4)), np.zeros(3, int), 1.5), ValueError,
     r"label_smoothing must be in \[0, 1\], got 1.5"),
    (lambda: F.cross_entropy_backward(F.cross_entropy_forward(np.zeros((3, 4)), np.zeros(3, int))[1], np.ones(2)),
     ValueError, "dloss must be a real scalar"),
    (lambda: F.cross_entropy_backward(F.cross_entropy_forward(np.zeros((3, 4)), np.zeros(3, int))[1], "1"),
     TypeError, "dloss must be a number"),
]


@pytest.mark.parametrize("call, error, message", BAD, ids=[m for _, _, m in BAD])
def test_bad_input_names_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ---------------------------------------------------------------------------------------------
# against PyTorch
def test_against_torch(rng):
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    t = torch.from_numpy

    x, w, b = rng.standard_normal((6, 5)), rng.standard_normal((4, 5)), rng.standard_normal(4)
    np.testing.assert_allclose(F.linear(x, w, b), TF.linear(t(x), t(w), t(b)).numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(F.relu(x), TF.relu(t(x)).numpy())

    x = rng.standard_normal((4, 3, 2, 5)) * 2 + 1
    gamma, beta, dy = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal(x.shape)
    for training in (True, False):
        rm, rv = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
        trm, trv = t(rm.copy()), t(rv.copy())
        xt, gt, bt = (t(a.copy()).requires_grad_(True) for a in (x, gamma, beta))
        yt = TF.batch_norm(xt, trm, trv, gt, bt, training=training, momentum=0.2, eps=1e-4)
        yt.backward(t(dy))
        y, ctx = F.batch_norm_forward(x, rm, rv, gamma, beta, training=training, momentum=0.2, eps=1e-4)
        dx, dg, db = F.batch_norm_backward(dy, ctx)
        for ours, ref in [(y, yt.detach()), (rm, trm), (rv, trv), (dx, xt.grad), (dg, gt.grad), (db, bt.grad)]:
            np.testing.assert_allclose(ours, ref.numpy(), rtol=1e-10, atol=1e-10)

    logits, target = rng.standard_normal((8, 5)) * 3, rng.integers(0, 5, 8)
    for s in (0.0, 0.3):
        lt = t(logits.copy()).requires_grad_(True)
        ref = TF.cross_entropy(lt, t(target), label_smoothing=s)
        ref.backward()
        loss, ctx = F.cross_entropy_forward(logits, target, s)
        assert loss == pytest.approx(ref.item(), rel=1e-12)
        np.testing.assert_allclose(F.cross_entropy_backward(ctx), lt.grad.numpy(), rtol=1e-10, atol=1e-12)
    x = rng.standard_normal((2, 3, 4, 5))
    np.testing.assert_array_equal(F.flatten(x, 1, 2), torch.flatten(t(x), 1, 2).numpy())
