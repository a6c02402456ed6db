"""Known-wrong answers (decoys) and known-right alternatives for kata 10 (see dojo/variants.py)."""

import functools
import math
import os
import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset, RandomSampler, Subset, TensorDataset, get_worker_info, random_split

from dojo.variants import alternative, decoy

# --- PairDataset ------------------------------------------------------------------------------


@decoy("wraps the index around: no IndexError, so `for sample in dataset` never ends")
class PairDataset(Dataset):
    def __init__(self, x, y):
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        index = index % len(self.x)
        return self.x[index], self.y[index]


@decoy("guards the index by hand and rejects negative ones: dataset[-1] raises instead of giving the last sample")
class PairDataset(Dataset):
    def __init__(self, x, y):
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        if not 0 <= index < len(self.x):
            raise IndexError(f"index {index} out of range")
        return self.x[index], self.y[index]


@decoy("compares the shapes, not the row counts: inputs (N, 3) with labels (N,) are refused")
class PairDataset(Dataset):
    def __init__(self, x, y):
        if x.shape != y.shape:
            raise ValueError(f"x has shape {tuple(x.shape)} but y has {tuple(y.shape)}")
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        return self.x[index], self.y[index]


@decoy("never checks the row counts: a mismatch surfaces much later, as a wrong pairing or an IndexError")
class PairDataset(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        return self.x[index], self.y[index]


@decoy("counts elements, not rows: len is 15 for x of shape (5, 3)")
class PairDataset(Dataset):
    def __init__(self, x, y):
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        self.x, self.y = x, y

    def __len__(self):
        return self.x.numel()

    def __getitem__(self, index):
        return self.x[index], self.y[index]


@alternative("subclasses TensorDataset, which stores the tensors and indexes them")
class PairDataset(TensorDataset):
    def __init__(self, x, y):
        if x.size(0) != y.size(0):
            raise ValueError(f"x has {x.size(0)} rows but y has {y.size(0)}")
        super().__init__(x, y)


@alternative("normalizes a negative index and raises IndexError by hand")
class PairDataset(Dataset):
    def __init__(self, x, y):
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x has {x.shape[0]} rows, y has {y.shape[0]}")
        self.x, self.y = x, y

    def __len__(self):
        return int(self.x.shape[0])

    def __getitem__(self, index):
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} is out of range for {n} samples")
        return (self.x[index], self.y[index])


# --- LazyFileDataset --------------------------------------------------------------------------


@decoy("eager: loads every file in __init__")
class LazyFileDataset(Dataset):
    def __init__(self, root, loader=torch.load, suffix=".pt"):
        paths = sorted(os.path.join(root, n) for n in os.listdir(root) if n.endswith(suffix))
        self.samples = [loader(p) for p in paths]

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        return self.samples[index]


@decoy("does not sort: sample i is whichever file the file system lists i-th")
class LazyFileDataset(Dataset):
    def __init__(self, root, loader=torch.load, suffix=".pt"):
        self.paths = [os.path.join(root, n) for n in os.listdir(root) if n.endswith(suffix)]
        self.loader = loader

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        return self.loader(self.paths[index])


@decoy(
    "caches loaded samples: a second dataset[i] loads nothing, and the cache grows with every sample seen",
    cite="https://github.com/msamogh/nonechucks/issues/13",
)
class LazyFileDataset(Dataset):
    def __init__(self, root, loader=torch.load, suffix=".pt"):
        self.paths = sorted(p for p in Path(root).iterdir() if p.name.endswith(suffix))
        self.loader = loader
        self.cache = {}

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        if index not in self.cache:
            self.cache[index] = self.loader(self.paths[index])
        return self.cache[index]


@decoy("searches recursively (rglob): the files of subfolders become samples too")
class LazyFileDataset(Dataset):
    def __init__(self, root, loader=torch.load, suffix=".pt"):
        self.paths = sorted(Path(root).rglob("*" + suffix))
        self.loader = loader

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        return self.loader(self.paths[index])


