"""Kata 05: leaves and in-place updates.

Autograd records every operation on tensors that require grad. The tensors you create yourself
are the graph's *leaves*; everything computed from them is a non-leaf with a `grad_fn`, the node
that knows how to send gradients back. `backward()` fills `.grad` only on leaves that require
grad, so a parameter must be a leaf, and it must stay the same leaf object while you train it:
updates happen in place, under `torch.no_grad()`, where autograd does not record them. In-place
operations have a second trap: a tensor that autograd saved for the backward pass must not be
modified before backward runs. Run `dojo` to see which exercise is next and `dojo hint 05`
when stuck.
"""

from __future__ import annotations

import torch


def node_info(t: torch.Tensor) -> tuple[bool, str | None]:
    """Return `(is_leaf, grad_fn_name)` for the tensor `t`.

    `grad_fn_name` is the name of the autograd node that created `t`, such as "AddBackward0"
    or "MeanBackward0", or None when `t` has no `grad_fn` (a leaf). Return the name as a str,
    not the node object and not `str(node)` ("<AddBackward0 object at 0x...>").

    Try it on the classic regression graph: parameters `a` and `b`, data `x` and `y`,
    `yhat = a + b * x`, `loss = ((yhat - y) ** 2).mean()`. Which of them are leaves? (The data
    are leaves too: every tensor that no recorded operation produced is one.)
    """
    # TODO: (is_leaf, grad_fn name or None) of a tensor in the regression graph
    raise NotImplementedError("05_leaf_inplace.node_info is not done yet (stuck? dojo hint 05 node_info)")


def tensors_that_get_grad(named: dict[str, torch.Tensor]) -> list[str]:
    """Return the names of the tensors whose `.grad` a later `backward()` will fill in.

    `named` maps names to tensors of one graph, e.g. {"x": x, "a": a, "yhat": yhat, "loss": loss};
    keep the dict's order. Decide from the tensors' flags alone: the function is called before
    any backward, so every `.grad` is still None.

    A leaf gets a `.grad` only if it requires grad (data like `x` does not). A non-leaf does
    not get one, even though it requires grad, unless `retain_grad()` was called on it.
    """
    # TODO: names of the tensors whose .grad backward() fills in
    raise NotImplementedError("05_leaf_inplace.tensors_that_get_grad is not done yet (stuck? dojo hint 05 tensors_that_get_grad)")


def small_leaf_param(
    shape: tuple[int, ...], scale: float, generator: torch.Generator, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Return a parameter for `device`: normal noise times `scale`, a leaf that requires grad.

    Draw the noise on the CPU with `torch.randn(shape, generator=generator)` (the generator is
    a CPU one, and the tests draw the same numbers to compare), scale it, move it to `device`.

    `torch.randn(shape, requires_grad=True) * scale` is NOT a leaf: the multiplication was
    recorded, so the result is a MulBackward0 node and backward() leaves its `.grad` at None
    (the gradient goes to the unnamed random tensor you threw away). `.to(device)` after
    `requires_grad=True` is the same mistake (ToCopyBackward0). Ask for grad last.
    """
    # TODO: randn * scale moved to a device, and still a leaf that requires grad
    raise NotImplementedError("05_leaf_inplace.small_leaf_param is not done yet (stuck? dojo hint 05 small_leaf_param)")


def leaf_inplace_error_message(p: torch.Tensor) -> str:
    """Trigger, on purpose, the error for an in-place update of a leaf; return its message.

    `p` is a leaf that requires grad (a parameter). Modify the whole of `p` in place outside
    `no_grad` (any in-place method such as `p.add_(1.0)` or `p.zero_()`, or `p -= 1.0`), catch
    the RuntimeError and return `str()` of it (not the exception object, not its repr).
    PyTorch refuses before it writes anything, so `p` comes back unchanged. (`p[0] = 1.0`
    raises a variant that starts "a view of a leaf Variable": it writes to a view of `p`.)

    This is the error every hand-written training loop meets once: autograd cannot record an
    in-place change of a tensor whose gradient it is supposed to deliver.
    """
    # TODO: trigger the leaf in-place RuntimeError on purpose and return its message
    raise NotImplementedError("05_leaf_inplace.leaf_inplace_error_message is not done yet (stuck? dojo hint 05 leaf_inplace_error_message)")


def clamp_in_place(p: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Clamp the parameter `p` into [low, high] in place, without the leaf error; return `p`.

    `p` is a leaf that requires grad (weight clipping after an optimizer step does this). It must
    stay the same object, a leaf, requiring grad; only its values change. `p = p.clamp(...)`
    changes nothing for the caller; `p.clamp_(...)` alone raises the error of the previous
    exercise. Do not go through `p.data`: that writes behind autograd's back (the version
    counter does not move, so a graph that saved `p` would silently use the new values).
    """
    # TODO: clamp a parameter in place and keep it the same leaf
    raise NotImplementedError("05_leaf_inplace.clamp_in_place is not done yet (stuck? dojo hint 05 clamp_in_place)")


def sgd_step(params: list[torch.Tensor], lr: float) -> None:
    """One step of plain gradient descent, in place: `p <- p - lr * p.grad` for each parameter.

    The parameters stay the same objects (the caller's model holds them), leaves, requiring
    grad. Afterwards reset their gradients so the next backward() starts from nothing (backward
    *adds* into `.grad`): zero them in place or set them to None, as `optimizer.zero_grad()`
    does. Skip a parameter whose `.grad` is None (it took no part in the loss), as
    torch.optim does.

    `p = p - lr * p.grad` rebinds a local name: the caller's parameter never changes (and the
    new tensor is not a leaf). `p -= lr * p.grad` outside `torch.no_grad()` raises the leaf
    error. Do not use `p.data` (see clamp_in_place).
    """
    # TODO: p -= lr * p.grad for each parameter, in place, then reset the grads
    raise NotImplementedError("05_leaf_inplace.sgd_step is not done yet (stuck? dojo hint 05 sgd_step)")


def loss_for_logging(loss: torch.Tensor) -> float:
    """Return the value of a scalar loss as a Python float, for a log or a list of losses.

    A list of loss tensors keeps each step's whole graph (and on a GPU, its memory) alive.
    `loss.detach()` drops the graph but is still a tensor (on the GPU, if the loss was there).
    A float holds nothing. Leave `loss` itself alone: the caller still calls `loss.backward()`
    (so no `loss.detach_()`, no backward here).
    """
    # TODO: the loss as a Python float, holding no graph
    raise NotImplementedError("05_leaf_inplace.loss_for_logging is not done yet (stuck? dojo hint 05 loss_for_logging)")


def twice_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Return `2 * sigmoid(x)` so that backward through it works.

    `torch.sigmoid` saves its *output* for the backward pass (d sigmoid = s * (1 - s)).
    `s = torch.sigmoid(x); s.mul_(2)` (or `s *= 2`) overwrites that saved output: the forward
    looks right, then backward() raises "one of the variables needed for gradient computation
    has been modified by an inplace operation". Do not modify `x` either (`x.sigmoid_()`).
    """
    # TODO: 2 * sigmoid(x) without breaking backward
    raise NotImplementedError("05_leaf_inplace.twice_sigmoid is not done yet (stuck? dojo hint 05 twice_sigmoid)")
