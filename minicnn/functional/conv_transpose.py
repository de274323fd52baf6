"""Transposed 2-D convolution (``F.conv_transpose2d``, as PyTorch's): forward and backward.

The adjoint of a convolution run as a forward pass (see ``minicnn.kernels.conv_transpose``): the
output is col2im of ``W.T @ x``, the input gradient a convolution of ``dy`` (im2col + GEMM) and the
weight gradient ``x @ im2col(dy).T``.
"""
from typing import NamedTuple

import numpy as np

from .._validate import (conv_transpose_output_size, float_array, float_input, grad_array, grad_request,
                         groups_arg, output_padding_arg, pair)
from ..kernels.conv_transpose import conv_transpose2d_apply, conv_transpose2d_grads, conv_transpose2d_plan


class ConvTranspose2dCtx(NamedTuple):
    """What :func:`conv_transpose2d_backward` needs."""
    x: np.ndarray  # the input (N, Cin, H, W), read by the weight gradient
    weight: np.ndarray  # (Cin, Cout/groups, kh, kw), read by the input gradient
    has_bias: bool
    groups: int
    geometry: tuple  # (kh, kw, sh, sw, ph, pw, dh, dw)
    plan: tuple  # kernels.conv_transpose.conv_transpose2d_plan's
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
    geometry = (kh, kw, sh, sw, ph, pw, dh, dw)
    plan = conv_transpose2d_plan((H, W), (OH, OW), geometry)
    y = conv_transpose2d_apply(x, weight, bias, groups, geometry, plan, (OH, OW))
    return y, ConvTranspose2dCtx(x, weight, bias is not None, groups, geometry, plan, y.shape)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """The output of :func:`conv_transpose2d_forward` alone (``torch.nn.functional.conv_transpose2d``)."""
    return conv_transpose2d_forward(x, weight, bias, stride, padding, output_padding, groups, dilation)[0]


def conv_transpose2d_backward(dy, ctx, *, dx=True, dweight=True, dbias=True):
    """``(dx, dweight, dbias)`` for the output gradient ``dy`` (N, Cout, OH, OW): ``dx`` (N, Cin, H, W),
    ``dweight`` of the weight's shape, ``dbias`` (Cout,) (None without a bias). Each argument is True,
    False or an array to add the gradient into (see ``minicnn.functional``)."""
    dtype = ctx.x.dtype
    dy = grad_array("dy", dy, ctx.output_shape, dtype)
    dweight = grad_request("dweight", dweight, ctx.weight.shape, dtype)
    dbias = grad_request("dbias", dbias, (ctx.output_shape[1],), dtype) if ctx.has_bias else None
    grad_x = conv_transpose2d_grads(dy, ctx.x, ctx.weight, ctx.groups, ctx.geometry, ctx.plan, bool(dx),
                                    dweight, dbias)
    return grad_x, dweight, dbias
