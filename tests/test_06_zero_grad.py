"""Tests for kata 06, gradients accumulate (zero_grad): one class per exercise, in learning order.

Every reference here is computed without autograd: for a linear model out = X W^T + b and the
loss mean((out - y)^2) over the N * M elements of out, dL/dW = 2/(N M) (out - y)^T X and
dL/db = 2/(N M) sum(out - y). The training references apply SGD's update rule by hand, in
float64, so they are exact to rounding and independent of the code under test. The same rule,
fed the gradients a typical mistake feeds it (never reset, leftovers kept, a micro-batch loss
not divided by k...), tells which of those mistakes a wrong trajectory matches.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dojo.testing import check, check_tensor, describe, exercise, storage_ptr

F64 = torch.float64
LR = 0.1


def make_model(device="cpu", seed=0, out_features=1, bias=True) -> nn.Linear:
    """nn.Linear(3, out_features) in float64 with seeded weights and no gradients."""
    g = torch.Generator().manual_seed(seed)
    model = nn.Linear(3, out_features, bias=bias, dtype=F64)
    with torch.no_grad():
        model.weight.copy_(torch.randn(out_features, 3, generator=g, dtype=F64))
        if bias:
            model.bias.copy_(torch.randn(out_features, generator=g, dtype=F64))
    return model.to(device)


def make_batches(count, size, device="cpu", seed=1, out_features=1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`count` seeded (x, y) batches, x of shape (size, 3) and y of shape (size, out_features), float64."""
    g = torch.Generator().manual_seed(seed)
    w_true = torch.tensor([[1.5, -2.0, 0.5], [0.3, 0.8, -1.1]], dtype=F64)[:out_features]
    batches = []
    for _ in range(count):
        x = torch.randn(size, 3, generator=g, dtype=F64)
        y = x @ w_true.T + 0.3 + 0.1 * torch.randn(size, out_features, generator=g, dtype=F64)
        batches.append((x.to(device), y.to(device)))
    return batches


LEFTOVER_W, LEFTOVER_B = 3.0, -2.0


def give_leftover_grads(model: nn.Linear) -> None:
    """Gradients left behind by earlier work, as a model often arrives in real code."""
    model.weight.grad = torch.full_like(model.weight, LEFTOVER_W)
    model.bias.grad = torch.full_like(model.bias, LEFTOVER_B)


