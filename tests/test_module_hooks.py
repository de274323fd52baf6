"""Module hooks (order, removal, replacement values, exceptions) and the safety nets of Module:
one backward per forward, shared modules, plain containers, a forgotten super().__init__()."""
import numpy as np
import pytest

import minicnn
from minicnn import nn
from minicnn.nn.module import BackwardBeforeForwardError, Parameter


class Scale(nn.Module):
    """y = w * x with a learnable scalar w; keeps its input only through _save_ctx (as every layer)."""

    def __init__(self, w=2.0, dtype=np.float64):
        super().__init__()
        self.weight = Parameter(np.array([w], dtype))

    def forward(self, x):
        self._save_ctx(x)
        return self.weight.data[0] * x

    def backward(self, dy):
        x = self._pop_ctx()
        target = nn.module.grad_target(self.weight)
        if target is not False:
            target += np.sum(dy * x)
        return self.weight.data[0] * dy


class Square(nn.Module):
    """A user module with its own state (no _save_ctx): y = x * x."""

    def __init__(self):
        super().__init__()
        self.x = None

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, dy):
        return 2 * self.x * dy


def x_(shape=(2, 3), seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# -- hooks -----------------------------------------------------------------------------------------
def test_forward_hooks_run_in_registration_order_and_replace_values():
    m = Scale(3.0)
    calls = []
    m.register_forward_pre_hook(lambda mod, args: calls.append(("pre1", mod)))
    m.register_forward_pre_hook(lambda mod, args: (args[0] + 1,))        # replaces the input
    m.register_forward_pre_hook(lambda mod, args: calls.append(("pre3", args[0].copy())))
    m.register_forward_hook(lambda mod, args, out: calls.append(("post1", args[0].copy(), out.copy())))
    m.register_forward_hook(lambda mod, args, out: out * 10)              # replaces the output
    x = np.zeros((2, 2))
    y = m(x)
    assert [c[0] for c in calls] == ["pre1", "pre3", "post1"]
    assert calls[0][1] is m
    np.testing.assert_array_equal(calls[1][1], np.ones((2, 2)))
    np.testing.assert_array_equal(calls[2][2], 3 * np.ones((2, 2)))
    np.testing.assert_array_equal(y, 30 * np.ones((2, 2)))


def test_pre_hook_returning_a_single_value_becomes_the_argument():
    m = Scale(2.0)
    m.register_forward_pre_hook(lambda mod, args: np.full((1,), 5.0))
    np.testing.assert_array_equal(m(np.zeros(1)), [10.0])


def test_backward_hooks_see_and_replace_gradients():
    m = Scale(3.0)
    seen = []
    m.register_full_backward_pre_hook(lambda mod, gout: seen.append(("pre", gout[0].copy())))
    m.register_full_backward_pre_hook(lambda mod, gout: (gout[0] * 2,))
    m.register_full_backward_hook(lambda mod, gin, gout: seen.append(("post", gin[0].copy(), gout[0].copy())))
    m.register_full_backward_hook(lambda mod, gin, gout: (gin[0] + 100,))
    x = np.ones(3)
    m(x)
    dx = m.backward(np.ones(3))
    np.testing.assert_array_equal(seen[0][1], np.ones(3))
    np.testing.assert_array_equal(seen[1][2], 2 * np.ones(3))       # the replaced grad_output
    np.testing.assert_array_equal(seen[1][1], 6 * np.ones(3))       # backward of the replaced dy
    np.testing.assert_array_equal(dx, 106 * np.ones(3))
    np.testing.assert_array_equal(m.weight.grad, [6.0])             # used the replaced dy


def test_handles_remove_hooks_and_restore_the_fast_path():
    m = Scale()
    calls = []
    h1 = m.register_forward_hook(lambda *a: calls.append(1))
    h2 = m.register_forward_hook(lambda *a: calls.append(2))
    m(x_())
    h1.remove()
    h1.remove()  # idempotent
    m(x_())
    assert calls == [1, 2, 2]
    h2.remove()
    assert m._hooks is None
    m(x_())
    assert calls == [1, 2, 2]
    with m.register_forward_pre_hook(lambda *a: calls.append(3)):
        m(x_())
    m(x_())
    assert calls == [1, 2, 2, 3]


def test_exception_in_a_hook_reaches_the_caller_and_leaves_the_module_usable():
    m = Scale()

    def bad(mod, args):
        raise KeyError("boom in hook")

    h = m.register_forward_pre_hook(bad)
    with pytest.raises(KeyError, match="boom in hook"):
        m(x_())
    h.remove()
    m(x_())
    m.backward(x_())

    def bad_backward(mod, gin, gout):
        raise RuntimeError("backward hook failed")

    m.register_full_backward_hook(bad_backward)
    m(x_())
    with pytest.raises(RuntimeError, match="backward hook failed"):
        m.backward(x_())


def test_hooks_run_for_user_modules_and_inside_containers():
    model = nn.Sequential(Scale(2.0), Square(), Scale(0.5))
    order = []
    for name, mod in model.named_modules():
        mod.register_forward_pre_hook(lambda m, a, name=name: order.append(("fwd>", name)))
        mod.register_forward_hook(lambda m, a, o, name=name: order.append(("fwd<", name)))
        mod.register_full_backward_pre_hook(lambda m, g, name=name: order.append(("bwd>", name)))
        mod.register_full_backward_hook(lambda m, gi, go, name=name: order.append(("bwd<", name)))
    model(x_())
    model.backward(x_())
    assert order == [("fwd>", ""), ("fwd>", "0"), ("fwd<", "0"), ("fwd>", "1"), ("fwd<", "1"), ("fwd>", "2"),
                     ("fwd<", "2"), ("fwd<", ""),
                     ("bwd>", ""), ("bwd>", "2"), ("bwd<", "2"), ("bwd>", "1"), ("bwd<", "1"), ("bwd>", "0"),
                     ("bwd<", "0"), ("bwd<", "")]


def test_global_hooks_run_before_module_hooks_for_every_module():
    seen = []
    m = Scale()
    m.register_forward_hook(lambda *a: seen.append("own"))
    h = nn.module.register_module_forward_hook(lambda mod, args, out: seen.append(type(mod).__name__))
    hb = nn.module.register_module_full_backward_hook(lambda mod, gi, go: seen.append("b" + type(mod).__name__))
    try:
        m(x_())
        m.backward(x_())
        Square()(x_())
    finally:
        h.remove()
        hb.remove()
    Square()(x_())
    assert seen == ["Scale", "own", "bScale", "Square"]


def test_hooks_fire_once_when_a_subclass_forward_calls_super():
    class Bigger(Scale):
        def forward(self, x):
            return super().forward(x) + 1

        def backward(self, dy):
            return super().backward(dy)

    m = Bigger(2.0)
    calls = []
    m.register_forward_hook(lambda *a: calls.append("f"))
    m.register_full_backward_hook(lambda *a: calls.append("b"))
    np.testing.assert_array_equal(m(np.ones(2)), [3.0, 3.0])
    m.backward(np.ones(2))
    assert calls == ["f", "b"]
    with pytest.raises(BackwardBeforeForwardError):
        m.backward(np.ones(2))


def test_hook_must_be_callable():
    with pytest.raises(TypeError, match="hook must be callable"):
        Scale().register_forward_hook(3)


# -- one backward per forward ----------------------------------------------------------------------
@pytest.mark.parametrize("make", [Scale, Square, lambda: nn.Sequential(Scale(), Square()), nn.ReLU])
def test_a_second_backward_after_one_forward_raises(make):
    m = make()
    x = x_()
    m(x)
    m.backward(np.ones_like(x))
    with pytest.raises(BackwardBeforeForwardError, match="called again after one forward"):
        m.backward(np.ones_like(x))
    m(x)
    m.backward(np.ones_like(x))  # a new forward can be differentiated again


def test_backward_after_forward_under_no_grad_raises():
    m = nn.Sequential(Scale(), Square())
    with minicnn.grad_mode.no_grad():
        m(x_())
    with pytest.raises(BackwardBeforeForwardError, match="no_grad"):
        m.backward(x_())


def test_backward_before_any_forward_raises():
    with pytest.raises(BackwardBeforeForwardError, match="called before forward"):
        Square().backward(x_())


def test_failed_forward_cannot_be_differentiated():
    m = Scale()
    with pytest.raises(TypeError):
        m("not an array")
    with pytest.raises(BackwardBeforeForwardError):
        m.backward(x_())


def test_repeated_forwards_without_backward_keep_only_the_last():
    m = Scale()
    for seed in range(5):
        m(x_(seed=seed))
    assert len(m._ctx_stack) == 1
    np.testing.assert_array_equal(m._ctx, x_(seed=4))


# -- shared modules --------------------------------------------------------------------------------
class Twice(nn.Module):
    """Applies the same sub-module twice, as weight sharing does."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(self.inner(x))

    def backward(self, dy):
        return self.inner.backward(self.inner.backward(dy))


def test_shared_module_gradients_add_gradcheck():
    inner = Scale(1.5)
    minicnn.gradcheck(Twice(inner), x_())
    shared = Scale(0.7)
    model = nn.Sequential(shared, Square(), shared)
    assert len(model.parameters()) == 1
    minicnn.gradcheck(model, x_())
    # y = w * (w x)^2 = w^3 x^2: dy/dw = 3 w^2 x^2
    x = x_()
    model.zero_grad()
    model(x)
    model.backward(np.ones_like(x))
    np.testing.assert_allclose(shared.weight.grad, [np.sum(3 * 0.7 ** 2 * x ** 2)], rtol=1e-12)


# -- plain containers and super().__init__ -----------------------------------------------------------
def test_modules_in_a_plain_list_are_reported_at_assignment():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = [Scale(), Scale()]

    with pytest.raises(TypeError, match=r"Net\.layers is a plain list.*ModuleList"):
        Net()

    class Net2(nn.Module):
        def __init__(self):
            super().__init__()
            self.params = {"a": Parameter(np.zeros(2))}

    with pytest.raises(TypeError, match=r"Net2\.params is a plain dict.*ModuleDict"):
        Net2()


def test_modules_appended_to_a_plain_list_later_are_reported_by_parameters():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = []
            for _ in range(2):
                self.blocks.append(Scale())

    net = Net()
    with pytest.raises(TypeError, match=r"Net\.blocks is a plain list"):
        net.parameters()


def test_a_list_of_references_to_registered_modules_is_allowed():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = Scale(), Scale()
            self.order = [self.a, self.b]

    assert len(Net().parameters()) == 2


def test_forgotten_super_init_is_named():
    class NoSuper(nn.Module):
        def __init__(self):
            self.k = 3

        def forward(self, x):
            return x

    m = NoSuper()
    for action in (lambda: m(np.ones(2)), m.parameters, m.state_dict, m.train, lambda: m.training):
        with pytest.raises(AttributeError, match=r"NoSuper.__init__ must call super\(\).__init__\(\)"):
            action()

    class NoSuper2(nn.Module):
        def __init__(self):
            self.fc = Scale()

    with pytest.raises(AttributeError, match=r"must call super\(\).__init__\(\) first"):
        NoSuper2()
