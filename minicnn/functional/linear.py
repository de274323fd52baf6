"""Fully connected: ``linear(x, weight, bias=None)`` = ``x @ weight.T + bias`` (PyTorch's layout),
``linear_forward`` -> ``(y, LinearCtx)``, ``linear_backward``; kernels in ``minicnn.kernels.linear``."""
from typing import NamedTuple

import numpy as np

from .._config import kernel_blas_single_threaded, thread_blocks
from .._validate import axis_size, boolean, float_array, float_input, grad_array, grad_request, vector
from ..kernels.common import unwanted
from ..kernels.linear import linear_backward_kernel, linear_forward_kernel


class LinearCtx(NamedTuple):
    """What ``linear_backward`` needs: the input ``x`` (N, in_features) and ``weight``
    (out_features, in_features), both in the compute dtype, and whether a bias was added."""
    x: np.ndarray
    weight: np.ndarray
    has_bias: bool


def linear_forward(x, weight, bias=None):
    """``y (N, out_features) = x (N, in_features) @ weight (out_features, in_features).T + bias
    (out_features,)``; returns ``(y, LinearCtx)``. ``weight`` and ``bias`` are cast to ``x``'s dtype."""
    x = float_input("x", x, ndim=2, shape_hint="(N, in_features)")
    weight = float_array("weight", weight, x.dtype, ndim=2, shape_hint="(out_features, in_features)")
    F, K = weight.shape
    if x.shape[1] != K:  # (the message is only formatted when it is raised: 0.4 us a call otherwise, measured)
        axis_size("x", x, 1, K, f"columns (in_features={K}, as weight of shape {weight.shape})")
    has_bias = bias is not None
    bias = vector("bias", bias, F, x.dtype, "out_features") if has_bias else np.zeros(F, x.dtype)
    N = x.shape[0]
    y = np.empty((N, F), x.dtype)
    if N > 0:
        kernel_blas_single_threaded()
        linear_forward_kernel(x, weight, bias, thread_blocks(N), y)
    return y, LinearCtx(x, weight, has_bias)


def linear(x, weight, bias=None):
    """``x @ weight.T + bias``: ``(N, in_features)`` -> ``(N, out_features)`` (see :func:`linear_forward`)."""
    return linear_forward(x, weight, bias)[0]


def linear_backward(dy, ctx, *, dx=True, dweight=True, dbias=True):
    """Gradients of ``linear`` from ``dy (N, out_features)``: returns ``(dx, dweight, dbias)``.

    ``dx`` (N, in_features) = ``dy @ weight``; ``dweight`` += ``dy.T @ x``; ``dbias`` += ``dy.sum(0)``
    (None when the forward had no bias). Flags as in ``minicnn.functional``.
    """
    x, weight = ctx.x, ctx.weight
    (N, K), F, dtype = x.shape, weight.shape[0], x.dtype
    dy = grad_array("dy", dy, (N, F), dtype)
    want_input = boolean("dx", dx)
    dweight = grad_request("dweight", dweight, (F, K), dtype)
    dbias = grad_request("dbias", dbias, (F,), dtype) if ctx.has_bias else None
    dx = np.empty((N, K), dtype) if want_input else None
    if N > 0 and (want_input or dweight is not None or dbias is not None):
        nb = thread_blocks(N)
        weight_parts = unwanted(3, dtype) if dweight is None else np.empty((nb, F, K), dtype)
        bias_parts = unwanted(2, dtype) if dbias is None else np.empty((nb, F), dtype)
        kernel_blas_single_threaded()
        linear_backward_kernel(dy, x, weight, nb, weight_parts, bias_parts,
                         unwanted(2, dtype) if dweight is None else dweight,
                         unwanted(1, dtype) if dbias is None else dbias,
                         unwanted(2, dtype) if dx is None else dx)
    return dx, dweight, dbias

