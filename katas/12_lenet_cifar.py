"""Kata 12: LeNet on CIFAR-10.

The whole recipe of training an image classifier, one piece per exercise: the classic LeNet of
the PyTorch tutorial, the transforms that turn a CIFAR-10 image into a normalized tensor (with
random augmentation for training only), the datasets (torchvision's CIFAR10, or any folder of
images in the ImageFolder layout), the loaders, one epoch of training, an evaluation that
reports the accuracy of each class, and checkpoints that resume training exactly where it
stopped. Every piece has a trap that raises no error: a softmax before the loss, augmentation on
the test set, a model left in eval mode (or in training mode) by the previous step, gradients
that are never zeroed, a checkpoint that forgets the optimizer's momentum.

`dojo train` imports these functions, so they keep these signatures. The tests never download
CIFAR-10; they write small images of their own. Run `dojo` to see which exercise is next and
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

    Layers, in order (each conv and the first two linear layers followed by ReLU):
    - `conv1`: Conv2d(3 -> 6, kernel 5), then ReLU and 2x2 max pooling: (N, 6, 14, 14);
    - `conv2`: Conv2d(6 -> 16, kernel 5), then ReLU and 2x2 max pooling: (N, 16, 5, 5);
    - flatten each sample to 16 * 5 * 5 = 400 values;
    - `fc1`: Linear(400 -> 120), ReLU; `fc2`: Linear(120 -> 84), ReLU; `fc3`: Linear(84 -> num_classes).

    Keep those attribute names: they are the state_dict keys that checkpoints hold ("conv1.weight",
    ..., "fc3.bias"). With 10 classes the model has 62,006 parameters.

    `forward(x)` takes a float batch of shape (N, 3, 32, 32) and returns raw scores, the *logits*,
    of shape (N, num_classes): no softmax and no ReLU after `fc3`. `nn.CrossEntropyLoss` applies
    log-softmax itself; a softmax in the model squashes the scores twice, and learning slows to a
    crawl. Flatten with `torch.flatten(x, 1)` (keep the batch dimension), not `x.view(-1)`.
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        # TODO (__init__): conv(3->6,5), pool, conv(6->16,5), pool, fc 400->120->84->classes; raw logits out
        raise NotImplementedError("12_lenet_cifar.LeNet.__init__ is not done yet (stuck? dojo hint 12 LeNet)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TODO (forward): conv(3->6,5), pool, conv(6->16,5), pool, fc 400->120->84->classes; raw logits out
        raise NotImplementedError("12_lenet_cifar.LeNet.forward is not done yet (stuck? dojo hint 12 LeNet)")


def make_transform(train: bool) -> Callable:
    """Return the transform that turns one CIFAR-10 image (a 32x32 RGB PIL image) into the tensor
    the model takes: float32, shape (3, 32, 32), values in [-1, 1].

    Both versions end with `transforms.ToTensor()` (PIL image -> float tensor in [0, 1], channels
    first) and `transforms.Normalize(mean, std)` with the mean and std per channel that map
    [0, 1] onto [-1, 1]. Chain them with `transforms.Compose([...])`.

    - `train=True`: before those two, random augmentation: `transforms.RandomCrop(32, padding=4)`
      (pad the image with 4 black pixels on every side, cut a random 32x32 window out of it) and
      `transforms.RandomHorizontalFlip()`. Each call gives another version of the same image, so
      the model sees many variants and overfits less.
    - `train=False`: no augmentation at all. Evaluation must measure the model on the images as
      they are, and give the same answer every time.

    Augment the PIL image, before normalizing: pad a normalized tensor with zeros and the border
    is gray (0 is the middle of [-1, 1]), not black.
    """
    # TODO: ToTensor + Normalize to [-1, 1]; random crop and flip for training only
    raise NotImplementedError("12_lenet_cifar.make_transform is not done yet (stuck? dojo hint 12 make_transform)")


def make_datasets(root: str | os.PathLike, download: bool = False) -> tuple[Dataset, Dataset]:
    """Return `(train_set, test_set)`: CIFAR-10 from the folder `root`, each item an
    `(image tensor, class index)` pair, with the training transform on the training set and the
    evaluation transform on the test set (`make_transform`).

    Two layouts of `root`:
    - an `ImageFolder` layout, `root/train/<class>/*.jpg` and `root/test/<class>/*.jpg` (any
      classes, any image files PIL reads): when `root/train` is a folder, build one
      `datasets.ImageFolder` per split. Its classes are the sorted folder names.
    - otherwise torchvision's `datasets.CIFAR10(root, train=..., transform=..., download=...)`,
      which reads `root/cifar-10-batches-py/` (train=True: the 50,000 training images; train=False:
      the 10,000 test images). Pass `download` on: only a user who asks for it downloads 170 MB.
      Without the files and without `download=True`, let torchvision's RuntimeError ("Dataset not
      found or corrupted. You can use download=True to download it") reach the caller.

    Both kinds of dataset have `.classes`, the class names in index order.
    """
    # TODO: ImageFolder when root/train exists, else torchvision's CIFAR10; the right transform per split
    raise NotImplementedError("12_lenet_cifar.make_datasets is not done yet (stuck? dojo hint 12 make_datasets)")


def make_loaders(
    train_set: Dataset, test_set: Dataset, batch_size: int, seed: int = 0, num_workers: int = 0
) -> tuple[DataLoader, DataLoader]:
    """Return `(train_loader, test_loader)`: DataLoaders of mini-batches of `batch_size` over the
    two datasets, each with `num_workers` worker processes.

    - The training loader shuffles, so each epoch sees the samples in a new order, and it is
      reproducible: give it its own `torch.Generator` seeded with `seed`, so the order depends on
      `seed` only, not on whatever used the global random number generator before.
    - The test loader does not shuffle (the order changes nothing to an accuracy, and a fixed
      order makes predictions comparable between runs) and keeps every sample: no `drop_last`.
    """
    # TODO: a seeded, shuffling training loader; an ordered test loader that keeps every sample
    raise NotImplementedError("12_lenet_cifar.make_loaders is not done yet (stuck? dojo hint 12 make_loaders)")


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    device: torch.device | str,
) -> float:
    """Train `model` for one pass over `loader`; return the mean training loss, a Python float.

    `model` and `optimizer` already live on `device`; the loader yields `(images, labels)` batches
    on the CPU. First switch the model to training mode (`model.train()`: the last evaluation left
    it in eval mode, and dropout or batch norm behave differently there). Then, for each batch:
    move both tensors to `device`, zero the gradients (the model may arrive with leftover
    gradients, and `backward()` adds to them), compute `loss_fn(model(images), labels)` (the mean
    loss of the batch, as `nn.CrossEntropyLoss` gives), `backward()`, `optimizer.step()`.

    The returned loss is the mean over *samples* of the losses computed before each step: weight
    each batch's loss by its number of samples (the last batch may be smaller), sum, and divide
    by the number of samples. Return a Python float, and never sum the loss tensors themselves:
    that keeps every batch's graph alive. Either add up `loss.item()` (simple), or add up
    `loss.detach()` on the device and call `.item()` once at the end (faster on a GPU: every
    `.item()` makes the CPU wait until the GPU has finished all the work queued so far).
    """
    # TODO: train mode, zero_grad/forward/backward/step per batch, mean loss over samples as a float
    raise NotImplementedError("12_lenet_cifar.train_one_epoch is not done yet (stuck? dojo hint 12 train_one_epoch)")


def evaluate(
    model: nn.Module, loader: DataLoader, device: torch.device | str, num_classes: int
) -> tuple[float, list[float]]:
    """Return `(accuracy, per_class)` of `model` on every sample of `loader`, without training it.

    The predicted class of a sample is the index of its largest logit. `accuracy` is the fraction
    of all samples predicted right (a float in [0, 1], not a percentage). `per_class` is a list of
    `num_classes` floats: entry c is the fraction of the samples *whose label is c* predicted as
    c (so classes with few samples count as much as the others). A class with no sample in the
    data has no accuracy: its entry is `float("nan")`, not 0 (a 0 would claim the model fails on
    it). Count right answers and samples over the whole loader, then divide: a mean of the
    batches' accuracies is wrong when batches differ in size.

    Measure the model, don't change it: `model.eval()` (dropout off, batch norm uses its running
    statistics) and `torch.no_grad()` (no graph, no memory kept for a backward that never comes).
    Move each batch of images to `device`. Leave the model in eval mode: the next `train_one_epoch`
    switches it back.
    """
    # TODO: accuracy and per-class accuracy (nan for absent classes) under eval() and no_grad
    raise NotImplementedError("12_lenet_cifar.evaluate is not done yet (stuck? dojo hint 12 evaluate)")


def save_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int) -> None:
    """Save what it takes to resume training to the file `path`: a dict with the keys
    "model" (`model.state_dict()`), "optimizer" (`optimizer.state_dict()`) and "epoch" (`epoch`,
    the number of epochs completed, a Python int).

    The weights alone do not resume training: SGD with momentum (and Adam) keep a buffer per
    parameter, a running average of past gradients, in `optimizer.state`. Without it, the first
    steps after a restart differ from the steps an uninterrupted run takes. Save state_dicts,
    not the model or optimizer objects: a dict of tensors and numbers loads with the safe
    `torch.load(path, weights_only=True)`.
    """
    # TODO: torch.save a dict of model and optimizer state_dicts and the epoch
    raise NotImplementedError("12_lenet_cifar.save_checkpoint is not done yet (stuck? dojo hint 12 save_checkpoint)")


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    device: torch.device | str = "cpu",
) -> int:
    """Load a checkpoint written by `save_checkpoint` into `model` and (unless None) `optimizer`;
    return the epoch it holds, a Python int.

    `model` and `optimizer` are freshly built (same architecture, same kind of optimizer over
    `model.parameters()`), on `device`. Load the file safely, `torch.load(..., weights_only=True)`:
    a file that holds anything but tensors and plain containers must raise, not run code. Map
    its tensors to `device` (`map_location=device`): a checkpoint saved on a GPU must load on a
    machine without one. Then copy both state_dicts in with `load_state_dict`: the model's
    weights *and* the optimizer's state (its momentum buffers), or resumed training takes other
    steps than training that never stopped.
    """
    # TODO: torch.load(weights_only=True, map_location=device), then both load_state_dicts; return the epoch
    raise NotImplementedError("12_lenet_cifar.load_checkpoint is not done yet (stuck? dojo hint 12 load_checkpoint)")
