import numpy as np

import minicnn


def test_warmup_runs_every_layer_and_optimizer_for_each_dtype():
    seconds = minicnn.warmup((np.float32, np.float64))
    assert isinstance(seconds, float) and seconds > 0
