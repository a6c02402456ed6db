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

    - `__init__(x, y)`: keep both tensors. They must have the same number of rows (first
      dimension); otherwise raise `ValueError` with a message that names both counts, e.g.
      "x has 5 rows but y has 4": a mismatch found now is better than a wrong pairing found never.
    - `__len__()`: the number of samples, as an int.
    - `__getitem__(index)`: the tuple `(x[index], y[index])`. Indices count from the end when
      negative, as for any Python sequence (-1 is the last sample, -len(self) the first); an index
      outside -len(self) .. len(self) - 1 raises `IndexError` (indexing a tensor already does).

    The IndexError is part of the protocol: `for sample in dataset` (and `list(dataset)`) call
    `__getitem__(0)`, `(1)`, ... until IndexError, so an index that wraps around (`index % n`)
    or is clamped makes that loop endless. `torch.utils.data.TensorDataset` does all this; write
    it yourself here.
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
    """A dataset over a folder of files, one sample per file, read only when asked for.

    - `__init__(root, loader=torch.load, suffix=".pt")`: find the files directly inside `root`
      whose names end with `suffix` (other files are not samples), sorted by name, and keep
      their paths and `loader`. Open none of them: a dataset of a million images must start at
      once and hold only names, also in each worker process, which gets its own copy.
    - `__len__()`: the number of such files.
    - `__getitem__(index)`: call `loader(path)` on the index-th path (in name order) and return
      what it returns. Exactly one file per call: no loading all files to pick one, no cache of
      loaded samples (memory would grow with every sample seen).

    Sort the names: `os.listdir`, `Path.iterdir` and `glob` return them in whatever order the
    file system keeps, which differs between machines, and sample i must be the same file
    everywhere.
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
    """Split `dataset` at random into training and validation parts; return a loader for each.

    - Sizes: the validation part gets `round(val_fraction * len(dataset))` samples, training the
      rest. Compute one size and subtract: `int(0.7 * 7) + int(0.3 * 7)` is 6, not 7, and
      `int(0.3 * 9)` is 2, not 3 (0.3 * 9 is 2.6999999999999997).
    - Split with `torch.utils.data.random_split(dataset, [n_train, n_val], generator=...)` and a
      `torch.Generator` seeded with `seed`: without it the split comes from the global random
      generator, so any earlier random call (a model's initialization) changes which samples are
      validation ones. Do not reseed the global generator either (`torch.manual_seed` here would
      reset everyone else's random stream).
    - The training loader shuffles (`shuffle=True`) with its own generator seeded with `seed`,
      so its order also depends on `seed` only. The validation loader does not shuffle: it
      visits the same samples in the same order every time, which makes its loss comparable
      between epochs and its predictions line up with its samples.
    - Both use `batch_size` and keep the last, smaller batch.
    """
    # TODO: a seeded random_split into a shuffling train loader and an ordered validation loader
    raise NotImplementedError("10_dataset_dataloader.train_val_loaders is not done yet (stuck? dojo hint 10 train_val_loaders)")


def pad_collate(
    batch: Sequence[tuple[torch.Tensor, int]], padding_value: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A `collate_fn` for samples `(sequence, label)` whose sequences differ in length.

    Each `sequence` has shape (L_i, *features) (token ids of shape (L_i,), or feature vectors of
    shape (L_i, F)); each `label` is an int. Return `(padded, lengths, labels)`:
    - `padded`: shape (B, L_max, *features), batch first, with the sequences' dtype and device;
      positions past a sequence's end hold `padding_value`.
    - `lengths`: the original L_i as an int64 tensor of shape (B,) on the CPU (what
      `pack_padded_sequence` and masks need; a list cannot be moved, masked or compared in bulk).
    - `labels`: an int64 tensor of shape (B,).

    The default collate stacks samples, which fails as soon as two lengths differ
    ("stack expects each tensor to be equal size"). `torch.nn.utils.rnn.pad_sequence` pads; mind
    its `batch_first` default (False: it returns (L_max, B, ...)). To use another padding value
    in a DataLoader: `collate_fn=functools.partial(pad_collate, padding_value=-1.0)`.
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
    """A `worker_init_fn`: seed every random generator of a DataLoader worker from its torch seed.

    Each worker process starts with a torch seed of its own, `base_seed + worker_id`, where the
    loader draws `base_seed` from its `generator` at the start of every epoch; `torch.initial_seed()`
    returns it inside the worker. Seed from it, with `seed = torch.initial_seed() % 2**32`
    (numpy accepts seeds below 2**32 only):
    - numpy's global RNG: `np.random.seed(seed)`;
    - Python's `random`: `random.seed(seed)`;
    - inside a worker (`torch.utils.data.get_worker_info()` is not None), if the worker's copy of
      the dataset (`info.dataset`) has an attribute `rng`, replace it with
      `np.random.default_rng(seed)`. Outside a worker, skip this step.

    Why: PyTorch (since 1.9) gives numpy's global RNG and `random` per-worker seeds itself, but
    a generator the dataset owns is copied into every worker in the same state, so all workers
    draw the same "random" augmentations, and again every epoch. Seeding from torch's seed
    keeps one seed in charge of everything: the loader's generator decides it all.
    Define this function at module level (not a lambda or a nested function): with the "spawn"
    start method (macOS, Windows) the loader pickles it to send it to each worker.
    """
    # TODO: a worker_init_fn that seeds numpy, random and the dataset's rng from torch.initial_seed()
    raise NotImplementedError("10_dataset_dataloader.seed_worker is not done yet (stuck? dojo hint 10 seed_worker)")


def make_reproducible_loader(dataset: Dataset, batch_size: int, seed: int, num_workers: int = 2) -> DataLoader:
    """Return a shuffling DataLoader with `num_workers` worker processes whose batches, random
    augmentations included, are the same on every run with the same `seed`.

    Two things make it so: a `torch.Generator` seeded with `seed` as the loader's `generator`
    (it draws the shuffle order and each epoch's worker seeds; without it both come from the
    global RNG), and `worker_init_fn=seed_worker`, which seeds each worker's random generators
    from its torch seed. Each epoch still differs from the last: the generator moves on.
    """
    # TODO: a shuffling loader with worker processes that gives the same batches on every run
    raise NotImplementedError("10_dataset_dataloader.make_reproducible_loader is not done yet (stuck? dojo hint 10 make_reproducible_loader)")
