"""Kata 05: leaves and in-place updates.

Autograd records every operation on tensors that require grad. The tensors you create yourself
are the graph's *leaves*; everything computed from them is a non-leaf with a `grad_fn`, the node
that knows how to send gradients back. `backward()` delivers gradients to leaves, so a parameter
must be a leaf, and it must stay the same leaf object while you train it, even though training
changes its values. Autograd also keeps a *version counter* on every tensor, bumped by each
in-place write, so that it notices when a tensor it saved for the backward pass was changed
before backward ran. Run `dojo` to see which exercise is next and `dojo hint 05` when stuck.
"""

from __future__ import annotations

import torch


def node_info(t: torch.Tensor) -> tuple[bool, str | None]:
    """Return the tuple `(is_leaf, node)` for the tensor `t`.

    `is_leaf` is True when no recorded operation produced `t`. `node` says which kind of
    autograd node created `t`, as a plain str such as "AddBackward0" or "MeanBackward0", or is
    None when there is no such node. Printing the node object itself shows
    "<AddBackward0 object at 0x7f...>": that text, with its address, is not what is asked.

    Try it on the classic regression graph: parameters `a` and `b`, data `x` and `y`,
    `yhat = a + b * x`, `loss = ((yhat - y) ** 2).mean()`. Which of them are leaves? (The data
    are leaves too, and so is a result computed where autograd records nothing.)
    """
    # TODO: (is_leaf, grad_fn name or None) of a tensor in the regression graph
    raise NotImplementedError("05_leaf_inplace.node_info is not done yet (stuck? dojo hint 05 node_info)")


def tensors_that_get_grad(named: dict[str, torch.Tensor]) -> list[str]:
    """Return, as a list, the names of the tensors whose `.grad` a later `backward()` fills in.

    `named` maps names to tensors of one graph, every one of them on the path of that backward,
    e.g. {"x": x, "a": a, "yhat": yhat, "loss": loss}. Keep the dict's order. The function runs
    before any backward, so every `.grad` is still None: decide from what each tensor is.

    The trap: data like `x` is a leaf too, yet gets no gradient; `yhat` and `loss` require grad,
    yet their `.grad` stays None after backward, unless the caller asked beforehand that one of
    them keep its gradient.
    """
    # TODO: names of the tensors whose .grad backward() fills in
    raise NotImplementedError("05_leaf_inplace.tensors_that_get_grad is not done yet (stuck? dojo hint 05 tensors_that_get_grad)")


