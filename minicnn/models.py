"""Ready-made networks."""
import numpy as np

from ._validate import float_dtype, positive_int
from .nn import AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Residual, Sequential
from .random import as_rng


class LeNet5(Sequential):
    """LeNet-5 for ``(N, in_channels, 28, 28)`` input, returning logits ``(N, num_classes)``.

    Conv2d(in, 6, 5, padding=2) - MaxPool2d(2) - ReLU - Conv2d(6, 16, 5) - MaxPool2d(2) - ReLU -
    Flatten - Linear(400, 120) - ReLU - Linear(120, 84) - ReLU - Linear(84, num_classes).

    ReLU comes after each max pool: ``max(relu(a), relu(b)) = relu(max(a, b))``, so the network computes
    the same function, values and gradients as the textbook conv - ReLU - pool order, with the ReLU on a
    quarter of the values (measured: the ReLUs' share of a batch-64 training step fell from 6% to 2%).

    The first convolution skips its input gradient (nothing upstream needs it) unless
    ``input_grad=True`` (e.g. for an end-to-end ``gradcheck``); then ``backward`` returns ``None``.
    Weights are drawn in layer order from ``rng`` (Generator, int seed, or ``None`` for the default
    generator set by ``minicnn.manual_seed``).
    """

    def __init__(self, num_classes=10, in_channels=1, dtype=np.float32, rng=None, input_grad=False):
        num_classes, in_channels, dtype, rng = _checked(num_classes, in_channels, dtype, rng)
        super().__init__(
            Conv2d(in_channels, 6, 5, padding=2, dtype=dtype, rng=rng, input_grad=bool(input_grad)),
            MaxPool2d(2),
            ReLU(),
            Conv2d(6, 16, 5, dtype=dtype, rng=rng),
            MaxPool2d(2),
            ReLU(),
            Flatten(),
            Linear(16 * 5 * 5, 120, dtype=dtype, rng=rng),
            ReLU(),
            Linear(120, 84, dtype=dtype, rng=rng),
            ReLU(),
            Linear(84, num_classes, dtype=dtype, rng=rng),
        )
        self.num_classes, self.in_channels, self.dtype = num_classes, in_channels, dtype

    def forward(self, x):
        if isinstance(x, np.ndarray) and x.ndim == 4 and x.shape[2:] != (28, 28):
            raise ValueError(f"LeNet5 expects input of shape (N, {self.in_channels}, 28, 28), got {x.shape}")
        return super().forward(x)


def _checked(num_classes, in_channels, dtype, rng):
    """The arguments every network here takes, checked: ``(num_classes, in_channels, dtype, rng)``."""
    return (positive_int("num_classes", num_classes), positive_int("in_channels", in_channels),
            float_dtype("dtype", dtype), as_rng(rng))


def _stem_blocks_head(in_channels, stem, block, stages, num_classes, dtype, rng):
    """The layers of a network made of a 3x3 convolution + BN + ReLU stem to ``stem`` channels, then
    ``block(channels, width, stride, dtype, rng)`` for each ``(width, stride)`` of ``stages``, then
    global average pooling and a linear classifier (weights drawn from ``rng`` in that order)."""
    layers = [_conv_bn(in_channels, stem, 3, 1, 1, dtype, rng), ReLU()]
    channels = stem
    for width, stride in stages:
        layers.append(block(channels, width, stride, dtype, rng))
        channels = width
    return layers + [AdaptiveAvgPool2d(1), Flatten(), Linear(channels, num_classes, dtype=dtype, rng=rng)]


def _conv_bn(in_channels, out_channels, kernel_size, stride, groups, dtype, rng):
    """Conv2d (no bias: the batch norm's shift replaces it) followed by BatchNorm2d."""
    return Sequential(Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2,
                             groups=groups, bias=False, dtype=dtype, rng=rng),
                      BatchNorm2d(out_channels, dtype=dtype))


