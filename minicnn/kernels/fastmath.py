"""``exp``, ``expm1``, ``tanh``, ``erfc`` and the logistic sigmoid of one value, for the activation kernels.

Why: without Intel's SVML (not available to this Numba), ``np.exp`` / ``np.tanh`` / ``math.erfc`` in a
kernel are scalar calls into libm and a loop containing them is not vectorised (measured this session,
one thread, process time, shared machine, 4 M float32 values: a loop of ``np.exp`` 10 ms, of ``2 * x + 1``
0.8 ms, of this ``exp`` 1.8 ms). The float32 versions here are plain arithmetic and selects (no calls, no
branches), inlined into the caller (``jit_inline``), so LLVM vectorises the loops around them (16
float32 lanes with AVX-512):

- ``exp``: ``x = k ln2 + r`` (Cody-Waite: ``ln2`` split in two so ``k * ln2_hi`` is exact),
  ``exp(r)`` by its Taylor polynomial of degree 7 on ``|r| <= ln2 / 2`` (truncation < 3e-9 relative),
  times ``2^(k // 2)`` then ``2^(k - k // 2)``, each built in the exponent bits (both normal numbers for
  every ``k`` of a clamped ``x`` in [-104, 89], so results underflow to 0 and overflow to inf as
  ``exp`` does); within 2 float32 ulp (tested).
- ``expm1``: its Taylor polynomial of degree 8 for ``|x| < 0.5`` (no cancellation near 0), else ``exp(x) - 1``.
- ``tanh``: an odd Taylor polynomial for ``|x| < 0.25``, else ``1 - 2 / (exp(2|x|) + 1)`` with x's
  sign (exactly +-1 once ``exp`` overflows).
- ``erfc``: Numerical Recipes' ``erfcc`` (Chebyshev fit, relative error < 1.2e-7 everywhere) over
  ``exp``; ``erfc(-z) = 2 - erfc(z)``. Relative error < 2e-6 for ``|x| < 3`` and < 1e-5 wherever the
  result is a normal float32 (tested): the float32 exponent ``-z^2`` loses digits as ``z`` grows.
  (PyTorch's float32 GELU, ``1 + erf(x)``, cancels in the left tail instead: 0 at x = -10.)
- ``sigmoid``: ``1 / (1 + exp(-x))``, exact 0 and 1 at the extremes (``exp`` gives inf and 0).

Caching: the kernels that call these functions inline them, and Numba's cache checks only the
caller's source file, so after editing this file clear the cache (``__pycache__/*.nbi``, ``*.nbc``)
of ``elementwise.py``.

NaN stays NaN. float64 values (and every value when the JIT is disabled) go to NumPy's / libm's
functions, so float64, used for gradient checks, keeps full precision: the choice is made per type at
compile time (``numba.extending.overload``).
"""
import math

import numpy as np
from numba import types
from numba.extending import overload

from .._config import JIT_OPTIONS, jit_inline

_f = np.float32
_INV_LN2 = _f(1.4426950408889634)
_LN2_HI = _f(0.693359375)  # 8 significant bits: k * _LN2_HI is exact for |k| < 2^16
_LN2_LO = _f(-2.12194440e-4)
_LO, _HI = _f(-104.0), _f(89.0)
_QUARTER, _HALF, _ONE, _TWO = _f(0.25), _f(0.5), _f(1.0), _f(2.0)
_EXP_C = tuple(_f(1.0 / math.factorial(n)) for n in range(8))  # 1, 1, 1/2, ..., 1/7!
_EXPM1_C = tuple(_f(1.0 / math.factorial(n)) for n in range(2, 9))  # 1/2!, ..., 1/8!
_TANH_C = (_f(-1.0 / 3), _f(2.0 / 15), _f(-17.0 / 315), _f(62.0 / 2835))  # x^3, x^5, x^7, x^9
_ERFC_C = tuple(_f(c) for c in (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807,
                                 -1.13520398, 1.48851587, -0.82215223, 0.17087277))


# -- the Python functions (used as such when the JIT is disabled, and for float64) ------------------
def exp(v):
    return np.exp(v)


def expm1(v):
    return np.expm1(v)


def tanh(v):
    return np.tanh(v)


def erfc(v):
    return math.erfc(v)


def sigmoid(v):
    """Logistic function, without overflow for any input."""
    if v >= 0:
        return 1 / (1 + np.exp(-v))
    e = np.exp(v)
    return e / (1 + e)


# -- float32: arithmetic and selects only ------------------------------------------------------------
_I1, _I127, _I23 = np.int32(1), np.int32(127), np.int32(23)


@jit_inline
def _ldexp(p, k):
    """``p * 2^k`` for an int32 ``k`` in [-252, 254]: two multiplications by normal powers of two (``2^k``
    itself may not be a float32, e.g. ``2^128``), so only the result overflows or underflows."""
    h = k >> _I1
    a = np.int32((h + _I127) << _I23).view(np.float32)
    b = np.int32((k - h + _I127) << _I23).view(np.float32)
    return (p * a) * b


@jit_inline
def _exp32(v):
    x = min(max(v, _LO), _HI)
    k = np.floor(x * _INV_LN2 + _HALF)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    c = _EXP_C
    p = c[0] + r * (c[1] + r * (c[2] + r * (c[3] + r * (c[4] + r * (c[5] + r * (c[6] + r * c[7]))))))
    y = _ldexp(p, np.int32(k))
    return v if v != v else y  # NaN stays NaN


@jit_inline
def _expm1_32(v):
    c = _EXPM1_C
    small = v + v * v * (c[0] + v * (c[1] + v * (c[2] + v * (c[3] + v * (c[4] + v * (c[5] + v * c[6]))))))
    return small if abs(v) < _HALF else _exp32(v) - _ONE


@jit_inline
def _tanh32(v):
    a = abs(v)
    s = v * v
    c = _TANH_C
    small = v + v * s * (c[0] + s * (c[1] + s * (c[2] + s * c[3])))
    big = _ONE - _TWO / (_exp32(a + a) + _ONE)
    big = big if v >= 0 else -big
    return small if a < _QUARTER else (v if v != v else big)


@jit_inline
def _erfc32(v):
    z = abs(v)
    t = _ONE / (_ONE + _HALF * z)
    c = _ERFC_C
    poly = c[0] + t * (c[1] + t * (c[2] + t * (c[3] + t * (c[4] + t * (c[5] + t * (c[6] + t * (c[7] + t * (
        c[8] + t * c[9]))))))))
    r = t * _exp32(poly - z * z)
    return r if v >= 0 else (v if v != v else _TWO - r)


@jit_inline
def _sigmoid32(v):
    return _ONE / (_ONE + _exp32(-v))


def _is_float32(v):
    return isinstance(v, types.Float) and v.bitwidth == 32


def _register(python_fn, fast32, fallback):
    """Compile calls of ``python_fn`` inside kernels as ``fast32`` for a float32 argument, else as
    ``fallback`` (both inlined)."""
    @overload(python_fn, jit_options=JIT_OPTIONS, inline="always")
    def _impl(v):
        return (lambda v: fast32(v)) if _is_float32(v) else fallback


_sigmoid64 = jit_inline(sigmoid)  # the Python definition above, compiled (float64)

_register(exp, _exp32, lambda v: np.exp(v))
_register(expm1, _expm1_32, lambda v: np.expm1(v))
_register(tanh, _tanh32, lambda v: np.tanh(v))
_register(erfc, _erfc32, lambda v: math.erfc(v))
_register(sigmoid, _sigmoid32, lambda v: _sigmoid64(v))
