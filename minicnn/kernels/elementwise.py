"""Elementwise activations (LeakyReLU, ELU, GELU, SiLU, Sigmoid, Tanh, Hardswish, ReLU6), forward and
backward, on flat C-contiguous arrays of any float dtype.

One small serial loop per activation and direction (helpers ``_<op>_forward(x, y, a, b)``,
``_<op>_backward(dy, s, dx, a, b)``; ``s`` is what the backward needs: the input ``x`` or the output
``y``, see ``SAVES``). ``a`` and ``b`` are the activation's constants as scalars of the ARRAY'S dtype
(passed by the caller), so that float32 arrays are computed in float32 (a Python float literal would
promote every float32 value to float64). ``exp``, ``expm1``, ``tanh``, ``erfc`` and the sigmoid come from
``fastmath``: for float32, branch-free arithmetic that LLVM vectorises; for float64, libm's.

``elementwise_forward(x, y, op, a, b)`` / ``elementwise_backward(dy, s, dx, op, a, b)`` dispatch on an
op code (one branch per call, outside the loops); ``elementwise_forward_parallel`` /
``elementwise_backward_parallel`` (same arguments, then ``n_chunks``) split the flat arrays into
``n_chunks`` contiguous chunks, one per thread, each running the serial loop (ReLU's scheme).

Stability at extreme inputs: the sigmoid never overflows (exact 0 and 1 at -+1000), ``tanh``
saturates to exactly -+1, GELU uses ``erfc`` (no cancellation in ``1 + erf`` in the left tail), ELU
``expm1``; see ``fastmath``.
"""

import numpy as np
from numba import prange

from . import fastmath as fm
from .._config import jit, jit_parallel
from .common import _block

# op codes (compile-time constants inside the dispatchers)
LEAKY_RELU, ELU, GELU, GELU_TANH, SILU, SIGMOID, TANH, HARDSWISH, RELU6, ELU_FROM_X = range(10)

# What each backward reads besides dy: "x" (the input) or "y" (the output).
SAVES = {LEAKY_RELU: "x", ELU: "y", ELU_FROM_X: "x", GELU: "x", GELU_TANH: "x", SILU: "x",
         SIGMOID: "y", TANH: "y", HARDSWISH: "x", RELU6: "y"}


# -- LeakyReLU: a = negative_slope ---------------------------------------------------------------
@jit
def _leaky_relu_forward(x, y, a, b):
    for i in range(x.size):
        v = x[i]
        y[i] = v if v > 0 else v * a


@jit
def _leaky_relu_backward(dy, x, dx, a, b):
    """PyTorch: slope 1 for x > 0, else negative_slope (at 0 too)."""
    for i in range(dy.size):
        dx[i] = dy[i] if x[i] > 0 else dy[i] * a


# -- ELU: a = alpha --------------------------------------------------------------------------------
@jit
def _elu_forward(x, y, a, b):
    for i in range(x.size):
        v = x[i]
        y[i] = v if v > 0 else a * fm.expm1(v)


@jit
def _elu_backward(dy, y, dx, a, b):
    """From the output (valid for alpha >= 0, where y > 0 exactly when x > 0): ``y + alpha`` for x <= 0."""
    for i in range(dy.size):
        dx[i] = dy[i] if y[i] > 0 else dy[i] * (y[i] + a)


@jit
def _elu_backward_from_x(dy, x, dx, a, b):
    """From the input (alpha < 0, where the output's sign does not tell x's): ``alpha * exp(x)``."""
    for i in range(dy.size):
        dx[i] = dy[i] if x[i] > 0 else dy[i] * (a * fm.exp(x[i]))


# -- GELU exact: a = 1/sqrt(2), b = 1/sqrt(2*pi) -----------------------------------------------------
@jit
def _gelu_forward(x, y, a, b):
    """``x * Phi(x)``, ``Phi(x) = erfc(-x / sqrt(2)) / 2``."""
    for i in range(x.size):
        v = x[i]
        y[i] = v * (fm.erfc(-v * a) / 2)


@jit
def _gelu_backward(dy, x, dx, a, b):
    """``Phi(x) + x * phi(x)``, ``phi(x) = exp(-x^2 / 2) / sqrt(2 pi) = b * exp(-z^2)`` with ``z = x a``
    (``z`` in x's dtype: no float64 literal in the exponent)."""
    for i in range(dy.size):
        v = x[i]
        z = v * a
        dx[i] = dy[i] * (fm.erfc(-z) / 2 + v * (b * fm.exp(-(z * z))))


