"""minicnn.save / minicnn.load: exact round trips, no pickle, atomic writes, damaged files, and
training resumed from a checkpoint continuing exactly as an uninterrupted run."""
import math
import os
import pathlib
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import minicnn
from minicnn import serialization
from minicnn.nn import Parameter
from minicnn.nn.module import Module
from minicnn.optim import SGD, Adam, CosineAnnealingLR, OneCycleLR


def assert_identical(a, b, where="obj"):
    """Same types (exactly), same values (arrays: dtype, shape and bytes; floats: bit for bit)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert a.tobytes() == b.tobytes(), where
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), where
    elif isinstance(a, float):
        assert (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b)), where
    elif isinstance(a, dict):
        assert list(a.keys()) == list(b.keys()), where
        assert all(type(k) is type(kb) for k, kb in zip(a, b)), where
        for k in a:
            assert_identical(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def everything(rng):
    return {
        "float32": rng.standard_normal((2, 3, 4, 5)).astype(np.float32),
        "float64 0-d": np.array(3.25),
        "empty": np.zeros((0, 7), np.int16),
        "fortran": np.asfortranarray(rng.standard_normal((3, 4))),
        "dtypes": [np.arange(4).astype(d) for d in (np.uint8, np.int32, np.int64, np.float16, np.bool_,
                                                    np.complex64)] + [np.array(["ab", "c"]), np.array([b"x"])],
        "scalars": (np.float32(1.5), np.int64(-7), np.bool_(True), np.float64("nan")),
        "ints": [0, -1, 2 ** 63 - 1, 2 ** 63, -2 ** 63, -2 ** 63 - 1, 2 ** 128 + 12345, -(3 ** 200)],
        "floats": [0.1, -0.0, 1e-310, float("inf"), float("-inf"), float("nan"), 1.7976931348623157e308],
        "misc": [True, False, None, "", "ünïcödé \u2603", "with \"quotes\" and \n"],
        3: {7: "int keys stay ints", "7": "string keys stay strings"},
        "tuples": ((), (1,), ((2, 3), [4, (5,)])),
        "ordered": OrderedDict([("b", 1), ("a", np.ones(2))]),
        "nested empty": [[], {}, OrderedDict(), ()],
        "same array twice": [np.arange(3)] * 2,
    }


def test_round_trip_is_exact(tmp_path, rng):
    obj = everything(rng)
    path = tmp_path / "checkpoint.npz"
    minicnn.save(obj, path)
    back = minicnn.load(path)
    assert_identical(obj, back)
    assert back["fortran"].flags.writeable and back["float32"].flags.writeable
    # also readable as a plain .npz without pickle
    with np.load(path, allow_pickle=False) as npz:
        for name in npz.files:
            npz[name]


@pytest.mark.parametrize("obj", [None, 5, 2 ** 200, -0.0, "x", [], {}, (), np.float32(2), np.arange(3)])
def test_top_level_objects(tmp_path, obj):
    minicnn.save(obj, str(tmp_path / "x"))
    assert_identical(obj, minicnn.load(str(tmp_path / "x")))


def test_path_is_used_as_given(tmp_path):
    minicnn.save({"a": 1}, tmp_path / "ckpt")
    minicnn.save({"a": 2}, os.fspath(tmp_path / "ckpt.npz"))
    assert sorted(os.listdir(tmp_path)) == ["ckpt", "ckpt.npz"]
    assert minicnn.load(tmp_path / "ckpt") == {"a": 1}
    minicnn.save({"a": 3}, tmp_path / "ckpt")  # overwrite
    assert minicnn.load(tmp_path / "ckpt") == {"a": 3}


def test_generator_state_round_trip(tmp_path):
    gen = np.random.default_rng(2024)
    gen.standard_normal(17)
    minicnn.save({"rng": gen.bit_generator.state}, tmp_path / "r.npz")
    expected = gen.standard_normal(5)
    restored = np.random.default_rng()
    restored.bit_generator.state = minicnn.load(tmp_path / "r.npz")["rng"]
    np.testing.assert_array_equal(restored.standard_normal(5), expected)


class Tiny(Module):
    def __init__(self, rng):
        super().__init__()
        self.weight = Parameter(rng.standard_normal((3, 4)).astype(np.float32))
        self.bias = Parameter(np.zeros(3, np.float32))
        self.register_buffer("running_mean", np.arange(3, dtype=np.float32))

    def forward(self, x):
        return x @ self.weight.data.T + self.bias.data


def test_module_and_optimizer_state_dicts(tmp_path, rng):
    model = Tiny(rng)
    opt = Adam(model.parameters(), lr=0.01, amsgrad=True)
    for p in model.parameters():
        p.grad[...] = 1.0
    opt.step()
    ckpt = {"model": model.state_dict(), "optimizer": opt.state_dict()}
    minicnn.save(ckpt, tmp_path / "c.npz")
    back = minicnn.load(tmp_path / "c.npz")
    assert_identical(ckpt, back)
    assert list(back["optimizer"]["state"]) == [0, 1]
    model2 = Tiny(np.random.default_rng(99))
    model2.load_state_dict(back["model"])
    opt2 = Adam(model2.parameters(), lr=0.5)
    opt2.load_state_dict(back["optimizer"])
    np.testing.assert_array_equal(model2.weight.data, model.weight.data)
    assert opt2.param_groups[0]["lr"] == 0.01 and opt2.param_groups[0]["betas"] == (0.9, 0.999)


@pytest.mark.parametrize("opt_kind", ["sgd", "adam"])
def test_training_resumed_from_checkpoint_continues_identically(tmp_path, rng, opt_kind):
    """Quadratic loss on bare Parameters; 30 steps straight vs 12 + save/load + 18."""
    target = rng.standard_normal((4, 3)).astype(np.float32)
    start = [rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)]

    def build():
        params = [Parameter(a) for a in start]
        if opt_kind == "sgd":
            opt = SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
            sched = OneCycleLR(opt, max_lr=0.2, total_steps=30)
        else:
            opt = Adam(params, lr=0.05, amsgrad=True)
            sched = CosineAnnealingLR(opt, T_max=10, eta_min=1e-3)
        return params, opt, sched

    def train(params, opt, sched, steps, noise):
        for _ in range(steps):
            w, b = params
            w.grad[...] = (w.data - target) + noise.standard_normal(w.shape).astype(np.float32) * 0.1
            b.grad[...] = b.data * 0.5
            opt.step()
            sched.step()

    params, opt, sched = build()
    train(params, opt, sched, 30, np.random.default_rng(7))
    expected = [p.data.copy() for p in params]

    params, opt, sched = build()
    noise = np.random.default_rng(7)
    train(params, opt, sched, 12, noise)
    minicnn.save({"params": [p.data for p in params], "optimizer": opt.state_dict(),
                  "scheduler": sched.state_dict(), "rng": noise.bit_generator.state, "step": 12},
                 tmp_path / "checkpoint.npz")
    del params, opt, sched, noise

    ckpt = minicnn.load(tmp_path / "checkpoint.npz")
    params, opt, sched = build()
    for p, a in zip(params, ckpt["params"]):
        p.data[...] = a
    opt.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["scheduler"])
    noise = np.random.default_rng()
    noise.bit_generator.state = ckpt["rng"]
    train(params, opt, sched, 30 - ckpt["step"], noise)
    for p, e in zip(params, expected):
        np.testing.assert_array_equal(p.data, e)


# -- unsupported objects and atomic writes ---------------------------------------------------------
@pytest.mark.parametrize("obj, where", [
    ({"a": [1, {"b": {1, 2}}]}, r"obj\['a'\]\[1\]\['b'\]"),
    ({"model": {"w": np.array([object()], dtype=object)}}, r"obj\['model'\]\['w'\]"),
    ([1, 2, b"bytes"], r"obj\[2\]"),
    ({(1, 2): 3}, "dict keys must be str or int"),
    ({True: 3}, "dict keys must be str or int"),
    ({"m": np.ma.array([1, 2])}, r"obj\['m'\]"),
    ({"f": lambda: 0}, r"obj\['f'\]"),
])
def test_unsupported_objects_raise_type_error(tmp_path, obj, where):
    with pytest.raises(TypeError, match=where):
        minicnn.save(obj, tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []


def test_circular_reference(tmp_path):
    loop = []
    loop.append(loop)
    with pytest.raises(ValueError, match="circular"):
        minicnn.save({"x": loop}, tmp_path / "x.npz")


def test_failed_save_leaves_existing_file_and_no_temp(tmp_path, rng, monkeypatch):
    path = tmp_path / "checkpoint.npz"
    minicnn.save({"epoch": 1, "w": np.ones(3)}, path)
    original = path.read_bytes()
    # an unsupported object deep in the tree
    with pytest.raises(TypeError):
        minicnn.save({"epoch": 2, "w": rng.standard_normal(1000), "deep": [{"x": [object()]}]}, path)
    assert path.read_bytes() == original and os.listdir(tmp_path) == ["checkpoint.npz"]

    # a failure in the middle of writing the archive (after some arrays are written)
    real_write = np.lib.format.write_array
    calls = []

    def failing_write(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full (simulated)")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing_write)
    with pytest.raises(OSError, match="simulated"):
        minicnn.save({"epoch": 2, "a": rng.standard_normal(100000), "b": np.ones(5), "c": np.ones(5)}, path)
    monkeypatch.undo()
    assert len(calls) == 3
    assert path.read_bytes() == original and os.listdir(tmp_path) == ["checkpoint.npz"]

    # a failure at fsync, after everything is written
    def failing_fsync(fd):
        raise OSError("fsync failed (simulated)")

    monkeypatch.setattr(serialization.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="simulated"):
        minicnn.save({"epoch": 3}, path)
    monkeypatch.undo()
    assert path.read_bytes() == original and os.listdir(tmp_path) == ["checkpoint.npz"]
    assert_identical(minicnn.load(path), {"epoch": 1, "w": np.ones(3)})


def test_save_into_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        minicnn.save({"a": 1}, tmp_path / "nope" / "x.npz")


# -- damaged and foreign files ------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        minicnn.load(tmp_path / "absent.npz")


@pytest.fixture
def saved(tmp_path, rng):
    obj = {"w": rng.standard_normal((8, 5)).astype(np.float32), "b": np.arange(4.0), "epoch": 3,
           "opt": {"state": {0: {"step": 2}}, "lr": (0.1, 0.2)}}
    path = tmp_path / "good.npz"
    minicnn.save(obj, path)
    return obj, path, path.read_bytes()


def check_damaged(path, data, obj):
    """Either a ValueError naming the file, or (damage in bytes nobody reads) an identical object."""
    path.write_bytes(data)
    try:
        back = minicnn.load(path)
    except ValueError as exc:
        assert str(path) in str(exc)
        return "error"
    assert_identical(obj, back)
    return "same"


def test_truncated_files(saved, tmp_path):
    obj, _, data = saved
    bad = tmp_path / "bad.npz"
    outcomes = {check_damaged(bad, data[:n], obj) for n in range(0, len(data), 7)}
    assert outcomes == {"error"}


def test_byte_flips_are_caught_or_harmless(saved, tmp_path):
    obj, _, data = saved
    bad = tmp_path / "bad.npz"
    outcomes = []
    for i in range(0, len(data), 3):  # every third byte of the ~1 kB file (each load takes ~ms)
        flipped = bytearray(data)
        flipped[i] ^= 0x5A
        outcomes.append(check_damaged(bad, bytes(flipped), obj))
    # bytes in the array data and the structure are protected by the archive's CRC-32
    assert outcomes.count("error") > len(outcomes) // 2


@pytest.mark.parametrize("content", [b"", b"garbage" * 50, b"PK\x03\x04" + b"\x00" * 100,
                                     b"\x80\x04\x95" + b"pickle-ish" * 10])
def test_garbage_files(tmp_path, content):
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="x.npz"):
        minicnn.load(path)


def test_foreign_npy_and_npz_files(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(3))
    with pytest.raises(ValueError, match="single .npy array"):
        minicnn.load(tmp_path / "a.npy")
    np.savez(tmp_path / "b.npz", x=np.arange(3))
    with pytest.raises(ValueError, match="not written by minicnn.save"):
        minicnn.load(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", __minicnn__=np.frombuffer(b'{"format": "other"}', np.uint8))
    with pytest.raises(ValueError, match="not a minicnn structure"):
        minicnn.load(tmp_path / "c.npz")


@pytest.mark.parametrize("header, message", [
    (b'{"format": "minicnn", "version": 99, "tree": null}', "version 99"),
    (b'{"format": "minicnn", "version": 1, "tree": {"array": "a7"}}', "missing or repeated array"),
    (b'{"format": "minicnn", "version": 1, "tree": [{"array": "a0"}, {"array": "a0"}]}', "repeated"),
    (b'{"format": "minicnn", "version": 1, "tree": {"bogus": 1}}', "unknown node"),
    (b'{"format": "minicnn", "version": 1, "tree": {"dict": [[[1], 2]]}}', "neither str nor int"),
    (b'{"format": "minicnn", "version": 1, "tree": {"scalar": "a0"}}', "shape"),
    (b'{"format": "minicnn", "version": 1, "tree": ', "corrupt"),
    (b'\xff\xfe', "corrupt"),
])
def test_malformed_structure(tmp_path, header, message):
    path = tmp_path / "m.npz"
    np.savez(path, __minicnn__=np.frombuffer(header, np.uint8), a0=np.arange(3))
    with pytest.raises(ValueError, match=message):
        minicnn.load(path)


def test_no_pickle_in_the_file(saved):
    _, path, data = saved
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        assert names == ["__minicnn__.npy", "a0.npy", "a1.npy"]
    with np.load(path, allow_pickle=False) as npz:
        assert npz["a0"].dtype == np.float32
    assert isinstance(pathlib.Path(path), os.PathLike)


def test_every_optimizer_and_scheduler_state_dict_round_trips(tmp_path, rng):
    from minicnn.optim import AdamW, MultiStepLR, StepLR

    params = [Parameter(rng.standard_normal((3, 2)).astype(np.float32)), Parameter(np.zeros((), np.float64))]
    makers = [(lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda o: StepLR(o, 2)),
              (lambda ps: Adam(ps, amsgrad=True), lambda o: MultiStepLR(o, [1, 3, 3])),
              (lambda ps: AdamW(ps), lambda o: CosineAnnealingLR(o, 5)),
              (lambda ps: SGD(ps, lr=0.1, momentum=0.5), lambda o: OneCycleLR(o, 1.0, total_steps=9, three_phase=True)),
              (lambda ps: Adam(ps), lambda o: OneCycleLR(o, [0.01], epochs=3, steps_per_epoch=3))]
    for make_opt, make_sched in makers:
        opt = make_opt(params)
        sched = make_sched(opt)
        for _ in range(3):
            for p in params:
                p.grad[...] = rng.standard_normal(p.shape)
            opt.step()
            sched.step()
        state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}
        minicnn.save(state, tmp_path / "s.npz")
        back = minicnn.load(tmp_path / "s.npz")
        assert_identical(state, back)
        opt.load_state_dict(back["optimizer"])
        sched.load_state_dict(back["scheduler"])
        assert_identical(opt.state_dict(), state["optimizer"])
        assert_identical(sched.state_dict(), state["scheduler"])