def mse_grads(w, b, x, y) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gradient of F.mse_loss(x @ w.T + b, y) with respect to w and b (None: no bias), by hand."""
    r = x @ w.T - y if b is None else x @ w.T + b - y
    n = r.numel()
    return 2.0 / n * r.T @ x, (None if b is None else 2.0 / n * r.sum(0))


def params_of(model: nn.Linear) -> tuple[torch.Tensor, torch.Tensor | None]:
    bias = None if model.bias is None else model.bias.detach().clone()
    return model.weight.detach().clone(), bias


def flat(w, b) -> torch.Tensor:
    return w.reshape(-1) if b is None else torch.cat([w.reshape(-1), b.reshape(-1)])


def sgd_trajectory(model, batches, lr=LR, momentum=0.0, scale=1.0, carry=False, leftover=False) -> list[torch.Tensor]:
    """Parameters after each SGD step, one step per batch, by hand (torch's rule, dampening 0).

    The gradient fed to each step is the batch's own one, times `scale`; with `carry`, the sum of
    all of them so far (nothing reset); with `leftover`, the model's leftover gradients are added
    to the first (to every one, with `carry`).
    """
    w, b = params_of(model)
    acc_w = acc_b = None
    buf_w = buf_b = None
    out = []
    for i, (x, y) in enumerate(batches):
        gw, gb = mse_grads(w, b, x, y)
        gw = gw * scale
        gb = None if gb is None else gb * scale
        if leftover and i == 0:
            gw, gb = gw + LEFTOVER_W, gb + LEFTOVER_B
        if carry:
            acc_w = gw if acc_w is None else acc_w + gw
            acc_b = gb if acc_b is None else (None if gb is None else acc_b + gb)
            gw, gb = acc_w, acc_b
        if momentum:
            buf_w = gw if buf_w is None else momentum * buf_w + gw
            gw = buf_w
            if gb is not None:
                buf_b = gb if buf_b is None else momentum * buf_b + gb
                gb = buf_b
        w = w - lr * gw
        b = None if b is None else b - lr * gb
        out.append(flat(w, b))
    return out


def _close(a, b) -> bool:
    return (
        isinstance(a, torch.Tensor)
        and a.shape == b.shape
        and torch.allclose(a.detach().cpu().to(F64), b.cpu(), rtol=1e-6, atol=1e-9)
    )


def check_trajectory(got, expected, start, called, unit, symptoms=()) -> None:
    """Compare a list of parameter snapshots with the reference, step by step.

    `symptoms` are (trajectory, text) pairs: what a typical mistake would have produced, and the
    symptom to name when the snapshots so far match it rather than the reference.
    """
    __tracebackhide__ = True
    what = f"a list of {len(got)} snapshots" if isinstance(got, (list, tuple)) else describe(got)
    check(
        isinstance(got, (list, tuple)) and len(got) == len(expected),
        f"{called} returned {what}; expected a list of {len(expected)} snapshots, one per {unit}",
    )
    for i, g in enumerate(got, start=1):
        check(
            isinstance(g, torch.Tensor) and not g.requires_grad and g.grad_fn is None,
            f"{called}: snapshot {i} is {describe(g)}"
            + (f" with grad_fn={type(g.grad_fn).__name__}" if isinstance(g, torch.Tensor) and g.grad_fn else "")
            + "; expected a tensor that carries no graph (a snapshot is data, not part of autograd's record)",
        )
    late = [start, *expected[:-1]]
    symptoms = [*symptoms, (late, "each snapshot shows the parameters of the step before (taken before its step?)")]
    for i, (g, e) in enumerate(zip(got, expected), start=1):
        if not _close(g, e):
            for trajectory, text in symptoms:
                if all(_close(a, b) for a, b in zip(got, trajectory)):
                    check(
                        False, f"{called}: parameters after step {i} are {describe(g)}; expected {describe(e)}: {text}"
                    )
            previous = start if i == 1 else expected[i - 2]
            if _close(g, previous):
                check(
                    False,
                    f"{called}: the parameters did not move at step {i} (still {describe(previous)}); expected "
                    f"{describe(e)}. The step found every gradient zero or None, or no step ran",
                )
        check_tensor(g, e, f"{called}: parameters after step {i}")


# ---------------------------------------------------------------- grad_after_k_backwards


@exercise("grad_after_k_backwards")
class TestGradAfterKBackwards:
    @pytest.mark.parametrize(
        "k, size, outputs",
        [(1, 5, 1), (3, 5, 1), (2, 1, 2)],
        ids=["k=1", "k=3", "k=2-one_sample-two_outputs"],
    )
    def test_k_backward_passes_give_k_times_the_gradient(self, kata, device, k, size, outputs):
        model = make_model(device, out_features=outputs)
        ((x, y),) = make_batches(1, size, device, out_features=outputs)
        single, _ = mse_grads(model.weight.detach(), model.bias.detach(), x, y)
        called = f"grad_after_k_backwards(Linear(3, {outputs}), x of shape {tuple(x.shape)}, y, k={k})"
        got = kata.grad_after_k_backwards(model, x, y, k)
        if isinstance(got, torch.Tensor) and got.shape == single.shape and k > 1:
            g, s = got.detach().cpu().flatten(), single.cpu().flatten()
            times = (g @ s / (s @ s)).item()  # how many single-pass gradients `got` holds
            check(
                abs(times - k) < 1e-6,
                f"{called} returned {times:.3g} times the gradient of one pass; expected {k} times "
                "(nothing resets .grad between two backward passes)",
            )
        check_tensor(got, k * single, called)

    def test_every_parameters_grad_holds_k_times_the_gradient(self, kata):
        model = make_model()
        ((x, y),) = make_batches(1, 5)
        gw, gb = mse_grads(model.weight.detach(), model.bias.detach(), x, y)
        kata.grad_after_k_backwards(model, x, y, 3)
        for name, want in (("weight", gw), ("bias", gb)):
            grad = getattr(model, name).grad
            check(
                isinstance(grad, torch.Tensor),
                f"after grad_after_k_backwards(model, x, y, k=3), model.{name}.grad is {describe(grad)}; expected "
                "3 times the gradient of one pass (backward passes fill the .grad of every parameter)",
            )
            check_tensor(grad, 3 * want, f"after grad_after_k_backwards(model, x, y, k=3), model.{name}.grad")

    def test_the_result_carries_no_graph_and_the_weights_keep_their_values(self, kata):
        model = make_model()
        ((x, y),) = make_batches(1, 5)
        before = flat(*params_of(model))
        got = kata.grad_after_k_backwards(model, x, y, 2)
        check(
            isinstance(got, torch.Tensor) and not got.requires_grad and got.grad_fn is None,
            f"grad_after_k_backwards(model, x, y, k=2) returned {describe(got)}"
            + (f" with grad_fn={type(got.grad_fn).__name__}" if isinstance(got, torch.Tensor) and got.grad_fn else "")
            + "; expected a gradient that carries no graph (a backward pass that records its own graph keeps "
            "every pass's graph alive)",
        )
        check_tensor(
            flat(model.weight.detach(), model.bias.detach()),
            before,
            "the model's parameters after grad_after_k_backwards",
        )

    def test_backward_really_runs_k_times(self, kata):
        model = make_model()
        ((x, y),) = make_batches(1, 5)
        calls = []
        # A hook on a leaf tensor runs once for every backward pass that reaches it.
        model.weight.register_hook(lambda grad: calls.append(1))
        kata.grad_after_k_backwards(model, x, y, 4)
        check(
            len(calls) == 4,
            f"grad_after_k_backwards(model, x, y, k=4): {len(calls)} backward pass(es) reached model.weight; "
            "expected 4, each adding to .grad (one pass through a loss scaled by 4 gives the numbers, not the passes)",
        )


# ---------------------------------------------------------------- reset_grads


def two_group_optimizer(model: nn.Linear) -> torch.optim.Optimizer:
    return torch.optim.SGD([{"params": [model.weight]}, {"params": [model.bias], "lr": 0.01}], lr=LR)


def fill_grads(model: nn.Linear) -> None:
    ((x, y),) = make_batches(1, 4)
    nn.functional.mse_loss(model(x), y).backward()


def _grads(got):
    return f"[{', '.join(describe(g) for g in got)}]" if isinstance(got, list) else describe(got)


@exercise("reset_grads")
class TestResetGrads:
    @pytest.mark.parametrize("kwargs", [{}, {"set_to_none": True}], ids=["default", "set_to_none=True"])
    def test_leaves_none_not_zeros(self, kata, kwargs):
        model = make_model()
        fill_grads(model)
        optimizer = two_group_optimizer(model)
        args = "".join(f", {k}={v}" for k, v in kwargs.items())
        got = kata.reset_grads(optimizer, **kwargs)
        check(
            isinstance(got, list) and len(got) == 2 and all(g is None for g in got),
            f"reset_grads(optimizer with 2 param groups{args}) returned {_grads(got)}; expected the list "
            "[None, None]: by default every .grad becomes None, not zeros",
        )
        check(
            model.weight.grad is None and model.bias.grad is None,
            f"after reset_grads(optimizer{args}), model.weight.grad is {describe(model.weight.grad)} and "
            f"model.bias.grad is {describe(model.bias.grad)}; expected both None (bias is in the second param group)",
        )

    def test_set_to_none_false_zeros_each_grad_in_place(self, kata):
        model = make_model()
        fill_grads(model)
        optimizer = two_group_optimizer(model)
        before = [model.weight.grad, model.bias.grad]
        memory = [storage_ptr(g) for g in before]
        got = kata.reset_grads(optimizer, set_to_none=False)
        check(
            isinstance(got, list) and len(got) == 2,
            f"reset_grads(optimizer with 2 param groups, set_to_none=False) returned {_grads(got)}; "
            "expected a list of 2 gradients",
        )
        for name, old, ptr, returned in zip(("weight", "bias"), before, memory, got):
            now = getattr(model, name).grad
            check(
                now is old,
                f"reset_grads(optimizer, set_to_none=False): model.{name}.grad is now {describe(now)}, another "
                "object than the gradient it had; expected the same tensor, zeroed in place",
            )
            check(
                storage_ptr(now) == ptr,
                f"reset_grads(optimizer, set_to_none=False): model.{name}.grad is the same object but now uses other "
                "memory; expected its own memory overwritten with zeros",
            )
            check(
                returned is now,
                f"reset_grads(optimizer, set_to_none=False) listed {describe(returned)} for model.{name}; expected "
                f"model.{name}.grad itself",
            )
            check_tensor(
                now, torch.zeros_like(old), f"after reset_grads(optimizer, set_to_none=False), model.{name}.grad"
            )

    def test_set_to_none_false_zeros_inf_and_nan_too(self, kata):
        model = make_model()
        model.weight.grad = torch.tensor([[float("nan"), float("inf"), -float("inf")]], dtype=F64)
        model.bias.grad = torch.tensor([float("nan")], dtype=F64)
        optimizer = two_group_optimizer(model)
        kata.reset_grads(optimizer, set_to_none=False)
        for name in ("weight", "bias"):
            grad = getattr(model, name).grad
            check(
                isinstance(grad, torch.Tensor) and bool((grad == 0).all()),
                f"after reset_grads(optimizer, set_to_none=False) on a {name}.grad holding nan and inf, "
                f"model.{name}.grad is {describe(grad)}; expected all zeros, whatever it held before "
                "(nan * 0 and inf - inf are nan)",
            )

    def test_the_order_follows_the_param_groups(self, kata):
        model = make_model()
        extra = nn.Parameter(torch.zeros(2, 2, dtype=F64))
        fill_grads(model)
        extra.grad = torch.ones_like(extra)
        optimizer = torch.optim.SGD([{"params": [model.bias]}, {"params": [extra, model.weight]}], lr=LR)
        order = [model.bias, extra, model.weight]
        names = ["bias", "extra", "weight"]
        got = kata.reset_grads(optimizer, set_to_none=False)
        check(
            isinstance(got, list) and len(got) == 3,
            f"reset_grads(optimizer with groups [bias], [extra, weight], set_to_none=False) returned {_grads(got)}; "
            "expected a list of 3 gradients, one per parameter of every group",
        )
        for i, (p, name) in enumerate(zip(order, names)):
            check(
                got[i] is p.grad,
                f"reset_grads(optimizer with groups [bias], [extra, weight], set_to_none=False)[{i}] is "
                f"{describe(got[i])}; expected {name}.grad ({describe(p.grad)}): the order of the param groups",
            )

    def test_set_to_none_false_leaves_a_missing_grad_as_none(self, kata):
        model = make_model()
        model.weight.grad = torch.ones_like(model.weight)  # the bias has no gradient yet
        optimizer = two_group_optimizer(model)
        got = kata.reset_grads(optimizer, set_to_none=False)
        check(
            isinstance(got, list) and len(got) == 2 and isinstance(got[0], torch.Tensor) and got[1] is None,
            f"reset_grads(optimizer, set_to_none=False) with bias.grad None returned {_grads(got)}; "
            "expected [zeros for the weight, None for the bias]: a missing gradient stays missing",
        )
        check(
            model.bias.grad is None,
            f"after reset_grads(optimizer, set_to_none=False), model.bias.grad is {describe(model.bias.grad)}; "
            "expected None, as it was",
        )
        check_tensor(got[0], torch.zeros(1, 3, dtype=F64), "reset_grads(optimizer, set_to_none=False)[0]")

    def test_the_gradient_after_a_missing_one_is_still_zeroed(self, kata):
        model = make_model()
        model.bias.grad = torch.ones_like(model.bias)  # the weight, first, has no gradient
        old = model.bias.grad
        optimizer = two_group_optimizer(model)
        got = kata.reset_grads(optimizer, set_to_none=False)
        check(
            isinstance(got, list) and len(got) == 2 and got[0] is None and got[1] is old,
            f"reset_grads(optimizer, set_to_none=False) with weight.grad None and bias.grad ones returned "
            f"{_grads(got)}; expected [None, the bias's own gradient, zeroed]",
        )
        check_tensor(old, torch.zeros(1, dtype=F64), "after reset_grads(optimizer, set_to_none=False), model.bias.grad")

    @pytest.mark.parametrize("set_to_none", [True, False], ids=lambda v: f"set_to_none={v}")
    def test_the_parameters_keep_their_values(self, kata, set_to_none):
        model = make_model()
        fill_grads(model)
        before = flat(*params_of(model))
        kata.reset_grads(two_group_optimizer(model), set_to_none=set_to_none)
        check_tensor(
            flat(model.weight.detach(), model.bias.detach()),
            before,
            f"the parameters (weight, then bias) after reset_grads(optimizer, set_to_none={set_to_none})",
        )


# ---------------------------------------------------------------- train_loop


NEVER_RESET = "each step moved by the sum of the gradients of all the batches so far (nothing was reset)"
LEFTOVER_USED = "the first step also followed the gradients the model arrived with"


@exercise("train_loop")
class TestTrainLoop:
    @pytest.mark.parametrize(
        "momentum, bias",
        [(0.0, True), (0.9, True), (0.0, False)],
        ids=["sgd", "sgd_momentum", "one_parameter"],
    )
    def test_parameters_follow_the_reference_trajectory_step_by_step(self, kata, device, momentum, bias):
        model = make_model(device, bias=bias)
        batches = make_batches(5, 4, device)
        start = flat(*params_of(model))
        expected = sgd_trajectory(model, batches, momentum=momentum)
        never_reset = sgd_trajectory(model, batches, momentum=momentum, carry=True)
        optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=momentum)
        got = kata.train_loop(model, optimizer, batches)
        called = (
            f"train_loop(Linear(3, 1{'' if bias else ', bias=False'}), SGD(lr={LR}, momentum={momentum}), 5 batches)"
        )
        check_trajectory(got, expected, start, called, "batch", [(never_reset, NEVER_RESET)])

    def test_leftover_gradients_do_not_leak_into_the_first_step(self, kata):
        model = make_model()
        batches = make_batches(3, 4)
        start = flat(*params_of(model))
        expected = sgd_trajectory(model, batches)
        symptoms = [
            (sgd_trajectory(model, batches, leftover=True), LEFTOVER_USED),
            (sgd_trajectory(model, batches, carry=True, leftover=True), NEVER_RESET + ", leftovers included"),
        ]
        give_leftover_grads(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=LR)
        got = kata.train_loop(model, optimizer, batches)
        check_trajectory(
            got, expected, start, "train_loop(model arriving with leftover .grad, SGD, 3 batches)", "batch", symptoms
        )

    def test_every_param_group_starts_each_step_from_its_own_batch(self, kata):
        model = make_model()
        batches = make_batches(3, 4)
        start = flat(*params_of(model))
        expected = sgd_trajectory(model, batches)
        optimizer = torch.optim.SGD([{"params": [model.weight]}, {"params": [model.bias]}], lr=LR)
        got = kata.train_loop(model, optimizer, batches)
        called = "train_loop(model, SGD with two param groups [weight], [bias], 3 batches)"
        check_trajectory(
            got, expected, start, called, "batch", [(sgd_trajectory(model, batches, carry=True), NEVER_RESET)]
        )

    def test_a_snapshot_holds_the_parameters_only_not_the_buffers(self, kata):
        model = make_model()
        # a buffer is state but not a parameter (running statistics, say): no snapshot holds it
        model.register_buffer("running_mean", torch.zeros(2, dtype=F64))
        batches = make_batches(2, 4)
        start = flat(*params_of(model))
        expected = sgd_trajectory(model, batches)
        got = kata.train_loop(model, torch.optim.SGD(model.parameters(), lr=LR), batches)
        for i, g in enumerate(got if isinstance(got, (list, tuple)) else [], start=1):
            check(
                not isinstance(g, torch.Tensor) or g.shape == expected[0].shape,
                f"train_loop(Linear(3, 1) with a buffer of 2 values, SGD, 2 batches): snapshot {i} is {describe(g)}; "
                f"expected {expected[0].numel()} values, the weight's and the bias's: a snapshot holds the "
                "parameters (those model.parameters() yields), not the buffers of the state dict",
            )
        check_trajectory(got, expected, start, "train_loop(Linear(3, 1) with a buffer, SGD, 2 batches)", "batch")

    def test_no_batches_give_an_empty_list(self, kata):
        model = make_model()
        got = kata.train_loop(model, torch.optim.SGD(model.parameters(), lr=LR), [])
        check(
            isinstance(got, (list, tuple)) and len(got) == 0,
            f"train_loop(model, optimizer, []) returned {describe(got)}; expected an empty list",
        )


# ---------------------------------------------------------------- train_with_accumulation


def joined(micro, k):
    """The big batches that k consecutive micro-batches make."""
    return [
        (torch.cat([x for x, _ in micro[i : i + k]]), torch.cat([y for _, y in micro[i : i + k]]))
        for i in range(0, len(micro), k)
    ]


def accumulation_symptoms(model, micro, k, momentum=0.0) -> list:
    big = joined(micro, k)
    last_only = [micro[i + k - 1] for i in range(0, len(micro), k)]
    last = "each step followed only the last micro-batch of its group (the gradients were reset before it)"
    symptoms = [
        (sgd_trajectory(model, last_only, momentum=momentum), last),
        (sgd_trajectory(model, last_only, momentum=momentum, scale=1 / k), last),
        (
            sgd_trajectory(model, big, momentum=momentum, carry=True),
            "each step still carried the gradients of the steps before it (nothing was reset after a step)",
        ),
    ]
    if k > 1:
        symptoms.insert(
            0,
            (
                sgd_trajectory(model, big, momentum=momentum, scale=k),
                f"each step moved {k} times too far: {k} backward passes add up {k} micro-batch gradients, while "
                "the loss of the joined batch is a mean",
            ),
        )
    return symptoms


@exercise("train_with_accumulation")
class TestTrainWithAccumulation:
    @pytest.mark.parametrize(
        "k, momentum", [(1, 0.0), (2, 0.0), (4, 0.0), (2, 0.9)], ids=["k=1", "k=2", "k=4", "k=2-momentum"]
    )
    def test_matches_one_step_per_joined_batch(self, kata, device, k, momentum):
        model = make_model(device)
        micro = make_batches(3 * k, 3, device)
        start = flat(*params_of(model))
        expected = sgd_trajectory(model, joined(micro, k), momentum=momentum)
        symptoms = accumulation_symptoms(model, micro, k, momentum)
        optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=momentum)
        got = kata.train_with_accumulation(model, optimizer, micro, k)
        check_trajectory(
            got,
            expected,
            start,
            f"train_with_accumulation(model, SGD(lr={LR}, momentum={momentum}), {3 * k} micro-batches of 3, k={k})",
            f"optimizer step (one per {k} micro-batches)",
            symptoms,
        )

    def test_leftover_gradients_do_not_leak_into_the_first_step(self, kata):
        model = make_model()
        micro = make_batches(4, 3)
        start = flat(*params_of(model))
        big = joined(micro, 2)
        expected = sgd_trajectory(model, big)
        symptoms = [(sgd_trajectory(model, big, leftover=True), LEFTOVER_USED)] + accumulation_symptoms(model, micro, 2)
        give_leftover_grads(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=LR)
        got = kata.train_with_accumulation(model, optimizer, micro, 2)
        check_trajectory(
            got,
            expected,
            start,
            "train_with_accumulation(model arriving with leftover .grad, SGD, 4 micro-batches, k=2)",
            "optimizer step",
            symptoms,
        )

    def test_the_model_sees_one_micro_batch_at_a_time(self, kata):
        model = make_model()
        micro = make_batches(6, 3)
        sizes = []
        model.register_forward_hook(lambda module, inputs, output: sizes.append(inputs[0].shape[0]))
        kata.train_with_accumulation(model, torch.optim.SGD(model.parameters(), lr=LR), micro, 3)
        check(
            sizes and all(s == 3 for s in sizes),
            f"train_with_accumulation(model, SGD, 6 micro-batches of 3 samples, k=3) ran the model on batches of "
            f"{sizes} samples; expected every forward pass on one micro-batch of 3 (the joined batch is the one "
            "that does not fit in memory)",
        )


# ---------------------------------------------------------------- two_loss_grads


def two_loss_reference(model: nn.Linear, x, y) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of mse(out, y) and of mean(out^2) with respect to the weight, by hand."""
    w, b = model.weight.detach(), model.bias.detach()
    grad_fit, _ = mse_grads(w, b, x, y)
    grad_size, _ = mse_grads(w, b, x, torch.zeros_like(y))  # mean(out^2) is the mse against zeros
    return grad_fit, grad_size


@exercise("two_loss_grads")
class TestTwoLossGrads:
    def _check(self, got, fit, size, called, leftover=None):
        __tracebackhide__ = True
        check(
            isinstance(got, (tuple, list)) and len(got) == 2,
            f"{called} returned {describe(got)}; expected a pair (grad_fit, grad_size)",
        )
        grad_fit, grad_size = got
        if isinstance(grad_size, torch.Tensor) and grad_size.shape == size.shape:
            check(
                not torch.allclose(grad_size.detach().cpu(), (fit + size).cpu()),
                f"{called}: grad_size is the sum of both losses' gradients; the first pass's gradient was "
                "still in .grad when the second one added to it",
            )
        if isinstance(grad_fit, torch.Tensor) and grad_fit.shape == size.shape:
            check(
                grad_fit is not grad_size and not torch.allclose(grad_fit.detach().cpu(), size.cpu()),
                f"{called}: grad_fit holds the second loss's gradient; the tensor kept after the first pass "
                "changed when the second one was found",
            )
            check(
                bool(grad_fit.detach().ne(0).any()) or not bool(fit.ne(0).any()),
                f"{called}: grad_fit is all zeros; the tensor kept after the first pass was zeroed when the "
                "gradients were reset for the second",
            )
            if leftover is not None:
                check(
                    not torch.allclose(grad_fit.detach().cpu(), (fit + leftover).cpu()),
                    f"{called}: grad_fit is the gradient of fit plus the gradient the model arrived with; expected "
                    "the gradient of fit alone",
                )
        check_tensor(grad_fit, fit, f"{called}[0], the gradient of fit = mse_loss(out, y)")
        check_tensor(grad_size, size, f"{called}[1], the gradient of size = out.pow(2).mean()")

    @pytest.mark.parametrize("outputs", [1, 2], ids=["Linear(3,1)", "Linear(3,2)"])
    def test_each_gradient_belongs_to_its_own_loss(self, kata, device, outputs):
        model = make_model(device, out_features=outputs)
        ((x, y),) = make_batches(1, 6, device, out_features=outputs)
        fit, size = two_loss_reference(model, x, y)
        self._check(kata.two_loss_grads(model, x, y), fit, size, f"two_loss_grads(Linear(3, {outputs}), x, y)")

    def test_leftover_gradients_do_not_leak_into_the_first(self, kata):
        model = make_model()
        ((x, y),) = make_batches(1, 6)
        fit, size = two_loss_reference(model, x, y)
        give_leftover_grads(model)
        got = kata.two_loss_grads(model, x, y)
        leftover = torch.full_like(fit, LEFTOVER_W)
        self._check(got, fit, size, "two_loss_grads(model arriving with leftover .grad, x, y)", leftover)

    def test_the_model_runs_forward_only_once(self, kata):
        model = make_model()
        ((x, y),) = make_batches(1, 6)
        calls = []
        model.register_forward_hook(lambda module, inputs, output: calls.append(1))
        kata.two_loss_grads(model, x, y)
        check(
            len(calls) == 1,
            f"two_loss_grads(model, x, y) called the model {len(calls)} times; expected once: both losses come "
            "from one forward pass",
        )

    def test_each_gradient_is_accumulated_into_the_weights_grad(self, kata):
        model = make_model()
        ((x, y),) = make_batches(1, 6)
        passes = []
        # Runs each time a backward pass has added into model.weight.grad (not for a gradient only returned).
        model.weight.register_post_accumulate_grad_hook(lambda p: passes.append(1))
        kata.two_loss_grads(model, x, y)
        check(
            len(passes) == 2,
            f"two_loss_grads(model, x, y): {len(passes)} backward pass(es) accumulated into model.weight.grad; "
            "expected 2, one per loss, as a training step finds its gradient",
        )

    def test_the_results_carry_no_graph_and_the_weights_keep_their_values(self, kata):
        model = make_model()
        ((x, y),) = make_batches(1, 6)
        before = flat(*params_of(model))
        got = kata.two_loss_grads(model, x, y)
        check(
            isinstance(got, (tuple, list)) and len(got) == 2,
            f"two_loss_grads(model, x, y) returned {describe(got)}; expected a pair (grad_fit, grad_size)",
        )
        for name, g in zip(("grad_fit", "grad_size"), got):
            check(
                isinstance(g, torch.Tensor) and not g.requires_grad and g.grad_fn is None,
                f"two_loss_grads(model, x, y): {name} is {describe(g)}"
                + (f" with grad_fn={type(g.grad_fn).__name__}" if isinstance(g, torch.Tensor) and g.grad_fn else "")
                + "; expected a gradient that carries no graph (keeping the graph for a second pass is not "
                "recording the gradient's own graph)",
            )
        check_tensor(
            flat(model.weight.detach(), model.bias.detach()), before, "the model's parameters after two_loss_grads"
        )
