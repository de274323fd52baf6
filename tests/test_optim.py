"""SGD, Adam and AdamW against their update rules written out here, against torch.optim when
installed, and the Optimizer base class (groups, state_dict, errors)."""
import itertools
import math

import numpy as np
import pytest

from minicnn.nn import Parameter
from minicnn.optim import SGD, Adam, AdamW, Optimizer

STEPS = 40
SHAPES = [(3, 4), (5,), (), (2, 1, 3)]


# -- textbook references (float64, one numpy expression per line of the documented rule) ----------
def reference_sgd(params, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                  maximize=False, bufs=None):
    """One SGD step on copies; returns (new params, new momentum buffers)."""
    new_params, new_bufs = [], []
    for i, (p, g) in enumerate(zip(params, grads)):
        g = -g if maximize else g
        g = g + weight_decay * p
        buf = None
        if momentum != 0:
            if bufs is None or bufs[i] is None:
                buf = g.copy()
            else:
                buf = momentum * bufs[i] + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        new_params.append(p - lr * g)
        new_bufs.append(buf)
    return new_params, new_bufs


def reference_adam(params, grads, state, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                   amsgrad=False, maximize=False, decoupled=False):
    """One Adam/AdamW step on copies; ``state`` is a list of dicts (m, v, vmax, t), updated."""
    beta1, beta2 = betas
    new_params = []
    for p, g, s in zip(params, grads, state):
        g = -g if maximize else g
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        s["t"] = s.get("t", 0) + 1
        t = s["t"]
        s["m"] = beta1 * s.get("m", 0.0) + (1 - beta1) * g
        s["v"] = beta2 * s.get("v", 0.0) + (1 - beta2) * g * g
        v_hat = s["v"]
        if amsgrad:
            s["vmax"] = np.maximum(s.get("vmax", 0.0), s["v"])
            v_hat = s["vmax"]
        m_hat = s["m"] / (1 - beta1 ** t)
        new_params.append(p - lr * m_hat / (np.sqrt(v_hat) / math.sqrt(1 - beta2 ** t) + eps))
    return new_params


def quadratic_grads(params, targets, scales, maximize=False):
    """Gradient of sum(scale/2 * (p - target)^2) + sum(cos p) (negated with ``maximize``, so that
    the run still converges): feeds the trajectory back into the gradients so that a wrong step
    shows up in every later one."""
    sign = -1.0 if maximize else 1.0
    return [sign * (s * (p - t) - np.sin(p)) for p, t, s in zip(params, targets, scales)]


def make_problem(rng, dtype):
    params0 = [rng.standard_normal(s) for s in SHAPES]
    targets = [rng.standard_normal(s) for s in SHAPES]
    scales = [rng.uniform(0.5, 2.0, s) for s in SHAPES]
    return [p.astype(dtype) for p in params0], targets, scales


SGD_OPTIONS = [dict(momentum=m, dampening=d, weight_decay=w, nesterov=n, maximize=x)
               for m, d, w, n, x in itertools.product([0.0, 0.9], [0.0, 0.3], [0.0, 0.05], [False, True],
                                                      [False, True])
               if not (n and (m == 0 or d != 0))]
ADAM_OPTIONS = [dict(weight_decay=w, amsgrad=a, maximize=x, betas=b)
                for w, a, x, b in itertools.product([0.0, 0.05], [False, True], [False, True],
                                                    [(0.9, 0.999), (0.5, 0.9)])]


def run_minicnn(opt_factory, params0, targets, scales, steps=STEPS, lrs=None):
    params = [Parameter(p) for p in params0]
    opt = opt_factory(params)
    maximize = opt.param_groups[0].get("maximize", False)
    for k in range(steps):
        if lrs is not None:
            opt.param_groups[0]["lr"] = lrs[k]
        for p, g in zip(params, quadratic_grads([p.data for p in params], targets, scales, maximize)):
            p.grad[...] = g
        opt.step()
    return [p.data for p in params], opt


@pytest.mark.parametrize("options", SGD_OPTIONS)
def test_sgd_matches_reference(options, rng):
    params0, targets, scales = make_problem(rng, np.float64)
    lrs = rng.uniform(0.01, 0.1, STEPS)  # a changing lr must be read at every step
    ours, _ = run_minicnn(lambda ps: SGD(ps, lr=0.1, **options), params0, targets, scales, lrs=lrs)
    params, bufs = [p.copy() for p in params0], None
    for k in range(STEPS):
        grads = quadratic_grads(params, targets, scales, options["maximize"])
        params, bufs = reference_sgd(params, grads, lrs[k], bufs=bufs, **options)
    for a, b in zip(ours, params):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("options", ADAM_OPTIONS)
