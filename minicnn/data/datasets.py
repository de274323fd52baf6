"""MNIST, Fashion-MNIST and KMNIST from a local folder or their public mirrors, and scikit-learn's
bundled 8x8 digits scaled to MNIST's 28x28 as the dataset that is always there, offline.

Every loader returns images as ``uint8`` arrays ``(N, 28, 28)`` (0 = background, 255 = ink) and
labels as ``int64`` arrays ``(N,)`` with values 0..9.

Where the files are looked for: ``root`` if given, else ``data/<name>/`` relative to the current
directory (``data/mnist``, ``data/fashion-mnist``, ``data/kmnist``; run from the repository's top
folder to use its ``data/``). A folder holds the four standard files, each gzipped or not::

    train-images-idx3-ubyte(.gz)  train-labels-idx1-ubyte(.gz)
    t10k-images-idx3-ubyte(.gz)   t10k-labels-idx1-ubyte(.gz)

Files that are missing are downloaded (``download=True``) from the dataset's mirrors over HTTP(S) with
``pooch``'s downloader (a progress bar; a mirror that does not answer for ``DOWNLOAD_TIMEOUT`` seconds
is given up, by name, for the next), each checked against its known MD5 before it is moved into place
(``minicnn._io.atomic_write``), so a folder never holds a partial or wrong file under a standard name.
"""
import hashlib
import importlib.util
import os
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

import numpy as np

from .._io import atomic_write
from .idx import read_idx_images, read_idx_labels

