"""Upsampling (interpolate / Upsample, "nearest" and "bilinear") and Dropout2d against tests/naive.py,
finite differences and PyTorch."""
import os

import numpy as np
import pytest

import minicnn
import minicnn.functional as F
import naive
from minicnn.grad_mode import no_grad
from minicnn.nn import BackwardBeforeForwardError, Dropout2d, Upsample

JIT_OFF = os.environ.get("NUMBA_DISABLE_JIT", "0") == "1"
N_CONFIGS = 8 if JIT_OFF else 40


def random_resize(rng):
    """(shape, kwargs for interpolate, (OH, OW), scales as PyTorch's kernels use them): a size or a
    scale factor (integer, fractional, below 1, one per axis), sometimes recompute_scale_factor."""
    shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4)), int(rng.integers(1, 8)), int(rng.integers(1, 8)))
    H, W = shape[2:]
    kind = int(rng.integers(0, 4))
    if kind == 0:
        size = (int(rng.integers(1, 15)), int(rng.integers(1, 15)))
        return shape, dict(size=size), size, (None, None)
    if kind == 1:
        f = int(rng.integers(1, 4))
        return shape, dict(scale_factor=f), (H * f, W * f), (float(f), float(f))
    while True:
        scales = tuple(float(v) for v in np.round(rng.uniform(0.3, 3.2, 2), 2))
        out = (int(np.floor(H * scales[0])), int(np.floor(W * scales[1])))
        if min(out) >= 1:
            break
    if kind == 2:
        return shape, dict(scale_factor=scales), out, scales
    return shape, dict(scale_factor=scales, recompute_scale_factor=True), out, (None, None)


def modes():
    return [("nearest", None), ("bilinear", False), ("bilinear", True), ("bilinear", None)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_interpolate_matches_naive(rng, dtype):
    for _ in range(N_CONFIGS):
        shape, kw, out, scales = random_resize(rng)
        x = rng.standard_normal(shape).astype(dtype)
        for mode, align in modes():
            msg = str((shape, kw, mode, align))
            y, ctx = F.interpolate_forward(x, mode=mode, align_corners=align, **kw)
            assert y.shape == shape[:2] + out and y.dtype == dtype, msg
            ref = naive.interpolate(x.astype(np.float64), *out, mode, bool(align), scales)
            np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6, err_msg=msg)
            np.testing.assert_array_equal(F.interpolate(x, mode=mode, align_corners=align, **kw), y)
            dy = rng.standard_normal(y.shape).astype(dtype)
            np.testing.assert_allclose(F.interpolate_backward(dy, ctx),
                                       naive.interpolate_backward(dy.astype(np.float64), shape, mode, bool(align), scales),
                                       rtol=1e-5, atol=1e-5, err_msg=msg)


@pytest.mark.parametrize("H, W, f", [(3, 5, 2), (1, 1, 2), (4, 2, 3), (2, 3, 1)])
def test_nearest_integer_scale_copies_blocks(rng, H, W, f):
    """Exact upsampling by f (2x has its own loops): every input element fills an f x f block; the
    gradient is the sum over that block."""
    x = rng.standard_normal((2, 3, H, W))
    y, ctx = F.interpolate_forward(x, scale_factor=f)
    np.testing.assert_array_equal(y, np.repeat(np.repeat(x, f, axis=2), f, axis=3))
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(F.interpolate_backward(dy, ctx), dy.reshape(2, 3, H, f, W, f).sum(axis=(3, 5)))


def test_bilinear_align_corners_keeps_corners(rng):
    x = rng.standard_normal((1, 2, 4, 5))
    y = F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=True)
    np.testing.assert_allclose(y[..., ::2, ::2], x, rtol=1e-12, atol=1e-12)  # (S-1)/(O-1) = 1/2 exactly
    np.testing.assert_allclose(F.interpolate(x, size=(4, 5), mode="bilinear"), x)  # same size: the identity


def test_backward_matches_finite_differences(rng):
    for _ in range(3 if JIT_OFF else 10):
        shape, kw, _, _ = random_resize(rng)
        for mode, align in modes()[:3]:
            layer = Upsample(mode=mode, align_corners=align, **kw)
            x = rng.standard_normal(shape)
            y = layer(x)
            weights = rng.standard_normal(y.shape)
            dx = layer.backward(weights)
            numeric = naive.numerical_grad(lambda: float(np.sum(layer(x) * weights)), x)
            np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-6, err_msg=str((shape, kw, mode, align)))


