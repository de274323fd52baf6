"""A per-module profiler: forward and backward wall time, calls and shapes of every module, with the
FLOP rates of convolutions and linear layers against this machine's measured peak.

    import minicnn
    with minicnn.profiler.profile(model, criterion, warmup=1) as prof:
        for x, y in batches:
            loss = criterion(model(x), y)
            model.backward(criterion.backward())
            with minicnn.profiler.record_function("optimizer.step"):
                optimizer.step()
            prof.step()                      # marks the end of a step
    print(prof.table(sort_by="self"))
    prof.export_chrome_trace("trace.json")   # chrome://tracing or https://ui.perfetto.dev
    prof.plot("profile.png")                 # needs matplotlib

What is recorded: every call of ``forward`` and ``backward`` of the given modules and all their
sub-modules (``profile()`` without arguments: every module), through the global module hooks of
``minicnn.nn.module``, with ``time.perf_counter`` start and end times on one time base. A module's
*total* time is its call's wall time; its *self* time is the total minus the total of the calls of its
sub-modules made inside it, so the self times of all modules add up to the time spent in modules.

Steps: ``prof.step()`` ends a step (without it, the whole block is one step). The first ``warmup``
steps are recorded (they are in the trace) but left out of the statistics. Compilation is never mixed
into layer times: Numba's ``"numba:compile"`` events are recorded; a call during which something
compiled is flagged (``compiled`` in the trace), and a step during which something compiled is left out
of the statistics like a warm-up step; the compile seconds are reported on their own line.

FLOPs (multiply and add counted as 2) from shapes: a convolution's forward is
``2 * N * F * (C / groups) * kh * kw * OH * OW``, its backward twice that (weight and input gradients;
once without the input gradient or with a frozen weight); a linear layer's forward ``2 * N * in * out``
and its backward likewise. "% peak" is against ``minicnn._peak.machine_peaks()`` (FP32 FMA throughput,
measured on the threads in use). For the other, memory-bound layers: GB/s from the bytes of the arrays a
call reads and writes once each (forward: inputs + output; backward: output gradient + input
gradient), a lower bound of the real traffic, and "% copy" against the measured memory-copy bandwidth.
"""
import bisect
import functools
import gc
import json
import os
import statistics
import threading
import time

import numba
import numpy as np
from numba.core import event as numba_event

from ._io import atomic_write, write_json
from .nn.module import (Module, register_module_forward_hook, register_module_forward_pre_hook,
                        register_module_full_backward_hook, register_module_full_backward_pre_hook)

__all__ = ["profile", "record_function", "markdown_table"]

_PHASES = {"forward": "fwd", "backward": "bwd", "range": "range"}
_local = threading.local()  # the innermost active profiler of this thread (for record_function)


