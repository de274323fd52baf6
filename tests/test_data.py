"""minicnn.data: IDX files, dataset folders and downloads (served from a temporary folder by a local
HTTP server: this machine has no internet), scikit-learn's digits at 28x28, and the DataLoader."""
import dataclasses
import gzip
import hashlib
import os
import pathlib

import numpy as np
import pytest

import minicnn
from minicnn import data
from minicnn.data import datasets as ds

MNIST_DIR = os.environ.get("MINICNN_MNIST_DIR")
needs_mnist = pytest.mark.skipif(
    not (MNIST_DIR and os.path.isfile(os.path.join(MNIST_DIR, "t10k-images-idx3-ubyte.gz"))),
    reason="real MNIST test set not available: set MINICNN_MNIST_DIR to a folder with "
           "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz")


# -- IDX ------------------------------------------------------------------------------------------------
def idx_bytes(array, type_code=0x08):
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def fake_images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


def fake_labels(n, seed=0):
    return np.random.default_rng(seed + 1).integers(0, 10, size=n).astype(np.uint8)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip_images_and_labels(tmp_path, compress):
    images, labels = fake_images(7), fake_labels(7)
    # The name never decides: a gzipped file without .gz and a raw one with .gz both read.
    image_path = tmp_path / ("images.raw" if compress else "images.gz")
    label_path = tmp_path / "labels"
    data.write_idx(image_path, images, compress=compress)
    data.write_idx(label_path, labels, compress=compress)
    assert (image_path.read_bytes()[:2] == b"\x1f\x8b") == compress
    got = data.read_idx_images(image_path)
    assert got.dtype == np.uint8 and got.shape == (7, 28, 28)
    np.testing.assert_array_equal(got, images)
    np.testing.assert_array_equal(data.read_idx_labels(label_path), labels)


def test_idx_reader_matches_hand_written_header(tmp_path):
    """Independent of write_idx: bytes laid out by hand, big-endian multi-byte types."""
    values = np.arange(-6, 6, dtype=np.int32).reshape(3, 4) * 1000
    (tmp_path / "a").write_bytes(idx_bytes(values, 0x0C))
    got = data.read_idx(tmp_path / "a")
    assert got.dtype == np.int32 and got.dtype.isnative
    np.testing.assert_array_equal(got, values)
    floats = np.linspace(-1, 1, 10).astype(np.float32)
    (tmp_path / "f").write_bytes(gzip.compress(idx_bytes(floats, 0x0D)))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "f"), floats)


