# PLACEHOLDER: replaced by the owner of this file
def im2col(*a, **k): raise NotImplementedError
def col2im(*a, **k): raise NotImplementedError
