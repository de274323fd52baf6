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
from .activation import (elu, elu_backward, elu_forward, gelu, gelu_backward, gelu_forward, hardswish,
                         hardswish_backward, hardswish_forward, leaky_relu, leaky_relu_backward, leaky_relu_forward,
                         log_softmax, log_softmax_backward, log_softmax_forward, prelu, prelu_backward, prelu_forward,
                         relu6, relu6_backward, relu6_forward, sigmoid, sigmoid_backward, sigmoid_forward, silu,
                         silu_backward, silu_forward, softmax, softmax_backward, softmax_forward, tanh, tanh_backward,
                         tanh_forward)
from .linear import linear, linear_backward, linear_forward
from .normalization import batch_norm, batch_norm_backward, batch_norm_forward
from .normalization import (group_norm, group_norm_backward, group_norm_forward, instance_norm, instance_norm_backward,
                            instance_norm_forward, layer_norm, layer_norm_backward, layer_norm_forward)
from .normalization import batch_norm_stats
from .dropout import dropout, dropout_backward, dropout_forward
from .shape import flatten, flatten_backward, flatten_forward
from .dropout2d import dropout2d, dropout2d_backward, dropout2d_forward
from .pool import (adaptive_avg_pool2d, adaptive_avg_pool2d_backward, adaptive_avg_pool2d_forward, adaptive_max_pool2d,
                   adaptive_max_pool2d_backward, adaptive_max_pool2d_forward, avg_pool2d, avg_pool2d_backward,
                   avg_pool2d_forward, max_pool2d, max_pool2d_backward, max_pool2d_forward, max_unpool2d,
                   max_unpool2d_backward, max_unpool2d_forward)
from .upsample import interpolate, interpolate_backward, interpolate_forward
from .loss import (binary_cross_entropy, binary_cross_entropy_backward, binary_cross_entropy_forward,
                   binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_backward,
                   binary_cross_entropy_with_logits_forward, cross_entropy, cross_entropy_backward,
                   cross_entropy_forward, huber_loss, huber_loss_backward, huber_loss_forward, l1_loss,
                   l1_loss_backward, l1_loss_forward, mse_loss, mse_loss_backward, mse_loss_forward, nll_loss,
                   nll_loss_backward, nll_loss_forward, smooth_l1_loss, smooth_l1_loss_backward, smooth_l1_loss_forward)
from .conv_transpose import conv_transpose2d, conv_transpose2d_backward, conv_transpose2d_forward
from .pad import pad, pad_backward, pad_forward
from .add import add
