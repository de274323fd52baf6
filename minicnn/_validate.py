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
    # ``type(v) is int`` first: the abstract-class check alone made validation most of a small layer's
    # Python time (measured: a 2x6x4x4 Conv2d forward + backward took 54 us against 16 us before).
    return type(v) is int or (isinstance(v, numbers.Integral) and not isinstance(v, bool))


def pair(name, value, minimum=1):
    """``value`` as an ``(h, w)`` pair of ints >= ``minimum``; accepts an int or a pair of ints."""
    if type(value) is tuple and len(value) == 2 and type(value[0]) is int and type(value[1]) is int \
            and value[0] >= minimum and value[1] >= minimum:
        return value  # already a valid pair (what the layers pass on every call)
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


# The fast paths below (an exact ndarray already of the dtype asked for) compare dtypes by identity:
# NumPy's float32 / float64 dtypes are singletons for ordinary arrays (an equal dtype that is another
# object, e.g. non-native byte order, just takes the general path). A small layer's forward + backward
# makes about ten such checks; the general path cost 0.4 us each (measured with timeit).
_FLOAT32, _FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)
_AS_DTYPE = {np.float32: _FLOAT32, np.float64: _FLOAT64}  # a scalar type given for ``dtype``


def float_array(name, x, dtype, ndim=None, shape_hint=""):
    """``x`` as a C-contiguous array of ``dtype``; a float array of another precision is cast.

    Raises ``TypeError`` for anything that is not a real floating-point array and ``ValueError`` for
    the wrong number of dimensions (``shape_hint`` describes the expected shape, e.g. ``"(N, C, H, W)"``).
    """
    if type(x) is np.ndarray and (x.dtype is dtype or x.dtype is _AS_DTYPE.get(dtype)) \
            and (ndim is None or x.ndim == ndim) and x.flags.c_contiguous:
        return x  # the common case: already what is asked for (see _AS_DTYPE)
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
    if type(x) is np.ndarray and (x.dtype is _FLOAT32 or x.dtype is _FLOAT64) \
            and (ndim is None or x.ndim == ndim) and x.flags.c_contiguous:
        return x  # the common case, without float_array's general checks
    dtype = _FLOAT32 if isinstance(x, np.ndarray) and x.dtype.itemsize <= 4 else _FLOAT64
    return float_array(name, x, dtype, ndim=ndim, shape_hint=shape_hint)


def out_array(name, out, shape, dtype):
    """``out`` checked as a writable C-contiguous array of ``shape`` and ``dtype``; a new array if None."""
    if type(out) is np.ndarray and out.dtype is dtype and out.shape == shape:
        flags = out.flags
        if flags.c_contiguous and flags.writeable:
            return out  # the common case (a tuple shape, the dtype object itself: see _AS_DTYPE)
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
    if type(dy) is np.ndarray and dy.dtype is dtype and dy.shape == expected_shape and dy.flags.c_contiguous:
        return dy  # the common case (a tuple shape, the dtype object itself: see _AS_DTYPE)
    dy = float_array(name, dy, dtype)
    if dy.shape != tuple(expected_shape):
        raise ValueError(f"{name} must have the output's shape {tuple(expected_shape)}, got {dy.shape}")
    return dy


