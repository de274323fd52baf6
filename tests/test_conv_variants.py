"""Convolution variants against tests/naive.py, finite differences and PyTorch: padding modes (F.pad),
transposed convolution (F.conv_transpose2d, nn.ConvTranspose2d), grouped and depthwise convolution,
padding "same"/"valid" and Conv2d's padding_mode."""
import os

import numpy as np
import pytest

import minicnn.functional as F
import naive
from minicnn import nn
from minicnn.grad_mode import no_grad
from test_conv import numerical_grad  # naive.numerical_grad on one thread

NO_JIT = os.environ.get("NUMBA_DISABLE_JIT") == "1"


def assert_close(a, b, tol=1e-10):
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


# ------------------------------------------------------------------------------------------ pad
def pad_configs(seed, count):
    """Random (shape, pad, mode) within PyTorch's limits, negative (cropping) pads included."""
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        mode = ("constant", "reflect", "replicate", "circular")[len(configs) % 4]
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 3)), int(rng.integers(1, 6)), int(rng.integers(1, 6)))
        H, W = shape[2:]
        pad = tuple(int(p) for p in rng.integers(-2, 5, size=4))
        limit = {"reflect": (W - 1, H - 1), "circular": (W, H)}.get(mode, (99, 99))
        kept = (W + min(pad[0], 0) + min(pad[1], 0), H + min(pad[2], 0) + min(pad[3], 0))
        if (max(map(abs, pad[:2])) > limit[0] or max(map(abs, pad[2:])) > limit[1]
                or W + pad[0] + pad[1] < 1 or H + pad[2] + pad[3] < 1
                or mode == "circular" and (min(kept) < 1 or max(pad[:2]) > kept[0] or max(pad[2:]) > kept[1])):
            continue
        configs.append((shape, pad, mode))
    return configs


PAD_CONFIGS = [((1, 1, 3, 4), (2, 3, 2, 2), "reflect"),  # the widest reflection
               ((1, 2, 2, 3), (3, 3, 2, 2), "circular"),  # a whole period on each side
               ((2, 1, 1, 1), (2, 1, 0, 3), "replicate"),  # one pixel, replicated
               ((1, 1, 4, 4), (-1, -2, 1, -3), "constant")] + pad_configs(1, 8 if NO_JIT else 40)


@pytest.mark.parametrize("config", PAD_CONFIGS, ids=str)
def test_pad_matches_naive_forward_and_backward(config):
    shape, pad, mode = config
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape)
    value = 0.5 if mode == "constant" else 0.0
    y, ctx = F.pad_forward(x, pad, mode, value)
    assert_close(y, naive.pad(x, *pad, mode=mode, value=value), 0)
    dy = rng.standard_normal(y.shape)
    assert_close(F.pad_backward(dy, ctx), naive.pad_backward(dy, shape, pad, mode), 1e-12)
    y32 = F.pad(x.astype(np.float32), pad, mode, value)
    assert y32.dtype == np.float32 and np.array_equal(y32, y.astype(np.float32))


def test_pad_two_entries_pads_the_width():
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    assert_close(F.pad(x, (1, 2), value=-1), naive.pad(x, 1, 2, 0, 0, value=-1), 0)


@pytest.mark.parametrize("config", PAD_CONFIGS[:12], ids=str)
def test_pad_matches_torch(config):
    torch = pytest.importorskip("torch")
    shape, pad, mode = config
    x = np.random.default_rng(8).standard_normal(shape)
    t = torch.nn.functional.pad(torch.from_numpy(x), pad, mode=mode, value=0.5 if mode == "constant" else None)
    assert_close(F.pad(x, pad, mode, 0.5 if mode == "constant" else 0.0), t.numpy(), 0)


