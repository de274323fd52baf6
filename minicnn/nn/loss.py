"""Cross-entropy loss on logits, with PyTorch's ``CrossEntropyLoss`` semantics (mean reduction)
(``minicnn.functional.cross_entropy``)."""
from .. import functional as F
from .._validate import real
from .module import Module


class CrossEntropyLoss(Module):
    """``loss = criterion(logits, labels)`` then ``dlogits = criterion.backward()``.

    ``logits`` is a float array ``(N, K)``, ``labels`` an integer array ``(N,)`` with values in
    ``[0, K)`` (``target`` in ``minicnn.functional.cross_entropy`` and its messages). The loss is the mean over the batch of
    ``(1 - s) * (-log p[y]) + s * mean_k(-log p[k])`` with ``p = softmax(logits)`` and
    ``s = label_smoothing`` (exactly PyTorch's definition), computed with the log-sum-exp trick so
    any finite logits give a finite loss. ``forward`` returns a float (a ``numpy.float64``);
    ``backward(dy=1.0)`` returns ``dy * d loss / d logits`` as an ``(N, K)`` array of the logits' dtype.
    """

    def __init__(self, label_smoothing=0.0):
        super().__init__()
        self.label_smoothing = real("label_smoothing", label_smoothing, 0.0, 1.0)

    def forward(self, logits, labels):
        loss, ctx = F.cross_entropy_forward(logits, labels, self.label_smoothing)
        self._save_ctx(ctx)
        return loss

    def backward(self, dy=1.0):
        """Gradient of the (mean) loss w.r.t. the logits, times the scalar upstream gradient ``dy``."""
        dy = real("dy", dy)
        return F.cross_entropy_backward(self._pop_ctx(), dy)

    def extra_repr(self):
        return f"label_smoothing={self.label_smoothing}" if self.label_smoothing else ""
