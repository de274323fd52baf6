"""MSELoss, L1Loss, SmoothL1Loss, HuberLoss, BCELoss, BCEWithLogitsLoss, NLLLoss and the general
CrossEntropyLoss (weight, ignore_index, reduction, (N, C, d...) input, class-probability targets):
against the references in naive.py, central differences in float64, PyTorch when installed, extreme
inputs and bad input. (The default cross-entropy fast path is tested in test_loss.py.)"""
import numpy as np
import pytest

import naive
import minicnn.functional as F
from minicnn import gradcheck, nn

REDUCTIONS = ["mean", "sum", "none"]
# (module factory, naive name, keyword arguments for naive, input maker)
ELEMENTWISE = [
    (lambda r: nn.MSELoss(r), "mse", {}),
    (lambda r: nn.L1Loss(r), "l1", {}),
    (lambda r: nn.SmoothL1Loss(r), "smooth_l1", {}),
    (lambda r: nn.SmoothL1Loss(r, beta=0.5), "smooth_l1", {"beta": 0.5}),
    (lambda r: nn.SmoothL1Loss(r, beta=0.0), "smooth_l1", {"beta": 0.0}),
    (lambda r: nn.HuberLoss(r), "huber", {}),
    (lambda r: nn.HuberLoss(r, delta=2.0), "huber", {"delta": 2.0}),
    (lambda r: nn.BCELoss(reduction=r), "bce", {}),
    (lambda r: nn.BCEWithLogitsLoss(reduction=r), "bce_with_logits", {}),
]
IDS = [f"{name}-{kw}" for _, name, kw in ELEMENTWISE]


def _pair(rng, name, shape, dtype=np.float64):
    """Prediction and target away from the kinks (|d| = 0, beta, delta) where differences fail."""
    if name == "bce":
        x = rng.uniform(0.05, 0.95, shape)
        t = rng.uniform(0, 1, shape)
    elif name == "bce_with_logits":
        x = rng.standard_normal(shape) * 3
        t = rng.uniform(0, 1, shape)
    else:
        t = rng.standard_normal(shape)
        d = rng.uniform(0.1, 3, shape) * rng.choice([-1, 1], shape)
        d = np.where(np.abs(np.abs(d) - 0.5) < 0.05, 0.7, d)
        d = np.where(np.abs(np.abs(d) - 1.0) < 0.05, 1.3, d)
        d = np.where(np.abs(np.abs(d) - 2.0) < 0.05, 2.3, d)
        x = t + d
    return x.astype(dtype), t.astype(dtype)