@pytest.mark.parametrize("pad, mode, match", [
    ((3, 0, 0, 0), "reflect", "pad must be smaller than the input in mode 'reflect'"),
    ((0, 0, 0, 3), "reflect", "pad must be smaller than the input"),
    ((0, 4, 0, 0), "circular", "pad must be at most the input size"),
    ((-2, 2, 0, 0), "circular", r"at most the input size \(after cropping"),
    ((1, 1, 1, 1), "wrap", "mode must be one of 'constant', 'reflect', 'replicate', 'circular'"),
    ((1, 1), "reflect", "pad must have 4 entries for mode 'reflect'"),
    ((1, 1, 1), "constant", "pad must have 2 or 4 entries"),
    ((-2, -1, 0, 0), "constant", "leaves no pixel of the width"),
])
def test_pad_rejects_what_torch_rejects(pad, mode, match):
    x = np.zeros((1, 1, 3, 3))
    with pytest.raises(ValueError, match=match):
        F.pad(x, pad, mode)


def test_pad_rejects_bad_types_and_values():
    x = np.zeros((1, 1, 3, 3))
    with pytest.raises(TypeError, match="pad must be a tuple of ints"):
        F.pad(x, (1.0, 1))
    with pytest.raises(ValueError, match="value is only used by mode 'constant'"):
        F.pad(x, (1, 1, 1, 1), "reflect", value=2.0)
    with pytest.raises(ValueError, match="x must be 4-D"):
        F.pad(np.zeros((3, 3)), (1, 1))
    _, ctx = F.pad_forward(x, (1, 1))
    with pytest.raises(ValueError, match="dy must have the output's shape"):
        F.pad_backward(np.zeros((1, 1, 3, 3)), ctx)


# ------------------------------------------------------------------------------ conv_transpose2d
def ct_configs(seed, count, max_size=5):
    """Random (x_shape, Cout/groups, groups, kernel, stride, padding, output_padding, dilation)."""
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        groups = int(rng.choice([1, 1, 2, 3]))
        shape = (int(rng.integers(1, 3)), groups * int(rng.integers(1, 4)),
                 int(rng.integers(1, max_size + 1)), int(rng.integers(1, max_size + 1)))
        cog = int(rng.integers(1, 4))
        k = tuple(int(v) for v in rng.integers(1, 5, size=2))
        s = tuple(int(v) for v in rng.integers(1, 4, size=2))
        d = tuple(int(rng.choice([1, 1, 2, 3])) for _ in range(2))
        p = tuple(int(v) for v in rng.integers(0, 3, size=2))
        op = tuple(int(rng.integers(0, max(s[a], d[a]))) for a in range(2))
        out = [(shape[2 + a] - 1) * s[a] - 2 * p[a] + d[a] * (k[a] - 1) + op[a] + 1 for a in range(2)]
        if min(out) < 1:
            continue
        configs.append((shape, cog, groups, k, s, p, op, d))
    return configs


CT_EDGE = [
    ((2, 4, 3, 3), 2, 1, (4, 4), (2, 2), (1, 1), (0, 0), (1, 1)),  # the benchmark's k4 s2 p1, small
    ((1, 2, 3, 4), 3, 2, (3, 2), (1, 3), (0, 1), (0, 2), (1, 1)),  # groups, stride > kernel, output_padding
    ((1, 1, 2, 3), 2, 1, (2, 3), (1, 2), (2, 1), (1, 1), (2, 2)),  # output_padding >= stride (< dilation)
    ((2, 6, 2, 2), 1, 6, (1, 1), (3, 3), (0, 0), (2, 1), (1, 1)),  # depthwise-like, 1x1, gaps
    ((2, 4, 3, 2), 3, 2, (1, 1), (1, 1), (0, 0), (0, 0), (1, 1)),  # pointwise, groups: col2im is the identity
]
CT_FORWARD = CT_EDGE + ct_configs(11, 10 if NO_JIT else 50)
CT_GRAD = CT_EDGE + ct_configs(12, 3 if NO_JIT else 10, max_size=4)


def ct_make(config, seed=0, dtype=np.float64):
    shape, cog, groups, k, *_ = config
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape).astype(dtype), rng.standard_normal((shape[1], cog, *k)).astype(dtype),
            rng.standard_normal(cog * groups).astype(dtype))


def ct_naive(x, w, b, config):
    _, _, groups, _, s, p, op, d = config
    return naive.conv_transpose2d(x, w, b, s[0], s[1], p[0], p[1], op[0], op[1], d[0], d[1], groups)


