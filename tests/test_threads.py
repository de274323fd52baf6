"""The load-aware default thread count of minicnn-train (minicnn._config.load_aware_threads)."""
import os

import numba
import pytest

from minicnn import _config


@pytest.mark.parametrize("load, expected", [(0.0, 2), (0.5, 2), (1.0, 1), (1.6, 1), (9.0, 1)])
def test_one_thread_per_core_the_load_leaves_free(monkeypatch, load, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 2)
    assert _config.load_aware_threads() == expected


def test_never_more_than_numba_allows(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 3)
    assert _config.load_aware_threads() == 3
