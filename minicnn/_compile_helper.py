"""A second process that compiles backward kernels while ``warmup`` compiles the forward ones.

Numba compiles one kernel at a time per process, and a cold training step spends about half its
compile time in the forward kernels and half in the backward ones (LeNet-5: 13.0 and 14.4 s, measured
with ``minicnn.compile_report()``). A layer's backward can only be compiled once its input is known,
that is once the forward has reached it, but then it no longer depends on the rest of the model. So,
on a machine with a second free core, ``warmup`` starts this helper at its first compilation and, as
its forward finishes each leaf layer, sends it that layer (a copy, and the shape and dtype of its
input): the helper runs the layer forward (its kernels already in Numba's on-disk cache) and backward,
which compiles the backward's kernels into the cache, while the warm-up goes on with the next layer's
forward. When the warm-up's own backward reaches a layer, it either takes the job (the helper has not
started it, and now skips it) or waits for the helper to finish it and loads the result from the
cache. Who takes a job is decided by creating a claim file exclusively, so no job runs twice.

The helper only fills the cache: the warm-up still runs its whole step itself, so results never depend
on it, and if it fails to start, dies or cannot be sent a layer (one that does not pickle), the warm-up
compiles that part itself.
"""
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading

import numpy as np

from .nn.module import between_calls, register_module_forward_hook, register_module_full_backward_pre_hook

_TAG = "minicnn-compile-helper"  # starts each line the helper reports on

# Seconds the warm-up waits for the helper to finish a layer it has started before compiling it itself.
WAIT_LIMIT = 300.0


