"""The load-aware default thread count of minicnn-train (minicnn._config.load_aware_threads)."""
import builtins
import io
import os

import numba
import pytest

from minicnn import _config


def _fake_loadavg(monkeypatch, runnable):
    """/proc/loadavg reporting ``runnable`` running threads, one after another for successive reads."""
    reads = iter(runnable)
    real_open = builtins.open

    def fake_open(path, *args, **kwargs):
        if path == "/proc/loadavg":
            return io.StringIO(f"1.00 1.00 1.00 {next(reads)}/300 4242\n")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(_config.time, "sleep", lambda s: None)


@pytest.mark.parametrize("runnable, expected", [
    ([1] * 5, 2),                # only this process runs: both cores
    ([2, 1, 2, 2, 2], 2),        # another program ran for an instant: not a busy core
    ([2] * 5, 1),                # one other program runs: one thread
    ([3, 4, 3, 5, 3], 1),        # two or more: still one, never none
])
def test_one_thread_per_core_the_others_leave_free(monkeypatch, runnable, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 2)
    _fake_loadavg(monkeypatch, runnable)
    assert _config.load_aware_threads() == expected


@pytest.mark.parametrize("load, expected", [(0.0, 2), (0.5, 2), (1.0, 1), (1.6, 1), (9.0, 1)])
def test_without_proc_the_load_average_decides(monkeypatch, load, expected):
    real_open = builtins.open

    def no_proc(path, *args, **kwargs):
        if path == "/proc/loadavg":
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_proc)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 2)
    assert _config.load_aware_threads() == expected


def test_never_more_than_numba_allows(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 3)
    _fake_loadavg(monkeypatch, [1] * 5)
    assert _config.load_aware_threads() == 3
