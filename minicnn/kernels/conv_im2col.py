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

Groups: with G groups the kernels see every (sample, group) pair as one sample ``s`` of its own,
group ``s % G`` of sample ``s // G``: ``x`` (N*G, C/G, H, W), ``y`` (N*G, F/G, P) and the gradients are
free reshapes of the NCHW arrays, and sample s is multiplied by ``w3[s % G]`` (w3 = weight.reshape(G,
F/G, K)). G = 1 is the ungrouped convolution. The transposed convolution runs on the same kernels with
the roles of input and output exchanged (``minicnn.functional.conv_transpose``).
"""
import numpy as np
from numba import prange

from .._config import IM2COL_TRANSPOSED_PRODUCT_MAX, jit, jit_parallel
from .common import _add_row_sums, _block, _u
from .im2col import _col2im_sample, _im2col_sample


@jit
def _is_pointwise(g):
    """Whether geometry ``g`` is a 1x1 window at stride 1 without padding: then im2col and col2im are
    the identity on a sample (C, H, W) seen as (C, H*W)."""
    return g[0] == 1 and g[1] == 1 and g[2] == 1 and g[3] == 1 and g[4] == 0 and g[5] == 0


# The same test from Python (the functional call chooses the algorithm and whether x is the im2col
# matrix): the compiled function's own Python, as pool.is_whole_2x2.
is_pointwise = getattr(_is_pointwise, "py_func", _is_pointwise)


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
def im2col_forward(x, w3, bias, g, n_blocks, cols, y):
    """``y[s]`` (F/G, P) = ``w3[s % G]`` (F/G, K) @ ``cols[s]`` + ``bias[s % G]`` (F/G,), after filling
    ``cols[s]`` (K, P) with the receptive fields of ``x[s]``, for ``x`` (N*G, C/G, H, W) (see Groups).
    A pointwise convolution's receptive fields are ``x[s]`` itself: it is read in place (``cols`` unused)."""
    S, G = x.shape[0], w3.shape[0]
    F, P = y.shape[1], y.shape[2]
    pointwise = _is_pointwise(g)
    transposed = F * P <= IM2COL_TRANSPOSED_PRODUCT_MAX  # see _config
    for b in prange(n_blocks):
        tmp = np.empty((P, F) if transposed else (1, 1), dtype=y.dtype)
        lo, hi = _block(b, n_blocks, S)
        for s in range(lo, hi):
            w2 = w3[s % G]
            if pointwise:
                cn = x[s].reshape(x.shape[1], P)
            else:
                cn = cols[s]
                _im2col_sample(x, s, g, cn)
            if transposed:
                np.dot(cn.T, w2.T, tmp)
                _transpose_bias(tmp, bias[s % G], y[s])
            else:
                np.dot(w2, cn, y[s])
                _add_bias_rows(y[s], bias[s % G])


@jit_parallel
def add_bias(y, bias):
    """``y[n, f] += bias[f]`` for ``y`` (N, F, P)."""
    for n in prange(y.shape[0]):
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
def im2col_backward(dy, w3, cols, g, n_blocks, weight_parts, bias_parts, dx):
    """For ``dy`` (N*G, F/G, P) and the forward's ``cols`` (N*G, K, P) (see Groups): ``weight_parts[b, j]``
    (K, F/G) = the TRANSPOSED weight gradient of group j over block b's samples, ``bias_parts[b, j]``
    (F/G,) their bias gradient, ``dx`` (N*G, C/G, H, W) = the input gradient; each skipped when empty."""
    S, F, P = dy.shape
    G, K = w3.shape[0], w3.shape[2]
    want_weight, want_bias, want_input = weight_parts.size > 0, bias_parts.size > 0, dx.size > 0
    pointwise = _is_pointwise(g)
    for b in prange(n_blocks):
        tmp = np.empty((K, F) if want_weight else (0, 0), dtype=w3.dtype)
        dcols = np.empty((K, P) if want_input and not pointwise else (0, 0), dtype=w3.dtype)
        if want_weight:
            weight_parts[b] = 0
        if want_bias:
            bias_parts[b] = 0
        lo, hi = _block(b, n_blocks, S)
        for s in range(lo, hi):
            j = s % G
            if want_weight:
                _add_weight_grad(cols[s], dy[s], tmp, weight_parts[b, j])
            if want_bias:
                _add_row_sums(dy[s], bias_parts[b, j])
            if want_input and pointwise:  # col2im is the identity
                np.dot(w3[j].T, dy[s], dx[s].reshape(K, P))
            elif want_input:
                np.dot(w3[j].T, dy[s], dcols)
                _col2im_sample(dcols, s, g, dx)


@jit
def add_block_parts(weight_parts, bias_parts, weight_grad, bias_grad):
    """``weight_grad`` (G, F/G, K) += the sum over blocks of :func:`im2col_backward`'s ``weight_parts``
    (B, G, K, F/G), transposed, and ``bias_grad`` (G, F/G) += the sum of its ``bias_parts`` (B, G, F/G);
    each skipped when empty. The blocks are added in order, as NumPy's ``sum(axis=0)`` adds them (the
    same results), in one call instead of six NumPy operations (4.5 us a backward on LeNet's conv1 at
    batch 1, measured with timeit). Plain loops: written with array expressions it compiled in 3.5 s,
    on the critical path of a cold warm-up."""
    B = weight_parts.shape[0]
    for j in range(weight_parts.shape[1]):
        for k in range(weight_parts.shape[2]):
            for f in range(weight_parts.shape[3]):
                s = weight_parts[0, j, k, f]
                for b in range(1, B):
                    s += weight_parts[b, j, k, f]
                weight_grad[j, f, k] += s
    for j in range(bias_parts.shape[1]):
        for f in range(bias_parts.shape[2]):
            s = bias_parts[0, j, f]
            for b in range(1, bias_parts.shape[0]):
                s += bias_parts[b, j, f]
            bias_grad[j, f] += s
