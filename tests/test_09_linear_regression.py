"""Tests for kata 09, linear regression step by step: one class per exercise, in learning order.

Two references, both computed here in float64 from the data (never hard-coded):
- the least-squares line from `numpy.linalg.lstsq`, where every fit must land (LINE_ATOL);
- exact batch gradient descent in matrix form, w <- w - lr * (H w - g), where a fit must be after
  a few epochs (rtol 1e-5 for float32 tensors). A gradient without its factor 2 or its mean still
  converges, only at another speed: only the exact check after a fixed number of epochs sees it.
"""

import inspect
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.overrides import TorchFunctionMode
from torch.utils.data import DataLoader, TensorDataset

from dojo.stubs import STUB_TAG
from dojo.testing import check, check_tensor, describe, exercise

META = torch.device("meta")  # exists everywhere; catches a tensor created on the default device
LR, EPOCHS = 0.5, 200  # full-batch gradient descent reaches the least-squares line to ~1e-6
LINE_ATOL = 1e-3  # how close a full-batch fit must land to the least-squares (a, b)
MINIBATCH_ATOL = 1e-2  # mini-batch SGD ends in a small cloud around it
FEW = dict(a0=0.5, b0=-0.3, lr=0.1, n_epochs=5)  # a fixed short run, checked against exact GD


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # The recipe of make_data(), repeated here so the tests do not trust the file under test.
    rng = np.random.RandomState(42)  # same stream as np.random.seed(42)
    x = rng.rand(100, 1)
    y = 1 + 2 * x + 0.1 * rng.randn(100, 1)
    idx = np.arange(100)
    rng.shuffle(idx)
    return x[idx[:80]], y[idx[:80]], x[idx[80:]], y[idx[80:]]


X_TRAIN, Y_TRAIN, X_VAL, Y_VAL = _data()


