"""scripts/train.py under ``mpiexec -n 2 python -m mpi4py`` on tiny digits runs: resuming, changing the
number of ranks, a batch that does not divide, Ctrl-C. Skipped when mpi4py or mpiexec is missing."""
import json
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import pytest

import minicnn
from test_distributed import find_mpiexec, mpi_env, needs_mpi

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "scripts" / "train.py")
# 128 training images in 8 global batches of 16 (8 per rank), 60 test images, 1 thread per rank.
TINY = ["--dataset", "digits", "--limit-train", "128", "--limit-test", "60", "--batch-size", "16",
        "--threads", "1", "--no-progress", "--no-plot"]
SCORES = ("lr", "train_loss", "train_accuracy", "test_loss", "test_accuracy")

pytestmark = needs_mpi


def command(ranks, argv):
    python = [sys.executable, SCRIPT] if ranks == 1 else [find_mpiexec(), "-n", str(ranks), sys.executable,
                                                          "-m", "mpi4py", SCRIPT]
    return python + argv


def train(ranks, argv, timeout=600):
    done = subprocess.run(command(ranks, TINY + argv), cwd=ROOT, env=mpi_env(), capture_output=True, text=True,
                          timeout=timeout)
    return done


def train_ok(ranks, argv):
    done = train(ranks, argv)
    assert done.returncode == 0, f"exit status {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def scores(out):
    metrics = json.loads((out / "metrics.json").read_text())
    return metrics, [[record[k] for k in SCORES] for record in metrics["epochs"]]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("mpi") / "two-ranks"
    done = train_ok(2, ["--epochs", "2", "--out", str(out)])
    return out, done


@pytest.fixture(scope="module")
def after_one_epoch(tmp_path_factory):
    """A 2-rank run stopped after epoch 1 (of the uninterrupted run's 2): copy it before resuming."""
    out = tmp_path_factory.mktemp("mpi") / "one-epoch"
    train_ok(2, ["--epochs", "1", "--out", str(out)])
    return out


def test_two_ranks_print_once_and_write_everything(uninterrupted):
    out, done = uninterrupted
    assert done.stdout.count("dataset: digits") == 1  # rank 0 only
    assert len([line for line in done.stdout.splitlines() if line.startswith("epoch ")]) == 2
    metrics, _ = scores(out)
    assert metrics["run"]["mpi_ranks"] == 2 and metrics["config"]["batch_size"] == 16
    assert sum(map(sum, metrics["confusion_matrix"])) == 60  # the test shards gathered
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz", "metrics.json"]


def test_two_rank_resume_equals_the_uninterrupted_run(uninterrupted, after_one_epoch, tmp_path):
    out = tmp_path / "resumed"
    shutil.copytree(after_one_epoch, out)
    train_ok(2, ["--resume", str(out / "checkpoint.npz"), "--epochs", "2"])
    assert scores(out)[1] == scores(uninterrupted[0])[1]


def test_two_rank_checkpoint_resumes_under_one_rank(uninterrupted, after_one_epoch, tmp_path):
    out = tmp_path / "one-rank"
    shutil.copytree(after_one_epoch, out)
    train_ok(1, ["--resume", str(out / "checkpoint.npz"), "--epochs", "2"])
    metrics, resumed = scores(out)
    _, reference = scores(uninterrupted[0])
    assert metrics["run"]["mpi_ranks"] == 1
    assert resumed[0] == reference[0]  # epoch 1 comes from the 2-rank checkpoint
    # The same global batches in the same order (one shuffle per epoch whatever the number of ranks):
    # only the rounding of the gradient average differs.
    for ours, theirs in zip(resumed[1][1:], reference[1][1:]):
        assert ours == pytest.approx(theirs, rel=1e-3, abs=1e-3)


def test_batch_not_divisible_by_the_ranks(tmp_path):
    done = train(2, ["--batch-size", "15", "--epochs", "1", "--out", str(tmp_path / "x")])
    assert done.returncode == 1
    assert "--batch-size 15 is not divisible by the 2 MPI ranks" in done.stderr
    assert not (tmp_path / "x").exists()


def test_ctrl_c_stops_every_rank_and_keeps_the_checkpoint(tmp_path):
    out = tmp_path / "interrupted"
    proc = subprocess.Popen(command(2, TINY + ["--epochs", "500", "--out", str(out)]), cwd=ROOT, env=mpi_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (out / "metrics.json").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "training did not start"
            time.sleep(0.2)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)  # mpiexec forwards it to every rank
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert time.monotonic() - start < 60
    assert proc.returncode == 130, stderr
    assert stderr.count("interrupted during epoch") == 1, stderr  # rank 0 reports
    ckpt = minicnn.load(out / "checkpoint.npz")
    assert ckpt["epoch"] >= 1 and len(json.loads((out / "metrics.json").read_text())["epochs"]) == ckpt["epoch"]
    shutil.rmtree(out)
