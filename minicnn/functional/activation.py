"""Activations: ``F.op(x)``, ``F.op_forward(x) -> (y, ctx)``, ``F.op_backward(dy, ctx) -> dx``.

``relu`` (kernels in ``minicnn.kernels.activation``) and the elementwise ``leaky_relu``, ``elu``,
``gelu``, ``silu``, ``sigmoid``, ``tanh``, ``hardswish``, ``relu6`` (``minicnn.kernels.elementwise``) take
``x`` of any shape and keep in their ctx only the one array their backward reads (the input or the
output, whichever is enough). ``prelu`` has a learnable slope per channel (dim 1); ``softmax`` /
``log_softmax`` work along ``dim`` (``minicnn.kernels.softmax``). Formulas, names and defaults are
PyTorch's.
"""
import math
from typing import NamedTuple

import numpy as np

from .._config import ELEMENTWISE_PARALLEL_MIN_SIZE, get_num_threads
from .._validate import boolean, choice, dim_arg, float_array, float_input, grad_array, grad_request, real
from ..kernels import elementwise as _ew
from ..kernels.activation import relu_backward_kernel, relu_backward_parallel_kernel, relu_forward_kernel, relu_forward_parallel_kernel
from ..kernels import softmax as _softmax_k


def run_elementwise(serial, parallel, *arrays, args=()):
    """Run an elementwise kernel on same-sized arrays, flattened: ``serial(*flat, *args)`` below
    ``ELEMENTWISE_PARALLEL_MIN_SIZE`` values, else ``parallel(*flat, *args, n_threads)`` (one chunk per
    thread); ``args`` are the kernel's scalar arguments after the arrays. The arrays are C-contiguous
    (validated inputs, new outputs): ``ravel`` gives views of them."""
    if not args and arrays[0].size < ELEMENTWISE_PARALLEL_MIN_SIZE:
        # the serial calls of ReLU's forward (x, y) and backward (dy, y, dx), spelled out: 1.0 us went into
        # this function for a 0.24 us kernel call on 120 values (measured with timeit), most of it in the
        # general path below
        if len(arrays) == 2:
            serial(arrays[0].ravel(), arrays[1].ravel())
            return
        if len(arrays) == 3:
            serial(arrays[0].ravel(), arrays[1].ravel(), arrays[2].ravel())
            return
    flat = [a.ravel() for a in arrays]
    if flat[0].size >= ELEMENTWISE_PARALLEL_MIN_SIZE:
        parallel(*flat, *args, get_num_threads())
    else:
        serial(*flat, *args)


def run_rows(serial_rows, parallel, n_rows, size, *args):
    """Run a row kernel: ``serial_rows(*args, 0, n_rows)`` below ``ELEMENTWISE_PARALLEL_MIN_SIZE`` values
    (``size``), else ``parallel(*args, n_threads)`` (the rows split into one range per thread)."""
    if size >= ELEMENTWISE_PARALLEL_MIN_SIZE:
        parallel(*args, get_num_threads())
    else:
        serial_rows(*args, 0, n_rows)


def parallel_chunks(size):
    """How many row ranges a row kernel that reduces into per-range buffers splits into: 1 when
    :func:`run_rows` runs it serially."""
    return get_num_threads() if size >= ELEMENTWISE_PARALLEL_MIN_SIZE else 1


class ReLUCtx(NamedTuple):
    """What ``relu_backward`` needs: the forward output ``y`` (``y > 0`` exactly where ``x > 0``)."""
    y: np.ndarray


def relu_forward(x):
    """``y = max(x, 0)`` elementwise on ``x`` of any shape (NaN stays NaN); returns ``(y, ReLUCtx)``."""
    x = float_input("x", x)
    y = np.empty_like(x)
    run_elementwise(relu_forward_kernel, relu_forward_parallel_kernel, x, y)
    return y, ReLUCtx(y)


def relu(x):
    """``max(x, 0)`` elementwise, of ``x``'s shape (see :func:`relu_forward`)."""
    return relu_forward(x)[0]


