"""Kata 08: modules, parameters and state.

An `nn.Module` is a container that knows its tensors: the parameters an optimizer trains, the
buffers it keeps (running statistics), the submodules it is built from, and whether it is in
training or evaluation mode. Everything PyTorch does for you (`parameters()`, `state_dict()`,
`.to(device)`, `train()`/`eval()`, saving and loading) only sees what was *registered*. Run `dojo`
to see which exercise is next and `dojo hint 08` when stuck.
"""

from __future__ import annotations

import os

import torch
from torch import nn


class ScaleShift(nn.Module):
    """A learnable per-feature scale and shift: `forward(x) = x * weight + bias`.

    `x` has shape (N, num_features). `weight` starts as ones and `bias` as zeros, both float32 of
    shape (num_features,), and both must be *parameters* named `weight` and `bias`, so that
    `list(module.parameters())` holds them, an optimizer trains them and `.to(device)` moves them.

    The tempting `self.weight = torch.ones(n, requires_grad=True)` is a plain tensor attribute:
    it gets gradients, but `parameters()` never lists it, so the optimizer never updates it.
    """

    def __init__(self, num_features: int) -> None:
        super().__init__()
        # BEGIN SOLUTION
        # Assigning an nn.Parameter to an attribute registers it (Module.__setattr__ does that).
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        # (N, F) * (F,) broadcasts over the batch.
        return x * self.weight + self.bias
        # END SOLUTION


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Return the number of scalar values in `model`'s parameters, as a Python int.

    Count the parameters of every submodule, however deeply nested, not only those the model
    holds itself (`model._parameters`) or those of its direct children. A parameter shared by two
    layers (tied weights) counts once; buffers (BatchNorm's running statistics) are not
    parameters. With `trainable_only=True`, count only parameters with `requires_grad=True`
    (frozen layers are left out). This is the "N parameters" figure printed for every model.
    """
    # BEGIN SOLUTION
    # parameters() recurses through all submodules and yields each Parameter object once.
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
    # END SOLUTION


def make_mlp(in_features: int, hidden_features: int, out_features: int) -> nn.Sequential:
    """Return an `nn.Sequential`: Linear(in -> hidden), ReLU, Linear(hidden -> out), with the
    layers *named* "hidden", "act" and "output".

    A plain `nn.Sequential(layer, layer, ...)` names its layers "0", "1", "2", so its state_dict
    keys are "0.weight", "2.bias"; named layers give "hidden.weight", "output.bias", readable
    keys that checkpoints and `model.hidden` can use. Pass an `OrderedDict` of name -> layer,
    or call `add_module(name, layer)` on an empty Sequential.
    """
    # BEGIN SOLUTION
    model = nn.Sequential()
    # add_module registers the layer under that name; Sequential runs layers in insertion order.
    model.add_module("hidden", nn.Linear(in_features, hidden_features))
    model.add_module("act", nn.ReLU())
    model.add_module("output", nn.Linear(hidden_features, out_features))
    return model
    # END SOLUTION


class LayerStack(nn.Module):
    """`depth` separate Linear(width -> width) layers, applied in order, each followed by ReLU:
    `x = relu(layer(x))` for each layer. Keep them in an attribute named `layers`, so the
    state_dict keys are "layers.0.weight", "layers.0.bias", "layers.1.weight", ...

    The number of layers is known only at run time, so they go in a container. A plain Python
    list hides them from the module: no parameters, nothing saved, nothing moved by `.to()`.
    `nn.ModuleList` registers each one. And `[nn.Linear(w, w)] * depth` is one layer listed
    `depth` times, not `depth` layers.
    """

    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        # BEGIN SOLUTION
        # A new Linear per iteration: each layer gets its own weights.
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        for layer in self.layers:
            x = torch.relu(layer(x))
        return x
        # END SOLUTION


def state_dict_keys(model: nn.Module) -> list[str]:
    """Return the names of everything `model` saves, as a list of str, in the order its
    `state_dict()` holds them.

    That is more than the parameters: a BatchNorm layer also saves its running statistics
    ("bn.running_mean", "bn.running_var", "bn.num_batches_tracked"), which are buffers. Buffers
    registered with `persistent=False` are not saved, so they are not in the list.
    """
    # BEGIN SOLUTION
    # The state_dict is the one source of truth: parameters and persistent buffers, module by module.
    return list(model.state_dict().keys())
    # END SOLUTION


class RunningCenter(nn.Module):
    """Subtract the mean of each feature, the way BatchNorm does (without the scaling).

    `x` has shape (N, num_features). Keep a running mean of the batches seen in training in a
    *buffer* named `running_mean` (float32 zeros of shape (num_features,) at first):
    - training mode (`self.training`): return `x - x.mean(0)` (the batch's own mean), and update
      `running_mean = (1 - momentum) * running_mean + momentum * x.mean(0)`;
    - eval mode: return `x - running_mean`, and leave `running_mean` as it is.

    A buffer (`self.register_buffer(name, tensor)`) is state but not a parameter: it is saved in
    the state_dict and moved by `.to()`, but the optimizer never sees it. A plain tensor attribute
    is neither saved nor moved; an `nn.Parameter` would be trained (and weight-decayed). Update
    the buffer without recording autograd history: the running mean is a statistic, and a buffer
    with a `grad_fn` keeps every past batch's graph alive.
    """

    def __init__(self, num_features: int, momentum: float = 0.1) -> None:
        super().__init__()
        self.momentum = momentum
        # BEGIN SOLUTION
        self.register_buffer("running_mean", torch.zeros(num_features))
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        if not self.training:
            return x - self.running_mean
        batch_mean = x.mean(0)
        # In place and under no_grad: the buffer keeps its identity (and device) and no graph.
        with torch.no_grad():
            self.running_mean.mul_(1 - self.momentum).add_(batch_mean, alpha=self.momentum)
        return x - batch_mean
        # END SOLUTION


def predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Return `model(x)` computed for inference: deterministic, with no autograd graph.

    Dropout drops random values and BatchNorm normalizes with the batch's own statistics (and
    updates its running ones) while a model is in training mode; `model.eval()` switches both to
    their inference behaviour. Run the forward pass without recording a graph (`torch.no_grad()`),
    so the result has `requires_grad=False`.

    Afterwards, leave every submodule in the mode it was in before the call, even if the forward
    pass raises: a training loop that calls `predict` for validation must go on training, and a
    model being fine-tuned may keep some layers (a frozen BatchNorm) in eval mode on purpose,
    so `model.train()` at the end is not a restore.
    """
    # BEGIN SOLUTION
    # eval()/train() set the flag of every submodule; remember each one to put it back exactly.
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            return model(x)
    finally:
        for module, training in modes:
            module.training = training
    # END SOLUTION


def save_weights(model: nn.Module, path: str | os.PathLike) -> None:
    """Save `model`'s weights to the file `path`: its state_dict, parameters and buffers.

    Save the state_dict (a dict of name -> tensor), not the model object. `torch.save(model)`
    pickles the class by reference: the file loads only where that exact code can be imported,
    and only with `weights_only=False`, which runs arbitrary code from the file. A dict of
    tensors loads anywhere with the safe `torch.load(path, weights_only=True)`.
    """
    # BEGIN SOLUTION
    torch.save(model.state_dict(), path)
    # END SOLUTION


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load the state_dict saved at `path` (by `save_weights`) into `model` and return `model`.

    `model` is a freshly built model of the same architecture, possibly on another device than
    the one the weights were saved from. Load the file safely (`weights_only=True`: a file that
    holds anything but tensors and plain containers must raise, not run code), and strictly: a
    checkpoint that lacks some of the model's keys must raise PyTorch's RuntimeError, not leave
    those layers at their random initial values.

    `model.state_dict().update(...)` changes nothing: it updates a new dict, not the model.
    """
    # BEGIN SOLUTION
    # map_location="cpu" lets a checkpoint saved on a GPU load on a machine without one;
    # load_state_dict then copies each tensor into the model's own parameters, on their device.
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model
    # END SOLUTION
