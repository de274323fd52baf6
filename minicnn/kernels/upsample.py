"""Upsampling (interpolation) kernels on NCHW arrays, forward and backward.

The source positions are per-axis tables built once per call by ``minicnn.functional.upsample``
(PyTorch's formulas): ``src_h[oh]`` / ``src_w[ow]`` for "nearest"; for "bilinear" the two source rows
``h0[oh] <= h1[oh]`` with weights ``lh0[oh] + lh1[oh] = 1`` (likewise columns). The kernels trust
them (every index inside the input) and run ``prange`` over the ``N * C`` planes; backward scatters
into one plane serially, so nothing races.
"""
from numba import prange

from .._config import jit_parallel
from .common import _u
from .pool import _plane


@jit_parallel
def nearest_forward(x, src_h, src_w, y):
    """``y[n, c, oh, ow] = x[n, c, src_h[oh], src_w[ow]]`` for ``x`` (N, C, H, W), ``y`` (N, C, OH, OW).
    An output row whose source row is the previous one's is a copy of it (contiguous); exact 2x
    widening writes each input element twice without the table."""
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    double_w = OW == 2 * W
    for p in prange(N * C):
        n, c = _plane(p, C)
        xp, yp = x[n, c], y[n, c]
        for oh in range(OH):
            yr = yp[oh]
            if oh > 0 and src_h[oh] == src_h[oh - 1]:
                yr[:] = yp[oh - 1]
                continue
            xr = xp[src_h[oh]]
            if double_w:
                for w in range(W):
                    v = xr[_u(w)]
                    yr[_u(2 * w)] = v
                    yr[_u(2 * w + 1)] = v
            else:
                for ow in range(OW):
                    yr[ow] = xr[src_w[ow]]


@jit_parallel
def nearest_backward(dy, src_h, src_w, dx):
    """Overwrite ``dx`` (N, C, H, W) with the gradient of :func:`nearest_forward` given ``dy``
    (N, C, OH, OW): each input element sums the outputs copied from it, in row-major output order."""
    N, C, H, W = dx.shape
    OH, OW = dy.shape[2], dy.shape[3]
    double_w = OW == 2 * W
    for p in prange(N * C):
        n, c = _plane(p, C)
        dyp, dxp = dy[n, c], dx[n, c]
        dxp[:, :] = 0
        for oh in range(OH):
            dyr, dxr = dyp[oh], dxp[src_h[oh]]
            if double_w:
                for w in range(W):
                    dxr[_u(w)] = (dxr[_u(w)] + dyr[_u(2 * w)]) + dyr[_u(2 * w + 1)]
            else:
                for ow in range(OW):
                    dxr[src_w[ow]] += dyr[ow]


@jit_parallel
def bilinear_forward(x, h0, h1, lh0, lh1, w0, w1, lw0, lw1, y):
    """``y[n, c, oh, ow]`` = the bilinear blend ``lh0 * (lw0 * x[h0, w0] + lw1 * x[h0, w1]) + lh1 * (...)``
    (PyTorch's order of operations) for ``x`` (N, C, H, W), ``y`` (N, C, OH, OW)."""
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    for p in prange(N * C):
        n, c = _plane(p, C)
        xp, yp = x[n, c], y[n, c]
        for oh in range(OH):
            r0, r1, a0, a1, yr = xp[h0[oh]], xp[h1[oh]], lh0[oh], lh1[oh], yp[oh]
            for ow in range(OW):
                i0, i1, b0, b1 = w0[ow], w1[ow], lw0[ow], lw1[ow]
                yr[ow] = (r0[i0] * b0 + r0[i1] * b1) * a0 + (r1[i0] * b0 + r1[i1] * b1) * a1


@jit_parallel
def bilinear_backward(dy, h0, h1, lh0, lh1, w0, w1, lw0, lw1, dx):
    """Overwrite ``dx`` (N, C, H, W) with the gradient of :func:`bilinear_forward` given ``dy``
    (N, C, OH, OW): each output adds its four weighted shares to its source elements."""
    N, C, H, W = dx.shape
    OH, OW = dy.shape[2], dy.shape[3]
    for p in prange(N * C):
        n, c = _plane(p, C)
        dyp, dxp = dy[n, c], dx[n, c]
        dxp[:, :] = 0
        for oh in range(OH):
            r0, r1, a0, a1, dyr = dxp[h0[oh]], dxp[h1[oh]], lh0[oh], lh1[oh], dyp[oh]
            for ow in range(OW):
                i0, i1, b0, b1, g = w0[ow], w1[ow], lw0[ow], lw1[ow], dyr[ow]
                r0[i0] += a0 * b0 * g
                r0[i1] += a0 * b1 * g
                r1[i0] += a1 * b0 * g
                r1[i1] += a1 * b1 * g

