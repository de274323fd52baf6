"""minicnn.profiler: per-module times that add up, self = total - children, compile calls left out,
a valid Chrome trace on one time base, FLOP counts from shapes, and hooks removed on exit."""
import json

import numba
import numpy as np
import pytest

import minicnn
from minicnn import nn, profiler
from minicnn._config import JIT_DISABLED
from minicnn.nn.module import grad_target


class Doubler(nn.Module):
    """A user module with its own backward around a sub-module: y = 2 * lin(x) + b."""

    def __init__(self, k=6, f=4):
        super().__init__()
        self.lin = nn.Linear(k, f, rng=0)
        self.b = nn.Parameter(np.zeros(f, np.float32))

    def forward(self, x):
        return 2 * self.lin(x) + self.b.data

    def backward(self, dy):
        target = grad_target(self.b)
        if target is not False:
            target += dy.sum(axis=0)
        return self.lin.backward(2 * dy)


def _lenet_steps(prof, model, criterion, x, y, steps):
    for _ in range(steps):  # nothing but module calls (gradients just accumulate)
        criterion(model(x), y)
        model.backward(criterion.backward())
        prof.step()


@pytest.fixture(scope="module")
def lenet_profile():
    model, criterion = minicnn.models.LeNet5(rng=0), nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    x, y = rng.random((8, 1, 28, 28), dtype=np.float32), np.arange(8)
    with profiler.profile(model, criterion, warmup=1, peaks=False) as prof:
        _lenet_steps(prof, model, criterion, x, y, 6)
    return model, prof


def test_lenet_layer_times_add_up_to_the_step(lenet_profile):
    model, prof = lenet_profile
    st = prof.stats()
    assert st["steps"]["count"] == 6 and st["steps"]["warmup"] == 1
    # Every module's self time together is the time in the top-level calls (self = total - children).
    assert st["in_modules_ms"] == pytest.approx(st["top_level_ms"], rel=1e-9)
    # The step is nothing but module calls: they cover the profiler's own step time within 10% (the
    # median over steps: one step that a garbage collection interrupted between two calls does not count).
    assert st["steps"]["in_modules_share_median"] == pytest.approx(1.0, abs=0.10)
    names = {r["name"] for r in st["modules"]}
    assert names == {"LeNet5", "CrossEntropyLoss"} | {f"LeNet5.{k}" for k in range(12)}
    conv1 = next(r for r in st["modules"] if r["name"] == "LeNet5.0" and r["phase"] == "forward")
    assert conv1["type"] == "Conv2d" and conv1["calls_per_step"] == 1
    assert conv1["inputs"] == [[8, 1, 28, 28]] and conv1["outputs"] == [[8, 6, 28, 28]]
    assert conv1["gflops"] > 0 and conv1["gbps"] is None
    relu = next(r for r in st["modules"] if r["type"] == "ReLU" and r["phase"] == "backward")
    assert relu["gflops"] is None and relu["gbps"] > 0
    by_type = {(r["name"], r["phase"]): r for r in st["types"]}
    assert by_type[("ReLU", "forward")]["calls_per_step"] == 4
    assert by_type[("Conv2d", "forward")]["self_ms"] == pytest.approx(
        sum(r["self_ms"] for r in st["modules"] if r["type"] == "Conv2d" and r["phase"] == "forward"))


def test_nested_user_module_self_time_is_total_minus_children():
    # Enough work per step that the Python between the calls (the loop, step()) is far below 10%.
    n, k, f = (32, 16, 16) if JIT_DISABLED else (256, 128, 128)
    model = Doubler(k, f)
    x = np.random.default_rng(1).standard_normal((n, k)).astype(np.float32)
    dy = np.ones((n, f), np.float32)
    with profiler.profile(model, peaks=False) as prof:
        for _ in range(6):
            model(x)
            model.backward(dy)
            prof.step()
    by = {(c["name"], c["phase"], c["t0"]): c for c in prof.calls}
    parents = [c for c in prof.calls if c["name"] == "Doubler"]
    assert len(parents) == 12 and all(c["depth"] == 0 for c in parents)
    for p in parents:
        children = [c for c in by.values() if c["name"] == "Doubler.lin" and c["phase"] == p["phase"]
                    and p["t0"] <= c["t0"] and c["t1"] <= p["t1"]]
        assert len(children) == 1 and children[0]["depth"] == 1
        assert p["self"] == pytest.approx((p["t1"] - p["t0"]) - (children[0]["t1"] - children[0]["t0"]), abs=1e-12)
    st = prof.stats()
    assert st["in_modules_ms"] == pytest.approx(st["top_level_ms"], rel=1e-9)
    assert st["steps"]["in_modules_share_median"] == pytest.approx(1.0, abs=0.10)


