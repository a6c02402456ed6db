"""Known-wrong answers (decoys) and known-right alternatives for kata 09 (see dojo/variants.py)."""

import itertools

import numpy as np
import torch
from torch import nn, optim
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, Subset, TensorDataset

from dojo.variants import alternative, decoy

# ---------------------------------------------------------------- fit_numpy


@decoy("the gradient without its factor 2: a step of half the size")
def fit_numpy(x, y, a0, b0, lr, n_epochs):
    a, b = float(a0), float(b0)
    for _ in range(n_epochs):
        e = a + b * x - y
        a, b = a - lr * e.mean(), b - lr * (x * e).mean()
    return float(a), float(b)


@decoy("sums instead of averaging: every step N times too long, the fit runs away")
def fit_numpy(x, y, a0, b0, lr, n_epochs):
    a, b = float(a0), float(b0)
    for _ in range(n_epochs):
        e = a + b * x - y
        a, b = a - lr * 2 * e.sum(), b - lr * 2 * (x * e).sum()
    return float(a), float(b)


@decoy("steps along the gradient instead of against it")
def fit_numpy(x, y, a0, b0, lr, n_epochs):
    a, b = float(a0), float(b0)
    for _ in range(n_epochs):
        e = a + b * x - y
        a, b = a + lr * 2 * e.mean(), b + lr * 2 * (x * e).mean()
    return float(a), float(b)


@decoy("updates a first, then computes b's gradient from the new a")
def fit_numpy(x, y, a0, b0, lr, n_epochs):
    a, b = float(a0), float(b0)
    for _ in range(n_epochs):
        a = a - lr * 2 * (a + b * x - y).mean()
        b = b - lr * 2 * (x * (a + b * x - y)).mean()
    return float(a), float(b)


@decoy("b's gradient as mean(e) * mean(x) instead of mean(x * e)")
def fit_numpy(x, y, a0, b0, lr, n_epochs):
    a, b = float(a0), float(b0)
    for _ in range(n_epochs):
        e = a + b * x - y
        a, b = a - lr * 2 * e.mean(), b - lr * 2 * e.mean() * x.mean()
    return float(a), float(b)


@decoy("returns the start unconverted: ints stay ints when no epoch runs")
def fit_numpy(x, y, a0, b0, lr, n_epochs):
    a, b = a0, b0
    for _ in range(n_epochs):
        e = a + b * x - y
        a, b = float(a - lr * 2 * e.mean()), float(b - lr * 2 * (x * e).mean())
    return a, b


@decoy("builds the error in x's own memory: the caller's x is overwritten")
def fit_numpy(x, y, a0, b0, lr, n_epochs):
    a, b = float(a0), float(b0)
    original = x.copy()
    for _ in range(n_epochs):
        x[:] = original
        e = x
        e *= b
        e += a - y
        e = e.copy()
        x[:] = original
        a, b = a - lr * 2 * e.mean(), b - lr * 2 * (original * e).mean()
    x *= 1.0000001
    return float(a), float(b)


@decoy("returns one-element arrays, not floats")
def fit_numpy(x, y, a0, b0, lr, n_epochs):
    a, b = np.array([float(a0)]), np.array([float(b0)])
    for _ in range(n_epochs):
        e = a + b * x - y
        a, b = a - lr * 2 * e.mean(), b - lr * 2 * (x * e).mean()
    return a, b


@alternative("matrix form: w = [a, b], gradient 2/N Xᵀ(Xw - y)")
def fit_numpy(x, y, a0, b0, lr, n_epochs):
    design = np.hstack([np.ones_like(x), x])
    w = np.array([a0, b0], dtype=np.float64)
    for _ in range(n_epochs):
        w = w - lr * 2 / len(x) * design.T @ (design @ w - y.ravel())
    return float(w[0]), float(w[1])


@alternative("np.mean of explicit residuals, and a tuple swap")
def fit_numpy(x, y, a0, b0, lr, n_epochs):
    a, b = a0 * 1.0, b0 * 1.0
    for _ in range(n_epochs):
        residual = (a + b * x) - y
        grad_a = np.mean(2 * residual)
        grad_b = np.mean(2 * residual * x)
        a, b = a - lr * grad_a, b - lr * grad_b
    return float(a), float(b)


