"""Known-wrong answers (decoys) and known-right alternatives for kata 06 (see dojo/variants.py)."""

import torch
import torch.nn.functional as F
from torch import nn

from dojo.variants import alternative, decoy

# ---------------------------------------------------------------- grad_after_k_backwards


@decoy("one backward pass of k * loss: the right numbers, but a single pass")
def grad_after_k_backwards(model, x, y, k):
    (k * F.mse_loss(model(x), y)).backward()
    return model.weight.grad


@decoy("resets the grads before each pass, as a training loop would: one pass's gradient")
def grad_after_k_backwards(model, x, y, k):
    for _ in range(k):
        model.zero_grad()
        F.mse_loss(model(x), y).backward()
    return model.weight.grad


@decoy("returns a clone taken after the first pass: one pass's gradient")
def grad_after_k_backwards(model, x, y, k):
    F.mse_loss(model(x), y).backward()
    first = model.weight.grad.clone()
    for _ in range(k - 1):
        F.mse_loss(model(x), y).backward()
    return first


@decoy(
    "create_graph=True where retain_graph=True was meant: each .grad records a graph of its own",
    cite="https://discuss.pytorch.org/t/what-exactly-does-retain-variables-true-in-loss-backward-do/3508",
)
def grad_after_k_backwards(model, x, y, k):
    loss = F.mse_loss(model(x), y)
    for _ in range(k):
        loss.backward(create_graph=True)
    return model.weight.grad


@decoy("torch.autograd.grad for the weight only, summed by hand: the bias's .grad stays None")
def grad_after_k_backwards(model, x, y, k):
    total = torch.zeros_like(model.weight)
    for _ in range(k):
        (g,) = torch.autograd.grad(F.mse_loss(model(x), y), model.weight)
        total += g
    model.weight.grad = total
    return total


@decoy("range(1, k): one backward pass short")
def grad_after_k_backwards(model, x, y, k):
    F.mse_loss(model(x), y).backward()
    for _ in range(1, k - 1):
        F.mse_loss(model(x), y).backward()
    return model.weight.grad


@alternative("one forward pass, its graph kept for k backward passes")
def grad_after_k_backwards(model, x, y, k):
    loss = F.mse_loss(model(x), y)
    for _ in range(k - 1):
        loss.backward(retain_graph=True)
    loss.backward()
    return model.weight.grad


@alternative("the loss written out as a mean of squares; torch.autograd.backward")
def grad_after_k_backwards(model, x, y, k):
    for _ in range(k):
        torch.autograd.backward(((model(x) - y) ** 2).mean())
    return model.weight.grad.detach()


# ---------------------------------------------------------------- reset_grads


@decoy("ignores set_to_none: always the default, None")
def reset_grads(optimizer, set_to_none=True):
    optimizer.zero_grad()
    return [p.grad for group in optimizer.param_groups for p in group["params"]]


@decoy("the pre-2.0 default: zeros in place even when None was asked for")
def reset_grads(optimizer, set_to_none=True):
    optimizer.zero_grad(set_to_none=False)
    return [p.grad for group in optimizer.param_groups for p in group["params"]]


@decoy("lists the gradients before resetting them: the old tensors, not None")
def reset_grads(optimizer, set_to_none=True):
    grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
    optimizer.zero_grad(set_to_none=set_to_none)
    return grads


@decoy("only the first param group")
def reset_grads(optimizer, set_to_none=True):
    params = optimizer.param_groups[0]["params"]
    for p in params:
        p.grad = None if set_to_none else (None if p.grad is None else p.grad.zero_())
    return [p.grad for p in params]


@decoy("new zero tensors instead of zeroing in place: another object, other memory")
def reset_grads(optimizer, set_to_none=True):
    for group in optimizer.param_groups:
        for p in group["params"]:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad = torch.zeros_like(p.grad)
    return [p.grad for group in optimizer.param_groups for p in group["params"]]


@decoy("multiplies by zero: nan * 0 and inf * 0 stay nan")
def reset_grads(optimizer, set_to_none=True):
    for group in optimizer.param_groups:
        for p in group["params"]:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.mul_(0)
    return [p.grad for group in optimizer.param_groups for p in group["params"]]


@decoy("gives a missing gradient a tensor of zeros")
def reset_grads(optimizer, set_to_none=True):
    for group in optimizer.param_groups:
        for p in group["params"]:
            if set_to_none:
                p.grad = None
            elif p.grad is None:
                p.grad = torch.zeros_like(p)
            else:
                p.grad.zero_()
    return [p.grad for group in optimizer.param_groups for p in group["params"]]


