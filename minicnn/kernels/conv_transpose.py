"""Transposed 2-D convolution (PyTorch's conv_transpose2d): the adjoint of a convolution, as a forward pass.

``x`` (N, Cin, H, W) and ``weight`` (Cin, Cout/G, kh, kw) in G groups. Seen from its output ``y``
(N, Cout, OH, OW), the operation is the INPUT GRADIENT of the convolution ``y -> x`` with the same
weight read as (F = Cin, C/G = Cout/G, kh, kw), stride, padding and dilation: per sample and group,

    forward          cols (K, P)          = W_g.T (K, Cin_g) @ x[n, g] (Cin_g, P)   then y[n, g] = col2im(cols) + b
    input gradient   dx[n, g] (Cin_g, P)  = W_g (Cin_g, K) @ im2col(dy[n, g]) (K, P)
    weight gradient  dW_g (Cin_g, K)     += x[n, g] (Cin_g, P) @ im2col(dy[n, g]).T

with ``K = (Cout/G)*kh*kw``, ``P = H*W`` and the transposed-cols layout of ``minicnn.kernels.conv``
(row (c, i, j), column (h, w)), built and scattered by its ``_im2col_sample`` / ``_col2im_sample``.
Groups are samples here: ``x``, ``y`` and their gradients are passed as (N*G, channels per group, ...)
views (free reshapes of NCHW arrays), so sample ``s`` is group ``s % G`` of sample ``s // G``.

``output_padding`` (op) adds op rows/columns at the bottom/right that no window of the convolution
reads unless the padding reaches them. When the convolution of ``y``'s size gives back exactly
(H, W) (always when op < stride), the kernels work on ``y`` directly ("direct" geometry). Otherwise
(op >= stride, possible with dilation > stride) they work on an unpadded buffer plane of size
``((H-1)*sh + dh*(kh-1) + 1, ...)``, whose convolution always gives (H, W), shifted by the padding:
``y[r, w] = buf[r + ph, w + pw]`` (0 past the buffer's end).
"""
import numpy as np
from numba import prange

from .._config import jit, jit_parallel, kernel_blas_single_threaded, thread_blocks
from .conv import _col2im_sample, _im2col_sample
from .im2col import _u


@jit
def _crop_bias(buf, top, left, bias, o0, dst):
    """``dst[c, r, w]`` = ``buf[0, c, r + top, w + left]`` (0 past buf's end) + ``bias[o0 + c]`` (if any)."""
    Cg, OH, OW = dst.shape
    Hb, Wb = buf.shape[2], buf.shape[3]
    has_bias = bias.shape[0] > 0
    for c in range(Cg):
        b = bias[o0 + c] if has_bias else 0.0
        for r in range(OH):
            row = dst[c, r]
            if r + top >= Hb:
                row[:] = b
                continue
            src = buf[0, c, r + top]
            n_in = min(OW, Wb - left)
            for w in range(n_in):
                row[_u(w)] = src[_u(w + left)] + b
            for w in range(n_in, OW):
                row[_u(w)] = b


@jit
def _uncrop(src, top, left, buf):
    """``buf[0]`` (Cg, Hb, Wb) = ``src`` (Cg, OH, OW) placed at (top, left), zeros elsewhere: the
    adjoint of the crop in :func:`_crop_bias`."""
    Cg, OH, OW = src.shape
    Hb, Wb = buf.shape[2], buf.shape[3]
    buf[0] = 0
    for c in range(Cg):
        for r in range(min(OH, Hb - top)):
            row = buf[0, c, r + top]
            s = src[c, r]
            for w in range(min(OW, Wb - left)):
                row[_u(w + left)] = s[_u(w)]


