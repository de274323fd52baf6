"""Smoke run of scripts/bench_layers.py: every case runs and the table has a row per case."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import bench_layers  # noqa: E402


def test_bench_layers_smoke(capsys):
    import minicnn

    before = minicnn.get_num_threads()
    try:
        bench_layers.main(["--repeats", "1", "--warmup", "0", "--calls", "1", "--pause", "0", "--threads", "1"])
    finally:
        minicnn.set_num_threads(before)  # the script sets the thread count for the whole process
    out = capsys.readouterr().out
    for name, *_ in bench_layers.CASES:
        assert f"| {name}" in out