@decoy("compares Path.suffix, the part after the last dot only: suffix='.tar.gz' matches nothing")
class LazyFileDataset(Dataset):
    def __init__(self, root, loader=torch.load, suffix=".pt"):
        self.paths = sorted(p for p in Path(root).iterdir() if p.suffix == suffix)
        self.loader = loader

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        return self.loader(self.paths[index])


@decoy("tests `suffix in name`: sample_02.pt.bak counts as a sample")
class LazyFileDataset(Dataset):
    def __init__(self, root, loader=torch.load, suffix=".pt"):
        self.paths = sorted(p for p in Path(root).iterdir() if p.is_file() and suffix in p.name)
        self.loader = loader

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        return self.loader(self.paths[index])


@decoy("sorts by length, then name (a 'natural' order): clip_9.pt comes before clip_10.pt, not after it")
class LazyFileDataset(Dataset):
    def __init__(self, root, loader=torch.load, suffix=".pt"):
        names = [n for n in os.listdir(root) if n.endswith(suffix)]
        self.paths = [Path(root) / n for n in sorted(names, key=lambda n: (len(n), n))]
        self.loader = loader

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        return self.loader(self.paths[index])


@decoy("hands the loader the bare file name: it is found only if the working directory is the folder")
class LazyFileDataset(Dataset):
    def __init__(self, root, loader=torch.load, suffix=".pt"):
        self.names = sorted(n for n in os.listdir(root) if n.endswith(suffix))
        self.loader = loader

    def __len__(self):
        return len(self.names)

    def __getitem__(self, index):
        return self.loader(self.names[index])


@decoy("calls root.iterdir() on what may be a str: AttributeError for LazyFileDataset('data/')")
class LazyFileDataset(Dataset):
    def __init__(self, root, loader=torch.load, suffix=".pt"):
        self.paths = sorted(p for p in root.iterdir() if p.is_file() and p.name.endswith(suffix))
        self.loader = loader

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        return self.loader(self.paths[index])


@decoy("keeps os.DirEntry objects: they cannot be pickled, so spawned workers (macOS, Windows) fail")
class LazyFileDataset(Dataset):
    def __init__(self, root, loader=torch.load, suffix=".pt"):
        entries = [e for e in os.scandir(root) if e.is_file() and e.name.endswith(suffix)]
        self.entries = sorted(entries, key=lambda e: e.name)
        self.loader = loader

    def __len__(self):
        return len(self.entries)

    def __getitem__(self, index):
        return self.loader(self.entries[index].path)


@decoy("ignores the loader argument and calls torch.load itself")
class LazyFileDataset(Dataset):
    def __init__(self, root, loader=torch.load, suffix=".pt"):
        self.paths = sorted(p for p in Path(root).iterdir() if p.name.endswith(suffix))

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        return torch.load(self.paths[index])


@alternative("glob with the suffix as a pattern (files only), sorted")
class LazyFileDataset(Dataset):
    def __init__(self, root, loader=torch.load, suffix=".pt"):
        from pathlib import Path

        self.paths = sorted(p for p in Path(root).glob("*" + suffix) if p.is_file())
        self.loader = loader

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        return self.loader(self.paths[index])


@alternative("os.listdir and str paths, the root and the names kept apart and joined in __getitem__")
class LazyFileDataset(Dataset):
    def __init__(self, root, loader=torch.load, suffix=".pt"):
        self.root = os.fspath(root)
        self.names = sorted(
            n for n in os.listdir(self.root) if n.endswith(suffix) and os.path.isfile(os.path.join(self.root, n))
        )
        self.loader = loader

    def __len__(self):
        return len(self.names)

    def __getitem__(self, index):
        return self.loader(os.path.join(self.root, self.names[index]))


# --- train_val_loaders ------------------------------------------------------------------------


