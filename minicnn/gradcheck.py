"""``gradcheck``: compare analytic gradients with central finite differences, in float64.

What can be checked
-------------------
* A ``Module`` (or any object with a ``backward`` method, such as ``nn.CrossEntropyLoss``):
  ``out = obj(*inputs)`` and ``obj.backward(dy)`` returns the gradient with respect to the float
  input (or a tuple, one per float input, in order); parameters (``obj.named_parameters()``) get
  their gradient in ``.grad``. Every parameter must be float64 (build the module with
  ``dtype=np.float64``): a float32 module is refused rather than silently converted, because its
  finite differences would measure rounding noise.
* A plain callable ``fn(*inputs) -> (out, backward_fn)`` where ``backward_fn(dy)`` returns the
  gradient(s) of the float input(s) as above. Use this to check any composition of operations.

The scalar objective is ``sum(out * dy)`` with a fixed random ``dy`` drawn from
``numpy.random.default_rng(seed)`` (a random scalar when ``out`` is a scalar, e.g. a loss), so every
entry of the Jacobian contributes. Float inputs are copied to float64; other inputs (e.g. integer
labels) are passed through unchanged and not differentiated.

The forward pass must be deterministic: ``gradcheck`` runs it twice and refuses (``ValueError``)
when the outputs differ, e.g. ``Dropout`` in training mode. Check such a module in eval mode, or
wrap it in a callable that replays the same randomness on every call (for ``Dropout``: reassign
``layer.rng = numpy.random.default_rng(fixed_seed)`` before each forward), which fixes the mask so
the function being differentiated is well defined.

State is left as found: perturbed entries are restored exactly, buffers (e.g. BatchNorm running
statistics, which every training-mode forward updates) are restored, and each parameter's ``.grad``
is put back to its value before the call (so nothing accumulates).

Pass/fail: an entry passes when ``|analytic - numerical| <= atol + rtol * |numerical|`` (as
``numpy.allclose``). The reported error of an array is its worst *relative error*
``max |analytic - numerical| / (|numerical| + atol / rtol)``, a relative error whose denominator is
floored at ``atol / rtol`` so that near-zero gradients do not blow it up; an array passes exactly
when this is ``<= rtol``.
"""
import numpy as np

from ._validate import integer, real

__all__ = ["gradcheck", "GradcheckResult", "GradcheckEntry"]


class GradcheckEntry:
    """The comparison for one input or parameter."""

    def __init__(self, name, shape, checked=0, max_abs_error=np.inf, max_rel_error=np.inf, index=None,
                 analytic=np.nan, numerical=np.nan, passed=False, note=""):
        self.name, self.shape, self.checked = name, shape, checked
        self.max_abs_error, self.max_rel_error = max_abs_error, max_rel_error
        self.index, self.analytic, self.numerical = index, analytic, numerical
        self.passed, self.note = passed, note

    def describe(self):
        if self.note:
            return f"{self.name}: {self.note}"
        return (f"{self.name}: worst relative error {self.max_rel_error:.3g} at index {self.index} "
                f"(analytic {self.analytic:.6g}, numerical {self.numerical:.6g})")


class GradcheckResult:
    """Outcome of ``gradcheck``. ``bool(result)`` is ``result.passed``.

    ``errors`` maps each checked name (``"input[0]"``, parameter names such as ``"0.weight"``) to its
    worst relative error (``inf`` when the gradient is missing or has the wrong shape);
    ``entries`` holds the details (:class:`GradcheckEntry`); ``failures`` the names that failed.
    """

    def __init__(self, entries, eps, atol, rtol):
        self.entries = {e.name: e for e in entries}
        self.errors = {e.name: e.max_rel_error for e in entries}
        self.failures = [e.name for e in entries if not e.passed]
        self.passed = not self.failures
        self.eps, self.atol, self.rtol = eps, atol, rtol

    def __bool__(self):
        return self.passed

    def __str__(self):
        head = (f"gradcheck {'passed' if self.passed else 'FAILED'} "
                f"(eps={self.eps:g}, atol={self.atol:g}, rtol={self.rtol:g})")
        rows = [f"  {'name':<24} {'shape':<18} {'checked':>8} {'max abs err':>12} {'worst rel err':>14}"]
        for e in self.entries.values():
            status = "ok" if e.passed else ("FAIL " + e.note if e.note else "FAIL")
            rows.append(f"  {e.name:<24} {str(e.shape):<18} {e.checked:>8} {e.max_abs_error:>12.3g} "
                        f"{e.max_rel_error:>14.3g}  {status}")
        return "\n".join([head] + rows)

    def __repr__(self):
        return f"GradcheckResult(passed={self.passed}, errors={self.errors})"


def _buffers(obj):
    if not hasattr(obj, "named_modules"):
        return []
    return [(m, b, np.array(getattr(m, b), copy=True)) for _, m in obj.named_modules() for b in m._buffer_names]


def _numerical(objective, array, indices, eps):
    flat = array.reshape(-1)
    grad = np.empty(len(indices))
    for j, k in enumerate(indices):
        old = flat[k]
        flat[k] = old + eps
        plus = objective()
        flat[k] = old - eps
        minus = objective()
        flat[k] = old
        grad[j] = (plus - minus) / (2 * eps)
    return grad


