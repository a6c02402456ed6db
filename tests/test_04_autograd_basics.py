"""Tests for kata 04, autograd basics: one class per exercise, in learning order.

The functions that take data from the caller (grad_at, q_gradients, vjp, second_derivative) must
leave the caller's tensors as they found them: same requires_grad, nothing in .grad. The tests
check that, because a function that flips requires_grad on its input or calls backward into the
caller's .grad makes a second call add onto the first one's gradient.
"""

import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from dojo.testing import check, check_tensor, describe, exercise


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _data(*shape: int, seed: int, device="cpu") -> torch.Tensor:
    """Seeded float64 data (float64: autograd and the analytic formulas agree to ~1e-12)."""
    return torch.randn(*shape, generator=_gen(seed), dtype=torch.float64).to(device)


def check_untouched(x: torch.Tensor, requires_grad: bool, called: str) -> None:
    """The caller's tensor keeps its requires_grad flag and gets nothing in .grad."""
    __tracebackhide__ = True
    check(
        x.requires_grad == requires_grad,
        f"after {called}, the caller's tensor has requires_grad={x.requires_grad}; expected it unchanged "
        f"({requires_grad}). Make your own leaf with x.detach().requires_grad_() instead of flipping the caller's flag.",
    )
    check(
        x.grad is None,
        f"after {called}, the caller's tensor has .grad = {describe(x.grad)}; expected None: backward() went into "
        "the caller's tensor, so the next call would add onto this gradient. Work on your own leaf.",
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


# f, its gradient, and a label for the messages; f takes a 1-D tensor and returns a scalar.
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


@exercise("grad_at")
class TestGradAt:
    @pytest.mark.parametrize("f, df, label", SCALAR_FUNCTIONS)
    def test_gradient_matches_the_analytic_one(self, kata, device, f, df, label):
        x = _data(3, seed=0, device=device)
        got = kata.grad_at(f, x)
        check_tensor(got, df(x), f"grad_at(f = {label}, x of shape (3,))")

    def test_the_callers_x_is_left_untouched(self, kata):
        x = _data(3, seed=1)
        kata.grad_at(lambda t: (t**2).sum(), x)
        check_untouched(x, False, "grad_at(f, x)")

    def test_works_when_x_itself_requires_grad(self, kata):
        # A parameter, say. x.clone() of it would be a non-leaf, whose .grad stays None.
        x = _data(3, seed=2).requires_grad_()
        got = kata.grad_at(lambda t: (t**3).sum(), x)
        check_tensor(got, 3 * x.detach() ** 2, "grad_at(f = sum(t**3), x that requires grad)")
        check_untouched(x, True, "grad_at(f, x that requires grad)")

    def test_two_calls_give_the_same_gradient(self, kata):
        x = _data(4, seed=3)
        f = lambda t: (t**2).sum()  # noqa: E731
        kata.grad_at(f, x)
        second = kata.grad_at(f, x)
        check_tensor(
            second, 2 * x, "the second of two grad_at(f = sum(t**2), x) calls (.grad accumulates across backward calls)"
        )


@exercise("q_gradients")
class TestQGradients:
    @pytest.mark.parametrize(
        "a, b",
        [
            pytest.param([2.0, 3.0], [6.0, 4.0], id="tutorial"),
            pytest.param(_data(2, 3, seed=4).tolist(), _data(2, 3, seed=5).tolist(), id="random_2x3"),
            pytest.param(1.5, -0.5, id="0-d"),
        ],
    )
    def test_matches_9a_squared_and_minus_2b(self, kata, device, a, b):
        a = torch.tensor(a, dtype=torch.float64, device=device)
        b = torch.tensor(b, dtype=torch.float64, device=device)
        got = kata.q_gradients(a, b)
        check(
            isinstance(got, (tuple, list)) and len(got) == 2,
            f"q_gradients(a, b) returned {describe(got)}; expected a pair (dQ/da, dQ/db)",
        )
        check_tensor(got[0], 9 * a**2, f"dQ/da from q_gradients(a of shape {tuple(a.shape)}, b)")
        check_tensor(got[1], -2 * b, f"dQ/db from q_gradients(a of shape {tuple(a.shape)}, b)")

    def test_the_gradients_come_from_autograd(self, kata):
        a, b = torch.tensor([2.0, 3.0]), torch.tensor([6.0, 4.0])
        with AutogradSpy() as spy:
            kata.q_gradients(a, b)
        check(
            spy.calls,
            "q_gradients(a, b) never called backward() or torch.autograd.grad; expected autograd to find the "
            "gradients (typing in 9a² and −2b checks nothing)",
        )

    def test_the_callers_a_and_b_are_left_untouched(self, kata):
        a, b = torch.tensor([2.0, 3.0]), torch.tensor([6.0, 4.0])
        kata.q_gradients(a, b)
        check_untouched(a, False, "q_gradients(a, b), for a")
        check_untouched(b, False, "q_gradients(a, b), for b")


def _vector_f(t: torch.Tensor) -> torch.Tensor:
    """(3,) -> (4,), each output depending on several inputs, so J is not diagonal."""
    return torch.stack([t[0] * t[1], t[1] ** 2, t.sin().sum(), t[2].exp() * t[0]])


def _matrix_f(t: torch.Tensor) -> torch.Tensor:
    """(3,) -> (2, 3)."""
    return torch.stack([t * t.sum(), t.cos()])


def _expected_vjp(f, x, v):
    jac = torch.autograd.functional.jacobian(f, x)  # shape y.shape + x.shape
    return v.reshape(-1) @ jac.reshape(v.numel(), x.numel())


@exercise("vjp")
class TestVjp:
    def test_a_non_uniform_v_weights_each_output(self, kata, device):
        x = _data(3, seed=6, device=device)
        v = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64, device=device)
        got = kata.vjp(_vector_f, x, v)
        check_tensor(
            got,
            _expected_vjp(_vector_f, x, v),
            "vjp(f: (3,) -> (4,), x, v=[1, -2, 0.5, 3]) (summing y first is the same as v = ones)",
        )

    def test_v_has_the_shape_of_a_2d_output(self, kata):
        x = _data(3, seed=7)
        v = _data(2, 3, seed=8)
        got = kata.vjp(_matrix_f, x, v)
        check_tensor(got, _expected_vjp(_matrix_f, x, v), "vjp(f: (3,) -> (2, 3), x, v of shape (2, 3))")

    def test_v_none_on_a_scalar_output_gives_its_gradient(self, kata):
        x = _data(3, seed=9)
        got = kata.vjp(lambda t: (t**2).sum(), x)
        check_tensor(got, 2 * x, "vjp(f = sum(t**2), x) with v=None")

    def test_v_none_on_a_non_scalar_output_raises_pytorchs_error(self, kata):
        with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
            got = kata.vjp(_vector_f, _data(3, seed=10))
            pytest.fail(
                f"vjp(f: (3,) -> (4,), x) with v=None returned {describe(got)}; expected PyTorch's RuntimeError "
                "'grad can be implicitly created only for scalar outputs' (summing y, or v = ones, hides it)",
                pytrace=False,
            )

    def test_the_callers_x_is_left_untouched(self, kata):
        x = _data(3, seed=11)
        kata.vjp(_vector_f, x, torch.ones(4, dtype=torch.float64))
        check_untouched(x, False, "vjp(f, x, v)")


