"""ModuleList, ModuleDict, Sequential slicing, and the branching containers Residual, Concat, Parallel
(with Add and Multiply): gradcheck in float64, a ResNet basic block, an Inception-style block and
squeeze-and-excitation end to end, against PyTorch when installed; bad input names the argument."""
import numpy as np
import pytest

import minicnn
from minicnn import nn

F64 = np.float64


class Ident(nn.Module):
    """The identity (returns its input itself, which the containers must never write into)."""

    def forward(self, x):
        return x

    def backward(self, dy):
        return dy


class Sig(nn.Module):
    def forward(self, x):
        y = 1.0 / (1.0 + np.exp(-x))
        self._save_ctx(y)
        return y

    def backward(self, dy):
        y = self._pop_ctx()
        return dy * y * (1 - y)


def conv(cin, cout, k, seed, **kw):
    return nn.Conv2d(cin, cout, k, dtype=F64, rng=np.random.default_rng(seed), **kw)


def basic_block(c, seed=0):
    body = nn.Sequential(conv(c, c, 3, seed, padding=1, bias=False), nn.BatchNorm2d(c, dtype=F64), nn.ReLU(),
                         conv(c, c, 3, seed + 1, padding=1, bias=False), nn.BatchNorm2d(c, dtype=F64))
    return nn.Sequential(nn.Residual(body), nn.ReLU())


def downsample_block(cin, cout, seed=0):
    body = nn.Sequential(conv(cin, cout, 3, seed, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout, dtype=F64),
                         nn.ReLU(), conv(cout, cout, 3, seed + 1, padding=1, bias=False),
                         nn.BatchNorm2d(cout, dtype=F64))
    shortcut = nn.Sequential(conv(cin, cout, 1, seed + 2, stride=2, bias=False), nn.BatchNorm2d(cout, dtype=F64))
    return nn.Sequential(nn.Residual(body, shortcut), nn.ReLU())


def inception_block(cin, seed=0):
    return nn.Concat(
        conv(cin, 2, 1, seed),
        nn.Sequential(conv(cin, 2, 1, seed + 1), nn.ReLU(), conv(2, 3, 3, seed + 2, padding=1)),
        nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), conv(cin, 2, 1, seed + 3)),
        dim=1)


def se_block(c, hw, seed=0):
    excite = nn.Sequential(nn.AvgPool2d(hw), conv(c, 2, 1, seed), nn.ReLU(), conv(2, c, 1, seed + 1), Sig())
    return nn.Parallel(Ident(), excite, merge=nn.Multiply())


