"""Kata 15: learning-rate schedules and gradient clipping.

The pieces of a training loop that no error message protects. A learning-rate scheduler changes
each parameter group's learning rate when it is told a step has passed; told too early, every step
runs with the next step's rate and the schedule's first value is never used (PyTorch warns, once,
and people silence the warning). Its position in the schedule is state, like the weights and the
optimizer's momentum: a checkpoint without it resumes with a learning rate from the beginning of
the schedule, and the warm-up starts again in the middle of training.

Gradient clipping bounds the size of one update: when the gradients of all the parameters
together, seen as one long vector, are longer than a limit, all of them shrink by the same factor,
so the update keeps its direction. It acts on the gradients between the moment they exist and the
moment the optimizer uses them; anywhere else it changes nothing. A step whose loss or gradients
hold a nan or an infinity would write nan into every weight it touches, and into the optimizer's
running averages, from where it never leaves; such a step is skipped, and counted, and the next
batch trains as usual. Run `dojo` to see which exercise is next and `dojo hint 15` when stuck.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def warmup_cosine(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, final_ratio: float = 0.0
) -> LRScheduler:
    """Return a learning-rate scheduler for `optimizer`: a linear warm-up, then a cosine decay.

    The result is one of PyTorch's own learning-rate scheduler objects (so that a training loop
    advances it one step at a time and a checkpoint can save and restore its state). Each param
    group of `optimizer` has its own base learning rate b: the learning rate the group holds when
    the scheduler is created. Right after creation the optimizer's learning rates are those of
    step 0; after the scheduler has been advanced k times, those of step k. For a group with base
    rate b, with W = `warmup_steps`, T = `total_steps` and m = `final_ratio` * b, step s uses
    - s < W (the warm-up): b * (s + 1) / (W + 1), rising in equal increments from b / (W + 1);
    - W <= s < T: m + (b - m) * (1 + cos(pi * (s - W) / (T - W))) / 2, from exactly b at step W
      down towards m (the last step, T - 1, is still a little above m);
    - s >= T: m, for as many steps as the caller keeps going.

    With W = 0 there is no warm-up and step 0 runs at b. Each group follows its own b (a group
    created with a third of the learning rate of another has a third of its rate at every step).
    `final_ratio` is in [0, 1]; a `warmup_steps` below 0, or a `total_steps` not above
    `warmup_steps`, raises ValueError.

    The boundaries are where schedules go wrong, by their symptoms: a first step with learning
    rate 0 (a wasted step); a warm-up that reaches b one step early, or one late; a cosine whose
    last step already sits at m, or that climbs back up after step T; a floor m taken from the
    first group for every group.
    """
    # BEGIN SOLUTION
    if warmup_steps < 0 or total_steps <= warmup_steps:
        raise ValueError(f"need 0 <= warmup_steps < total_steps, got {warmup_steps} and {total_steps}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))  # flat after the end
        return final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    # A multiplier of each group's own base rate: one function serves every group, and the
    # scheduler's state (its step count and base rates) is plain data a checkpoint can hold.
    return LambdaLR(optimizer, factor)
    # END SOLUTION


def train_scheduled(
    model: nn.Module,
    batches: Batches,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    scheduler: LRScheduler,
    epochs: int,
    interval: str = "step",
) -> list[float]:
    """Train `model` for `epochs` passes over `batches`, advancing `scheduler` as `interval` says;
    return the loss of every optimizer step, in order, as Python floats.

    `batches` is a sequence of (x, y) pairs that can be iterated once per epoch (a list, a
    DataLoader); `loss_fn(model(x), y)` is a scalar loss; `optimizer` optimizes the model's
    parameters and `scheduler`, freshly created, sets the optimizer's learning rates. Each batch
    is one optimizer step on that batch's gradients alone (whatever the gradients held before, from
    the step before or from before the call, is discarded).

    `interval` is "step": the scheduler advances once after every optimizer step, so the k-th
    step (counting from 0) runs with the learning rates of the schedule's step k; or "epoch": it
    advances once after the last step of every epoch, so every step of epoch e runs with those of
    the schedule's step e. Afterwards the scheduler has advanced once per step (or per epoch),
    and the optimizer holds the learning rates the next step would use. Any other `interval`
    raises ValueError before anything is trained.

    The trap, by its symptom: the schedule's first learning rate never used (every step runs with
    the rate meant for the step after it), and PyTorch's warning that the two were called in the
    wrong order, which the tests turn into a failure.
    """
    # BEGIN SOLUTION
    if interval not in ("step", "epoch"):
        raise ValueError(f"interval must be 'step' or 'epoch', got {interval!r}")
    losses = []
    for _ in range(epochs):
        for x, y in batches:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            # After the optimizer's step: the rate just used was this step's; now set the next one.
            if interval == "step":
                scheduler.step()
            losses.append(loss.item())
        if interval == "epoch":
            scheduler.step()
    return losses
    # END SOLUTION


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: LRScheduler,
    step: int,
) -> None:
    """Write what it takes to resume training to the file `path`: a dict with exactly four entries,
    - "model": the model's state dict, every parameter and buffer by name;
    - "optimizer": the optimizer's state dict (its param groups with their current learning rates,
      and its per-parameter state such as momentum buffers);
    - "scheduler": the scheduler's state dict (where it is in the schedule, and its base rates);
    - "step": `step`, the number of optimizer steps taken so far, a Python int.

    Loaded into a fresh model, optimizer and scheduler (built the way the originals were), the
    checkpoint resumes the same run: the next steps use the same learning rates, and end at the
    same weights, as the steps of a run that never stopped, given the same batches. The file must
    open with PyTorch's safe loader, which reads tensors, numbers, strings and plain containers
    only (no optimizer or scheduler object: unpickling an object can run any code).

    The trap, by its symptom: a resumed run whose learning rate jumps back to the start of the
    schedule, warm-up and all, because the checkpoint kept the weights and the optimizer but not
    the scheduler.
    """
    # BEGIN SOLUTION
    checkpoint = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),  # last_epoch and base_lrs: plain numbers
        "step": int(step),
    }
    torch.save(checkpoint, path)
    # END SOLUTION


def load_checkpoint(
    path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: LRScheduler
) -> int:
    """Restore a checkpoint written by `save_checkpoint` into `model`, `optimizer` and `scheduler`;
    return the number of steps it holds, a Python int.

    The three are freshly built, on the CPU, the way the saved ones were (same architecture, same
    kind of optimizer over the same param groups, same kind of scheduler just created over that
    optimizer). Afterwards the model holds the checkpoint's weights, the optimizer its state
    (learning rates and momentum buffers) and the scheduler its position in the schedule, so that
    the steps that follow use the learning rates, and reach the weights, of a run that never
    stopped. Reading the file must be safe: a file that holds anything but tensors, numbers,
    strings and plain containers is refused with `pickle.UnpicklingError` before any of its code
    runs.

    The traps, by their symptoms: a resumed run whose learning rates start the warm-up again after
    its first step (the fresh scheduler still counts from 0); a first resumed step at the rate of
    the schedule's step 0 (the fresh optimizer's own), and weights that drift from the
    uninterrupted run's from then on (momentum started again from zero).
    """
    # BEGIN SOLUTION
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(checkpoint["model"])
    # The optimizer's groups bring back the current learning rates; the scheduler its step count,
    # from which it computes the next ones. Either alone resumes a different run.
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    return int(checkpoint["step"])
    # END SOLUTION


def clip_global_norm(parameters: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Clip the gradients of `parameters` to a total 2-norm of at most `max_norm`; return the total
    2-norm they had before.

    `parameters` is an iterable of tensors, possibly one that can be read only once (a model's
    parameters as it hands them out); some of them may have no gradient (None), which is left as it
    is and counts for nothing. The total norm is the 2-norm of all the gradients' elements taken
    together, as one vector (not of each gradient separately). When it exceeds `max_norm` (> 0),
    every gradient is multiplied by the same factor, so that the total becomes `max_norm` (to
    float32 accuracy) and the update keeps its direction; otherwise the gradients are left as they
    are (never scaled up). The parameters' values are not touched.

    The result is a 0-dim float32 tensor on the gradients' device that carries no graph, and equals
    the total norm before clipping to float32 accuracy; it is 0 when no parameter has a gradient.

    The traps, by their symptoms: gradients clipped one by one, each to `max_norm` (the update
    changes direction, and its total is larger than `max_norm`); the norm after clipping returned,
    which is `max_norm` whenever clipping happened; gradients that were never scaled, because the
    parameters had been used up by measuring the norm; an error on a parameter without a gradient.
    """
    # BEGIN SOLUTION
    grads = [p.grad for p in parameters if p.grad is not None]  # one pass: a generator runs out
    if not grads:
        return torch.tensor(0.0)
    # The norm of the per-tensor norms is the norm of all the elements together.
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)  # never above 1: small gradients stay as they are
    for g in grads:
        g.mul_(scale)
    return total
    # END SOLUTION


