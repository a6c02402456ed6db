"""Decoys and alternatives for kata 16, mixed precision (format: dojo/variants.py)."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from dojo.variants import alternative, decoy

# ---------------------------------------------------------------- cast_damage


@decoy("counts every nan as rounded: nan != nan, so `back != x` is True there")
def cast_damage(x, dtype):
    back = x.to(dtype).float()
    overflow = x.isfinite() & back.isinf()
    underflow = (x != 0) & (back == 0)
    rounded = ~overflow & ~underflow & (back != x)
    return {"overflow": int(overflow.sum()), "underflow": int(underflow.sum()), "rounded": int(rounded.sum())}


@decoy("counts only +inf as overflow: -65520 becomes -inf and is missed (then counted as rounded)")
def cast_damage(x, dtype):
    back = x.to(dtype).float()
    overflow = x.isfinite() & (back == math.inf)
    underflow = (x != 0) & (back == 0)
    rounded = x.isfinite() & ~overflow & ~underflow & (back != x)
    return {"overflow": int(overflow.sum()), "underflow": int(underflow.sum()), "rounded": int(rounded.sum())}


@decoy("counts the zeros of x (and every inf of x) as damage: the conversion did not change them")
def cast_damage(x, dtype):
    back = x.to(dtype).float()
    overflow = back.isinf()
    underflow = back == 0
    rounded = x.isfinite() & ~overflow & ~underflow & (back != x)
    return {"overflow": int(overflow.sum()), "underflow": int(underflow.sum()), "rounded": int(rounded.sum())}


@decoy(
    "judges by finfo's max and smallest normal: 65519 (which rounds to 65504) counted as overflow, subnormals as underflow"
)
def cast_damage(x, dtype):
    info = torch.finfo(dtype)
    finite = x.isfinite()
    overflow = finite & (x.abs() > info.max)
    underflow = finite & (x != 0) & (x.abs() < info.tiny)
    back = x.to(dtype).float()
    rounded = finite & ~overflow & ~underflow & (back != x)
    return {"overflow": int(overflow.sum()), "underflow": int(underflow.sum()), "rounded": int(rounded.sum())}


@decoy("returns 0-d tensors, not Python ints")
def cast_damage(x, dtype):
    back = x.to(dtype).float()
    overflow = x.isfinite() & back.isinf()
    underflow = (x != 0) & (back == 0)
    rounded = x.isfinite() & ~overflow & ~underflow & (back != x)
    return {"overflow": overflow.sum(), "underflow": underflow.sum(), "rounded": rounded.sum()}


@decoy("clears the nans of the caller's x in place to keep them out of the count")
def cast_damage(x, dtype):
    x[x.isnan()] = 0.0
    back = x.to(dtype).float()
    overflow = x.isfinite() & back.isinf()
    underflow = (x != 0) & (back == 0)
    rounded = x.isfinite() & ~overflow & ~underflow & (back != x)
    return {"overflow": int(overflow.sum()), "underflow": int(underflow.sum()), "rounded": int(rounded.sum())}


@alternative("one element at a time, in Python floats")
def cast_damage(x, dtype):
    counts = {"overflow": 0, "underflow": 0, "rounded": 0}
    for v in x.detach().cpu().flatten().tolist():
        if not math.isfinite(v) or v == 0:
            continue
        w = torch.tensor(v).to(dtype).item()
        if math.isinf(w):
            counts["overflow"] += 1
        elif w == 0:
            counts["underflow"] += 1
        elif w != v:
            counts["rounded"] += 1
    return counts


@alternative("torch.where categories and a bincount")
def cast_damage(x, dtype):
    back = x.to(dtype).to(x.dtype)
    kind = torch.where(x.isfinite() & back.isinf(), 1, 0)
    kind = torch.where((kind == 0) & (x != 0) & (back == 0), 2, kind)
    kind = torch.where((kind == 0) & x.isfinite() & (back != x), 3, kind)
    counts = torch.bincount(kind.flatten(), minlength=4).tolist()
    return {"overflow": counts[1], "underflow": counts[2], "rounded": counts[3]}


# ---------------------------------------------------------------- autocast_dtypes


@decoy(
    "computes the loss after the region has closed: cross-entropy of bfloat16 logits comes out bfloat16",
    cite="https://github.com/pytorch/pytorch/pull/82196",
)
def autocast_dtypes(x, w, target, device):
    low = torch.bfloat16 if device.type == "cpu" else torch.float16
    with torch.autocast(device.type, dtype=low):
        logits = x @ w
        probs = torch.softmax(logits, dim=1)
    loss = F.cross_entropy(logits, target)
    return {"logits": logits.dtype, "probs": probs.dtype, "loss": loss.dtype}


@decoy("no region: converts the inputs by hand, so every result, the loss included, is 16-bit")
def autocast_dtypes(x, w, target, device):
    low = torch.bfloat16 if device.type == "cpu" else torch.float16
    logits = x.to(low) @ w.to(low)
    probs = torch.softmax(logits, dim=1)
    loss = F.cross_entropy(logits, target)
    return {"logits": logits.dtype, "probs": probs.dtype, "loss": loss.dtype}


@decoy("float16 on the CPU too: the CPU's lower dtype is bfloat16")
def autocast_dtypes(x, w, target, device):
    with torch.autocast(device.type, dtype=torch.float16):
        logits = x @ w
        probs = torch.softmax(logits, dim=1)
        loss = F.cross_entropy(logits, target)
    return {"logits": logits.dtype, "probs": probs.dtype, "loss": loss.dtype}


@decoy(
    "a CUDA region for CPU tensors: it changes nothing on the CPU (a warning, everything float32)",
    cite="https://github.com/datawhalechina/happy-llm/pull/195",
)
def autocast_dtypes(x, w, target, device):
    with torch.autocast("cuda"):
        logits = x @ w
        probs = torch.softmax(logits, dim=1)
        loss = F.cross_entropy(logits, target)
    return {"logits": logits.dtype, "probs": probs.dtype, "loss": loss.dtype}


@decoy(
    "answers from CUDA's op list everywhere: softmax float32, which is not what the CPU does",
    cite="https://github.com/karpathy/nanoGPT/issues/235",
)
def autocast_dtypes(x, w, target, device):
    low = torch.bfloat16 if device.type == "cpu" else torch.float16
    return {"logits": low, "probs": torch.float32, "loss": torch.float32}


@decoy("bfloat16 on CUDA too: the docstring asks for float16 there", needs="cuda")
def autocast_dtypes(x, w, target, device):
    with torch.autocast(device.type, dtype=torch.bfloat16):
        logits = x @ w
        probs = torch.softmax(logits, dim=1)
        loss = F.cross_entropy(logits, target)
    return {"logits": logits.dtype, "probs": probs.dtype, "loss": loss.dtype}


@alternative(
    "autocast's default dtype per device (bfloat16 on the CPU, float16 on CUDA); F.softmax and nn.CrossEntropyLoss"
)
def autocast_dtypes(x, w, target, device):
    with torch.autocast(device_type=device.type):
        logits = torch.matmul(x, w)
        out = {"logits": logits.dtype, "probs": F.softmax(logits, dim=1).dtype}
        out["loss"] = nn.CrossEntropyLoss()(logits, target).dtype
    return out


@alternative("the cross-entropy as nll_loss of log_softmax: nll_loss is on autocast's float32 list too")
def autocast_dtypes(x, w, target, device):
    low = torch.bfloat16 if device.type == "cpu" else torch.float16
    with torch.autocast(device.type, dtype=low):
        logits = x.mm(w)
        probs = logits.softmax(1)
        loss = F.nll_loss(F.log_softmax(logits, dim=1), target)
    return {"logits": logits.dtype, "probs": probs.dtype, "loss": loss.dtype}


# ---------------------------------------------------------------- amp_predict


@decoy("returns the 16-bit outputs as they come out of the region")
def amp_predict(model, x, device):
    low = torch.bfloat16 if device.type == "cpu" else torch.float16
    with torch.no_grad(), torch.autocast(device.type, dtype=low):
        return model(x)


@decoy("no region: a float32 forward pass all along")
def amp_predict(model, x, device):
    with torch.no_grad():
        return model(x).float()


@decoy("converts the caller's model to 16 bits (and the input), instead of a mixed-precision region")
def amp_predict(model, x, device):
    low = torch.bfloat16 if device.type == "cpu" else torch.float16
    model.to(low)
    with torch.no_grad():
        return model(x.to(low)).float()


@decoy("forgets no_grad: the outputs carry the graph of the forward pass")
def amp_predict(model, x, device):
    low = torch.bfloat16 if device.type == "cpu" else torch.float16
    with torch.autocast(device.type, dtype=low):
        out = model(x)
    return out.float()


@decoy("passes the torch.device itself to autocast: ValueError, it wants the device type as a str")
def amp_predict(model, x, device):
    with torch.no_grad(), torch.autocast(device):
        return model(x).float()


@alternative("detach() instead of no_grad; .to(torch.float32)")
def amp_predict(model, x, device):
    with torch.autocast(device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16):
        out = model(x)
    return out.detach().to(torch.float32)


@alternative("inference_mode, and the conversion inside the region")
def amp_predict(model, x, device):
    with torch.inference_mode(), torch.autocast(device.type):
        return model(x).float()


# ---------------------------------------------------------------- amp_train_step


@decoy(
    "model.half() instead of a region: the parameters come out of the step in float16",
    cite="https://github.com/wgcban/ChangeFormer/issues/91",
)
def amp_train_step(model, x, y, loss_fn, optimizer, device):
    model.half()
    optimizer.zero_grad()
    with torch.autocast(device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16):
        loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.detach().float()


@decoy("forgets zero_grad: backward adds this step's gradients to the ones .grad held")
def amp_train_step(model, x, y, loss_fn, optimizer, device):
    with torch.autocast(device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16):
        loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.detach()


@decoy("only the forward in the region, the loss after it: a cross-entropy of bfloat16 outputs is bfloat16")
def amp_train_step(model, x, y, loss_fn, optimizer, device):
    optimizer.zero_grad()
    with torch.autocast(device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16):
        out = model(x)
    loss = loss_fn(out, y)
    loss.backward()
    optimizer.step()
    return loss.detach()


@decoy("no region at all: an ordinary float32 step")
def amp_train_step(model, x, y, loss_fn, optimizer, device):
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.detach()


@decoy("returns the loss with its graph")
def amp_train_step(model, x, y, loss_fn, optimizer, device):
    optimizer.zero_grad()
    with torch.autocast(device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16):
        loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss


@decoy("forgets the optimizer's step: gradients computed, parameters unchanged")
def amp_train_step(model, x, y, loss_fn, optimizer, device):
    optimizer.zero_grad()
    with torch.autocast(device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16):
        loss = loss_fn(model(x), y)
    loss.backward()
    return loss.detach()


@decoy("a CPU region whatever the device: on CUDA the forward runs in float32", needs="cuda")
def amp_train_step(model, x, y, loss_fn, optimizer, device):
    optimizer.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.detach()


@alternative("backward and step inside the region too: backward uses the forward's dtypes anyway")
def amp_train_step(model, x, y, loss_fn, optimizer, device):
    model.zero_grad(set_to_none=True)
    with torch.autocast(device.type):
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
    return loss.detach()


@alternative("gradients set to None by hand; the loss cloned off the graph")
def amp_train_step(model, x, y, loss_fn, optimizer, device):
    for p in model.parameters():
        p.grad = None
    low = torch.bfloat16 if device.type == "cpu" else torch.float16
    with torch.autocast(device_type=device.type, dtype=low, enabled=True):
        output = model(x)
        loss = loss_fn(output, y)
    loss.backward()
    optimizer.step()
    return loss.detach().clone()


# ---------------------------------------------------------------- float32_matmul


@decoy(
    "converts the inputs to float32 inside the region: the matmul converts them back down",
    cite="https://github.com/pytorch/pytorch/issues/43556",
)
def float32_matmul(a, b):
    return a.float() @ b.float()


@decoy("converts the 16-bit product afterwards: float32, but only 2 or 3 correct digits")
def float32_matmul(a, b):
    return (a @ b).float()


@decoy("switches the region off but converts nothing: a bfloat16 input stays bfloat16 (and cannot meet a float32 one)")
def float32_matmul(a, b):
    with torch.autocast(a.device.type, enabled=False):
        return a @ b


@decoy("no_grad does not switch mixed precision off: the product is still 16-bit")
def float32_matmul(a, b):
    with torch.no_grad():
        return a.float() @ b.float()


@decoy("switches mixed precision off for the rest of the caller's region, not just for this product")
def float32_matmul(a, b):
    torch.set_autocast_enabled(a.device.type, False)
    return a.float() @ b.float()


@decoy("switches the CPU's region off whatever the device: on CUDA the product stays float16", needs="cuda")
def float32_matmul(a, b):
    with torch.autocast("cpu", enabled=False):
        return a.float() @ b.float()


@alternative("float64 is not on any autocast list: the product in float64, converted to float32")
def float32_matmul(a, b):
    return (a.double() @ b.double()).float()


@alternative("device_type keyword, .to(torch.float32) and torch.mm")
def float32_matmul(a, b):
    with torch.autocast(device_type=a.device.type, enabled=False):
        return torch.mm(a.to(torch.float32), b.to(torch.float32))


# ---------------------------------------------------------------- scaled_train_step


@decoy(
    "clips before unscaling: the norm is measured on the scaled gradients, which are clipped far too much",
    cite="https://github.com/milesial/Pytorch-UNet/issues/468",
)
def scaled_train_step(model, x, y, loss_fn, optimizer, scaler, max_norm, device):
    optimizer.zero_grad()
    with torch.autocast(device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16):
        loss = loss_fn(model(x), y)
    scaler.scale(loss).backward()
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    scaler.unscale_(optimizer)
    scaler.step(optimizer)
    scaler.update()
    return loss.detach(), grad_norm


@decoy(
    "never unscales before clipping (scaler.step unscales later): the clipping sees the scaled gradients",
    cite="https://github.com/harubaru/waifu-diffusion/issues/64",
)
def scaled_train_step(model, x, y, loss_fn, optimizer, scaler, max_norm, device):
    optimizer.zero_grad()
    with torch.autocast(device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16):
        loss = loss_fn(model(x), y)
    scaler.scale(loss).backward()
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    scaler.step(optimizer)
    scaler.update()
    return loss.detach(), grad_norm


@decoy("backward through the unscaled loss: the scaler never scaled anything, and unscale_ refuses (AssertionError)")
def scaled_train_step(model, x, y, loss_fn, optimizer, scaler, max_norm, device):
    optimizer.zero_grad()
    with torch.autocast(device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16):
        loss = loss_fn(model(x), y)
    loss.backward()
    scaler.unscale_(optimizer)
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    scaler.step(optimizer)
    scaler.update()
    return loss.detach(), grad_norm


@decoy(
    "optimizer.step() instead of scaler.step(optimizer): a step with inf gradients is not skipped",
    cite="https://github.com/IAHispano/Applio/pull/860",
)
def scaled_train_step(model, x, y, loss_fn, optimizer, scaler, max_norm, device):
    optimizer.zero_grad()
    with torch.autocast(device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16):
        loss = loss_fn(model(x), y)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    scaler.update()
    return loss.detach(), grad_norm


@decoy(
    "forgets scaler.update(): the scale never moves (and the next unscale_ refuses)",
    cite="https://github.com/espnet/espnet/pull/2362",
)
def scaled_train_step(model, x, y, loss_fn, optimizer, scaler, max_norm, device):
    optimizer.zero_grad()
    with torch.autocast(device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16):
        loss = loss_fn(model(x), y)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    scaler.step(optimizer)
    return loss.detach(), grad_norm


@decoy("returns the scaled loss, the one backward ran through")
def scaled_train_step(model, x, y, loss_fn, optimizer, scaler, max_norm, device):
    optimizer.zero_grad()
    with torch.autocast(device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16):
        loss = loss_fn(model(x), y)
    scaled = scaler.scale(loss)
    scaled.backward()
    scaler.unscale_(optimizer)
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    scaler.step(optimizer)
    scaler.update()
    return scaled.detach(), grad_norm


@decoy("clips each parameter's gradient on its own, not all of them as one vector")
def scaled_train_step(model, x, y, loss_fn, optimizer, scaler, max_norm, device):
    optimizer.zero_grad()
    with torch.autocast(device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16):
        loss = loss_fn(model(x), y)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    norms = [nn.utils.clip_grad_norm_([p], max_norm) for p in model.parameters()]
    grad_norm = torch.linalg.vector_norm(torch.stack(norms))
    scaler.step(optimizer)
    scaler.update()
    return loss.detach(), grad_norm


@decoy("reports the norm after clipping (max_norm), not the gradients' own norm")
def scaled_train_step(model, x, y, loss_fn, optimizer, scaler, max_norm, device):
    optimizer.zero_grad()
    with torch.autocast(device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16):
        loss = loss_fn(model(x), y)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    grad_norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    scaler.step(optimizer)
    scaler.update()
    return loss.detach(), grad_norm


@alternative("get_total_norm and clip_grads_with_norm_ over the optimizer's parameters")
def scaled_train_step(model, x, y, loss_fn, optimizer, scaler, max_norm, device):
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device.type):
        loss = loss_fn(model(x), y)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    grad_norm = nn.utils.get_total_norm([p.grad for p in params])
    nn.utils.clip_grads_with_norm_(params, max_norm, grad_norm)
    scaler.step(optimizer)
    scaler.update()
    return loss.detach(), grad_norm


@alternative("the clipping by hand: one factor min(1, max_norm / norm) for every gradient")
def scaled_train_step(model, x, y, loss_fn, optimizer, scaler, max_norm, device):
    model.zero_grad()
    low = torch.bfloat16 if device.type == "cpu" else torch.float16
    with torch.autocast(device.type, dtype=low):
        out = model(x)
        loss = loss_fn(out, y)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    with torch.no_grad():
        grad_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        factor = torch.clamp(max_norm / (grad_norm + 1e-6), max=1.0)
        for g in grads:
            g.mul_(factor)
    scaler.step(optimizer)
    scaler.update()
    return loss.detach(), grad_norm