@decoy("stops at the first missing gradient (break, not continue)")
def reset_grads(optimizer, set_to_none=True):
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for p in params:
        if p.grad is None:
            break
        if set_to_none:
            p.grad = None
        else:
            p.grad.zero_()
    return [p.grad for p in params]


@decoy("swaps the .data of the gradient: the same object, but other memory")
def reset_grads(optimizer, set_to_none=True):
    optimizer.zero_grad(set_to_none=set_to_none)
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.grad is not None:
                p.grad.data = torch.zeros_like(p.grad)
    return [p.grad for group in optimizer.param_groups for p in group["params"]]


@decoy("zeros the parameters themselves, not their gradients")
def reset_grads(optimizer, set_to_none=True):
    with torch.no_grad():
        for group in optimizer.param_groups:
            for p in group["params"]:
                p.zero_()
    optimizer.zero_grad(set_to_none=set_to_none)
    return [p.grad for group in optimizer.param_groups for p in group["params"]]


@alternative("a loop that does what zero_grad does, by hand")
def reset_grads(optimizer, set_to_none=True):
    grads = []
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.requires_grad_(False)
                    p.grad.zero_()
            grads.append(p.grad)
    return grads


@alternative("fill_ with 0.0 in place; itertools.chain over the groups")
def reset_grads(optimizer, set_to_none=True):
    import itertools

    params = list(itertools.chain.from_iterable(g["params"] for g in optimizer.param_groups))
    for p in params:
        if p.grad is None:
            continue
        if set_to_none:
            p.grad = None
        else:
            p.grad.detach_().fill_(0.0)
    return [p.grad for p in params]


# ---------------------------------------------------------------- train_loop


@decoy("never resets: every step follows the sum of all gradients so far")
def train_loop(model, optimizer, batches):
    snapshots = []
    for x, y in batches:
        F.mse_loss(model(x), y).backward()
        optimizer.step()
        snapshots.append(nn.utils.parameters_to_vector(model.parameters()).detach())
    return snapshots


@decoy(
    "resets between backward and step: the step finds no gradient",
    cite="https://discuss.pytorch.org/t/why-do-we-need-to-set-the-gradients-manually-to-zero-in-pytorch/4903",
)
def train_loop(model, optimizer, batches):
    snapshots = []
    for x, y in batches:
        F.mse_loss(model(x), y).backward()
        optimizer.zero_grad()
        optimizer.step()
        snapshots.append(nn.utils.parameters_to_vector(model.parameters()).detach())
    return snapshots


@decoy("resets after the step: the leftover gradients join the first step")
def train_loop(model, optimizer, batches):
    snapshots = []
    for x, y in batches:
        F.mse_loss(model(x), y).backward()
        optimizer.step()
        optimizer.zero_grad()
        snapshots.append(nn.utils.parameters_to_vector(model.parameters()).detach())
    return snapshots


@decoy("resets once, before the loop: from the second batch on the gradients pile up")
def train_loop(model, optimizer, batches):
    snapshots = []
    optimizer.zero_grad()
    for x, y in batches:
        F.mse_loss(model(x), y).backward()
        optimizer.step()
        snapshots.append(nn.utils.parameters_to_vector(model.parameters()).detach())
    return snapshots


@decoy("snapshots keep the graph: parameters_to_vector without detach")
def train_loop(model, optimizer, batches):
    snapshots = []
    for x, y in batches:
        optimizer.zero_grad()
        F.mse_loss(model(x), y).backward()
        optimizer.step()
        snapshots.append(nn.utils.parameters_to_vector(model.parameters()))
    return snapshots


@decoy("snapshot taken before the step: every snapshot one step late")
def train_loop(model, optimizer, batches):
    snapshots = []
    for x, y in batches:
        optimizer.zero_grad()
        snapshots.append(nn.utils.parameters_to_vector(model.parameters()).detach())
        F.mse_loss(model(x), y).backward()
        optimizer.step()
    return snapshots


@decoy("resets the first param group only: the other groups' gradients pile up")
def train_loop(model, optimizer, batches):
    snapshots = []
    for x, y in batches:
        for p in optimizer.param_groups[0]["params"]:
            p.grad = None
        F.mse_loss(model(x), y).backward()
        optimizer.step()
        snapshots.append(nn.utils.parameters_to_vector(model.parameters()).detach())
    return snapshots