def conv_output_size(size, kernel, stride, padding, dilation=1, ceil_mode=False):
    """Output length along one axis, PyTorch's formula: ``(size + 2*padding - dilation*(kernel-1) - 1)
    / stride + 1``, rounded down, or up with ``ceil_mode`` (pooling), where as in PyTorch the last window
    must then start inside the input or the left padding (else it is dropped)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out


def grad_request(name, value, shape, dtype):
    """A backward's optional parameter gradient (the convention of ``minicnn.functional``): for
    ``True`` a new zeroed array of ``shape`` and ``dtype`` to add into, for ``False`` None (not
    computed), for an ndarray that array (checked: writable, C-contiguous, ``shape``, ``dtype``), into
    which the gradient is added in place."""
    if type(value) is np.ndarray and value.dtype is dtype and value.shape == shape:
        flags = value.flags
        if flags.c_contiguous and flags.writeable:
            return value  # the common case (a layer's Parameter.grad), as out_array's
    if value is True:
        return np.zeros(shape, dtype)
    if value is False or value is None:
        return None
    if isinstance(value, np.ndarray):
        return out_array(name, value, shape, dtype)
    raise TypeError(f"{name} must be True, False or a numpy.ndarray to add the gradient into, got {value!r}")


def conv_geometry(input_shape, kernel_size, stride, padding, dilation, ceil_mode=False):
    """Validated ``(kh, kw, sh, sw, ph, pw, dh, dw, OH, OW)`` (the kernels' geometry tuple, see
    ``minicnn.kernels``) for a window operation on an input of shape (N, C, H, W); ``ceil_mode`` rounds
    the output size up (pooling, see :func:`conv_output_size`). Valid answers are kept per argument
    tuple: a layer asks the same question on every call."""
    if not (_plain_int_args(kernel_size, stride, padding, dilation)
            and type(ceil_mode) is bool):  # (1.0 == 1: only exact ints and bools may share an answer)
        return _conv_geometry(input_shape, kernel_size, stride, padding, dilation, ceil_mode)
    key = (input_shape[2], input_shape[3], kernel_size, stride, padding, dilation, ceil_mode)
    g = _GEOMETRIES.get(key)
    if g is None:
        g = _remember(key, _conv_geometry(input_shape, kernel_size, stride, padding, dilation, ceil_mode))
    return g


def _plain_int_args(kernel_size, stride, padding, dilation):
    """Whether each of the four is an int or a pair of ints (exactly ``int``: no bools, floats or NumPy
    scalars); one call for the four (0.5 against 0.7 us for a call per argument, measured with timeit)."""
    for v in (kernel_size, stride, padding, dilation):
        if type(v) is tuple:
            if len(v) != 2 or type(v[0]) is not int or type(v[1]) is not int:
                return False
        elif type(v) is not int:
            return False
    return True


_GEOMETRIES = {}


def _remember(key, g):
    """Keep the valid geometry ``g`` under ``key`` (at most 1024 answers) and return it."""
    if len(_GEOMETRIES) >= 1024:
        _GEOMETRIES.clear()
    _GEOMETRIES[key] = g
    return g


def _conv_geometry(input_shape, kernel_size, stride, padding, dilation, ceil_mode):
    kh, kw = pair("kernel_size", kernel_size)
    sh, sw = pair("stride", stride)
    ph, pw = pair("padding", padding, minimum=0)
    dh, dw = pair("dilation", dilation)
    H, W = input_shape[2], input_shape[3]
    OH = conv_output_size(H, kh, sh, ph, dh, ceil_mode)
    OW = conv_output_size(W, kw, sw, pw, dw, ceil_mode)
    # Floor mode: the same as the kernel not fitting the padded input; ceil_mode also accepts, as
    # PyTorch, a kernel longer than the padded input by less than the stride (its window is clipped).
    if OH < 1 or OW < 1:
        raise ValueError(
            f"kernel_size {(kh, kw)} with dilation {(dh, dw)} spans "
            f"{(dh * (kh - 1) + 1, dw * (kw - 1) + 1)} pixels, larger than the padded input "
            f"{(H + 2 * ph, W + 2 * pw)} (input {(H, W)}, padding {(ph, pw)})")
    return kh, kw, sh, sw, ph, pw, dh, dw, OH, OW




# -- scalars: the one reading of ints, reals and bools (bools are never numbers here) -----------------
def integer(name, value, minimum=None):
    """``value`` as a Python int (``TypeError`` unless an int, bools excluded), ``>= minimum`` if given."""
    if type(value) is int and (minimum is None or value >= minimum):
        return value  # the common case, without the abstract-class check
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
    if type(value) is float and value - value == 0.0 \
            and (low is None or value > low or (value == low and not low_open)) \
            and (high is None or value < high or (value == high and not high_open)):
        return value  # the common case: a finite float in range (``inf - inf`` and nan are nan)
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


def callables(name, value, example):
    """``value`` (a list or tuple of callables) as a tuple; ``example`` shows one in the error."""
    if not isinstance(value, (list, tuple)) or not all(callable(v) for v in value):
        raise TypeError(f"{name} must be a list of callables (e.g. {example}), got {value!r}")
    return tuple(value)


def boolean(name, value):
    """``value`` as a Python bool: ``TypeError`` unless a bool (``numpy.bool_`` included)."""
    if value is True or value is False:
        return value
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


def choice(name, value, options):
    """``value`` checked to be one of ``options`` (strings)."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(repr(o) for o in options)}, got {value!r}")
    return value


