"""Kata 06: gradients accumulate, so zero them (at the right moment).

`loss.backward()` does not *set* `.grad`, it *adds* to it. That is why every training loop calls
`optimizer.zero_grad()` once per step, before `backward()`; why forgetting it (or calling it in
the wrong place) trains a different model without any error; why gradient accumulation over
micro-batches works at all; and why two backward passes through one graph need both
`retain_graph=True` and a reset in between. Since PyTorch 2.0, `zero_grad()` sets the grads to
`None` rather than filling them with zeros. Run `dojo` to see which exercise is next and
`dojo hint 06` when stuck.

Every exercise uses the mean-squared-error loss, `F.mse_loss(model(x), y)`.
"""

import torch
import torch.nn.functional as F
from torch import nn


def grad_after_k_backwards(model: nn.Linear, x: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """Compute `F.mse_loss(model(x), y)` and call `backward()` on it `k` times, without zeroing
    in between; return `model.weight.grad` afterwards.

    The model arrives with no gradients (`.grad` is None). Each `backward()` *adds* the gradient
    to `.grad`, so the result is `k` times the gradient of a single pass: the reason a training
    loop must reset the grads every step. Really call `backward()` `k` times (a fresh forward
    pass for each, or one graph kept with `retain_graph=True`); `(k * loss).backward()` gives
    the same numbers but is not the lesson.
    """
    # TODO: k backward passes without a reset give k times the gradient
    raise NotImplementedError("06_zero_grad.grad_after_k_backwards is not done yet (stuck? dojo hint 06 grad_after_k_backwards)")


def reset_grads(optimizer: torch.optim.Optimizer, set_to_none: bool = True) -> list[torch.Tensor | None]:
    """Reset the gradients of every parameter `optimizer` updates, then return their `.grad`
    attributes, one per parameter, in the order of `optimizer.param_groups` (all groups).

    With `set_to_none=True` (the default, as in PyTorch since 2.0) every `.grad` becomes `None`:
    no memory is kept, and the next `backward()` simply creates the gradient. With
    `set_to_none=False` each existing `.grad` is filled with zeros *in place* (the same tensor,
    the same memory, as code such as CUDA graphs expects), and a `.grad` that is `None` stays
    `None`. Code that reads `p.grad` after `zero_grad()` must be ready for `None`.
    """
    # TODO: what optimizer.zero_grad() leaves behind: None, or zeros in place
    raise NotImplementedError("06_zero_grad.reset_grads is not done yet (stuck? dojo hint 06 reset_grads)")


def train_loop(
    model: nn.Module, optimizer: torch.optim.Optimizer, batches: list[tuple[torch.Tensor, torch.Tensor]]
) -> list[torch.Tensor]:
    """Train `model` with `optimizer`: one optimizer step per `(x, y)` batch, in order, on the
    loss `F.mse_loss(model(x), y)`. After each step, record the parameters as one detached 1-D
    tensor, `torch.nn.utils.parameters_to_vector(model.parameters()).detach()`; return the list
    of these snapshots (one per batch).

    Each step must use the gradient of its own batch only. The model may arrive with gradients
    left over from earlier work (a debugging pass that called `backward()`, say). Without
    `zero_grad()`, or with it between `backward()` and `step()`, the loop runs without an error
    and trains the wrong model.
    """
    # TODO: one step per batch that uses that batch's gradient only
    raise NotImplementedError("06_zero_grad.train_loop is not done yet (stuck? dojo hint 06 train_loop)")


def train_with_accumulation(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    micro_batches: list[tuple[torch.Tensor, torch.Tensor]],
    k: int,
) -> list[torch.Tensor]:
    """Train with gradient accumulation: one optimizer step per `k` consecutive micro-batches,
    equivalent (to rounding) to one step on the batch that joins those `k` micro-batches, with
    loss `F.mse_loss(model(x), y)`. After each optimizer step, record the parameters as in
    `train_loop` (`parameters_to_vector(...).detach()`); return the list of snapshots, one per
    optimizer step, so `len(micro_batches) // k` of them.

    All micro-batches have the same size, and `len(micro_batches)` is a multiple of `k`.
    The gradient of a mean over the big batch is the *mean* of the micro-batch gradients, while
    `backward()` *sums* them. This is how a batch too large for memory is trained in pieces.
    The model may arrive with leftover gradients.
    """
    # TODO: k micro-batches, one step: equal to one step on the joined batch
    raise NotImplementedError("06_zero_grad.train_with_accumulation is not done yet (stuck? dojo hint 06 train_with_accumulation)")


def two_loss_grads(model: nn.Linear, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """From ONE forward pass `out = model(x)`, compute two losses, `fit = F.mse_loss(out, y)` and
    `size = out.pow(2).mean()`, and return `(grad_fit, grad_size)`: the gradient of each loss
    with respect to `model.weight`, each found with `backward()` (how one would log how much
    each term of a loss pulls on the weights).

    Call `model` only once. The first `backward()` frees the graph's saved tensors unless told
    to keep them (`retain_graph=True`); otherwise the second one raises "Trying to backward
    through the graph a second time". And `.grad` accumulates: without a reset in between, the
    second result is the *sum* of both gradients. The model may arrive with leftover gradients,
    and the first result must not change when the grads are reset for the second.
    """
    # TODO: two gradients from one graph: retain_graph and a reset in between
    raise NotImplementedError("06_zero_grad.two_loss_grads is not done yet (stuck? dojo hint 06 two_loss_grads)")
