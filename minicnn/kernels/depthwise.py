"""Depthwise convolution: ``groups == in_channels``, ``out_channels = k * in_channels`` (multiplier k).

Output channel ``o = c*k + m`` correlates input channel ``c`` with ``weight[o, 0]`` (kh, kw) (PyTorch's
layout (C*k, 1, kh, kw)). A pixel costs only kh*kw multiply-adds, too little for a GEMM to pay for its
im2col copy, so these are direct loops over one (sample, channel) plane at a time.

Strided convolution is run as stride 1 on PHASE PLANES: the zero-padded plane (Hp, Wp) is split into
its sh*sw phases, phase (a, b) holding the pixels (hq*sh + a, wq*sw + b) as a plane (Hq, Wq) =
(ceil(Hp/sh), ceil(Wp/sw)) (for stride 1, the padded plane itself). Tap (i, j) reads, for output
(oh, ow), pixel (oh*sh + i*dh, ow*sw + j*dw), which is phase ((i*dh) % sh, (j*dw) % sw) at
(oh + (i*dh)//sh, ow + (j*dw)//sw). Laid on the phase width Wq, an output plane is one flat run
``q = oh*Wq + ow`` (columns ow >= OW are junk: computed, never copied out) and tap t reads the flat
phase planes at ``q + off[t]``, so every inner loop is one contiguous run of ``L = (OH-1)*Wq + OW``
values, as in the direct stride-1 kernels of ``minicnn.kernels.conv_direct`` (whose tap loops
``_accumulate_taps`` and ``_add_tap_dots`` run them here too). Valid positions never wrap into the
next row (``ow + (j*dw)//sw < Wq``), so the flat shifts are exact 2-D shifts.

Gradients use the same layout: ``dy`` planes are spread onto the phase width with zero junk
columns. The input gradient gathers (for each phase position, the taps of that phase times the
shifted ``dy`` run), so each accumulator is written once per group of taps; the weight gradient is
one dot product per tap, in per-block partial sums reduced afterwards (no race).
"""
import numpy as np
from numba import prange

from .._config import jit, jit_parallel, jit_reassoc
from .common import _block, _u
from .conv_direct import _accumulate_taps, _add_tap_dots


