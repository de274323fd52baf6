"""Pooling kernels on NCHW arrays: max, average, adaptive average / max, max unpooling; forward and backward.

Conventions (PyTorch's; ``minicnn.functional.pool`` validates and documents the arguments):
- Window ``(oh, ow)`` covers input rows ``oh * sh - ph + i * dh`` for ``i < kh`` (likewise columns);
  outside the input is padding, never read.
- Max pooling pads with -inf (padding never wins), takes the FIRST maximum in row-major window order
  on ties, and propagates NaN like PyTorch (a NaN in the window makes the output NaN and ``argmax``
  points at it; with several NaNs, at the last one). ``argmax[n, c, oh, ow]`` is the flat index
  ``h * W + w`` into the unpadded input plane (PyTorch's indices), int32 or int64.
- Average pooling divides by ``divisor_override`` when it is nonzero, else by the window's size
  clipped to the padded input (``count_include_pad``) or to the input, as PyTorch's CPU kernel.
- Adaptive pooling: window ``o`` of ``O`` over ``S`` covers ``[floor(o * S / O), ceil((o + 1) * S / O))``.

Entry points (plain names) are what ``minicnn.functional.pool`` calls; ``g`` is the geometry tuple
``(kh, kw, sh, sw, ph, pw, dh, dw, OH, OW)`` of ``minicnn.kernels``. Every kernel trusts its
arguments: each window holds at least one input element (the validation guarantees it), shapes agree,
indices lie in their plane. Each runs ``prange`` over the ``N * C`` planes, which are disjoint
(scatters into a plane are serial, so nothing races). LeNet's pooling (2x2 windows, stride 2, no
padding) is special-cased: max pooling has kernels of its own for it (``*_2x2``), average pooling a
branch.
"""
import numpy as np
from numba import prange

from .._config import jit, jit_parallel, jit_reassoc
from .common import _inside, _u


# -- shared helpers ---------------------------------------------------------------------------------
@jit
def _plane(p, C):
    """``(n, c)`` of the flat plane index ``p`` in ``range(N * C)``."""
    n = p // C
    return n, p - n * C


@jit
def _is_fast_2x2(g, H, W):
    """LeNet's pooling (2x2 windows, stride 2, no padding, no dilation) with every window whole (not
    a ceil_mode window hanging over the edge): the case every max / average kernel special-cases."""
    kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = g
    return (kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0 and dh == 1 and dw == 1
            and 2 * OH <= H and 2 * OW <= W)


# The same test from Python (the functional call chooses between the *_2x2 kernels and the general ones,
# which compiled in 2.5 s, on the critical path of a cold warm-up): the compiled function's own Python.
is_whole_2x2 = getattr(_is_fast_2x2, "py_func", _is_fast_2x2)


@jit
def _window_span(o, stride, pad, k, dilation, size):
    """``(lo, n)``: window ``o`` reads the ``n`` input rows (or columns) ``lo + i * dilation``
    (``i < n``), its taps ``o * stride - pad + j * dilation`` (``j < k``) that lie in ``[0, size)``;
    padding is never read. Divides only for windows clipped by an edge (a loop over
    ``range(lo, hi, dilation)`` would divide once per loop to count its trips)."""
    lo = o * stride - pad
    first = 0
    if lo < 0:
        first = (-lo + dilation - 1) // dilation  # taps before it lie in the left padding
    last = k
    if lo + (k - 1) * dilation >= size:
        last = (size - lo + dilation - 1) // dilation  # taps from it on lie beyond the input
    return lo + first * dilation, last - first


@jit
def _adaptive_span(o, out, size):
    """``(start, end)``: adaptive window ``o`` of ``out`` over ``size`` (PyTorch's rule)."""
    return (o * size) // out, ((o + 1) * size + out - 1) // out


# -- max pooling --------------------------------------------------------------------------------------
@jit
def _max_2x2(xp, h, w, W):
    """``(max, flat index)`` of the 2x2 window at ``(h, w)`` of the plane ``xp``."""
    v0, v1 = xp[h, w], xp[h, w + 1]
    v2, v3 = xp[h + 1, w], xp[h + 1, w + 1]
    # Branch-free (random data makes branches unpredictable): max(a, b) keeps a unless b > a, so this
    # is the first maximum's value; the index is the first element equal to it, chosen by integer
    # selects in reverse order.
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
    return best, where


