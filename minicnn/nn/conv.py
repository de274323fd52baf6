"""Conv2d: 2-D convolution layer (cross-correlation, as PyTorch's)."""
import numpy as np

from .._config import kernel_blas_single_threaded, thread_blocks
from .._validate import float_array, float_dtype, grad_array, pair, positive_int
from ..kernels.conv import (_direct_backward_input_s1, _direct_backward_params_s1, _direct_forward_s1, _pad_input,
                            _spread_grad, _tap_offsets, _tiled_backward, _tiled_forward, _window_positions)
from ..kernels.im2col import conv_geometry
from .init import reset_default_
from .module import BackwardBeforeForwardError, Module, Parameter


class Conv2d(Module):
    """Applies ``y[n, f] = bias[f] + sum_c weight[f, c] (*) x[n, c]`` to ``x`` (N, C, H, W).

    ``kernel_size``, ``stride``, ``padding`` (zeros) and ``dilation`` are ints or ``(h, w)`` pairs.
    ``weight`` is a Parameter (out_channels, in_channels, kh, kw) and ``bias`` a Parameter
    (out_channels,) or None, initialised as PyTorch does. With ``input_grad=False`` backward computes
    only the parameter gradients and returns None (for a network's first layer).

    With one input channel and stride 1 the layer runs direct loop kernels; otherwise tiled implicit-GEMM
    kernels for the output and the weight gradient, and ``W.T @ dy`` with col2im for the input gradient
    (see ``minicnn.kernels.conv``). Buffers are reused between calls with the same input shape; the
    returned output and input gradient are always new arrays. In eval mode nothing is kept for backward.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=True,
                 dtype=np.float32, rng=None, input_grad=True):
        super().__init__()
        self.in_channels = positive_int("in_channels", in_channels)
        self.out_channels = positive_int("out_channels", out_channels)
        self.kernel_size = pair("kernel_size", kernel_size)
        self.stride = pair("stride", stride)
        self.padding = pair("padding", padding, minimum=0)
        self.dilation = pair("dilation", dilation)
        self.dtype = float_dtype("dtype", dtype)
        self.input_grad = bool(input_grad)
        F, C, (kh, kw) = self.out_channels, self.in_channels, self.kernel_size
        self.weight = Parameter(np.zeros((F, C, kh, kw), self.dtype))
        self.bias = Parameter(np.zeros(F, self.dtype)) if bias else None
        reset_default_(self.weight, self.bias, rng)
        self._zero_bias = np.zeros(F, self.dtype)  # stands in for a missing bias in the kernels
        # Direct kernels measured faster than im2col + GEMM for one input channel (LeNet's conv1).
        self._direct = C == 1 and self.stride == (1, 1)
        self._scratch = {}  # name -> reused array
        self._saved = None  # input shape of the last training-mode forward, for backward
        self._plan = None  # (H, W) and what _plan_for returns for it

    def _buffer(self, name, shape):
        """A reused array of ``shape`` (contents undefined)."""
        buf = self._scratch.get(name)
        if buf is None or buf.shape != shape:
            buf = self._scratch[name] = np.empty(shape, self.dtype)
        return buf

    def forward(self, x):
        """``x`` (N, C, H, W) -> ``y`` (N, out_channels, OH, OW), a new array."""
        x = float_array("x", x, self.dtype, ndim=4, shape_hint="(N, C, H, W)")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x must have in_channels = {self.in_channels} channels (dimension 1 of "
                             f"(N, C, H, W)), got shape {x.shape}")
        if x.size == 0:
            raise ValueError(f"x must not be empty, got shape {x.shape}")
        geometry, pos, off = self._plan_for(x.shape)
        kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = geometry
        N, F = x.shape[0], self.out_channels
        # An eval-mode forward overwrites the shared buffers, so it also forgets the saved state.
        self._saved = None
        bias = self._zero_bias if self.bias is None else self.bias.data
        y = np.empty((N, F, OH, OW), self.dtype)
        if self._direct:
            xpad = self._buffer("xpad", (N, self.in_channels, x.shape[2] + 2 * ph, x.shape[3] + 2 * pw))
            _pad_input(x, ph, pw, xpad)  # also the copy of x that backward needs
            _direct_forward_s1(xpad, self.weight.data, bias, dh, dw, y)
        else:
            # Eval without padding reads x in place; training keeps a padded copy for backward.
            copy = bool(ph or pw or self.training)
            if copy:
                xpad = self._buffer("xpad", (N, self.in_channels, x.shape[2] + 2 * ph, x.shape[3] + 2 * pw))
            else:
                x = xpad = np.ascontiguousarray(x)
            _tiled_forward(x, self.weight.data, bias, ph, pw, pos, off, thread_blocks(N), copy, xpad,
                           y.reshape(N, F, OH * OW))
        if self.training:
            self._saved = x.shape
        return y

    def backward(self, dy):
        """Adds the parameter gradients into ``weight.grad`` / ``bias.grad``; returns ``dx`` (N, C, H, W)
        (a new array), or None if ``input_grad`` is False."""
        if self._saved is None:
            raise BackwardBeforeForwardError(
                "Conv2d.backward needs a forward pass in training mode first (eval-mode forwards keep "
                "nothing for backward)")
        input_shape = self._saved
        geometry, pos, off = self._plan_for(input_shape)
        kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = geometry
        N, F = input_shape[0], self.out_channels
        dy = grad_array("dy", dy, (N, F, OH, OW), self.dtype)
        db = self._zero_bias[:0] if self.bias is None else self.bias.grad  # empty: no bias gradient
        if self._direct:
            xpad = self._scratch["xpad"]
            Wp = xpad.shape[3]
            dy_wide = self._buffer("dy_wide", (N, F, (OH - 1) * Wp + OW))
            _spread_grad(dy, Wp, dy_wide)
            _direct_backward_params_s1(xpad, dy_wide, dh, dw, self.weight.grad, db)
            if not self.input_grad:
                return None
            dx = np.empty(input_shape, self.dtype)
            _direct_backward_input_s1(dy_wide, self.weight.data, ph, pw, dh, dw, dx)
            return dx
        xpad = self._scratch["xpad"]
        dx = np.empty(input_shape if self.input_grad else (0, 0, 0, 0), self.dtype)  # empty: no input gradient
        if self.input_grad and (sh, sw) != (1, 1):
            kernel_blas_single_threaded()  # the input gradient takes W.T @ dy in BLAS
        _tiled_backward(xpad, dy, self.weight.data, pos, off, geometry, thread_blocks(N), self.weight.grad, db, dx)
        return dx if self.input_grad else None

    def _plan_for(self, shape):
        """``(geometry, pos, off)`` for inputs of ``shape`` (N, C, H, W), kept per (H, W): conv_geometry's
        validated sizes, the window starts ``pos`` (OH*OW,) and the tap offsets ``off`` (C*kh*kw,) in a
        padded sample (validating the geometry on every call cost ~8% of LeNet conv2's forward)."""
        if self._plan is None or self._plan[0] != shape[2:]:
            geometry = conv_geometry(shape, self.kernel_size, self.stride, self.padding, self.dilation)
            kh, kw, sh, sw, ph, pw, dh, dw, OH, OW = geometry
            Hp, Wp = shape[2] + 2 * ph, shape[3] + 2 * pw
            self._plan = (shape[2:], geometry, _window_positions(OH, OW, sh, sw, Wp),
                          _tap_offsets(self.in_channels, kh, kw, Hp, Wp, dh, dw))
        return self._plan[1:]

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.bias is None:
            s += ", bias=False"
        if self.dtype != np.float32:
            s += f", dtype={self.dtype}"
        if not self.input_grad:
            s += ", input_grad=False"
        return s
