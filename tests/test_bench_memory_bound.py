"""Smoke run of scripts/bench_memory_bound.py on a tiny shape: every layer runs and has a row."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import bench_memory_bound  # noqa: E402


def test_bench_memory_bound_smoke(capsys):
    import minicnn

    before = minicnn.get_num_threads()
    try:
        bench_memory_bound.main(["--shape", "2", "8", "4", "4", "--repeats", "1", "--warmup", "0", "--pause", "0",
                                 "--threads", "1"])
    finally:
        minicnn.set_num_threads(before)  # the script sets the thread count for the whole process
    out = capsys.readouterr().out
    for name, *_ in bench_memory_bound.cases((2, 8, 4, 4)):
        assert f"| {name}" in out or (name == "residual add" and "skipped" in out)
