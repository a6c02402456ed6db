"""Known-wrong answers (decoys) and known-right alternatives for kata 04 (see dojo/variants.py)."""

import collections

import torch
from torch import nn

from dojo.variants import alternative, decoy

# ---------------------------------------------------------------- grad_at


@decoy("switches requires_grad on for the caller's x and leaves the gradient in the caller's .grad")
def grad_at(f, x):
    x.requires_grad_()
    f(x).backward()
    return x.grad


@decoy(
    "clone() instead of detach(): for an x that requires grad the clone is a non-leaf, its .grad stays None and "
    "the gradient goes on into the caller's x"
)
def grad_at(f, x):
    leaf = x.clone().requires_grad_()
    f(leaf).backward()
    return leaf.grad


@decoy("backward(create_graph=True): the gradient keeps a graph of the backward pass alive")
def grad_at(f, x):
    leaf = x.detach().requires_grad_()
    f(leaf).backward(create_graph=True)
    return leaf.grad


@decoy("reads the caller's x.grad, not the leaf's: None for a plain x")
def grad_at(f, x):
    leaf = x.detach().requires_grad_()
    f(leaf).backward()
    return x.grad


@decoy("uses the caller's x as it is when it already requires grad: fills its .grad (None for a non-leaf x)")
def grad_at(f, x):
    if x.requires_grad:
        f(x).backward()
        return x.grad
    leaf = x.detach().requires_grad_()
    f(leaf).backward()
    return leaf.grad


@decoy("a central finite difference: an approximation, not autograd, and poor in float32")
def grad_at(f, x):
    h = 1e-4
    flat = x.detach().reshape(-1)
    out = torch.empty_like(flat)
    for i in range(flat.numel()):
        e = torch.zeros_like(flat)
        e[i] = h
        out[i] = (f((flat + e).reshape(x.shape)) - f((flat - e).reshape(x.shape))) / (2 * h)
    return out.reshape(x.shape)


@alternative("torch.autograd.grad on a detached leaf: the gradient returned, no .grad at all")
def grad_at(f, x):
    leaf = x.detach().requires_grad_()
    (g,) = torch.autograd.grad(f(leaf), leaf)
    return g


@alternative("detach().clone() and the requires_grad attribute: a leaf with memory of its own")
def grad_at(f, x):
    leaf = x.detach().clone()
    leaf.requires_grad = True
    f(leaf).backward()
    return leaf.grad


@alternative("torch.func.grad: the function transform, no leaf to make")
def grad_at(f, x):
    return torch.func.grad(f)(x.detach())


# ---------------------------------------------------------------- q_gradients


@decoy("types in the analytic formulas: right numbers, no autograd")
def q_gradients(a, b):
    return 9 * a**2, -2 * b


@decoy("backward on Q.mean(): every gradient divided by the number of elements")
def q_gradients(a, b):
    a = a.detach().requires_grad_()
    b = b.detach().requires_grad_()
    (3 * a**3 - b**2).mean().backward()
    return a.grad, b.grad


@decoy("a bare Q.backward(): refused for a Q with more than one element")
def q_gradients(a, b):
    a = a.detach().requires_grad_()
    b = b.detach().requires_grad_()
    (3 * a**3 - b**2).backward()
    return a.grad, b.grad


@decoy("switches requires_grad on for the caller's a and b and fills their .grad")
def q_gradients(a, b):
    a.requires_grad_()
    b.requires_grad_()
    q = 3 * a**3 - b**2
    q.backward(gradient=torch.ones_like(q))
    return a.grad, b.grad


@decoy("clone() of a and b: non-leaves when the caller's a and b require grad, so .grad stays None")
def q_gradients(a, b):
    a = a.clone().requires_grad_()
    b = b.clone().requires_grad_()
    q = 3 * a**3 - b**2
    q.backward(gradient=torch.ones_like(q))
    return a.grad, b.grad


@decoy("create_graph=True: the gradients keep the backward pass's graph")
def q_gradients(a, b):
    a = a.detach().requires_grad_()
    b = b.detach().requires_grad_()
    return torch.autograd.grad((3 * a**3 - b**2).sum(), (a, b), create_graph=True)


@decoy("torch.ones(Q.shape): made on the CPU, refused by a backward pass on the GPU", needs="cuda")
def q_gradients(a, b):
    a = a.detach().requires_grad_()
    b = b.detach().requires_grad_()
    q = 3 * a**3 - b**2
    q.backward(gradient=torch.ones(q.shape))
    return a.grad, b.grad