def basic_block(in_channels, out_channels, stride=1, dtype=np.float32, rng=None):
    """He et al.'s BasicBlock: ``relu(bn(conv3x3(relu(bn(conv3x3(x))))) + shortcut(x))``, the shortcut
    the identity, or a 1x1 convolution + batch norm where the shape changes (stride or channels)."""
    rng = as_rng(rng)
    body = Sequential(_conv_bn(in_channels, out_channels, 3, stride, 1, dtype, rng), ReLU(),
                      _conv_bn(out_channels, out_channels, 3, 1, 1, dtype, rng))
    shortcut = None
    if stride != 1 or in_channels != out_channels:
        shortcut = _conv_bn(in_channels, out_channels, 1, stride, 1, dtype, rng)
    return Sequential(Residual(body, shortcut), ReLU())


class CifarResNet(Sequential):
    """The CIFAR ResNets of He et al. (2016), section 4.2: a 3x3 convolution to 16 channels, then three
    stages of ``blocks`` BasicBlocks with 16, 32 and 64 channels (the 2nd and 3rd start with stride 2),
    global average pooling and a linear classifier; ``6 * blocks + 2`` layers. Input (N, in_channels,
    H, W) with H, W >= 8; output logits (N, num_classes)."""

    def __init__(self, blocks, num_classes=10, in_channels=3, dtype=np.float32, rng=None):
        blocks = positive_int("blocks", blocks)
        num_classes, in_channels, dtype, rng = _checked(num_classes, in_channels, dtype, rng)
        stages = [(width, 2 if stage and b == 0 else 1) for stage, width in enumerate((16, 32, 64))
                  for b in range(blocks)]
        super().__init__(*_stem_blocks_head(in_channels, 16, basic_block, stages, num_classes, dtype, rng))
        self.num_classes, self.in_channels, self.dtype = num_classes, in_channels, dtype

    def forward(self, x):
        if isinstance(x, np.ndarray) and x.ndim == 4 and min(x.shape[2:]) < 8:
            raise ValueError(f"{type(self).__name__} expects input of at least 8x8, got shape {x.shape}")
        return super().forward(x)


def resnet20(num_classes=10, in_channels=3, dtype=np.float32, rng=None):
    """ResNet-20 for CIFAR-sized input: 3 BasicBlocks per stage (272,474 parameters for 10 classes)."""
    return CifarResNet(3, num_classes, in_channels, dtype, rng)


def resnet32(num_classes=10, in_channels=3, dtype=np.float32, rng=None):
    """ResNet-32: 5 BasicBlocks per stage (466,906 parameters)."""
    return CifarResNet(5, num_classes, in_channels, dtype, rng)


def resnet56(num_classes=10, in_channels=3, dtype=np.float32, rng=None):
    """ResNet-56: 9 BasicBlocks per stage (855,770 parameters)."""
    return CifarResNet(9, num_classes, in_channels, dtype, rng)


def depthwise_separable(in_channels, out_channels, stride=1, dtype=np.float32, rng=None):
    """MobileNet's block: a depthwise 3x3 convolution + BN + ReLU, then a pointwise 1x1 convolution to
    ``out_channels`` + BN + ReLU."""
    rng = as_rng(rng)
    return Sequential(_conv_bn(in_channels, in_channels, 3, stride, in_channels, dtype, rng), ReLU(),
                      _conv_bn(in_channels, out_channels, 1, 1, 1, dtype, rng), ReLU())


def mobilenet_small(num_classes=10, in_channels=3, dtype=np.float32, rng=None):
    """A small MobileNet-style network: a 3x3 stem convolution to 32 channels + BN + ReLU, depthwise-
    separable blocks to 64, 128 (stride 2), 128 and 256 (stride 2) channels, global average pooling and
    a linear classifier. Input (N, in_channels, H, W); output logits (N, num_classes)."""
    num_classes, in_channels, dtype, rng = _checked(num_classes, in_channels, dtype, rng)
    stages = ((64, 1), (128, 2), (128, 1), (256, 2))
    return Sequential(*_stem_blocks_head(in_channels, 32, depthwise_separable, stages, num_classes, dtype, rng))


#: The networks ``scripts/train.py --model`` builds, by name: each takes (num_classes, in_channels, dtype, rng).
MODELS = {"lenet5": lambda num_classes=10, in_channels=1, dtype=np.float32, rng=None:
          LeNet5(num_classes, in_channels, dtype, rng),
          "resnet20": resnet20, "resnet32": resnet32, "resnet56": resnet56, "mobilenet_small": mobilenet_small}
