"""Tests for kata 05, leaves and in-place updates: one class per exercise, in learning order."""

import re
import warnings

import pytest
import torch

from dojo.testing import check, check_tensor, describe, exercise

# The "meta" device exists on every machine, so it shows a `.to(device)` recorded by autograd
# (a ToCopyBackward0 node) even where there is no GPU: on the CPU, `.to("cpu")` returns the
# tensor itself and hides the mistake.
META = torch.device("meta")

# Confirmed on torch 2.14.1: an in-place op on a leaf that requires grad raises a RuntimeError
# with this text (plus a final "."); a saved tensor modified in place before backward raises the
# second one at backward, followed by details of the tensor and a hint that vary between versions.
LEAF_INPLACE = "a leaf Variable that requires grad is being used in an in-place operation"
SAVED_MODIFIED = "one of the variables needed for gradient computation has been modified by an inplace operation"


def regression_graph(device="cpu"):
    """The classic graph: parameters a, b; data x, y; yhat = a + b * x; loss = mean((yhat - y)**2)."""
    g = torch.Generator().manual_seed(5)
    x = torch.linspace(-1.0, 1.0, 8)
    y = 1.0 + 2.0 * x + 0.1 * torch.randn(8, generator=g)
    a = torch.randn(1, generator=g)
    b = torch.randn(1, generator=g)
    x, y, a, b = (t.to(device) for t in (x, y, a, b))
    a.requires_grad_()
    b.requires_grad_()
    yhat = a + b * x
    loss = ((yhat - y) ** 2).mean()
    return {"a": a, "b": b, "x": x, "y": y, "yhat": yhat, "loss": loss}


def filled_grads(named):
    """The names whose .grad holds a tensor, asked after backward (PyTorch's own answer)."""
    with warnings.catch_warnings():
        # Reading .grad of a non-leaf warns ("...not a leaf Tensor is being accessed"); here it is the point.
        warnings.simplefilter("ignore", UserWarning)
        return [name for name, t in named.items() if t.grad is not None]


def node_cases():
    """(label, tensor, expected (is_leaf, grad_fn name)) for node_info."""
    g = regression_graph()
    a, b, x, y, yhat, loss = (g[k] for k in ("a", "b", "x", "y", "yhat", "loss"))
    scaled = torch.randn(3, generator=torch.Generator().manual_seed(0), requires_grad=True) * 0.01
    return [
        ("a", a, (True, None)),
        ("x", x, (True, None)),
        ("b * x", b * x, (False, "MulBackward0")),
        ("yhat = a + b * x", yhat, (False, "AddBackward0")),
        ("yhat - y", yhat - y, (False, "SubBackward0")),
        ("loss = ((yhat - y) ** 2).mean()", loss, (False, "MeanBackward0")),
        ("loss.detach()", loss.detach(), (True, None)),
        ("torch.randn(3, requires_grad=True) * 0.01", scaled, (False, "MulBackward0")),
    ]


@exercise("node_info")
class TestNodeInfo:
    @pytest.mark.parametrize("index", range(8), ids=[case[0] for case in node_cases()])
    def test_reports_is_leaf_and_the_grad_fn_name(self, kata, index):
        label, t, expected = node_cases()[index]
        got = kata.node_info(t)
        check(
            isinstance(got, tuple) and got == expected,
            f"node_info({label}) returned {describe(got)}; expected the tuple {expected!r} "
            "(is_leaf, then grad_fn.name() as a str, or None where there is no grad_fn)",
        )


