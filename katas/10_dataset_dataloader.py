"""Kata 10: Datasets and DataLoaders.

A `Dataset` answers two questions, how many samples (`__len__`) and what is sample i
(`__getitem__`); a `DataLoader` asks them in some order, batches the answers with a `collate_fn`
and can ask from several worker processes at once. Most data bugs live at this boundary: a
dataset that loads everything up front, a validation split that depends on whatever last used
the global random generator, sequences that cannot be stacked, workers that repeat each other's
random augmentations. Run `dojo` to see which exercise is next and `dojo hint 10` when stuck.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset, get_worker_info, random_split


class PairDataset(Dataset):
    """A map-style dataset over two tensors: sample i is the pair `(x[i], y[i])`.

    - `__init__(x, y)`: keep both tensors. They must have the same number of rows (the first
      dimension; the other dimensions may differ, as for inputs of shape (N, 3) and labels of
      shape (N,)). Otherwise raise `ValueError` with a message that names both counts, e.g.
      "x has 5 rows but y has 4": a mismatch found now is better than a wrong pairing found never.
    - `__len__()`: the number of samples, as an int.
    - `__getitem__(index)`: the tuple `(x[index], y[index])`. Negative indices count from the
      end, as for any Python sequence (-1 is the last sample, -len(self) the first); an index
      outside -len(self) .. len(self) - 1 raises `IndexError` (with any message).

    The IndexError is part of the protocol, not a nicety: `for sample in dataset` and
    `list(dataset)` ask for samples 0, 1, 2, ... until one raises IndexError, so a dataset that
    wraps an index around or clamps it turns every such loop into an endless one.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        # TODO (__init__): a map-style dataset of (x[i], y[i]) pairs, with IndexError past the end
        raise NotImplementedError("10_dataset_dataloader.PairDataset.__init__ is not done yet (stuck? dojo hint 10 PairDataset)")

    def __len__(self) -> int:
        # TODO (__len__): a map-style dataset of (x[i], y[i]) pairs, with IndexError past the end
        raise NotImplementedError("10_dataset_dataloader.PairDataset.__len__ is not done yet (stuck? dojo hint 10 PairDataset)")

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        # TODO (__getitem__): a map-style dataset of (x[i], y[i]) pairs, with IndexError past the end
        raise NotImplementedError("10_dataset_dataloader.PairDataset.__getitem__ is not done yet (stuck? dojo hint 10 PairDataset)")


class LazyFileDataset(Dataset):
    """A dataset over a folder of files, one sample per file, each read only when asked for.

    - `__init__(root, loader=torch.load, suffix=".pt")`: `root` is a folder, given as a str or a
      Path. The samples are the files directly inside it (not the files in its subfolders) whose
      names end with `suffix`, which may hold more than one dot (".tar.gz"); other files are no
      samples. Open none of them here: a dataset over a million files must start at once and
      carry only names, and every worker process gets a copy of it (a pickled copy where workers
      are started with "spawn", so the dataset must survive pickling).
    - `__len__()`: the number of samples.
    - `__getitem__(index)`: sample `index` in the order of the file names (sorted as strings) is
      what `loader(path)` returns for that file's full path (a str or a Path). Exactly one file
      is loaded per call, also for a sample asked for before: no loading every file to pick one,
      no cache of loaded samples (its memory would grow with every sample seen). Indices work as
      for a list: negative ones count from the end, one out of range raises IndexError (any
      message).

    A folder lists its files in whatever order its file system keeps them, which differs from
    machine to machine; sample i must be the same file everywhere.
    """

    def __init__(self, root: str | Path, loader: Callable[[Path], Any] = torch.load, suffix: str = ".pt") -> None:
        # TODO (__init__): one file per sample, opened only in __getitem__
        raise NotImplementedError("10_dataset_dataloader.LazyFileDataset.__init__ is not done yet (stuck? dojo hint 10 LazyFileDataset)")

    def __len__(self) -> int:
        # TODO (__len__): one file per sample, opened only in __getitem__
        raise NotImplementedError("10_dataset_dataloader.LazyFileDataset.__len__ is not done yet (stuck? dojo hint 10 LazyFileDataset)")

    def __getitem__(self, index: int) -> Any:
        # TODO (__getitem__): one file per sample, opened only in __getitem__
        raise NotImplementedError("10_dataset_dataloader.LazyFileDataset.__getitem__ is not done yet (stuck? dojo hint 10 LazyFileDataset)")


def train_val_loaders(
    dataset: Dataset, val_fraction: float, batch_size: int, seed: int
) -> tuple[DataLoader, DataLoader]:
    """Split `dataset` at random into a training and a validation part and return a DataLoader
    for each, `(train_loader, val_loader)`.

    - Sizes: the validation part holds `val_fraction * len(dataset)` samples rounded to the
      nearest integer (a tie such as 2.5 may round either way), the training part all the others;
      every sample is in exactly one part. Mind floating point: 0.3 * 9 is 2.6999999999999997.
    - Which samples go where depends on `seed` alone: the same seed gives the same split whatever
      used torch's global random generator before the call, and another seed another split.
    - The call leaves torch's global random generator as it found it: it neither draws from it
      nor reseeds it (reseeding would reset the random stream of all the code around it).
    - The training loader shuffles: a new order every epoch, and the sequence of orders, too, is
      decided by `seed` alone, whatever else uses the global random generator between epochs.
    - The validation loader does not shuffle: every pass visits its samples in the same order, so
      its loss is comparable between epochs and its predictions line up with its samples.
    - A pass over one loader does not change the other's order: a validation pass between two
      training epochs leaves the second epoch's order as it would have been without it.
    - Both give batches of `batch_size` and keep the last, smaller batch.
    """
    # TODO: a seeded random split into a shuffling train loader and an ordered validation loader
    raise NotImplementedError("10_dataset_dataloader.train_val_loaders is not done yet (stuck? dojo hint 10 train_val_loaders)")


