"""Tests for kata 18, custom autograd: one class per exercise, in learning order.

References are independent of the code under test: softplus and its derivative in float64 from
PyTorch's own functions, NumPy's sin and cos, gradients worked out by hand. Gradients are read
from `.grad` after a backward with a weighted sum (weights that differ per element, so that a
gradient that lands on the wrong element shows), or with torch.autograd.grad where a second
derivative is asked for.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dojo.testing import check, check_tensor, describe, exercise, expect_raises

META = torch.device("meta")


def _leaf(values, dtype=torch.float32, device="cpu") -> torch.Tensor:
    return torch.tensor(values, dtype=dtype, device=device, requires_grad=True)


def _weights(n: int, dtype=torch.float32, device="cpu") -> torch.Tensor:
    """Upstream gradients 1, -2, 3, -4, ...: each element's gradient can be told apart."""
    return torch.tensor([(i + 1) * (-1) ** i for i in range(n)], dtype=dtype, device=device)


def _grad_of(fn, x: torch.Tensor, upstream: torch.Tensor) -> torch.Tensor | None:
    """x.grad after backward of (fn(x) * upstream).sum(), x a fresh leaf copy of `x`."""
    leaf = x.detach().clone().requires_grad_()
    (fn(leaf) * upstream).sum().backward()
    return leaf.grad


# ---------------------------------------------------------------- StableSoftplus

EXTREMES = [-1000.0, -100.0, -30.0, -1.5, 0.0, 0.25, 20.0, 88.0, 89.0, 100.0, 1000.0]


def _softplus_reference(x: torch.Tensor) -> torch.Tensor:
    return F.softplus(x.detach().double()).to(x.dtype)


@exercise("StableSoftplus")
class TestStableSoftplus:
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
    def test_values_are_finite_and_right_for_every_finite_x(self, kata, dtype, device):
        x = torch.tensor(EXTREMES, dtype=dtype, device=device)
        expected = _softplus_reference(x)
        got = kata.StableSoftplus.apply(x)
        check(
            isinstance(got, torch.Tensor) and bool(torch.isfinite(got).all()),
            f"StableSoftplus.apply(x = {EXTREMES}, {dtype}) gave {describe(got)}; expected finite values everywhere: "
            "log(1 + exp(x)) as written overflows for large x (exp(89) is inf in float32). Hint 1",
        )
        check_tensor(got, expected, f"StableSoftplus.apply(x = {EXTREMES}, {dtype}, {device.type})")

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
    def test_the_gradient_is_the_sigmoid_and_finite(self, kata, dtype, device):
        x = torch.tensor(EXTREMES, dtype=dtype, device=device)
        upstream = _weights(len(EXTREMES), dtype, device)
        expected = torch.sigmoid(x.double()).to(dtype) * upstream  # d softplus / dx, built before the call
        got = _grad_of(kata.StableSoftplus.apply, x, upstream)
        check(
            got is not None and bool(torch.isfinite(got).all()),
            f"x.grad after backward of (StableSoftplus.apply(x) * w).sum(), x = {EXTREMES} ({dtype}), is "
            f"{describe(got)}; expected finite values: the derivative written as exp(x) / (1 + exp(x)) is inf / inf = "
            "nan for large x. Hint 2",
        )
        check_tensor(got, expected, f"x.grad after backward of (StableSoftplus.apply(x) * w).sum(), x = {EXTREMES}")

    def test_agrees_with_finite_differences_in_float64(self, kata):
        x = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 3
        x.requires_grad_()
        ok = torch.autograd.gradcheck(kata.StableSoftplus.apply, (x,), raise_exception=False)
        check(
            ok,
            "torch.autograd.gradcheck(StableSoftplus.apply, (x of shape (3, 4), float64)) failed: the backward does not "
            "match finite differences of the forward. Hint 2",
        )

    @pytest.mark.parametrize(
        "make",
        [lambda: torch.tensor(-2.0), lambda: torch.randn(4, 3).t(), lambda: torch.randn(2, 1, 3)],
        ids=["0-d", "non-contiguous", "3-d"],
    )
    def test_keeps_any_shape(self, kata, make):
        torch.manual_seed(0)
        x = make()
        expected = _softplus_reference(x)
        check_tensor(kata.StableSoftplus.apply(x), expected, f"StableSoftplus.apply(x of shape {tuple(x.shape)})")

    def test_keeps_the_device(self, kata):
        x = torch.empty(2, 3, device=META)
        got = kata.StableSoftplus.apply(x)
        check(
            isinstance(got, torch.Tensor) and got.device == META and got.shape == x.shape and got.dtype == x.dtype,
            f"StableSoftplus.apply(x of shape (2, 3) on 'meta') gave {describe(got)}; expected a float32 tensor of shape "
            "(2, 3) on 'meta' (the device x is on)",
        )

    def test_the_result_is_the_functions_own_node(self, kata):
        y = kata.StableSoftplus.apply(_leaf([0.5, -0.5]))
        name = type(y.grad_fn).__name__ if getattr(y, "grad_fn", None) is not None else None
        check(
            name == "StableSoftplusBackward",
            f"StableSoftplus.apply(x).grad_fn is {name!r}; expected 'StableSoftplusBackward': the class must be a "
            "torch.autograd.Function whose own backward autograd calls, not a chain of autograd's operations",
        )

    def test_an_in_place_change_of_x_never_gives_the_gradient_at_the_new_values(self, kata):
        leaf = _leaf([-3.0, 0.0, 2.0])
        x = leaf * 1  # a non-leaf, so it may be changed in place
        expected = torch.sigmoid(torch.tensor([-3.0, 0.0, 2.0]))  # at the values forward saw
        y = kata.StableSoftplus.apply(x)
        with torch.no_grad():
            x.add_(10.0)
        try:
            y.sum().backward()
        except RuntimeError as err:
            if "is not done yet" in str(err):
                raise
            return  # refused, as PyTorch's own operations do: fine
        check_tensor(
            leaf.grad,
            expected,
            "x.grad after y = StableSoftplus.apply(x), then x += 10 in place, then y.sum().backward() (it should raise, "
            "or give the gradient at the old x): keep what backward needs with ctx.save_for_backward, hint 2",
        )