def _compare(name, analytic, array, objective, indices, eps, atol, rtol):
    shape = array.shape
    if analytic is None:
        return GradcheckEntry(name, shape, note="no gradient (backward returned None)")
    analytic = np.asarray(analytic)
    if analytic.shape != shape:
        return GradcheckEntry(name, shape, note=f"gradient has shape {analytic.shape}, expected {shape}")
    numerical = _numerical(objective, array, indices, eps)
    analytic = analytic.reshape(-1)[indices].astype(np.float64)
    if len(indices) == 0:
        return GradcheckEntry(name, shape, 0, 0.0, 0.0, passed=True)
    diff = np.abs(analytic - numerical)
    rel = diff / (np.abs(numerical) + atol / rtol)
    bad = ~(diff <= atol + rtol * np.abs(numerical))  # NaN counts as a failure
    worst = int(np.argmax(np.where(np.isnan(rel), np.inf, rel)))
    index = np.unravel_index(indices[worst], shape) if shape else ()
    index = tuple(int(i) for i in index)
    return GradcheckEntry(name, shape, len(indices), float(np.max(np.where(np.isnan(diff), np.inf, diff))),
                          float(rel[worst]), index, float(analytic[worst]), float(numerical[worst]),
                          passed=not bad.any())


def gradcheck(fn_or_module, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, raise_exception=True,
              samples=None):
    """Check the gradients of ``fn_or_module`` at ``inputs`` by central differences (see module doc).

    ``inputs``: an array or a tuple/list of arguments (float arrays are differentiated).
    ``samples``: check at most this many randomly chosen (seeded) entries of each array; ``None``
    checks every entry (use it for large models, where each entry costs two forward passes).
    Returns a :class:`GradcheckResult`; with ``raise_exception=True`` a failure raises ``ValueError``
    naming each failing input/parameter and its worst error.
    """
    eps, atol, rtol = real("eps", eps), real("atol", atol), real("rtol", rtol)
    if eps <= 0 or atol < 0 or rtol <= 0:
        raise ValueError(f"need eps > 0, atol >= 0 and rtol > 0, got eps={eps}, atol={atol}, rtol={rtol}")
    samples = None if samples is None else integer("samples", samples, 1)
    args = list(inputs) if isinstance(inputs, (tuple, list)) else [inputs]
    float_positions = []
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            args[i] = np.array(a, dtype=np.float64, copy=True, order="C")
            float_positions.append(i)
        elif isinstance(a, np.ndarray) and a.dtype.kind == "c":
            raise TypeError(f"input {i} is complex; gradcheck handles real float arrays")

    if hasattr(fn_or_module, "backward") and callable(fn_or_module):
        obj = fn_or_module

        def run():
            out = obj(*args)
            return out, obj.backward
    elif callable(fn_or_module):
        def run():
            result = fn_or_module(*args)
            if not (isinstance(result, tuple) and len(result) == 2 and callable(result[1])):
                raise TypeError("a plain callable checked by gradcheck must return (output, backward_fn)")
            return result
    else:
        raise TypeError(f"gradcheck needs a Module, an object with backward(), or a callable; "
                        f"got {type(fn_or_module).__name__}")

    params = list(fn_or_module.named_parameters()) if hasattr(fn_or_module, "named_parameters") else []
    for name, p in params:
        if p.data.dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 parameters, but {name} is {p.data.dtype}; "
                            f"build the module with dtype=np.float64")
    if not float_positions and not params:
        raise ValueError("gradcheck: nothing to check (no float inputs and no parameters)")

    saved_grads = [p.grad.copy() for _, p in params]
    saved_buffers = _buffers(fn_or_module)
    try:
        out, _ = run()
        out_again, _ = run()
        # copies: a module may hand out a reused buffer
        out, out_again = np.array(out, copy=True), np.array(out_again, copy=True)
        if out.dtype != np.float64:
            raise TypeError(f"gradcheck needs a float64 output, got {out.dtype}; build the module with "
                            f"dtype=np.float64")
        if not np.isfinite(out).all():
            raise ValueError("gradcheck: the output is not finite at these inputs")
        if out.shape != out_again.shape or not np.array_equal(out, out_again):
            raise ValueError("gradcheck: the forward pass is not deterministic (two calls gave different "
                             "outputs), e.g. Dropout in training mode; use eval() or fix the randomness")
        rng = np.random.default_rng(seed)
        dy = float(rng.standard_normal()) if out.ndim == 0 else rng.standard_normal(out.shape)

        for _, p in params:
            p.grad.fill(0)
        out, backward_fn = run()
        grads = backward_fn(dy)
        if len(float_positions) == 1 and not isinstance(grads, (tuple, list)):
            grads = [grads]
        grads = [] if grads is None and not float_positions else grads
        if not isinstance(grads, (tuple, list)) or len(grads) != len(float_positions):
            raise ValueError(f"backward returned {type(grads).__name__}; expected one gradient per float "
                             f"input ({len(float_positions)})")
        param_grads = [p.grad.copy() for _, p in params]

        def objective():
            value, _ = run()
            return float(np.sum(np.asarray(value, dtype=np.float64) * dy))

        pick = np.random.default_rng([seed, 1])

        def indices(size):
            if samples is None or size <= samples:
                return np.arange(size)
            return np.sort(pick.choice(size, samples, replace=False))

        entries = []
        for pos, g in zip(float_positions, grads):
            a = args[pos]
            entries.append(_compare(f"input[{pos}]", g, a, objective, indices(a.size), eps, atol, rtol))
        for (name, p), g in zip(params, param_grads):
            entries.append(_compare(name, g, p.data, objective, indices(p.data.size), eps, atol, rtol))
    finally:
        for (_, p), g in zip(params, saved_grads):
            p.grad[...] = g
        for module, name, value in saved_buffers:
            setattr(module, name, value)

    result = GradcheckResult(entries, eps, atol, rtol)
    if raise_exception and not result.passed:
        failed = [result.entries[n].describe() for n in result.failures]
        raise ValueError("gradcheck failed for " + "; ".join(failed) + "\n" + str(result))
    return result