def test_idx_wrong_magic_names_file_and_numbers(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte"
    data.write_idx(path, fake_labels(5))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.*0x00000801.*expected 0x00000803"):
        data.read_idx_images(path)
    (tmp_path / "junk").write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(ValueError, match="junk: wrong IDX magic"):
        data.read_idx_labels(tmp_path / "junk")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(tmp_path / "junk")


def test_idx_wrong_dimensions_is_wrong_magic(tmp_path):
    """A 2-D ubyte array has magic 0x00000802: neither an image nor a label file."""
    path = tmp_path / "flat"
    path.write_bytes(idx_bytes(np.zeros((3, 784), np.uint8)))
    with pytest.raises(ValueError, match="0x00000802, expected 0x00000803"):
        data.read_idx_images(path)
    with pytest.raises(ValueError, match="0x00000802, expected 0x00000801"):
        data.read_idx_labels(path)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_truncated_and_trailing_bytes(tmp_path, compress):
    raw = idx_bytes(fake_images(3))
    expected = 16 + 3 * 28 * 28
    assert len(raw) == expected
    wrap = gzip.compress if compress else (lambda b: b)
    (tmp_path / "short").write_bytes(wrap(raw[:-5]))
    with pytest.raises(ValueError, match=rf"short: wrong file size \(truncated\).*{expected} bytes.*{expected - 5}"):
        data.read_idx_images(tmp_path / "short")
    (tmp_path / "long").write_bytes(wrap(raw + b"\x00\x00"))
    with pytest.raises(ValueError, match=rf"long: wrong file size \(trailing bytes.*{expected} bytes.*{expected + 2}"):
        data.read_idx_images(tmp_path / "long")
    (tmp_path / "header").write_bytes(wrap(raw[:10]))
    with pytest.raises(ValueError, match="header: truncated IDX header"):
        data.read_idx_images(tmp_path / "header")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(ValueError, match="empty: not an IDX file"):
        data.read_idx_images(tmp_path / "empty")


def test_idx_truncated_gzip_stream(tmp_path):
    packed = gzip.compress(idx_bytes(fake_images(20)))
    (tmp_path / "cut.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(ValueError, match="cut.gz: corrupt or truncated gzip"):
        data.read_idx_images(tmp_path / "cut.gz")


# -- dataset folders ------------------------------------------------------------------------------------
def make_dataset_folder(folder, n_train=30, n_test=12, gz=True, skip=()):
    """The four standard files with random content; returns the arrays."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"train": (fake_images(n_train, 1), fake_labels(n_train, 1)),
              "test": (fake_images(n_test, 2), fake_labels(n_test, 2))}
    for split, (images, labels) in arrays.items():
        for base, array in zip(ds.SPLIT_FILES[split], (images, labels)):
            if base not in skip:
                data.write_idx(folder / (base + (".gz" if gz else "")), array)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_load_from_local_folder(tmp_path, gz):
    arrays = make_dataset_folder(tmp_path / "m", gz=gz)
    (train_x, train_y), (test_x, test_y) = data.load_mnist(tmp_path / "m", download=False)
    assert train_x.dtype == np.uint8 and train_x.shape == (30, 28, 28) and test_x.shape == (12, 28, 28)
    assert train_y.dtype == np.int64 and test_y.dtype == np.int64
    np.testing.assert_array_equal(train_x, arrays["train"][0])
    np.testing.assert_array_equal(test_y, arrays["test"][1])
    x, y = data.load_kmnist(tmp_path / "m", download=False, split="train")
    np.testing.assert_array_equal(y, arrays["train"][1])


def test_default_folder_is_data_slash_name(tmp_path, monkeypatch):
    make_dataset_folder(tmp_path / "data" / "fashion-mnist")
    monkeypatch.chdir(tmp_path)
    (train_x, _), (test_x, _) = data.load_fashion_mnist(download=False)
    assert len(train_x) == 30 and len(test_x) == 12


def test_test_split_needs_only_the_t10k_files(tmp_path):
    arrays = make_dataset_folder(tmp_path, skip=ds.SPLIT_FILES["train"])
    x, y = data.load_mnist(tmp_path, download=False, split="test")
    np.testing.assert_array_equal(x, arrays["test"][0])
    with pytest.raises(ValueError, match="split must be"):
        data.load_mnist(tmp_path, download=False, split="validation")


def test_partial_folder_says_which_files_to_put_where(tmp_path):
    make_dataset_folder(tmp_path, skip=("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"))
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load_mnist(tmp_path, download=False)
    message = str(info.value)
    assert "\n" not in message
    assert "train-labels-idx1-ubyte, t10k-images-idx3-ubyte" in message
    assert str(tmp_path.resolve()) in message
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        assert name in message
    assert "ossci-datasets.s3.amazonaws.com/mnist" in message


def test_label_count_mismatch_and_bad_labels(tmp_path):
    make_dataset_folder(tmp_path)
    data.write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", fake_labels(11))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz has 11 labels but .*t10k-images.* has 12"):
        data.load_mnist(tmp_path, download=False)
    data.write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.full(12, 10, np.uint8))
    with pytest.raises(ValueError, match=r"labels must be 0..9, found 10"):
        data.load_mnist(tmp_path, download=False, split="test")
    data.write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((12, 32, 32), np.uint8))
    with pytest.raises(ValueError, match=r"images must be 28x28, got shape \(12, 32, 32\)"):
        data.load_mnist(tmp_path, download=False, split="test")


def test_uncompressed_file_is_used_when_no_gz(tmp_path):
    arrays = make_dataset_folder(tmp_path, gz=False, n_test=5)
    x, _ = data.load_mnist(tmp_path, download=False, split="test")
    np.testing.assert_array_equal(x, arrays["test"][0])


# -- downloads --------------------------------------------------------------------------------------------
def closed_port_url():
    """A URL on which nothing listens (connection refused at once)."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/nowhere/"


@pytest.fixture
def mirror(tmp_path, monkeypatch, http_folder):
    """A fake MNIST mirror in a folder, served over local HTTP, with the right MD5s; the real MNIST spec
    is patched to use it (after an unreachable first mirror, to test falling back)."""
    server = tmp_path / "server"
    arrays = make_dataset_folder(server)
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in server.iterdir()}
    spec = dataclasses.replace(ds.MNIST, md5=md5, mirrors=(closed_port_url(), http_folder(tmp_path) + "server/"))
    monkeypatch.setitem(ds.DATASETS, "mnist", spec)
    return server, arrays


def test_downloaded_files_have_normal_permissions(tmp_path, mirror):
    old = os.umask(0o022)
    try:
        data.load_mnist(tmp_path / "m", split="test", quiet=True)
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "m").iterdir()}
    assert set(modes.values()) == {0o644}, modes