def relu_backward(dy, ctx):
    """``dx = dy * (y > 0)`` (the gradient at 0 is 0, as PyTorch), ``dy`` of the output's shape."""
    y = ctx.y
    dy = grad_array("dy", dy, y.shape, y.dtype)
    dx = np.empty_like(y)
    run_elementwise(relu_backward_kernel, relu_backward_parallel_kernel, dy, y, dx)
    return dx


class ElementwiseCtx(NamedTuple):
    """What an elementwise activation's backward needs: the kernel's op code, the saved array (the
    input or the output, see ``minicnn.kernels.elementwise.SAVES``) and the two constants."""
    op: int
    saved: np.ndarray
    a: float
    b: float


def _run_forward(op, x, a=0.0, b=0.0):
    x = float_input("x", x)
    y = np.empty_like(x)
    # the constants as scalars of x's dtype: float32 stays float32 inside the kernels
    run_elementwise(_ew.elementwise_forward, _ew.elementwise_forward_parallel, x, y,
                    args=(op, x.dtype.type(a), x.dtype.type(b)))
    return y, ElementwiseCtx(op, x if _ew.SAVES[op] == "x" else y, a, b)


def _run_backward(dy, ctx):
    s = ctx.saved
    dy = grad_array("dy", dy, s.shape, s.dtype)
    dx = np.empty_like(s)
    run_elementwise(_ew.elementwise_backward, _ew.elementwise_backward_parallel, dy, s, dx,
                    args=(ctx.op, s.dtype.type(ctx.a), s.dtype.type(ctx.b)))
    return dx


# Each activation below is one public triple (op_forward, op, op_backward) with PyTorch's signature and
# its formula in the docstrings; the work itself is shared, in _run_forward / _run_backward.


# -- LeakyReLU --------------------------------------------------------------------------------------
def leaky_relu_forward(x, negative_slope=0.01):
    """``y = x if x > 0 else negative_slope * x``; any shape. Returns ``(y, ctx)`` (ctx keeps x)."""
    return _run_forward(_ew.LEAKY_RELU, x, real("negative_slope", negative_slope))


def leaky_relu(x, negative_slope=0.01):
    """``x if x > 0 else negative_slope * x`` elementwise (PyTorch's ``F.leaky_relu``)."""
    return leaky_relu_forward(x, negative_slope)[0]


def leaky_relu_backward(dy, ctx):
    """``dx = dy`` where x > 0, else ``negative_slope * dy``; ``dy`` of the output's shape."""
    return _run_backward(dy, ctx)


# -- ELU --------------------------------------------------------------------------------------------
def elu_forward(x, alpha=1.0):
    """``y = x if x > 0 else alpha * (exp(x) - 1)``. The ctx keeps y (x when alpha < 0)."""
    alpha = real("alpha", alpha)
    return _run_forward(_ew.ELU if alpha >= 0 else _ew.ELU_FROM_X, x, alpha)


def elu(x, alpha=1.0):
    """PyTorch's ``F.elu``."""
    return elu_forward(x, alpha)[0]


def elu_backward(dy, ctx):
    """``dx = dy`` where x > 0, else ``dy * alpha * exp(x)`` (``= dy * (y + alpha)``)."""
    return _run_backward(dy, ctx)


# -- GELU -------------------------------------------------------------------------------------------
def gelu_forward(x, approximate="none"):
    """``approximate="none"``: ``x * Phi(x)`` (``Phi`` the standard normal CDF, via erfc);
    ``"tanh"``: ``x / 2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))``. The ctx keeps x."""
    if choice("approximate", approximate, ("none", "tanh")) == "tanh":
        return _run_forward(_ew.GELU_TANH, x, math.sqrt(2.0 / math.pi), 0.044715)
    return _run_forward(_ew.GELU, x, 1.0 / math.sqrt(2.0), 1.0 / math.sqrt(2.0 * math.pi))


def gelu(x, approximate="none"):
    """PyTorch's ``F.gelu``."""
    return gelu_forward(x, approximate)[0]