@exercise("tensors_that_get_grad")
class TestTensorsThatGetGrad:
    def test_names_the_parameters_of_the_regression_graph_in_dict_order(self, kata):
        g = regression_graph()
        named = {k: g[k] for k in ("x", "b", "y", "a", "yhat", "loss")}
        got = kata.tensors_that_get_grad(named)
        g["loss"].backward()
        expected = filled_grads(named)  # ["b", "a"]
        check(
            got == expected,
            f"tensors_that_get_grad({{x, b, y, a, yhat, loss}}) returned {describe(got)}; after loss.backward() "
            f"the tensors with a .grad are {expected}. The data x, y are leaves without requires_grad; "
            "yhat, loss require grad but are not leaves.",
        )

    def test_leaves_out_a_scaled_parameter_and_a_frozen_one(self, kata):
        g = torch.Generator().manual_seed(1)
        scaled = torch.randn(3, generator=g, requires_grad=True) * 0.01  # not a leaf: MulBackward0
        bias = torch.zeros(3, requires_grad=True)
        frozen = torch.randn(3, generator=g)  # a leaf that does not require grad
        out = (scaled * frozen + bias).sum()
        named = {"scaled": scaled, "bias": bias, "frozen": frozen, "out": out}
        got = kata.tensors_that_get_grad(named)
        out.backward()
        expected = filled_grads(named)  # ["bias"]
        check(
            got == expected,
            f"tensors_that_get_grad({{scaled=randn(3, requires_grad=True) * 0.01, bias=zeros(3, requires_grad=True), "
            f"frozen=randn(3), out}}) returned {describe(got)}; after out.backward() only {expected} has a .grad",
        )

    def test_includes_a_non_leaf_that_retains_its_grad(self, kata):
        g = regression_graph()
        g["yhat"].retain_grad()
        named = {k: g[k] for k in ("a", "x", "yhat", "loss")}
        got = kata.tensors_that_get_grad(named)
        g["loss"].backward()
        expected = filled_grads(named)  # ["a", "yhat"]
        check(
            got == expected,
            f"tensors_that_get_grad({{a, x, yhat, loss}}) after yhat.retain_grad() returned {describe(got)}; "
            f"after loss.backward() the tensors with a .grad are {expected} (see t.retains_grad)",
        )


@exercise("small_leaf_param")
class TestSmallLeafParam:
    def test_values_are_the_generators_noise_times_scale(self, kata, device):
        got = kata.small_leaf_param((2, 3), 0.01, torch.Generator().manual_seed(7), device)
        expected = (torch.randn(2, 3, generator=torch.Generator().manual_seed(7)) * 0.01).to(device)
        check_tensor(got, expected, f"small_leaf_param((2, 3), 0.01, generator seeded 7, {device.type!r})")

    def test_is_a_leaf_that_requires_grad(self, kata, device):
        got = kata.small_leaf_param((4,), 0.1, torch.Generator().manual_seed(0), device)
        check(
            isinstance(got, torch.Tensor) and got.is_leaf and got.requires_grad,
            f"small_leaf_param((4,), 0.1, generator, {device.type!r}) returned {describe(got)} with "
            f"is_leaf={getattr(got, 'is_leaf', None)}, grad_fn={getattr(got, 'grad_fn', None)}; expected a leaf that "
            "requires grad (no grad_fn). Scaling or moving after requires_grad=True is recorded by autograd.",
        )

    def test_is_still_a_leaf_after_moving_to_another_device(self, kata):
        got = kata.small_leaf_param((5,), 0.5, torch.Generator().manual_seed(0), META)
        check(
            isinstance(got, torch.Tensor) and got.device == META and got.is_leaf and got.requires_grad,
            f"small_leaf_param((5,), 0.5, generator, 'meta') returned {describe(got)} with "
            f"is_leaf={getattr(got, 'is_leaf', None)}, grad_fn={getattr(got, 'grad_fn', None)}; expected a leaf "
            "that requires grad on 'meta'. .to(device) after requires_grad=True is a ToCopyBackward0 node: "
            "move first, ask for grad last.",
        )

    def test_backward_fills_its_grad(self, kata):
        p = kata.small_leaf_param((3,), 0.01, torch.Generator().manual_seed(2))
        (3.0 * p).sum().backward()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            grad = p.grad
        check(
            grad is not None,
            f"after (3 * p).sum().backward() on p = small_leaf_param(...) ({describe(p)}), p.grad is None; "
            "expected tensor([3., 3., 3.]). The gradient went to a leaf you did not return.",
        )
        check_tensor(grad, torch.full((3,), 3.0), "p.grad after (3 * p).sum().backward()")