@jit
def _max_window(xp, h0, h1, w0, w1, W):
    """``(max, flat index)`` over rows ``[h0, h1)`` x columns ``[w0, w1)`` of the plane ``xp`` (a
    non-empty window), PyTorch's update ``v > best or isnan(v)``: first maximum, last NaN."""
    best = xp.dtype.type(-np.inf)
    where = h0 * W + w0
    for h in range(h0, h1):
        xr = xp[h]
        for w in range(w0, w1):
            v = xr[w]
            take = (v > best) | (v != v)
            best = v if take else best
            where = h * W + w if take else where
    return best, where


# The general max kernels sweep one output row at a time: for each tap (i, j) of the window, in
# row-major order, one pass over the outputs whose tap lies inside the input, updating the row's
# running maxima (the output row itself) and their positions (if wanted). Each pass is a short loop
# over contiguous outputs with selects and no branches, instead of a window-by-window loop that
# recomputes the window's bounds. The update is PyTorch's: ``v > best or isnan(v)``, so the first
# maximum wins and the last NaN.
@jit
def _tap_spans(kw, sw, pw, dw, W, OW):
    """``spans[j] = (lo, hi)``: the outputs ``ow`` whose column tap ``j`` (input column ``ow * sw - pw
    + j * dw``) lies inside the input; the same for every row and plane, so computed once per call."""
    spans = np.empty((kw, 2), dtype=np.int64)
    for j in range(kw):
        spans[j, 0], spans[j, 1] = _inside(j * dw - pw, sw, OW, W)
    return spans


@jit
def _sweep_start(yr, ar, row_base, sw, pw, kw, dw, W):
    """Reset a row of running maxima ``yr`` to -inf and their positions ``ar`` to each window's first
    input element (in row ``row_base // W``): what an all -inf window reports, as PyTorch."""
    for ow in range(yr.shape[0]):
        w_lo, _ = _window_span(ow, sw, pw, kw, dw, W)
        yr[_u(ow)] = -np.inf
        ar[_u(ow)] = row_base + w_lo


@jit
def _sweep_tap(xr, yr, ar, row_base, off, sw, lo, hi):
    """Outputs ``ow`` in ``[lo, hi)`` compare their tap ``xr[ow * sw + off]`` (inside the row ``xr``)
    with their running maximum ``yr[ow]``; ``ar[ow]`` follows with the tap's flat plane index
    ``row_base + ow * sw + off``, unless ``ar`` is empty (positions not wanted)."""
    positions = ar.shape[0] != 0  # loop-invariant: LLVM unswitches the loop on it
    for ow in range(lo, hi):
        w = ow * sw + off  # signed, for the index value (int64 + uint64 would be float64 in Numba)
        v, best = xr[_u(w)], yr[_u(ow)]
        take = (v > best) | (v != v)
        yr[_u(ow)] = v if take else best
        if positions:
            ar[_u(ow)] = row_base + w if take else ar[_u(ow)]


@jit
def _sweep_row(xr, yr, ar, row_base, off, sw, lo, hi):
    """:func:`_sweep_tap`, with strides 1 and 2 (the common ones) passed as constants: once inlined,
    the loop's stride is known at compile time, which lets LLVM vectorise its loads."""
    if sw == 1:
        _sweep_tap(xr, yr, ar, row_base, off, 1, lo, hi)
    elif sw == 2:
        _sweep_tap(xr, yr, ar, row_base, off, 2, lo, hi)
    else:
        _sweep_tap(xr, yr, ar, row_base, off, sw, lo, hi)


@jit_parallel
def max_pool2d_forward_2x2(x, g, y, argmax):
    """:func:`max_pool2d_forward` for geometries that pass ``is_whole_2x2``."""
    C, W = x.shape[1], x.shape[3]
    OH, OW = y.shape[2], y.shape[3]
    for p in prange(x.shape[0] * C):
        n, c = _plane(p, C)
        xp, yp, ap = x[n, c], y[n, c], argmax[n, c]
        for oh in range(OH):
            for ow in range(OW):
                yp[oh, ow], ap[oh, ow] = _max_2x2(xp, 2 * oh, 2 * ow, W)


