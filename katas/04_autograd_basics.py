"""Kata 04: autograd basics.

PyTorch records every operation on tensors that require grad into a graph; `backward()` walks that
graph from an output back to the leaves and adds each leaf's gradient into its `.grad`. This kata
practises the pieces: backward on a scalar, vector-Jacobian products for non-scalar outputs, the
graph itself (`grad_fn.next_functions`), computing without a graph (`torch.no_grad`), freezing
parameters in place (`requires_grad_(False)`), gradients without `.grad` (`torch.autograd.grad`)
and a second derivative (`create_graph=True`).

One rule holds for every exercise that takes data from the caller (`x`, `a`, `b`): work on your
own leaf, `x.detach().requires_grad_()`, and leave the caller's tensor as you found it: its
`requires_grad` unchanged and its `.grad` never filled. Flipping `requires_grad` on the caller's
tensor, or calling `backward()` into its `.grad`, leaks state: a second call would *add* to the
first call's gradient. Two exercises differ on purpose, and say so: `freeze_all_but_last` changes
the caller's model in place (that is its job) and `gradients` gets the caller's own leaves.

Run `dojo` to see which exercise is next and `dojo hint 04` when stuck.
"""

from collections.abc import Callable, Sequence

import torch
from torch import nn


def grad_at(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Return the gradient of the scalar `f(x)` with respect to `x`, computed with `backward()`.

    `f` takes a tensor shaped like `x` and returns a 0-d tensor (a scalar). The result has the
    shape, dtype and device of `x` and carries no graph.

    Autograd only tracks tensors that require grad, so make your own leaf from `x` first
    (`x.detach().requires_grad_()`); `.grad` is None until `backward()` has run. Leave the caller's
    `x` alone (it may even require grad itself): no `requires_grad_` on it, nothing in its `.grad`.
    """
    # TODO: gradient of a scalar f(x) with backward(), read from .grad
    raise NotImplementedError("04_autograd_basics.grad_at is not done yet (stuck? dojo hint 04 grad_at)")


def q_gradients(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For Q = 3a³ − b² (elementwise), return (dQ/da, dQ/db), computed by autograd.

    The classic check from PyTorch's autograd tutorial: the answer must equal the analytic
    gradients 9a² and −2b. Typing those formulas in misses the point; build Q from leaves that
    require grad and let `backward` find them.

    `a` and `b` have the same shape, so Q has that shape too and is not a scalar: a bare
    `Q.backward()` refuses it. Each Q[i] depends only on a[i] and b[i], so the gradient of
    `Q.sum()` (or `Q.backward(gradient=torch.ones_like(Q))`, the tutorial's spelling) is the
    elementwise derivative. Work on your own leaves; the caller's `a` and `b` stay untouched.
    """
    # TODO: autograd's gradients of Q = 3a³ − b² equal 9a² and −2b
    raise NotImplementedError("04_autograd_basics.q_gradients is not done yet (stuck? dojo hint 04 q_gradients)")


def vjp(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, v: torch.Tensor | None = None) -> torch.Tensor:
    """Return the vector-Jacobian product vᵀJ of y = f(x) at x, using `y.backward(v)`.

    `y` may have any shape; `v` has the shape of `y` and weights each output element: the result
    is sum_i v[i] * dy[i]/dx, shaped like `x`. Summing `y` first is the same as v = ones, which is
    right only for that one v.

    With `v=None`, behave like `y.backward()`: fine for a scalar `y` (its gradient), and for a
    non-scalar `y` let PyTorch's own RuntimeError ("grad can be implicitly created only for
    scalar outputs") reach the caller. Do not paper over it by summing: the error is there
    because a non-scalar output has no single gradient. Leave the caller's `x` untouched.
    """
    # TODO: vᵀJ for a non-scalar output with y.backward(v); v=None behaves like backward()
    raise NotImplementedError("04_autograd_basics.vjp is not done yet (stuck? dojo hint 04 vjp)")


def graph_node_names(y: torch.Tensor) -> list[str]:
    """Return the class names of the autograd graph's nodes, from `y.grad_fn` back to the leaves.

    Start at `y.grad_fn` and walk `node.next_functions` breadth first (level by level, each node's
    inputs in the order PyTorch lists them). Each entry of `next_functions` is a pair
    `(node, input_nr)`; the node is None for an input that needs no gradient (a constant): skip
    it. A node reached twice (x * x, or a tensor used by two operations) is listed once, at its
    first visit. Name a node by its class, `type(node).__name__`: "MulBackward0",
    "AccumulateGrad" (the node that adds into a leaf's .grad). A tensor without a grad_fn (a
    leaf, or one made without grad) has an empty graph: return [].

    Example: for a and b that require grad, (a.exp() * b).sum() gives
    ["SumBackward0", "MulBackward0", "ExpBackward0", "AccumulateGrad", "AccumulateGrad"].
    """
    # TODO: class names of the grad_fn graph, breadth first from the output to the leaves
    raise NotImplementedError("04_autograd_basics.graph_node_names is not done yet (stuck? dojo hint 04 graph_node_names)")


def predict_without_graph(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Return `model(x)` computed without recording an autograd graph.

    At inference time a graph is pure cost: every operation would save its inputs for a backward
    that never comes. Run the forward pass under `torch.no_grad()`: the result has no grad_fn and
    does not require grad, and nothing is saved along the way. `model(x).detach()` returns the
    same numbers, but only after the whole graph was built and thrown away.

    Leave the model as you found it: its parameters still require grad afterwards (the caller
    trains it next), its train/eval mode unchanged (`model.eval()` is a different switch: it
    changes dropout and batch norm, not autograd), and grad mode on once the call returns.
    """
    # TODO: model(x) under torch.no_grad(): no graph recorded, the model left as it was
    raise NotImplementedError("04_autograd_basics.predict_without_graph is not done yet (stuck? dojo hint 04 predict_without_graph)")


def freeze_all_but_last(model: nn.Sequential) -> nn.Sequential:
    """Freeze every parameter of `model` except those of its last module, in place; return `model`.

    Fine-tuning a pretrained network often trains only the final layer. A frozen parameter is the
    same `nn.Parameter` object with `requires_grad` turned off, so `backward()` leaves its `.grad`
    None and an optimizer built over `model.parameters()` still holds the very same objects.

    `p.detach()` does not freeze `p`: it returns a new tensor and `p` keeps requiring grad;
    replacing a parameter by a new one breaks the optimizer's references. Change the flag in
    place: `requires_grad_(False)` (tensors and modules both have it). The last module,
    `model[-1]`, keeps all of its parameters trainable.
    """
    # TODO: requires_grad_(False) in place on every parameter but the last module's
    raise NotImplementedError("04_autograd_basics.freeze_all_but_last is not done yet (stuck? dojo hint 04 freeze_all_but_last)")


def gradients(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """Return d loss / d p for each p in `params` (in order), without touching any `.grad`.

    `loss` is a scalar computed from `params`, leaf tensors that require grad (a model's weights,
    say). `loss.backward()` would *add* into each `p.grad`, on top of whatever the caller keeps
    there (an optimizer's pending gradients). `torch.autograd.grad(outputs, inputs)` returns the
    gradients instead and leaves every `.grad` exactly as it was: None stays None, an existing
    value stays unchanged. This is how gradient penalties and meta-learning compute a gradient
    in the middle of a training step. Return a tuple with one tensor per parameter.
    """
    # TODO: torch.autograd.grad: the gradients returned, every .grad left as it was
    raise NotImplementedError("04_autograd_basics.gradients is not done yet (stuck? dojo hint 04 gradients)")


def second_derivative(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Return f''(x) for an elementwise function `f` (f(x)[i] depends on x[i] only).

    Differentiate twice with `torch.autograd.grad`. The first derivative must itself be part of
    a graph, or there is nothing left to differentiate: pass `create_graph=True` to the first
    call. The second call needs no graph, and the result must carry none (no grad_fn, no
    requires_grad): shape, dtype and device of `x`. Because `f` is elementwise, the gradient of
    `f(x).sum()` is f'(x) elementwise, and likewise for f'. Leave the caller's `x` untouched.
    `f` is not linear (a linear f has f' constant, with no graph back to x).
    """
    # TODO: f''(x) by differentiating twice; create_graph=True on the first pass
    raise NotImplementedError("04_autograd_basics.second_derivative is not done yet (stuck? dojo hint 04 second_derivative)")