# -- what each layer type computes ----------------------------------------------------------------
def _conv_flops(module, phase, inputs, outputs):
    """``2 * y.size * (C / groups) * kh * kw`` per pass (``weight[0].size`` is ``(C / groups) * kh * kw``)."""
    y = outputs[0] if phase == "forward" else inputs[0]  # backward: inputs = (dy,), outputs = (dx,)
    one = 2 * y.size * (module.weight.data.size // module.weight.data.shape[0])
    if phase == "forward":
        return one
    return one * (int(outputs[0] is not None) + int(getattr(module.weight, "requires_grad", True)))


def _linear_flops(module, phase, inputs, outputs):
    y = outputs[0] if phase == "forward" else inputs[0]
    one = 2 * y.size * module.weight.data.shape[1]
    if phase == "forward":
        return one
    return one * (int(outputs[0] is not None) + int(getattr(module.weight, "requires_grad", True)))


def _flop_counters():
    """{module class: flops(module, phase, inputs, outputs)}; add an entry to count another type."""
    from .nn import Conv2d, Linear

    return {Conv2d: _conv_flops, Linear: _linear_flops}


FLOP_COUNTERS = None  # filled on first use (importing minicnn.nn here would be circular)
NO_DATA_MOVEMENT = ("Flatten", "Identity")  # views: no bytes moved, no GB/s shown


def _flop_counter(module):
    global FLOP_COUNTERS
    if FLOP_COUNTERS is None:
        FLOP_COUNTERS = _flop_counters()
    for cls in type(module).__mro__:
        if cls in FLOP_COUNTERS:
            return FLOP_COUNTERS[cls]
    return None


def _raw_shapes(values, out, dtype, nbytes):
    """One pass over a call's arguments or results (in the hook, so nothing is formatted): appends to
    ``out`` each array's shape tuple as NumPy returns it (other values: None or their type name; see
    ``_json_shapes``); returns the dtype of the first array (``dtype`` when it is not None) and ``nbytes``
    plus the arrays' bytes."""
    ndarray = np.ndarray
    for v in values:
        if isinstance(v, ndarray):
            out.append(v.shape)
            nbytes += v.nbytes
            if dtype is None:
                dtype = v.dtype
        else:
            out.append(None if v is None else type(v).__name__)
    return dtype, nbytes


def _json_shapes(raw):
    """JSON-ready shapes: a list per array, None or the type name for other values."""
    return [list(s) if isinstance(s, tuple) else s for s in raw]


# A finished call is _RECORD consecutive items of ``profile._records`` (a flat list: appending them
# leaves no new object for the garbage collector to track, which a tuple or dict per call would):
# info, phase, t0, t1, self seconds, depth, compiled, compile seconds, shapes, FLOPs, bytes; ``shapes``
# is (input shapes, output shapes, dtype), one shared object per distinct value (``profile._shapes``).
_RECORD = 11


def _call_dict(r, k):
    """The public form (``profile.calls``) of the record at ``r[k:k + _RECORD]``."""
    info = r[k]
    inputs, outputs, dtype = r[k + 8]
    return {"name": info[0], "type": info[4], "phase": r[k + 1], "t0": r[k + 2], "t1": r[k + 3],
            "self": r[k + 4], "depth": r[k + 5], "compiled": r[k + 6], "compile_s": r[k + 7],
            "inputs": _json_shapes(inputs), "outputs": _json_shapes(outputs), "flops": r[k + 9],
            "bytes": r[k + 10], "dtype": None if dtype is None else str(dtype)}


# -- records ---------------------------------------------------------------------------------------
# An open call is a list (the cheapest record to build in a hook), filled in by the post-hook:
# [module, info, phase, inputs, t0, children, compile_s, compiled]; ``info`` is the module's
# (path, flop counter, moves data, type, type name), worked out once per module and block.
_MOD, _INFO, _PHASE, _INPUTS, _T0, _CHILDREN, _COMPILE_S, _COMPILED = range(8)


def _frame(module, info, phase, inputs):
    return [module, info, phase, inputs, 0.0, 0.0, 0.0, False]


class _CompileListener(numba_event.Listener):
    """Numba's ``"numba:compile"`` events: outermost compile intervals, and the open calls they hit."""

    def __init__(self, prof):
        self.prof = prof
        self.depth = 0
        self.t0 = 0.0

    def on_start(self, event):
        if self.depth == 0:
            self.t0 = time.perf_counter()
        self.depth += 1

    def on_end(self, event):
        self.depth -= 1
        if self.depth:
            return
        t1 = time.perf_counter()
        data = event.data or {}
        dispatcher = data.get("dispatcher")
        name = getattr(getattr(dispatcher, "py_func", None), "__qualname__", "kernel")
        self.prof._compiles.append({"name": name, "t0": self.t0, "t1": t1})
        stack = self.prof._stack
        for frame in stack:
            frame[_COMPILED] = True
        if stack:
            stack[-1][_COMPILE_S] += t1 - self.t0


class profile:
    """``with profile(*modules, warmup=0) as prof:`` records every forward and backward call of
    ``modules`` and their sub-modules (none given: every ``Module``; those alive when the block starts are
    named by their path in their outermost module, others ``Type#k``).

    With ``peaks=True`` the first ``stats()`` / ``table()`` measures this machine's peaks (about a second,
    once per process and thread count; ``minicnn._peak``). After the block: ``prof.stats()`` (a JSON-ready
    dict), ``prof.table(sort_by=...)``,
    ``prof.export_chrome_trace(path)``, ``prof.export_json(path)``, ``prof.plot(path)``. Hooks are removed
    when the block ends, also when it raises. Only calls made on the thread that entered are recorded.
    """

    SORT_KEYS = ("self", "total", "calls", "order", "name", "gflops")

    def __init__(self, *modules, warmup=0, peaks=True):
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"profile takes Modules, argument {i} is {type(m).__name__}")
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ValueError(f"warmup must be an int >= 0 (steps left out of the statistics), got {warmup!r}")
        self._roots = modules
        self.warmup = warmup
        self._want_peaks = bool(peaks)
        self._handles = []
        self._active = False
        self._records = []  # _RECORD items per finished call, in order of completion (see _finish)
        self._shapes = {}
        self._calls = []  # the records as dicts, made when asked for (``calls``)
        self._compiles = []
        self._marks = []
        self._stack = []

    # -- recording ------------------------------------------------------------------------------
    def _named_modules(self):
        """[(path, module)]: each module once, under the first path that reaches it. A root is named by
        its class (a second root of one class gets ``#2``), sub-modules by their dotted path in it."""
        roots = list(self._roots)
        if not roots:
            found = [o for o in gc.get_objects() if issubclass(type(o), Module)]  # type(): no __class__ lookups
            children = {id(c) for m in found for c in m.children()}
            roots = sorted((m for m in found if id(m) not in children), key=lambda m: type(m).__name__)
        out, seen, labels = [], set(), {}
        for root in roots:
            label = type(root).__name__
            labels[label] = labels.get(label, 0) + 1
            if labels[label] > 1:
                label += f"#{labels[label]}"
            for name, module in root.named_modules():
                if id(module) not in seen:
                    seen.add(id(module))
                    out.append((f"{label}.{name}" if name else label, module))
        return out

    def __enter__(self):
        if self._active or hasattr(self, "end"):
            raise RuntimeError("a profile records one with-block; use a new profile() for another")
        self._thread = threading.get_ident()
        self.threads = numba.get_num_threads()
        self._listener = _CompileListener(self)
        numba_event.register("numba:compile", self._listener)
        try:
            named = self._named_modules()
            self._alive = [m for _, m in named]  # so that no id in _paths is reused by a new module
            self._paths = {id(m): path for path, m in named}
            self._infos = {}
            self._attach()
        except BaseException:
            self._detach()
            raise
        self._active = True
        self._outer = getattr(_local, "profiler", None)
        _local.profiler = self
        self._marks = [time.perf_counter()]
        self.origin = self._marks[0]
        return self

    def __exit__(self, *exc):
        self.end = time.perf_counter()
        self._detach()
        self._active = False
        _local.profiler = self._outer
        self._stack.clear()
        self._alive = None
        return False

    def _detach(self):
        handles, self._handles = self._handles, []
        for h in handles:
            h.remove()
        if getattr(self, "_listener", None) is not None:
            numba_event.unregister("numba:compile", self._listener)
            self._listener = None

    def _attach(self):
        """The four global module hooks; a module is recorded when it has a path (``self._paths``) or,
        with no modules given, under ``Type#k`` when first seen.

        The hooks run on every module call, so they do as little as they can: a list per open call,
        ``_RECORD`` items appended to one flat list per finished call (shapes as NumPy gives them, the
        dtype object; nothing formatted, no dict), the per-module facts (path, FLOP counter, whether it
        moves data) looked up once per module and block (``self._infos``), no helper calls between
        the hook and the frame, ``time.perf_counter`` read last in the pre-hook and first in the
        post-hook."""
        paths, everything, counts, infos = self._paths, not self._roots, {}, self._infos
        stack, thread, get_ident, perf_counter = self._stack, self._thread, threading.get_ident, time.perf_counter
        finish = self._finish

        def info_of(mod):
            """The first call of ``mod`` in this block, or of a module whose id a dead one had (only
            modules not alive at the start: those in ``paths`` are kept alive)."""
            cls = type(mod)
            path = paths.get(id(mod))
            if path is None and everything:
                name = cls.__name__
                counts[name] = counts.get(name, 0) + 1
                path = f"{name}#{counts[name]}"
            counter = None if path is None else _flop_counter(mod)
            moves = (path is not None and counter is None and next(mod.children(), None) is None
                     and cls.__name__ not in NO_DATA_MOVEMENT)
            info = infos[id(mod)] = (path, counter, moves, cls, cls.__name__)
            return info

        def find(mod, phase):
            """The open frame of ``mod`` in ``phase`` below the top, with the frames above it (calls
            that raised) dropped; None when its pre-hook ran before the block started."""
            k = len(stack) - 2
            while k >= 0 and not (stack[k][_MOD] is mod and stack[k][_PHASE] == phase):
                k -= 1
            if k < 0:
                return None
            frame = stack[k]
            del stack[k:]
            return frame

        # The four hooks spell out the same two bodies (no helper call: they run on every module call);
        # frames are indexed as _MOD=0, _PHASE=2, _T0=4.
        def pre_forward(mod, args):
            if get_ident() != thread:
                return
            info = infos.get(id(mod))
            if info is None or info[3] is not type(mod):
                info = info_of(mod)
            if info[0] is None:
                return
            for k, open_frame in enumerate(stack):
                # The same module in the same pass still open: that call raised (its post-hook never
                # ran) and the caller went on; it and the calls it had open are dropped, not parents.
                if open_frame[0] is mod and open_frame[2] == "forward":
                    del stack[k:]
                    break
            frame = [mod, info, "forward", args, 0.0, 0.0, 0.0, False]
            stack.append(frame)
            frame[4] = perf_counter()  # last, so that the hook's own work is not in the call's time

        def pre_backward(mod, grad_output):
            if get_ident() != thread:
                return
            info = infos.get(id(mod))
            if info is None or info[3] is not type(mod):
                info = info_of(mod)
            if info[0] is None:
                return
            for k, open_frame in enumerate(stack):
                # The same module in the same pass still open: that call raised (its post-hook never
                # ran) and the caller went on; it and the calls it had open are dropped, not parents.
                if open_frame[0] is mod and open_frame[2] == "backward":
                    del stack[k:]
                    break
            inputs = grad_output if isinstance(grad_output, tuple) else (grad_output,)
            frame = [mod, info, "backward", inputs, 0.0, 0.0, 0.0, False]
            stack.append(frame)
            frame[4] = perf_counter()  # last, so that the hook's own work is not in the call's time

        def post_forward(mod, args, output):
            t1 = perf_counter()  # first, so that the hook's own work is not in the call's time
            if get_ident() != thread or not stack:
                return
            frame = stack[-1]
            if frame[0] is mod and frame[2] == "forward":
                stack.pop()
            else:
                frame = find(mod, "forward")
                if frame is None:
                    return
            finish(frame, t1, output if isinstance(output, tuple) else (output,))

        def post_backward(mod, grad_input, grad_output):
            t1 = perf_counter()  # first, so that the hook's own work is not in the call's time
            if get_ident() != thread or not stack:
                return
            frame = stack[-1]
            if frame[0] is mod and frame[2] == "backward":
                stack.pop()
            else:
                frame = find(mod, "backward")
                if frame is None:
                    return
            finish(frame, t1, grad_input if isinstance(grad_input, tuple) else (grad_input,))

        for register, hook in ((register_module_forward_pre_hook, pre_forward),
                               (register_module_forward_hook, post_forward),
                               (register_module_full_backward_pre_hook, pre_backward),
                               (register_module_full_backward_hook, post_backward)):
            self._handles.append(register(hook))

    def _finish(self, frame, t1, outputs):
        """Record a finished call (``_RECORD`` items at the end of ``self._records``); ``calls`` turns
        them into dicts."""
        module, info, phase, inputs, t0, children, compile_s, compiled = frame
        dur = t1 - t0
        stack = self._stack
        if stack:
            parent = stack[-1]
            parent[_CHILDREN] += dur
            if compiled:
                parent[_COMPILED] = True
        in_shapes, out_shapes = [], []
        dtype, nbytes = _raw_shapes(inputs, in_shapes, None, 0)
        dtype, nbytes = _raw_shapes(outputs, out_shapes, dtype, nbytes)
        flops = None
        if info[1] is not None:
            flops = info[1](module, phase, inputs, outputs)
            nbytes = None
        elif not info[2]:
            nbytes = None
        shapes = (tuple(in_shapes), tuple(out_shapes), dtype)
        shapes = self._shapes.setdefault(shapes, shapes)
        self._records.extend((info, phase, t0, t1, dur - children, len(stack), compiled, compile_s, shapes, flops,
                              nbytes))

    @property
    def calls(self):
        """One dict per finished call, in order of completion: name, type, phase, t0, t1 (perf_counter
        seconds), self (seconds), depth, compiled, compile_s, inputs and outputs (shapes), flops, bytes,
        dtype. Made from the hot path's records when asked for."""
        calls, records = self._calls, self._records
        if len(calls) * _RECORD < len(records):
            calls.extend(_call_dict(records, k) for k in range(len(calls) * _RECORD, len(records), _RECORD))
        return calls

    def step(self):
        """End the current step (call once at the end of each training or inference step)."""
        self._marks.append(time.perf_counter())

    # -- statistics -------------------------------------------------------------------------------
    def _segments(self):
        """[(t0, t1)] of the steps: between ``step()`` marks; the block's end closes the last one, which
        is dropped when nothing ran in it (the usual ``step()`` at the end of the last step)."""
        marks = list(self._marks) + [self.end]
        segs = list(zip(marks[:-1], marks[1:]))
        if len(segs) > 1 and not any(segs[-1][0] <= t0 for t0 in self._records[2::_RECORD]):
            segs.pop()
        return segs

    def stats(self):
        """Everything the table shows, JSON-ready: steps, compile time, peaks, per-module and per-type
        rows (times in ms per counted step, shares of the mean counted step)."""
        if self._active or not hasattr(self, "end"):
            raise RuntimeError("profile statistics are available after the with-block has ended")
        segs = self._segments()
        starts = [s for s, _ in segs]
        compiled_steps = set()
        for c in self._compiles:
            for k, (s, e) in enumerate(segs):
                if c["t0"] < e and c["t1"] > s:
                    compiled_steps.add(k)
        counted = [k for k in range(len(segs)) if k >= self.warmup and k not in compiled_steps]
        steps = {"count": len(segs), "warmup": min(self.warmup, len(segs)), "compiled": sorted(compiled_steps),
                 "counted": len(counted)}
        note = None
        if not counted:  # no clean step: use every non-warm-up step, but still no call that compiled
            counted = [k for k in range(len(segs)) if k >= self.warmup] or list(range(len(segs)))
            note = ("every step was a warm-up step or compiled: times are from the calls that did not "
                    "compile, and no step time is given; run more steps")
        counted_set = set(counted)
        durations = [segs[k][1] - segs[k][0] for k in counted]
        step_s = None if note else sum(durations) / len(durations)
        steps.update(mean_ms=None if note else step_s * 1e3,
                     median_ms=None if note else statistics.median(durations) * 1e3, note=note)
        n_steps = len(counted)

        def step_of(t):
            return bisect.bisect_right(starts, t) - 1

        used = [c for c in self.calls if step_of(c["t0"]) in counted_set and not c["compiled"]]
        peaks = self._peaks()
        modules = self._aggregate(used, lambda c: (c["name"], c["phase"]), n_steps, step_s, peaks)
        types = self._aggregate(used, lambda c: (c["type"], c["phase"]), n_steps, step_s, peaks)
        top = sum(c["t1"] - c["t0"] for c in used if c["depth"] == 0) / n_steps
        in_modules = sum(c["self"] for c in used) / n_steps
        # Per step, the part of it inside top-level calls; the median is robust to one step that a
        # garbage collection or another process interrupted between two calls.
        per_step = {k: 0.0 for k in counted}
        for c in used:
            if c["depth"] == 0:
                per_step[step_of(c["t0"])] += c["t1"] - c["t0"]
        steps["in_modules_share_median"] = None if note else statistics.median(
            per_step[k] / (segs[k][1] - segs[k][0]) for k in counted)
        compile_s = sum(c["t1"] - c["t0"] for c in self._compiles)
        return {
            "threads": self.threads, "steps": steps,
            "in_modules_ms": in_modules * 1e3, "top_level_ms": top * 1e3,
            "outside_modules_ms": None if step_s is None else (step_s - top) * 1e3,
            "compile": {"seconds": compile_s, "kernels": len(self._compiles),
                        "calls_flagged": sum(1 for c in self.calls if c["compiled"])},
            "peaks": None if peaks is None else peaks._asdict(),
            "modules": modules, "types": types,
        }

    def _peaks(self):
        if not self._want_peaks:
            return None
        from ._peak import machine_peaks

        return machine_peaks(self.threads)

    @staticmethod
    def _aggregate(calls, key, n_steps, step_s, peaks):
        groups = {}
        for order, c in enumerate(calls):
            g = groups.setdefault(key(c), {"first": order, "calls": []})
            g["calls"].append(c)
        rows = []
        for (name, phase), g in groups.items():
            cs = g["calls"]
            total = sum(c["t1"] - c["t0"] for c in cs)
            self_s = sum(c["self"] for c in cs)
            row = {"name": name, "type": cs[0]["type"], "phase": phase, "calls": len(cs),
                   "calls_per_step": len(cs) / n_steps, "total_ms": total / n_steps * 1e3,
                   "self_ms": self_s / n_steps * 1e3,
                   "share": None if step_s is None else self_s / n_steps / step_s, "first": g["first"]}
            shapes = {json.dumps([c["inputs"], c["outputs"]]) for c in cs}
            row["inputs"], row["outputs"] = (cs[0]["inputs"], cs[0]["outputs"]) if len(shapes) == 1 else ("varies",) * 2
            flops = [c["flops"] for c in cs]
            nbytes = [c["bytes"] for c in cs]
            row["gflops"] = sum(flops) / total / 1e9 if None not in flops and total > 0 else None
            row["gbps"] = sum(nbytes) / self_s / 1e9 if None not in nbytes and self_s > 0 else None
            row["pct_peak"] = (100 * row["gflops"] / peaks.fma_gflops if peaks and row["gflops"] is not None
                               else None)
            row["pct_copy"] = 100 * row["gbps"] / peaks.copy_gbps if peaks and row["gbps"] is not None else None
            rows.append(row)
        return rows

    # -- output -------------------------------------------------------------------------------------
    def table(self, sort_by="self", stats=None):
        """The statistics as Markdown: one row per module and pass, then one per module type and pass.
        ``sort_by``: "self" or "total" (time, largest first), "calls", "gflops", "order" (first call
        first) or "name"."""
        if sort_by not in self.SORT_KEYS:
            raise ValueError(f"sort_by must be one of {', '.join(self.SORT_KEYS)}, got {sort_by!r}")
        st = self.stats() if stats is None else stats
        key = {"self": lambda r: -r["self_ms"], "total": lambda r: -r["total_ms"], "calls": lambda r: -r["calls"],
               "gflops": lambda r: -(r["gflops"] or 0.0), "order": lambda r: r["first"],
               "name": lambda r: (r["name"], r["phase"])}[sort_by]

        def fmt(v, spec):
            return "" if v is None else format(v, spec)

        def rows(items, with_shapes):
            out = []
            for r in sorted(items, key=key):
                cells = [r["name"]] + ([r["type"]] if with_shapes else []) + [
                    _PHASES[r["phase"]], fmt(r["calls_per_step"], "g"), fmt(r["self_ms"], ".3f"),
                    fmt(r["total_ms"], ".3f"), fmt(None if r["share"] is None else 100 * r["share"], ".1f"),
                    fmt(r["gflops"], ".1f"), fmt(r["pct_peak"], ".0f"), fmt(r["gbps"], ".1f"),
                    fmt(r["pct_copy"], ".0f")]
                if with_shapes:
                    cells.append(_shape_text(r["inputs"]) + " -> " + _shape_text(r["outputs"]))
                out.append(cells)
            return out

        cols = ["calls/step", "self ms", "total ms", "% step", "GFLOP/s", "% peak", "GB/s", "% copy"]
        steps = st["steps"]
        lines = [f"minicnn profile: {steps['counted']} step(s) counted of {steps['count']} "
                 f"({steps['warmup']} warm-up, {len(steps['compiled'])} compiling), {st['threads']} thread(s)"]
        if steps["note"]:
            lines.append(f"note: {steps['note']}")
        else:
            lines.append(f"step: {steps['mean_ms']:.3f} ms mean, {steps['median_ms']:.3f} ms median; in modules "
                         f"(top level) {st['top_level_ms']:.3f} ms, outside modules {st['outside_modules_ms']:.3f} ms; "
                         f"modules cover {100 * steps['in_modules_share_median']:.1f}% of a step (median)")
        c = st["compile"]
        lines.append(f"compile (not in any time below): {c['seconds']:.3f} s in {c['kernels']} kernel "
                     f"compilation(s); {c['calls_flagged']} call(s) that compiled left out")
        if st["peaks"]:
            p = st["peaks"]
            lines.append(f"measured peaks on {p['threads']} thread(s): FP32 FMA {p['fma_gflops']:.1f} GFLOP/s, "
                         f"memory copy {p['copy_gbps']:.1f} GB/s")
        lines += ["", markdown_table(["module", "type", "pass"] + cols + ["input -> output"],
                                     rows(st["modules"], True)),
                  "", markdown_table(["module type", "pass"] + cols, rows(st["types"], False))]
        over = [r for r in st["modules"] if (r["pct_peak"] or 0) > 100 or (r["pct_copy"] or 0) > 100]
        if over:
            lines += ["", "Above 100%: % copy when a layer's arrays stay in the caches (the copy benchmark streams "
                          "from memory); % peak when the machine was busier while the peak was measured."]
        return "\n".join(lines)

    def trace_events(self):
        """The Chrome trace events: one complete ("X") event per call, compile interval and step, ts and
        dur in microseconds since the block started (one perf_counter time base)."""
        pid, tid = os.getpid(), self._thread % 2**31
        us = lambda t: (t - self.origin) * 1e6  # noqa: E731
        events = [{"name": "process_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": "minicnn"}},
                  {"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": "main"}}]
        for k, (s, e) in enumerate(self._segments()):
            events.append({"name": f"step {k}", "cat": "step", "ph": "X", "ts": us(s), "dur": (e - s) * 1e6,
                           "pid": pid, "tid": tid, "args": {"warmup": k < self.warmup}})
        for c in self.calls:
            events.append({"name": c["name"], "cat": c["phase"], "ph": "X", "ts": us(c["t0"]),
                           "dur": (c["t1"] - c["t0"]) * 1e6, "pid": pid, "tid": tid,
                           "args": {"type": c["type"], "inputs": c["inputs"], "outputs": c["outputs"],
                                    "self_us": c["self"] * 1e6, "compiled": c["compiled"]}})
        for c in self._compiles:
            events.append({"name": f"compile {c['name']}", "cat": "compile", "ph": "X", "ts": us(c["t0"]),
                           "dur": (c["t1"] - c["t0"]) * 1e6, "pid": pid, "tid": tid, "args": {}})
        return events

    def export_chrome_trace(self, path):
        """Write the Chrome trace-event JSON (``{"traceEvents": [...]}``) to ``path``, atomically."""
        data = json.dumps({"traceEvents": self.trace_events(), "displayTimeUnit": "ms"}).encode("utf-8")
        atomic_write(path, lambda f: f.write(data))

    def export_json(self, path):
        """Write ``stats()`` as JSON to ``path``, atomically."""
        write_json(path, self.stats())

    def plot(self, path, step=None):
        """A PNG chart (needs matplotlib): the timeline of one counted step (the last; ``step`` = its
        index) as the trace shows it, and each module type's self time per pass. Written atomically."""
        import io

        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        st = self.stats()
        segs = self._segments()
        if step is None:
            step = next((k for k in reversed(range(len(segs))) if k >= self.warmup
                         and k not in st["steps"]["compiled"]), len(segs) - 1)
        s, e = segs[step]
        calls = [c for c in self.calls if s <= c["t0"] < e]
        types = sorted({c["type"] for c in calls})
        colour = {t: plt.cm.tab20(k % 20) for k, t in enumerate(types)}
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(12, 7), gridspec_kw={"height_ratios": [2, 1]})
        depth = max((c["depth"] for c in calls), default=0) + 1
        for c in calls:
            x0, w = (c["t0"] - s) * 1e3, (c["t1"] - c["t0"]) * 1e3
            y = depth - 1 - c["depth"] + (0.5 if c["phase"] == "backward" else 0.0)
            ax1.barh(y, w, left=x0, height=0.45, color=colour[c["type"]], edgecolor="black", linewidth=0.3)
            if w > (e - s) * 1e3 * 0.04:
                short = c["name"].rsplit(".", 1)[-1]
                label = f"{short} {c['type']}" if short != c["type"] else short
                ax1.text(x0 + w / 2, y, label, ha="center", va="center", fontsize=7)
        ax1.set_yticks([d + off for d in range(depth) for off in (0.0, 0.5)])
        ax1.set_yticklabels([f"depth {depth - 1 - d} {p}" for d in range(depth) for p in ("fwd", "bwd")], fontsize=7)
        ax1.set_xlabel("ms since the step started")
        ax1.set_title(f"step {step}: {(e - s) * 1e3:.2f} ms ({st['threads']} thread(s))")
        handles = [matplotlib.patches.Patch(color=colour[t], label=t) for t in types]
        ax1.legend(handles=handles, fontsize=7, loc="upper right", ncol=min(4, len(types) or 1))
        rows = sorted(st["types"], key=lambda r: -r["self_ms"])
        labels = [f"{r['name']} {_PHASES[r['phase']]}" for r in rows]
        ax2.barh(range(len(rows)), [r["self_ms"] for r in rows], color=[colour.get(r["name"], "grey") for r in rows])
        ax2.set_yticks(range(len(rows)))
        ax2.set_yticklabels(labels, fontsize=7)
        ax2.invert_yaxis()
        ax2.set_xlabel("self ms per step (counted steps)")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=120)
        plt.close(fig)
        atomic_write(path, lambda f: f.write(buf.getvalue()))