# ---------------------------------------------------------------- ClampSTE


@exercise("ClampSTE")
class TestClampSTE:
    def test_forward_clamps_into_the_range(self, kata, device):
        x = torch.tensor([-3.0, -1.0, 0.0, 0.5, 1.0, 4.0], device=device)
        expected = x.clamp(-1.0, 1.0)
        check_tensor(kata.ClampSTE.apply(x, -1.0, 1.0), expected, "ClampSTE.apply(x, -1.0, 1.0)")

    def test_x_is_left_unchanged(self, kata):
        x = torch.tensor([-3.0, 0.5, 4.0])
        before = x.clone()
        got = kata.ClampSTE.apply(x, -1.0, 1.0)
        check_tensor(x, before, "x after ClampSTE.apply(x, -1.0, 1.0) (it must clamp into a new tensor)")
        check(got is not x, "ClampSTE.apply(x, -1.0, 1.0) returned x itself; expected a new tensor")

    def test_every_element_gets_the_incoming_gradient_unchanged(self, kata, device):
        x = torch.tensor([-3.0, -1.0, 0.0, 0.5, 1.0, 4.0], device=device)
        upstream = _weights(6, device=device)
        expected = upstream.clone()
        got = _grad_of(lambda t: kata.ClampSTE.apply(t, -1.0, 1.0), x, upstream)
        check_tensor(
            got,
            expected,
            "x.grad after backward of (ClampSTE.apply(x, -1, 1) * w).sum(), x = [-3, -1, 0, 0.5, 1, 4], "
            "w = [1, -2, 3, -4, 5, -6] (a zero where x was clamped is the plain clamp's gradient; hint 1)",
        )

    def test_works_inside_a_larger_graph(self, kata):
        x = _leaf([-2.0, 0.5, 3.0], dtype=torch.float64)
        y = kata.ClampSTE.apply(x * 2, 0.0, 1.0)
        (y * y).sum().backward()  # d/dx of clamp(2x)^2 with a straight-through clamp: 2 * clamp(2x) * 2
        expected = torch.tensor([0.0, 4.0, 4.0], dtype=torch.float64)
        check_tensor(
            x.grad, expected, "x.grad after backward of (ClampSTE.apply(2x, 0, 1) ** 2).sum(), x = [-2, 0.5, 3]"
        )


