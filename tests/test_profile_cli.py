"""minicnn-profile (minicnn/cli/profile.py): models by name or file, the files it writes, the convolution
algorithms, the PyTorch twin and its errors."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from minicnn import nn
from minicnn.cli import profile as cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

USER_MODEL = '''
from minicnn import nn


class Scale(nn.Module):
    """A user module with its own backward."""

    def forward(self, x):
        return 3.0 * x

    def backward(self, dy):
        return 3.0 * dy


def build():
    return nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), Scale(), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 3, rng=0))


def not_a_model():
    return 42
'''


@pytest.fixture
def user_model(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(USER_MODEL)
    return str(path)


def test_lenet5_by_name_writes_table_json_trace_and_chart(tmp_path, capsys):
    out = tmp_path / "prof"
    assert cli.main(["--model", "LeNet5", "--batch-size", "2", "--steps", "2", "--warmup", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| LeNet5.0 " in printed and "| module type" in printed
    report = json.loads((out / "profile.json").read_text())
    assert report["model"] == "LeNet5" and report["input_shape"] == [2, 1, 28, 28]
    assert {r["name"] for r in report["stats"]["modules"]} >= {"LeNet5", "LeNet5.0", "CrossEntropyLoss",
                                                              "optimizer.step", "zero_grad"}
    events = json.loads((out / "trace.json").read_text())["traceEvents"]
    assert any(e.get("name") == "LeNet5.11" for e in events)
    assert (out / "table.md").read_text().startswith("## minicnn profile: LeNet5")
    if (out / "profile.png").exists():
        assert (out / "profile.png").read_bytes()[:4] == b"\x89PNG"


def test_model_from_a_file_with_algorithms(user_model, capsys):
    assert cli.main(["--model", f"{user_model}:build", "--input-shape", "1,8,8", "--batch-size", "2",
                     "--steps", "2", "--warmup", "1", "--algorithms"]) == 0
    printed = capsys.readouterr().out
    assert "| Sequential.1 " in printed and "Scale" in printed
    assert "### Convolution algorithms" in printed and "| Sequential.0 " in printed


@pytest.mark.parametrize("argv, message", [
    (["--model", "nosuchnet"], "unknown model 'nosuchnet'; minicnn.models has lenet5, mobilenet_small, resnet20"),
    (["--model", "missing.py:build"], "no such file"),
    (["--model", "{user}:nothing"], "has no callable 'nothing'"),
    (["--model", "{user}:not_a_model"], "returned a int, not a minicnn Module"),
    (["--model", "{user}:build"], "--input-shape is needed"),
    (["--model", "{user}:build", "--input-shape", "1,x,8"], "--input-shape must be integers"),
    (["--model", "{user}:build", "--input-shape", "1,9,9"], "does not run on input"),
    (["--batch-size", "0"], "--batch-size must be >= 1"),
    (["--threads", "0"], "--threads"),
    (["--sort-by", "speed"], "--sort-by must be one of"),
])
def test_bad_input_is_one_line_and_status_2(argv, message, user_model, capsys):
    argv = [a.replace("{user}", user_model) for a in argv]
    assert cli.main(argv + ["--steps", "1", "--warmup", "0", "--batch-size", "2"] if "--batch-size" not in argv
                    else argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("minicnn-profile: error: ") and message in err[-1], err


def test_model_names_come_from_minicnn_models():
    factories = cli.model_factories()
    assert "lenet5" in factories and "conv2d" not in factories  # imported layers are not models


def test_torch_twin_copies_weights_and_refuses_unknown_layers(user_model):
    torch = pytest.importorskip("torch")
    model = nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.AvgPool2d(1), nn.Dropout(0.0), nn.Flatten(), nn.Linear(2 * 3 * 3, 4, rng=0))
    model.eval()
    twin, paths = cli.torch_twin(torch, model)
    twin.eval()
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(twin(torch.from_numpy(x)).detach().numpy(), model(x), rtol=1e-5, atol=1e-5)
    assert sorted(paths.values()) == sorted(f".{k}" for k in range(8))
    with pytest.raises(cli.UsageError, match=r"no PyTorch twin for 1 \(Scale\)"):
        cli.torch_twin(torch, cli.build_model(f"{user_model}:build")[0])


def test_torch_side_by_side(capsys):
    pytest.importorskip("torch")
    assert cli.main(["--model", "lenet5", "--batch-size", "2", "--steps", "2", "--warmup", "1", "--torch"]) == 0
    printed = capsys.readouterr().out
    assert "### Side by side with PyTorch" in printed and "| whole step (median)" in printed
    assert "| LeNet5.11 " in printed


def test_script_shim_runs_from_any_folder(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "profile.py"), "--model", "lenet5",
                           "--batch-size", "2", "--steps", "1", "--warmup", "0"],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| LeNet5.0 " in proc.stdout and list(tmp_path.iterdir()) == []


def test_the_scripts_folder_does_not_shadow_the_standard_profile_module():
    # scripts/profile.py has the standard library's name; cProfile (imported by PyTorch) must still work
    # for a script in that folder, which has the folder first on sys.path.
    proc = subprocess.run([sys.executable, "-c", "import cProfile, profile; print(profile.__file__); "
                           "cProfile.run('1 + 1', '/dev/null')"], capture_output=True, text=True, timeout=300,
                          cwd=os.path.join(ROOT, "scripts"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not proc.stdout.strip().startswith(os.path.join(ROOT, "scripts"))
