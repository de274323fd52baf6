"""CIFAR-10, binary version, from a local folder or its public mirror.

The binary version is six files of 10,000 records each, ``data_batch_1.bin`` .. ``data_batch_5.bin``
(training) and ``test_batch.bin``; a record is one label byte (0..9) and 3,072 pixel bytes, the
32x32 red plane, then green, then blue, each row by row. Reading them needs no pickle (the Python
version of the data set is pickled).

Where the files are looked for: ``root`` if given, else ``data/cifar10`` relative to the current
directory; in that folder or in its ``cifar-10-batches-bin/`` subfolder (as the archive unpacks). When
missing, the archive is downloaded (``download=True``), its MD5 checked, and its six batch files
unpacked into ``root/cifar-10-batches-bin/`` through ``minicnn._io.atomic_write``, so a folder never
holds a partial file under a batch file's name.
"""
import os
import tarfile

import numpy as np

from .._io import atomic_write
from .datasets import DatasetNotFoundError, _fetch

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
CIFAR10_SUBFOLDER = "cifar-10-batches-bin"
CIFAR10_FILES = {"train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)), "test": ("test_batch.bin",)}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
#: Per-channel mean and standard deviation of the 50,000 training images scaled to [0, 1] (the values
#: published with the data set's common training recipes; the training files are not on this machine).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
RECORD_BYTES = 1 + 3 * 32 * 32
RECORDS_PER_FILE = 10000


def read_cifar10_batch(path):
    """``(images, labels)`` of one binary batch file: ``uint8`` (N, 3, 32, 32) and ``int64`` (N,).

    Raises ``ValueError`` naming the file for a size that is not a whole number of 3,073-byte records
    (a truncated file) or a label outside 0..9 (a corrupt one)."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD_BYTES:
        raise ValueError(f"{path}: {raw.size} bytes is not a whole number of {RECORD_BYTES}-byte CIFAR-10 "
                         f"records (truncated or not a CIFAR-10 binary batch file)")
    records = raw.reshape(-1, RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= len(CIFAR10_CLASSES):
        bad = int(np.argmax(labels >= len(CIFAR10_CLASSES)))
        raise ValueError(f"{path}: record {bad} has label {int(labels[bad])}, expected 0..9 (corrupt file)")
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), labels


def _batch_folder(folder):
    """``(path, missing)``: of ``folder`` and ``folder/cifar-10-batches-bin``, the one missing fewest
    batch files, and the names it misses (none: it holds the data set)."""
    options = []
    for candidate in (folder, os.path.join(folder, CIFAR10_SUBFOLDER)):
        names = [f for files in CIFAR10_FILES.values() for f in files]
        options.append((candidate, [f for f in names if not os.path.isfile(os.path.join(candidate, f))]))
    return min(options, key=lambda option: len(option[1]))


def _download_and_unpack(folder, url, md5, quiet):
    os.makedirs(folder, exist_ok=True)
    archive = os.path.join(folder, os.path.basename(url))
    if not quiet:
        print(f"Downloading {url}", flush=True)
    _fetch(url, archive, md5)
    target = os.path.join(folder, CIFAR10_SUBFOLDER)
    os.makedirs(target, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        for files in CIFAR10_FILES.values():
            for name in files:
                member = tar.getmember(f"{CIFAR10_SUBFOLDER}/{name}")
                atomic_write(os.path.join(target, name), lambda out: out.write(tar.extractfile(member).read()))
    os.remove(archive)


def load_cifar10(root=None, download=True, split="all", quiet=False, url=CIFAR10_URL, md5=CIFAR10_MD5):
    """CIFAR-10's images ``uint8`` (N, 3, 32, 32) and labels ``int64`` (N,), like ``load_mnist``:
    ``split="all"`` gives ``((train_images, train_labels), (test_images, test_labels))`` (50,000 and
    10,000), ``"train"`` or ``"test"`` that part. ``url`` and ``md5`` name the archive to download."""
    if split not in ("all", "train", "test"):
        raise ValueError(f"split must be 'all', 'train' or 'test', got {split!r}")
    folder = os.fspath(root) if root is not None else os.path.join("data", "cifar10")
    found, missing = _batch_folder(folder)
    if missing:
        names = ", ".join(missing)
        if not download:
            raise DatasetNotFoundError(f"CIFAR-10 not found in {os.path.abspath(folder)} (download disabled): "
                                       f"missing {names}; put them there or in its {CIFAR10_SUBFOLDER}/, from {url}")
        try:
            _download_and_unpack(folder, url, md5, quiet)
        except (OSError, ValueError, tarfile.TarError, KeyError) as e:
            raise DatasetNotFoundError(f"CIFAR-10 not found in {os.path.abspath(folder)} and its download from "
                                       f"{url} failed ({e}); put {names} there by hand") from None
        found, _ = _batch_folder(folder)
    parts = []
    for s in (("train", "test") if split == "all" else (split,)):
        batches = [read_cifar10_batch(os.path.join(found, f)) for f in CIFAR10_FILES[s]]
        parts.append((np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])))
    return parts[0] if len(parts) == 1 else tuple(parts)
