"""Helpers shared by the kernel files."""
import numpy as np

from .._config import jit, jit_reassoc

# Kernels index with unsigned integers (``_u(i)``) where the index is known to be >= 0: Numba then
# skips its negative-index wraparound test on every access, which otherwise blocks vectorisation
# (measured: im2col 3x faster).
_u = np.uint64


def unwanted(ndim, dtype):
    """An empty array of ``ndim`` dimensions: a kernel output that is not wanted (see ``minicnn.kernels``).
    One per (ndim, dtype), shared: it holds nothing, so nothing can be written into it (a new one cost
    0.25 us, several a step)."""
    key = (ndim, dtype)
    empty = _UNWANTED.get(key)
    if empty is None:
        empty = _UNWANTED[key] = np.empty((0,) * ndim, dtype)
    return empty


_UNWANTED = {}


@jit
def _block(b, n_blocks, N):
    """Rows ``[lo, hi)`` of block ``b`` when ``N`` rows are split into ``n_blocks`` near-equal blocks."""
    return b * N // n_blocks, (b + 1) * N // n_blocks


@jit
def _inside(off, stride, n_out, size):
    """The output positions ``[lo, hi)`` whose input position ``o * stride + off`` is in ``[0, size)``."""
    lo = 0 if off >= 0 else min(n_out, (-off + stride - 1) // stride)
    hi = min(n_out, max(lo, (size - 1 - off) // stride + 1))
    return lo, hi


@jit
def _zeros(n, like):
    """np.zeros(n) of ``like``'s dtype, allocated serially: in a parallel kernel np.zeros would be a
    parallel region of its own (threads woken and joined once more)."""
    return np.zeros(n, like.dtype)


@jit
def _steps(n, step):
    """``[0, step, 2*step, ...]`` (n,), allocated serially (see _zeros)."""
    return np.arange(n) * step


@jit
def _pad_sample(x, n, ph, pw, xpad):
    """``xpad[n]`` (C, H + 2*ph, W + 2*pw) = ``x[n]`` (C, H, W) with a zero border."""
    C, H, W = x.shape[1:]
    if ph or pw:
        xpad[n] = 0
    for c in range(C):
        for h in range(H):
            src = x[n, c, h]
            dst = xpad[n, c, h + ph]
            for w in range(W):
                dst[_u(w + pw)] = src[_u(w)]


@jit
def _lay_on_width(plane, Wp, dst, start):
    """``dst[start + oh*Wp + ow] = plane[oh, ow]`` for ``plane`` (OH, OW): a plane laid on rows of the
    padded width Wp in the flat ``dst``, whose gaps are left as they are."""
    OH, OW = plane.shape
    for oh in range(OH):
        src = plane[oh]
        row0 = start + oh * Wp
        for ow in range(OW):
            dst[_u(row0 + ow)] = src[_u(ow)]


@jit_reassoc
def _add_row_sums(m, out):
    """``out[i] += sum of m[i]`` for ``m`` (R, L); reassociation lets the sums vectorise (3.5x faster on
    LeNet conv2's dy than one add after the other)."""
    for i in range(m.shape[0]):
        row = m[i]
        s = 0.0
        for j in range(m.shape[1]):
            s += row[_u(j)]
        out[i] += s
