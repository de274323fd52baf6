"""The register-tiled micro-kernel against a textbook loop, and its NumPy stand-in."""
import numba
import numpy as np
import pytest

from minicnn.kernels.tile import MR, tile, tile_add, tile_add_numpy, tile_numpy


@numba.njit
def call_tile(a, abase, aoff, b, b0, boff, c, cbase, nr):  # an intrinsic runs only inside compiled code
    tile(a, abase, aoff, b, b0, boff, c, cbase, nr)


@numba.njit
def call_tile_add(a, abase, aoff, b, b0, boff, c, cbase, nr):
    tile_add(a, abase, aoff, b, b0, boff, c, cbase, nr)


def tile_loops(a, abase, aoff, b, b0, boff, c, cbase, nr, add):
    """c[cbase[r] + j] (+)= sum over t of a[abase[r] + aoff[t]] * b[b0 + boff[t] + j], in float64."""
    c = c.astype(np.float64)
    for r in range(MR):
        for j in range(nr):
            if not add:
                c[cbase[r] + j] = 0
            for t in range(len(aoff)):
                c[cbase[r] + j] += float(a[abase[r] + aoff[t]]) * float(b[b0 + boff[t] + j])
    return c


@pytest.mark.parametrize("add, tile_fn, numpy_tile", [(False, call_tile, tile_numpy),
                                                      (True, call_tile_add, tile_add_numpy)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T", [1, 3, 150])
@pytest.mark.parametrize("nr", [16, 32])
def test_tile_matches_loops(add, tile_fn, numpy_tile, dtype, T, nr):
    rng = np.random.default_rng(T)
    a = rng.standard_normal(500).astype(dtype)
    abase = np.array([0, 7, 7, 230, 3, 100], np.int64)  # repeated rows are allowed (a partial last block)
    aoff = rng.integers(0, 260, T).astype(np.int64)
    b0 = 5
    b = rng.standard_normal(600).astype(dtype)
    boff = rng.integers(-b0, 600 - b0 - nr, T).astype(np.int64)  # b rows anywhere, even before b0
    cbase = np.array([40, 0, 200, 17, 120, 80], np.int64) * (nr // 16)  # rows anywhere, not overlapping
    c = rng.standard_normal(260 * (nr // 16)).astype(dtype)
    expected = tile_loops(a, abase, aoff, b, b0, boff, c, cbase, nr, add)
    untouched = np.ones(c.size, bool)
    for r in cbase:
        untouched[r:r + nr] = False
    c_before = c.copy()
    tile_fn(a, abase, aoff, b, b0, boff, c, cbase, nr)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c, expected, rtol=tol, atol=tol)
    np.testing.assert_array_equal(c[untouched], c_before[untouched])
    c2 = c_before.copy()
    numpy_tile(a, abase, aoff, b, b0, boff, c2, cbase, nr)
    np.testing.assert_allclose(c2, c, rtol=tol, atol=tol)
