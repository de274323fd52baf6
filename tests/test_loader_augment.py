"""DataLoader: per-channel mean/std, random crop with zero padding and horizontal flips (compiled),
seeded, against the one-sample-at-a-time reference in naive.py, resumed exactly from state_dict."""
import numpy as np
import pytest

from minicnn import data

import naive

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261)


def cifar_like(n=13, seed=0, dtype=np.uint8):
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        return rng.integers(0, 256, size=(n, 3, 8, 6), dtype=np.uint8)
    return rng.random((n, 3, 8, 6)).astype(dtype)


def test_per_channel_normalisation():
    images = cifar_like()
    for dtype in (np.float32, np.float64):
        loader = data.DataLoader(images, np.arange(13), batch_size=5, mean=MEAN, std=STD, dtype=dtype)
        x = np.concatenate([b for b, _ in loader])
        expected = (images / 255.0 - np.array(MEAN)[:, None, None]) / np.array(STD)[:, None, None]
        np.testing.assert_allclose(x, expected, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-6)
    floats = cifar_like(dtype=np.float64)
    loader = data.DataLoader(floats, np.arange(13), batch_size=4, mean=list(MEAN), std=np.array(STD),
                             dtype=np.float64)
    x = np.concatenate([b for b, _ in loader])
    np.testing.assert_allclose(x, (floats - np.array(MEAN)[:, None, None]) / np.array(STD)[:, None, None], rtol=1e-14)
    assert loader.mean == MEAN


@pytest.mark.parametrize("crop,p,dtype,shuffle", [((8, 4), 0.5, np.uint8, True), (((6, 4), 2), 0.0, np.uint8, False),
                                                  (None, 1.0, np.float32, True), ((5, 0), 0.3, np.float64, True),
                                                  ((12, 2), 0.5, np.uint8, True)])
def test_crop_and_flip_match_the_reference(crop, p, dtype, shuffle):
    images = cifar_like(dtype=dtype)
    kwargs = dict(random_crop=crop, horizontal_flip=p) if crop is not None else dict(horizontal_flip=p)
    if crop == (12, 2):  # a crop larger than the image: only the padding makes room
        images = images[:, :, :6, :6]
        kwargs["random_crop"] = (10, 2)
    loader = data.DataLoader(images, np.arange(13), batch_size=4, shuffle=shuffle, seed=11, mean=MEAN, std=STD)
    H, W = images.shape[2:]
    for _ in range(2):  # two passes: the draws continue from the same generator
        plan = _replay_from_state(dict(loader._rng.bit_generator.state), 13, 4, H, W, loader.random_crop,
                                  loader.horizontal_flip, shuffle)
        for (x, y), (index, oy, ox, flip, pad, size) in zip(list(loader), plan):
            np.testing.assert_array_equal(y, index)
            ref = naive.crop_flip_normalise(images, index, oy, ox, flip, pad, size, MEAN, STD)
            np.testing.assert_allclose(x, ref, rtol=1e-6, atol=1e-6)
            assert x.dtype == np.float32 and x.flags.c_contiguous


def _replay_from_state(state, n, batch_size, H, W, crop, p, shuffle):
    """The loader's documented draws, from a generator in the loader's state ``state``."""
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    order = rng.permutation(n) if shuffle else np.arange(n)
    out = []
    for start in range(0, n, batch_size):
        index = order[start:start + batch_size]
        B = len(index)
        if crop is None:
            (h, w), pad, oy, ox = (H, W), 0, np.zeros(B, int), np.zeros(B, int)
        else:
            (h, w), pad = crop
            oy = rng.integers(0, H + 2 * pad - h + 1, B)
            ox = rng.integers(0, W + 2 * pad - w + 1, B)
        flip = rng.random(B) < p if p > 0 else np.zeros(B, bool)
        out.append((index, oy, ox, flip, pad, (h, w)))
    return out


def test_augmentation_really_moves_pixels_and_pads_with_black():
    images = np.full((64, 1, 4, 4), 255, np.uint8)
    images[:, :, :, 0] = 0  # a black left column
    loader = data.DataLoader(images, np.arange(64), batch_size=64, random_crop=(4, 2), horizontal_flip=True,
                             seed=0, dtype=np.float64)
    x, _ = next(iter(loader))
    assert x.min() == 0.0 and x.max() == 1.0
    assert (x == 0).sum(axis=(1, 2, 3)).std() > 0  # different crops per sample
    flat = data.DataLoader(images, np.arange(64), batch_size=64, horizontal_flip=1.0, dtype=np.float64)
    x, _ = next(iter(flat))
    np.testing.assert_array_equal(x[:, :, :, -1], 0.0)  # the black column moved right
    np.testing.assert_array_equal(x[:, :, :, :-1], 1.0)


def test_resume_from_state_dict_augments_identically():
    images = cifar_like(20)
    make = lambda seed: data.DataLoader(images, np.arange(20), batch_size=6, shuffle=True, seed=seed,  # noqa: E731
                                        random_crop=(8, 4), horizontal_flip=0.5, mean=MEAN, std=STD)
    a = make(3)
    list(a)
    state = a.state_dict()
    expected = [list(a) for _ in range(2)]
    b = make(999)
    b.load_state_dict(state)
    for epoch in expected:
        for (xa, ya), (xb, yb) in zip(epoch, list(b)):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(mean=(0.5, 0.5)), ValueError, r"mean must have one value per channel: the images have 3 channel"),
    (dict(std=(1, 1, 0)), ValueError, "std must be a positive finite number"),
    (dict(std="1"), ValueError, "std must be"),
    (dict(mean=(0.1, float("nan"), 0.2)), ValueError, "mean must be a finite number"),
    (dict(random_crop=(20, 2)), ValueError, r"random_crop size \(20, 20\) is larger than the padded images \(12, 10\)"),
    (dict(random_crop=(4, -1)), ValueError, "random_crop padding"),
    (dict(random_crop=(4, 1, 2)), ValueError, "random_crop must be size or"),
    (dict(random_crop=0), ValueError, "random_crop size"),
    (dict(random_crop="big"), TypeError, "random_crop size"),
    (dict(horizontal_flip=1.5), ValueError, "horizontal_flip must be a probability"),
])
def test_bad_augmentation_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        data.DataLoader(cifar_like(), np.arange(13), batch_size=4, **kwargs)


@pytest.mark.parametrize("augment", [False, True])
def test_warmup_draws_nothing_and_leaves_the_batches_alone(augment):
    """loader.warmup() compiles the batch kernel on one image without drawing from the loader's
    generator: the batches after it are those of a loader that was never warmed up."""
    kwargs = dict(batch_size=4, shuffle=True, seed=3, mean=MEAN, std=STD)
    if augment:
        kwargs.update(random_crop=(6, 2), horizontal_flip=0.5)
    images = cifar_like()
    warmed, plain = data.DataLoader(images, np.arange(13), **kwargs), data.DataLoader(images, np.arange(13), **kwargs)
    warmed.warmup()
    for (xa, ya), (xb, yb) in zip(warmed, plain):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
