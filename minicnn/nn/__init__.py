"""Layers with PyTorch's names; NCHW layout; ``y = layer(x)`` then ``dx = layer.backward(dy)``."""
from . import init, utils
from .activation import ReLU
from .batchnorm import BatchNorm2d
from .container import Add, Concat, ModuleDict, ModuleList, Multiply, Parallel, Residual
from .conv import Conv2d
from .dropout import Dropout
from .flatten import Flatten
from .linear import Linear
from .loss import CrossEntropyLoss
from .module import BackwardBeforeForwardError, Module, Parameter, Sequential
from .pool import AvgPool2d, MaxPool2d
from .sync_batchnorm import SyncBatchNorm
