"""Kata 16: mixed precision.

A float32 number has 8 exponent bits and 23 fraction bits. The two 16-bit formats split their
bits differently: float16 keeps 10 fraction bits (about 3 decimal digits) but only 5 exponent
bits, so it overflows above 65504 and flushes values below about 6e-8 to zero; bfloat16 keeps
float32's 8 exponent bits, hence its whole range, but only 7 fraction bits (2 to 3 digits), so
1 + 2**-8 is 1 in bfloat16. Either halves memory and traffic, and a GPU's tensor cores multiply
them many times faster than float32.

Mixed precision uses the fast format where it is safe and float32 where it is not. Inside an
autocast region, PyTorch runs each operation in the dtype its op list gives it: matrix products
and convolutions in the lower dtype (bfloat16 on the CPU, float16 on CUDA), losses and other
sensitive operations in float32, and the rest in the dtype of their inputs. The parameters stay
float32 (the "master weights"): an update too small for 16 bits to resolve still adds up.
Backward needs no region of its own: each operation's backward runs in the dtype its forward
used. With float16, small gradients can still underflow to zero, so the loss is scaled up
before backward and the gradients scaled back down before anyone uses them; a step whose
gradients overflowed is skipped and the scale lowered. Run `dojo` to see which exercise is next
and `dojo hint 16` when stuck.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def cast_damage(x: torch.Tensor, dtype: torch.dtype) -> dict[str, int]:
    """Count what converting the float32 tensor `x` to the float dtype `dtype` does to its values.

    Return a dict of three Python ints, each element of `x` counted in at most one of them:
    - "overflow": finite elements that become infinite (of either sign);
    - "underflow": nonzero elements that become zero;
    - "rounded": the other elements whose value changes (still finite and nonzero, but no longer
      equal to the element of `x`).
    Elements that come through the conversion with their value unchanged count nowhere, and
    neither do the elements that are infinite or nan in `x` (they stay infinite or nan), nor the
    zeros (0.0 and -0.0). `x` has any shape (0-d and empty included) and any device, and is left
    as it was; `dtype` is float16, bfloat16 or float32 (which damages nothing).

    What to expect: float16 turns 65520 into inf and 1e-8 into 0, yet keeps 1 + 2**-8 exactly;
    bfloat16 keeps both 65520 (as 65536) and 1e-8 (as about 1.0012e-8), yet rounds 1 + 2**-8 to 1.
    The symptoms of the usual miscounts: every nan counted as rounded (nan is not equal to
    itself), -65520 missed (it overflows to -inf), the zeros of `x` counted as underflow, a value
    that the format's largest or smallest normal number seems to rule out counted as lost though
    the conversion keeps it (65519 rounds down to 65504; 1e-5 becomes a float16 subnormal).
    """
    # BEGIN SOLUTION
    # Compare in float32: every float16 and bfloat16 value is exactly representable there.
    back = x.to(dtype).to(torch.float32)
    x = x.to(torch.float32)
    overflow = x.isfinite() & back.isinf()
    underflow = (x != 0) & (back == 0)
    # nan != nan, so restrict "rounded" to finite inputs that did not overflow or underflow.
    rounded = x.isfinite() & ~overflow & ~underflow & (back != x)
    return {"overflow": int(overflow.sum()), "underflow": int(underflow.sum()), "rounded": int(rounded.sum())}
    # END SOLUTION


def autocast_dtypes(
    x: torch.Tensor, w: torch.Tensor, target: torch.Tensor, device: torch.device
) -> dict[str, torch.dtype]:
    """Run a tiny classifier with mixed precision for `device`; return the dtype of each result.

    `x` (N, D) and `w` (D, C) are float32, `target` holds N class indices (int64), all on `device`
    (a CPU or CUDA torch.device). Within one mixed-precision region for device's type, with
    bfloat16 as the lower dtype on the CPU and float16 on CUDA, compute
    - "logits": the matrix product of x and w, (N, C);
    - "probs": the softmax of the logits over the classes (dim 1);
    - "loss": the mean cross-entropy loss of the logits against `target`;
    each with PyTorch's own operation for it (a formula of your own may get another dtype), and
    return the dict {"logits": ..., "probs": ..., "loss": ...} of the three results' dtypes
    (torch.dtype objects). Convert nothing by hand: each result keeps the dtype that mixed
    precision gives it on that device and the installed PyTorch.

    Not everything in the region runs in the lower dtype, and not every operation behaves the
    same on every device: print the dtypes and see. The trap, by its symptom: a loss that comes
    out in the lower dtype, because it was computed from the lower-precision logits after the
    region had closed.
    """
    # BEGIN SOLUTION
    # The autocast device type is "cpu" or "cuda" (not "cuda:0", not a torch.device object).
    low = torch.bfloat16 if device.type == "cpu" else torch.float16
    with torch.autocast(device.type, dtype=low):
        logits = x @ w
        probs = torch.softmax(logits, dim=1)
        loss = F.cross_entropy(logits, target)  # inside the region: on autocast's float32 list
    return {"logits": logits.dtype, "probs": probs.dtype, "loss": loss.dtype}
    # END SOLUTION


def amp_predict(model: nn.Module, x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Return the outputs of `model` for the batch `x`, computed with mixed precision, as float32.

    `model` is a float32 module on `device` (a CPU or CUDA torch.device) and `x` a float32 batch
    on `device`. The forward pass runs in mixed precision for device's type (bfloat16 as the lower
    dtype on the CPU, float16 on CUDA), so the model's linear layers compute in the lower dtype.
    The result has the shape and device of the model's output and dtype float32: the values the
    lower-precision forward gave, ready for a metric. It carries no graph (requires_grad False,
    grad_fn None), and the caller's model is left as it was, every parameter still float32.

    The traps, by their symptoms: outputs in the lower dtype, where a metric summed from them in
    their own dtype goes wrong (in bfloat16, 256 + 1 is 256); a model whose weights the caller
    finds converted to 16 bits afterwards; a forward pass that ran in float32 all along.
    """
    # BEGIN SOLUTION
    low = torch.bfloat16 if device.type == "cpu" else torch.float16
    with torch.no_grad(), torch.autocast(device.type, dtype=low):
        out = model(x)
    # Converting afterwards does not bring back lost digits; it keeps a metric's sums accurate.
    return out.float()
    # END SOLUTION


