"""Known-wrong answers (decoys) and known-right alternatives for kata 11 (see dojo/variants.py)."""

import time
from time import perf_counter

import torch
from torch.utils.data import DataLoader

from dojo.variants import alternative, decoy

# ---------------------------------------------------------------- make_loader


@decoy(
    "passes the worker-only settings whatever num_workers is: DataLoader raises ValueError with num_workers=0",
    cite="https://github.com/pytorch/pytorch/issues/40458",
)
def make_loader(
    dataset,
    batch_size,
    *,
    num_workers=0,
    pin_memory=False,
    persistent_workers=False,
    prefetch_factor=2,
    seed=0,
    collate_fn=None,
):
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=num_workers,
        collate_fn=collate_fn,
        pin_memory=pin_memory and torch.accelerator.is_available(),
        persistent_workers=persistent_workers,
        prefetch_factor=prefetch_factor,
        generator=torch.Generator().manual_seed(seed),
    )


@decoy("drops the worker-only settings even with workers: persistent_workers and prefetch_factor never arrive")
def make_loader(
    dataset,
    batch_size,
    *,
    num_workers=0,
    pin_memory=False,
    persistent_workers=False,
    prefetch_factor=2,
    seed=0,
    collate_fn=None,
):
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=num_workers,
        collate_fn=collate_fn,
        pin_memory=pin_memory and torch.accelerator.is_available(),
        generator=torch.Generator().manual_seed(seed),
    )


@decoy("passes pin_memory as given: a warning at every epoch on a machine without an accelerator")
def make_loader(
    dataset,
    batch_size,
    *,
    num_workers=0,
    pin_memory=False,
    persistent_workers=False,
    prefetch_factor=2,
    seed=0,
    collate_fn=None,
):
    extra = dict(persistent_workers=persistent_workers, prefetch_factor=prefetch_factor) if num_workers > 0 else {}
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=num_workers,
        collate_fn=collate_fn,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(seed),
        **extra,
    )


@decoy("pins whenever there is an accelerator, asked or not")
def make_loader(
    dataset,
    batch_size,
    *,
    num_workers=0,
    pin_memory=False,
    persistent_workers=False,
    prefetch_factor=2,
    seed=0,
    collate_fn=None,
):
    extra = dict(persistent_workers=persistent_workers, prefetch_factor=prefetch_factor) if num_workers > 0 else {}
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=num_workers,
        collate_fn=collate_fn,
        pin_memory=torch.accelerator.is_available(),
        generator=torch.Generator().manual_seed(seed),
        **extra,
    )


@decoy("seeds the global generator: the order follows whatever else draws from it before the epoch starts")
def make_loader(
    dataset,
    batch_size,
    *,
    num_workers=0,
    pin_memory=False,
    persistent_workers=False,
    prefetch_factor=2,
    seed=0,
    collate_fn=None,
):
    extra = dict(persistent_workers=persistent_workers, prefetch_factor=prefetch_factor) if num_workers > 0 else {}
    torch.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=num_workers,
        collate_fn=collate_fn,
        pin_memory=pin_memory and torch.accelerator.is_available(),
        **extra,
    )


@decoy("a generator, but never seeded with seed: every seed gives the same order")
def make_loader(
    dataset,
    batch_size,
    *,
    num_workers=0,
    pin_memory=False,
    persistent_workers=False,
    prefetch_factor=2,
    seed=0,
    collate_fn=None,
):
    extra = dict(persistent_workers=persistent_workers, prefetch_factor=prefetch_factor) if num_workers > 0 else {}
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=num_workers,
        collate_fn=collate_fn,
        pin_memory=pin_memory and torch.accelerator.is_available(),
        generator=torch.Generator().manual_seed(0),
        **extra,
    )


