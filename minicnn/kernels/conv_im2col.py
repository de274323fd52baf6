"""The "im2col" convolution algorithm: im2col, one matrix product per sample, col2im (the textbook).

With ``cols[n]`` (K, P) the receptive fields of sample n (``minicnn.kernels.im2col``), K = C*kh*kw,
P = OH*OW and ``W2 = weight.reshape(F, K)``:

    forward          y[n] (F, P)    = W2 (F, K) @ cols[n] + b
    weight gradient  dW (F, K)     += dy[n] (F, P) @ cols[n].T
    input gradient   dcols (K, P)   = W2.T @ dy[n]                  then dx[n] = col2im(dcols)

Each pass is ONE parallel region: the samples are split into one contiguous block per thread, and each
thread runs im2col, the products (Numba's ``np.dot``: single-threaded BLAS, see
``minicnn._config.kernel_blas_single_threaded``) and col2im for its samples. No second thread pool: on
two cores, BLAS threads spinning next to Numba's made every pass 2-5x slower than the sum of its parts
(measured). Parameter gradients go to per-block buffers, summed by the caller (no race).
"""
import numpy as np
from numba import prange

from .._config import IM2COL_TRANSPOSED_PRODUCT_MAX, jit, jit_parallel
from .common import _add_row_sums, _u
from .im2col import _col2im_sample, _im2col_sample

@jit
def _add_bias_rows(yn, bias):
    """``yn[f] += bias[f]`` for ``yn`` (F, P)."""
    for f in range(yn.shape[0]):
        row = yn[f]
        bf = bias[f]
        for p in range(yn.shape[1]):
            row[_u(p)] += bf


@jit
def _transpose_bias(tmp, bias, yn):
    """``yn[f, p] = tmp[p, f] + bias[f]`` for ``tmp`` (P, F)."""
    for f in range(yn.shape[0]):
        row = yn[f]
        bf = bias[f]
        for p in range(yn.shape[1]):
            row[_u(p)] = tmp[p, f] + bf


@jit_parallel
def im2col_forward(x, w2, bias, g, n_blocks, cols, y):
    """``y[n]`` (F, P) = ``w2`` (F, K) @ ``cols[n]`` + ``bias`` (F,), after filling ``cols[n]`` (K, P) with
    the receptive fields of ``x[n]``, for ``x`` (N, C, H, W)."""
    N = x.shape[0]
    F, P = y.shape[1], y.shape[2]
    transposed = F * P <= IM2COL_TRANSPOSED_PRODUCT_MAX  # see _config
    for b in prange(n_blocks):
        tmp = np.empty((P, F) if transposed else (1, 1), dtype=y.dtype)
        for n in range(b * N // n_blocks, (b + 1) * N // n_blocks):
            cn = cols[n]
            _im2col_sample(x, n, g, cn)
            if transposed:
                np.dot(cn.T, w2.T, tmp)
                _transpose_bias(tmp, bias, y[n])
            else:
                np.dot(w2, cn, y[n])
                _add_bias_rows(y[n], bias)


@jit
def _add_weight_grad(cn, dyn, tmp, part):
    """``part`` (K, F) += ``cn`` (K, P) @ ``dyn`` (F, P).T, through ``tmp`` (K, F): cols @ dy.T measured
    5-40% faster in BLAS than dy @ cols.T (LeNet's conv2 and 32-64-channel 3x3 layers)."""
    np.dot(cn, dyn.T, tmp)
    for k in range(part.shape[0]):
        prow = part[k]
        trow = tmp[k]
        for f in range(part.shape[1]):
            prow[_u(f)] += trow[_u(f)]


@jit_parallel
def im2col_backward(dy, w2, cols, g, n_blocks, weight_parts, bias_parts, dx):
    """For ``dy`` (N, F, P) and the forward's ``cols`` (N, K, P): ``weight_parts[b]`` (K, F) = the
    TRANSPOSED weight gradient of block b's samples, ``bias_parts[b]`` (F,) their bias gradient, ``dx``
    (N, C, H, W) = the input gradient; each skipped when empty."""
    N, F, P = dy.shape
    K = w2.shape[1]
    want_weight, want_bias, want_input = weight_parts.size > 0, bias_parts.size > 0, dx.size > 0
    for b in prange(n_blocks):
        tmp = np.empty((K, F) if want_weight else (0, 0), dtype=w2.dtype)
        dcols = np.empty((K, P) if want_input else (0, 0), dtype=w2.dtype)
        if want_weight:
            weight_parts[b] = 0
        if want_bias:
            bias_parts[b] = 0
        for n in range(b * N // n_blocks, (b + 1) * N // n_blocks):
            if want_weight:
                _add_weight_grad(cols[n], dy[n], tmp, weight_parts[b])
            if want_bias:
                _add_row_sums(dy[n], bias_parts[b])
            if want_input:
                np.dot(w2.T, dy[n], dcols)
                _col2im_sample(dcols, n, g, dx)
