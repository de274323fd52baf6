"""warmup(model, input_shape, ...) makes exactly the kernels a model needs ready: after it, the model's
training step and evaluation compile or load nothing more, and nothing for another dtype or optimizer."""
import json
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