@pytest.mark.parametrize("config", CT_FORWARD, ids=str)
def test_conv_transpose_matches_naive(config):
    _, _, groups, _, s, p, op, d = config
    x, w, b = ct_make(config)
    assert_close(F.conv_transpose2d(x, w, b, s, p, op, groups, d), ct_naive(x, w, b, config))
    assert_close(F.conv_transpose2d(x, w, None, s, p, op, groups, d), ct_naive(x, w, None, config))


@pytest.mark.parametrize("config", CT_GRAD, ids=str)
def test_conv_transpose_backward_matches_finite_differences(config):
    _, _, groups, _, s, p, op, d = config
    x, w, b = ct_make(config, seed=3)
    y, ctx = F.conv_transpose2d_forward(x, w, b, s, p, op, groups, d)
    g = np.random.default_rng(4).standard_normal(y.shape)

    def loss():
        return float(np.sum(F.conv_transpose2d(x, w, b, s, p, op, groups, d) * g))

    dx, dw, db = F.conv_transpose2d_backward(g, ctx)
    assert_close(dx, numerical_grad(loss, x), 1e-6)
    assert_close(dw, numerical_grad(loss, w), 1e-6)
    assert_close(db, numerical_grad(loss, b), 1e-6)


@pytest.mark.parametrize("config", CT_EDGE + ct_configs(13, 6), ids=str)
def test_conv_transpose_matches_torch(config):
    torch = pytest.importorskip("torch")
    _, _, groups, _, s, p, op, d = config
    x, w, b = ct_make(config, seed=5)
    tx, tw, tb = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
    ty = torch.nn.functional.conv_transpose2d(tx, tw, tb, s, p, op, groups, d)
    y, ctx = F.conv_transpose2d_forward(x, w, b, s, p, op, groups, d)
    assert_close(y, ty.detach().numpy())
    g = np.random.default_rng(6).standard_normal(y.shape)
    ty.backward(torch.from_numpy(g))
    for ours, theirs in zip(F.conv_transpose2d_backward(g, ctx), (tx, tw, tb)):
        assert_close(ours, theirs.grad.numpy())


def test_conv_transpose_backward_options_accumulate_and_skip():
    config = CT_EDGE[1]
    _, _, groups, _, s, p, op, d = config
    x, w, b = ct_make(config)
    y, ctx = F.conv_transpose2d_forward(x, w, b, s, p, op, groups, d)
    g = np.random.default_rng(1).standard_normal(y.shape)
    dx, dw, db = F.conv_transpose2d_backward(g, ctx)
    into_w, into_b = np.ones_like(w), np.ones_like(b)
    nx, rw, rb = F.conv_transpose2d_backward(g, ctx, dx=False, dweight=into_w, dbias=into_b)
    assert nx is None and rw is into_w and rb is into_b
    assert_close(into_w, dw + 1, 1e-12)
    assert_close(into_b, db + 1, 1e-12)
    ox, nw, nb = F.conv_transpose2d_backward(g, ctx, dweight=False, dbias=False)
    assert nw is None and nb is None
    assert_close(ox, dx, 1e-12)
    _, ctx0 = F.conv_transpose2d_forward(x, w, None, s, p, op, groups, d)
    assert F.conv_transpose2d_backward(g, ctx0)[2] is None


