"""Upsampling: ``interpolate`` with modes "nearest" and "bilinear", PyTorch's arguments and formulas.

Shapes: input ``x`` (N, C, H, W), float32 or float64; output (N, C, OH, OW) with ``(OH, OW) = size``
or ``floor((H, W) * scale_factor)``. The source position of output ``o`` along an axis of input
length ``S`` and output length ``O`` (PyTorch's CPU formulas, computed in the input's float dtype):

- the scale: ``1 / scale_factor`` when a scale factor was given (and ``recompute_scale_factor`` is
  not True), else ``S / O``; with ``align_corners=True`` (bilinear only) ``(S - 1) / (O - 1)``
  (0 when O = 1) whatever was given;
- "nearest": ``min(floor(o * scale), S - 1)``; as PyTorch, ``o`` when O = S and ``o // 2`` when
  O = 2S, whatever the scale;
- "bilinear": ``src = scale * o`` (align_corners) or ``max(scale * (o + 0.5) - 0.5, 0)``;
  ``h0 = min(floor(src), S - 1)``, ``h1 = min(h0 + 1, S - 1)``, weights ``1 - l`` and
  ``l = clip(src - h0, 0, 1)``; when O = S the identity.
"""
from typing import NamedTuple, Tuple

import numpy as np

from .. import _validate as V
from ..kernels import upsample as K


class InterpolateCtx(NamedTuple):
    """What ``interpolate``'s backward needs: the mode and the per-axis source tables."""
    mode: str
    tables: tuple              # nearest: (src_h, src_w); bilinear: (h0, h1, lh0, lh1, w0, w1, lw0, lw1)
    input_shape: Tuple[int, int, int, int]
    dtype: np.dtype
    output_shape: Tuple[int, int, int, int]


def _scale(in_size, out_size, scale, align_corners, dt):
    """The source-index scale of one axis, in the float dtype ``dt`` (PyTorch's area_pixel_compute_scale)."""
    if align_corners:
        return dt(in_size - 1) / dt(out_size - 1) if out_size > 1 else dt(0)
    if scale is not None and scale > 0:
        return dt(1.0 / scale)
    return dt(in_size) / dt(out_size)


def _nearest_table(in_size, out_size, scale):
    """``src[o]`` for "nearest" along one axis (PyTorch's nearest_idx; float32 arithmetic as PyTorch)."""
    o = np.arange(out_size)
    if out_size == in_size:
        return o
    if out_size == 2 * in_size:
        return o >> 1
    s = _scale(in_size, out_size, scale, False, np.float32)
    return np.minimum(np.floor(o.astype(np.float32) * s).astype(np.int64), in_size - 1)


def _bilinear_table(in_size, out_size, scale, align_corners, dt):
    """``(i0, i1, l0, l1)`` for "bilinear" along one axis (PyTorch's compute_source_index_and_lambda)."""
    o = np.arange(out_size)
    if out_size == in_size:
        return o, o, np.ones(out_size, dt), np.zeros(out_size, dt)
    s = _scale(in_size, out_size, scale, align_corners, dt)
    of = o.astype(dt)
    src = s * of if align_corners else np.maximum(s * (of + dt(0.5)) - dt(0.5), dt(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    l1 = np.clip(src - i0.astype(dt), dt(0), dt(1)).astype(dt)
    i1 = np.where(i0 < in_size - 1, i0 + 1, i0)
    return i0, i1, (dt(1) - l1).astype(dt), l1


def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None):
    """Resize ``x`` (N, C, H, W) to ``size`` (int or (OH, OW)) or by ``scale_factor`` (number or pair),
    exactly one of them; ``mode`` "nearest" or "bilinear"; ``align_corners`` (bilinear only; None:
    False). The forward alone: ``y`` (N, C, OH, OW)."""
    return interpolate_forward(x, size, scale_factor, mode, align_corners, recompute_scale_factor)[0]


def interpolate_forward(x, size=None, scale_factor=None, mode="nearest", align_corners=None,
                        recompute_scale_factor=None):
    """``interpolate`` -> ``(y, ctx)``; arguments as :func:`interpolate`."""
    x = V.pool_input("input", x)
    N, C, H, W = x.shape
    (OH, OW), scales, align_corners = V.interpolate_args(
        x.shape, size, scale_factor, mode, align_corners, recompute_scale_factor)
    sh, sw = scales if scales is not None else (None, None)
    y = np.empty((N, C, OH, OW), dtype=x.dtype)
    if mode == "nearest":
        tables = (_nearest_table(H, OH, sh), _nearest_table(W, OW, sw))
        K.nearest_forward(x, *tables, y)
    else:
        dt = x.dtype.type
        th = _bilinear_table(H, OH, sh, align_corners, dt)
        tw = _bilinear_table(W, OW, sw, align_corners, dt)
        tables = (th[0], th[1], th[2], th[3], tw[0], tw[1], tw[2], tw[3])
        K.bilinear_forward(x, *tables, y)
    return y, InterpolateCtx(mode, tables, x.shape, x.dtype, y.shape)


def interpolate_backward(dy, ctx):
    """``dx`` (N, C, H, W): each input element sums the shares of ``dy`` (N, C, OH, OW) it contributed to."""
    dy = V.grad_array("dy", dy, ctx.output_shape, ctx.dtype)
    dx = np.empty(ctx.input_shape, dtype=ctx.dtype)
    (K.nearest_backward if ctx.mode == "nearest" else K.bilinear_backward)(dy, *ctx.tables, dx)
    return dx
