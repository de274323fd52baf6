"""Compile (or load from the cache) the kernels a model uses, up front.

``warmup(model, input_shape, optimizer, loss)`` runs one training step and one evaluation forward of a
COPY of the model (and optimizer) on a batch of ``input_shape`` in the model's dtype, so that exactly
the kernels that model needs are compiled, and nothing else: the model, its optimizer and every random
generator are left as they were. Scripts call it before timing anything, so that an epoch's time never
includes JIT compilation. ``warmup()`` without a model compiles every layer and optimizer of the library
(for a test session, or to fill a machine's cache once).
"""
import copy
import os
import time

import numpy as np

from ._compile import compile_progress
from ._compile_helper import CompileHelper
from ._config import JIT_DISABLED, load_aware_threads
from ._validate import boolean, callables, shape_arg
from .grad_mode import no_grad
from .random import default_rng


def _model_dtype(model):
    for p in model.parameters():
        return p.data.dtype
    return np.dtype(getattr(model, "dtype", np.float32))


def _target_for(loss, y):
    """Targets for one loss evaluation on output ``y``: class indices for cross-entropy, zeros otherwise."""
    from .nn import CrossEntropyLoss

    if isinstance(loss, CrossEntropyLoss):
        return np.arange(y.shape[0], dtype=np.int64) % y.shape[1]
    return np.zeros_like(y)


def _step(model, x, optimizer, loss, train, evaluate):
    if train:
        model.train()
        y = model(x)
        if loss is not None:
            loss(y, _target_for(loss, y))
            dy = loss.backward()
        else:
            dy = np.ones_like(y)
        model.backward(dy)
        if optimizer is not None:
            optimizer.step()
            optimizer.zero_grad()
    if evaluate:
        model.eval()
        with no_grad():  # as the scripts evaluate; compiles max pooling's kernel without positions
            y = model(x)
            if loss is not None:
                loss(y, _target_for(loss, y))


def _helper_wanted(helper):
    """Whether the warm-up of a training step gets a helper process (see ``minicnn._compile_helper``):
    ``helper`` True or False, or None for "when a second core is free" (and not ``MINICNN_COMPILE_HELPER=0``)."""
    if helper is not None:
        return boolean("helper", helper)
    if JIT_DISABLED or os.environ.get("MINICNN_COMPILE_HELPER", "1").strip() in ("0", "false", "no", "off"):
        return False
    return load_aware_threads() >= 2


def _train_step(model, x, optimizer, loss, bar, helper, also=()):
    """One training step of the copies, with a helper process compiling beside it if ``helper``; the
    ``also`` callables run while this process would wait for the helper, else after the step."""
    if not helper:
        _step(model, x, optimizer, loss, True, False)
        for task in also:
            task()
        return
    with CompileHelper(bar, also) as h:
        _step(model, x, optimizer, loss, True, False)
        h.run_idle_tasks()


def warmup(model=None, input_shape=None, optimizer=None, loss=None, *, train=True, eval=True, progress=False,
           dtypes=(np.float32,), helper=None, also=()):
    """Compile what one training step and one evaluation of ``model`` need; returns the seconds it took.

    ``input_shape``: the shape of one input batch, e.g. ``(64, 1, 28, 28)`` (the input is drawn in the
    model's dtype). ``optimizer`` (of ``model``'s parameters) and ``loss`` (e.g. ``nn.CrossEntropyLoss()``)
    are optional; without a loss, backward starts from ones. ``train=False`` or ``eval=False`` leaves
    out the training step or the evaluation forward. Everything runs on deep copies, so nothing given
    is changed. With ``progress=True`` a line says what is being compiled and a progress bar counts the
    kernels (on stderr), only if anything compiles; kernels already in Numba's cache just load.

    Without a model, every layer and optimizer is run for each of ``dtypes`` (LeNet-5 with and without
    the first layer's input gradient, SGD with and without momentum, Adam, AMSGrad, average pooling,
    batch norm, dropout).

    ``helper``: whether a second process compiles the backward's kernels of each training step while
    this one compiles the forward's (``minicnn._compile_helper``; started only if something compiles):
    None (default) when a second core is free and ``MINICNN_COMPILE_HELPER`` is not 0. Only Numba's
    cache is shared with it.
    ``also``: callables that compile something else the run needs (e.g. ``DataLoader.warmup``), run while
    this process would otherwise wait for its helper, or after the training step.

    The seconds include loading cached kernels; ``minicnn.compile_report()`` lists the compiled ones
    (in this process: not the helper's).
    """
    start = time.perf_counter()
    also = callables("also", also, "[loader.warmup]")
    if model is None:
        if input_shape is not None or optimizer is not None or loss is not None:
            raise ValueError("warmup: input_shape, optimizer and loss need a model")
        with compile_progress("every minicnn kernel for " + ", ".join(np.dtype(d).name for d in dtypes),
                              enabled=progress) as bar:
            _everything(dtypes, bar, _helper_wanted(helper))
            for task in also:
                task()
        return time.perf_counter() - start
    from .nn import Module

    if not isinstance(model, Module):
        raise TypeError(f"model must be a minicnn.nn.Module, got {type(model).__name__}")
    if input_shape is None:
        raise ValueError("warmup: input_shape is needed with a model, e.g. (64, 1, 28, 28)")
    input_shape = shape_arg("input_shape", input_shape)
    dtype = _model_dtype(model)
    # One deepcopy of everything, so that the copied optimizer updates the copied parameters (and layers
    # with a generator of their own draw from a copy of it).
    model, optimizer, loss = copy.deepcopy((model, optimizer, loss))
    x = np.random.default_rng(0).standard_normal(input_shape).astype(dtype)
    # Layers without a generator of their own (Dropout(rng=None), ...) draw from minicnn's default one:
    # put its state back, so that a run (or a resumed run, which restores that state before warming up)
    # draws exactly what it would have drawn without the warm-up.
    default = default_rng()
    saved = default.bit_generator.state
    try:
        with compile_progress(f"minicnn's kernels for {type(model).__name__} ({np.dtype(dtype).name})",
                              enabled=progress) as bar:
            if train:
                _train_step(model, x, optimizer, loss, bar, _helper_wanted(helper), also)
            else:
                for task in also:
                    task()
            _step(model, x, optimizer, loss, False, eval)
    finally:
        default.bit_generator.state = saved
    return time.perf_counter() - start


def _everything(dtypes, bar, helper):
    from . import nn, optim
    from .models import LeNet5

    for dtype in dtypes:
        x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(dtype)
        for first_input_grad in (False, True):
            model, loss = LeNet5(dtype=dtype, rng=0, input_grad=first_input_grad), nn.CrossEntropyLoss()
            _train_step(model, x, None, loss, bar, helper)
            _step(model, x, None, loss, False, True)
            for opt in (optim.SGD(model.parameters(), lr=1e-3), optim.SGD(model.parameters(), lr=1e-3, momentum=0.9),
                        optim.Adam(model.parameters()), optim.Adam(model.parameters(), amsgrad=True)):
                opt.step()
        extra = nn.Sequential(nn.AvgPool2d(2), nn.BatchNorm2d(1, dtype=dtype), nn.Dropout(0.5, rng=0))
        _step(extra, x, None, None, True, True)
