"""Every argument check of minicnn, with one contract (functional, layers, optimizers, schedulers, gradcheck).

- Errors: ``TypeError`` for a wrong type or dtype, ``ValueError`` for a wrong shape or value (nan and
  inf included), each naming the argument and what was expected: ``"p must be in [0, 1], got 1.5"``.
- Numbers: an int is a ``numbers.Integral`` that is not a bool; a real is a ``numbers.Real`` that is
  not a bool, finite, returned as a Python float (:func:`integer`, :func:`real`, :func:`boolean`).
- Arrays: float32 and float64 are computed in; another float dtype is cast (4 bytes or fewer to float32,
  longer to float64: :func:`float_input`), or to a given dtype (a layer's: :func:`float_array`);
  integer, bool and complex arrays are refused. Arrays written in place (``out``, gradients to add
  into, running statistics) are never cast: they must already fit.
"""
import numbers

import numpy as np


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def pair(name, value, minimum=1):
    """``value`` as an ``(h, w)`` pair of ints >= ``minimum``; accepts an int or a pair of ints."""
    if _is_int(value):
        value = (value, value)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value):
        value = tuple(value)
    else:
        raise TypeError(f"{name} must be an int or a pair (h, w) of ints, got {value!r}")
    if value[0] < minimum or value[1] < minimum:
        raise ValueError(f"{name} must be >= {minimum} in both dimensions, got {value!r}")
    return int(value[0]), int(value[1])


def positive_int(name, value, minimum=1):
    """``value`` as an int >= ``minimum`` (see :func:`integer`)."""
    return integer(name, value, minimum)


def float_dtype(name, dtype):
    """``dtype`` as ``np.float32`` or ``np.float64``."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be np.float32 or np.float64, got {dtype!r}") from None
    if dt not in (np.float32, np.float64):
        raise TypeError(f"{name} must be np.float32 or np.float64, got {dt}")
    return dt


def float_array(name, x, dtype, ndim=None, shape_hint=""):
    """``x`` as a C-contiguous array of ``dtype``; a float array of another precision is cast.

    Raises ``TypeError`` for anything that is not a real floating-point array and ``ValueError`` for
    the wrong number of dimensions (``shape_hint`` describes the expected shape, e.g. ``"(N, C, H, W)"``).
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{name} must be a floating-point array (float32 or float64), got dtype {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        hint = f" {shape_hint}" if shape_hint else ""
        raise ValueError(f"{name} must be {ndim}-D{hint}, got shape {x.shape}")
    if x.dtype != dtype or not x.flags.c_contiguous:
        x = np.ascontiguousarray(x, dtype=dtype)
    return x


def float_input(name, x, ndim=None, shape_hint=""):
    """``x`` as a C-contiguous float array kept in its precision: float64 (and longer floats) as
    float64, float32 (and shorter, e.g. float16) as float32. Errors as :func:`float_array`."""
    dtype = np.float32 if isinstance(x, np.ndarray) and x.dtype.itemsize <= 4 else np.float64
    return float_array(name, x, dtype, ndim=ndim, shape_hint=shape_hint)


def out_array(name, out, shape, dtype):
    """``out`` checked as a writable C-contiguous array of ``shape`` and ``dtype``; a new array if None."""
    shape = tuple(shape)
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray or None, got {type(out).__name__}")
    if out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"{name} must be a writable C-contiguous {np.dtype(dtype)} array of shape {shape}, "
                         f"got {out.dtype} array of shape {out.shape}")
    return out


def input_shape_arg(input_shape):
    """``input_shape`` as a tuple of 4 positive ints (N, C, H, W)."""
    if not (isinstance(input_shape, (tuple, list)) and len(input_shape) == 4
            and all(_is_int(s) and s >= 1 for s in input_shape)):
        raise ValueError(f"input_shape must be 4 positive ints (N, C, H, W), got {input_shape!r}")
    return tuple(int(s) for s in input_shape)


def shape_arg(name, shape):
    """``shape`` as a non-empty tuple of positive ints (any number of dimensions)."""
    if not (isinstance(shape, (tuple, list)) and len(shape) >= 1 and all(_is_int(s) and s >= 1 for s in shape)):
        raise ValueError(f"{name} must be a tuple of positive ints, e.g. (64, 1, 28, 28), got {shape!r}")
    return tuple(int(s) for s in shape)


def grad_array(name, dy, expected_shape, dtype):
    """The gradient ``dy`` of a layer's output: a float array of exactly ``expected_shape``."""
    dy = float_array(name, dy, dtype)
    if dy.shape != tuple(expected_shape):
        raise ValueError(f"{name} must have the output's shape {tuple(expected_shape)}, got {dy.shape}")
    return dy