@decoy("forgets shuffle=True: the generator is there, but the samples come in their stored order")
def make_loader(
    dataset,
    batch_size,
    *,
    num_workers=0,
    pin_memory=False,
    persistent_workers=False,
    prefetch_factor=2,
    seed=0,
    collate_fn=None,
):
    extra = dict(persistent_workers=persistent_workers, prefetch_factor=prefetch_factor) if num_workers > 0 else {}
    return DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate_fn,
        pin_memory=pin_memory and torch.accelerator.is_available(),
        generator=torch.Generator().manual_seed(seed),
        **extra,
    )


@decoy("drops collate_fn: the dataset's own batching (or the learner's collate) is ignored")
def make_loader(
    dataset,
    batch_size,
    *,
    num_workers=0,
    pin_memory=False,
    persistent_workers=False,
    prefetch_factor=2,
    seed=0,
    collate_fn=None,
):
    extra = dict(persistent_workers=persistent_workers, prefetch_factor=prefetch_factor) if num_workers > 0 else {}
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=num_workers,
        pin_memory=pin_memory and torch.accelerator.is_available(),
        generator=torch.Generator().manual_seed(seed),
        **extra,
    )


@alternative("an explicit RandomSampler with the seeded generator, torch.cuda.is_available() as the accelerator test")
def make_loader(
    dataset,
    batch_size,
    *,
    num_workers=0,
    pin_memory=False,
    persistent_workers=False,
    prefetch_factor=2,
    seed=0,
    collate_fn=None,
):
    generator = torch.Generator()
    generator.manual_seed(seed)
    kwargs = {
        "batch_size": batch_size,
        "sampler": torch.utils.data.RandomSampler(dataset, generator=generator),
        "num_workers": num_workers,
        "collate_fn": collate_fn,
        "pin_memory": bool(pin_memory) and torch.cuda.is_available(),
        "generator": generator,
    }
    if num_workers:
        kwargs["persistent_workers"] = persistent_workers
        kwargs["prefetch_factor"] = prefetch_factor
    return DataLoader(dataset, **kwargs)


# ---------------------------------------------------------------- InMemoryDataset


@decoy(
    "__getitems__ loops over the indices: one small tensor per sample, the Python loop the exercise removes",
    exercise="InMemoryDataset",
)
class InMemoryDataset(torch.utils.data.Dataset):
    def __init__(self, *tensors):
        self.tensors = tensors

    def __len__(self):
        return self.tensors[0].shape[0]

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices):
        return tuple(torch.stack([t[i] for i in indices]) for t in self.tensors)


@decoy(
    "__getitems__ returns a list of samples: the loader's batches are no longer one tensor per field",
    exercise="InMemoryDataset",
)
class InMemoryDataset(torch.utils.data.Dataset):
    def __init__(self, *tensors):
        self.tensors = tensors

    def __len__(self):
        return self.tensors[0].shape[0]

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices):
        return [self[i] for i in indices]


@decoy("no __getitems__: the DataLoader falls back to one __getitem__ per sample", exercise="InMemoryDataset")
class InMemoryDataset(torch.utils.data.Dataset):
    def __init__(self, *tensors):
        self.tensors = tensors

    def __len__(self):
        return self.tensors[0].shape[0]

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)


@decoy("sorts the indices: the batch comes back in the wrong order for a shuffling loader", exercise="InMemoryDataset")
class InMemoryDataset(torch.utils.data.Dataset):
    def __init__(self, *tensors):
        self.tensors = tensors

    def __len__(self):
        return self.tensors[0].shape[0]

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices):
        return tuple(t[sorted(indices)] for t in self.tensors)


@decoy("__len__ counts the tensors, not the rows", exercise="InMemoryDataset")
class InMemoryDataset(torch.utils.data.Dataset):
    def __init__(self, *tensors):
        self.tensors = tensors

    def __len__(self):
        return len(self.tensors)

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices):
        return tuple(t[indices] for t in self.tensors)


