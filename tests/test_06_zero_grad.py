"""Tests for kata 06, gradients accumulate (zero_grad): one class per exercise, in learning order.

Every reference here is computed without autograd: for a linear model out = X W^T + b and the
loss mean((out - y)^2) over N samples, dL/dW = 2/N (out - y)^T X and dL/db = 2/N sum(out - y).
The training references apply SGD's update rule by hand, in float64, so they are exact to
rounding and independent of the code under test.
"""

import pytest
import torch
from torch import nn

from dojo.testing import check, check_tensor, describe, exercise

F64 = torch.float64
LR = 0.1


def make_model(device="cpu", seed=0) -> nn.Linear:
    """nn.Linear(3, 1) in float64 with seeded weights and no gradients."""
    g = torch.Generator().manual_seed(seed)
    model = nn.Linear(3, 1, dtype=F64)
    with torch.no_grad():
        model.weight.copy_(torch.randn(1, 3, generator=g, dtype=F64))
        model.bias.copy_(torch.randn(1, generator=g, dtype=F64))
    return model.to(device)


def make_batches(count, size, device="cpu", seed=1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`count` seeded (x, y) batches, x of shape (size, 3) and y of shape (size, 1), float64."""
    g = torch.Generator().manual_seed(seed)
    w_true = torch.tensor([[1.5, -2.0, 0.5]], dtype=F64)
    batches = []
    for _ in range(count):
        x = torch.randn(size, 3, generator=g, dtype=F64)
        y = x @ w_true.T + 0.3 + 0.1 * torch.randn(size, 1, generator=g, dtype=F64)
        batches.append((x.to(device), y.to(device)))
    return batches


def give_leftover_grads(model: nn.Linear) -> None:
    """Gradients left behind by earlier work, as a model often arrives in real code."""
    model.weight.grad = torch.full_like(model.weight, 3.0)
    model.bias.grad = torch.full_like(model.bias, -2.0)


def mse_grads(w, b, x, y) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of F.mse_loss(x @ w.T + b, y) with respect to w (1, 3) and b (1,), by hand."""
    r = x @ w.T + b - y
    n = x.shape[0]
    return 2.0 / n * r.T @ x, 2.0 / n * r.sum(0)


def flat(w, b) -> torch.Tensor:
    return torch.cat([w.reshape(-1), b.reshape(-1)])


def sgd_trajectory(model: nn.Linear, batches, lr=LR, momentum=0.0) -> list[torch.Tensor]:
    """Parameters after each SGD step, one step per batch, by hand (torch's rule, dampening 0)."""
    w, b = model.weight.detach().clone(), model.bias.detach().clone()
    buf_w = buf_b = None
    out = []
    for x, y in batches:
        gw, gb = mse_grads(w, b, x, y)
        if momentum:
            buf_w = gw if buf_w is None else momentum * buf_w + gw
            buf_b = gb if buf_b is None else momentum * buf_b + gb
            gw, gb = buf_w, buf_b
        w, b = w - lr * gw, b - lr * gb
        out.append(flat(w, b))
    return out


def check_trajectory(got, expected: list[torch.Tensor], start: torch.Tensor, called: str, unit: str) -> None:
    """Compare a list of parameter snapshots with the reference, step by step."""
    __tracebackhide__ = True
    what = f"a list of {len(got)} snapshots" if isinstance(got, (list, tuple)) else describe(got)
    check(
        isinstance(got, (list, tuple)) and len(got) == len(expected),
        f"{called} returned {what}; expected a list of {len(expected)} snapshots, one per {unit}",
    )
    for i, (g, e) in enumerate(zip(got, expected), start=1):
        if isinstance(g, torch.Tensor) and g.shape == start.shape:
            previous = start if i == 1 else expected[i - 2]
            check(
                not torch.allclose(g.detach().cpu(), previous.cpu(), rtol=1e-12, atol=1e-12),
                f"{called}: the parameters did not move at step {i} (still {describe(previous)}); expected "
                f"{describe(e)}. Was the gradient thrown away between backward() and step()?",
            )
        check_tensor(g, e, f"{called}: parameters after step {i}")


@exercise("grad_after_k_backwards")
class TestGradAfterKBackwards:
    @pytest.mark.parametrize("k", [1, 3], ids=lambda k: f"k={k}")
    def test_k_backward_passes_give_k_times_the_gradient(self, kata, device, k):
        model = make_model(device)
        ((x, y),) = make_batches(1, 5, device)
        single, _ = mse_grads(model.weight.detach(), model.bias.detach(), x, y)
        got = kata.grad_after_k_backwards(model, x, y, k)
        if isinstance(got, torch.Tensor) and got.shape == single.shape and k > 1:
            g, s = got.detach().cpu().flatten(), single.cpu().flatten()
            times = (g @ s / (s @ s)).item()  # how many single-pass gradients `got` holds
            check(
                abs(times - k) < 1e-6,
                f"grad_after_k_backwards(model, x, y, k={k}) returned {times:.3g} times the gradient of one pass; "
                f"expected {k} times: each backward() adds to .grad, nothing in between may reset it",
            )
        check_tensor(got, k * single, f"grad_after_k_backwards(model, x, y, k={k})")

    def test_backward_really_runs_k_times(self, kata):
        model = make_model()
        ((x, y),) = make_batches(1, 5)
        calls = []
        # A hook on a leaf tensor runs once for every backward pass that reaches it.
        model.weight.register_hook(lambda grad: calls.append(1))
        kata.grad_after_k_backwards(model, x, y, 4)
        check(
            len(calls) == 4,
            f"grad_after_k_backwards(model, x, y, k=4): the gradient of model.weight was computed {len(calls)} "
            "time(s); expected 4 backward passes, each adding to .grad ((4 * loss).backward() is one pass)",
        )


def two_group_optimizer(model: nn.Linear) -> torch.optim.Optimizer:
    return torch.optim.SGD([{"params": [model.weight]}, {"params": [model.bias], "lr": 0.01}], lr=LR)


def fill_grads(model: nn.Linear) -> None:
    ((x, y),) = make_batches(1, 4)
    nn.functional.mse_loss(model(x), y).backward()


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
            f"reset_grads(optimizer with 2 param groups{args}) returned {describe(got)}; expected [None, None]: "
            "since PyTorch 2.0, zero_grad() sets every .grad to None, not to zeros",
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
        got = kata.reset_grads(optimizer, set_to_none=False)
        check(
            isinstance(got, list) and len(got) == 2,
            f"reset_grads(optimizer with 2 param groups, set_to_none=False) returned {describe(got)}; "
            "expected a list of 2 gradients",
        )
        for name, old, returned in zip(("weight", "bias"), before, got):
            now = getattr(model, name).grad
            check(
                now is old and returned is old,
                f"reset_grads(optimizer, set_to_none=False): model.{name}.grad is now {describe(now)} and the "
                f"list holds {describe(returned)}; expected the same tensor as before, zeroed in place",
            )
            check_tensor(
                now, torch.zeros_like(old), f"after reset_grads(optimizer, set_to_none=False), model.{name}.grad"
            )

    def test_set_to_none_false_leaves_a_missing_grad_as_none(self, kata):
        model = make_model()
        model.weight.grad = torch.ones_like(model.weight)  # the bias has no gradient yet
        optimizer = two_group_optimizer(model)
        got = kata.reset_grads(optimizer, set_to_none=False)
        check(
            isinstance(got, list) and len(got) == 2 and isinstance(got[0], torch.Tensor) and got[1] is None,
            f"reset_grads(optimizer, set_to_none=False) with bias.grad None returned {describe(got)}; "
            "expected [zeros for the weight, None for the bias]: zero_grad leaves a missing grad missing",
        )
        check_tensor(got[0], torch.zeros(1, 3, dtype=F64), "reset_grads(optimizer, set_to_none=False)[0]")


@exercise("train_loop")
class TestTrainLoop:
    @pytest.mark.parametrize("momentum", [0.0, 0.9], ids=["sgd", "sgd_momentum"])
    def test_parameters_follow_the_reference_trajectory_step_by_step(self, kata, device, momentum):
        model = make_model(device)
        batches = make_batches(5, 4, device)
        start = flat(model.weight.detach(), model.bias.detach()).clone()
        expected = sgd_trajectory(model, batches, momentum=momentum)
        optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=momentum)
        got = kata.train_loop(model, optimizer, batches)
        check_trajectory(
            got, expected, start, f"train_loop(model, SGD(lr={LR}, momentum={momentum}), 5 batches)", "batch"
        )

    def test_leftover_gradients_do_not_leak_into_the_first_step(self, kata):
        model = make_model()
        batches = make_batches(3, 4)
        start = flat(model.weight.detach(), model.bias.detach()).clone()
        expected = sgd_trajectory(model, batches)
        give_leftover_grads(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=LR)
        got = kata.train_loop(model, optimizer, batches)
        check_trajectory(
            got, expected, start, "train_loop(model arriving with leftover .grad, SGD, 3 batches)", "batch"
        )