def gelu_backward(dy, ctx):
    """Exact: ``dy * (Phi(x) + x * phi(x))``; tanh form: the derivative of that formula (PyTorch's)."""
    return _run_backward(dy, ctx)


# -- SiLU, Sigmoid, Tanh, Hardswish, ReLU6 --------------------------------------------------------------
def silu_forward(x):
    """``y = x * sigmoid(x)``. The ctx keeps x."""
    return _run_forward(_ew.SILU, x)


def silu(x):
    """PyTorch's ``F.silu``."""
    return silu_forward(x)[0]


def silu_backward(dy, ctx):
    """``dy * s * (1 + x * (1 - s))``, ``s = sigmoid(x)``."""
    return _run_backward(dy, ctx)


def sigmoid_forward(x):
    """``y = 1 / (1 + exp(-x))``, exact 0 and 1 at the extremes, no overflow. The ctx keeps y."""
    return _run_forward(_ew.SIGMOID, x)


def sigmoid(x):
    """PyTorch's ``torch.sigmoid``."""
    return sigmoid_forward(x)[0]


def sigmoid_backward(dy, ctx):
    """``dy * y * (1 - y)``."""
    return _run_backward(dy, ctx)


def tanh_forward(x):
    """``y = tanh(x)``. The ctx keeps y."""
    return _run_forward(_ew.TANH, x)


def tanh(x):
    """PyTorch's ``torch.tanh``."""
    return tanh_forward(x)[0]


def tanh_backward(dy, ctx):
    """``dy * (1 - y^2)``."""
    return _run_backward(dy, ctx)


def hardswish_forward(x):
    """``y = x * min(max(x + 3, 0), 6) / 6``. The ctx keeps x."""
    return _run_forward(_ew.HARDSWISH, x)


def hardswish(x):
    """PyTorch's ``F.hardswish``."""
    return hardswish_forward(x)[0]


def hardswish_backward(dy, ctx):
    """``0`` for x <= -3, ``dy * (x / 3 + 1/2)`` for -3 < x < 3, ``dy`` from 3 on (PyTorch's)."""
    return _run_backward(dy, ctx)


def relu6_forward(x):
    """``y = min(max(x, 0), 6)``. The ctx keeps y."""
    return _run_forward(_ew.RELU6, x)


def relu6(x):
    """PyTorch's ``F.relu6``."""
    return relu6_forward(x)[0]


def relu6_backward(dy, ctx):
    """``dy`` where 0 < x < 6, else 0 (PyTorch's hardtanh gradient)."""
    return _run_backward(dy, ctx)


# -- PReLU --------------------------------------------------------------------------------------------
class PReLUCtx(NamedTuple):
    """The input (viewed ``(N, C, L)``, C = 1 for a shared slope) and the slopes."""
    x: np.ndarray
    weight: np.ndarray


def _channel_view(x, num_parameters):
    """x as ``(N, C, L)`` rows for the kernels: channels on dim 1, or, for one shared slope, one row per
    sample ``(N, 1, L)`` (rows to split across threads)."""
    if num_parameters == 1:
        return x.reshape(x.shape[0] if x.ndim else 1, 1, -1)
    return x.reshape(x.shape[0], x.shape[1], -1)


def prelu_forward(x, weight):
    """``y = x if x > 0 else weight[c] * x``, ``c`` the channel (dim 1); ``weight`` has one entry per
    channel or a single entry shared by all. Returns ``(y, ctx)`` (ctx keeps x and weight)."""
    x = float_input("x", x)
    weight = float_array("weight", weight, x.dtype, ndim=1, shape_hint="(num_parameters,)")
    P = weight.shape[0]
    if P != 1 and (x.ndim < 2 or x.shape[1] != P):
        raise ValueError(f"weight has {P} entries (num_parameters), which must be 1 or the number of "
                         f"channels (dim 1) of x, got x of shape {x.shape}")
    y = np.empty_like(x)
    x3 = _channel_view(x, P)
    run_rows(_ew.prelu_forward_rows, _ew.prelu_forward, x3.shape[0] * x3.shape[1], x.size, x3, weight,
             y.reshape(x3.shape))
    return y, PReLUCtx(x, weight)


