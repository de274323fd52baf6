"""Mini-batches of normalised NCHW images, in order or shuffled by a seeded generator."""
import math
import numbers

import numpy as np

from ..random import as_rng, get_rng_state, set_rng_state


class DataLoader:
    """Iterates over ``(images, labels)`` in batches of ``batch_size``.

    ``images``: ``(N, H, W)`` or ``(N, C, H, W)``; ``uint8`` (0..255, scaled to [0, 1]) or floats
    (taken as already in [0, 1]). ``labels``: ``(N,)`` integers. Each batch is
    ``(x, y)``: ``x`` a new ``(B, C, H, W)`` array of ``dtype`` holding ``(pixel - mean) / std``, ``y``
    a new ``(B,)`` int64 array. Batches are fresh arrays, never overwritten by later batches (a
    64-image batch costs microseconds to allocate next to a forward pass).

    ``shuffle=True`` draws a new order for every pass (every ``iter()``) from a generator seeded by
    ``seed`` (an int, a ``numpy.random.Generator``, or None to draw a seed from minicnn's default
    generator, which ``minicnn.manual_seed`` fixes). ``state_dict()``/``load_state_dict()`` save and
    restore that generator, so a resumed run shuffles exactly as an uninterrupted one.
    ``drop_last=True`` leaves out a final batch smaller than ``batch_size``.

    ``sampler``: instead of ``shuffle``, an object with ``len()`` whose iteration yields the indices
    of one pass, in order (e.g. ``minicnn.distributed.DistributedSampler``: this rank's share).
    """

    def __init__(self, images, labels, batch_size=64, shuffle=False, seed=None, drop_last=False,
                 mean=0.0, std=1.0, dtype=np.float32, sampler=None):
        if not isinstance(images, np.ndarray):
            raise TypeError(f"images must be a numpy.ndarray, got {type(images).__name__}")
        if images.ndim not in (3, 4):
            raise ValueError(f"images must be (N, H, W) or (N, C, H, W), got shape {images.shape}")
        if images.dtype != np.uint8 and images.dtype.kind != "f":
            raise TypeError(f"images must be uint8 or floating point, got dtype {images.dtype}")
        labels = np.asarray(labels)
        if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
            raise ValueError(f"labels must be a 1-D integer array, got shape {labels.shape} "
                             f"dtype {labels.dtype}")
        if len(labels) != len(images):
            raise ValueError(f"labels ({len(labels)}) and images ({len(images)}) differ in count")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if not (isinstance(std, numbers.Real) and std > 0 and math.isfinite(std)):
            raise ValueError(f"std must be a positive finite number, got {std!r}")
        if not (isinstance(mean, numbers.Real) and math.isfinite(mean)):
            raise ValueError(f"mean must be a finite number, got {mean!r}")
        if sampler is not None and (shuffle or not (hasattr(sampler, "__len__") and hasattr(sampler, "__iter__"))):
            raise ValueError("sampler must be an iterable of indices with len(), and excludes shuffle=True, "
                             f"got sampler={sampler!r} with shuffle={shuffle!r}")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be np.float32 or np.float64, got {dtype}")
        self.images = images if images.ndim == 4 else images[:, None]
        self.labels = labels.astype(np.int64, copy=False)
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.mean, self.std, self.dtype = float(mean), float(std), dtype
        if seed is None:
            seed = int(as_rng(None).integers(2**63))
        self._rng = as_rng(seed)
        if images.dtype == np.uint8:
            # One lookup per pixel instead of a cast, a scale and a shift.
            self._lut = ((np.arange(256) / 255.0 - self.mean) / self.std).astype(dtype)
        else:
            self._lut = None

    def _pass_length(self):
        return len(self.labels) if self.sampler is None else len(self.sampler)

    def __len__(self):
        n = self._pass_length()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_samples(self):
        """How many images one pass yields (fewer than ``len(images)`` with ``drop_last``)."""
        return len(self) * self.batch_size if self.drop_last else self._pass_length()

    def _normalise(self, raw):
        if self._lut is not None:
            return self._lut[raw]
        return ((raw - self.mean) / self.std).astype(self.dtype)

    def _sampled_order(self):
        order = np.fromiter(iter(self.sampler), dtype=np.int64, count=len(self.sampler))
        if order.size and (order.min() < 0 or order.max() >= len(self.labels)):
            raise ValueError(f"sampler yielded an index outside [0, {len(self.labels)}): "
                             f"{order.min() if order.min() < 0 else order.max()}")
        return order

    def __iter__(self):
        n = self._pass_length()
        if self.sampler is not None:
            order = self._sampled_order()
        else:
            order = self._rng.permutation(n) if self.shuffle else None
        for b in range(len(self)):
            start, stop = b * self.batch_size, min((b + 1) * self.batch_size, n)
            index = slice(start, stop) if order is None else order[start:stop]
            yield self._normalise(self.images[index]), self.labels[index].copy()

    def state_dict(self):
        """``{"rng": uint64 array}``: the shuffling generator's state (PCG64)."""
        return {"rng": get_rng_state(self._rng)}

    def load_state_dict(self, state):
        """Restore the shuffling generator saved by ``state_dict``."""
        if not hasattr(state, "keys") or "rng" not in state:
            raise ValueError("loader state must be a dict with key 'rng'")
        set_rng_state(self._rng, state["rng"])

    def __repr__(self):
        return (f"DataLoader({len(self.labels)} images {self.images.shape[1:]}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, mean={self.mean}, std={self.std})")