# -- GELU tanh approximation: a = sqrt(2/pi), b = 0.044715 ----------------------------------------
@jit
def _gelu_tanh_forward(x, y, a, b):
    """``x / 2 * (1 + tanh(a * (x + b x^3)))``."""
    for i in range(x.size):
        v = x[i]
        y[i] = v / 2 * (1 + fm.tanh(a * (v + b * v * v * v)))


@jit
def _gelu_tanh_backward(dy, x, dx, a, b):
    """``(1 + t) / 2 + x / 2 * (1 - t^2) * a * (1 + 3 b x^2)``, with ``t = tanh(a * (x + b x^3))``; the
    second term is 0 where ``t`` saturates (so ``0 * inf`` never makes a NaN at huge ``|x|``)."""
    for i in range(dy.size):
        v = x[i]
        t = fm.tanh(a * (v + b * v * v * v))
        sech2 = 1 - t * t
        d = (1 + t) / 2
        if sech2 > 0:
            d += v / 2 * sech2 * (a * (1 + 3 * b * v * v))
        dx[i] = dy[i] * d


# -- SiLU ------------------------------------------------------------------------------------------
@jit
def _silu_forward(x, y, a, b):
    for i in range(x.size):
        v = x[i]
        y[i] = v * fm.sigmoid(v)


@jit
def _silu_backward(dy, x, dx, a, b):
    """``s * (1 + x * (1 - s))`` with ``s = sigmoid(x)`` (PyTorch's form)."""
    for i in range(dy.size):
        v = x[i]
        s = fm.sigmoid(v)
        dx[i] = dy[i] * (s * (1 + v * (1 - s)))


# -- Sigmoid, Tanh (backward from the output) ------------------------------------------------------
@jit
def _sigmoid_forward(x, y, a, b):
    for i in range(x.size):
        y[i] = fm.sigmoid(x[i])


@jit
def _sigmoid_backward(dy, y, dx, a, b):
    for i in range(dy.size):
        dx[i] = dy[i] * (y[i] * (1 - y[i]))


@jit
def _tanh_forward(x, y, a, b):
    for i in range(x.size):
        y[i] = fm.tanh(x[i])


@jit
def _tanh_backward(dy, y, dx, a, b):
    for i in range(dy.size):
        dx[i] = dy[i] * (1 - y[i] * y[i])


# -- Hardswish: x * relu6(x + 3) / 6 --------------------------------------------------------------
@jit
def _hardswish_forward(x, y, a, b):
    for i in range(x.size):
        v = x[i]
        if v <= -3:
            y[i] = 0
        elif v >= 3:
            y[i] = v
        else:
            y[i] = v * (v + 3) / 6


@jit
def _hardswish_backward(dy, x, dx, a, b):
    """PyTorch's: 0 for x <= -3, ``x / 3 + 1/2`` for -3 < x < 3, 1 from 3 on."""
    for i in range(dy.size):
        v = x[i]
        if v <= -3:
            dx[i] = 0
        elif v < 3:
            dx[i] = dy[i] * (v / 3 + 0.5)
        else:
            dx[i] = dy[i]


# -- ReLU6: min(max(x, 0), 6) (NaN stays NaN) -----------------------------------------------------
@jit
def _relu6_forward(x, y, a, b):
    for i in range(x.size):
        v = x[i]
        if v <= 0:
            y[i] = 0
        elif v >= 6:
            y[i] = 6
        else:
            y[i] = v


@jit
def _relu6_backward(dy, y, dx, a, b):
    """PyTorch's hardtanh gradient: 0 at and outside the corners (y <= 0 or y >= 6)."""
    for i in range(dy.size):
        dx[i] = dy[i] if 0 < y[i] < 6 else 0


# -- dispatch --------------------------------------------------------------------------------------
@jit
def elementwise_forward(x, y, op, a, b):
    """``y = act(x)`` for the activation ``op`` on flat arrays."""
    if op == LEAKY_RELU:
        _leaky_relu_forward(x, y, a, b)
    elif op == ELU or op == ELU_FROM_X:
        _elu_forward(x, y, a, b)
    elif op == GELU:
        _gelu_forward(x, y, a, b)
    elif op == GELU_TANH:
        _gelu_tanh_forward(x, y, a, b)
    elif op == SILU:
        _silu_forward(x, y, a, b)
    elif op == SIGMOID:
        _sigmoid_forward(x, y, a, b)
    elif op == TANH:
        _tanh_forward(x, y, a, b)
    elif op == HARDSWISH:
        _hardswish_forward(x, y, a, b)
    elif op == RELU6:
        _relu6_forward(x, y, a, b)


