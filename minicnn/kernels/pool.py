"""Max and average pooling on NCHW arrays, forward and backward.

Conventions (PyTorch's, floor mode):
- kernel ``(kh, kw)``, stride ``(sh, sw)`` (``None``: the kernel size), padding ``(ph, pw)`` with
  ``0 <= p <= k // 2``; output size ``(H + 2 * ph - kh) // sh + 1`` (and likewise for W).
- Max pooling pads with -inf (padding never wins), takes the FIRST maximum in row-major window order
  on ties, and propagates NaN like PyTorch (a NaN in the window makes the output NaN and ``argmax``
  points at it; with several NaNs, at the last one, as PyTorch). ``argmax[n, c, oh, ow]`` is the flat
  index ``h * W + w`` into the unpadded input plane, the same values as PyTorch's indices, but with
  dtype ``INDEX_DTYPE`` = int32 (half the memory traffic of int64; planes must have < 2**31 elements).
- Average pooling divides by ``kh * kw``, padded zeros included (PyTorch's ``count_include_pad=True``).

Each op has a private ``@jit_parallel`` kernel that trusts its arguments (every window holds at least
one real input element, which ``0 <= p <= k // 2`` and ``H, W >= 1`` guarantee) and a public wrapper
that validates and allocates. The kernels run ``prange`` over the ``N * C`` planes, which are
disjoint, and special-case 2x2 windows with stride 2 and no padding (LeNet's pooling).
"""
import numbers

import numpy as np
from numba import prange

from .._config import jit, jit_parallel
from .._validate import float_input, out_array, pair

INDEX_DTYPE = np.int32
"""dtype of max pooling's ``argmax`` (PyTorch uses int64; int32 is measurably faster here)."""


# -- kernels ----------------------------------------------------------------------------------------
@jit
def _is_2x2_stride_2(kh, kw, sh, sw, ph, pw):
    """LeNet's pooling (2x2 windows, stride 2, no padding), which every kernel special-cases."""
    return kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0


@jit
def _window_span(o, stride, pad, k, size):
    """``(start, end)``: the input rows (or columns) that window ``o`` covers, clipped to the input
    ``[0, size)``: padding lies outside and is never read."""
    start = o * stride - pad
    return max(start, 0), min(start + k, size)


@jit_parallel
def _max_pool2d_forward(x, kh, kw, sh, sw, ph, pw, y, argmax):
    """Write the window maxima of ``x`` (N, C, H, W) into ``y`` and their flat plane indices into
    ``argmax``, both (N, C, OH, OW)."""
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    fast = _is_2x2_stride_2(kh, kw, sh, sw, ph, pw)
    for p in prange(N * C):
        n = p // C
        c = p - n * C
        xp = x[n, c]
        yp = y[n, c]
        ap = argmax[n, c]
        if fast:
            for oh in range(OH):
                h = 2 * oh
                for ow in range(OW):
                    w = 2 * ow
                    v0, v1 = xp[h, w], xp[h, w + 1]
                    v2, v3 = xp[h + 1, w], xp[h + 1, w + 1]
                    # Branch-free (random data makes branches unpredictable): max(a, b) keeps a
                    # unless b > a, so this is the first maximum's value; the index is the first
                    # element equal to it, chosen by integer selects in reverse order.
                    best = max(max(v0, v1), max(v2, v3))
                    i0 = h * W + w
                    where = i0 + W + 1
                    where = i0 + W if v2 == best else where
                    where = i0 + 1 if v1 == best else where
                    where = i0 if v0 == best else where
                    if (v0 != v0) | (v1 != v1) | (v2 != v2) | (v3 != v3):
                        # Rare: NaN wins, the last one in window order (as PyTorch).
                        if v0 != v0:
                            best, where = v0, i0
                        if v1 != v1:
                            best, where = v1, i0 + 1
                        if v2 != v2:
                            best, where = v2, i0 + W
                        if v3 != v3:
                            best, where = v3, i0 + W + 1
                    yp[oh, ow] = best
                    ap[oh, ow] = where
        else:
            for oh in range(OH):
                h_start, h_end = _window_span(oh, sh, ph, kh, H)
                for ow in range(OW):
                    w_start, w_end = _window_span(ow, sw, pw, kw, W)
                    # Padding is -inf, so only real elements compete; start from the first one.
                    best = xp[h_start, w_start]
                    where = h_start * W + w_start
                    has_nan = False
                    for h in range(h_start, h_end):
                        for w in range(w_start, w_end):
                            v = xp[h, w]
                            # Branch-free (as above): max keeps `best` unless v > best, and the
                            # index moves exactly when the maximum changed.
                            new_best = max(best, v)
                            where = h * W + w if new_best != best else where
                            best = new_best
                            has_nan |= v != v
                    if has_nan:
                        # Rare: NaN wins, the last one in window order (as PyTorch).
                        for h in range(h_start, h_end):
                            for w in range(w_start, w_end):
                                if xp[h, w] != xp[h, w]:
                                    best, where = xp[h, w], h * W + w
                    yp[oh, ow] = best
                    ap[oh, ow] = where