@exercise("leaf_inplace_error_message")
class TestLeafInplaceErrorMessage:
    def test_returns_pytorchs_message_for_an_in_place_update_of_a_leaf(self, kata, device):
        p = torch.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
        got = kata.leaf_inplace_error_message(p)
        # PyTorch's own message, from the same mistake on a twin of p.
        twin = torch.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
        with pytest.raises(RuntimeError, match=re.escape(LEAF_INPLACE)) as raised:
            twin.mul_(2.0)
        expected = str(raised.value)
        check(
            isinstance(got, str) and got == expected,
            f"leaf_inplace_error_message(p, a leaf that requires grad) returned {describe(got)}; expected str(err) "
            f"of the RuntimeError that an in-place op on p itself raises: {expected!r}",
        )

    def test_the_parameter_is_left_as_it_was(self, kata):
        p = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
        kata.leaf_inplace_error_message(p)
        check(
            p.is_leaf and p.requires_grad and p.tolist() == [1.0, 2.0, 3.0],
            f"after leaf_inplace_error_message(p=[1., 2., 3.]), p is {describe(p)} (is_leaf={p.is_leaf}); "
            "expected it unchanged: the failed in-place op writes nothing, and nothing else should",
        )


@exercise("clamp_in_place")
class TestClampInPlace:
    def test_the_callers_parameter_is_clamped(self, kata, device):
        p = torch.tensor([-2.0, -0.5, 0.0, 0.7, 3.0], device=device, requires_grad=True)
        kata.clamp_in_place(p, -1.0, 1.0)
        check_tensor(
            p,
            torch.tensor([-1.0, -0.5, 0.0, 0.7, 1.0], device=device),
            "after clamp_in_place(p, -1, 1), the caller's p",
        )

    def test_returns_the_same_leaf_still_requiring_grad(self, kata):
        p = torch.tensor([-2.0, 2.0], requires_grad=True)
        got = kata.clamp_in_place(p, -1.0, 1.0)
        check(got is p, f"clamp_in_place(p, -1, 1) returned {describe(got)}, a new tensor; expected p itself")
        check(
            p.is_leaf and p.requires_grad,
            f"after clamp_in_place, p is {describe(p)} with is_leaf={p.is_leaf}; expected a leaf that requires grad",
        )

    def test_autograd_sees_the_change_through_the_version_counter(self, kata):
        p = torch.tensor([-2.0, 2.0], requires_grad=True)
        version = p._version
        kata.clamp_in_place(p, -1.0, 1.0)
        # p.data has its own version counter: a graph that saved p would not notice the new values.
        check(
            p._version > version,
            "clamp_in_place(p, -1, 1) did not move p's version counter: the change went through p.data, behind "
            "autograd's back. Use an in-place op on p itself inside `with torch.no_grad():`",
        )


def trained_params(device="cpu"):
    """Regression parameters a, b with .grad filled by one backward, and a copy of their values/grads."""
    g = regression_graph(device)
    g["loss"].backward()
    a, b = g["a"], g["b"]
    return a, b, [(p.detach().clone(), p.grad.clone()) for p in (a, b)]


