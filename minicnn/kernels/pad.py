"""Padding of the last two axes of NCHW arrays (zeros/constant, reflect, replicate, circular) and its adjoint.

Each output row ``oh`` reads input row ``rows[oh]`` and each output column ``ow`` input column
``cols[ow]``; ``-1`` means "the constant value" (constant mode only). The index maps, one per axis,
are where the modes differ (:func:`pad_index`); the kernels only gather (forward) and scatter-add
(adjoint: the gradient of every output pixel is added to the pixel it was read from, so reflected,
replicated and wrapped pixels accumulate). Columns ``[lo, hi)`` read ``ow - shift`` (the copied
middle of each row) and are handled as one contiguous run.
"""
import numpy as np
from numba import prange

from .._config import jit_parallel
from .common import _u

def pad_index(size, before, after, mode):
    """``(index, lo, hi)`` along one axis, for pads the caller has validated (``before`` or ``after``
    may be negative: the output is cropped): ``index`` (before + size + after,) int64 is the source
    of each output position (-1: the constant), and positions ``[lo, hi)`` read ``ow - before``."""
    h = np.arange(-before, size + after, dtype=np.int64)
    lo, hi = max(0, before), max(max(0, before), min(h.shape[0], before + size))
    if mode == "constant":
        index = np.where((h >= 0) & (h < size), h, -1)
    elif mode == "reflect":  # edge not repeated: -1 -> 1, size -> size - 2 (pads < size: one reflection)
        index = np.where(h < 0, -h, np.where(h >= size, 2 * (size - 1) - h, h))
    elif mode == "replicate":
        index = np.clip(h, 0, size - 1)
    else:  # circular, as PyTorch: crop by the negative pads first, then wrap around what is left
        first, last = max(0, -before), size - max(0, -after)
        index = first + (h - first) % (last - first)
    return np.ascontiguousarray(index, dtype=np.int64), lo, hi


@jit_parallel
def pad_forward(x, rows, cols, lo, hi, value, y):
    """``y[n, c, oh, ow] = x[n, c, rows[oh], cols[ow]]``, ``value`` where either index is -1; columns
    ``[lo, hi)`` are the contiguous run ``cols[ow] = ow + cols[lo] - lo``."""
    N, C = x.shape[0], x.shape[1]
    OH, OW = y.shape[2], y.shape[3]
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        for oh in range(OH):
            dst = y[n, c, oh]
            r = rows[oh]
            if r < 0:
                dst[:] = value
                continue
            src = x[n, c, r]
            for ow in range(lo):
                s = cols[ow]
                dst[ow] = src[s] if s >= 0 else value
            if hi > lo:
                shift = cols[lo] - lo
                for ow in range(lo, hi):
                    dst[_u(ow)] = src[_u(ow + shift)]
            for ow in range(hi, OW):
                s = cols[ow]
                dst[ow] = src[s] if s >= 0 else value


@jit_parallel
def pad_backward(dy, rows, cols, lo, hi, dx):
    """The adjoint of :func:`pad_forward`: sets ``dx`` (N, C, H, W) to the sum of the ``dy``
    (N, C, OH, OW) entries read from each pixel (0 where none was); one plane per iteration: no race."""
    N, C = dx.shape[0], dx.shape[1]
    OH, OW = dy.shape[2], dy.shape[3]
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        dx[n, c] = 0
        for oh in range(OH):
            r = rows[oh]
            if r < 0:
                continue
            src = dy[n, c, oh]
            dst = dx[n, c, r]
            for ow in range(lo):
                s = cols[ow]
                if s >= 0:
                    dst[s] += src[ow]
            if hi > lo:
                shift = cols[lo] - lo
                for ow in range(lo, hi):
                    dst[_u(ow + shift)] += src[_u(ow)]
            for ow in range(hi, OW):
                s = cols[ow]
                if s >= 0:
                    dst[s] += src[ow]

