"""The register-tiled micro-kernel against a textbook loop, and its NumPy stand-in."""
import numba
import numpy as np
import pytest

from minicnn.kernels.tile import _tile_numpy, tile_4x16


@numba.njit
def call_tile(a, base, off, b, c):  # an intrinsic runs only inside compiled code
    tile_4x16(a, base, off, b, c)


def tile_loops(a, base, off, b):
    """c[r, j] = sum over t of a[base[r] + off[t]] * b[t, j], in float64."""
    c = np.zeros((len(base), b.shape[1]))
    for r in range(len(base)):
        for j in range(b.shape[1]):
            for t in range(len(off)):
                c[r, j] += float(a[base[r] + off[t]]) * float(b[t, j])
    return c


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T", [1, 3, 150])
def test_tile_matches_loops(dtype, T):
    rng = np.random.default_rng(T)
    a = rng.standard_normal(500).astype(dtype)
    base = np.array([0, 7, 7, 230], np.int64)  # repeated rows are allowed (a partial last block)
    off = rng.integers(0, 260, T).astype(np.int64)
    b = rng.standard_normal((T, 16)).astype(dtype)
    c = np.full((4, 16), np.nan, dtype)  # every entry is written
    call_tile(a, base, off, b, c)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c, tile_loops(a, base, off, b), rtol=tol, atol=tol)
    c2 = np.empty_like(c)
    _tile_numpy(a, base, off, b, c2)
    np.testing.assert_allclose(c2, c, rtol=tol, atol=tol)