@decoy("truncates with int(): 30% of 9 samples gives validation 2, not 3 (0.3 * 9 is 2.6999999999999997)")
def train_val_loaders(dataset, val_fraction, batch_size, seed):
    n_val = int(val_fraction * len(dataset))
    parts = random_split(dataset, [len(dataset) - n_val, n_val], generator=torch.Generator().manual_seed(seed))
    return (
        DataLoader(parts[0], batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed)),
        DataLoader(parts[1], batch_size=batch_size),
    )


@decoy("passes the fractions to random_split: it floors each part and gives the leftovers to the first (training)")
def train_val_loaders(dataset, val_fraction, batch_size, seed):
    parts = random_split(dataset, [1 - val_fraction, val_fraction], generator=torch.Generator().manual_seed(seed))
    return (
        DataLoader(parts[0], batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed)),
        DataLoader(parts[1], batch_size=batch_size),
    )


@decoy(
    "truncates the training size: int(0.7 * 7) is 4 (0.7 * 7 is 4.8999999999999995), so validation gets 3 of 7, not 2"
)
def train_val_loaders(dataset, val_fraction, batch_size, seed):
    n_train = int((1 - val_fraction) * len(dataset))
    n_val = len(dataset) - n_train
    parts = random_split(dataset, [n_train, n_val], generator=torch.Generator().manual_seed(seed))
    return (
        DataLoader(parts[0], batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed)),
        DataLoader(parts[1], batch_size=batch_size),
    )


@decoy(
    "splits with the global generator: the validation set changes when anything drew a random number before",
    cite="https://github.com/Lightning-Universe/lightning-bolts/issues/140",
)
def train_val_loaders(dataset, val_fraction, batch_size, seed):
    n_val = round(val_fraction * len(dataset))
    parts = random_split(dataset, [len(dataset) - n_val, n_val])
    return (
        DataLoader(parts[0], batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed)),
        DataLoader(parts[1], batch_size=batch_size),
    )


@decoy("reseeds the global generator with torch.manual_seed: reproducible, but it resets everyone else's stream")
def train_val_loaders(dataset, val_fraction, batch_size, seed):
    torch.manual_seed(seed)
    n_val = round(val_fraction * len(dataset))
    parts = random_split(dataset, [len(dataset) - n_val, n_val])
    return DataLoader(parts[0], batch_size=batch_size, shuffle=True), DataLoader(parts[1], batch_size=batch_size)


@decoy("seeds the split but not the training loader: the epoch order follows the global generator")
def train_val_loaders(dataset, val_fraction, batch_size, seed):
    n_val = round(val_fraction * len(dataset))
    parts = random_split(dataset, [len(dataset) - n_val, n_val], generator=torch.Generator().manual_seed(seed))
    return DataLoader(parts[0], batch_size=batch_size, shuffle=True), DataLoader(parts[1], batch_size=batch_size)


@decoy(
    "one generator for both loaders: every validation pass draws from it and changes the next training order",
    cite="https://github.com/pytorch/pytorch/issues/80119",
)
def train_val_loaders(dataset, val_fraction, batch_size, seed):
    g = torch.Generator().manual_seed(seed)
    n_val = round(val_fraction * len(dataset))
    parts = random_split(dataset, [len(dataset) - n_val, n_val], generator=g)
    return (
        DataLoader(parts[0], batch_size=batch_size, shuffle=True, generator=g),
        DataLoader(parts[1], batch_size=batch_size, generator=g),
    )


@decoy("shuffles the validation loader too: a new order every pass, predictions no longer line up with samples")
def train_val_loaders(dataset, val_fraction, batch_size, seed):
    n_val = round(val_fraction * len(dataset))
    parts = random_split(dataset, [len(dataset) - n_val, n_val], generator=torch.Generator().manual_seed(seed))
    return (
        DataLoader(parts[0], batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed)),
        DataLoader(parts[1], batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed + 1)),
    )


