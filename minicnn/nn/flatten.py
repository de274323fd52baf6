"""Flatten: merge the dimensions ``start_dim..end_dim`` into one (a reshape; backward reshapes back)."""
from .._validate import _is_int, float_input, grad_array
from .module import BackwardBeforeForwardError, Module


class Flatten(Module):
    """``Flatten(start_dim=1, end_dim=-1)``: ``(N, C, H, W) -> (N, C*H*W)`` by default, as PyTorch.

    Negative dims count from the end of the input's dimensions. Keeps the input's float dtype.
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        if not _is_int(start_dim) or not _is_int(end_dim):
            raise TypeError(f"start_dim and end_dim must be ints, got {start_dim!r} and {end_dim!r}")
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)
        self._x_shape = None
        self._y_shape = None

    def forward(self, x):
        x = float_input("x", x)
        nd = x.ndim
        start = self.start_dim + nd if self.start_dim < 0 else self.start_dim
        end = self.end_dim + nd if self.end_dim < 0 else self.end_dim
        if not (0 <= start < nd and 0 <= end < nd):
            raise ValueError(
                f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim}) is out of range for a "
                f"{nd}-D input of shape {x.shape}")
        if start > end:
            raise ValueError(f"Flatten start_dim ({self.start_dim}) must not come after end_dim ({self.end_dim}) "
                             f"for input of shape {x.shape}")
        merged = 1
        for s in x.shape[start:end + 1]:
            merged *= s
        y = x.reshape(x.shape[:start] + (merged,) + x.shape[end + 1:])
        self._x_shape, self._y_shape, self._dtype = x.shape, y.shape, x.dtype
        return y

    def backward(self, dy):
        if self._x_shape is None:
            raise BackwardBeforeForwardError("Flatten.backward called before forward")
        dy = grad_array("dy", dy, self._y_shape, self._dtype)
        return dy.reshape(self._x_shape)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
