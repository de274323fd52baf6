# PLACEHOLDER: replaced by the owner of this file
def max_pool2d_forward(*a, **k): raise NotImplementedError
max_pool2d_backward = avg_pool2d_forward = avg_pool2d_backward = max_pool2d_forward