@decoy("snapshots the state dict: the buffers join the parameters")
def train_loop(model, optimizer, batches):
    snapshots = []
    for x, y in batches:
        optimizer.zero_grad()
        F.mse_loss(model(x), y).backward()
        optimizer.step()
        snapshots.append(torch.cat([v.detach().flatten() for v in model.state_dict().values()]))
    return snapshots


@decoy("sums the squared errors instead of averaging them: steps 4 times too large")
def train_loop(model, optimizer, batches):
    snapshots = []
    for x, y in batches:
        optimizer.zero_grad()
        F.mse_loss(model(x), y, reduction="sum").backward()
        optimizer.step()
        snapshots.append(nn.utils.parameters_to_vector(model.parameters()).detach())
    return snapshots


@alternative("model.zero_grad() at the top: the same parameters as the optimizer's")
def train_loop(model, optimizer, batches):
    snapshots = []
    for x, y in batches:
        model.zero_grad()
        loss = F.mse_loss(y, model(x))  # the mean squared error is symmetric
        loss.backward()
        optimizer.step()
        snapshots.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    return snapshots


@alternative("reset after each step and once before the loop; zeros in place")
def train_loop(model, optimizer, batches):
    snapshots = []
    optimizer.zero_grad(set_to_none=False)
    for x, y in batches:
        ((model(x) - y) ** 2).mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=False)
        with torch.no_grad():
            snapshots.append(nn.utils.parameters_to_vector(model.parameters()))
    return snapshots


# ---------------------------------------------------------------- train_with_accumulation


@decoy("does not divide by k: each step k times too large")
def train_with_accumulation(model, optimizer, micro_batches, k):
    snapshots = []
    optimizer.zero_grad()
    for i, (x, y) in enumerate(micro_batches, start=1):
        F.mse_loss(model(x), y).backward()
        if i % k == 0:
            optimizer.step()
            optimizer.zero_grad()
            snapshots.append(nn.utils.parameters_to_vector(model.parameters()).detach())
    return snapshots


@decoy("resets before every micro-batch: a step follows the last micro-batch only")
def train_with_accumulation(model, optimizer, micro_batches, k):
    snapshots = []
    for i, (x, y) in enumerate(micro_batches, start=1):
        optimizer.zero_grad()
        (F.mse_loss(model(x), y) / k).backward()
        if i % k == 0:
            optimizer.step()
            snapshots.append(nn.utils.parameters_to_vector(model.parameters()).detach())
    return snapshots


@decoy("never resets after a step: the second step carries the first one's gradient")
def train_with_accumulation(model, optimizer, micro_batches, k):
    snapshots = []
    optimizer.zero_grad()
    for i, (x, y) in enumerate(micro_batches, start=1):
        (F.mse_loss(model(x), y) / k).backward()
        if i % k == 0:
            optimizer.step()
            snapshots.append(nn.utils.parameters_to_vector(model.parameters()).detach())
    return snapshots


@decoy("no reset before the first micro-batch: the leftover gradients join the first step")
def train_with_accumulation(model, optimizer, micro_batches, k):
    snapshots = []
    for i, (x, y) in enumerate(micro_batches, start=1):
        (F.mse_loss(model(x), y) / k).backward()
        if i % k == 0:
            optimizer.step()
            optimizer.zero_grad()
            snapshots.append(nn.utils.parameters_to_vector(model.parameters()).detach())
    return snapshots


@decoy("counts from 0: the first step comes after one micro-batch, the groups are shifted")
def train_with_accumulation(model, optimizer, micro_batches, k):
    snapshots = []
    optimizer.zero_grad()
    for i, (x, y) in enumerate(micro_batches):
        (F.mse_loss(model(x), y) / k).backward()
        if i % k == 0:
            optimizer.step()
            optimizer.zero_grad()
            snapshots.append(nn.utils.parameters_to_vector(model.parameters()).detach())
    return snapshots


@decoy("divides by the number of micro-batches instead of k")
def train_with_accumulation(model, optimizer, micro_batches, k):
    snapshots = []
    optimizer.zero_grad()
    for i, (x, y) in enumerate(micro_batches, start=1):
        (F.mse_loss(model(x), y) / len(micro_batches)).backward()
        if i % k == 0:
            optimizer.step()
            optimizer.zero_grad()
            snapshots.append(nn.utils.parameters_to_vector(model.parameters()).detach())
    return snapshots


