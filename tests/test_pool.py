"""Max and average pooling: kernels and layers against tests/naive.py, finite differences, PyTorch."""
import os

import numpy as np
import pytest

import naive
from minicnn.kernels import pool as K
from minicnn.nn import AvgPool2d, BackwardBeforeForwardError, MaxPool2d

JIT_OFF = os.environ.get("NUMBA_DISABLE_JIT", "0") == "1"
N_CONFIGS = 10 if JIT_OFF else 80


def random_config(rng, max_size=9):
    """(x_shape, (kh, kw, sh, sw, ph, pw)): any kernel up to 4, stride up to 3 (often < kernel, so
    windows overlap), legal padding, non-square everything, batch and channels from 1."""
    kh, kw = (int(v) for v in rng.integers(1, 5, 2))
    sh, sw = (int(v) for v in rng.integers(1, 4, 2))
    ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
    H = int(rng.integers(max(1, kh - 2 * ph), max_size + 1))
    W = int(rng.integers(max(1, kw - 2 * pw), max_size + 1))
    N, C = (int(v) for v in rng.integers(1, 4, 2))
    return (N, C, H, W), (kh, kw, sh, sw, ph, pw)


def kernel_args(cfg):
    kh, kw, sh, sw, ph, pw = cfg
    return dict(kernel_size=(kh, kw), stride=(sh, sw), padding=(ph, pw))


def layer_for(cls, cfg):
    return cls(**kernel_args(cfg))


def tie_free(rng, shape, dtype=np.float64):
    """Distinct values (a shuffled arithmetic sequence), so each window has one maximum that a small
    perturbation cannot change."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.5 - 3.0).astype(dtype)


# -- agreement with the naive references ---------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_matches_naive_with_ties(rng, dtype):
    for _ in range(N_CONFIGS):
        shape, cfg = random_config(rng)
        x = rng.integers(-2, 3, shape).astype(dtype)  # five values: many tied maxima
        y, argmax = K.max_pool2d_forward(x, **kernel_args(cfg))
        y_ref, argmax_ref = naive.max_pool2d(x, *cfg)
        assert y.dtype == dtype and argmax.dtype == K.INDEX_DTYPE
        np.testing.assert_array_equal(y, y_ref, err_msg=str((shape, cfg)))
        np.testing.assert_array_equal(argmax, argmax_ref, err_msg=str((shape, cfg)))
        dy = rng.standard_normal(y.shape).astype(dtype)
        dx = K.max_pool2d_backward(dy, argmax, shape)
        np.testing.assert_allclose(dx, naive.max_pool2d_backward(dy, argmax_ref, shape), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_eval_mode_max_pool_matches_naive_and_keeps_nothing(rng, dtype):
    """In eval mode MaxPool2d runs the kernel without positions: the values of the recording kernel
    (NaN and -inf included; that one is checked against the naive loops and PyTorch), and backward
    raises (nothing to route back)."""
    for k in range(N_CONFIGS):
        shape, cfg = random_config(rng)
        if k % 2:  # the 2x2 stride-2 fast path, often on odd sizes
            cfg = (2, 2, 2, 2, 0, 0)
            shape = shape[:2] + (max(shape[2], 2), max(shape[3], 2))
        x = rng.integers(-2, 3, shape).astype(dtype)
        x[rng.random(shape) < 0.05] = np.nan
        x[rng.random(shape) < 0.05] = -np.inf
        layer = layer_for(MaxPool2d, cfg).eval()
        y_ref, _ = K.max_pool2d_forward(x, **kernel_args(cfg))
        np.testing.assert_array_equal(layer(x), y_ref, err_msg=str((shape, cfg)))
    y = layer(x)
    with pytest.raises(BackwardBeforeForwardError, match="training-mode forward"):
        layer.backward(np.ones_like(y))
    layer.train()
    layer.backward(np.ones_like(layer(x)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool_matches_naive(rng, dtype):
    for _ in range(N_CONFIGS):
        shape, cfg = random_config(rng)
        x = rng.standard_normal(shape).astype(dtype)
        y = K.avg_pool2d_forward(x, **kernel_args(cfg))
        assert y.dtype == dtype
        np.testing.assert_allclose(y, naive.avg_pool2d(x, *cfg), rtol=1e-5, atol=1e-6, err_msg=str((shape, cfg)))
        dy = rng.standard_normal(y.shape).astype(dtype)
        dx = K.avg_pool2d_backward(dy, shape, **kernel_args(cfg))
        np.testing.assert_allclose(dx, naive.avg_pool2d_backward(dy, shape, *cfg), rtol=1e-5, atol=1e-6,
                                   err_msg=str((shape, cfg)))


@pytest.mark.parametrize("H, W", [(4, 6), (5, 7), (2, 2), (3, 2), (2, 3)])
def test_2x2_stride_2_fast_path(rng, H, W):
    """LeNet's pooling has its own loops; odd sizes leave a last row/column in no window."""
    cfg = (2, 2, 2, 2, 0, 0)
    shape = (2, 3, H, W)
    x = rng.integers(-1, 2, shape).astype(np.float64)
    y, argmax = K.max_pool2d_forward(x, 2)
    y_ref, argmax_ref = naive.max_pool2d(x, *cfg)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(K.max_pool2d_backward(dy, argmax, shape), naive.max_pool2d_backward(dy, argmax_ref, shape))
    x = rng.standard_normal(shape)
    np.testing.assert_allclose(K.avg_pool2d_forward(x, 2), naive.avg_pool2d(x, *cfg))
    # A dirty output buffer must be fully overwritten, including the rows/columns no window covers.
    out = np.full(shape, 7.0)
    np.testing.assert_allclose(K.avg_pool2d_backward(dy, shape, 2, out=out), naive.avg_pool2d_backward(dy, shape, *cfg))


