"""Kata 04: autograd basics.

PyTorch records every operation on tensors that require grad into a graph; a backward pass walks
that graph from an output back to the *leaves* and adds each leaf's gradient into its `.grad`.
This kata practises the pieces: the gradient of a scalar, vector-Jacobian products for outputs
with many elements, the graph itself (`grad_fn` and its inputs), computing without a graph,
freezing parameters, gradients that are returned instead of stored in `.grad`, and a second
derivative.

Most exercises take tensors from the caller and must leave them as they were: `requires_grad`
unchanged, `.grad` exactly as it was (None stays None, a stored gradient keeps its values).
Autograd makes that easy to get wrong, because `.grad` *accumulates*: a helper that leaves its
gradient in the caller's `.grad` makes the caller's next backward pass, or the helper's own next
call, add onto it. Two exercises differ on purpose, and say so: `freeze_all_but_last` changes the
caller's model in place (that is its job) and `gradients` works on the caller's own leaves.

Run `dojo` to see which exercise is next and `dojo hint 04` when stuck.
"""

from collections.abc import Callable, Sequence

import torch
from torch import nn


def grad_at(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Return the gradient of the scalar `f(x)` with respect to `x`, computed by a backward pass.

    `f` takes a tensor shaped like `x` and returns a 0-d tensor (a scalar) computed from it. The
    result holds d f(x) / d x, has the shape, dtype and device of `x`, and carries no graph (it
    does not require grad and has no grad_fn). `x` may be a plain tensor, or require grad itself:
    a parameter, or a tensor the caller computed from parameters.

    The caller's tensors are left as they were: `x` keeps its `requires_grad`, and nothing is
    added to the `.grad` of `x` or of any tensor `x` was computed from. The traps, by their
    symptoms: `x` requires grad after the call; the gradient comes back None (the backward pass
    delivered it to another tensor than the one you read); a stored gradient of the caller's
    grows with every call.
    """
    # BEGIN SOLUTION
    # detach() gives a new leaf on the same data, cut from any graph x belongs to; a clone() of a
    # tensor that requires grad would be a non-leaf, and non-leaves never get a .grad.
    leaf = x.detach().requires_grad_()
    f(leaf).backward()
    return leaf.grad
    # END SOLUTION


def q_gradients(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For Q = 3a³ − b² (elementwise), return the pair (dQ/da, dQ/db) that autograd computes.

    The classic check from PyTorch's autograd tutorial: autograd's answer equals the analytic
    gradients 9a² and −2b. Typing those formulas in checks nothing; build Q from tensors that
    autograd tracks and let a backward pass find the gradients.

    `a` and `b` have the same shape, and so does Q. Unless they are 0-d, Q is not a scalar, and
    PyTorch refuses a backward pass from it as it stands (RuntimeError: "grad can be implicitly
    created only for scalar outputs"). Each Q[i] depends only on a[i] and b[i], so the gradient
    of the total of Q is the elementwise derivative. Each gradient has the shape, dtype and
    device of its input and carries no graph. The caller's `a` and `b`, which may require grad
    themselves, are left as they were: `requires_grad` unchanged, nothing added to their `.grad`.
    """
    # BEGIN SOLUTION
    a = a.detach().requires_grad_()
    b = b.detach().requires_grad_()
    q = 3 * a**3 - b**2
    # A tensor of ones weights every Q[i] equally: the same as backward on Q.sum().
    q.backward(gradient=torch.ones_like(q))
    return a.grad, b.grad
    # END SOLUTION


def vjp(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, v: torch.Tensor | None = None) -> torch.Tensor:
    """Return the vector-Jacobian product vᵀJ of y = f(x) at x, computed by a backward pass from y.

    `y` may have any shape; `v` has the shape of `y` and weights each output element: the result
    is sum_i v[i] * dy[i]/dx, with the shape, dtype and device of `x`, and carries no graph.
    That weighted sum is what a backward pass from a non-scalar `y` computes when it is given
    `v`. Adding up `y` first gives the product for v = ones, and only for that v.

    `v=None` means what it means to a backward pass from `y` given nothing: for a scalar `y`, its
    gradient; for a `y` with more than one element, PyTorch's own RuntimeError ("grad can be
    implicitly created only for scalar outputs") reaches the caller. Do not paper over it: the
    error is there because such an output has no single gradient. The caller's `x` is left as it
    was (`requires_grad` unchanged, nothing in its `.grad`).
    """
    # BEGIN SOLUTION
    leaf = x.detach().requires_grad_()
    # backward(None) is backward(): PyTorch fills in 1 for a scalar and raises for anything else.
    f(leaf).backward(v)
    return leaf.grad
    # END SOLUTION


def graph_node_names(y: torch.Tensor) -> list[str]:
    """Return the class names of the autograd graph's nodes, from `y.grad_fn` back to the leaves.

    Start at `y.grad_fn` and walk `node.next_functions` breadth first (level by level, each node's
    inputs in the order PyTorch lists them). Each entry of `next_functions` is a pair
    `(node, input_nr)`; the node is None for an input that needs no gradient (a constant): skip
    it. A node reached twice (x * x, or a tensor used by two operations) is listed once, at its
    first visit; two nodes of the same class (two separate exp() calls) are two entries. Name a
    node by its class, as a tensor's repr shows it (`grad_fn=<MulBackward0>`): "MulBackward0",
    "AccumulateGrad" (the node that adds into a leaf's .grad), never a qualified name or an
    address. A tensor without a grad_fn (a leaf, or one made without grad) has an empty graph:
    return [].

    Example: for a and b that require grad, (a.exp() * b).sum() gives
    ["SumBackward0", "MulBackward0", "ExpBackward0", "AccumulateGrad", "AccumulateGrad"].
    """
    # BEGIN SOLUTION
    if y.grad_fn is None:
        return []
    names, seen, queue = [], {y.grad_fn}, [y.grad_fn]
    while queue:
        node = queue.pop(0)
        # node.name() would say "torch::autograd::AccumulateGrad" for the leaves; the class name is
        # what PyTorch prints in a tensor's repr (grad_fn=<MulBackward0>).
        names.append(type(node).__name__)
        for child, _ in node.next_functions:
            if child is not None and child not in seen:
                seen.add(child)
                queue.append(child)
    return names
    # END SOLUTION


def predict_without_graph(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Return `model(x)` computed without recording an autograd graph.

    At inference time a graph is pure cost: every recorded operation keeps its inputs alive for
    a backward pass that never comes. The result holds what `model(x)` gives (in the mode the
    model is in), does not require grad and has no grad_fn, and nothing was recorded on the way:
    no tensor is saved for a backward pass during the call. A result cut loose from its graph
    after the forward pass has the right flags, but the graph's memory was spent all the same.

    The result is an ordinary tensor: later computations that do record a graph may use it (as
    the target of another model's loss, say). Leave the model and the program as you found them:
    every parameter keeps its `requires_grad` (the caller trains the model next, and a parameter
    the caller froze stays frozen); the model keeps its train/eval mode (that switch changes
    dropout and batch norm, not autograd); and whether autograd records operations is, once the
    call returns or raises, what it was before the call. An exception from the model reaches the
    caller.
    """
    # BEGIN SOLUTION
    # no_grad is a context manager: grad mode is restored when the block ends, even on an error.
    with torch.no_grad():
        return model(x)
    # END SOLUTION


def freeze_all_but_last(model: nn.Sequential) -> nn.Sequential:
    """Freeze every parameter of `model` except those of its last module, in place; return `model`.

    Fine-tuning a pretrained network often trains only the final layer. `model` arrives with
    every parameter trainable. Afterwards no parameter of the modules before the last one
    requires grad (weights, biases, a norm layer's scale and shift: all of them), so a backward
    pass leaves their `.grad` None, while the parameters of the last module, `model[-1]`, still
    do. If the last module has no parameters (an activation), every parameter ends up frozen; a
    model of one module keeps all of its parameters trainable. The modules may have names
    instead of numbers (a Sequential built from an OrderedDict).

    A frozen parameter is the same `nn.Parameter` object as before, now not requiring grad: an
    optimizer built over `model.parameters()` before the call holds these very objects. The
    traps, by their symptoms: the model's parameters still require grad after the call (a copy
    was frozen, not the parameter); the model holds new parameter objects that the optimizer
    does not know; the last module's weight frozen along with the rest.
    """
    # BEGIN SOLUTION
    for module in model[:-1]:
        # Module.requires_grad_ flips every parameter (weights and biases) of the module in place.
        module.requires_grad_(False)
    return model
    # END SOLUTION


def gradients(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """Return the tuple of d loss / d p for each p in `params`, in order, touching no `.grad`.

    `loss` is a scalar computed from `params` (leaf tensors that require grad: a model's
    weights, say), and maybe from other tensors that require grad. The result holds one tensor
    per parameter, with its shape, dtype and device, carrying no graph. Gradient penalties and
    meta-learning need such a gradient in the middle of a training step, while the tensors'
    `.grad` hold what the training loop put there. So after the call every `.grad` is exactly as
    it was, for `params` and for every other tensor in the graph of `loss`: None stays None, a
    stored gradient keeps its values. A plain backward pass *adds* into them: the optimizer
    would then step with the sum of two gradients. Whether the graph of `loss` can be used again
    after the call is up to you.
    """
    # BEGIN SOLUTION
    return torch.autograd.grad(loss, list(params))
    # END SOLUTION


def second_derivative(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Return f''(x), the second derivative of an elementwise function `f`, computed by autograd.

    `f` is elementwise (f(x)[i] depends on x[i] only) and not linear, like sin or t**3; `x` has
    any shape, 0-d included. The result holds f''(x[i]) at each i, has the shape, dtype and
    device of `x`, and carries no graph (it does not require grad and has no grad_fn). The
    caller's `x`, which may require grad itself, is left as it was: `requires_grad` unchanged,
    nothing added to its `.grad`.

    Differentiating twice is where autograd's bookkeeping shows. A first derivative computed the
    ordinary way is a plain tensor with no graph behind it, and differentiating it again fails
    (RuntimeError: "element 0 of tensors does not require grad and does not have a grad_fn");
    and a gradient left to accumulate between the two passes comes back as f' + f''.
    """
    # BEGIN SOLUTION
    leaf = x.detach().requires_grad_()
    # create_graph=True records the backward pass itself, so `first` has a grad_fn back to leaf.
    (first,) = torch.autograd.grad(f(leaf).sum(), leaf, create_graph=True)
    (second,) = torch.autograd.grad(first.sum(), leaf)
    return second
    # END SOLUTION
