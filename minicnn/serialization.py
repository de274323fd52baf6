# PLACEHOLDER: replaced by the owner of this file
def save(*a, **k): raise NotImplementedError
load = save
