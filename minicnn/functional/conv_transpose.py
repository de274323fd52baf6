"""Transposed 2-D convolution (``F.conv_transpose2d``, as PyTorch's): forward and backward.

``x`` (N, Cin, H, W) and ``weight`` (Cin, Cout/G, kh, kw) in G groups. Seen from its output ``y``
(N, Cout, OH, OW), the operation is the INPUT GRADIENT of the convolution ``y -> x`` with the same
weight read as (F = Cin, C/G = Cout/G, kh, kw), stride, padding and dilation and the geometry
``g = (kh, kw, sh, sw, ph, pw, dh, dw, H, W)`` (that convolution's output size is x's). Per sample and
group, with ``K = (Cout/G)*kh*kw`` and ``P = H*W``:

    forward          y[n, g]  = col2im(W_g.T (K, Cin/G) @ x[n, g] (Cin/G, P)) + b      (im2col_backward)
    input gradient   dx[n, g] = W_g (Cin/G, K) @ im2col(dy[n, g]) (K, P)     (conv2d_forward of dy)
    weight gradient  dW_g    += x[n, g] @ im2col(dy[n, g]).T          (conv2d_backward, x as its dy)

The forward runs on the "im2col" algorithm's kernels (``minicnn.kernels.conv_im2col``) with the roles
exchanged. The two gradients are that convolution's forward and weight gradient, so they run on the
algorithm ``conv2d_forward`` picks for it (the tiled kernels for most shapes).

``output_padding`` only adds rows and columns at the bottom/right of y: the geometry carries x's
size, so the kernels read and write exactly the pixels the windows cover, whatever the output size.
"""
from typing import NamedTuple

import numpy as np

from .._validate import (conv_transpose_output_size, float_array, float_input, grad_array, grad_request,
                         groups_arg, output_padding_arg, pair)
from .._config import kernel_blas_single_threaded, thread_blocks
from ..kernels.common import unwanted
from ..kernels.conv_im2col import add_bias, im2col_backward
from .conv import conv2d_backward, conv2d_forward


class ConvTranspose2dCtx(NamedTuple):
    """What :func:`conv_transpose2d_backward` needs."""
    x: np.ndarray  # the input (N, Cin, H, W), read by the weight gradient
    weight: np.ndarray  # (Cin, Cout/groups, kh, kw), read by the input gradient
    has_bias: bool
    groups: int
    geometry: tuple  # (kh, kw, sh, sw, ph, pw, dh, dw, H, W): of the convolution y -> x
    output_shape: tuple  # (N, Cout, OH, OW)