def x4(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# -- gradcheck ------------------------------------------------------------------------------------------
def test_residual_identity_and_module_shortcut_gradcheck():
    minicnn.gradcheck(nn.Residual(Sig()), x4((2, 3)))
    minicnn.gradcheck(nn.Residual(Sig(), shortcut=Sig()), x4((2, 3)))


def test_resnet_basic_block_gradcheck():
    minicnn.gradcheck(basic_block(3), x4((2, 3, 5, 5)))


def test_resnet_downsample_block_gradcheck():
    minicnn.gradcheck(downsample_block(2, 3), x4((2, 2, 6, 6)), samples=40)


def test_inception_block_gradcheck():
    block = inception_block(3)
    y = block(x4((2, 3, 5, 5)))
    assert y.shape == (2, 7, 5, 5)
    minicnn.gradcheck(block, x4((2, 3, 5, 5), 1))


def test_concat_with_identity_branch_and_other_dims():
    minicnn.gradcheck(nn.Concat(Ident(), Sig()), x4((2, 3, 4)))
    minicnn.gradcheck(nn.Concat(Sig(), Ident(), Sig(), dim=-1), x4((2, 3)))


def test_squeeze_excitation_gradcheck():
    block = se_block(3, 4)
    assert block(x4((2, 3, 4, 4))).shape == (2, 3, 4, 4)
    minicnn.gradcheck(block, x4((2, 3, 4, 4)))


def test_merges_gradcheck_with_broadcasting():
    minicnn.gradcheck(nn.Multiply(), (x4((2, 3, 4)), x4((2, 3, 1), 1), x4((4,), 2)))
    minicnn.gradcheck(nn.Add(), (x4((2, 3)), x4((1, 3), 1)))
    minicnn.gradcheck(nn.Parallel(Sig(), Ident(), Sig(), merge=nn.Add()), x4((2, 3)))


def test_shared_module_in_two_branches_gradcheck():
    shared = conv(2, 2, 1, 0)
    # Conv2d keeps one saved input until it moves to _save_ctx; Sig keeps a stack already
    s = Sig()
    minicnn.gradcheck(nn.Concat(s, nn.Sequential(Ident(), s)), x4((2, 2, 3, 3)))
    minicnn.gradcheck(nn.Residual(nn.Sequential(s, s)), x4((2, 3)))
    minicnn.gradcheck(nn.Parallel(s, s, merge=nn.Multiply()), x4((2, 3)))
    del shared


def test_containers_never_write_into_the_input_or_dy():
    x = x4((2, 3))
    x0 = x.copy()
    dy = x4((2, 3), 1)
    dy0 = dy.copy()
    for m in (nn.Residual(Ident()), nn.Residual(Ident(), Ident()), nn.Concat(Ident(), Ident(), Ident(), dim=0),
              nn.Parallel(Ident(), Ident(), Ident(), merge=nn.Add())):
        y = m(x)
        m.backward(dy if y.shape == dy.shape else np.concatenate([dy] * 3))
        np.testing.assert_array_equal(x, x0)
        np.testing.assert_array_equal(dy, dy0)
    np.testing.assert_array_equal(nn.Residual(Ident())(x), 2 * x)


def test_large_residual_add_uses_the_parallel_kernel_and_is_exact():
    x = np.random.default_rng(0).standard_normal((4, 8, 64, 64)).astype(np.float32)
    m = nn.Residual(Ident())
    np.testing.assert_array_equal(m(x), x + x)
    np.testing.assert_array_equal(m.backward(x), x + x)


# -- ModuleList / ModuleDict / Sequential ------------------------------------------------------------------
def test_module_list_api():
    a, b, c = Sig(), Ident(), nn.Linear(2, 3)
    ml = nn.ModuleList([a, b])
    ml.append(c)
    assert len(ml) == 3 and list(ml) == [a, b, c] and ml[-1] is c
    assert isinstance(ml[1:], nn.ModuleList) and list(ml[1:]) == [b, c]
    ml.insert(0, c)
    assert list(ml) == [c, a, b, c]
    assert len(ml.parameters()) == 2  # shared c counted once
    assert list(ml.state_dict()) == ["0.weight", "0.bias"]
    del ml[0]
    assert list(ml) == [a, b, c]
    assert list(ml.state_dict()) == ["2.weight", "2.bias"]
    ml[0] = b
    assert list(ml) == [b, b, c]
    ml += [a]
    ml.extend(nn.Sequential(a))
    assert list(ml) == [b, b, c, a, a]
    assert ml.pop() is a and len(ml) == 4
    with pytest.raises(IndexError, match="out of range"):
        ml[9]
    with pytest.raises(TypeError, match="ModuleList takes Modules"):
        ml.append(3)
    with pytest.raises(TypeError, match="iterable of Modules"):
        ml.extend(Sig())
    assert "ModuleList" in repr(ml)


def test_module_list_in_a_user_model_is_trained():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(3, 3, dtype=F64, rng=i) for i in range(3)])

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

        def backward(self, dy):
            for layer in reversed(list(self.layers)):
                dy = layer.backward(dy)
            return dy

    net = Net()
    assert [n for n, _ in net.named_parameters()] == [f"layers.{i}.{w}" for i in range(3) for w in ("weight", "bias")]
    minicnn.gradcheck(net, x4((2, 3)))


def test_module_dict_api():
    a, b = Sig(), nn.Linear(2, 2)
    md = nn.ModuleDict({"act": a})
    md["fc"] = b
    md.update([("other", Ident())])
    assert md.keys() == ["act", "fc", "other"] and md.values() == [a, b, md["other"]]
    assert md.items()[1] == ("fc", b) and list(md) == md.keys() and "fc" in md and "zz" not in md
    assert list(md.state_dict()) == ["fc.weight", "fc.bias"]
    assert md.pop("act") is a and len(md) == 2
    with pytest.raises(KeyError):
        md["act"]
    for bad in ("train", "a.b", "", "_x"):
        with pytest.raises(ValueError, match="ModuleDict key"):
            md[bad] = a
    with pytest.raises(TypeError, match="keys must be strings"):
        md[3] = a
    md.clear()
    assert len(md) == 0