def dim_arg(name, dim, ndim):
    """An axis index in ``[-ndim, ndim)`` (``[-1, 0]`` for 0-D) as a non-negative int."""
    if not _is_int(dim):
        raise TypeError(f"{name} must be an int, got {dim!r}")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise ValueError(f"{name} must be in [{-n}, {n - 1}] for a {ndim}-D input, got {dim}")
    return int(dim) % n


def class_index_array(name, target, expected_shape, num_classes, ignore_index=None):
    """``target`` (an integer array, or a list) as a C-contiguous int64 array of ``expected_shape`` with
    values in ``[0, num_classes)`` or equal to ``ignore_index`` (when given)."""
    return class_indices(name, target, expected_shape, num_classes, ignore_index)[0]


def class_indices(name, target, expected_shape, num_classes, ignore_index=None):
    """As :func:`class_index_array`, returning ``(target, ignored)``: ``ignored`` tells whether an
    entry equals ``ignore_index``."""
    if not isinstance(target, (np.ndarray, list, tuple)):
        raise TypeError(f"{name} must be a numpy.ndarray of class indices, got {type(target).__name__}")
    target = np.asarray(target)
    if target.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array of class indices, got dtype {target.dtype}")
    if target.shape != tuple(expected_shape):
        raise ValueError(f"{name} must have shape {tuple(expected_shape)}, got {target.shape}")
    target = np.ascontiguousarray(target, dtype=np.int64)
    if not target.size:
        return target, False
    # All in range (the common case): no entry is a negative or too large ignore_index, and no mask
    # is built (measured: 3.6 us for a batch of 1 with the mask, most of a small loss's validation).
    if target.min() >= 0 and target.max() < num_classes:
        ignored = ignore_index is not None and 0 <= ignore_index < num_classes and bool((target == ignore_index).any())
        return target, ignored
    kept = None if ignore_index is None else target != ignore_index
    valid = target if kept is None else target[kept]
    if valid.size and (valid.min() < 0 or valid.max() >= num_classes):
        bad = valid.min() if valid.min() < 0 else valid.max()
        extra = "" if ignore_index is None else f" (or ignore_index={ignore_index})"
        raise ValueError(f"{name} must be class indices in [0, {num_classes}){extra}, got {bad}")
    return target, kept is not None and not kept.all()


def same_shape(name, a, shape):
    """``ValueError`` unless ``a.shape == shape``; returns ``a``."""
    if a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {a.shape}")
    return a


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


# -- pooling, unpooling, upsampling -------------------------------------------------------------------
POOL_INDEX_DTYPE = np.int32
"""dtype of max pooling's positions kept for backward (half the memory traffic of PyTorch's int64;
planes must have < 2**31 elements). ``return_indices=True`` gives PyTorch's int64."""