def amp_train_step(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    device: torch.device,
) -> torch.Tensor:
    """Take one optimizer step of mixed-precision training on the batch (x, y); return its loss.

    `model` is a float32 module on `device` (a CPU or CUDA torch.device), `optimizer` optimizes
    its parameters, `x` and `y` are on `device`, and `loss_fn(output, y)` returns a scalar loss.
    The forward pass and the loss run in mixed precision for device's type (bfloat16 as the lower
    dtype on the CPU, float16 on CUDA); then the gradients of that loss are computed and the
    optimizer takes one step with them.

    Afterwards:
    - the model's parameters are the same tensors as before, still float32, updated by the step;
    - each parameter's `.grad` holds the gradient this step used, float32, and only that: any
      gradient left from before the call is discarded first;
    - the result is the loss, a 0-dim float32 tensor on `device` that carries no graph.

    The traps, by their symptoms: parameters that come out of the step in 16 bits (the whole
    model was converted: updates smaller than the 16-bit spacing then vanish); a loss in the lower
    dtype (computed after the region had closed); gradients that still include what `.grad` held
    before the call.
    """
    # BEGIN SOLUTION
    low = torch.bfloat16 if device.type == "cpu" else torch.float16
    optimizer.zero_grad()
    with torch.autocast(device.type, dtype=low):
        loss = loss_fn(model(x), y)
    # Backward outside the region: the backward ops use the dtypes their forward ops used.
    loss.backward()
    optimizer.step()
    return loss.detach()
    # END SOLUTION


def float32_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Return the matrix product of `a` and `b` computed in float32, even inside a mixed-precision region.

    A numerically sensitive part of a model's forward pass, called from within the caller's
    mixed-precision region for the inputs' device (or from outside any region). `a` (N, K) and
    `b` (K, M) are float tensors on one device, each float32 or a lower dtype (activations that an
    earlier layer computed in mixed precision). The result is float32, (N, M), on that device,
    and equals the float32 product of the values as given (each input converted to float32, which
    is exact) to float32's accuracy. When `a` or `b` requires grad, the result carries a graph
    back to it.

    The caller's region is left as it was: after the call, the caller's own matrix products in
    the region still run in the lower dtype. The traps, by their symptoms: a result in the lower
    dtype although both inputs were converted to float32 first; a float32 result that holds only
    the 2 or 3 correct digits of a product computed in 16 bits.
    """
    # BEGIN SOLUTION
    # Inside an autocast region a matmul casts float32 inputs down again; switch it off for this
    # device, then convert the inputs yourself (a disabled region does not convert anything).
    with torch.autocast(a.device.type, enabled=False):
        return a.float() @ b.float()
    # END SOLUTION


def scaled_train_step(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    max_norm: float,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One mixed-precision step with loss scaling and gradient clipping; return `(loss, grad_norm)`.

    As in amp_train_step: `model` is a float32 module on `device` (a CPU or CUDA torch.device),
    `optimizer` optimizes its parameters, `x` and `y` are on `device`, `loss_fn(output, y)` returns
    a scalar loss, the forward pass and the loss run in mixed precision for device's type
    (bfloat16 on the CPU, float16 on CUDA), and gradients left from before the call are discarded
    first. `scaler` is the caller's gradient scaler for device's type, kept from step to step.

    The gradients come from the loss multiplied by the scaler's current scale (which keeps small
    float16 gradients from underflowing to zero); they are then divided back to the true gradients
    before anything looks at them. Clip the true gradients of all the parameters together, as one
    vector, to a total 2-norm of at most `max_norm`; then the step, which the scaler skips when
    any gradient is inf or nan; then the scaler adjusts its scale for the next step (lowered after
    a skipped step, raised after a run of good ones as its own settings say).

    Afterwards each parameter's `.grad` holds its true gradient, clipped. `grad_norm` is the total
    2-norm of the true gradients before clipping, a 0-dim float32 tensor on `device` (inf or nan
    when the step was skipped); `loss` is the true, unscaled loss, 0-dim float32 on `device`;
    neither carries a graph. After a skipped step the parameters hold exactly their old values
    and the scale is lower; the next call with finite data steps again.

    On the CPU, bfloat16 has float32's range and needs no scaling, but the scaler works the same
    there. The traps, by their symptoms: a reported norm as many times too large as the scale,
    with updates that are far too small (the gradients were clipped while still scaled);
    parameters turned to nan by a step the scaler should have skipped; a scale that never moves.
    """
    # BEGIN SOLUTION
    low = torch.bfloat16 if device.type == "cpu" else torch.float16
    optimizer.zero_grad()
    with torch.autocast(device.type, dtype=low):
        loss = loss_fn(model(x), y)
    scaler.scale(loss).backward()
    # Unscale in place first, so that clipping measures and limits the true gradients; step()
    # then knows they are unscaled and does not divide them again.
    scaler.unscale_(optimizer)
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    scaler.step(optimizer)  # skipped when unscale_ found an inf or nan
    scaler.update()
    return loss.detach(), grad_norm
    # END SOLUTION