@alternative("backward on Q.sum()")
def q_gradients(a, b):
    a = a.detach().requires_grad_()
    b = b.detach().requires_grad_()
    (3 * a**3 - b**2).sum().backward()
    return a.grad, b.grad


@alternative("torch.autograd.grad with grad_outputs of ones, returned as a tuple")
def q_gradients(a, b):
    a = a.detach().requires_grad_()
    b = b.detach().requires_grad_()
    q = 3 * a**3 - b**2
    return torch.autograd.grad(q, (a, b), grad_outputs=torch.ones_like(q))


# ---------------------------------------------------------------- vjp


@decoy("sums y whatever v is: the product for v = ones only")
def vjp(f, x, v=None):
    leaf = x.detach().requires_grad_()
    f(leaf).sum().backward()
    return leaf.grad


@decoy("papers over v=None with ones: no error for a non-scalar y")
def vjp(f, x, v=None):
    leaf = x.detach().requires_grad_()
    y = f(leaf)
    y.backward(torch.ones_like(y) if v is None else v)
    return leaf.grad


@decoy("catches PyTorch's error and returns zeros")
def vjp(f, x, v=None):
    leaf = x.detach().requires_grad_()
    try:
        f(leaf).backward(v)
    except RuntimeError:
        return torch.zeros_like(x)
    return leaf.grad


@decoy("flattens v: a backward pass from a 2-D y refuses a 1-D gradient")
def vjp(f, x, v=None):
    leaf = x.detach().requires_grad_()
    f(leaf).backward(None if v is None else v.reshape(-1))
    return leaf.grad


@decoy("switches requires_grad on for the caller's x and leaves the product in its .grad")
def vjp(f, x, v=None):
    x.requires_grad_()
    f(x).backward(v)
    return x.grad


@decoy("create_graph=True: the product keeps a graph of the backward pass")
def vjp(f, x, v=None):
    leaf = x.detach().requires_grad_()
    (g,) = torch.autograd.grad(f(leaf), leaf, grad_outputs=v, create_graph=True)
    return g


@alternative("(y * v).sum() as the scalar to backward from, a bare backward for v=None")
def vjp(f, x, v=None):
    leaf = x.detach().requires_grad_()
    y = f(leaf)
    (y if v is None else (y * v).sum()).backward()
    return leaf.grad


@alternative("torch.autograd.grad with grad_outputs=v (None raises the same error)")
def vjp(f, x, v=None):
    leaf = x.detach().requires_grad_()
    (g,) = torch.autograd.grad(f(leaf), leaf, grad_outputs=v)
    return g


# ---------------------------------------------------------------- graph_node_names


@decoy("depth first (recursion): a whole branch before its sibling")
def graph_node_names(y):
    names, seen = [], set()

    def visit(node):
        seen.add(node)
        names.append(type(node).__name__)
        for child, _ in node.next_functions:
            if child is not None and child not in seen:
                visit(child)

    if y.grad_fn is not None:
        visit(y.grad_fn)
    return names


@decoy("a stack (pop() from the end) instead of a queue: not level by level")
def graph_node_names(y):
    if y.grad_fn is None:
        return []
    names, seen, todo = [], {y.grad_fn}, [y.grad_fn]
    while todo:
        node = todo.pop()
        names.append(type(node).__name__)
        for child, _ in node.next_functions:
            if child is not None and child not in seen:
                seen.add(child)
                todo.append(child)
    return names


@decoy("node.name(): 'torch::autograd::AccumulateGrad' for the leaves")
def graph_node_names(y):
    if y.grad_fn is None:
        return []
    names, seen, queue = [], {y.grad_fn}, [y.grad_fn]
    while queue:
        node = queue.pop(0)
        names.append(node.name())
        for child, _ in node.next_functions:
            if child is not None and child not in seen:
                seen.add(child)
                queue.append(child)
    return names


@decoy("str(node): '<MulBackward0 object at 0x...>', address included")
def graph_node_names(y):
    if y.grad_fn is None:
        return []
    names, seen, queue = [], {y.grad_fn}, [y.grad_fn]
    while queue:
        node = queue.pop(0)
        names.append(str(node))
        for child, _ in node.next_functions:
            if child is not None and child not in seen:
                seen.add(child)
                queue.append(child)
    return names