@decoy("drop_last=True for training: the last, smaller batch is lost every epoch")
def train_val_loaders(dataset, val_fraction, batch_size, seed):
    n_val = round(val_fraction * len(dataset))
    parts = random_split(dataset, [len(dataset) - n_val, n_val], generator=torch.Generator().manual_seed(seed))
    return (
        DataLoader(
            parts[0], batch_size=batch_size, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(seed)
        ),
        DataLoader(parts[1], batch_size=batch_size),
    )


@alternative("a seeded randperm and two Subsets instead of random_split; half-up rounding (ties are free)")
def train_val_loaders(dataset, val_fraction, batch_size, seed):
    n = len(dataset)
    n_val = math.floor(val_fraction * n + 0.5)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    train, val = Subset(dataset, order[n_val:]), Subset(dataset, sorted(order[:n_val]))
    return (
        DataLoader(train, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed + 1)),
        DataLoader(val, batch_size=batch_size, shuffle=False),
    )


@alternative("one generator for the split and the training loader; the validation loader has its own")
def train_val_loaders(dataset, val_fraction, batch_size, seed):
    g = torch.Generator()
    g.manual_seed(seed)
    n_val = round(val_fraction * len(dataset))
    train, val = random_split(dataset, [len(dataset) - n_val, n_val], generator=g)
    return (
        DataLoader(train, batch_size, shuffle=True, generator=g),
        DataLoader(val, batch_size, generator=torch.Generator().manual_seed(0)),
    )


# --- pad_collate -------------------------------------------------------------------------------


@decoy("pad_sequence's default layout: (L_max, B), time first")
def pad_collate(batch, padding_value=0.0):
    sequences = [s for s, _ in batch]
    padded = pad_sequence(sequences, padding_value=padding_value)
    return padded, torch.tensor([len(s) for s in sequences]), torch.tensor([label for _, label in batch])


@decoy("forgets padding_value: always pads with zeros")
def pad_collate(batch, padding_value=0.0):
    sequences = [s for s, _ in batch]
    padded = pad_sequence(sequences, batch_first=True)
    return padded, torch.tensor([len(s) for s in sequences]), torch.tensor([label for _, label in batch])


@decoy("returns the lengths as a list")
def pad_collate(batch, padding_value=0.0):
    sequences = [s for s, _ in batch]
    padded = pad_sequence(sequences, batch_first=True, padding_value=padding_value)
    return padded, [len(s) for s in sequences], torch.tensor([label for _, label in batch])


@decoy("puts the lengths on the sequences' device: pack_padded_sequence wants them on the CPU")
def pad_collate(batch, padding_value=0.0):
    sequences = [s for s, _ in batch]
    padded = pad_sequence(sequences, batch_first=True, padding_value=padding_value)
    lengths = torch.tensor([len(s) for s in sequences], device=sequences[0].device)
    return padded, lengths, torch.tensor([label for _, label in batch])


@decoy("counts the non-padding positions as the lengths: a real value equal to padding_value is lost")
def pad_collate(batch, padding_value=0.0):
    sequences = [s for s, _ in batch]
    padded = pad_sequence(sequences, batch_first=True, padding_value=padding_value)
    mask = padded != padding_value
    lengths = mask.reshape(len(batch), padded.shape[1], -1).any(dim=2).sum(dim=1).cpu()
    return padded, lengths, torch.tensor([label for _, label in batch])


@decoy("sorts the batch by length, longest first (for pack_padded_sequence): samples leave the order of batch")
def pad_collate(batch, padding_value=0.0):
    batch = sorted(batch, key=lambda sample: len(sample[0]), reverse=True)
    sequences = [s for s, _ in batch]
    padded = pad_sequence(sequences, batch_first=True, padding_value=padding_value)
    return padded, torch.tensor([len(s) for s in sequences]), torch.tensor([label for _, label in batch])


@decoy("torch.Tensor(labels): the constructor makes float32, not int64")
def pad_collate(batch, padding_value=0.0):
    sequences = [s for s, _ in batch]
    padded = pad_sequence(sequences, batch_first=True, padding_value=padding_value)
    return padded, torch.tensor([len(s) for s in sequences]), torch.Tensor([label for _, label in batch])


