"""``no_grad()``: forwards inside keep nothing for backward, in training and eval mode alike."""
import contextlib
import threading

_state = threading.local()


def is_grad_enabled():
    """Whether forwards keep what backward needs (True unless inside ``no_grad()``)."""
    return getattr(_state, "enabled", True)


def set_grad_enabled(mode):
    """Turn keeping state for backward on or off for this thread; returns the previous setting."""
    previous = is_grad_enabled()
    _state.enabled = bool(mode)
    return previous


@contextlib.contextmanager
def no_grad():
    """Within this block, layers keep nothing for backward (inference without saving activations)."""
    previous = set_grad_enabled(False)
    try:
        yield
    finally:
        set_grad_enabled(previous)


@contextlib.contextmanager
def enable_grad():
    """Within this block forwards keep what backward needs again (e.g. inside a ``no_grad()`` block)."""
    previous = set_grad_enabled(True)
    try:
        yield
    finally:
        set_grad_enabled(previous)
