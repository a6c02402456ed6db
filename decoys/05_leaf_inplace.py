"""Known-wrong answers (decoys) and known-right alternatives for kata 05 (see dojo/variants.py)."""

import torch

from dojo.variants import alternative, decoy

# ---------------------------------------------------------------- node_info


@decoy("returns str(grad_fn): '<MulBackward0 object at 0x...>', address included, instead of the node's kind")
def node_info(t):
    return t.is_leaf, (str(t.grad_fn) if t.grad_fn is not None else None)


@decoy("takes requires_grad for is_leaf: the data x is a leaf that does not require grad")
def node_info(t):
    return t.requires_grad, (t.grad_fn.name() if t.grad_fn is not None else None)


@decoy("no None check: a leaf's grad_fn is None, and None has no .name()")
def node_info(t):
    return t.is_leaf, t.grad_fn.name()


@decoy("returns the node object itself, not a str")
def node_info(t):
    return t.is_leaf, t.grad_fn


@alternative("the node's class name, and grad_fn None as the leaf test")
def node_info(t):
    node = t.grad_fn
    return node is None, (type(node).__name__ if node is not None else None)


# ---------------------------------------------------------------- tensors_that_get_grad


@decoy("requires_grad alone: picks yhat and loss, which are not leaves")
def tensors_that_get_grad(named):
    return [name for name, t in named.items() if t.requires_grad]


@decoy("is_leaf alone: picks the data x and y, which do not require grad")
def tensors_that_get_grad(named):
    return [name for name, t in named.items() if t.is_leaf]


@decoy("forgets retain_grad(): a non-leaf that retains its grad gets a .grad too")
def tensors_that_get_grad(named):
    return [name for name, t in named.items() if t.is_leaf and t.requires_grad]


@decoy("reads .grad, which is None for everything before backward")
def tensors_that_get_grad(named):
    return [name for name, t in named.items() if t.grad is not None]


@decoy("sorts the names instead of keeping the dict's order")
def tensors_that_get_grad(named):
    return sorted(name for name, t in named.items() if t.requires_grad and (t.is_leaf or t.retains_grad))


@alternative("a loop, with grad_fn None as the leaf test")
def tensors_that_get_grad(named):
    names = []
    for name, t in named.items():
        if not t.requires_grad:
            continue
        if t.grad_fn is None or t.retains_grad:
            names.append(name)
    return names


# ---------------------------------------------------------------- small_leaf_param


@decoy(
    "requires_grad=True, then scaled: the result is a MulBackward0 node and the gradient goes past it",
    cite="https://discuss.pytorch.org/t/leaf-variable-was-used-in-an-inplace-operation/308",
)
def small_leaf_param(shape, scale, generator, device="cpu"):
    return (torch.randn(shape, generator=generator, requires_grad=True) * scale).to(device)


@decoy("asks for grad before the move: .to(device) is recorded (ToCopyBackward0), hidden on the CPU")
def small_leaf_param(shape, scale, generator, device="cpu"):
    return (torch.randn(shape, generator=generator) * scale).requires_grad_().to(device)


@decoy("discards the result of .to(device): the parameter stays on the CPU")
def small_leaf_param(shape, scale, generator, device="cpu"):
    p = torch.randn(shape, generator=generator) * scale
    p.to(device)
    return p.requires_grad_()


@decoy("ignores the generator: draws from the global random state, other numbers")
def small_leaf_param(shape, scale, generator, device="cpu"):
    return (torch.randn(shape) * scale).to(device).requires_grad_()


@decoy("never asks for grad: a leaf, but backward gives it no .grad")
def small_leaf_param(shape, scale, generator, device="cpu"):
    return (torch.randn(shape, generator=generator) * scale).to(device)


@decoy("draws on the device with a CPU generator: refused on a GPU", needs="cuda")
def small_leaf_param(shape, scale, generator, device="cpu"):
    return (torch.randn(shape, generator=generator, device=device) * scale).requires_grad_()


@alternative("nn.Parameter: a leaf that requires grad, made from the finished values")
def small_leaf_param(shape, scale, generator, device="cpu"):
    return torch.nn.Parameter((torch.randn(shape, generator=generator) * scale).to(device))


@alternative("computed under no_grad, so nothing is recorded; grad asked for afterwards, by attribute")
def small_leaf_param(shape, scale, generator, device="cpu"):
    with torch.no_grad():
        p = torch.randn(*shape, generator=generator).mul(scale).to(device)
    p.requires_grad = True
    return p


