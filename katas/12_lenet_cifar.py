"""Kata 12: LeNet on CIFAR-10.

The whole recipe of training an image classifier, one piece per exercise: the classic LeNet of
the PyTorch tutorial, the transforms that turn a CIFAR-10 image into a normalized tensor (with
random augmentation for training only), the datasets (torchvision's CIFAR-10 files, or any folder
of images sorted into class folders), the loaders, one epoch of training, an evaluation that
reports the accuracy of each class, and checkpoints to resume training from. Most mistakes in this
recipe raise no error: they show up as a model that learns slowly, an accuracy that changes
between two measurements of the same model, or a resumed run that drifts away from the run that
never stopped.

What a checkpoint resumes, and what it does not. It holds the model's weights, the optimizer's
state (SGD's momentum buffers) and the number of epochs completed. Loaded into a fresh model and
optimizer, training continues from the same weights with the same momentum: given the same
batches in the same order, the resumed run takes exactly the steps of the run that never stopped.
It holds no random number generator state. The training loader's shuffle order and the
augmentation's random crops and flips come from generators outside the checkpoint, so after a
restart the next epochs see the samples in another order, and other variants of each image, than
the uninterrupted run would have (a training loader rebuilt from its seed starts again from its
first epoch's order). The resumed run is an equally good run, not the same one; a later kata
covers bit-exact resumption.

`dojo train` imports these functions, so they keep these signatures. The tests never download
CIFAR-10; they make small data of their own. Run `dojo` to see which exercise is next and
`dojo hint 12` when stuck.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms


class LeNet(nn.Module):
    """The LeNet of PyTorch's "Training a classifier" tutorial, for 3x32x32 images.

    The layers, in order:
    - `conv1`: a 5x5 convolution from 3 to 6 channels (no padding), then ReLU and 2x2 max
      pooling: (N, 6, 14, 14);
    - `conv2`: a 5x5 convolution from 6 to 16 channels, then ReLU and 2x2 max pooling:
      (N, 16, 5, 5);
    - each sample's 16 * 5 * 5 = 400 values, in that order, as one row;
    - `fc1`: linear 400 -> 120, ReLU; `fc2`: linear 120 -> 84, ReLU; `fc3`: linear 84 -> num_classes.

    Every convolution and linear layer has a bias. Keep the attribute names: they are the
    state_dict keys a checkpoint holds ("conv1.weight", ..., "fc3.bias"), and the model has no
    other parameters or buffers. With 10 classes it has 62,006 parameters.

    `forward(x)` takes a float batch of shape (N, 3, 32, 32), any N >= 1, and returns one raw score
    per class, the *logits*, of shape (N, num_classes): real numbers of either sign, nothing
    applied after `fc3`. The loss turns logits into log-probabilities itself; a model that already
    returns probabilities has them squashed twice, and learns at a crawl. A batch of one sample is
    still a batch: its result has shape (1, num_classes).
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        # TODO (__init__): conv(3->6,5), pool, conv(6->16,5), pool, fc 400->120->84->classes; raw logits out
        raise NotImplementedError("12_lenet_cifar.LeNet.__init__ is not done yet (stuck? dojo hint 12 LeNet)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TODO (forward): conv(3->6,5), pool, conv(6->16,5), pool, fc 400->120->84->classes; raw logits out
        raise NotImplementedError("12_lenet_cifar.LeNet.forward is not done yet (stuck? dojo hint 12 LeNet)")


def make_transform(train: bool) -> Callable:
    """Return the transform for one CIFAR-10 image, a 32x32 RGB PIL image: a callable that turns
    it into the tensor the model takes, float32 of shape (3, 32, 32), channels first, each pixel
    value p (0 to 255) mapped to p / 255 * 2 - 1, so black is -1 and white is 1.

    - `train=False`, for evaluation: nothing else. The same image gives the same tensor on every
      call, so two measurements of one model give one accuracy.
    - `train=True`: a random augmentation first, drawn anew at every call. Pad the image with 4
      black pixels on every side and cut a random 32x32 window out of the padded image (a shift of
      up to 4 pixels each way, the uncovered border black), then flip it left to right with
      probability 1/2. Each epoch the model sees another variant of each image, and overfits less.

    The border is black: -1 in all three channels of the result. A border that comes out 0
    (mid-gray) was added after the pixel values had been mapped to [-1, 1].
    """
    # TODO: pixels to float in [-1, 1]; for training first a random shift over a 4-pixel black border and a left-right flip
    raise NotImplementedError("12_lenet_cifar.make_transform is not done yet (stuck? dojo hint 12 make_transform)")


def make_datasets(root: str | os.PathLike, download: bool = False) -> tuple[Dataset, Dataset]:
    """Return `(train_set, test_set)`, the two splits of the data in the folder `root` (a str or a
    path): datasets of `(image tensor, class index)` items, the training split through
    `make_transform(train=True)` and the test split through `make_transform(train=False)`, so only
    the training images are augmented and the test split gives the same tensors on every read.

    `root` holds one of two layouts:
    - class folders, when `root/train` is a folder: `root/train/<class>/<image>` and
      `root/test/<class>/<image>`, any class names, any image files PIL reads. The classes are the
      sorted folder names, and a class's index is its place in that order.
    - otherwise torchvision's CIFAR-10 files in `root/cifar-10-batches-py/`: the training split is
      CIFAR-10's 50,000 training images, the test split its 10,000 test images, with its ten class
      names.

    Nothing is downloaded unless `download=True`; then torchvision fetches CIFAR-10's files
    (170 MB) into `root` when they are missing (the class-folder layout is read as it is). Without
    the files and without `download=True`, torchvision's RuntimeError ("Dataset not found or
    corrupted...") reaches the caller.

    Both datasets have `.classes`, the class names in index order.
    """
    # TODO: class folders when root/train exists, else torchvision's CIFAR-10 files; the training transform on the training split only
    raise NotImplementedError("12_lenet_cifar.make_datasets is not done yet (stuck? dojo hint 12 make_datasets)")


def make_loaders(
    train_set: Dataset, test_set: Dataset, batch_size: int, seed: int = 0, num_workers: int = 0
) -> tuple[DataLoader, DataLoader]:
    """Return `(train_loader, test_loader)`: loaders of mini-batches of `batch_size` samples over
    `train_set` and `test_set`, each with `num_workers` worker processes. Both keep every sample:
    each pass yields each sample once, the last batch smaller when `batch_size` does not divide the
    dataset's length.

    - The training loader gives the samples in a new random order each epoch, and that sequence of
      orders depends on `seed` only: loaders made with the same seed give the same orders, whatever
      draws random numbers in between (code that uses the global random number generator, a pass
      over the test loader, another pair of loaders).
    - The test loader keeps the dataset's order: the order changes nothing to an accuracy, and a
      fixed order makes predictions comparable between runs.
    """
    # TODO: a shuffling training loader with its own seeded generator; a test loader in the dataset's order; both keep every sample
    raise NotImplementedError("12_lenet_cifar.make_loaders is not done yet (stuck? dojo hint 12 make_loaders)")


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    device: torch.device | str,
) -> float:
    """Train `model` for one pass over `loader`, one optimizer step per batch; return the mean
    training loss, a Python float.

    `model` and `optimizer` (over the model's parameters) already live on `device`, and stay
    there; `loader` yields at least one `(images, labels)` batch, on the CPU. `loss_fn(logits,
    labels)` returns the mean loss of a batch, a scalar tensor, as `nn.CrossEntropyLoss()` does.

    - Every forward pass runs in training mode, whatever mode the model arrives in (the last
      evaluation left it in eval mode, and dropout and batch norm behave differently there).
    - Each batch reaches the model, and its labels the loss, on `device`.
    - Each step follows the gradient of its own batch only: the model may arrive with gradients
      left over from earlier work, and gradients add up until they are cleared.
    - The result is the mean over *samples* of the losses computed before each step: a batch of 8
      samples counts half as much as a batch of 16 (the last batch may be smaller).
    - The epoch must not keep each batch's graph alive: while a batch is processed, no graph older
      than the previous batch's is still referenced, and none is once the epoch returns, so the
      memory in use does not grow with the number of batches. (A running total of the loss
      tensors themselves, or a list of them, holds every batch's graph until the epoch ends.)
    """
    # TODO: train mode, then per batch: to device, zero_grad, forward, backward, step; the mean loss over samples as a float
    raise NotImplementedError("12_lenet_cifar.train_one_epoch is not done yet (stuck? dojo hint 12 train_one_epoch)")