def pad_collate(
    batch: Sequence[tuple[torch.Tensor, int]], padding_value: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A `collate_fn` for samples `(sequence, label)` whose sequences differ in length.

    Each `sequence` has shape (L_i, *features) (token ids of shape (L_i,), or feature vectors of
    shape (L_i, F)); all have one dtype and one device. Each `label` is an int. Return
    `(padded, lengths, labels)`, with the samples in the order of `batch`:
    - `padded`: shape (B, L_max, *features), one row per sample (batch first), with the
      sequences' dtype and device. Row i starts with sequence i; every position past its end
      holds `padding_value`.
    - `lengths`: the L_i as an int64 tensor of shape (B,), on the CPU whatever the sequences'
      device (where packing an RNN's input wants them; a list cannot be moved, masked or compared
      in bulk). These are the lengths of the sequences as given, also where a sequence holds
      values equal to `padding_value`.
    - `labels`: the labels as an int64 tensor of shape (B,).

    The default collate function stacks the samples and fails as soon as two lengths differ
    ("stack expects each tensor to be equal size"). To pad with another value in a DataLoader,
    bind it: `collate_fn=functools.partial(pad_collate, padding_value=-1.0)`.
    """
    # TODO: pad (sequence, label) samples of different lengths into one batch, plus their lengths
    raise NotImplementedError("10_dataset_dataloader.pad_collate is not done yet (stuck? dojo hint 10 pad_collate)")


class AugmentedDataset(Dataset):
    """Given (nothing to do): `n` samples with a random "augmentation" drawn in `__getitem__`.

    Sample i is a float64 tensor `[i, a, b, c]`: its index, then one draw in [0, 1) from each
    random generator an augmentation (a jitter, a crop, a flip) typically uses: `a` from numpy's
    global RNG (`np.random.random()`), `b` from the dataset's own numpy Generator `self.rng`
    (created in `__init__` from `seed`), `c` from Python's `random`. A real dataset would use the
    draws to transform the sample; returning them shows which generator repeats itself.
    """

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n = n
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < self.n:
            raise IndexError(f"index {index} is out of range for AugmentedDataset of length {self.n}")
        return torch.tensor([index, np.random.random(), self.rng.random(), random.random()], dtype=torch.float64)


def seed_worker(worker_id: int) -> None:
    """A `worker_init_fn` that puts every random stream of a DataLoader worker under the loader's seed.

    The DataLoader calls it in each worker process as the worker starts (at every epoch, unless
    the workers persist), with the worker's id, 0 .. num_workers - 1. By then PyTorch has given
    the worker a torch seed of its own (different for each worker, drawn anew every epoch from
    the loader's `generator`, and so the same on every run where that generator is seeded the
    same way) and has seeded numpy's global generator and Python's `random` from it. A generator
    the dataset owns is another matter: each worker gets a copy of the dataset whose `rng` is in
    the very state the original was in, so all workers draw the same "random" augmentations, and
    the same again every epoch.

    After `seed_worker` has run, each of three streams, numpy's global generator, Python's
    `random` and, where the worker's copy of the dataset has an attribute `rng`, that numpy
    Generator, must in every worker:
    - differ from the other workers' (no two samples of an epoch share a draw);
    - change every epoch (epoch 2 does not replay epoch 1's augmentations);
    - repeat exactly on every run with the same seed for the loader's generator, whatever the
      main process did with its own random generators (the worker's torch seed decides it all).
    A worker's torch seed is a number below 2**64, most often far above 2**32. A dataset without
    an `rng` attribute works as well: it has no generator to replace.
    """
    # TODO: a worker_init_fn that seeds numpy, random and the dataset's rng from the worker's torch seed
    raise NotImplementedError("10_dataset_dataloader.seed_worker is not done yet (stuck? dojo hint 10 seed_worker)")


def make_reproducible_loader(dataset: Dataset, batch_size: int, seed: int, num_workers: int = 2) -> DataLoader:
    """A shuffling DataLoader over `dataset`, in batches of `batch_size`, with `num_workers` worker
    processes, whose batches, random augmentations included, are the same on every run with the
    same `seed`.

    - Two runs with the same `seed` give the same sample order and the same draws from each
      worker's random streams (numpy's global generator, Python's `random`, the dataset's own
      `rng`), whatever the main process's global random generators did before or in between;
      another seed gives another order.
    - Each epoch reshuffles and draws new augmentations; within an epoch no two samples share a
      draw. (`seed_worker` above is what each worker needs.)
    - Building the loader leaves torch's global random generator as it found it.
    - It must also work where workers are started with "spawn" (macOS, Windows): each worker then
      receives the dataset, the collate function and the worker init function pickled, and a
      lambda or a function defined inside another one cannot be pickled.
    """
    # TODO: a shuffling loader with worker processes that gives the same batches on every run
    raise NotImplementedError("10_dataset_dataloader.make_reproducible_loader is not done yet (stuck? dojo hint 10 make_reproducible_loader)")
