"""2-D convolution (cross-correlation, as PyTorch's ``conv2d``) with three algorithms behind one API.

    y[n, f, oh, ow] = bias[f] + sum over c, i, j of weight[f, c, i, j] * xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]

``algorithm`` chooses how it is computed (every one gives the same result up to float rounding):

- ``"im2col"``: im2col, one matrix product per sample, col2im for the input gradient (the textbook;
  ``minicnn.kernels.conv_im2col``). Any geometry. Keeps the im2col matrix (N, C*kh*kw, OH*OW) for
  backward; a pointwise convolution (1x1, stride 1, no padding) has x as that matrix, read in place
  and kept (not copied), as ``linear`` keeps x.
- ``"direct"``: the kernel taps as contiguous runs over a padded copy of the input laid on its padded
  width (``kernels.conv_direct``). Stride 1 only; the fastest for one input channel (LeNet's first
  layer). Keeps the padded input for backward.
- ``"tiled"``: implicit GEMMs with a register-blocked micro-kernel (``kernels.conv_tiled``). Any
  geometry; fastest for most layers. Keeps the padded input for backward.
- ``"auto"`` (default): a fixed rule, so that one seed gives one result: for one input channel and
  stride 1 ``"direct"``, ``"im2col"`` for a pointwise convolution, else ``"tiled"``; with ``groups > 1`` the depthwise kernels
  (``kernels.depthwise``) when ``groups`` is the number of input channels, else ``"tiled"``. With ``set_conv_autotune(True)`` (or the environment variable
  ``MINICNN_CONV_AUTOTUNE=1``) it instead times every applicable algorithm on the first call with a new
  shape, dtype and thread count and keeps the fastest; ``conv_autotune_report()`` lists the choices
  (ungrouped convolutions only).

Groups (PyTorch's ``groups``): the C input and F output channels are split into ``groups`` equal
groups, output group j convolving input group j only; ``weight`` is (F, C/groups, kh, kw). "im2col"
and "tiled" run every (sample, group) pair as a sample of its own, all in one pass (free reshapes of
the NCHW arrays; ``kernels.conv_im2col``, ``kernels.conv_tiled``); "direct" runs one group after the
other on contiguous copies of the channel slices.

``padding`` may also be ``"valid"`` (0) or ``"same"`` (stride 1 only; total padding ``d*(k-1)`` per
axis, the odd one at the bottom/right: the input then gets one explicit row/column of zeros there).
"""
import os
import time
from typing import NamedTuple

import numpy as np

from .._config import TILE_WIDE_MIN, VECTOR_BITS, get_num_threads, kernel_blas_single_threaded, thread_blocks
from .._validate import (conv_geometry, conv_padding_arg, float_input, grad_request, groups_arg, input_shape_arg,
                         out_array, pair)
from ..kernels.common import unwanted
from ..kernels.conv_direct import (direct_backward_input, direct_backward_params, direct_forward, grad_margin, spread_grad,
                                   tap_offsets)
from ..kernels.conv_im2col import add_block_parts, im2col_backward, im2col_forward, is_pointwise
from ..kernels.conv_tiled import tiled_backward, tiled_forward, window_positions
from ..kernels.depthwise import depthwise_backward, depthwise_forward, phase_shape
from ..kernels.im2col import col2im as _col2im_kernel
from ..kernels.im2col import im2col as _im2col_kernel
from .pad import pad

CONV_ALGORITHMS = ("im2col", "direct", "tiled")


class Conv2dCtx(NamedTuple):
    """What :func:`conv2d_backward` needs from :func:`conv2d_forward`."""
    algorithm: str            # the algorithm that ran the forward
    input_shape: tuple        # (N, C, H, W)
    geometry: tuple           # (kh, kw, sh, sw, ph, pw, dh, dw, OH, OW)
    weight: np.ndarray        # (F, C, kh, kw), the forward's weight
    saved: np.ndarray         # "im2col": cols (N*groups, C/groups*kh*kw, OH*OW) (a view of x if pointwise); "depthwise": the
    #                           phase planes (N, C, sh*sw, Hq, Wq); "tiled": the padded input (N*groups,
    #                           C/groups, Hp, Wp); "direct": (N, C, Hp, Wp), a list of one per group if groups > 1
    has_bias: bool
    groups: int = 1
    crop: tuple = None        # padding="same", even kernel: the (H, W) before the extra bottom/right zeros