def conv_transpose2d_forward(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed convolution of ``x`` (N, Cin, H, W) by ``weight`` (Cin, Cout/groups, kh, kw) plus
    ``bias`` (Cout,): returns ``(y, ctx)`` with ``y`` (N, Cout, OH, OW),
    ``OH = (H-1)*sh - 2*ph + dh*(kh-1) + oph + 1`` (and OW alike).

    ``stride``, ``padding``, ``output_padding`` and ``dilation`` are ints or (h, w) pairs;
    ``output_padding`` (extra rows/columns at the bottom/right) must be smaller than the stride or
    the dilation in each dimension. ``groups`` divides Cin and Cout: output group g is the transposed
    convolution of input channels ``[g*Cin/groups, (g+1)*Cin/groups)``.
    """
    x = float_input("x", x, 4, "(N, Cin, H, W)")
    weight = float_array("weight", weight, x.dtype, 4, "(Cin, Cout/groups, kh, kw)")
    N, Cin, H, W = x.shape
    if weight.shape[0] != Cin:
        raise ValueError(f"weight must have x's {Cin} input channels in dimension 0 of (Cin, Cout/groups, kh, kw), "
                         f"got shape {weight.shape}")
    if x.size == 0 or weight.size == 0:
        raise ValueError(f"x and weight must not be empty, got shapes {x.shape} and {weight.shape}")
    groups = groups_arg(groups, Cin)
    Cout = weight.shape[1] * groups
    kh, kw = weight.shape[2:]
    sh, sw = pair("stride", stride)
    ph, pw = pair("padding", padding, minimum=0)
    dh, dw = pair("dilation", dilation)
    oph, opw = output_padding_arg(output_padding, (sh, sw), (dh, dw))
    OH = conv_transpose_output_size(H, kh, sh, ph, oph, dh)
    OW = conv_transpose_output_size(W, kw, sw, pw, opw, dw)
    if OH < 1 or OW < 1:
        raise ValueError(f"padding {(ph, pw)} is too large: the output size would be {(OH, OW)} for input "
                         f"{(H, W)}, kernel {(kh, kw)}, stride {(sh, sw)}, dilation {(dh, dw)}")
    if bias is not None:
        bias = float_array("bias", bias, x.dtype, 1, "(Cout,)")
        if bias.shape != (Cout,):
            raise ValueError(f"bias must have shape (Cout,) = {(Cout,)}, got {bias.shape}")
    g = (kh, kw, sh, sw, ph, pw, dh, dw, H, W)
    G, Cg = groups, Cout // groups
    y = np.empty((N, Cout, OH, OW), x.dtype)
    kernel_blas_single_threaded()
    im2col_backward(x.reshape(N * G, Cin // G, H * W), weight.reshape(G, Cin // G, Cg * kh * kw), unwanted(3, x.dtype),
                    g, thread_blocks(N * G), unwanted(4, x.dtype), unwanted(3, x.dtype), y.reshape(N * G, Cg, OH, OW))
    if bias is not None:
        add_bias(y.reshape(N, Cout, OH * OW), bias)
    return y, ConvTranspose2dCtx(x, weight, bias is not None, groups, g, y.shape)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """The output of :func:`conv_transpose2d_forward` alone (``torch.nn.functional.conv_transpose2d``)."""
    return conv_transpose2d_forward(x, weight, bias, stride, padding, output_padding, groups, dilation)[0]


def conv_transpose2d_backward(dy, ctx, *, dx=True, dweight=True, dbias=True):
    """``(dx, dweight, dbias)`` for the output gradient ``dy`` (N, Cout, OH, OW): ``dx`` (N, Cin, H, W),
    ``dweight`` of the weight's shape, ``dbias`` (Cout,) (None without a bias). Each argument is True,
    False or an array to add the gradient into (see ``minicnn.functional``).

    Both are the convolution ``y -> x`` of the module docstring, run by :func:`conv2d_forward` (so on
    its fastest algorithm): its output for ``dy`` is ``dx``, and its weight gradient for the output
    gradient ``x`` is ``dweight``."""
    dtype = ctx.x.dtype
    dy = grad_array("dy", dy, ctx.output_shape, dtype)
    dweight = grad_request("dweight", dweight, ctx.weight.shape, dtype)
    dbias = grad_request("dbias", dbias, (ctx.output_shape[1],), dtype) if ctx.has_bias else None
    x, (_, _, sh, sw, ph, pw, dh, dw, H, W) = ctx.x, ctx.geometry
    grad_x = None
    if dx or dweight is not None:
        out, conv_ctx = conv2d_forward(dy, ctx.weight, None, (sh, sw), (ph, pw), (dh, dw), ctx.groups)
        # With output_padding >= stride (allowed below the dilation) the convolution of dy is larger than x:
        # its extra rows and columns are not x's, so they are cut from dx and get a zero x below.
        if dx:
            grad_x = out if out.shape == x.shape else np.ascontiguousarray(out[:, :, :H, :W])
        if dweight is not None:
            x_out = x
            if out.shape != x.shape:
                x_out = np.zeros(out.shape, dtype)
                x_out[:, :, :H, :W] = x
            conv2d_backward(x_out, conv_ctx, dx=False, dweight=dweight, dbias=False)
    if dbias is not None:
        dbias += dy.reshape(dy.shape[0], dy.shape[1], -1).sum(axis=2).sum(axis=0)  # NumPy's pairwise sums
    return grad_x, dweight, dbias
