"""Known-wrong answers (decoys) and known-right alternatives for kata 19 (see dojo/variants.py)."""

import contextlib
import copy
import os
import random

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset

from dojo.variants import alternative, decoy

# ---------------------------------------------------------------- process_group


@decoy("tears the group down after a clean exit only: a block that raises leaves the group behind")
def process_group(backend):
    @contextlib.contextmanager
    def group():
        dist.init_process_group(backend)
        yield dist.get_rank(), dist.get_world_size()
        dist.destroy_process_group()

    return group()


@decoy("never tears the group down: the next attempt to make one fails")
def process_group(backend):
    @contextlib.contextmanager
    def group():
        dist.init_process_group(backend)
        yield dist.get_rank(), dist.get_world_size()

    return group()


@decoy("swallows the block's exception: the caller never learns that training failed")
def process_group(backend):
    @contextlib.contextmanager
    def group():
        dist.init_process_group(backend)
        try:
            yield dist.get_rank(), dist.get_world_size()
        except Exception:
            pass
        finally:
            dist.destroy_process_group()

    return group()


@decoy("takes the rank from LOCAL_RANK: on two machines both processes claim rank 0")
def process_group(backend):
    @contextlib.contextmanager
    def group():
        rank, world = int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"])
        dist.init_process_group(backend, rank=rank, world_size=world)
        try:
            yield rank, world
        finally:
            dist.destroy_process_group()

    return group()


@decoy("yields the environment's strings: '0' == 0 is False, and range(world_size) fails")
def process_group(backend):
    @contextlib.contextmanager
    def group():
        dist.init_process_group(backend)
        try:
            yield os.environ["RANK"], os.environ["WORLD_SIZE"]
        finally:
            dist.destroy_process_group()

    return group()


@alternative("explicit env:// with the rank and world size read from the environment")
def process_group(backend):
    @contextlib.contextmanager
    def group():
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        dist.init_process_group(backend, init_method="env://", rank=rank, world_size=world)
        try:
            yield rank, world
        finally:
            dist.destroy_process_group()

    return group()


@alternative("a class with __enter__ and __exit__ instead of a generator")
class process_group:
    def __init__(self, backend):
        self.backend = backend

    def __enter__(self):
        if self.backend == "nccl":
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        dist.init_process_group(self.backend)
        return dist.get_rank(), dist.get_world_size()

    def __exit__(self, *exc):
        dist.destroy_process_group()
        return False


# ---------------------------------------------------------------- distributed_loader


@decoy("a shuffling DataLoader in every process: every rank trains on the whole data set")
def distributed_loader(dataset, batch_size, seed, num_workers=0):
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers)


@decoy("a different seed on each rank: the ranks' permutations differ, so their shards overlap")
def distributed_loader(dataset, batch_size, seed, num_workers=0):
    sampler = DistributedSampler(dataset, shuffle=True, seed=seed + dist.get_rank())
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers)


@decoy("the sampler without shuffling: every epoch in index order")
def distributed_loader(dataset, batch_size, seed, num_workers=0):
    sampler = DistributedSampler(dataset, shuffle=False)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers)


@decoy("forgets the seed: the sampler's default seed, whatever the caller asked for")
def distributed_loader(dataset, batch_size, seed, num_workers=0):
    sampler = DistributedSampler(dataset, shuffle=True)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers)


@decoy("drop_last=True in the sampler: the samples of a ragged end are never trained on")
def distributed_loader(dataset, batch_size, seed, num_workers=0):
    sampler = DistributedSampler(dataset, shuffle=True, seed=seed, drop_last=True)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers)


@decoy("shuffle=True next to a sampler: DataLoader refuses the pair (ValueError)")
def distributed_loader(dataset, batch_size, seed, num_workers=0):
    sampler = DistributedSampler(dataset, shuffle=True, seed=seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=True, num_workers=num_workers)


