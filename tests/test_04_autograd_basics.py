"""Tests for kata 04, autograd basics: one class per exercise, in learning order.

Most functions take tensors from the caller and must leave them as they found them: the same
requires_grad, the same .grad (None stays None, a stored gradient keeps its values). The tests
check that, because a function that flips requires_grad on its input or lets a backward pass into
the caller's .grad makes the caller's next step (or the function's next call) add onto it. Every
result that the docstrings say carries no graph is checked for requires_grad and grad_fn.
"""

from collections import OrderedDict

import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from dojo.testing import check, check_tensor, describe, exercise, value_mismatch


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _data(*shape: int, seed: int, device="cpu", dtype=torch.float64) -> torch.Tensor:
    """Seeded data (float64 by default: autograd and the analytic formulas agree to ~1e-12)."""
    return torch.randn(shape, generator=_gen(seed), dtype=torch.float64).to(device=device, dtype=dtype)


def _state(x: torch.Tensor) -> tuple[bool, torch.Tensor | None]:
    """What the caller can observe of a leaf: its requires_grad flag and a copy of its .grad."""
    return x.requires_grad, (None if x.grad is None else x.grad.detach().clone())


def check_untouched(x: torch.Tensor, before: tuple[bool, torch.Tensor | None], called: str, name: str = "x") -> None:
    """The caller's leaf keeps its requires_grad flag and its .grad (None stays None, values stay)."""
    __tracebackhide__ = True
    requires_grad, grad = before
    check(
        x.requires_grad == requires_grad,
        f"after {called}, the caller's {name} has requires_grad={x.requires_grad}; expected it unchanged "
        f"({requires_grad}): the function switched autograd on (or off) for the caller's own tensor",
    )
    if grad is None:
        check(
            x.grad is None,
            f"after {called}, the caller's {name} has .grad = {describe(x.grad)}; expected None: a backward pass "
            "delivered a gradient into the caller's tensor, so the caller's next backward (or the next call) adds "
            "onto it",
        )
    else:
        changed = "None" if x.grad is None else value_mismatch(x.grad, grad)
        check(
            not changed,
            f"after {called}, the caller's {name}.grad changed ({changed}); it held {describe(grad)} and was expected "
            "to keep it: a backward pass added into the caller's stored gradient (or reset it)",
        )


def check_no_graph(got, called: str) -> None:
    """A result that carries no graph: does not require grad, has no grad_fn."""
    __tracebackhide__ = True
    check(isinstance(got, torch.Tensor), f"{called} returned {describe(got)}; expected a tensor")
    check(
        not got.requires_grad and got.grad_fn is None,
        f"{called} returned {describe(got)} with grad_fn={type(got.grad_fn).__name__ if got.grad_fn else None}; "
        "expected a tensor that carries no graph (requires_grad False, grad_fn None); this one keeps a graph, and "
        "the memory it holds, alive for as long as the caller keeps the result",
    )


