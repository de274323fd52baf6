"""minicnn.summary: output shapes, parameter counts and torchinfo-convention multiply-adds per module."""
import numpy as np
import pytest

import minicnn
from minicnn import nn


def test_lenet5_summary_rows_and_totals(capsys):
    model = minicnn.models.LeNet5(rng=0)
    model.train()
    bn_free_state = model.state_dict()
    s = minicnn.summary(model, (2, 1, 28, 28))
    table = capsys.readouterr().out
    assert s.rows[0].type == "LeNet5" and s.rows[0].depth == 0 and s.rows[0].output_shape == (2, 10)
    leaves = s.rows[1:]
    assert [r.type for r in leaves] == ["Conv2d", "MaxPool2d", "ReLU", "Conv2d", "MaxPool2d", "ReLU", "Flatten",
                                        "Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert [r.output_shape for r in leaves][:4] == [(2, 6, 28, 28), (2, 6, 14, 14), (2, 6, 14, 14), (2, 16, 10, 10)]
    assert [r.index for r in leaves] == list(range(1, 13)) and all(r.depth == 1 for r in leaves)
    assert [r.num_params for r in leaves if r.num_params] == [156, 2416, 48120, 10164, 850]
    assert s.total_params == s.trainable_params == 61706
    # torchinfo's rule: conv (weight+bias) * N * OH * OW, linear N * params
    expected = [156 * 2 * 28 * 28, 2416 * 2 * 10 * 10, 48120 * 2, 10164 * 2, 850 * 2]
    assert [r.mult_adds for r in leaves if r.mult_adds] == expected
    assert s.total_mult_adds == sum(expected)
    assert "Total params: 61,706" in table and "├─Conv2d: 1-1" in table and "└─Linear: 1-12" in table
    assert "Total mult-adds (M): 0.85" in table
    assert str(s) in table
    assert model.training  # mode restored
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, bn_free_state[k])


def test_nested_containers_frozen_and_shared_modules():
    shared = nn.Linear(4, 4, rng=0)
    inner = nn.Sequential(shared, nn.ReLU())
    model = nn.Sequential(nn.Flatten(), nn.Residual(inner), shared, nn.BatchNorm2d(1) if False else nn.ReLU())
    shared.bias.requires_grad = False
    s = minicnn.summary(model, (3, 2, 2), verbose=False)
    assert [(r.type, r.depth, r.index) for r in s.rows] == [
        ("Sequential", 0, 1), ("Flatten", 1, 1), ("Residual", 1, 2), ("Sequential", 2, 1), ("Linear", 3, 1),
        ("ReLU", 3, 2), ("Linear", 1, 3), ("ReLU", 1, 4)]
    assert s.total_params == 20 and s.trainable_params == 16 and s.non_trainable_params == 4
    assert s.rows[4].trainable_params == 16 and s.rows[4].mult_adds == 3 * 20
    assert s.total_mult_adds == 2 * 3 * 20  # the shared layer runs twice
    assert s.rows[2].output_shape == (3, 4)
    text = str(s)
    assert "│    │    ├─Linear: 3-1" in text and "│    │    └─ReLU: 3-2" in text


def test_bn_running_stats_untouched_and_dtype_from_parameters():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, dtype=np.float64, rng=0), nn.BatchNorm2d(2, dtype=np.float64))
    s = minicnn.summary(model, (1, 1, 5, 5), verbose=False)
    assert s.input_bytes == 25 * 8
    assert model[1].num_batches_tracked == 0
    assert s.rows[2].mult_adds == 4  # N * (weight + bias) of BatchNorm2d, as torchinfo


def test_bad_arguments():
    with pytest.raises(TypeError, match="model must be a minicnn.nn.Module"):
        minicnn.summary(lambda x: x, (1, 2))
    with pytest.raises(ValueError, match="input_shape must be a non-empty tuple of positive ints"):
        minicnn.summary(nn.ReLU(), (1, 0))
    with pytest.raises(TypeError, match="dtype"):
        minicnn.summary(nn.ReLU(), (1, 2), dtype=np.int8)
