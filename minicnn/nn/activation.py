"""ReLU: ``y = max(x, 0)`` elementwise (``minicnn.functional.relu``)."""
from .. import functional as F
from .module import Module


class ReLU(Module):
    """Elementwise ``max(x, 0)`` on input of any shape; keeps the input's float dtype.

    Backward uses the saved output (``y > 0`` exactly where ``x > 0``); the gradient at 0 is 0.
    """

    def forward(self, x):
        y, ctx = F.relu_forward(x)
        self._save_ctx(ctx)
        return y

    def backward(self, dy):
        return F.relu_backward(dy, self._pop_ctx())
