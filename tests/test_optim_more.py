"""RMSprop, Adagrad and the schedules ExponentialLR, LambdaLR, LinearLR, SequentialLR and ReduceLROnPlateau:
against their rules written out here over many steps, against torch.optim when installed, state_dict
round trips, frozen parameters skipped, bad arguments named."""
import math

import numpy as np
import pytest

from minicnn.nn import Parameter
from minicnn.optim import (SGD, Adagrad, Adam, CosineAnnealingLR, ExponentialLR, LambdaLR, LinearLR,
                           ReduceLROnPlateau, RMSprop, SequentialLR, StepLR)

STEPS = 40
SHAPES = [(3, 4), (5,), (2, 1, 3)]


def make_params(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [Parameter(rng.standard_normal(s).astype(dtype)) for s in SHAPES]


def grads_at(step, seed=1):
    rng = np.random.default_rng([seed, step])
    return [rng.standard_normal(s) for s in SHAPES]


# -- reference rules (float64, one line per line of the documented rule) --------------------------------
def reference_rmsprop(p, g, s, lr, alpha, eps, weight_decay, momentum, centered, maximize):
    g = -g if maximize else g
    g = g + weight_decay * p
    s["v"] = alpha * s.get("v", 0.0) + (1 - alpha) * g * g
    if centered:
        s["m"] = s.get("m", 0.0) + (1 - alpha) * (g - s.get("m", 0.0))
        avg = np.sqrt(s["v"] - s["m"] ** 2) + eps
    else:
        avg = np.sqrt(s["v"]) + eps
    if momentum > 0:
        s["b"] = momentum * s.get("b", 0.0) + g / avg
        return p - lr * s["b"]
    return p - lr * g / avg


def reference_adagrad(p, g, s, lr, lr_decay, weight_decay, initial_accumulator_value, eps, maximize):
    g = -g if maximize else g
    g = g + weight_decay * p
    s["t"] = s.get("t", 0) + 1
    clr = lr / (1 + (s["t"] - 1) * lr_decay)
    s["sum"] = s.get("sum", initial_accumulator_value) + g * g
    return p - clr * g / (np.sqrt(s["sum"]) + eps)


RMSPROP_CASES = [dict(), dict(momentum=0.9), dict(centered=True), dict(centered=True, momentum=0.5, weight_decay=0.1),
                 dict(alpha=0.9, eps=1e-3, maximize=True)]
ADAGRAD_CASES = [dict(), dict(lr_decay=0.05), dict(weight_decay=0.1, initial_accumulator_value=0.3),
                 dict(eps=1e-3, maximize=True)]


def run_against_reference(make, reference, kwargs, defaults):
    params = make_params()
    ref = [p.data.copy() for p in params]
    states = [{} for _ in params]
    opt = make(params, **kwargs)
    hp = {**defaults, **kwargs}
    for t in range(STEPS):
        for p, g in zip(params, grads_at(t)):
            p.grad[...] = g
        opt.step()
        ref = [reference(r, g, s, **hp) for r, g, s in zip(ref, grads_at(t), states)]
        for p, r in zip(params, ref):
            np.testing.assert_allclose(p.data, r, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kwargs", RMSPROP_CASES)
def test_rmsprop_matches_its_rule(kwargs):
    defaults = dict(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False, maximize=False)
    run_against_reference(RMSprop, reference_rmsprop, kwargs, defaults)


@pytest.mark.parametrize("kwargs", ADAGRAD_CASES)
def test_adagrad_matches_its_rule(kwargs):
    defaults = dict(lr=0.01, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                    maximize=False)
    run_against_reference(Adagrad, reference_adagrad, kwargs, defaults)


@pytest.mark.parametrize("name,kwargs", [("RMSprop", k) for k in RMSPROP_CASES] + [("Adagrad", k) for k in ADAGRAD_CASES])
def test_matches_torch_optim(name, kwargs):
    torch = pytest.importorskip("torch")
    ours_cls = {"RMSprop": RMSprop, "Adagrad": Adagrad}[name]
    params = make_params()
    tparams = [torch.nn.Parameter(torch.from_numpy(p.data.copy())) for p in params]
    opt, topt = ours_cls(params, **kwargs), getattr(torch.optim, name)(tparams, **kwargs)
    for t in range(STEPS):
        for p, tp, g in zip(params, tparams, grads_at(t)):
            p.grad[...] = g
            tp.grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make", [lambda ps: RMSprop(ps, momentum=0.9, centered=True), lambda ps: Adagrad(ps, lr_decay=0.1)])
def test_state_dict_round_trip_resumes_exactly(make):
    params = make_params()
    opt = make(params)
    for t in range(10):
        for p, g in zip(params, grads_at(t)):
            p.grad[...] = g
        opt.step()
    saved_state = opt.state_dict()
    copies = [Parameter(p.data) for p in params]
    resumed = make(copies)
    resumed.load_state_dict(saved_state)
    for t in range(10, 20):
        for p, c, g in zip(params, copies, grads_at(t)):
            p.grad[...] = g
            c.grad[...] = g
        opt.step()
        resumed.step()
    for p, c in zip(params, copies):
        np.testing.assert_array_equal(p.data, c.data)


@pytest.mark.parametrize("make", [RMSprop, Adagrad, lambda ps: SGD(ps, lr=0.1, momentum=0.9), Adam])
def test_frozen_parameters_are_skipped(make):
    params = make_params()
    params[1].requires_grad = False
    before = params[1].data.copy()
    opt = make(params)
    for t in range(3):
        for p, g in zip(params, grads_at(t)):
            p.grad[...] = g
        opt.step()
    np.testing.assert_array_equal(params[1].data, before)
    assert params[1] not in opt.state or opt.state[params[1]]["step"] == 0  # Adagrad creates state up front
    assert not np.array_equal(params[0].data, make_params()[0].data)


def test_float32_parameters_stay_float32():
    for cls in (RMSprop, Adagrad):
        params = make_params(dtype=np.float32)
        opt = cls(params, momentum=0.9) if cls is RMSprop else cls(params)
        for p, g in zip(params, grads_at(0)):
            p.grad[...] = g
        opt.step()
        assert all(p.data.dtype == np.float32 for p in params)
        assert all(v.dtype == np.float32 for s in opt.state.values() for v in s.values() if isinstance(v, np.ndarray))


def test_optimizer_arguments_are_named():
    ps = make_params()
    for kwargs, word in [(dict(lr=-1), "lr"), (dict(alpha=-0.1), "alpha"), (dict(eps=-1), "eps"),
                         (dict(momentum=-1), "momentum"), (dict(weight_decay=-1), "weight_decay"),
                         (dict(centered=1), "centered")]:
        with pytest.raises((TypeError, ValueError), match=word):
            RMSprop(ps, **kwargs)
    for kwargs, word in [(dict(lr_decay=-1), "lr_decay"), (dict(initial_accumulator_value=-1), "initial_accumulator"),
                         (dict(eps=-1), "eps"), (dict(weight_decay=-1), "weight_decay")]:
        with pytest.raises(ValueError, match=word):
            Adagrad(ps, **kwargs)


# -- schedules ----------------------------------------------------------------------------------------------
def opt_for(lr=0.5, groups=1):
    return SGD([{"params": [Parameter(np.zeros(1))], "lr": lr * (i + 1)} for i in range(groups)], lr=lr)


def lrs(sched, opt, n, metric=None):
    out = [[g["lr"] for g in opt.param_groups]]
    for i in range(n):
        opt.step()
        sched.step() if metric is None else sched.step(metric(i))
        out.append([g["lr"] for g in opt.param_groups])
        assert sched.get_last_lr() == out[-1]
    return np.array(out)


def test_exponential_lambda_linear_follow_their_closed_forms():
    opt = opt_for(groups=2)
    got = lrs(ExponentialLR(opt, 0.9), opt, 30)
    np.testing.assert_allclose(got, [[0.5 * 0.9 ** t, 1.0 * 0.9 ** t] for t in range(31)], rtol=1e-12)
    opt = opt_for(groups=2)
    got = lrs(LambdaLR(opt, [lambda e: 1 / (e + 1), lambda e: 0.5 ** e]), opt, 30)
    np.testing.assert_allclose(got, [[0.5 / (t + 1), 1.0 * 0.5 ** t] for t in range(31)], rtol=1e-12)
    for start, end, total in [(1 / 3, 1.0, 5), (0.1, 0.9, 7), (1.0, 0.0, 4)]:
        opt = opt_for()
        got = lrs(LinearLR(opt, start, end, total), opt, 20)
        expected = [[0.5 * (start + (end - start) * min(t, total) / total)] for t in range(21)]
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_sequential_lr_warm_up_then_cosine():
    opt = opt_for()
    warm = LinearLR(opt, 0.1, 1.0, 5)
    cos = CosineAnnealingLR(opt, T_max=10, eta_min=0.01)
    got = lrs(SequentialLR(opt, [warm, cos], milestones=[5]), opt, 20)[:, 0]
    expected = [0.5 * (0.1 + 0.9 * t / 5) for t in range(5)]
    expected += [0.01 + (0.5 - 0.01) * (1 + math.cos(math.pi * (t - 5) / 10)) / 2 for t in range(5, 21)]
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def _torch_twin(torch, name, topt, **kwargs):
    return getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)


def test_schedules_match_torch():
    torch = pytest.importorskip("torch")

    def pair():
        ours = opt_for(groups=2)
        theirs = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.5 * (i + 1)}
                                  for i in range(2)], lr=0.5)
        return ours, theirs

    def seq(mod, o, is_torch):
        lin = (torch.optim.lr_scheduler.LinearLR if is_torch else LinearLR)(o, start_factor=0.2, total_iters=4)
        ex = (torch.optim.lr_scheduler.ExponentialLR if is_torch else ExponentialLR)(o, gamma=0.8)
        st = (torch.optim.lr_scheduler.StepLR if is_torch else StepLR)(o, step_size=3, gamma=0.5)
        return (torch.optim.lr_scheduler.SequentialLR if is_torch else SequentialLR)(o, [lin, ex, st], [4, 9])

    cases = [
        (lambda o, t: (torch.optim.lr_scheduler.ExponentialLR if t else ExponentialLR)(o, gamma=0.93)),
        (lambda o, t: (torch.optim.lr_scheduler.LambdaLR if t else LambdaLR)(o, lambda e: 1.0 / (1 + 0.1 * e))),
        (lambda o, t: (torch.optim.lr_scheduler.LinearLR if t else LinearLR)(o)),
        (lambda o, t: (torch.optim.lr_scheduler.LinearLR if t else LinearLR)(o, 0.5, 0.1, 10)),
        (lambda o, t: seq(None, o, t)),
    ]
    for make in cases:
        ours, theirs = pair()
        s, ts = make(ours, False), make(theirs, True)
        for _ in range(25):
            np.testing.assert_allclose([g["lr"] for g in ours.param_groups], [g["lr"] for g in theirs.param_groups],
                                       rtol=1e-12)
            ours.step()
            theirs.step()
            s.step()
            ts.step()
        np.testing.assert_allclose(s.get_last_lr(), ts.get_last_lr(), rtol=1e-12)


