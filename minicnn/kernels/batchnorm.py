"""Batch normalisation kernels on ``x`` viewed as ``(N, C, L)`` (``L = H * W`` for NCHW input).

Serial kernels: these passes are memory-bound and small next to the convolutions (a LeNet-sized
batch has ~1e5 values per layer), and a Numba parallel region costs more to start than it saves at
that size on a shared 2-core machine (measured: 15 us to 20 ms per launch under load). Sums are kept
in float64 whatever the array dtype.
"""
import numpy as np

from .._config import jit


@jit
def _channel_mean_var(x, mean, var):
    """Per-channel mean and biased variance of ``x (N, C, L)`` over ``N`` and ``L`` (two passes).

    Four independent float64 accumulators per sum: a single one serialises on the add latency
    (measured 4x slower on a (64, 6, 784) batch).
    """
    N, C, L = x.shape
    count = N * L
    L4 = L - L % 4
    for c in range(C):
        s0 = s1 = s2 = s3 = np.float64(0.0)  # float64 sums also without the JIT
        for n in range(N):
            for i in range(0, L4, 4):
                s0 += x[n, c, i]
                s1 += x[n, c, i + 1]
                s2 += x[n, c, i + 2]
                s3 += x[n, c, i + 3]
            for i in range(L4, L):
                s0 += x[n, c, i]
        m = (s0 + s1 + s2 + s3) / count
        q0 = q1 = q2 = q3 = np.float64(0.0)
        for n in range(N):
            for i in range(0, L4, 4):
                d0 = x[n, c, i] - m
                d1 = x[n, c, i + 1] - m
                d2 = x[n, c, i + 2] - m
                d3 = x[n, c, i + 3] - m
                q0 += d0 * d0
                q1 += d1 * d1
                q2 += d2 * d2
                q3 += d3 * d3
            for i in range(L4, L):
                d = x[n, c, i] - m
                q0 += d * d
        mean[c] = m
        var[c] = (q0 + q1 + q2 + q3) / count


@jit
def _normalize(x, mean, scale, shift, y):
    """``y[n, c, i] = (x[n, c, i] - mean[c]) * scale[c] + shift[c]``; per-channel arrays in x's dtype."""
    N, C, L = x.shape
    for p in range(N * C):
        n = p // C
        c = p - n * C
        m = mean[c]
        s = scale[c]
        b = shift[c]
        for i in range(L):
            y[n, c, i] = (x[n, c, i] - m) * s + b


@jit
def _backward_sums(dy, x, mean, invstd, sum_dy, sum_dy_xhat):
    """Per channel: ``sum(dy)`` and ``sum(dy * xhat)`` with ``xhat = (x - mean) * invstd``
    (two float64 accumulators per sum, for the same reason as in ``_channel_mean_var``)."""
    N, C, L = x.shape
    L2 = L - L % 2
    for c in range(C):
        m = mean[c]
        s0 = s1 = t0 = t1 = np.float64(0.0)
        for n in range(N):
            for i in range(0, L2, 2):
                g0 = dy[n, c, i]
                g1 = dy[n, c, i + 1]
                s0 += g0
                s1 += g1
                t0 += g0 * (x[n, c, i] - m)
                t1 += g1 * (x[n, c, i + 1] - m)
            for i in range(L2, L):
                g0 = dy[n, c, i]
                s0 += g0
                t0 += g0 * (x[n, c, i] - m)
        sum_dy[c] = s0 + s1
        sum_dy_xhat[c] = (t0 + t1) * invstd[c]


@jit
def _backward_input(dy, x, mean, scale, dy_mean, slope, dx):
    """``dx[n, c, i] = scale[c] * (dy[n, c, i] - dy_mean[c] - (x[n, c, i] - mean[c]) * slope[c])``.

    Training mode (``M = N * L`` values per channel): ``scale = gamma * invstd``,
    ``dy_mean = sum(dy) / M``, ``slope = invstd * sum(dy * xhat) / M``, which is
    ``dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat))``.
    Eval mode (constant statistics): ``dy_mean = slope = 0``.
    """
    N, C, L = x.shape
    for p in range(N * C):
        n = p // C
        c = p - n * C
        m = mean[c]
        k = scale[c]
        a = dy_mean[c]
        b = slope[c]
        for i in range(L):
            dx[n, c, i] = k * (dy[n, c, i] - a - (x[n, c, i] - m) * b)