def least_squares(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    design = np.hstack([np.ones_like(x), x])
    (a, b), *_ = np.linalg.lstsq(design, y.ravel(), rcond=None)
    return float(a), float(b)


def exact_gd(x: np.ndarray, y: np.ndarray, a0: float, b0: float, lr: float, n_epochs: int) -> tuple[float, float]:
    """Batch gradient descent on the MSE, in float64 matrix form: grad = H w - g."""
    design = np.hstack([np.ones_like(x), x]).astype(np.float64)
    n = len(design)
    h = 2.0 / n * design.T @ design
    g = 2.0 / n * design.T @ y.ravel().astype(np.float64)
    w = np.array([a0, b0], dtype=np.float64)
    for _ in range(n_epochs):
        w = w - lr * (h @ w - g)
    return float(w[0]), float(w[1])


LINE = least_squares(X_TRAIN, Y_TRAIN)


def tensors(device="cpu", dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(X_TRAIN).to(device, dtype), torch.from_numpy(Y_TRAIN).to(device, dtype)


def number(value, what: str) -> float:
    """A returned parameter (float, or one-element tensor) as a float; fails on anything else."""
    __tracebackhide__ = True
    if isinstance(value, torch.Tensor):
        check(value.numel() == 1, f"{what} is {describe(value)}; expected one number (a tensor of shape (1,))")
        return float(value.detach().cpu().reshape(-1)[0])
    check(isinstance(value, (float, int)), f"{what} is {describe(value)}; expected a number")
    return float(value)


def check_pair(got, expected: tuple[float, float], what: str, *, rtol: float = 0.0, atol: float = 0.0) -> None:
    __tracebackhide__ = True
    check(isinstance(got, tuple) and len(got) == 2, f"{what} returned {describe(got)}; expected a tuple (a, b)")
    a, b = number(got[0], f"{what}[0] (a)"), number(got[1], f"{what}[1] (b)")
    ok = all(math.isclose(v, e, rel_tol=rtol, abs_tol=atol) for v, e in zip((a, b), expected))
    check(
        ok,
        f"{what}: got a={a:.7f}, b={b:.7f}; expected a={expected[0]:.7f}, b={expected[1]:.7f} "
        f"(rtol={rtol:g}, atol={atol:g})",
    )


def check_leaf_params(got, x: torch.Tensor, what: str) -> None:
    """(a, b) must be leaf tensors of shape (1,) that require grad, with x's dtype and device."""
    __tracebackhide__ = True
    check(isinstance(got, tuple) and len(got) == 2, f"{what} returned {describe(got)}; expected a tuple (a, b)")
    for name, t in zip("ab", got):
        check(isinstance(t, torch.Tensor), f"{what}: {name} is {describe(t)}; expected a tensor")
        check(
            t.shape == (1,) and t.dtype == x.dtype and t.device == x.device,
            f"{what}: {name} is {describe(t)}; expected shape (1,), dtype {x.dtype} and device {x.device}, "
            "like x: create it with x's dtype and device",
        )
        check(
            t.requires_grad and t.is_leaf,
            f"{what}: {name} is {describe(t)} with is_leaf={t.is_leaf}; expected the leaf tensor that requires "
            "grad and that autograd fills .grad of (`a = a - ...` or `.to(device)` after creation make a new, "
            "non-leaf tensor)",
        )


def run_on_meta(call, what: str, advice: str):
    """call() with tensors on 'meta'; an exception there (other than the stub's) becomes a clear failure."""
    __tracebackhide__ = True
    try:
        return call()
    except Exception as err:  # anything raised on meta: a tensor stayed on another device
        if STUB_TAG in str(err):
            raise
        first_line = (str(err).strip().splitlines() or [""])[0]
        message = f"{what} raised {type(err).__name__}: {first_line}; expected it to run on 'meta'. {advice}"
    # Failing outside the except block keeps torch's traceback out of the learner's report.
    check(False, message)


CREATE_ON_DEVICE = (
    "A tensor was on another device than x's: a and b must be made on x's device, with its dtype "
    "(a tensor moved there after creation is a non-leaf copy whose .grad stays empty)."
)


def check_inputs_untouched(fit, name: str) -> None:
    """fit(x, y, ...) must leave x and y as they were: values, requires_grad, .grad."""
    __tracebackhide__ = True
    x, y = tensors()
    x0, y0 = x.clone(), y.clone()
    fit(x, y, 0.0, 0.0, 0.1, 3)
    for label, t, t0 in (("x", x, x0), ("y", y, y0)):
        check(
            torch.equal(t, t0) and not t.requires_grad and t.grad is None,
            f"{name}(x, y, ...) changed the caller's {label}: it is now {describe(t)} with .grad={describe(t.grad)}; "
            "expected it left as it was",
        )


def same_values(t: torch.Tensor, ref: torch.Tensor) -> bool:
    """t holds ref's values, whatever its shape ((N, 1) or (N,))."""
    return t.numel() == ref.numel() and torch.equal(t.detach().reshape(-1), ref.reshape(-1))


def count_backward_passes(call) -> int:
    """How many saved tensors a backward pass used during call(): 0 when no gradient came from autograd."""
    used = []

    def pack(t):
        return t

    def unpack(t):
        used.append(1)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        call()
    return len(used)


class _BackwardLeaves(TorchFunctionMode):
    """Records, for every backward pass started while active, the leaf tensors its graph reaches."""

    def __init__(self) -> None:
        super().__init__()
        self.passes: list[list[torch.Tensor]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.Tensor.backward, torch.autograd.backward, torch.autograd.grad):
            roots = args[0] if args else kwargs.get("tensors", kwargs.get("outputs"))
            roots = [roots] if isinstance(roots, torch.Tensor) else list(roots)
            self.passes.append(graph_leaves(roots))
        return func(*args, **kwargs)


def graph_leaves(roots: list[torch.Tensor]) -> list[torch.Tensor]:
    """The leaf tensors that require grad in the graph of `roots` (what a backward pass fills)."""
    seen, leaves = set(), []
    stack = [r.grad_fn for r in roots if isinstance(r, torch.Tensor) and r.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if hasattr(node, "variable"):  # AccumulateGrad: the node of a leaf
            leaves.append(node.variable)
        stack.extend(fn for fn, _ in node.next_functions)
    return leaves


def fit_call(name: str, x: torch.Tensor, **kw) -> str:
    args = ", ".join(f"{k}={v}" for k, v in kw.items())
    return f"{name}(x of shape {tuple(x.shape)} {x.dtype} on {x.device}, y, {args})"


def train_full_batch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float, n_epochs: int) -> None:
    """The test's own loop, to train a learner's model class."""
    __tracebackhide__ = True
    params = list(model.parameters())
    check(params, f"{type(model).__name__}().parameters() is empty: an optimizer has nothing to train")
    optimizer = torch.optim.SGD(params, lr=lr)
    loss_fn = nn.MSELoss()
    for _ in range(n_epochs):
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()


@exercise("fit_numpy")
class TestFitNumpy:
    def test_lands_on_the_least_squares_line(self, kata):
        got = kata.fit_numpy(X_TRAIN.copy(), Y_TRAIN.copy(), 0.0, 0.0, LR, EPOCHS)
        check_pair(got, LINE, f"fit_numpy(x_train, y_train, 0.0, 0.0, lr={LR}, n_epochs={EPOCHS})", atol=LINE_ATOL)

    def test_matches_exact_gradient_descent_after_a_few_epochs(self, kata):
        # A gradient without the factor 2, or summed instead of averaged, or with a flipped sign
        # ends somewhere else after 5 epochs.
        got = kata.fit_numpy(X_TRAIN.copy(), Y_TRAIN.copy(), **FEW)
        check_pair(
            got,
            exact_gd(X_TRAIN, Y_TRAIN, **FEW),
            "fit_numpy(x_train, y_train, a0=0.5, b0=-0.3, lr=0.1, n_epochs=5)",
            rtol=1e-9,
        )

    def test_returns_plain_floats(self, kata):
        got = kata.fit_numpy(X_TRAIN.copy(), Y_TRAIN.copy(), 0.0, 0.0, 0.1, 2)
        check(
            isinstance(got, tuple) and len(got) == 2 and all(isinstance(v, float) for v in got),
            f"fit_numpy(..., n_epochs=2) returned {describe(got)}; expected a tuple of two Python floats (a, b)",
        )

    def test_zero_epochs_return_the_start_as_floats(self, kata):
        got = kata.fit_numpy(X_TRAIN.copy(), Y_TRAIN.copy(), 1, 2, 0.1, 0)
        check(
            isinstance(got, tuple) and len(got) == 2 and all(isinstance(v, float) for v in got) and got == (1.0, 2.0),
            f"fit_numpy(x, y, a0=1, b0=2, lr=0.1, n_epochs=0) returned {describe(got)}; expected the floats (1.0, 2.0)",
        )

    def test_leaves_x_and_y_unchanged(self, kata):
        x, y = X_TRAIN.copy(), Y_TRAIN.copy()
        kata.fit_numpy(x, y, 0.0, 0.0, 0.1, 3)
        check(
            np.array_equal(x, X_TRAIN) and np.array_equal(y, Y_TRAIN),
            "fit_numpy(x, y, ...) modified x or y; expected them unchanged",
        )


@exercise("fit_autograd")
class TestFitAutograd:
    def test_lands_on_the_least_squares_line(self, kata, device):
        x, y = tensors(device)
        got = kata.fit_autograd(x, y, 0.0, 0.0, LR, EPOCHS)
        check_pair(got, LINE, fit_call("fit_autograd", x, a0=0.0, b0=0.0, lr=LR, n_epochs=EPOCHS), atol=LINE_ATOL)

    def test_matches_exact_gradient_descent_after_a_few_epochs(self, kata):
        # Gradients that are never zeroed add up: every step after the first is too long.
        x, y = tensors()
        got = kata.fit_autograd(x, y, **FEW)
        check_pair(got, exact_gd(X_TRAIN, Y_TRAIN, **FEW), fit_call("fit_autograd", x, **FEW), rtol=1e-5)

    @pytest.mark.parametrize("where, dtype", [("cpu", torch.float64), (META, torch.float32)], ids=["float64", "meta"])
    def test_returns_leaf_parameters_with_the_dtype_and_device_of_x(self, kata, where, dtype):
        x, y = tensors(where, dtype)
        call = fit_call("fit_autograd", x, a0=0.0, b0=0.0, lr=0.1, n_epochs=2)
        got = run_on_meta(lambda: kata.fit_autograd(x, y, 0.0, 0.0, 0.1, 2), call, CREATE_ON_DEVICE)
        check_leaf_params(got, x, call)

    def test_the_gradients_come_from_a_backward_pass(self, kata):
        x, y = tensors()
        used = count_backward_passes(lambda: kata.fit_autograd(x, y, 0.0, 0.0, 0.1, 3))
        check(
            used > 0,
            f"{fit_call('fit_autograd', x, a0=0.0, b0=0.0, lr=0.1, n_epochs=3)} ran no backward pass through a graph; "
            "expected autograd to compute the gradients (a hand-written gradient is fit_numpy's job)",
        )

    def test_returns_the_leaves_every_backward_pass_filled(self, kata):
        # A fresh leaf made each epoch (a = (a - lr * a.grad).detach().requires_grad_()) gives the right
        # values, but the tensors returned are not the ones autograd computed the gradients of.
        x, y = tensors()
        with _BackwardLeaves() as recorder:
            got = kata.fit_autograd(x, y, 0.0, 0.0, 0.1, 3)
        call = fit_call("fit_autograd", x, a0=0.0, b0=0.0, lr=0.1, n_epochs=3)
        check(isinstance(got, tuple) and len(got) == 2, f"{call} returned {describe(got)}; expected a tuple (a, b)")
        check(recorder.passes, f"{call} ran no backward pass; expected one per epoch, through the loss")
        for epoch, leaves in enumerate(recorder.passes):
            for name, t in zip("ab", got):
                check(
                    any(leaf is t for leaf in leaves),
                    f"{call}: the {name} returned is not the tensor that backward pass {epoch + 1} computed the "
                    f"gradient of; expected the same leaf {name}, created once and updated in place in every epoch "
                    "(a new tensor made from it each epoch is another leaf)",
                )

    def test_leaves_x_and_y_as_they_were(self, kata):
        check_inputs_untouched(kata.fit_autograd, "fit_autograd")


def _record_optimizer_steps():
    """Record every optimizer step taken while the hook is registered: (optimizer type, lr, params)."""
    steps = []

    def hook(optimizer, args, kwargs):
        group = optimizer.param_groups[0]
        steps.append(
            (
                type(optimizer),
                group["lr"],
                group.get("momentum", 0),
                group.get("weight_decay", 0),
                [id(p) for g in optimizer.param_groups for p in g["params"]],
            )
        )

    return steps, register_optimizer_step_post_hook(hook)


@exercise("fit_optimizer")
class TestFitOptimizer:
    def test_lands_on_the_least_squares_line(self, kata, device):
        x, y = tensors(device)
        got = kata.fit_optimizer(x, y, 0.0, 0.0, LR, EPOCHS)
        check_pair(got, LINE, fit_call("fit_optimizer", x, a0=0.0, b0=0.0, lr=LR, n_epochs=EPOCHS), atol=LINE_ATOL)

    def test_matches_exact_gradient_descent_after_a_few_epochs(self, kata):
        # optimizer.step() does not zero the gradients: without zero_grad() they add up.
        x, y = tensors()
        got = kata.fit_optimizer(x, y, **FEW)
        check_pair(got, exact_gd(X_TRAIN, Y_TRAIN, **FEW), fit_call("fit_optimizer", x, **FEW), rtol=1e-5)

    def test_sgd_over_a_and_b_steps_once_per_epoch(self, kata):
        x, y = tensors()
        steps, handle = _record_optimizer_steps()
        try:
            got = kata.fit_optimizer(x, y, 0.0, 0.0, 0.1, 3)
        finally:
            handle.remove()
        call = fit_call("fit_optimizer", x, a0=0.0, b0=0.0, lr=0.1, n_epochs=3)
        check(len(steps) == 3, f"{call} took {len(steps)} optimizer steps; expected 3 (one optimizer.step() per epoch)")
        kind, lr, momentum, decay, params = steps[0]
        check(kind is torch.optim.SGD, f"{call} stepped a {kind.__name__}; expected torch.optim.SGD")
        check(
            lr == 0.1 and momentum == 0 and decay == 0,
            f"{call} used SGD with lr={lr}, momentum={momentum}, weight_decay={decay}; expected lr=0.1, plain steps "
            "(no momentum, no weight decay)",
        )
        returned = [id(t) for t in got] if isinstance(got, tuple) else []
        check(
            sorted(params) == sorted(returned) and len(params) == 2,
            f"{call}: the optimizer held {len(params)} parameter(s), not the returned a and b; expected one SGD over "
            "exactly the a and b it returns",
        )

    @pytest.mark.parametrize("where, dtype", [("cpu", torch.float64), (META, torch.float32)], ids=["float64", "meta"])
    def test_returns_leaf_parameters_with_the_dtype_and_device_of_x(self, kata, where, dtype):
        x, y = tensors(where, dtype)
        call = fit_call("fit_optimizer", x, a0=0.0, b0=0.0, lr=0.1, n_epochs=2)
        got = run_on_meta(lambda: kata.fit_optimizer(x, y, 0.0, 0.0, 0.1, 2), call, CREATE_ON_DEVICE)
        check_leaf_params(got, x, call)

    def test_leaves_x_and_y_as_they_were(self, kata):
        check_inputs_untouched(kata.fit_optimizer, "fit_optimizer")


@exercise("fit_loss_fn")
class TestFitLossFn:
    def test_lands_on_the_least_squares_line(self, kata, device):
        x, y = tensors(device)
        got = kata.fit_loss_fn(x, y, 0.0, 0.0, LR, EPOCHS)
        check_pair(got, LINE, fit_call("fit_loss_fn", x, a0=0.0, b0=0.0, lr=LR, n_epochs=EPOCHS), atol=LINE_ATOL)

    def test_matches_exact_gradient_descent_after_a_few_epochs(self, kata):
        # reduction='sum' makes every gradient 80 times too large.
        x, y = tensors()
        got = kata.fit_loss_fn(x, y, **FEW)
        check_pair(got, exact_gd(X_TRAIN, Y_TRAIN, **FEW), fit_call("fit_loss_fn", x, **FEW), rtol=1e-5)

    def test_the_loss_comes_from_an_mse_loss_module_each_epoch(self, kata, monkeypatch):
        calls = []
        original = nn.MSELoss.forward

        def spy(self, *args, **kwargs):
            # Bound by name, so loss_fn(input=prediction, target=y) counts as well as loss_fn(prediction, y).
            bound = inspect.signature(original).bind(self, *args, **kwargs)
            prediction, target = bound.arguments["input"], bound.arguments["target"]
            calls.append(self.reduction)
            order.append(prediction.requires_grad and not target.requires_grad and same_values(target, y))
            return original(*bound.args, **bound.kwargs)

        order = []

        monkeypatch.setattr(nn.MSELoss, "forward", spy)
        x, y = tensors()
        kata.fit_loss_fn(x, y, 0.0, 0.0, 0.1, 3)
        call = fit_call("fit_loss_fn", x, a0=0.0, b0=0.0, lr=0.1, n_epochs=3)
        check(
            len(calls) == 3,
            f"{call} called an nn.MSELoss {len(calls)} time(s); expected 3, once per epoch (loss = loss_fn(prediction, y))",
        )
        check(
            all(r == "mean" for r in calls),
            f"{call} used nn.MSELoss(reduction={calls[0]!r}); expected the mean over the points ('mean')",
        )
        check(
            all(order),
            f"{call} called the nn.MSELoss with the arguments in another order; expected loss_fn(prediction, y)",
        )

    def test_returns_leaf_parameters_on_the_device_of_x(self, kata):
        x, y = tensors(META)
        call = fit_call("fit_loss_fn", x, a0=0.0, b0=0.0, lr=0.1, n_epochs=2)
        got = run_on_meta(lambda: kata.fit_loss_fn(x, y, 0.0, 0.0, 0.1, 2), call, CREATE_ON_DEVICE)
        check_leaf_params(got, x, call)

    def test_leaves_x_and_y_as_they_were(self, kata):
        check_inputs_untouched(kata.fit_loss_fn, "fit_loss_fn")


@exercise("ManualLinearRegression")
class TestManualLinearRegression:
    def test_registers_a_and_b_as_parameters_of_shape_1(self, kata):
        torch.manual_seed(0)
        model = kata.ManualLinearRegression()
        params = dict(model.named_parameters())
        check(
            sorted(params) == ["a", "b"],
            f"ManualLinearRegression().named_parameters() has {sorted(params)}; expected ['a', 'b']: "
            "wrap each tensor in nn.Parameter and assign it to self.a / self.b",
        )
        for name, p in params.items():
            check(
                p.shape == (1,) and p.dtype == torch.float32 and p.requires_grad,
                f"parameter {name} is {describe(p)}; expected shape (1,), float32, requiring grad",
            )
        check(
            sorted(model.state_dict()) == ["a", "b"],
            f"state_dict() keys are {sorted(model.state_dict())}; expected ['a', 'b']",
        )

    def test_forward_computes_a_plus_b_times_x(self, kata):
        model = kata.ManualLinearRegression()
        with torch.no_grad():
            model.a.fill_(0.5)
            model.b.fill_(-2.0)
        x = torch.tensor([[0.0], [1.0], [3.0]])
        check_tensor(model(x), torch.tensor([[0.5], [-1.5], [-5.5]]), "with a=0.5, b=-2, model(x=[[0], [1], [3]])")

    def test_initial_values_come_from_the_seeded_random_generator(self, kata):
        def initial(seed):
            torch.manual_seed(seed)
            return [p.detach().clone() for p in kata.ManualLinearRegression().parameters()]

        first, again, other = initial(1), initial(1), initial(2)
        check(
            all(torch.equal(p, q) for p, q in zip(first, again)),
            "two models built after torch.manual_seed(1) differ; expected identical starts",
        )
        check(
            not all(torch.equal(p, q) for p, q in zip(first, other)),
            f"models built after torch.manual_seed(1) and (2) both start at {[p.tolist() for p in first]}; "
            "expected random starts from torch.randn",
        )

    def test_initial_values_are_standard_normal(self, kata):
        values = {"a": [], "b": []}
        for seed in range(100):
            torch.manual_seed(seed)
            model = kata.ManualLinearRegression()
            for name in values:
                values[name].append(float(getattr(model, name).detach().reshape(-1)[0]))
        for name, draws in values.items():
            mean, std = float(np.mean(draws)), float(np.std(draws))
            check(
                abs(mean) < 0.3 and 0.7 < std < 1.3 and min(draws) < -0.5 and max(draws) > 0.5,
                f"over 100 seeds, ManualLinearRegression().{name} started with mean {mean:.3f}, standard deviation "
                f"{std:.3f}, range [{min(draws):.3f}, {max(draws):.3f}]; expected draws from a standard normal "
                "(mean 0, standard deviation 1)",
            )

    def test_moves_with_the_model_to_another_device(self, kata):
        model = kata.ManualLinearRegression().to(META)
        out = run_on_meta(
            lambda: model(torch.zeros(4, 1, device=META)),
            "after model.to('meta'), model(x on meta)",
            "model.to(device) moves nn.Parameters, not plain tensor attributes.",
        )
        check(
            isinstance(out, torch.Tensor) and out.device == META and out.shape == (4, 1),
            f"after model.to('meta'), model(x of shape (4, 1) on meta) returned {describe(out)}; expected shape (4, 1) "
            "on meta (plain tensor attributes do not move with the model; nn.Parameters do)",
        )

    def test_trains_to_the_least_squares_line(self, kata, device):
        torch.manual_seed(0)
        model = kata.ManualLinearRegression().to(device)
        train_full_batch(model, *tensors(device), LR, EPOCHS)
        check_pair(
            (model.a, model.b),
            LINE,
            f"after {EPOCHS} epochs of SGD(lr={LR}) on model.parameters(), (model.a, model.b)",
            atol=LINE_ATOL,
        )


@exercise("LayerLinearRegression")
class TestLayerLinearRegression:
    def test_holds_one_linear_layer_with_one_input_and_one_output(self, kata):
        model = kata.LayerLinearRegression()
        layer = getattr(model, "linear", None)
        check(
            isinstance(layer, nn.Linear) and layer.in_features == 1 and layer.out_features == 1,
            f"LayerLinearRegression().linear is {describe(layer)}; expected nn.Linear(1, 1)",
        )
        names = sorted(dict(model.named_parameters()))
        check(
            names == ["linear.bias", "linear.weight"],
            f"named_parameters() has {names}; expected ['linear.bias', 'linear.weight']",
        )
        keys = sorted(model.state_dict())
        check(
            keys == ["linear.bias", "linear.weight"],
            f"LayerLinearRegression().state_dict() has the keys {keys}; expected ['linear.bias', 'linear.weight']",
        )

    def test_forward_is_the_layers_output(self, kata):
        model = kata.LayerLinearRegression()
        with torch.no_grad():
            model.linear.weight.fill_(3.0)
            model.linear.bias.fill_(-1.0)
        x = torch.tensor([[0.0], [1.0], [2.0]])
        check_tensor(model(x), torch.tensor([[-1.0], [2.0], [5.0]]), "with weight=3, bias=-1, model(x=[[0], [1], [2]])")

    def test_forward_uses_the_same_layer_every_call(self, kata):
        torch.manual_seed(0)
        model = kata.LayerLinearRegression()
        x = torch.tensor([[0.5], [2.0]])
        first = model(x).detach().clone()
        check_tensor(model(x), first, "model(x) called a second time (a layer made in forward is new each call)")

    def test_trains_to_the_least_squares_line(self, kata, device):
        torch.manual_seed(0)
        model = kata.LayerLinearRegression().to(device)
        train_full_batch(model, *tensors(device), LR, EPOCHS)
        check_pair(
            (model.linear.bias, model.linear.weight),
            LINE,
            f"after {EPOCHS} epochs of SGD(lr={LR}), (linear.bias, linear.weight)",
            atol=LINE_ATOL,
        )


def _linear(device="cpu", a=0.5, b=-0.3) -> nn.Linear:
    model = nn.Linear(1, 1).to(device)
    with torch.no_grad():
        model.bias.fill_(a)
        model.weight.fill_(b)
    return model


@exercise("make_train_step")
class TestMakeTrainStep:
    def test_making_the_step_does_not_train_yet(self, kata):
        model = _linear()
        before = [p.detach().clone() for p in model.parameters()]
        step = kata.make_train_step(model, nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.1))
        check(
            callable(step), f"make_train_step(model, loss_fn, optimizer) returned {describe(step)}; expected a function"
        )
        check(
            all(torch.equal(p, q) for p, q in zip(model.parameters(), before)),
            "make_train_step(...) changed the model's parameters; expected it only to build the function that trains",
        )

    def test_one_step_returns_the_loss_before_the_update_as_a_float(self, kata):
        model = _linear()
        x, y = tensors()
        with torch.no_grad():
            expected = nn.functional.mse_loss(model(x), y).item()
        step = kata.make_train_step(model, nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.1))
        got = step(x, y)
        check(isinstance(got, float), f"train_step(x, y) returned {describe(got)}; expected a Python float")
        check(
            math.isclose(got, expected, rel_tol=1e-5),
            f"train_step(x, y) returned {got}; expected the loss before the update, {expected}",
        )

    @pytest.mark.parametrize("n_steps", [1, 3], ids=["one_step", "three_steps"])
    def test_steps_match_exact_gradient_descent(self, kata, device, n_steps):
        # After the first step, gradients that were not zeroed add up.
        model = _linear(device)
        x, y = tensors(device)
        step = kata.make_train_step(model, nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.1))
        for _ in range(n_steps):
            step(x, y)
        expected = exact_gd(X_TRAIN, Y_TRAIN, 0.5, -0.3, 0.1, n_steps)
        check_pair(
            (model.bias, model.weight),
            expected,
            f"after {n_steps} call(s) of train_step(x, y) with SGD(lr=0.1), (bias, weight)",
            rtol=1e-5,
        )

    def test_puts_the_model_in_training_mode(self, kata):
        model = _SpyModel()
        step = kata.make_train_step(model, nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.1))
        model.eval()  # a validation pass between building the step and calling it
        step(*tensors())
        modes = [training for training, _ in model.seen]
        check(
            modes and all(modes),
            f"train_step(x, y) on a model left in eval mode ran its forward pass with model.training = {modes}; "
            "expected it in training mode",
        )
        check(
            model.training, "after train_step(x, y), model.training is False; expected the model left in training mode"
        )

    def test_the_loss_is_loss_fn_of_prediction_then_y(self, kata):
        model = _linear()
        x, y = tensors()
        seen = []

        def loss_fn(prediction, target):
            seen.append((prediction.requires_grad, not target.requires_grad and same_values(target, y)))
            return ((prediction - target) ** 2).mean()

        step = kata.make_train_step(model, loss_fn, torch.optim.SGD(model.parameters(), lr=0.1))
        step(x, y)
        check(
            seen == [(True, True)],
            f"train_step(x, y) called loss_fn with (first argument is the prediction, second is y) = {seen}; "
            "expected one call, loss_fn(prediction, y)",
        )