def test_a_mirror_that_never_answers_is_given_up_by_name(tmp_path, mirror, monkeypatch, http_folder, capsys):
    server, arrays = mirror
    silent = http_folder(None, "silent")
    monkeypatch.setattr(ds, "DOWNLOAD_TIMEOUT", 0.5)
    monkeypatch.setitem(ds.DATASETS, "mnist", dataclasses.replace(
        ds.DATASETS["mnist"], mirrors=(silent, ds.DATASETS["mnist"].mirrors[1])))
    x, y = data.load_mnist(tmp_path / "m", split="test")
    np.testing.assert_array_equal(x, arrays["test"][0])
    err = capsys.readouterr().err
    assert f"{silent} failed (no answer within 0.5 s); trying the next mirror" in err
    assert "Downloading " + ds.DATASETS["mnist"].mirrors[1] in err


def test_download_fetches_missing_files_checks_md5_and_falls_back(tmp_path, mirror, capsys):
    server, arrays = mirror
    target = tmp_path / "data" / "mnist"
    make_dataset_folder(target, skip=("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))
    before = {p.name: p.stat().st_mtime_ns for p in target.iterdir()}
    (train_x, train_y), (test_x, test_y) = data.load_mnist(target)
    np.testing.assert_array_equal(train_x, arrays["train"][0])
    np.testing.assert_array_equal(test_y, arrays["test"][1])
    names = sorted(p.name for p in target.iterdir())
    assert names == sorted(f + ".gz" for pair in ds.SPLIT_FILES.values() for f in pair)  # no temp files
    for name, mtime in before.items():  # files that were there are left alone
        assert (target / name).stat().st_mtime_ns == mtime
    err = capsys.readouterr().err
    assert "nowhere/train-images-idx3-ubyte.gz" in err and "server/t10k-labels-idx1-ubyte.gz" in err
    assert "failed (cannot connect: [Errno 111] Connection refused); trying the next mirror" in err
    assert "nowhere/train-labels" not in err  # present files are not downloaded


def test_download_checksum_mismatch_leaves_nothing(tmp_path, mirror):
    server, _ = mirror
    data.write_idx(server / "t10k-images-idx3-ubyte.gz", fake_images(12, 99))  # not what the MD5 says
    target = tmp_path / "target"
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load_mnist(target, split="test", quiet=True)
    message = str(info.value)
    assert "checksum mismatch" in message and "t10k-images-idx3-ubyte" in message
    assert str(target.resolve()) in message
    assert not target.exists()  # no partial or temporary file, and the folder made for it is gone


def test_download_interrupted_midway_leaves_no_partial_file(tmp_path, mirror, monkeypatch, http_folder):
    server, _ = mirror
    broken = http_folder(tmp_path, "truncate") + "server/"
    monkeypatch.setitem(ds.DATASETS, "mnist", dataclasses.replace(ds.DATASETS["mnist"], mirrors=(broken,)))
    target = tmp_path / "t"
    target.mkdir()
    with pytest.raises(data.DatasetNotFoundError, match=broken):
        data.load_mnist(target, quiet=True)
    assert list(target.iterdir()) == []  # an existing folder stays, without partial files


def offline(monkeypatch, why):
    """No network: every download fails as a name lookup does."""
    import pooch
    import requests

    def fail(self, url, output_file, pooch_instance, check_only=False):
        raise requests.exceptions.ConnectionError(f"HTTPSConnectionPool(host='x'): Max retries exceeded "
                                                  f"(Caused by NameResolutionError: {why})")

    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", fail)


def test_download_failure_without_network_message(tmp_path, monkeypatch):
    """With the real mirrors and no network: the message says what to put where."""
    offline(monkeypatch, "Name or service not known")
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load_kmnist(tmp_path / "data" / "k", quiet=True)
    message = str(info.value)
    assert "KMNIST not found" in message and "Name or service not known" in message
    assert "codh.rois.ac.jp/kmnist/dataset/kmnist" in message
    assert str((tmp_path / "data" / "k").resolve()) in message
    assert list(tmp_path.iterdir()) == []  # the folders made for the download are gone again


def test_known_checksums_are_hex_md5s():
    for spec in data.DATASETS.values():
        assert sorted(spec.md5) == sorted(f + ".gz" for pair in ds.SPLIT_FILES.values() for f in pair)
        assert all(len(v) == 32 and int(v, 16) >= 0 for v in spec.md5.values())
        assert all(m.endswith("/") for m in spec.mirrors)


@needs_mnist
def test_real_mnist_files_match_the_known_md5():
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        content = pathlib.Path(MNIST_DIR, name).read_bytes()
        assert hashlib.md5(content).hexdigest() == ds.MNIST.md5[name]


@needs_mnist
def test_real_mnist_test_set():
    x, y = data.load_mnist(MNIST_DIR, download=False, split="test")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(y), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    np.testing.assert_array_equal(y[:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
    assert abs(x.mean() / 255 - 0.1325) < 1e-3  # the test set's mean, close to the train set's 0.1307


# -- digits -----------------------------------------------------------------------------------------------
def test_linear_resize_matches_scipy_zoom():
    from scipy import ndimage

    images = np.random.default_rng(0).uniform(0, 16, size=(3, 8, 8))
    m = ds._linear_resize_matrix(8, 20)
    np.testing.assert_allclose(m.sum(axis=1), 1.0)
    for image in images:
        ours = m @ image @ m.T
        ref = ndimage.zoom(image, 2.5, order=1, mode="nearest", grid_mode=True)
        np.testing.assert_allclose(ours, ref, atol=1e-10)


def test_upscale_digits_shape_range_and_border():
    images = np.random.default_rng(1).integers(0, 17, size=(5, 8, 8)).astype(float)
    images[0] = 16
    out = data.upscale_digits(images)
    assert out.shape == (5, 28, 28) and out.dtype == np.uint8
    assert (out[:, :4].max(), out[:, -4:].max(), out[:, :, :4].max(), out[:, :, -4:].max()) == (0, 0, 0, 0)
    assert (out[0, 4:24, 4:24] == 255).all()  # full ink stays full ink
    assert out.max() <= 255 and out[1:, 4:24, 4:24].std() > 0
    with pytest.raises(ValueError, match="images must be"):
        data.upscale_digits(np.zeros((8, 8)))


def test_load_digits_split_is_fixed_stratified_and_disjoint():
    from sklearn.datasets import load_digits as sk_digits

    (train_x, train_y), (test_x, test_y) = data.load_digits()
    assert train_x.shape[1:] == (28, 28) and train_x.dtype == np.uint8 and train_y.dtype == np.int64
    assert len(train_y) + len(test_y) == 1797 and len(test_y) == 359
    counts = np.bincount(test_y, minlength=10) / np.bincount(np.concatenate([train_y, test_y]), minlength=10)
    assert np.all(np.abs(counts - 0.2) < 0.02)
    # Every original image is in exactly one part.
    everything = data.upscale_digits(sk_digits().images)
    together = np.concatenate([train_x, test_x]).reshape(1797, -1)
    assert len(np.unique(together, axis=0)) == len(np.unique(everything.reshape(1797, -1), axis=0))
    again_x, again_y = data.load_digits(split="test")
    np.testing.assert_array_equal(again_x, test_x)
    np.testing.assert_array_equal(again_y, test_y)
    _, (other_x, _) = data.load_digits(seed=1)
    assert not np.array_equal(other_x, test_x)
    # The published normalisation constants are those of the training images.
    assert abs(train_x.mean() / 255 - data.DIGITS_MEAN) < 1e-4
    assert abs((train_x / 255).std() - data.DIGITS_STD) < 1e-4


# -- DataLoader -------------------------------------------------------------------------------------------
def test_dataloader_batches_in_order_and_normalises():
    images, labels = fake_images(10), fake_labels(10)
    loader = data.DataLoader(images, labels, batch_size=4, mean=0.1307, std=0.3081)
    assert len(loader) == 3
    batches = list(loader)
    assert [x.shape for x, _ in batches] == [(4, 1, 28, 28), (4, 1, 28, 28), (2, 1, 28, 28)]
    assert all(x.dtype == np.float32 and y.dtype == np.int64 for x, y in batches)
    x = np.concatenate([b[0] for b in batches])
    expected = ((images.astype(np.float64) / 255 - 0.1307) / 0.3081)[:, None]
    np.testing.assert_allclose(x, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), labels)


def test_dataloader_drop_last_and_float_and_nchw_input():
    images = np.random.default_rng(0).random((10, 3, 5, 6))
    loader = data.DataLoader(images, np.arange(10), batch_size=4, drop_last=True, mean=0.5, std=2.0,
                             dtype=np.float64)
    assert len(loader) == 2 and loader.num_samples == 8
    batches = list(loader)
    assert len(batches) == 2 and batches[-1][0].shape == (4, 3, 5, 6) and batches[0][0].dtype == np.float64
    np.testing.assert_allclose(batches[1][0], (images[4:8] - 0.5) / 2.0)
    assert len(data.DataLoader(images, np.arange(10), batch_size=20, drop_last=True)) == 0


def test_dataloader_shuffle_is_a_seeded_permutation_per_pass():
    images, labels = fake_images(23), np.arange(23)
    a = data.DataLoader(images, labels, batch_size=5, shuffle=True, seed=7)
    b = data.DataLoader(images, labels, batch_size=5, shuffle=True, seed=7)
    c = data.DataLoader(images, labels, batch_size=5, shuffle=True, seed=8)
    orders_a = [np.concatenate([y for _, y in a]) for _ in range(3)]
    orders_b = [np.concatenate([y for _, y in b]) for _ in range(3)]
    order_c = np.concatenate([y for _, y in c])
    for order in orders_a:
        assert sorted(order) == list(range(23))
    assert not np.array_equal(orders_a[0], orders_a[1])  # a new order every pass
    assert not np.array_equal(orders_a[0], order_c)
    for oa, ob in zip(orders_a, orders_b):
        np.testing.assert_array_equal(oa, ob)
    # Images follow their labels.
    for x, y in a:
        np.testing.assert_allclose(x[:, 0], images[y] / 255.0, atol=1e-6)


def test_dataloader_state_dict_resumes_the_shuffle_exactly():
    images, labels = fake_images(30), np.arange(30)
    a = data.DataLoader(images, labels, batch_size=8, shuffle=True, seed=3)
    list(a)
    state = a.state_dict()
    assert state["rng"].dtype == np.uint64 and state["rng"].shape == (6,)
    expected = [np.concatenate([y for _, y in a]) for _ in range(2)]
    b = data.DataLoader(images, labels, batch_size=8, shuffle=True, seed=12345)
    b.load_state_dict({"rng": state["rng"].copy()})
    for order in expected:
        np.testing.assert_array_equal(np.concatenate([y for _, y in b]), order)
    with pytest.raises(ValueError, match="'rng'"):
        b.load_state_dict({})
    with pytest.raises(ValueError, match="6 uint64 words"):
        b.load_state_dict({"rng": np.zeros(3, np.uint64)})


def test_dataloader_seed_none_follows_manual_seed():
    images, labels = fake_images(12), np.arange(12)
    minicnn.manual_seed(5)
    first = np.concatenate([y for _, y in data.DataLoader(images, labels, 4, shuffle=True)])
    minicnn.manual_seed(5)
    second = np.concatenate([y for _, y in data.DataLoader(images, labels, 4, shuffle=True)])
    np.testing.assert_array_equal(first, second)


def test_dataloader_batches_are_never_overwritten():
    images, labels = fake_images(12), fake_labels(12)
    loader = data.DataLoader(images, labels, batch_size=4)
    kept = list(loader)
    list(loader)  # another pass must not touch the kept batches
    for i, (x, y) in enumerate(kept):
        np.testing.assert_allclose(x[:, 0], images[4 * i:4 * i + 4] / 255.0, atol=1e-6)
        np.testing.assert_array_equal(y, labels[4 * i:4 * i + 4])
    y = kept[0][1]
    y[:] = 0  # nor may a caller's change reach the loader's labels
    np.testing.assert_array_equal(np.concatenate([b[1] for b in loader]), labels)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(batch_size=2.5), ValueError, "batch_size"),
    (dict(std=0.0), ValueError, "std"),
    (dict(mean=float("nan")), ValueError, "mean"),
    (dict(dtype=np.int32), TypeError, "dtype"),
])
def test_dataloader_bad_arguments(kwargs, error, match):
    args = dict(batch_size=4)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        data.DataLoader(fake_images(5), fake_labels(5), **args)