def _as3d(name, a):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype {a.dtype}")
    if a.ndim < 2:
        raise ValueError(f"{name} must be (N, C, ...) with at least 2 dimensions, got shape {a.shape}")
    a = np.ascontiguousarray(a)
    return a.reshape(a.shape[0], a.shape[1], -1)


def _per_channel(name, v, C, dtype):
    v = np.ascontiguousarray(v, dtype=dtype)
    if v.shape != (C,):
        raise ValueError(f"{name} must have shape ({C},), got {v.shape}")
    return v


def batch_norm_stats(x):
    """Per-channel mean and biased variance (float64 arrays of shape ``(C,)``) of ``x (N, C, ...)``."""
    x3 = _as3d("x", x)
    if x3.shape[0] * x3.shape[2] == 0:
        raise ValueError(f"x must have at least one value per channel, got shape {x.shape}")
    mean = np.empty(x3.shape[1], np.float64)
    var = np.empty(x3.shape[1], np.float64)
    _channel_mean_var(x3, mean, var)
    return mean, var


def batch_norm_forward(x, mean, invstd, weight=None, bias=None, out=None):
    """``(x - mean) * invstd * weight + bias`` per channel of ``x (N, C, ...)``; returns ``out``."""
    x3 = _as3d("x", x)
    C = x3.shape[1]
    mean = _per_channel("mean", mean, C, x.dtype)
    scale = _per_channel("invstd", invstd, C, np.float64)
    if weight is not None:
        scale = scale * _per_channel("weight", weight, C, np.float64)
    shift = np.zeros(C, x.dtype) if bias is None else _per_channel("bias", bias, C, x.dtype)
    if out is None:
        out = np.empty(x.shape, x.dtype)
    if out.shape != x.shape or out.dtype != x.dtype or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous {x.dtype} array of shape {x.shape}")
    _normalize(x3, mean, scale.astype(x.dtype), shift, out.reshape(x3.shape))
    return out


def batch_norm_backward(dy, x, mean, invstd, weight=None, training=True):
    """Gradients of ``batch_norm_forward``: returns ``(dx, dweight, dbias)``.

    With ``training=True`` the statistics ``mean``/``invstd`` are those of the batch ``x`` itself
    (so they depend on ``x``); with ``training=False`` they are constants (running statistics).
    ``dweight = sum(dy * xhat)`` and ``dbias = sum(dy)`` per channel (float64).
    """
    x3 = _as3d("x", x)
    if not isinstance(dy, np.ndarray) or dy.shape != x.shape or dy.dtype != x.dtype:
        raise ValueError(f"dy must be a {x.dtype} array of shape {x.shape}")
    dy3 = np.ascontiguousarray(dy).reshape(x3.shape)
    N, C, L = x3.shape
    mean = _per_channel("mean", mean, C, x.dtype)
    invstd = _per_channel("invstd", invstd, C, np.float64)
    sum_dy = np.empty(C, np.float64)
    sum_dy_xhat = np.empty(C, np.float64)
    _backward_sums(dy3, x3, mean, invstd, sum_dy, sum_dy_xhat)
    scale = invstd if weight is None else invstd * _per_channel("weight", weight, C, np.float64)
    if training:
        dy_mean = sum_dy / (N * L)
        slope = invstd * sum_dy_xhat / (N * L)
    else:
        dy_mean = slope = np.zeros(C)
    dx = np.empty(x.shape, x.dtype)
    dt = x.dtype
    _backward_input(dy3, x3, mean, scale.astype(dt), dy_mean.astype(dt), slope.astype(dt), dx.reshape(x3.shape))
    return dx, sum_dy_xhat, sum_dy
