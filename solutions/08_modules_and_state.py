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

    `x` has shape (N, num_features), float32; the result has the shape, dtype and device of `x`,
    and `x` itself is left unchanged. `weight` starts as ones and `bias` as zeros, both float32
    of shape (num_features,). They are the module's two parameters, under the names "weight" and
    "bias": `list(module.parameters())` holds exactly those two, `module.state_dict()` has the
    keys "weight" and "bias", an optimizer built from the module's parameters changes both when
    it steps, and moving the module to a device moves both.

    The trap, by its symptom: the module has a `weight` that requires grad, and even gets a
    gradient, yet `list(module.parameters())` is empty, an optimizer given the module's
    parameters refuses to start ("optimizer got an empty parameter list"), and the weight stays
    behind when the module moves to a GPU.
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
    holds itself or those of its direct children. A parameter shared by two layers (tied weights)
    counts once; buffers (BatchNorm's running statistics) are not parameters. A model without
    parameters has 0. With `trainable_only=True`, count only the parameters that require grad
    (frozen layers are left out, wherever they sit). This is the "N parameters" figure printed
    for every model. `model` is left as it was.

    The traps, by their symptoms: a figure far too small (only the model's own parameters, or
    the number of tensors rather than of values), or too large (a tied weight counted twice, or
    the running statistics counted as parameters).
    """
    # BEGIN SOLUTION
    # parameters() recurses through all submodules and yields each Parameter object once.
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
    # END SOLUTION


def make_mlp(in_features: int, hidden_features: int, out_features: int) -> nn.Sequential:
    """Return an `nn.Sequential` of three layers: a Linear layer (in_features -> hidden_features,
    with a bias), a ReLU, and a Linear layer (hidden_features -> out_features, with a bias), in
    that order and *named* "hidden", "act" and "output".

    The names are what the caller observes: the children are named ["hidden", "act", "output"],
    `model.hidden` and `model.output` are the two Linear layers, and the state_dict keys are
    exactly "hidden.weight", "hidden.bias", "output.weight" and "output.bias". Calling the model
    on x of shape (N, in_features) gives relu(x W1ᵀ + b1) W2ᵀ + b2, of shape (N, out_features).

    The trap, by its symptom: the model computes the right thing, but its checkpoint keys are
    "0.weight" and "2.bias", and `model.hidden` raises AttributeError.
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
    """`depth` (>= 1) separate Linear(width -> width) layers with biases, applied in order, each
    followed by a ReLU (the last one too): for each layer in turn, `x = relu(layer(x))`.

    `x` has shape (N, width); the result has the same shape, dtype and device, and `x` itself is
    left unchanged. The layers live
    in an attribute named `layers`, so that the state_dict keys are exactly "layers.0.weight",
    "layers.0.bias", "layers.1.weight", ..., up to "layers.{depth-1}.bias". Each layer has its
    own weights (2 * depth parameter tensors), and moving the module to a device moves them all.

    The number of layers is known only at run time, so they are built in a loop and kept in a
    container. The traps, by their symptoms: the module has no parameters at all and its
    state_dict is empty (the container hides its layers from the module); or it has only two
    parameter tensors, however deep (one layer object, listed `depth` times).
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
    """Return, as a list of str, the name of every tensor that `model`'s state_dict holds, in
    the order it holds them.

    That is more than the parameters: a BatchNorm layer also saves its running statistics
    ("bn.running_mean", "bn.running_var", "bn.num_batches_tracked"), which are buffers, while a
    buffer registered as non-persistent is not saved, so it is not in the list. A tensor shared by
    two layers (tied weights) is listed under each of its names. The order is the saving order:
    each module's own parameters, then its own buffers, then its submodules' in the order they
    were assigned (so "steps", a buffer of the model itself, comes before "fc.weight").
    """
    # BEGIN SOLUTION
    # The state_dict is the one source of truth: parameters and persistent buffers, module by module.
    return list(model.state_dict().keys())
    # END SOLUTION


class RunningCenter(nn.Module):
    """Subtract the mean of each feature, the way BatchNorm does (without the scaling).

    `x` has shape (N, num_features), float32; the result has its shape, dtype and device, and `x`
    itself is left unchanged. The module keeps a running mean of the batches seen in training,
    `running_mean`: float32 zeros of shape (num_features,) at first.
    - training mode: return `x - x.mean(0)` (the batch's own mean; the result is differentiable
      with respect to `x` through that mean too, as BatchNorm's is), and update
      `running_mean = (1 - momentum) * running_mean + momentum * x.mean(0)`;
    - eval mode: return `x - running_mean`, and leave `running_mean` as it is.

    `running_mean` is state, not a parameter: it is in the state_dict (key "running_mean") and
    moves with the module to a device, but `module.parameters()` is empty, so no optimizer trains
    it. It is a statistic, so it never carries autograd history (no grad_fn, no requires_grad),
    even after a batch that requires grad. The traps, by their symptoms: the running mean is
    missing from a saved checkpoint and stays on the CPU when the module moves; an optimizer
    (or weight decay) changes it; the running mean has a grad_fn, and memory grows batch after
    batch because it holds on to the graph of every batch it has seen.
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

    Inference behaviour: dropout keeps every value, and BatchNorm normalizes with its running
    statistics and leaves them unchanged, whatever mode the model arrives in. The result has the
    shape, dtype and device of the model's output, does not require grad and has no grad_fn, even
    when `x` requires grad; nothing is added to any `.grad`.

    Afterwards the caller finds everything as it was: every submodule in the mode it was in
    before the call (a model that arrives in training mode goes on training; one in eval mode
    stays there; a BatchNorm kept in eval mode on purpose inside a training model stays in eval
    mode), each parameter's `requires_grad` unchanged, and autograd recording for the caller's
    code as it was before. All of that also when the forward pass raises: the exception reaches
    the caller, and the modes are restored.

    The traps, by their symptoms: two calls on the same input give different results, or a
    validation pass changes the BatchNorm's running statistics; after validating, the model no
    longer trains its dropout, or a frozen BatchNorm starts updating again.
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
    """Write `model`'s weights to the file `path` (a str or a path object).

    The file holds a dict that maps each name of the model's state_dict to its tensor: every
    parameter and every persistent buffer, with the values they have now, and nothing else (no
    non-persistent buffer, no module object). Such a file loads anywhere with PyTorch's safe
    loader (`torch.load(path, weights_only=True)`), even where the model's class cannot be
    imported. `model` is left as it was: its values and its modes.

    The trap, by its symptom: the file loads only where the model's code can be imported, and
    the safe loader refuses it ("Weights only load failed"), because what was written is the
    pickled model object, whose loading can run arbitrary code.
    """
    # BEGIN SOLUTION
    torch.save(model.state_dict(), path)
    # END SOLUTION


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load the weights that `save_weights` wrote to `path` into `model`, and return `model`.

    `model` is a freshly built model of the same architecture: afterwards it computes what the
    saved model computed, running statistics included. It keeps its own parameter and buffer
    objects, on its own device (an optimizer built on `model` before loading trains the loaded
    values), and the file may come from another device: weights saved on a GPU load into a model
    on a machine without one.

    Loading is safe: a file that holds anything but tensors and plain containers (a pickled
    model object) raises PyTorch's `pickle.UnpicklingError` ("Weights only load failed") instead
    of running code from it. Loading is strict: a checkpoint that lacks some of the model's keys,
    or has keys the model lacks, raises PyTorch's RuntimeError ("Missing key(s) in state_dict",
    "Unexpected key(s) in state_dict"), rather than leaving layers at their random initial values.

    The trap, by its symptom: the call succeeds and the model's outputs do not change.
    """
    # BEGIN SOLUTION
    # map_location="cpu" lets a checkpoint saved on a GPU load on a machine without one;
    # load_state_dict then copies each tensor into the model's own parameters, on their device.
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model
    # END SOLUTION
