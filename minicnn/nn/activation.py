# PLACEHOLDER: replaced by the owner of this file
from .module import Module
class ReLU(Module): pass