def test_dataloader_bad_arrays():
    with pytest.raises(ValueError, match=r"labels \(4\) and images \(5\) differ"):
        data.DataLoader(fake_images(5), fake_labels(4), 2)
    with pytest.raises(TypeError, match="images must be uint8 or floating"):
        data.DataLoader(fake_images(5).astype(np.int32), fake_labels(5), 2)
    with pytest.raises(ValueError, match="images must be"):
        data.DataLoader(np.zeros((5, 28), np.uint8), fake_labels(5), 2)
    with pytest.raises(ValueError, match="labels must be a 1-D integer array"):
        data.DataLoader(fake_images(5), np.zeros(5), 2)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        data.DataLoader([[0]], [0], 1)


def test_digits_read_from_scikit_learns_file_equal_its_loader():
    """load_digits reads scikit-learn's bundled file without importing scikit-learn (1 s saved on every
    run on the digits); the arrays must be exactly scikit-learn's."""
    from sklearn.datasets import load_digits as sklearn_digits

    from minicnn.data.datasets import _sklearn_digits

    images, labels = _sklearn_digits()
    bunch = sklearn_digits()
    np.testing.assert_array_equal(images, bunch.images)
    np.testing.assert_array_equal(labels, bunch.target)
    assert labels.dtype == np.int64