@jit_parallel
def _max_pool2d_values(x, kh, kw, sh, sw, ph, pw, y):
    """Write the window maxima of ``x`` (N, C, H, W) into ``y`` (N, C, OH, OW), NaN propagating, without
    their positions (evaluation: nothing to route back); the 2x2 case ran 1.8-2.4x faster than
    :func:`_max_pool2d_forward` (measured through MaxPool2d on LeNet's shapes and 64x32x32)."""
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    fast = _is_2x2_stride_2(kh, kw, sh, sw, ph, pw)
    for p in prange(N * C):
        n = p // C
        c = p - n * C
        xp = x[n, c]
        yp = y[n, c]
        for oh in range(OH):
            if fast:
                r0, r1, yr = xp[2 * oh], xp[2 * oh + 1], yp[oh]
                for ow in range(OW):
                    v0, v1, v2, v3 = r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]
                    yr[ow] = max(max(v0, v1), max(v2, v3))
                    if (v0 != v0) | (v1 != v1) | (v2 != v2) | (v3 != v3):  # rare
                        yr[ow] = np.nan
                continue
            h_start, h_end = _window_span(oh, sh, ph, kh, H)
            for ow in range(OW):
                w_start, w_end = _window_span(ow, sw, pw, kw, W)
                best = xp[h_start, w_start]  # padding is -inf: only real elements compete
                nan = False
                for h in range(h_start, h_end):
                    for w in range(w_start, w_end):
                        v = xp[h, w]
                        best = max(best, v)
                        nan |= v != v
                yp[oh, ow] = np.nan if nan else best


@jit_parallel
def _max_pool2d_backward(dy, argmax, dx):
    """Route each window's gradient to its maximum: ``dx`` (N, C, H, W) is overwritten with zeros
    plus, for every window, ``dy[n, c, oh, ow]`` added at ``argmax[n, c, oh, ow]`` (overlapping
    windows add up)."""
    N, C, H, W = dx.shape
    OH, OW = dy.shape[2], dy.shape[3]
    for p in prange(N * C):
        n = p // C
        c = p - n * C
        # Flat views of one plane: argmax indexes the plane directly.
        dxp = dx[n, c].reshape(H * W)
        dyp = dy[n, c].reshape(OH * OW)
        ap = argmax[n, c].reshape(OH * OW)
        dxp[:] = 0
        for q in range(OH * OW):
            dxp[ap[q]] += dyp[q]


@jit_parallel
def _avg_pool2d_forward(x, kh, kw, sh, sw, ph, pw, y):
    """Write the window means of ``x`` (N, C, H, W) into ``y`` (N, C, OH, OW); padded zeros count."""
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    fast = _is_2x2_stride_2(kh, kw, sh, sw, ph, pw)
    zero = x.dtype.type(0)
    # In x's dtype, so float32 stays float32; 2x2 multiplies by the exact 0.25, others divide.
    quarter = x.dtype.type(0.25)
    divisor = x.dtype.type(kh * kw)
    for p in prange(N * C):
        n = p // C
        c = p - n * C
        xp = x[n, c]
        yp = y[n, c]
        if fast:
            for oh in range(OH):
                h = 2 * oh
                for ow in range(OW):
                    w = 2 * ow
                    yp[oh, ow] = ((xp[h, w] + xp[h, w + 1]) + (xp[h + 1, w] + xp[h + 1, w + 1])) * quarter
        else:
            for oh in range(OH):
                h_start, h_end = _window_span(oh, sh, ph, kh, H)
                for ow in range(OW):
                    w_start, w_end = _window_span(ow, sw, pw, kw, W)
                    s = zero
                    for h in range(h_start, h_end):
                        for w in range(w_start, w_end):
                            s += xp[h, w]
                    yp[oh, ow] = s / divisor