def test_max_pool_backward_overwrites_dirty_out(rng):
    shape, cfg = (2, 2, 6, 5), (3, 2, 1, 2, 1, 1)
    x = rng.standard_normal(shape)
    y, argmax = K.max_pool2d_forward(x, **kernel_args(cfg))
    dy = rng.standard_normal(y.shape)
    out = np.full(shape, 7.0)
    dx = K.max_pool2d_backward(dy, argmax, shape, out=out)
    assert dx is out
    np.testing.assert_allclose(dx, naive.max_pool2d_backward(dy, argmax, shape))


# -- ties: first maximum in row-major window order ------------------------------------------------
def test_constant_plane_first_maximum_wins():
    x = np.full((1, 1, 4, 4), 3.0)
    y, argmax = K.max_pool2d_forward(x, 2)
    np.testing.assert_array_equal(argmax[0, 0], [[0, 2], [8, 10]])
    np.testing.assert_array_equal(y, 3.0)
    # Overlapping 3x3 windows, stride 1, padding 1: each window's first real element.
    y, argmax = K.max_pool2d_forward(x, 3, stride=1, padding=1)
    expected = [[max(oh - 1, 0) * 4 + max(ow - 1, 0) for ow in range(4)] for oh in range(4)]
    np.testing.assert_array_equal(argmax[0, 0], expected)


@pytest.mark.parametrize("cls_cfg", [(2, 2, 2, 2, 0, 0), (3, 3, 1, 1, 1, 1), (2, 3, 1, 2, 1, 0)])
def test_constant_plane_gradient_goes_to_one_element_per_window(cls_cfg):
    shape = (2, 3, 5, 6)
    layer = layer_for(MaxPool2d, cls_cfg)
    y = layer(np.full(shape, -1.5))
    dx = layer.backward(np.ones_like(y))
    # Each window sends its 1 to exactly one element: the total is the number of windows, and the
    # receivers are exactly the naive first maxima.
    assert dx.sum() == y.size
    _, argmax_ref = naive.max_pool2d(np.full(shape, -1.5), *cls_cfg)
    np.testing.assert_array_equal(dx, naive.max_pool2d_backward(np.ones_like(y), argmax_ref, shape))


# -- finite differences (float64) ------------------------------------------------------------------
@pytest.mark.parametrize("cls", [MaxPool2d, AvgPool2d])
def test_backward_matches_finite_differences(rng, cls):
    for _ in range(3 if JIT_OFF else 12):
        shape, cfg = random_config(rng, max_size=6)
        layer = layer_for(cls, cfg)
        x = tie_free(rng, shape) if cls is MaxPool2d else rng.standard_normal(shape)
        y = layer(x)
        weights = rng.standard_normal(y.shape)
        dx = layer.backward(weights)
        numeric = naive.numerical_grad(lambda: float(np.sum(layer(x) * weights)), x)
        np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-6, err_msg=str((shape, cfg)))