METRICS = [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.81, 0.82, 0.83, 0.84, 0.85, 0.84, 0.9, 0.9, 0.9, 0.9, 0.5, 0.5,
           0.5, 0.5, 0.5, 0.5, 0.5, float("nan"), 0.5, 0.5, 0.5, 0.5]


@pytest.mark.parametrize("kwargs", [dict(patience=2), dict(patience=1, cooldown=2, factor=0.5),
                                    dict(mode="max", patience=0, threshold=0.05),
                                    dict(threshold_mode="abs", threshold=0.02, patience=1, min_lr=[0.1, 0.2]),
                                    dict(patience=0, factor=0.01, min_lr=0.004, eps=1e-3)])
def test_reduce_lr_on_plateau_matches_torch_and_the_rule(kwargs):
    opt = opt_for(groups=2)
    sched = ReduceLROnPlateau(opt, **kwargs)
    got = lrs(sched, opt, len(METRICS), metric=lambda i: METRICS[i])
    # the rule, written out
    mode, factor, patience = kwargs.get("mode", "min"), kwargs.get("factor", 0.1), kwargs.get("patience", 10)
    threshold, tmode = kwargs.get("threshold", 1e-4), kwargs.get("threshold_mode", "rel")
    cooldown, eps = kwargs.get("cooldown", 0), kwargs.get("eps", 1e-8)
    min_lr = kwargs.get("min_lr", 0.0)
    min_lrs = min_lr if isinstance(min_lr, list) else [min_lr] * 2
    lr, best, bad, cool, expected = [0.5, 1.0], (math.inf if mode == "min" else -math.inf), 0, 0, [[0.5, 1.0]]
    for m in METRICS:
        if mode == "min":
            better = m < (best * (1 - threshold) if tmode == "rel" else best - threshold)
        else:
            better = m > (best * (1 + threshold) if tmode == "rel" else best + threshold)
        best, bad = (m, 0) if better else (best, bad + 1)
        if cool > 0:
            cool, bad = cool - 1, 0
        if bad > patience:
            lr = [lr_i if lr_i - max(lr_i * factor, mn) <= eps else max(lr_i * factor, mn) for lr_i, mn in zip(lr, min_lrs)]
            cool, bad = cooldown, 0
        expected.append(list(lr))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got[-1][0] < 0.5
    torch = pytest.importorskip("torch")
    topt = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.5 * (i + 1)} for i in range(2)],
                           lr=0.5)
    ts = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kwargs)
    theirs = [[0.5, 1.0]]
    for m in METRICS:
        ts.step(m)
        theirs.append([g["lr"] for g in topt.param_groups])
    np.testing.assert_allclose(got, theirs, rtol=1e-12)


