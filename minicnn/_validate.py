"""Argument checks shared by the layers. Each error names the argument and what was expected."""
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
    if not _is_int(value):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


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


def grad_array(name, dy, expected_shape, dtype):
    """The gradient ``dy`` of a layer's output: a float array of exactly ``expected_shape``."""
    dy = float_array(name, dy, dtype)
    if dy.shape != tuple(expected_shape):
        raise ValueError(f"{name} must have the output's shape {tuple(expected_shape)}, got {dy.shape}")
    return dy


def conv_output_size(size, kernel, stride, padding, dilation=1):
    """Output length along one axis (PyTorch's formula, floor mode)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def real_number(name, value, minimum=None, maximum=None, strict_minimum=False):
    """``value`` as a finite float (not a bool), optionally bounded: ``minimum <= value`` (``<`` with
    ``strict_minimum``) and ``value <= maximum``."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not np.isfinite(value):
        raise TypeError(f"{name} must be a finite real number, got {value!r}")
    value = float(value)
    if minimum is not None and (value <= minimum if strict_minimum else value < minimum):
        raise ValueError(f"{name} must be {'>' if strict_minimum else '>='} {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value!r}")
    return value


def choice(name, value, options):
    """``value`` checked to be one of ``options`` (strings)."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(repr(o) for o in options)}, got {value!r}")
    return value


def dim_arg(name, dim, ndim):
    """An axis index in ``[-ndim, ndim)`` as a non-negative int."""
    if not _is_int(dim):
        raise TypeError(f"{name} must be an int, got {dim!r}")
    if not -ndim <= dim < max(ndim, 1):
        raise ValueError(f"{name} must be in [{-ndim}, {ndim - 1}] for a {ndim}-D input, got {dim}")
    return int(dim) % max(ndim, 1)


def class_indices(name, target, expected_shape, num_classes, ignore_index=None):
    """``target`` as a C-contiguous int64 array of ``expected_shape`` with values in ``[0, num_classes)``
    (``ignore_index`` allowed too)."""
    if not isinstance(target, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of class indices, got {type(target).__name__}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array of class indices, got dtype {target.dtype}")
    if target.shape != tuple(expected_shape):
        raise ValueError(f"{name} must have shape {tuple(expected_shape)}, got {target.shape}")
    target = np.ascontiguousarray(target, dtype=np.int64)
    valid = target if ignore_index is None else target[target != ignore_index]
    if valid.size and (valid.min() < 0 or valid.max() >= num_classes):
        bad = valid.min() if valid.min() < 0 else valid.max()
        extra = "" if ignore_index is None else f" (or ignore_index={ignore_index})"
        raise ValueError(f"{name} must hold class indices in [0, {num_classes}){extra}, got {bad}")
    return target


def same_shape(name, a, shape):
    """Raise unless ``a.shape == shape`` (``a`` is an array already validated)."""
    if a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {a.shape}")
    return a


def integer(name, value):
    """``value`` as an int (not a bool), any sign."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an int, got {value!r}")
    return int(value)