def pool_params(kernel_size, stride, padding, dilation=1):
    """``kernel_size``, ``stride`` (None: the kernel size), ``padding`` and ``dilation`` as (h, w)
    pairs, checked on their own as PyTorch: kernel, stride, dilation >= 1, ``0 <= padding <= kernel // 2``."""
    kernel = pair("kernel_size", kernel_size, minimum=1)
    stride = kernel if stride is None else pair("stride", stride, minimum=1)
    padding = pair("padding", padding, minimum=0)
    dilation = pair("dilation", dilation, minimum=1)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(
            f"padding must be at most half the kernel size, (kernel_size[0] // 2, kernel_size[1] // 2) "
            f"= {(kernel[0] // 2, kernel[1] // 2)}, got padding={padding} for kernel_size={kernel}")
    return kernel, stride, padding, dilation


def pool_input(name, x, index_dtype=None):
    """``x`` as a 4-D float32/float64 array (N, C, H, W) with C, H, W >= 1 (N may be 0); with
    ``index_dtype``, planes must also fit its flat indices ``h * W + w``."""
    x = float_input(name, x, 4, "(N, C, H, W)")
    _plane_shape(name, x.shape, index_dtype)
    return x


_INDEX_MAX = {4: np.iinfo(np.int32).max, 8: np.iinfo(np.int64).max}  # by itemsize (np.iinfo costs ~1 us a call)


def _plane_shape(name, shape, index_dtype=None):
    N, C, H, W = shape
    if C < 1 or H < 1 or W < 1:
        raise ValueError(f"{name} must have C, H, W >= 1, got shape {tuple(shape)}")
    # (the int32 bound first: np.dtype() is only asked for planes that large)
    if index_dtype is not None and H * W > _INDEX_MAX[4] and H * W > _INDEX_MAX[np.dtype(index_dtype).itemsize]:
        raise ValueError(f"{name} planes must have H * W <= {np.iinfo(index_dtype).max} elements "
                         f"(indices are {np.dtype(index_dtype)}), got shape {tuple(shape)}")


def pool_geometry(input_shape, kernel, stride, padding, dilation=(1, 1), ceil_mode=False):
    """The kernels' geometry tuple ``(kh, kw, sh, sw, ph, pw, dh, dw, OH, OW)`` of a pooling of
    ``input_shape`` (pairs from :func:`pool_params`); ValueError when the window does not fit the padded
    input, or when a dilated window holds no input element (only padding: PyTorch returns -inf and an
    index outside the plane there). Valid answers are kept as :func:`conv_geometry`'s are: a layer asks
    the same question on every call."""
    ceil_mode = boolean("ceil_mode", ceil_mode)
    if not _plain_int_args(kernel, stride, padding, dilation):
        return _pool_geometry(input_shape, kernel, stride, padding, dilation, ceil_mode)
    key = ("pool", input_shape[2], input_shape[3], kernel, stride, padding, dilation, ceil_mode)
    g = _GEOMETRIES.get(key)
    if g is None:
        g = _remember(key, _pool_geometry(input_shape, kernel, stride, padding, dilation, ceil_mode))
    return g


