"""Convolution kernels and the Conv2d layer against tests/naive.py and finite differences."""
import os
from unittest import mock

import numba
import numpy as np
import pytest

import naive
import minicnn
from minicnn.functional import CONV_ALGORITHMS, conv2d, conv2d_backward, conv2d_forward
from minicnn.kernels.conv_direct import direct_forward
from minicnn.nn import BackwardBeforeForwardError, Conv2d

NO_JIT = os.environ.get("NUMBA_DISABLE_JIT") == "1"


def numerical_grad(f, x):
    """``naive.numerical_grad`` on one Numba thread: its thousands of tiny kernel calls would otherwise
    each pay a fork-join, which is slow on a busy machine."""
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return naive.numerical_grad(f, x)
    finally:
        numba.set_num_threads(old)


# test_im2col.py draws the same kind of geometry; this one adds the filter count F and keeps kernels up to
# 3 (the naive convolution is slow). Kept per file: tests/ has no shared helper module besides naive.py.
def random_configs(seed, count, max_size=7):
    """Valid random geometries: (x_shape, F, (kh, kw), (sh, sw), (ph, pw), (dh, dw))."""
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4)),
                 int(rng.integers(1, max_size + 1)), int(rng.integers(1, max_size + 1)))
        F = int(rng.integers(1, 4))
        k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        s = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        p = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        d = (int(rng.choice([1, 1, 2])), int(rng.choice([1, 1, 2])))
        if d[0] * (k[0] - 1) + 1 > shape[2] + 2 * p[0] or d[1] * (k[1] - 1) + 1 > shape[3] + 2 * p[1]:
            continue
        configs.append((shape, F, k, s, p, d))
    return configs


EDGE_CASES = [
    ((2, 1, 6, 6), 2, (5, 5), (1, 1), (2, 2), (1, 1)),  # LeNet conv1 in small
    ((1, 3, 3, 4), 2, (5, 6), (1, 1), (1, 1), (1, 1)),  # kernel = padded input
    ((2, 2, 5, 5), 3, (1, 1), (2, 2), (1, 0), (1, 1)),  # 1x1, strided, padded
    ((1, 6, 2, 2), 2, (2, 2), (1, 1), (0, 1), (1, 1)),  # more channels than pixels
    ((1, 2, 7, 5), 2, (3, 2), (3, 2), (2, 1), (2, 2)),  # non-square, dilation 2, stride 3
    ((2, 2, 7, 7), 1, (2, 2), (3, 3), (0, 0), (1, 1)),  # stride leaves pixels uncovered
    ((2, 3, 4, 5), 4, (1, 1), (1, 1), (0, 0), (2, 1)),  # pointwise (dilation no matter): im2col reads x in place
]
FORWARD_CONFIGS = EDGE_CASES + random_configs(1, 15 if NO_JIT else 60)
GRAD_CONFIGS = EDGE_CASES + random_configs(2, 3 if NO_JIT else 12, max_size=5)


def unpack(config):
    shape, F, k, s, p, d = config
    return shape, F, k, s, p, d, (k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1])