@decoy("no set of visited nodes: x * x lists its AccumulateGrad twice")
def graph_node_names(y):
    if y.grad_fn is None:
        return []
    names, queue = [], [y.grad_fn]
    while queue:
        node = queue.pop(0)
        names.append(type(node).__name__)
        queue.extend(child for child, _ in node.next_functions if child is not None)
    return names


@decoy("remembers the names seen, not the nodes: two separate nodes of one class are listed once")
def graph_node_names(y):
    if y.grad_fn is None:
        return []
    names, seen, queue = [], {type(y.grad_fn).__name__}, [y.grad_fn]
    while queue:
        node = queue.pop(0)
        names.append(type(node).__name__)
        for child, _ in node.next_functions:
            if child is not None and type(child).__name__ not in seen:
                seen.add(type(child).__name__)
                queue.append(child)
    return names


@decoy("no check for a missing grad_fn: None has no next_functions")
def graph_node_names(y):
    names, seen, queue = [], {y.grad_fn}, [y.grad_fn]
    while queue:
        node = queue.pop(0)
        names.append(type(node).__name__)
        for child, _ in node.next_functions:
            if child is not None and child not in seen:
                seen.add(child)
                queue.append(child)
    return names


@decoy("keeps the None inputs (constants) in the walk, named 'NoneType'")
def graph_node_names(y):
    if y.grad_fn is None:
        return []
    names, seen, queue = [], {y.grad_fn}, [y.grad_fn]
    while queue:
        node = queue.pop(0)
        names.append(type(node).__name__)
        if node is None:
            continue
        for child, _ in node.next_functions:
            if child not in seen:
                seen.add(child)
                queue.append(child)
    return names


@alternative("collections.deque, visited checked when a node is taken off the queue")
def graph_node_names(y):
    names, seen = [], set()
    queue = collections.deque([y.grad_fn] if y.grad_fn is not None else [])
    while queue:
        node = queue.popleft()
        if node in seen:
            continue
        seen.add(node)
        names.append(type(node).__name__)
        queue.extend(child for child, _ in node.next_functions if child is not None)
    return names


@alternative("level by level: one list per level of the graph")
def graph_node_names(y):
    level = [y.grad_fn] if y.grad_fn is not None else []
    names, seen = [], set(level)
    while level:
        following = []
        for node in level:
            names.append(type(node).__name__)
            for child, _ in node.next_functions:
                if child is not None and child not in seen:
                    seen.add(child)
                    following.append(child)
        level = following
    return names


# ---------------------------------------------------------------- predict_without_graph


@decoy(
    "detaches after the forward pass: the right flags, but the whole graph was built (and saved) first",
    cite="https://stackoverflow.com/questions/56816241/difference-between-detach-and-with-torch-nograd-in-pytorch",
)
def predict_without_graph(model, x):
    return model(x).detach()


@decoy("model.eval() for no_grad: dropout and batch norm switch, autograd still records")
def predict_without_graph(model, x):
    model.eval()
    return model(x)


@decoy("switches grad mode off for the whole program: never back on")
def predict_without_graph(model, x):
    torch.set_grad_enabled(False)
    return model(x)


@decoy("switches grad mode off, then on again: on even for a caller that had it off, and off after an error")
def predict_without_graph(model, x):
    torch.set_grad_enabled(False)
    out = model(x)
    torch.set_grad_enabled(True)
    return out


@decoy("grad mode on again in a finally: on even for a caller that had it off")
def predict_without_graph(model, x):
    torch.set_grad_enabled(False)
    try:
        return model(x)
    finally:
        torch.set_grad_enabled(True)


@decoy("freezes the parameters to get no graph, and leaves them frozen")
def predict_without_graph(model, x):
    model.requires_grad_(False)
    return model(x)


@decoy("freezes the parameters, then unfreezes them all: a parameter the caller froze comes back trainable")
def predict_without_graph(model, x):
    model.requires_grad_(False)
    out = model(x)
    model.requires_grad_(True)
    return out


@decoy(
    "torch.inference_mode(): an inference tensor, refused when a later graph saves it (a distillation target)",
    cite="https://github.com/facebookresearch/dinov2/issues/472",
)
def predict_without_graph(model, x):
    with torch.inference_mode():
        return model(x)


@decoy("eval() and no_grad, then train(): a model the caller put in eval mode comes back training")
def predict_without_graph(model, x):
    model.eval()
    with torch.no_grad():
        out = model(x)
    model.train()
    return out