def _check_fn(loss_module, target, *extra):
    """A gradcheck callable differentiating the prediction only (the target is held fixed)."""
    def fn(x):
        out = loss_module(x, target, *extra)
        return out, loss_module.backward
    return fn


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("make,name,kw", ELEMENTWISE, ids=IDS)
def test_elementwise_matches_reference(rng, make, name, kw, reduction, dtype):
    x, t = _pair(rng, name, (3, 4), dtype)
    crit = make(reduction)
    loss = crit(x, t)
    ref = naive.reduce(naive.elementwise_loss(name, x, t, **kw), reduction)
    tol = dict(rtol=2e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    if reduction == "none":
        assert loss.dtype == dtype and loss.shape == x.shape
    else:
        assert isinstance(loss, np.float64) and isinstance(loss.item(), float)
    np.testing.assert_allclose(loss, ref, **tol)
    dx = crit.backward()
    assert dx.dtype == dtype and dx.shape == x.shape


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("make,name,kw", ELEMENTWISE, ids=IDS)
def test_elementwise_gradcheck(rng, make, name, kw, reduction):
    x, t = _pair(rng, name, (3, 5))
    gradcheck(_check_fn(make(reduction), t), (x,))


def test_weights_and_pos_weight(rng):
    x, t = _pair(rng, "bce_with_logits", (4, 3))
    w, pw = rng.uniform(0.5, 2, (4, 1)), rng.uniform(0.5, 3, 3)  # broadcast over rows / classes
    for reduction in REDUCTIONS:
        crit = nn.BCEWithLogitsLoss(weight=w, reduction=reduction, pos_weight=pw)
        ref = naive.reduce(naive.elementwise_loss("bce_with_logits", x, t, weight=w, pos_weight=pw), reduction)
        np.testing.assert_allclose(crit(x, t), ref, rtol=1e-12)
        gradcheck(_check_fn(crit, t), (x,))
    p, t = _pair(rng, "bce", (4, 3))
    crit = nn.BCELoss(weight=w)
    np.testing.assert_allclose(crit(p, t), naive.elementwise_loss("bce", p, t, weight=w).mean(), rtol=1e-12)
    gradcheck(_check_fn(crit, t), (p,))


def test_none_reduction_takes_a_gradient_array(rng):
    x, t = _pair(rng, "mse", (2, 3))
    crit = nn.MSELoss(reduction="none")
    crit(x, t)
    dl = rng.standard_normal((2, 3))
    np.testing.assert_allclose(crit.backward(dl), dl * 2 * (x - t), rtol=1e-14)
    crit(x, t)
    np.testing.assert_allclose(crit.backward(), 2 * (x - t), rtol=1e-14)
    crit = nn.MSELoss()
    crit(x, t)
    np.testing.assert_allclose(crit.backward(3.0), 3.0 * 2 * (x - t) / 6, rtol=1e-14)


def test_extreme_inputs():
    x = np.array([-1000.0, 1000.0, 0.0, -50.0])
    t = np.array([1.0, 0.0, 0.5, 0.0])
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    np.testing.assert_allclose(loss, [1000.0, 1000.0, np.log(2.0), 1.9287498479639178e-22], rtol=1e-12)
    _, ctx = F.binary_cross_entropy_with_logits_forward(x, t)
    assert np.isfinite(F.binary_cross_entropy_with_logits_backward(ctx)).all()
    p = np.array([0.0, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal(F.binary_cross_entropy(p, np.array([1.0, 0.0, 0.0, 1.0]), reduction="none"),
                                  [100.0, 100.0, 0.0, 0.0])
    logits = np.array([[1000.0, -1000.0, 0.0]])
    assert np.isfinite(F.cross_entropy(logits, np.array([1]), np.ones(3)))
    assert F.cross_entropy(logits, np.array([[0.0, 1.0, 0.0]])) == pytest.approx(2000.0)


# -- NLL and the general cross-entropy path ---------------------------------------------------------------
CLASS_CASES = [  # (logits shape, weight?, ignore some?, label_smoothing)
    ((5, 4), False, False, 0.0), ((5, 4), True, False, 0.0), ((5, 4), True, True, 0.0),
    ((5, 4), True, True, 0.3), ((3, 4, 2, 3), False, True, 0.0), ((3, 4, 5), True, True, 0.2),
]


def _class_target(rng, shape, ignore):
    N, C = shape[:2]
    target = rng.integers(0, C, (N,) + shape[2:])
    if ignore:
        target.reshape(-1)[::3] = -100
    return target


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape,weighted,ignore,s", CLASS_CASES)
def test_cross_entropy_general_matches_reference_and_gradcheck(rng, shape, weighted, ignore, s, reduction):
    logits = rng.standard_normal(shape) * 2
    target = _class_target(rng, shape, ignore)
    weight = rng.uniform(0.5, 2, shape[1]) if weighted else None
    crit = nn.CrossEntropyLoss(weight, reduction=reduction, label_smoothing=s)
    np.testing.assert_allclose(crit(logits, target), naive.cross_entropy_general(logits, target, weight, -100,
                                                                                 reduction, s), rtol=1e-12)
    gradcheck(_check_fn(crit, target), (logits,))
    # log-probabilities through NLLLoss (no smoothing)
    if s == 0:
        logp = F.log_softmax(logits, 1)
        nll = nn.NLLLoss(weight, reduction=reduction)
        np.testing.assert_allclose(nll(logp, target), naive.nll(logp, target, weight, -100, reduction), rtol=1e-12)
        np.testing.assert_allclose(nll(logp, target), crit(logits, target), rtol=1e-12)
        gradcheck(_check_fn(nll, target), (logp,))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape,weighted,s", [((4, 3), False, 0.0), ((4, 3), True, 0.25), ((2, 3, 4), True, 0.0)])
def test_cross_entropy_probability_targets(rng, shape, weighted, s, reduction):
    logits = rng.standard_normal(shape)
    target = rng.dirichlet(np.ones(shape[1]), (shape[0],) + shape[2:])
    target = np.moveaxis(target, -1, 1).copy()
    weight = rng.uniform(0.5, 2, shape[1]) if weighted else None
    crit = nn.CrossEntropyLoss(weight, reduction=reduction, label_smoothing=s)
    np.testing.assert_allclose(crit(logits, target),
                               naive.cross_entropy_general(logits, target, weight, -100, reduction, s), rtol=1e-12)
    gradcheck(_check_fn(crit, target), (logits,))


def test_fast_path_equals_general_path(rng):
    logits = rng.standard_normal((6, 5)).astype(np.float32)
    target = rng.integers(0, 5, 6)
    for s in (0.0, 0.1):
        fast = nn.CrossEntropyLoss(label_smoothing=s)
        general = nn.CrossEntropyLoss(np.ones(5), label_smoothing=s)
        assert fast(logits, target) == pytest.approx(general(logits, target), rel=1e-6)
        np.testing.assert_allclose(fast.backward(), general.backward(), rtol=1e-5, atol=1e-7)


def test_all_ignored_mean_is_nan():
    assert np.isnan(F.cross_entropy(np.zeros((2, 3)), np.array([-100, -100])))
    assert F.cross_entropy(np.zeros((2, 3)), np.array([-100, -100]), reduction="sum") == 0


# -- bad input ----------------------------------------------------------------------------------------------
def test_bad_input_names_the_argument(rng):
    x = rng.uniform(0.1, 0.9, (3, 4))
    with pytest.raises(ValueError, match="input must hold probabilities in \\[0, 1\\]"):
        nn.BCELoss()(x + 1, x)
    with pytest.raises(ValueError, match="input must hold probabilities"):
        F.binary_cross_entropy(-x, x)
    with pytest.raises(ValueError, match="target must have the input's shape"):
        nn.MSELoss()(x, x[:2])
    with pytest.raises(TypeError, match="target must be a floating-point"):
        nn.L1Loss()(x, np.ones((3, 4), int))
    with pytest.raises(ValueError, match="reduction must be one of"):
        nn.MSELoss("avg")
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.huber_loss(x, x, reduction="mean ")
    with pytest.raises(ValueError, match="delta must be > 0"):
        nn.HuberLoss(delta=0)
    with pytest.raises(ValueError, match="beta must be >= 0"):
        nn.SmoothL1Loss(beta=-1)
    with pytest.raises(ValueError, match="pos_weight of shape \\(5,\\) cannot be broadcast"):
        nn.BCEWithLogitsLoss(pos_weight=np.ones(5))(x, x)
    with pytest.raises(ValueError, match="target must be class indices in \\[0, 4\\)"):
        nn.CrossEntropyLoss()(x, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match="target must be class indices in \\[0, 4\\)"):
        nn.NLLLoss()(x, np.array([0, -1, 1]))
    with pytest.raises(ValueError, match="target must have shape \\(3,\\)"):
        nn.NLLLoss()(x, np.array([0, 1]))
    with pytest.raises(ValueError, match="weight must have shape \\(4,\\)"):
        nn.CrossEntropyLoss(np.ones(3))(x, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="input must be \\(N, C\\)"):
        nn.NLLLoss()(np.ones(4), np.array([0]))
    with pytest.raises(TypeError, match="ignore_index must be an int"):
        nn.NLLLoss(ignore_index=1.5)
    crit = nn.MSELoss(reduction="none")
    crit(x, x)
    with pytest.raises(ValueError, match="dloss must have shape \\(3, 4\\)"):
        crit.backward(np.ones(4))
    crit = nn.CrossEntropyLoss(reduction="none")
    crit(x, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="dloss must have shape \\(3,\\)"):
        crit.backward(np.ones(4))
    crit = nn.MSELoss()
    crit(x, x)
    with pytest.raises(ValueError, match="dy must be a real scalar"):
        crit.backward(np.ones(3))


# -- PyTorch -----------------------------------------------------------------------------------------------
def _torch_loss(torch, fn, x, target, dl, **kw):
    tx = torch.tensor(x, requires_grad=True)
    tt = torch.tensor(target)
    loss = fn(tx, tt, **kw)
    loss.backward(torch.tensor(dl) if np.ndim(dl) else None)
    return loss.detach().numpy(), tx.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_against_pytorch(rng, reduction, dtype):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    tol = dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-13)
    shape = (4, 5)
    dl = rng.standard_normal(shape).astype(dtype) if reduction == "none" else 1.0

    def check(ours, theirs, x, target, ours_kw, theirs_kw, dl=dl):
        loss, ctx = getattr(F, ours + "_forward")(x, target, **ours_kw, reduction=reduction)
        dx = getattr(F, ours + "_backward")(ctx, dl)
        tl, tdx = _torch_loss(torch, getattr(tf, theirs), x, target, dl, **theirs_kw, reduction=reduction)
        np.testing.assert_allclose(loss, tl, **tol)
        np.testing.assert_allclose(dx, tdx, **tol)

    for name, kw in (("mse", {}), ("l1", {}), ("smooth_l1", {"beta": 0.7}), ("huber", {"delta": 1.5})):
        x, t = _pair(rng, name, shape, dtype)
        check(name + "_loss", name + "_loss", x, t, kw, kw)
    p, t = _pair(rng, "bce", shape, dtype)
    w = rng.uniform(0.5, 2, shape[1]).astype(dtype)
    check("binary_cross_entropy", "binary_cross_entropy", p, t, {"weight": w}, {"weight": torch.tensor(w)})
    x, t = _pair(rng, "bce_with_logits", shape, dtype)
    x[0, :2] = [1000, -1000]
    pw = rng.uniform(0.5, 3, shape[1]).astype(dtype)
    check("binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits", x, t,
          {"weight": w, "pos_weight": pw}, {"weight": torch.tensor(w), "pos_weight": torch.tensor(pw)})
    # class losses: (N, C) and (N, C, d1, d2), weights, ignore_index, smoothing, probabilities
    for lshape in ((6, 5), (3, 5, 2, 3)):
        logits = (rng.standard_normal(lshape) * 3).astype(dtype)
        target = _class_target(rng, lshape, True)
        dl_rows = rng.standard_normal(target.shape).astype(dtype) if reduction == "none" else 1.0
        cw = rng.uniform(0.5, 2, 5).astype(dtype)
        for s in (0.0, 0.2):
            for weight in (None, cw):
                check("cross_entropy", "cross_entropy", logits, target,
                      {"weight": weight, "label_smoothing": s, "ignore_index": -100},
                      {"weight": None if weight is None else torch.tensor(weight), "label_smoothing": s,
                       "ignore_index": -100}, dl_rows)
        check("cross_entropy", "cross_entropy", logits, np.where(target < 0, 3, target), {"ignore_index": 3},
              {"ignore_index": 3}, dl_rows)
        probs = np.moveaxis(rng.dirichlet(np.ones(5), target.shape), -1, 1).astype(dtype).copy()
        check("cross_entropy", "cross_entropy", logits, probs, {"weight": cw, "label_smoothing": 0.1},
              {"weight": torch.tensor(cw), "label_smoothing": 0.1}, dl_rows)
        logp = F.log_softmax(logits, 1)
        check("nll_loss", "nll_loss", logp, target, {"weight": cw}, {"weight": torch.tensor(cw)}, dl_rows)