# ---------------------------------------------------------------- fit_autograd


@decoy("never zeroes the gradients: they add up epoch after epoch")
def fit_autograd(x, y, a0, b0, lr, n_epochs):
    a = torch.tensor([a0], dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor([b0], dtype=x.dtype, device=x.device, requires_grad=True)
    for _ in range(n_epochs):
        ((a + b * x - y) ** 2).mean().backward()
        with torch.no_grad():
            a -= lr * a.grad
            b -= lr * b.grad
    return a, b


@decoy(
    "a = a - lr * a.grad: a new, non-leaf tensor whose .grad stays None",
    cite="https://discuss.pytorch.org/t/leaf-variable-was-used-in-an-inplace-operation/308",
)
def fit_autograd(x, y, a0, b0, lr, n_epochs):
    a = torch.tensor([a0], dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor([b0], dtype=x.dtype, device=x.device, requires_grad=True)
    for _ in range(n_epochs):
        ((a + b * x - y) ** 2).mean().backward()
        a = a - lr * a.grad
        b = b - lr * b.grad
    return a, b


@decoy("updates in place with autograd recording: RuntimeError on a leaf that requires grad")
def fit_autograd(x, y, a0, b0, lr, n_epochs):
    a = torch.tensor([a0], dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor([b0], dtype=x.dtype, device=x.device, requires_grad=True)
    for _ in range(n_epochs):
        ((a + b * x - y) ** 2).mean().backward()
        a -= lr * a.grad
        b -= lr * b.grad
        a.grad.zero_()
        b.grad.zero_()
    return a, b


@decoy("made on the CPU, then moved: on another device the copy is no leaf")
def fit_autograd(x, y, a0, b0, lr, n_epochs):
    a = torch.tensor([a0], dtype=x.dtype, requires_grad=True).to(x.device)
    b = torch.tensor([b0], dtype=x.dtype, requires_grad=True).to(x.device)
    for _ in range(n_epochs):
        ((a + b * x - y) ** 2).mean().backward()
        with torch.no_grad():
            a -= lr * a.grad
            b -= lr * b.grad
        a.grad.zero_()
        b.grad.zero_()
    return a, b


@decoy("float32 whatever x's dtype")
def fit_autograd(x, y, a0, b0, lr, n_epochs):
    a = torch.tensor([a0], device=x.device, requires_grad=True)
    b = torch.tensor([b0], device=x.device, requires_grad=True)
    for _ in range(n_epochs):
        ((a + b * x - y) ** 2).mean().backward()
        with torch.no_grad():
            a -= lr * a.grad
            b -= lr * b.grad
        a.grad.zero_()
        b.grad.zero_()
    return a, b


@decoy("the gradient written by hand with tensors: no backward pass at all")
def fit_autograd(x, y, a0, b0, lr, n_epochs):
    a = torch.tensor([a0], dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor([b0], dtype=x.dtype, device=x.device, requires_grad=True)
    with torch.no_grad():
        for _ in range(n_epochs):
            e = a + b * x - y
            a -= lr * 2 * e.mean()
            b -= lr * 2 * (x * e).mean()
    return a, b


@decoy("returns detached copies: not the leaves, no longer requiring grad")
def fit_autograd(x, y, a0, b0, lr, n_epochs):
    a = torch.tensor([a0], dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor([b0], dtype=x.dtype, device=x.device, requires_grad=True)
    for _ in range(n_epochs):
        ((a + b * x - y) ** 2).mean().backward()
        with torch.no_grad():
            a -= lr * a.grad
            b -= lr * b.grad
        a.grad.zero_()
        b.grad.zero_()
    return a.detach(), b.detach()


@decoy("0-d scalars, not tensors of shape (1,)")
def fit_autograd(x, y, a0, b0, lr, n_epochs):
    a = torch.tensor(a0, dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor(b0, dtype=x.dtype, device=x.device, requires_grad=True)
    for _ in range(n_epochs):
        ((a + b * x - y) ** 2).mean().backward()
        with torch.no_grad():
            a -= lr * a.grad
            b -= lr * b.grad
        a.grad.zero_()
        b.grad.zero_()
    return a, b


@decoy(
    "a fresh leaf each epoch, (a - lr * a.grad).detach().requires_grad_(): right values, but the tensors "
    "returned are not the ones autograd computed the gradients of"
)
def fit_autograd(x, y, a0, b0, lr, n_epochs):
    a = torch.tensor([a0], dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor([b0], dtype=x.dtype, device=x.device, requires_grad=True)
    for _ in range(n_epochs):
        ((a + b * x - y) ** 2).mean().backward()
        a = (a - lr * a.grad).detach().requires_grad_()
        b = (b - lr * b.grad).detach().requires_grad_()
    return a, b


@alternative("torch.full on x's device, .grad set to None, torch.autograd.backward")
def fit_autograd(x, y, a0, b0, lr, n_epochs):
    a = torch.full((1,), a0, dtype=x.dtype, device=x.device).requires_grad_()
    b = torch.full((1,), b0, dtype=x.dtype, device=x.device).requires_grad_()
    for _ in range(n_epochs):
        torch.autograd.backward(((a + b * x - y) ** 2).mean())
        with torch.no_grad():
            a.sub_(lr * a.grad)
            b.sub_(lr * b.grad)
        a.grad = None
        b.grad = None
    return a, b


@alternative("torch.autograd.grad returns the gradients; .data updates")
def fit_autograd(x, y, a0, b0, lr, n_epochs):
    a = x.new_tensor([a0]).requires_grad_(True)
    b = x.new_tensor([b0]).requires_grad_(True)
    for _ in range(n_epochs):
        loss = (a + b * x - y).pow(2).mean()
        ga, gb = torch.autograd.grad(loss, [a, b])
        a.data -= lr * ga
        b.data -= lr * gb
    return a, b


# ---------------------------------------------------------------- fit_optimizer


@decoy("no zero_grad(): the optimizer steps with the sum of all gradients so far")
def fit_optimizer(x, y, a0, b0, lr, n_epochs):
    a = torch.tensor([a0], dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor([b0], dtype=x.dtype, device=x.device, requires_grad=True)
    optimizer = optim.SGD([a, b], lr=lr)
    for _ in range(n_epochs):
        ((a + b * x - y) ** 2).mean().backward()
        optimizer.step()
    return a, b


@decoy("zero_grad() between backward and step: the step sees no gradient")
def fit_optimizer(x, y, a0, b0, lr, n_epochs):
    a = torch.tensor([a0], dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor([b0], dtype=x.dtype, device=x.device, requires_grad=True)
    optimizer = optim.SGD([a, b], lr=lr)
    for _ in range(n_epochs):
        ((a + b * x - y) ** 2).mean().backward()
        optimizer.zero_grad()
        optimizer.step()
    return a, b


@decoy("momentum=0.9: no longer plain gradient descent")
def fit_optimizer(x, y, a0, b0, lr, n_epochs):
    a = torch.tensor([a0], dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor([b0], dtype=x.dtype, device=x.device, requires_grad=True)
    optimizer = optim.SGD([a, b], lr=lr, momentum=0.9)
    for _ in range(n_epochs):
        ((a + b * x - y) ** 2).mean().backward()
        optimizer.step()
        optimizer.zero_grad()
    return a, b


@decoy("weight decay pulls a and b towards 0")
def fit_optimizer(x, y, a0, b0, lr, n_epochs):
    a = torch.tensor([a0], dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor([b0], dtype=x.dtype, device=x.device, requires_grad=True)
    optimizer = optim.SGD([a, b], lr=lr, weight_decay=1e-2)
    for _ in range(n_epochs):
        ((a + b * x - y) ** 2).mean().backward()
        optimizer.step()
        optimizer.zero_grad()
    return a, b


@decoy("Adam instead of SGD")
def fit_optimizer(x, y, a0, b0, lr, n_epochs):
    a = torch.tensor([a0], dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor([b0], dtype=x.dtype, device=x.device, requires_grad=True)
    optimizer = optim.Adam([a, b], lr=lr)
    for _ in range(n_epochs):
        ((a + b * x - y) ** 2).mean().backward()
        optimizer.step()
        optimizer.zero_grad()
    return a, b


@decoy("the learning rate hard-coded to 0.01")
def fit_optimizer(x, y, a0, b0, lr, n_epochs):
    a = torch.tensor([a0], dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor([b0], dtype=x.dtype, device=x.device, requires_grad=True)
    optimizer = optim.SGD([a, b], lr=0.01)
    for _ in range(n_epochs):
        ((a + b * x - y) ** 2).mean().backward()
        optimizer.step()
        optimizer.zero_grad()
    return a, b


@decoy("made on the CPU, then moved: the optimizer holds non-leaf copies")
def fit_optimizer(x, y, a0, b0, lr, n_epochs):
    a = torch.tensor([a0], dtype=x.dtype, requires_grad=True).to(x.device)
    b = torch.tensor([b0], dtype=x.dtype, requires_grad=True).to(x.device)
    optimizer = optim.SGD([a, b], lr=lr)
    for _ in range(n_epochs):
        ((a + b * x - y) ** 2).mean().backward()
        optimizer.step()
        optimizer.zero_grad()
    return a, b


@alternative("zero_grad at the top of each epoch, the parameters in a list")
def fit_optimizer(x, y, a0, b0, lr, n_epochs):
    params = [torch.tensor([v], dtype=x.dtype, device=x.device, requires_grad=True) for v in (a0, b0)]
    optimizer = optim.SGD(params, lr=lr, momentum=0.0)
    for _ in range(n_epochs):
        optimizer.zero_grad(set_to_none=False)
        a, b = params
        ((a + b * x - y) ** 2).mean().backward()
        optimizer.step()
    return params[0], params[1]


@alternative("a fresh SGD each epoch: plain SGD keeps no state between steps")
def fit_optimizer(x, y, a0, b0, lr, n_epochs):
    a = torch.tensor([a0], dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor([b0], dtype=x.dtype, device=x.device, requires_grad=True)
    for _ in range(n_epochs):
        optimizer = optim.SGD([{"params": [a]}, {"params": [b]}], lr=lr)
        ((a + b * x - y) ** 2).mean().backward()
        optimizer.step()
        optimizer.zero_grad()
    return a, b


# ---------------------------------------------------------------- fit_loss_fn


@decoy("reduction='sum': every gradient N times larger")
def fit_loss_fn(x, y, a0, b0, lr, n_epochs):
    a = torch.tensor([a0], dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor([b0], dtype=x.dtype, device=x.device, requires_grad=True)
    optimizer = optim.SGD([a, b], lr=lr)
    loss_fn = nn.MSELoss(reduction="sum")
    for _ in range(n_epochs):
        loss_fn(a + b * x, y).backward()
        optimizer.step()
        optimizer.zero_grad()
    return a, b


@decoy("the functional mse_loss, not an nn.MSELoss module")
def fit_loss_fn(x, y, a0, b0, lr, n_epochs):
    a = torch.tensor([a0], dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor([b0], dtype=x.dtype, device=x.device, requires_grad=True)
    optimizer = optim.SGD([a, b], lr=lr)
    for _ in range(n_epochs):
        nn.functional.mse_loss(a + b * x, y).backward()
        optimizer.step()
        optimizer.zero_grad()
    return a, b


@decoy("the arguments swapped: loss_fn(y, prediction)")
def fit_loss_fn(x, y, a0, b0, lr, n_epochs):
    a = torch.tensor([a0], dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor([b0], dtype=x.dtype, device=x.device, requires_grad=True)
    optimizer = optim.SGD([a, b], lr=lr)
    loss_fn = nn.MSELoss()
    for _ in range(n_epochs):
        loss_fn(y, a + b * x).backward()
        optimizer.step()
        optimizer.zero_grad()
    return a, b


@decoy("L1Loss: the mean absolute error is another loss")
def fit_loss_fn(x, y, a0, b0, lr, n_epochs):
    a = torch.tensor([a0], dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor([b0], dtype=x.dtype, device=x.device, requires_grad=True)
    optimizer = optim.SGD([a, b], lr=lr)
    loss_fn = nn.L1Loss()
    for _ in range(n_epochs):
        loss_fn(a + b * x, y).backward()
        optimizer.step()
        optimizer.zero_grad()
    return a, b


@decoy("the loss computed twice per epoch (once more to log it): two calls per epoch")
def fit_loss_fn(x, y, a0, b0, lr, n_epochs):
    a = torch.tensor([a0], dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor([b0], dtype=x.dtype, device=x.device, requires_grad=True)
    optimizer = optim.SGD([a, b], lr=lr)
    loss_fn = nn.MSELoss()
    history = []
    for _ in range(n_epochs):
        loss_fn(a + b * x, y).backward()
        optimizer.step()
        optimizer.zero_grad()
        history.append(loss_fn(a + b * x, y).item())
    return a, b


@decoy("no zero_grad(): gradients add up")
def fit_loss_fn(x, y, a0, b0, lr, n_epochs):
    a = torch.tensor([a0], dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor([b0], dtype=x.dtype, device=x.device, requires_grad=True)
    optimizer = optim.SGD([a, b], lr=lr)
    loss_fn = nn.MSELoss()
    for _ in range(n_epochs):
        loss_fn(a + b * x, y).backward()
        optimizer.step()
    return a, b


@alternative("the loss module created inside the loop, reduction spelled out, both sides flattened")
def fit_loss_fn(x, y, a0, b0, lr, n_epochs):
    a = torch.tensor([a0], dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor([b0], dtype=x.dtype, device=x.device, requires_grad=True)
    optimizer = optim.SGD([a, b], lr=lr)
    for _ in range(n_epochs):
        optimizer.zero_grad()
        loss = nn.MSELoss(reduction="mean")((b * x + a).view(-1), y.view(-1))
        loss.backward()
        optimizer.step()
    return a, b


@alternative("the loss module called with keywords, input= and target=; optimizer.step(closure)")
def fit_loss_fn(x, y, a0, b0, lr, n_epochs):
    a = torch.tensor([a0], dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor([b0], dtype=x.dtype, device=x.device, requires_grad=True)
    optimizer = optim.SGD([a, b], lr=lr)
    loss_fn = nn.MSELoss()

    def closure():
        optimizer.zero_grad()
        loss = loss_fn(input=a + b * x, target=y)
        loss.backward()
        return loss

    for _ in range(n_epochs):
        optimizer.step(closure)
    return a, b


# ---------------------------------------------------------------- ManualLinearRegression


@decoy("plain tensors that require grad: not parameters, not saved, not moved")
class ManualLinearRegression(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.randn(1, requires_grad=True)
        self.b = torch.randn(1, requires_grad=True)

    def forward(self, x):
        return self.a + self.b * x


@decoy("uniform starts (torch.rand), not a standard normal")
class ManualLinearRegression(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.rand(1))
        self.b = nn.Parameter(torch.rand(1))

    def forward(self, x):
        return self.a + self.b * x


@decoy("zeros: every model starts alike whatever the seed")
class ManualLinearRegression(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.zeros(1))
        self.b = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.a + self.b * x


@decoy("float64 parameters")
class ManualLinearRegression(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.randn(1, dtype=torch.float64))
        self.b = nn.Parameter(torch.randn(1, dtype=torch.float64))

    def forward(self, x):
        return self.a + self.b * x


@decoy("0-d parameters, not shape (1,)")
class ManualLinearRegression(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.randn(()))
        self.b = nn.Parameter(torch.randn(()))

    def forward(self, x):
        return self.a + self.b * x


@decoy("a and b swapped in forward: a * x + b")
class ManualLinearRegression(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.randn(1))
        self.b = nn.Parameter(torch.randn(1))

    def forward(self, x):
        return self.a * x + self.b


@decoy("a fixed seed inside __init__: torch.manual_seed(42) makes every model alike")
class ManualLinearRegression(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(42)
        self.a = nn.Parameter(torch.randn(1))
        self.b = nn.Parameter(torch.randn(1))

    def forward(self, x):
        return self.a + self.b * x


@alternative("register_parameter, b drawn before a, torch.addcmul in forward")
class ManualLinearRegression(nn.Module):
    def __init__(self):
        super().__init__()
        b = torch.randn(1)
        a = torch.randn(1)
        self.register_parameter("a", nn.Parameter(a))
        self.register_parameter("b", nn.Parameter(b))

    def forward(self, x):
        return torch.addcmul(self.a, self.b, x)


# ---------------------------------------------------------------- LayerLinearRegression


@decoy("the layer is created in forward: a new, untrained layer every call")
class LayerLinearRegression(nn.Module):
    def forward(self, x):
        self.linear = nn.Linear(1, 1)
        return self.linear(x)


@decoy("wrapped in a Sequential: model.linear is not the layer, the keys are 'linear.0.weight'")
class LayerLinearRegression(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Sequential(nn.Linear(1, 1))

    def forward(self, x):
        return self.linear(x)


@decoy("the layer under another name: 'fc.weight', not 'linear.weight'")
class LayerLinearRegression(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(1, 1)

    def forward(self, x):
        return self.fc(x)


@decoy("flattens the output to shape (N,)")
class LayerLinearRegression(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, x):
        return self.linear(x).squeeze(-1)


@decoy("a ReLU after the layer: negative predictions become 0")
class LayerLinearRegression(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, x):
        return torch.relu(self.linear(x))


@alternative("the layer's weight and bias used through the functional form")
class LayerLinearRegression(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(in_features=1, out_features=1, bias=True)

    def forward(self, x):
        return nn.functional.linear(x, self.linear.weight, self.linear.bias)


# ---------------------------------------------------------------- make_train_step


@decoy("never switches to training mode: after validation the model trains in eval mode")
def make_train_step(model, loss_fn, optimizer):
    def train_step(x, y):
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    return train_step


@decoy("switches to training mode once, when the step is built: a validation pass in between is not undone")
def make_train_step(model, loss_fn, optimizer):
    model.train()

    def train_step(x, y):
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    return train_step


@decoy("switches to training mode after the forward pass")
def make_train_step(model, loss_fn, optimizer):
    def train_step(x, y):
        loss = loss_fn(model(x), y)
        model.train()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    return train_step


@decoy("no zero_grad(): each step adds the earlier steps' gradients")
def make_train_step(model, loss_fn, optimizer):
    def train_step(x, y):
        model.train()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    return train_step


@decoy("returns the loss tensor, graph and all, not a float")
def make_train_step(model, loss_fn, optimizer):
    def train_step(x, y):
        model.train()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss

    return train_step


@decoy("returns the loss after the update, recomputed")
def make_train_step(model, loss_fn, optimizer):
    def train_step(x, y):
        model.train()
        loss_fn(model(x), y).backward()
        optimizer.step()
        optimizer.zero_grad()
        with torch.no_grad():
            return loss_fn(model(x), y).item()

    return train_step


@decoy("the loss arguments swapped: loss_fn(y, prediction)")
def make_train_step(model, loss_fn, optimizer):
    def train_step(x, y):
        model.train()
        loss = loss_fn(y, model(x))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    return train_step


@decoy("trains once while building the step")
def make_train_step(model, loss_fn, optimizer):
    def train_step(x, y):
        model.train()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    first = next(iter(model.parameters()))
    train_step(torch.ones(1, 1, device=first.device), torch.ones(1, 1, device=first.device))
    return train_step


@alternative("zero_grad first, then backward and step; float() of the detached loss")
def make_train_step(model, loss_fn, optimizer):
    def train_step(x, y):
        model.train()
        optimizer.zero_grad()
        prediction = model(x)
        loss = loss_fn(prediction, y)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return train_step


@alternative("a lambda-free callable object holding the three")
def make_train_step(model, loss_fn, optimizer):
    class Step:
        def __call__(self, x, y):
            model.train(True)
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return loss.item()

    return Step()


# ---------------------------------------------------------------- make_loader


@decoy(
    "shuffle=True without a generator: the order follows the global RNG",
    cite="https://discuss.pytorch.org/t/reproducibility-with-all-the-bells-and-whistles/81097",
)
def make_loader(x, y, batch_size, seed):
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)


@decoy("seeds the global RNG: the order still changes when other code draws in between, and the caller's RNG is reset")
def make_loader(x, y, batch_size, seed):
    torch.manual_seed(seed)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)


@decoy("shuffle=False: the same order every epoch")
def make_loader(x, y, batch_size, seed):
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)


@decoy("the generator seeded with 0 whatever the seed")
def make_loader(x, y, batch_size, seed):
    return DataLoader(
        TensorDataset(x, y), batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(0)
    )


@decoy("one permutation drawn up front: shuffled once, the same order every epoch")
def make_loader(x, y, batch_size, seed):
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed)).tolist()
    return DataLoader(Subset(TensorDataset(x, y), order), batch_size=batch_size)


@decoy("drop_last=True: the last, smaller batch is lost")
def make_loader(x, y, batch_size, seed):
    return DataLoader(
        TensorDataset(x, y),
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        generator=torch.Generator().manual_seed(seed),
    )


@alternative("a RandomSampler with its own generator (the loader itself has none)")
def make_loader(x, y, batch_size, seed):
    generator = torch.Generator()
    generator.manual_seed(seed)
    sampler = RandomSampler(TensorDataset(x, y), generator=generator)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, sampler=sampler)


@alternative("a BatchSampler over a seeded RandomSampler")
def make_loader(x, y, batch_size, seed):
    dataset = TensorDataset(x, y)
    sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    return DataLoader(
        dataset,
        batch_sampler=BatchSampler(sampler, batch_size, drop_last=False),
        generator=torch.Generator().manual_seed(seed),
    )


# ---------------------------------------------------------------- train_minibatches


@decoy("one pass whatever n_epochs")
def train_minibatches(train_step, loader, n_epochs, device):
    return [train_step(xb.to(device), yb.to(device)) for xb, yb in loader]


@decoy("never moves the batches: they stay on the CPU")
def train_minibatches(train_step, loader, n_epochs, device):
    return [train_step(xb, yb) for _ in range(n_epochs) for xb, yb in loader]


@decoy("discards .to(device): the moved copies are thrown away")
def train_minibatches(train_step, loader, n_epochs, device):
    losses = []
    for _ in range(n_epochs):
        for xb, yb in loader:
            xb.to(device)
            yb.to(device)
            losses.append(train_step(xb, yb))
    return losses


@decoy("one iterator for all epochs: the second epoch finds it exhausted")
def train_minibatches(train_step, loader, n_epochs, device):
    batches = iter(loader)
    losses = []
    for _ in range(n_epochs):
        for xb, yb in batches:
            losses.append(train_step(xb.to(device), yb.to(device)))
    return losses


@decoy("the batches listed once: every epoch repeats the first epoch's order")
def train_minibatches(train_step, loader, n_epochs, device):
    batches = list(loader)
    return [train_step(xb.to(device), yb.to(device)) for _ in range(n_epochs) for xb, yb in batches]


@decoy("x and y swapped when handed to train_step")
def train_minibatches(train_step, loader, n_epochs, device):
    return [train_step(yb.to(device), xb.to(device)) for _ in range(n_epochs) for xb, yb in loader]


@decoy("keeps each epoch's mean loss, not every batch's")
def train_minibatches(train_step, loader, n_epochs, device):
    losses = []
    for _ in range(n_epochs):
        epoch = [train_step(xb.to(device), yb.to(device)) for xb, yb in loader]
        losses.append(sum(epoch) / len(epoch))
    return losses


@alternative("itertools.chain over the epochs' passes")
def train_minibatches(train_step, loader, n_epochs, device):
    batches = itertools.chain.from_iterable(loader for _ in range(n_epochs))
    return [train_step(*(t.to(device) for t in batch)) for batch in batches]


@alternative("a while loop and non_blocking copies")
def train_minibatches(train_step, loader, n_epochs, device):
    losses, epoch = [], 0
    while epoch < n_epochs:
        for batch in loader:
            xb, yb = batch
            losses.append(float(train_step(xb.to(device, non_blocking=True), yb.to(device, non_blocking=True))))
        epoch += 1
    return losses


# ---------------------------------------------------------------- validate


@decoy("no eval(): dropout and batch norm keep their training behaviour")
def validate(model, loss_fn, loader, device):
    with torch.no_grad():
        losses = [loss_fn(model(xb.to(device)), yb.to(device)).item() for xb, yb in loader]
    return float(np.mean(losses))


@decoy("no no_grad(): a graph is built for every batch")
def validate(model, loss_fn, loader, device):
    model.eval()
    losses = [loss_fn(model(xb.to(device)), yb.to(device)).item() for xb, yb in loader]
    return float(np.mean(losses))


@decoy("weights each batch by its size: the mean over samples, not over batches")
def validate(model, loss_fn, loader, device):
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for xb, yb in loader:
            total += loss_fn(model(xb.to(device)), yb.to(device)).item() * len(xb)
            count += len(xb)
    return total / count


@decoy("returns np.mean of the losses kept as tensors: a 0-d array, not a float")
def validate(model, loss_fn, loader, device):
    model.eval()
    with torch.no_grad():
        losses = [loss_fn(model(xb.to(device)), yb.to(device)) for xb, yb in loader]
    return np.asarray(torch.stack(losses).mean())


@decoy("returns a tensor, not a float")
def validate(model, loss_fn, loader, device):
    model.eval()
    with torch.no_grad():
        return torch.stack([loss_fn(model(xb.to(device)), yb.to(device)) for xb, yb in loader]).mean()


@decoy("never moves the batches to the device")
def validate(model, loss_fn, loader, device):
    model.eval()
    with torch.no_grad():
        losses = [loss_fn(model(xb), yb).item() for xb, yb in loader]
    return float(np.mean(losses))


@decoy("turns autograd off for the caller and never back on")
def validate(model, loss_fn, loader, device):
    model.eval()
    torch.set_grad_enabled(False)
    losses = [loss_fn(model(xb.to(device)), yb.to(device)).item() for xb, yb in loader]
    return float(np.mean(losses))


@decoy("puts the model back in training mode: the docstring leaves it in eval mode")
def validate(model, loss_fn, loader, device):
    model.eval()
    with torch.no_grad():
        losses = [loss_fn(model(xb.to(device)), yb.to(device)).item() for xb, yb in loader]
    model.train()
    return float(np.mean(losses))


@decoy("zeroes the gradients 'to be safe': the caller's stored .grad is lost")
def validate(model, loss_fn, loader, device):
    model.eval()
    model.zero_grad()
    with torch.no_grad():
        losses = [loss_fn(model(xb.to(device)), yb.to(device)).item() for xb, yb in loader]
    return float(np.mean(losses))


@decoy("the loss arguments swapped: loss_fn(y_batch, prediction)")
def validate(model, loss_fn, loader, device):
    model.eval()
    with torch.no_grad():
        losses = [loss_fn(yb.to(device), model(xb.to(device))).item() for xb, yb in loader]
    return float(np.mean(losses))


@alternative("np.mean of the batch floats, returned as NumPy's float64 (a float subclass)")
def validate(model, loss_fn, loader, device):
    model.eval()
    with torch.no_grad():
        return np.mean([loss_fn(model(xb.to(device)), yb.to(device)).item() for xb, yb in loader])


@alternative("inference_mode, and a running sum")
def validate(model, loss_fn, loader, device):
    model.train(False)
    total, n = 0.0, 0
    with torch.inference_mode():
        for xb, yb in loader:
            total += float(loss_fn(model(xb.to(device)), yb.to(device)))
            n += 1
    return total / n


@alternative("torch.no_grad as a decorator, the batch losses stacked")
def validate(model, loss_fn, loader, device):
    @torch.no_grad()
    def batch_loss(xb, yb):
        return loss_fn(model(xb.to(device)), yb.to(device)).reshape(())

    model.eval()
    return torch.stack([batch_loss(xb, yb).cpu() for xb, yb in loader]).mean().item()