class AutogradSpy(TorchFunctionMode):
    """Records whether backward() or torch.autograd.grad ran while it was active.

    Both go through PyTorch's __torch_function__ protocol (Tensor.backward, torch.autograd.backward,
    torch.autograd.grad, and torch.autograd.functional, which calls grad), so a mode sees them
    however the learner spelled the call.
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in ("backward", "grad"):
            self.calls.append(name)
        return func(*args, **(kwargs or {}))


# f, its gradient, and a label for the messages; f takes a 1-D tensor of 3 and returns a scalar.
SCALAR_FUNCTIONS = [
    pytest.param(lambda t: (t**2).sum(), lambda t: 2 * t, "sum(t**2)", id="sum_of_squares"),
    pytest.param(lambda t: (t.sin() * t).sum(), lambda t: t.sin() + t * t.cos(), "sum(sin(t) * t)", id="sin_times_t"),
    pytest.param(
        lambda t: t[0] * t[1] + t.exp().sum(),
        lambda t: t.exp() + torch.stack([t[1], t[0], torch.zeros_like(t[0])]),
        "t[0]*t[1] + sum(exp(t))",
        id="mixed",
    ),
]


def _sum_of_cubes(t: torch.Tensor) -> torch.Tensor:
    return (t**3).sum()


@exercise("grad_at")
class TestGradAt:
    @pytest.mark.parametrize("f, df, label", SCALAR_FUNCTIONS)
    def test_gradient_matches_the_analytic_one(self, kata, device, f, df, label):
        x = _data(3, seed=0, device=device)
        expected = df(x)
        got = kata.grad_at(f, x)
        check_tensor(got, expected, f"grad_at(f = {label}, x of shape (3,))")

    @pytest.mark.parametrize(
        "shape, dtype",
        [pytest.param((), torch.float64, id="0-d_float64"), pytest.param((2, 3), torch.float32, id="2x3_float32")],
    )
    def test_the_gradient_has_the_shape_and_dtype_of_x(self, kata, shape, dtype):
        x = _data(*shape, seed=1, dtype=dtype)
        expected = 3 * x**2
        got = kata.grad_at(_sum_of_cubes, x)
        check_tensor(got, expected, f"grad_at(f = sum(t**3), x of shape {shape}, {dtype})")

    def test_the_gradient_comes_from_a_backward_pass(self, kata):
        x = _data(3, seed=2)
        with AutogradSpy() as spy:
            kata.grad_at(_sum_of_cubes, x)
        check(
            spy.calls,
            "grad_at(f, x) never ran a backward pass (no backward() or torch.autograd.grad call); expected autograd "
            "to compute the gradient (a finite difference is an approximation, not autograd's answer)",
        )

    def test_the_result_carries_no_graph(self, kata):
        got = kata.grad_at(_sum_of_cubes, _data(3, seed=3))
        check_no_graph(got, "grad_at(f = sum(t**3), x)")

    def test_the_callers_x_is_left_untouched(self, kata):
        x = _data(3, seed=4)
        before = _state(x)
        kata.grad_at(_sum_of_cubes, x)
        check_untouched(x, before, "grad_at(f, x)")

    def test_works_when_x_itself_requires_grad(self, kata):
        # A parameter, say. x.clone() of it would be a non-leaf, whose .grad stays None.
        x = _data(3, seed=5).requires_grad_()
        expected = 3 * x.detach() ** 2
        before = _state(x)
        got = kata.grad_at(_sum_of_cubes, x)
        check(
            got is not None,
            "grad_at(f = sum(t**3), x that requires grad) returned None; expected the gradient: the tensor whose "
            ".grad was read is not the one the backward pass delivered the gradient to",
        )
        check_tensor(got, expected, "grad_at(f = sum(t**3), x that requires grad)")
        check_untouched(x, before, "grad_at(f, x that requires grad)")

    def test_a_stored_gradient_of_x_keeps_its_values(self, kata):
        x = _data(3, seed=6).requires_grad_()
        x.grad = torch.full_like(x, 7.0)  # an optimizer's pending gradient, say
        expected = 3 * x.detach() ** 2
        before = _state(x)
        got = kata.grad_at(_sum_of_cubes, x)
        check_tensor(got, expected, "grad_at(f = sum(t**3), x whose .grad held 7.0)")
        check_untouched(x, before, "grad_at(f, x whose .grad held 7.0)")

    def test_nothing_reaches_the_tensors_x_was_computed_from(self, kata):
        w = _data(3, seed=7).requires_grad_()  # the caller's parameter
        x = w * 2  # computed from it: a non-leaf that requires grad
        expected = 3 * x.detach() ** 2
        got = kata.grad_at(_sum_of_cubes, x)
        check_tensor(got, expected, "grad_at(f = sum(t**3), x = w * 2 for a parameter w)")
        check_untouched(w, (True, None), "grad_at(f, x = w * 2)", name="parameter w")
        check(x.requires_grad, "after grad_at(f, x = w * 2), x no longer requires grad; expected it unchanged")

    def test_two_calls_give_the_same_gradient(self, kata):
        x = _data(4, seed=8)
        expected = 3 * x**2
        kata.grad_at(_sum_of_cubes, x)
        second = kata.grad_at(_sum_of_cubes, x)
        check_tensor(
            second,
            expected,
            "the second of two grad_at(f = sum(t**3), x) calls (.grad accumulates across backward passes)",
        )


@exercise("q_gradients")
class TestQGradients:
    @pytest.mark.parametrize(
        "a, b",
        [
            pytest.param([2.0, 3.0], [6.0, 4.0], id="tutorial"),
            pytest.param(_data(2, 3, seed=10).tolist(), _data(2, 3, seed=11).tolist(), id="random_2x3"),
            pytest.param(1.5, -0.5, id="0-d"),
        ],
    )
    def test_matches_9a_squared_and_minus_2b(self, kata, device, a, b):
        a = torch.tensor(a, dtype=torch.float64, device=device)
        b = torch.tensor(b, dtype=torch.float64, device=device)
        da, db = 9 * a**2, -2 * b
        got = kata.q_gradients(a, b)
        check(
            isinstance(got, (tuple, list)) and len(got) == 2,
            f"q_gradients(a, b) returned {describe(got)}; expected a pair (dQ/da, dQ/db)",
        )
        check_tensor(got[0], da, f"dQ/da from q_gradients(a of shape {tuple(a.shape)}, b)")
        check_tensor(got[1], db, f"dQ/db from q_gradients(a of shape {tuple(a.shape)}, b)")

    def test_float32_inputs_give_float32_gradients(self, kata):
        a, b = _data(4, seed=12, dtype=torch.float32), _data(4, seed=13, dtype=torch.float32)
        da, db = 9 * a**2, -2 * b
        got = kata.q_gradients(a, b)
        check_tensor(got[0], da, "dQ/da from q_gradients(a, b of float32)")
        check_tensor(got[1], db, "dQ/db from q_gradients(a, b of float32)")

    def test_the_gradients_come_from_autograd(self, kata):
        a, b = torch.tensor([2.0, 3.0]), torch.tensor([6.0, 4.0])
        with AutogradSpy() as spy:
            kata.q_gradients(a, b)
        check(
            spy.calls,
            "q_gradients(a, b) never called backward() or torch.autograd.grad; expected autograd to find the "
            "gradients (typing in 9a² and −2b checks nothing)",
        )

    def test_the_gradients_carry_no_graph(self, kata):
        got = kata.q_gradients(torch.tensor([2.0, 3.0]), torch.tensor([6.0, 4.0]))
        check(isinstance(got, (tuple, list)) and len(got) == 2, f"q_gradients(a, b) returned {describe(got)}")
        check_no_graph(got[0], "q_gradients(a, b)[0]")
        check_no_graph(got[1], "q_gradients(a, b)[1]")

    def test_the_callers_a_and_b_are_left_untouched(self, kata):
        a, b = torch.tensor([2.0, 3.0]), torch.tensor([6.0, 4.0])
        before_a, before_b = _state(a), _state(b)
        kata.q_gradients(a, b)
        check_untouched(a, before_a, "q_gradients(a, b)", name="a")
        check_untouched(b, before_b, "q_gradients(a, b)", name="b")

    def test_a_and_b_that_require_grad_are_left_untouched(self, kata):
        a = torch.tensor([2.0, 3.0], requires_grad=True)
        b = torch.tensor([6.0, 4.0], requires_grad=True)
        b.grad = torch.tensor([7.0, 7.0])  # a stored gradient on one of them
        da, db = 9 * a.detach() ** 2, -2 * b.detach()
        before_a, before_b = _state(a), _state(b)
        got = kata.q_gradients(a, b)
        check_tensor(got[0], da, "dQ/da from q_gradients(a, b) with a and b that require grad")
        check_tensor(got[1], db, "dQ/db from q_gradients(a, b) with a and b that require grad")
        check_untouched(a, before_a, "q_gradients(a, b) with a and b that require grad", name="a")
        check_untouched(b, before_b, "q_gradients(a, b) with a and b that require grad", name="b")


def _vector_f(t: torch.Tensor) -> torch.Tensor:
    """(3,) -> (4,), each output depending on several inputs, so J is not diagonal."""
    return torch.stack([t[0] * t[1], t[1] ** 2, t.sin().sum(), t[2].exp() * t[0]])


def _matrix_f(t: torch.Tensor) -> torch.Tensor:
    """(3,) -> (2, 3)."""
    return torch.stack([t * t.sum(), t.cos()])


def _expected_vjp(f, x, v):
    jac = torch.autograd.functional.jacobian(f, x)  # shape y.shape + x.shape
    return (v.reshape(-1) @ jac.reshape(v.numel(), x.numel())).reshape(x.shape)


@exercise("vjp")
class TestVjp:
    def test_a_non_uniform_v_weights_each_output(self, kata, device):
        x = _data(3, seed=20, device=device)
        v = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64, device=device)
        expected = _expected_vjp(_vector_f, x, v)
        got = kata.vjp(_vector_f, x, v)
        check_tensor(got, expected, "vjp(f: (3,) -> (4,), x, v=[1, -2, 0.5, 3]) (summing y is the same as v = ones)")

    def test_v_has_the_shape_of_a_2d_output(self, kata):
        x = _data(3, seed=21)
        v = _data(2, 3, seed=22)
        expected = _expected_vjp(_matrix_f, x, v)
        got = kata.vjp(_matrix_f, x, v)
        check_tensor(got, expected, "vjp(f: (3,) -> (2, 3), x, v of shape (2, 3))")

    def test_v_none_on_a_scalar_output_gives_its_gradient(self, kata):
        x = _data(3, seed=23)
        expected = 2 * x
        got = kata.vjp(lambda t: (t**2).sum(), x)
        check_tensor(got, expected, "vjp(f = sum(t**2), x) with v=None")

    def test_v_none_on_a_non_scalar_output_raises_pytorchs_error(self, kata):
        with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
            got = kata.vjp(_vector_f, _data(3, seed=24))
            pytest.fail(
                f"vjp(f: (3,) -> (4,), x) with v=None returned {describe(got)}; expected PyTorch's RuntimeError "
                "'grad can be implicitly created only for scalar outputs' (summing y, or v = ones, hides it)",
                pytrace=False,
            )

    def test_the_result_carries_no_graph(self, kata):
        got = kata.vjp(_vector_f, _data(3, seed=25), torch.ones(4, dtype=torch.float64))
        check_no_graph(got, "vjp(f: (3,) -> (4,), x, v)")

    def test_the_callers_x_is_left_untouched(self, kata):
        x = _data(3, seed=26)
        before = _state(x)
        kata.vjp(_vector_f, x, torch.ones(4, dtype=torch.float64))
        check_untouched(x, before, "vjp(f, x, v)")


def _leaves(n: int) -> list[torch.Tensor]:
    return [_data(3, seed=30 + i).requires_grad_() for i in range(n)]


def check_names(got, expected: list[str], called: str) -> None:
    __tracebackhide__ = True
    check(isinstance(got, (list, tuple)), f"{called} returned {describe(got)}; expected a list of names")
    tip = ""
    if any(isinstance(n, str) and "::" in n for n in got):
        tip = " (node.name() says 'torch::autograd::AccumulateGrad'; the class name is what a tensor's repr shows)"
    elif any(isinstance(n, str) and " at 0x" in n for n in got):
        tip = " (str(node) adds the node's address; the class name is what a tensor's repr shows)"
    check(list(got) == expected, f"{called} returned {list(got)}; expected {expected}{tip}")


@exercise("graph_node_names")
class TestGraphNodeNames:
    def test_a_chain_skips_inputs_that_need_no_gradient(self, kata):
        # x * 2: the constant 2 is an input with no gradient, listed as None in next_functions.
        (x,) = _leaves(1)
        y = (x * 2).sum()
        check_names(
            kata.graph_node_names(y),
            ["SumBackward0", "MulBackward0", "AccumulateGrad"],
            "graph_node_names((x * 2).sum())",
        )

    def test_a_constant_tensor_input_is_skipped_too(self, kata):
        (x,) = _leaves(1)
        y = x * torch.ones(3, dtype=torch.float64)
        check_names(kata.graph_node_names(y), ["MulBackward0", "AccumulateGrad"], "graph_node_names(x * ones(3))")

    def test_every_branch_is_walked_breadth_first(self, kata):
        a, b = _leaves(2)
        y = a.exp() * b.sin()
        check_names(
            kata.graph_node_names(y),
            ["MulBackward0", "ExpBackward0", "SinBackward0", "AccumulateGrad", "AccumulateGrad"],
            "graph_node_names(a.exp() * b.sin()) (level by level: both inputs of Mul before any leaf)",
        )

    def test_three_levels_with_three_leaves(self, kata):
        a, b, c = _leaves(3)
        y = (a * b + c).sum()
        check_names(
            kata.graph_node_names(y),
            ["SumBackward0", "AddBackward0", "MulBackward0", "AccumulateGrad", "AccumulateGrad", "AccumulateGrad"],
            "graph_node_names((a * b + c).sum())",
        )

    @pytest.mark.parametrize(
        "build, expected, label",
        [
            pytest.param(lambda x: x * x, ["MulBackward0", "AccumulateGrad"], "x * x", id="x_times_x"),
            pytest.param(
                lambda x: (lambda h: h * h.sin())(x.exp()),
                ["MulBackward0", "ExpBackward0", "SinBackward0", "AccumulateGrad"],
                "h * h.sin() with h = x.exp()",
                id="shared_exp",
            ),
        ],
    )
    def test_a_node_reached_twice_is_listed_once(self, kata, build, expected, label):
        # The same node is the same Python object each time next_functions hands it out.
        (x,) = _leaves(1)
        check_names(kata.graph_node_names(build(x)), expected, f"graph_node_names({label})")

    def test_two_nodes_of_the_same_class_are_both_listed(self, kata):
        # Two exp() calls are two nodes: tell nodes apart by identity, not by name.
        (x,) = _leaves(1)
        check_names(
            kata.graph_node_names(x.exp() * x.exp().sin()),
            ["MulBackward0", "ExpBackward0", "SinBackward0", "AccumulateGrad", "ExpBackward0"],
            "graph_node_names(x.exp() * x.exp().sin())",
        )

    @pytest.mark.parametrize("requires_grad", [False, True], ids=["plain_tensor", "leaf_that_requires_grad"])
    def test_a_tensor_without_grad_fn_has_an_empty_graph(self, kata, requires_grad):
        x = torch.ones(3, requires_grad=requires_grad)
        check_names(kata.graph_node_names(x), [], f"graph_node_names(torch.ones(3, requires_grad={requires_grad}))")


def _mlp(device="cpu") -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).to(device)


def _dropout_mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 2))


class _Broken(nn.Module):
    def forward(self, x):
        raise ValueError("this model's forward always fails")


@pytest.fixture
def restore_grad_mode():
    """A solution that switches grad mode off globally must not break every test after this one."""
    yield
    torch.set_grad_enabled(True)


@exercise("predict_without_graph")
@pytest.mark.usefixtures("restore_grad_mode")
class TestPredictWithoutGraph:
    def test_returns_the_models_output(self, kata, device):
        model = _mlp(device)
        x = torch.randn(5, 3, generator=_gen(40)).to(device)
        expected = model(x).detach()
        check_tensor(kata.predict_without_graph(model, x), expected, "predict_without_graph(model, x of shape (5, 3))")

    def test_the_result_has_no_graph(self, kata):
        model, x = _mlp(), torch.randn(5, 3, generator=_gen(41))
        got = kata.predict_without_graph(model, x)
        check_no_graph(got, "predict_without_graph(model, x)")

    def test_nothing_is_saved_for_backward_on_the_way(self, kata):
        model, x = _mlp(), torch.randn(5, 3, generator=_gen(42))
        saved = []

        def pack(t):
            saved.append(tuple(t.shape))
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            kata.predict_without_graph(model, x)
        check(
            not saved,
            f"predict_without_graph(model, x) recorded a graph: {len(saved)} tensors were saved for backward "
            f"(shapes {saved[:4]}...); expected none. Detaching the result comes after the graph was built; "
            "run the forward pass with graph recording switched off",
        )

    def test_the_result_can_take_part_in_a_later_graph(self, kata):
        # Distillation: one model's predictions are the target of another model's loss.
        teacher, x = _mlp(), torch.randn(5, 3, generator=_gen(43))
        target = kata.predict_without_graph(teacher, x)
        torch.manual_seed(1)
        student = nn.Linear(3, 2)
        refused = None
        try:
            with torch.enable_grad():  # this test is about the tensor; grad mode has tests of its own
                nn.functional.mse_loss(student(x), target).backward()
        except RuntimeError as err:
            refused = str(err).splitlines()[0]
        check(
            refused is None,
            f"t = predict_without_graph(model, x), then mse_loss(student(x), t).backward() raised RuntimeError: "
            f"{refused!r}; expected an ordinary tensor that a later graph may use",
        )
        check(student.weight.grad is not None, "mse_loss(student(x), t).backward() gave the student no gradient")

    def test_the_parameters_still_require_grad(self, kata):
        model, x = _mlp(), torch.randn(5, 3, generator=_gen(44))
        kata.predict_without_graph(model, x)
        frozen = [name for name, p in model.named_parameters() if not p.requires_grad]
        check(
            not frozen,
            f"after predict_without_graph(model, x), these parameters no longer require grad: {frozen}; expected the "
            "model unchanged (the caller trains it next)",
        )

    def test_a_parameter_the_caller_froze_stays_frozen(self, kata):
        model, x = _mlp(), torch.randn(5, 3, generator=_gen(45))
        model[0].requires_grad_(False)  # the caller fine-tunes only the last layer
        before = {name: p.requires_grad for name, p in model.named_parameters()}
        kata.predict_without_graph(model, x)
        after = {name: p.requires_grad for name, p in model.named_parameters()}
        check(
            after == before,
            f"predict_without_graph(model, x) changed the parameters' requires_grad: before {before}, after {after}; "
            "expected every flag as the caller left it",
        )

    def test_grad_mode_is_on_after_the_call(self, kata):
        model, x = _mlp(), torch.randn(5, 3, generator=_gen(46))
        kata.predict_without_graph(model, x)
        check(
            torch.is_grad_enabled(),
            "after predict_without_graph(model, x), torch.is_grad_enabled() is False: graph recording was switched "
            "off for the whole program; expected it off only during the forward pass",
        )

    def test_grad_mode_stays_off_for_a_caller_that_switched_it_off(self, kata):
        model, x = _mlp(), torch.randn(5, 3, generator=_gen(47))
        with torch.no_grad():
            kata.predict_without_graph(model, x)
            still_off = not torch.is_grad_enabled()
        check(
            still_off,
            "predict_without_graph(model, x), called where graph recording was off, switched it on: "
            "torch.is_grad_enabled() is True after the call; expected the mode the caller had (off)",
        )

    def test_grad_mode_is_restored_when_the_model_raises(self, kata):
        with pytest.raises(ValueError, match="forward always fails"):
            kata.predict_without_graph(_Broken(), torch.randn(5, 3, generator=_gen(48)))
            pytest.fail(
                "predict_without_graph(model whose forward raises ValueError, x) returned; expected the ValueError",
                pytrace=False,
            )
        check(
            torch.is_grad_enabled(),
            "after predict_without_graph(model, x) raised the model's ValueError, torch.is_grad_enabled() is False: "
            "graph recording stays off for the rest of the program; expected it restored on the way out",
        )

    def test_the_model_stays_in_training_mode(self, kata):
        model, x = _mlp(), torch.randn(5, 3, generator=_gen(49))
        kata.predict_without_graph(model, x)
        check(
            model.training,
            "after predict_without_graph(model, x), model.training is False; expected the train/eval mode unchanged "
            "(model.eval() changes dropout and batch norm, not autograd; that choice is the caller's)",
        )

    def test_a_model_in_eval_mode_stays_in_eval_mode(self, kata):
        model, x = _dropout_mlp().eval(), torch.randn(5, 3, generator=_gen(50))
        expected = model(x).detach()
        got = kata.predict_without_graph(model, x)
        check(
            not any(m.training for m in model.modules()),
            "after predict_without_graph(model in eval mode, x), the model (or one of its modules) is in training "
            "mode; expected the mode the caller chose",
        )
        check_tensor(got, expected, "predict_without_graph(model with dropout, in eval mode, x)")


def _named_model() -> nn.Sequential:
    return nn.Sequential(OrderedDict([("features", nn.Linear(3, 4)), ("act", nn.ReLU()), ("head", nn.Linear(4, 2))]))


# name -> (a builder, label); every model is built with the same seed.
MODELS = {
    "deep_mlp": (
        lambda: nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4), nn.LayerNorm(4), nn.Tanh(), nn.Linear(4, 2)),
        "Linear, ReLU, Linear, LayerNorm, Tanh, Linear",
    ),
    "last_without_bias": (
        lambda: nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2, bias=False)),
        "Linear, ReLU, Linear(bias=False)",
    ),
    "single_layer": (lambda: nn.Sequential(nn.Linear(3, 2)), "Linear alone"),
    "ends_in_activation": (
        lambda: nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.Sigmoid()),
        "Linear, ReLU, Linear, Sigmoid",
    ),
    "named_modules": (_named_model, "OrderedDict features=Linear, act=ReLU, head=Linear"),
}


def _model(name: str) -> tuple[nn.Sequential, str]:
    torch.manual_seed(1)
    build, label = MODELS[name]
    return build(), f"freeze_all_but_last(Sequential({label}))"


def _expected_trainable(model: nn.Sequential) -> dict[str, bool]:
    """Which parameters stay trainable: those of the last module, by identity (names may be anything)."""
    last = {id(p) for p in model[-1].parameters()}
    return {name: id(p) in last for name, p in model.named_parameters()}


@exercise("freeze_all_but_last")
class TestFreezeAllButLast:
    @pytest.mark.parametrize("name", ["deep_mlp", "last_without_bias", "ends_in_activation", "named_modules"])
    def test_every_parameter_before_the_last_module_is_frozen(self, kata, name):
        model, called = _model(name)
        expected = _expected_trainable(model)
        kata.freeze_all_but_last(model)
        trainable = [n for n, p in model.named_parameters() if p.requires_grad and not expected[n]]
        check(
            not trainable,
            f"after {called}, these parameters before the last module still require grad: {trainable}; expected "
            "all of them frozen (weights, biases and norm layers' parameters alike)",
        )

    @pytest.mark.parametrize("name", ["deep_mlp", "last_without_bias", "single_layer", "named_modules"])
    def test_the_last_modules_parameters_stay_trainable(self, kata, name):
        model, called = _model(name)
        expected = _expected_trainable(model)
        kata.freeze_all_but_last(model)
        frozen = [n for n, p in model.named_parameters() if expected[n] and not p.requires_grad]
        check(
            not frozen,
            f"after {called}, the last module's parameters {frozen} no longer require grad; expected them trainable",
        )

    def test_the_model_keeps_the_same_parameter_objects(self, kata):
        # An optimizer built before freezing holds these objects; replacing them would leave it
        # training tensors the model no longer uses.
        model, called = _model("deep_mlp")
        before = {name: p for name, p in model.named_parameters()}
        kata.freeze_all_but_last(model)
        after = dict(model.named_parameters())
        replaced = [name for name in before if after.get(name) is not before[name]]
        check(
            not replaced,
            f"{called} replaced the parameters {replaced} with new objects; expected the same nn.Parameter objects, "
            "now not requiring grad",
        )

    def test_returns_the_model_itself(self, kata):
        model, called = _model("deep_mlp")
        got = kata.freeze_all_but_last(model)
        check(got is model, f"{called} returned {describe(got)}; expected the model object itself")

    def test_backward_fills_only_the_last_modules_grads(self, kata):
        model, called = _model("deep_mlp")
        expected = _expected_trainable(model)
        kata.freeze_all_but_last(model)
        model(torch.randn(5, 3, generator=_gen(60))).pow(2).sum().backward()
        got = {name: p.grad is not None for name, p in model.named_parameters()}
        check(
            got == expected,
            f"after {called} and a backward pass, which parameters got a .grad: {got}; expected only the last "
            f"module's: {expected}",
        )


def _regression(extra: bool = False):
    """A linear model's leaves, the loss built from them, and the analytic gradients.

    With `extra`, the loss also depends on a third leaf `c` that requires grad (not asked about).
    """
    x, t = _data(6, 3, seed=70), _data(6, seed=71)
    w, b = _data(3, seed=72).requires_grad_(), torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    c = torch.tensor(0.25, dtype=torch.float64, requires_grad=True)
    pred = x @ w + b + (c if extra else 0)
    loss = ((pred - t) ** 2).mean()
    r = (x @ w.detach() + b.detach() + (0.25 if extra else 0) - t) * (2 / len(t))
    return w, b, c, loss, (x.T @ r, r.sum())


@exercise("gradients")
class TestGradients:
    def test_returns_one_gradient_per_parameter(self, kata):
        w, b, _, loss, (dw, db) = _regression()
        got = kata.gradients(loss, [w, b])
        check(
            isinstance(got, (tuple, list)) and len(got) == 2,
            f"gradients(loss, [w, b]) returned {describe(got)}; expected a tuple of 2 tensors",
        )
        check_tensor(got[0], dw, "d loss / d w from gradients(loss, [w, b])")
        check_tensor(got[1], db, "d loss / d b from gradients(loss, [w, b])")

    def test_the_result_is_a_tuple(self, kata):
        w, b, _, loss, _ = _regression()
        got = kata.gradients(loss, [w, b])
        check(isinstance(got, tuple), f"gradients(loss, [w, b]) returned {describe(got)}; expected a tuple")

    def test_params_given_as_a_tuple_in_another_order(self, kata):
        w, b, _, loss, (dw, db) = _regression()
        got = kata.gradients(loss, (b, w))
        check(
            isinstance(got, (tuple, list)) and len(got) == 2,
            f"gradients(loss, (b, w)) returned {describe(got)}; expected a tuple of 2 tensors",
        )
        check_tensor(got[0], db, "d loss / d b, the first of gradients(loss, (b, w))")
        check_tensor(got[1], dw, "d loss / d w, the second of gradients(loss, (b, w))")

    def test_the_gradients_carry_no_graph(self, kata):
        w, b, _, loss, _ = _regression()
        got = kata.gradients(loss, [w, b])
        check(isinstance(got, (tuple, list)) and len(got) == 2, f"gradients(loss, [w, b]) returned {describe(got)}")
        check_no_graph(got[0], "gradients(loss, [w, b])[0]")
        check_no_graph(got[1], "gradients(loss, [w, b])[1]")

    def test_every_grad_stays_none(self, kata):
        w, b, _, loss, _ = _regression()
        kata.gradients(loss, [w, b])
        check_untouched(w, (True, None), "gradients(loss, [w, b])", name="w")
        check_untouched(b, (True, None), "gradients(loss, [w, b])", name="b")

    def test_a_stored_grad_keeps_its_values(self, kata):
        w, b, _, loss, (dw, db) = _regression()
        w.grad = torch.full_like(w, 7.0)  # an optimizer's pending gradient, say; b has none
        before_w, before_b = _state(w), _state(b)
        got = kata.gradients(loss, [w, b])
        check_untouched(w, before_w, "gradients(loss, [w, b]) where w.grad held 7.0", name="w")
        check_untouched(b, before_b, "gradients(loss, [w, b]) where w.grad held 7.0", name="b")
        check_tensor(got[0], dw, "d loss / d w from gradients(loss, [w, b]) when w.grad already held 7.0")
        check_tensor(got[1], db, "d loss / d b from gradients(loss, [w, b]) when w.grad already held 7.0")

    def test_other_leaves_of_the_graph_get_no_grad(self, kata):
        w, b, c, loss, (dw, _) = _regression(extra=True)
        got = kata.gradients(loss, [w])
        check_untouched(c, (True, None), "gradients(loss, [w]) for a loss that also uses b and c", name="c")
        check_untouched(b, (True, None), "gradients(loss, [w]) for a loss that also uses b and c", name="b")
        check(isinstance(got, (tuple, list)) and len(got) == 1, f"gradients(loss, [w]) returned {describe(got)}")
        check_tensor(got[0], dw, "d loss / d w from gradients(loss, [w])")


SECOND_DERIVATIVES = [
    pytest.param(lambda t: t**3, lambda t: 6 * t, "t**3", id="cube"),
    pytest.param(torch.sin, lambda t: -torch.sin(t), "sin(t)", id="sin"),
    pytest.param(lambda t: torch.exp(2 * t), lambda t: 4 * torch.exp(2 * t), "exp(2t)", id="exp_2t"),
    pytest.param(
        torch.sigmoid,
        lambda t: torch.sigmoid(t) * (1 - torch.sigmoid(t)) * (1 - 2 * torch.sigmoid(t)),
        "sigmoid(t)",
        id="sigmoid",
    ),
]


@exercise("second_derivative")
class TestSecondDerivative:
    @pytest.mark.parametrize("f, d2f, label", SECOND_DERIVATIVES)
    def test_matches_the_analytic_second_derivative(self, kata, device, f, d2f, label):
        x = _data(2, 3, seed=80, device=device)
        expected = d2f(x)
        check_tensor(kata.second_derivative(f, x), expected, f"second_derivative(f = {label}, x of shape (2, 3))")

    @pytest.mark.parametrize(
        "shape, dtype",
        [pytest.param((), torch.float64, id="0-d_float64"), pytest.param((4,), torch.float32, id="4_float32")],
    )
    def test_the_result_has_the_shape_and_dtype_of_x(self, kata, shape, dtype):
        x = _data(*shape, seed=81, dtype=dtype)
        expected = -torch.sin(x)
        check_tensor(
            kata.second_derivative(torch.sin, x),
            expected,
            f"second_derivative(f = sin(t), x of shape {shape}, {dtype})",
        )

    def test_the_result_carries_no_graph(self, kata):
        got = kata.second_derivative(lambda t: t**3, _data(4, seed=82))
        check_no_graph(got, "second_derivative(f = t**3, x)")

    def test_the_callers_x_is_left_untouched(self, kata):
        x = _data(4, seed=83)
        before = _state(x)
        kata.second_derivative(torch.sin, x)
        check_untouched(x, before, "second_derivative(f, x)")

    def test_an_x_that_requires_grad_is_left_untouched(self, kata):
        x = _data(4, seed=84).requires_grad_()
        x.grad = torch.full_like(x, 7.0)
        expected = 6 * x.detach()
        before = _state(x)
        got = kata.second_derivative(lambda t: t**3, x)
        check_tensor(got, expected, "second_derivative(f = t**3, x that requires grad, .grad holding 7.0)")
        check_untouched(x, before, "second_derivative(f, x that requires grad)")