#: The two parts of every dataset and their (images, labels) file names, without ``.gz``.
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
DOWNLOAD_TIMEOUT = 15  # seconds without an answer (connecting, or between data) before a mirror is given up


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files are not in the folder and could not be downloaded."""


@dataclass(frozen=True)
class IdxDataset:
    """What is known about an MNIST-like dataset: where to get it, how to check it, how to normalise it.

    ``md5`` maps each gzipped file name to its MD5 (the values torchvision checks too); ``mean`` and
    ``std`` are the per-pixel statistics of the training images scaled to [0, 1].
    """

    name: str
    title: str
    mirrors: tuple
    md5: dict = field(hash=False)
    mean: float
    std: float
    classes: tuple


# One record per dataset: the same fields, each dataset's own mirrors, hashes and statistics (data, so
# the records look alike line for line; there is no logic in them to share).
MNIST = IdxDataset(
    name="mnist",
    title="MNIST",
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
             "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    md5={"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
         "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
         "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
         "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
    mean=0.1307, std=0.3081,
    classes=tuple(str(d) for d in range(10)),
)
FASHION_MNIST = IdxDataset(
    name="fashion-mnist",
    title="Fashion-MNIST",
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    md5={"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
         "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
         "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
         "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
    mean=0.2860, std=0.3530,
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
             "Bag", "Ankle boot"),
)
KMNIST = IdxDataset(
    name="kmnist",
    title="KMNIST",
    mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
    md5={"train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
         "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
         "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
         "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134"},
    mean=0.1918, std=0.3483,
    classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
)
#: The downloadable datasets by name (the names ``scripts/train.py --dataset`` takes).
DATASETS = {d.name: d for d in (MNIST, FASHION_MNIST, KMNIST)}


def default_root(name):
    """``data/<name>`` relative to the current directory."""
    return os.path.join("data", name)


def _find(folder, base):
    """The path of ``base.gz`` or ``base`` in ``folder`` (the gzipped one first), or None."""
    for candidate in (base + ".gz", base):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    return None


def _splits(split):
    if split == "all":
        return ("train", "test")
    if split in SPLIT_FILES:
        return (split,)
    raise ValueError(f"split must be 'all', 'train' or 'test', got {split!r}")


class _Hashing:
    """What the downloader writes into: the temporary file, with the MD5 computed on the way."""

    def __init__(self, f):
        self.f, self.md5 = f, hashlib.md5()

    def write(self, chunk):
        self.md5.update(chunk)
        return self.f.write(chunk)

    def flush(self):
        self.f.flush()


def _fetch(url, destination, md5, quiet=False):
    """Download ``url`` to ``destination`` (through ``minicnn._io.atomic_write``, so that a partial or
    wrong file never gets the final name), checking its MD5 first. ``pooch``'s HTTP downloader (requests)
    gives up after ``DOWNLOAD_TIMEOUT`` seconds without an answer; unless ``quiet``, a progress bar."""
    import pooch
    from tqdm import tqdm

    def write(f):
        out = _Hashing(f)
        # total=1 until pooch sets the announced length (pooch tests the bar's truth, which needs a total)
        bar = False if quiet else tqdm(total=1, desc=os.path.basename(destination), unit="B", unit_scale=True,
                                       file=sys.stderr, dynamic_ncols=True, delay=0.5)
        try:
            if urllib.parse.urlparse(url).scheme == "file":  # a mirror on a local or network disk
                with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as source:
                    while chunk := source.read(1 << 16):
                        out.write(chunk)
            else:
                pooch.HTTPDownloader(progressbar=bar, timeout=DOWNLOAD_TIMEOUT)(url, out, None)
        finally:
            if bar is not False:
                bar.close()
        if out.md5.hexdigest() != md5:
            raise ValueError(f"checksum mismatch: MD5 {out.md5.hexdigest()}, expected {md5}")

    atomic_write(destination, write)


def _reason(error):
    """A short reason for a failed download (requests' messages nest the whole connection pool)."""
    import requests

    if isinstance(error, requests.exceptions.Timeout):
        return f"no answer within {DOWNLOAD_TIMEOUT} s"
    if isinstance(error, requests.exceptions.ConnectionError):
        return f"cannot connect: {str(error).rsplit(': ', 1)[-1].strip(chr(34) + chr(39) + ')')[:120]}"
    return str(error)[:200]


def _missing_message(spec, folder, missing, splits, reason):
    needed = [base for s in splits for base in SPLIT_FILES[s]]
    return (f"{spec.title} not found: {', '.join(missing)} (.gz or not) missing in {os.path.abspath(folder)}"
            f" ({reason}); put the files {', '.join(b + '.gz' for b in needed)} (gzipped or not) in"
            f" {os.path.abspath(folder)}, from {' or '.join(spec.mirrors)}")


def download_files(spec, folder, bases, quiet=False):
    """Download the gzipped files ``bases`` (names without ``.gz``) of ``spec`` into ``folder``.

    Tries each mirror in turn for each file; a file that fails on every mirror (network error or
    checksum mismatch) raises ``DatasetNotFoundError`` listing what went wrong.
    """
    # The folders this call creates, innermost first, so that a failed download leaves no empty ones.
    created = []
    path = os.path.abspath(folder)
    while not os.path.exists(path):
        created.append(path)
        path = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise DatasetNotFoundError(f"cannot create {folder}: {e}") from None
    try:
        for base in bases:
            name = base + ".gz"
            errors = []
            for mirror in spec.mirrors:
                url = mirror.rstrip("/") + "/" + name
                if not quiet:
                    print(f"Downloading {url}", file=sys.stderr, flush=True)
                try:
                    _fetch(url, os.path.join(folder, name), spec.md5[name], quiet)
                    break
                except (OSError, ValueError) as e:  # requests' errors (timeouts too) are OSErrors
                    errors.append(f"{url}: {_reason(e)}")
                    if not quiet:
                        print(f"  {mirror} failed ({_reason(e)}); "
                              + ("trying the next mirror" if mirror != spec.mirrors[-1] else "no mirror left"),
                              file=sys.stderr, flush=True)
            else:
                raise DatasetNotFoundError("download failed: " + "; ".join(errors))
    except BaseException:
        for path in created:
            try:
                os.rmdir(path)  # only if empty
            except OSError:
                break
        raise


def load_idx_dataset(spec, root=None, download=True, split="all", quiet=False):
    """The images and labels of ``spec`` (an ``IdxDataset``) from ``root`` (default ``data/<name>``).

    ``split="all"`` returns ``((train_images, train_labels), (test_images, test_labels))``;
    ``split="train"`` or ``"test"`` returns that part's ``(images, labels)`` and needs only its two
    files. Missing files are downloaded when ``download`` is true. Raises ``DatasetNotFoundError``
    saying which files to put in which folder, and ``ValueError`` for a corrupt file, images that are
    not 28x28, labels outside 0..9, or a label count that differs from the image count.
    """
    splits = _splits(split)
    folder = os.fspath(root) if root is not None else default_root(spec.name)
    needed = [base for s in splits for base in SPLIT_FILES[s]]
    missing = [base for base in needed if _find(folder, base) is None]
    if missing:
        if not download:
            raise DatasetNotFoundError(_missing_message(spec, folder, missing, splits, "download disabled"))
        try:
            download_files(spec, folder, missing, quiet=quiet)
        except DatasetNotFoundError as e:
            raise DatasetNotFoundError(_missing_message(spec, folder, missing, splits, str(e))) from None
    parts = []
    for s in splits:
        image_path, label_path = (_find(folder, base) for base in SPLIT_FILES[s])
        images = read_idx_images(image_path)
        labels = read_idx_labels(label_path)
        if images.shape[1:] != (28, 28):
            raise ValueError(f"{image_path}: images must be 28x28, got shape {images.shape}")
        if len(labels) != len(images):
            raise ValueError(f"{label_path} has {len(labels)} labels but {image_path} has "
                             f"{len(images)} images")
        if labels.size and labels.max() >= len(spec.classes):
            raise ValueError(f"{label_path}: labels must be 0..{len(spec.classes) - 1}, "
                             f"found {int(labels.max())}")
        parts.append((images, labels.astype(np.int64)))
    return parts[0] if len(parts) == 1 else tuple(parts)


def load_mnist(root=None, download=True, split="all", quiet=False):
    """MNIST: see ``load_idx_dataset``. Default folder ``data/mnist``."""
    return load_idx_dataset(DATASETS["mnist"], root, download, split, quiet)


def load_fashion_mnist(root=None, download=True, split="all", quiet=False):
    """Fashion-MNIST: see ``load_idx_dataset``. Default folder ``data/fashion-mnist``."""
    return load_idx_dataset(DATASETS["fashion-mnist"], root, download, split, quiet)


def load_kmnist(root=None, download=True, split="all", quiet=False):
    """KMNIST (Kuzushiji-MNIST): see ``load_idx_dataset``. Default folder ``data/kmnist``."""
    return load_idx_dataset(DATASETS["kmnist"], root, download, split, quiet)


# -- scikit-learn's digits at MNIST's size --------------------------------------------------------

#: Mean and standard deviation of ``load_digits``'s training images scaled to [0, 1]
#: (measured once; ``tests/test_data.py`` checks them against the data).
DIGITS_MEAN = 0.1559
DIGITS_STD = 0.2774
DIGITS_TEST_FRACTION = 0.2


def _linear_resize_matrix(n_in, n_out):
    """``(n_out, n_in)`` matrix of linear interpolation weights, pixel centres aligned
    (``align_corners=False``), edges clamped; every row sums to 1."""
    src = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    src = np.clip(src, 0, n_in - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    w = src - lo
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), lo] += 1 - w
    m[np.arange(n_out), hi] += w
    return m


