"""The CIFAR-10 binary reader on generated files in the real format (the real files cannot be downloaded
here): whole, truncated, corrupt, from a folder or an archive, with checksum failures."""
import hashlib
import io
import os
import tarfile

import numpy as np
import pytest

from minicnn.data import DatasetNotFoundError
from minicnn.data.cifar import CIFAR10_FILES, CIFAR10_SUBFOLDER, load_cifar10, read_cifar10_batch


def make_batch(n, seed):
    """``(bytes, images, labels)``: n records in CIFAR-10's binary layout."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    raw = np.concatenate([labels[:, None], images.reshape(n, -1)], axis=1).tobytes()
    return raw, images, labels.astype(np.int64)


def write_dataset(folder, n=7):
    """The six batch files in ``folder``; returns {file name: (images, labels)}."""
    os.makedirs(folder, exist_ok=True)
    content = {}
    for seed, name in enumerate(f for files in CIFAR10_FILES.values() for f in files):
        raw, images, labels = make_batch(n, seed)
        with open(os.path.join(folder, name), "wb") as f:
            f.write(raw)
        content[name] = (images, labels)
    return content


def test_reads_records_in_the_binary_layout(tmp_path):
    raw, images, labels = make_batch(5, 0)
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(raw)
    got_images, got_labels = read_cifar10_batch(path)
    assert got_images.dtype == np.uint8 and got_images.shape == (5, 3, 32, 32)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    # the first pixel bytes of record 1 are its red plane's first row
    assert raw[3073 + 1] == got_images[1, 0, 0, 0] and raw[3073 + 1 + 1024] == got_images[1, 1, 0, 0]


def test_truncated_and_corrupt_files_are_named(tmp_path):
    raw, _, _ = make_batch(3, 1)
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(raw[:-10])
    with pytest.raises(ValueError, match=r"truncated.bin: 9209 bytes is not a whole number of 3073-byte"):
        read_cifar10_batch(truncated)
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.bin: 0 bytes"):
        read_cifar10_batch(empty)
    corrupt = bytearray(raw)
    corrupt[2 * 3073] = 12
    bad = tmp_path / "bad.bin"
    bad.write_bytes(bytes(corrupt))
    with pytest.raises(ValueError, match=r"bad.bin: record 2 has label 12, expected 0..9"):
        read_cifar10_batch(bad)


@pytest.mark.parametrize("sub", ["", CIFAR10_SUBFOLDER])
def test_loads_from_the_folder_or_its_archive_subfolder(tmp_path, sub):
    content = write_dataset(tmp_path / sub)
    (train_x, train_y), (test_x, test_y) = load_cifar10(tmp_path, download=False)
    assert train_x.shape == (35, 3, 32, 32) and test_x.shape == (7, 3, 32, 32)
    np.testing.assert_array_equal(train_x[7:14], content["data_batch_2.bin"][0])
    np.testing.assert_array_equal(train_y[-7:], content["data_batch_5.bin"][1])
    np.testing.assert_array_equal(test_y, content["test_batch.bin"][1])
    x, y = load_cifar10(tmp_path, download=False, split="test")
    np.testing.assert_array_equal(x, test_x)


def test_missing_files_without_download(tmp_path):
    write_dataset(tmp_path)
    os.remove(tmp_path / "data_batch_3.bin")
    with pytest.raises(DatasetNotFoundError, match=r"CIFAR-10 not found .*\(download disabled\): missing data_batch_3.bin;"):
        load_cifar10(tmp_path, download=False)
    with pytest.raises(ValueError, match="split must be"):
        load_cifar10(tmp_path, split="validation")


def make_archive(tmp_path):
    """A cifar-10-binary.tar.gz of generated batches; returns (file:// URL, MD5, content)."""
    content = write_dataset(tmp_path / "src")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in content:
            tar.add(tmp_path / "src" / name, arcname=f"{CIFAR10_SUBFOLDER}/{name}")
    path = tmp_path / "cifar-10-binary.tar.gz"
    path.write_bytes(buf.getvalue())
    return path.as_uri(), hashlib.md5(buf.getvalue()).hexdigest(), content


def test_download_checks_the_archive_and_unpacks_it(tmp_path):
    url, md5, content = make_archive(tmp_path)
    root = tmp_path / "root"
    (train_x, _), (test_x, test_y) = load_cifar10(root, url=url, md5=md5, quiet=True)
    np.testing.assert_array_equal(test_y, content["test_batch.bin"][1])
    assert sorted(os.listdir(root)) == [CIFAR10_SUBFOLDER]  # the archive is removed once unpacked
    assert sorted(os.listdir(root / CIFAR10_SUBFOLDER)) == sorted(content)
    mode = os.stat(root / CIFAR10_SUBFOLDER / "test_batch.bin").st_mode & 0o777
    assert mode == 0o666 & ~_umask()


def test_checksum_failure_leaves_nothing_under_the_real_names(tmp_path):
    url, md5, _ = make_archive(tmp_path)
    root = tmp_path / "root"
    with pytest.raises(DatasetNotFoundError, match="checksum mismatch"):
        load_cifar10(root, url=url, md5="0" * 32, quiet=True)
    assert not any(name.endswith(".bin") or name.endswith(".tar.gz") for name in os.listdir(root))


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
