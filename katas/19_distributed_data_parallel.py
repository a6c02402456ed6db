"""Kata 19: distributed data parallel.

Data parallel training runs one process per GPU (or several processes on a CPU). Each process
holds a full copy of the model and trains on its own shard of every epoch; after each backward
pass the processes average their gradients, so every copy takes the same step and the copies
stay identical. PyTorch's engine for this is torch.distributed: `torchrun` starts the processes
and tells each one, in environment variables, its rank (0 .. world size - 1), the world size and
where to meet (the master's address and port); a process group connects them (`gloo` on CPUs,
`nccl` between CUDA GPUs); a wrapper around the model averages the gradients.

Every function of this kata runs in every process: the same code, a different rank. Its traps
are silent: every epoch shuffled the same way, an evaluation set padded with repeated samples, a
metric averaged as a mean of per-rank means, every rank writing the same checkpoint, a state
dict whose keys all start with "module." and no longer load into a plain model, an accumulation
loop that averages gradients over the network on every micro-batch. The tests start two real
processes on the CPU. `dojo train --nproc 2` uses these functions to train kata 12's LeNet. Run
`dojo` to see which exercise is next and `dojo hint 19` when stuck.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset


@contextmanager
def process_group(backend: str) -> Iterator[tuple[int, int]]:
    """A context manager: `with process_group("gloo") as (rank, world_size): ...`.

    On entry, join the default process group of this run with `backend` ("gloo" or "nccl"),
    meeting the other processes where torchrun's environment variables say: RANK (this
    process's rank among all processes, on every machine), WORLD_SIZE, MASTER_ADDR and
    MASTER_PORT; LOCAL_RANK is the rank on this machine, which is not the same thing once there
    are several machines. Inside the block, collective operations between the processes work,
    and `(rank, world_size)` is what the block receives, as two Python ints. With "nccl", each
    process drives its own GPU: the current CUDA device is the one numbered LOCAL_RANK.

    On exit the group is torn down, also when the block raises (the exception goes on to the
    caller unchanged): a group left behind makes the next attempt to join one fail, and keeps
    the other processes waiting.
    """
    # TODO: join the default process group from torchrun's environment, yield (rank, world_size), always tear it down
    raise NotImplementedError("19_distributed_data_parallel.process_group is not done yet (stuck? dojo hint 19 process_group)")


def distributed_loader(dataset: Dataset, batch_size: int, seed: int, num_workers: int = 0) -> DataLoader:
    """A training DataLoader for this process, inside a process group: batches of `batch_size`
    samples (per process), loaded by `num_workers` worker processes, from this rank's shard.

    Every process calls it with the same arguments. Within one pass, the shards of the ranks
    are disjoint and together cover the whole data set; each rank's shard is shuffled (not in
    index order), and the order depends on `seed`. Every rank gets the same number of batches,
    also when the data set's size is not a multiple of the world size (a rank with one batch
    more would wait forever for the others to average its last gradients): then a few samples
    are used twice in a pass, never left out. `len(loader.sampler)` is the number of samples
    this rank sees in a pass. The trap: a loader that shuffles the whole data set in every
    process trains each rank on all of it, the world size times the work for the same result.
    """
    # TODO: a DataLoader over this rank's shuffled shard: disjoint shards, same number of batches on every rank
    raise NotImplementedError("19_distributed_data_parallel.distributed_loader is not done yet (stuck? dojo hint 19 distributed_loader)")


def begin_epoch(loader: DataLoader, epoch: int) -> None:
    """Prepare `loader` (made by `distributed_loader`) for epoch number `epoch` (0, 1, 2, ...).

    Afterwards a pass over the loader yields an order that differs from one epoch to the next
    yet is reproducible: the same seed and epoch give the same order, in this loader or in a
    new one (so a resumed run sees the epoch the original run would have seen), and different
    seeds give different orders. The shards of the ranks stay disjoint in every epoch. The
    trap, by its symptom: without this call every epoch shuffles exactly like the first.
    """
    # TODO: tell the loader's sampler which epoch it is, so every epoch has its own reproducible order
    raise NotImplementedError("19_distributed_data_parallel.begin_epoch is not done yet (stuck? dojo hint 19 begin_epoch)")


def eval_shard(dataset: Dataset, rank: int, world: int) -> Dataset:
    """This rank's part of an evaluation set: a Dataset of some of `dataset`'s items (each item
    exactly as `dataset[i]` gives it).

    The parts of ranks 0 .. world - 1 are disjoint and together hold every item exactly once,
    for any size of the data set (sizes may differ by rank; a part may be empty when there are
    fewer items than ranks). It needs no process group: `rank` and `world` say whose part. The
    trap: a sampler that evens out the parts by repeating samples counts those samples twice,
    and the accuracy computed from the parts is no longer the accuracy on the data set.
    """
    # TODO: this rank's part of an evaluation set: disjoint, complete, no repeated samples
    raise NotImplementedError("19_distributed_data_parallel.eval_shard is not done yet (stuck? dojo hint 19 eval_shard)")


def wrap_model(model: nn.Module, device: torch.device) -> nn.Module:
    """`model` (already on `device`) wrapped for data parallel training in the current process
    group: the result's forward gives the model's output, and every backward pass through it
    averages the gradients over all ranks, so that after an optimizer step every rank's copy
    holds the same parameters, those of one step on all the ranks' batches together.

    The caller's `model` is the one being trained (its parameters are the wrapper's, not a
    copy's). On creation every rank's copy starts from rank 0's parameters. It works on a CPU
    (`gloo`) and on CUDA (`nccl`, one GPU per process); naming a GPU for a CPU model is an error.
    """
    # TODO: wrap the model in DistributedDataParallel, naming a GPU only for a CUDA model
    raise NotImplementedError("19_distributed_data_parallel.wrap_model is not done yet (stuck? dojo hint 19 wrap_model)")


def accumulate_gradients(
    wrapped: nn.Module, micro_batches: Sequence[tuple[torch.Tensor, torch.Tensor]], loss_fn: Callable
) -> float:
    """Forward and backward through `wrapped` (as `wrap_model` returns it) for each
    `(inputs, targets)` of `micro_batches` (k >= 1 micro-batches of one size, the same k on
    every rank), accumulating the gradients: afterwards every parameter's `.grad` (which the
    caller zeroed before) holds, on every rank, the gradient of the mean over ranks and
    micro-batches of `loss_fn(wrapped(inputs), targets)`: the gradient one step on the whole
    global batch would get. Neither steps nor zeroes; returns this rank's mean loss over its
    micro-batches as a Python float.

    The gradients cross the network once per call, not once per micro-batch: an accumulation
    loop that averages them after every backward pays k times the communication for the same
    result.
    """
    # TODO: accumulate gradients over micro-batches with no_sync on all but the last; divide each loss by k
    raise NotImplementedError("19_distributed_data_parallel.accumulate_gradients is not done yet (stuck? dojo hint 19 accumulate_gradients)")


def global_mean(total: float, count: int, device: torch.device) -> float:
    """The mean over all ranks' samples, inside a process group: each rank passes the sum of a
    figure over its own samples (`total`, e.g. the summed loss or the number correct) and how
    many samples that was (`count`); every rank gets back the same Python float, sum of all
    totals / sum of all counts: what one process would compute on all the samples, also when
    the ranks hold different numbers of samples (a rank may hold none). The arithmetic is
    exact to float64 precision (totals of millions of samples keep their last digits). Anything
    sent between processes lives on `device` (`nccl` moves only CUDA tensors).

    The trap: the mean of the ranks' means weighs a rank with few samples like a rank with
    many, and is not the figure on the data set.
    """
    # TODO: all-reduce the sum and the count (float64) and divide: the mean over samples, not over ranks
    raise NotImplementedError("19_distributed_data_parallel.global_mean is not done yet (stuck? dojo hint 19 global_mean)")


def save_on_rank0(path: str | os.PathLike, wrapped: nn.Module, **extra) -> None:
    """Save a checkpoint of `wrapped` (as `wrap_model` returns it), called by every rank with
    the same `path`: the file holds a dict `{"model": <the model's state dict>, **extra}`.

    Rank 0 alone writes it; the other ranks write nothing, anywhere (all the copies are
    identical, and several processes writing one file can leave it corrupt). When the call
    returns, on every rank, the file is complete and loads. The state dict loads, with strict
    key matching, into a plain model of the same class that was never wrapped: its keys are
    the model's own, without the wrapper's "module." in front of each.
    """
    # TODO: rank 0 saves {'model': the unwrapped module's state dict, **extra}; then every rank waits at a barrier
    raise NotImplementedError("19_distributed_data_parallel.save_on_rank0 is not done yet (stuck? dojo hint 19 save_on_rank0)")


def load_on_every_rank(path: str | os.PathLike, device: torch.device) -> dict:
    """Load a checkpoint written by `save_on_rank0` in this process, whatever the device it was
    saved from: every tensor of the result is on `device` (this rank's own device: loading a
    checkpoint written from GPU 0 must not put every rank's copy on GPU 0, nor fail on a
    machine that has no such GPU). Every rank reads the file itself. The file is data, not a
    program: loading one that would run code when read raises instead of running it.
    """
    # TODO: torch.load on every rank with map_location=device and weights_only=True
    raise NotImplementedError("19_distributed_data_parallel.load_on_every_rank is not done yet (stuck? dojo hint 19 load_on_every_rank)")
