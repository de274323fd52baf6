"""warmup(model, input_shape, ...) makes exactly the kernels a model needs ready: after it, the model's
training step and evaluation compile or load nothing more, and nothing for another dtype or optimizer."""
import json
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import minicnn
from minicnn import nn, optim

CHECK = textwrap.dedent("""
    import json, sys
    import numpy as np
    import minicnn
    from minicnn import nn, optim
    from minicnn._compile import loaded_kernels

    model = minicnn.models.LeNet5(rng=0)
    opt = optim.Adam(model.parameters())
    loss = nn.CrossEntropyLoss()
    before = [p.data.copy() for p in model.parameters()]
    minicnn.warmup(model, (8, 1, 28, 28), opt, loss)
    unchanged = all(np.array_equal(a, p.data) for a, p in zip(before, model.parameters())) and not opt.state
    ready = loaded_kernels()
    x = np.random.default_rng(1).standard_normal((8, 1, 28, 28)).astype(np.float32)
    y = np.arange(8) % 10
    model.train(); loss(model(x), y); model.backward(loss.backward()); opt.step(); opt.zero_grad()
    model.eval(); loss(model(x), y)
    after = loaded_kernels()
    new = {k: sorted(v - ready.get(k, set())) for k, v in after.items() if v - ready.get(k, set())}
    ready_sigs = [s for v in ready.values() for s in v]
    print(json.dumps({"new": new, "unchanged": unchanged,
                      "float64": [s for s in ready_sigs if s.startswith("array(float64")],
                      "sgd": sorted(ready.get("minicnn.optim.sgd._sgd_update", set())),
                      "kernels": len(ready)}))
""")


def test_after_warmup_the_models_step_compiles_nothing_and_only_its_kernels_are_ready():
    # A fresh process: in this one, earlier tests have loaded kernels already.
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=600,
                         env={**__import__("os").environ, "MINICNN_COMPILE_NOTICE": "0"})
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["new"] == {}, result["new"]  # the real step needed nothing warmup had not made ready
    assert result["unchanged"]  # the model and optimizer were left alone (warmup ran on copies)
    assert result["float64"] == [] and result["sgd"] == []  # nothing the model does not use
    assert result["kernels"] > 5


def test_warmup_leaves_the_default_generator_as_it_was(monkeypatch):
    """A Dropout without a generator of its own draws from minicnn's default one: the warm-up's copy
    must not advance it (a resumed run restores that generator before warming up, and then would draw
    other masks than the uninterrupted run)."""
    monkeypatch.setattr(minicnn.random, "_default", np.random.default_rng(3))
    model = nn.Sequential(nn.Linear(6, 5, rng=0), nn.Dropout(0.5), nn.Linear(5, 3, rng=1))
    before = minicnn.random.get_rng_state(minicnn.random.default_rng())
    minicnn.warmup(model, (4, 6), optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss())
    np.testing.assert_array_equal(minicnn.random.get_rng_state(minicnn.random.default_rng()), before)


def test_warmup_without_a_model_runs_every_layer_and_optimizer():
    seconds = minicnn.warmup(dtypes=(np.float32,))
    assert isinstance(seconds, float) and seconds > 0


def test_warmup_argument_errors_name_the_argument():
    model = nn.Sequential(nn.ReLU())
    with pytest.raises(ValueError, match="input_shape"):
        minicnn.warmup(model)
    with pytest.raises(ValueError, match="input_shape"):
        minicnn.warmup(model, (0, 3))
    with pytest.raises(TypeError, match="model"):
        minicnn.warmup("LeNet5", (1, 1, 28, 28))
    with pytest.raises(ValueError, match="need a model"):
        minicnn.warmup(loss=nn.CrossEntropyLoss())
    with pytest.raises(TypeError, match="also must be a list of callables"):
        minicnn.warmup(model, (1, 1, 28, 28), also=[1])
    with pytest.raises(TypeError, match="also must be a list of callables"):
        minicnn.warmup(model, (1, 1, 28, 28), also=print)
    with pytest.raises(TypeError, match="helper must be a bool"):
        minicnn.warmup(model, (1, 1, 28, 28), helper="no")


def test_kernels_are_cached_when_the_package_folder_is_not_writable(tmp_path):
    """An installed package may sit in a folder the user cannot write: Numba then caches in the per-user
    cache folder, so that the second process loads instead of compiling. (A file named __pycache__ in
    every package folder makes the in-tree cache impossible even for root.)"""
    import os
    import shutil

    site = tmp_path / "site"
    shutil.copytree(os.path.dirname(minicnn.__file__), site / "minicnn",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for folder, _, _ in os.walk(site / "minicnn"):
        (pathlib.Path(folder) / "__pycache__").write_text("not a folder")
    env = {**os.environ, "PYTHONPATH": str(site), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "MINICNN_SERIAL_KERNELS": "0", "MINICNN_COMPILE_NOTICE": "0"}
    env.pop("NUMBA_CACHE_DIR", None)
    code = textwrap.dedent("""
        import numpy as np, minicnn
        assert minicnn.__file__.startswith(%r), minicnn.__file__
        minicnn.nn.ReLU()(np.ones((2, 3), np.float32))
        print(len(minicnn.compile_report()))
    """ % str(site))
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                           timeout=600) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr
    assert int(runs[0].stdout.split()[-1]) >= 1  # the first process compiled
    assert int(runs[1].stdout.split()[-1]) == 0  # the second loaded everything from the cache
    assert list((tmp_path / "cache" / "numba").rglob("*.nbi"))  # which is the per-user one