def test_conv_transpose_float32_close_to_float64():
    config = CT_EDGE[0]
    _, _, groups, _, s, p, op, d = config
    x, w, b = ct_make(config)
    y32 = F.conv_transpose2d(x.astype(np.float32), w, b, s, p, op, groups, d)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, ct_naive(x, w, b, config), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kwargs, match", [
    (dict(groups=3), "in_channels must be divisible by groups"),
    (dict(output_padding=2), "output_padding must be smaller than either stride or dilation"),
    (dict(output_padding=1, stride=1), "output_padding must be smaller than either stride or dilation"),
    (dict(padding=4), "padding .* is too large"),
    (dict(stride=0), "stride must be >= 1"),
    (dict(padding=-1), "padding must be >= 0"),
])
def test_conv_transpose_rejects_bad_arguments(kwargs, match):
    x, w = np.zeros((1, 4, 3, 3)), np.zeros((4, 2, 3, 3))
    kwargs = {"stride": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        F.conv_transpose2d(x, w, **kwargs)


def test_conv_transpose_rejects_mismatched_arrays():
    x, w = np.zeros((1, 4, 3, 3)), np.zeros((4, 2, 3, 3))
    with pytest.raises(ValueError, match="weight must have x's 4 input channels"):
        F.conv_transpose2d(x, w[:3])
    with pytest.raises(ValueError, match=r"bias must have shape \(Cout,\) = \(4,\)"):
        F.conv_transpose2d(x, w, np.zeros(2), groups=2)
    with pytest.raises(TypeError, match="weight must be a numpy.ndarray"):
        F.conv_transpose2d(x, [1.0])
    _, ctx = F.conv_transpose2d_forward(x, w)
    with pytest.raises(ValueError, match="dy must have the output's shape"):
        F.conv_transpose2d_backward(np.zeros((1, 2, 3, 3)), ctx)


# --------------------------------------------------------------------------- nn.ConvTranspose2d
def test_conv_transpose_layer_matches_torch_with_output_size():
    torch = pytest.importorskip("torch")
    m = nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), padding=(1, 0), groups=2, dtype=np.float64, rng=0)
    t = torch.nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), padding=(1, 0), groups=2).double()
    assert tuple(t.weight.shape) == m.weight.shape and tuple(t.bias.shape) == m.bias.shape
    t.weight.data, t.bias.data = torch.from_numpy(m.weight.data.copy()), torch.from_numpy(m.bias.data.copy())
    x = np.random.default_rng(2).standard_normal((2, 4, 4, 3))
    for size in (None, (8, 9), (2, 6, 7, 10)):
        tx = torch.from_numpy(x).requires_grad_()
        ty = t(tx, output_size=size)
        y = m(x, output_size=size)
        assert_close(y, ty.detach().numpy())
        g = np.random.default_rng(3).standard_normal(y.shape)
        ty.backward(torch.from_numpy(g))
        m.zero_grad()
        t.zero_grad()
        tx.grad = None
        ty = t(tx, output_size=size)
        ty.backward(torch.from_numpy(g))
        assert_close(m.backward(g), tx.grad.numpy())
        assert_close(m.weight.grad, t.weight.grad.numpy())
        assert_close(m.bias.grad, t.bias.grad.numpy())


def test_conv_transpose_layer_rejects_bad_output_size_and_arguments():
    m = nn.ConvTranspose2d(2, 2, 3, stride=2)
    x = np.zeros((1, 2, 4, 4), np.float32)
    with pytest.raises(ValueError, match="output_size .* is not reachable: dimension 0 must be from 9 to 10"):
        m(x, output_size=(11, 9))
    with pytest.raises(TypeError, match="output_size must be a tuple of 2 ints"):
        m(x, output_size=9)
    with pytest.raises(ValueError, match="out_channels must be divisible by groups"):
        nn.ConvTranspose2d(2, 3, 3, groups=2)
    with pytest.raises(ValueError, match="output_padding must be smaller"):
        nn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="padding_mode must be one of 'zeros'"):
        nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect")


def test_conv_transpose_layer_accumulates_skips_frozen_and_keeps_nothing_under_no_grad():
    m = nn.ConvTranspose2d(3, 2, 2, stride=2, dtype=np.float64, rng=1)
    x = np.random.default_rng(0).standard_normal((2, 3, 3, 3))
    g = np.random.default_rng(1).standard_normal((2, 2, 6, 6))
    m(x)
    m.backward(g)
    once = m.weight.grad.copy()
    m(x)
    m.backward(g)
    assert_close(m.weight.grad, 2 * once, 1e-12)
    m.zero_grad()
    m.weight.requires_grad = False
    m(x)
    m.backward(g)
    assert not m.weight.grad.any() and m.bias.grad.any()
    with no_grad():
        m(x)
    with pytest.raises(nn.BackwardBeforeForwardError):
        m.backward(g)