@alternative("index_select with an index tensor on each tensor's device", exercise="InMemoryDataset")
class InMemoryDataset(torch.utils.data.Dataset):
    def __init__(self, *tensors):
        self.tensors = list(tensors)

    def __len__(self):
        return len(self.tensors[0])

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices):
        return tuple(t.index_select(0, torch.as_tensor(indices, device=t.device)) for t in self.tensors)


# ---------------------------------------------------------------- move_batch


@decoy(
    "non_blocking=True for every tensor, pinned or not",
    cite="https://discuss.pytorch.org/t/should-we-set-non-blocking-to-true/38234",
)
def move_batch(batch, device):
    return type(batch)(t.to(device, non_blocking=True) for t in batch)


@decoy("never non_blocking: pinned batches are copied synchronously and the pinning buys nothing")
def move_batch(batch, device):
    return type(batch)(t.to(device) for t in batch)


@decoy("decides once for the batch from its first tensor: a mixed batch gets the wrong flag")
def move_batch(batch, device):
    pinned = batch[0].is_pinned()
    return type(batch)(t.to(device, non_blocking=pinned) for t in batch)


@decoy("always returns a list: a tuple batch comes back as a list")
def move_batch(batch, device):
    return [t.to(device, non_blocking=t.is_pinned()) for t in batch]


@decoy("always returns a tuple: a DataLoader's list batch comes back as a tuple")
def move_batch(batch, device):
    return tuple(t.to(device, non_blocking=t.is_pinned()) for t in batch)


@decoy("moves the tensors but returns the batch it was given")
def move_batch(batch, device):
    for t in batch:
        t.to(device, non_blocking=t.is_pinned())
    return batch


@alternative("a loop that builds a list, converted back to the batch's type")
def move_batch(batch, device):
    moved = []
    for tensor in batch:
        if tensor.is_pinned():
            moved.append(tensor.to(device=device, non_blocking=True))
        else:
            moved.append(tensor.to(device=device))
    return tuple(moved) if isinstance(batch, tuple) else list(moved)


# ---------------------------------------------------------------- samples_per_second


@decoy("times the warm-up batches too: the workers' start-up lowers the figure")
def samples_per_second(loader, device, warmup_batches=2):
    device = torch.device(device)
    start = time.perf_counter()
    samples, timed = 0, 0
    for i, batch in enumerate(loader):
        move_batch(batch, device)
        if i >= warmup_batches:
            samples += batch[0].shape[0]
            timed += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    if timed == 0:
        raise ValueError("no batch left after the warm-up")
    return samples / (time.perf_counter() - start)


