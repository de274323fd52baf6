# PLACEHOLDER: replaced by the owner of this file
def conv2d_forward(*a, **k): raise NotImplementedError
conv2d_backward_weight = conv2d_backward_bias = conv2d_backward_input = conv2d_forward