def _pool_geometry(input_shape, kernel, stride, padding, dilation, ceil_mode):
    g = _conv_geometry(input_shape, kernel, stride, padding, dilation, ceil_mode)
    for axis, size, k, s, p, d, o in ((0, input_shape[2], g[0], g[2], g[4], g[6], g[8]),
                                      (1, input_shape[3], g[1], g[3], g[5], g[7], g[9])):
        if d == 1:
            continue  # a window starts at most k // 2 before the input and in it (ceil_mode's rule)
        for i in range(o):
            start = i * s - p
            first = start + -(-max(-start, 0) // d) * d  # the first tap at or after 0
            if first >= size or first > start + (k - 1) * d:
                raise ValueError(
                    f"dilation {(g[6], g[7])} with padding {(g[4], g[5])} leaves window {i} along "
                    f"{'H' if axis == 0 else 'W'} with no input element (only padding)")
    return g


def avg_pool_divisor(divisor_override):
    """``divisor_override``: None or a nonzero int (as PyTorch, negative values are allowed)."""
    if divisor_override is None:
        return None
    if not _is_int(divisor_override):
        raise TypeError(f"divisor_override must be None or an int, got {divisor_override!r}")
    if divisor_override == 0:
        raise ValueError("divisor_override must not be zero")
    return int(divisor_override)


def adaptive_output_size(output_size, input_shape):
    """PyTorch's adaptive pooling ``output_size``: an int, or a pair whose entries are ints >= 0 or
    None (None: the input's size), as an (OH, OW) pair."""
    if _is_int(output_size):
        output_size = (output_size, output_size)
    if not (isinstance(output_size, (tuple, list)) and len(output_size) == 2
            and all(v is None or _is_int(v) for v in output_size)):
        raise TypeError(f"output_size must be an int or a pair (h, w) of ints or None, got {output_size!r}")
    size = tuple(int(input_shape[2 + i]) if v is None else int(v) for i, v in enumerate(output_size))
    if size[0] < 0 or size[1] < 0:
        raise ValueError(f"output_size must be >= 0 in both dimensions, got {output_size!r}")
    return size


def unpool_output_size(input_shape, kernel, stride, padding, output_size):
    """(OH, OW) of max unpooling, PyTorch's rule: by default ``(H - 1) * stride - 2 * padding +
    kernel``; a given ``output_size`` ((OH, OW) or (N, C, OH, OW)) must lie strictly within one stride
    of that (the sizes a pooling with these arguments maps to the input's size)."""
    H, W = input_shape[2], input_shape[3]
    default = tuple((size - 1) * stride[i] - 2 * padding[i] + kernel[i] for i, size in enumerate((H, W)))
    if output_size is None:
        size = default
    else:
        if not (isinstance(output_size, (tuple, list)) and len(output_size) in (2, 4)
                and all(_is_int(v) for v in output_size)):
            raise ValueError(f"output_size must be (OH, OW) or (N, C, OH, OW) ints, got {output_size!r}")
        size = tuple(int(v) for v in output_size[-2:])
        for d in range(2):
            lo, hi = default[d] - stride[d], default[d] + stride[d]
            if not lo < size[d] < hi:
                raise ValueError(f"invalid output_size {tuple(output_size)!r} (dim {d} must be between "
                                 f"{lo} and {hi}, exclusive, for this input, kernel_size, stride and padding)")
    if size[0] < 1 or size[1] < 1:
        raise ValueError(f"max_unpool2d output size must be >= 1 in both dimensions, got {size} "
                         f"(kernel_size {kernel}, stride {stride}, padding {padding})")
    return size


def pool_indices(name, indices, x_shape, plane_size):
    """Max pooling ``indices`` for unpooling: an integer array of ``x_shape`` holding flat plane
    indices in ``[0, plane_size)``; returned C-contiguous as int64 (int32 kept as is)."""
    if not isinstance(indices, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(indices).__name__}")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array (int64, as PyTorch's, or int32), got dtype {indices.dtype}")
    if indices.shape != tuple(x_shape):
        raise ValueError(f"{name} must have the input's shape {tuple(x_shape)}, got {indices.shape}")
    if indices.size and (indices.min() < 0 or indices.max() >= plane_size):
        raise ValueError(f"{name} must hold flat plane indices in [0, OH*OW) = [0, {plane_size}), "
                         f"got values from {indices.min()} to {indices.max()}")
    if indices.dtype not in (np.int32, np.int64):
        indices = indices.astype(np.int64)
    return np.ascontiguousarray(indices)


INTERPOLATE_MODES = ("nearest", "bilinear")