def test_sequential_slicing_gives_a_sequential():
    s = nn.Sequential(Sig(), Ident(), nn.Linear(3, 2))
    head = s[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is s[0]
    assert isinstance(s[-1], nn.Linear)
    assert head(np.zeros((1, 3))).shape == (1, 3)


# -- bad input ------------------------------------------------------------------------------------------
def test_bad_input_names_the_argument():
    with pytest.raises(TypeError, match="body"):
        nn.Residual(3)
    with pytest.raises(ValueError, match="Residual.*shape"):
        nn.Residual(nn.Linear(3, 2))(np.zeros((1, 3), np.float32))
    with pytest.raises(TypeError, match="dim must be an int"):
        nn.Concat(Ident(), dim=1.5)
    with pytest.raises(ValueError, match="dim=3 is out of range"):
        nn.Concat(Ident(), dim=3)(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="branch 1's output has shape"):
        nn.Concat(Ident(), nn.Linear(3, 2), dim=0)(np.zeros((1, 3), np.float32))
    with pytest.raises(TypeError, match="merge"):
        nn.Parallel(Ident(), merge=np.add)
    with pytest.raises(ValueError, match="do not broadcast"):
        nn.Multiply()(np.zeros(2), np.zeros(3))
    class First(nn.Module):
        def forward(self, a, b):
            return a

        def backward(self, dy):
            return dy  # one gradient, two inputs

    with pytest.raises(ValueError, match="one gradient per branch"):
        p = nn.Parallel(Ident(), Ident(), merge=First())
        p(np.zeros(2))
        p.backward(np.zeros(2))


# -- against PyTorch ----------------------------------------------------------------------------------------
def _to_torch_conv(torch, m):
    t = torch.nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
                        bias=m.bias is not None).double()
    with torch.no_grad():
        t.weight.copy_(torch.from_numpy(m.weight.data))
        if m.bias is not None:
            t.bias.copy_(torch.from_numpy(m.bias.data))
    return t


def test_resnet_and_inception_blocks_match_pytorch():
    torch = pytest.importorskip("torch")
    block = downsample_block(2, 3)
    res = block[0]
    body, short = res.body, res.shortcut
    tconv = [_to_torch_conv(torch, body[0]), _to_torch_conv(torch, body[3]), _to_torch_conv(torch, short[0])]
    tbn = [torch.nn.BatchNorm2d(3).double() for _ in range(3)]
    x = x4((2, 2, 6, 6))
    dy = x4((2, 3, 3, 3), 1)
    xt = torch.from_numpy(x).requires_grad_()
    h = tbn[1](tconv[1](torch.relu(tbn[0](tconv[0](xt)))))
    yt = torch.relu(h + tbn[2](tconv[2](xt)))
    yt.backward(torch.from_numpy(dy))
    y = block(x)
    dx = block.backward(dy)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    for m, t in zip([body[0], body[3], short[0]], tconv):
        np.testing.assert_allclose(m.weight.grad, t.weight.grad.numpy(), rtol=1e-9, atol=1e-12)

    inc = inception_block(3)
    b0, b1, b2 = inc.branches
    t0, t1a, t1b, t2 = (_to_torch_conv(torch, c) for c in (b0, b1[0], b1[2], b2[1]))
    x = x4((2, 3, 5, 5))
    dy = x4((2, 7, 5, 5), 1)
    xt = torch.from_numpy(x).requires_grad_()
    yt = torch.cat([t0(xt), t1b(torch.relu(t1a(xt))), t2(torch.nn.functional.max_pool2d(xt, 3, 1, 1))], dim=1)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(inc(x), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(inc.backward(dy), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b1[0].weight.grad, t1a.weight.grad.numpy(), rtol=1e-9, atol=1e-12)