def test_a_long_compilation_is_announced_once(tmp_path):
    """A user's own script: after NOTICE_AFTER seconds of compiling, one line on stderr says what is
    happening; with everything cached, nothing is printed."""
    import os

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("MINICNN_COMPILE_NOTICE", None)
    code = ("import numpy as np, minicnn; minicnn._compile.NOTICE_AFTER = 0.05; "
            "minicnn.nn.Linear(3, 2)(np.zeros((2, 3), np.float32))")
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    assert first.returncode == 0, first.stderr
    lines = [line for line in first.stderr.splitlines() if line.startswith("minicnn: compiling")]
    assert len(lines) == 1 and "this happens once" in lines[0] and str(tmp_path / "cache") in lines[0]
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    assert second.returncode == 0 and "minicnn: compiling" not in second.stderr


def _lenet_step(model, x, loss):
    y = np.arange(x.shape[0]) % 10
    loss(model(x), y)
    model.backward(loss.backward())
    return [p.grad.copy() for p in model.parameters()]


def test_the_compile_helper_runs_each_layer_once_and_leaves_the_results_alone():
    """The helper process gets every leaf layer after its forward and runs it (forward + backward, which
    fills Numba's cache); whoever claims a layer first runs it, so here, where the step waits until the
    helper has taken all of them, the warm-up's own backward takes none and just continues. The
    gradients are those of a step without a helper."""
    from minicnn._compile_helper import CompileHelper

    x = np.random.default_rng(0).standard_normal((4, 1, 28, 28)).astype(np.float32)
    expected = _lenet_step(minicnn.models.LeNet5(rng=0), x, nn.CrossEntropyLoss())
    model, loss = minicnn.models.LeNet5(rng=0), nn.CrossEntropyLoss()
    with CompileHelper() as helper:
        helper.start()
        out = model(x)
        loss(out, np.arange(4) % 10)
        for job, done in helper.done.items():  # 12 layers and the loss
            assert done.wait(300), f"the helper did not finish job {job}"
        model.backward(loss.backward())
    assert helper.finished == set(range(13)) and helper.proc.returncode == 0
    assert all(np.array_equal(a, p.grad) for a, p in zip(expected, model.parameters()))


def test_a_layer_that_does_not_pickle_is_left_to_the_warm_up():
    from minicnn._compile_helper import CompileHelper

    layer = nn.Linear(3, 2, rng=0)
    layer.register_forward_hook(lambda m, args, out: None)  # a lambda does not pickle
    with CompileHelper() as helper:
        helper.start()
        y = layer(np.ones((2, 3), np.float32))
        layer.backward(np.ones_like(y))
    assert helper.next_job == 0 and helper.proc.returncode == 0


def test_the_compile_helper_is_off_without_a_free_core_or_when_asked(monkeypatch):
    W = sys.modules["minicnn.warmup"]

    monkeypatch.setenv("MINICNN_COMPILE_HELPER", "0")
    assert not W._helper_wanted(None) and W._helper_wanted(True)
    monkeypatch.setenv("MINICNN_COMPILE_HELPER", "1")
    monkeypatch.setattr(W, "load_aware_threads", lambda: 1)
    assert not W._helper_wanted(None) and not W._helper_wanted(False)


class _Chatty(nn.Module):
    """A layer that prints: the helper's own report lines must not be confused by it."""

    def forward(self, x):
        print("done 7")
        print("minicnn-compile-helper done seven")
        return x * 2

    def backward(self, dy):
        return dy * 2


def test_what_a_layer_prints_in_the_helper_is_ignored():
    from minicnn._compile_helper import CompileHelper

    layer = _Chatty()
    with CompileHelper() as helper:
        helper.start()
        y = layer(np.ones((2, 3), np.float32))
        assert helper.done[0].wait(300)
        layer.backward(np.ones_like(y))
    assert helper.finished == {0} and helper.proc.returncode == 0


def test_a_layer_the_helper_cannot_import_is_skipped_and_the_next_one_still_runs(monkeypatch):
    """A layer class the helper cannot import (here: a module that exists only in this process, as a
    script's __main__ would be) is skipped there; the warm-up runs it itself."""
    import types

    from minicnn._compile_helper import CompileHelper

    ghost = types.ModuleType("minicnn_test_ghost_module")
    ghost.Ghost = type("Ghost", (nn.ReLU,), {"__module__": ghost.__name__})
    monkeypatch.setitem(sys.modules, ghost.__name__, ghost)
    first, second = ghost.Ghost(), nn.ReLU()
    with CompileHelper() as helper:
        helper.start()
        y = second(first(np.ones((2, 3), np.float32)))
        assert helper.done[1].wait(300)
        first.backward(second.backward(np.ones_like(y)))
    assert helper.finished == {1} and helper.proc.returncode == 0


@pytest.mark.parametrize("helper", [False, True])
def test_also_callables_run_once_with_or_without_the_helper(helper):
    calls = []
    model = nn.Sequential(nn.Linear(6, 5, rng=0), nn.ReLU(), nn.Linear(5, 3, rng=1))
    minicnn.warmup(model, (4, 6), None, nn.CrossEntropyLoss(), helper=helper, also=[lambda: calls.append(1)])
    minicnn.warmup(model, (4, 6), train=False, helper=helper, also=[lambda: calls.append(2)])
    minicnn.warmup(helper=helper, also=[lambda: calls.append(3)])  # without a model: every layer, then these
    assert calls == [1, 2, 3]
