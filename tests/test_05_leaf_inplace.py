"""Tests for kata 05, leaves and in-place updates: one class per exercise, in learning order."""

import math
import re
import warnings

import pytest
import torch

from dojo.testing import check, check_tensor, describe, exercise, storage_ptr, value_mismatch

# The "meta" device exists on every machine, so it shows a `.to(device)` recorded by autograd
# (a ToCopyBackward0 node) even where there is no GPU: on the CPU, `.to("cpu")` returns the
# tensor itself and hides the mistake.
META = torch.device("meta")

# Confirmed on torch 2.14.1: an in-place op on a leaf that requires grad raises a RuntimeError
# with this text (plus a final "."); a saved tensor modified in place before backward raises the
# second one at backward, followed by details of the tensor ("..., which is output 0 of Sigmoid,
# is at version 1; expected version 0 instead") and a hint, which vary between versions.
LEAF_INPLACE = "a leaf Variable that requires grad is being used in an in-place operation"
SAVED_MODIFIED = "one of the variables needed for gradient computation has been modified by an inplace operation"


def first_line(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def call_without_leaf_error(fn, what, expected="to update the parameter without that error"):
    """fn(), failing with a readable message if it raises the leaf in-place error."""
    __tracebackhide__ = True
    try:
        return fn()
    except RuntimeError as err:
        if LEAF_INPLACE not in str(err):
            raise
        check(
            False,
            f"{what} raised RuntimeError: {first_line(err)!r}; expected it {expected} (PyTorch raises this "
            "error for an in-place write to a leaf that requires grad while autograd is recording)",
        )


def values(t):
    return t.detach().cpu().tolist()


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


def read_grad(t):
    with warnings.catch_warnings():
        # Reading .grad of a non-leaf warns ("...not a leaf Tensor is being accessed"); here it is the point.
        warnings.simplefilter("ignore", UserWarning)
        return t.grad


# ---------------------------------------------------------------- node_info


def node_cases():
    """(label, tensor, expected (is_leaf, node kind)) for node_info."""
    g = regression_graph()
    a, b, x, y, yhat, loss = (g[k] for k in ("a", "b", "x", "y", "yhat", "loss"))
    scaled = torch.randn(3, generator=torch.Generator().manual_seed(0), requires_grad=True) * 0.01
    with torch.no_grad():
        unrecorded = b * x
    return [
        ("a", a, (True, None)),
        ("x", x, (True, None)),
        ("b * x", b * x, (False, "MulBackward0")),
        ("yhat = a + b * x", yhat, (False, "AddBackward0")),
        ("yhat - y", yhat - y, (False, "SubBackward0")),
        ("loss = ((yhat - y) ** 2).mean()", loss, (False, "MeanBackward0")),
        ("loss.detach()", loss.detach(), (True, None)),
        ("b * x computed under torch.no_grad()", unrecorded, (True, None)),
        ("torch.randn(3, requires_grad=True) * 0.01", scaled, (False, "MulBackward0")),
    ]


@exercise("node_info")
class TestNodeInfo:
    @pytest.mark.parametrize("index", range(len(node_cases())), ids=[case[0] for case in node_cases()])
    def test_reports_is_leaf_and_the_kind_of_node(self, kata, index):
        label, t, expected = node_cases()[index]
        got = kata.node_info(t)
        note = ""
        if isinstance(got, tuple) and len(got) == 2 and isinstance(got[1], str) and " object at " in got[1]:
            note = " (the second item is the printed node object, address included; expected only its kind)"
        elif isinstance(got, tuple) and len(got) == 2 and got[1] is not None and not isinstance(got[1], str):
            note = f" (the second item is a {type(got[1]).__name__}, not a str)"
        check(
            isinstance(got, tuple) and got == expected,
            f"node_info({label}) returned {describe(got)}; expected the tuple {expected!r} "
            f"(is_leaf, then the kind of node as a str, or None where no recorded operation made the tensor){note}",
        )


# ---------------------------------------------------------------- tensors_that_get_grad


def why(t):
    """What a tensor is, in the terms that decide whether backward fills its .grad."""
    if t.is_leaf:
        return "a leaf that requires grad" if t.requires_grad else "a leaf that does not require grad"
    return "a non-leaf that retains its grad" if t.retains_grad else "a non-leaf that did not ask to retain its grad"


def check_names(got, named, expected, call):
    """got must be the list `expected`; say which names are missing or extra, and why."""
    __tracebackhide__ = True
    if isinstance(got, list) and got == expected:
        return
    detail = ""
    if isinstance(got, (list, tuple)) and all(isinstance(n, str) for n in got):
        missing = [n for n in expected if n not in got]
        extra = [n for n in got if n not in expected]
        parts = [f"missing {n} ({why(named[n])})" for n in missing]
        parts += [f"extra {n} ({why(named[n]) if n in named else 'not a key of the dict'})" for n in extra]
        if not parts and not isinstance(got, list):
            parts = ["the right names, but not as a list"]
        elif not parts:
            parts = ["the right names in another order; expected the dict's order"]
        detail = "; " + "; ".join(parts)
    check(False, f"{call} returned {describe(got)}; after backward() the tensors with a .grad are {expected}{detail}")


@exercise("tensors_that_get_grad")
class TestTensorsThatGetGrad:
    def test_names_the_parameters_of_the_regression_graph_in_dict_order(self, kata):
        g = regression_graph()
        named = {k: g[k] for k in ("x", "b", "y", "a", "yhat", "loss")}
        got = kata.tensors_that_get_grad(named)
        g["loss"].backward()
        expected = [name for name, t in named.items() if read_grad(t) is not None]  # ["b", "a"]
        check_names(got, named, expected, "tensors_that_get_grad({x, b, y, a, yhat, loss})")

    def test_leaves_out_a_scaled_parameter_and_a_frozen_one(self, kata):
        g = torch.Generator().manual_seed(1)
        scaled = torch.randn(3, generator=g, requires_grad=True) * 0.01  # not a leaf: MulBackward0
        bias = torch.zeros(3, requires_grad=True)
        frozen = torch.randn(3, generator=g)  # a leaf that does not require grad
        out = (scaled * frozen + bias).sum()
        named = {"scaled": scaled, "bias": bias, "frozen": frozen, "out": out}
        got = kata.tensors_that_get_grad(named)
        out.backward()
        expected = [name for name, t in named.items() if read_grad(t) is not None]  # ["bias"]
        check_names(
            got,
            named,
            expected,
            "tensors_that_get_grad({scaled=randn(3, requires_grad=True) * 0.01, bias=zeros(3, requires_grad=True), "
            "frozen=randn(3), out})",
        )

    def test_includes_a_non_leaf_that_retains_its_grad(self, kata):
        g = regression_graph()
        g["yhat"].retain_grad()
        named = {k: g[k] for k in ("a", "x", "yhat", "loss")}
        got = kata.tensors_that_get_grad(named)
        g["loss"].backward()
        expected = [name for name, t in named.items() if read_grad(t) is not None]  # ["a", "yhat"]
        check_names(got, named, expected, "tensors_that_get_grad({a, x, yhat, loss}) after yhat.retain_grad()")


# ---------------------------------------------------------------- small_leaf_param


def leaf_problem(t):
    """Why t is not a leaf that requires grad ("" if it is)."""
    if not isinstance(t, torch.Tensor):
        return "it is not a tensor"
    if not t.requires_grad:
        return "it does not require grad"
    if not t.is_leaf:
        return (
            f"it is not a leaf: its grad_fn is {type(t.grad_fn).__name__}, an operation recorded after "
            "requires_grad was set, so backward() delivers the gradient past it"
        )
    return ""


@exercise("small_leaf_param")
class TestSmallLeafParam:
    def test_values_are_the_generators_noise_times_scale(self, kata, device):
        expected = (torch.randn(2, 3, generator=torch.Generator().manual_seed(7)) * 0.01).to(device)
        got = kata.small_leaf_param((2, 3), 0.01, torch.Generator().manual_seed(7), device)
        check_tensor(got, expected, f"small_leaf_param((2, 3), 0.01, generator seeded 7, {device.type!r})")

    def test_is_a_leaf_that_requires_grad(self, kata, device):
        got = kata.small_leaf_param((4,), 0.1, torch.Generator().manual_seed(0), device)
        problem = leaf_problem(got)
        check(
            not problem,
            f"small_leaf_param((4,), 0.1, generator, {device.type!r}) returned {describe(got)}; expected a leaf "
            f"that requires grad, but {problem}",
        )

    def test_is_still_a_leaf_after_moving_to_another_device(self, kata):
        got = kata.small_leaf_param((5,), 0.5, torch.Generator().manual_seed(0), META)
        check(
            isinstance(got, torch.Tensor) and got.device == META,
            f"small_leaf_param((5,), 0.5, generator, 'meta') returned {describe(got)}; expected a tensor on 'meta' "
            "(was the result of .to(device) used?)",
        )
        problem = leaf_problem(got)
        check(
            not problem,
            f"small_leaf_param((5,), 0.5, generator, 'meta') returned {describe(got)}; expected a leaf that "
            f"requires grad on 'meta', but {problem}",
        )

    def test_backward_fills_its_grad(self, kata):
        p = kata.small_leaf_param((3,), 0.01, torch.Generator().manual_seed(2))
        (3.0 * p).sum().backward()
        grad = read_grad(p)
        check(
            grad is not None,
            f"after (3 * p).sum().backward() on p = small_leaf_param((3,), 0.01, generator) ({describe(p)}), "
            "p.grad is None; expected tensor([3., 3., 3.]): the gradient went to another tensor",
        )
        check_tensor(grad, torch.full((3,), 3.0), "p.grad after (3 * p).sum().backward()")


# ---------------------------------------------------------------- leaf_inplace_error_message


@exercise("leaf_inplace_error_message")
class TestLeafInplaceErrorMessage:
    def test_returns_pytorchs_message_for_an_in_place_update_of_a_leaf(self, kata, device):
        # PyTorch's own message, from the same mistake on a twin of p.
        twin = torch.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
        with pytest.raises(RuntimeError, match=re.escape(LEAF_INPLACE)) as raised:
            twin.mul_(2.0)
        expected = str(raised.value)
        p = torch.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
        got = kata.leaf_inplace_error_message(p)
        note = ""
        if isinstance(got, BaseException):
            note = " (that is the exception object; expected its message)"
        elif isinstance(got, str) and got.startswith("a view of a leaf"):
            note = " (that is the message for a write to a part of p; expected the one for p itself)"
        elif isinstance(got, str) and got.startswith("RuntimeError(") and expected in got:
            note = " (that is the repr of the exception; expected only its message)"
        check(
            isinstance(got, str) and got == expected,
            f"leaf_inplace_error_message(p, a leaf that requires grad) returned {describe(got)}; expected the "
            f"message of the RuntimeError that an in-place update of p itself raises: {expected!r}{note}",
        )

    def test_the_parameter_is_left_as_it_was(self, kata):
        p = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
        kata.leaf_inplace_error_message(p)
        check(
            p.is_leaf and p.requires_grad and values(p) == [1.0, 2.0, 3.0],
            f"after leaf_inplace_error_message(p=[1., 2., 3.]), p is {describe(p)} (is_leaf={p.is_leaf}); "
            "expected it as it was: a leaf that requires grad holding [1., 2., 3.] (the failed in-place "
            "update writes nothing, and nothing else should)",
        )


# ---------------------------------------------------------------- clamp_in_place


def check_caller_changed(p, before, got, call):
    """The caller's p must no longer hold `before`; if it does, say whether a new tensor came back instead."""
    __tracebackhide__ = True
    if values(p) != before:
        return
    note = ""
    if isinstance(got, torch.Tensor) and got is not p:
        note = f"; the function returned another tensor instead, {describe(got)}"
    check(False, f"after {call}, the caller's p still holds its old values {before}{note}")


@exercise("clamp_in_place")
class TestClampInPlace:
    def test_the_callers_parameter_is_clamped(self, kata, device):
        inf = math.inf
        start = [-inf, -2.0, -1.0, -0.5, 0.0, 0.7, 1.0, 3.0, inf]
        expected = torch.tensor([-1.0, -1.0, -1.0, -0.5, 0.0, 0.7, 1.0, 1.0, 1.0], device=device)
        p = torch.tensor(start, device=device, requires_grad=True)
        before = values(p)
        call = "clamp_in_place(p=[-inf, -2, -1, -0.5, 0, 0.7, 1, 3, inf], -1, 1)"
        got = call_without_leaf_error(lambda: kata.clamp_in_place(p, -1.0, 1.0), call)
        check_caller_changed(p, before, got, call)
        check_tensor(p.detach(), expected, f"after {call}, the caller's p")

    def test_returns_p_itself_still_a_leaf_that_requires_grad(self, kata):
        p = torch.tensor([-2.0, 2.0], requires_grad=True)
        got = call_without_leaf_error(lambda: kata.clamp_in_place(p, -1.0, 1.0), "clamp_in_place(p, -1, 1)")
        check(got is p, f"clamp_in_place(p, -1, 1) returned {describe(got)}, not p itself; expected p")
        problem = leaf_problem(p)
        check(
            not problem,
            f"after clamp_in_place(p, -1, 1), p is {describe(p)}; expected a leaf that requires grad, but {problem}",
        )

    def test_the_values_change_in_the_memory_p_had(self, kata):
        p = torch.tensor([-2.0, 0.5, 2.0], requires_grad=True)
        pointer = storage_ptr(p)
        view = p.detach()[1:]  # shares p's memory: sees whatever is written there
        call = "clamp_in_place(p=[-2, 0.5, 2], -1, 1)"
        got = call_without_leaf_error(lambda: kata.clamp_in_place(p, -1.0, 1.0), call)
        check_caller_changed(p, [-2.0, 0.5, 2.0], got, call)
        check(
            storage_ptr(p) == pointer and values(view) == [0.5, 1.0],
            f"after {call}, p holds {values(p)} in new memory: a view of p taken before the call still shows "
            f"{values(view)}; expected the values written into the memory p had",
        )

    def test_a_graph_that_saved_p_notices_the_change(self, kata):
        p = torch.tensor([-2.0, 0.5, 2.0], requires_grad=True)
        saved = (p**2).sum()  # saves p: the gradient is 2 * p, with p's values at this moment
        version = p._version
        call = "clamp_in_place(p=[-2, 0.5, 2], -1, 1)"
        got = call_without_leaf_error(lambda: kata.clamp_in_place(p, -1.0, 1.0), call)
        check_caller_changed(p, [-2.0, 0.5, 2.0], got, call)
        try:
            saved.backward()
        except RuntimeError as err:
            check(
                first_line(err).startswith(SAVED_MODIFIED),
                f"after {call}, backward of a graph that saved p raised {first_line(err)!r}; "
                f"expected {SAVED_MODIFIED!r}",
            )
            return
        check(
            False,
            f"after {call}, p's values changed to {values(p)} but its version counter did not move "
            f"(still {version}), so a graph built before the call that saved p ran backward without error, "
            f"using the clamped values: p.grad = {values(p.grad)}, not 2 * [-2, 0.5, 2]. Expected that backward "
            "to refuse: the write was hidden from autograd, as a write through p.data is",
        )


# ---------------------------------------------------------------- sgd_step


def trained_params(device="cpu"):
    """Regression parameters a, b with .grad filled by one backward, and a copy of their values/grads."""
    g = regression_graph(device)
    g["loss"].backward()
    a, b = g["a"], g["b"]
    return a, b, [(p.detach().clone(), p.grad.clone()) for p in (a, b)]


def check_param_moved(name, p, value, call):
    __tracebackhide__ = True
    check(
        bool((p.detach() != value).any()),
        f"after {call}, the caller's {name} still holds its old value {values(value)}; expected {name} - lr * {name}.grad "
        "in that same tensor",
    )


@exercise("sgd_step")
class TestSgdStep:
    def test_each_parameter_moves_against_its_gradient(self, kata, device):
        a, b, before = trained_params(device)
        call = "sgd_step([a, b], lr=0.1)"
        call_without_leaf_error(lambda: kata.sgd_step([a, b], 0.1), call)
        for name, p, (value, grad) in zip("ab", (a, b), before):
            check_param_moved(name, p, value, call)
            check_tensor(
                p.detach(),
                value - 0.1 * grad,
                f"after {call}, the caller's {name} (expected {name} - 0.1 * {name}.grad)",
            )

    def test_parameters_stay_the_same_leaves_requiring_grad(self, kata):
        a, b, _ = trained_params()
        params = [a, b]
        call_without_leaf_error(lambda: kata.sgd_step(params, 0.1), "sgd_step(params, lr=0.1)")
        check(
            len(params) == 2 and params[0] is a and params[1] is b,
            "after sgd_step(params, lr=0.1), the caller's list holds other tensors; expected the same parameter "
            "objects, updated in place (the model holds the originals)",
        )
        for name, p in zip("ab", (a, b)):
            problem = leaf_problem(p)
            check(
                not problem,
                f"after sgd_step, parameter {name} is {describe(p)}; expected a leaf that requires grad, but {problem}",
            )

    def test_each_parameter_keeps_its_memory(self, kata):
        a, b, before = trained_params()
        pointers = [storage_ptr(a), storage_ptr(b)]
        call = "sgd_step([a, b], lr=0.1)"
        call_without_leaf_error(lambda: kata.sgd_step([a, b], 0.1), call)
        for name, p, pointer, (value, _) in zip("ab", (a, b), pointers, before):
            check_param_moved(name, p, value, call)
            check(
                storage_ptr(p) == pointer,
                f"after {call}, {name} holds its new value in new memory; expected the update written into the "
                "memory it had (a view of the parameter, or an optimizer's state, would keep the old value)",
            )

    def test_autograd_sees_the_update_through_the_version_counter(self, kata):
        a, b, before = trained_params()
        versions = [a._version, b._version]
        call = "sgd_step([a, b], lr=0.1)"
        call_without_leaf_error(lambda: kata.sgd_step([a, b], 0.1), call)
        for name, p, version, (value, _) in zip("ab", (a, b), versions, before):
            check_param_moved(name, p, value, call)
            check(
                p._version > version,
                f"after {call}, {name} changed to {values(p)} but its version counter stayed at {version}: "
                "the write was hidden from autograd (as a write through .data is), so a graph that saved "
                f"{name} would silently use the new value",
            )

    def test_gradients_are_reset_for_the_next_backward(self, kata):
        a, b, _ = trained_params()
        call_without_leaf_error(lambda: kata.sgd_step([a, b], 0.1), "sgd_step([a, b], lr=0.1)")
        for name, p in zip("ab", (a, b)):
            check(
                p.grad is None or bool((p.grad == 0).all()),
                f"after sgd_step([a, b], lr=0.1), {name}.grad is {describe(p.grad)}; expected None or zeros: "
                "backward() adds into .grad, so the next step would use the sum of both gradients",
            )

    def test_a_parameter_without_grad_is_left_alone_and_the_next_one_updated(self, kata):
        a, b, before = trained_params()
        unused = torch.ones(2, requires_grad=True)  # took no part in the loss: its .grad is None
        call = "sgd_step([a, unused, b], lr=0.1) with unused.grad None"
        call_without_leaf_error(lambda: kata.sgd_step([a, unused, b], 0.1), call)
        check(
            unused.grad is None and values(unused) == [1.0, 1.0],
            f"after {call}, unused is {describe(unused)} with grad {describe(unused.grad)}; "
            "expected it left alone: [1., 1.], grad still None",
        )
        value, grad = before[1]
        check(
            bool((b.detach() != value).any()),
            f"after {call}, b (after unused in the list) still holds its old value {values(value)}; expected it "
            "updated too: a parameter without a grad is skipped, and the loop goes on with the next one",
        )
        check_tensor(b.detach(), value - 0.1 * grad, f"after {call}, the caller's b (expected b - 0.1 * b.grad)")


# ---------------------------------------------------------------- loss_for_logging


@exercise("loss_for_logging")
class TestLossForLogging:
    def test_returns_a_python_float(self, kata, device):
        loss = regression_graph(device)["loss"]
        want = loss.item()
        got = kata.loss_for_logging(loss)
        check(
            type(got) is float,
            f"loss_for_logging(loss={describe(loss)}) returned {describe(got)}; expected the Python float {want!r}: "
            "a tensor, even one cut from the graph, is not a log value (on a GPU it stays there)",
        )
        check(
            abs(got - want) <= 1e-6 * max(1.0, abs(want)),
            f"loss_for_logging(loss={describe(loss)}) returned {got!r}; expected its value, {want!r}",
        )

    def test_the_loss_backpropagates_afterwards_with_the_usual_gradients(self, kata):
        twin = regression_graph()  # the same graph, for the gradients backward gives without the call
        twin["loss"].backward()
        g = regression_graph()
        kata.loss_for_logging(g["loss"])
        try:
            g["loss"].backward()
            failure = ""
        except RuntimeError as err:
            failure = first_line(err)
        check(
            not failure,
            f"loss.backward() after loss_for_logging(loss) raised RuntimeError: {failure!r}; expected the caller's "
            "backward to work: logging must leave the loss and its graph as they were",
        )
        for name in "ab":
            got, want = g[name].grad, twin[name].grad
            twice = got is not None and torch.allclose(got, 2 * want)  # (value_mismatch's report is slow to build)
            check(
                got is not None and not value_mismatch(got, want),
                f"after loss_for_logging(loss) then loss.backward(), {name}.grad is {describe(got)}; expected "
                f"{describe(want)}, what backward gives without the call"
                + (" (twice that: a backward ran inside loss_for_logging too, and .grad adds up)" if twice else ""),
            )


# ---------------------------------------------------------------- twice_sigmoid


def reference(x):
    """2 / (1 + exp(-x)) in float64, back in x's dtype."""
    return (2.0 / (1.0 + torch.exp(-x.detach().double()))).to(x.dtype)


@exercise("twice_sigmoid")
class TestTwiceSigmoid:
    def test_values_are_twice_the_sigmoid(self, kata, device):
        x = torch.tensor([-2.0, 0.0, 0.5, 3.0], device=device, requires_grad=True)
        expected = reference(x)
        got = call_without_leaf_error(
            lambda: kata.twice_sigmoid(x), "twice_sigmoid(x), x a leaf that requires grad", "to leave x unchanged"
        )
        check_tensor(got, expected, "twice_sigmoid(x=[-2, 0, 0.5, 3])")

    def test_keeps_the_shape_and_dtype_of_a_float64_matrix(self, kata):
        x = torch.linspace(-4.0, 4.0, 6, dtype=torch.float64).reshape(2, 3)
        expected = reference(x)
        got = kata.twice_sigmoid(x)
        check_tensor(got, expected, "twice_sigmoid(x of shape (2, 3), float64)")

    def test_backward_gives_the_exact_gradient(self, kata, device):
        x = torch.linspace(-3.0, 3.0, 7, device=device).requires_grad_()
        out = call_without_leaf_error(
            lambda: kata.twice_sigmoid(x), "twice_sigmoid(x), x a leaf that requires grad", "to leave x unchanged"
        )
        check(
            isinstance(out, torch.Tensor) and out.requires_grad,
            f"twice_sigmoid(x) with x requiring grad returned {describe(out)}, which carries no graph "
            "(requires_grad=False): backward cannot reach x",
        )
        try:
            out.sum().backward()
            failure = ""
        except RuntimeError as err:
            failure = first_line(err)
        note = ""
        if failure.startswith(SAVED_MODIFIED):
            node = re.search(r"which is output \d+ of (\w+)", failure)
            saved = f" (the output of {node.group(1)})" if node else ""
            note = f"\na tensor autograd saved for backward{saved} was modified in place after it was saved"
        check(not failure, f"twice_sigmoid(x).sum().backward() raised RuntimeError: {failure[:300]}{note}")
        check(x.grad is not None, "after twice_sigmoid(x).sum().backward(), x.grad is None; expected the gradient")
        s = torch.sigmoid(x.detach().double())
        check_tensor(
            x.grad,
            (2 * s * (1 - s)).float(),
            "x.grad after twice_sigmoid(x).sum().backward() (expected 2 * s * (1 - s), s = 1 / (1 + exp(-x)))",
        )

    def test_the_input_is_left_unchanged(self, kata):
        x = torch.tensor([-1.0, 0.0, 1.0])
        kata.twice_sigmoid(x)
        check_tensor(x, torch.tensor([-1.0, 0.0, 1.0]), "the caller's x after twice_sigmoid(x)")
