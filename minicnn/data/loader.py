"""Mini-batches of normalised NCHW images, in order or shuffled by a seeded generator."""
import numbers

import numpy as np

from .._validate import pair, positive_int
from ..kernels.augment import assemble_batch
from ..random import as_rng, get_rng_state, set_rng_state


def _per_channel(name, value, channels, positive):
    """``value`` (a number, or a sequence with one number per channel) as a ``(channels,)`` float64 array
    of finite numbers (> 0 with ``positive``)."""
    bound = "a positive finite number" if positive else "a finite number"
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        values = [float(value)] * channels
    elif isinstance(value, (list, tuple, np.ndarray)) and np.ndim(value) == 1:
        values = list(value)
        if len(values) != channels:
            raise ValueError(f"{name} must have one value per channel: the images have {channels} channel(s), "
                             f"got {len(values)} values {tuple(values)!r}")
        if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
            raise ValueError(f"{name} must hold numbers, got {value!r}")
    else:
        raise ValueError(f"{name} must be {bound} or a sequence of them (one per channel), got {value!r}")
    arr = np.array(values, dtype=np.float64)
    if not np.isfinite(arr).all() or (positive and not (arr > 0).all()):
        raise ValueError(f"{name} must be {bound} (or one per channel), got {value!r}")
    return arr


def _crop_arg(random_crop, H, W):
    """``random_crop`` (None, ``size`` or ``(size, padding)``, ``size`` an int or ``(h, w)``) as
    ``((h, w), padding)`` or None."""
    if random_crop is None:
        return None
    if isinstance(random_crop, (tuple, list)):
        if len(random_crop) != 2:
            raise ValueError(f"random_crop must be size or (size, padding), got {random_crop!r}")
        return _crop_pair(random_crop[0], random_crop[1], H, W)
    return _crop_pair(random_crop, 0, H, W)


def _crop_pair(size, padding, H, W):
    try:
        h, w = pair("random_crop size", size)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{e} (random_crop is (size, padding) or size)") from None
    padding = positive_int("random_crop padding", padding, minimum=0)
    if h > H + 2 * padding or w > W + 2 * padding:
        raise ValueError(f"random_crop size ({h}, {w}) is larger than the padded images "
                         f"({H + 2 * padding}, {W + 2 * padding}) (images {H}x{W}, padding {padding})")
    return (h, w), padding


def _probability(name, p):
    if p is True:
        return 0.5
    if p is False:
        return 0.0
    if not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1] (or True for 0.5), got {p!r}")
    return float(p)