@jit_parallel
def max_pool2d_forward(x, g, y, argmax):
    """Write the window maxima of ``x`` (N, C, H, W) into ``y`` and their flat plane indices into
    ``argmax``, both (N, C, OH, OW); ``g`` the geometry tuple."""
    N, C, H, W = x.shape
    kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = g
    spans = _tap_spans(kw, sw, pw, dw, W, OW)
    for p in prange(N * C):
        n, c = _plane(p, C)
        xp, yp, ap = x[n, c], y[n, c], argmax[n, c]
        for oh in range(OH):
            h_lo, nh = _window_span(oh, sh, ph, kh, dh, H)
            yr, ar = yp[oh], ap[oh]
            _sweep_start(yr, ar, h_lo * W, sw, pw, kw, dw, W)
            for i in range(nh):  # taps in row-major order: ties keep the first
                h = h_lo + i * dh
                for j in range(kw):
                    _sweep_row(xp[h], yr, ar, h * W, j * dw - pw, sw, spans[j, 0], spans[j, 1])


@jit_parallel
def max_pool2d_values_2x2(x, g, y):
    """:func:`max_pool2d_values` for geometries that pass ``is_whole_2x2``."""
    C = x.shape[1]
    OH, OW = y.shape[2], y.shape[3]
    for p in prange(x.shape[0] * C):
        n, c = _plane(p, C)
        xp, yp = x[n, c], y[n, c]
        for oh in range(OH):
            r0, r1, yr = xp[2 * oh], xp[2 * oh + 1], yp[oh]
            for ow in range(OW):
                v0, v1, v2, v3 = r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]
                yr[ow] = max(max(v0, v1), max(v2, v3))
                if (v0 != v0) | (v1 != v1) | (v2 != v2) | (v3 != v3):  # rare
                    yr[ow] = np.nan


@jit_parallel
def max_pool2d_values(x, g, y):
    """Write the window maxima of ``x`` (N, C, H, W) into ``y`` (N, C, OH, OW), NaN propagating, without
    their positions (no gradient wanted); the 2x2 case ran 1.8-2.4x faster than
    :func:`max_pool2d_forward` (measured through MaxPool2d on LeNet's shapes and 64x32x32)."""
    N, C, H, W = x.shape
    kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = g
    spans = _tap_spans(kw, sw, pw, dw, W, OW)
    no_positions = np.empty(0, dtype=np.int32)
    for p in prange(N * C):
        n, c = _plane(p, C)
        xp, yp = x[n, c], y[n, c]
        for oh in range(OH):
            h_lo, nh = _window_span(oh, sh, ph, kh, dh, H)
            yr = yp[oh]
            yr[:] = -np.inf
            for i in range(nh):
                for j in range(kw):
                    _sweep_row(xp[h_lo + i * dh], yr, no_positions, 0, j * dw - pw, sw, spans[j, 0], spans[j, 1])


@jit_parallel
def max_pool2d_backward(dy, index, dx):
    """Overwrite ``dx`` (N, C, H, W) with zeros plus, for every ``q``, ``dy[n, c].flat[q]`` added at
    ``dx[n, c].flat[index[n, c].flat[q]]`` (``dy`` and ``index`` (N, C, OH, OW)): the backward of max
    pooling and adaptive max pooling (overlapping windows add up)."""
    N, C, H, W = dx.shape
    OH, OW = dy.shape[2], dy.shape[3]
    for p in prange(N * C):
        n, c = _plane(p, C)
        dxp = dx[n, c].reshape(H * W)
        dyp = dy[n, c].reshape(OH * OW)
        ip = index[n, c].reshape(OH * OW)
        dxp[:] = 0
        for q in range(OH * OW):
            dxp[ip[q]] += dyp[q]


@jit_parallel
def max_unpool2d_forward(x, index, y):
    """Overwrite ``y`` (N, C, OH, OW) with zeros and ``x[n, c].flat[q]`` written at
    ``y[n, c].flat[index[n, c].flat[q]]`` (``x`` and ``index`` (N, C, H, W)); when an index repeats,
    the last write wins, as PyTorch's CPU kernel."""
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    for p in prange(N * C):
        n, c = _plane(p, C)
        yp = y[n, c].reshape(OH * OW)
        xp = x[n, c].reshape(H * W)
        ip = index[n, c].reshape(H * W)
        yp[:] = 0
        for q in range(H * W):
            yp[ip[q]] = xp[q]