class record_function:
    """A named range (e.g. the optimizer step) in the active profiler's statistics and trace, like a
    module without sub-modules: ``with record_function("optimizer.step"): optimizer.step()``; also a
    decorator (``@record_function("name")``). Does nothing when no profiler is active on this thread.
    (A class rather than a generator: it costs about as little as an empty ``with`` when nothing
    profiles, and a training loop enters it every step.)"""

    __slots__ = ("name", "_prof", "_frame")

    def __init__(self, name):
        self.name = name
        self._prof = self._frame = None

    def __enter__(self):
        prof = getattr(_local, "profiler", None)
        if prof is None or not prof._active:
            self._prof = None
            return None
        name = str(self.name)
        frame = _frame(None, (name, None, False, None, name), "range", ())
        self._prof, self._frame = prof, frame
        prof._stack.append(frame)
        frame[_T0] = time.perf_counter()
        return None

    def __exit__(self, *exc):
        t1 = time.perf_counter()
        prof, frame = self._prof, self._frame
        if prof is None:
            return False
        self._prof = self._frame = None
        stack = prof._stack
        for k in range(len(stack) - 1, -1, -1):
            if stack[k] is frame:
                del stack[k:]
                prof._finish(frame, t1, ())
                break
        return False

    def __call__(self, fn):
        name = self.name

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with record_function(name):
                return fn(*args, **kwargs)

        return wrapper


def _shape_text(shapes):
    if shapes == "varies":
        return "varies"
    return ", ".join("x".join(map(str, s)) if isinstance(s, list) else str(s) for s in shapes) or "-"


def markdown_table(header, rows):
    """A Markdown table with padded columns."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows])
