"""Elementwise sum: the add of residual connections and of branch gradients (its backward passes ``dy``
to both operands unchanged, so there is no ``add_backward``)."""
import numpy as np

from ..kernels.add import add_flat, add_flat_parallel
from .activation import run_elementwise


def add(a, b, out=None):
    """``a + b`` for two arrays of the same shape, into ``out`` (a new array when None; ``out`` may be
    ``a`` or ``b`` to add in place). Same-dtype float32/float64 C-contiguous operands run in a compiled
    kernel; anything else (mixed dtypes, views) falls back to ``numpy.add`` with NumPy's type promotion.
    Raises ``ValueError`` naming both shapes when they differ."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"cannot add arrays of shapes {a.shape} and {b.shape}: the shapes must be equal")
    fast = (a.dtype == b.dtype and a.dtype in (np.float32, np.float64) and a.flags.c_contiguous
            and b.flags.c_contiguous)
    if out is None:
        out = np.empty(a.shape, np.result_type(a, b))
    fast = fast and out.dtype == a.dtype and out.shape == a.shape and out.flags.c_contiguous
    if not fast:
        return np.add(a, b, out=out)
    run_elementwise(add_flat, add_flat_parallel, a, b, out)
    return out