@jit
def elementwise_backward(dy, s, dx, op, a, b):
    """``dx = dy * act'(x)`` for the activation ``op``; ``s`` is ``x`` or ``y`` as ``SAVES[op]`` says."""
    if op == LEAKY_RELU:
        _leaky_relu_backward(dy, s, dx, a, b)
    elif op == ELU:
        _elu_backward(dy, s, dx, a, b)
    elif op == ELU_FROM_X:
        _elu_backward_from_x(dy, s, dx, a, b)
    elif op == GELU:
        _gelu_backward(dy, s, dx, a, b)
    elif op == GELU_TANH:
        _gelu_tanh_backward(dy, s, dx, a, b)
    elif op == SILU:
        _silu_backward(dy, s, dx, a, b)
    elif op == SIGMOID:
        _sigmoid_backward(dy, s, dx, a, b)
    elif op == TANH:
        _tanh_backward(dy, s, dx, a, b)
    elif op == HARDSWISH:
        _hardswish_backward(dy, s, dx, a, b)
    elif op == RELU6:
        _relu6_backward(dy, s, dx, a, b)


@jit_parallel
def elementwise_forward_parallel(x, y, op, a, b, n_chunks):
    """:func:`elementwise_forward` on ``n_chunks`` contiguous chunks in parallel."""
    size = x.size
    for t in prange(n_chunks):
        lo, hi = _block(t, n_chunks, size)
        elementwise_forward(x[lo:hi], y[lo:hi], op, a, b)


@jit_parallel
def elementwise_backward_parallel(dy, s, dx, op, a, b, n_chunks):
    """:func:`elementwise_backward` on ``n_chunks`` contiguous chunks in parallel."""
    size = dy.size
    for t in prange(n_chunks):
        lo, hi = _block(t, n_chunks, size)
        elementwise_backward(dy[lo:hi], s[lo:hi], dx[lo:hi], op, a, b)


# -- PReLU: one learnable slope per channel (dim 1) or one for all ----------------------------------
@jit
def prelu_forward_rows(x, w, y, lo, hi):
    """Rows ``r = n * C + c`` in ``lo:hi`` of ``x (N, C, L)``: ``y = x if x > 0 else w[c] * x`` (``w`` has C
    entries, or 1 shared by all)."""
    C, L = x.shape[1], x.shape[2]
    per_channel = w.size > 1
    for r in range(lo, hi):
        n = r // C
        c = r - n * C
        a = w[c] if per_channel else w[0]
        for i in range(L):
            v = x[n, c, i]
            y[n, c, i] = v if v > 0 else a * v


@jit_parallel
def prelu_forward(x, w, y, n_chunks):
    """:func:`prelu_forward_rows` over all N * C rows, ``n_chunks`` ranges in parallel."""
    rows = x.shape[0] * x.shape[1]
    for t in prange(n_chunks):
        lo, hi = _block(t, n_chunks, rows)
        prelu_forward_rows(x, w, y, lo, hi)


@jit
def prelu_backward_rows(dy, x, w, dx, dw, lo, hi):
    """Rows ``lo:hi``: ``dx = dy`` where x > 0 else ``w[c] * dy``; ``sum(dy * x)`` over x <= 0 added into
    the float64 ``dw[c]`` (``dw[0]`` for a shared slope). An empty ``dx`` / ``dw`` is not computed."""
    C, L = x.shape[1], x.shape[2]
    per_channel = w.size > 1
    want_dx = dx.size > 0
    want_dw = dw.size > 0
    for r in range(lo, hi):
        n = r // C
        c = r - n * C
        k = c if per_channel else 0
        a = w[k]
        acc = np.float64(0.0)
        for i in range(L):
            v = x[n, c, i]
            g = dy[n, c, i]
            if v > 0:
                if want_dx:
                    dx[n, c, i] = g
            else:
                if want_dx:
                    dx[n, c, i] = a * g
                acc += v * g
        if want_dw:
            dw[k] += acc


@jit_parallel
def prelu_backward(dy, x, w, dx, dw_partial, n_chunks):
    """:func:`prelu_backward_rows` over all N * C rows, ``n_chunks`` ranges in parallel, range ``t``
    adding into ``dw_partial[t]`` (float64 ``(n_chunks, P)``, reduced by the caller: threads never add
    into one entry; ``(n_chunks, 0)``: not wanted)."""
    rows = x.shape[0] * x.shape[1]
    for t in prange(n_chunks):
        lo, hi = _block(t, n_chunks, rows)
        prelu_backward_rows(dy, x, w, dx, dw_partial[t], lo, hi)