@decoy("a shard by hand, shuffled by the global generator: uneven batch counts and no seed")
def distributed_loader(dataset, batch_size, seed, num_workers=0):
    shard = Subset(dataset, range(dist.get_rank(), len(dataset), dist.get_world_size()))
    return DataLoader(shard, batch_size=batch_size, shuffle=True, num_workers=num_workers)


@decoy("drops num_workers: the data is loaded in the training process")
def distributed_loader(dataset, batch_size, seed, num_workers=0):
    sampler = DistributedSampler(dataset, shuffle=True, seed=seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler)


@alternative("rank and world size passed to the sampler explicitly")
def distributed_loader(dataset, batch_size, seed, num_workers=0):
    sampler = DistributedSampler(
        dataset, num_replicas=dist.get_world_size(), rank=dist.get_rank(), shuffle=True, seed=seed
    )
    return DataLoader(dataset, batch_size, shuffle=False, sampler=sampler, num_workers=num_workers)


# ---------------------------------------------------------------- begin_epoch


@decoy("does nothing: every epoch shuffles exactly like the first")
def begin_epoch(loader, epoch):
    pass


@decoy("seeds torch's global generator: the sampler has a generator of its own")
def begin_epoch(loader, epoch):
    torch.manual_seed(epoch)


@decoy("rank 0 alone moves on to the next epoch: the ranks' permutations differ and the shards overlap")
def begin_epoch(loader, epoch):
    if dist.get_rank() == 0:
        loader.sampler.set_epoch(epoch)


@decoy("overwrites the seed with the epoch: every seed gives the same run")
def begin_epoch(loader, epoch):
    loader.sampler.seed = epoch


@decoy("a random epoch number: a new order each time, but not reproducible")
def begin_epoch(loader, epoch):
    loader.sampler.set_epoch(random.randrange(1 << 30))


@alternative("through the batch sampler, which holds the same sampler")
def begin_epoch(loader, epoch):
    loader.batch_sampler.sampler.set_epoch(epoch)


# ---------------------------------------------------------------- eval_shard


@decoy("the training sampler: it pads the last shard by repeating samples, which count twice")
def eval_shard(dataset, rank, world):
    return Subset(dataset, list(DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=False)))


@decoy("equal contiguous chunks of len // world: the remainder is never evaluated")
def eval_shard(dataset, rank, world):
    size = len(dataset) // world
    return Subset(dataset, range(rank * size, (rank + 1) * size))


@decoy("the whole set on every rank: each sample counted world times")
def eval_shard(dataset, rank, world):
    return dataset


@decoy("a fresh random permutation in each call: each rank's permutation differs, so the parts overlap")
def eval_shard(dataset, rank, world):
    return Subset(dataset, torch.randperm(len(dataset))[rank::world].tolist())


@alternative("contiguous parts whose sizes differ by at most one")
def eval_shard(dataset, rank, world):
    return Subset(dataset, torch.tensor_split(torch.arange(len(dataset)), world)[rank].tolist())


@alternative("a list of the indices congruent to the rank")
def eval_shard(dataset, rank, world):
    return Subset(dataset, [i for i in range(len(dataset)) if i % world == rank])


# ---------------------------------------------------------------- wrap_model


@decoy("names the device for a CPU model too: DistributedDataParallel refuses device_ids for CPU modules")
def wrap_model(model, device):
    return DistributedDataParallel(model, device_ids=[torch.device(device)])


@decoy("no wrapper: the ranks start apart and drift further apart with every step")
def wrap_model(model, device):
    return model


@decoy("wraps a copy: the caller's model never trains")
def wrap_model(model, device):
    device = torch.device(device)
    return DistributedDataParallel(copy.deepcopy(model), device_ids=[device] if device.type == "cuda" else None)


@alternative("device_ids from the device's index, None on the CPU")
def wrap_model(model, device):
    device = torch.device(device)
    return DistributedDataParallel(model, device_ids=None if device.type == "cpu" else [device.index])


# ---------------------------------------------------------------- accumulate_gradients