def evaluate(
    model: nn.Module, loader: DataLoader, device: torch.device | str, num_classes: int
) -> tuple[float, list[float]]:
    """Return `(accuracy, per_class)` of `model` on every sample of `loader`, without training it.

    `model` lives on `device`; `loader` yields `(images, labels)` batches on the CPU, at least one
    sample in all. The predicted class of a sample is the index of its largest logit.

    - `accuracy`: the fraction of all samples predicted right, a Python float in [0, 1] (not a
      percentage). Every sample counts once, whatever the size of its batch (the last batch may be
      smaller).
    - `per_class`: a list of `num_classes` Python floats; entry c is the fraction of the samples
      *labelled c* that were predicted c, so a rare class counts as much as a common one. A class
      with no sample in the data has no accuracy: its entry is nan, not 0 (a 0 would claim that the
      model fails on it).

    Measure the model, don't change it: every forward pass runs in eval mode (dropout off, batch
    norm on its running statistics) and with autograd's recording switched off (no graph, no
    activations kept for a backward pass that never comes). Afterwards the model is left in eval
    mode (the next training epoch switches it back), its parameters untouched.

    Each batch of images reaches the model on `device`, and predictions and labels are compared on
    one device: on a GPU, an operation between a tensor on the GPU and one on the CPU raises.
    """
    # TODO: under eval mode and no_grad: accuracy over all samples, and per-class accuracy with nan for an absent class
    raise NotImplementedError("12_lenet_cifar.evaluate is not done yet (stuck? dojo hint 12 evaluate)")


