# PLACEHOLDER: replaced by the owner of this file
from .module import Module
class Conv2d(Module): pass