@jit_parallel
def _ct_forward(x3, w3, bias, kh, kw, sh, sw, ph, pw, dh, dw, top, left, Hb, Wb, direct, n_blocks, y4):
    """``y4`` (N*G, Cout_g, OH, OW) = the transposed convolution of ``x3`` (N*G, Cin_g, H*W) by ``w3``
    (G, Cin_g, Cout_g*kh*kw), plus ``bias`` (Cout,) unless empty. (ph, pw) is the padding of the
    geometry used: the layer's if ``direct``, else 0 on a (Hb, Wb) buffer cropped at (top, left)."""
    S, P = x3.shape[0], x3.shape[2]
    G, K = w3.shape[0], w3.shape[2]
    Cg = y4.shape[1]
    has_bias = bias.shape[0] > 0
    for blk in prange(n_blocks):
        cols = np.empty((K, P), y4.dtype)
        buf = np.empty((1, Cg, Hb, Wb) if not direct else (1, 1, 1, 1), y4.dtype)
        for s in range(blk * S // n_blocks, (blk + 1) * S // n_blocks):
            g = s % G
            np.dot(w3[g].T, x3[s], cols)
            if direct:
                _col2im_sample(cols, s, kh, kw, sh, sw, ph, pw, dh, dw, y4)
                if has_bias:
                    for c in range(Cg):
                        y4[s, c] += bias[g * Cg + c]
            else:
                _col2im_sample(cols, 0, kh, kw, sh, sw, ph, pw, dh, dw, buf)
                _crop_bias(buf, top, left, bias, g * Cg, y4[s])


@jit_parallel
def _ct_backward(x3, dy4, w3, kh, kw, sh, sw, ph, pw, dh, dw, top, left, Hb, Wb, direct, n_blocks,
                 weight_parts, bias_parts, dx3):
    """Gradients of :func:`_ct_forward` for the output gradient ``dy4`` (N*G, Cout_g, OH, OW):
    ``weight_parts[b]`` (G, Cin_g, K) and ``bias_parts[b]`` (G, Cout_g) = the weight and bias gradients
    summed over block b's samples, and ``dx3`` (N*G, Cin_g, H*W) the input gradient; each output
    is skipped when its array is empty."""
    S, P = x3.shape[0], x3.shape[2]
    G, Cin_g, K = w3.shape
    Cg = dy4.shape[1]
    want_weight, want_bias, want_input = weight_parts.size > 0, bias_parts.size > 0, dx3.size > 0
    for blk in prange(n_blocks):
        cols = np.empty((K, P), dy4.dtype)
        buf = np.empty((1, Cg, Hb, Wb) if not direct else (1, 1, 1, 1), dy4.dtype)
        tmp = np.empty((Cin_g, K) if want_weight else (0, 0), dy4.dtype)
        if want_weight:
            weight_parts[blk] = 0
        if want_bias:
            bias_parts[blk] = 0
        for s in range(blk * S // n_blocks, (blk + 1) * S // n_blocks):
            g = s % G
            if want_bias:
                for c in range(Cg):
                    plane = dy4[s, c]
                    acc = 0.0
                    for r in range(plane.shape[0]):
                        for w in range(plane.shape[1]):
                            acc += plane[r, w]
                    bias_parts[blk, g, c] += acc
            if not (want_weight or want_input):
                continue
            if direct:
                _im2col_sample(dy4, s, kh, kw, sh, sw, ph, pw, dh, dw, cols)
            else:
                _uncrop(dy4[s], top, left, buf)
                _im2col_sample(buf, 0, kh, kw, sh, sw, ph, pw, dh, dw, cols)
            if want_weight:
                np.dot(x3[s], cols.T, tmp)
                part = weight_parts[blk, g]
                for i in range(Cin_g):
                    prow = part[i]
                    trow = tmp[i]
                    for k in range(K):
                        prow[_u(k)] += trow[_u(k)]
            if want_input:
                np.dot(w3[g], cols, dx3[s])


# ------------------------------------------------------------------------------ entry points (trusting)
def conv_transpose2d_plan(input_hw, output_hw, geometry):
    """How the kernels run a transposed convolution of (H, W) = ``input_hw`` to ``output_hw`` with
    ``geometry`` (kh, kw, sh, sw, ph, pw, dh, dw): ``(ph, pw, top, left, Hb, Wb, direct)``, the padding
    the kernels' geometry uses and the buffer plane and crop of the module docstring."""
    (H, W), (OH, OW) = input_hw, output_hw
    kh, kw, sh, sw, ph, pw, dh, dw = geometry
    if ((OH + 2 * ph - dh * (kh - 1) - 1) // sh + 1 == H
            and (OW + 2 * pw - dw * (kw - 1) - 1) // sw + 1 == W):
        return ph, pw, 0, 0, OH, OW, True
    return 0, 0, ph, pw, (H - 1) * sh + dh * (kh - 1) + 1, (W - 1) * sw + dw * (kw - 1) + 1, False


def conv_transpose2d_apply(x, weight, bias, groups, geometry, plan, output_hw):
    """``y`` (N, Cout, OH, OW) for ``x`` (N, Cin, H, W), ``weight`` (Cin, Cout/groups, kh, kw) and
    ``bias`` (Cout,) or None, all of one dtype (validated by the caller); ``plan`` from
    :func:`conv_transpose2d_plan`."""
    N, Cin, H, W = x.shape
    G = groups
    Cg = weight.shape[1]
    kh, kw, sh, sw, _, _, dh, dw = geometry
    ph, pw, top, left, Hb, Wb, direct = plan
    y = np.empty((N, Cg * G) + tuple(output_hw), x.dtype)
    bias = np.empty(0, x.dtype) if bias is None else bias
    kernel_blas_single_threaded()
    _ct_forward(x.reshape(N * G, Cin // G, H * W), weight.reshape(G, Cin // G, Cg * kh * kw), bias,
                kh, kw, sh, sw, ph, pw, dh, dw, top, left, Hb, Wb, direct, thread_blocks(N * G),
                y.reshape(N * G, Cg, output_hw[0], output_hw[1]))
    return y


def conv_transpose2d_grads(dy, x, weight, groups, geometry, plan, want_input, dweight, dbias):
    """The gradients of :func:`conv_transpose2d_apply` for its output gradient ``dy`` (N, Cout, OH, OW):
    the weight gradient is ADDED into ``dweight`` (Cin, Cout/groups, kh, kw) and the bias gradient
    into ``dbias`` (Cout,) unless they are None; returns the input gradient (N, Cin, H, W) if
    ``want_input``, else None."""
    N, Cin, H, W = x.shape
    G = groups
    Cg, OH, OW = weight.shape[1], dy.shape[2], dy.shape[3]
    kh, kw, sh, sw, _, _, dh, dw = geometry
    ph, pw, top, left, Hb, Wb, direct = plan
    K = Cg * kh * kw
    nb = thread_blocks(N * G)
    dt = x.dtype
    weight_parts = np.empty((nb, G, Cin // G, K) if dweight is not None else (0, 1, 1, 1), dt)
    bias_parts = np.empty((nb, G, Cg) if dbias is not None else (0, 1, 1), dt)
    dx = np.empty(x.shape if want_input else (0, 1, 1, 1), dt)
    kernel_blas_single_threaded()
    _ct_backward(x.reshape(N * G, Cin // G, H * W), dy.reshape(N * G, Cg, OH, OW),
                 weight.reshape(G, Cin // G, K), kh, kw, sh, sw, ph, pw, dh, dw, top, left, Hb, Wb, direct, nb,
                 weight_parts, bias_parts, dx.reshape(dx.shape[0] * G if want_input else 0, Cin // G, H * W))
    if dweight is not None:
        dweight += weight_parts.sum(axis=0).reshape(dweight.shape)
    if dbias is not None:
        dbias += bias_parts.sum(axis=0).reshape(dbias.shape)
    return dx if want_input else None
