"""minicnn.gradcheck: passes correct gradients, reports wrong ones by name, leaves state as found."""
import numpy as np
import pytest

import minicnn
from minicnn import gradcheck, nn
from minicnn.nn.module import Module, Parameter


class Scale(Module):
    """y = x * w (per feature); ``bug`` breaks one gradient on purpose."""

    def __init__(self, features, bug=None):
        super().__init__()
        self.weight = Parameter(np.linspace(0.5, 1.5, features))
        self.bug = bug

    def forward(self, x):
        self._x = x
        return x * self.weight.data

    def backward(self, dy):
        dw = (dy * self._x).sum(0)
        if self.bug == "weight":
            dw = dw * 1.1
        self.weight.grad += dw
        dx = dy * self.weight.data
        if self.bug == "input":
            dx = dx.copy()
            dx[1, 2] += 0.5  # one wrong entry
        return dx


def test_correct_module_passes(rng):
    result = gradcheck(Scale(4), rng.standard_normal((3, 4)))
    assert result and result.passed and result.failures == []
    assert set(result.errors) == {"input[0]", "weight"}
    assert all(e < 1e-6 for e in result.errors.values())
    assert "passed" in str(result) and "weight" in str(result)


def test_wrong_input_gradient_is_reported(rng):
    x = rng.standard_normal((3, 4))
    result = gradcheck(Scale(4, bug="input"), x, raise_exception=False)
    assert not result and result.failures == ["input[0]"]
    assert result.entries["input[0]"].index == (1, 2)
    assert result.errors["input[0]"] > 1e-3 and result.errors["weight"] < 1e-6
    assert "FAILED" in str(result)
    with pytest.raises(ValueError, match=r"gradcheck failed for input\[0\]: worst relative error .* at index \(1, 2\)"):
        gradcheck(Scale(4, bug="input"), x)


def test_wrong_parameter_gradient_is_reported(rng):
    with pytest.raises(ValueError, match="gradcheck failed for weight") as info:
        gradcheck(Scale(4, bug="weight"), rng.standard_normal((3, 4)))
    assert "input[0]" not in str(info.value).split("\n")[0]
    # a wrong sign in a real layer is caught too
    layer = nn.Linear(3, 2, dtype=np.float64, rng=0)
    original = layer.backward
    layer.backward = lambda dy: -original(dy)
    result = gradcheck(layer, rng.standard_normal((2, 3)), raise_exception=False)
    assert result.failures == ["input[0]"]


def test_state_is_restored(rng):
    layer = nn.Linear(3, 2, dtype=np.float64, rng=0)
    x = rng.standard_normal((4, 3))
    x_before, w_before = x.copy(), layer.weight.data.copy()
    layer.weight.grad[...] = 7.0
    gradcheck(layer, x)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(layer.weight.data, w_before)
    assert (layer.weight.grad == 7.0).all() and not layer.bias.grad.any()
    bn = nn.BatchNorm2d(2, dtype=np.float64)
    gradcheck(bn, rng.standard_normal((3, 2, 2, 2)))
    assert int(bn.num_batches_tracked) == 0 and not bn.running_mean.any()


def test_plain_callable_protocol(rng):
    def square_sum(a, b):
        return a * a + 3 * b, lambda dy: (2 * a * dy, 3 * dy)

    result = gradcheck(square_sum, (rng.standard_normal(5), rng.standard_normal(5)))
    assert set(result.errors) == {"input[0]", "input[1]"}

    def wrong(a, b):
        return a * b, lambda dy: (b * dy, b * dy)

    result = gradcheck(wrong, (rng.standard_normal(3), rng.standard_normal(3)), raise_exception=False)
    assert result.failures == ["input[1]"]
    with pytest.raises(TypeError, match=r"must return \(output, backward_fn\)"):
        gradcheck(lambda a: a, rng.standard_normal(3))


def test_loss_with_integer_labels(rng):
    result = gradcheck(nn.CrossEntropyLoss(label_smoothing=0.1), (rng.standard_normal((4, 3)), np.array([0, 2, 1, 1])))
    assert list(result.errors) == ["input[0]"]


def test_refusals(rng):
    with pytest.raises(TypeError, match="weight is float32.*dtype=np.float64"):
        gradcheck(nn.Linear(3, 2), rng.standard_normal((2, 3)))
    with pytest.raises(ValueError, match="not deterministic"):
        gradcheck(nn.Dropout(0.5, rng=0), rng.standard_normal((4, 4)))
    with pytest.raises(TypeError, match="needs a Module"):
        gradcheck(3, rng.standard_normal(3))
    with pytest.raises(ValueError, match="nothing to check"):
        gradcheck(nn.ReLU(), (np.arange(3),))
    with pytest.raises(ValueError, match="eps > 0"):
        gradcheck(nn.ReLU(), rng.standard_normal(3), eps=0.0)
    # a module that does not compute its input gradient is reported, not skipped
    class NoInputGrad(Scale):
        def backward(self, dy):
            super().backward(dy)
            return None
    result = gradcheck(NoInputGrad(3), rng.standard_normal((2, 3)), raise_exception=False)
    assert result.failures == ["input[0]"] and "backward returned None" in str(result)


def test_samples_limits_the_work(rng):
    calls = []
    layer = nn.Linear(20, 10, dtype=np.float64, rng=0)
    forward = layer.forward
    layer.forward = lambda x: calls.append(1) or forward(x)
    result = gradcheck(layer, rng.standard_normal((4, 20)), samples=5)
    assert {e.checked for e in result.entries.values()} == {5}
    assert len(calls) == 3 + 2 * 15  # two checks for determinism + analytic, two per checked entry


def test_input_not_modified_and_float32_input_upcast(rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    before = x.copy()
    assert gradcheck(nn.Linear(3, 4, dtype=np.float64, rng=1), x)
    np.testing.assert_array_equal(x, before)


def test_public_name():
    assert minicnn.gradcheck is gradcheck
