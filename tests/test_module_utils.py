"""requires_grad_, apply, to/double/float, Parameter.numel, clip_grad_norm_/clip_grad_value_, grad mode."""
import math

import numpy as np
import pytest

import minicnn
from minicnn import nn
from minicnn.nn.utils import clip_grad_norm_, clip_grad_value_


def lenet_like(dtype=np.float32):
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, dtype=dtype, rng=0), nn.BatchNorm2d(2, dtype=dtype),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 2 * 2, 3, dtype=dtype, rng=1))


def test_numel_and_requires_grad_():
    model = lenet_like()
    assert [p.numel() for p in model.parameters()] == [18, 2, 2, 2, 24, 3]
    assert model.requires_grad_(False) is model
    assert not any(p.requires_grad for p in model.parameters())
    model[0].requires_grad_()
    assert [p.requires_grad for p in model.parameters()] == [True, True, False, False, False, False]
    p = nn.Parameter(np.zeros(3), requires_grad=False)
    assert not p.requires_grad and p.requires_grad_() is p and p.requires_grad
    assert "requires_grad=False" in repr(p.requires_grad_(False))


def test_apply_visits_children_first():
    model = lenet_like()
    seen = []
    assert model.apply(lambda m: seen.append(type(m).__name__)) is model
    assert seen == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "Sequential"]


def test_double_then_float_round_trip_keeps_layers_working():
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 4))
    model = lenet_like()
    y32 = model(x.astype(np.float32))
    model.backward(np.ones_like(y32))
    assert model.double() is model
    for p in model.parameters():
        assert p.data.dtype == np.float64 and p.grad.dtype == np.float64
    bn = model[1]
    assert bn.running_mean.dtype == np.float64 and bn.num_batches_tracked.dtype == np.int64
    assert model[0].dtype == np.float64 and model[5].dtype == np.float64
    y64 = model(x)
    assert y64.dtype == np.float64
    np.testing.assert_allclose(y64, y32, rtol=1e-4, atol=1e-5)
    model.zero_grad()
    minicnn.gradcheck(model, x, samples=10)
    model.float()
    y = model(x.astype(np.float32))
    assert y.dtype == np.float32
    dx = model.backward(np.ones_like(y))
    assert dx.dtype == np.float32 and model[5].weight.grad.dtype == np.float32
    with pytest.raises(TypeError, match="dtype must be np.float32 or np.float64"):
        model.to(np.int32)


def test_to_drops_what_forwards_kept():
    model = lenet_like()
    model(np.zeros((2, 1, 4, 4), np.float32))
    model.double()
    with pytest.raises(minicnn.nn.BackwardBeforeForwardError):
        model.backward(np.zeros((2, 3)))


def grads(seed, shapes=((3, 4), (5,), (2, 2, 2))):
    rng = np.random.default_rng(seed)
    params = []
    for s in shapes:
        p = nn.Parameter(rng.standard_normal(s))
        p.grad[...] = rng.standard_normal(s) * 3
        params.append(p)
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_the_reference(norm_type, max_norm):
    params = grads(0)
    before = [p.grad.copy() for p in params]
    flat = np.concatenate([g.ravel() for g in before])
    expected = np.max(np.abs(flat)) if math.isinf(norm_type) else np.sum(np.abs(flat) ** norm_type) ** (1 / norm_type)
    total = clip_grad_norm_(params, max_norm, norm_type)
    assert total == pytest.approx(expected, rel=1e-12)
    coef = min(max_norm / (expected + 1e-6), 1.0)
    for p, g in zip(params, before):
        np.testing.assert_allclose(p.grad, g * coef, rtol=1e-12)


def test_clip_grad_norm_matches_pytorch():
    torch = pytest.importorskip("torch")
    for norm_type in (2.0, math.inf, 1.5):
        params = grads(1)
        tparams = []
        for p in params:
            t = torch.nn.Parameter(torch.from_numpy(p.data.copy()))
            t.grad = torch.from_numpy(p.grad.copy())
            tparams.append(t)
        total = clip_grad_norm_(params, 1.0, norm_type)
        ttotal = torch.nn.utils.clip_grad_norm_(tparams, 1.0, norm_type)
        assert total == pytest.approx(float(ttotal), rel=1e-10)
        for p, t in zip(params, tparams):
            np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-10)
        params = grads(2)
        tgrads = [torch.from_numpy(p.grad.copy()) for p in params]
        clip_grad_value_(params, 0.7)
        for p, t in zip(params, tgrads):
            np.testing.assert_allclose(p.grad, torch.clamp(t, -0.7, 0.7).numpy())


def test_clipping_skips_frozen_parameters_and_checks_arguments():
    params = grads(3)
    params[0].requires_grad = False
    before = params[0].grad.copy()
    clip_grad_norm_(params, 1e-3)
    clip_grad_value_(params, 1e-3)
    np.testing.assert_array_equal(params[0].grad, before)
    assert np.all(np.abs(params[1].grad) <= 1e-3)
    assert clip_grad_norm_([], 1.0) == 0.0
    single = grads(4)[0]
    clip_grad_value_(single, 0.1)
    assert np.all(np.abs(single.grad) <= 0.1)
    with pytest.raises(TypeError, match="max_norm must be a real number"):
        clip_grad_norm_(params, "1")
    with pytest.raises(ValueError, match="norm_type must be > 0"):
        clip_grad_norm_(params, 1.0, 0)
    with pytest.raises(ValueError, match="clip_value must be >= 0"):
        clip_grad_value_(params, -1)
    with pytest.raises(TypeError, match="entry 1 is ndarray"):
        clip_grad_norm_([params[1], np.zeros(2)], 1.0)
    params[1].grad[0] = np.nan
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(params, 1.0, error_if_nonfinite=True)


def test_grad_mode_exports():
    assert minicnn.is_grad_enabled()
    with minicnn.no_grad():
        assert not minicnn.is_grad_enabled()
        with minicnn.enable_grad():
            assert minicnn.is_grad_enabled()
        assert not minicnn.is_grad_enabled()
    previous = minicnn.set_grad_enabled(False)
    assert previous is True and not minicnn.is_grad_enabled()
    minicnn.set_grad_enabled(True)
    assert minicnn.is_grad_enabled()
