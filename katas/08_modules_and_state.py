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
        # TODO (__init__): a module whose weight and bias are registered parameters
        raise NotImplementedError("08_modules_and_state.ScaleShift.__init__ is not done yet (stuck? dojo hint 08 ScaleShift)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TODO (forward): a module whose weight and bias are registered parameters
        raise NotImplementedError("08_modules_and_state.ScaleShift.forward is not done yet (stuck? dojo hint 08 ScaleShift)")


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
    # TODO: number of parameter values in a model, submodules included, tied weights once
    raise NotImplementedError("08_modules_and_state.count_parameters is not done yet (stuck? dojo hint 08 count_parameters)")


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
    # TODO: nn.Sequential with layers named hidden, act, output
    raise NotImplementedError("08_modules_and_state.make_mlp is not done yet (stuck? dojo hint 08 make_mlp)")


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
        # TODO (__init__): a run-time number of layers, each registered with weights of its own
        raise NotImplementedError("08_modules_and_state.LayerStack.__init__ is not done yet (stuck? dojo hint 08 LayerStack)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TODO (forward): a run-time number of layers, each registered with weights of its own
        raise NotImplementedError("08_modules_and_state.LayerStack.forward is not done yet (stuck? dojo hint 08 LayerStack)")


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
    # TODO: the names a model saves: parameters and persistent buffers
    raise NotImplementedError("08_modules_and_state.state_dict_keys is not done yet (stuck? dojo hint 08 state_dict_keys)")


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
        # TODO (__init__): a running mean kept in a registered buffer, updated only in training
        raise NotImplementedError("08_modules_and_state.RunningCenter.__init__ is not done yet (stuck? dojo hint 08 RunningCenter)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TODO (forward): a running mean kept in a registered buffer, updated only in training
        raise NotImplementedError("08_modules_and_state.RunningCenter.forward is not done yet (stuck? dojo hint 08 RunningCenter)")


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
    # TODO: an inference output without a graph, every module's mode restored after
    raise NotImplementedError("08_modules_and_state.predict is not done yet (stuck? dojo hint 08 predict)")


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
    # TODO: a checkpoint of the weights that the safe loader accepts
    raise NotImplementedError("08_modules_and_state.save_weights is not done yet (stuck? dojo hint 08 save_weights)")


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
    # TODO: a checkpoint loaded safely and strictly into a fresh model
    raise NotImplementedError("08_modules_and_state.load_weights is not done yet (stuck? dojo hint 08 load_weights)")