def make(config, seed=0, dtype=np.float64):
    shape, F, k, *_ = config
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((F, shape[1], *k)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    return x, w, b


# ------------------------------------------------------------------------------------ functional
def algorithms_for(config):
    """The algorithms that can run ``config`` ("direct" needs stride 1)."""
    return [a for a in CONV_ALGORITHMS if a != "direct" or config[3] == (1, 1)]


def with_algorithms(configs):
    return [(c, a) for c in configs for a in algorithms_for(c)]


@pytest.mark.parametrize("config, algorithm", with_algorithms(FORWARD_CONFIGS), ids=str)
def test_forward_matches_naive(config, algorithm):
    shape, F, k, s, p, d, args = unpack(config)
    x, w, b = make(config)
    expected = naive.conv2d(x, w, b, *args[2:])
    y, ctx = conv2d_forward(x, w, b, s, p, d, algorithm=algorithm)
    assert ctx.algorithm == algorithm
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(conv2d(x, w, b, s, p, d, algorithm=algorithm), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(conv2d(x, w, None, s, p, d, algorithm=algorithm), naive.conv2d(x, w, None, *args[2:]),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("config, algorithm", with_algorithms(GRAD_CONFIGS), ids=str)
def test_backward_matches_naive_and_finite_differences(config, algorithm):
    shape, F, k, s, p, d, args = unpack(config)
    x, w, b = make(config, seed=3)
    y, ctx = conv2d_forward(x, w, b, s, p, d, algorithm=algorithm)
    g = np.random.default_rng(4).standard_normal(y.shape)  # loss = sum(y * g), so dy = g

    def loss():
        return float(np.sum(conv2d(x, w, b, s, p, d, algorithm=algorithm) * g))

    dx, dw, db = conv2d_backward(g, ctx)
    assert dw.shape == w.shape and db.shape == b.shape and dx.shape == x.shape
    for got, want in zip((dx, dw, db), naive.conv2d_backward(g, x, w, *args[2:])):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dw, numerical_grad(loss, w), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(db, numerical_grad(loss, b), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx, numerical_grad(loss, x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("algorithm", CONV_ALGORITHMS)
def test_backward_gradient_requests(algorithm):
    config = EDGE_CASES[0]
    shape, F, k, s, p, d, args = unpack(config)
    x, w, b = make(config)
    y, ctx = conv2d_forward(x, w, b, s, p, d, algorithm=algorithm)
    g = np.random.default_rng(5).standard_normal(y.shape)
    dx, dw, db = conv2d_backward(g, ctx)
    out_w, out_b = np.ones_like(w), np.ones_like(b)  # an array: the gradient is added into it
    dx2, dw2, db2 = conv2d_backward(g, ctx, dweight=out_w, dbias=out_b)
    assert dw2 is out_w and db2 is out_b
    np.testing.assert_allclose(out_w, dw + 1, rtol=1e-12)
    np.testing.assert_allclose(out_b, db + 1, rtol=1e-12)
    np.testing.assert_allclose(dx2, dx, rtol=1e-12)
    for flags in [dict(dx=False), dict(dweight=False), dict(dbias=False), dict(dweight=False, dbias=False),
                  dict(dx=False, dweight=False)]:
        got = conv2d_backward(g, ctx, **flags)
        for name, value, want in zip(("dx", "dweight", "dbias"), got, (dx, dw, db)):
            if flags.get(name, True):
                np.testing.assert_allclose(value, want, rtol=1e-12)
            else:
                assert value is None
    _, ctx_nobias = conv2d_forward(x, w, None, s, p, d, algorithm=algorithm)
    assert conv2d_backward(g, ctx_nobias)[2] is None


def test_float32_forward_close_to_float64():
    config = ((2, 3, 9, 8), 4, (3, 3), (2, 1), (1, 1), (1, 2))
    shape, F, k, s, p, d, args = unpack(config)
    x, w, b = make(config)
    y64 = conv2d(x, w, b, s, p, d)
    for algorithm in algorithms_for(config):
        y32, ctx = conv2d_forward(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), s, p, d,
                                  algorithm=algorithm)
        assert y32.dtype == np.float32 and ctx.saved.dtype == np.float32
        np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-4)


def test_functional_rejects_bad_arguments():
    x, w, b = make(EDGE_CASES[0])
    with pytest.raises(ValueError, match="weight must have as many input channels as x"):
        conv2d_forward(x, w[:, :1].repeat(2, axis=1), b)
    with pytest.raises(ValueError, match="bias must have shape"):
        conv2d(x, w, b[:1])
    with pytest.raises(ValueError, match="kernel_size"):
        conv2d(x[:, :, :3, :3], w)
    with pytest.raises(ValueError, match="x must not be empty"):
        conv2d(x[:0], w)
    with pytest.raises(TypeError, match="weight must be a floating-point array"):
        conv2d(x, w.astype(np.int64))
    with pytest.raises(ValueError, match="algorithm must be one of"):
        conv2d(x, w, algorithm="fft")
    with pytest.raises(ValueError, match="algorithm 'direct' supports stride 1 only"):
        conv2d(x, w, stride=2, algorithm="direct")
    y, ctx = conv2d_forward(x, w, b, padding=2)
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(2, 2, 6, 6\)"):
        conv2d_backward(y[:1], ctx)
    with pytest.raises(ValueError, match="dweight must be a writable C-contiguous float64 array"):
        conv2d_backward(y, ctx, dweight=np.zeros(3))
    with pytest.raises(TypeError, match="dbias must be True, False or a numpy.ndarray"):
        conv2d_backward(y, ctx, dbias="yes")
    with pytest.raises(TypeError, match="ctx must be the Conv2dCtx"):
        conv2d_backward(y, (1, 2))


@pytest.mark.parametrize("algorithm", CONV_ALGORITHMS)
def test_matches_torch(algorithm):
    torch = pytest.importorskip("torch")
    config = ((3, 4, 11, 9), 5, (3, 2), (2, 1), (1, 2), (2, 1)) if algorithm != "direct" else \
        ((3, 4, 11, 9), 5, (3, 2), (1, 1), (1, 2), (2, 1))
    shape, F, k, s, p, d, args = unpack(config)
    x, w, b = make(config, seed=7)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=s, padding=p, dilation=d)
    y, ctx = conv2d_forward(x, w, b, s, p, d, algorithm=algorithm)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    g = np.random.default_rng(8).standard_normal(y.shape)
    ty.backward(torch.tensor(g))
    dx, dw, db = conv2d_backward(g, ctx)
    np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(db, tb.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_auto_rule_and_autotuner():
    x1, w1, b1 = make(((2, 1, 6, 6), 2, (3, 3), (1, 1), (1, 1), (1, 1)))
    x3, w3, b3 = make(((2, 3, 6, 6), 2, (3, 3), (1, 1), (1, 1), (1, 1)))
    assert conv2d_forward(x1, w1, b1, padding=1)[1].algorithm == "direct"  # one channel, stride 1
    with mock.patch("minicnn.functional.conv.direct_forward", wraps=direct_forward) as direct:
        conv2d(x1, w1, b1, padding=1)  # the forward alone too
    assert direct.call_count == 1
    assert conv2d_forward(x3, w3, b3, padding=1)[1].algorithm == "tiled"
    assert conv2d_forward(x1, w1, b1, stride=2)[1].algorithm == "tiled"
    w1x1 = w3[:, :, :1, :1].copy()
    y, ctx = conv2d_forward(x3, w1x1, b3)
    assert ctx.algorithm == "im2col" and np.shares_memory(ctx.saved, x3)  # pointwise: x read and kept in place
    assert conv2d_forward(x3, w1x1, b3, stride=2)[1].algorithm == "tiled"
    try:
        minicnn.set_conv_autotune(True)
        y, ctx = conv2d_forward(x3, w3, b3, padding=1)
        report = minicnn.conv_autotune_report()
        (key, entry), = [(k, v) for k, v in report.items() if k[0] == x3.shape and k[1] == w3.shape]
        assert set(entry["ms"]) == set(CONV_ALGORITHMS) and all(v > 0 for v in entry["ms"].values())
        assert ctx.algorithm == entry["algorithm"] == min(entry["ms"], key=entry["ms"].get)
        np.testing.assert_allclose(y, naive.conv2d(x3, w3, b3, 1, 1, 1, 1), rtol=1e-10, atol=1e-10)
        _, ctx2 = conv2d_forward(x3, w3, b3, stride=2)  # a new geometry: "direct" is not a candidate
        key2 = [k for k in minicnn.conv_autotune_report() if k[2] == ctx2.geometry][0]
        assert "direct" not in minicnn.conv_autotune_report()[key2]["ms"]
    finally:
        minicnn.set_conv_autotune(False)


# ----------------------------------------------------------------------------------------- layer
def test_layer_forward_backward_and_accumulation():
    layer = Conv2d(2, 3, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2), dtype=np.float64, rng=0)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 2, 6, 7))
    y = layer(x)
    w, b = layer.weight.data, layer.bias.data
    np.testing.assert_allclose(y, naive.conv2d(x, w, b, 2, 1, 1, 1, 1, 2), rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(y.shape)

    def loss():
        return float(np.sum(layer(x) * g))

    dx = layer.backward(g)
    num_dw, num_db = numerical_grad(loss, w), numerical_grad(loss, b)
    num_dx = numerical_grad(loss, x)
    np.testing.assert_allclose(layer.weight.grad, num_dw, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(layer.bias.grad, num_db, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx, num_dx, rtol=1e-6, atol=1e-6)

    # a second forward/backward adds to the gradients; the first outputs are not overwritten
    y2 = layer(x)
    assert y2 is not y
    dx2 = layer.backward(g)
    assert dx2 is not dx
    np.testing.assert_allclose(dx, num_dx, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(layer.weight.grad, 2 * num_dw, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(layer.bias.grad, 2 * num_db, rtol=1e-6, atol=1e-6)
    layer.zero_grad()
    assert not layer.weight.grad.any() and not layer.bias.grad.any()


# (in_channels, out_channels, kernel, stride, padding, dilation, bias, x shape); one input channel with
# stride 1 runs the direct kernels, everything else the tiled kernels (their input gradient is tiled
# too with stride 1, and is W.T @ dy + col2im otherwise).
LAYER_GRAD_CASES = [
    (1, 2, 5, 1, 2, 1, True, (2, 1, 6, 6)),              # direct, LeNet conv1 in small
    (1, 3, (3, 2), 1, (0, 2), (2, 1), False, (2, 1, 7, 5)),  # direct, dilated, no bias
    (1, 2, 3, 1, 0, 1, True, (1, 1, 3, 3)),              # direct, kernel = input
    (1, 2, 3, 2, 1, 1, True, (2, 1, 6, 7)),              # one channel, stride 2: tiled
    (3, 2, 2, (1, 2), 1, (1, 2), False, (2, 3, 5, 6)),  # tiled, no bias
    (2, 18, 3, (2, 1), (1, 0), (1, 2), True, (1, 2, 7, 8)),  # tiled, two blocks of 16 output channels
    (3, 2, (3, 2), 1, (1, 2), (2, 1), True, (2, 3, 6, 7)),   # tiled input gradient, dilated
    (7, 18, 3, 1, 1, 1, True, (2, 7, 5, 6)),             # tiled input gradient: two groups of 6 channels
    (2, 3, 4, 1, 0, 1, False, (1, 2, 4, 4)),             # tiled input gradient, kernel = input, no bias
]


@pytest.mark.parametrize("case", LAYER_GRAD_CASES, ids=str)
def test_layer_gradients_match_finite_differences(case):
    C, F, k, s, p, d, bias, shape = case
    layer = Conv2d(C, F, k, s, p, d, bias=bias, dtype=np.float64, rng=5)
    rng = np.random.default_rng(14)
    x = rng.standard_normal(shape)
    y = layer(x)
    kk, ss, pp, dd = (v if isinstance(v, tuple) else (v, v) for v in (k, s, p, d))
    b = layer.bias.data if bias else None
    np.testing.assert_allclose(y, naive.conv2d(x, layer.weight.data, b, *ss, *pp, *dd), rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(y.shape)

    def loss():
        return float(np.sum(layer(x) * g))

    dx = layer.backward(g)
    np.testing.assert_allclose(layer.weight.grad, numerical_grad(loss, layer.weight.data), rtol=1e-6, atol=1e-6)
    if bias:
        np.testing.assert_allclose(layer.bias.grad, numerical_grad(loss, layer.bias.data), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx, numerical_grad(loss, x), rtol=1e-6, atol=1e-6)


def test_layer_buffers_follow_shape_changes():
    layer = Conv2d(1, 2, 3, padding=1, dtype=np.float64, rng=1)
    rng = np.random.default_rng(10)
    for shape in [(2, 1, 5, 5), (3, 1, 4, 6), (2, 1, 5, 5)]:
        x = rng.standard_normal(shape)
        g = rng.standard_normal((shape[0], 2, shape[2], shape[3]))
        layer.zero_grad()
        y = layer(x)
        dx = layer.backward(g)
        w, b = layer.weight.data, layer.bias.data
        np.testing.assert_allclose(y, naive.conv2d(x, w, b, 1, 1, 1, 1), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(dx, conv2d_backward(g, conv2d_forward(x, w, b, 1, 1)[1])[0], rtol=1e-12)
        np.testing.assert_allclose(layer.bias.grad, g.sum(axis=(0, 2, 3)), rtol=1e-12)


@pytest.mark.parametrize("C, stride", [(1, 1), (3, 1), (3, 2)])  # direct; tiled, input gradient too; tiled
def test_layer_without_bias_and_without_input_grad(C, stride):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, C, 6, 6))
    full = Conv2d(C, 2, 5, stride, padding=2, dtype=np.float64, rng=3)
    first = Conv2d(C, 2, 5, stride, padding=2, dtype=np.float64, rng=3, input_grad=False, bias=False)
    assert first.bias is None and [n for n, _ in first.named_parameters()] == ["weight"]
    np.testing.assert_array_equal(first.weight.data, full.weight.data)
    y = first(x)
    np.testing.assert_allclose(y, naive.conv2d(x, first.weight.data, None, stride, stride, 2, 2),
                               rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(y.shape)
    assert first.backward(g) is None
    full(x)
    full.backward(g)
    np.testing.assert_allclose(first.weight.grad, full.weight.grad, rtol=1e-12)


def test_layer_init_dtype_and_repr():
    layer = Conv2d(3, 8, 5, rng=0)
    assert layer.weight.shape == (8, 3, 5, 5) and layer.weight.dtype == np.float32
    assert layer.bias.shape == (8,) and layer.bias.dtype == np.float32
    bound = 1 / np.sqrt(3 * 25)  # PyTorch's default: kaiming_uniform(a=sqrt(5)) gives U(-1/sqrt(fan_in), ..)
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.weight.data).max() > 0.9 * bound
    assert np.abs(layer.bias.data).max() <= bound
    np.testing.assert_array_equal(Conv2d(3, 8, 5, rng=0).weight.data, layer.weight.data)
    assert repr(layer) == "Conv2d(3, 8, kernel_size=(5, 5), stride=(1, 1))"
    assert repr(Conv2d(1, 6, (5, 3), stride=2, padding=(2, 1), dilation=2, bias=False)) == (
        "Conv2d(1, 6, kernel_size=(5, 3), stride=(2, 2), padding=(2, 1), dilation=(2, 2), bias=False)")
    # a float64 input to a float32 layer is cast; the output is float32 and close to the float64 answer
    x = np.random.default_rng(12).standard_normal((2, 3, 7, 7))
    y = layer(x)
    assert y.dtype == np.float32
    expected = naive.conv2d(x, layer.weight.data.astype(np.float64), layer.bias.data, 1, 1, 0, 0)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    dx = layer.backward(np.ones(y.shape))  # a float64 dy is cast too
    assert dx.dtype == np.float32 and dx.shape == x.shape


def test_layer_keeps_nothing_for_backward_under_no_grad():
    layer = Conv2d(1, 2, 3, dtype=np.float64, rng=0)
    x = np.random.default_rng(13).standard_normal((2, 1, 5, 5))
    y_train = layer(x)
    dx = layer.backward(np.ones_like(y_train))
    with minicnn.no_grad():
        np.testing.assert_allclose(layer(x), y_train, rtol=1e-13, atol=1e-13)
    with pytest.raises(BackwardBeforeForwardError, match="forward"):
        layer.backward(np.ones_like(y_train))
    layer.eval()  # eval mode, as in PyTorch, still differentiates
    layer(x)
    np.testing.assert_array_equal(layer.backward(np.ones_like(y_train)), dx)


@pytest.mark.parametrize("algorithm", CONV_ALGORITHMS)
def test_layer_algorithm_argument(algorithm):
    layer = Conv2d(3, 4, 3, padding=1, dtype=np.float64, rng=0, algorithm=algorithm)
    x = np.random.default_rng(15).standard_normal((2, 3, 6, 5))
    y = layer(x)
    np.testing.assert_allclose(y, naive.conv2d(x, layer.weight.data, layer.bias.data, 1, 1, 1, 1), rtol=1e-10)
    assert layer._ctx.algorithm == algorithm
    layer.backward(np.ones_like(y))
    assert f"algorithm={algorithm!r}" in repr(layer)
    with pytest.raises(ValueError, match="algorithm must be one of"):
        Conv2d(3, 4, 3, algorithm="winograd")
    with pytest.raises(ValueError, match="algorithm 'direct' supports stride 1 only"):
        Conv2d(3, 4, 3, stride=2, algorithm="direct")


@pytest.mark.parametrize("kwargs, exc, message", [
    (dict(in_channels=0), ValueError, "in_channels"),
    (dict(in_channels=-1), ValueError, "in_channels"),
    (dict(in_channels=2.0), TypeError, "in_channels"),
    (dict(out_channels=0), ValueError, "out_channels"),
    (dict(out_channels="4"), TypeError, "out_channels"),
    (dict(kernel_size=0), ValueError, "kernel_size"),
    (dict(kernel_size=(3, -1)), ValueError, "kernel_size"),
    (dict(kernel_size=2.5), TypeError, "kernel_size"),
    (dict(kernel_size=(3, 3, 3)), TypeError, "kernel_size"),
    (dict(stride=0), ValueError, "stride"),
    (dict(stride=-2), ValueError, "stride"),
    (dict(stride=(1, 1.0)), TypeError, "stride"),
    (dict(padding=-1), ValueError, "padding"),
    (dict(padding=(0, -2)), ValueError, "padding"),
    (dict(padding=1.5), TypeError, "padding"),
    (dict(dilation=0), ValueError, "dilation"),
    (dict(dtype=np.int32), TypeError, "dtype"),
    (dict(dtype=np.float16), TypeError, "dtype"),
])
def test_layer_constructor_validation(kwargs, exc, message):
    args = dict(in_channels=2, out_channels=4, kernel_size=3)
    args.update(kwargs)
    with pytest.raises(exc, match=message):
        Conv2d(**args)


def test_layer_rejects_bad_inputs():
    layer = Conv2d(2, 3, 5, padding=1, rng=0)
    with pytest.raises(ValueError, match=r"x must be 4-D \(N, C, H, W\), got shape \(2, 6, 6\)"):
        layer(np.zeros((2, 6, 6), np.float32))
    with pytest.raises(ValueError, match=r"x must have in_channels = 2 channels .* got shape \(1, 3, 6, 6\)"):
        layer(np.zeros((1, 3, 6, 6), np.float32))
    with pytest.raises(ValueError, match=r"kernel_size \(5, 5\) .* larger than the padded input \(4, 6\)"):
        layer(np.zeros((1, 2, 2, 4), np.float32))
    with pytest.raises(TypeError, match="x must be a floating-point array"):
        layer(np.zeros((1, 2, 6, 6), np.int64))
    with pytest.raises(TypeError, match="x must be a numpy.ndarray"):
        layer([[[[0.0]]]])
    with pytest.raises(ValueError, match="x must not be empty"):
        layer(np.zeros((0, 2, 6, 6), np.float32))
    with pytest.raises(BackwardBeforeForwardError, match="forward"):
        layer.backward(np.zeros((1, 3, 4, 4), np.float32))
    y = layer(np.zeros((1, 2, 6, 6), np.float32))
    assert y.shape == (1, 3, 4, 4)
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(1, 3, 4, 4\), got \(1, 3, 4, 5\)"):
        layer.backward(np.zeros((1, 3, 4, 5), np.float32))
    with pytest.raises(TypeError, match="dy must be a floating-point array"):
        layer.backward(np.zeros((1, 3, 4, 4), np.int32))
    layer.backward(np.zeros((1, 3, 4, 4), np.float32))  # the failed calls did not break the layer


@pytest.mark.parametrize("shape, F, kernel, stride, padding", [
    ((3, 2, 33, 33), 5, 3, 1, 1),   # many pixels per sample, a partial last block of 6
    ((5, 3, 8, 9), 16, 3, 1, 0),    # one full block of 16 output channels
    ((2, 4, 9, 7), 21, (3, 2), (2, 3), (2, 1)),  # a partial second block of 16 channels; stride and padding per axis
    ((1, 6, 14, 14), 16, 5, 1, 0),  # LeNet's conv2, batch of 1
    ((2, 13, 12, 11), 20, (4, 3), 1, (1, 2)),  # tiled input gradient: 3 groups of 6 channels
    ((1, 8, 20, 20), 70, 3, 1, 1),  # input gradient in several passes over the positions (many channels)
    ((2, 4, 9, 9), 40, 3, 2, 1),    # a partial second block of 32 channels (32-lane tiles)
])
@pytest.mark.parametrize("vector_bits", [256, 512])  # 512: 32-lane tiles where wide enough, on any machine
def test_tiled_layer_float32_eval_and_backward(shape, F, kernel, stride, padding, vector_bits, monkeypatch):
    monkeypatch.setattr(minicnn.functional.conv, "VECTOR_BITS", vector_bits)
    rng = np.random.default_rng(21)
    layer = Conv2d(shape[1], F, kernel, stride, padding, rng=1)
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    x = rng.standard_normal(shape).astype(np.float32)
    x64, w64, b64 = x.astype(np.float64), layer.weight.data.astype(np.float64), layer.bias.data.astype(np.float64)
    y = layer(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, naive.conv2d(x64, w64, b64, sh, sw, ph, pw), rtol=1e-4, atol=1e-4)
    with minicnn.no_grad():  # without padding, this reads x in place instead of a padded copy
        np.testing.assert_array_equal(layer(x), y)
    layer(x)
    g = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(g)
    N, P = shape[0], y.shape[2] * y.shape[3]
    cols = naive.im2col(x64, kh, kw, sh, sw, ph, pw).reshape(N, P, -1)
    dw = np.einsum("nfp,npk->fk", g.reshape(N, F, P).astype(np.float64), cols).reshape(w64.shape)
    np.testing.assert_allclose(layer.weight.grad, dw, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(layer.bias.grad, g.sum(axis=(0, 2, 3), dtype=np.float64), rtol=1e-4, atol=1e-3)
    dx_ref = naive.col2im(np.einsum("nfp,fk->npk", g.reshape(N, F, P).astype(np.float64), w64.reshape(F, -1))
                          .reshape(N * P, -1), shape, kh, kw, sh, sw, ph, pw)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape, F, kernel, padding, dilation", [
    ((4, 1, 28, 28), 6, 5, 2, 1),            # LeNet's conv1: one full block of 6 channels
    ((3, 2, 13, 11), 8, (3, 4), (1, 2), (2, 1)),  # a partial second block; non-square, dilated
    ((2, 3, 4, 5), 7, 2, 0, 1),              # positions fewer than one tile's lanes
])
@pytest.mark.parametrize("vector_bits", [256, 512])  # 16- and 32-lane tiles on any machine
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_direct_tiles_and_correlated_input_grad(shape, F, kernel, padding, dilation, vector_bits, dtype, monkeypatch):
    """The direct forward reads up to a tile's lanes past each sample (into its buffer's slack) and
    the input gradient reads dy with margins of zeros: both against the textbook loops."""
    monkeypatch.setattr(minicnn.functional.conv, "VECTOR_BITS", vector_bits)
    rng = np.random.default_rng(5)
    layer = Conv2d(shape[1], F, kernel, 1, padding, dilation, dtype=dtype, rng=2, algorithm="direct")
    (ph, pw), (dh, dw) = layer.padding, layer.dilation
    x = rng.standard_normal(shape).astype(dtype)
    w64, b64 = layer.weight.data.astype(np.float64), layer.bias.data.astype(np.float64)
    y = layer(x)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(y, naive.conv2d(x.astype(np.float64), w64, b64, 1, 1, ph, pw, dh, dw), rtol=tol, atol=tol)
    g = rng.standard_normal(y.shape).astype(dtype)
    dx = layer.backward(g)
    dx_ref, dw_ref, db_ref = naive.conv2d_backward(g.astype(np.float64), x.astype(np.float64), w64, 1, 1, ph, pw, dh, dw)
    for got, ref in ((dx, dx_ref), (layer.weight.grad, dw_ref), (layer.bias.grad, db_ref)):
        np.testing.assert_allclose(got, ref, rtol=tol, atol=10 * tol)