class DataLoader:
    """Iterates over ``(images, labels)`` in batches of ``batch_size``.

    ``images``: ``(N, H, W)`` or ``(N, C, H, W)``; ``uint8`` (0..255, scaled to [0, 1]) or floats
    (taken as already in [0, 1]). ``labels``: ``(N,)`` integers. Each batch is
    ``(x, y)``: ``x`` a new ``(B, C, H, W)`` array of ``dtype`` holding ``(pixel - mean) / std``, ``y``
    a new ``(B,)`` int64 array. Batches are fresh arrays, never overwritten by later batches (a
    64-image batch costs microseconds to allocate next to a forward pass).

    ``mean`` and ``std``: one number for every channel, or a sequence with one value per channel
    (e.g. CIFAR-10's ``(0.4914, 0.4822, 0.4465)``), as torchvision's ``Normalize``.

    Augmentation (for a training loader), done while the batch is assembled, in a compiled kernel
    (``minicnn.kernels.augment``), with torchvision's semantics, crop first:

    - ``random_crop=(size, padding)`` (or just ``size``): pad each image by ``padding`` zero pixels on
      every side and crop a random ``size`` window (an int or ``(h, w)``), as ``RandomCrop(size,
      padding=padding)``; padding pixels are zeros BEFORE normalisation (they become ``-mean / std``).
      Batches then have shape ``(B, C, h, w)``.
    - ``horizontal_flip=p``: mirror each image left-right with probability ``p`` (``True`` means 0.5,
      as ``RandomHorizontalFlip()``).

    ``shuffle=True`` draws a new order for every pass (every ``iter()``) from a generator seeded by
    ``seed`` (an int, a ``numpy.random.Generator``, or None to draw a seed from minicnn's default
    generator, which ``minicnn.manual_seed`` fixes). The augmentations draw from the same generator,
    per batch and in this order: the crop rows ``integers(0, H + 2 * padding - h + 1, B)``, the crop
    columns (likewise), then ``random(B) < p`` for the flips. ``state_dict()``/``load_state_dict()``
    save and restore that generator, so a run resumed at an epoch boundary shuffles and augments
    exactly as an uninterrupted one. ``drop_last=True`` leaves out a final batch smaller than
    ``batch_size``.

    ``sampler``: instead of ``shuffle``, an object with ``len()`` whose iteration yields the indices
    of one pass, in order (e.g. ``minicnn.distributed.DistributedSampler``: this rank's share).
    """

    def __init__(self, images, labels, batch_size=64, shuffle=False, seed=None, drop_last=False,
                 mean=0.0, std=1.0, dtype=np.float32, random_crop=None, horizontal_flip=0.0, sampler=None):
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
        if sampler is not None and (shuffle or not (hasattr(sampler, "__len__") and hasattr(sampler, "__iter__"))):
            raise ValueError("sampler must be an iterable of indices with len(), and excludes shuffle=True, "
                             f"got sampler={sampler!r} with shuffle={shuffle!r}")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be np.float32 or np.float64, got {dtype}")
        self.images = images if images.ndim == 4 else images[:, None]
        self.sampler = sampler
        C, H, W = self.images.shape[1:]
        self._mean = _per_channel("mean", mean, C, positive=False)
        self._std = _per_channel("std", std, C, positive=True)
        self.labels = labels.astype(np.int64, copy=False)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.mean = float(mean) if isinstance(mean, numbers.Real) else tuple(float(m) for m in self._mean)
        self.std = float(std) if isinstance(std, numbers.Real) else tuple(float(s) for s in self._std)
        self.dtype = dtype
        self.random_crop = _crop_arg(random_crop, H, W)
        self.horizontal_flip = _probability("horizontal_flip", horizontal_flip)
        if seed is None:
            seed = int(as_rng(None).integers(2**63))
        self._rng = as_rng(seed)
        if images.dtype == np.uint8:
            # One lookup per pixel instead of a cast, a scale and a shift.
            self._lut = ((np.arange(256)[None, :] / 255.0 - self._mean[:, None]) / self._std[:, None]).astype(dtype)
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

    def _sampled_order(self):
        order = np.fromiter(iter(self.sampler), dtype=np.int64, count=len(self.sampler))
        if order.size and (order.min() < 0 or order.max() >= len(self.labels)):
            raise ValueError(f"sampler yielded an index outside [0, {len(self.labels)}): "
                             f"{order.min() if order.min() < 0 else order.max()}")
        return order

    def _batch(self, index):
        """The normalised (and augmented) images ``self.images[index]``, a new array."""
        B = len(index)
        H, W = self.images.shape[2:]
        if self.random_crop is None:
            (S, T), pad = (H, W), 0
            oy = ox = np.zeros(B, np.int64)
        else:
            (S, T), pad = self.random_crop
            oy = self._rng.integers(0, H + 2 * pad - S + 1, B).astype(np.int64)
            ox = self._rng.integers(0, W + 2 * pad - T + 1, B).astype(np.int64)
        if self.horizontal_flip > 0:
            flip = self._rng.random(B) < self.horizontal_flip
        else:
            flip = np.zeros(B, np.bool_)
        out = np.empty((B, self.images.shape[1], S, T), self.dtype)
        return assemble_batch(self.images, index, self._mean, self._std, oy, ox, flip, pad, out, lut=self._lut)

    def warmup(self):
        """Compile (or load from the cache) the kernel that assembles this loader's batches, on one
        image, drawing nothing from its generator: ``minicnn.warmup(..., also=[loader.warmup])``."""
        C, H, W = self.images.shape[1:]
        (S, T), pad = ((H, W), 0) if self.random_crop is None else self.random_crop
        zeros = np.zeros(1, np.int64)
        assemble_batch(self.images, zeros, self._mean, self._std, zeros, zeros, np.zeros(1, np.bool_), pad,
                       np.empty((1, C, S, T), self.dtype), lut=self._lut)

    def __iter__(self):
        n = self._pass_length()
        if self.sampler is not None:
            order = self._sampled_order()
        else:
            order = self._rng.permutation(n) if self.shuffle else np.arange(n)
        for b in range(len(self)):
            index = np.ascontiguousarray(order[b * self.batch_size:min((b + 1) * self.batch_size, n)], np.int64)
            yield self._batch(index), self.labels[index]

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
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, mean={self.mean}, std={self.std}"
                + (f", random_crop={self.random_crop}" if self.random_crop else "")
                + (f", horizontal_flip={self.horizontal_flip}" if self.horizontal_flip else "") + ")")