# ------------------------------------------------------------------ grouped and depthwise conv2d
def group_configs(seed, count, max_size=7, depthwise=False):
    """Random (x_shape, F, groups, kernel, stride, padding, dilation): groups of 1 to 3 channels (one
    group per channel and a multiplier F/C of 1 to 3 if ``depthwise``)."""
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        groups = int(rng.integers(1, 5))
        cg = 1 if depthwise else int(rng.integers(1, 4))
        shape = (int(rng.integers(1, 3)), groups * cg, int(rng.integers(1, max_size + 1)),
                 int(rng.integers(1, max_size + 1)))
        F_ = groups * int(rng.integers(1, 4))
        k = tuple(int(v) for v in rng.integers(1, 5, size=2))
        s = tuple(int(v) for v in rng.integers(1, 4, size=2))
        p = tuple(int(v) for v in rng.integers(0, 3, size=2))
        d = tuple(int(rng.choice([1, 1, 2])) for _ in range(2))
        if any(d[a] * (k[a] - 1) + 1 > shape[2 + a] + 2 * p[a] for a in range(2)):
            continue
        configs.append((shape, F_, groups, k, s, p, d))
    return configs


GROUP_EDGE = [
    ((2, 3, 8, 8), 3, 3, (3, 3), (1, 1), (1, 1), (1, 1)),  # MobileNet's depthwise 3x3, stride 1
    ((2, 2, 8, 7), 2, 2, (3, 3), (2, 2), (1, 1), (1, 1)),  # depthwise, stride 2, odd width
    ((1, 2, 5, 9), 6, 2, (2, 4), (3, 2), (0, 2), (2, 1)),  # depthwise, multiplier 3, stride > kernel rows
    ((1, 1, 4, 4), 2, 1, (4, 4), (1, 1), (0, 0), (1, 1)),  # one channel (groups == C == 1), 1 output pixel
    ((2, 8, 6, 5), 4, 4, (3, 3), (1, 1), (1, 1), (1, 1)),  # grouped: 2 channels in, 1 out per group
    ((1, 6, 5, 5), 6, 2, (1, 3), (2, 1), (0, 1), (1, 2)),  # grouped, non-square, dilation
    ((2, 6, 3, 4), 4, 2, (1, 1), (1, 1), (0, 0), (1, 1)),  # grouped pointwise: im2col reads x in place
]
GROUP_FORWARD = (GROUP_EDGE + group_configs(31, 6 if NO_JIT else 30)
                 + group_configs(32, 6 if NO_JIT else 30, depthwise=True))
GROUP_GRAD = (GROUP_EDGE + group_configs(33, 2 if NO_JIT else 6, max_size=5)
              + group_configs(34, 2 if NO_JIT else 6, max_size=5, depthwise=True))