@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_adam_matches_reference(cls, options, rng):
    params0, targets, scales = make_problem(rng, np.float64)
    ours, opt = run_minicnn(lambda ps: cls(ps, lr=0.05, **options), params0, targets, scales)
    params, state = [p.copy() for p in params0], [{} for _ in params0]
    for _ in range(STEPS):
        params = reference_adam(params, quadratic_grads(params, targets, scales, options["maximize"]), state,
                                0.05, decoupled=cls is AdamW, **options)
    for a, b in zip(ours, params):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12)
    for s_ours, s_ref in zip(opt.state.values(), state):
        assert s_ours["step"] == STEPS
        np.testing.assert_allclose(s_ours["exp_avg"], s_ref["m"], rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(s_ours["exp_avg_sq"], s_ref["v"], rtol=1e-11, atol=1e-14)
        assert ("max_exp_avg_sq" in s_ours) == options["amsgrad"]


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
                                  lambda ps: Adam(ps, lr=0.02, amsgrad=True, weight_decay=0.01),
                                  lambda ps: AdamW(ps, lr=0.02)])
def test_float32_follows_float64_reference(make, rng):
    params0, targets, scales = make_problem(rng, np.float64)
    ours32, opt = run_minicnn(make, [p.astype(np.float32) for p in params0], targets, scales)
    ours64, _ = run_minicnn(make, params0, targets, scales)
    for a, b in zip(ours32, ours64):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
    for state in opt.state.values():
        assert all(v.dtype == np.float32 for v in state.values() if isinstance(v, np.ndarray))


def test_defaults_are_pytorchs():
    p = [Parameter(np.zeros(2))]
    assert SGD(p).defaults == dict(lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                                   maximize=False)
    adam = Adam(p).param_groups[0]
    assert (adam["lr"], adam["betas"], adam["eps"], adam["weight_decay"], adam["amsgrad"]) == (
        1e-3, (0.9, 0.999), 1e-8, 0, False)
    assert AdamW(p).param_groups[0]["weight_decay"] == 1e-2
    assert AdamW(p).param_groups[0]["decoupled_weight_decay"] is True


# -- against torch.optim -------------------------------------------------------------------------
def run_torch(torch, make, params0, targets, scales, steps=STEPS):
    params = [torch.tensor(p, requires_grad=True) for p in params0]
    opt = make(params)
    maximize = opt.param_groups[0]["maximize"]
    for _ in range(steps):
        grads = quadratic_grads([p.detach().numpy() for p in params], targets, scales, maximize)
        for p, g in zip(params, grads):
            p.grad = torch.tensor(np.asarray(g, dtype=params0[0].dtype))
        opt.step()
    return [p.detach().numpy() for p in params]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_torch(dtype, rng):
    torch = pytest.importorskip("torch")
    cases = [(SGD, torch.optim.SGD, dict(lr=0.05, **o)) for o in SGD_OPTIONS]
    cases += [(c, tc, dict(lr=0.05, **o)) for c, tc in ((Adam, torch.optim.Adam), (AdamW, torch.optim.AdamW))
              for o in ADAM_OPTIONS]
    # maximize runs away from the minimum, which amplifies rounding differences over 60 steps
    tol = dict(rtol=1e-9, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    for ours_cls, torch_cls, kw in cases:
        params0, targets, scales = make_problem(rng, dtype)
        ours, _ = run_minicnn(lambda ps: ours_cls(ps, **kw), params0, targets, scales, steps=30)
        theirs = run_torch(torch, lambda ps: torch_cls(ps, foreach=False, **kw), params0, targets, scales,
                           steps=30)
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, **tol, err_msg=f"{ours_cls.__name__} {kw}")


def test_state_dict_layout_matches_torch(rng):
    torch = pytest.importorskip("torch")
    arrays = [rng.standard_normal(s) for s in [(2, 3), (3,)]]
    ours = [Parameter(a) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    for make, tmake in [(lambda ps: SGD([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.5}], lr=0.1, momentum=0.9),
                         lambda ps: torch.optim.SGD([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.5}], lr=0.1,
                                                    momentum=0.9)),
                        (lambda ps: Adam(ps, amsgrad=True), lambda ps: torch.optim.Adam(ps, amsgrad=True))]:
        o, t = make(ours), tmake(theirs)
        for p, tp in zip(ours, theirs):
            p.grad[...] = 1.0
            tp.grad = torch.ones_like(tp)
        o.step()
        t.step()
        a, b = o.state_dict(), t.state_dict()
        assert [g["params"] for g in a["param_groups"]] == [g["params"] for g in b["param_groups"]]
        assert [g["lr"] for g in a["param_groups"]] == [g["lr"] for g in b["param_groups"]]
        assert a["state"].keys() == b["state"].keys()
        for k in a["state"]:
            assert a["state"][k].keys() == b["state"][k].keys()
            for name, value in a["state"][k].items():
                np.testing.assert_allclose(np.asarray(value), b["state"][k][name].numpy(), rtol=1e-12)