@decoy("no no_sync: the gradients are all-reduced after every micro-batch")
def accumulate_gradients(wrapped, micro_batches, loss_fn):
    total = 0.0
    for inputs, targets in micro_batches:
        loss = loss_fn(wrapped(inputs), targets)
        (loss / len(micro_batches)).backward()
        total += loss.item()
    return total / len(micro_batches)


@decoy("every micro-batch under no_sync, the last one too: the gradients are never averaged")
def accumulate_gradients(wrapped, micro_batches, loss_fn):
    total = 0.0
    with wrapped.no_sync():
        for inputs, targets in micro_batches:
            loss = loss_fn(wrapped(inputs), targets)
            (loss / len(micro_batches)).backward()
            total += loss.item()
    return total / len(micro_batches)


@decoy("the losses are not divided by k: the gradient of the sum, k times too large")
def accumulate_gradients(wrapped, micro_batches, loss_fn):
    total, k = 0.0, len(micro_batches)
    for i, (inputs, targets) in enumerate(micro_batches):
        with wrapped.no_sync() if i < k - 1 else contextlib.nullcontext():
            loss = loss_fn(wrapped(inputs), targets)
            loss.backward()
        total += loss.item()
    return total / k


@decoy("returns the last micro-batch's loss tensor: not the mean, not a float")
def accumulate_gradients(wrapped, micro_batches, loss_fn):
    k = len(micro_batches)
    for i, (inputs, targets) in enumerate(micro_batches):
        with wrapped.no_sync() if i < k - 1 else contextlib.nullcontext():
            loss = loss_fn(wrapped(inputs), targets)
            (loss / k).backward()
    return loss


@alternative("an ExitStack that enters no_sync for all but the last micro-batch")
def accumulate_gradients(wrapped, micro_batches, loss_fn):
    losses = []
    for i, (inputs, targets) in enumerate(micro_batches):
        with contextlib.ExitStack() as stack:
            if i + 1 < len(micro_batches):
                stack.enter_context(wrapped.no_sync())
            loss = loss_fn(wrapped(inputs), targets) / len(micro_batches)
            loss.backward()
        losses.append(loss.detach())
    return float(torch.stack(losses).sum())


@alternative("the first k - 1 micro-batches in one no_sync block, the last one after it")
def accumulate_gradients(wrapped, micro_batches, loss_fn):
    *first, (x_last, y_last) = micro_batches
    k = len(micro_batches)
    losses = []
    with wrapped.no_sync():
        for inputs, targets in first:
            loss = loss_fn(wrapped(inputs), targets)
            (loss / k).backward()
            losses.append(loss.item())
    loss = loss_fn(wrapped(x_last), y_last)
    (loss / k).backward()
    losses.append(loss.item())
    return sum(losses) / k


# ---------------------------------------------------------------- global_mean


@decoy("the mean of the ranks' means: a rank with few samples weighs as much as one with many")
def global_mean(total, count, device):
    mean = torch.tensor(total / count, dtype=torch.float64, device=device)
    dist.all_reduce(mean)
    return mean.item() / dist.get_world_size()


@decoy("in float32: 2**24 + 1 is rounded before it is summed")
def global_mean(total, count, device):
    sums = torch.tensor([total, count], dtype=torch.float32, device=device)
    dist.all_reduce(sums)
    return (sums[0] / sums[1]).item()


