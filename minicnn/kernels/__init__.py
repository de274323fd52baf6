"""Numba kernels on NCHW arrays. Each file holds private ``@njit`` kernels that trust their inputs and
public wrappers (the names below) that validate arguments and allocate outputs when none are given."""
from .conv import conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight, conv2d_forward
from .im2col import col2im, im2col
