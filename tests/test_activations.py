"""LeakyReLU, ELU, GELU, SiLU, Sigmoid, Tanh, Hardswish, ReLU6, PReLU, Softmax, LogSoftmax, Identity:
forward and backward against the textbook references (naive.py), central differences in float64
(gradcheck), PyTorch when installed, extreme inputs and bad input."""
import warnings

import numpy as np
import pytest

import naive
import minicnn.functional.activation as FA
from minicnn import gradcheck, nn
from minicnn.grad_mode import no_grad
from minicnn._config import ELEMENTWISE_PARALLEL_MIN_SIZE as PARALLEL_MIN_SIZE
from minicnn.nn.module import BackwardBeforeForwardError

# (layer, functional name, keyword arguments, PyTorch function name)
ELEMENTWISE = [
    (lambda: nn.LeakyReLU(), "leaky_relu", {}, "leaky_relu"),
    (lambda: nn.LeakyReLU(0.2), "leaky_relu", {"negative_slope": 0.2}, "leaky_relu"),
    (lambda: nn.LeakyReLU(-0.3), "leaky_relu", {"negative_slope": -0.3}, "leaky_relu"),
    (lambda: nn.ELU(), "elu", {}, "elu"),
    (lambda: nn.ELU(0.7), "elu", {"alpha": 0.7}, "elu"),
    (lambda: nn.ELU(-0.5), "elu", {"alpha": -0.5}, "elu"),
    (lambda: nn.GELU(), "gelu", {}, "gelu"),
    (lambda: nn.GELU("tanh"), "gelu", {"approximate": "tanh"}, "gelu"),
    (lambda: nn.SiLU(), "silu", {}, "silu"),
    (lambda: nn.Sigmoid(), "sigmoid", {}, "sigmoid"),
    (lambda: nn.Tanh(), "tanh", {}, "tanh"),
    (lambda: nn.Hardswish(), "hardswish", {}, "hardswish"),
    (lambda: nn.ReLU6(), "relu6", {}, "relu6"),
]
IDS = [f"{name}-{kw}" for _, name, kw, _ in ELEMENTWISE]
TOL = {np.float32: dict(rtol=2e-6, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def _inputs(rng, shape, dtype):
    """Normal values spread over [-8, 8] plus the corners of the piecewise functions."""
    x = rng.standard_normal(shape) * 4
    special = [0.0, -3.0, 3.0, 6.0, -6.0, 1e-3, -1e-3]
    x.reshape(-1)[:len(special)] = special
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make,name,kw,_", ELEMENTWISE, ids=IDS)
def test_elementwise_matches_reference(rng, make, name, kw, _, dtype):
    x = _inputs(rng, (3, 4, 5), dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    layer = make()
    y = layer(x)
    assert y.dtype == dtype and y.shape == x.shape and y.flags.c_contiguous
    np.testing.assert_allclose(y, naive.activation(name, x, **kw), **TOL[dtype])
    dx = layer.backward(dy)
    assert dx.dtype == dtype and dx.shape == x.shape
    tol = dict(rtol=1e-6, atol=1e-6) if kw.get("approximate") == "tanh" and dtype == np.float64 else TOL[dtype]
    np.testing.assert_allclose(dx, naive.activation_grad(name, x, dy, **kw), **tol)
    # the functional call gives the same values
    np.testing.assert_array_equal(getattr(FA, name)(x, **kw), y)


@pytest.mark.parametrize("make,name,kw,_", ELEMENTWISE, ids=IDS)
def test_elementwise_gradcheck(rng, make, name, kw, _):
    x = rng.standard_normal((2, 3, 4)) * 3
    # keep away from the kinks, where central differences are not the derivative
    x = np.where(np.abs(x) < 0.05, 0.5, x)
    x = np.where(np.abs(np.abs(x) - 3) < 0.05, 2.0, x)
    x = np.where(np.abs(x - 6) < 0.05, 5.0, x)
    gradcheck(make(), (x,))


def test_parallel_path_matches_serial(rng):
    # above PARALLEL_MIN_SIZE the flat array is split across threads; values must not depend on it
    x = rng.standard_normal(PARALLEL_MIN_SIZE + 7).astype(np.float32) * 4
    dy = rng.standard_normal(x.shape).astype(np.float32)
    piece = PARALLEL_MIN_SIZE // 2
    for _, name, kw, _ in ELEMENTWISE:
        y, ctx = getattr(FA, name + "_forward")(x, **kw)
        dx = getattr(FA, name + "_backward")(dy, ctx)
        for lo in range(0, x.size, piece):
            ys, cs = getattr(FA, name + "_forward")(x[lo:lo + piece], **kw)
            np.testing.assert_array_equal(y[lo:lo + piece], ys)
            np.testing.assert_array_equal(dx[lo:lo + piece], getattr(FA, name + "_backward")(dy[lo:lo + piece], cs))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_inputs_exact_and_without_warnings(dtype):
    x = np.array([-1000.0, -100.0, 100.0, 1000.0], dtype)
    ones = np.ones_like(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s, sc = FA.sigmoid_forward(x)
        np.testing.assert_array_equal(s[[0, 2, 3]], [0, 1, 1])
        assert 0 <= s[1] < 1e-40  # 3.7e-44, subnormal in float32 (the vectorised float32 sigmoid gives 0)
        np.testing.assert_array_equal(FA.sigmoid_backward(ones, sc)[[0, 3]], [0, 0])
        t, tc = FA.tanh_forward(x)
        np.testing.assert_array_equal(t, [-1, -1, 1, 1])
        np.testing.assert_array_equal(FA.tanh_backward(ones, tc), [0, 0, 0, 0])
        for approximate in ("none", "tanh"):
            g, gc = FA.gelu_forward(x, approximate)
            np.testing.assert_array_equal(g, [0, 0, 100, 1000])
            np.testing.assert_array_equal(FA.gelu_backward(ones, gc), [0, 0, 1, 1])
        y, c = FA.silu_forward(x)
        np.testing.assert_array_equal(y, [0, y[1], 100, 1000])
        np.testing.assert_array_equal(FA.silu_backward(ones, c)[[0, 2, 3]], [0, 1, 1])
        e, ec = FA.elu_forward(x)
        np.testing.assert_array_equal(e, [-1, -1, 100, 1000])
        sm = FA.softmax(np.array([[1000.0, -1000.0, 0.0]], dtype), dim=1)
        np.testing.assert_array_equal(sm, [[1, 0, 0]])
        ls = FA.log_softmax(np.array([[1000.0, -1000.0]], dtype), dim=-1)
        np.testing.assert_array_equal(ls, [[0, -2000]])
    huge = np.array([-3e38, 3e38], dtype)  # x^3 overflows in the tanh GELU (NumPy warns without the JIT): no NaN
    with np.errstate(over="ignore"):
        g, gc = FA.gelu_forward(huge, "tanh")
        np.testing.assert_array_equal(g, [0, huge[1]])
        np.testing.assert_array_equal(FA.gelu_backward(np.ones_like(huge), gc), [0, 1])


def test_gelu_left_tail_is_accurate():
    # x * Phi(x) at x = -10 is -7.6e-23; 1 + erf(x / sqrt 2) would round to 0 there
    from scipy.special import ndtr
    x = np.array([-10.0, -20.0, -5.0])
    np.testing.assert_allclose(FA.gelu(x), x * ndtr(x), rtol=1e-13)
    assert FA.gelu(x)[0] < 0


# -- softmax / log-softmax ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_matches_reference(rng, dtype, dim, log):
    x = (rng.standard_normal((3, 4, 5)) * 5).astype(dtype)
    layer = nn.LogSoftmax(dim) if log else nn.Softmax(dim)
    y = layer(x)
    np.testing.assert_allclose(y, naive.softmax(x, dim, log), rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 1e-13)
    if dtype == np.float64:
        gradcheck(nn.LogSoftmax(dim) if log else nn.Softmax(dim), (x,))


def test_softmax_default_dim_is_pytorchs_legacy_rule(rng):
    x = rng.standard_normal((2, 3))
    np.testing.assert_allclose(nn.Softmax()(x), naive.softmax(x, 1))
    x3 = rng.standard_normal((2, 3, 4))
    np.testing.assert_allclose(nn.Softmax()(x3), naive.softmax(x3, 0))


# -- PReLU ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("num_parameters", [1, 3])
def test_prelu_reference_and_gradcheck(rng, num_parameters):
    layer = nn.PReLU(num_parameters, dtype=np.float64)
    assert np.all(layer.weight.data == 0.25)
    layer.weight.data[:] = rng.standard_normal(num_parameters)
    x = rng.standard_normal((4, 3, 2, 5))
    np.testing.assert_allclose(layer(x), naive.prelu(x, layer.weight.data), rtol=1e-14)
    gradcheck(layer, (x,))
    # float32 layer
    l32 = nn.PReLU(num_parameters, init=0.1)
    assert l32(x.astype(np.float32)).dtype == np.float32


def test_prelu_frozen_weight_gets_no_gradient(rng):
    layer = nn.PReLU(3, dtype=np.float64)
    layer.weight.requires_grad = False
    x = rng.standard_normal((2, 3, 4))
    layer(x)
    layer.backward(np.ones_like(x))
    assert not layer.weight.grad.any()


def test_prelu_gradient_accumulates(rng):
    layer = nn.PReLU(3, dtype=np.float64)
    x = -np.abs(rng.standard_normal((2, 3, 4)))
    for _ in range(2):
        layer(x)
        layer.backward(np.ones_like(x))
    np.testing.assert_allclose(layer.weight.grad, 2 * x.sum(axis=(0, 2)))


# -- Identity, no_grad -----------------------------------------------------------------------------------
def test_identity(rng):
    x = rng.standard_normal((2, 3))
    layer = nn.Identity(54, unused="ok")
    assert layer(x) is x
    dy = rng.standard_normal((2, 3))
    assert layer.backward(dy) is dy
    layer(x)
    with pytest.raises(ValueError, match="dy"):
        layer.backward(np.ones(3))


def test_no_grad_keeps_nothing(rng):
    layer = nn.GELU()
    with no_grad():
        layer(rng.standard_normal(4))
    with pytest.raises(BackwardBeforeForwardError):
        layer.backward(np.ones(4))


# -- bad input ------------------------------------------------------------------------------------------------
def test_bad_input_names_the_argument(rng):
    x = rng.standard_normal((2, 3))
    with pytest.raises(ValueError, match="dim"):
        FA.softmax(x, 2)
    with pytest.raises(ValueError, match="dim"):
        nn.LogSoftmax(-3)(x)
    with pytest.raises(TypeError, match="dim"):
        nn.Softmax(1.5)
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("erf")
    with pytest.raises(TypeError, match="negative_slope"):
        nn.LeakyReLU("0.1")
    with pytest.raises(TypeError, match="x"):
        FA.sigmoid([1.0, 2.0])
    with pytest.raises(TypeError, match="x"):
        FA.tanh(np.arange(3))
    layer = nn.SiLU()
    layer(x)
    with pytest.raises(ValueError, match="dy"):
        layer.backward(np.ones((3, 2)))
    with pytest.raises(ValueError, match="num_parameters"):
        nn.PReLU(4)(x)
    with pytest.raises(ValueError, match="num_parameters"):
        nn.PReLU(0)
    with pytest.raises(BackwardBeforeForwardError):
        nn.Tanh().backward(x)


# -- PyTorch -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make,name,kw,tname", ELEMENTWISE, ids=IDS)
def test_elementwise_against_pytorch(rng, make, name, kw, tname, dtype):
    torch = pytest.importorskip("torch")
    x = _inputs(rng, (4, 6), dtype)
    x[0, :2] = [1000, -1000]
    dy = rng.standard_normal(x.shape).astype(dtype)
    layer = make()
    y = layer(x)
    dx = layer.backward(dy)
    tx = torch.tensor(x, requires_grad=True)
    fn = getattr(torch, tname) if tname in ("sigmoid", "tanh") else getattr(torch.nn.functional, tname)
    ty = fn(tx, **kw)
    ty.backward(torch.tensor(dy))
    tol = dict(rtol=1e-5, atol=3e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(y, ty.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, tx.grad.numpy(), **tol)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_and_prelu_against_pytorch(rng, dim):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((3, 4, 5)) * 10
    dy = rng.standard_normal(x.shape)
    for layer, fn in ((nn.Softmax(dim), torch.softmax), (nn.LogSoftmax(dim), torch.log_softmax)):
        tx = torch.tensor(x, requires_grad=True)
        ty = fn(tx, dim)
        ty.backward(torch.tensor(dy))
        np.testing.assert_allclose(layer(x), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(layer.backward(dy), tx.grad.numpy(), rtol=1e-12, atol=1e-14)
    layer = nn.PReLU(4, dtype=np.float64)
    layer.weight.data[:] = rng.standard_normal(4)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(layer.weight.data, requires_grad=True)
    ty = torch.nn.functional.prelu(tx, tw)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(layer(x), ty.detach().numpy(), rtol=1e-14)
    np.testing.assert_allclose(layer.backward(dy), tx.grad.numpy(), rtol=1e-14)
    np.testing.assert_allclose(layer.weight.grad, tw.grad.numpy(), rtol=1e-12)


# -- the float32 transcendental functions of the kernels (kernels/fastmath.py) ----------------------
def test_fastmath_float32_accuracy():
    import numba
    from scipy.special import erfc, expit

    from minicnn.kernels import fastmath as fm

    @numba.njit
    def apply(x):
        out = np.empty((5, x.size), np.float32)
        for i in range(x.size):
            v = x[i]
            out[0, i] = fm.exp(v)
            out[1, i] = fm.expm1(v)
            out[2, i] = fm.tanh(v)
            out[3, i] = fm.erfc(v)
            out[4, i] = fm.sigmoid(v)
        return out

    rng = np.random.default_rng(3)
    corners = [0.0, -0.0, 1e-30, -1e-30, 0.25, -0.25, 0.5, -0.5, 88.7, 89.5, -87.3, -104.5]
    x = np.concatenate([rng.uniform(-110, 95, 20000), rng.standard_normal(20000), rng.uniform(-1e-3, 1e-3, 2000),
                        corners]).astype(np.float32)
    with np.errstate(over="ignore"):  # without the JIT these are NumPy's functions, which warn
        got = apply(x).astype(np.float64)
    x64 = x.astype(np.float64)
    with np.errstate(over="ignore"):
        refs = [np.exp(x64), np.expm1(x64), np.tanh(x64), erfc(x64), expit(x64)]
        refs32 = [r.astype(np.float32).astype(np.float64) for r in refs]  # correctly rounded float32
    eps = np.finfo(np.float32).eps
    names, max_ulps = ["exp", "expm1", "tanh", "erfc", "sigmoid"], [2, 2, 4, None, 2]
    for name, g, r, r32, ulps in zip(names, got, refs, refs32, max_ulps):
        normal = np.isfinite(r32) & (np.abs(r32) >= np.finfo(np.float32).tiny)
        assert np.all(np.isinf(g[np.isinf(r32)])), name
        rel = np.abs(g[normal] - r[normal]) / np.abs(r[normal])
        if ulps is None:  # erfc: Numerical Recipes' fit (< 1.2e-7) and, in the tail, the float32 -z^2
            small = np.abs(x64[normal]) < 3
            assert rel[small].max() < 2e-6 and rel.max() < 1e-5, (name, rel.max())
        else:
            assert rel.max() <= ulps * eps, (name, rel.max() / eps)
    with np.errstate(over="ignore", invalid="ignore"):
        special = apply(np.array([np.nan, np.inf, -np.inf], np.float32))
    assert np.isnan(special[:, 0]).all()
    np.testing.assert_array_equal(special[:, 1], [np.inf, np.inf, 1, 0, 1])
    np.testing.assert_array_equal(special[:, 2], [0, -1, -1, 2, 0])
