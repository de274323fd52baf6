"""Pooling (max, average, adaptive, unpooling): functional calls and layers against tests/naive.py,
finite differences and PyTorch."""
import os

import numpy as np
import pytest

import minicnn.functional as F
import naive
from minicnn.grad_mode import no_grad
from minicnn.nn import (AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, BackwardBeforeForwardError, MaxPool2d,
                        MaxUnpool2d)

JIT_OFF = os.environ.get("NUMBA_DISABLE_JIT", "0") == "1"
N_CONFIGS = 10 if JIT_OFF else 80


def naive_valid(shape, cfg, dilation=(1, 1), ceil_mode=False):
    """Whether PyTorch's rules (as minicnn applies them) accept the configuration: padding at most half
    the kernel, a non-empty output, and every window holding an input element (minicnn rejects a
    dilated window of padding only, where PyTorch returns -inf and an index outside the plane)."""
    kh, kw, sh, sw, ph, pw = cfg
    if ph > kh // 2 or pw > kw // 2:
        return False
    for size, k, s, p, d in ((shape[2], kh, sh, ph, dilation[0]), (shape[3], kw, sw, pw, dilation[1])):
        out = naive.pool_out_size(size, k, s, p, d, ceil_mode)
        if out < 1 or any(not any(0 <= o * s - p + i * d < size for i in range(k)) for o in range(out)):
            return False
    return True


def random_config(rng, max_size=9, dilated=False, options=False):
    """(x_shape, (kh, kw, sh, sw, ph, pw), (dh, dw), ceil_mode): any kernel up to 4, stride up to 3
    (often < kernel, so windows overlap), padding up to half the kernel (windows start in it),
    non-square everything, batch and channels from 1; with ``dilated`` dilation up to 3, with
    ``options`` ceil_mode half the time. Only configurations ``naive_valid`` accepts."""
    while True:
        kh, kw = (int(v) for v in rng.integers(1, 5, 2))
        sh, sw = (int(v) for v in rng.integers(1, 4, 2))
        ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
        dil = tuple(int(v) for v in rng.integers(1, 4, 2)) if dilated else (1, 1)
        ceil_mode = bool(options and rng.random() < 0.5)
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(1, max_size + 1)),
                 int(rng.integers(1, max_size + 1)))
        cfg = (kh, kw, sh, sw, ph, pw)
        if naive_valid(shape, cfg, dil, ceil_mode):
            return shape, cfg, dil, ceil_mode


def unpoolable(shape, cfg):
    """Whether max unpooling can restore the input's size (PyTorch: within one stride of the default)."""
    kh, kw, sh, sw, ph, pw = cfg
    for size, k, s, p in ((shape[2], kh, sh, ph), (shape[3], kw, sw, pw)):
        default = (naive.pool_out_size(size, k, s, p) - 1) * s + k - 2 * p
        if not default - s < size < default + s:
            return False
    return True


def pool_args(cfg):
    kh, kw, sh, sw, ph, pw = cfg
    return dict(kernel_size=(kh, kw), stride=(sh, sw), padding=(ph, pw))


