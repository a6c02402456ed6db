"""Kata 18: custom autograd.

Autograd records every differentiable operation it sees and differentiates them all by the chain
rule. Sometimes that is not what you want: a formula that is exact on paper overflows in float32
(and so does its derivative), a rounding or clamping step has a zero gradient almost everywhere,
or part of the computation runs in a library autograd cannot see. Then you write the operation
yourself, forward and backward, as a `torch.autograd.Function`, and prove its backward right
against finite differences in float64.

Two more tools sit around the graph rather than in it. Python control flow in a forward pass
(loops, ifs that depend on the data) is fine: autograd records what actually ran. And a hook on
a tensor sees, and may replace, the gradient flowing through it during backward; a hook stays
until it is removed, so every later backward meets it too. Run `dojo` to see which exercise is
next and `dojo hint 18` when stuck.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch


class StableSoftplus(torch.autograd.Function):
    """softplus(x) = log(1 + exp(x)), elementwise, as an autograd Function used through
    `StableSoftplus.apply(x)`.

    Contract: for a floating tensor `x` of any shape (0-d and non-contiguous included) on any
    device, the result has x's shape, dtype and device and equals softplus to the dtype's
    precision for every finite x: about x for large x, about exp(x) for very negative x, never
    inf or nan (the formula as written gives inf above x ≈ 89 in float32, and its derivative
    inf/inf = nan). Its gradient is d softplus/dx = 1 / (1 + exp(-x)), finite everywhere, and
    agrees with finite differences in float64. The result's `grad_fn` is this Function's node
    (not a chain of autograd's own operations). If x is modified in place after the forward
    pass, a backward either raises RuntimeError (as PyTorch's own operations do) or still gives
    the gradient at the values forward saw; never, silently, the gradient at the new values.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        # TODO (forward): softplus as an autograd Function: finite values and gradients for every finite x
        raise NotImplementedError("18_custom_autograd.StableSoftplus.forward is not done yet (stuck? dojo hint 18 StableSoftplus)")

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        # TODO (backward): softplus as an autograd Function: finite values and gradients for every finite x
        raise NotImplementedError("18_custom_autograd.StableSoftplus.backward is not done yet (stuck? dojo hint 18 StableSoftplus)")


class ClampSTE(torch.autograd.Function):
    """Clamp with a straight-through gradient, used as `ClampSTE.apply(x, low, high)` with
    Python numbers `low <= high`.

    The forward result is x clamped into [low, high]: a new tensor with x's shape, dtype and
    device (x itself is left unchanged). The backward passes the incoming gradient through
    unchanged to every element of x, the clamped ones included: a plain clamp gives those a zero
    gradient, so an element pushed outside the range stops learning for good. `low` and `high`
    get no gradient.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, low: float, high: float) -> torch.Tensor:
        # TODO (forward): clamp forward, gradient passed straight through backward
        raise NotImplementedError("18_custom_autograd.ClampSTE.forward is not done yet (stuck? dojo hint 18 ClampSTE)")

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        # TODO (backward): clamp forward, gradient passed straight through backward
        raise NotImplementedError("18_custom_autograd.ClampSTE.backward is not done yet (stuck? dojo hint 18 ClampSTE)")


def gradient_matches(fn: Callable[..., torch.Tensor], *inputs: torch.Tensor) -> bool:
    """Whether the gradients autograd computes for `fn(*inputs)` (with respect to every input)
    agree with finite differences; `inputs` are floating tensors (float32 or float64, with or
    without requires_grad) on the CPU and `fn` returns a tensor.

    Return True or False (a Python bool); a wrong backward returns False, it does not raise. A
    correct `fn` must give True although the inputs may be float32: finite differences in
    float32 are too coarse and make a correct backward look wrong, so compare in float64. The
    caller's tensors are left as they were: values, dtype, requires_grad, and `.grad`.
    """
    # TODO: compare autograd's gradients with finite differences, in float64, without touching the caller's tensors
    raise NotImplementedError("18_custom_autograd.gradient_matches is not done yet (stuck? dojo hint 18 gradient_matches)")


def halve_until_within(x: torch.Tensor, limit: float) -> tuple[torch.Tensor, int]:
    """Divide `x` by 2 until its Euclidean norm (over all elements) is at most `limit`; return
    `(y, halvings)`: y = x / 2**halvings for the smallest halvings >= 0 that makes
    ||y|| <= limit, and halvings as a Python int (0 when x is already within the limit).

    y stays connected to x's graph: a backward from y gives x the gradient 2**-halvings times
    what reached y (a result computed out of autograd's sight, or detached, leaves x without a
    gradient). The caller's x is left unchanged. `limit` must be positive: raise ValueError
    otherwise (with a limit of 0, a nonzero x would be halved forever).
    """
    # TODO: halve x until its norm is within limit; the gradient still reaches x
    raise NotImplementedError("18_custom_autograd.halve_until_within is not done yet (stuck? dojo hint 18 halve_until_within)")


def scaled_grad(t: torch.Tensor, factor: float) -> torch.Tensor:
    """Return a tensor with t's values, shape, dtype and device through which the gradient
    flowing back to `t` is multiplied by `factor`; `t` requires grad.

    Only the path through the returned tensor is scaled: a gradient that reaches t along another
    path of the same graph arrives unchanged, and so does every gradient of a later, separate
    backward through t (a scaling attached to t itself scales them all, for as long as it lives).
    """
    # TODO: a tensor equal to t whose backward path multiplies t's gradient by factor
    raise NotImplementedError("18_custom_autograd.scaled_grad is not done yet (stuck? dojo hint 18 scaled_grad)")


def backward_with_clipped_grads(loss: torch.Tensor, params: Iterable[torch.Tensor], max_abs: float) -> None:
    """Run backward from the scalar `loss`, with every element of the gradient that arrives at
    each of `params` (leaf tensors that require grad) clamped into [-max_abs, max_abs] before it
    is accumulated into that parameter's `.grad`.

    What `.grad` held before the call is kept and the clamped gradient added to it (the sum
    itself may exceed max_abs). Tensors that are not in `params` get their gradients unclamped.
    After the call nothing of the clamping remains: a later backward through the same
    parameters is not clamped, also when this backward raised (its exception reaches the
    caller unchanged).
    """
    # TODO: backward with each parameter's incoming gradient clamped, and no trace left afterwards
    raise NotImplementedError("18_custom_autograd.backward_with_clipped_grads is not done yet (stuck? dojo hint 18 backward_with_clipped_grads)")


class NumpySin(torch.autograd.Function):
    """sin(x), elementwise, computed by NumPy, as `NumpySin.apply(x)` for a floating CPU tensor x
    with at least one dimension.

    The result is a new CPU tensor with x's shape and dtype and the values of sin(x); its
    gradient is cos(x) times the incoming gradient, computed by NumPy too. Since autograd cannot
    see into NumPy, that gradient cannot itself be differentiated. The first derivative is always
    available, also when asked for with `create_graph=True` (as a gradient penalty does); but
    differentiating that gradient again (a second derivative) must raise RuntimeError with a
    message that says so (naming "twice" or "double" backward), instead of returning a second
    derivative that silently misses the part computed by NumPy.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        # TODO (forward): sin by NumPy as a Function whose gradient refuses to be differentiated again
        raise NotImplementedError("18_custom_autograd.NumpySin.forward is not done yet (stuck? dojo hint 18 NumpySin)")

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        # TODO (backward): sin by NumPy as a Function whose gradient refuses to be differentiated again
        raise NotImplementedError("18_custom_autograd.NumpySin.backward is not done yet (stuck? dojo hint 18 NumpySin)")
