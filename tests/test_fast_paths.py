"""The per-call fast paths (validation, thread counts, containers, im2col's gradient sum) give exactly what
the general paths give: the same arrays, the same errors, the same state."""
import threading

import numba
import numpy as np
import pytest

from minicnn import _config
from minicnn import _validate as V
from minicnn import nn
from minicnn.kernels.common import unwanted
from minicnn.kernels.conv_im2col import add_block_parts


# -- _validate ------------------------------------------------------------------------------------
def test_float_input_and_float_array_return_exact_arrays_and_cast_the_rest():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert V.float_input("x", x) is x and V.float_input("x", x, 2) is x
    assert V.float_array("x", x, np.float32) is x and V.float_array("x", x, np.dtype(np.float32), 2) is x
    for other in (x.T, x.astype(">f4"), x.astype(np.float16)):  # non-contiguous, big-endian, half
        y = V.float_input("x", other)
        assert y.dtype == np.float32 and y.flags.c_contiguous and y is not other
        np.testing.assert_array_equal(y, np.asarray(other, np.float32))
    z = V.float_array("x", x, np.float64)
    assert z.dtype == np.float64 and z is not x

    class Sub(np.ndarray):
        pass

    s = x.view(Sub)
    assert V.float_input("x", s) is s  # a subclass takes the general path, which keeps it
    with pytest.raises(ValueError, match="x must be 3-D"):
        V.float_input("x", x, 3, "(N, C, L)")
    with pytest.raises(TypeError, match="x must be a floating-point array"):
        V.float_input("x", np.arange(3))
    with pytest.raises(TypeError, match="x must be a numpy.ndarray"):
        V.float_array("x", [1.0], np.float32)


def test_grad_array_grad_request_and_out_array_check_as_before():
    dy = np.ones((2, 3), np.float32)
    assert V.grad_array("dy", dy, (2, 3), dy.dtype) is dy
    assert V.grad_array("dy", dy, [2, 3], np.float32) is dy  # a list shape and a scalar type: general path
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(3, 2\)"):
        V.grad_array("dy", dy, (3, 2), dy.dtype)
    g = np.zeros((2, 3), np.float32)
    assert V.grad_request("dw", g, (2, 3), g.dtype) is g and V.out_array("out", g, (2, 3), g.dtype) is g
    assert V.grad_request("dw", False, (2, 3), g.dtype) is None
    assert V.grad_request("dw", True, (2, 3), g.dtype).shape == (2, 3)
    frozen = g.copy()
    frozen.flags.writeable = False
    for bad in (frozen, g.T.copy().T, g.astype(np.float64)):
        with pytest.raises(ValueError, match="dw must be a writable C-contiguous"):
            V.grad_request("dw", bad, (2, 3), g.dtype)


def test_real_and_boolean_fast_paths_keep_the_rules():
    assert V.real("lr", 0.5, 0.0, low_open=True) == 0.5
    assert V.real("s", 0.0, 0.0, 1.0) == 0.0 and V.real("s", 1.0, 0.0, 1.0) == 1.0
    assert type(V.real("x", np.float64(2.0))) is float
    with pytest.raises(ValueError, match="v must be finite"):
        V.real("v", float("inf"), 0.0, 1.0)
    with pytest.raises(ValueError, match="v must be finite"):
        V.real("v", float("nan"))
    with pytest.raises(ValueError, match=r"v must be > 0, got 0.0"):
        V.real("v", 0.0, 0.0, low_open=True)
    with pytest.raises(ValueError, match=r"v must be in \[0, 1\], got 1.5"):
        V.real("v", 1.5, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"v must be < 1"):
        V.real("v", 1.0, high=1.0, high_open=True)
    assert V.boolean("b", True) is True and V.boolean("b", np.bool_(False)) is False
    with pytest.raises(TypeError, match="b must be a bool"):
        V.boolean("b", 1)


def test_class_indices_tell_whether_an_entry_is_ignored():
    t, ignored = V.class_indices("target", np.array([0, 2, 1]), (3,), 3, -100)
    assert t.dtype == np.int64 and not ignored
    t, ignored = V.class_indices("target", [0, -100, 1], (3,), 3, -100)
    assert ignored and t.tolist() == [0, -100, 1]
    assert V.class_indices("target", np.array([0, 2]), (2,), 3, 2)[1]  # an ignore_index inside [0, C)
    assert not V.class_indices("target", np.array([0, 1]), (2,), 3, 2)[1]
    assert not V.class_indices("target", np.zeros(0, np.int64), (0,), 3, -100)[1]
    with pytest.raises(ValueError, match=r"target must be class indices in \[0, 3\) \(or ignore_index=-100\), got 3"):
        V.class_indices("target", np.array([-100, 3]), (2,), 3, -100)
    with pytest.raises(ValueError, match=r"target must be class indices in \[0, 3\), got -1"):
        V.class_index_array("target", np.array([-1, 0]), (2,), 3)


