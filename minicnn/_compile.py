"""What Numba compiles for minicnn, and for how long: the one place that listens to Numba's compile events.

Numba broadcasts a ``"numba:compile"`` event around every compilation (not around loading a kernel from
its on-disk cache). A listener installed at ``import minicnn`` keeps, per kernel and signature, the
seconds spent compiling it (its own time: nested helpers are counted for themselves), which
``minicnn.compile_report()`` lists; when a program has been compiling minicnn's kernels for more than
``NOTICE_AFTER`` seconds, it says so once on stderr, so that a first run is never a silent wait; and
``warmup`` shows a progress bar over the kernels through ``compile_progress``.
"""
import contextlib
import os
import sys
import threading
import time
from typing import NamedTuple

from numba.core import event

#: Seconds of compiling after which a program that did not ask for progress is told what is happening.
NOTICE_AFTER = 1.0


class CompiledKernel(NamedTuple):
    """One kernel compiled in this process: ``name`` (module.function), ``signature`` (argument types),
    ``seconds`` (wall time compiling it, without the helpers it calls) and ``cpu_seconds`` (the process's
    CPU time in that span)."""
    name: str
    signature: str
    seconds: float
    cpu_seconds: float


class CompileReport(list):
    """A list of :class:`CompiledKernel`, longest first; ``str()`` is a table with the total."""

    def __str__(self):
        if not self:
            return "nothing compiled in this process (every kernel used so far came from the cache)"
        width = max(len(k.name) for k in self)
        lines = [f"{'kernel':<{width}}  {'seconds':>8}  {'cpu s':>7}  signature"]
        lines += [f"{k.name:<{width}}  {k.seconds:8.2f}  {k.cpu_seconds:7.2f}  {k.signature}" for k in self]
        lines.append(f"{'total (' + str(len(self)) + ' kernels)':<{width}}  {sum(k.seconds for k in self):8.2f}  "
                     f"{sum(k.cpu_seconds for k in self):7.2f}")
        return "\n".join(lines)


def _kernel_name(dispatcher):
    fn = getattr(dispatcher, "py_func", None)
    return f"{fn.__module__}.{fn.__qualname__}" if fn is not None else repr(dispatcher)


def cache_dir_of(dispatcher):
    """The folder a kernel's compiled code is cached in (None when it is not cached)."""
    return getattr(getattr(dispatcher, "_cache", None), "_cache_path", None)


class _Listener(event.Listener):
    """Times minicnn's compilations (per thread, nested ones apart) and drives notice and progress."""

    def __init__(self):
        self._local = threading.local()
        self._lock = threading.Lock()
        self.records = {}  # (name, signature) -> CompiledKernel
        self.progress = None  # an object with start(name) / end(name), set by compile_progress
        self.notice = True  # say once on stderr when compiling takes longer than NOTICE_AFTER
        self._busy = 0.0  # seconds spent in top-level compilations so far (for the notice)
        self._timer = None
        self.on_first_compile = None  # called once at the next compilation (warmup starts its helper)

    def _stack(self):
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def on_start(self, ev):
        dispatcher = ev.data["dispatcher"]
        name = _kernel_name(dispatcher)
        stack = self._stack()
        # [name, args, wall start, cpu start, children's wall, children's cpu, is minicnn's]
        mine = name.startswith("minicnn.")
        stack.append([name, ev.data["args"], time.perf_counter(), time.process_time(), 0.0, 0.0, mine])
        if len(stack) == 1 and mine:
            start_helper, self.on_first_compile = self.on_first_compile, None
            if start_helper is not None:
                start_helper()
            if self.progress is not None:
                self.progress.start(name)
            elif self.notice and self._busy < NOTICE_AFTER:
                self._timer = threading.Timer(NOTICE_AFTER - self._busy, self._say, (name, cache_dir_of(dispatcher)))
                self._timer.daemon = True
                self._timer.start()

    def on_end(self, ev):
        stack = self._stack()
        if not stack:
            return
        name, args, wall0, cpu0, child_wall, child_cpu, mine = stack.pop()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        if stack:
            stack[-1][4] += wall
            stack[-1][5] += cpu
        if mine:
            signature = ", ".join(str(a) for a in args)
            with self._lock:
                old = self.records.get((name, signature))
                own_wall, own_cpu = wall - child_wall, cpu - child_cpu
                if old is not None:
                    own_wall, own_cpu = own_wall + old.seconds, own_cpu + old.cpu_seconds
                self.records[(name, signature)] = CompiledKernel(name, signature, own_wall, own_cpu)
        if not stack and mine:
            self._busy += wall
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self.progress is not None:
                self.progress.end(name)

    def _say(self, name, cache_dir):
        if not self.notice:
            return
        self.notice = False  # once per process
        where = f" in {cache_dir}" if cache_dir else ""
        print(f"minicnn: compiling Numba kernels on first use (now {name.rsplit('.', 1)[-1]}); this happens once, "
              f"later runs load them from the cache{where}", file=sys.stderr, flush=True)


