"""im2col / col2im (and the transposed-layout kernels the convolution uses) against tests/naive.py."""
import os

import numpy as np
import pytest

import naive
from minicnn.functional import col2im, fold, im2col, unfold

N_RANDOM = 25 if os.environ.get("NUMBA_DISABLE_JIT") == "1" else 150


def random_configs(seed, count):
    """Valid random geometries: (x_shape, (kh, kw), (sh, sw), (ph, pw), (dh, dw))."""
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4)), int(rng.integers(1, 8)), int(rng.integers(1, 8)))
        k = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        s = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        p = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        d = (int(rng.choice([1, 1, 2])), int(rng.choice([1, 1, 2])))
        if d[0] * (k[0] - 1) + 1 > shape[2] + 2 * p[0] or d[1] * (k[1] - 1) + 1 > shape[3] + 2 * p[1]:
            continue
        configs.append((shape, k, s, p, d))
    return configs


# Hand-picked edge cases: kernel as large as the padded input, 1x1 kernels, batch 1, one channel,
# more channels than pixels, non-square everything, dilation 2, stride larger than the kernel.
EDGE_CASES = [
    ((1, 1, 5, 5), (5, 5), (1, 1), (0, 0), (1, 1)),   # kernel = input: one window
    ((2, 2, 3, 4), (5, 6), (1, 1), (1, 1), (1, 1)),   # kernel = padded input
    ((1, 2, 3, 3), (3, 3), (1, 1), (1, 1), (2, 2)),   # dilated kernel = padded input
    ((2, 3, 4, 5), (1, 1), (1, 1), (0, 0), (1, 1)),   # 1x1
    ((2, 3, 5, 4), (1, 1), (2, 3), (1, 2), (1, 1)),   # 1x1 strided and padded (windows on padding only)
    ((1, 10, 2, 2), (2, 2), (1, 1), (1, 0), (1, 1)),  # more channels than pixels
    ((2, 1, 7, 4), (3, 2), (2, 1), (2, 1), (2, 1)),   # non-square, dilation on one axis
    ((1, 1, 9, 8), (2, 3), (3, 3), (2, 2), (2, 2)),   # stride 3, padding 2, dilation 2
    ((1, 2, 6, 6), (2, 2), (3, 3), (0, 0), (1, 1)),   # stride larger than kernel: uncovered pixels
    ((3, 2, 1, 1), (3, 3), (1, 1), (1, 1), (1, 1)),   # a single pixel
]
CONFIGS = EDGE_CASES + random_configs(0, N_RANDOM)


def flat(config):
    shape, (kh, kw), (sh, sw), (ph, pw), (dh, dw) = config
    return kh, kw, sh, sw, ph, pw, dh, dw


@pytest.mark.parametrize("case, config", list(enumerate(CONFIGS)), ids=[str(c) for c in CONFIGS])
def test_im2col_col2im_match_naive_and_are_adjoint(case, config):
    shape, k, s, p, d = config
    rng = np.random.default_rng(case)  # a fixed seed per case (hash() changes between processes)
    x = rng.standard_normal(shape)
    cols = im2col(x, k, s, p, d)
    expected = naive.im2col(x, *flat(config))
    assert cols.shape == expected.shape and cols.dtype == np.float64
    np.testing.assert_array_equal(cols, expected)

    c = rng.standard_normal(cols.shape)
    back = col2im(c, shape, k, s, p, d)
    np.testing.assert_allclose(back, naive.col2im(c, shape, *flat(config)), rtol=1e-12, atol=1e-12)
    # adjoint: <im2col(x), c> == <x, col2im(c)>
    np.testing.assert_allclose(np.vdot(cols, c), np.vdot(x, back), rtol=1e-10, atol=1e-10)

    # PyTorch's unfold / fold layout, the one the kernels use: cols_t[n] = im2col(x[n:n+1]).T
    N, K = shape[0], cols.shape[1]
    cols_t = unfold(x, k, d, p, s)
    np.testing.assert_array_equal(cols_t, expected.reshape(N, -1, K).transpose(0, 2, 1))
    back_t = fold(c.reshape(N, -1, K).transpose(0, 2, 1), shape[2:], k, d, p, s)
    np.testing.assert_allclose(back_t, back, rtol=1e-12, atol=1e-12)


def test_float32_and_output_buffers():
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 5)).astype(np.float32)
    cols = im2col(x, (3, 2), stride=(1, 2), padding=1)
    assert cols.dtype == np.float32
    np.testing.assert_array_equal(cols, naive.im2col(x, 3, 2, 1, 2, 1, 1))
    out = np.full_like(cols, np.nan)
    assert im2col(x, (3, 2), stride=(1, 2), padding=1, out=out) is out
    np.testing.assert_array_equal(out, cols)
    dx = np.full(x.shape, np.nan, np.float32)  # col2im overwrites, it does not add to old contents
    assert col2im(cols, x.shape, (3, 2), (1, 2), 1, out=dx) is dx
    np.testing.assert_allclose(dx, naive.col2im(cols, x.shape, 3, 2, 1, 2, 1, 1), rtol=1e-6)


