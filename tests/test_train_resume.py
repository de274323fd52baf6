"""minicnn-train's --resume across processes (issue 17): a run stopped early, or killed with SIGKILL at a
random moment, and resumed by a NEW process ends exactly (bit for bit: every metric, the parameters,
the optimizer's and scheduler's state, the loader's and the default generator's states) as the
uninterrupted run does.

Every run here is a separate process (``scripts/train.py``), as a user's commands are: state that lives
in a running process across epochs but is not in the checkpoint (or comes back with another type or
layout) shows up only then; tests/test_train.py also resumes inside one process. The runs are tiny
(256 digits, 8 batches an epoch, one thread) and load the kernels the test session compiled
(tests/conftest.py; the processes inherit MINICNN_SERIAL_KERNELS). Kill moments come from a seeded
generator and are reached by polling the run's output, never by assuming how long anything takes.
"""
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

import minicnn

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "train.py"
SMALL = ["--dataset", "digits", "--limit-train", "256", "--limit-test", "120", "--batch-size", "32",
         "--threads", "1", "--no-progress", "--no-plot"]
SCORES = ("epoch", "lr", "train_loss", "train_accuracy", "test_loss", "test_accuracy")
TIMINGS = ("train_seconds", "test_seconds", "images_per_second")  # the only entries that may differ
# SGD with momentum and weight decay, and a step schedule that changes the lr at epochs 3 and 5; the
# step size derived from 6 epochs is 2, so the runs with and without --step-size are the same run.
SGD_STEP = ["--optimizer", "sgd", "--weight-decay", "1e-4", "--scheduler", "step", "--seed", "3"]
EPOCHS = 6
TIMEOUT = 300


def child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def run_script(argv, cwd):
    proc = subprocess.run([sys.executable, str(SCRIPT)] + argv, capture_output=True, text=True, cwd=cwd,
                          timeout=TIMEOUT, env=child_env())
    assert proc.returncode == 0, proc.stderr
    return proc


def read_metrics(out):
    return json.loads((out / "metrics.json").read_text())


def scores(metrics):
    return [[record[k] for k in SCORES] for record in metrics["epochs"]]


def assert_identical(a, b, where="checkpoint"):
    """``a`` and ``b`` (loaded checkpoints) equal in structure, types, dtypes, shapes and bits (the
    timing entries of the history records excepted)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for key in a:
            if key not in TIMINGS:
                assert_identical(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{i}]")
    elif isinstance(a, (np.ndarray, np.generic)):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), f"{where}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), (
            f"{where}: differs (largest difference {np.max(np.abs(np.asarray(a, float) - np.asarray(b, float)))})")
    else:
        assert repr(a) == repr(b), f"{where}: {a!r} != {b!r}"  # repr: -0.0 and nan too


def assert_same_run(reference, out, report=True):
    """The run in ``out`` ended exactly as the one in ``reference``: metrics.json (scores, configuration,
    run information, with ``report`` the confusion matrix) and checkpoint.npz, bit for bit."""
    ref, got = read_metrics(reference), read_metrics(out)
    assert scores(got) == scores(ref)
    assert got["config"] == ref["config"]
    assert got["run"] == ref["run"]
    if report:
        assert got["confusion_matrix"] == ref["confusion_matrix"]
    a, b = minicnn.load(reference / "checkpoint.npz"), minicnn.load(out / "checkpoint.npz")
    assert a["epoch"] == b["epoch"] == len(ref["epochs"])
    assert_identical(a, b)
    # The optimizer's state came back as it lives in the running process: float32 C-contiguous arrays
    # like the parameters, integer step counts (Adam).
    for entry in b["optimizer"]["state"].values():
        for name, value in entry.items():
            assert (type(value) is int) if name == "step" else (value.dtype == np.float32 and value.flags.c_contiguous)


def only_final_files(out):
    names = {p.name for p in out.iterdir()}
    assert names <= {"checkpoint.npz", "metrics.json", "curves.png", "confusion.png"}, names  # no temp files


@pytest.fixture(scope="module")
def sgd_reference(tmp_path_factory):
    """The uninterrupted SGD + step schedule run, with the step size given explicitly."""
    folder = tmp_path_factory.mktemp("reference")
    run_script(SMALL + SGD_STEP + ["--step-size", "2", "--epochs", str(EPOCHS), "--out", str(folder / "full")], folder)
    return folder / "full"


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_a_run_resumed_in_a_new_process_ends_as_the_uninterrupted_one(tmp_path, sgd_reference, optimizer):
    """Three processes: the full run, a run of fewer epochs, and its resumption to the full length."""
    if optimizer == "sgd":  # resumed after epoch 4: the first resumed epoch changes the lr
        argv, reference, part = SMALL + SGD_STEP + ["--step-size", "2"], sgd_reference, 4
    else:  # Adam, no schedule
        argv, reference, part = SMALL + ["--seed", "5"], tmp_path / "full", 2
        run_script(argv + ["--epochs", "4", "--out", str(reference)], tmp_path)
    epochs = len(read_metrics(reference)["epochs"])
    run_script(argv + ["--epochs", str(part), "--out", str(tmp_path / "part")], tmp_path)
    assert scores(read_metrics(tmp_path / "part")) == scores(read_metrics(reference))[:part]
    run_script(["--resume", str(tmp_path / "part" / "checkpoint.npz"), "--epochs", str(epochs), "--no-progress",
                "--no-plot"], tmp_path)  # the threads: the checkpoint's
    assert_same_run(reference, tmp_path / "part")
    only_final_files(tmp_path / "part")


def start_and_kill(argv, cwd, rng, first, last):
    """Start the script; once it has printed the line of a random epoch in [first, last] (its checkpoint
    is then on disk), wait a random part of an epoch and SIGKILL it: in training, evaluation, or the
    writing of the checkpoint or metrics. Returns the process's exit status (0 if it ended first)."""
    target = int(rng.integers(first, last + 1))
    delay = float(rng.uniform(0.0, 1.0))  # of the epoch's duration, measured below
    proc = subprocess.Popen([sys.executable, "-u", str(SCRIPT)] + argv, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, cwd=cwd, env=child_env())
    try:
        previous = None
        for line in proc.stdout:
            if line.startswith("epoch "):
                now = time.monotonic()
                if int(line.split()[1].split("/")[0]) >= target:
                    epoch_seconds = now - previous if previous is not None else 0.1
                    time.sleep(delay * epoch_seconds)
                    break
                previous = now
        proc.kill()  # SIGKILL: no handler runs (a no-op if the run has already ended)
        proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    return proc.returncode