@decoy("sums the totals but assumes every rank has this rank's count")
def global_mean(total, count, device):
    t = torch.tensor(float(total), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.item() / (count * dist.get_world_size())


@decoy("reduces to rank 0 only: the other ranks divide their own partial sums")
def global_mean(total, count, device):
    sums = torch.tensor([float(total), float(count)], dtype=torch.float64, device=device)
    dist.reduce(sums, dst=0)
    return (sums[0] / sums[1]).item()


@decoy("returns a 0-d tensor, not a Python float")
def global_mean(total, count, device):
    sums = torch.tensor([float(total), float(count)], dtype=torch.float64, device=device)
    dist.all_reduce(sums)
    return sums[0] / sums[1]


@alternative("every rank's pair gathered as Python objects, summed in Python floats")
def global_mean(total, count, device):
    pairs = [None] * dist.get_world_size()
    dist.all_gather_object(pairs, (float(total), int(count)))
    return sum(t for t, _ in pairs) / sum(c for _, c in pairs)


@alternative("two all-reduces, one for the total and one for the count")
def global_mean(total, count, device):
    t = torch.tensor(total, dtype=torch.float64, device=device)
    c = torch.tensor(count, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    dist.all_reduce(c)
    return float(t / c)


# ---------------------------------------------------------------- save_on_rank0


@decoy("saves the wrapper's state dict: every key starts with 'module.' and a plain model refuses it")
def save_on_rank0(path, wrapped, **extra):
    if dist.get_rank() == 0:
        torch.save({"model": wrapped.state_dict(), **extra}, path)
    dist.barrier()


@decoy("no barrier: the other ranks read the file before rank 0 has finished writing it")
def save_on_rank0(path, wrapped, **extra):
    if dist.get_rank() == 0:
        torch.save({"model": wrapped.module.state_dict(), **extra}, path)


@decoy("the barrier before the write: the other ranks still read too early")
def save_on_rank0(path, wrapped, **extra):
    dist.barrier()
    if dist.get_rank() == 0:
        torch.save({"model": wrapped.module.state_dict(), **extra}, path)


@decoy("every rank writes: several processes race on one file")
def save_on_rank0(path, wrapped, **extra):
    torch.save({"model": wrapped.module.state_dict(), **extra}, path)
    dist.barrier()


@decoy("the barrier inside rank 0's branch: rank 0 waits for ranks that never come")
def save_on_rank0(path, wrapped, **extra):
    if dist.get_rank() == 0:
        torch.save({"model": wrapped.module.state_dict(), **extra}, path)
        dist.barrier()


@decoy("the extra entries nested under one key: checkpoint['epoch'] is missing")
def save_on_rank0(path, wrapped, **extra):
    if dist.get_rank() == 0:
        torch.save({"model": wrapped.module.state_dict(), "extra": extra}, path)
    dist.barrier()


@decoy("the other ranks save a copy of their own next to rank 0's file: they must write nothing, anywhere")
def save_on_rank0(path, wrapped, **extra):
    rank = dist.get_rank()
    torch.save({"model": wrapped.module.state_dict(), **extra}, path if rank == 0 else f"{path}.rank{rank}")
    dist.barrier()


@alternative("rank 0 writes a temporary file in the same folder and renames it: readers never see half a file")
def save_on_rank0(path, wrapped, **extra):
    if dist.get_rank() == 0:
        partial = f"{path}.partial"
        torch.save({"model": wrapped.module.state_dict(), **extra}, partial)
        os.replace(partial, path)
    dist.barrier()


@alternative("strips the 'module.' prefix from the wrapper's state dict")
def save_on_rank0(path, wrapped, **extra):
    if dist.get_rank() == 0:
        state = {k.removeprefix("module."): v for k, v in wrapped.state_dict().items()}
        torch.save({"model": state, **extra}, path)
    dist.barrier()


# ---------------------------------------------------------------- load_on_every_rank


@decoy("no map_location: each tensor goes back to the device it was saved from, or fails without it")
def load_on_every_rank(path, device):
    return torch.load(path, weights_only=True)


@decoy("weights_only=False: a checkpoint from elsewhere runs its code while loading")
def load_on_every_rank(path, device):
    return torch.load(path, map_location=device, weights_only=False)


@decoy("always to the CPU: a GPU rank gets CPU tensors", needs="cuda")
def load_on_every_rank(path, device):
    return torch.load(path, map_location="cpu", weights_only=True)


@alternative("the device as a string, weights_only left at its default")
def load_on_every_rank(path, device):
    return torch.load(path, map_location=str(device))


@alternative("a map_location function that moves each storage")
def load_on_every_rank(path, device):
    device = torch.device(device)
    return torch.load(path, map_location=lambda storage, _location: storage.to(device=device), weights_only=True)
