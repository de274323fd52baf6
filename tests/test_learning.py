"""End to end: a small CNN learns scikit-learn's bundled 8x8 digits to >= 95% held-out accuracy.

Exercises every layer's forward and backward together with the loss and an optimizer, seeded and
deterministic (fixed initialisation, shuffling and dropout masks).
"""
import time

import numpy as np
import pytest

import minicnn
from minicnn import nn, optim
from minicnn._config import JIT_DISABLED

sklearn_datasets = pytest.importorskip("sklearn.datasets")
model_selection = pytest.importorskip("sklearn.model_selection")


def digits_split():
    digits = sklearn_datasets.load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8) in [0, 1]
    return model_selection.train_test_split(x, digits.target, test_size=0.25, random_state=0,
                                            stratify=digits.target)


def small_cnn(rng):
    """8x8 -> conv 3x3 (16) -> BN -> ReLU -> pool -> conv 3x3 (32) -> ReLU -> pool -> 2x2x32 -> linear."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, rng=rng, input_grad=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.2, rng=rng), nn.Linear(32 * 2 * 2, 10, rng=rng),
    )


def accuracy(model, x, y, batch=256):
    model.eval()
    correct = sum(int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum()) for i in range(0, len(x), batch))
    model.train()
    return correct / len(x)


def train(epochs=5, batch=32, seed=0):
    x_train, x_test, y_train, y_test = digits_split()
    rng = np.random.default_rng(seed)
    model = small_cnn(rng)
    crit = nn.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        order = rng.permutation(len(x_train))
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            if len(idx) < 2:  # BatchNorm needs more than one value per channel
                continue
            opt.zero_grad()
            crit(model(x_train[idx]), y_train[idx])
            model.backward(crit.backward())
            opt.step()
    return accuracy(model, x_test, y_test), model


@pytest.fixture
def one_thread():
    """One thread for Numba and BLAS: the result does not depend on the core count (BLAS sums in a
    thread-dependent order), and on a shared, busy machine threads that wait for each other made
    this run 20x slower (96 s against 4 s measured)."""
    previous = minicnn.get_num_threads()
    minicnn.set_num_threads(1)
    yield
    minicnn.set_num_threads(previous)


def test_small_cnn_learns_digits(one_thread):
    start = time.perf_counter()
    acc, model = train()
    elapsed = time.perf_counter() - start
    assert acc >= 0.95, f"held-out accuracy {acc:.3f} < 0.95"
    if not JIT_DISABLED:  # pure-Python kernels (NUMBA_DISABLE_JIT=1) take a few minutes
        assert elapsed < 60, f"training took {elapsed:.1f} s"
    # the BatchNorm running statistics moved away from their initial values
    assert int(model[1].num_batches_tracked) > 0 and model[1].running_var.std() > 0


def test_training_is_deterministic(one_thread):
    _, a = train(epochs=1)
    _, b = train(epochs=1)
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(pa.data, pb.data, err_msg=name)
    np.testing.assert_array_equal(a[1].running_var, b[1].running_var)