def test_chrome_trace_is_valid_and_names_every_module(lenet_profile, tmp_path):
    model, prof = lenet_profile
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(path)
    events = json.loads(path.read_text())["traceEvents"]
    complete = [e for e in events if e["ph"] == "X"]
    assert all(e["ph"] in ("X", "M") for e in events)
    names = {e["name"] for e in complete if e["cat"] in ("forward", "backward")}
    assert names == {"LeNet5", "CrossEntropyLoss"} | {f"LeNet5.{k}" for k in range(12)}
    duration_us = (prof.end - prof.origin) * 1e6
    for e in complete:
        assert {"name", "ts", "dur", "pid", "tid", "args"} <= set(e)
        assert 0 <= e["ts"] and e["dur"] >= 0 and e["ts"] + e["dur"] <= duration_us + 1e-3
    # One time base: every layer's call lies inside the call of LeNet5 it was made from.
    parents = [e for e in complete if e["name"] == "LeNet5"]
    for e in complete:
        if e["name"].startswith("LeNet5."):
            assert any(p["cat"] == e["cat"] and p["ts"] <= e["ts"] and e["ts"] + e["dur"] <= p["ts"] + p["dur"]
                       for p in parents), e
    steps = [e for e in complete if e["cat"] == "step"]
    assert [e["name"] for e in steps] == [f"step {k}" for k in range(6)]
    assert model(np.zeros((1, 1, 28, 28), np.float32)).shape == (1, 10)


def test_hooks_are_removed_on_exit_and_on_exception():
    model = Doubler()
    x = np.ones((2, 6), np.float32)
    with profiler.profile(model, peaks=False) as prof:
        model(x)
    n = len(prof.calls)
    assert n == 2
    model(x)
    assert len(prof.calls) == n  # nothing recorded after the block

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with profiler.profile(model, peaks=False) as prof2:
            model(x)
            raise Boom()
    model(x)
    assert len(prof2.calls) == 2
    # An exception inside a module's forward: it reaches the caller, the hooks still go.
    with pytest.raises(ValueError, match="x"):
        with profiler.profile(model, peaks=False) as prof3:
            model(np.ones((2, 5), np.float32))
    model(x)
    assert all(c["name"] != "Doubler" for c in prof3.calls)


def test_a_call_that_raised_is_not_taken_for_a_parent_of_later_calls():
    model = Doubler()
    x = np.ones((2, 6), np.float32)
    with profiler.profile(model, peaks=False) as prof:
        with pytest.raises(ValueError):
            model(np.ones((2, 5), np.float32))  # Linear refuses the shape; the caller goes on
        model(x)
        prof.step()
    assert [(c["name"], c["depth"]) for c in prof.calls] == [("Doubler.lin", 1), ("Doubler", 0)]
    st = prof.stats()
    assert st["in_modules_ms"] == pytest.approx(st["top_level_ms"], rel=1e-9)
    with pytest.raises(RuntimeError, match="one with-block"):
        with prof:
            pass


def test_profile_without_modules_records_every_module():
    model = Doubler()
    x = np.ones((2, 6), np.float32)
    with profiler.profile(peaks=False) as prof:
        model(x)
        late = nn.ReLU()  # created inside the block
        late(x)
    names = {c["name"] for c in prof.calls}
    assert {"Doubler", "Doubler.lin", "ReLU#1"} <= names


@pytest.mark.skipif(JIT_DISABLED, reason="nothing compiles with NUMBA_DISABLE_JIT=1")
def test_calls_that_compile_are_left_out_and_compile_time_reported():
    compiled_here = numba.njit(lambda a: a * 3.0)  # a new function: its first call compiles

    class Compiles(nn.Module):
        def forward(self, x):
            return compiled_here(x)

        def backward(self, dy):
            return 3.0 * dy

    model = Compiles()
    x = np.ones(4)
    with profiler.profile(model, peaks=False) as prof:
        for _ in range(3):
            model.backward(model(x))
            prof.step()
    first = prof.calls[0]
    assert first["compiled"] and first["compile_s"] > 0
    assert not any(c["compiled"] for c in prof.calls[1:])
    st = prof.stats()
    assert st["steps"]["compiled"] == [0] and st["steps"]["counted"] == 2
    assert st["compile"]["seconds"] > 0 and st["compile"]["calls_flagged"] == 1
    fwd = next(r for r in st["modules"] if r["phase"] == "forward")
    assert fwd["calls"] == 2  # the compiling call is not in the statistics
    assert "compile (not in any time below)" in prof.table()