# -- behaviour of the base class ----------------------------------------------------------------
def test_updates_in_place(rng):
    p = Parameter(rng.standard_normal((4, 3)).astype(np.float32))
    data, view = p.data, p.data[1]
    for opt in (SGD([p], lr=0.1, momentum=0.9), Adam([p]), AdamW([p])):
        before = data.copy()
        p.grad[...] = 1.0
        opt.step()
        assert p.data is data
        assert not np.array_equal(view, before[1])  # a view others hold sees the update


def test_grad_of_other_dtype_or_layout_is_used(rng):
    p = Parameter(np.zeros((3, 4), np.float32))
    p.grad = np.asfortranarray(np.ones((3, 4), np.float64))
    SGD([p], lr=0.5).step()
    np.testing.assert_array_equal(p.data, -0.5)
    p.grad = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match="shape"):
        SGD([p], lr=0.5).step()


def test_param_groups_have_own_hyper_parameters(rng):
    a, b = Parameter(np.ones(3)), Parameter(np.ones(2))
    opt = SGD([{"params": [a]}, {"params": b, "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[0]["momentum"] == 0 and opt.param_groups[1]["momentum"] == 0.9
    a.grad[...] = 1.0
    b.grad[...] = 1.0
    opt.step()
    np.testing.assert_allclose(a.data, 0.9)
    np.testing.assert_allclose(b.data, 0.5)
    assert a not in opt.state and "momentum_buffer" in opt.state[b]
    c = Parameter(np.ones(1))
    opt.add_param_group({"params": [c], "lr": 2.0})
    assert opt.param_groups[2]["momentum"] == 0 and opt.param_groups[2]["lr"] == 2.0
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})


def test_zero_grad_and_closure():
    p = Parameter(np.ones(3))
    p.grad[...] = 5.0
    opt = SGD([p], lr=0.1)
    opt.zero_grad()
    np.testing.assert_array_equal(p.grad, 0.0)
    calls = []

    def closure():
        calls.append(1)
        p.grad[...] = 2.0
        return 7.5

    assert opt.step(closure) == 7.5 and calls == [1]
    np.testing.assert_allclose(p.data, 0.8)


def test_state_dict_round_trip_continues_identically(rng):
    params0, targets, scales = make_problem(rng, np.float32)
    makers = [lambda ps: SGD([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.02}], lr=0.05, momentum=0.9,
                             nesterov=True),
              lambda ps: Adam(ps, lr=0.05, amsgrad=True), lambda ps: AdamW(ps, lr=0.05)]
    for make in makers:
        full, _ = run_minicnn(make, params0, targets, scales, steps=20)
        half, opt = run_minicnn(make, params0, targets, scales, steps=10)
        saved = opt.state_dict()
        # the state dict is a copy: stepping on must not change it
        snapshot = {k: {n: np.copy(v) for n, v in s.items()} for k, s in saved["state"].items()}
        resumed = [Parameter(p) for p in half]
        opt2 = make(resumed)
        opt2.load_state_dict(saved)
        opt.step()
        for k, s in saved["state"].items():
            for n, v in s.items():
                np.testing.assert_array_equal(v, snapshot[k][n])
        for _ in range(10):
            for p, g in zip(resumed, quadratic_grads([p.data for p in resumed], targets, scales)):
                p.grad[...] = g
            opt2.step()
        for a, b in zip(full, resumed):
            np.testing.assert_array_equal(a, b.data)
        assert all(isinstance(k, int) for k in saved["state"])


def test_load_state_dict_casts_and_copies():
    p = Parameter(np.ones(3, np.float32))
    opt = SGD([p], lr=0.1, momentum=0.9)
    buf = np.arange(3.0)  # float64 in the saved state, e.g. from another precision
    opt.load_state_dict({"state": {0: {"momentum_buffer": buf}},
                         "param_groups": [dict(opt.state_dict()["param_groups"][0], lr=0.0)]})
    assert opt.state[p]["momentum_buffer"].dtype == np.float32
    buf[0] = 99
    assert opt.state[p]["momentum_buffer"][0] == 0
    assert opt.param_groups[0]["lr"] == 0.0  # an annealed lr of 0 is a valid saved state


def _good_state(opt):
    p = opt.param_groups[0]["params"][0]
    p.grad[...] = 1.0
    opt.step()
    return opt.state_dict()


