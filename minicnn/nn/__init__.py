"""Layers with PyTorch's names; NCHW layout; ``y = layer(x)`` then ``dx = layer.backward(dy)``."""
from . import init, utils
from .container import Add, Concat, ModuleDict, ModuleList, Multiply, Parallel, Residual
from .activation import (ELU, GELU, Hardswish, Identity, LeakyReLU, LogSoftmax, PReLU, ReLU, ReLU6, Sigmoid,
                         SiLU, Softmax, Tanh)
from .batchnorm import BatchNorm1d, BatchNorm2d
from .conv import Conv2d
from .conv_transpose import ConvTranspose2d
from .dropout import Dropout
from .flatten import Flatten
from .linear import Linear
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss, NLLLoss, SmoothL1Loss)
from .normalization import GroupNorm, InstanceNorm2d, LayerNorm
from .module import BackwardBeforeForwardError, Module, Parameter, Sequential
from .pool import AvgPool2d, MaxPool2d
from .sync_batchnorm import SyncBatchNorm
from .dropout2d import Dropout2d
from .pool import AdaptiveAvgPool2d, AdaptiveMaxPool2d, MaxUnpool2d
from .upsample import Upsample