def tie_free(rng, shape, dtype=np.float64):
    """Distinct values (a shuffled arithmetic sequence), so each window has one maximum that a small
    perturbation cannot change."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.5 - 3.0).astype(dtype)


def check_fd(forward, backward, x, rng, tol=1e-6):
    """``backward(w)`` against central differences of ``sum(forward(x) * w)`` in float64."""
    y = forward(x)
    weights = rng.standard_normal(y.shape)
    dx = backward(weights)
    numeric = naive.numerical_grad(lambda: float(np.sum(forward(x) * weights)), x)
    np.testing.assert_allclose(dx, numeric, rtol=tol, atol=tol)


# -- max pooling against the naive loops -----------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_matches_naive_with_ties(rng, dtype):
    for _ in range(N_CONFIGS):
        shape, cfg, dil, ceil_mode = random_config(rng, dilated=True, options=True)
        args = dict(**pool_args(cfg), dilation=dil, ceil_mode=ceil_mode)
        x = rng.integers(-2, 3, shape).astype(dtype)  # five values: many tied maxima
        y_ref, argmax_ref = naive.max_pool2d(x, *cfg, *dil, ceil_mode=ceil_mode)
        y, ctx = F.max_pool2d_forward(x, **args)
        msg = str((shape, cfg, dil, ceil_mode))
        assert y.dtype == dtype and ctx.indices.dtype == np.int32
        np.testing.assert_array_equal(y, y_ref, err_msg=msg)
        np.testing.assert_array_equal(ctx.indices, argmax_ref, err_msg=msg)
        y2, indices = F.max_pool2d(x, **args, return_indices=True)
        assert indices.dtype == np.int64
        np.testing.assert_array_equal(y2, y_ref, err_msg=msg)
        np.testing.assert_array_equal(indices, argmax_ref, err_msg=msg)
        np.testing.assert_array_equal(F.max_pool2d(x, **args), y_ref, err_msg=msg)  # the no-positions kernel
        dy = rng.standard_normal(y.shape).astype(dtype)
        np.testing.assert_allclose(F.max_pool2d_backward(dy, ctx), naive.max_pool2d_backward(dy, argmax_ref, shape),
                                   rtol=1e-5, atol=1e-6, err_msg=msg)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_without_positions_matches_and_keeps_nothing(rng, dtype):
    """Without gradients (``F.max_pool2d``, a layer under no_grad) the kernel without positions runs:
    the values of the recording kernel, NaN and -inf included (that one is checked against the naive
    loops and PyTorch); the layer keeps nothing, so backward raises."""
    for k in range(N_CONFIGS):
        shape, cfg, dil, ceil_mode = random_config(rng, dilated=True, options=True)
        if k % 2:  # the 2x2 stride-2 fast path, often on odd sizes
            cfg, dil, ceil_mode = (2, 2, 2, 2, 0, 0), (1, 1), False
            shape = shape[:2] + (max(shape[2], 2), max(shape[3], 2))
        x = rng.integers(-2, 3, shape).astype(dtype)
        x[rng.random(shape) < 0.05] = np.nan
        x[rng.random(shape) < 0.05] = -np.inf
        layer = MaxPool2d(**pool_args(cfg), dilation=dil, ceil_mode=ceil_mode)
        y_ref, _ = F.max_pool2d_forward(x, **pool_args(cfg), dilation=dil, ceil_mode=ceil_mode)
        with no_grad():
            np.testing.assert_array_equal(layer(x), y_ref, err_msg=str((shape, cfg)))
    with pytest.raises(BackwardBeforeForwardError, match="forward pass with gradients enabled"):
        layer.backward(np.ones_like(y_ref))
    layer.eval()  # eval mode with gradients on: backward works (as PyTorch)
    layer.backward(np.ones_like(layer(x)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_eval_mode_backward_finds_the_positions_itself(rng, dtype):
    """In eval mode forward skips the positions and backward finds them from the kept input: the same
    outputs and gradients as in training mode (ties, NaN, -inf, overlapping windows)."""
    for k in range(N_CONFIGS):
        shape, cfg, dil, ceil_mode = random_config(rng, dilated=True, options=True)
        if k % 2:
            cfg, dil, ceil_mode = (2, 2, 2, 2, 0, 0), (1, 1), False
            shape = shape[:2] + (max(shape[2], 2), max(shape[3], 2))
        x = rng.integers(-2, 3, shape).astype(dtype)
        x[rng.random(shape) < 0.05] = np.nan
        x[rng.random(shape) < 0.05] = -np.inf
        layer = MaxPool2d(**pool_args(cfg), dilation=dil, ceil_mode=ceil_mode)
        y = layer(x)
        dy = rng.standard_normal(y.shape).astype(dtype)
        dx = layer.backward(dy)
        layer.eval()
        msg = str((shape, cfg, dil, ceil_mode))
        np.testing.assert_array_equal(layer(x), y, err_msg=msg)
        assert isinstance(layer._ctx, np.ndarray)  # the positions were not recorded
        np.testing.assert_array_equal(layer.backward(dy), dx, err_msg=msg)


@pytest.mark.parametrize("H, W", [(4, 6), (5, 7), (2, 2), (3, 2), (2, 3)])
def test_2x2_stride_2_fast_path(rng, H, W):
    """LeNet's pooling has its own loops; odd sizes leave a last row/column in no window, or, with
    ceil_mode, in a partial window that the fast path must not take."""
    shape = (2, 3, H, W)
    for ceil_mode in (False, True):
        x = rng.integers(-1, 2, shape).astype(np.float64)
        y, ctx = F.max_pool2d_forward(x, 2, ceil_mode=ceil_mode)
        y_ref, argmax_ref = naive.max_pool2d(x, 2, 2, 2, 2, 0, 0, ceil_mode=ceil_mode)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(ctx.indices, argmax_ref)
        np.testing.assert_array_equal(F.max_pool2d(x, 2, ceil_mode=ceil_mode), y_ref)
        dy = rng.standard_normal(y.shape)
        np.testing.assert_allclose(F.max_pool2d_backward(dy, ctx), naive.max_pool2d_backward(dy, argmax_ref, shape))
        x = rng.standard_normal(shape)
        for include in (True, False):
            y, ctx = F.avg_pool2d_forward(x, 2, ceil_mode=ceil_mode, count_include_pad=include)
            np.testing.assert_allclose(y, naive.avg_pool2d(x, 2, 2, 2, 2, 0, 0, ceil_mode, include))
            np.testing.assert_allclose(F.avg_pool2d_backward(dy, ctx),
                                       naive.avg_pool2d_backward(dy, shape, 2, 2, 2, 2, 0, 0, include))


def test_constant_plane_first_maximum_wins():
    x = np.full((1, 1, 4, 4), 3.0)
    y, indices = F.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(indices[0, 0], [[0, 2], [8, 10]])
    np.testing.assert_array_equal(y, 3.0)
    # Overlapping 3x3 windows, stride 1, padding 1: each window's first real element.
    y, indices = F.max_pool2d(x, 3, stride=1, padding=1, return_indices=True)
    expected = [[max(oh - 1, 0) * 4 + max(ow - 1, 0) for ow in range(4)] for oh in range(4)]
    np.testing.assert_array_equal(indices[0, 0], expected)
    # Dilated windows that start in the padding: the first tap inside the input.
    y, indices = F.max_pool2d(x, 3, stride=1, padding=1, dilation=2, return_indices=True)
    expected = [[(1 if oh == 0 else oh - 1) * 4 + (1 if ow == 0 else ow - 1) for ow in range(2)] for oh in range(2)]
    np.testing.assert_array_equal(indices[0, 0], expected)


@pytest.mark.parametrize("cfg", [(2, 2, 2, 2, 0, 0), (3, 3, 1, 1, 1, 1), (2, 3, 1, 2, 1, 0)])
def test_constant_plane_gradient_goes_to_one_element_per_window(cfg):
    shape = (2, 3, 5, 6)
    layer = MaxPool2d(**pool_args(cfg), ceil_mode=True)
    y = layer(np.full(shape, -1.5))
    dx = layer.backward(np.ones_like(y))
    # Each window sends its 1 to exactly one element: the total is the number of windows, and the
    # receivers are exactly the naive first maxima.
    assert dx.sum() == y.size
    _, argmax_ref = naive.max_pool2d(np.full(shape, -1.5), *cfg, ceil_mode=True)
    np.testing.assert_array_equal(dx, naive.max_pool2d_backward(np.ones_like(y), argmax_ref, shape))


def test_max_padding_is_minus_infinity(rng):
    for cfg in [(3, 3, 1, 1, 1, 1), (2, 4, 2, 3, 1, 2), (3, 2, 2, 1, 1, 1)]:
        x = -1.0 - rng.random((2, 2, 5, 5))  # all negative: a zero pad would win
        y, indices = F.max_pool2d(x, **pool_args(cfg), ceil_mode=True, return_indices=True)
        assert np.all(y < 0)
        y_ref, argmax_ref = naive.max_pool2d(x, *cfg, ceil_mode=True)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(indices, argmax_ref)
    x = np.full((1, 1, 3, 3), -np.inf)
    y, indices = F.max_pool2d(x, 3, stride=1, padding=1, return_indices=True)
    assert np.all(y == -np.inf) and indices.min() >= 0 and indices.max() < 9


@pytest.mark.parametrize("cfg", [(2, 2, 2, 2, 0, 0), (3, 3, 2, 2, 1, 1), (2, 2, 1, 1, 1, 0)])
def test_nan_propagates(cfg):
    x = np.arange(36, dtype=np.float64).reshape(1, 1, 6, 6)  # increasing: the NaN is never the max
    x[0, 0, 2, 3] = np.nan
    y, indices = F.max_pool2d(x, **pool_args(cfg), return_indices=True)
    kh, kw, sh, sw, ph, pw = cfg
    for oh in range(y.shape[2]):
        for ow in range(y.shape[3]):
            covers = oh * sh - ph <= 2 < oh * sh - ph + kh and ow * sw - pw <= 3 < ow * sw - pw + kw
            assert np.isnan(y[0, 0, oh, ow]) == covers, (oh, ow)
            if covers:
                assert indices[0, 0, oh, ow] == 2 * 6 + 3
    np.testing.assert_array_equal(np.isnan(F.max_pool2d(x, **pool_args(cfg))), np.isnan(y))
    assert np.isnan(F.avg_pool2d(x, **pool_args(cfg))).any()
    # Two NaNs in one window: the last one wins, as in PyTorch.
    x = np.ones((1, 1, 2, 2))
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = np.nan
    y, indices = F.max_pool2d(x, 2, return_indices=True)
    assert np.isnan(y[0, 0, 0, 0]) and indices[0, 0, 0, 0] == 2
    assert np.isnan(F.max_pool2d(x, (2, 2), stride=1, padding=(1, 0))).all()
    y, indices = F.adaptive_max_pool2d(x, 1, return_indices=True)
    assert np.isnan(y[0, 0, 0, 0]) and indices[0, 0, 0, 0] == 2


@pytest.mark.parametrize("cfg", [(2, 2, 2, 2, 0, 0), (2, 2, 1, 1, 0, 0), (3, 3, 1, 1, 1, 1)])
def test_nan_at_every_window_position(rng, cfg):
    """One or two NaNs at any positions of a 2x2 plane that every window covers: the output is
    NaN and the index points at the last NaN (fast path and general loops)."""
    for first in range(4):
        for last in range(first, 4):
            x = rng.standard_normal((1, 1, 2, 2))
            x.reshape(-1)[[first, last]] = np.nan
            y, indices = F.max_pool2d(x, **pool_args(cfg), return_indices=True)
            assert np.isnan(y).all(), (first, last, y)
            np.testing.assert_array_equal(indices, last, err_msg=str((first, last)))


@pytest.mark.parametrize("cfg", [(2, 2, 2, 2, 0, 0), (2, 2, 1, 1, 1, 1)])
def test_signed_zero_tie_keeps_first(cfg):
    """-0.0 == 0.0 is a tie: the first one wins, with its sign, as PyTorch."""
    x = np.zeros((1, 2, 4, 4))
    x[0, 0, ::2, ::2] = -0.0  # window starts are -0.0 in plane 0
    x[0, 1] = -0.0
    x[0, 1, 1::2, 1::2] = 0.0  # and +0.0 at the ends in plane 1
    y, indices = F.max_pool2d(x, **pool_args(cfg), return_indices=True)
    y_ref, argmax_ref = naive.max_pool2d(x, *cfg)
    np.testing.assert_array_equal(indices, argmax_ref)
    np.testing.assert_array_equal(np.signbit(y), np.signbit(y_ref))


# -- average pooling ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool_matches_naive(rng, dtype):
    for k in range(N_CONFIGS):
        shape, cfg, _, ceil_mode = random_config(rng, options=True)
        include = bool(k % 3)
        divisor = [None, None, int(rng.integers(-3, 6)) or 7][k % 3]
        args = dict(**pool_args(cfg), ceil_mode=ceil_mode, count_include_pad=include, divisor_override=divisor)
        x = rng.standard_normal(shape).astype(dtype)
        y, ctx = F.avg_pool2d_forward(x, **args)
        msg = str((shape, cfg, ceil_mode, include, divisor))
        assert y.dtype == dtype
        np.testing.assert_allclose(y, naive.avg_pool2d(x, *cfg, ceil_mode, include, divisor), rtol=1e-5, atol=1e-6,
                                   err_msg=msg)
        np.testing.assert_array_equal(F.avg_pool2d(x, **args), y)
        dy = rng.standard_normal(y.shape).astype(dtype)
        np.testing.assert_allclose(F.avg_pool2d_backward(dy, ctx),
                                   naive.avg_pool2d_backward(dy, shape, *cfg, include, divisor),
                                   rtol=1e-5, atol=1e-6, err_msg=msg)


# -- adaptive pooling -------------------------------------------------------------------------------
def adaptive_sizes(rng):
    """Random (shape, output_size): outputs smaller, equal or larger than the input, often not dividing it."""
    shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4)), int(rng.integers(1, 10)), int(rng.integers(1, 10)))
    return shape, (int(rng.integers(1, 12)), int(rng.integers(1, 12)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adaptive_pools_match_naive(rng, dtype):
    for k in range(N_CONFIGS):
        shape, out = adaptive_sizes(rng)
        if k % 5 == 0:
            out = (1, 1)  # global pooling's own loop
        x = rng.integers(-2, 3, shape).astype(dtype) if k % 2 else rng.standard_normal(shape).astype(dtype)
        msg = str((shape, out))
        y, ctx = F.adaptive_avg_pool2d_forward(x, out)
        np.testing.assert_allclose(y, naive.adaptive_avg_pool2d(x, *out), rtol=1e-5, atol=1e-6, err_msg=msg)
        dy = rng.standard_normal(y.shape).astype(dtype)
        np.testing.assert_allclose(F.adaptive_avg_pool2d_backward(dy, ctx),
                                   naive.adaptive_avg_pool2d_backward(dy, shape), rtol=1e-5, atol=1e-6, err_msg=msg)
        y_ref, argmax_ref = naive.adaptive_max_pool2d(x, *out)
        y, indices = F.adaptive_max_pool2d(x, out, return_indices=True)
        assert indices.dtype == np.int64
        np.testing.assert_array_equal(y, y_ref, err_msg=msg)
        np.testing.assert_array_equal(indices, argmax_ref, err_msg=msg)
        y, ctx = F.adaptive_max_pool2d_forward(x, out)
        np.testing.assert_array_equal(ctx.indices, argmax_ref, err_msg=msg)
        np.testing.assert_allclose(F.adaptive_max_pool2d_backward(dy, ctx),
                                   naive.max_pool2d_backward(dy, argmax_ref, shape), rtol=1e-5, atol=1e-6)


def test_adaptive_output_size_forms(rng):
    x = rng.standard_normal((2, 3, 5, 7))
    assert F.adaptive_avg_pool2d(x, 3).shape == (2, 3, 3, 3)
    assert F.adaptive_avg_pool2d(x, (None, 2)).shape == (2, 3, 5, 2)
    np.testing.assert_allclose(F.adaptive_avg_pool2d(x, (None, None)), x)
    assert F.adaptive_max_pool2d(x, [4, None]).shape == (2, 3, 4, 7)
    np.testing.assert_allclose(F.adaptive_avg_pool2d(x, 1)[..., 0, 0], x.mean(axis=(2, 3)))
    assert F.adaptive_avg_pool2d(x, (0, 2)).shape == (2, 3, 0, 2)  # as PyTorch: an empty output
    layer = AdaptiveAvgPool2d((None, 2))
    y = layer(x)
    assert y.shape == (2, 3, 5, 2) and layer.backward(y).shape == x.shape
    layer = AdaptiveMaxPool2d(2, return_indices=True)
    y, indices = layer(x)
    assert indices.dtype == np.int64 and layer.backward(y).shape == x.shape


# -- max unpooling ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_unpool_matches_naive(rng, dtype):
    for _ in range(N_CONFIGS // 2):
        shape, cfg, _, _ = random_config(rng)
        while not unpoolable(shape, cfg):
            shape, cfg, _, _ = random_config(rng)
        x = tie_free(rng, shape, dtype)
        y, indices = F.max_pool2d(x, **pool_args(cfg), return_indices=True)
        out = F.max_unpool2d(y, indices, **pool_args(cfg), output_size=shape[2:])
        np.testing.assert_array_equal(out, naive.max_unpool2d(y, indices, *shape[2:]), err_msg=str((shape, cfg)))
        # Unpooling puts every maximum back where it was (overlapping windows write the same value).
        np.testing.assert_array_equal(out.reshape(-1)[out.reshape(-1) != 0],
                                      x.reshape(-1)[out.reshape(-1) != 0])
        u, ctx = F.max_unpool2d_forward(y, indices.astype(np.int32), **pool_args(cfg), output_size=shape)
        np.testing.assert_array_equal(u, out)
        dy = rng.standard_normal(u.shape).astype(dtype)
        np.testing.assert_array_equal(F.max_unpool2d_backward(dy, ctx), naive.max_unpool2d_backward(dy, indices))


def test_max_unpool_default_and_valid_output_sizes(rng):
    x = rng.standard_normal((1, 2, 3, 4))
    indices = np.zeros((1, 2, 3, 4), dtype=np.int64)
    assert F.max_unpool2d(x, indices, 2).shape == (1, 2, 6, 8)
    assert F.max_unpool2d(x, indices, (3, 2), stride=(2, 1), padding=(1, 0)).shape == (1, 2, 5, 5)
    for size in [(5, 7), (7, 9), (1, 2, 6, 8)]:  # strictly within one stride of (6, 8)
        assert F.max_unpool2d(x, indices, 2, output_size=size).shape == (1, 2) + tuple(size[-2:])
    layer = MaxUnpool2d(2)
    y = layer(x, indices, output_size=(7, 9))
    assert y.shape == (1, 2, 7, 9) and layer.backward(y).shape == x.shape


# -- finite differences (float64) ------------------------------------------------------------------
def test_backward_matches_finite_differences(rng):
    for k in range(3 if JIT_OFF else 12):
        shape, cfg, dil, ceil_mode = random_config(rng, max_size=6, dilated=True, options=True)
        layer = MaxPool2d(**pool_args(cfg), dilation=dil, ceil_mode=ceil_mode)
        check_fd(layer, lambda w: layer.backward(w), tie_free(rng, shape), rng)
        layer = AvgPool2d(**pool_args(cfg), ceil_mode=ceil_mode, count_include_pad=bool(k % 2),
                          divisor_override=[None, 3][k % 3 == 0])
        check_fd(layer, lambda w: layer.backward(w), rng.standard_normal(shape), rng)
        out = (int(rng.integers(1, 7)), int(rng.integers(1, 7)))
        for layer in (AdaptiveAvgPool2d(out), AdaptiveMaxPool2d(out), AdaptiveAvgPool2d(1)):  # 1: global kernels
            check_fd(layer, lambda w: layer.backward(w), tie_free(rng, shape), rng)


@pytest.mark.parametrize("cfg", [(2, 2, 2, 2, 0, 0), (3, 2, 3, 2, 1, 0), (2, 3, 3, 3, 1, 1)])
def test_unpool_backward_matches_finite_differences(rng, cfg):
    """Windows that do not overlap: with overlapping ones two inputs can be written to one place
    (the last write wins), and the gradient (PyTorch's too) is the gather, not that function's."""
    shape = (2, 2, 6, 7)
    y, indices = F.max_pool2d(tie_free(rng, shape), **pool_args(cfg), return_indices=True)
    unpool = MaxUnpool2d(**pool_args(cfg))
    check_fd(lambda v: unpool(v, indices, output_size=shape), unpool.backward, y, rng)


# -- dtypes, layouts, layers --------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: MaxPool2d((3, 2), 2, (1, 0), dilation=(1, 2), ceil_mode=True),
                                  lambda: AvgPool2d((3, 2), (2, 1), (1, 0), ceil_mode=True, count_include_pad=False),
                                  lambda: AdaptiveAvgPool2d((3, 2)), lambda: AdaptiveMaxPool2d((4, 3))])
def test_layer_keeps_input_dtype(rng, make):
    layer = make()
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
    y, indices = F.max_pool2d(x, 2, stride=1, return_indices=True)
    y_ref, argmax_ref = naive.max_pool2d(x, 2, 2, 1, 1, 0, 0)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(indices, argmax_ref)
    np.testing.assert_allclose(AvgPool2d(2, 1)(x), naive.avg_pool2d(x, 2, 2, 1, 1, 0, 0))
    np.testing.assert_allclose(F.adaptive_avg_pool2d(x, (3, 2)), naive.adaptive_avg_pool2d(x, 3, 2))


@pytest.mark.parametrize("make", [lambda: MaxPool2d(2), lambda: AvgPool2d(2), lambda: AdaptiveAvgPool2d(1),
                                  lambda: AdaptiveMaxPool2d(2)])
def test_empty_batch(make):
    layer = make()
    y = layer(np.zeros((0, 3, 4, 4), np.float32))
    assert y.shape[:2] == (0, 3)
    assert layer.backward(y).shape == (0, 3, 4, 4)


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


def test_layers_match_functional(rng):
    cfg = pool_args((3, 2, 2, 1, 1, 1))
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    layer = MaxPool2d(**cfg, dilation=(2, 1), return_indices=True)
    y, indices = layer(x)
    y_ref, ctx = F.max_pool2d_forward(x, **cfg, dilation=(2, 1))
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(indices, ctx.indices)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(dy), F.max_pool2d_backward(dy, ctx))
    layer = AvgPool2d(**cfg, divisor_override=5)
    y, ctx = F.avg_pool2d_forward(x, **cfg, divisor_override=5)
    np.testing.assert_array_equal(layer(x), y)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(dy), F.avg_pool2d_backward(dy, ctx))


def test_extra_repr():
    assert repr(MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(MaxPool2d((3, 2), stride=1, padding=(1, 0), ceil_mode=True)) == \
        "MaxPool2d(kernel_size=(3, 2), stride=1, padding=(1, 0), dilation=1, ceil_mode=True)"
    assert repr(AvgPool2d(3, 2, 1)) == "AvgPool2d(kernel_size=3, stride=2, padding=1)"
    assert repr(AdaptiveAvgPool2d((None, 7))) == "AdaptiveAvgPool2d(output_size=(None, 7))"
    assert repr(AdaptiveMaxPool2d(1)) == "AdaptiveMaxPool2d(output_size=1)"
    assert repr(MaxUnpool2d(2)) == "MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))"
    layer = MaxPool2d(2, stride=None)
    assert layer.kernel_size == layer.stride == (2, 2) and layer.padding == (0, 0) and layer.dilation == (1, 1)


# -- bad input -------------------------------------------------------------------------------------
def test_validation_accepts_exactly_the_valid_configurations(rng):
    """Random configurations, valid or not: minicnn accepts exactly those ``naive_valid`` accepts
    (PyTorch's rules), and rejects the others with a ValueError naming the argument."""
    accepted = rejected = 0
    for _ in range(400):
        kh, kw, sh, sw, dh, dw = (int(v) for v in rng.integers(1, 5, 6))
        ph, pw = (int(v) for v in rng.integers(0, 4, 2))
        ceil_mode = bool(rng.random() < 0.5)
        shape = (1, 1, int(rng.integers(1, 8)), int(rng.integers(1, 8)))
        cfg = (kh, kw, sh, sw, ph, pw)
        args = dict(**pool_args(cfg), dilation=(dh, dw), ceil_mode=ceil_mode)
        x = np.zeros(shape)
        if naive_valid(shape, cfg, (dh, dw), ceil_mode):
            accepted += 1
            assert F.max_pool2d(x, **args).shape[2:] == (naive.pool_out_size(shape[2], kh, sh, ph, dh, ceil_mode),
                                                         naive.pool_out_size(shape[3], kw, sw, pw, dw, ceil_mode))
        else:
            rejected += 1
            with pytest.raises(ValueError, match="padding|kernel_size|dilation"):
                F.max_pool2d(x, **args)
    assert accepted > 25 and rejected > 25


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


def test_bad_pooling_options():
    with pytest.raises(ValueError, match="dilation must be >= 1"):
        MaxPool2d(2, dilation=0)
    with pytest.raises(TypeError, match="dilation must be an int or a pair"):
        F.max_pool2d(np.zeros((1, 1, 4, 4)), 2, dilation=1.5)
    with pytest.raises(ValueError, match="divisor_override must not be zero"):
        AvgPool2d(2, divisor_override=0)
    with pytest.raises(TypeError, match="divisor_override must be None or an int"):
        F.avg_pool2d(np.zeros((1, 1, 4, 4)), 2, divisor_override=2.0)
    # A dilated window of padding only (PyTorch returns -inf and an index outside the plane there).
    with pytest.raises(ValueError, match=r"dilation \(2, 2\) with padding \(1, 1\) leaves window 0 along H"):
        F.max_pool2d(np.zeros((1, 1, 1, 3)), 2, stride=1, padding=1, dilation=2)
    with pytest.raises(ValueError, match=r"kernel_size \(3, 3\) with dilation \(2, 2\) spans \(5, 5\) pixels, larger than"):
        F.max_pool2d(np.zeros((1, 1, 4, 4)), 3, dilation=2)
    for bad in [(-1, 2), (2, -3), 2.5, (1, 2, 3), "2"]:
        with pytest.raises((TypeError, ValueError), match="output_size"):
            F.adaptive_avg_pool2d(np.zeros((1, 1, 4, 4)), bad)
        with pytest.raises((TypeError, ValueError), match="output_size"):
            AdaptiveMaxPool2d(bad)


@pytest.mark.parametrize("make", [lambda: MaxPool2d(3, stride=1, padding=1), lambda: AvgPool2d(3, stride=1, padding=1),
                                  lambda: AdaptiveAvgPool2d((4, 5)), lambda: AdaptiveMaxPool2d((4, 5))])
def test_bad_forward_and_backward(make):
    layer = make()
    with pytest.raises(BackwardBeforeForwardError, match="needs a forward pass"):
        layer.backward(np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match=r"input must be 4-D \(N, C, H, W\), got shape \(3, 4, 4\)"):
        layer(np.zeros((3, 4, 4)))
    with pytest.raises(TypeError, match="input must be a floating-point array.*int64"):
        layer(np.zeros((1, 1, 4, 4), dtype=np.int64))
    with pytest.raises(TypeError, match="input must be a numpy.ndarray"):
        layer([[[[1.0]]]])
    with pytest.raises(ValueError, match="input must have C, H, W >= 1"):
        layer(np.zeros((1, 1, 0, 4)))
    layer(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(2, 3, 4, 5\), got \(2, 3, 5, 4\)"):
        layer.backward(np.zeros((2, 3, 5, 4)))
    layer(np.zeros((2, 3, 4, 5)))  # a failed backward has used up the forward's ctx
    with pytest.raises(TypeError, match="dy must be a floating-point array"):
        layer.backward(np.zeros((2, 3, 4, 5), dtype=np.int32))
    with pytest.raises(ValueError, match=r"kernel_size \(3, 3\) .* larger than the padded input \(1, 3\)"):
        MaxPool2d(3)(np.zeros((1, 1, 1, 3)))  # no padding: 1 < 3


def test_bad_unpooling_arguments(rng):
    x = rng.standard_normal((2, 3, 3, 3))
    y, indices = F.max_pool2d(rng.standard_normal((2, 3, 6, 6)), 2, return_indices=True)
    with pytest.raises(ValueError, match=r"invalid output_size \(8, 6\) \(dim 0 must be between 4 and 8"):
        F.max_unpool2d(y, indices, 2, output_size=(8, 6))
    with pytest.raises(ValueError, match=r"invalid output_size \(1, 1, 6, 4\) \(dim 1 must be between 4 and 8"):
        F.max_unpool2d(y, indices, 2, output_size=(1, 1, 6, 4))
    with pytest.raises(ValueError, match="output_size must be"):
        F.max_unpool2d(y, indices, 2, output_size=(6, 6, 6))
    with pytest.raises(ValueError, match=r"indices must hold flat plane indices in \[0, OH\*OW\) = \[0, 25\)"):
        F.max_unpool2d(y, indices, 2, output_size=(5, 5))  # an index of row 5 cannot come from a 5x5 plane
    with pytest.raises(ValueError, match=r"indices must hold flat plane indices.*from -1"):
        F.max_unpool2d(y, indices - 1, 2)
    with pytest.raises(TypeError, match="indices must be an integer array"):
        F.max_unpool2d(y, indices.astype(np.float64), 2)
    with pytest.raises(TypeError, match="indices must be a numpy.ndarray"):
        F.max_unpool2d(y, indices.tolist(), 2)
    with pytest.raises(ValueError, match=r"indices must have the input's shape \(2, 3, 3, 3\), got \(2, 3, 3, 2\)"):
        F.max_unpool2d(x, indices[..., :2], 2)
    with pytest.raises(ValueError, match="kernel_size must be >= 1"):
        MaxUnpool2d(0)
    with pytest.raises(ValueError, match="output size must be >= 1"):
        F.max_unpool2d(np.zeros((1, 1, 1, 1)), np.zeros((1, 1, 1, 1), np.int64), 1, padding=1)
    layer = MaxUnpool2d(2)
    with pytest.raises(BackwardBeforeForwardError):
        layer.backward(np.zeros((2, 3, 6, 6)))
    layer(y, indices)
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(2, 3, 6, 6\)"):
        layer.backward(np.zeros((2, 3, 6, 5)))


# -- PyTorch (optional) ----------------------------------------------------------------------------
def test_against_torch(rng):
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    for k in range(N_CONFIGS // 2):
        shape, cfg, dil, ceil_mode = random_config(rng, dilated=True, options=True)
        kh, kw, sh, sw, ph, pw = cfg
        msg = str((shape, cfg, dil, ceil_mode))
        x = rng.integers(-2, 3, shape).astype(np.float64)  # ties: PyTorch also keeps the first
        x[rng.random(shape) < 0.03] = np.nan
        xt = torch.from_numpy(x).requires_grad_(True)
        yt, it = TF.max_pool2d(xt, (kh, kw), (sh, sw), (ph, pw), dil, ceil_mode=ceil_mode, return_indices=True)
        dy = rng.standard_normal(yt.shape)
        yt.backward(torch.from_numpy(dy))
        layer = MaxPool2d(**pool_args(cfg), dilation=dil, ceil_mode=ceil_mode, return_indices=True)
        y_max, indices = layer(x)
        np.testing.assert_array_equal(y_max, yt.detach().numpy(), err_msg=msg)
        np.testing.assert_array_equal(indices, it.numpy(), err_msg=msg)
        np.testing.assert_allclose(layer.backward(dy), xt.grad.numpy(), rtol=1e-12, atol=1e-12)

        include, divisor = bool(k % 2), [None, 3, -2][k % 3]
        x = rng.standard_normal(shape).astype(np.float32)
        xt = torch.from_numpy(x).requires_grad_(True)
        yt = TF.avg_pool2d(xt, (kh, kw), (sh, sw), (ph, pw), ceil_mode, include, divisor)
        dy = rng.standard_normal(yt.shape).astype(np.float32)
        yt.backward(torch.from_numpy(dy))
        layer = AvgPool2d(**pool_args(cfg), ceil_mode=ceil_mode, count_include_pad=include, divisor_override=divisor)
        np.testing.assert_allclose(layer(x), yt.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=msg)
        np.testing.assert_allclose(layer.backward(dy), xt.grad.numpy(), rtol=1e-5, atol=1e-6, err_msg=msg)
        if ceil_mode or dil != (1, 1) or not unpoolable(shape, cfg):
            continue
        y_t = torch.from_numpy(y_max)
        u = TF.max_unpool2d(y_t, it, (kh, kw), (sh, sw), (ph, pw), output_size=shape[2:])
        np.testing.assert_array_equal(F.max_unpool2d(y_max, indices, **pool_args(cfg), output_size=shape[2:]), u.numpy())


def test_adaptive_against_torch(rng):
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    for k in range(N_CONFIGS // 2):
        shape, out = adaptive_sizes(rng)
        if k % 4 == 0:
            out = (1, 1)
        if k % 4 == 1:
            out = (None, out[1])
        x = rng.integers(-2, 3, shape).astype(np.float64)
        x[rng.random(shape) < 0.03] = np.nan
        xt = torch.from_numpy(x).requires_grad_(True)
        yt, it = TF.adaptive_max_pool2d(xt, out, return_indices=True)
        dy = rng.standard_normal(yt.shape)
        yt.backward(torch.from_numpy(dy))
        layer = AdaptiveMaxPool2d(out, return_indices=True)
        y, indices = layer(x)
        np.testing.assert_array_equal(y, yt.detach().numpy(), err_msg=str((shape, out)))
        np.testing.assert_array_equal(indices, it.numpy(), err_msg=str((shape, out)))
        np.testing.assert_allclose(layer.backward(dy), xt.grad.numpy(), rtol=1e-12, atol=1e-12)

        x = rng.standard_normal(shape).astype(np.float32)
        xt = torch.from_numpy(x).requires_grad_(True)
        yt = TF.adaptive_avg_pool2d(xt, out)
        dy = rng.standard_normal(yt.shape).astype(np.float32)
        yt.backward(torch.from_numpy(dy))
        layer = AdaptiveAvgPool2d(out)
        np.testing.assert_allclose(layer(x), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(layer.backward(dy), xt.grad.numpy(), rtol=1e-5, atol=1e-6)
