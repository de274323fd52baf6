# PLACEHOLDER: replaced by the owner of this file
def gradcheck(*a, **k): raise NotImplementedError