# -- padding, NaN, dtypes --------------------------------------------------------------------------
def test_max_padding_is_minus_infinity(rng):
    for cfg in [(3, 3, 1, 1, 1, 1), (2, 4, 2, 3, 1, 2), (3, 2, 2, 1, 1, 1)]:
        x = -1.0 - rng.random((2, 2, 5, 5))  # all negative: a zero pad would win
        y, argmax = K.max_pool2d_forward(x, **kernel_args(cfg))
        assert np.all(y < 0)
        y_ref, argmax_ref = naive.max_pool2d(x, *cfg)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(argmax, argmax_ref)
    x = np.full((1, 1, 3, 3), -np.inf)
    y, argmax = K.max_pool2d_forward(x, 3, stride=1, padding=1)
    assert np.all(y == -np.inf) and argmax.min() >= 0 and argmax.max() < 9


@pytest.mark.parametrize("cfg", [(2, 2, 2, 2, 0, 0), (3, 3, 2, 2, 1, 1), (2, 2, 1, 1, 1, 0)])
def test_nan_propagates(cfg):
    x = np.arange(36, dtype=np.float64).reshape(1, 1, 6, 6)  # increasing: the NaN is never the max
    x[0, 0, 2, 3] = np.nan
    y, argmax = K.max_pool2d_forward(x, **kernel_args(cfg))
    kh, kw, sh, sw, ph, pw = cfg
    for oh in range(y.shape[2]):
        for ow in range(y.shape[3]):
            covers = oh * sh - ph <= 2 < oh * sh - ph + kh and ow * sw - pw <= 3 < ow * sw - pw + kw
            assert np.isnan(y[0, 0, oh, ow]) == covers, (oh, ow)
            if covers:
                assert argmax[0, 0, oh, ow] == 2 * 6 + 3
    assert np.isnan(K.avg_pool2d_forward(x, **kernel_args(cfg))).any()
    # Two NaNs in one window: the last one wins, as in PyTorch.
    x = np.ones((1, 1, 2, 2))
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = np.nan
    y, argmax = K.max_pool2d_forward(x, 2)
    assert np.isnan(y[0, 0, 0, 0]) and argmax[0, 0, 0, 0] == 2
    y, argmax = K.max_pool2d_forward(x, (2, 2), stride=1, padding=(1, 0))
    assert np.isnan(y).all()


@pytest.mark.parametrize("cfg", [(2, 2, 2, 2, 0, 0), (2, 2, 1, 1, 0, 0), (3, 3, 1, 1, 1, 1)])
def test_nan_at_every_window_position(rng, cfg):
    """One or two NaNs at any positions of a 2x2 plane that every window covers: the output is
    NaN and argmax points at the last NaN (fast path and general loops)."""
    for first in range(4):
        for last in range(first, 4):
            x = rng.standard_normal((1, 1, 2, 2))
            x.reshape(-1)[[first, last]] = np.nan
            y, argmax = K.max_pool2d_forward(x, **kernel_args(cfg))
            assert np.isnan(y).all(), (first, last, y)
            np.testing.assert_array_equal(argmax, last, err_msg=str((first, last)))


@pytest.mark.parametrize("cls", [MaxPool2d, AvgPool2d])
def test_layer_keeps_input_dtype(rng, cls):
    cfg = (3, 2, 2, 1, 1, 0)
    layer = layer_for(cls, cfg)
    x64 = tie_free(rng, (2, 3, 7, 5))
    y64 = layer(x64)
    dy64 = rng.standard_normal(y64.shape)
    dx64 = layer.backward(dy64)
    assert y64.dtype == dx64.dtype == np.float64
    y32 = layer(x64.astype(np.float32))
    dx32 = layer.backward(dy64)  # dy is cast to the forward input's dtype
    assert y32.dtype == dx32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-6)
    np.testing.assert_allclose(dx32, dx64, rtol=1e-5, atol=1e-6)
    assert layer(x64.astype(np.float16)).dtype == np.float32
    assert layer.parameters() == []


def test_non_contiguous_input(rng):
    x = rng.standard_normal((3, 2, 8, 9)).transpose(0, 1, 3, 2)[:, :, ::2]
    y, argmax = K.max_pool2d_forward(x, 2, stride=1)
    y_ref, argmax_ref = naive.max_pool2d(x, 2, 2, 1, 1, 0, 0)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)
    np.testing.assert_allclose(AvgPool2d(2, 1)(x), naive.avg_pool2d(x, 2, 2, 1, 1, 0, 0))


def test_empty_batch():
    layer = MaxPool2d(2)
    y = layer(np.zeros((0, 3, 4, 4), np.float32))
    assert y.shape == (0, 3, 2, 2)
    assert layer.backward(y).shape == (0, 3, 4, 4)