def _leaves(n: int) -> list[torch.Tensor]:
    return [_data(3, seed=20 + i).requires_grad_() for i in range(n)]


def check_names(got, expected: list[str], called: str) -> None:
    __tracebackhide__ = True
    check(isinstance(got, (list, tuple)), f"{called} returned {describe(got)}; expected a list of names")
    tip = ""
    if any(isinstance(n, str) and "::" in n for n in got):
        tip = " (node.name() says 'torch::autograd::AccumulateGrad'; type(node).__name__ is the class name)"
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
        x = torch.randn(5, 3, generator=_gen(30)).to(device)
        expected = model(x).detach()
        check_tensor(kata.predict_without_graph(model, x), expected, "predict_without_graph(model, x of shape (5, 3))")

    def test_the_result_has_no_graph(self, kata):
        model, x = _mlp(), torch.randn(5, 3, generator=_gen(31))
        got = kata.predict_without_graph(model, x)
        check(
            isinstance(got, torch.Tensor) and not got.requires_grad and got.grad_fn is None,
            f"predict_without_graph(model, x) returned {describe(got)} with grad_fn={getattr(got, 'grad_fn', None)}; "
            "expected a tensor that does not require grad and has no grad_fn (model.eval() does not turn autograd off)",
        )

    def test_nothing_is_saved_for_backward_on_the_way(self, kata):
        model, x = _mlp(), torch.randn(5, 3, generator=_gen(32))
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

    def test_the_parameters_still_require_grad(self, kata):
        model, x = _mlp(), torch.randn(5, 3, generator=_gen(33))
        kata.predict_without_graph(model, x)
        frozen = [name for name, p in model.named_parameters() if not p.requires_grad]
        check(
            not frozen,
            f"after predict_without_graph(model, x), these parameters no longer require grad: {frozen}; expected the "
            "model unchanged (the caller trains it next)",
        )

    def test_grad_mode_is_on_after_the_call(self, kata):
        model, x = _mlp(), torch.randn(5, 3, generator=_gen(34))
        kata.predict_without_graph(model, x)
        check(
            torch.is_grad_enabled(),
            "after predict_without_graph(model, x), torch.is_grad_enabled() is False: grad mode was switched off "
            "for the whole program; expected it switched off only during the forward pass (a context manager)",
        )

    def test_the_model_stays_in_training_mode(self, kata):
        model, x = _mlp(), torch.randn(5, 3, generator=_gen(35))
        kata.predict_without_graph(model, x)
        check(
            model.training,
            "after predict_without_graph(model, x), model.training is False; expected the train/eval mode unchanged "
            "(model.eval() changes dropout and batch norm, not autograd; that choice is the caller's)",
        )


def _deep_mlp() -> nn.Sequential:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))