def killed_and_resumed(out, rng, cwd):
    """The 6-epoch run in ``out`` killed at a random moment, resumed by a new process and killed again
    (while it has epochs left), then resumed to its end; returns how many kills hit a running process
    and whether the last process ended normally (False: killed after its last checkpoint, while
    reporting, so metrics.json has every epoch but maybe not the confusion matrix yet)."""
    argv = SMALL + SGD_STEP + ["--epochs", str(EPOCHS), "--out", str(out)]
    resume = ["--resume", str(out / "checkpoint.npz"), "--no-progress", "--no-plot"]
    killed, done = 0, 0
    for attempt in range(2):
        first = done + 1
        if first > EPOCHS - 2:
            break
        status = start_and_kill(argv if attempt == 0 else resume, cwd, rng, first, EPOCHS - 2)
        killed += status == -9
        ckpt = minicnn.load(out / "checkpoint.npz")  # complete: written atomically
        assert ckpt["epoch"] >= first
        done = ckpt["epoch"]
        saved = read_metrics(out)["epochs"]  # complete too; one epoch ahead if killed between the two writes
        assert len(saved) in (done, done + 1) and saved[:done] == ckpt["history"]
        if status == 0:
            return killed, True
    if done == EPOCHS:
        return killed, False
    run_script(resume, cwd)
    return killed, True


def test_sigkill_at_random_moments_then_resume_ends_as_the_uninterrupted_run(tmp_path, sgd_reference):
    """The run (step size derived from its 6 epochs) killed twice at random moments, each time resumed
    by a new process without any flag but the checkpoint: it ends exactly as the uninterrupted run."""
    rng = np.random.default_rng(17)
    for attempt in range(5):  # a run that ended before its kill (a very busy machine) starts again
        out = tmp_path / f"run{attempt}"
        killed, reported = killed_and_resumed(out, rng, tmp_path)
        if reported:
            assert_same_run(sgd_reference, out)
        else:  # killed after the last epoch, while reporting: the confusion matrix may be missing
            assert_same_run(sgd_reference, out, report="confusion_matrix" in read_metrics(out))
        only_final_files(out)  # the resumed runs removed the temporary files the killed ones left
        if killed:
            break
    assert killed
