"""The CIFAR ResNets and mobilenet_small: structure, shapes, parameter counts, gradients end to end,
and (when PyTorch is installed) a PyTorch twin with the same weights: same loss and every gradient."""
import numpy as np
import pytest

from minicnn import gradcheck, nn
from minicnn.cli.profile import torch_twin
from minicnn.models import MODELS, CifarResNet, mobilenet_small, resnet20


@pytest.mark.parametrize("name, count", [("resnet20", 272474), ("resnet32", 466906), ("resnet56", 855770),
                                         ("mobilenet_small", 67914), ("lenet5", 61706)])
def test_parameter_counts(name, count):
    assert sum(p.numel() for p in MODELS[name](rng=0).parameters()) == count


def test_resnet20_structure_and_shapes(rng):
    model = resnet20(num_classes=7, in_channels=1, rng=0)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 19 + 2  # 19 3x3 convolutions + 2 projection shortcuts (1 + 18 + the classifier = 20 layers)
    assert sum(isinstance(m, nn.Residual) for m in model.modules()) == 9
    shortcuts = [m.shortcut for m in model.modules() if isinstance(m, nn.Residual) and m.shortcut is not None]
    assert [s[0].stride for s in shortcuts] == [(2, 2), (2, 2)]  # 1x1 projections where the shape changes
    for size in (8, 11, 32):  # any input of at least 8x8
        x = rng.standard_normal((2, 1, size, size + 1)).astype(np.float32)
        y = model(x)
        assert y.shape == (2, 7) and y.dtype == np.float32
        assert model.backward(np.ones_like(y)).shape == x.shape
    with pytest.raises(ValueError, match="at least 8x8"):
        model(np.zeros((1, 1, 7, 9), np.float32))


def test_mobilenet_small_structure(rng):
    model = mobilenet_small(num_classes=5, in_channels=3, rng=0)
    depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert [(m.in_channels, m.groups, m.stride) for m in depthwise] == [
        (32, 32, (1, 1)), (64, 64, (2, 2)), (128, 128, (1, 1)), (128, 128, (2, 2))]
    x = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
    y = model(x)
    assert y.shape == (2, 5)
    assert model.backward(np.ones_like(y)).shape == x.shape


@pytest.mark.parametrize("build", [lambda: CifarResNet(1, num_classes=3, in_channels=2, dtype=np.float64, rng=0),
                                   lambda: mobilenet_small(num_classes=3, in_channels=2, dtype=np.float64, rng=0)],
                         ids=["resnet8", "mobilenet_small"])
def test_gradients_end_to_end_match_finite_differences(build):
    model = build()
    x = np.random.default_rng(0).standard_normal((2, 2, 8, 8))
    result = gradcheck(model, (x,), atol=1e-5, rtol=1e-3, raise_exception=False, samples=6)
    assert result.passed, str(result)


@pytest.mark.parametrize("name", ["resnet20", "mobilenet_small"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dtype, tol", [(np.float32, 5e-4), (np.float64, 1e-10)], ids=["float32", "float64"])
def test_matches_a_pytorch_twin(name, training, dtype, tol):
    torch = pytest.importorskip("torch")
    model = MODELS[name](num_classes=10, in_channels=3, dtype=dtype, rng=1)
    twin, _ = torch_twin(torch, model)
    model.train(training)
    twin.train(training)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3, 16, 16)).astype(dtype)
    labels = rng.integers(0, 10, 4)
    criterion = nn.CrossEntropyLoss()
    loss = criterion(model(x), labels)
    model.backward(criterion.backward())
    tx = torch.from_numpy(x)
    tloss = torch.nn.functional.cross_entropy(twin(tx), torch.from_numpy(labels))
    tloss.backward()
    np.testing.assert_allclose(loss, tloss.item(), rtol=tol)
    ours = dict(model.named_parameters())
    theirs = dict(twin.named_parameters())
    assert len(ours) == len(theirs)
    for (name_ours, p), (name_theirs, tp) in zip(ours.items(), theirs.items()):
        # Relative to the gradient's norm: a convolution feeding a batch norm has directions whose exact
        # gradient is 0, where both compute float32 rounding noise of different sign.
        error = np.linalg.norm(p.grad - tp.grad.numpy()) / (np.linalg.norm(tp.grad.numpy()) + 1e-30)
        assert error < 10 * tol, f"{name_ours} / {name_theirs}: relative error {error:.2e}"
    if training:  # the running statistics move the same way
        bn = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        tbn = [m for m in twin.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        for a, b in zip(bn, tbn):
            np.testing.assert_allclose(a.running_var, b.running_var.numpy(), rtol=10 * tol, atol=tol)