# -- thread counts ----------------------------------------------------------------------------------
def test_get_num_threads_follows_numba_in_every_thread():
    before = numba.get_num_threads()
    try:
        for n in (1, numba.config.NUMBA_NUM_THREADS):
            _config.set_num_threads(n)
            assert _config.get_num_threads() == numba.get_num_threads() == n
        seen = []

        def worker():
            seen.append((_config.get_num_threads(), numba.get_num_threads()))
            numba.set_num_threads(1)
            seen.append((_config.get_num_threads(), numba.get_num_threads()))

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        assert seen[0][0] == seen[0][1] and seen[1] == (1, 1)
    finally:
        numba.set_num_threads(before)


def test_kernel_blas_is_reset_to_one_thread():
    _config.kernel_blas_single_threaded()
    if not _config._kernel_blas:
        pytest.skip("scipy's BLAS is not a library of its own here")
    for lib, read in _config._kernel_blas:
        lib.set_num_threads(2)
        assert read() == lib.num_threads
        _config.kernel_blas_single_threaded()
        assert read() == lib.num_threads == 1


# -- containers -------------------------------------------------------------------------------------
class _Scale(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.k = k

    def forward(self, x):
        return x * self.k

    def backward(self, dy):
        return dy * self.k


def test_sequential_sees_replaced_and_deleted_children():
    s = nn.Sequential(_Scale(2.0), _Scale(3.0))
    x = np.ones(2)
    assert s(x).tolist() == [6.0, 6.0] and s.backward(x).tolist() == [6.0, 6.0]
    s.__setattr__("1", _Scale(5.0))  # replaced: the next call runs the new module
    assert s(x).tolist() == [10.0, 10.0] and s.backward(x).tolist() == [10.0, 10.0]
    s.extra = _Scale(7.0)  # a new child, run last
    assert s(x).tolist() == [70.0, 70.0] and len(s) == 3
    del s.extra
    s.__delattr__("1")
    assert s(x).tolist() == [2.0, 2.0] and len(s) == 1 and s.backward(x).tolist() == [2.0, 2.0]
    s.__setattr__("0", None)  # a module replaced by something else
    assert len(s) == 0 and s(x) is x


# -- kernels ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("B, G, K, Fg", [(1, 1, 25, 6), (2, 1, 150, 16), (3, 2, 18, 4)])
def test_add_block_parts_adds_the_blocks_as_numpy_sums_them(B, G, K, Fg, dtype):
    rng = np.random.default_rng(0)
    parts = rng.standard_normal((B, G, K, Fg)).astype(dtype)
    bias_parts = rng.standard_normal((B, G, Fg)).astype(dtype)
    weight_grad = rng.standard_normal((G * Fg, K)).astype(dtype)
    bias_grad = rng.standard_normal(G * Fg).astype(dtype)
    expected_w = weight_grad + parts.sum(axis=0).transpose(0, 2, 1).reshape(weight_grad.shape)
    expected_b = bias_grad + bias_parts.sum(axis=0).reshape(-1)
    add_block_parts(parts, bias_parts, weight_grad.reshape(G, Fg, K), bias_grad.reshape(G, Fg))
    np.testing.assert_array_equal(weight_grad, expected_w)  # the same additions in the same order
    np.testing.assert_array_equal(bias_grad, expected_b)
    before = weight_grad.copy()
    add_block_parts(unwanted(4, dtype), bias_parts, weight_grad.reshape(G, Fg, K), bias_grad.reshape(G, Fg))
    np.testing.assert_array_equal(weight_grad, before)  # an empty part: that gradient is skipped


def test_unwanted_arrays_are_empty_and_shared():
    a = unwanted(3, np.float32)
    assert a.shape == (0, 0, 0) and a.dtype == np.float32 and unwanted(3, np.float32) is a
    assert unwanted(3, np.float64).dtype == np.float64 and unwanted(1, np.float32).shape == (0,)
