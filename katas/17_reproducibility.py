"""Kata 17: reproducibility.

A training run draws random numbers from several independent generators: Python's `random`
module, NumPy's global generator, torch's generator for the CPU, one more for each CUDA device,
and any torch.Generator objects the code creates itself (a DataLoader's, a split's). Seeding one
of them leaves the others where they were, so "I called the seed function" is often only a
quarter of the story.

Seeding is not enough either. Two parts of a pipeline that share one generator are coupled: one
extra draw in the augmentation shifts every later shuffle. Some GPU kernels are not deterministic
(atomic additions in whatever order the threads arrive, cuDNN picking the fastest algorithm by
timing it); PyTorch can be told to use deterministic ones only, and to raise an error where an
operation has none. And a run that stops and resumes is the same run only if the checkpoint holds
everything the next step depends on: the model and the optimizer, but also the schedule, every
generator's state, the loader's own generator and the epoch. "Close enough" is not the standard
here: a resumed run is reproducible when its weights are bit for bit those of the run that never
stopped. Run `dojo` to see which exercise is next and `dojo hint 17` when stuck.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, random_split


def seed_everything(seed: int) -> None:
    """Seed every global source of random numbers a training script draws from with `seed`.

    `seed` is an int in [0, 2**32). The sources: Python's built-in random module, NumPy's global
    (legacy) generator, torch's generator for the CPU, and torch's generator of every CUDA device
    where CUDA is available. After the call, each source produces the same sequence of numbers
    as after any other call with the same `seed`, whatever was drawn from it before; another
    seed gives other numbers. The function returns nothing and creates no generator that the
    caller would have to use instead of the global ones.

    The trap, by its symptom: a script "seeded" at the top whose NumPy noise or Python shuffles
    still change from run to run, because only torch was seeded (or a new, private NumPy
    generator was created, which leaves the global one untouched).
    """
    # TODO: seed Python's random, NumPy's global generator, torch and every CUDA device
    raise NotImplementedError("17_reproducibility.seed_everything is not done yet (stuck? dojo hint 17 seed_everything)")


class Augmented(Dataset):
    """Given (nothing to do): `dataset` with `augment` applied to each sample's input as it is loaded.

    Item i is `(augment(x, generator), y)` for the pair `(x, y) = dataset[i]`: the augmentation
    draws its random numbers from `generator` (a torch.Generator, or None for torch's global
    generator) at every access, so the same sample is augmented differently each epoch.
    """

    def __init__(
        self, dataset: Dataset, augment: Callable[[torch.Tensor, torch.Generator | None], torch.Tensor], generator
    ) -> None:
        self.dataset = dataset
        self.augment = augment
        self.generator = generator

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        x, y = self.dataset[index]
        return self.augment(x, self.generator), y


def make_loaders(
    dataset: Dataset,
    n_val: int,
    batch_size: int,
    split_seed: int,
    shuffle_seed: int,
    augment_seed: int,
    augment: Callable[[torch.Tensor, torch.Generator | None], torch.Tensor],
) -> tuple[DataLoader, DataLoader]:
    """Split `dataset` at random and return `(train_loader, val_loader)`, each random choice seeded on its own.

    `dataset` is a map-style dataset of `(x, y)` pairs; `0 < n_val < len(dataset)`. `augment(x,
    generator)` is the caller's augmentation: it returns an augmented copy of the input `x`,
    drawing its random numbers from the torch generator it is given (how many it draws is its
    own business, and may change when the caller edits it).
    - The split: `n_val` samples, chosen at random, form the validation part, all the others the
      training part. Which samples go where is decided by `split_seed` alone.
    - The validation loader gives its samples unchanged (no augmentation), in the same order on
      every pass, in batches of `batch_size`.
    - The training loader gives the training samples with each input passed through `augment`
      as it is loaded (the `Augmented` class above does this), in batches of `batch_size`, the
      last one possibly smaller, shuffled: a new order every epoch. The sequence of orders is
      decided by `shuffle_seed` (and by which samples the training part holds) alone.
    - The augmentation's random numbers are decided by `augment_seed` alone: the k-th sample the
      training loader delivers in its n-th epoch gets the same draws whatever the split and the
      order, and new draws every epoch. Samples are loaded in the calling process.

    "Alone" means: changing one seed, or changing how many numbers `augment` draws, changes
    nothing else; and none of it depends on torch's global generator, which building the loaders
    leaves as it found it and which the caller may use between epochs (dropout does).

    The trap, by its symptom: an edit to the augmentation (one more random number per sample)
    that silently changes the validation set or the order of the next epoch's batches, because
    the split, the shuffle and the augmentation draw from one shared stream.
    """
    # TODO: split, shuffle and augment, each with a torch.Generator of its own seed
    raise NotImplementedError("17_reproducibility.make_loaders is not done yet (stuck? dojo hint 17 make_loaders)")


@contextmanager
def deterministic_mode() -> Iterator[None]:
    """A context manager: within its `with` block, PyTorch uses deterministic algorithms only.

    Within the block:
    - every operation that has a deterministic implementation uses it, and an operation that
      has none raises an error (an error, not only a warning);
    - cuDNN, where it is used, picks deterministic convolution algorithms and does not
      benchmark several algorithms to choose the fastest (that choice can differ between runs).
    When the block ends, however it ends (an exception in it propagates unchanged), each of
    those settings is back to what the caller had before: deterministic algorithms on or off,
    whether they only warned, and cuDNN's two flags. A mode nested in another leaves the outer
    one in force.

    The trap, by its symptom: a helper that made the caller's whole program deterministic for
    good (slower, and raising in code that never asked for it), or that restored determinism
    "on" where the caller had only asked for warnings.
    """
    # TODO: a context manager: deterministic algorithms and cuDNN flags on, the caller's four settings back afterwards
    raise NotImplementedError("17_reproducibility.deterministic_mode is not done yet (stuck? dojo hint 17 deterministic_mode)")


def nondeterministic_ops(ops: dict[str, Callable[[], Any]]) -> list[str]:
    """Return the names of the operations in `ops` that have no deterministic implementation.

    `ops` maps a name to a callable that takes no argument and runs one operation (on the CPU or
    on a GPU). Call each one once, in the dict's order, with PyTorch set to use deterministic
    algorithms only; return the list of the names (in that order) of those that PyTorch refused
    to run that way, because the operation has no deterministic implementation on that device.

    Any other exception a callable raises is a bug, not an answer: it propagates unchanged (a
    shape error is not "nondeterministic"). Whatever happens, the caller's settings are restored
    afterwards, as in deterministic_mode.

    The trap, by its symptom: an ordinary bug (a shape mismatch, which PyTorch reports with the
    same exception type) listed as a nondeterministic operation and hidden.
    """
    # TODO: run each op in deterministic mode; list those PyTorch refuses, let every other error through
    raise NotImplementedError("17_reproducibility.nondeterministic_ops is not done yet (stuck? dojo hint 17 nondeterministic_ops)")


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loader: DataLoader,
    epoch: int,
) -> None:
    """Write to `path` everything a run needs to resume exactly where it is, after `epoch` epochs.

    `model`, `optimizer` (of the model's parameters) and `scheduler` (of that optimizer) are the
    run's objects; `loader` is its training DataLoader, which shuffles with a torch generator of
    its own; `epoch` is the number of epochs completed. The training may use dropout, augment with
    Python's random module and NumPy's global generator, and run on the CPU or a GPU.

    The file must hold enough that load_checkpoint, given fresh objects built the same way (other
    initial weights, other seeds), makes the rest of the run identical bit for bit to a run that
    never stopped: the weights, the optimizer's state, the schedule, the state of every random
    generator the next epoch draws from (Python's, NumPy's global one, torch's CPU generator, the
    CUDA devices' where CUDA is available, the loader's own) and the epoch. The file loads with
    torch's safe default loading, which accepts tensors, numbers, strings and containers of them
    but no other objects (no NumPy array). Saving changes nothing in the run: no generator is
    drawn from or reseeded, and the objects are left as they were.

    The file's format, which load_checkpoint reads: one dict with the keys "model", "optimizer"
    and "scheduler" (each object's state dict), "epoch" (an int) and "rng", a dict of generator
    states: "python" (as Python's random module reports its state), "numpy" (the global NumPy
    generator's state as plain values: {"keys": its 624 keys as a list of ints or an integer
    tensor, "pos": int, "has_gauss": int, "cached": float}), "torch" (the CPU generator's
    state), "cuda" (a list of the CUDA devices' states, empty where CUDA is not available) and
    "loader" (the state of the loader's generator).

    The trap, by its symptom: a resumed run that starts well but drifts from the uninterrupted
    one within an epoch (other dropout masks, another batch order, another augmentation), or a
    checkpoint that refuses to load ("Weights only load failed").
    """
    # TODO: save model, optimizer, scheduler, every generator's state, the loader's generator and the epoch
    raise NotImplementedError("17_reproducibility.save_checkpoint is not done yet (stuck? dojo hint 17 save_checkpoint)")


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loader: DataLoader,
) -> int:
    """Restore the run saved at `path` into the given objects; return the number of epochs completed (an int).

    `path` was written by save_checkpoint, in the format its docstring states. `model`,
    `optimizer`, `scheduler` and `loader` are
    fresh objects built the same way as the saved run's (the same architecture, optimizer and
    schedule settings, data set and batch size; the loader again with a torch generator of its
    own), but with other initial weights, other seeds and nothing trained. Afterwards, training
    on from the returned epoch gives results identical bit for bit to those of the run that
    never stopped: the same weights, the same optimizer state, the same learning rates, the same
    batch order, dropout masks and augmentations, and every global generator (Python's, NumPy's,
    torch's, the CUDA devices') continuing its stream exactly where the saved run's was. The
    objects are updated in place; the model stays on its device.

    The trap, by its symptom: a resumed run whose weights differ from the uninterrupted run's in
    the last digits after one epoch: one state missing (the optimizer's moments, the learning
    rate's schedule, one generator), or a generator reseeded (from the epoch, or from its initial
    seed) where its state should have been restored, which replays an earlier epoch's randomness.
    """
    # TODO: load everything back into the fresh objects and generators; return the epoch
    raise NotImplementedError("17_reproducibility.load_checkpoint is not done yet (stuck? dojo hint 17 load_checkpoint)")