def save_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int) -> None:
    """Write what it takes to resume training to the file `path`: a dict with exactly three
    entries,
    - "model": `model.state_dict()`, every parameter and buffer of the model by name;
    - "optimizer": `optimizer.state_dict()`, its settings and its per-parameter state (SGD's
      momentum buffers, Adam's running averages);
    - "epoch": `epoch`, the number of epochs completed, a Python int.

    The weights alone do not resume training: without the optimizer's state the steps after a
    restart start again from zero momentum and differ from the steps the uninterrupted run takes.
    The checkpoint holds no random number generator state (see the module docstring): it resumes
    the weights and the momentum, not the shuffle order or the augmentation's draws.

    The file must open with PyTorch's safe loader, which reads tensors, numbers, strings and plain
    containers only: it holds no model or optimizer object (unpickling an object can run any code,
    so the safe loader refuses them).
    """
    # TODO: save a dict of the model's and the optimizer's state_dicts and the epoch
    raise NotImplementedError("12_lenet_cifar.save_checkpoint is not done yet (stuck? dojo hint 12 save_checkpoint)")


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    device: torch.device | str = "cpu",
) -> int:
    """Restore a checkpoint written by `save_checkpoint` into `model` and, unless it is None,
    `optimizer`; return the epoch it holds, a Python int.

    `model` and `optimizer` are freshly built on `device` (same architecture, same kind of
    optimizer over `model.parameters()`). Afterwards:
    - the model holds the checkpoint's weights, on `device`. The checkpoint must fit the model: an
      entry the model lacks, one of the model's entries missing from it, or a shape that differs
      raises RuntimeError;
    - the optimizer holds the checkpoint's state, its momentum buffers on `device`, so that
      training resumed from here takes the same steps as training that never stopped, given the
      same batches.

    The file may come from another machine: a checkpoint written on a GPU opens on a machine
    without one. Reading it must be safe: a file that holds anything but tensors, numbers, strings
    and plain containers is refused with `pickle.UnpicklingError`, before any of its code runs.
    """
    # TODO: load the file safely onto the device, then both load_state_dicts (strict); return the epoch
    raise NotImplementedError("12_lenet_cifar.load_checkpoint is not done yet (stuck? dojo hint 12 load_checkpoint)")