def _make_schedules():
    return [
        lambda o: ExponentialLR(o, 0.9),
        lambda o: LambdaLR(o, lambda e: 0.97 ** e),
        lambda o: LinearLR(o, 0.25, 1.0, 6),
        lambda o: SequentialLR(o, [LinearLR(o, 0.1, total_iters=3), CosineAnnealingLR(o, 8)], [3]),
        lambda o: ReduceLROnPlateau(o, patience=1, cooldown=1),
    ]


@pytest.mark.parametrize("index", range(5))
def test_schedule_state_dict_round_trip(index):
    make = _make_schedules()[index]
    plateau = index == 4
    metric = (lambda i: METRICS[i % len(METRICS)]) if plateau else None
    opt = opt_for()
    sched = make(opt)
    lrs(sched, opt, 7, metric)
    saved_opt, saved = opt.state_dict(), sched.state_dict()
    rest = lrs(sched, opt, 9, None if metric is None else (lambda i: METRICS[(i + 7) % len(METRICS)]))
    opt2 = opt_for()
    sched2 = make(opt2)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved)
    rest2 = lrs(sched2, opt2, 9, None if metric is None else (lambda i: METRICS[(i + 7) % len(METRICS)]))
    np.testing.assert_array_equal(rest, rest2)


def test_schedule_arguments_are_named():
    o = opt_for()
    for make, word in [(lambda: ExponentialLR(o, -1), "gamma"), (lambda: LambdaLR(o, 3), "lr_lambda"),
                       (lambda: LambdaLR(o, [lambda e: 1, lambda e: 1]), "lr_lambdas"),
                       (lambda: LinearLR(o, start_factor=0), "start_factor"),
                       (lambda: LinearLR(o, end_factor=2), "end_factor"),
                       (lambda: LinearLR(o, total_iters=0), "total_iters"),
                       (lambda: SequentialLR(o, [ExponentialLR(o, 0.9)], [3]), "milestones"),
                       (lambda: SequentialLR(o, [ExponentialLR(o, 0.9), 3], [3]), r"schedulers\[1\]"),
                       (lambda: SequentialLR(o, [ExponentialLR(o, 0.9), ExponentialLR(opt_for(), 0.9)], [3]),
                        "same optimizer"),
                       (lambda: SequentialLR(o, [ExponentialLR(o, 0.9), ReduceLROnPlateau(o)], [3]),
                        r"schedulers\[1\] is ReduceLROnPlateau"),
                       (lambda: ReduceLROnPlateau(o, factor=1.0), "factor"),
                       (lambda: ReduceLROnPlateau(o, mode="up"), "mode"),
                       (lambda: ReduceLROnPlateau(o, threshold_mode="x"), "threshold_mode"),
                       (lambda: ReduceLROnPlateau(o, patience=-1), "patience"),
                       (lambda: ReduceLROnPlateau(o, min_lr=[0.1, 0.2]), "min_lr")]:
        with pytest.raises((TypeError, ValueError), match=word):
            make()
    with pytest.raises(TypeError, match="metrics must be a number"):
        ReduceLROnPlateau(o).step("low")
    with pytest.raises(ValueError, match="lr_lambda"):
        LambdaLR(o, lambda e: float("inf"))