@jit_parallel
def max_unpool2d_backward(dy, index, dx):
    """``dx[n, c].flat[q] = dy[n, c].flat[index[n, c].flat[q]]`` for ``dx`` and ``index`` (N, C, H, W),
    ``dy`` (N, C, OH, OW): the backward of max unpooling."""
    N, C, H, W = dx.shape
    OH, OW = dy.shape[2], dy.shape[3]
    for p in prange(N * C):
        n, c = _plane(p, C)
        dyp = dy[n, c].reshape(OH * OW)
        dxp = dx[n, c].reshape(H * W)
        ip = index[n, c].reshape(H * W)
        for q in range(H * W):
            dxp[q] = dyp[ip[q]]


# -- average pooling --------------------------------------------------------------------------------
@jit
def _avg_divisor(oh, ow, g, H, W, count_include_pad, divisor_override):
    """What window ``(oh, ow)``'s sum is divided by (PyTorch's CPU rule): ``divisor_override`` if
    nonzero, else the window clipped to the padded input (count_include_pad) or to the input."""
    if divisor_override != 0:
        return divisor_override
    kh, kw, sh, sw, ph, pw = g[0], g[1], g[2], g[3], g[4], g[5]
    h0, w0 = oh * sh - ph, ow * sw - pw
    h1, w1 = min(h0 + kh, H + ph), min(w0 + kw, W + pw)
    if count_include_pad:
        return (h1 - h0) * (w1 - w0)
    return (min(h1, H) - max(h0, 0)) * (min(w1, W) - max(w0, 0))


@jit_parallel
def avg_pool2d_forward(x, g, count_include_pad, divisor_override, y):
    """Write the window means of ``x`` (N, C, H, W) into ``y`` (N, C, OH, OW), each window's sum divided
    by :func:`_avg_divisor` (``divisor_override`` 0: none)."""
    N, C, H, W = x.shape
    kh, kw, sh, sw, ph, pw, _, _, OH, OW = g
    fast = divisor_override == 0 and _is_fast_2x2(g, H, W)
    zero = x.dtype.type(0)
    quarter = x.dtype.type(0.25)  # in x's dtype, so float32 stays float32; 2x2 multiplies by the exact 0.25
    for p in prange(N * C):
        n, c = _plane(p, C)
        xp, yp = x[n, c], y[n, c]
        for oh in range(OH):
            if fast:
                h = 2 * oh
                for ow in range(OW):
                    w = 2 * ow
                    yp[oh, ow] = ((xp[h, w] + xp[h, w + 1]) + (xp[h + 1, w] + xp[h + 1, w + 1])) * quarter
                continue
            h_lo, nh = _window_span(oh, sh, ph, kh, 1, H)
            for ow in range(OW):
                w_lo, nw = _window_span(ow, sw, pw, kw, 1, W)
                s = zero
                for h in range(h_lo, h_lo + nh):
                    for w in range(w_lo, w_lo + nw):
                        s += xp[h, w]
                yp[oh, ow] = s / x.dtype.type(
                    _avg_divisor(oh, ow, g, H, W, count_include_pad, divisor_override))


@jit_parallel
def avg_pool2d_backward(dy, g, count_include_pad, divisor_override, dx):
    """Overwrite ``dx`` (N, C, H, W) with the gradient of average pooling given ``dy`` (N, C, OH, OW):
    each input element gathers ``dy / divisor`` from every window that covers it."""
    N, C, H, W = dx.shape
    kh, kw, sh, sw, ph, pw, _, _, OH, OW = g
    fast = divisor_override == 0 and _is_fast_2x2(g, H, W)
    zero = dx.dtype.type(0)
    quarter = dx.dtype.type(0.25)
    for p in prange(N * C):
        n, c = _plane(p, C)
        dyp, dxp = dy[n, c], dx[n, c]
        if fast:
            for oh in range(OH):
                h = 2 * oh
                for ow in range(OW):
                    w = 2 * ow
                    share = dyp[oh, ow] * quarter
                    dxp[h, w] = share
                    dxp[h, w + 1] = share
                    dxp[h + 1, w] = share
                    dxp[h + 1, w + 1] = share
            # An odd last row / column lies in no window.
            for h in range(2 * OH, H):
                dxp[h, :] = 0
            for h in range(2 * OH):
                for w in range(2 * OW, W):
                    dxp[h, w] = 0
            continue
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
                        s += dyp[oh, ow] / dx.dtype.type(
                            _avg_divisor(oh, ow, g, H, W, count_include_pad, divisor_override))
                dxp[h, w] = s