@decoy("torch.full((B, L_max), padding_value): float32 on the CPU, and no room for feature dimensions")
def pad_collate(batch, padding_value=0.0):
    sequences = [s for s, _ in batch]
    lengths = [len(s) for s in sequences]
    padded = torch.full((len(batch), max(lengths)), padding_value)
    for i, s in enumerate(sequences):
        padded[i, : len(s)] = s
    return padded, torch.tensor(lengths), torch.tensor([label for _, label in batch])


@decoy("F.pad pads the last dimension: for (L, F) feature vectors it widens F instead of lengthening L")
def pad_collate(batch, padding_value=0.0):
    sequences = [s for s, _ in batch]
    longest = max(len(s) for s in sequences)
    padded = torch.stack([F.pad(s, (0, longest - len(s)), value=padding_value) for s in sequences])
    return padded, torch.tensor([len(s) for s in sequences]), torch.tensor([label for _, label in batch])


@alternative("new_full on the first sequence (its dtype and device), then each sequence copied into its row")
def pad_collate(batch, padding_value=0.0):
    sequences = [s for s, _ in batch]
    first = sequences[0]
    padded = first.new_full((len(sequences), max(s.shape[0] for s in sequences), *first.shape[1:]), padding_value)
    for i, s in enumerate(sequences):
        padded[i, : s.shape[0]] = s
    lengths = torch.as_tensor([s.shape[0] for s in sequences], dtype=torch.long)
    labels = torch.as_tensor([int(label) for _, label in batch], dtype=torch.long)
    return padded, lengths, labels


@alternative(
    "F.pad with a pad tuple for the length dimension, stacked; time-first pad_sequence would also do, transposed"
)
def pad_collate(batch, padding_value=0.0):
    sequences, labels = zip(*batch)
    longest = max(len(s) for s in sequences)
    rows = [F.pad(s, (0, 0) * (s.dim() - 1) + (0, longest - len(s)), value=padding_value) for s in sequences]
    return torch.stack(rows), torch.tensor(list(map(len, sequences))), torch.tensor(labels)


@alternative("pad_sequence time first, then transposed to batch first (a non-contiguous view)")
def pad_collate(batch, padding_value=0.0):
    sequences = [s for s, _ in batch]
    padded = pad_sequence(sequences, padding_value=padding_value).transpose(0, 1)
    return padded, torch.tensor([s.size(0) for s in sequences]), torch.tensor([label for _, label in batch])


# --- seed_worker ------------------------------------------------------------------------------


@decoy(
    "the documentation's recipe, numpy and random only: the dataset's own generator repeats in every worker",
    cite="https://pytorch.org/docs/stable/notes/randomness.html#dataloader",
)
def seed_worker(worker_id):
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


@decoy("seeds from the worker id: workers differ, but every epoch replays the same augmentations")
def seed_worker(worker_id):
    np.random.seed(worker_id)
    random.seed(worker_id)
    info = get_worker_info()
    if info is not None and hasattr(info.dataset, "rng"):
        info.dataset.rng = np.random.default_rng(worker_id)


@decoy("no % 2**32: np.random.seed raises ValueError for a worker's 64-bit seed")
def seed_worker(worker_id):
    seed = torch.initial_seed()
    np.random.seed(seed)
    random.seed(seed)
    info = get_worker_info()
    if info is not None and hasattr(info.dataset, "rng"):
        info.dataset.rng = np.random.default_rng(seed)


@decoy("makes a seeded generator but keeps it in a local variable: the dataset's rng is never replaced")
def seed_worker(worker_id):
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    rng = np.random.default_rng(seed)  # noqa: F841 - the mistake
    return None


@decoy("a fresh unseeded generator per worker: workers differ, but no two runs draw the same")
def seed_worker(worker_id):
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    info = get_worker_info()
    if info is not None and hasattr(info.dataset, "rng"):
        info.dataset.rng = np.random.default_rng()