@decoy("joins the micro-batches and runs the model on the big batch: what accumulation avoids")
def train_with_accumulation(model, optimizer, micro_batches, k):
    snapshots = []
    for i in range(0, len(micro_batches), k):
        group = micro_batches[i : i + k]
        x = torch.cat([x for x, _ in group])
        y = torch.cat([y for _, y in group])
        optimizer.zero_grad()
        F.mse_loss(model(x), y).backward()
        optimizer.step()
        snapshots.append(nn.utils.parameters_to_vector(model.parameters()).detach())
    return snapshots


@alternative("groups by slicing; the k losses averaged into one backward per micro-batch")
def train_with_accumulation(model, optimizer, micro_batches, k):
    snapshots = []
    for start in range(0, len(micro_batches), k):
        optimizer.zero_grad()
        for x, y in micro_batches[start : start + k]:
            loss = F.mse_loss(model(x), y)
            (loss * (1.0 / k)).backward()
        optimizer.step()
        snapshots.append(nn.utils.parameters_to_vector(model.parameters()).detach())
    return snapshots


@alternative("gradients summed, then divided by k in place before the step")
def train_with_accumulation(model, optimizer, micro_batches, k):
    snapshots = []
    model.zero_grad()
    for i, (x, y) in enumerate(micro_batches):
        F.mse_loss(model(x), y).backward()
        if (i + 1) % k == 0:
            for p in model.parameters():
                p.grad.div_(k)
            optimizer.step()
            model.zero_grad()
            snapshots.append(nn.utils.parameters_to_vector(model.parameters()).detach())
    return snapshots


# ---------------------------------------------------------------- two_loss_grads


@decoy("no reset between the passes: the second result is the sum of both gradients")
def two_loss_grads(model, x, y):
    model.zero_grad()
    out = model(x)
    F.mse_loss(out, y).backward(retain_graph=True)
    grad_fit = model.weight.grad.clone()
    out.pow(2).mean().backward()
    return grad_fit, model.weight.grad


@decoy("keeps a reference, then zeros in place: the first result becomes zeros, then the second gradient")
def two_loss_grads(model, x, y):
    model.zero_grad(set_to_none=False)
    out = model(x)
    F.mse_loss(out, y).backward(retain_graph=True)
    grad_fit = model.weight.grad
    model.zero_grad(set_to_none=False)
    out.pow(2).mean().backward()
    return grad_fit, model.weight.grad


@decoy("a second forward pass instead of retain_graph")
def two_loss_grads(model, x, y):
    model.zero_grad()
    F.mse_loss(model(x), y).backward()
    grad_fit = model.weight.grad.clone()
    model.zero_grad()
    model(x).pow(2).mean().backward()
    return grad_fit, model.weight.grad


@decoy("no reset before the first pass: the leftover gradients join the first result")
def two_loss_grads(model, x, y):
    out = model(x)
    F.mse_loss(out, y).backward(retain_graph=True)
    grad_fit = model.weight.grad.clone()
    model.zero_grad()
    out.pow(2).mean().backward()
    return grad_fit, model.weight.grad


@decoy(
    "create_graph=True for retain_graph=True: the gradients carry graphs",
    cite="https://discuss.pytorch.org/t/what-exactly-does-retain-variables-true-in-loss-backward-do/3508",
)
def two_loss_grads(model, x, y):
    model.zero_grad()
    out = model(x)
    F.mse_loss(out, y).backward(create_graph=True)
    grad_fit = model.weight.grad.clone()
    model.zero_grad()
    out.pow(2).mean().backward()
    return grad_fit, model.weight.grad


@decoy("torch.autograd.grad: right numbers, but .grad is never filled")
def two_loss_grads(model, x, y):
    out = model(x)
    (grad_fit,) = torch.autograd.grad(F.mse_loss(out, y), model.weight, retain_graph=True)
    (grad_size,) = torch.autograd.grad(out.pow(2).mean(), model.weight)
    return grad_fit, grad_size


@alternative("the second loss first, then the first; resets by setting .grad to None")
def two_loss_grads(model, x, y):
    for p in model.parameters():
        p.grad = None
    out = model(x)
    fit, size = F.mse_loss(out, y), out.pow(2).mean()
    size.backward(retain_graph=True)
    grad_size = model.weight.grad
    model.weight.grad = None
    model.bias.grad = None
    fit.backward()
    return model.weight.grad, grad_size


@alternative("subtracts the first gradient from the sum instead of resetting in between")
def two_loss_grads(model, x, y):
    model.zero_grad()
    out = model(x)
    F.mse_loss(out, y).backward(retain_graph=True)
    grad_fit = model.weight.grad.detach().clone()
    out.pow(2).mean().backward()
    return grad_fit, model.weight.grad - grad_fit