# -- adaptive pooling -------------------------------------------------------------------------------
@jit_reassoc(parallel=True)
def global_avg_pool2d_forward(xf, K, yf):
    """``yf[p]`` = the mean of the ``K`` values ``xf[p*K : (p+1)*K]`` (x (N, C, H, W) flat, K = H*W, yf
    (N*C,)): global average pooling, summed in any order on flat indices, no per-plane array views.
    Unsigned indices (``_u``) let the sum vectorise: with signed ones Numba's negative-index check kept
    it scalar (on (128, 256, 8, 8), 2 threads: 55 us against 606-653 us, measured)."""
    dt = xf.dtype.type
    for p in prange(yf.shape[0]):
        s = dt(0)
        base = p * K
        for i in range(K):
            s += xf[_u(base + i)]
        yf[p] = s / dt(K)


@jit_parallel
def global_avg_pool2d_backward(dyf, K, dxf):
    """``dxf[p*K : (p+1)*K] = dyf[p] / K``: the backward of :func:`global_avg_pool2d_forward` (unsigned
    indices as there: 63 us against 476-482 us, measured alike)."""
    dt = dxf.dtype.type
    for p in prange(dyf.shape[0]):
        g = dyf[p] / dt(K)
        base = p * K
        for i in range(K):
            dxf[_u(base + i)] = g


@jit_parallel
def adaptive_avg_pool2d_forward(x, y):
    """Write the adaptive window means of ``x`` (N, C, H, W) into ``y`` (N, C, OH, OW) (output 1x1:
    :func:`global_avg_pool2d_forward`)."""
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    dt = x.dtype.type
    for p in prange(N * C):
        n, c = _plane(p, C)
        xp, yp = x[n, c], y[n, c]
        for oh in range(OH):
            h0, h1 = _adaptive_span(oh, OH, H)
            for ow in range(OW):
                w0, w1 = _adaptive_span(ow, OW, W)
                s = dt(0)
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        s += xp[h, w]
                yp[oh, ow] = s / dt((h1 - h0) * (w1 - w0))


@jit_parallel
def adaptive_avg_pool2d_backward(dy, dx):
    """Overwrite ``dx`` (N, C, H, W) with the gradient of adaptive average pooling given ``dy``
    (N, C, OH, OW): each window spreads ``dy / its size`` over its elements (windows may overlap)."""
    N, C, H, W = dx.shape
    OH, OW = dy.shape[2], dy.shape[3]
    dt = dx.dtype.type
    for p in prange(N * C):
        n, c = _plane(p, C)
        dyp, dxp = dy[n, c], dx[n, c]
        dxp[:, :] = 0
        for oh in range(OH):
            h0, h1 = _adaptive_span(oh, OH, H)
            for ow in range(OW):
                w0, w1 = _adaptive_span(ow, OW, W)
                g = dyp[oh, ow] / dt((h1 - h0) * (w1 - w0))
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        dxp[h, w] += g


@jit_parallel
def adaptive_max_pool2d_forward(x, y, argmax):
    """Write the adaptive window maxima of ``x`` (N, C, H, W) into ``y`` and their flat plane indices
    into ``argmax``, both (N, C, OH, OW); first maximum, last NaN, as max pooling."""
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    for p in prange(N * C):
        n, c = _plane(p, C)
        xp, yp, ap = x[n, c], y[n, c], argmax[n, c]
        for oh in range(OH):
            h0, h1 = _adaptive_span(oh, OH, H)
            for ow in range(OW):
                w0, w1 = _adaptive_span(ow, OW, W)
                yp[oh, ow], ap[oh, ow] = _max_window(xp, h0, h1, w0, w1, W)
