"""im2col and its adjoint col2im, on NCHW arrays.

``im2col`` turns every receptive field into one row: ``cols`` has shape ``(N*OH*OW, C*kh*kw)``, rows
in ``(n, oh, ow)`` order and columns in ``(c, i, j)`` order; entries whose window position falls on
the zero padding are 0. Window ``(oh, ow)`` reads input pixel ``(oh*sh - ph + i*dh, ow*sw - pw + j*dw)``
for kernel offset ``(i, j)``. ``col2im`` scatters such rows back, summing where windows overlap.
"""
import numpy as np
from numba import prange

from .._config import jit, jit_parallel
from .._validate import conv_output_size, float_input, input_shape_arg, out_array, pair

# Kernels index with unsigned integers (``_u(i)``) where the index is known to be >= 0: Numba then
# skips its negative-index wraparound test on every access, which otherwise blocks vectorisation
# (measured: im2col 3x faster).
_u = np.uint64


@jit
def _inside(off, stride, n_out, size):
    """The output positions ``[lo, hi)`` whose input position ``o * stride + off`` is in ``[0, size)``."""
    lo = 0 if off >= 0 else min(n_out, (-off + stride - 1) // stride)
    hi = min(n_out, max(lo, (size - 1 - off) // stride + 1))
    return lo, hi


@jit_parallel
def _im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, cols):
    """Fill ``cols`` (N*OH*OW, C*kh*kw) with the receptive fields of ``x`` (N, C, H, W)."""
    N, C, H, W = x.shape
    OH = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    OW = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    for t in prange(N * OH):  # one output row (n, oh) per iteration: disjoint rows of cols
        n = t // OH
        oh = t - n * OH
        for ow in range(OW):
            row = cols[t * OW + ow]
            w0 = ow * sw - pw
            j_lo, j_hi = _inside(w0, dw, kw, W)  # kernel columns that fall inside the input
            for c in range(C):
                for i in range(kh):
                    col = (c * kh + i) * kw
                    h = oh * sh - ph + i * dh
                    if h < 0 or h >= H:
                        for j in range(kw):
                            row[_u(col + j)] = 0
                        continue
                    xrow = x[n, c, h]
                    for j in range(j_lo):
                        row[_u(col + j)] = 0
                    for j in range(j_lo, j_hi):
                        row[_u(col + j)] = xrow[_u(w0 + j * dw)]
                    for j in range(j_hi, kw):
                        row[_u(col + j)] = 0


@jit_parallel
def _col2im(cols, kh, kw, sh, sw, ph, pw, dh, dw, x):
    """Set ``x`` (N, C, H, W) to the sum of the rows of ``cols`` (N*OH*OW, C*kh*kw) scattered back to
    the input positions they were read from (padding positions are dropped)."""
    N, C, H, W = x.shape
    OH = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    OW = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    for n in prange(N):  # each sample's planes are written by one thread only: no race
        x[n] = 0
        for oh in range(OH):
            for ow in range(OW):
                row = cols[(n * OH + oh) * OW + ow]
                w0 = ow * sw - pw
                j_lo, j_hi = _inside(w0, dw, kw, W)
                for c in range(C):
                    for i in range(kh):
                        h = oh * sh - ph + i * dh
                        if h < 0 or h >= H:
                            continue
                        xrow = x[n, c, h]
                        col = (c * kh + i) * kw
                        for j in range(j_lo, j_hi):
                            xrow[_u(w0 + j * dw)] += row[_u(col + j)]


def conv_geometry(input_shape, kernel_size, stride, padding, dilation):
    """Validated ``(kh, kw, sh, sw, ph, pw, dh, dw, OH, OW)`` for an input of shape (N, C, H, W)."""
    kh, kw = pair("kernel_size", kernel_size)
    sh, sw = pair("stride", stride)
    ph, pw = pair("padding", padding, minimum=0)
    dh, dw = pair("dilation", dilation)
    H, W = input_shape[2], input_shape[3]
    if dh * (kh - 1) + 1 > H + 2 * ph or dw * (kw - 1) + 1 > W + 2 * pw:
        raise ValueError(
            f"kernel_size {(kh, kw)} with dilation {(dh, dw)} spans "
            f"{(dh * (kh - 1) + 1, dw * (kw - 1) + 1)} pixels, larger than the padded input "
            f"{(H + 2 * ph, W + 2 * pw)} (input {(H, W)}, padding {(ph, pw)})")
    OH = conv_output_size(H, kh, sh, ph, dh)
    OW = conv_output_size(W, kw, sw, pw, dw)
    return kh, kw, sh, sw, ph, pw, dh, dw, OH, OW


def im2col(x, kernel_size, stride=1, padding=0, dilation=1, out=None):
    """Receptive fields of ``x`` (N, C, H, W) as rows: returns ``cols`` (N*OH*OW, C*kh*kw).

    ``kernel_size``, ``stride``, ``padding`` and ``dilation`` are ints or ``(h, w)`` pairs. ``out``, if
    given, is filled and returned (a C-contiguous array of the right shape and ``x``'s dtype).
    """
    x = float_input("x", x, 4, "(N, C, H, W)")
    N, C, H, W = x.shape
    kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = conv_geometry(x.shape, kernel_size, stride, padding, dilation)
    shape = (N * OH * OW, C * kh * kw)
    cols = out_array("out", out, shape, x.dtype)
    _im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, cols)
    return cols


def col2im(cols, input_shape, kernel_size, stride=1, padding=0, dilation=1, out=None):
    """The adjoint of :func:`im2col`: returns ``x`` of ``input_shape`` (N, C, H, W) where each pixel
    is the sum of the ``cols`` (N*OH*OW, C*kh*kw) entries that were read from it (0 if none)."""
    input_shape = input_shape_arg(input_shape)
    cols = float_input("cols", cols, 2, "(N*OH*OW, C*kh*kw)")
    N, C, H, W = input_shape
    kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = conv_geometry(input_shape, kernel_size, stride, padding, dilation)
    expected = (N * OH * OW, C * kh * kw)
    if cols.shape != expected:
        raise ValueError(f"cols must have shape (N*OH*OW, C*kh*kw) = {expected} for input_shape "
                         f"{input_shape}, got {cols.shape}")
    x = out_array("out", out, input_shape, cols.dtype)
    _col2im(cols, kh, kw, sh, sw, ph, pw, dh, dw, x)
    return x