def group_make(config, seed=0, dtype=np.float64):
    shape, F_, groups, k, *_ = config
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape).astype(dtype), rng.standard_normal((F_, shape[1] // groups, *k)).astype(dtype),
            rng.standard_normal(F_).astype(dtype))


def group_naive(x, w, b, config):
    _, _, groups, _, s, p, d = config
    return naive.conv2d_grouped(x, w, b, s[0], s[1], p[0], p[1], d[0], d[1], groups)


def group_algorithms(config):
    """Every algorithm that runs ``config`` ("auto": the depthwise kernels when groups == C)."""
    return ("auto", "im2col", "tiled") + (("direct",) if config[4] == (1, 1) else ())


@pytest.mark.parametrize("config", GROUP_FORWARD, ids=str)
def test_grouped_conv_matches_naive(config):
    _, _, groups, _, s, p, d = config
    x, w, b = group_make(config)
    for algorithm in group_algorithms(config):
        assert_close(F.conv2d(x, w, b, s, p, d, groups, algorithm=algorithm), group_naive(x, w, b, config))
        assert_close(F.conv2d(x, w, None, s, p, d, groups, algorithm=algorithm), group_naive(x, w, None, config))


def test_auto_runs_depthwise_kernels_for_depthwise_and_tiled_for_other_groups():
    shape, _, groups, _, s, p, d = config = GROUP_EDGE[2]
    x, w, b = group_make(config)
    assert F.conv2d_forward(x, w, b, s, p, d, groups)[1].algorithm == "depthwise"
    assert F.conv2d_forward(x, w, b, s, p, d, groups, algorithm="im2col")[1].algorithm == "im2col"
    assert F.conv2d_forward(x[:, :1], w[:2], b[:2], s, p, d, 1)[1].algorithm != "depthwise"  # groups=1: as before
    shape, _, groups, _, s, p, d = config = GROUP_EDGE[4]
    x, w, b = group_make(config)
    assert F.conv2d_forward(x, w, b, s, p, d, groups)[1].algorithm == "tiled"  # grouped: (sample, group) pairs


@pytest.mark.parametrize("config", GROUP_GRAD, ids=str)
def test_grouped_conv_backward_matches_finite_differences(config):
    _, _, groups, _, s, p, d = config
    x, w, b = group_make(config, seed=3)
    g = np.random.default_rng(4).standard_normal(group_naive(x, w, b, config).shape)
    for algorithm in group_algorithms(config):
        y, ctx = F.conv2d_forward(x, w, b, s, p, d, groups, algorithm=algorithm)

        def loss():
            return float(np.sum(F.conv2d(x, w, b, s, p, d, groups, algorithm=algorithm) * g))

        into_b = np.ones_like(b)  # the bias gradient is added into a given array
        dx, dw, db = F.conv2d_backward(g, ctx, dbias=into_b)
        assert_close(dx, numerical_grad(loss, x), 1e-6)
        assert_close(dw, numerical_grad(loss, w), 1e-6)
        assert_close(db - 1, numerical_grad(loss, b), 1e-6)


@pytest.mark.parametrize("config", GROUP_EDGE + group_configs(35, 4) + group_configs(36, 4, depthwise=True), ids=str)
def test_grouped_conv_matches_torch(config):
    torch = pytest.importorskip("torch")
    _, _, groups, _, s, p, d = config
    x, w, b = group_make(config, seed=5)
    tx, tw, tb = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, s, p, d, groups)
    g = np.random.default_rng(6).standard_normal(tuple(ty.shape))
    ty.backward(torch.from_numpy(g))
    y, ctx = F.conv2d_forward(x, w, b, s, p, d, groups)
    assert_close(y, ty.detach().numpy())
    for ours, theirs in zip(F.conv2d_backward(g, ctx), (tx, tw, tb)):
        assert_close(ours, theirs.grad.numpy())