@alternative("torch.set_grad_enabled(False) as a context manager")
def predict_without_graph(model, x):
    with torch.set_grad_enabled(False):
        out = model(x)
    return out


@alternative("no_grad as a decorator of an inner function")
def predict_without_graph(model, x):
    @torch.no_grad()
    def run():
        return model(x)

    return run()


@alternative("the previous grad mode saved and restored in a finally")
def predict_without_graph(model, x):
    previous = torch.is_grad_enabled()
    torch.set_grad_enabled(False)
    try:
        return model(x)
    finally:
        torch.set_grad_enabled(previous)


# ---------------------------------------------------------------- freeze_all_but_last


@decoy("p.detach() in a loop: returns new tensors, the parameters keep requiring grad")
def freeze_all_but_last(model):
    for module in model[:-1]:
        for p in module.parameters():
            p = p.detach()
    return model


@decoy("every parameter tensor but the last one: the last layer's weight is frozen, only its bias trains")
def freeze_all_but_last(model):
    for p in list(model.parameters())[:-1]:
        p.requires_grad_(False)
    return model


@decoy("every parameter tensor but the last two: right only for a last layer with a weight and a bias")
def freeze_all_but_last(model):
    for p in list(model.parameters())[:-2]:
        p.requires_grad_(False)
    return model


@decoy("as many parameter tensors as the last module has: none frozen when the last module has none")
def freeze_all_but_last(model):
    params = list(model.parameters())
    keep = len(list(model[-1].parameters()))
    for p in params[: len(params) - keep] if keep else []:
        p.requires_grad_(False)
    return model


@decoy("by name prefix: numbered modules only, an OrderedDict's names freeze everything")
def freeze_all_but_last(model):
    last = str(len(model) - 1)
    for name, p in model.named_parameters():
        if not name.startswith(last + "."):
            p.requires_grad_(False)
    return model


@decoy("Linear layers only: a LayerNorm's scale and shift keep training")
def freeze_all_but_last(model):
    for module in model[:-1]:
        if isinstance(module, nn.Linear):
            module.weight.requires_grad_(False)
            if module.bias is not None:
                module.bias.requires_grad_(False)
    return model


@decoy("weights only: the biases before the last module keep training")
def freeze_all_but_last(model):
    for module in model[:-1]:
        if getattr(module, "weight", None) is not None:
            module.weight.requires_grad_(False)
    return model


@decoy("replaces each parameter by a new frozen one: an optimizer built before holds the old objects")
def freeze_all_but_last(model):
    for module in model[:-1]:
        for name, p in list(module.named_parameters(recurse=False)):
            setattr(module, name, nn.Parameter(p.detach(), requires_grad=False))
    return model


@decoy("model.modules() includes the Sequential itself: everything is frozen")
def freeze_all_but_last(model):
    for module in list(model.modules())[:-1]:
        module.requires_grad_(False)
    return model


@decoy("changes the model in place but forgets to return it")
def freeze_all_but_last(model):
    for module in model[:-1]:
        module.requires_grad_(False)


@alternative("the requires_grad attribute set in a loop over model[:-1].parameters()")
def freeze_all_but_last(model):
    for p in model[:-1].parameters():
        p.requires_grad = False
    return model


@alternative("freeze everything, then unfreeze the last module")
def freeze_all_but_last(model):
    model.requires_grad_(False)
    model[-1].requires_grad_(True)
    return model


@alternative("by identity: every parameter not among the last module's")
def freeze_all_but_last(model):
    keep = {id(p) for p in model[-1].parameters()}
    for p in model.parameters():
        if id(p) not in keep:
            p.requires_grad_(False)
    return model


# ---------------------------------------------------------------- gradients


@decoy("loss.backward() and the .grad values: adds into every .grad")
def gradients(loss, params):
    loss.backward()
    return tuple(p.grad for p in params)


@decoy("backward, then every .grad reset to None: a gradient the caller stored is lost")
def gradients(loss, params):
    for p in params:
        p.grad = None
    loss.backward()
    grads = tuple(p.grad for p in params)
    for p in params:
        p.grad = None
    return grads


@decoy("backward with the params' .grad saved and restored: the other leaves of the graph still get a .grad")
def gradients(loss, params):
    saved = [p.grad for p in params]
    for p in params:
        p.grad = None
    loss.backward()
    grads = tuple(p.grad for p in params)
    for p, g in zip(params, saved):
        p.grad = g
    return grads