# ------------------------------------------------------------------------------ argument checks
def _check_conv_args(x, weight, bias, stride, padding, dilation, groups):
    """Validated ``(x, weight, bias, geometry, groups, crop)``: weight and bias in x's dtype; bias zeros
    if None; for ``padding="same"`` with an even kernel, ``x`` with its extra zeros and ``crop`` its
    (H, W) before them (else None)."""
    x = float_input("x", x, 4, "(N, C, H, W)")
    weight = float_input("weight", weight, 4, "(F, C/groups, kh, kw)")
    if weight.dtype is not x.dtype:  # (astype, even a no-op, costs 0.2 us a call)
        weight = weight.astype(x.dtype, copy=False)
    groups = groups_arg(groups, x.shape[1], weight.shape[0])
    if weight.shape[1] * groups != x.shape[1]:
        raise ValueError(f"weight must have as many input channels as x per group: weight.shape[1] = "
                         f"{weight.shape[1]}, x.shape[1] = {x.shape[1]}, groups = {groups}")
    if x.size == 0:
        raise ValueError(f"x must not be empty, got shape {x.shape}")
    if weight.size == 0:
        raise ValueError(f"weight must not be empty, got shape {weight.shape}")
    F = weight.shape[0]
    if bias is None:
        bias = np.zeros(F, x.dtype)
    else:
        bias = float_input("bias", bias, 1, "(F,)")
        if bias.dtype is not x.dtype:
            bias = bias.astype(x.dtype, copy=False)
        if bias.shape != (F,):
            raise ValueError(f"bias must have shape (F,) = {(F,)}, got {bias.shape}")
    crop = None
    padding, extra = conv_padding_arg(padding, weight.shape[2:], stride, dilation)
    if extra != (0, 0):
        crop = x.shape[2:]
        x = pad(x, (0, extra[1], 0, extra[0]))
    return x, weight, bias, conv_geometry(x.shape, weight.shape[2:], stride, padding, dilation), groups, crop


def _unsupported(algorithm, geometry):
    """Why ``algorithm`` cannot run ``geometry``, or None if it can."""
    if algorithm not in CONV_ALGORITHMS:
        return f"algorithm must be one of {CONV_ALGORITHMS + ('auto',)}, got {algorithm!r}"
    if algorithm == "direct" and geometry[2:4] != (1, 1):
        return f"algorithm 'direct' supports stride 1 only, got stride {geometry[2:4]}"
    return None


def _choose(algorithm, x, weight, bias, geometry, groups=1):
    if algorithm == "auto":
        if groups != 1:
            # groups=4 3x3 (32, 64, 32, 32) -> 64, forward + backward, 2 threads (bench_variants): "tiled"
            # 15.4 ms, "im2col" 27.4 ms (both with every (sample, group) pair as a sample).
            return "depthwise" if groups == x.shape[1] else "tiled"
        if _autotune_enabled():
            return _autotuned(x, weight, bias, geometry)
        if x.shape[1] == 1 and geometry[2:4] == (1, 1):
            # One input channel (LeNet's conv1). Batch 64, 2 threads, bench_kernels, two runs: forward
            # 0.13-0.14 ms with direct, 0.27-0.28 im2col, 0.29-0.31 tiled; forward + backward 0.55-0.57 /
            # 0.66-0.69 / 1.20-1.26, without the input gradient 0.33 / 0.44-0.46 / 0.68-0.69.
            return "direct"
        if is_pointwise(geometry):
            # Pointwise (MobileNet's 1x1 layers, batch 128, 2 threads, one bench_kernels run): im2col reads
            # x in place; forward + backward 22.2 / 33.2 / 13.4 / 14.6 ms against tiled 23.9 / 34.1 / 16.6 /
            # 16.8 on (32 -> 64, 32x32), (128 -> 128, 16x16), (128 -> 256, 8x8), (64 -> 128, 16x16).
            return "im2col"
        return "tiled"
    why = _unsupported(algorithm, geometry)
    if why:
        raise ValueError(why)
    return algorithm


# ------------------------------------------------------------------------------ the algorithms
def _padded(x, geometry):
    ph, pw = geometry[4], geometry[5]
    return np.empty((x.shape[0], x.shape[1], x.shape[2] + 2 * ph, x.shape[3] + 2 * pw), x.dtype)


