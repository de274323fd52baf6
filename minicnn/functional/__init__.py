"""minicnn.functional: one public forward and one public backward per operation (``import minicnn.functional as F``).

The conventions, the same for every operation (a layer in ``minicnn.nn`` is its parameters plus one
call of each):

- ``F.op(x, ...)`` is the forward alone: it returns the output and keeps nothing
  (``F.conv2d(x, w, b, stride, padding)`` works as in PyTorch).
- ``F.op_forward(x, ...)`` returns ``(y, ctx)``: the output and a small documented ``NamedTuple`` that
  holds exactly what the backward needs. Nothing is kept in hidden state.
- ``F.op_backward(dy, ctx, ...)`` returns ``dx`` for an operation without parameters, else the tuple
  ``(dx, dweight, dbias, ...)`` in the forward's argument order.
- Which gradients to compute (the optional outputs): keyword arguments named after them
  (``dx=``, ``dweight=``, ``dbias=``), each ``True`` (computed into a new array), ``False`` (not
  computed, the work is skipped, ``None`` returned) or, for a parameter gradient, an ndarray of the
  parameter's shape and dtype into which the gradient is ADDED in place and which is returned
  (layers pass ``param.grad``, so gradients accumulate as in PyTorch).
- Arguments are validated once, by ``minicnn._validate``: a ``TypeError`` for a wrong type or dtype, a
  ``ValueError`` for a wrong shape or value, each naming the argument and what was expected. Inputs
  are float32 or float64 arrays (another float dtype is cast: 4 bytes or fewer to float32, longer to
  float64); weights and gradients take the input's dtype. The backward trusts its ``ctx`` (it came
  from the forward) and validates ``dy`` against it.
- Outputs are new C-contiguous arrays of the input's dtype.
"""
from .conv import (CONV_ALGORITHMS, Conv2dCtx, col2im, conv2d, conv2d_backward, conv2d_forward, conv_autotune_report,
                   fold, im2col, set_conv_autotune, unfold)
from .activation import relu, relu_backward, relu_forward
from .linear import linear, linear_backward, linear_forward
from .normalization import batch_norm, batch_norm_backward, batch_norm_forward
from .normalization import batch_norm_stats
from .dropout import dropout, dropout_backward, dropout_forward
from .shape import flatten, flatten_backward, flatten_forward
from .loss import cross_entropy, cross_entropy_backward, cross_entropy_forward