@exercise("freeze_all_but_last")
class TestFreezeAllButLast:
    def test_every_parameter_before_the_last_module_is_frozen(self, kata):
        model = _deep_mlp()
        kata.freeze_all_but_last(model)
        trainable = [name for name, p in model[:-1].named_parameters() if p.requires_grad]
        check(
            not trainable,
            f"after freeze_all_but_last(model), these parameters before the last module still require grad: "
            f"{trainable}; expected all of them frozen (weights and biases; p.detach() leaves p as it was)",
        )

    def test_the_last_modules_parameters_stay_trainable(self, kata):
        model = _deep_mlp()
        kata.freeze_all_but_last(model)
        frozen = [name for name, p in model[-1].named_parameters() if not p.requires_grad]
        check(
            not frozen,
            f"after freeze_all_but_last(model), the last module's parameters {frozen} no longer require grad; "
            "expected them trainable",
        )

    def test_the_model_keeps_the_same_parameter_objects(self, kata):
        # An optimizer built before freezing holds these objects; replacing them would leave it
        # training tensors the model no longer uses.
        model = _deep_mlp()
        before = {name: p for name, p in model.named_parameters()}
        kata.freeze_all_but_last(model)
        replaced = [name for name, p in model.named_parameters() if before.get(name) is not p]
        check(
            not replaced,
            f"freeze_all_but_last(model) replaced the parameters {replaced} with new objects; expected the same "
            "nn.Parameter objects with requires_grad turned off in place",
        )

    def test_returns_the_model_itself(self, kata):
        model = _deep_mlp()
        got = kata.freeze_all_but_last(model)
        check(got is model, f"freeze_all_but_last(model) returned {describe(got)}; expected the model object itself")

    def test_backward_fills_only_the_last_modules_grads(self, kata):
        model = _deep_mlp()
        kata.freeze_all_but_last(model)
        model(torch.randn(5, 3, generator=_gen(40))).pow(2).sum().backward()
        got = {name: p.grad is not None for name, p in model.named_parameters()}
        expected = {name: name.startswith(f"{len(model) - 1}.") for name, _ in model.named_parameters()}
        check(
            got == expected,
            f"after freeze_all_but_last(model) and a backward pass, which parameters got a .grad: {got}; "
            f"expected only the last module's: {expected}",
        )


def _regression():
    """A linear model's leaves, the loss built from them, and the analytic gradients."""
    x, t = _data(6, 3, seed=50), _data(6, seed=51)
    w, b = _data(3, seed=52).requires_grad_(), torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    loss = ((x @ w + b - t) ** 2).mean()
    r = (x @ w.detach() + b.detach() - t) * (2 / len(t))
    return w, b, loss, (x.T @ r, r.sum())


@exercise("gradients")
class TestGradients:
    def test_returns_one_gradient_per_parameter(self, kata):
        w, b, loss, (dw, db) = _regression()
        got = kata.gradients(loss, [w, b])
        check(
            isinstance(got, (tuple, list)) and len(got) == 2,
            f"gradients(loss, [w, b]) returned {describe(got)}; expected a tuple of 2 tensors",
        )
        check_tensor(got[0], dw, "d loss / d w from gradients(loss, [w, b])")
        check_tensor(got[1], db, "d loss / d b from gradients(loss, [w, b])")

    def test_every_grad_stays_none(self, kata):
        w, b, loss, _ = _regression()
        kata.gradients(loss, [w, b])
        filled = [name for name, p in (("w", w), ("b", b)) if p.grad is not None]
        check(
            not filled,
            f"after gradients(loss, [w, b]), {filled} have a .grad; expected every .grad still None "
            "(backward() writes .grad, torch.autograd.grad returns the gradients instead)",
        )

    def test_an_existing_grad_is_left_unchanged(self, kata):
        w, b, loss, (dw, _) = _regression()
        w.grad = torch.full_like(w, 7.0)  # an optimizer's pending gradient, say
        got = kata.gradients(loss, [w, b])
        check_tensor(w.grad, torch.full_like(w, 7.0), "w.grad (was 7.0 before the call) after gradients(loss, [w, b])")
        check_tensor(got[0], dw, "d loss / d w from gradients(loss, [w, b]) when w.grad already held 7.0")


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
        x = _data(2, 3, seed=60, device=device)
        check_tensor(kata.second_derivative(f, x), d2f(x), f"second_derivative(f = {label}, x of shape (2, 3))")

    def test_the_result_carries_no_graph(self, kata):
        x = _data(4, seed=61)
        got = kata.second_derivative(lambda t: t**3, x)
        check(
            isinstance(got, torch.Tensor) and not got.requires_grad and got.grad_fn is None,
            f"second_derivative(f = t**3, x) returned {describe(got)}; expected a tensor without a graph "
            "(create_graph=True is for the first pass only)",
        )

    def test_the_callers_x_is_left_untouched(self, kata):
        x = _data(4, seed=62)
        kata.second_derivative(torch.sin, x)
        check_untouched(x, False, "second_derivative(f, x)")