@jit_parallel
def _avg_pool2d_backward(dy, kh, kw, sh, sw, ph, pw, dx):
    """Overwrite ``dx`` (N, C, H, W) with the gradient of average pooling given ``dy``
    (N, C, OH, OW): each input element gathers ``dy / (kh * kw)`` from every window that covers it."""
    N, C, H, W = dx.shape
    OH, OW = dy.shape[2], dy.shape[3]
    fast = _is_2x2_stride_2(kh, kw, sh, sw, ph, pw)
    zero = dx.dtype.type(0)
    quarter = dx.dtype.type(0.25)
    divisor = dx.dtype.type(kh * kw)
    for p in prange(N * C):
        n = p // C
        c = p - n * C
        dyp = dy[n, c]
        dxp = dx[n, c]
        if fast:
            for oh in range(OH):
                h = 2 * oh
                for ow in range(OW):
                    w = 2 * ow
                    g = dyp[oh, ow] * quarter
                    dxp[h, w] = g
                    dxp[h, w + 1] = g
                    dxp[h + 1, w] = g
                    dxp[h + 1, w + 1] = g
            # An odd last row / column lies in no window.
            for h in range(2 * OH, H):
                dxp[h, :] = 0
            for h in range(2 * OH):
                for w in range(2 * OW, W):
                    dxp[h, w] = 0
        else:
            for h in range(H):
                # Windows oh with oh*sh - ph <= h < oh*sh - ph + kh, clipped to [0, OH).
                oh_start = max(h + ph - kh + sh, 0) // sh  # ceil((h + ph - kh + 1) / sh), >= 0
                oh_end = min((h + ph) // sh + 1, OH)
                for w in range(W):
                    ow_start = max(w + pw - kw + sw, 0) // sw
                    ow_end = min((w + pw) // sw + 1, OW)
                    s = zero
                    for oh in range(oh_start, oh_end):
                        for ow in range(ow_start, ow_end):
                            s += dyp[oh, ow]
                    dxp[h, w] = s / divisor


# -- validation -------------------------------------------------------------------------------------
def pool_params(kernel_size, stride, padding):
    """``kernel_size``, ``stride`` (None: the kernel size) and ``padding`` as (h, w) pairs, checked
    on their own: kernel and stride >= 1, ``0 <= padding <= kernel // 2`` per axis (as PyTorch)."""
    kernel = pair("kernel_size", kernel_size, minimum=1)
    stride = kernel if stride is None else pair("stride", stride, minimum=1)
    padding = pair("padding", padding, minimum=0)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(
            f"padding must be at most half the kernel size, (kernel_size[0] // 2, kernel_size[1] // 2) "
            f"= {(kernel[0] // 2, kernel[1] // 2)}, got padding={padding} for kernel_size={kernel}")
    return kernel, stride, padding


def pool_output_shape(input_shape, kernel, stride, padding):
    """(N, C, OH, OW) for an input of ``input_shape``; ValueError when a dimension is empty or the
    kernel is larger than the padded input."""
    N, C, H, W = _check_input_shape(input_shape)
    padded = (H + 2 * padding[0], W + 2 * padding[1])
    if kernel[0] > padded[0] or kernel[1] > padded[1]:
        raise ValueError(
            f"kernel_size {kernel} is larger than the padded input (H + 2*padding, W + 2*padding) = {padded}")
    return (N, C, (padded[0] - kernel[0]) // stride[0] + 1, (padded[1] - kernel[1]) // stride[1] + 1)


def _check_input_shape(input_shape):
    N, C, H, W = input_shape
    if C < 1 or H < 1 or W < 1:
        raise ValueError(f"input must have C, H, W >= 1, got shape {tuple(input_shape)}")
    if H * W > np.iinfo(INDEX_DTYPE).max:
        raise ValueError(f"input planes must have H * W <= {np.iinfo(INDEX_DTYPE).max} elements "
                         f"(argmax is {np.dtype(INDEX_DTYPE)}), got shape {tuple(input_shape)}")
    return input_shape


def _shape_tuple(name, shape):
    """``shape`` as a 4-tuple of ints >= 0 (the kernels' ``input_shape`` argument)."""
    if (not isinstance(shape, (tuple, list)) or len(shape) != 4
            or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 0 for s in shape)):
        raise ValueError(f"{name} must be a 4-tuple of non-negative ints (N, C, H, W), got {shape!r}")
    return tuple(int(s) for s in shape)


def _grad(name, dy, expected_shape):
    """``dy`` as a 4-D float32/float64 array (its float dtype kept) of exactly ``expected_shape``."""
    dy = float_input(name, dy, 4, "(N, C, H, W)")
    if dy.shape != tuple(expected_shape):
        raise ValueError(f"{name} must have the output's shape {tuple(expected_shape)}, got {dy.shape}")
    return dy


# -- public wrappers ----------------------------------------------------------------------------------
def max_pool2d_forward(x, kernel_size, stride=None, padding=0, out=None, argmax=None):
    """Max pooling of ``x`` (N, C, H, W) -> ``(y, argmax)``, both (N, C, OH, OW).

    ``y`` has ``x``'s float dtype; ``argmax`` (``INDEX_DTYPE``) holds flat indices ``h * W + w`` into
    each unpadded input plane. ``out`` and ``argmax`` may be given as preallocated outputs.
    """
    kernel, stride, padding = pool_params(kernel_size, stride, padding)
    x = float_input("x", x, 4, "(N, C, H, W)")
    shape = pool_output_shape(x.shape, kernel, stride, padding)
    y = out_array("out", out, shape, x.dtype)
    argmax = out_array("argmax", argmax, shape, INDEX_DTYPE)
    _max_pool2d_forward(x, kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1], y, argmax)
    return y, argmax


def max_pool2d_backward(dy, argmax, input_shape, out=None):
    """Gradient of max pooling: ``dx`` of ``input_shape`` (N, C, H, W), zero except that each
    window's ``dy`` is added at its ``argmax`` (both (N, C, OH, OW), from ``max_pool2d_forward``)."""
    N, C, H, W = input_shape = _check_input_shape(_shape_tuple("input_shape", input_shape))
    if not isinstance(argmax, np.ndarray) or argmax.dtype.kind not in "iu":
        raise TypeError(f"argmax must be an integer numpy.ndarray, got {getattr(argmax, 'dtype', type(argmax).__name__)}")
    if argmax.ndim != 4 or argmax.shape[:2] != (N, C):
        raise ValueError(f"argmax must be 4-D ({N}, {C}, OH, OW) for input_shape {input_shape}, got shape {argmax.shape}")
    dy = _grad("dy", dy, argmax.shape)
    if argmax.size and (argmax.min() < 0 or argmax.max() >= H * W):
        raise ValueError(f"argmax values must be flat plane indices in [0, H*W) = [0, {H * W}), "
                         f"got values from {argmax.min()} to {argmax.max()}")
    argmax = np.ascontiguousarray(argmax, dtype=INDEX_DTYPE)
    dx = out_array("out", out, input_shape, dy.dtype)
    _max_pool2d_backward(dy, argmax, dx)
    return dx


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0, out=None):
    """Average pooling of ``x`` (N, C, H, W) -> ``y`` (N, C, OH, OW), dividing by kh * kw."""
    kernel, stride, padding = pool_params(kernel_size, stride, padding)
    x = float_input("x", x, 4, "(N, C, H, W)")
    shape = pool_output_shape(x.shape, kernel, stride, padding)
    y = out_array("out", out, shape, x.dtype)
    _avg_pool2d_forward(x, kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1], y)
    return y


def avg_pool2d_backward(dy, input_shape, kernel_size, stride=None, padding=0, out=None):
    """Gradient of average pooling: ``dx`` of ``input_shape`` (N, C, H, W) from ``dy`` (N, C, OH, OW)."""
    kernel, stride, padding = pool_params(kernel_size, stride, padding)
    input_shape = _shape_tuple("input_shape", input_shape)
    shape = pool_output_shape(input_shape, kernel, stride, padding)
    dy = _grad("dy", dy, shape)
    dx = out_array("out", out, input_shape, dy.dtype)
    _avg_pool2d_backward(dy, kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1], dx)
    return dx
