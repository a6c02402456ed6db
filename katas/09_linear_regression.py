"""Kata 09: linear regression, step by step.

One tiny problem, y = a + b*x, solved again and again while PyTorch takes over one piece of the
work at a time: gradients computed by hand in NumPy, then by autograd, the update by an optimizer,
the loss by a loss module, the model by an nn.Module (first with its own nn.Parameters, then with
an nn.Linear inside), one training step wrapped in a closure, mini-batches from a DataLoader, and
a validation loop that must not train. Every step lands on the same least-squares line
(a ~ 1.02, b ~ 1.97 for the data of `make_data`). Run `dojo` to see which exercise is next and
`dojo hint 09` when stuck.
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
    """Fit y = a + b*x by batch gradient descent in plain NumPy; return the final `(a, b)` as floats.

    `x` and `y` are arrays of shape (N, 1). Start from `a = a0`, `b = b0`; each epoch computes
    the mean squared error over all N points, its gradient by hand, and takes one step of size
    `lr` against the gradient. No torch here: writing the gradient yourself is what the later
    exercises hand over to autograd.

    MSE = mean((a + b*x - y)**2). Differentiate it: both partial derivatives carry a factor 2 and
    a mean. Leave one out and the fit still converges, only slower, to the wrong point after a
    fixed number of epochs; get the sign wrong and it runs away. Do not modify `x` or `y`.
    """
    # TODO: batch gradient descent in NumPy with hand-written gradients
    raise NotImplementedError("09_linear_regression.fit_numpy is not done yet (stuck? dojo hint 09 fit_numpy)")


def fit_autograd(
    x: torch.Tensor, y: torch.Tensor, a0: float, b0: float, lr: float, n_epochs: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same gradient descent, with autograd computing the gradients; return `(a, b)`.

    `x` and `y` are float tensors of shape (N, 1) on any device. Create `a` and `b` as tensors of
    shape (1,) holding `a0` and `b0`, with x's dtype and device, that require grad; each epoch
    computes the MSE, calls `backward()`, updates a and b in place, then zeroes their gradients.
    Return a and b themselves: leaf tensors that still require grad.

    - The update must not be recorded by autograd: do it inside `torch.no_grad()`. An in-place
      update of a leaf that requires grad, outside it, raises a RuntimeError.
    - `a = a - lr * a.grad` makes a *new* tensor, no longer the leaf whose `.grad` autograd fills.
    - `.grad` accumulates across `backward()` calls: without zeroing it each epoch, every step uses
      the sum of all gradients so far.
    - `torch.randn(1, requires_grad=True).to(device)` is not a leaf either (the copy is); create
      the tensor directly on the device.
    """
    # TODO: the same with autograd: backward(), a no_grad update, zeroed gradients
    raise NotImplementedError("09_linear_regression.fit_autograd is not done yet (stuck? dojo hint 09 fit_autograd)")