@exercise("train_with_accumulation")
class TestTrainWithAccumulation:
    @pytest.mark.parametrize("k", [2, 4], ids=lambda k: f"k={k}")
    def test_matches_one_step_per_joined_batch(self, kata, device, k):
        model = make_model(device)
        micro = make_batches(3 * k, 3, device)
        joined = [
            (torch.cat([x for x, _ in micro[i : i + k]]), torch.cat([y for _, y in micro[i : i + k]]))
            for i in range(0, len(micro), k)
        ]
        start = flat(model.weight.detach(), model.bias.detach()).clone()
        expected = sgd_trajectory(model, joined)
        optimizer = torch.optim.SGD(model.parameters(), lr=LR)
        got = kata.train_with_accumulation(model, optimizer, micro, k)
        check_trajectory(
            got,
            expected,
            start,
            f"train_with_accumulation(model, SGD(lr={LR}), {3 * k} micro-batches of 3, k={k})",
            f"optimizer step (one per {k} micro-batches)",
        )

    def test_leftover_gradients_do_not_leak_into_the_first_step(self, kata):
        model = make_model()
        micro = make_batches(4, 3)
        joined = [
            (torch.cat([micro[i][0], micro[i + 1][0]]), torch.cat([micro[i][1], micro[i + 1][1]])) for i in (0, 2)
        ]
        start = flat(model.weight.detach(), model.bias.detach()).clone()
        expected = sgd_trajectory(model, joined)
        give_leftover_grads(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=LR)
        got = kata.train_with_accumulation(model, optimizer, micro, 2)
        check_trajectory(
            got,
            expected,
            start,
            "train_with_accumulation(model arriving with leftover .grad, SGD, 4 micro-batches, k=2)",
            "optimizer step",
        )


