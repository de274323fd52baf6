"""Batch assembly for ``DataLoader``: gather the batch's images, random-crop them from a zero-padded
copy, flip them horizontally and normalise them per channel, in one pass per output value.

Semantics of torchvision's ``RandomCrop(size, padding)`` then ``RandomHorizontalFlip`` then
``Normalize(mean, std)``: sample ``b`` is ``images[index[b]]`` padded by ``pad`` zero pixels on every
side, cropped to ``(S, T)`` at top-left ``(oy[b], ox[b])`` of the padded image, mirrored left-right
when ``flip[b]``, then normalised. Padding pixels are raw zeros, so they normalise to ``-mean / std``.
Without augmentation: ``pad = 0``, offsets 0, no flips, ``(S, T) = (H, W)``.
"""
from numba import prange

from .._config import jit, jit_parallel


@jit
def _source(i, oy, pad, size):
    """Row (or column) of the unpadded image that padded-crop position ``i`` reads; -1 in the padding."""
    r = i + oy - pad
    return r if 0 <= r < size else -1


@jit_parallel
def _gather_uint8(images, index, lut, oy, ox, flip, pad, out):
    """uint8 ``images (N, C, H, W)`` into ``out (B, C, S, T)``: ``out = lut[c, pixel]`` (``lut (C, 256)``
    holds ``(v / 255 - mean[c]) / std[c]``; padding reads pixel 0)."""
    B, C, S, T = out.shape
    H, W = images.shape[2], images.shape[3]
    for b in prange(B):
        n = index[b]
        for c in range(C):
            for i in range(S):
                r = _source(i, oy[b], pad, H)
                for j in range(T):
                    col = _source(T - 1 - j if flip[b] else j, ox[b], pad, W)
                    out[b, c, i, j] = lut[c, 0] if r < 0 or col < 0 else lut[c, images[n, c, r, col]]


@jit_parallel
def _gather_float(images, index, mean, std, oy, ox, flip, pad, out):
    """Float ``images (N, C, H, W)`` into ``out (B, C, S, T)``: ``out = (v - mean[c]) / std[c]``, computed
    in float64 (padding reads 0.0)."""
    B, C, S, T = out.shape
    H, W = images.shape[2], images.shape[3]
    for b in prange(B):
        n = index[b]
        for c in range(C):
            m, s = mean[c], std[c]
            for i in range(S):
                r = _source(i, oy[b], pad, H)
                for j in range(T):
                    col = _source(T - 1 - j if flip[b] else j, ox[b], pad, W)
                    v = 0.0 if r < 0 or col < 0 else float(images[n, c, r, col])
                    out[b, c, i, j] = (v - m) / s


def assemble_batch(images, index, mean, std, oy, ox, flip, pad, out, lut=None):
    """Fill ``out (B, C, S, T)`` (float32/float64) from ``images (N, C, H, W)`` (uint8 with its ``lut
    (C, 256)`` of ``out``'s dtype, or float) as the module docstring says; ``index``, ``oy``, ``ox`` are
    ``(B,)`` int64, ``flip`` ``(B,)`` bool, ``mean``/``std`` ``(C,)`` float64. Returns ``out``.
    Raises ``ValueError`` for inconsistent shapes or out-of-range indices or offsets (the kernels trust them)."""
    B, C, S, T = out.shape
    N, C_in, H, W = images.shape
    if C_in != C or any(a.shape != (B,) for a in (index, oy, ox, flip)) or mean.shape != (C,) or std.shape != (C,):
        raise ValueError(f"assemble_batch: inconsistent shapes: images {images.shape}, out {out.shape}, "
                         f"index {index.shape}, mean {mean.shape}")
    if B and (index.min() < 0 or index.max() >= N or oy.min() < 0 or ox.min() < 0
              or oy.max() > H + 2 * pad - S or ox.max() > W + 2 * pad - T):
        raise ValueError("assemble_batch: an index or crop offset is out of range")
    if images.dtype.kind == "u":
        if lut is None or lut.shape != (C, 256) or lut.dtype != out.dtype:
            raise ValueError(f"assemble_batch: uint8 images need a (C, 256) lut of dtype {out.dtype}")
        _gather_uint8(images, index, lut, oy, ox, flip, pad, out)
    else:
        _gather_float(images, index, mean, std, oy, ox, flip, pad, out)
    return out