@decoy("counts batches, not samples")
def samples_per_second(loader, device, warmup_batches=2):
    device = torch.device(device)
    batches = iter(loader)
    for _ in range(warmup_batches):
        move_batch(next(batches), device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    timed = 0
    for batch in batches:
        move_batch(batch, device)
        timed += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    if timed == 0:
        raise ValueError("no batch left after the warm-up")
    return timed / (time.perf_counter() - start)


@decoy("counts len(batch), the number of tensors in a batch")
def samples_per_second(loader, device, warmup_batches=2):
    device = torch.device(device)
    batches = iter(loader)
    for _ in range(warmup_batches):
        move_batch(next(batches), device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    samples = 0
    for batch in batches:
        move_batch(batch, device)
        samples += len(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    if samples == 0:
        raise ValueError("no batch left after the warm-up")
    return samples / (time.perf_counter() - start)


@decoy("stops the clock before the GPU has finished the last copies")
def samples_per_second(loader, device, warmup_batches=2):
    device = torch.device(device)
    batches = iter(loader)
    for _ in range(warmup_batches):
        move_batch(next(batches), device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    samples = 0
    for batch in batches:
        move_batch(batch, device)
        samples += batch[0].shape[0]
    if samples == 0:
        raise ValueError("no batch left after the warm-up")
    return samples / (time.perf_counter() - start)


@decoy("starts the clock with earlier GPU work still queued")
def samples_per_second(loader, device, warmup_batches=2):
    device = torch.device(device)
    batches = iter(loader)
    for _ in range(warmup_batches):
        move_batch(next(batches), device)
    start = time.perf_counter()
    samples = 0
    for batch in batches:
        move_batch(batch, device)
        samples += batch[0].shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize()
    if samples == 0:
        raise ValueError("no batch left after the warm-up")
    return samples / (time.perf_counter() - start)


@decoy("synchronizes after every batch: loading and copying never overlap")
def samples_per_second(loader, device, warmup_batches=2):
    device = torch.device(device)
    cuda = device.type == "cuda"
    batches = iter(loader)
    for _ in range(warmup_batches):
        move_batch(next(batches), device)
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    samples = 0
    for batch in batches:
        move_batch(batch, device)
        if cuda:
            torch.cuda.synchronize()
        samples += batch[0].shape[0]
    if samples == 0:
        raise ValueError("no batch left after the warm-up")
    return samples / (time.perf_counter() - start)


@decoy("synchronizes whatever the device: raises on a machine without CUDA")
def samples_per_second(loader, device, warmup_batches=2):
    batches = iter(loader)
    for _ in range(warmup_batches):
        move_batch(next(batches), device)
    torch.cuda.synchronize()
    start = time.perf_counter()
    samples = 0
    for batch in batches:
        move_batch(batch, device)
        samples += batch[0].shape[0]
    torch.cuda.synchronize()
    if samples == 0:
        raise ValueError("no batch left after the warm-up")
    return samples / (time.perf_counter() - start)


@decoy("divides by zero (or returns 0.0) instead of raising when the warm-up used every batch")
def samples_per_second(loader, device, warmup_batches=2):
    device = torch.device(device)
    batches = iter(loader)
    for _ in range(warmup_batches):
        batch = next(batches, None)
        if batch is not None:
            move_batch(batch, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    samples = 0
    for batch in batches:
        move_batch(batch, device)
        samples += batch[0].shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    return samples / elapsed if elapsed else 0.0


@decoy("returns the seconds per sample, the inverse")
def samples_per_second(loader, device, warmup_batches=2):
    device = torch.device(device)
    batches = iter(loader)
    for _ in range(warmup_batches):
        move_batch(next(batches), device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    samples = 0
    for batch in batches:
        move_batch(batch, device)
        samples += batch[0].shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize()
    if samples == 0:
        raise ValueError("no batch left after the warm-up")
    return (time.perf_counter() - start) / samples


@alternative("enumerate over the loader, perf_counter imported by name, torch.accelerator.synchronize for the wait")
def samples_per_second(loader, device, warmup_batches=2):
    cuda = torch.device(device).type == "cuda"

    def start_clock():
        if cuda:
            torch.accelerator.synchronize()
        return perf_counter()

    samples = 0
    start = start_clock() if warmup_batches == 0 else None
    for i, batch in enumerate(loader):
        move_batch(batch, device)
        if i >= warmup_batches:
            samples += len(batch[0])
        elif i == warmup_batches - 1:
            start = start_clock()
    if not samples:
        raise ValueError(f"the {warmup_batches} warm-up batches used up the loader: nothing left to time")
    if cuda:
        torch.accelerator.synchronize()
    return float(samples / (perf_counter() - start))


@alternative("the current stream's synchronize and a nanosecond clock")
def samples_per_second(loader, device, warmup_batches=2):
    cuda = torch.device(device).type == "cuda"
    it = iter(loader)
    for _ in range(warmup_batches):
        try:
            move_batch(next(it), device)
        except StopIteration:
            break
    if cuda:
        torch.cuda.current_stream().synchronize()
    start = time.perf_counter_ns()
    sizes = []
    for batch in it:
        move_batch(batch, device)
        sizes.append(batch[0].size(0))
    if cuda:
        torch.cuda.current_stream().synchronize()
    stop = time.perf_counter_ns()
    if not sizes:
        raise ValueError("nothing to time after the warm-up batches")
    return sum(sizes) / ((stop - start) / 1e9)