def interpolate_args(input_shape, size, scale_factor, mode, align_corners, recompute_scale_factor):
    """PyTorch's ``interpolate`` arguments -> ``(OH, OW), (scale_h, scale_w) or None, align_corners``.

    Exactly one of ``size`` (int or pair of ints >= 1) and ``scale_factor`` (number or pair of
    numbers > 0) is given; the output size from a scale factor is ``floor(H * scale)``. The scales
    returned are the ones PyTorch's kernels use for the source indices: the given factors, unless
    ``recompute_scale_factor`` is True or ``size`` was given (then None: the kernels use in/out).
    ``align_corners`` is only for "bilinear" (None there means False)."""
    choice("mode", mode, INTERPOLATE_MODES)
    if align_corners is not None:
        if mode == "nearest":
            raise ValueError("align_corners option can only be set with the interpolating mode "
                             "'bilinear', not with mode='nearest'")
        boolean("align_corners", align_corners)
    if recompute_scale_factor is not None:
        boolean("recompute_scale_factor", recompute_scale_factor)
    align_corners = bool(align_corners)
    if (size is None) == (scale_factor is None):
        raise ValueError("exactly one of size or scale_factor must be given, got "
                         + ("both" if size is not None else "neither"))
    H, W = input_shape[2], input_shape[3]
    if size is not None:
        if recompute_scale_factor is not None and recompute_scale_factor:
            raise ValueError("recompute_scale_factor is not meaningful with an explicit size")
        out = pair("size", size, minimum=1)
        return out, None, align_corners
    given = scale_factor if isinstance(scale_factor, (tuple, list)) else (scale_factor, scale_factor)
    if len(given) != 2:
        raise TypeError(f"scale_factor must be a number or a pair of numbers, got {scale_factor!r}")
    scales = tuple(real("scale_factor", v, 0.0, low_open=True) for v in given)
    out = (int(np.floor(H * scales[0])), int(np.floor(W * scales[1])))
    if out[0] < 1 or out[1] < 1:
        raise ValueError(f"scale_factor {scale_factor!r} gives an empty output {out} for input size {(H, W)}")
    return out, (None if recompute_scale_factor else scales), align_corners

PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad_arg(pad, mode, value, shape):
    """``(left, right, top, bottom, value)`` for ``F.pad`` of an input of ``shape`` (N, C, H, W), with
    PyTorch's rules: ``pad`` is ``(left, right)`` or ``(left, right, top, bottom)`` (4 for the
    non-constant modes), negative entries crop, reflect pads are smaller than their axis and circular
    pads at most what is left of it after cropping, only the constant mode takes a ``value``."""
    mode = choice("mode", mode, PAD_MODES)
    if not (isinstance(pad, (tuple, list)) and all(_is_int(p) for p in pad)):
        raise TypeError(f"pad must be a tuple of ints (left, right, top, bottom), got {pad!r}")
    lengths = (2, 4) if mode == "constant" else (4,)
    if len(pad) not in lengths:
        raise ValueError(f"pad must have {' or '.join(map(str, lengths))} entries for mode {mode!r} on a 4-D "
                         f"input (left, right, top, bottom: the last axis first), got {pad!r}")
    left, right, top, bottom = (tuple(int(p) for p in pad) + (0, 0))[:4]
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"value must be a real number, got {value!r}")
    if mode != "constant" and value != 0:
        raise ValueError(f"value is only used by mode 'constant', got value={value!r} with mode {mode!r}")
    H, W = shape[2], shape[3]
    for axis, size, (a, b) in (("width", W, (left, right)), ("height", H, (top, bottom))):
        if size + a + b < 1:
            raise ValueError(f"pad {pad!r} leaves no pixel of the {axis} {size}")
        if mode == "reflect" and max(abs(a), abs(b)) >= size:
            raise ValueError(f"pad must be smaller than the input in mode 'reflect', got {(a, b)} for the "
                             f"{axis} {size} (pad {pad!r})")
        kept = size + min(a, 0) + min(b, 0)  # circular wraps around what the negative pads leave
        if mode == "circular" and (kept < 1 or max(a, b) > kept):
            raise ValueError(f"pad must be at most the input size (after cropping by the negative pads) in mode "
                             f"'circular', got {(a, b)} for the {axis} {size} (pad {pad!r})")
    return left, right, top, bottom, float(value)