# ---------------------------------------------------------------- gradient_matches


class _Square(torch.autograd.Function):
    """x ** 2 with a correct backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * x * grad


class _SquareWrong(torch.autograd.Function):
    """x ** 2 with a backward 1 % too large."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2.02 * x * grad


class _MulWrongSecond(torch.autograd.Function):
    """a * b, right for a, wrong for b (it forgets a)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return grad * b, grad


def _exp_times_ten(x):
    return (x.exp() * 10).sum(dim=-1)


def _inputs(*shapes, dtype=torch.float32):
    g = torch.Generator().manual_seed(1)
    return tuple((torch.rand(shape, generator=g) + 2).to(dtype) for shape in shapes)


@exercise("gradient_matches")
class TestGradientMatches:
    @pytest.mark.parametrize(
        "fn, name",
        [(_Square.apply, "x ** 2 (a Function)"), (_exp_times_ten, "10 exp(x) summed")],
        ids=["square", "exp"],
    )
    def test_a_right_backward_on_float32_inputs_matches(self, kata, fn, name):
        (x,) = _inputs((3, 4))
        got = kata.gradient_matches(fn, x)
        check(
            got is True,
            f"gradient_matches({name}, x float32 of shape (3, 4)) returned {describe(got)}; expected True: the "
            "backward is right. Finite differences in float32 are too coarse to tell; compare in float64 (hint 2)",
        )

    def test_a_wrong_backward_gives_false_without_raising(self, kata):
        (x,) = _inputs((5,), dtype=torch.float64)
        try:
            got = kata.gradient_matches(_SquareWrong.apply, x)
        except Exception as err:
            if "is not done yet" in str(err):
                raise
            pytest.fail(
                f"gradient_matches(x ** 2 with a backward 1% too large, x) raised {type(err).__name__}: "
                f"{str(err)[:200]}; expected it to return False (hint 3)",
                pytrace=False,
            )
        check(
            got is False,
            f"gradient_matches(x ** 2 with a backward 1% too large, x) returned {describe(got)}; expected False",
        )

    def test_checks_the_gradient_of_every_input(self, kata):
        a, b = _inputs((3,), (3,))
        got = kata.gradient_matches(_MulWrongSecond.apply, a, b)
        check(
            got is False,
            f"gradient_matches(a * b whose backward is right for a and wrong for b, a, b) returned {describe(got)}; "
            "expected False: every input's gradient is compared",
        )

    def test_two_inputs_with_a_right_backward_match(self, kata):
        a, b = _inputs((2, 3), (2, 3))
        got = kata.gradient_matches(torch.mul, a, b)
        check(got is True, f"gradient_matches(torch.mul, a, b) returned {describe(got)}; expected True")

    @pytest.mark.parametrize(
        "dtype, requires_grad",
        [(torch.float32, False), (torch.float64, False), (torch.float64, True), (torch.float32, True)],
        ids=["float32", "float64", "float64-requires-grad", "float32-requires-grad"],
    )
    def test_the_callers_tensors_are_left_as_they_were(self, kata, dtype, requires_grad):
        (x,) = _inputs((4,), dtype=dtype)
        x.requires_grad_(requires_grad)
        before = x.detach().clone()
        kata.gradient_matches(_Square.apply, x)
        what = f"x ({dtype}, requires_grad={requires_grad}) after gradient_matches(x ** 2, x)"
        check(
            x.dtype == dtype and x.requires_grad == requires_grad and x.grad is None,
            f"{what} has dtype {x.dtype}, requires_grad={x.requires_grad}, grad {describe(x.grad)}; expected "
            f"{dtype}, requires_grad={requires_grad}, grad None: check copies, not the caller's tensors "
            "(t.double() is t itself when t is already float64; hint 2)",
        )
        check_tensor(x.detach(), before, what)


# ---------------------------------------------------------------- halve_until_within


@exercise("halve_until_within")
class TestHalveUntilWithin:
    @pytest.mark.parametrize(
        "values, limit, halvings",
        [
            ([3.0, 4.0], 1.0, 3),  # norm 5: 0.625 after 3 halvings, 1.25 after 2
            ([3.0, 4.0], 2.5, 1),  # exactly the limit after one halving: "at most" includes it
            ([3.0, 4.0], 5.0, 0),  # already within
            ([[1.0, -1.0], [1.0, -1.0]], 0.3, 3),  # norm over all elements: 2
            ([0.0, 0.0], 0.5, 0),
        ],
        ids=["norm-5-limit-1", "lands-on-the-limit", "already-within", "2-d", "zeros"],
    )
    def test_halves_the_smallest_number_of_times(self, kata, values, limit, halvings):
        x = torch.tensor(values)
        expected = x / 2**halvings
        got = kata.halve_until_within(x, limit)
        call = f"halve_until_within(x = {values}, {limit})"
        check(
            isinstance(got, tuple) and len(got) == 2,
            f"{call} returned {describe(got)}; expected a tuple (y, halvings)",
        )
        y, count = got
        check(
            type(count) is int and count == halvings,
            f"{call} returned halvings = {describe(count)}; expected the int {halvings} (the smallest number of "
            "halvings after which the norm is at most the limit)",
        )
        check_tensor(y, expected, f"{call}[0]")

    @pytest.mark.parametrize("limit, halvings", [(1.0, 3), (5.0, 0)], ids=["three-halvings", "none"])
    def test_the_gradient_reaches_x(self, kata, limit, halvings):
        x = _leaf([3.0, 4.0])
        upstream = torch.tensor([1.0, -2.0])
        expected = upstream / 2**halvings
        y, _ = kata.halve_until_within(x, limit)
        check(
            isinstance(y, torch.Tensor) and y.requires_grad,
            f"halve_until_within(x that requires grad, {limit})[0] is {describe(y)}; expected a tensor in x's graph "
            "(requires_grad=True): no detach, no no_grad, no detour through Python numbers (hint 2)",
        )
        (y * upstream).sum().backward()
        check_tensor(
            x.grad, expected, f"x.grad after backward of (halve_until_within(x = [3, 4], {limit})[0] * w).sum()"
        )

    def test_the_callers_x_is_left_unchanged(self, kata):
        x = torch.tensor([3.0, 4.0])
        kata.halve_until_within(x, 1.0)
        check_tensor(x, torch.tensor([3.0, 4.0]), "x after halve_until_within(x = [3, 4], 1.0) (divide out of place)")

    @pytest.mark.parametrize("limit", [0.0, -1.0], ids=["zero", "negative"])
    def test_a_limit_that_is_not_positive_raises(self, kata, limit):
        with expect_raises(ValueError, None, f"halve_until_within(x = [3, 4], {limit})"):
            kata.halve_until_within(torch.tensor([3.0, 4.0]), limit)


# ---------------------------------------------------------------- scaled_grad


@exercise("scaled_grad")
class TestScaledGrad:
    def test_has_the_values_of_t(self, kata, device):
        t = torch.tensor([[1.5, -2.0], [0.25, 3.0]], device=device, requires_grad=True)
        expected = t.detach().clone()
        got = kata.scaled_grad(t, 0.5)
        check_tensor(got.detach() if isinstance(got, torch.Tensor) else got, expected, "scaled_grad(t, 0.5)")

    @pytest.mark.parametrize("factor", [0.5, -3.0, 0.0], ids=["half", "negative", "zero"])
    def test_the_gradient_through_it_is_scaled(self, kata, factor):
        t = _leaf([1.0, 2.0, 3.0])
        upstream = _weights(3)
        expected = upstream * factor
        y = kata.scaled_grad(t, factor)
        (y * upstream).sum().backward()
        check_tensor(t.grad, expected, f"t.grad after backward of (scaled_grad(t, {factor}) * w).sum(), w = [1, -2, 3]")

    def test_another_path_to_t_is_not_scaled(self, kata):
        t = _leaf([1.0, 2.0, 3.0])
        w, v = _weights(3), torch.tensor([10.0, 20.0, 30.0])
        expected = 0.5 * w + v
        y = kata.scaled_grad(t, 0.5)
        ((y * w).sum() + (t * v).sum()).backward()
        check_tensor(
            t.grad,
            expected,
            "t.grad after backward of (scaled_grad(t, 0.5) * w).sum() + (t * v).sum(): only the path through the "
            "result is scaled (a hook on t itself scales every path; hint 1)",
        )

    def test_a_later_backward_through_t_is_not_scaled(self, kata):
        t = _leaf([1.0, 2.0, 3.0])
        v = torch.tensor([10.0, 20.0, 30.0])
        (kata.scaled_grad(t, 0.5) * _weights(3)).sum().backward()
        t.grad = None
        (t * v).sum().backward()  # a separate backward, not through the result
        check_tensor(
            t.grad,
            v.clone(),
            "t.grad after a later, separate backward of (t * v).sum(): nothing of the scaling may stay on t "
            "(a hook registered on t lives as long as t; hint 1)",
        )


# ---------------------------------------------------------------- backward_with_clipped_grads


def _params():
    a = _leaf([1.0, 1.0, 1.0])
    b = _leaf([1.0, 1.0])
    return a, b


def _loss(a, b):
    # d/da = [5, -5, 0.5], d/db = [3, -0.25]
    return (a * torch.tensor([5.0, -5.0, 0.5])).sum() + (b * torch.tensor([3.0, -0.25])).sum()


@exercise("backward_with_clipped_grads")
class TestBackwardWithClippedGrads:
    def test_each_element_of_the_gradient_is_clamped(self, kata):
        a, b = _params()
        kata.backward_with_clipped_grads(_loss(a, b), [a, b], 1.0)
        check_tensor(
            a.grad, torch.tensor([1.0, -1.0, 0.5]), "a.grad after backward_with_clipped_grads(loss, [a, b], 1.0)"
        )
        check_tensor(b.grad, torch.tensor([1.0, -0.25]), "b.grad after backward_with_clipped_grads(loss, [a, b], 1.0)")

    def test_what_grad_held_is_kept_and_the_clamped_gradient_added(self, kata):
        a, b = _params()
        a.grad = torch.tensor([10.0, 10.0, -10.0])
        kata.backward_with_clipped_grads(_loss(a, b), [a, b], 1.0)
        check_tensor(
            a.grad,
            torch.tensor([11.0, 9.0, -9.5]),
            "a.grad (holding [10, 10, -10] before) after backward_with_clipped_grads(loss, [a, b], 1.0): the arriving "
            "gradient is clamped, then added; clamping .grad after backward clamps the sum (hint 1)",
        )

    def test_tensors_not_in_params_are_not_clamped(self, kata):
        a, b = _params()
        kata.backward_with_clipped_grads(_loss(a, b), [a], 1.0)
        check_tensor(b.grad, torch.tensor([3.0, -0.25]), "b.grad after backward_with_clipped_grads(loss, [a], 1.0)")

    @pytest.mark.parametrize("as_generator", [False, True], ids=["list", "generator"])
    def test_a_later_backward_is_not_clamped(self, kata, as_generator):
        a, b = _params()
        params = (p for p in (a, b)) if as_generator else [a, b]
        kata.backward_with_clipped_grads(_loss(a, b), params, 1.0)
        a.grad = b.grad = None
        _loss(a, b).backward()
        check_tensor(
            a.grad,
            torch.tensor([5.0, -5.0, 0.5]),
            f"a.grad after backward_with_clipped_grads(loss, params as a {'generator' if as_generator else 'list'}, "
            "1.0), then a plain backward: nothing of the clamping may remain (hint 2)",
        )

    def test_nothing_remains_when_backward_raises(self, kata):
        a, b = _params()
        loss = _loss(a, b)
        loss.backward()  # the graph is freed: a second backward through it raises
        a.grad = b.grad = None
        with expect_raises(
            RuntimeError,
            "(?i)second time|backward through the graph",
            "backward_with_clipped_grads(loss whose graph was already freed, [a, b], 1.0)",
        ):
            kata.backward_with_clipped_grads(loss, [a, b], 1.0)
        _loss(a, b).backward()
        check_tensor(
            a.grad,
            torch.tensor([5.0, -5.0, 0.5]),
            "a.grad after a backward_with_clipped_grads(...) whose backward raised, then a plain backward: the "
            "clamping must be gone even when backward raises (hint 2)",
        )

    def test_a_parameter_reached_by_two_paths_is_clamped_once_per_backward(self, kata):
        a = _leaf([1.0])
        loss = (a * 3).sum() + (a * 4).sum()  # 7 arrives in all
        kata.backward_with_clipped_grads(loss, [a], 5.0)
        check_tensor(a.grad, torch.tensor([5.0]), "a.grad after backward_with_clipped_grads(3a + 4a, [a], 5.0)")


# ---------------------------------------------------------------- NumpySin


@exercise("NumpySin")
class TestNumpySin:
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
    def test_values_are_sin(self, kata, dtype):
        x = torch.linspace(-4, 4, 9, dtype=dtype)
        expected = torch.from_numpy(np.sin(x.numpy()))
        check_tensor(kata.NumpySin.apply(x), expected, f"NumpySin.apply(x = linspace(-4, 4, 9), {dtype})")

    def test_keeps_the_shape_of_a_non_contiguous_input(self, kata):
        x = torch.arange(12.0).reshape(3, 4).t()
        expected = torch.sin(x)
        check_tensor(kata.NumpySin.apply(x), expected, "NumpySin.apply(x of shape (4, 3), non-contiguous)", rtol=1e-6)

    def test_the_gradient_is_cos_times_the_incoming_one(self, kata):
        x = torch.linspace(-3, 3, 7, dtype=torch.float64)
        upstream = _weights(7, dtype=torch.float64)
        expected = torch.cos(x) * upstream
        check_tensor(
            _grad_of(kata.NumpySin.apply, x, upstream),
            expected,
            "x.grad after backward of (NumpySin.apply(x) * w).sum(), x = linspace(-3, 3, 7)",
        )

    def test_a_first_derivative_with_create_graph_still_works(self, kata):
        x = _leaf([0.0, 1.0, 2.0], dtype=torch.float64)
        expected = torch.cos(x.detach())
        y = kata.NumpySin.apply(x)
        (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
        check_tensor(g.detach(), expected, "torch.autograd.grad(NumpySin.apply(x).sum(), x, create_graph=True)")

    def test_a_second_derivative_raises_instead_of_being_silently_wrong(self, kata):
        x = _leaf([0.5, 1.0, 2.0], dtype=torch.float64)
        v = _leaf([1.0, -1.0, 2.0], dtype=torch.float64)
        y = kata.NumpySin.apply(x)  # outside the check: a stub's NotImplementedError is a RuntimeError too
        what = (
            "g = torch.autograd.grad(NumpySin.apply(x), x, grad_outputs=v, create_graph=True), then backward of "
            "(g * x).sum() (a second derivative: without a refusal it silently misses the -sin(x) * v * x term; hint 2)"
        )
        with expect_raises(RuntimeError, r"(?i)twice|double", what):
            (g,) = torch.autograd.grad(y, x, grad_outputs=v, create_graph=True)
            (g * x).sum().backward()

    def test_agrees_with_finite_differences_in_float64(self, kata):
        x = torch.randn(5, dtype=torch.float64, generator=torch.Generator().manual_seed(2)).requires_grad_()
        ok = torch.autograd.gradcheck(kata.NumpySin.apply, (x,), raise_exception=False)
        check(
            ok,
            "torch.autograd.gradcheck(NumpySin.apply, (x float64 of shape (5,))) failed: backward is not cos(x) * grad",
        )