def test_read_only_out_is_rejected_and_longer_floats_stay_float64():
    x = np.zeros((1, 2, 5, 5))
    out = np.empty((16, 8))
    out.flags.writeable = False  # the kernel could not write it
    with pytest.raises(ValueError, match=r"out must be a writable C-contiguous float64 array of shape \(16, 8\)"):
        im2col(x, 2, out=out)
    assert im2col(x.astype(np.longdouble), 2).dtype == np.float64
    assert im2col(x.astype(np.float16), 2).dtype == np.float32


def test_uncovered_pixels_get_zero_gradient():
    # H = W = 7, kernel 2, stride 3: windows cover rows/cols 0, 1, 3, 4 only (2, 5, 6 never read)
    shape = (2, 3, 7, 7)
    cols = np.ones((2 * 2 * 2, 3 * 2 * 2))
    dx = col2im(cols, shape, 2, stride=3)
    covered = np.zeros(7, bool)
    covered[[0, 1, 3, 4]] = True
    assert np.all(dx[:, :, covered][:, :, :, covered] == 1)
    assert np.all(dx[:, :, ~covered] == 0) and np.all(dx[:, :, :, ~covered] == 0)


def test_overlapping_windows_accumulate():
    # 3x3 kernel, stride 1: an interior pixel of a 5x5 plane is read by 9 windows, a corner by 1
    dx = col2im(np.ones((9, 9)), (1, 1, 5, 5), 3)
    expected = np.array([[1, 2, 3, 2, 1]]).T @ np.array([[1, 2, 3, 2, 1]])
    np.testing.assert_array_equal(dx[0, 0], expected)


@pytest.mark.parametrize("kwargs, exc, message", [
    (dict(kernel_size=6), ValueError, "kernel_size"),                    # larger than the input
    (dict(kernel_size=3, dilation=3), ValueError, "larger than the padded input"),
    (dict(kernel_size=0), ValueError, "kernel_size"),
    (dict(kernel_size=(2, -1)), ValueError, "kernel_size"),
    (dict(kernel_size=2.0), TypeError, "kernel_size"),
    (dict(kernel_size=(2, 2, 2)), TypeError, "kernel_size"),
    (dict(kernel_size=2, stride=0), ValueError, "stride"),
    (dict(kernel_size=2, padding=-1), ValueError, "padding"),
    (dict(kernel_size=2, dilation=0), ValueError, "dilation"),
    (dict(kernel_size=2, out=np.empty((3, 3))), ValueError, "out"),
    (dict(kernel_size=2, out=np.empty((16, 8))[::-1]), ValueError, "out must be a writable C-contiguous"),
    (dict(kernel_size=2, out=[[0.0] * 8] * 16), TypeError, "out must be a numpy.ndarray"),
])
def test_im2col_rejects_bad_arguments(kwargs, exc, message):
    x = np.zeros((1, 2, 5, 5))
    with pytest.raises(exc, match=message):
        im2col(x, **kwargs)


def test_im2col_rejects_bad_inputs():
    with pytest.raises(ValueError, match=r"x must be 4-D \(N, C, H, W\)"):
        im2col(np.zeros((2, 5, 5)), 2)
    with pytest.raises(TypeError, match="x must be a floating-point array"):
        im2col(np.zeros((1, 1, 5, 5), dtype=np.int64), 2)
    with pytest.raises(TypeError, match="x must be a numpy.ndarray"):
        im2col([[[[1.0]]]], 1)


def test_col2im_rejects_bad_inputs():
    with pytest.raises(ValueError, match=r"cols must have shape \(N\*OH\*OW, C\*kh\*kw\) = \(16, 8\)"):
        col2im(np.zeros((16, 9)), (1, 2, 5, 5), 2)
    with pytest.raises(ValueError, match="input_shape"):
        col2im(np.zeros((16, 8)), (2, 5, 5), 2)
    with pytest.raises(ValueError, match="input_shape"):
        col2im(np.zeros((16, 8)), (1, 0, 5, 5), 2)
    with pytest.raises(ValueError, match="cols must be 2-D"):
        col2im(np.zeros(16), (1, 2, 5, 5), 2)
    with pytest.raises(ValueError, match="kernel_size"):
        col2im(np.zeros((1, 72)), (1, 2, 5, 5), 6)


def test_unfold_fold_match_torch():
    torch = pytest.importorskip("torch")
    for seed, (shape, k, s, p, d) in enumerate(EDGE_CASES):
        x = np.random.default_rng(seed).standard_normal(shape)
        cols = unfold(x, k, d, p, s)
        expected = torch.nn.functional.unfold(torch.tensor(x), k, d, p, s).numpy()
        np.testing.assert_array_equal(cols, expected)
        back = torch.nn.functional.fold(torch.tensor(cols), shape[2:], k, d, p, s).numpy()
        np.testing.assert_allclose(fold(cols, shape[2:], k, d, p, s), back, rtol=1e-12, atol=1e-12)


def test_fold_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"cols.shape\[1\] = 5 must be a multiple of kh\*kw = 4"):
        fold(np.zeros((1, 5, 16)), (5, 5), 2)
    with pytest.raises(ValueError, match=r"cols.shape\[2\] must be OH\*OW = 16"):
        fold(np.zeros((1, 4, 15)), (5, 5), 2)
    with pytest.raises(ValueError, match="output_size"):
        fold(np.zeros((1, 4, 16)), (5, 0), 2)
