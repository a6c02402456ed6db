"""Kata 11: DataLoader settings that matter.

A `DataLoader` has a dozen knobs, and most of the mistakes made with them are silent: an option
that only means something with worker processes (and is refused without them), `pin_memory=True`
on a machine with nothing to pin for (a warning each epoch, no gain), a shuffle that follows the
global random state, a dataset of in-memory tensors fetched one sample at a time by a Python loop,
a `non_blocking=True` copy from memory that cannot be copied asynchronously, a throughput figure
that counts the workers' start-up or stops the clock before the GPU is done. Run `dojo` to see
which exercise is next and `dojo hint 11` when stuck.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    num_workers: int = 0,
    pin_memory: bool = False,
    persistent_workers: bool = False,
    prefetch_factor: int = 2,
    seed: int = 0,
    collate_fn: Callable[[Any], Any] | None = None,
) -> DataLoader:
    """Return a `DataLoader` over `dataset` that reshuffles at every epoch, with each of these
    settings taking effect where it means something and left out where it does not:

    - `batch_size`, `num_workers` and `collate_fn` (None: the default collate) as given.
    - `persistent_workers` and `prefetch_factor` apply to worker processes: with workers, the
      loader has the values given; with `num_workers=0` the call must still succeed, whatever
      their values (a loader built naively refuses them: "ValueError: persistent_workers option
      needs num_workers > 0", "ValueError: prefetch_factor option could only be specified in
      multiprocessing...").
    - `pin_memory=True` pins the batches on a machine with an accelerator (a GPU) to copy them
      to. On a machine without one the loader must not pin, and must not warn at every epoch
      ("'pin_memory' argument is set as true but no accelerator is found, then device pinned
      memory won't be used.").
    - The order depends on `seed` alone: two loaders built with the same seed visit the samples
      in the same order, whatever else drew from the global random number generator before or
      in between, and another seed gives another order.
    """
    # BEGIN SOLUTION
    extra: dict[str, Any] = {}
    if num_workers > 0:
        # Worker-only settings: passing them with num_workers=0 raises, even when "off".
        extra.update(persistent_workers=persistent_workers, prefetch_factor=prefetch_factor)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=num_workers,
        collate_fn=collate_fn,
        # Pin only where a copy to an accelerator can use it; DataLoader asks the same question.
        pin_memory=pin_memory and torch.accelerator.is_available(),
        # The sampler draws each epoch's permutation (and the workers' seeds) from this generator.
        generator=torch.Generator().manual_seed(seed),
        **extra,
    )
    # END SOLUTION


def keep_batch(batch: Any) -> Any:
    """A `collate_fn` that returns what the dataset gave unchanged (given, nothing to do).

    Use it with a dataset whose `__getitems__` already returns a finished batch, such as
    `InMemoryDataset`: `DataLoader(dataset, batch_size=64, collate_fn=keep_batch)`. (A module
    level function, not a lambda, so that worker processes can receive it.)
    """
    return batch


class InMemoryDataset(Dataset):
    """A dataset over tensors already in memory (on any device), like `TensorDataset`, that
    gives the DataLoader a whole batch at once.

    Sample `i` is `(tensors[0][i], tensors[1][i], ...)`: all tensors have the same length along
    dim 0. A DataLoader fetches a batch by calling `dataset[i]` once per index and then stacking
    the samples (the default collate): for small samples in memory that Python loop is most of
    the loading time. If the dataset has a `__getitems__(indices)` method, the DataLoader calls
    it instead, once per batch, with the batch's indices as a list of ints, and hands its
    result to `collate_fn`.

    The contract here: `__getitems__` returns the finished batch, a tuple with one tensor per
    stored tensor, each holding the rows `indices` in that order (one indexing per tensor, no
    loop over the indices, no call to `__getitem__`). Use it with `collate_fn=keep_batch`:
    the default collate would take that tuple for a list of samples and stack it again. Batches
    then equal those of a `TensorDataset` with the default collate.
    """

    def __init__(self, *tensors: torch.Tensor) -> None:
        """Keep the tensors (all with the same size of dim 0); nothing is copied."""
        # BEGIN SOLUTION
        self.tensors = tensors
        # END SOLUTION

    def __len__(self) -> int:
        """The number of samples: the size of dim 0."""
        # BEGIN SOLUTION
        return self.tensors[0].shape[0]
        # END SOLUTION

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        """Sample `index`: a tuple with row `index` of each tensor."""
        # BEGIN SOLUTION
        return tuple(t[index] for t in self.tensors)
        # END SOLUTION

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        """The batch of samples `indices`: a tuple with rows `indices` of each tensor."""
        # BEGIN SOLUTION
        # Indexing with the whole list gathers every row in one operation per tensor (in C++),
        # instead of a Python call and a small tensor per sample.
        return tuple(t[indices] for t in self.tensors)
        # END SOLUTION


def move_batch(batch: Sequence[torch.Tensor], device: torch.device | str) -> Sequence[torch.Tensor]:
    """Return `batch` (a tuple or list of tensors, as a DataLoader gives it) with every tensor
    moved to `device`, values unchanged, in a container of the same type (a tuple stays a tuple,
    a list a list).

    A tensor in page-locked ("pinned") memory, as a `pin_memory=True` loader gives them on a GPU
    machine, is copied without making the host wait, so the copy overlaps with the GPU's work.
    Every other tensor is copied the ordinary, blocking way: asking for a copy that does not wait
    from ordinary (pageable) memory gets a synchronous copy anyway and only misleads the reader.
    Decide per tensor: a batch can mix pinned and unpinned tensors.
    """
    # BEGIN SOLUTION
    return type(batch)(t.to(device, non_blocking=t.is_pinned()) for t in batch)
    # END SOLUTION


def samples_per_second(
    loader: Iterable[Sequence[torch.Tensor]], device: torch.device | str, warmup_batches: int = 2
) -> float:
    """Return how many samples per second `loader` delivers to `device`, as a float.

    Go through the loader once, moving every batch to `device` as `move_batch` does. A batch is
    a tuple or list of tensors whose first tensor holds the samples along dim 0: a batch of 64
    samples counts 64 (not 1, and not the number of tensors in it); the last batch may be short.

    Measure honestly (time with one of the clocks of Python's `time` module):
    - The first `warmup_batches` batches are fetched and moved but neither timed nor counted:
      they pay for starting the workers, filling the prefetch queue and warming the allocator.
      Every later batch is timed from the moment its fetch begins.
      If no batch is left to time after them, raise `ValueError` with a message that mentions
      the warm-up.
    - On a CUDA device copies and kernels run asynchronously. GPU work queued before the call
      must not be counted, and the clock must not stop before the last copies have arrived;
      but waiting for the GPU after every batch would keep loading and copying from
      overlapping and understate the throughput: wait only right before each clock reading.
      For any other device do not wait on CUDA at all (on a machine without CUDA that raises).
    """
    # BEGIN SOLUTION
    device = torch.device(device)
    cuda = device.type == "cuda"
    batches = iter(loader)
    for _ in range(warmup_batches):
        batch = next(batches, None)
        if batch is None:
            break
        move_batch(batch, device)
    if cuda:
        torch.cuda.synchronize()  # warm-up copies and earlier work stay out of the timing
    start = time.perf_counter()
    samples = 0
    timed = 0
    for batch in batches:
        move_batch(batch, device)
        samples += batch[0].shape[0]  # samples, not batches: the last batch may be short
        timed += 1
    if cuda:
        torch.cuda.synchronize()  # the last asynchronous copies must have arrived
    elapsed = time.perf_counter() - start
    if timed == 0:
        raise ValueError(f"no batch left to time after {warmup_batches} warm-up batches")
    return samples / elapsed
    # END SOLUTION