def two_loss_reference(model: nn.Linear, x, y) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of mse(out, y) and of mean(out^2) with respect to the weight, by hand."""
    w, b = model.weight.detach(), model.bias.detach()
    grad_fit, _ = mse_grads(w, b, x, y)
    grad_size, _ = mse_grads(w, b, x, torch.zeros_like(y))  # mean(out^2) is the mse against zeros
    return grad_fit, grad_size


@exercise("two_loss_grads")
class TestTwoLossGrads:
    def _check(self, got, fit, size, called):
        __tracebackhide__ = True
        check(
            isinstance(got, (tuple, list)) and len(got) == 2,
            f"{called} returned {describe(got)}; expected a pair (grad_fit, grad_size)",
        )
        grad_fit, grad_size = got
        if isinstance(grad_size, torch.Tensor) and grad_size.shape == size.shape:
            check(
                not torch.allclose(grad_size.detach().cpu(), (fit + size).cpu()),
                f"{called}: grad_size is the sum of both losses' gradients; the first backward's gradient was "
                "still in .grad when the second one added to it",
            )
        if isinstance(grad_fit, torch.Tensor) and grad_fit.shape == size.shape:
            check(
                grad_fit is not grad_size and not torch.allclose(grad_fit.detach().cpu(), size.cpu()),
                f"{called}: grad_fit holds the second loss's gradient; the tensor kept after the first backward "
                "was zeroed in place and reused by the second (keep a clone)",
            )
        check_tensor(grad_fit, fit, f"{called}[0], the gradient of fit = mse_loss(out, y)")
        check_tensor(grad_size, size, f"{called}[1], the gradient of size = out.pow(2).mean()")

    def test_each_gradient_belongs_to_its_own_loss(self, kata, device):
        model = make_model(device)
        ((x, y),) = make_batches(1, 6, device)
        fit, size = two_loss_reference(model, x, y)
        self._check(kata.two_loss_grads(model, x, y), fit, size, "two_loss_grads(model, x, y)")

    def test_leftover_gradients_do_not_leak_into_the_first(self, kata):
        model = make_model()
        ((x, y),) = make_batches(1, 6)
        fit, size = two_loss_reference(model, x, y)
        give_leftover_grads(model)
        self._check(
            kata.two_loss_grads(model, x, y), fit, size, "two_loss_grads(model arriving with leftover .grad, x, y)"
        )

    def test_the_model_runs_forward_only_once(self, kata):
        model = make_model()
        ((x, y),) = make_batches(1, 6)
        calls = []
        model.register_forward_hook(lambda module, inputs, output: calls.append(1))
        kata.two_loss_grads(model, x, y)
        check(
            len(calls) == 1,
            f"two_loss_grads(model, x, y) called the model {len(calls)} times; expected once: both losses come "
            "from one graph, which the first backward(retain_graph=True) must keep for the second",
        )
