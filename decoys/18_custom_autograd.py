"""Known-wrong answers (decoys) and known-right alternatives for kata 18 (see dojo/variants.py)."""

import numpy as np
import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable
from torch.autograd.gradcheck import GradcheckError

from dojo.variants import alternative, decoy

# ---------------------------------------------------------------- StableSoftplus


@decoy("the formula as written: log(1 + exp(x)) is inf above x = 89 in float32, its gradient nan")
class StableSoftplus(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.log(1 + torch.exp(x))

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * torch.exp(x) / (1 + torch.exp(x))


@decoy("stable values, but the derivative written as exp(x) / (1 + exp(x)): nan for large x")
class StableSoftplus(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * torch.exp(x) / (1 + torch.exp(x))


@decoy("log1p(exp(x)): still overflows, log1p only helps for small exp(x)")
class StableSoftplus(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.log1p(torch.exp(x))

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * torch.sigmoid(x)


@decoy("backward forgets the incoming gradient: right only when the loss is a plain sum")
class StableSoftplus(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return torch.sigmoid(x)


@decoy("keeps x on ctx as an attribute: after an in-place change, backward uses the new values silently")
class StableSoftplus(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output * torch.sigmoid(ctx.x)


@decoy(
    "a threshold like F.softplus's own (x above 20 taken as x), with a gradient of 0 below it instead of the sigmoid"
)
class StableSoftplus(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x > 20, x, torch.log1p(torch.exp(x)))

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * torch.where(x > 20, torch.ones_like(x), torch.zeros_like(x))


@alternative("F.softplus in forward, the sigmoid from the saved output: 1 - exp(-y)")
class StableSoftplus(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = F.softplus(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        return grad_output * -torch.expm1(-y)


@alternative("logaddexp(x, 0) forward, a where-based sigmoid backward")
class StableSoftplus(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.logaddexp(x, torch.zeros_like(x))

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        e = torch.exp(-x.abs())
        return grad_output * torch.where(x >= 0, 1 / (1 + e), e / (1 + e))


# ---------------------------------------------------------------- ClampSTE


@decoy("a plain clamp in backward too: clamped elements get zero gradient")
class ClampSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, low, high):
        ctx.save_for_backward(x)
        ctx.low, ctx.high = low, high
        return x.clamp(low, high)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        inside = (x >= ctx.low) & (x <= ctx.high)
        return grad_output * inside, None, None


@decoy("clamps x in place: the caller's x is changed")
class ClampSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, low, high):
        return x.clamp_(low, high)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, None, None


@decoy("backward returns ones: the incoming gradient is lost")
class ClampSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, low, high):
        return x.clamp(low, high)

    @staticmethod
    def backward(ctx, grad_output):
        return torch.ones_like(grad_output), None, None


@alternative("min/max in forward, the gradient cloned in backward")
class ClampSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, low, high):
        return torch.minimum(torch.maximum(x, x.new_tensor(low)), x.new_tensor(high))

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output.clone(), None, None


# ---------------------------------------------------------------- gradient_matches


@decoy("gradcheck on the caller's float32 tensors: a correct backward looks wrong (or no input requires grad)")
def gradient_matches(fn, *inputs):
    return bool(torch.autograd.gradcheck(fn, tuple(t.requires_grad_() for t in inputs), raise_exception=False))


@decoy("t.double().requires_grad_(): for a float64 t that is t itself, the caller's tensor now requires grad")
def gradient_matches(fn, *inputs):
    return bool(torch.autograd.gradcheck(fn, tuple(t.double().requires_grad_() for t in inputs), raise_exception=False))


@decoy("gradcheck's default raises GradcheckError on a mismatch instead of returning False")
def gradient_matches(fn, *inputs):
    return torch.autograd.gradcheck(fn, tuple(t.detach().double().requires_grad_() for t in inputs))


@decoy("only the first input requires grad: a wrong gradient for the others goes unseen")
def gradient_matches(fn, *inputs):
    doubles = [t.detach().double() for t in inputs]
    doubles[0].requires_grad_()
    return bool(torch.autograd.gradcheck(fn, tuple(doubles), raise_exception=False))


@alternative("its own central differences in float64, compared with autograd.grad")
def gradient_matches(fn, *inputs):
    doubles = [t.detach().double().requires_grad_() for t in inputs]
    out = fn(*doubles)
    for i, x in enumerate(doubles):
        for j in range(out.numel()):
            (analytic,) = torch.autograd.grad(out.reshape(-1)[j], x, retain_graph=True, allow_unused=True)
            analytic = torch.zeros_like(x) if analytic is None else analytic
            flat = x.detach().reshape(-1)
            for k in range(flat.numel()):
                eps = 1e-6
                plus = [d.detach().clone() for d in doubles]
                minus = [d.detach().clone() for d in doubles]
                plus[i].reshape(-1)[k] += eps
                minus[i].reshape(-1)[k] -= eps
                numeric = (fn(*plus).reshape(-1)[j] - fn(*minus).reshape(-1)[j]).item() / (2 * eps)
                got = analytic.reshape(-1)[k].item()
                if abs(got - numeric) > 1e-5 + 1e-3 * abs(numeric):
                    return False
    return True


@alternative("gradcheck raising, turned into False")
def gradient_matches(fn, *inputs):
    copies = tuple(torch.tensor(t.tolist(), dtype=torch.float64, requires_grad=True) for t in inputs)
    try:
        return torch.autograd.gradcheck(fn, copies)
    except GradcheckError:
        return False


# ---------------------------------------------------------------- halve_until_within


@decoy("halves x in place: the caller's tensor changes (and a leaf that requires grad refuses)")
def halve_until_within(x, limit):
    if not limit > 0:
        raise ValueError("limit must be positive")
    halvings = 0
    while x.norm() > limit:
        x /= 2
        halvings += 1
    return x, halvings


@decoy("halves while the norm equals the limit: one halving too many where it lands exactly on it (>= for >)")
def halve_until_within(x, limit):
    if not limit > 0:
        raise ValueError("limit must be positive")
    y, halvings = x, 0
    while y.norm() >= limit:
        y = y / 2
        halvings += 1
    return y, halvings


@decoy("computes the result from Python numbers: right values, no gradient for x")
def halve_until_within(x, limit):
    if not limit > 0:
        raise ValueError("limit must be positive")
    halvings = 0
    while x.norm().item() / 2**halvings > limit:
        halvings += 1
    return torch.tensor(x.tolist()) / 2**halvings, halvings


@decoy("loops under no_grad to save memory: the result has no graph")
def halve_until_within(x, limit):
    if not limit > 0:
        raise ValueError("limit must be positive")
    y, halvings = x, 0
    with torch.no_grad():
        while y.norm() > limit:
            y = y / 2
            halvings += 1
    return y, halvings


@decoy(
    "no check of limit: a zero or negative limit returns a result (capped here; uncapped it loops forever) instead of ValueError"
)
def halve_until_within(x, limit):
    y, halvings = x, 0
    while y.norm() > limit and halvings < 64:
        y = y / 2
        halvings += 1
    return y, halvings


@decoy("returns halvings as a tensor (from a log2 formula)")
def halve_until_within(x, limit):
    if not limit > 0:
        raise ValueError("limit must be positive")
    norm = torch.linalg.vector_norm(x.detach())
    halvings = torch.clamp(torch.ceil(torch.log2(norm / limit)), min=0) if norm > 0 else torch.tensor(0.0)
    return x / 2**halvings, halvings


@alternative("a log2 formula for the count, checked against the exact test, then one division")
def halve_until_within(x, limit):
    if limit <= 0:
        raise ValueError(f"the limit must be positive, not {limit}")
    norm = float(torch.linalg.vector_norm(x.detach()))
    halvings = max(0, int(np.ceil(np.log2(norm / limit)))) if norm > 0 else 0
    while halvings > 0 and norm / 2 ** (halvings - 1) <= limit:
        halvings -= 1
    while norm / 2**halvings > limit:
        halvings += 1
    return x * (0.5**halvings), halvings


# ---------------------------------------------------------------- scaled_grad


@decoy("hooks t itself: every path to t is scaled, in this and every later backward")
def scaled_grad(t, factor):
    t.register_hook(lambda grad: grad * factor)
    return t


@decoy("multiplies the values: t * factor scales the gradient and the values")
def scaled_grad(t, factor):
    return t * factor


@decoy("detaches: the values are right, but no gradient reaches t")
def scaled_grad(t, factor):
    return t.detach() * 1


@alternative("the detach trick: factor * t + (1 - factor) * t.detach() has t's values and factor's gradient")
def scaled_grad(t, factor):
    return factor * t + ((1 - factor) * t).detach()


@alternative("a clone carrying the hook")
def scaled_grad(t, factor):
    y = t.clone()

    def scale(grad):
        return grad.mul(factor)

    y.register_hook(scale)
    return y


# ---------------------------------------------------------------- backward_with_clipped_grads


@decoy(
    "clamps .grad after backward: what .grad held before is clamped with it",
    cite="https://pytorch.org/docs/stable/generated/torch.nn.utils.clip_grad_value_.html",
)
def backward_with_clipped_grads(loss, params, max_abs):
    params = list(params)
    loss.backward()
    torch.nn.utils.clip_grad_value_(params, max_abs)


@decoy("never removes the hooks: every later backward is clamped too")
def backward_with_clipped_grads(loss, params, max_abs):
    for p in params:
        p.register_hook(lambda grad: grad.clamp(-max_abs, max_abs))
    loss.backward()


@decoy("removes the hooks only when backward succeeds: after an exception they stay")
def backward_with_clipped_grads(loss, params, max_abs):
    handles = [p.register_hook(lambda grad: grad.clamp(-max_abs, max_abs)) for p in params]
    loss.backward()
    for h in handles:
        h.remove()


@decoy("clamps only from above: large negative gradients arrive unclamped")
def backward_with_clipped_grads(loss, params, max_abs):
    handles = [p.register_hook(lambda grad: grad.clamp(max=max_abs)) for p in params]
    try:
        loss.backward()
    finally:
        for h in handles:
            h.remove()


@decoy("a post-accumulate hook clamps .grad itself: the previous .grad is clamped with the new gradient")
def backward_with_clipped_grads(loss, params, max_abs):
    def clamp_grad(p):
        p.grad.clamp_(-max_abs, max_abs)

    handles = [p.register_post_accumulate_grad_hook(clamp_grad) for p in params]
    try:
        loss.backward()
    finally:
        for h in handles:
            h.remove()


@alternative("torch.clamp in the hooks, the handles popped off a list in finally")
def backward_with_clipped_grads(loss, params, max_abs):
    params = list(params)
    handles = []
    for p in params:
        handles.append(p.register_hook(lambda g: torch.clamp(g, min=-max_abs, max=max_abs)))
    try:
        loss.backward()
    except BaseException:
        raise
    finally:
        while handles:
            handles.pop().remove()


# ---------------------------------------------------------------- NumpySin


@decoy("no refusal: the second derivative silently misses the part NumPy computed")
class NumpySin(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.from_numpy(np.sin(x.detach().numpy()))

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * torch.from_numpy(np.cos(x.detach().numpy()))


@decoy("refuses every backward, the first derivative too")
class NumpySin(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.from_numpy(np.sin(x.detach().numpy()))

    @staticmethod
    def backward(ctx, grad_output):
        raise RuntimeError("NumpySin cannot be differentiated twice")


@decoy("gradient -cos(x): the derivative of cos, not of sin")
class NumpySin(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.from_numpy(np.sin(x.detach().numpy()))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * -torch.from_numpy(np.cos(x.numpy()))


@decoy("np.sin on a float32 array cast to float64: the result's dtype is not x's")
class NumpySin(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.from_numpy(np.sin(x.detach().numpy().astype(np.float64)))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * torch.from_numpy(np.cos(x.numpy())).to(grad_output.dtype)


@alternative("the decorator form of once_differentiable, and torch.as_tensor")
class NumpySin(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.as_tensor(np.sin(x.detach().cpu().numpy()))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * torch.as_tensor(np.cos(x.numpy()))


@decoy("refuses as soon as backward runs with create_graph=True: a first derivative for a gradient penalty raises too")
class NumpySin(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.from_numpy(np.sin(x.detach().numpy()))

    @staticmethod
    def backward(ctx, grad_output):
        if torch.is_grad_enabled():
            raise RuntimeError("NumpySin's gradient is computed by NumPy: it cannot be differentiated twice")
        (x,) = ctx.saved_tensors
        return grad_output * torch.from_numpy(np.cos(x.numpy()))