def _pairs(n=20) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.arange(float(n)).unsqueeze(1)
    return x, 10 * x


def _epoch_order(loader) -> list[int]:
    return [int(v) for xb, _ in loader for v in xb.reshape(-1)]


@exercise("make_loader")
class TestMakeLoader:
    def test_every_sample_once_per_epoch_in_batches_of_batch_size(self, kata):
        x, y = _pairs(10)
        loader = kata.make_loader(x, y, 4, seed=0)
        check(
            isinstance(loader, DataLoader), f"make_loader(...) returned {describe(loader)}; expected a torch DataLoader"
        )
        batches = list(loader)
        sizes = [len(b[0]) for b in batches]
        check(
            sizes == [4, 4, 2],
            f"make_loader(10 samples, batch_size=4) gave batches of sizes {sizes}; expected [4, 4, 2]",
        )
        check(
            all(torch.equal(yb, 10 * xb) for xb, yb in batches),
            "a batch's y rows do not belong to its x rows; expected (x[i], y[i]) pairs",
        )
        check(
            sorted(_epoch_order(loader)) == list(range(10)),
            f"one epoch gave samples {_epoch_order(loader)}; expected each of 0..9 once",
        )

    def test_shuffles_and_reshuffles_every_epoch(self, kata):
        loader = kata.make_loader(*_pairs(), 5, seed=0)
        first, second = _epoch_order(loader), _epoch_order(loader)
        check(
            first != list(range(20)),
            f"make_loader(..., seed=0) gave the samples in order {first}; expected a shuffled order (shuffle=True)",
        )
        check(first != second, f"two epochs of the same loader both gave {first}; expected a new order each epoch")

    def test_the_order_depends_on_the_seed_only(self, kata):
        torch.manual_seed(1)
        loader = kata.make_loader(*_pairs(), 5, seed=7)
        torch.manual_seed(2)  # someone else uses the global generator before the loop runs
        first = _epoch_order(loader)
        torch.manual_seed(3)
        loader = kata.make_loader(*_pairs(), 5, seed=7)
        torch.manual_seed(4)
        again = _epoch_order(loader)
        check(
            first == again,
            f"two loaders with seed=7 gave different orders ({first} and {again}) when the global RNG was used in "
            "between; expected the same order: the order depends on the global random generator, not on the seed alone",
        )

    def test_different_seeds_give_different_orders(self, kata):
        a = _epoch_order(kata.make_loader(*_pairs(), 5, seed=0))
        b = _epoch_order(kata.make_loader(*_pairs(), 5, seed=1))
        check(a != b, f"make_loader with seed=0 and seed=1 both gave {a}; expected the seed to pick the order")


