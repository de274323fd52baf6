"""The plain-NumPy baseline against the textbook references, and smoke runs of the benchmark scripts."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import naive

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "scripts")
sys.path.insert(0, SCRIPTS)
import numpy_baseline as nb  # noqa: E402


def _configs(rng, count):
    """Random (N, C, H, W, F, kh, kw, sh, sw, ph, pw, dh, dw) with at least one output pixel."""
    out = []
    while len(out) < count:
        N, C, F = rng.integers(1, 4), rng.integers(1, 4), rng.integers(1, 4)
        H, W = rng.integers(1, 9), rng.integers(1, 9)
        kh, kw, sh, sw = rng.integers(1, 4, size=4)
        ph, pw = rng.integers(0, 3, size=2)
        dh, dw = rng.integers(1, 3, size=2)
        if naive.out_size(H, kh, sh, ph, dh) >= 1 and naive.out_size(W, kw, sw, pw, dw) >= 1:
            out.append(tuple(int(v) for v in (N, C, H, W, F, kh, kw, sh, sw, ph, pw, dh, dw)))
    return out


def test_im2col_col2im_match_naive(rng):
    for N, C, H, W, F, kh, kw, sh, sw, ph, pw, dh, dw in _configs(rng, 60):
        x = rng.standard_normal((N, C, H, W))
        cols, _ = nb.im2col(x, (kh, kw), (sh, sw), (ph, pw), (dh, dw))
        np.testing.assert_array_equal(cols, naive.im2col(x, kh, kw, sh, sw, ph, pw, dh, dw))
        g = rng.standard_normal(cols.shape)
        np.testing.assert_allclose(nb.col2im(g, x.shape, (kh, kw), (sh, sw), (ph, pw), (dh, dw)),
                                   naive.col2im(g, x.shape, kh, kw, sh, sw, ph, pw, dh, dw), rtol=1e-12, atol=1e-12)


def test_conv_forward_and_backward_match_naive(rng):
    for N, C, H, W, F, kh, kw, sh, sw, ph, pw, dh, dw in _configs(rng, 10):
        x = rng.standard_normal((N, C, H, W))
        weight, bias = rng.standard_normal((F, C, kh, kw)), rng.standard_normal(F)
        args = ((sh, sw), (ph, pw), (dh, dw))
        y, cols = nb.conv2d_forward(x, weight, bias, *args)
        np.testing.assert_allclose(y, naive.conv2d(x, weight, bias, sh, sw, ph, pw, dh, dw), rtol=1e-10, atol=1e-10)
        dy = rng.standard_normal(y.shape)
        dx, dweight, dbias = nb.conv2d_backward(dy, cols, weight, x.shape, *args)

        def loss():
            return float((naive.conv2d(x, weight, bias, sh, sw, ph, pw, dh, dw) * dy).sum())

        np.testing.assert_allclose(dx, naive.numerical_grad(loss, x), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(dweight, naive.numerical_grad(loss, weight), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(dbias, naive.numerical_grad(loss, bias), rtol=1e-6, atol=1e-6)
        assert nb.conv2d_backward(dy, cols, weight, x.shape, *args, input_grad=False)[0] is None


def _pool_configs(rng, count):
    out = []
    while len(out) < count:
        N, C, H, W = (int(v) for v in rng.integers(1, 4, size=2).tolist() + rng.integers(1, 9, size=2).tolist())
        kh, kw = (int(v) for v in rng.integers(1, 4, size=2))
        sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
        ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
        if naive.out_size(H, kh, sh, ph) >= 1 and naive.out_size(W, kw, sw, pw) >= 1:
            out.append((N, C, H, W, kh, kw, sh, sw, ph, pw))
    return out


def test_pooling_matches_naive(rng):
    for N, C, H, W, kh, kw, sh, sw, ph, pw in _pool_configs(rng, 60):
        # Few distinct values, so ties are common and the first-maximum rule is tested.
        x = rng.integers(-3, 3, size=(N, C, H, W)).astype(np.float64)
        k, s, p = (kh, kw), (sh, sw), (ph, pw)
        y, window_index = nb.max_pool2d_forward(x, k, s, p)
        y_ref, argmax_ref = naive.max_pool2d(x, kh, kw, sh, sw, ph, pw)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(nb.max_pool2d_argmax(window_index, x.shape, k, s, p), argmax_ref)
        dy = rng.standard_normal(y.shape)
        np.testing.assert_allclose(nb.max_pool2d_backward(dy, window_index, x.shape, k, s, p),
                                   naive.max_pool2d_backward(dy, argmax_ref, x.shape), atol=1e-12)
        x = rng.standard_normal((N, C, H, W))
        y = nb.avg_pool2d_forward(x, k, s, p)
        np.testing.assert_allclose(y, naive.avg_pool2d(x, kh, kw, sh, sw, ph, pw), atol=1e-12)
        np.testing.assert_allclose(nb.avg_pool2d_backward(dy, x.shape, k, s, p),
                                   naive.avg_pool2d_backward(dy, x.shape, kh, kw, sh, sw, ph, pw), atol=1e-12)


def test_lenet_training_step_gradients(rng):
    """Every parameter gradient of one LeNet-5 step (loss, backward) against central differences."""
    model = nb.lenet5(dtype=np.float64, rng=1)
    x = rng.standard_normal((2, 1, 28, 28))
    targets = np.array([3, 7])
    model.zero_grad()
    loss, dlogits = nb.cross_entropy(model(x), targets)
    model.backward(dlogits)

    def f():
        return nb.cross_entropy(model(x), targets)[0]

    for data, grad in model.params:
        # Spot-check a few entries of each parameter (full numerical gradients are slow).
        flat, gflat = data.reshape(-1), grad.reshape(-1)
        for k in rng.choice(flat.size, size=min(4, flat.size), replace=False):
            old = flat[k]
            flat[k] = old + 1e-6
            plus = f()
            flat[k] = old - 1e-6
            minus = f()
            flat[k] = old
            assert gflat[k] == pytest.approx((plus - minus) / 2e-6, rel=1e-4, abs=1e-7)


def test_sgd_momentum_follows_pytorch_rule():
    p, g = np.array([1.0]), np.array([0.5])
    opt = nb.SGD([[p, g]], lr=0.1, momentum=0.9)
    opt.step()  # buf = g
    assert p[0] == pytest.approx(1.0 - 0.05)
    opt.step()  # buf = 0.9 * 0.5 + 0.5
    assert p[0] == pytest.approx(0.95 - 0.1 * 0.95)


def test_training_lowers_the_loss():
    x, y, _ = nb.load_images(16)
    model = nb.lenet5(rng=0)
    opt = nb.SGD(model.params, lr=0.05, momentum=0.9)
    losses = [nb.train_step(model, opt, x, y) for _ in range(8)]
    assert all(b < a for a, b in zip(losses, losses[1:])), losses


def test_read_idx(tmp_path):
    data = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "a-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, 3]) + b"".join(int(d).to_bytes(4, "big") for d in data.shape)
                     + data.tobytes())
    np.testing.assert_array_equal(nb.read_idx(path), data)
    path.write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(ValueError, match="magic"):
        nb.read_idx(path)


# -- the benchmark scripts ---------------------------------------------------------------------------
def _run_script(*args):
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_flop_counts():
    import bench_kernels as bk

    one = 2 * 64 * 6 * 28 * 28 * 1 * 5 * 5
    assert bk.case_flops(bk.parse_case("conv:64,1,28,28->6,k=5,p=2")) == {"fwd": one, "bwd": 2 * one,
                                                                           "fwd+bwd": 3 * one}
    assert bk.case_flops(bk.parse_case("conv:64,1,28,28->6,k=5,p=2,nodx"))["fwd+bwd"] == 2 * one
    assert bk.case_flops(bk.parse_case("conv:32,32,32,32->64,k=3,s=2,p=1"))["fwd"] == 2 * 32 * 64 * 16 * 16 * 32 * 9
    assert bk.case_flops(bk.parse_case("conv:2,8,5,5->4,k=3,g=2"))["fwd"] == 2 * 2 * 4 * 3 * 3 * (8 // 2) * 9
    assert bk.case_flops(bk.parse_case("maxpool:64,6,28,28")) == {"fwd": 64 * 6 * 14 * 14 * 4, "bwd": 64 * 6 * 14 * 14,
                                                                  "fwd+bwd": 64 * 6 * 14 * 14 * 5}
    assert bk.case_flops(bk.parse_case("avgpool:64,6,28,28"))["bwd"] == 64 * 6 * 14 * 14 * 4


def test_parse_case_reads_every_option():
    import bench_kernels as bk

    c = bk.parse_case("conv:8,32,28,30->64,k=3x5,s=2,p=1x2,d=2,g=4,nobias,nodx")
    assert (c.kind, c.shape, c.out_channels) == ("conv", (8, 32, 28, 30), 64)
    assert (c.kernel, c.stride, c.padding, c.dilation, c.groups) == ((3, 5), (2, 2), (1, 2), (2, 2), 4)
    assert not c.bias and not c.input_grad
    assert c.output_shape() == (8, 64, 13, 13)  # (28 + 2 - 4 - 1) // 2 + 1, (30 + 4 - 8 - 1) // 2 + 1
    c = bk.parse_case("conv:1,3,8,8->5")
    assert (c.kernel, c.stride, c.padding, c.dilation, c.groups, c.bias, c.input_grad) == (
        (3, 3), (1, 1), (0, 0), (1, 1), 1, True, True)
    p = bk.parse_case("maxpool:2,3,7,7,k=3,s=2,p=1,ceil")
    assert (p.kernel, p.stride, p.padding, p.ceil_mode) == ((3, 3), (2, 2), (1, 1), True)
    assert p.output_shape() == (2, 3, 4, 4)  # as torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)
    p = bk.parse_case("avgpool:2,3,8,8,nopad")
    assert (p.kernel, p.stride, p.count_include_pad, p.output_shape()) == ((2, 2), (2, 2), False, (2, 3, 4, 4))


def test_ceil_mode_output_size_matches_pytorch():
    torch = pytest.importorskip("torch")
    import bench_kernels as bk

    for H in range(1, 12):
        for k in (1, 2, 3):
            for s in (1, 2, 3):
                for p in range(k // 2 + 1):
                    want = torch.nn.MaxPool2d(k, s, p, ceil_mode=True)(torch.zeros(1, 1, H, H)).shape[-1] \
                        if bk.out_size(H, k, s, p) >= 1 else None
                    if want is not None:
                        assert bk.out_size(H, k, s, p, ceil=True) == want, (H, k, s, p)


@pytest.mark.parametrize("spec, message", [
    ("conv2d:1,1,4,4->2", "must start with conv:, maxpool: or avgpool:"),
    ("conv:1,1,4,4", "needs '->F'"),
    ("conv:1,1,4->2", "N,C,H,W \\(4 integers\\)"),
    ("conv:1,1,4,x->2", "N,C,H,W \\(4 integers\\)"),
    ("conv:0,1,4,4->2", "must be >= 1"),
    ("conv:1,1,4,4->0", "F \\(the output channels"),
    ("conv:1,1,4,4->2,k=", "k= must be an integer or HxW"),
    ("conv:1,1,4,4->2,k=3y3", "k= must be an integer or HxW"),
    ("conv:1,1,4,4->2,q=1", "unknown option 'q='"),
    ("conv:1,1,4,4->2,ceil", "unknown flag 'ceil' for conv"),
    ("conv:1,1,4,4->2,k=3,k=3", "given twice"),
    ("conv:1,1,4,4->2,,k=3", "empty option"),
    ("conv:1,1,4,4->2,s=0", "s= must be >= 1"),
    ("conv:1,3,4,4->2,g=2", "groups g=2 must divide both C=3 and F=2"),
    ("conv:1,1,4,4->2,g=2x2", "g= must be an integer, got"),
    ("conv:1,1,4,4->2,k=5", "the output would be empty"),
    ("maxpool:1,1,4,4,k=2,p=2", "at most half the kernel"),
    ("maxpool:1,1,4,4,g=2", "unknown option 'g='"),
    ("avgpool:1,1,4,4,d=2", "unknown option 'd='"),
    ("avgpool:1,1,4,4,nodx", "unknown flag 'nodx' for avgpool"),
])
def test_parse_case_errors_say_what_is_wrong(spec, message):
    import bench_kernels as bk

    with pytest.raises(ValueError, match=message) as info:
        bk.parse_case(spec)
    assert str(info.value).startswith(f"--case {spec!r}: ")


def test_bench_kernels_quick(tmp_path):
    import bench_kernels as bk

    out = tmp_path / "kernels.json"
    stdout = _run_script(os.path.join(SCRIPTS, "bench_kernels.py"), "--quick", "--json", str(out))
    assert "| case" in stdout and "### Targets" in stdout and "Fastest convolution algorithm" in stdout
    res = json.loads(out.read_text())
    # The reduced set: one default case of each kind (two convolutions, max and average pooling), batch 2,
    # 2 timed rounds, no warm-up round, no cold start unless asked.
    assert [e["case"] for e in res["results"]] == bk.QUICK_CASES
    assert set(bk.QUICK_CASES) < {name for name, _, _ in bk.DEFAULT_CASES}
    assert {e["spec"]["kind"] for e in res["results"]} == {"conv", "maxpool", "avgpool"}
    assert {e["target"] for e in res["results"]} == {"lenet", "large", "pool"}
    assert all(e["shape"][0] == 2 for e in res["results"])
    assert res["rounds"] == 2 and res["warmup"] == 0 and res["startup"] is None
    assert "--quick: 4 of the 11 default cases at batch 2" in stdout
    algorithms = bk.conv_algorithms(minicnn_module())
    for entry in res["results"]:
        assert "numpy" in entry["contenders"] and "minicnn" in entry["contenders"]
        if torch_installed():
            assert "pytorch" in entry["contenders"]
        for passes in entry["contenders"].values():
            assert all(st["n"] == 2 for st in passes.values())
        if entry["spec"]["kind"] == "conv":
            assert {"im2col", "tiled"} <= set(entry["contenders"]) and entry["fastest_algorithm"]
            # every algorithm ran, or is left out with its reason (direct: stride 1 only)
            assert set(algorithms) <= set(entry["contenders"]) | set(entry["skipped"])
        for name, passes in entry["contenders"].items():
            for st in passes.values():
                assert st["median_ms"] > 0 and st["gflops"] > 0 and st["iqr_ms"] >= 0
        # Every contender computed the same y and dx as the baseline (float32 rounding only).
        for name, diff in entry["max_rel_diff"].items():
            assert diff < 1e-4, (entry["case"], name, diff)
    assert all(t["status"] in ("PASS", "FAIL", "SKIP") for t in res["targets"])


def minicnn_module():
    import minicnn

    return minicnn


def torch_installed():
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def test_bench_kernels_quick_writes_nothing_without_json(tmp_path):
    import bench_kernels as bk

    proc = subprocess.run([sys.executable, os.path.join(SCRIPTS, "bench_kernels.py"), "--quick"],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(tmp_path.iterdir()) == [] and "Results written" not in proc.stdout
    rows = {line.split("|")[1].strip() for line in proc.stdout.splitlines() if line.startswith("| ")}
    assert set(bk.QUICK_CASES) <= rows  # the reduced set, and only it
    assert not ({name for name, _, _ in bk.DEFAULT_CASES} - set(bk.QUICK_CASES)) & rows


def test_bench_kernels_custom_case_writes_nothing_without_json(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(SCRIPTS, "bench_kernels.py"), "--quick", "--case",
                           "conv:2,4,9,9->6,k=3,s=2,p=1,nobias", "--case", "maxpool:2,3,9,9,k=3,s=2,p=1"],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "conv:2,4,9,9->6,k=3,s=2,p=1,nobias" in proc.stdout and "maxpool:2,3,9,9" in proc.stdout
    assert "minicnn direct left out" in proc.stdout  # stride 2: the direct algorithm says why not
    assert list(tmp_path.iterdir()) == []
    bad = subprocess.run([sys.executable, os.path.join(SCRIPTS, "bench_kernels.py"), "--case", "conv:1,1,4,4"],
                         capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert bad.returncode == 2 and "needs '->F'" in bad.stderr


def test_bench_training_quick(tmp_path):
    out = tmp_path / "bench.json"
    stdout = _run_script(os.path.join(SCRIPTS, "bench.py"), "--quick", "--no-subprocess", "--json", str(out))
    assert not os.path.exists(os.path.join(ROOT, "bench-results.json"))
    assert "### Training throughput" in stdout and "### Targets" in stdout
    res = json.loads(out.read_text())
    for batch in ("64", "256"):
        assert all(r["median"] > 0 for r in res["train"][batch].values())
        # Same start weights and same batches: every contender reaches the same loss.
        losses = list(res["train_last_loss"][batch].values())
        assert max(losses) - min(losses) < 1e-3, res["train_last_loss"]
    assert all(d < 1e-4 for d in res["eval_max_rel_diff"].values()), res["eval_max_rel_diff"]
    assert len(res["profile"]["layers"]) == 12 and res["profile"]["step_ms"] > 0
    assert "| LeNet5.0" in stdout  # the profiler's table


def test_memory_child_reports_peak_rss():
    stdout = _run_script(os.path.join(SCRIPTS, "bench.py"), "--child-memory", "numpy", "--batch", "8",
                         "--batches", "2", "--threads", "1")
    res = json.loads(stdout.strip().splitlines()[-1])
    assert 0 < res["setup_rss_mib"] <= res["peak_rss_mib"] < 4096


def test_blas_libraries_are_told_apart_by_path():
    import scipy.linalg.cython_blas  # noqa: F401  (loads scipy's BLAS)

    import bench_common as bc
    import minicnn

    libs = [lib for lib in bc.blas_libraries() if lib["user_api"] == "blas"]
    owners = [lib["owner"] for lib in libs]
    if len(libs) < 2:
        pytest.skip("NumPy and scipy share one BLAS here")
    assert "numpy" in owners and "scipy" in owners, libs
    settings = bc.ThreadSettings(1, minicnn)
    threads = {lib["owner"]: lib["threads"] for lib in bc.blas_libraries() if lib["user_api"] == "blas"}
    assert threads["scipy"] == 1 and threads["numpy"] == 1  # each set in its own library
    assert settings.describe()["pytorch"] is None