def test_upsample_layer(rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    layer = Upsample(scale_factor=2)
    y = layer(x)
    assert y.shape == (2, 3, 8, 10) and y.dtype == np.float32
    assert layer.backward(np.ones_like(y)).dtype == np.float32
    layer(x)
    np.testing.assert_array_equal(layer.backward(np.ones_like(y)), 4.0)  # each input feeds a 2x2 block
    with no_grad():
        layer(x)
    with pytest.raises(BackwardBeforeForwardError):
        layer.backward(np.ones_like(y))
    assert repr(layer) == "Upsample(scale_factor=2.0, mode='nearest')"
    assert repr(Upsample(scale_factor=(2, 3))) == "Upsample(scale_factor=(2.0, 3.0), mode='nearest')"
    assert repr(Upsample(size=(3, 4), mode="bilinear")) == "Upsample(size=(3, 4), mode='bilinear')"
    assert Upsample(size=7, mode="bilinear", align_corners=True)(x).shape == (2, 3, 7, 7)
    assert layer.parameters() == []


def test_bad_interpolate_arguments(rng):
    x = rng.standard_normal((1, 1, 3, 4))
    with pytest.raises(ValueError, match="exactly one of size or scale_factor must be given, got both"):
        F.interpolate(x, size=2, scale_factor=2)
    with pytest.raises(ValueError, match="exactly one of size or scale_factor must be given, got neither"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="align_corners option can only be set with the interpolating mode"):
        F.interpolate(x, size=2, align_corners=False)
    with pytest.raises(ValueError, match="mode must be one of"):
        F.interpolate(x, size=2, mode="bicubic")
    with pytest.raises(ValueError, match="size must be >= 1"):
        F.interpolate(x, size=(0, 2))
    with pytest.raises(TypeError, match="size must be an int or a pair"):
        F.interpolate(x, size=(1, 2, 3))
    with pytest.raises(ValueError, match="scale_factor must be > 0"):
        F.interpolate(x, scale_factor=-2.0)
    with pytest.raises(ValueError, match=r"scale_factor 0.1 gives an empty output \(0, 0\)"):
        F.interpolate(x, scale_factor=0.1)
    with pytest.raises(TypeError, match="scale_factor must be a number or a pair"):
        F.interpolate(x, scale_factor=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="recompute_scale_factor is not meaningful with an explicit size"):
        F.interpolate(x, size=2, recompute_scale_factor=True)
    with pytest.raises(TypeError, match="align_corners must be a bool"):
        F.interpolate(x, size=2, mode="bilinear", align_corners=1)
    with pytest.raises(ValueError, match=r"input must be 4-D"):
        F.interpolate(x[0], size=2)
    with pytest.raises(ValueError, match="exactly one of size or scale_factor"):
        Upsample()
    with pytest.raises(ValueError, match="align_corners option"):
        Upsample(scale_factor=2, align_corners=True)
    layer = Upsample(size=(5, 6))
    layer(x)
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(1, 1, 5, 6\)"):
        layer.backward(np.zeros((1, 1, 6, 5)))


def test_interpolate_against_torch(rng):
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    for _ in range(N_CONFIGS):
        shape, kw, _, _ = random_resize(rng)
        for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-5)):
            x = rng.standard_normal(shape).astype(dtype)
            for mode, align in modes():
                msg = str((shape, kw, mode, align, dtype))
                xt = torch.from_numpy(x).requires_grad_(True)
                yt = TF.interpolate(xt, mode=mode, align_corners=align, **kw)
                dy = rng.standard_normal(yt.shape).astype(dtype)
                yt.backward(torch.from_numpy(dy))
                y, ctx = F.interpolate_forward(x, mode=mode, align_corners=align, **kw)
                np.testing.assert_allclose(y, yt.detach().numpy(), rtol=tol, atol=tol, err_msg=msg)
                np.testing.assert_allclose(F.interpolate_backward(dy, ctx), xt.grad.numpy(), rtol=tol, atol=tol,
                                           err_msg=msg)


# -- Dropout2d -------------------------------------------------------------------------------------
def test_dropout2d_zeroes_whole_channels(rng):
    x = rng.standard_normal((16, 32, 3, 4)).astype(np.float32)
    layer = Dropout2d(0.25, rng=7)
    y = layer(x)
    kept = np.abs(y).reshape(16, 32, -1).max(axis=2) > 0
    assert 0.6 < kept.mean() < 0.9  # about 1 - p of 512 channels
    scale = kept.astype(np.float32) / np.float32(0.75)
    np.testing.assert_allclose(y, naive.scale_channels(x, scale), rtol=1e-6)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_allclose(layer.backward(dy), naive.scale_channels(dy, scale), rtol=1e-6)
    # The same seed, the same channels; the default generator follows minicnn.manual_seed.
    np.testing.assert_array_equal(Dropout2d(0.25, rng=7)(x), y)
    minicnn.manual_seed(3)
    a = Dropout2d(0.5)(x)
    minicnn.manual_seed(3)
    np.testing.assert_array_equal(Dropout2d(0.5)(x), a)
    np.testing.assert_array_equal(F.dropout2d(x, 0.25, rng=7), y)


def test_dropout2d_edge_cases(rng):
    x = rng.standard_normal((2, 3, 2, 2))
    layer = Dropout2d(1.0)
    assert not layer(x).any() and not layer.backward(np.ones_like(x)).any()
    layer = Dropout2d(0.0)
    np.testing.assert_array_equal(layer(x), x)
    layer = Dropout2d(0.5, rng=0).eval()
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer.backward(x), x)
    y, ctx = F.dropout2d_forward(x, 0.5, training=False)
    assert ctx.scale is None and y is not x
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
        Dropout2d(1.5)
    with pytest.raises(TypeError, match="p must be a number"):
        F.dropout2d(x, "0.5")
    with pytest.raises(ValueError, match="input must be 4-D"):
        Dropout2d()(x[0])
    with pytest.raises(BackwardBeforeForwardError):
        Dropout2d().backward(x)
    assert repr(Dropout2d(0.3)) == "Dropout2d(p=0.3)"


def test_dropout2d_backward_matches_finite_differences(rng):
    layer = Dropout2d(0.4)
    x = rng.standard_normal((2, 4, 2, 3))

    def forward(v):
        layer.rng = np.random.default_rng(5)  # replay the same mask at every call
        return layer(v)

    y = forward(x)
    weights = rng.standard_normal(y.shape)
    dx = layer.backward(weights)
    numeric = naive.numerical_grad(lambda: float(np.sum(forward(x) * weights)), x)
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-6)