def prelu(x, weight):
    """PyTorch's ``F.prelu``."""
    return prelu_forward(x, weight)[0]


def prelu_backward(dy, ctx, *, dx=True, dweight=True):
    """Returns ``(dx, dweight)``: ``dx = dy`` where x > 0 else ``weight[c] * dy``;
    ``dweight[c] = sum(dy * x)`` over the entries of channel ``c`` with x <= 0 (flags as in
    ``minicnn.functional``)."""
    x, weight = ctx
    dy = grad_array("dy", dy, x.shape, x.dtype)
    want_input = boolean("dx", dx)
    dweight = grad_request("dweight", dweight, weight.shape, x.dtype)
    P = weight.shape[0]
    x3 = _channel_view(x, P)
    n_chunks = parallel_chunks(x.size)
    dx = np.empty(x3.shape if want_input else (0, 0, 0), x.dtype)  # empty: not wanted
    partial = np.zeros((n_chunks, P if dweight is not None else 0))  # float64, one row per range
    args = (dy.reshape(x3.shape), x3, weight, dx)
    if n_chunks == 1:
        _ew.prelu_backward_rows(*args, partial[0], 0, x3.shape[0] * x3.shape[1])
    else:
        _ew.prelu_backward(*args, partial, n_chunks)
    if dweight is not None:
        dweight += partial.sum(axis=0).astype(x.dtype)
    return (dx.reshape(x.shape) if want_input else None), dweight


# -- Softmax, LogSoftmax ------------------------------------------------------------------------------------
class SoftmaxCtx(NamedTuple):
    """The output and the softmax axis (the backward of both needs only y)."""
    y: np.ndarray
    dim: int
    log: bool


def _around_axis(shape, dim):
    """``(O, K, I)``: the sizes before the axis ``dim``, along it and after it (the kernels' view)."""
    O = math.prod(shape[:dim])
    I = math.prod(shape[dim + 1:])
    return O, shape[dim] if shape else 1, I


def _softmax_forward_impl(x, dim, log):
    x = float_input("x", x)
    dim = dim_arg("dim", dim, x.ndim)
    y = np.empty_like(x)
    if x.size:
        shape = _around_axis(x.shape, dim)
        run_rows(_softmax_k.softmax_forward_rows, _softmax_k.softmax_forward, shape[0] * shape[2], x.size,
                 x.reshape(shape), y.reshape(shape), log)
    return y, SoftmaxCtx(y, dim, log)


def _softmax_backward_impl(dy, ctx):
    y = ctx.y
    dy = grad_array("dy", dy, y.shape, y.dtype)
    dx = np.empty_like(y)
    if y.size:
        shape = _around_axis(y.shape, ctx.dim)
        run_rows(_softmax_k.softmax_backward_rows, _softmax_k.softmax_backward, shape[0] * shape[2], y.size,
                 dy.reshape(shape), y.reshape(shape), dx.reshape(shape), ctx.log)
    return dx


def softmax_forward(x, dim):
    """``y = exp(x - max) / sum(exp(x - max))`` along ``dim`` (negative counts from the end)."""
    return _softmax_forward_impl(x, dim, False)


def softmax(x, dim):
    """PyTorch's ``F.softmax(x, dim)``."""
    return softmax_forward(x, dim)[0]


def softmax_backward(dy, ctx):
    """``dx = y * (dy - sum(dy * y))`` along the softmax axis."""
    return _softmax_backward_impl(dy, ctx)


def log_softmax_forward(x, dim):
    """``y = x - max - log(sum(exp(x - max)))`` along ``dim`` (log-sum-exp: finite for finite x)."""
    return _softmax_forward_impl(x, dim, True)


def log_softmax(x, dim):
    """PyTorch's ``F.log_softmax(x, dim)``."""
    return log_softmax_forward(x, dim)[0]


def log_softmax_backward(dy, ctx):
    """``dx = dy - exp(y) * sum(dy)`` along the softmax axis."""
    return _softmax_backward_impl(dy, ctx)
