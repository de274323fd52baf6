"""Optimizers and learning-rate schedulers with PyTorch's update rules."""
from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .lr_scheduler import (CosineAnnealingLR, ExponentialLR, LambdaLR, LinearLR, MultiStepLR, OneCycleLR,
                           ReduceLROnPlateau, SequentialLR, StepLR)
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD
