"""Decoys and alternatives for kata 15, schedules and clipping (format: dojo/variants.py)."""

import math

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR, LinearLR, LRScheduler, SequentialLR

from dojo.variants import alternative, decoy

# ---------------------------------------------------------------- warmup_cosine


@decoy("the warm-up as s / W: step 0 runs at learning rate 0, a wasted step")
def warmup_cosine(optimizer, warmup_steps, total_steps, final_ratio=0.0):
    if warmup_steps < 0 or total_steps <= warmup_steps:
        raise ValueError("bad lengths")

    def factor(s):
        if s < warmup_steps:
            return s / warmup_steps
        p = min(1.0, (s - warmup_steps) / (total_steps - warmup_steps))
        return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * p))

    return LambdaLR(optimizer, factor)


@decoy("the warm-up as (s + 1) / W: it reaches the base rate at step W - 1, one step early")
def warmup_cosine(optimizer, warmup_steps, total_steps, final_ratio=0.0):
    if warmup_steps < 0 or total_steps <= warmup_steps:
        raise ValueError("bad lengths")

    def factor(s):
        if s < warmup_steps:
            return (s + 1) / warmup_steps
        p = min(1.0, (s - warmup_steps) / (total_steps - warmup_steps))
        return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * p))

    return LambdaLR(optimizer, factor)


@decoy("the cosine spread over T - W - 1 steps: the last step already sits at the floor")
def warmup_cosine(optimizer, warmup_steps, total_steps, final_ratio=0.0):
    if warmup_steps < 0 or total_steps <= warmup_steps:
        raise ValueError("bad lengths")

    def factor(s):
        if s < warmup_steps:
            return (s + 1) / (warmup_steps + 1)
        p = min(1.0, (s - warmup_steps) / max(1, total_steps - warmup_steps - 1))
        return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * p))

    return LambdaLR(optimizer, factor)


@decoy("the cosine's progress not clamped: after step T the learning rate climbs back up")
def warmup_cosine(optimizer, warmup_steps, total_steps, final_ratio=0.0):
    if warmup_steps < 0 or total_steps <= warmup_steps:
        raise ValueError("bad lengths")

    def factor(s):
        if s < warmup_steps:
            return (s + 1) / (warmup_steps + 1)
        p = (s - warmup_steps) / (total_steps - warmup_steps)
        return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * p))

    return LambdaLR(optimizer, factor)


@decoy("the multiplier returns learning rates, from the first group's base: every group gets b * b0 * f(s)")
def warmup_cosine(optimizer, warmup_steps, total_steps, final_ratio=0.0):
    if warmup_steps < 0 or total_steps <= warmup_steps:
        raise ValueError("bad lengths")
    base = optimizer.param_groups[0]["lr"]

    def lr(s):
        if s < warmup_steps:
            return base * (s + 1) / (warmup_steps + 1)
        p = min(1.0, (s - warmup_steps) / (total_steps - warmup_steps))
        floor = final_ratio * base
        return floor + (base - floor) * 0.5 * (1 + math.cos(math.pi * p))

    return LambdaLR(optimizer, lr)


@decoy("one floor for every group, final_ratio times the first group's base rate, as an absolute eta_min would be")
def warmup_cosine(optimizer, warmup_steps, total_steps, final_ratio=0.0):
    if warmup_steps < 0 or total_steps <= warmup_steps:
        raise ValueError("bad lengths")
    floor = final_ratio * optimizer.param_groups[0]["lr"]
    bases = [g["lr"] for g in optimizer.param_groups]

    def per_group(b):
        def factor(s):
            if s < warmup_steps:
                return (s + 1) / (warmup_steps + 1)
            p = min(1.0, (s - warmup_steps) / (total_steps - warmup_steps))
            return (floor + (b - floor) * 0.5 * (1 + math.cos(math.pi * p))) / b

        return factor

    return LambdaLR(optimizer, [per_group(b) for b in bases])


@decoy("final_ratio ignored: the cosine always ends at 0")
def warmup_cosine(optimizer, warmup_steps, total_steps, final_ratio=0.0):
    if warmup_steps < 0 or total_steps <= warmup_steps:
        raise ValueError("bad lengths")

    def factor(s):
        if s < warmup_steps:
            return (s + 1) / (warmup_steps + 1)
        p = min(1.0, (s - warmup_steps) / (total_steps - warmup_steps))
        return 0.5 * (1 + math.cos(math.pi * p))

    return LambdaLR(optimizer, factor)


@decoy("no check of the lengths: total_steps == warmup_steps divides by zero later, not at creation")
def warmup_cosine(optimizer, warmup_steps, total_steps, final_ratio=0.0):
    def factor(s):
        if s < warmup_steps:
            return (s + 1) / (warmup_steps + 1)
        p = min(1.0, (s - warmup_steps) / max(1, total_steps - warmup_steps))
        return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * p))

    return LambdaLR(optimizer, factor)


@alternative("one multiplier per param group (LambdaLR takes a list)")
def warmup_cosine(optimizer, warmup_steps, total_steps, final_ratio=0.0):
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"need 0 <= warmup_steps < total_steps, got {warmup_steps}, {total_steps}")

    def factor(s):
        if s < warmup_steps:
            return (s + 1) / (warmup_steps + 1)
        if s >= total_steps:
            return final_ratio
        cos = math.cos(math.pi * (s - warmup_steps) / (total_steps - warmup_steps))
        return final_ratio + (1 - final_ratio) * (1 + cos) / 2

    return LambdaLR(optimizer, [factor] * len(optimizer.param_groups))


@alternative("a subclass of LRScheduler with a closed-form get_lr")
def warmup_cosine(optimizer, warmup_steps, total_steps, final_ratio=0.0):
    if warmup_steps < 0 or total_steps <= warmup_steps:
        raise ValueError("need 0 <= warmup_steps < total_steps")

    class WarmupCosine(LRScheduler):
        def get_lr(self):
            s = self.last_epoch
            out = []
            for b in self.base_lrs:
                m = final_ratio * b
                if s < warmup_steps:
                    out.append(b * (s + 1) / (warmup_steps + 1))
                else:
                    p = min(1.0, (s - warmup_steps) / (total_steps - warmup_steps))
                    out.append(m + (b - m) * (1 + math.cos(math.pi * p)) / 2)
            return out

    return WarmupCosine(optimizer)


@alternative("SequentialLR: LinearLR for the warm-up, then a clamped cosine as LambdaLR")
def warmup_cosine(optimizer, warmup_steps, total_steps, final_ratio=0.0):
    if warmup_steps < 0 or total_steps <= warmup_steps:
        raise ValueError("need 0 <= warmup_steps < total_steps")
    decay = total_steps - warmup_steps

    def cosine(k):
        return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, k / decay)))

    if warmup_steps == 0:
        return LambdaLR(optimizer, cosine)
    warm = LinearLR(optimizer, start_factor=1 / (warmup_steps + 1), end_factor=1.0, total_iters=warmup_steps)
    return SequentialLR(optimizer, [warm, LambdaLR(optimizer, cosine)], milestones=[warmup_steps])


@alternative("a callable object as the multiplier, with torch's cos")
def warmup_cosine(optimizer, warmup_steps, total_steps, final_ratio=0.0):
    if warmup_steps < 0 or warmup_steps >= total_steps:
        raise ValueError("warmup_steps must be in [0, total_steps)")

    class Factor:
        def __init__(self, w, t, r):
            self.w, self.t, self.r = w, t, r

        def __call__(self, s):
            if s < self.w:
                return (s + 1) / (self.w + 1)
            p = torch.tensor(min(s - self.w, self.t - self.w) / (self.t - self.w), dtype=torch.float64)
            return self.r + (1 - self.r) * float((1 + torch.cos(torch.pi * p)) / 2)

    return LambdaLR(optimizer, Factor(warmup_steps, total_steps, final_ratio))


# ---------------------------------------------------------------- train_scheduled


@decoy(
    "scheduler.step() before optimizer.step(): every step runs at the next step's rate (and PyTorch warns)",
    cite="https://github.com/pytorch/pytorch/issues/20124",
)
def train_scheduled(model, batches, loss_fn, optimizer, scheduler, epochs, interval="step"):
    if interval not in ("step", "epoch"):
        raise ValueError(interval)
    losses = []
    for _ in range(epochs):
        for x, y in batches:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            if interval == "step":
                scheduler.step()
            optimizer.step()
            losses.append(loss.item())
        if interval == "epoch":
            scheduler.step()
    return losses


@decoy("per epoch, the scheduler advanced at the start of each epoch: epoch 0 already runs at step 1's rate")
def train_scheduled(model, batches, loss_fn, optimizer, scheduler, epochs, interval="step"):
    if interval not in ("step", "epoch"):
        raise ValueError(interval)
    losses = []
    for _ in range(epochs):
        if interval == "epoch":
            scheduler.step()
        for x, y in batches:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            if interval == "step":
                scheduler.step()
            losses.append(loss.item())
    return losses


@decoy("interval ignored: the scheduler advances after every step, also when asked for once per epoch")
def train_scheduled(model, batches, loss_fn, optimizer, scheduler, epochs, interval="step"):
    if interval not in ("step", "epoch"):
        raise ValueError(interval)
    losses = []
    for _ in range(epochs):
        for x, y in batches:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
    return losses


@decoy("no zero_grad: every step adds its gradients to all the ones before")
def train_scheduled(model, batches, loss_fn, optimizer, scheduler, epochs, interval="step"):
    if interval not in ("step", "epoch"):
        raise ValueError(interval)
    losses = []
    for _ in range(epochs):
        for x, y in batches:
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            if interval == "step":
                scheduler.step()
            losses.append(loss.item())
        if interval == "epoch":
            scheduler.step()
    return losses


@decoy("returns the loss tensors, each holding its graph, instead of Python floats")
def train_scheduled(model, batches, loss_fn, optimizer, scheduler, epochs, interval="step"):
    if interval not in ("step", "epoch"):
        raise ValueError(interval)
    losses = []
    for _ in range(epochs):
        for x, y in batches:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            if interval == "step":
                scheduler.step()
            losses.append(loss)
        if interval == "epoch":
            scheduler.step()
    return losses


@decoy("any interval other than 'step' is taken as 'epoch': a typo trains without complaint")
def train_scheduled(model, batches, loss_fn, optimizer, scheduler, epochs, interval="step"):
    losses = []
    for _ in range(epochs):
        for x, y in batches:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            if interval == "step":
                scheduler.step()
            losses.append(loss.item())
        if interval != "step":
            scheduler.step()
    return losses


@decoy("one iterator for all epochs: the second epoch finds it exhausted and trains nothing")
def train_scheduled(model, batches, loss_fn, optimizer, scheduler, epochs, interval="step"):
    if interval not in ("step", "epoch"):
        raise ValueError(interval)
    losses = []
    it = iter(batches)
    for _ in range(epochs):
        for x, y in it:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            if interval == "step":
                scheduler.step()
            losses.append(loss.item())
        if interval == "epoch":
            scheduler.step()
    return losses


@alternative("per epoch, the scheduler advanced inside the loop after the epoch's last batch; float(loss)")
def train_scheduled(model, batches, loss_fn, optimizer, scheduler, epochs, interval="step"):
    if interval not in {"step", "epoch"}:
        raise ValueError(f"unknown interval {interval!r}")
    losses = []
    n = len(batches)
    for _ in range(epochs):
        for i, (x, y) in enumerate(batches):
            optimizer.zero_grad(set_to_none=False)
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            losses.append(float(loss))
            if interval == "step" or i == n - 1:
                scheduler.step()
    return losses


# ---------------------------------------------------------------- save_checkpoint


@decoy(
    "no scheduler in the checkpoint: a resumed run starts the schedule again",
    cite="https://github.com/PolymathicAI/the_well/pull/63",
)
def save_checkpoint(path, model, optimizer, scheduler, step):
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": int(step)}, path)


@decoy("saves the scheduler object itself: it does not pickle (a lambda inside), nor would it load safely")
def save_checkpoint(path, model, optimizer, scheduler, step):
    torch.save(
        {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler, "step": int(step)},
        path,
    )


@decoy("saves the scheduler's last learning rates, not its state: the step count is lost")
def save_checkpoint(path, model, optimizer, scheduler, step):
    ckpt = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
    ckpt["scheduler"] = scheduler.get_last_lr()
    ckpt["step"] = int(step)
    torch.save(ckpt, path)


@decoy("the optimizer's param groups only: the momentum buffers are lost")
def save_checkpoint(path, model, optimizer, scheduler, step):
    opt = optimizer.state_dict()
    ckpt = {"model": model.state_dict(), "optimizer": {"state": {}, "param_groups": opt["param_groups"]}}
    ckpt.update(scheduler=scheduler.state_dict(), step=int(step))
    torch.save(ckpt, path)


@decoy("the step saved as a tensor, not a Python int")
def save_checkpoint(path, model, optimizer, scheduler, step):
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "step": torch.tensor(step),
        },
        path,
    )


@alternative("the entries built in a loop, written through an open file")
def save_checkpoint(path, model, optimizer, scheduler, step):
    ckpt = {
        name: obj.state_dict() for name, obj in [("model", model), ("optimizer", optimizer), ("scheduler", scheduler)]
    }
    ckpt["step"] = int(step)
    with open(path, "wb") as f:
        torch.save(ckpt, f)