def _claim(folder, job):
    """True for the first caller to claim ``job`` (across processes), False for every later one."""
    try:
        os.close(os.open(os.path.join(folder, str(job)), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


def _is_leaf(module):
    return next(module.children(), None) is None


def _arg_spec(a):
    """What is sent for a forward argument: a float array as its shape and dtype only (its values do not
    change what compiles, and sending a batch of activations per layer would cost more than it saves),
    anything else as itself (e.g. pooling indices, class targets)."""
    if isinstance(a, np.ndarray) and a.dtype.kind == "f":
        return ("float array", a.shape, a.dtype.str)
    return ("value", a)


class CompileHelper:
    """The warm-up's side. Use as a context manager around the training step; ``progress`` is the
    warm-up's progress bar (or None), told of each kernel the helper compiles; ``idle_tasks`` are
    callables the warm-up runs while it would otherwise wait for the helper (the rest after the step:
    :meth:`run_idle_tasks`)."""

    def __init__(self, progress=None, idle_tasks=()):
        self.progress = progress
        self.idle_tasks = list(idle_tasks)  # run while the warm-up would wait for the helper
        self.proc = None
        self.failed = False  # it could not be started
        self.exited = False
        self.claims = None
        self.jobs = {}  # id(module) -> job numbers of its forwards not yet differentiated (last is next)
        self.done = {}  # job number -> Event set when the helper has finished it (or has died)
        self.finished = set()  # the jobs the helper ran
        self.next_job = 0
        self._outbox = []
        self._wake = threading.Condition()
        self._in_task = False
        self._hooks = []

    # -- the process ------------------------------------------------------------------------------
    def start(self):
        """Start the helper process (called at the warm-up's first compilation; once)."""
        if self.proc is not None or self.failed:
            return
        import minicnn

        # This minicnn first, then this process's import path, so that a layer defined in a module it
        # imported unpickles there (one defined in a script's __main__ does not: that job is skipped).
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(minicnn.__file__)))
        path = [package_root] + [p for p in sys.path if p and os.path.isdir(p)]
        env = dict(os.environ, MINICNN_COMPILE_NOTICE="0", PYTHONPATH=os.pathsep.join(path))
        try:
            self.claims = tempfile.mkdtemp(prefix="minicnn-compile-")
            self.proc = subprocess.Popen([sys.executable, "-c", "import sys; from minicnn._compile_helper import main; "
                                          "main(sys.argv[1])", self.claims],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, env=env)
        except OSError:
            self.failed = True
            return
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._write, daemon=True).start()

    def _write(self):
        # Jobs go through this thread: a pipe that is full while the helper compiles must never block
        # the warm-up.
        while True:
            with self._wake:
                while not self._outbox:
                    self._wake.wait()
                data = self._outbox.pop(0)
            try:
                if data is None:
                    self.proc.stdin.close()
                    return
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
            except (OSError, ValueError):
                return

    def _read(self):
        for line in self.proc.stdout:  # lines of _TAG; anything else a layer may print is ignored
            tag, kind, what = (line.decode(errors="replace").strip().split(maxsplit=2) + ["", "", ""])[:3]
            if tag != _TAG:
                continue
            if kind == "done" and what.isdigit() and int(what) in self.done:
                self.finished.add(int(what))
                self.done[int(what)].set()
            elif kind == "compiled" and self.progress is not None:
                self.progress.start(what + " (helper process)")
                self.progress.end(what)
        self.exited = True  # nobody waits for it any more
        for event in list(self.done.values()):
            event.set()

    # -- jobs ---------------------------------------------------------------------------------------
    def _after_forward(self, module, args, output):
        if self.proc is None or self.exited or self._in_task or not _is_leaf(module):
            return None
        # Sent as a module between forwards (this hook runs inside one), without what it keeps for backward.
        d = module.__dict__
        fresh = between_calls()
        saved = {k: d[k] for k in fresh}
        d.update(fresh)
        try:
            data = pickle.dumps((self.next_job, module, [_arg_spec(a) for a in args]))
            data = len(data).to_bytes(8, "little") + data  # framed: a job that fails to unpickle is skipped
        except Exception:  # e.g. a hook or a lambda inside the layer: the warm-up compiles it itself
            return None
        finally:
            d.update(saved)
        job, self.next_job = self.next_job, self.next_job + 1
        self.done[job] = threading.Event()
        self.jobs.setdefault(id(module), []).append(job)
        with self._wake:
            self._outbox.append(data)
            self._wake.notify()
        return None

    def _before_backward(self, module, grad_output):
        pending = self.jobs.get(id(module))
        if pending:
            job = pending.pop()
            if not _claim(self.claims, job):  # the helper has it: wait, then load it from the cache
                while self.idle_tasks and not self.done[job].is_set():
                    self._run_task(self.idle_tasks.pop(0))
                self.done[job].wait(WAIT_LIMIT)
        return None

    def run_idle_tasks(self):
        """Run the idle tasks no wait has taken."""
        while self.idle_tasks:
            self._run_task(self.idle_tasks.pop(0))

    def _run_task(self, task):
        self._in_task = True  # modules a task runs are not the warm-up's: no jobs from them
        try:
            task()
        finally:
            self._in_task = False

    def __enter__(self):
        from ._compile import _listener

        self._hooks = [register_module_forward_hook(self._after_forward),
                       register_module_full_backward_pre_hook(self._before_backward)]
        _listener.on_first_compile = self.start
        return self

    def __exit__(self, *exc):
        from ._compile import _listener

        _listener.on_first_compile = None
        for handle in self._hooks:
            handle.remove()
        if self.proc is not None:
            with self._wake:
                self._outbox.append(None)  # end of jobs: the helper exits once idle
                self._wake.notify()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # still on a layer nobody needs now
                self.proc.kill()
                self.proc.wait()
        if self.claims is not None:
            shutil.rmtree(self.claims, ignore_errors=True)
        return False


# -- the helper process -------------------------------------------------------------------------------
class _Lines:
    """Tells the warm-up (on stdout) of each kernel this process compiles, for its progress bar."""

    def start(self, name):
        pass

    def end(self, name):
        print(_TAG, "compiled", name.rsplit(".", 1)[-1], flush=True)


def _run(module, specs):
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(s[1]).astype(s[2]) if s[0] == "float array" else s[1] for s in specs]
    module.train()
    out = module(*args)
    if np.ndim(out) == 0:  # a loss: backward() starts from 1
        module.backward()
    elif isinstance(out, np.ndarray):
        module.backward(np.ones_like(out))


def main(claims):
    import minicnn
    from minicnn._compile import _listener

    minicnn.set_num_threads(1)  # it compiles; the warm-up's process has the other core
    _listener.progress = _Lines()
    stdin = sys.stdin.buffer
    while True:
        size = stdin.read(8)
        if len(size) < 8:
            return
        data = stdin.read(int.from_bytes(size, "little"))
        try:
            job, module, specs = pickle.loads(data)
        except Exception:  # e.g. a class defined in the warm-up's __main__: left to the warm-up
            continue
        if not _claim(claims, job):
            continue
        try:
            _run(module, specs)
        except Exception:  # the warm-up runs this layer itself and reports any error there
            pass
        print(_TAG, "done", job, flush=True)