def conv_output_size(size, kernel, stride, padding, dilation=1):
    """Output length along one axis (PyTorch's formula, floor mode)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def grad_request(name, value, shape, dtype):
    """A backward's optional parameter gradient (the convention of ``minicnn.functional``): for
    ``True`` a new zeroed array of ``shape`` and ``dtype`` to add into, for ``False`` None (not
    computed), for an ndarray that array (checked: writable, C-contiguous, ``shape``, ``dtype``), into
    which the gradient is added in place."""
    if value is True:
        return np.zeros(shape, dtype)
    if value is False or value is None:
        return None
    if isinstance(value, np.ndarray):
        return out_array(name, value, shape, dtype)
    raise TypeError(f"{name} must be True, False or a numpy.ndarray to add the gradient into, got {value!r}")


def conv_geometry(input_shape, kernel_size, stride, padding, dilation):
    """Validated ``(kh, kw, sh, sw, ph, pw, dh, dw, OH, OW)`` (the kernels' geometry tuple, see
    ``minicnn.kernels``) for a window operation on an input of shape (N, C, H, W)."""
    kh, kw = pair("kernel_size", kernel_size)
    sh, sw = pair("stride", stride)
    ph, pw = pair("padding", padding, minimum=0)
    dh, dw = pair("dilation", dilation)
    H, W = input_shape[2], input_shape[3]
    if dh * (kh - 1) + 1 > H + 2 * ph or dw * (kw - 1) + 1 > W + 2 * pw:
        raise ValueError(
            f"kernel_size {(kh, kw)} with dilation {(dh, dw)} spans "
            f"{(dh * (kh - 1) + 1, dw * (kw - 1) + 1)} pixels, larger than the padded input "
            f"{(H + 2 * ph, W + 2 * pw)} (input {(H, W)}, padding {(ph, pw)})")
    OH = conv_output_size(H, kh, sh, ph, dh)
    OW = conv_output_size(W, kw, sw, pw, dw)
    return kh, kw, sh, sw, ph, pw, dh, dw, OH, OW


def choice(name, value, options):
    """``value`` if it is one of ``options`` (strings), else a ValueError listing them."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")
    return value
# -- scalars: the one reading of ints, reals and bools (bools are never numbers here) -----------------
def integer(name, value, minimum=None):
    """``value`` as a Python int (``TypeError`` unless an int, bools excluded), ``>= minimum`` if given."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _bound(v):
    return f"{v:g}" if isinstance(v, float) else str(v)


def real(name, value, low=None, high=None, low_open=False, high_open=False):
    """``value`` as a finite Python float, optionally in ``[low, high]`` (``low_open`` / ``high_open``
    exclude the bound). ``TypeError`` unless a real number (bools excluded); ``ValueError`` for nan,
    inf, a value out of range, or an array of more than 0 dimensions (a 0-d array is a scalar)."""
    if isinstance(value, np.ndarray):
        if value.ndim != 0:
            raise ValueError(f"{name} must be a real scalar, got an array of shape {value.shape}")
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number (int or float), got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    below = low is not None and (value < low or (low_open and value == low))
    above = high is not None and (value > high or (high_open and value == high))
    if below or above:
        if high is None:
            expected = f"{'>' if low_open else '>='} {_bound(low)}"
        elif low is None:
            expected = f"{'<' if high_open else '<='} {_bound(high)}"
        else:
            expected = (f"in {'(' if low_open else '['}{_bound(low)}, {_bound(high)}"
                        f"{')' if high_open else ']'}")
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return value


def boolean(name, value):
    """``value`` as a Python bool: ``TypeError`` unless a bool (``numpy.bool_`` included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


# -- arrays ---------------------------------------------------------------------------------------
def at_least_ndim(name, x, ndim, shape_hint):
    """``ValueError`` unless array ``x`` has at least ``ndim`` dimensions (``shape_hint``, e.g. "(N, C, ...)")."""
    if x.ndim < ndim:
        raise ValueError(f"{name} must be {shape_hint} with at least {ndim} dimensions, got shape {x.shape}")


def axis_size(name, x, axis, expected, what):
    """``ValueError`` unless ``x.shape[axis] == expected``; ``what`` names the axis, e.g. ``"channels"``."""
    if x.shape[axis] != expected:
        raise ValueError(f"expected {expected} {what}, got {name} of shape {x.shape}")


def vector(name, v, length, dtype, what=""):
    """``v`` as a C-contiguous 1-D float array of ``length`` entries, cast to ``dtype`` (``what`` says
    what the length is, e.g. ``"one per channel"``)."""
    v = float_array(name, v, dtype)
    if v.shape != (length,):
        hint = f" ({what})" if what else ""
        raise ValueError(f"{name} must have shape ({length},){hint}, got {v.shape}")
    return v


def buffer(name, v, length):
    """A per-channel state array updated in place (e.g. running statistics): a writable float
    ``numpy.ndarray`` of shape ``(length,)``, returned as is (any float dtype; it is never cast)."""
    if not isinstance(v, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(v).__name__}")
    if v.dtype.kind != "f":
        raise TypeError(f"{name} must be a floating-point array, got dtype {v.dtype}")
    if v.shape != (length,) or not v.flags.writeable:
        raise ValueError(f"{name} must be a writable array of shape ({length},), got shape {v.shape}"
                         f"{'' if v.flags.writeable else ' (read-only)'}")
    return v


def class_indices(name, labels, n, num_classes):
    """``labels`` as a C-contiguous int64 array of ``n`` class indices in ``[0, num_classes)``
    (any integer dtype; a list is converted)."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array of class indices, got dtype {labels.dtype}")
    if labels.ndim != 1:
        raise ValueError(f"{name} must be 1-D (N,), got shape {labels.shape}")
    if labels.shape[0] != n:
        raise ValueError(f"{name} must hold one class index per row: expected {n} labels, got {labels.shape[0]}")
    if n:
        low, high = labels.min(), labels.max()
        if low < 0 or high >= num_classes:
            bad = low if low < 0 else high
            raise ValueError(f"{name} must be class indices in [0, {num_classes}) for {num_classes} classes, "
                             f"got {bad}")
    return np.ascontiguousarray(labels, dtype=np.int64)


def inplace_array(name, a):
    """``a`` checked as a writeable C-contiguous numeric ndarray (for operations that work in place)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold numbers, got dtype {a.dtype}")
    if not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"{name} must be a writeable C-contiguous array (it is updated in place), got a "
                         f"{'read-only' if not a.flags.writeable else 'non-contiguous'} array")
    return a
