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


def _plane_shape(name, shape, index_dtype=None):
    N, C, H, W = shape
    if C < 1 or H < 1 or W < 1:
        raise ValueError(f"{name} must have C, H, W >= 1, got shape {tuple(shape)}")
    if index_dtype is not None and H * W > np.iinfo(index_dtype).max:
        raise ValueError(f"{name} planes must have H * W <= {np.iinfo(index_dtype).max} elements "
                         f"(indices are {np.dtype(index_dtype)}), got shape {tuple(shape)}")


def pool_output_shape(input_shape, kernel, stride, padding, dilation=(1, 1), ceil_mode=False):
    """(N, C, OH, OW) of a pooling of ``input_shape``; ValueError when the output would be empty, or
    when a dilated window holds no input element (only padding: PyTorch returns -inf and an index
    outside the plane there)."""
    N, C, H, W = input_shape
    out = []
    for axis, size in ((0, H), (1, W)):
        k, s, p, d = kernel[axis], stride[axis], padding[axis], dilation[axis]
        o = conv_output_size(size, k, s, p, d, ceil_mode)
        if o < 1:
            dilated = "" if dilation == (1, 1) else f" (dilated by {dilation})"
            raise ValueError(
                f"kernel_size {kernel}{dilated} is larger than the padded input "
                f"(H + 2*padding, W + 2*padding) = {(H + 2 * padding[0], W + 2 * padding[1])}")
        if d > 1:
            for i in range(o):
                start = i * s - p
                first = start + -(-max(-start, 0) // d) * d  # the first tap at or after 0
                if first >= size or first > start + (k - 1) * d:
                    raise ValueError(
                        f"dilation {dilation} with padding {padding} leaves window {i} along "
                        f"{'H' if axis == 0 else 'W'} with no input element (only padding)")
        out.append(o)
    return (N, C, out[0], out[1])


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


def probability(name, p):
    """``p`` as a float in [0, 1]."""
    if not isinstance(p, numbers.Real) or isinstance(p, bool):
        raise TypeError(f"{name} must be a number, got {p!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {p}")
    return float(p)


INTERPOLATE_MODES = ("nearest", "bilinear")


def interpolate_args(input_shape, size, scale_factor, mode, align_corners, recompute_scale_factor):
    """PyTorch's ``interpolate`` arguments -> ``(OH, OW), (scale_h, scale_w) or None, align_corners``.

    Exactly one of ``size`` (int or pair of ints >= 1) and ``scale_factor`` (number or pair of
    numbers > 0) is given; the output size from a scale factor is ``floor(H * scale)``. The scales
    returned are the ones PyTorch's kernels use for the source indices: the given factors, unless
    ``recompute_scale_factor`` is True or ``size`` was given (then None: the kernels use in/out).
    ``align_corners`` is only for "bilinear" (None there means False)."""
    if mode not in INTERPOLATE_MODES:
        raise ValueError(f"mode must be one of {INTERPOLATE_MODES}, got {mode!r}")
    if align_corners is not None:
        if mode == "nearest":
            raise ValueError("align_corners option can only be set with the interpolating mode "
                             "'bilinear', not with mode='nearest'")
        if not isinstance(align_corners, (bool, np.bool_)):
            raise TypeError(f"align_corners must be None or a bool, got {align_corners!r}")
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
    pair_given = (scale_factor, scale_factor) if _is_real(scale_factor) else scale_factor
    if not (isinstance(pair_given, (tuple, list)) and len(pair_given) == 2
            and all(_is_real(v) for v in pair_given)):
        raise TypeError(f"scale_factor must be a number or a pair of numbers, got {scale_factor!r}")
    scales = tuple(float(v) for v in pair_given)
    if not (scales[0] > 0 and scales[1] > 0 and np.isfinite(scales).all()):
        raise ValueError(f"scale_factor must be finite and > 0 in both dimensions, got {scale_factor!r}")
    out = (int(np.floor(H * scales[0])), int(np.floor(W * scales[1])))
    if out[0] < 1 or out[1] < 1:
        raise ValueError(f"scale_factor {scale_factor!r} gives an empty output {out} for input size {(H, W)}")
    return out, (None if recompute_scale_factor else scales), align_corners


def _is_real(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)
