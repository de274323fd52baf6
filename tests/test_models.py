"""LeNet5: architecture, shapes, seeding, end-to-end gradcheck (input gradient on)."""
import numpy as np
import pytest

import minicnn
from minicnn import gradcheck, nn
from minicnn.models import LeNet5


@pytest.fixture
def one_thread():
    """Many small forward passes: thread start-up dominates them on a shared machine."""
    previous = minicnn.get_num_threads()
    minicnn.set_num_threads(1)
    yield
    minicnn.set_num_threads(previous)


def test_architecture_and_shapes(rng):
    model = LeNet5(rng=0)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Conv2d", "MaxPool2d", "ReLU", "Conv2d", "MaxPool2d", "ReLU", "Flatten",
                     "Linear", "ReLU", "Linear", "ReLU", "Linear"]
    shapes = {name: p.shape for name, p in model.named_parameters()}
    assert shapes == {"0.weight": (6, 1, 5, 5), "0.bias": (6,), "3.weight": (16, 6, 5, 5), "3.bias": (16,),
                      "7.weight": (120, 400), "7.bias": (120,), "9.weight": (84, 120), "9.bias": (84,),
                      "11.weight": (10, 84), "11.bias": (10,)}
    assert sum(p.data.size for p in model.parameters()) == 61706  # the classic LeNet-5 count
    x = rng.standard_normal((3, 1, 28, 28)).astype(np.float32)
    y = model(x)
    assert y.shape == (3, 10) and y.dtype == np.float32
    assert model.backward(np.ones_like(y)) is None  # first conv skips its input gradient
    assert model[0].input_grad is False and LeNet5(input_grad=True)[0].input_grad is True
    model3 = LeNet5(num_classes=5, in_channels=3, dtype=np.float64, rng=1)
    assert model3(rng.standard_normal((2, 3, 28, 28))).shape == (2, 5)
    assert model3[0].weight.dtype == np.float64


def test_pool_then_relu_equals_the_textbook_order(rng, one_thread):
    model = LeNet5(dtype=np.float64, rng=0)
    textbook = nn.Sequential(  # conv - ReLU - pool; the same parameter names (indices 0, 3, 7, 9, 11)
        nn.Conv2d(1, 6, 5, padding=2, dtype=np.float64, input_grad=False), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, dtype=np.float64), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120, dtype=np.float64), nn.ReLU(), nn.Linear(120, 84, dtype=np.float64), nn.ReLU(),
        nn.Linear(84, 10, dtype=np.float64))
    textbook.load_state_dict(model.state_dict())
    x = rng.standard_normal((4, 1, 28, 28))
    y = model(x)
    np.testing.assert_allclose(y, textbook(x), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    model.backward(g)
    textbook.backward(g)
    for (name, p), (_, q) in zip(model.named_parameters(), textbook.named_parameters()):
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-10, atol=1e-12, err_msg=name)


def test_seeded_init_is_reproducible_and_layers_differ():
    a, b = LeNet5(rng=3), LeNet5(rng=3)
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb
        np.testing.assert_array_equal(pa.data, pb.data)
    assert not np.array_equal(LeNet5(rng=4)[0].weight.data, a[0].weight.data)


def test_training_step_reduces_loss(rng, one_thread):
    model = LeNet5(rng=0)
    x = rng.standard_normal((8, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, 8)
    crit = nn.CrossEntropyLoss()
    first = crit(model(x), labels)
    for _ in range(10):
        model.zero_grad()
        crit(model(x), labels)
        model.backward(crit.backward())
        for p in model.parameters():
            p.data -= 0.1 * p.grad
    assert crit(model(x), labels) < 0.9 * first


def test_end_to_end_gradcheck(rng, one_thread):
    model = LeNet5(num_classes=4, dtype=np.float64, rng=0, input_grad=True)
    x = rng.standard_normal((2, 1, 28, 28))
    result = gradcheck(model, x, samples=20)  # each entry costs two forward passes
    assert set(result.errors) == {"input[0]"} | {n for n, _ in model.named_parameters()}
    # and with the loss on top: a composition checked through the plain-callable protocol
    labels = np.array([1, 3])
    crit = nn.CrossEntropyLoss(label_smoothing=0.1)

    def loss_fn(inp):
        loss = crit(model(inp), labels)
        return loss, lambda dy: model.backward(crit.backward(dy))

    assert gradcheck(loss_fn, x, samples=8)


def test_errors():
    model = LeNet5()
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        model(np.zeros((1, 1, 32, 32), np.float32))
    with pytest.raises(ValueError, match="channels"):
        model(np.zeros((1, 3, 28, 28), np.float32))
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        LeNet5(num_classes=0)
    with pytest.raises(TypeError, match="dtype"):
        LeNet5(dtype=np.int64)
