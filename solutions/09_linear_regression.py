"""Kata 09: linear regression, step by step.

One tiny problem, y = a + b*x, solved again and again while PyTorch takes over one piece of the
work at a time: gradients computed by hand in NumPy, then by autograd, the update by an optimizer,
the loss by a loss module, the model by an nn.Module (first holding its own parameters, then built
from a layer), one training step wrapped in a closure, mini-batches from a DataLoader, and a
validation loop that must not train. Every step lands on the same least-squares line (a ~ 1.02,
b ~ 1.97 for the data of `make_data`). Run `dojo` to see which exercise is next and `dojo hint 09`
when stuck.
"""

from collections.abc import Callable

import numpy as np
import torch
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset


def make_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The kata's data (given, nothing to do): 100 points of y = 1 + 2x + noise, split 80/20.

    x ~ U[0, 1), y = 1 + 2x + 0.1 * N(0, 1), drawn with NumPy's seed 42, then shuffled and split
    into 80 training and 20 validation points. Returns `(x_train, y_train, x_val, y_val)`, NumPy
    float64 arrays of shape (80, 1), (80, 1), (20, 1), (20, 1). For PyTorch, convert with
    `torch.from_numpy(x_train).float()` (float32, the dtype of model parameters).
    """
    rng_state = np.random.get_state()
    try:
        np.random.seed(42)
        x = np.random.rand(100, 1)
        y = 1 + 2 * x + 0.1 * np.random.randn(100, 1)
        idx = np.arange(100)
        np.random.shuffle(idx)
    finally:
        np.random.set_state(rng_state)  # leave the caller's global NumPy RNG as it was
    train_idx, val_idx = idx[:80], idx[80:]
    return x[train_idx], y[train_idx], x[val_idx], y[val_idx]


def fit_numpy(x: np.ndarray, y: np.ndarray, a0: float, b0: float, lr: float, n_epochs: int) -> tuple[float, float]:
    """Fit y = a + b*x by batch gradient descent in NumPy; return the final `(a, b)` as Python floats.

    `x` and `y` are float arrays of shape (N, 1). Start from `a = a0`, `b = b0` and take
    `n_epochs` steps (none when it is 0: the result is then `(a0, b0)`, as floats). Each step
    moves a and b together, by `lr` times the gradient of the mean squared error over all N points,
    (1/N) * sum((a + b*x - y)²), both partial derivatives taken at the same current (a, b), and
    against the gradient. Deriving that gradient is the exercise: the later exercises hand it to
    autograd. `x` and `y` are left unchanged.

    The traps, by their symptoms: after many epochs the fit lands on the right line, but after a
    few it is somewhere else (a gradient too small or too large by a constant factor is another
    step size in disguise); or a and b grow without bound (a step along the gradient, not
    against it).
    """
    # BEGIN SOLUTION
    a, b = float(a0), float(b0)
    for _ in range(n_epochs):
        error = a + b * x - y
        # d/da mean(e**2) = 2*mean(e); d/db mean(e**2) = 2*mean(e * x): the chain rule through e.
        a_grad = 2 * error.mean()
        b_grad = 2 * (x * error).mean()
        # Both gradients come from the same (old) a and b before either is updated.
        a, b = a - lr * a_grad, b - lr * b_grad
    return float(a), float(b)
    # END SOLUTION


def fit_autograd(
    x: torch.Tensor, y: torch.Tensor, a0: float, b0: float, lr: float, n_epochs: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same gradient descent on the mean squared error, with autograd computing the gradients.

    `x` and `y` are float tensors of shape (N, 1) on any device, with any float dtype. Return
    `(a, b)`: tensors of shape (1,) with x's dtype and device, holding the values after `n_epochs`
    steps from `a0` and `b0` (the same steps as `fit_numpy`'s, to float precision). They are leaf
    tensors that require grad, the very tensors whose gradients autograd computed in every epoch,
    so that the caller can go on training them. Each epoch's gradient is found by a backward pass
    through the loss. `x` and `y` are left as they were (values, no `requires_grad`, no `.grad`).

    The traps, by their symptoms: the update raises "a leaf Variable that requires grad is being
    used in an in-place operation"; after the first epoch `a.grad` is None (the name `a` now
    points at a computed tensor, not at the leaf); every step after the first is too long (the
    gradients of all epochs so far add up); the tensors are made, then moved to x's device, and
    their `.grad` stays None.
    """
    # BEGIN SOLUTION
    a = torch.tensor([a0], dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor([b0], dtype=x.dtype, device=x.device, requires_grad=True)
    for _ in range(n_epochs):
        loss = ((a + b * x - y) ** 2).mean()
        loss.backward()
        # The update is not part of the model: keep it out of the graph.
        with torch.no_grad():
            a -= lr * a.grad
            b -= lr * b.grad
        # backward() adds to .grad; start the next epoch from zero.
        a.grad.zero_()
        b.grad.zero_()
    return a, b
    # END SOLUTION


def fit_optimizer(
    x: torch.Tensor, y: torch.Tensor, a0: float, b0: float, lr: float, n_epochs: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same again, with a `torch.optim.SGD` optimizer doing the update; return `(a, b)`.

    Inputs and result as in `fit_autograd`: a and b are leaf tensors of shape (1,) that require
    grad, with x's dtype and device, holding the values after `n_epochs` steps. Each epoch's update
    is one step of a `torch.optim.SGD` over exactly a and b, with learning rate `lr` and plain
    steps (no momentum, no weight decay), so that the result is still exact gradient descent.
    `x` and `y` are left as they were.

    The trap, by its symptom: every step after the first is too long, because the optimizer
    updates a and b but leaves their gradients as they are.
    """
    # BEGIN SOLUTION
    a = torch.tensor([a0], dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor([b0], dtype=x.dtype, device=x.device, requires_grad=True)
    optimizer = optim.SGD([a, b], lr=lr)
    for _ in range(n_epochs):
        loss = ((a + b * x - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return a, b
    # END SOLUTION


def fit_loss_fn(
    x: torch.Tensor, y: torch.Tensor, a0: float, b0: float, lr: float, n_epochs: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same again, with an `nn.MSELoss` module computing the loss; return `(a, b)`.

    Inputs, result and update as in `fit_optimizer`. Each epoch's loss comes from calling an
    `nn.MSELoss` module once, on the prediction and `y` (in that order), with the mean over the N
    points as its reduction, so that the steps are still those of `fit_numpy`. `x` and `y` are
    left as they were.

    The trap, by its symptom: the fit runs away, or lands elsewhere after a few epochs, because a
    loss that adds up the N squared errors instead of averaging them makes every gradient N times
    larger.
    """
    # BEGIN SOLUTION
    a = torch.tensor([a0], dtype=x.dtype, device=x.device, requires_grad=True)
    b = torch.tensor([b0], dtype=x.dtype, device=x.device, requires_grad=True)
    optimizer = optim.SGD([a, b], lr=lr)
    loss_fn = nn.MSELoss()
    for _ in range(n_epochs):
        loss = loss_fn(a + b * x, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return a, b
    # END SOLUTION


class ManualLinearRegression(nn.Module):
    """The model as an nn.Module that holds its own parameters: `forward(x) = a + b * x`.

    The module's parameters are `a` and `b` (attributes `model.a`, `model.b`), each a float32
    tensor of shape (1,) that requires grad, with a random starting value drawn from a standard
    normal distribution by PyTorch's global random number generator (so that after the same
    `torch.manual_seed` two models start alike, and after different seeds differently).
    `list(model.parameters())` holds exactly those two, the state_dict keys are "a" and "b", and
    moving the model to a device moves both. `forward` takes x of shape (N, 1) and returns a
    tensor of shape (N, 1) on x's device.

    The trap, by its symptom: `model.a` requires grad and even gets a gradient, yet
    `list(model.parameters())` and the state_dict are empty, an optimizer refuses the model
    ("optimizer got an empty parameter list"), and after moving the model to a GPU the forward
    pass fails with tensors on two devices.
    """

    def __init__(self) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.a = nn.Parameter(torch.randn(1))
        self.b = nn.Parameter(torch.randn(1))
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        return self.a + self.b * x
        # END SOLUTION


class LayerLinearRegression(nn.Module):
    """The same model, built from PyTorch's own fully connected layer instead of hand-made
    parameters: `model.linear` is an instance of that layer class, with one input feature and one
    output feature. Its bias plays the part of a, its weight (shape (1, 1)) the part of b.

    The model's parameters are the layer's, under the keys "linear.weight" and "linear.bias" (in
    `named_parameters()` and the state_dict). `forward` takes x of shape (N, 1) and returns the
    layer's output for it, of shape (N, 1): bias + weight * x. The model computes with the same
    layer on every call, so training its parameters changes what it computes.

    The trap, by its symptom: the model's output changes from one call to the next on the same
    input, its parameter list is empty, and training does nothing.
    """

    def __init__(self) -> None:
        super().__init__()
        # BEGIN SOLUTION
        self.linear = nn.Linear(1, 1)
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        return self.linear(x)
        # END SOLUTION


def make_train_step(
    model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], optimizer: optim.Optimizer
) -> Callable[[torch.Tensor, torch.Tensor], float]:
    """Return a function `train_step(x, y)` that performs one training step and returns the loss.

    The returned function remembers `model`, `loss_fn` and `optimizer`, so that the training loop
    only hands it a batch (x and y already on the model's device). Building it trains nothing.
    Each call:
    - runs the model on x in training mode, whatever mode the model was left in (a validation
      pass leaves it in eval mode), and leaves it in training mode;
    - computes the loss as `loss_fn(prediction, y)`, in that order;
    - takes one optimizer step with the gradient of that loss, and of that loss only: successive
      calls do not mix their gradients;
    - returns the loss computed before the update, as a Python float (a tensor would keep its
      whole graph alive in every list it is appended to).
    """

    # BEGIN SOLUTION
    def train_step(x: torch.Tensor, y: torch.Tensor) -> float:
        model.train()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    return train_step
    # END SOLUTION


def make_loader(x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int) -> DataLoader:
    """Return a `torch.utils.data.DataLoader` of mini-batches `(x_batch, y_batch)` over the rows of
    `x` and `y`.

    `x` and `y` have the same number of rows; row i of `y_batch` is the row of `y` that goes with
    row i of `x_batch`. Each pass over the loader (an epoch) visits every row exactly once, in
    batches of `batch_size` rows (the last one smaller when the rows do not divide evenly), in a
    shuffled order that changes from one epoch to the next. The orders depend on `seed` and on
    nothing else: two loaders made with the same seed give the same orders, whatever other code
    drew random numbers in between, and different seeds give different orders.

    The trap, by its symptom: the same seed gives another order when unrelated code (a dropout
    layer, another loader) draws a random number before the loop runs.
    """
    # BEGIN SOLUTION
    dataset = TensorDataset(x, y)
    # The sampler draws each epoch's permutation from this generator, not from the global RNG.
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator)
    # END SOLUTION


def train_minibatches(
    train_step: Callable[[torch.Tensor, torch.Tensor], float],
    loader: DataLoader,
    n_epochs: int,
    device: torch.device | str,
) -> list[float]:
    """Train for `n_epochs` epochs of mini-batches; return every batch's loss, in order.

    Each epoch is a fresh, complete pass over `loader` (so a shuffling loader gives a fresh order).
    Each batch `(x_batch, y_batch)` is moved to `device` (the loader gives CPU tensors; the model
    may live on a GPU) and handed to `train_step(x_batch, y_batch)`, which returns the batch's
    loss as a float. The result is a list of those floats, one per batch in the order trained:
    `n_epochs * len(loader)` of them (an empty list for 0 epochs).

    The trap, by its symptom: training on a GPU fails with "Expected all tensors to be on the
    same device".
    """
    # BEGIN SOLUTION
    losses = []
    for _ in range(n_epochs):
        for x_batch, y_batch in loader:
            losses.append(train_step(x_batch.to(device), y_batch.to(device)))
    return losses
    # END SOLUTION


def validate(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    loader: DataLoader,
    device: torch.device | str,
) -> float:
    """Return the mean validation loss of `model` over `loader`, as a Python float, without training.

    Each batch `(x_batch, y_batch)` is moved to `device`, and its loss is `loss_fn(prediction,
    y_batch)` for the model's prediction on `x_batch`; the result is the mean of the batch
    losses, each batch counting once whatever its size. The model predicts in eval mode (dropout
    and batch norm in their inference behaviour) and is left in eval mode afterwards (the next
    training step switches it back). No autograd graph is recorded during the pass, and the
    caller's own autograd setting is as it was afterwards. Validation measures the model without
    changing it: its parameters and their stored `.grad` (None or values) are as they were.

    The traps, by their symptoms: the validation loss changes from one call to the next on the
    same model (dropout still active); memory grows during validation (a graph built for a
    backward pass that never comes); the model's parameters move during validation.
    """
    # BEGIN SOLUTION
    model.eval()
    losses = []
    with torch.no_grad():
        for x_batch, y_batch in loader:
            prediction = model(x_batch.to(device))
            losses.append(loss_fn(prediction, y_batch.to(device)).item())
    return float(np.mean(losses))
    # END SOLUTION