# -- layers ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [MaxPool2d, AvgPool2d])
def test_layer_returns_fresh_arrays(rng, cls):
    layer = cls(2)
    x1, x2 = rng.standard_normal((2, 2, 4, 4)), rng.standard_normal((2, 2, 4, 4))
    y1 = layer(x1)
    dx1 = layer.backward(np.ones_like(y1))
    y1_copy, dx1_copy = y1.copy(), dx1.copy()
    y2 = layer(x2)
    dx2 = layer.backward(2 * np.ones_like(y2))
    assert y2 is not y1 and dx2 is not dx1
    np.testing.assert_array_equal(y1, y1_copy)
    np.testing.assert_array_equal(dx1, dx1_copy)
    # A forward on a new shape, then backward, uses the new shape.
    y3 = layer(rng.standard_normal((1, 2, 6, 6)))
    assert y3.shape == (1, 2, 3, 3) and layer.backward(np.ones_like(y3)).shape == (1, 2, 6, 6)


def test_layer_matches_kernels(rng):
    cfg = (3, 2, 2, 1, 1, 1)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    layer = layer_for(MaxPool2d, cfg)
    y = layer(x)
    y_ref, argmax = K.max_pool2d_forward(x, **kernel_args(cfg))
    np.testing.assert_array_equal(y, y_ref)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(dy), K.max_pool2d_backward(dy, argmax, x.shape))
    layer = layer_for(AvgPool2d, cfg)
    np.testing.assert_array_equal(layer(x), K.avg_pool2d_forward(x, **kernel_args(cfg)))
    np.testing.assert_array_equal(layer.backward(dy), K.avg_pool2d_backward(dy, x.shape, **kernel_args(cfg)))


def test_extra_repr():
    assert repr(MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0)"
    assert repr(MaxPool2d((3, 2), stride=1, padding=(1, 0))) == \
        "MaxPool2d(kernel_size=(3, 2), stride=1, padding=(1, 0))"
    assert repr(AvgPool2d(3, 2, 1)) == "AvgPool2d(kernel_size=3, stride=2, padding=1)"
    layer = MaxPool2d(2, stride=None)
    assert layer.kernel_size == layer.stride == (2, 2) and layer.padding == (0, 0)


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [MaxPool2d, AvgPool2d])
def test_bad_construction(cls):
    with pytest.raises(ValueError, match="kernel_size must be >= 1"):
        cls(0)
    with pytest.raises(ValueError, match="kernel_size must be >= 1"):
        cls((2, -1))
    with pytest.raises(ValueError, match="stride must be >= 1"):
        cls(2, stride=0)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        cls(2, stride=-2)
    with pytest.raises(ValueError, match="padding must be >= 0"):
        cls(2, padding=-1)
    with pytest.raises(ValueError, match=r"padding must be at most half the kernel size.*\(1, 0\)"):
        cls((3, 1), padding=(1, 1))
    with pytest.raises(ValueError, match=r"padding must be at most half the kernel size.*\(1, 1\)"):
        cls((2, 3), padding=(2, 1))
    with pytest.raises(ValueError, match="padding must be at most half"):
        cls(2, padding=2)
    with pytest.raises(TypeError, match="kernel_size must be an int or a pair"):
        cls(2.0)
    with pytest.raises(TypeError, match="stride must be an int or a pair"):
        cls(2, stride=(1, 2, 3))


