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
        # TODO (__init__): a module whose weight and bias are registered parameters
        raise NotImplementedError("08_modules_and_state.ScaleShift.__init__ is not done yet (stuck? dojo hint 08 ScaleShift)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TODO (forward): a module whose weight and bias are registered parameters
        raise NotImplementedError("08_modules_and_state.ScaleShift.forward is not done yet (stuck? dojo hint 08 ScaleShift)")


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Return the number of scalar values in `model`'s parameters, as a Python int.

    Count the parameters of every submodule, however deeply nested, not only those the model
    holds itself (`model._parameters`) or those of its direct children. A parameter shared by two
    layers (tied weights) counts once; buffers (BatchNorm's running statistics) are not
    parameters. With `trainable_only=True`, count only parameters with `requires_grad=True`
    (frozen layers are left out). This is the "N parameters" figure printed for every model.
    """
    # TODO: number of parameter values in a model, submodules included, tied weights once
    raise NotImplementedError("08_modules_and_state.count_parameters is not done yet (stuck? dojo hint 08 count_parameters)")


def make_mlp(in_features: int, hidden_features: int, out_features: int) -> nn.Sequential:
    """Return an `nn.Sequential`: Linear(in -> hidden), ReLU, Linear(hidden -> out), with the
    layers *named* "hidden", "act" and "output".

    A plain `nn.Sequential(layer, layer, ...)` names its layers "0", "1", "2", so its state_dict
    keys are "0.weight", "2.bias"; named layers give "hidden.weight", "output.bias", readable
    keys that checkpoints and `model.hidden` can use. Pass an `OrderedDict` of name -> layer,
    or call `add_module(name, layer)` on an empty Sequential.
    """
    # TODO: nn.Sequential with layers named hidden, act, output
    raise NotImplementedError("08_modules_and_state.make_mlp is not done yet (stuck? dojo hint 08 make_mlp)")


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
        # TODO (__init__): a run-time number of layers in an nn.ModuleList
        raise NotImplementedError("08_modules_and_state.LayerStack.__init__ is not done yet (stuck? dojo hint 08 LayerStack)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TODO (forward): a run-time number of layers in an nn.ModuleList
        raise NotImplementedError("08_modules_and_state.LayerStack.forward is not done yet (stuck? dojo hint 08 LayerStack)")


def state_dict_keys(model: nn.Module) -> list[str]:
    """Return the names of everything `model` saves, as a list of str, in the order its
    `state_dict()` holds them.

    That is more than the parameters: a BatchNorm layer also saves its running statistics
    ("bn.running_mean", "bn.running_var", "bn.num_batches_tracked"), which are buffers. Buffers
    registered with `persistent=False` are not saved, so they are not in the list.
    """
    # TODO: the names a model saves: parameters and persistent buffers
    raise NotImplementedError("08_modules_and_state.state_dict_keys is not done yet (stuck? dojo hint 08 state_dict_keys)")


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
        # TODO (__init__): a running mean kept in a registered buffer, updated only in training
        raise NotImplementedError("08_modules_and_state.RunningCenter.__init__ is not done yet (stuck? dojo hint 08 RunningCenter)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TODO (forward): a running mean kept in a registered buffer, updated only in training
        raise NotImplementedError("08_modules_and_state.RunningCenter.forward is not done yet (stuck? dojo hint 08 RunningCenter)")


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
    # TODO: eval mode and no_grad for one call, every module's mode restored after
    raise NotImplementedError("08_modules_and_state.predict is not done yet (stuck? dojo hint 08 predict)")


def save_weights(model: nn.Module, path: str | os.PathLike) -> None:
    """Save `model`'s weights to the file `path`: its state_dict, parameters and buffers.

    Save the state_dict (a dict of name -> tensor), not the model object. `torch.save(model)`
    pickles the class by reference: the file loads only where that exact code can be imported,
    and only with `weights_only=False`, which runs arbitrary code from the file. A dict of
    tensors loads anywhere with the safe `torch.load(path, weights_only=True)`.
    """
    # TODO: torch.save the state_dict, not the model object
    raise NotImplementedError("08_modules_and_state.save_weights is not done yet (stuck? dojo hint 08 save_weights)")


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load the state_dict saved at `path` (by `save_weights`) into `model` and return `model`.

    `model` is a freshly built model of the same architecture, possibly on another device than
    the one the weights were saved from. Load the file safely (`weights_only=True`: a file that
    holds anything but tensors and plain containers must raise, not run code), and strictly: a
    checkpoint that lacks some of the model's keys must raise PyTorch's RuntimeError, not leave
    those layers at their random initial values.

    `model.state_dict().update(...)` changes nothing: it updates a new dict, not the model.
    """
    # TODO: torch.load with weights_only=True, then load_state_dict into the model
    raise NotImplementedError("08_modules_and_state.load_weights is not done yet (stuck? dojo hint 08 load_weights)")