@exercise("sgd_step")
class TestSgdStep:
    def test_each_parameter_moves_against_its_gradient(self, kata, device):
        a, b, before = trained_params(device)
        kata.sgd_step([a, b], 0.1)
        for name, p, (value, grad) in zip("ab", (a, b), before):
            check_tensor(p, value - 0.1 * grad, f"after sgd_step([a, b], lr=0.1), the caller's {name}")

    def test_parameters_stay_the_same_leaves_requiring_grad(self, kata):
        a, b, _ = trained_params()
        params = [a, b]
        kata.sgd_step(params, 0.1)
        check(
            params[0] is a and params[1] is b,
            "sgd_step(params, lr) put new tensors into the caller's list; expected the same parameter objects, "
            "updated in place (the model holds the originals)",
        )
        for name, p in zip("ab", (a, b)):
            check(
                p.is_leaf and p.requires_grad,
                f"after sgd_step, parameter {name} is {describe(p)} with is_leaf={p.is_leaf}; "
                "expected a leaf that requires grad",
            )

    def test_gradients_are_reset_for_the_next_backward(self, kata):
        a, b, _ = trained_params()
        kata.sgd_step([a, b], 0.1)
        for name, p in zip("ab", (a, b)):
            check(
                p.grad is None or bool((p.grad == 0).all()),
                f"after sgd_step, {name}.grad is {describe(p.grad)}; expected None or zeros: backward() adds into "
                ".grad, so the next step would use the sum of both gradients",
            )

    def test_a_parameter_without_grad_is_skipped(self, kata):
        a, b, _ = trained_params()
        unused = torch.ones(2, requires_grad=True)  # took no part in the loss: its .grad is None
        kata.sgd_step([a, unused, b], 0.1)
        check(
            unused.grad is None and unused.tolist() == [1.0, 1.0],
            f"sgd_step changed a parameter whose .grad was None: now {describe(unused)}, grad {describe(unused.grad)}; "
            "expected it left alone, grad still None",
        )

    def test_autograd_sees_the_update_through_the_version_counter(self, kata):
        a, b, _ = trained_params()
        versions = [a._version, b._version]
        kata.sgd_step([a, b], 0.1)
        check(
            a._version > versions[0] and b._version > versions[1],
            "sgd_step did not move the parameters' version counters: the update went through p.data (or a new "
            "tensor). Update p itself in place inside `with torch.no_grad():`",
        )


@exercise("loss_for_logging")
class TestLossForLogging:
    def test_returns_a_python_float(self, kata, device):
        loss = regression_graph(device)["loss"]
        got = kata.loss_for_logging(loss)
        check(
            type(got) is float and abs(got - loss.item()) <= 1e-6 * max(1.0, abs(loss.item())),
            f"loss_for_logging(loss={describe(loss)}) returned {describe(got)}; expected the Python float "
            f"{loss.item()!r}. A tensor, even loss.detach(), is not a log value: it can sit on the GPU",
        )

    def test_the_loss_can_still_be_backpropagated(self, kata):
        g = regression_graph()
        kata.loss_for_logging(g["loss"])
        try:
            g["loss"].backward()
            failure = ""
        except RuntimeError as err:
            failure = str(err).splitlines()[0]
        check(
            not failure and g["a"].grad is not None,
            f"loss.backward() after loss_for_logging(loss) failed ({failure or 'a.grad is None'}); "
            "logging must leave the loss and its graph to the caller (no detach_(), no backward())",
        )


@exercise("twice_sigmoid")
class TestTwiceSigmoid:
    def test_values_are_twice_the_sigmoid(self, kata, device):
        x = torch.tensor([-2.0, 0.0, 0.5, 3.0], device=device, requires_grad=True)
        got = kata.twice_sigmoid(x)
        check_tensor(got, 2 * torch.sigmoid(x.detach()), "twice_sigmoid(x=[-2, 0, 0.5, 3])")

    def test_backward_gives_the_analytic_gradient(self, kata, device):
        x = torch.linspace(-3.0, 3.0, 7, device=device).requires_grad_()
        out = kata.twice_sigmoid(x)
        try:
            out.sum().backward()
            failure = ""
        except RuntimeError as err:
            failure = str(err).splitlines()[0]
        check(
            not failure,
            f"twice_sigmoid(x).sum().backward() raised RuntimeError: {failure[:240]}"
            + (
                "\n(the sigmoid output autograd saved was modified in place)"
                if failure.startswith(SAVED_MODIFIED)
                else ""
            ),
        )
        check(x.grad is not None, "after twice_sigmoid(x).sum().backward(), x.grad is None; expected the gradient")
        s = torch.sigmoid(x.detach())
        check_tensor(
            x.grad, 2 * s * (1 - s), "x.grad after twice_sigmoid(x).sum().backward() (expected 2 * s * (1 - s))"
        )

    def test_the_input_is_left_unchanged(self, kata):
        x = torch.tensor([-1.0, 0.0, 1.0])
        kata.twice_sigmoid(x)
        check_tensor(x, torch.tensor([-1.0, 0.0, 1.0]), "the caller's x after twice_sigmoid(x)")