def small_leaf_param(
    shape: tuple[int, ...], scale: float, generator: torch.Generator, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Return a new parameter on `device` holding `torch.randn(shape, generator=generator) * scale`.

    The noise is drawn on the CPU, where `generator` lives, so one seed gives the same numbers on
    every device. The result is float32, of the given shape, on `device`, and a leaf that
    requires grad: a `backward()` through any loss computed from it fills its `.grad`.

    The trap, by its symptom: a tensor with the right values, device and `requires_grad=True`
    whose `.grad` stays None after backward (the gradient went to another tensor, one you did not
    return). On the CPU a move to "cpu" changes nothing and can hide the mistake; the tests also
    ask for the "meta" device, where it shows.
    """
    # TODO: randn * scale moved to a device, and still a leaf that requires grad
    raise NotImplementedError("05_leaf_inplace.small_leaf_param is not done yet (stuck? dojo hint 05 small_leaf_param)")


def leaf_inplace_error_message(p: torch.Tensor) -> str:
    """Cause, on purpose, the error that an in-place update of the leaf `p` raises; return its message.

    `p` is a leaf that requires grad (a parameter). Change the whole of `p` in place, as an
    optimizer step would, but with autograd recording as usual; catch the RuntimeError and return
    its message as a str (the text `str()` gives: not the exception object, not its repr).
    PyTorch refuses before it writes anything, so `p` comes back as it was: same values, still a
    leaf that requires grad. Writing to a part of `p` (one element, a slice) raises a variant
    that starts "a view of a leaf Variable": not the message asked for.

    This is the error every hand-written training loop meets once: autograd cannot record an
    in-place change of a tensor whose gradient it is supposed to deliver.
    """
    # TODO: trigger the leaf in-place RuntimeError on purpose and return its message
    raise NotImplementedError("05_leaf_inplace.leaf_inplace_error_message is not done yet (stuck? dojo hint 05 leaf_inplace_error_message)")


def clamp_in_place(p: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Clamp the values of the parameter `p` into [low, high] in place; return `p` itself.

    `p` is a leaf that requires grad (weight clipping after an optimizer step does this).
    Afterwards the caller's `p` is the same object, still a leaf that requires grad, and holds
    the clamped values in the memory it had (a view of `p` taken before the call sees them).
    Values inside [low, high] are kept; -inf and inf become low and high.

    Autograd must see the change: p's version counter moves, so that a graph built from `p`
    before the call, which saved `p` for its backward pass, refuses to run backward instead of
    silently using the clamped values. The traps, by their symptoms: the caller's `p` keeps its
    old values; the error of leaf_inplace_error_message; `p` changes but its version counter
    does not (a graph that saved `p` then computes a wrong gradient without a word).
    """
    # TODO: clamp a parameter in place and keep it the same leaf
    raise NotImplementedError("05_leaf_inplace.clamp_in_place is not done yet (stuck? dojo hint 05 clamp_in_place)")


def sgd_step(params: list[torch.Tensor], lr: float) -> None:
    """One step of plain gradient descent, in place: each parameter `p` becomes `p - lr * p.grad`.

    `params` is a list of leaves that require grad, after a backward: each one's `.grad` holds
    its gradient, or is None for a parameter that took no part in the loss. Leave such a
    parameter alone (values and `.grad`) and go on with the next one. The caller's model holds
    these very tensors, so afterwards the list holds the same objects, each updated in the
    memory it had, still a leaf that requires grad, with its version counter moved (autograd
    sees the change, as in clamp_in_place). Finally every updated parameter's `.grad` is None or
    all zeros, so that the next backward starts from nothing.

    The traps, by their symptoms: the caller's parameters keep their old values; the error of
    leaf_inplace_error_message; a second step that moves the parameters by the sum of both
    steps' gradients.
    """
    # TODO: p -= lr * p.grad for each parameter, in place, then reset the grads
    raise NotImplementedError("05_leaf_inplace.sgd_step is not done yet (stuck? dojo hint 05 sgd_step)")


def loss_for_logging(loss: torch.Tensor) -> float:
    """Return the value of the scalar `loss` as a plain Python float, for a log or a list of losses.

    The result holds no graph and no device memory: a list of loss tensors keeps every step's
    graph alive (on a GPU, its memory too), and a tensor cut from its graph is still a tensor, on
    the loss's device. The type is `float` itself, not a tensor and not a NumPy number.

    Leave `loss` as it is: the caller runs backward through it afterwards and must get the same
    gradients as if this function had not been called.
    """
    # TODO: the loss as a Python float, holding no graph
    raise NotImplementedError("05_leaf_inplace.loss_for_logging is not done yet (stuck? dojo hint 05 loss_for_logging)")


def twice_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Return `2 / (1 + exp(-x))`, elementwise, in a way that backward can go through.

    `x` is a float tensor of any shape, on any device; the result has its shape, dtype and device.
    When `x` requires grad, a backward through the result delivers the exact gradient to `x`.
    `x` itself is left unchanged.

    The trap, by its symptom: the forward values are right, then backward raises "one of the
    variables needed for gradient computation has been modified by an inplace operation". Some
    operations keep their own *output* for the backward pass; changing that output in place
    breaks it. A gradient that comes out wrong without any error is the same mistake, hidden
    from autograd.
    """
    # TODO: 2 * sigmoid(x) without breaking backward
    raise NotImplementedError("05_leaf_inplace.twice_sigmoid is not done yet (stuck? dojo hint 05 twice_sigmoid)")
