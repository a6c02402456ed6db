"""Kata 13: fine-tuning a pretrained network.

Transfer learning in its most common form: take a network trained on a large dataset, keep what
it learned, and teach it your own classes. Phase one trains only a new classifier head on top of
the frozen network; phase two lets the network's last block adapt as well, more gently than the
head. In PyTorch "frozen" is three independent switches: which parameters get gradients, which
tensors the optimizer moves, and which layers run in training mode. None of them raises an error
when it is left in the wrong position. The loss still goes down, while the pretrained part quietly
changes under the head, or a part meant to train never moves.

The tests use torchvision's ResNet-18 (`resnet18(weights=None)`: random weights stand in for
pretrained ones, and nothing is downloaded), whose blocks are `layer1` ... `layer4` and whose head
is `fc`, and small models built the same way, on small images. Most functions work on any model.
Run `dojo` to see which exercise is next and `dojo hint 13` when stuck.
"""

import torch
import torch.nn.functional as F
from torch import nn


def freeze_all(model: nn.Module) -> nn.Module:
    """Freeze every parameter of `model`; return `model` itself, changed in place.

    Afterwards no parameter of the model requires grad: not those of its submodules at any depth,
    nor those registered on `model` itself. A frozen model's output for an input that does not
    require grad carries no graph, and a backward pass has nothing to reach.

    Nothing else changes. The parameters are the same objects with the same values (an optimizer
    or a caller holding them still holds the model's tensors), the buffers are untouched, and every
    module keeps its training mode: a model in eval mode stays in eval mode, one in train mode
    stays in train mode, a mix stays that mix. Freezing decides which parameters get gradients,
    not how layers such as BatchNorm or dropout behave. A flag set on the module object itself
    freezes nothing: every parameter still requires grad.
    """
    # TODO: no parameter requires grad any more, at any depth; modes, values and parameter objects as they were
    raise NotImplementedError("13_fine_tuning.freeze_all is not done yet (stuck? dojo hint 13 freeze_all)")


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Give `model` a new classifier head for `num_classes` classes in place of its head
    `model.fc`; return `model` itself, changed in place.

    The new head is a linear layer with a bias, built anew: its `weight` has shape
    (num_classes, in_features) and its `bias` shape (num_classes,), where in_features is the
    number of features the old head took (512 for ResNet-18, 2048 for ResNet-50, fewer for a small
    backbone), so `model(x)` gives scores of shape (N, num_classes). A width written in as a number
    fits one backbone only.

    Its parameters require grad, even in a model that was frozen before the call: the head is what
    trains. They live on the device and have the dtype of the model's other parameters (which
    share one device and one floating dtype): a head left on the CPU in float32 under a model on a
    GPU, or in float64, fails at the first forward pass.

    Nothing else changes: every other module is the same object, with the same parameters, values,
    `requires_grad` flags and training mode, and the old head, if the caller kept it, is left as it
    was.
    """
    # TODO: a new trainable linear head with num_classes outputs, as wide, on the same device and of the same dtype as the old one
    raise NotImplementedError("13_fine_tuning.replace_head is not done yet (stuck? dojo hint 13 replace_head)")


def count_trainable(model: nn.Module) -> int:
    """Return how many numbers of `model` training can change, as a Python `int`: the
    total number of elements (not of tensors) of the parameters that require grad, 0 when every
    parameter is frozen.

    After freezing ResNet-18 and giving it a 10-class head that is 512 * 10 + 10 = 5130, out of
    about 11 million. Buffers such as BatchNorm's running statistics are not parameters and do not
    count, and a parameter shared by two layers counts once.
    """
    # TODO: the number of elements in the parameters that require grad, as an int
    raise NotImplementedError("13_fine_tuning.count_trainable is not done yet (stuck? dojo hint 13 count_trainable)")


def trainable_optimizer(model: nn.Module, lr: float) -> torch.optim.SGD:
    """Return a `torch.optim.SGD` optimizer with learning rate `lr` and momentum 0.9 over
    exactly the parameters of `model` that require grad when it is called, wherever they sit in
    the model, each once, in one param group. Otherwise it is plain SGD, as by default: no weight
    decay, no dampening, no Nesterov momentum, and it minimizes.

    Which parameters train is the caller's choice: the head alone, or more. An optimizer that also
    holds the frozen parameters runs without an error and trains the head just as well, but each
    of its steps moves every frozen parameter that carries a gradient tensor (one computed before
    it was frozen, or zeros kept when gradients are reset without being discarded): by that old
    gradient, its momentum, or weight decay. A step of the optimizer returned here leaves every
    frozen parameter exactly as it was, whatever its `.grad`.

    Building the optimizer changes nothing in the model: flags, values and gradients stay as they
    were.
    """
    # TODO: SGD (lr, momentum 0.9) over exactly the parameters that require grad, in one group
    raise NotImplementedError("13_fine_tuning.trainable_optimizer is not done yet (stuck? dojo hint 13 trainable_optimizer)")


def set_bn_eval(model: nn.Module) -> nn.Module:
    """Put every frozen BatchNorm layer of `model` into eval mode; return `model` itself.

    A BatchNorm layer is one of the 1d, 2d or 3d kind, or of a subclass of one. It is frozen when
    none of its parameters requires grad; one that has no parameters at all, as built with
    `affine=False`, has nothing to train and counts as frozen.

    In train mode a BatchNorm layer normalizes each batch with that batch's own statistics and
    overwrites its stored running mean and variance at every forward pass, however frozen its
    weight and bias: the statistics are buffers, which gradients do not drive. A "frozen" backbone
    left in train mode drifts away from what it learned, batch after batch. In eval mode the layer
    normalizes with its stored statistics and leaves them alone.

    Every other module keeps the mode it had, the trainable BatchNorm layers and `model` itself
    included. No parameter is frozen or unfrozen, and nothing is computed: the buffers are
    untouched. Putting the whole model in train mode afterwards undoes all this.
    """
    # TODO: frozen BatchNorm layers (no parameter requires grad) in eval mode, every other module as it was
    raise NotImplementedError("13_fine_tuning.set_bn_eval is not done yet (stuck? dojo hint 13 set_bn_eval)")


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    """Train `model` for one step on the batch `(x, y)`; return the batch's loss, from
    before the step, as a Python float.

    `x` is a batch of N inputs and `y` its N class indices, both on the model's device; the loss
    is the mean cross-entropy of the logits `model(x)`, of shape (N, classes), against `y`.
    `optimizer` holds the parameters that train. Afterwards:
    - those parameters have moved by exactly one step of `optimizer`, computed from this batch's
      gradient alone, whatever gradients the model arrived with;
    - every frozen parameter is exactly as it was, and so are the running statistics of every
      frozen BatchNorm layer (frozen as `set_bn_eval` defines it);
    - the loss was computed in train mode, whatever mode the model arrived in (it often arrives in
      eval mode, after a validation pass), except that the frozen BatchNorm layers used their
      stored statistics: a BatchNorm layer that trains normalized with the batch's statistics and
      updated its running ones;
    - the model is left in that state: in train mode, its frozen BatchNorm layers in eval mode.

    A step that moves only what trains but lets train mode rewrite the frozen layers' statistics
    shows up as features that drift from step to step while every frozen weight stays put.
    """
    # TODO: one step that moves what trains and nothing else: modes first, then the usual step; return the loss
    raise NotImplementedError("13_fine_tuning.train_step is not done yet (stuck? dojo hint 13 train_step)")


def unfreeze_last_block(model: nn.Module, head_lr: float, block_lr: float) -> torch.optim.SGD:
    """Start the second phase of fine-tuning a ResNet (any model whose last block is
    `model.layer4` and whose head is `model.fc`), which arrives frozen except for its head: make
    every parameter of `model.layer4` trainable as well, and return a `torch.optim.SGD` optimizer
    with momentum 0.9 over exactly the parameters of the head and of layer4, in two param groups:
    `param_groups[0]` holds the head's with learning rate `head_lr`, `param_groups[1]` layer4's
    with learning rate `block_lr`. Otherwise it is plain SGD, as by default: no weight decay, no
    dampening, no Nesterov momentum, and it minimizes.

    Every other parameter stays frozen: the earlier blocks hold the most general features (edges,
    textures), which transfer best, and unfreezing everything turns fine-tuning into full
    training, with the memory that takes and a real risk of wrecking those features. The head
    stays trainable. No value and no module's training mode changes.

    The pretrained block needs only adjusting: with the head's learning rate its first updates
    would undo much of what it learned, hence its own, smaller one, which a single learning rate
    for the whole optimizer cannot give.
    """
    # TODO: layer4 trainable too; SGD with two param groups: the head with head_lr, layer4 with block_lr
    raise NotImplementedError("13_fine_tuning.unfreeze_last_block is not done yet (stuck? dojo hint 13 unfreeze_last_block)")