class _RecordingStep:
    """A train_step stand-in: records each batch and returns 0.0, 1.0, 2.0, ..."""

    def __init__(self):
        self.batches = []

    def __call__(self, x, y):
        self.batches.append((x, y))
        return float(len(self.batches) - 1)


def _shuffled_loader(n=20, batch_size=5, seed=0) -> DataLoader:
    return DataLoader(
        TensorDataset(*_pairs(n)), batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed)
    )


@exercise("train_minibatches")
class TestTrainMinibatches:
    def test_returns_each_batch_loss_in_order(self, kata):
        step = _RecordingStep()
        got = kata.train_minibatches(step, _shuffled_loader(), 3, "cpu")
        check(
            isinstance(got, list) and got == [float(i) for i in range(12)],
            f"train_minibatches(step, loader of 4 batches, n_epochs=3, 'cpu') returned {describe(got)}; expected the "
            "12 losses train_step returned, in order: [0.0, 1.0, ..., 11.0]",
        )

    def test_train_step_gets_x_batch_then_its_y_batch(self, kata):
        step = _RecordingStep()
        kata.train_minibatches(step, _shuffled_loader(), 1, "cpu")
        check(
            step.batches and all(torch.equal(yb, 10 * xb) for xb, yb in step.batches),
            "train_minibatches handed train_step arguments that are not (x_batch, y_batch) pairs; expected "
            "train_step(x_batch, y_batch) with y = 10 * x row by row",
        )

    def test_zero_epochs_give_an_empty_list(self, kata):
        step = _RecordingStep()
        got = kata.train_minibatches(step, _shuffled_loader(), 0, "cpu")
        check(
            got == [] and isinstance(got, list) and not step.batches,
            f"train_minibatches(step, loader, n_epochs=0, 'cpu') returned {describe(got)} after {len(step.batches)} "
            "steps; expected [] and no step",
        )

    def test_each_epoch_is_a_fresh_pass_over_every_sample(self, kata):
        step = _RecordingStep()
        kata.train_minibatches(step, _shuffled_loader(), 2, "cpu")
        seen = [int(v) for xb, _ in step.batches for v in xb.reshape(-1)]
        check(
            len(seen) == 40,
            f"train_minibatches(..., n_epochs=2) passed {len(seen)} samples to train_step; expected 2 x 20",
        )
        first, second = seen[:20], seen[20:]
        check(
            sorted(first) == sorted(second) == list(range(20)),
            f"the epochs saw samples {first} and {second}; expected each sample once per epoch",
        )
        check(
            first != second,
            f"both epochs came in the order {first}; expected a new pass over the loader (a new order) each epoch",
        )

    def test_moves_each_batch_to_the_device(self, kata):
        step = _RecordingStep()
        kata.train_minibatches(step, _shuffled_loader(), 1, META)
        devices = {str(t.device) for xy in step.batches for t in xy}
        check(
            devices == {"meta"},
            f"train_minibatches(..., device='meta') handed train_step tensors on {sorted(devices)}; expected them on meta",
        )

    def test_trains_a_model_to_the_least_squares_line(self, kata):
        torch.manual_seed(0)
        model = nn.Linear(1, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
        loss_fn = nn.MSELoss()

        def train_step(x, y):
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            return loss.item()

        x, y = tensors()
        loader = DataLoader(
            TensorDataset(x, y), batch_size=20, shuffle=True, generator=torch.Generator().manual_seed(0)
        )
        losses = kata.train_minibatches(train_step, loader, 50, "cpu")
        check(
            isinstance(losses, list) and len(losses) == 200,
            f"train_minibatches(..., 4 batches, n_epochs=50) returned {describe(losses)}; expected 200 losses",
        )
        check_pair(
            (model.bias, model.weight),
            LINE,
            "after 50 epochs of mini-batches of 20 with SGD(lr=0.2), (bias, weight)",
            atol=MINIBATCH_ATOL,
        )


class _SpyModel(nn.Module):
    """nn.Linear(1, 1) that records, at each forward, the mode and whether autograd is recording."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)
        self.seen = []

    def forward(self, x):
        self.seen.append((self.training, torch.is_grad_enabled()))
        return self.linear(x)


def _val_setup(device="cpu"):
    torch.manual_seed(0)
    model = _SpyModel().to(device)
    x, y = torch.from_numpy(X_VAL).float(), torch.from_numpy(Y_VAL).float()
    loader = DataLoader(TensorDataset(x, y), batch_size=5)  # 4 equal batches, on the CPU
    return model.train(), loader, x, y


@exercise("validate")
class TestValidate:
    def test_returns_the_mean_validation_loss_as_a_float(self, kata, device):
        model, loader, x, y = _val_setup(device)
        with torch.no_grad():
            expected = nn.functional.mse_loss(model.linear(x.to(device)), y.to(device)).item()
        got = kata.validate(model, nn.MSELoss(), loader, device)
        check(
            isinstance(got, float),
            f"validate(model, loss_fn, loader, {str(device)!r}) returned {describe(got)}; expected a Python float",
        )
        check(
            math.isclose(got, expected, rel_tol=1e-5),
            f"validate(model, loss_fn, loader of 4 batches) returned {got}; expected the mean loss {expected}",
        )

    def test_each_batch_counts_once_whatever_its_size(self, kata):
        model, _, x, y = _val_setup()
        loader = DataLoader(TensorDataset(x, y), batch_size=8)  # batches of 8, 8 and 4
        with torch.no_grad():
            losses = [nn.functional.mse_loss(model.linear(x[i : i + 8]), y[i : i + 8]).item() for i in (0, 8, 16)]
        expected = sum(losses) / 3
        got = kata.validate(model, nn.MSELoss(), loader, "cpu")
        check(
            isinstance(got, float) and math.isclose(got, expected, rel_tol=1e-5),
            f"validate(model, loss_fn, loader of batches of 8, 8 and 4) returned {describe(got)}; expected the mean "
            f"of the three batch losses {[round(v, 6) for v in losses]}, {expected:.6f}",
        )

    def test_the_loss_is_loss_fn_of_prediction_then_y_batch(self, kata):
        model, loader, _, _ = _val_setup()

        def loss_fn(prediction, target):  # depends on the second argument only
            return target.sum()

        batch_sums = [float(yb.sum()) for _, yb in loader]
        got = kata.validate(model, loss_fn, loader, "cpu")
        expected = sum(batch_sums) / len(batch_sums)
        check(
            isinstance(got, float) and math.isclose(got, expected, rel_tol=1e-5),
            f"validate(model, loss_fn, loader) with a loss_fn that returns the sum of its second argument returned "
            f"{describe(got)}; expected {expected:.6f}, the mean of the y batches' sums: loss_fn(prediction, y_batch)",
        )

    def test_runs_the_model_in_eval_mode_and_leaves_it_there(self, kata):
        model, loader, _, _ = _val_setup()
        kata.validate(model, nn.MSELoss(), loader, "cpu")
        modes = [training for training, _ in model.seen]
        check(
            modes and not any(modes),
            f"validate ran forward with model.training = {modes}; expected False each time (eval mode)",
        )
        check(not model.training, "after validate, model.training is True; expected the model left in eval mode")

    def test_runs_the_model_without_recording_gradients(self, kata):
        model, loader, _, _ = _val_setup()
        kata.validate(model, nn.MSELoss(), loader, "cpu")
        grad_on = [g for _, g in model.seen]
        check(
            grad_on and not any(grad_on),
            f"validate ran forward with autograd recording (torch.is_grad_enabled()) = {grad_on}; expected False "
            "each time: no graph for a backward pass that never comes",
        )

    @pytest.mark.parametrize("grad_enabled", [True, False], ids=["caller-records", "caller-under-no_grad"])
    def test_the_callers_grad_mode_is_kept(self, kata, grad_enabled):
        model, loader, _, _ = _val_setup()
        with torch.set_grad_enabled(grad_enabled):
            kata.validate(model, nn.MSELoss(), loader, "cpu")
            got = torch.is_grad_enabled()
        check(
            got == grad_enabled,
            f"after validate(...) called with autograd recording {'on' if grad_enabled else 'off'}, recording is "
            f"{'on' if got else 'off'}; expected the caller's setting kept",
        )

    def test_leaves_parameters_and_gradients_as_they_were(self, kata):
        model, loader, _, _ = _val_setup()
        before = [p.detach().clone() for p in model.parameters()]
        kata.validate(model, nn.MSELoss(), loader, "cpu")
        check(
            all(torch.equal(p, q) for p, q in zip(model.parameters(), before)),
            "validate changed the model's parameters; expected them as they were (no training step)",
        )
        grads = [describe(p.grad) for p in model.parameters() if p.grad is not None]
        check(
            not grads,
            f"after validate, the parameters have .grad {grads}; expected None, as before the call",
        )

    def test_stored_gradients_are_kept(self, kata):
        model, loader, _, _ = _val_setup()
        for p in model.parameters():
            p.grad = torch.full_like(p, 0.25)
        kata.validate(model, nn.MSELoss(), loader, "cpu")
        grads = {name: describe(p.grad) for name, p in model.named_parameters()}
        check(
            all(p.grad is not None and torch.equal(p.grad, torch.full_like(p, 0.25)) for p in model.parameters()),
            f"validate(model whose .grad all hold 0.25, ...) left the gradients {grads}; expected them as they were",
        )

    def test_moves_each_batch_to_the_device(self, kata):
        seen = []

        class Recorder(nn.Module):
            def forward(self, x):
                seen.append(str(x.device))
                return torch.zeros(len(x), 1)

        def loss_fn(prediction, y):
            seen.append(str(y.device))
            return torch.tensor(1.0)

        _, loader, _, _ = _val_setup()
        got = kata.validate(Recorder(), loss_fn, loader, META)
        check(
            set(seen) == {"meta"},
            f"validate(..., device='meta') passed x and y batches on {sorted(set(seen))}; expected them on meta",
        )
        check(got == 1.0, f"validate with a loss of 1.0 for every batch returned {describe(got)}; expected 1.0")
