"""Kata 06: gradients accumulate, so zero them (at the right moment).

A backward pass does not *set* a parameter's `.grad`: it *adds* to whatever is there, and nothing
resets it between two passes unless your code does. Where (and whether) a training loop resets
the gradients therefore decides which gradient each optimizer step follows, and a mistake there
raises no error at all: the loop simply trains a different model. The same rule, used on purpose,
lets several small batches add up to the gradient of one big batch, and it makes two backward
passes through one forward pass interfere. Since PyTorch 2.0, a reset normally leaves no gradient
at all (`None`) rather than a tensor of zeros. Run `dojo` to see which exercise is next and
`dojo hint 06` when stuck.

Every exercise uses the mean-squared-error loss of the model's output, `F.mse_loss(model(x), y)`.
"""

import torch
import torch.nn.functional as F
from torch import nn


def grad_after_k_backwards(model: nn.Linear, x: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """Run `k` backward passes of the loss `F.mse_loss(model(x), y)`, with nothing reset in
    between, and return the gradient of `model.weight` as it stands after the last one.

    `model` arrives with no gradients (every `.grad` is None), and `k >= 1`. Afterwards every
    parameter's `.grad` (the weight's and the bias's) holds `k` times the gradient of one pass,
    and the result equals the weight's `.grad`: a tensor of the weight's shape, dtype and device
    that carries no graph. The parameters keep their values (nothing is trained here).

    There really are `k` backward passes, each of them reaching the weight: one pass through a
    loss scaled by `k` gives the same numbers, but is not what is asked. If a second pass raises
    "Trying to backward through the graph a second time", the first one freed what the second
    needed.

    This is the behaviour every other exercise of the kata deals with: a gradient that nothing
    resets is the sum of all the gradients computed since it was last reset.
    """
    # BEGIN SOLUTION
    for _ in range(k):
        # A fresh forward pass builds a fresh graph: backward() frees the old one's saved tensors.
        loss = F.mse_loss(model(x), y)
        loss.backward()  # adds into model.weight.grad; nothing here resets it
    return model.weight.grad
    # END SOLUTION


def reset_grads(optimizer: torch.optim.Optimizer, set_to_none: bool = True) -> list[torch.Tensor | None]:
    """Reset the gradients of every parameter that `optimizer` updates, as a training step does
    before its backward pass; then return those parameters' `.grad` attributes as a list, one
    item per parameter, in the order of `optimizer.param_groups` (every group in turn, each
    group's parameters in their order).

    With `set_to_none=True` (the default, as in PyTorch since 2.0) every one of them is None
    afterwards: no memory is kept, and the next backward pass creates the gradient anew. With
    `set_to_none=False` a parameter's existing gradient stays the very same tensor object, in the
    same memory (code such as CUDA graphs holds on to it), and holds zeros, whatever it held
    before (inf and nan included); a gradient that is None stays None, and the parameters after
    it are reset all the same. The parameters' own values do not change.

    The symptom of the default elsewhere: code written for zeros (`p.grad.norm()`, say) raises
    AttributeError: 'NoneType' object has no attribute ... after such a reset.
    """
    # BEGIN SOLUTION
    optimizer.zero_grad(set_to_none=set_to_none)
    return [p.grad for group in optimizer.param_groups for p in group["params"]]
    # END SOLUTION


def train_loop(
    model: nn.Module, optimizer: torch.optim.Optimizer, batches: list[tuple[torch.Tensor, torch.Tensor]]
) -> list[torch.Tensor]:
    """Train `model` with `optimizer`: one optimizer step per `(x, y)` batch of `batches`, in order,
    on the loss `F.mse_loss(model(x), y)`. Return a list of snapshots of the parameters, one taken
    after each step (an empty list for no batches).

    A snapshot is one 1-D tensor holding the values of every parameter, flattened and joined in
    the order of `model.parameters()`. It carries no graph, and keeps the values of its moment
    while the model trains on.

    Each step must follow the gradient of its own batch only, whatever the model's `.grad` held
    when it arrived (gradients left over from earlier work: a debugging pass, say). The traps, by
    their symptoms: the loop runs without an error, but the parameters never move; or each step
    moves them by the sum of the gradients of all the batches so far; or the first step is off by
    the gradients the model arrived with.
    """
    # BEGIN SOLUTION
    snapshots = []
    for x, y in batches:
        # Reset first: this also clears whatever gradients the model arrived with.
        optimizer.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        snapshots.append(nn.utils.parameters_to_vector(model.parameters()).detach())
    return snapshots
    # END SOLUTION


def train_with_accumulation(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    micro_batches: list[tuple[torch.Tensor, torch.Tensor]],
    k: int,
) -> list[torch.Tensor]:
    """Train with gradient accumulation: one optimizer step per `k` consecutive micro-batches of
    `micro_batches`, each step equal (to rounding) to one step on the batch that joins those `k`
    micro-batches, with the loss `F.mse_loss(model(x), y)`. Return a list of snapshots of the
    parameters, as in `train_loop`, one taken after each optimizer step: `len(micro_batches) // k`
    of them.

    All micro-batches have the same size, `k >= 1`, and `len(micro_batches)` is a multiple of `k`.
    The model only ever sees one micro-batch at a time (that is the point: a batch too large for
    memory is trained in pieces). The model may arrive with gradients left over from earlier
    work; no step may use them.

    The traps, by their symptoms: steps k times too large (the loss of the big batch is a *mean*
    over its samples), a step that follows only the last micro-batch of its group, or a second
    step that still carries the first one's gradient.
    """
    # BEGIN SOLUTION
    snapshots = []
    optimizer.zero_grad()
    for i, (x, y) in enumerate(micro_batches, start=1):
        # Divide by k: k backward passes add up to the gradient of the mean over all k pieces.
        loss = F.mse_loss(model(x), y) / k
        loss.backward()
        if i % k == 0:
            optimizer.step()
            # Zero only after a step, so the next k micro-batches start from nothing.
            optimizer.zero_grad()
            snapshots.append(nn.utils.parameters_to_vector(model.parameters()).detach())
    return snapshots
    # END SOLUTION


def two_loss_grads(model: nn.Linear, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """From ONE forward pass `out = model(x)`, compute two losses, `fit = F.mse_loss(out, y)` and
    `size = out.pow(2).mean()`, and return the pair `(grad_fit, grad_size)`: the gradient of each
    loss alone with respect to `model.weight` (how one would log how much each term of a loss
    pulls on the weights).

    Call `model` once. Find each gradient the way a training step does, by a backward pass that
    accumulates into the weight's `.grad`: one pass per loss. `model` may arrive with gradients
    left over from earlier work; neither result may include them. Both results are tensors of
    the weight's shape, dtype and device that carry no graph, and the weights keep their values.

    The traps, by their symptoms: the second backward pass raises "Trying to backward through
    the graph a second time"; the second result is the sum of both gradients; the first result
    turns into zeros, or into the second gradient, once the second one has been found.
    """
    # BEGIN SOLUTION
    model.zero_grad()  # leftover gradients would be added to the first result
    out = model(x)
    fit = F.mse_loss(out, y)
    size = out.pow(2).mean()
    # Keep the graph: the second backward goes through the same model(x) node.
    fit.backward(retain_graph=True)
    # Clone: a reset that zeros in place would otherwise wipe the tensor we return.
    grad_fit = model.weight.grad.clone()
    model.zero_grad()
    size.backward()
    return grad_fit, model.weight.grad
    # END SOLUTION
