"""Learning-rate schedulers against their formulas, against torch's when installed, state dicts and
bad arguments."""
import math

import numpy as np
import pytest

from minicnn.nn import Parameter
from minicnn.optim import SGD, Adam, AdamW, CosineAnnealingLR, MultiStepLR, OneCycleLR, Optimizer, StepLR
from minicnn.optim import lr_scheduler


def make_sgd(lrs=(0.1, 0.03), **kw):
    groups = [{"params": [Parameter(np.zeros(2))], "lr": lr} for lr in lrs]
    return SGD(groups, lr=lrs[0], **kw)


def schedule(make_scheduler, optimizer, steps):
    """lr (per group) after creation and after each of ``steps`` steps, plus momentum per group; for
    minicnn's optimizers and schedulers and for torch's alike."""
    sched = make_scheduler(optimizer)
    lrs, moms = [sched.get_last_lr()], [momenta(optimizer)]
    for _ in range(steps):
        optimizer.step()
        sched.step()
        lrs.append(sched.get_last_lr())
        moms.append(momenta(optimizer))
    return np.array(lrs), np.array(moms), sched


def momenta(optimizer):
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in optimizer.param_groups]


# -- formulas ---------------------------------------------------------------------------------------
def test_step_lr_formula():
    lrs, _, sched = schedule(lambda o: StepLR(o, step_size=3, gamma=0.5), make_sgd(), 20)
    for t in range(21):
        np.testing.assert_allclose(lrs[t], [0.1 * 0.5 ** (t // 3), 0.03 * 0.5 ** (t // 3)], rtol=1e-14)
    assert sched.last_epoch == 20


def test_multistep_lr_formula_with_repeated_milestones():
    milestones = [8, 2, 5, 5]
    lrs, _, _ = schedule(lambda o: MultiStepLR(o, milestones, gamma=0.1), make_sgd(), 12)
    for t in range(13):
        k = sum(1 for m in milestones if m <= t)
        np.testing.assert_allclose(lrs[t], [0.1 * 0.1 ** k, 0.03 * 0.1 ** k], rtol=1e-14)


@pytest.mark.parametrize("T_max, eta_min", [(10, 0.0), (7, 0.001), (1, 0.01)])
def test_cosine_annealing_formula(T_max, eta_min):
    steps = 5 * T_max + 3  # past T_max the lr follows the cosine back up, periodically
    lrs, _, _ = schedule(lambda o: CosineAnnealingLR(o, T_max, eta_min), make_sgd(), steps)
    for t in range(steps + 1):
        expected = [eta_min + (b - eta_min) * (1 + math.cos(math.pi * t / T_max)) / 2 for b in (0.1, 0.03)]
        np.testing.assert_allclose(lrs[t], expected, rtol=1e-9, atol=1e-15)


def reference_one_cycle(t, total, max_lr, pct_start, strategy, div, final_div, three_phase, base_m, max_m):
    """(lr, momentum) at step ``t``, written from the 1cycle description."""
    def anneal(start, end, pct):
        if strategy == "cos":
            return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)
        return start + (end - start) * pct

    initial, minimum = max_lr / div, max_lr / div / final_div
    up_end = pct_start * total - 1
    if three_phase:
        phases = [(up_end, initial, max_lr, max_m, base_m), (2 * pct_start * total - 2, max_lr, initial, base_m, max_m),
                  (total - 1, initial, minimum, max_m, max_m)]
    else:
        phases = [(up_end, initial, max_lr, max_m, base_m), (total - 1, max_lr, minimum, base_m, max_m)]
    start = 0.0
    for i, (end, lr0, lr1, m0, m1) in enumerate(phases):
        if t <= end or i == len(phases) - 1:
            pct = (t - start) / (end - start)
            return anneal(lr0, lr1, pct), anneal(m0, m1, pct)
        start = end


ONE_CYCLE_CASES = [
    dict(total_steps=100),
    dict(total_steps=37, pct_start=0.25, anneal_strategy="linear"),
    dict(epochs=4, steps_per_epoch=13, three_phase=True, div_factor=10.0, final_div_factor=100.0),
    dict(total_steps=50, pct_start=0.4, three_phase=True, anneal_strategy="linear", base_momentum=0.8,
         max_momentum=0.9),
    dict(total_steps=2),
]


@pytest.mark.parametrize("kw", ONE_CYCLE_CASES)
@pytest.mark.parametrize("opt_kind", ["sgd", "adam"])
def test_one_cycle_formula(kw, opt_kind):
    params = [Parameter(np.zeros(3))]
    opt = SGD(params, lr=0.1, momentum=0.9) if opt_kind == "sgd" else Adam(params, lr=0.1, betas=(0.9, 0.99))
    total = kw.get("total_steps") or kw["epochs"] * kw["steps_per_epoch"]
    lrs, moms, _ = schedule(lambda o: OneCycleLR(o, max_lr=0.5, **kw), opt, total - 1)
    args = dict(pct_start=0.3, strategy="cos", div=25.0, final_div=1e4, three_phase=False, base_m=0.85, max_m=0.95)
    args.update({k: v for k, v in kw.items() if k in ("pct_start", "three_phase")})
    args.update({"strategy": kw.get("anneal_strategy", "cos"), "div": kw.get("div_factor", 25.0),
                 "final_div": kw.get("final_div_factor", 1e4), "base_m": kw.get("base_momentum", 0.85),
                 "max_m": kw.get("max_momentum", 0.95)})
    for t in range(total):
        lr, m = reference_one_cycle(t, total, 0.5, **args)
        np.testing.assert_allclose(lrs[t, 0], lr, rtol=1e-12)
        np.testing.assert_allclose(moms[t, 0], m, rtol=1e-12)
    if opt_kind == "adam":
        assert opt.param_groups[0]["betas"][1] == 0.99  # only beta1 cycles
    assert opt.param_groups[0]["max_lr"] == 0.5
    assert opt.param_groups[0]["initial_lr"] == 0.5 / args["div"]


def test_one_cycle_rejects_stepping_past_total_steps():
    opt = make_sgd(momentum=0.9)
    sched = OneCycleLR(opt, max_lr=[1.0, 0.5], total_steps=5)
    for _ in range(5):  # PyTorch allows total_steps calls of step()
        sched.step()
    state = sched.state_dict()
    lrs = [g["lr"] for g in opt.param_groups]
    with pytest.raises(ValueError, match="Tried to step 6 times. The specified number of total steps is 5"):
        sched.step()
    assert sched.state_dict() == state and [g["lr"] for g in opt.param_groups] == lrs


def test_one_cycle_zero_length_phase_uses_phase_end():
    # pct_start * total_steps == 1: PyTorch divides by zero here; the warm-up phase is just its end
    opt = make_sgd(momentum=0.9)
    sched = OneCycleLR(opt, max_lr=1.0, total_steps=10, pct_start=0.1)
    assert sched.get_last_lr() == [1.0, 1.0]
    sched.step()
    assert sched.get_last_lr()[0] < 1.0


def test_one_cycle_without_momentum_cycling():
    opt = make_sgd(momentum=0.5)
    OneCycleLR(opt, max_lr=1.0, total_steps=10, cycle_momentum=False)
    assert opt.param_groups[0]["momentum"] == 0.5 and "max_momentum" not in opt.param_groups[0]


# -- against torch ------------------------------------------------------------------------------------
def test_match_torch_over_many_steps():
    torch = pytest.importorskip("torch")
    ts = torch.optim.lr_scheduler

    def torch_sgd(lrs=(0.1, 0.03), **kw):
        return torch.optim.SGD([{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs],
                               lr=lrs[0], **kw)

    cases = [
        (lambda o: StepLR(o, 7, 0.5), lambda o: ts.StepLR(o, 7, 0.5), 100, {}),
        (lambda o: StepLR(o, 1, 0.9), lambda o: ts.StepLR(o, 1, 0.9), 150, {}),
        (lambda o: MultiStepLR(o, [30, 10, 60, 60], 0.3), lambda o: ts.MultiStepLR(o, [30, 10, 60, 60], 0.3), 100, {}),
        (lambda o: CosineAnnealingLR(o, 50), lambda o: ts.CosineAnnealingLR(o, 50), 400, {}),
        (lambda o: CosineAnnealingLR(o, 13, 1e-3), lambda o: ts.CosineAnnealingLR(o, 13, 1e-3), 300, {}),
        (lambda o: OneCycleLR(o, [1.0, 0.3], total_steps=200), lambda o: ts.OneCycleLR(o, [1.0, 0.3], total_steps=200),
         200, dict(momentum=0.9)),
        (lambda o: OneCycleLR(o, 0.2, epochs=7, steps_per_epoch=11, pct_start=0.35, anneal_strategy="linear",
                              three_phase=True, base_momentum=0.7, max_momentum=0.99),
         lambda o: ts.OneCycleLR(o, 0.2, epochs=7, steps_per_epoch=11, pct_start=0.35, anneal_strategy="linear",
                                 three_phase=True, base_momentum=0.7, max_momentum=0.99), 77, dict(momentum=0.9)),
    ]
    for ours_make, torch_make, steps, kw in cases:
        lrs, moms, _ = schedule(ours_make, make_sgd(**kw), steps)
        tlrs, tmoms, _ = schedule(torch_make, torch_sgd(**kw), steps)
        np.testing.assert_allclose(lrs, tlrs, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(moms, tmoms, rtol=1e-12)
    # Adam: beta1 cycles
    p = [Parameter(np.zeros(2))]
    lrs, moms, _ = schedule(lambda o: OneCycleLR(o, 0.01, total_steps=60, three_phase=True), Adam(p), 60)
    topt = torch.optim.Adam([torch.zeros(2, requires_grad=True)])
    tlrs, tmoms, _ = schedule(lambda o: ts.OneCycleLR(o, 0.01, total_steps=60, three_phase=True), topt, 60)
    np.testing.assert_allclose(lrs, tlrs, rtol=1e-12)
    np.testing.assert_allclose(moms, tmoms, rtol=1e-12)


# -- base class behaviour -----------------------------------------------------------------------------
def test_initial_lr_and_base_lrs():
    opt = make_sgd()
    sched = StepLR(opt, 2)
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.03]
    assert sched.base_lrs == [0.1, 0.03] and sched.last_epoch == 0
    out = sched.get_last_lr()
    out[0] = 5.0
    assert sched.get_last_lr() == [0.1, 0.03]
    assert isinstance(sched, lr_scheduler.LRScheduler)
    # a second scheduler keeps the existing initial_lr (PyTorch's setdefault)
    opt.param_groups[0]["lr"] = 0.5
    assert StepLR(opt, 2).base_lrs == [0.1, 0.03]


def test_groups_added_after_creation_are_an_error():
    opt = make_sgd()
    sched = StepLR(opt, 2)
    opt.add_param_group({"params": [Parameter(np.zeros(1))]})
    with pytest.raises(ValueError, match="parameter groups"):
        sched.step()


@pytest.mark.parametrize("make, kw", [
    (lambda o: StepLR(o, 3, 0.5), {}),
    (lambda o: MultiStepLR(o, [2, 5, 5, 9]), {}),
    (lambda o: CosineAnnealingLR(o, 6, 0.001), {}),
    (lambda o: OneCycleLR(o, 1.0, total_steps=30, three_phase=True), dict(momentum=0.9)),
])
def test_state_dict_resume_continues_identically(make, kw):
    opt = make_sgd(**kw)
    full, _, _ = schedule(make, opt, 25)
    opt1 = make_sgd(**kw)
    first, _, sched1 = schedule(make, opt1, 11)
    opt_state, sched_state = opt1.state_dict(), sched1.state_dict()
    opt2 = make_sgd(**kw)
    sched2 = make(opt2)  # as in PyTorch: create the scheduler, then load both states
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(sched_state)
    rest = []
    for _ in range(14):
        opt2.step()
        sched2.step()
        rest.append(sched2.get_last_lr())
    np.testing.assert_array_equal(np.concatenate([first, rest]), full)
    assert sched2.last_epoch == 25


def test_state_dict_is_plain_data_and_checked():
    opt = make_sgd(momentum=0.9)
    sched = OneCycleLR(opt, 1.0, total_steps=10)
    state = sched.state_dict()
    assert "optimizer" not in state and state["last_epoch"] == 0 and state["total_steps"] == 10
    with pytest.raises(ValueError, match="missing keys"):
        StepLR(make_sgd(), 2).load_state_dict(state)
    bad = dict(state, base_lrs=[1.0])
    with pytest.raises(ValueError, match="base_lrs"):
        sched.load_state_dict(bad)
    with pytest.raises(ValueError, match="last_epoch"):
        sched.load_state_dict(dict(state, last_epoch=-3))
    with pytest.raises(TypeError):
        sched.load_state_dict([("last_epoch", 1)])
    assert sched.state_dict() == state


class LrOnly(Optimizer):
    def __init__(self, params, lr=0.1):
        super().__init__(params, dict(lr=lr))

    def step(self, closure=None):
        pass


@pytest.mark.parametrize("make, error, message", [
    (lambda o: StepLR("opt", 2), TypeError, "not an Optimizer"),
    (lambda o: StepLR(o, 0), ValueError, "step_size"),
    (lambda o: StepLR(o, 2.5), TypeError, "step_size"),
    (lambda o: StepLR(o, 2, gamma=0), ValueError, "gamma"),
    (lambda o: StepLR(o, 2, gamma=float("nan")), ValueError, "gamma"),
    (lambda o: MultiStepLR(o, [3, -1]), ValueError, "milestones"),
    (lambda o: MultiStepLR(o, 5), TypeError, "milestones"),
    (lambda o: MultiStepLR(o, [2], gamma=-0.1), ValueError, "gamma"),
    (lambda o: CosineAnnealingLR(o, 0), ValueError, "T_max"),
    (lambda o: CosineAnnealingLR(o, 10, eta_min=-1e-3), ValueError, "eta_min"),
    (lambda o: OneCycleLR(o, 1.0), ValueError, "total_steps OR"),
    (lambda o: OneCycleLR(o, 1.0, epochs=3), ValueError, "total_steps OR"),
    (lambda o: OneCycleLR(o, 1.0, total_steps=0), ValueError, "total_steps"),
    (lambda o: OneCycleLR(o, 1.0, epochs=0, steps_per_epoch=3), ValueError, "epochs"),
    (lambda o: OneCycleLR(o, 1.0, epochs=2, steps_per_epoch=-3), ValueError, "steps_per_epoch"),
    (lambda o: OneCycleLR(o, 1.0, total_steps=10, pct_start=1.5), ValueError, "pct_start"),
    (lambda o: OneCycleLR(o, 1.0, total_steps=10, anneal_strategy="exp"), ValueError, "anneal_strategy"),
    (lambda o: OneCycleLR(o, [1.0, 2.0, 3.0], total_steps=10), ValueError, "max_lr"),
    (lambda o: OneCycleLR(o, -1.0, total_steps=10), ValueError, "max_lr"),
    (lambda o: OneCycleLR(o, 1.0, total_steps=10, div_factor=0), ValueError, "div_factor"),
    (lambda o: OneCycleLR(o, 1.0, total_steps=10, max_momentum=-0.1), ValueError, "max_momentum"),
    (lambda o: OneCycleLR(LrOnly([Parameter(np.ones(1))]), 1.0, total_steps=10), ValueError, "momentum or beta1"),
])
def test_bad_arguments(make, error, message):
    opt = make_sgd()
    before = [dict((k, v) for k, v in g.items() if k != "params") for g in opt.param_groups]
    with pytest.raises(error, match=message):
        make(opt)
    assert [dict((k, v) for k, v in g.items() if k != "params") for g in opt.param_groups] == before


def test_one_cycle_beta1_must_stay_below_one():
    with pytest.raises(ValueError, match="max_momentum"):
        OneCycleLR(AdamW([Parameter(np.ones(1))]), 1.0, total_steps=10, max_momentum=1.0)