def conv_padding(padding):
    """A convolution layer's ``padding``: "same", "valid", or an int or pair of ints >= 0 (as a pair)."""
    if isinstance(padding, str):
        return choice("padding", padding, ("same", "valid"))
    return pair("padding", padding, minimum=0)


def conv_padding_arg(padding, kernel_size, stride, dilation):
    """A convolution's ``padding`` as ``(padding, (extra_h, extra_w))``: ints and pairs unchanged
    (``conv_geometry`` checks them) with no extra; "valid" as 0; "same" as PyTorch: ``d*(k-1)`` in total
    per axis, ``(d*(k-1)) // 2`` on each side plus the odd one at the bottom/right (the extra), stride 1 only."""
    if not isinstance(padding, str):
        return padding, (0, 0)
    choice("padding", padding, ("same", "valid"))
    if padding == "valid":
        return 0, (0, 0)
    if pair("stride", stride) != (1, 1):
        raise ValueError(f"padding='same' needs stride 1 (as PyTorch), got stride {stride!r}")
    kh, kw = pair("kernel_size", kernel_size)
    dh, dw = pair("dilation", dilation)
    th, tw = dh * (kh - 1), dw * (kw - 1)
    return (th // 2, tw // 2), (th % 2, tw % 2)


def groups_arg(groups, in_channels, out_channels=None):
    """``groups`` as an int >= 1 that divides both channel counts (``out_channels`` None: not checked)."""
    groups = positive_int("groups", groups)
    if in_channels % groups:
        raise ValueError(f"in_channels must be divisible by groups, got in_channels={in_channels}, groups={groups}")
    if out_channels is not None and out_channels % groups:
        raise ValueError(f"out_channels must be divisible by groups, got out_channels={out_channels}, "
                         f"groups={groups}")
    return groups


def conv_transpose_output_size(size, kernel, stride, padding, output_padding=0, dilation=1):
    """Output length of a transposed convolution along one axis (PyTorch's formula)."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def output_padding_arg(output_padding, stride, dilation):
    """``output_padding`` as a pair, each entry smaller than the stride or the dilation (PyTorch's rule)."""
    op = pair("output_padding", output_padding, minimum=0)
    if any(op[a] >= stride[a] and op[a] >= dilation[a] for a in range(2)):
        raise ValueError(f"output_padding must be smaller than either stride or dilation, got output_padding "
                         f"{op}, stride {stride}, dilation {dilation}")
    return op


def output_size_padding(output_size, input_hw, kernel, stride, padding, dilation):
    """The ``output_padding`` that makes a transposed convolution of ``input_hw`` give ``output_size``
    ((OH, OW), or a 4-tuple whose last two entries are used), as ``ConvTranspose2d.forward`` in PyTorch:
    each size must lie in [smallest, smallest + stride - 1]."""
    if not (isinstance(output_size, (tuple, list)) and len(output_size) in (2, 4)
            and all(_is_int(s) for s in output_size)):
        raise TypeError(f"output_size must be a tuple of 2 ints (OH, OW) or 4 (N, C, OH, OW), got {output_size!r}")
    op = []
    for a in range(2):
        smallest = conv_transpose_output_size(input_hw[a], kernel[a], stride[a], padding[a], 0, dilation[a])
        size = int(output_size[len(output_size) - 2 + a])
        if not smallest <= size <= smallest + stride[a] - 1:
            raise ValueError(f"output_size {tuple(output_size)} is not reachable: dimension {a} must be from "
                             f"{smallest} to {smallest + stride[a] - 1} for input size {tuple(input_hw)}, got {size}")
        op.append(size - smallest)
    return tuple(op)