# ---------------------------------------------------------------- leaf_inplace_error_message


@decoy("returns repr(err): \"RuntimeError('a leaf Variable ...')\"")
def leaf_inplace_error_message(p):
    try:
        p.add_(1.0)
    except RuntimeError as err:
        return repr(err)


@decoy("writes through an index: p[0] is a view, and the message is the 'view of a leaf' variant")
def leaf_inplace_error_message(p):
    try:
        p[0] = 0.0
    except RuntimeError as err:
        return str(err)


@decoy("returns the exception object, not its message")
def leaf_inplace_error_message(p):
    try:
        p.zero_()
    except RuntimeError as err:
        return err


@decoy(
    "goes through p.data: no error is raised, p is changed behind autograd's back, and no message comes back",
    cite="https://discuss.pytorch.org/t/leaf-variable-was-used-in-an-inplace-operation/308/4",
)
def leaf_inplace_error_message(p):
    try:
        p.data.add_(1.0)
    except RuntimeError as err:
        return str(err)
    return ""


@alternative("p -= 1.0 is in place too; err.args[0] is the message")
def leaf_inplace_error_message(p):
    try:
        p -= 1.0
    except RuntimeError as err:
        return err.args[0]
    raise AssertionError("no error")


# ---------------------------------------------------------------- clamp_in_place


@decoy("rebinds the local name: the caller's p keeps its old values, and a new tensor comes back")
def clamp_in_place(p, low, high):
    p = p.clamp(low, high)
    return p


@decoy(
    "rebinds under no_grad: the new tensor is a leaf, but it is not the caller's p",
    cite="https://hao-yiwen.github.io/yiwen-blog-website/en/docs/ai/frameworks/pytorch/common-errors",
)
def clamp_in_place(p, low, high):
    with torch.no_grad():
        p = p.clamp(low, high)
    return p


@decoy("clamp_ with autograd recording: the leaf in-place error")
def clamp_in_place(p, low, high):
    return p.clamp_(low, high)


@decoy("writes through p.data: the values change but the version counter does not; a graph that saved p goes wrong")
def clamp_in_place(p, low, high):
    p.data.clamp_(low, high)
    return p


@decoy("assigns p.data a new tensor: p holds its values in new memory, and autograd is not told")
def clamp_in_place(p, low, high):
    p.data = p.data.clamp(low, high)
    return p


@decoy("clamps only from above (one-sided weight clipping): values below low stay")
def clamp_in_place(p, low, high):
    with torch.no_grad():
        p.clamp_(max=high)
    return p


@alternative("writes through p.detach(), which shares p's memory and its version counter")
def clamp_in_place(p, low, high):
    p.detach().clamp_(min=low, max=high)
    return p


@alternative("copies the clamped values into p under no_grad")
def clamp_in_place(p, low, high):
    with torch.no_grad():
        p.copy_(torch.clamp(p, low, high))
    return p


@alternative("torch.clamp with out=p, under no_grad")
def clamp_in_place(p, low, high):
    with torch.no_grad():
        torch.clamp(p, low, high, out=p)
    return p


# ---------------------------------------------------------------- sgd_step


@decoy("rebinds the loop variable: the caller's parameters never change")
def sgd_step(params, lr):
    with torch.no_grad():
        for p in params:
            if p.grad is None:
                continue
            p = p - lr * p.grad
            p.grad = None


@decoy("`break` instead of `continue`: the parameters after one without a grad are never updated")
def sgd_step(params, lr):
    with torch.no_grad():
        for p in params:
            if p.grad is None:
                break
            p -= lr * p.grad
            p.grad.zero_()


@decoy("forgets to reset the gradients: the next backward adds to them")
def sgd_step(params, lr):
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p -= lr * p.grad


@decoy("resets only the last parameter's gradient: zero_() outside the loop")
def sgd_step(params, lr):
    with torch.no_grad():
        for p in params:
            if p.grad is None:
                continue
            p -= lr * p.grad
        p.grad.zero_()


@decoy(
    "p -= lr * p.grad with autograd recording: the leaf in-place error",
    cite="https://discuss.pytorch.org/t/leaf-variable-was-used-in-an-inplace-operation/308",
)
def sgd_step(params, lr):
    for p in params:
        if p.grad is None:
            continue
        p -= lr * p.grad
        p.grad.zero_()