@decoy("the model's parameters alone: its buffers (a BatchNorm's running statistics) are lost")
def save_checkpoint(path, model, optimizer, scheduler, step):
    weights = {name: p.detach() for name, p in model.named_parameters()}
    torch.save(
        {"model": weights, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": int(step)},
        path,
    )


# ---------------------------------------------------------------- load_checkpoint


@decoy("the scheduler's state not loaded: the fresh scheduler restarts the warm-up")
def load_checkpoint(path, model, optimizer, scheduler):
    ckpt = torch.load(path, weights_only=True)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    return int(ckpt["step"])


@decoy("the optimizer's state not loaded: step 0's rate, and momentum from zero")
def load_checkpoint(path, model, optimizer, scheduler):
    ckpt = torch.load(path, weights_only=True)
    model.load_state_dict(ckpt["model"])
    scheduler.load_state_dict(ckpt["scheduler"])
    return int(ckpt["step"])


@decoy("an unsafe load (weights_only=False): a hostile file runs its code")
def load_checkpoint(path, model, optimizer, scheduler):
    ckpt = torch.load(path, weights_only=False)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    return int(ckpt["step"])


@decoy("advances the scheduler after loading, to 'set the next rate': the resumed run skips one")
def load_checkpoint(path, model, optimizer, scheduler):
    ckpt = torch.load(path, weights_only=True)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    scheduler.step()
    return int(ckpt["step"])


@decoy("returns the step after the saved one")
def load_checkpoint(path, model, optimizer, scheduler):
    ckpt = torch.load(path, weights_only=True)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    return int(ckpt["step"]) + 1


@alternative("the scheduler loaded before the optimizer; the file read through an open file")
def load_checkpoint(path, model, optimizer, scheduler):
    with open(path, "rb") as f:
        ckpt = torch.load(f, map_location=torch.device("cpu"), weights_only=True)
    scheduler.load_state_dict(ckpt["scheduler"])
    optimizer.load_state_dict(ckpt["optimizer"])
    model.load_state_dict(ckpt["model"], strict=True)
    return int(ckpt["step"])


@decoy("returns the scheduler's own count: the number of epochs when it is advanced once per epoch")
def load_checkpoint(path, model, optimizer, scheduler):
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    return scheduler.last_epoch


@decoy("fast-forwards the fresh scheduler by the saved step count: wrong for a scheduler advanced per epoch")
def load_checkpoint(path, model, optimizer, scheduler):
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    for _ in range(int(ckpt["step"])):
        scheduler.step()
    return int(ckpt["step"])


# ---------------------------------------------------------------- clip_global_norm


@decoy("each gradient clipped to max_norm on its own: the total stays above max_norm, the direction changes")
def clip_global_norm(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    for g in grads:
        n = torch.linalg.vector_norm(g)
        g.mul_((max_norm / (n + 1e-6)).clamp(max=1.0))
    return total


@decoy("clips each element's value instead of the norm")
def clip_global_norm(parameters, max_norm):
    params = [p for p in parameters if p.grad is not None]
    if not params:
        return torch.tensor(0.0)
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
    nn.utils.clip_grad_value_(params, max_norm)
    return total


@decoy("returns the norm after clipping (max_norm whenever clipping happened)")
def clip_global_norm(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    for g in grads:
        g.mul_((max_norm / (total + 1e-6)).clamp(max=1.0))
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


@decoy("reads the parameters twice: from a generator, the scaling loop gets nothing")
def clip_global_norm(parameters, max_norm):
    norms = [torch.linalg.vector_norm(p.grad) for p in parameters if p.grad is not None]
    if not norms:
        return torch.tensor(0.0)
    total = torch.linalg.vector_norm(torch.stack(norms))
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for p in parameters:
        if p.grad is not None:
            p.grad.mul_(scale)
    return total


@decoy("assumes every parameter has a gradient: AttributeError on None")
def clip_global_norm(parameters, max_norm):
    params = list(parameters)
    total = torch.sqrt(sum((p.grad**2).sum() for p in params)) if params else torch.tensor(0.0)
    for p in params:
        p.grad.mul_((max_norm / (total + 1e-6)).clamp(max=1.0))
    return total


@decoy("the total as the sum of the gradients' norms")
def clip_global_norm(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    total = torch.stack([torch.linalg.vector_norm(g) for g in grads]).sum()
    for g in grads:
        g.mul_((max_norm / (total + 1e-6)).clamp(max=1.0))
    return total


@decoy("scales by max_norm / norm always: small gradients are scaled up")
def clip_global_norm(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    for g in grads:
        g.mul_(max_norm / (total + 1e-6))
    return total


@decoy("returns a Python float")
def clip_global_norm(parameters, max_norm):
    return nn.utils.clip_grad_norm_(parameters, max_norm).item()


@decoy("no gradient at all: stacking an empty list raises")
def clip_global_norm(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    for g in grads:
        g.mul_((max_norm / (total + 1e-6)).clamp(max=1.0))
    return total


@decoy("gives the parameters without a gradient a gradient of zeros")
def clip_global_norm(parameters, max_norm):
    params = list(parameters)
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    return nn.utils.clip_grad_norm_(params, max_norm)


@alternative("PyTorch's own clip_grad_norm_")
def clip_global_norm(parameters, max_norm):
    return nn.utils.clip_grad_norm_(parameters, max_norm)


@alternative("one flat vector of every gradient; scaled only when the norm exceeds max_norm, by rebinding .grad")
def clip_global_norm(parameters, max_norm):
    params = [p for p in parameters if p.grad is not None]
    if not params:
        return torch.zeros(())
    total = torch.cat([p.grad.flatten() for p in params]).norm()
    if total > max_norm:
        for p in params:
            p.grad = p.grad * (max_norm / total)
    return total


@alternative("a Python sum of squares, then sqrt")
def clip_global_norm(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    total = torch.tensor(0.0)
    for g in grads:
        total = total + g.pow(2).sum()
    total = total.sqrt()
    factor = min(1.0, max_norm / (float(total) + 1e-6))
    for g in grads:
        g.mul_(factor)
    return total


# ---------------------------------------------------------------- clipped_train_step


@decoy(
    "clips before backward: the stale gradients are clipped, then replaced by the unclipped new ones",
    cite="https://github.com/simchowitzlabpublic/nano-world-model/pull/22",
)
def clipped_train_step(model, x, y, loss_fn, optimizer, max_norm):
    optimizer.zero_grad()
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.detach(), grad_norm


@decoy(
    "clips after the step: the step has already used the unclipped gradients",
    cite="https://github.com/jongwook/onsets-and-frames/issues/24",
)
def clipped_train_step(model, x, y, loss_fn, optimizer, max_norm):
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    return loss.detach(), grad_norm


@decoy("no zero_grad: the gradients left from before are added to, measured and clipped")
def clipped_train_step(model, x, y, loss_fn, optimizer, max_norm):
    loss = loss_fn(model(x), y)
    loss.backward()
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.detach(), grad_norm


@decoy("each parameter's gradient clipped on its own; the norm reported is the largest one")
def clipped_train_step(model, x, y, loss_fn, optimizer, max_norm):
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    norms = [nn.utils.clip_grad_norm_([p], max_norm) for p in model.parameters() if p.grad is not None]
    optimizer.step()
    return loss.detach(), torch.stack(norms).max()


@decoy("returns the loss with its graph")
def clipped_train_step(model, x, y, loss_fn, optimizer, max_norm):
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss, grad_norm


@alternative("the kata's own clip_global_norm, zero_grad through the model, zeros instead of None")
def clipped_train_step(model, x, y, loss_fn, optimizer, max_norm):
    model.zero_grad(set_to_none=False)
    out = model(x)
    loss = loss_fn(out, y)
    loss.backward()
    norm = clip_global_norm(model.parameters(), max_norm)  # noqa: F821 - the reference's, in the module
    optimizer.step()
    return loss.detach().clone(), norm


# ---------------------------------------------------------------- train_skipping_nonfinite


@decoy(
    "checks only the loss: a finite loss with nan gradients (the root of a zero) still steps",
    cite="https://github.com/pyro-ppl/numpyro/issues/956",
)
def train_skipping_nonfinite(model, batches, loss_fn, optimizer):
    skipped = 0
    for x, y in batches:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        if not torch.isfinite(loss):
            skipped += 1
            continue
        loss.backward()
        optimizer.step()
    return skipped


@decoy("checks only the gradients: a nan loss is back-propagated before being skipped")
def train_skipping_nonfinite(model, batches, loss_fn, optimizer):
    skipped = 0
    for x, y in batches:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        if not all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None):
            skipped += 1
            continue
        optimizer.step()
    return skipped


@decoy(
    "looks for nan only: an infinite gradient steps and turns the weights into inf and nan",
    cite="https://github.com/facebookresearch/mmf/pull/1073",
)
def train_skipping_nonfinite(model, batches, loss_fn, optimizer):
    skipped = 0
    for x, y in batches:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        if torch.isnan(loss) or torch.isinf(loss):
            skipped += 1
            continue
        loss.backward()
        if any(torch.isnan(p.grad).any() for p in model.parameters() if p.grad is not None):
            skipped += 1
            continue
        optimizer.step()
    return skipped


@decoy("break instead of continue: training stops at the first bad batch")
def train_skipping_nonfinite(model, batches, loss_fn, optimizer):
    skipped = 0
    for x, y in batches:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        if not torch.isfinite(loss):
            skipped += 1
            break
        loss.backward()
        if not all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None):
            skipped += 1
            break
        optimizer.step()
    return skipped


@decoy("replaces the bad gradients by zeros and steps anyway: momentum moves the weights and the state")
def train_skipping_nonfinite(model, batches, loss_fn, optimizer):
    skipped = 0
    for x, y in batches:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        if not torch.isfinite(loss):
            skipped += 1
            continue
        loss.backward()
        bad = False
        for p in model.parameters():
            if p.grad is not None and not torch.isfinite(p.grad).all():
                p.grad.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
                bad = True
        skipped += bad
        optimizer.step()
    return skipped


@decoy("zero_grad only after a step: a skipped batch's nan gradients pollute the next batch")
def train_skipping_nonfinite(model, batches, loss_fn, optimizer):
    skipped = 0
    for x, y in batches:
        loss = loss_fn(model(x), y)
        if not torch.isfinite(loss):
            skipped += 1
            continue
        loss.backward()
        if not all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None):
            skipped += 1
            continue
        optimizer.step()
        optimizer.zero_grad()
    return skipped


@decoy("counts the steps taken instead of the batches skipped")
def train_skipping_nonfinite(model, batches, loss_fn, optimizer):
    stepped = 0
    for x, y in batches:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        if not torch.isfinite(loss):
            continue
        loss.backward()
        if not all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None):
            continue
        optimizer.step()
        stepped += 1
    return stepped


@alternative("the gradients checked through clip_grad_norm_ with an infinite limit: its norm is finite iff they are")
def train_skipping_nonfinite(model, batches, loss_fn, optimizer):
    skipped = 0
    for x, y in batches:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        if not math.isfinite(loss.item()):
            skipped += 1
            continue
        loss.backward()
        norm = nn.utils.clip_grad_norm_(model.parameters(), math.inf)
        if not torch.isfinite(norm):
            skipped += 1
            continue
        optimizer.step()
    return skipped


@alternative("one flag tensor over every gradient; the gradients cleared after each batch instead of before")
def train_skipping_nonfinite(model, batches, loss_fn, optimizer):
    skipped = 0
    params = list(model.parameters())
    for x, y in batches:
        loss = loss_fn(model(x), y)
        ok = bool(loss.isfinite())
        if ok:
            loss.backward()
            flags = [g.isfinite().all() for g in (p.grad for p in params) if g is not None]
            ok = bool(torch.stack(flags).all()) if flags else True
        if ok:
            optimizer.step()
        else:
            skipped += 1
        for p in params:
            p.grad = None
    return skipped


@decoy("checks the gradient of the first parameter alone: an inf in a later layer's gradient gets through")
def train_skipping_nonfinite(model, batches, loss_fn, optimizer):
    skipped = 0
    for x, y in batches:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        if not torch.isfinite(loss):
            skipped += 1
            continue
        loss.backward()
        first = next(iter(model.parameters()))
        if first.grad is not None and not torch.isfinite(first.grad).all():
            skipped += 1
            continue
        optimizer.step()
    return skipped


@decoy("reads .grad of every parameter: a parameter without a gradient raises TypeError")
def train_skipping_nonfinite(model, batches, loss_fn, optimizer):
    skipped = 0
    for x, y in batches:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        if not torch.isfinite(loss):
            skipped += 1
            continue
        loss.backward()
        if any(not torch.isfinite(p.grad).all() for p in model.parameters()):
            skipped += 1
            continue
        optimizer.step()
    return skipped


@alternative("the gradients checked by a clipping that raises on a non-finite norm, with no limit")
def train_skipping_nonfinite(model, batches, loss_fn, optimizer):
    skipped = 0
    for x, y in batches:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        if not torch.isfinite(loss):
            skipped += 1
            continue
        loss.backward()
        params = [p for p in model.parameters() if p.grad is not None]
        try:
            nn.utils.clip_grad_norm_(params, math.inf, error_if_nonfinite=True)
        except RuntimeError:
            skipped += 1
            continue
        optimizer.step()
    return skipped