@decoy("backward(inputs=params): only the params are filled, but they are filled")
def gradients(loss, params):
    loss.backward(inputs=list(params))
    return tuple(p.grad for p in params)


@decoy("create_graph=True: every gradient keeps a graph of the backward pass")
def gradients(loss, params):
    return torch.autograd.grad(loss, list(params), create_graph=True)


@decoy("a list, one autograd.grad call per parameter: not the tuple asked for")
def gradients(loss, params):
    return [torch.autograd.grad(loss, p, retain_graph=True)[0] for p in params]


@alternative("torch.autograd.grad with a tuple of inputs")
def gradients(loss, params):
    return torch.autograd.grad(loss, tuple(params))


@alternative("one autograd.grad call per parameter, the graph retained between them, as a tuple")
def gradients(loss, params):
    return tuple(torch.autograd.grad(loss, p, retain_graph=True)[0] for p in params)


@alternative("backward(inputs=params) with every .grad saved before and put back after")
def gradients(loss, params):
    params = list(params)
    saved = [p.grad for p in params]
    for p in params:
        p.grad = None
    loss.backward(inputs=params)
    grads = tuple(p.grad for p in params)
    for p, g in zip(params, saved):
        p.grad = g
    return grads


# ---------------------------------------------------------------- second_derivative


@decoy("no create_graph: the first derivative has no graph to differentiate")
def second_derivative(f, x):
    leaf = x.detach().requires_grad_()
    (first,) = torch.autograd.grad(f(leaf).sum(), leaf)
    (second,) = torch.autograd.grad(first.sum(), leaf)
    return second


@decoy("create_graph=True on both passes: the result keeps a graph")
def second_derivative(f, x):
    leaf = x.detach().requires_grad_()
    (first,) = torch.autograd.grad(f(leaf).sum(), leaf, create_graph=True)
    (second,) = torch.autograd.grad(first.sum(), leaf, create_graph=True)
    return second


@decoy("returns the first derivative")
def second_derivative(f, x):
    leaf = x.detach().requires_grad_()
    (first,) = torch.autograd.grad(f(leaf).sum(), leaf)
    return first


@decoy(
    "backward twice without clearing .grad between the passes: f' + f'' comes back",
    cite="https://github.com/FromEssence/AI_Pytorch",
)
def second_derivative(f, x):
    leaf = x.detach().requires_grad_()
    f(leaf).sum().backward(create_graph=True)
    leaf.grad.sum().backward()
    return leaf.grad.detach()


@decoy("requires_grad_() on the first derivative afterwards: it still has no graph back to x")
def second_derivative(f, x):
    leaf = x.detach().requires_grad_()
    (first,) = torch.autograd.grad(f(leaf).sum(), leaf)
    first.requires_grad_()
    (second,) = torch.autograd.grad(first.sum(), leaf)
    return second


@decoy("works on the caller's x: switches its requires_grad on")
def second_derivative(f, x):
    x.requires_grad_()
    (first,) = torch.autograd.grad(f(x).sum(), x, create_graph=True)
    (second,) = torch.autograd.grad(first.sum(), x)
    return second


@alternative("two backward passes, .grad cleared between them")
def second_derivative(f, x):
    leaf = x.detach().requires_grad_()
    f(leaf).sum().backward(create_graph=True)
    first = leaf.grad
    leaf.grad = None
    first.sum().backward()
    return leaf.grad


@alternative("grad_outputs of ones instead of sums")
def second_derivative(f, x):
    leaf = x.detach().requires_grad_()
    y = f(leaf)
    (first,) = torch.autograd.grad(y, leaf, grad_outputs=torch.ones_like(y), create_graph=True)
    (second,) = torch.autograd.grad(first, leaf, grad_outputs=torch.ones_like(first))
    return second


@alternative("the diagonal of the full Hessian of sum(f(x)): slow, but the same numbers")
def second_derivative(f, x):
    n = x.numel()
    h = torch.autograd.functional.hessian(lambda t: f(t.reshape(x.shape)).sum(), x.detach().reshape(-1))
    return h.reshape(n, n).diagonal().reshape(x.shape).clone()


@alternative("torch.func: the gradient of the gradient of f on one element, vectorized over all of them")
def second_derivative(f, x):
    d2 = torch.func.grad(torch.func.grad(lambda t: f(t)))
    return torch.func.vmap(d2)(x.detach().reshape(-1)).reshape(x.shape)
