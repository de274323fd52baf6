"""Upsample: PyTorch's layer over ``minicnn.functional.interpolate`` ("nearest" and "bilinear")."""
from .. import _validate as V
from .. import functional as F
from .module import Module


class Upsample(Module):
    """``Upsample(size=None, scale_factor=None, mode="nearest", align_corners=None,
    recompute_scale_factor=None)``: ``(N, C, H, W) -> (N, C, OH, OW)`` with ``(OH, OW) = size`` or
    ``floor((H, W) * scale_factor)``; source positions as ``minicnn.functional.upsample`` states."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None):
        super().__init__()
        # Checked now; the output size depends on each input (a large dummy one checks everything else).
        V.interpolate_args((1, 1, 1 << 20, 1 << 20), size, scale_factor, mode, align_corners, recompute_scale_factor)
        if scale_factor is not None:  # stored as floats, as PyTorch (and printed so)
            scale_factor = (tuple(float(f) for f in scale_factor) if isinstance(scale_factor, (tuple, list))
                            else float(scale_factor))
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor

    def forward(self, x):
        y, ctx = F.interpolate_forward(x, self.size, self.scale_factor, self.mode, self.align_corners,
                                       self.recompute_scale_factor)
        self._save_ctx(ctx)
        return y

    def backward(self, dy):
        return F.interpolate_backward(dy, self._pop_ctx())

    def extra_repr(self):
        info = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None else f"size={self.size!r}"
        return info + f", mode={self.mode!r}"