def upscale_digits(images, box=20, size=28, max_value=16):
    """8x8 digit images (values 0..``max_value``) as ``uint8`` images ``(N, size, size)``, 0..255.

    Like MNIST, whose digits were scaled to fit a 20x20 box and centred in 28x28: each image is
    bilinearly resized to ``box`` x ``box`` and placed in the middle of a blank ``size`` x ``size``
    image (a 4-pixel border for the defaults).
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images must be (N, s, s), got shape {images.shape}")
    if not 1 <= box <= size or (size - box) % 2:
        raise ValueError(f"box must be between 1 and size={size} with an even border, got {box}")
    m = _linear_resize_matrix(images.shape[1], box)
    scaled = np.einsum("ij,njk,lk->nil", m, images, m) * (255.0 / max_value)
    out = np.zeros((len(images), size, size), dtype=np.uint8)
    border = (size - box) // 2
    out[:, border:border + box, border:border + box] = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return out


def _sklearn_digits():
    """scikit-learn's digits: ``(images (1797, 8, 8) float64, labels (1797,) int64)``, read from the file
    scikit-learn ships (``sklearn/datasets/data/digits.csv.gz``, one row of 64 pixels and the label per
    image) without importing scikit-learn: ``import sklearn.datasets`` took 0.97 s, most of a warm first
    run's wait (measured); through ``sklearn.datasets.load_digits`` if that file is not where expected."""
    spec = importlib.util.find_spec("sklearn")
    folders = (spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = os.path.join(folder, "datasets", "data", "digits.csv.gz")
        if os.path.isfile(path):
            data = np.loadtxt(path, delimiter=",")
            if data.shape == (1797, 65):
                return data[:, :64].reshape(-1, 8, 8), data[:, 64].astype(np.int64)
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    return bunch.images, bunch.target.astype(np.int64)


def load_digits(split="all", test_fraction=DIGITS_TEST_FRACTION, seed=0):
    """scikit-learn's bundled handwritten digits (1,797 images) at 28x28, split into train and test.

    The split is stratified and fixed by ``seed``: in each class, a ``test_fraction`` of the images
    (chosen by ``np.random.default_rng(seed)``) form the test set, 360 of the 1,797 by default.
    Returns like ``load_mnist``.
    """
    splits = _splits(split)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction!r}")
    images, labels = _sklearn_digits()
    images = upscale_digits(images)
    rng = np.random.default_rng(seed)
    test_mask = np.zeros(len(labels), dtype=bool)
    for c in range(10):
        members = np.flatnonzero(labels == c)
        chosen = rng.permutation(members)[:int(round(test_fraction * len(members)))]
        test_mask[chosen] = True
    parts = {"train": (images[~test_mask], labels[~test_mask]),
             "test": (images[test_mask], labels[test_mask])}
    result = tuple(parts[s] for s in splits)
    return result[0] if len(result) == 1 else result