def clipped_train_step(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    max_norm: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Take one optimizer step on the batch (x, y) with its gradients clipped to a total 2-norm of at
    most `max_norm`; return `(loss, grad_norm)`.

    `loss_fn(model(x), y)` is a scalar loss and `optimizer` optimizes the model's parameters; some
    parameters may take no part in the forward pass. The step's gradients are this batch's alone
    (whatever the parameters' gradients held before the call is discarded first). Before the
    optimizer uses them, the gradients of all the parameters, taken together as one vector, are
    clipped to a total 2-norm of `max_norm` (all scaled by the same factor, and only when their
    norm exceeds it); the step then moves the parameters with the clipped gradients.

    Afterwards each parameter's gradient holds its clipped gradient. `loss` is this batch's loss
    and `grad_norm` the total 2-norm of the gradients before clipping, both 0-dim float32 tensors
    that carry no graph.

    The traps, by their symptoms: a step that moved the parameters by the full, unclipped
    gradients (the clipping ran too early, on gradients about to be replaced, or too late, after
    the step had used them); a norm that includes the gradients of the previous call.
    """
    # BEGIN SOLUTION
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    # Between backward and step: the gradients exist, and the optimizer has not used them yet.
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.detach(), grad_norm
    # END SOLUTION


def train_skipping_nonfinite(
    model: nn.Module, batches: Batches, loss_fn: LossFn, optimizer: torch.optim.Optimizer
) -> int:
    """Train `model` on each (x, y) of `batches` in turn, one optimizer step per batch, except on the
    batches whose loss or gradients are not finite; return how many batches were skipped, an int.

    `loss_fn(model(x), y)` is a scalar loss and `optimizer` optimizes the model's parameters; some
    parameters may take no part in the forward pass (they get no gradient, and are no error). For
    each batch, with nothing left over from the batches before: when the loss is nan or infinite,
    the batch is skipped without computing its gradients (a backward pass from such a loss is
    wasted work). Otherwise the gradients are computed; when any element of any parameter's
    gradient is nan or infinite, the batch is skipped; otherwise the optimizer steps.

    A skipped batch leaves no trace: afterwards the parameters and the optimizer's state (its
    momentum buffers, its running averages and step counts) are exactly those of a run over the
    finite batches alone, and the batches after a skipped one train as usual.

    The traps, by their symptoms: weights that become nan after one bad batch (only nan was
    looked for, or only the loss, or only the gradients); a loop that stops at the first bad
    batch; weights that still move on a skipped batch, carried by the momentum of earlier steps;
    a good batch after a bad one that is skipped too, its gradients polluted by what the bad one
    left behind.
    """
    # BEGIN SOLUTION
    skipped = 0
    for x, y in batches:
        optimizer.zero_grad()  # at the top: a skipped batch's nan gradients never reach the next one
        loss = loss_fn(model(x), y)
        if not torch.isfinite(loss):
            skipped += 1
            continue
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if not all(bool(torch.isfinite(g).all()) for g in grads):
            skipped += 1
            continue  # no optimizer.step(): even zero gradients would move the momentum
        optimizer.step()
    return skipped
    # END SOLUTION
