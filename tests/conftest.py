import os

# Before anything imports minicnn: the suite compiles jit_parallel kernels serially (the same arithmetic,
# 2-3x less compile time; see minicnn/_config.py), cached apart from training builds. Run
# MINICNN_SERIAL_KERNELS=0 python -m pytest to test the parallel builds (.ci/run does, for the kernels).
os.environ.setdefault("MINICNN_SERIAL_KERNELS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def pytest_report_header(config):
    return (f"NUMBA_DISABLE_JIT={os.environ.get('NUMBA_DISABLE_JIT', '0')}, "
            f"MINICNN_SERIAL_KERNELS={os.environ.get('MINICNN_SERIAL_KERNELS')}")


@pytest.fixture(scope="session", autouse=True)
def compiled_kernels(request):
    """Compile (or load from Numba's cache) every layer and optimizer once, before the first test, with
    one visible line and a progress bar instead of a silent wait inside whichever test comes first."""
    import minicnn

    # Under pytest-xdist ("-n 2", the default in pyproject.toml), odd workers take the dtypes in the other
    # order: the two halves compile side by side, then each loads the other's from the cache. The cores
    # are taken: no helper process. Only the first worker shows its progress (two bars would overwrite
    # each other on one line).
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1, ...
    dtypes = (np.float32, np.float64)
    if worker is not None and int(worker[2:]) % 2:
        dtypes = dtypes[::-1]
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        minicnn.warmup(dtypes=dtypes, progress=worker in (None, "gw0"), helper=False if worker is not None else None)


def pytest_terminal_summary(terminalreporter):
    import sys

    if "minicnn" not in sys.modules:
        return
    from minicnn import compile_report

    report = compile_report()
    if report:
        terminalreporter.write_line(f"minicnn: compiled {len(report)} kernels in this session, "
                                    f"{sum(k.seconds for k in report):.1f} s "
                                    f"({sum(k.cpu_seconds for k in report):.1f} s CPU)")
    if os.environ.get("MINICNN_COMPILE_REPORT"):
        terminalreporter.write_line(str(report))


@pytest.fixture
def http_folder():
    """``serve(folder, mode)`` -> a base URL ``http://127.0.0.1:PORT/`` for ``folder``; ``mode``: ``"ok"``
    serves the files, ``"truncate"`` announces each file's length but closes after 100 bytes, ``"silent"``
    accepts connections and never answers (a mirror that hangs). Servers stop after the test."""
    import functools
    import http.server
    import socket
    import threading

    servers, sockets = [], []

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    class Truncating(Quiet):
        def copyfile(self, source, outputfile):
            outputfile.write(source.read(100))
            self.close_connection = True

    def serve(folder, mode="ok"):
        if mode == "silent":
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen(8)  # the kernel completes the handshakes; nobody ever reads or answers
            sockets.append(s)
            return f"http://127.0.0.1:{s.getsockname()[1]}/"
        handler = functools.partial(Truncating if mode == "truncate" else Quiet, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()
    for s in sockets:
        s.close()
