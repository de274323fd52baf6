"""Compile (or load from the cache) every kernel a training or evaluation run uses, up front.

Scripts call ``warmup()`` before timing anything, so that an epoch's time never includes JIT
compilation; the seconds it returns are the compile (or cache-load) time, reported separately.
"""
import time

import numpy as np


def warmup(dtypes=(np.float32,)):
    """Run every layer forward and backward, and every optimizer update, once on a tiny batch for each
    dtype; returns the seconds it took (compilation, or loading compiled kernels from the cache)."""
    from . import nn, optim
    from .grad_mode import no_grad
    from .models import LeNet5

    start = time.perf_counter()
    for dtype in dtypes:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, 1, 28, 28)).astype(dtype)
        labels = np.array([0, 1])
        for first_input_grad in (False, True):
            model = LeNet5(dtype=dtype, rng=0, input_grad=first_input_grad)
            loss = nn.CrossEntropyLoss()
            loss(model(x), labels)
            model.backward(loss.backward())
            for opt in (optim.SGD(model.parameters(), lr=1e-3), optim.SGD(model.parameters(), lr=1e-3, momentum=0.9),
                        optim.Adam(model.parameters()), optim.Adam(model.parameters(), amsgrad=True)):
                opt.step()
            model.eval()
            with no_grad():  # evaluation's kernels (max pooling without positions)
                model(x)
        extra = nn.Sequential(nn.AvgPool2d(2), nn.BatchNorm2d(1, dtype=dtype), nn.Dropout(0.5, rng=0))
        y = extra(x)
        extra.backward(np.ones_like(y))
    return time.perf_counter() - start
