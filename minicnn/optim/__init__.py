"""Optimizers and learning-rate schedulers with PyTorch's update rules."""
from . import lr_scheduler
from .adam import Adam, AdamW
from .lr_scheduler import CosineAnnealingLR, MultiStepLR, OneCycleLR, StepLR
from .optimizer import Optimizer
from .sgd import SGD