@pytest.mark.parametrize("cls", [MaxPool2d, AvgPool2d])
def test_bad_forward_and_backward(cls):
    layer = cls(3, stride=1, padding=1)
    with pytest.raises(BackwardBeforeForwardError, match="backward called before (a training-mode )?forward"):
        layer.backward(np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match=r"input must be 4-D \(N, C, H, W\), got shape \(3, 4, 4\)"):
        layer(np.zeros((3, 4, 4)))
    with pytest.raises(TypeError, match="input must be a floating-point array.*int64"):
        layer(np.zeros((1, 1, 4, 4), dtype=np.int64))
    with pytest.raises(TypeError, match="input must be a numpy.ndarray"):
        layer([[[[1.0]]]])
    with pytest.raises(ValueError, match="input must have C, H, W >= 1"):
        layer(np.zeros((1, 1, 0, 4)))
    with pytest.raises(ValueError, match=r"kernel_size \(3, 3\) is larger than the padded input.*\(1, 3\)"):
        cls(3)(np.zeros((1, 1, 1, 3)))  # no padding: 1 < 3
    layer(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(2, 3, 4, 5\), got \(2, 3, 5, 4\)"):
        layer.backward(np.zeros((2, 3, 5, 4)))
    with pytest.raises(TypeError, match="dy must be a floating-point array"):
        layer.backward(np.zeros((2, 3, 4, 5), dtype=np.int32))


def test_bad_kernel_wrapper_arguments(rng):
    x = rng.standard_normal((2, 3, 6, 6))
    with pytest.raises(ValueError, match=r"x must be 4-D"):
        K.max_pool2d_forward(x[0], 2)
    with pytest.raises(TypeError, match="x must be a floating-point array"):
        K.avg_pool2d_forward(x.astype(np.int32), 2)
    with pytest.raises(ValueError, match="padding must be at most half"):
        K.avg_pool2d_forward(x, 3, padding=2)
    with pytest.raises(ValueError, match=r"out must be a writable C-contiguous float64 array of shape \(2, 3, 3, 3\)"):
        K.max_pool2d_forward(x, 2, out=np.empty((2, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match=rf"argmax must be a writable C-contiguous {np.dtype(K.INDEX_DTYPE)} array of shape"):
        K.max_pool2d_forward(x, 2, argmax=np.empty((2, 3, 3, 2), K.INDEX_DTYPE))
    y, argmax = K.max_pool2d_forward(x, 2)
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(2, 3, 3, 3\), got \(2, 3, 3, 2\)"):
        K.max_pool2d_backward(y[..., :2], argmax, x.shape)
    with pytest.raises(ValueError, match=r"argmax must be 4-D \(2, 4, OH, OW\)"):
        K.max_pool2d_backward(y, argmax, (2, 4, 6, 6))
    with pytest.raises(TypeError, match="argmax must be an integer numpy.ndarray"):
        K.max_pool2d_backward(y, argmax.astype(np.float64), x.shape)
    with pytest.raises(ValueError, match=r"argmax values must be flat plane indices in \[0, H\*W\) = \[0, 36\)"):
        K.max_pool2d_backward(y, argmax + 30, x.shape)
    with pytest.raises(ValueError, match="input_shape must be a 4-tuple"):
        K.max_pool2d_backward(y, argmax, (2, 3, 36))
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(2, 3, 2, 2\)"):
        K.avg_pool2d_backward(y, x.shape, 3)
    with pytest.raises(ValueError, match=r"kernel_size \(7, 7\) is larger than the padded input"):
        K.avg_pool2d_backward(y, x.shape, 7)


# -- PyTorch (optional) ----------------------------------------------------------------------------
def test_against_torch(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for _ in range(N_CONFIGS // 2):
        shape, cfg = random_config(rng)
        kh, kw, sh, sw, ph, pw = cfg
        x = rng.integers(-2, 3, shape).astype(np.float64)  # ties: PyTorch also keeps the first
        x[rng.random(shape) < 0.03] = np.nan
        xt = torch.from_numpy(x).requires_grad_(True)
        yt, it = F.max_pool2d(xt, (kh, kw), (sh, sw), (ph, pw), return_indices=True)
        dy = rng.standard_normal(yt.shape)
        yt.backward(torch.from_numpy(dy))
        layer = layer_for(MaxPool2d, cfg)
        y = layer(x)
        np.testing.assert_array_equal(y, yt.detach().numpy(), err_msg=str((shape, cfg)))
        np.testing.assert_array_equal(layer._argmax, it.numpy(), err_msg=str((shape, cfg)))
        np.testing.assert_allclose(layer.backward(dy), xt.grad.numpy(), rtol=1e-12, atol=1e-12)

        x = rng.standard_normal(shape).astype(np.float32)
        xt = torch.from_numpy(x).requires_grad_(True)
        yt = F.avg_pool2d(xt, (kh, kw), (sh, sw), (ph, pw))
        dy = rng.standard_normal(yt.shape).astype(np.float32)
        yt.backward(torch.from_numpy(dy))
        layer = layer_for(AvgPool2d, cfg)
        np.testing.assert_allclose(layer(x), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(layer.backward(dy), xt.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cfg", [(2, 2, 2, 2, 0, 0), (2, 2, 1, 1, 1, 1)])
def test_signed_zero_tie_keeps_first(cfg):
    """-0.0 == 0.0 is a tie: the first one wins, with its sign, as PyTorch."""
    x = np.zeros((1, 2, 4, 4))
    x[0, 0, ::2, ::2] = -0.0  # window starts are -0.0 in plane 0
    x[0, 1] = -0.0
    x[0, 1, 1::2, 1::2] = 0.0  # and +0.0 at the ends in plane 1
    y, argmax = K.max_pool2d_forward(x, **kernel_args(cfg))
    y_ref, argmax_ref = naive.max_pool2d(x, *cfg)
    np.testing.assert_array_equal(argmax, argmax_ref)
    np.testing.assert_array_equal(np.signbit(y), np.signbit(y_ref))