@decoy("updates through p.data: the version counter does not move, a graph that saved p goes wrong")
def sgd_step(params, lr):
    for p in params:
        if p.grad is None:
            continue
        p.data.sub_(lr * p.grad)
        p.grad.zero_()


@decoy("assigns p.data a new tensor: the parameter's memory changes and autograd is not told")
def sgd_step(params, lr):
    for p in params:
        if p.grad is not None:
            p.data = p.data - lr * p.grad
            p.grad = None


@decoy("puts new leaves into the list: the caller's model still holds the old parameters")
def sgd_step(params, lr):
    for i, p in enumerate(params):
        if p.grad is not None:
            params[i] = (p - lr * p.grad).detach().requires_grad_()


@decoy("zeroes the gradient before using it: nothing moves")
def sgd_step(params, lr):
    with torch.no_grad():
        for p in params:
            if p.grad is None:
                continue
            p.grad.zero_()
            p -= lr * p.grad


@alternative("torch.optim.SGD does the same step and skips parameters without a grad")
def sgd_step(params, lr):
    optimizer = torch.optim.SGD(params, lr=lr)
    optimizer.step()
    optimizer.zero_grad()


@alternative("add_ with alpha=-lr, no_grad per parameter, gradient set to None")
def sgd_step(params, lr):
    for p in params:
        if p.grad is None:
            continue
        with torch.no_grad():
            p.add_(p.grad, alpha=-lr)
        p.grad = None


@alternative("copies the new values into p; the gradients replaced by zeros afterwards, in a second loop")
def sgd_step(params, lr):
    with torch.no_grad():
        updated = [p for p in params if p.grad is not None]
        for p in updated:
            p.copy_(p - lr * p.grad)
    for p in updated:
        p.grad = torch.zeros_like(p)


# ---------------------------------------------------------------- loss_for_logging


@decoy(
    "loss.detach(): no graph, but still a tensor (on the loss's device)",
    cite="https://theneuralbase.com/pytorch/learn/intermediate/memory-leak-detection/",
)
def loss_for_logging(loss):
    return loss.detach()


@decoy("runs backward itself: the caller's backward then finds the graph freed")
def loss_for_logging(loss):
    loss.backward()
    return loss.item()


@decoy("runs backward with retain_graph: the caller's backward then adds a second gradient")
def loss_for_logging(loss):
    loss.backward(retain_graph=True)
    return loss.item()


@decoy("detach_() cuts the caller's loss from its graph: its backward fails")
def loss_for_logging(loss):
    return loss.detach_().item()


@decoy("a NumPy array, not a Python float")
def loss_for_logging(loss):
    return loss.detach().cpu().numpy()


@decoy("rounds for the log: not the loss's value")
def loss_for_logging(loss):
    return round(loss.item(), 2)


@alternative("float(loss) reads the one value the same way")
def loss_for_logging(loss):
    return float(loss)


@alternative("tolist() of a 0-dim tensor is a Python float")
def loss_for_logging(loss):
    return loss.detach().tolist()


# ---------------------------------------------------------------- twice_sigmoid


@decoy(
    "doubles sigmoid's saved output in place: backward raises 'modified by an inplace operation'",
    cite="https://www.yongfengli.tk/2018/04/13/inplace-operation-in-pytorch.html",
)
def twice_sigmoid(x):
    s = torch.sigmoid(x)
    s *= 2
    return s


@decoy("sigmoid_() on the input: changes the caller's x (and is refused on a leaf that requires grad)")
def twice_sigmoid(x):
    return 2 * x.sigmoid_()


@decoy("doubles through .data to dodge the error: backward then uses the doubled output, a wrong gradient")
def twice_sigmoid(x):
    s = torch.sigmoid(x)
    s.data.mul_(2)
    return s


@decoy("the formula by hand, with exp's saved output changed in place: the same backward error")
def twice_sigmoid(x):
    e = torch.exp(-x)
    e.add_(1.0)
    return 2 / e


@decoy("computed under no_grad: right values, no graph")
def twice_sigmoid(x):
    with torch.no_grad():
        return 2 * torch.sigmoid(x)


@alternative("the formula by hand, out of place")
def twice_sigmoid(x):
    return 2 / (1 + torch.exp(-x))


@alternative("an in-place multiply on a clone: the saved output stays as it was")
def twice_sigmoid(x):
    return torch.special.expit(x).clone().mul_(2)