def fit_optimizer(
    x: torch.Tensor, y: torch.Tensor, a0: float, b0: float, lr: float, n_epochs: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same again, with `torch.optim.SGD` doing the update; return `(a, b)`.

    Create a and b as in `fit_autograd`, then an `optim.SGD` over `[a, b]` with learning rate `lr`
    (no momentum). Each epoch: loss, `backward()`, `optimizer.step()`, `optimizer.zero_grad()`.
    The optimizer does the `no_grad` update for you, for any number of parameters; it does not
    zero the gradients unless asked.
    """
    # TODO: the same with optim.SGD doing the update
    raise NotImplementedError("09_linear_regression.fit_optimizer is not done yet (stuck? dojo hint 09 fit_optimizer)")


def fit_loss_fn(
    x: torch.Tensor, y: torch.Tensor, a0: float, b0: float, lr: float, n_epochs: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same again, with `nn.MSELoss` computing the loss; return `(a, b)`.

    As `fit_optimizer`, but the loss comes from an `nn.MSELoss()` module, created once before the
    loop and called each epoch as `loss_fn(prediction, y)`. Its default reduction, 'mean', is
    what the gradient step size assumes; `reduction='sum'` multiplies the gradient by N.
    """
    # TODO: the same with nn.MSELoss computing the loss
    raise NotImplementedError("09_linear_regression.fit_loss_fn is not done yet (stuck? dojo hint 09 fit_loss_fn)")


class ManualLinearRegression(nn.Module):
    """The model as an nn.Module: y = a + b*x, with `a` and `b` its own parameters.

    In `__init__`, create `self.a` and `self.b` as `nn.Parameter`s of shape (1,), float32,
    drawn from `torch.randn` (so `torch.manual_seed` makes a model reproducible). In `forward`,
    return `a + b * x` for `x` of shape (N, 1).

    Wrapping a tensor in `nn.Parameter` and assigning it to an attribute registers it: it then
    appears in `model.parameters()` (what an optimizer takes), in `state_dict()` (what gets
    saved) and moves with `model.to(device)`. A plain tensor attribute, even one that requires
    grad, does none of these.
    """

    def __init__(self) -> None:
        super().__init__()
        # TODO (__init__): an nn.Module with its own nn.Parameters a and b
        raise NotImplementedError("09_linear_regression.ManualLinearRegression.__init__ is not done yet (stuck? dojo hint 09 ManualLinearRegression)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TODO (forward): an nn.Module with its own nn.Parameters a and b
        raise NotImplementedError("09_linear_regression.ManualLinearRegression.forward is not done yet (stuck? dojo hint 09 ManualLinearRegression)")


class LayerLinearRegression(nn.Module):
    """The same model, built from a layer: one `nn.Linear` with 1 input and 1 output feature.

    In `__init__`, create the layer as `self.linear`; in `forward`, return `self.linear(x)` for
    `x` of shape (N, 1). The layer's `bias` plays the part of a and its `weight` (shape (1, 1))
    the part of b. A module assigned to an attribute is a submodule: its parameters show up
    in the outer model's `parameters()` and `state_dict()` (as "linear.weight", "linear.bias").
    Create the layer in `__init__`: a layer created in `forward` is a new, untrained one every call.
    """

    def __init__(self) -> None:
        super().__init__()
        # TODO (__init__): the same model as a nested nn.Linear(1, 1)
        raise NotImplementedError("09_linear_regression.LayerLinearRegression.__init__ is not done yet (stuck? dojo hint 09 LayerLinearRegression)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TODO (forward): the same model as a nested nn.Linear(1, 1)
        raise NotImplementedError("09_linear_regression.LayerLinearRegression.forward is not done yet (stuck? dojo hint 09 LayerLinearRegression)")


def make_train_step(
    model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], optimizer: optim.Optimizer
) -> Callable[[torch.Tensor, torch.Tensor], float]:
    """Return a function `train_step(x, y)` that performs one training step and returns the loss.

    The returned function remembers `model`, `loss_fn` and `optimizer` (a closure), so the training
    loop only hands it a batch. One step: put the model in training mode (`model.train()`: a
    validation pass may have left it in eval mode), predict, compute `loss_fn(prediction, y)`,
    backpropagate, update with the optimizer and zero the gradients. Return the loss computed
    before the update as a Python float (`loss.item()`): a tensor would keep the whole graph
    alive in every list it is appended to.
    """

    # TODO: a closure that does one training step and returns the loss as a float
    raise NotImplementedError("09_linear_regression.make_train_step is not done yet (stuck? dojo hint 09 make_train_step)")


def make_loader(x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int) -> DataLoader:
    """Return a DataLoader of mini-batches `(x_batch, y_batch)` over the pairs of `x` and `y`.

    Wrap the tensors in a `TensorDataset` (it pairs row i of x with row i of y). The loader must
    shuffle, so each epoch visits the samples in a new order, and must be reproducible: give it
    its own `torch.Generator` seeded with `seed`, so the order depends on `seed` only, not on
    whatever else used the global random number generator before the loop ran.
    """
    # TODO: a shuffling DataLoader with its own seeded generator
    raise NotImplementedError("09_linear_regression.make_loader is not done yet (stuck? dojo hint 09 make_loader)")


def train_minibatches(
    train_step: Callable[[torch.Tensor, torch.Tensor], float],
    loader: DataLoader,
    n_epochs: int,
    device: torch.device | str,
) -> list[float]:
    """Train for `n_epochs` epochs of mini-batches; return every batch's loss, in order.

    Each epoch iterates over the whole `loader` again (a fresh pass, so a shuffling loader gives a
    fresh order); each batch `(x_batch, y_batch)` is moved to `device` (the data stays on the CPU,
    the model may live on a GPU) and handed to `train_step`, which returns the batch's loss as a
    float. The result has one float per batch: `n_epochs * len(loader)` of them.
    """
    # TODO: epochs of mini-batches: move each batch to the device, collect the losses
    raise NotImplementedError("09_linear_regression.train_minibatches is not done yet (stuck? dojo hint 09 train_minibatches)")


def validate(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    loader: DataLoader,
    device: torch.device | str,
) -> float:
    """Return the mean validation loss of `model` over `loader`, as a Python float, without training.

    For each batch: move it to `device`, predict, compute `loss_fn(prediction, y_batch)`, keep
    its value; return the mean of the batch losses (with equal-sized batches, the mean over all
    samples). Validation measures the model, it must not change it:
    - `model.eval()` first: layers such as dropout and batch norm behave differently in training.
    - run the batches under `torch.no_grad()`: no graph is built, no memory kept for a backward
      that never comes.
    - no `backward()`, no optimizer step: the parameters and their `.grad` stay as they were.
    """
    # TODO: mean validation loss under eval() and no_grad, without training
    raise NotImplementedError("09_linear_regression.validate is not done yet (stuck? dojo hint 09 validate)")