@pytest.mark.parametrize("groups_of", [2, 3])  # channels per group (2: grouped; C: depthwise)
def test_grouped_conv_float32_and_skipped_gradients(groups_of):
    config = GROUP_EDGE[1] if groups_of == 3 else GROUP_EDGE[4]
    _, _, groups, _, s, p, d = config
    x, w, b = group_make(config)
    y32, ctx = F.conv2d_forward(x.astype(np.float32), w, b, s, p, d, groups)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, group_naive(x, w, b, config), rtol=1e-5, atol=1e-5)
    g = np.random.default_rng(1).standard_normal(y32.shape).astype(np.float32)
    dx, dw, db = F.conv2d_backward(g, ctx)
    assert dx.dtype == dw.dtype == db.dtype == np.float32
    _, ctx64 = F.conv2d_forward(x, w, b, s, p, d, groups)
    for ours, ref in zip((dx, dw, db), F.conv2d_backward(g.astype(np.float64), ctx64)):
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)
    nx, nw, nb = F.conv2d_backward(g, ctx, dx=False, dweight=False)
    assert nx is None and nw is None
    np.testing.assert_allclose(nb, db, rtol=1e-6)
    only_dx = F.conv2d_backward(g, ctx, dweight=False, dbias=False)
    assert only_dx[1] is None and only_dx[2] is None
    np.testing.assert_allclose(only_dx[0], dx, rtol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(groups=3), "in_channels must be divisible by groups"),
    (dict(groups=2, F=3), "out_channels must be divisible by groups"),
    (dict(groups=2, Cw=4), "weight must have as many input channels as x per group"),
    (dict(groups=0), "groups must be >= 1"),
    (dict(groups=4, algorithm="direct", stride=2), "algorithm 'direct' supports stride 1 only"),
    (dict(padding="same", stride=2), "padding='same' needs stride 1"),
    (dict(padding="full"), "padding must be one of 'same', 'valid'"),
])
def test_conv2d_rejects_what_torch_rejects(kwargs, match):
    groups, F_, Cw = kwargs.pop("groups", 1), kwargs.pop("F", 4), kwargs.pop("Cw", None)
    x = np.zeros((1, 4, 5, 5))
    w = np.zeros((F_, Cw or max(1, 4 // max(groups, 1)), 3, 3))
    with pytest.raises(ValueError, match=match):
        F.conv2d(x, w, None, groups=groups, **kwargs)


# ------------------------------------------------------------------------- padding "same" / "valid"
@pytest.mark.parametrize("k, d", [((3, 3), (1, 1)), ((4, 2), (1, 1)), ((2, 3), (3, 2)), ((1, 4), (1, 1))])
def test_same_and_valid_padding_match_naive_and_finite_differences(k, d):
    rng = np.random.default_rng(9)
    x, w, b = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((2, 3, *k)), rng.standard_normal(2)
    y, ctx = F.conv2d_forward(x, w, b, padding="same", dilation=d)
    assert y.shape[2:] == x.shape[2:]
    th, tw = d[0] * (k[0] - 1), d[1] * (k[1] - 1)  # PyTorch: the odd one at the bottom/right
    xp = naive.pad(x, tw // 2, tw - tw // 2, th // 2, th - th // 2)
    assert_close(y, naive.conv2d(xp, w, b, 1, 1, 0, 0, d[0], d[1]))
    assert_close(F.conv2d(x, w, b, padding="valid", dilation=d), naive.conv2d(x, w, b, 1, 1, 0, 0, d[0], d[1]))
    g = rng.standard_normal(y.shape)
    dx, dw, _ = F.conv2d_backward(g, ctx)
    loss = lambda: float(np.sum(F.conv2d(x, w, b, padding="same", dilation=d) * g))  # noqa: E731
    assert_close(dx, numerical_grad(loss, x), 1e-6)
    assert_close(dw, numerical_grad(loss, w), 1e-6)


def test_same_padding_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10)
    x, w = rng.standard_normal((1, 4, 6, 5)), rng.standard_normal((4, 2, 4, 3))
    tx = torch.from_numpy(x).requires_grad_()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch warns that it copies the input for even kernels (as we do)
        ty = torch.nn.functional.conv2d(tx, torch.from_numpy(w), None, 1, "same", (2, 1), 2)
    y, ctx = F.conv2d_forward(x, w, None, 1, "same", (2, 1), 2)
    assert_close(y, ty.detach().numpy())
    g = rng.standard_normal(y.shape)
    ty.backward(torch.from_numpy(g))
    assert_close(F.conv2d_backward(g, ctx)[0], tx.grad.numpy())


# -------------------------------------------------------------------- nn.Conv2d: groups, padding_mode
LAYER_CASES = [
    dict(padding=1, padding_mode="reflect", groups=2),
    dict(padding="same", padding_mode="circular", kernel_size=(4, 3)),
    dict(padding=(2, 1), padding_mode="replicate", stride=2, groups=4),
    dict(padding="same", kernel_size=2, groups=4, dilation=3),
    dict(padding=(1, 2), padding_mode="zeros", stride=(1, 2), groups=4),
    dict(padding="valid", padding_mode="reflect", groups=1),
]


@pytest.mark.parametrize("case", LAYER_CASES, ids=str)
def test_conv2d_layer_groups_and_padding_modes_match_torch(case):
    torch = pytest.importorskip("torch")
    case = dict(case)
    k = case.pop("kernel_size", 3)
    m = nn.Conv2d(4, 8, k, dtype=np.float64, rng=0, **case)
    t = torch.nn.Conv2d(4, 8, k, **case).double()
    assert tuple(t.weight.shape) == m.weight.shape
    t.weight.data, t.bias.data = torch.from_numpy(m.weight.data.copy()), torch.from_numpy(m.bias.data.copy())
    x = np.random.default_rng(0).standard_normal((2, 4, 7, 6))
    tx = torch.from_numpy(x).requires_grad_()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ty = t(tx)
    y = m(x)
    assert_close(y, ty.detach().numpy())
    g = np.random.default_rng(1).standard_normal(y.shape)
    ty.backward(torch.from_numpy(g))
    assert_close(m.backward(g), tx.grad.numpy())
    assert_close(m.weight.grad, t.weight.grad.numpy())
    assert_close(m.bias.grad, t.bias.grad.numpy())


def test_conv2d_layer_padding_mode_matches_naive_and_finite_differences():
    m = nn.Conv2d(2, 4, (3, 2), padding=(2, 1), padding_mode="reflect", groups=2, dtype=np.float64, rng=2)
    x = np.random.default_rng(3).standard_normal((1, 2, 4, 5))
    ref = naive.conv2d_grouped(naive.pad(x, 1, 1, 2, 2, "reflect"), m.weight.data, m.bias.data, 1, 1, 0, 0, groups=2)
    assert_close(m(x), ref)
    g = np.random.default_rng(4).standard_normal(ref.shape)
    m.zero_grad()
    m(x)
    dx = m.backward(g)
    assert_close(dx, numerical_grad(lambda: float(np.sum(m(x) * g)), x), 1e-6)
    m.zero_grad()
    first = nn.Conv2d(2, 4, 3, padding=1, padding_mode="circular", dtype=np.float64, rng=2, input_grad=False)
    first(x)
    assert first.backward(g[:, :, :4, :5]) is None and first.weight.grad.any()


@pytest.mark.parametrize("kwargs, match", [
    (dict(groups=3), "in_channels must be divisible by groups"),
    (dict(groups=2, out_channels=3), "out_channels must be divisible by groups"),
    (dict(padding="same", stride=2), "padding='same' needs stride 1"),
    (dict(padding="full"), "padding must be one of 'same', 'valid'"),
    (dict(padding_mode="wrap"), "padding_mode must be one of 'zeros', 'reflect', 'replicate', 'circular'"),
    (dict(groups=2, algorithm="winograd"), "algorithm must be one of"),
])
def test_conv2d_layer_rejects_bad_arguments(kwargs, match):
    kwargs = {"in_channels": 4, "out_channels": 4, "kernel_size": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        nn.Conv2d(**kwargs)


def test_conv2d_layer_reflect_padding_wider_than_the_input_is_rejected():
    m = nn.Conv2d(1, 1, 3, padding=3, padding_mode="reflect")
    with pytest.raises(ValueError, match="pad must be smaller than the input in mode 'reflect'"):
        m(np.zeros((1, 1, 3, 3), np.float32))
    assert repr(nn.Conv2d(4, 8, 3, padding="same", groups=4, padding_mode="circular")) == (
        "Conv2d(4, 8, kernel_size=(3, 3), stride=(1, 1), padding='same', groups=4, padding_mode='circular')")


# ------------------------------------------------------------------------- scripts/bench_variants.py
@pytest.mark.skipif(NO_JIT, reason="the benchmark's channel counts take minutes without compilation")
def test_bench_variants_runs_and_agrees_with_torch():
    torch = pytest.importorskip("torch")
    import sys

    import minicnn
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
    import bench_variants

    cases = [(name, op, (2, shape[1]) + shape[2:], args) for name, op, shape, args in bench_variants.CASES]
    threads = (minicnn.get_num_threads(), torch.get_num_threads())
    try:
        rows = bench_variants.run_variants(threads=1, rounds=1, warmup=0, cases=cases)
    finally:
        minicnn.set_num_threads(threads[0])
        torch.set_num_threads(threads[1])
    assert [r[0] for r in rows] == [c[0] for c in cases]
    for name, ours, theirs, ratio, diff in rows:
        assert ours > 0 and theirs > 0 and diff < 1e-3, name