def test_flop_counts_from_shapes():
    conv = nn.Conv2d(3, 8, (3, 5), padding=1, rng=0)
    first = nn.Conv2d(3, 8, 3, rng=0, input_grad=False)
    lin = nn.Linear(7, 5, rng=0)
    x = np.ones((2, 3, 6, 9), np.float32)
    with profiler.profile(conv, first, lin, peaks=False) as prof:
        y = conv(x)
        conv.backward(np.ones_like(y))
        z = first(x)
        first.backward(np.ones_like(z))
        w = lin(np.ones((4, 7), np.float32))
        lin.backward(np.ones_like(w))
    flops = {(c["name"], c["phase"]): c["flops"] for c in prof.calls}
    one = 2 * 2 * 8 * 3 * 3 * 5 * y.shape[2] * y.shape[3]
    assert flops[("Conv2d", "forward")] == one and flops[("Conv2d", "backward")] == 2 * one
    one = 2 * 2 * 8 * 3 * 3 * 3 * z.shape[2] * z.shape[3]
    assert flops[("Conv2d#2", "forward")] == one and flops[("Conv2d#2", "backward")] == one  # no input gradient
    assert flops[("Linear", "forward")] == 2 * 4 * 7 * 5 and flops[("Linear", "backward")] == 2 * 2 * 4 * 7 * 5


def test_record_function_as_decorator_and_without_a_profiler():
    @profiler.record_function("update")
    def update(v):
        return v + 1

    assert update(1) == 2  # no profiler active: just the call
    with profiler.record_function("nothing"):
        pass
    model = Doubler()
    with profiler.profile(model, peaks=False) as prof:
        assert update(2) == 3
        model(np.ones((2, 6), np.float32))
        assert [c["name"] for c in prof.calls] == ["update", "Doubler.lin", "Doubler"]  # made when asked
        model.backward(np.ones((2, 4), np.float32))
    calls = prof.calls
    assert [(c["name"], c["phase"]) for c in calls[3:]] == [("Doubler.lin", "backward"), ("Doubler", "backward")]
    assert calls[0]["type"] == "update" and calls[0]["inputs"] == [] and calls[0]["dtype"] is None
    lin = calls[1]
    assert lin["inputs"] == [[2, 6]] and lin["outputs"] == [[2, 4]] and lin["dtype"] == "float32"
    assert lin["flops"] == 2 * 2 * 6 * 4 and lin["bytes"] is None and lin["depth"] == 1
    json.dumps(calls)  # JSON-ready


def test_record_function_and_table(lenet_profile):
    model = Doubler()
    with profiler.profile(model, peaks=False) as prof:
        with profiler.record_function("optimizer.step"):
            model(np.ones((1, 6), np.float32))
        prof.step()
    ranges = [c for c in prof.calls if c["name"] == "optimizer.step"]
    assert len(ranges) == 1 and ranges[0]["phase"] == "range"
    inner = next(c for c in prof.calls if c["name"] == "Doubler")
    assert inner["depth"] == 1
    table = prof.table(sort_by="order")
    assert "optimizer.step" in table and "| module" in table and "| module type" in table
    _, lenet = lenet_profile
    assert lenet.table(sort_by="total").count("LeNet5.0 ") == 2  # forward and backward rows
    with pytest.raises(ValueError, match="sort_by"):
        prof.table(sort_by="speed")


def test_bad_arguments_name_themselves():
    with pytest.raises(TypeError, match="Modules"):
        profiler.profile(np.ones(3))
    with pytest.raises(ValueError, match="warmup"):
        profiler.profile(warmup=-1)
    prof = profiler.profile(peaks=False)
    with pytest.raises(RuntimeError, match="after the with-block"):
        prof.stats()


def test_plot_writes_a_png(lenet_profile, tmp_path):
    pytest.importorskip("matplotlib")
    _, prof = lenet_profile
    path = tmp_path / "profile.png"
    prof.plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