def phase_shape(input_shape, g):
    """``(N, C, sh*sw, Hq, Wq)``: the phase planes of an input of ``input_shape`` (N, C, H, W) for
    geometry ``g``, Hq = ceil((H + 2*ph) / sh), Wq alike."""
    N, C, H, W = input_shape
    kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = g
    return N, C, sh * sw, -(-(H + 2 * ph) // sh), -(-(W + 2 * pw) // sw)


@jit
def _tap_offsets(kh, kw, sh, sw, dh, dw, Hq, Wq):
    """``off[i*kw + j]``: where tap (i, j) starts reading in the flat phase planes (sh*sw*Hq*Wq,)."""
    off = np.empty(kh * kw, np.int64)
    for i in range(kh):
        a, h0 = (i * dh) % sh, (i * dh) // sh
        for j in range(kw):
            b, w0 = (j * dw) % sw, (j * dw) // sw
            off[i * kw + j] = ((a * sw + b) * Hq + h0) * Wq + w0
    return off


@jit
def _phase_rows(a, b, sh, sw, ph, pw, Hq, Wq, W):
    """Where phase (a, b) meets the input: its first input row h0 and column w0 (then every sh-th row
    and sw-th column), the flat index in the phase planes of (h0, w0), and the count of its columns."""
    h0, w0 = (a - ph) % sh, (b - pw) % sw
    start = ((a * sw + b) * Hq + (h0 + ph) // sh) * Wq + (w0 + pw) // sw
    return h0, w0, start, (W - w0 + sw - 1) // sw


@jit
def _split_phases(xs, H, W, sh, sw, ph, pw, Hq, Wq, dst):
    """``dst`` (sh*sw*Hq*Wq,) = the phase planes of the plane ``xs`` (H*W,) zero-padded by (ph, pw).
    Phase by phase, row bases counted up: a division per row cost more than its copy (measured: the
    split of (64, 32, 32, 32) 0.46-0.60 -> 0.19-0.27 ms)."""
    dst[:] = 0
    for a in range(sh):
        for b in range(sw):
            h0, w0, row, count = _phase_rows(a, b, sh, sw, ph, pw, Hq, Wq, W)
            for h in range(h0, H, sh):
                first = h * W + w0
                if sw == 1:  # contiguous: 0.42 -> 0.31 ms on (64, 32, 32, 32), measured
                    for k in range(count):
                        dst[_u(row + k)] = xs[_u(first + k)]
                else:
                    for k in range(count):
                        dst[_u(row + k)] = xs[_u(first + k * sw)]
                row += Wq


@jit
def _merge_phases(src, H, W, sh, sw, ph, pw, Hq, Wq, dxs):
    """``dxs`` (H*W,) = the unpadded part of the phase planes ``src`` (the adjoint of the split)."""
    for a in range(sh):
        for b in range(sw):
            h0, w0, row, count = _phase_rows(a, b, sh, sw, ph, pw, Hq, Wq, W)
            for h in range(h0, H, sh):
                first = h * W + w0
                if sw == 1:
                    for k in range(count):
                        dxs[_u(first + k)] = src[_u(row + k)]
                else:
                    for k in range(count):
                        dxs[_u(first + k * sw)] = src[_u(row + k)]
                row += Wq


@jit
def _spread_plane(dy, n, o, Wq, margin, dst):
    """``dst[margin + oh*Wq + ow] = dy[n, o, oh, ow]``; the other entries of ``dst`` are left alone
    (callers zero them once)."""
    OH, OW = dy.shape[2], dy.shape[3]
    for oh in range(OH):
        src = dy[n, o, oh]
        base = margin + oh * Wq
        for ow in range(OW):
            dst[_u(base + ow)] = src[_u(ow)]


@jit_parallel
def depthwise_forward(x, weight, bias, g, n_blocks, xph, y):
    """``y`` (N, C*k, OH, OW) = the depthwise convolution of ``x`` (N, C, H, W) by ``weight``
    (C*k, 1, kh, kw), plus ``bias`` (C*k,) unless it is empty; fills ``xph`` (N, C, sh*sw, Hq, Wq) with
    the phase planes of the zero-padded input (what the weight gradient reads)."""
    kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = g
    N, C = x.shape[0], x.shape[1]
    Hq, Wq = xph.shape[3], xph.shape[4]
    O = weight.shape[0]
    k = O // C
    L = (OH - 1) * Wq + OW
    off = _tap_offsets(kh, kw, sh, sw, dh, dw, Hq, Wq)
    w2 = weight.reshape(O, kh * kw)
    has_bias = bias.shape[0] > 0
    NC = N * C
    H, W = x.shape[2], x.shape[3]
    planes = x.reshape(NC, H * W)
    for blk in prange(n_blocks):
        acc = np.empty(L, y.dtype)
        lo, hi = _block(blk, n_blocks, NC)
        for t in range(lo, hi):
            n = t // C
            c = t - n * C
            src = xph[n, c].reshape(sh * sw * Hq * Wq)
            _split_phases(planes[t], H, W, sh, sw, ph, pw, Hq, Wq, src)
            for m in range(k):
                o = c * k + m
                acc[:] = bias[o] if has_bias else 0
                _accumulate_taps(src, off, w2[o], acc)
                for oh in range(OH):
                    dst = y[n, o, oh]
                    for ow in range(OW):
                        dst[_u(ow)] = acc[_u(oh * Wq + ow)]


@jit
def _taps_by_phase(off, S, margin, n_phases):
    """The taps grouped by the phase plane they read (``off`` // S): ``taps`` (the tap indices, phase
    after phase), ``loc`` (where each reads the margin-padded ``dy`` run: ``margin - (off - phase*S)``)
    and ``count`` (n_phases,) of each phase's taps. Once per call: per plane it cost 36 divisions."""
    T = off.shape[0]
    taps, loc, count = np.empty(T, np.int64), np.empty(T, np.int64), np.zeros(n_phases, np.int64)
    nt = 0
    for phase in range(n_phases):
        for tap in range(T):
            if off[tap] // S == phase:
                taps[nt], loc[nt] = tap, margin - (off[tap] - phase * S)
                count[phase] += 1
                nt += 1
    return taps, loc, count


@jit_reassoc(parallel=True)
def depthwise_backward(xph, dy, weight, g, n_blocks, parts, dx):
    """The depthwise convolution's gradients from ``dy`` (N, C*k, OH, OW), plane by plane, each ``dy``
    plane spread once for both:

    - ``parts[b, o, t]`` (t < kh*kw): the weight gradient of tap t of output channel o summed over block
      b's planes, ``parts[b, o, kh*kw]`` the bias gradient (the caller sums the blocks: no race); from
      ``xph`` (N, C, sh*sw, Hq, Wq), the forward's phase planes. Skipped if ``parts`` is empty.
    - ``dx`` (N, C, H, W) set to the input gradient for ``weight`` (C*k, 1, kh, kw). Skipped if empty.

    It replaced a kernel for each (each spreading every plane again): one compile less, and in the same
    run 1.08-1.12x as fast at stride 1, 0.97-1.05x at stride 2 (four MobileNet shapes).
    """
    kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = g
    N, C, Hq, Wq = xph.shape[0], xph.shape[1], xph.shape[3], xph.shape[4]
    H, W = dx.shape[2], dx.shape[3]  # (0, 0) when dx is not wanted
    O = dy.shape[1]
    k = O // C
    T = kh * kw
    S = Hq * Wq  # one phase plane
    L = (OH - 1) * Wq + OW  # the output run on the phase width
    off = _tap_offsets(kh, kw, sh, sw, dh, dw, Hq, Wq)
    # The input gradient in gather form: phase position p of phase plane (a, b) receives, from each tap
    # t of that phase, w[t] * dy_wide[p - (off[t] - phase start)]. dy_wide has `margin` zeros in front
    # (p - local offset >= -margin) and zeros past its last valid position, up to margin + S.
    margin = ((kh - 1) * dh // sh) * Wq + (kw - 1) * dw // sw
    taps, loc, count = _taps_by_phase(off, S, margin, sh * sw)
    w2 = weight.reshape(O, T)
    want_dx, want_params = dx.size > 0, parts.size > 0
    zero = np.zeros(1, dy.dtype)[0]  # each dot product sums in the input's precision
    NC = N * C
    dx_planes = dx.reshape(dx.shape[0] * dx.shape[1], H * W)
    for blk in prange(n_blocks):
        if want_params:
            parts[blk] = 0
        acc = np.empty(sh * sw * S, dy.dtype)
        wide = np.zeros(margin + S, dy.dtype)  # junk columns and borders stay 0: only valid entries are written
        run = wide[margin:margin + L]
        wv = np.empty(T, dy.dtype)
        lo, hi = _block(blk, n_blocks, NC)
        for t in range(lo, hi):
            n = t // C
            c = t - n * C
            src = xph[n, c].reshape(sh * sw * S)
            acc[:] = 0
            for m in range(k):
                o = c * k + m
                _spread_plane(dy, n, o, Wq, margin, wide)
                if want_params:
                    sb = zero
                    for q in range(L):
                        sb += run[_u(q)]
                    parts[blk, o, T] += sb
                    _add_tap_dots(run, src, off, zero, parts[blk, o])
                if want_dx:
                    first = 0
                    for phase in range(sh * sw):
                        nt = count[phase]
                        for j in range(nt):
                            wv[j] = w2[o, taps[first + j]]
                        if nt > 0:
                            _accumulate_taps(wide, loc[first:first + nt], wv[:nt], acc[phase * S:(phase + 1) * S])
                        first += nt
            if want_dx:
                _merge_phases(acc, H, W, sh, sw, ph, pw, Hq, Wq, dx_planes[t])