@pytest.mark.parametrize("mutate, message", [
    (lambda sd: sd["param_groups"].append(dict(sd["param_groups"][0])), "2 parameter groups"),
    (lambda sd: sd["param_groups"][0]["params"].append(5), "has 3 parameters"),
    (lambda sd: sd["state"][0].__setitem__("exp_avg", np.zeros((9,))), "shape"),
    (lambda sd: sd["state"][0].__setitem__("bogus", 1), "unexpected"),
    (lambda sd: sd["state"][0].__setitem__("step", -1), "non-negative integer"),
    (lambda sd: sd["state"][0].__delitem__("exp_avg_sq"), "missing"),
    (lambda sd: sd["state"].__setitem__(7, {}), "7"),
    (lambda sd: sd["param_groups"][0].__delitem__("betas"), "missing hyper-parameters"),
    (lambda sd: sd["param_groups"][0].__setitem__("lr", -1.0), "lr"),
    (lambda sd: sd["param_groups"][0].__setitem__("betas", (1.5, 0.9)), "betas"),
    (lambda sd: sd.pop("state"), "state"),
])
def test_load_state_dict_rejects_mismatches_and_changes_nothing(mutate, message):
    opt = Adam([Parameter(np.ones((2, 2))), Parameter(np.ones(3))], lr=0.1)
    sd = _good_state(opt)
    before = opt.state_dict()
    mutate(sd)
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(sd)
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for k in before["state"]:
        for n, v in before["state"][k].items():
            np.testing.assert_array_equal(v, after["state"][k][n])
    with pytest.raises(TypeError):
        opt.load_state_dict([1, 2])


# -- bad arguments --------------------------------------------------------------------------------
P = Parameter(np.ones(2))


@pytest.mark.parametrize("make, error, message", [
    (lambda: SGD([]), ValueError, "empty parameter list"),
    (lambda: Adam(iter([])), ValueError, "empty parameter list"),
    (lambda: SGD([P], lr=0), ValueError, "lr"),
    (lambda: SGD([P], lr=-0.1), ValueError, "lr"),
    (lambda: Adam([P], lr=float("nan")), ValueError, "lr"),
    (lambda: AdamW([P], lr=float("inf")), ValueError, "lr"),
    (lambda: SGD([P], lr="0.1"), TypeError, "lr"),
    (lambda: SGD([{"params": [P], "lr": -1.0}], lr=0.1), ValueError, "lr"),
    (lambda: SGD([P], momentum=-0.5), ValueError, "momentum"),
    (lambda: SGD([P], dampening=-1), ValueError, "dampening"),
    (lambda: SGD([P], weight_decay=-1e-4), ValueError, "weight_decay"),
    (lambda: SGD([P], nesterov=True), ValueError, "Nesterov"),
    (lambda: SGD([P], momentum=0.9, dampening=0.1, nesterov=True), ValueError, "Nesterov"),
    (lambda: SGD([P], nesterov="yes"), TypeError, "nesterov"),
    (lambda: Adam([P], betas=(1.0, 0.999)), ValueError, "betas\\[0\\]"),
    (lambda: Adam([P], betas=(0.9, -0.1)), ValueError, "betas\\[1\\]"),
    (lambda: Adam([P], betas=0.9), TypeError, "betas"),
    (lambda: Adam([P], eps=-1e-8), ValueError, "eps"),
    (lambda: AdamW([P], weight_decay=-0.01), ValueError, "weight_decay"),
    (lambda: Adam([P], amsgrad=1), TypeError, "amsgrad"),
    (lambda: SGD([np.ones(2)]), TypeError, "Parameter"),
    (lambda: SGD([P, "w"]), TypeError, "Parameter"),
    (lambda: SGD(P), TypeError, "iterable"),
    (lambda: SGD({P}), TypeError, "set"),
    (lambda: SGD(5), TypeError, "iterable"),
    (lambda: SGD([P, P]), ValueError, "more than once"),
    (lambda: SGD([{"params": [P]}, {"params": [P]}]), ValueError, "more than one parameter group"),
    (lambda: SGD([{"params": [P]}, [P]]), TypeError, "param_group must be a dict"),
    (lambda: SGD([{"lr": 0.1}]), ValueError, "'params'"),
])
def test_bad_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_unsupported_dtype_and_rebound_data():
    with pytest.raises(TypeError, match="float32 and float64"):
        SGD([Parameter(np.ones(2, np.float16))])
    p = Parameter(np.ones((3, 4)))
    opt = SGD([p], lr=0.1)
    p.data = np.ones((4, 3)).T  # not C-contiguous: an update could not reach it
    with pytest.raises(ValueError, match="C-contiguous"):
        opt.step()


def test_optimizer_base_needs_step():
    opt = Optimizer([P], dict(lr=0.1))
    with pytest.raises(NotImplementedError):
        opt.step()
    assert "lr: 0.1" in repr(opt)