_listener = _Listener()
event.register("numba:compile", _listener)


def compile_report():
    """The kernels compiled in this process so far, longest first (a :class:`CompileReport`; ``print`` it
    for a table). Kernels loaded from Numba's on-disk cache are not compiled and so not listed."""
    with _listener._lock:
        return CompileReport(sorted(_listener.records.values(), key=lambda k: -k.seconds))


def loaded_kernels():
    """``{name: set of signatures}`` of every minicnn kernel this process holds compiled code for
    (compiled or loaded from the cache): what ``warmup`` has made ready."""
    from numba.core.registry import CPUDispatcher

    kernels = {}
    for module_name, module in list(sys.modules.items()):
        if module is None or not (module_name == "minicnn" or module_name.startswith("minicnn.")):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, CPUDispatcher) and value.py_func.__module__ == module_name:
                kernels[_kernel_name(value)] = {", ".join(str(a) for a in sig) for sig in value.overloads}
    return kernels


def set_compile_notice(enabled):
    """Whether minicnn says once on stderr that it is compiling (after ``NOTICE_AFTER`` seconds); on by
    default, off with ``MINICNN_COMPILE_NOTICE=0``."""
    _listener.notice = bool(enabled)


if os.environ.get("MINICNN_COMPILE_NOTICE", "1").strip() in ("0", "false", "no", "off"):
    set_compile_notice(False)


class _Bar:
    """A tqdm bar over the kernels compiled, with the one line that says what is going on, shown only
    once something compiles (with every kernel cached nothing is printed). A thread refreshes it twice
    a second so that the elapsed time moves during a long compilation."""

    def __init__(self, what, file):
        self.what, self.file = what, file
        self.bar = None
        self._stop = threading.Event()
        self._thread = None

    def start(self, name):
        if self.bar is None:
            from tqdm import tqdm

            print(f"compiling {self.what}: this happens once, later runs load the compiled code from the cache",
                  file=self.file, flush=True)
            self.bar = tqdm(desc="kernels compiled", unit=" kernels", file=self.file, dynamic_ncols=True,
                            mininterval=0.25, bar_format="{desc}: {n_fmt} [{elapsed}]{postfix}")
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()
        self.bar.set_postfix_str(name.rsplit(".", 1)[-1], refresh=True)

    def end(self, name):
        self.bar.update(1)

    def _tick(self):
        while not self._stop.wait(0.5):
            bar = self.bar
            if bar is not None:
                bar.refresh()

    def close(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.bar is not None:
            self.bar.set_postfix_str("done", refresh=False)
            self.bar.close()


@contextlib.contextmanager
def compile_progress(what, enabled=True, file=None):
    """Within the block, a progress bar (on ``file``, default stderr) counts the kernels being compiled,
    after one line saying that ``what`` is being compiled once; nothing is shown if nothing compiles.
    Yields the bar, or None with ``enabled=False`` (no bar: the once-per-process notice still says when
    compiling takes long)."""
    if not enabled:
        yield None
        return
    previous = _listener.progress
    bar = _Bar(what, file or sys.stderr)
    _listener.progress = bar
    try:
        yield bar
    finally:
        _listener.progress = previous
        bar.close()