@decoy("seeds every worker with the epoch's base seed (info.seed - worker_id): all workers draw alike")
def seed_worker(worker_id):
    info = get_worker_info()
    seed = (info.seed - worker_id) % 2**32
    np.random.seed(seed)
    random.seed(seed)
    if hasattr(info.dataset, "rng"):
        info.dataset.rng = np.random.default_rng(seed)


@decoy("reads info.dataset.rng without asking whether it exists: a dataset without rng fails")
def seed_worker(worker_id):
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    info = get_worker_info()
    if info.dataset.rng is not None:
        info.dataset.rng = np.random.default_rng(seed)


@alternative("info.seed instead of torch.initial_seed() (the same number in a worker); default_rng takes it whole")
def seed_worker(worker_id):
    info = get_worker_info()
    if info is None:
        return
    np.random.seed(info.seed % 2**32)
    random.seed(info.seed)
    if getattr(info.dataset, "rng", None) is not None:
        info.dataset.rng = np.random.default_rng(info.seed)


@alternative("leaves numpy's and random's seeding to PyTorch (it does that since 1.9); replaces only the dataset's rng")
def seed_worker(worker_id):
    info = get_worker_info()
    if info is not None and hasattr(info.dataset, "rng"):
        info.dataset.rng = np.random.default_rng(np.random.SeedSequence(torch.initial_seed()))


# --- make_reproducible_loader ------------------------------------------------------------------


@decoy(
    "no worker_init_fn: both workers copy the dataset's rng in the same state and draw alike",
    cite="https://github.com/wolny/pytorch-3dunet/issues/32",
)
def make_reproducible_loader(dataset, batch_size, seed, num_workers=2):
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),
    )


@decoy("no generator: the order and the worker seeds come from the global generator")
def make_reproducible_loader(dataset, batch_size, seed, num_workers=2):
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers, worker_init_fn=seed_worker)


@decoy("torch.manual_seed(seed) instead of a generator: it resets the global stream, and later draws change the order")
def make_reproducible_loader(dataset, batch_size, seed, num_workers=2):
    torch.manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers, worker_init_fn=seed_worker)


@decoy(
    "gives the generator to a RandomSampler only: the order repeats, the workers' seeds still come from the global one"
)
def make_reproducible_loader(dataset, batch_size, seed, num_workers=2):
    sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, worker_init_fn=seed_worker
    )


@decoy("a lambda as worker_init_fn: fine with fork, but spawned workers (macOS, Windows) cannot unpickle it")
def make_reproducible_loader(dataset, batch_size, seed, num_workers=2):
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=num_workers,
        worker_init_fn=lambda worker_id: seed_worker(worker_id),
        generator=torch.Generator().manual_seed(seed),
    )


@decoy("the generator's seed is hard-coded: every seed gives the same order")
def make_reproducible_loader(dataset, batch_size, seed, num_workers=2):
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=num_workers,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(0),
    )


@decoy("num_workers=2 written out: the num_workers argument is ignored")
def make_reproducible_loader(dataset, batch_size, seed, num_workers=2):
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=2,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(seed),
    )


@decoy("forgets shuffle=True: reproducible, but every epoch in the dataset's order")
def make_reproducible_loader(dataset, batch_size, seed, num_workers=2):
    return DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(seed),
    )


@alternative("persistent workers: seed_worker runs once, the streams go on from epoch to epoch")
def make_reproducible_loader(dataset, batch_size, seed, num_workers=2):
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        worker_init_fn=functools.partial(seed_worker),
        generator=torch.Generator().manual_seed(seed),
    )


@alternative("an explicit RandomSampler with one generator, and the same generator for the loader")
def make_reproducible_loader(dataset, batch_size, seed, num_workers=2):
    g = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size,
        sampler=RandomSampler(dataset, generator=g),
        num_workers=num_workers,
        worker_init_fn=seed_worker,
        generator=g,
    )
