"""CrossEntropyLoss against a textbook softmax/log reference, PyTorch, finite differences, bad input."""
import math

import numpy as np
import pytest

import naive
from minicnn import gradcheck, nn
import minicnn.functional as F
from minicnn.nn.module import BackwardBeforeForwardError


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_textbook_reference(rng, dtype):
    for _ in range(20):
        N, K = int(rng.integers(1, 9)), int(rng.integers(1, 12))
        s = float(rng.choice([0.0, 0.1, 0.37, 1.0]))
        logits = (rng.standard_normal((N, K)) * 3).astype(dtype)
        labels = rng.integers(0, K, N)
        crit = nn.CrossEntropyLoss(label_smoothing=s)
        loss = crit(logits, labels)
        assert isinstance(loss, float)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        assert loss == pytest.approx(naive.cross_entropy(logits, labels, s), rel=tol, abs=tol)
        d = crit.backward()
        assert d.dtype == dtype and d.shape == (N, K)
        np.testing.assert_allclose(d, naive.cross_entropy_grad(logits, labels, s), rtol=tol, atol=tol)
        crit(logits, labels)  # backward takes what its forward kept: one forward per backward
        np.testing.assert_allclose(crit.backward(2.5), 2.5 * d, rtol=tol, atol=tol)
        loss_f, ctx = F.cross_entropy_forward(logits, labels, s)
        assert loss_f == loss and F.cross_entropy(logits, labels, s) == loss
        np.testing.assert_array_equal(F.cross_entropy_backward(ctx), d)


def test_gradient_against_finite_differences(rng):
    logits = rng.standard_normal((5, 7))
    labels = rng.integers(0, 7, 5)
    for s in (0.0, 0.2):
        crit = nn.CrossEntropyLoss(s)
        crit(logits, labels)
        d = crit.backward()
        num = naive.numerical_grad(lambda: nn.CrossEntropyLoss(s)(logits, labels), logits)
        np.testing.assert_allclose(d, num, rtol=1e-6, atol=1e-9)
        assert gradcheck(crit, (logits, labels))


def test_against_torch(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for s in (0.0, 0.1, 0.5, 1.0):
        for dtype in (np.float32, np.float64):
            logits = (rng.standard_normal((16, 10)) * 4).astype(dtype)
            labels = rng.integers(0, 10, 16)
            crit = nn.CrossEntropyLoss(label_smoothing=s)
            loss = crit(logits, labels)
            lt = torch.from_numpy(logits).requires_grad_(True)
            ref = F.cross_entropy(lt, torch.from_numpy(labels), label_smoothing=s)
            ref.backward()
            tol = 1e-5 if dtype == np.float32 else 1e-12
            assert loss == pytest.approx(ref.item(), rel=tol, abs=tol)
            np.testing.assert_allclose(crit.backward(), lt.grad.numpy(), rtol=tol, atol=tol)


def test_extreme_logits_stay_finite():
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, 1e4]], dtype=np.float32)
    labels = np.array([0, 0, 2])
    for s in (0.0, 0.1):
        crit = nn.CrossEntropyLoss(s)
        loss = crit(logits, labels)
        d = crit.backward()
        assert np.isfinite(loss) and np.isfinite(d).all()
    # row 0 is right with certainty, row 1 wrong by 2e4, row 2 uniform over three classes
    assert nn.CrossEntropyLoss()(logits, labels) == pytest.approx((0 + 2e4 + math.log(3)) / 3, rel=1e-6)
    # label smoothing: row 0 pays s * mean_k(lse - z_k) = s * (0 + 2e4 + 1e4) / 3
    expected = (0.9 * 0 + 0.1 * 1e4 + 0.9 * 2e4 + 0.1 * (2e4 + 2e4 + 0) / 3 + math.log(3)) / 3
    assert nn.CrossEntropyLoss(0.1)(logits, labels) == pytest.approx(expected, rel=1e-6)


def test_accepts_any_integer_labels_and_float_dtypes(rng):
    logits = rng.standard_normal((4, 3))
    ref = nn.CrossEntropyLoss()(logits, np.array([0, 2, 1, 1]))
    for dt in (np.int8, np.uint8, np.int32, np.uint64):
        assert nn.CrossEntropyLoss()(logits, np.array([0, 2, 1, 1], dtype=dt)) == ref
    crit = nn.CrossEntropyLoss()
    crit(logits.astype(np.float16), np.array([0, 2, 1, 1]))
    assert crit.backward().dtype == np.float32


def test_errors():
    crit = nn.CrossEntropyLoss()
    with pytest.raises(BackwardBeforeForwardError, match="needs a forward pass"):
        crit.backward()
    z = np.zeros((3, 4))
    y = np.array([0, 1, 2])
    with pytest.raises(ValueError, match=r"logits must be 2-D \(N, K\), got shape \(3, 4, 1\)"):
        crit(z[..., None], y)
    with pytest.raises(TypeError, match="logits must be a floating-point array"):
        crit(z.astype(np.int64), y)
    with pytest.raises(TypeError, match="logits must be a numpy.ndarray"):
        crit(z.tolist(), y)
    with pytest.raises(ValueError, match=r"target must be 1-D \(N,\), got shape \(3, 1\)"):
        crit(z, y[:, None])
    with pytest.raises(TypeError, match="target must be an integer array"):
        crit(z, y.astype(np.float64))
    with pytest.raises(ValueError, match="expected 3 labels, got 2"):
        crit(z, y[:2])
    with pytest.raises(ValueError, match=r"in \[0, 4\).*got 4"):
        crit(z, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"in \[0, 4\).*got -1"):
        crit(z, np.array([0, -1, 1]))
    for bad in (np.nan, np.inf, -np.inf):
        z_bad = z.copy()
        z_bad[1, 2] = bad
        with pytest.raises(ValueError, match="logits must be finite"):
            crit(z_bad, y)
    with pytest.raises(ValueError, match=r"N >= 1"):
        crit(np.zeros((0, 4)), np.zeros(0, np.int64))
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], got 1.5"):
        nn.CrossEntropyLoss(1.5)
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], got -0.1"):
        nn.CrossEntropyLoss(-0.1)
    crit(z, y)
    with pytest.raises(ValueError, match="dy must be a real scalar"):
        crit.backward(np.ones(3))
    assert repr(nn.CrossEntropyLoss(0.1)) == "CrossEntropyLoss(label_smoothing=0.1)"
