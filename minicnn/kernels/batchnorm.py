"""Batch normalisation kernels on ``x`` viewed as ``(N, C, L)`` (``L = H * W`` for NCHW input);
``minicnn.functional.batch_norm`` calls them.

Serial kernels: these passes are memory-bound and small next to the convolutions (a LeNet-sized
batch has ~1e5 values per layer), and a Numba parallel region costs more to start than it saves at
that size on a shared 2-core machine (measured: 15 us to 20 ms per launch under load). Sums are kept
in float64 whatever the array dtype.
"""
import numpy as np

from .._config import jit


@jit
def _channel_sum(x, c):
    """``sum(x[:, c, :])`` in float64, with four independent accumulators: a single one serialises
    on the add latency (measured 4x slower on a (64, 6, 784) batch)."""
    N, _, L = x.shape
    L4 = L - L % 4
    s0 = s1 = s2 = s3 = np.float64(0.0)  # float64 sums also without the JIT
    for n in range(N):
        for i in range(0, L4, 4):
            s0 += x[n, c, i]
            s1 += x[n, c, i + 1]
            s2 += x[n, c, i + 2]
            s3 += x[n, c, i + 3]
        for i in range(L4, L):
            s0 += x[n, c, i]
    return s0 + s1 + s2 + s3


@jit
def _channel_squared_deviation(x, c, m):
    """``sum((x[:, c, :] - m) ** 2)`` in float64, four accumulators as in :func:`_channel_sum`."""
    N, _, L = x.shape
    L4 = L - L % 4
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
    return q0 + q1 + q2 + q3


@jit
def _channel_mean_var(x, mean, var):
    """Per-channel mean and biased variance of ``x (N, C, L)`` over ``N`` and ``L`` (two passes)."""
    N, C, L = x.shape
    count = N * L
    for c in range(C):
        m = _channel_sum(x, c) / count
        mean[c] = m
        var[c] = _channel_squared_deviation(x, c, m) / count


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
