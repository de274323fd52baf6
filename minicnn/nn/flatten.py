"""Flatten: merge the dimensions ``start_dim..end_dim`` into one (``minicnn.functional.flatten``)."""
from .. import functional as F
from .._validate import integer
from .module import Module


class Flatten(Module):
    """``Flatten(start_dim=1, end_dim=-1)``: ``(N, C, H, W) -> (N, C*H*W)`` by default, as PyTorch.

    Negative dims count from the end of the input's dimensions. Keeps the input's float dtype.
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = integer("start_dim", start_dim), integer("end_dim", end_dim)

    def forward(self, x):
        y, ctx = F.flatten_forward(x, self.start_dim, self.end_dim)
        self._save_ctx(ctx)
        return y

    def backward(self, dy):
        return F.flatten_backward(dy, self._pop_ctx())

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
