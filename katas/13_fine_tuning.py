"""Kata 13: fine-tuning a pretrained network.

Transfer learning in its most common form: take a network trained on a large dataset, freeze it,
put a new head for your own classes on top and train only that head; later unfreeze the last
block too and train it with a smaller learning rate. Every step has a trap that raises no error:
a head hard-coded to the wrong width or built on the wrong device, an optimizer that still holds
the frozen weights, BatchNorm layers whose running statistics drift in train mode although their
weights are frozen, one learning rate for the fresh head and the pretrained block alike.

The tests use torchvision's ResNet-18 (`torchvision.models.resnet18`): a stem (`conv1`, `bn1`),
four blocks `layer1` ... `layer4`, and the classifier head `fc`. They build it with
`weights=None` (random weights stand in for pretrained ones; nothing is downloaded) and feed it
small 32x32 images to stay fast. Most functions work on any model with an `fc` head. Run `dojo`
to see which exercise is next and `dojo hint 13` when stuck.
"""

import torch
import torch.nn.functional as F
from torch import nn


def freeze_all(model: nn.Module) -> nn.Module:
    """Freeze every parameter of `model`, in every submodule, so that none of them gets a
    gradient any more; return `model` itself, changed in place.

    A frozen parameter has `requires_grad=False`: autograd computes no gradient for it, and
    `backward()` stops before the frozen layers, which saves time and memory. `model.eval()` is a
    different switch (how dropout and BatchNorm behave); leave the model's training mode as it
    is. `model.requires_grad = False` only adds an attribute to the module object: it freezes
    nothing.
    """
    # TODO: requires_grad=False on every parameter, training mode untouched
    raise NotImplementedError("13_fine_tuning.freeze_all is not done yet (stuck? dojo hint 13 freeze_all)")


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Replace the classifier head `model.fc` by a new `nn.Linear` with `num_classes` outputs;
    return `model` itself, changed in place.

    The new head takes as many inputs as the old one: read `in_features` from the old head
    (512 for ResNet-18, 2048 for ResNet-50, 24 for some small test model), don't write a number.
    It has a bias and is trainable (a freshly built layer requires grad even when the rest of
    the model is frozen; that is the point). Build it on the old head's device and with its
    dtype: a bare `nn.Linear(...)` lands on the CPU in float32 while the model may live on a GPU
    or in float64. Every other layer stays as it is.
    """
    # TODO: a new nn.Linear head with num_classes outputs, sized and placed like the old one
    raise NotImplementedError("13_fine_tuning.replace_head is not done yet (stuck? dojo hint 13 replace_head)")


def count_trainable(model: nn.Module) -> int:
    """Return how many numbers of `model` training can change: the total number of elements
    (not of tensors) of the parameters that require grad, as a Python `int`.

    After freezing ResNet-18 and giving it a 10-class head that is 512 * 10 + 10 = 5130, out of
    about 11 million. Buffers such as BatchNorm's running statistics are not parameters, and a
    parameter shared by two layers counts once.
    """
    # TODO: number of elements in the parameters that require grad
    raise NotImplementedError("13_fine_tuning.count_trainable is not done yet (stuck? dojo hint 13 count_trainable)")


def trainable_optimizer(model: nn.Module, lr: float) -> torch.optim.SGD:
    """Return `torch.optim.SGD` with learning rate `lr` and `momentum=0.9` over exactly the
    parameters of `model` that require grad, in one param group.

    Which parameters are trainable is up to the caller: the head, or more. `SGD(model.parameters())`
    runs, and even trains the head, but it also holds every frozen weight. Those stay put only
    while their `.grad` is None: a frozen weight that has a gradient tensor (one computed before
    it was frozen, or zeros left by `zero_grad(set_to_none=False)`) is moved by every step, by
    its old gradient, momentum or weight decay.
    """
    # TODO: SGD over only the parameters that require grad
    raise NotImplementedError("13_fine_tuning.trainable_optimizer is not done yet (stuck? dojo hint 13 trainable_optimizer)")


def set_bn_eval(model: nn.Module) -> nn.Module:
    """Put every BatchNorm layer of `model` whose parameters are all frozen into eval mode and
    leave every other module's mode as it is; return `model` itself.

    In train mode a BatchNorm layer normalizes with the statistics of the current batch and
    updates its running mean and variance. Those are buffers, not parameters: `requires_grad`
    does not protect them, so a "frozen" backbone drifts away from what it learned, all the more
    with the small batches of fine-tuning. In eval mode the layer uses its stored statistics and
    leaves them alone. BatchNorm layers that train (those of an unfrozen block) stay in train
    mode, and so does the rest of the model. Cover BatchNorm1d, 2d and 3d alike: they share the
    base class `nn.modules.batchnorm._BatchNorm`. `model.train()` puts every module back into
    train mode, so call this after it.
    """
    # TODO: frozen BatchNorm layers in eval mode, everything else as it was
    raise NotImplementedError("13_fine_tuning.set_bn_eval is not done yet (stuck? dojo hint 13 set_bn_eval)")


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    """Do one fine-tuning step on the batch `(x, y)` and return its loss as a Python float.

    The loss is `F.cross_entropy(model(x), y)`. Before the forward pass put the model in train
    mode, then its frozen BatchNorm layers back into eval mode (`set_bn_eval`, above), whatever
    mode the model arrived in; reset the gradients before `backward()` (the model may arrive
    with leftover ones); then let `optimizer` take its step. Afterwards the frozen parameters
    and the frozen layers' running statistics are exactly what they were: only what trains moves.
    """
    # TODO: one step that moves what trains and nothing else
    raise NotImplementedError("13_fine_tuning.train_step is not done yet (stuck? dojo hint 13 train_step)")


def unfreeze_last_block(model: nn.Module, head_lr: float, block_lr: float) -> torch.optim.SGD:
    """Start the second phase of fine-tuning a ResNet: make its last block `model.layer4`
    trainable as well as its head `model.fc`, and return `torch.optim.SGD` with `momentum=0.9`
    and two param groups: first the head's parameters with `head_lr`, then layer4's with
    `block_lr` (the smaller one).

    The model arrives frozen except for its head. Unfreeze layer4 only: the earlier blocks hold
    the general features (edges, textures) that transfer best, and unfreezing everything turns
    fine-tuning into full training, with far more memory and a real risk of wrecking them. The
    pretrained block gets the smaller learning rate: it only needs adjusting, and updates as
    large as the head's would undo what it learned. A single param group cannot do that.
    """
    # TODO: layer4 trainable too, two param groups: head lr, smaller layer4 lr
    raise NotImplementedError("13_fine_tuning.unfreeze_last_block is not done yet (stuck? dojo hint 13 unfreeze_last_block)")