def _tiled_plan(C, H, W, geometry):
    """Window starts ``pos`` (OH*OW,) and tap offsets ``off`` (C*kh*kw,) in a flat padded sample, kept
    per geometry (computing them on every call cost ~8% of LeNet conv2's forward)."""
    key = (C, H, W, geometry)
    plan = _PLANS.get(key)
    if plan is None:
        kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = geometry
        Hp, Wp = H + 2 * ph, W + 2 * pw
        if len(_PLANS) >= 256:
            _PLANS.clear()
        plan = _PLANS[key] = (window_positions(OH, OW, sh, sw, Wp), tap_offsets(C, kh, kw, Hp, Wp, dh, dw))
    return plan


_PLANS = {}


def _tile_lanes(n):
    """The tiled kernels' lanes (16 or 32) over a dimension of ``n`` values (see ``_config.TILE_WIDE_MIN``)."""
    return 32 if VECTOR_BITS >= 512 and n >= TILE_WIDE_MIN else 16


def _forward(algorithm, x, weight, bias, geometry, keep, groups=1):
    """``(y, saved)``: the output, and what backward needs if ``keep`` (else None)."""
    N, C, H, W = x.shape
    F = weight.shape[0]
    kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = geometry
    y = np.empty((N, F, OH, OW), x.dtype)
    if algorithm == "im2col":  # groups: one (sample, group) pair per kernel sample (kernels.conv_im2col)
        G = groups
        if is_pointwise(geometry):  # the receptive fields are x itself, kept as linear keeps x
            cols = x.reshape(N * G, C // G, H * W)
        else:
            cols = np.empty((N * G, C // G * kh * kw, OH * OW), x.dtype)
        kernel_blas_single_threaded()
        im2col_forward(x.reshape(N * G, C // G, H, W), weight.reshape(G, F // G, -1), bias.reshape(G, F // G),
                       geometry, thread_blocks(N * G), cols, y.reshape(N * G, F // G, OH * OW))
        return y, cols if keep else None
    if algorithm == "depthwise":
        xph = np.empty(phase_shape(x.shape, geometry), x.dtype)
        depthwise_forward(x, weight, bias, geometry, thread_blocks(N * C), xph, y)
        return y, xph if keep else None
    if groups != 1 and algorithm == "direct":  # group after group, on contiguous copies of the channel slices
        Cg, Fg = C // groups, F // groups
        saved = []
        for j in range(groups):
            yj, sj = _forward(algorithm, np.ascontiguousarray(x[:, j * Cg:(j + 1) * Cg]), weight[j * Fg:(j + 1) * Fg],
                              bias[j * Fg:(j + 1) * Fg], geometry, keep)
            y[:, j * Fg:(j + 1) * Fg] = yj
            saved.append(sj)
        return y, saved if keep else None
    if algorithm == "direct":
        Hp, Wp = H + 2 * ph, W + 2 * pw
        nr = _tile_lanes((OH - 1) * Wp + OW)  # lanes over the positions of an output plane on the padded width
        xbuf = np.empty(N * C * Hp * Wp + nr, x.dtype)
        direct_forward(x, weight, bias, geometry, thread_blocks(N), nr, xbuf, y)
        return y, xbuf[:N * C * Hp * Wp].reshape(N, C, Hp, Wp) if keep else None
    G = groups  # one (sample, group) pair per kernel sample (kernels.conv_tiled)
    xs = x.reshape(N * G, C // G, H, W)
    pos, off = _tiled_plan(C // G, H, W, geometry)
    copy = bool(ph or pw or keep)  # unpadded and not kept: read x in place
    xpad = _padded(xs, geometry) if copy else xs
    tiled_forward(xs, weight.reshape(G, F // G, C // G, kh, kw), bias.reshape(G, F // G), ph, pw, pos, off,
                  thread_blocks(N * G), copy, _tile_lanes(F // G), xpad, y.reshape(N * G, F // G, OH * OW))
    return y, xpad if keep else None


def _backward(ctx, dy, dx, dweight, dbias):
    """Fills ``dx`` (or an empty array) and adds into ``dweight`` / ``dbias`` (or empty arrays)."""
    N, C, H, W = ctx.input_shape
    kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = g = ctx.geometry
    weight = ctx.weight
    F = weight.shape[0]
    dx = unwanted(4, dy.dtype) if dx is None else dx
    if ctx.groups != 1 and ctx.algorithm == "direct":  # group after group, as the forward
        G, Fg = ctx.groups, F // ctx.groups
        for j in range(G):
            fs = slice(j * Fg, (j + 1) * Fg)
            ctx_j = ctx._replace(input_shape=(N, C // G, H, W), weight=weight[fs], saved=ctx.saved[j], groups=1)
            dx_j = np.empty(ctx_j.input_shape, dy.dtype) if dx.size else dx
            _backward(ctx_j, np.ascontiguousarray(dy[:, fs]), dx_j, None if dweight is None else dweight[fs],
                      None if dbias is None else dbias[fs])
            if dx.size:
                dx[:, j * (C // G):(j + 1) * (C // G)] = dx_j
        return
    if ctx.algorithm == "im2col":
        G = ctx.groups
        nb = thread_blocks(N * G)
        K = C // G * kh * kw
        parts = unwanted(4, dy.dtype) if dweight is None else np.empty((nb, G, K, F // G), dy.dtype)
        bias_parts = unwanted(3, dy.dtype) if dbias is None else np.empty((nb, G, F // G), dy.dtype)
        kernel_blas_single_threaded()
        im2col_backward(dy.reshape(N * G, F // G, OH * OW), weight.reshape(G, F // G, K), ctx.saved, g, nb, parts,
                        bias_parts, dx.reshape(N * G, C // G, H, W) if dx.size else dx)
        if dweight is not None or dbias is not None:  # (both are C-contiguous: the reshapes are views)
            add_block_parts(parts, bias_parts,
                            unwanted(3, dy.dtype) if dweight is None else dweight.reshape(G, F // G, K),
                            unwanted(2, dy.dtype) if dbias is None else dbias.reshape(G, F // G))
        return
    if ctx.algorithm == "depthwise":
        nb = thread_blocks(N * C)
        want_params = dweight is not None or dbias is not None
        parts = np.empty((nb, F, kh * kw + 1), dy.dtype) if want_params else unwanted(3, dy.dtype)  # [b, f, tap], bias last
        depthwise_backward(ctx.saved, dy, weight, g, nb, parts, dx)
        if want_params:
            total = parts.sum(axis=0)
            if dweight is not None:
                dweight += total[:, :-1].reshape(weight.shape)
            if dbias is not None:
                dbias += total[:, -1]
        return
    dweight = unwanted(4, dy.dtype) if dweight is None else dweight
    dbias = unwanted(1, dy.dtype) if dbias is None else dbias
    xpad = ctx.saved
    if ctx.algorithm == "direct":
        if dweight.size or dbias.size:
            direct_backward_params(xpad, dy, g, dweight, dbias)
        if dx.size:
            Wp = xpad.shape[3]
            margin = grad_margin(g, Wp)
            dy_wide = np.empty((N, F, (OH - 1) * Wp + OW + 2 * margin), dy.dtype)
            spread_grad(dy, Wp, margin, dy_wide)
            direct_backward_input(dy_wide, weight, g, thread_blocks(N * C), dx)
        return
    G = ctx.groups  # (sample, group) pairs, as the forward
    pos, off = _tiled_plan(C // G, H, W, g)
    if dx.size and (sh, sw) != (1, 1):
        kernel_blas_single_threaded()  # the input gradient takes W.T @ dy in BLAS
    tiled_backward(xpad, dy.reshape(N * G, F // G, OH, OW), weight.reshape(G, F // G, C // G, kh, kw), pos, off, g,
                   thread_blocks(N * G), _tile_lanes(F // G), _tile_lanes(OH * xpad.shape[3]), dweight.reshape(G, F // G, C // G, kh, kw) if dweight.size else unwanted(5, dy.dtype),
                   dbias.reshape(G, F // G) if dbias.size else unwanted(2, dy.dtype),
                   dx.reshape(N * G, C // G, H, W) if dx.size else dx)


# ------------------------------------------------------------------------------ public API
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algorithm="auto"):
    """``x`` (N, C, H, W) convolved with ``weight`` (F, C/groups, kh, kw), plus ``bias`` (F,) if given:
    returns ``y`` (N, F, OH, OW) and keeps nothing. ``stride``, ``padding`` (zeros) and ``dilation`` are
    ints or ``(h, w)`` pairs (``padding`` also "same" or "valid"); ``OH = (H + 2*ph - dh*(kh-1) - 1) // sh
    + 1``, likewise OW. ``groups`` divides C and F (see Groups above)."""
    return _conv(x, weight, bias, stride, padding, dilation, groups, algorithm, keep=False)[0]


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algorithm="auto"):
    """As :func:`conv2d`, returning ``(y, ctx)``: ``ctx`` (a :class:`Conv2dCtx`) is what
    :func:`conv2d_backward` needs."""
    return _conv(x, weight, bias, stride, padding, dilation, groups, algorithm, keep=True)


def _conv(x, weight, bias, stride, padding, dilation, groups, algorithm, keep):
    x, weight, bias_arr, g, groups, crop = _check_conv_args(x, weight, bias, stride, padding, dilation, groups)
    chosen = _choose(algorithm, x, weight, bias_arr, g, groups)
    y, saved = _forward(chosen, x, weight, bias_arr, g, keep, groups)
    return y, (Conv2dCtx(chosen, x.shape, g, weight, saved, bias is not None, groups, crop) if keep else None)


def conv2d_backward(dy, ctx, *, dx=True, dweight=True, dbias=True):
    """Gradients of the convolution that made ``ctx``, given ``dy`` (N, F, OH, OW): returns
    ``(dx, dweight, dbias)``, ``dx`` (N, C, H, W), ``dweight`` (F, C, kh, kw), ``dbias`` (F,) (None
    without a bias). Each argument: True (a new array), False (not computed, None), or for the
    parameter gradients an array to add into (see ``minicnn.functional``)."""
    if not isinstance(ctx, Conv2dCtx):
        raise TypeError(f"ctx must be the Conv2dCtx that conv2d_forward returned, got {type(ctx).__name__}")
    weight = ctx.weight
    N, F, OH, OW = ctx.input_shape[0], weight.shape[0], ctx.geometry[8], ctx.geometry[9]
    dy = float_input("dy", dy, 4, "(N, F, OH, OW)")
    if dy.dtype is not weight.dtype:
        dy = dy.astype(weight.dtype, copy=False)
    if dy.shape != (N, F, OH, OW):
        raise ValueError(f"dy must have the output's shape {(N, F, OH, OW)}, got {dy.shape}")
    dweight = grad_request("dweight", dweight, weight.shape, weight.dtype)
    dbias = grad_request("dbias", dbias, (F,), weight.dtype) if ctx.has_bias else None
    dx = np.empty(ctx.input_shape, weight.dtype) if dx else None
    _backward(ctx, dy, dx, dweight, dbias)
    if dx is not None and ctx.crop is not None:  # drop the gradient of padding="same"'s extra zeros
        dx = np.ascontiguousarray(dx[:, :, :ctx.crop[0], :ctx.crop[1]])
    return dx, dweight, dbias


# ------------------------------------------------------------------------------ the autotuner
_AUTOTUNE = {"enabled": None, "choices": {}}


def set_conv_autotune(enabled=True):
    """Let ``algorithm="auto"`` time every applicable algorithm (forward + backward, the median of three
    runs after one untimed run) on the first call with a new shape, dtype and thread count, and keep the
    fastest. Off by default (then "auto" is a fixed rule); ``MINICNN_CONV_AUTOTUNE=1`` turns it on too.
    Results may then differ in float rounding between machines or runs."""
    _AUTOTUNE["enabled"] = bool(enabled)


def _autotune_enabled():
    if _AUTOTUNE["enabled"] is None:
        _AUTOTUNE["enabled"] = os.environ.get("MINICNN_CONV_AUTOTUNE", "0") not in ("", "0")
    return _AUTOTUNE["enabled"]


def conv_autotune_report():
    """The autotuner's choices: ``{(x shape, weight shape, geometry, dtype, threads): {"algorithm": name,
    "ms": {name: median ms of forward + backward}}}``."""
    return {k: {"algorithm": v[0], "ms": dict(v[1])} for k, v in _AUTOTUNE["choices"].items()}


def _autotuned(x, weight, bias, geometry):
    key = (x.shape, weight.shape, geometry, x.dtype.name, get_num_threads())
    choice = _AUTOTUNE["choices"].get(key)
    if choice is None:
        ms = {}
        for name in CONV_ALGORITHMS:
            if _unsupported(name, geometry) is None:
                ms[name] = _time_algorithm(name, x, weight, bias, geometry)
        choice = _AUTOTUNE["choices"][key] = (min(ms, key=ms.get), ms)
    return choice[0]


def _time_algorithm(name, x, weight, bias, geometry):
    """Median ms of one forward + backward of ``name``, after an untimed run (compilation, caches)."""
    dy = np.ones((x.shape[0], weight.shape[0], geometry[8], geometry[9]), x.dtype)
    times = []
    for _ in range(4):
        start = time.perf_counter()
        y, saved = _forward(name, x, weight, bias, geometry, keep=True)
        ctx = Conv2dCtx(name, x.shape, geometry, weight, saved, True)
        _backward(ctx, dy, np.empty(x.shape, x.dtype), np.zeros_like(weight), np.zeros_like(bias))
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]) * 1e3)


# ------------------------------------------------------------------------------ im2col / col2im
def unfold(x, kernel_size, dilation=1, padding=0, stride=1):
    """The receptive fields of ``x`` (N, C, H, W) as columns, as PyTorch's ``F.unfold``: returns
    ``cols`` (N, C*kh*kw, OH*OW), rows in (c, i, j) order, columns in (oh, ow) order; 0 on padding."""
    x = float_input("x", x, 4, "(N, C, H, W)")
    g = conv_geometry(x.shape, kernel_size, stride, padding, dilation)
    cols = np.empty((x.shape[0], x.shape[1] * g[0] * g[1], g[8] * g[9]), x.dtype)
    _im2col_kernel(x, g, cols)
    return cols


def fold(cols, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """The adjoint of :func:`unfold`, as PyTorch's ``F.fold``: ``cols`` (N, C*kh*kw, OH*OW) to ``x``
    (N, C, *output_size), each pixel the sum of the entries read from it (0 if none)."""
    H, W = pair("output_size", output_size)
    cols = float_input("cols", cols, 3, "(N, C*kh*kw, OH*OW)")
    kh, kw = pair("kernel_size", kernel_size)
    N, K = cols.shape[0], cols.shape[1]
    if K % (kh * kw):
        raise ValueError(f"cols.shape[1] = {K} must be a multiple of kh*kw = {kh * kw} (kernel_size {(kh, kw)})")
    shape = (N, K // (kh * kw), H, W)
    g = conv_geometry(shape, (kh, kw), stride, padding, dilation)
    if cols.shape[2] != g[8] * g[9]:
        raise ValueError(f"cols.shape[2] must be OH*OW = {g[8] * g[9]} for output_size {(H, W)}, got {cols.shape[2]}")
    x = np.empty(shape, cols.dtype)
    _col2im_kernel(np.ascontiguousarray(cols), g, x)
    return x


def im2col(x, kernel_size, stride=1, padding=0, dilation=1, out=None):
    """The textbook layout: one row per receptive field, ``cols`` (N*OH*OW, C*kh*kw), rows in (n, oh, ow)
    order, columns in (c, i, j) order (:func:`unfold` transposed per sample). ``out``, if given, is
    filled and returned."""
    cols = unfold(x, kernel_size, dilation, padding, stride)
    N, K, P = cols.shape
    out = out_array("out", out, (N * P, K), cols.dtype)
    out.reshape(N, P, K)[...] = cols.transpose(0, 2, 1)
    return out


def col2im(cols, input_shape, kernel_size, stride=1, padding=0, dilation=1, out=None):
    """The adjoint of :func:`im2col`: ``x`` of ``input_shape`` (N, C, H, W) where each pixel is the sum
    of the ``cols`` (N*OH*OW, C*kh*kw) entries read from it (0 if none)."""
    N, C, H, W = input_shape = input_shape_arg(input_shape)
    cols = float_input("cols", cols, 2, "(N*OH*OW, C*kh*kw)")
    g = conv_geometry(input_shape, kernel_size, stride, padding, dilation)
    K, P = C * g[0] * g[1], g[8] * g[9]
    if cols.shape != (N * P, K):
        raise ValueError(f"cols must have shape (N*OH*OW, C*kh*kw) = {(N * P, K)} for input_shape "
                         f"{input_shape}, got {cols.shape}")
    x = out_array("out", out, input_shape, cols.dtype)
    _col2im_kernel(np.ascontiguousarray(cols.reshape(N, P, K).transpose(0, 2, 1)), g, x)
    return x
