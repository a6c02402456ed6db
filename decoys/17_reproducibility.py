"""Decoys and alternatives for kata 17, reproducibility (format: dojo/variants.py).

A variant replaces one function of the reference, so the checkpoint variants keep the
reference's file format: a save_checkpoint variant writes what the reference load_checkpoint
reads, and a load_checkpoint variant reads what the reference save_checkpoint writes. The
make_loaders variants use the solution's given `Augmented` class, which the module they replace
a function of provides (hence F821 off).
"""

# ruff: noqa: F821

import random
import re
import warnings
from contextlib import contextmanager

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, Subset, random_split

from dojo.variants import alternative, decoy

# ---------------------------------------------------------------- seed_everything


@decoy("seeds torch only: NumPy's and Python's generators still change from run to run")
def seed_everything(seed):
    torch.manual_seed(seed)


@decoy("creates a private NumPy generator: the global one that np.random.rand draws from is not seeded")
def seed_everything(seed):
    random.seed(seed)
    np.random.default_rng(seed)
    torch.manual_seed(seed)


@decoy("forgets Python's random module")
def seed_everything(seed):
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


@decoy("random.Random(seed) makes a new generator; the module's global one is not seeded")
def seed_everything(seed):
    random.Random(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@decoy("seeds the CUDA devices only: torch's CPU generator is left as it was")
def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.cuda.manual_seed_all(seed)


@decoy("seeds a new torch.Generator, which nothing uses: the global generator is untouched")
def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.Generator().manual_seed(seed)


@decoy("torch.seed() takes no seed: it seeds torch with a fresh non-deterministic number")
def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.seed()


@alternative("torch.random.manual_seed, which also seeds every CUDA device")
def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.random.manual_seed(seed)


@alternative("sets each global generator to the state a freshly seeded one has")
def seed_everything(seed):
    random.setstate(random.Random(seed).getstate())
    np.random.set_state(np.random.RandomState(seed).get_state())
    torch.default_generator.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


@decoy("returns what torch.manual_seed returns (the global generator): the function returns nothing")
def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.cuda.manual_seed_all(seed)
    return torch.manual_seed(seed)


# ---------------------------------------------------------------- make_loaders


@decoy("one generator for the split, the shuffle and the augmentation: one more draw shifts the rest")
def make_loaders(dataset, n_val, batch_size, split_seed, shuffle_seed, augment_seed, augment):
    g = torch.Generator().manual_seed(split_seed)
    train, val = random_split(dataset, [len(dataset) - n_val, n_val], generator=g)
    loader = DataLoader(Augmented(train, augment, g), batch_size=batch_size, shuffle=True, generator=g)
    return loader, DataLoader(val, batch_size=batch_size)


@decoy("the augmentation draws from the shuffle's generator: augment_seed is ignored, extra draws reorder")
def make_loaders(dataset, n_val, batch_size, split_seed, shuffle_seed, augment_seed, augment):
    train, val = random_split(
        dataset, [len(dataset) - n_val, n_val], generator=torch.Generator().manual_seed(split_seed)
    )
    g = torch.Generator().manual_seed(shuffle_seed)
    loader = DataLoader(Augmented(train, augment, g), batch_size=batch_size, shuffle=True, generator=g)
    return loader, DataLoader(val, batch_size=batch_size)


@decoy("the augmentation draws from torch's global generator (dropout between epochs changes it)")
def make_loaders(dataset, n_val, batch_size, split_seed, shuffle_seed, augment_seed, augment):
    train, val = random_split(
        dataset, [len(dataset) - n_val, n_val], generator=torch.Generator().manual_seed(split_seed)
    )
    loader = DataLoader(
        Augmented(train, augment, None),
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(shuffle_seed),
    )
    return loader, DataLoader(val, batch_size=batch_size)


@decoy("splits with torch's global generator: the validation set changes with whatever ran before")
def make_loaders(dataset, n_val, batch_size, split_seed, shuffle_seed, augment_seed, augment):
    train, val = random_split(dataset, [len(dataset) - n_val, n_val])
    loader = DataLoader(
        Augmented(train, augment, torch.Generator().manual_seed(augment_seed)),
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(shuffle_seed),
    )
    return loader, DataLoader(val, batch_size=batch_size)


@decoy("seeds the global generator and splits with it: reseeds the caller's stream")
def make_loaders(dataset, n_val, batch_size, split_seed, shuffle_seed, augment_seed, augment):
    torch.manual_seed(split_seed)
    train, val = random_split(dataset, [len(dataset) - n_val, n_val])
    loader = DataLoader(
        Augmented(train, augment, torch.Generator().manual_seed(augment_seed)),
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(shuffle_seed),
    )
    return loader, DataLoader(val, batch_size=batch_size)


@decoy("shuffles with torch's global generator: the order depends on everything else that draws")
def make_loaders(dataset, n_val, batch_size, split_seed, shuffle_seed, augment_seed, augment):
    train, val = random_split(
        dataset, [len(dataset) - n_val, n_val], generator=torch.Generator().manual_seed(split_seed)
    )
    loader = DataLoader(
        Augmented(train, augment, torch.Generator().manual_seed(augment_seed)), batch_size=batch_size, shuffle=True
    )
    return loader, DataLoader(val, batch_size=batch_size)


@decoy("splits with the shuffle's generator: another shuffle seed gives another validation set")
def make_loaders(dataset, n_val, batch_size, split_seed, shuffle_seed, augment_seed, augment):
    g = torch.Generator().manual_seed(shuffle_seed)
    train, val = random_split(dataset, [len(dataset) - n_val, n_val], generator=g)
    loader = DataLoader(
        Augmented(train, augment, torch.Generator().manual_seed(augment_seed)),
        batch_size=batch_size,
        shuffle=True,
        generator=g,
    )
    return loader, DataLoader(val, batch_size=batch_size)


@decoy("augments before splitting: the validation samples are augmented too")
def make_loaders(dataset, n_val, batch_size, split_seed, shuffle_seed, augment_seed, augment):
    data = Augmented(dataset, augment, torch.Generator().manual_seed(augment_seed))
    train, val = random_split(data, [len(data) - n_val, n_val], generator=torch.Generator().manual_seed(split_seed))
    loader = DataLoader(
        train, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(shuffle_seed)
    )
    return loader, DataLoader(val, batch_size=batch_size)


@decoy("shuffles the validation loader: its order changes from pass to pass")
def make_loaders(dataset, n_val, batch_size, split_seed, shuffle_seed, augment_seed, augment):
    train, val = random_split(
        dataset, [len(dataset) - n_val, n_val], generator=torch.Generator().manual_seed(split_seed)
    )
    loader = DataLoader(
        Augmented(train, augment, torch.Generator().manual_seed(augment_seed)),
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(shuffle_seed),
    )
    return loader, DataLoader(val, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(0))


@decoy("drops the last, smaller training batch")
def make_loaders(dataset, n_val, batch_size, split_seed, shuffle_seed, augment_seed, augment):
    train, val = random_split(
        dataset, [len(dataset) - n_val, n_val], generator=torch.Generator().manual_seed(split_seed)
    )
    loader = DataLoader(
        Augmented(train, augment, torch.Generator().manual_seed(augment_seed)),
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        generator=torch.Generator().manual_seed(shuffle_seed),
    )
    return loader, DataLoader(val, batch_size=batch_size)


@alternative("splits with randperm on the split's generator and Subset; shuffles with a RandomSampler")
def make_loaders(dataset, n_val, batch_size, split_seed, shuffle_seed, augment_seed, augment):
    perm = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(split_seed)).tolist()
    train, val = Subset(dataset, perm[n_val:]), Subset(dataset, perm[:n_val])
    train = Augmented(train, augment, torch.Generator().manual_seed(augment_seed))
    sampler = RandomSampler(train, generator=torch.Generator().manual_seed(shuffle_seed))
    return DataLoader(train, batch_size=batch_size, sampler=sampler), DataLoader(val, batch_size=batch_size)


@alternative("a batch sampler over a seeded RandomSampler; the validation part taken first")
def make_loaders(dataset, n_val, batch_size, split_seed, shuffle_seed, augment_seed, augment):
    split = torch.Generator()
    split.manual_seed(split_seed)
    val, train = random_split(dataset, [n_val, len(dataset) - n_val], generator=split)
    shuffle = torch.Generator()
    shuffle.manual_seed(shuffle_seed)
    batches = BatchSampler(RandomSampler(train, generator=shuffle), batch_size, drop_last=False)
    aug = torch.Generator()
    aug.manual_seed(augment_seed)
    return DataLoader(Augmented(train, augment, aug), batch_sampler=batches), DataLoader(val, batch_size=batch_size)


# ---------------------------------------------------------------- deterministic_mode


@decoy("switches deterministic algorithms on for good: the caller's settings never come back")
def deterministic_mode():
    @contextmanager
    def mode():
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        yield

    return mode()


@decoy("restores deterministic algorithms without warn_only: a caller who only warned now gets errors")
def deterministic_mode():
    @contextmanager
    def mode():
        saved = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic
        benchmark = torch.backends.cudnn.benchmark
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(saved[0])
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[1], benchmark

    return mode()


@decoy("warn_only=True inside: an operation without a deterministic implementation only warns, and runs")
def deterministic_mode():
    @contextmanager
    def mode():
        saved = (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.deterministic,
            torch.backends.cudnn.benchmark,
        )
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2], saved[3]

    return mode()


@decoy("leaves cuDNN alone: it still benchmarks, and may pick a nondeterministic convolution")
def deterministic_mode():
    @contextmanager
    def mode():
        saved = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])

    return mode()


@decoy("sets cuDNN deterministic but leaves benchmarking as the caller had it")
def deterministic_mode():
    @contextmanager
    def mode():
        saved = (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.deterministic,
        )
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
            torch.backends.cudnn.deterministic = saved[2]

    return mode()


@decoy("restores after the yield without try/finally: an exception in the block leaves the mode on")
def deterministic_mode():
    @contextmanager
    def mode():
        saved = (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.deterministic,
            torch.backends.cudnn.benchmark,
        )
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        yield
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2], saved[3]

    return mode()


@decoy("\"restores\" PyTorch's defaults rather than the caller's settings (and an inner mode ends the outer)")
def deterministic_mode():
    @contextmanager
    def mode():
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(False)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = False, False

    return mode()


@decoy("a class whose __exit__ returns True: every exception raised in the block is swallowed")
class deterministic_mode:
    def __enter__(self):
        self.saved = (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.deterministic,
            torch.backends.cudnn.benchmark,
        )
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False

    def __exit__(self, *exc):
        enabled, warn_only, deterministic, benchmark = self.saved
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = deterministic, benchmark
        return True


@alternative("a class with __enter__ and __exit__ (which returns None: exceptions propagate)")
class deterministic_mode:
    def __enter__(self):
        self.saved = (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.deterministic,
            torch.backends.cudnn.benchmark,
        )
        torch.use_deterministic_algorithms(True, warn_only=False)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        return self

    def __exit__(self, exc_type, exc, tb):
        enabled, warn_only, deterministic, benchmark = self.saved
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
        torch.backends.cudnn.deterministic = deterministic
        torch.backends.cudnn.benchmark = benchmark


@alternative("cuDNN's own flags context manager for its settings, deterministic algorithms by hand")
def deterministic_mode():
    @contextmanager
    def mode():
        saved = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
        cudnn = torch.backends.cudnn
        with cudnn.flags(enabled=cudnn.enabled, benchmark=False, deterministic=True):
            torch.use_deterministic_algorithms(True)
            try:
                yield
            finally:
                torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])

    return mode()


# ---------------------------------------------------------------- nondeterministic_ops


@decoy("counts every RuntimeError as nondeterminism: a shape error is listed and hidden")
def nondeterministic_ops(ops):
    found = []
    with deterministic_mode():
        for name, op in ops.items():
            try:
                op()
            except RuntimeError:
                found.append(name)
    return found


@decoy("catches every exception: a ValueError (a bug) is listed as nondeterministic")
def nondeterministic_ops(ops):
    found = []
    with deterministic_mode():
        for name, op in ops.items():
            try:
                op()
            except Exception as err:
                if isinstance(err, RuntimeError) and "deterministic" not in str(err):
                    raise
                found.append(name)
    return found


@decoy("never switches deterministic algorithms on: nothing is refused, the list is always empty")
def nondeterministic_ops(ops):
    found = []
    for name, op in ops.items():
        try:
            op()
        except RuntimeError as err:
            if "does not have a deterministic implementation" not in str(err):
                raise
            found.append(name)
    return found


@decoy("warn_only=True without recording the warnings: nothing raises, nothing is found")
def nondeterministic_ops(ops):
    saved = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    found = []
    try:
        for name, op in ops.items():
            try:
                op()
            except RuntimeError as err:
                if "does not have a deterministic implementation" not in str(err):
                    raise
                found.append(name)
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
    return found


@decoy("switches deterministic algorithms on and off again: the caller's own setting is lost")
def nondeterministic_ops(ops):
    torch.use_deterministic_algorithms(True)
    found = []
    try:
        for name, op in ops.items():
            try:
                op()
            except RuntimeError as err:
                if "does not have a deterministic implementation" not in str(err):
                    raise
                found.append(name)
    finally:
        torch.use_deterministic_algorithms(False)
    return found


@decoy("returns at the first refusal: the operations after it are never tried")
def nondeterministic_ops(ops):
    with deterministic_mode():
        for name, op in ops.items():
            try:
                op()
            except RuntimeError as err:
                if "does not have a deterministic implementation" not in str(err):
                    raise
                return [name]
    return []


@decoy("tries each operation outside the mode first, to see whether it works at all: each runs twice")
def nondeterministic_ops(ops):
    found = []
    for name, op in ops.items():
        op()
        with deterministic_mode():
            try:
                op()
            except RuntimeError as err:
                if "does not have a deterministic implementation" not in str(err):
                    raise
                found.append(name)
    return found


@alternative("warn_only=True and the warnings recorded: the refused operations warn (and run) instead")
def nondeterministic_ops(ops):
    saved = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    found = []
    try:
        for name, op in ops.items():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                op()
            if any("does not have a deterministic implementation" in str(w.message) for w in caught):
                found.append(name)
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
    return found


@alternative("settings saved and restored by hand, the message matched with a regular expression")
def nondeterministic_ops(ops):
    saved = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True)
    found = []
    try:
        for name, op in ops.items():
            try:
                op()
            except RuntimeError as err:
                if not re.search(r"does not have a deterministic\s+implementation", str(err)):
                    raise
                found.append(name)
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
    return found


# ---------------------------------------------------------------- save_checkpoint


@decoy(
    "stores NumPy's state as it comes, with an ndarray: torch.load's weights-only default refuses the file",
    cite="https://github.com/redai-studio/Relax/pull/317",
)
def save_checkpoint(path, model, optimizer, scheduler, loader, epoch):
    _, keys, pos, has_gauss, cached = np.random.get_state()
    rng = {
        "python": random.getstate(),
        "numpy": {"keys": keys, "pos": pos, "has_gauss": has_gauss, "cached": cached},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": loader.generator.get_state(),
    }
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    torch.save({**state, "rng": rng, "epoch": epoch}, path)


@decoy("reseeds torch from the epoch at saving time, to reseed the same way at loading: the run itself changes")
def save_checkpoint(path, model, optimizer, scheduler, loader, epoch):
    torch.manual_seed(epoch)
    _, keys, pos, has_gauss, cached = np.random.get_state()
    rng = {
        "python": random.getstate(),
        "numpy": {"keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": loader.generator.get_state(),
    }
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    torch.save({**state, "rng": rng, "epoch": epoch}, path)


@decoy("saves the loader's seed, not its state: the resumed run replays the first epoch's order")
def save_checkpoint(path, model, optimizer, scheduler, loader, epoch):
    _, keys, pos, has_gauss, cached = np.random.get_state()
    rng = {
        "python": random.getstate(),
        "numpy": {"keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": torch.Generator().manual_seed(loader.generator.initial_seed()).get_state(),
    }
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    torch.save({**state, "rng": rng, "epoch": epoch}, path)


@decoy("saves torch's seed, not its state: the resumed run replays the first epoch's dropout masks")
def save_checkpoint(path, model, optimizer, scheduler, loader, epoch):
    _, keys, pos, has_gauss, cached = np.random.get_state()
    rng = {
        "python": random.getstate(),
        "numpy": {"keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.Generator().manual_seed(torch.initial_seed()).get_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": loader.generator.get_state(),
    }
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    torch.save({**state, "rng": rng, "epoch": epoch}, path)


@decoy("saves the epoch to resume from (epoch + 1) where the epochs completed were asked for")
def save_checkpoint(path, model, optimizer, scheduler, loader, epoch):
    _, keys, pos, has_gauss, cached = np.random.get_state()
    rng = {
        "python": random.getstate(),
        "numpy": {"keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": loader.generator.get_state(),
    }
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    torch.save({**state, "rng": rng, "epoch": epoch + 1}, path)


@decoy(
    "its own key names ('weights', 'optim', 'sched', ...): a load written against the stated format finds "
    "nothing it can read"
)
def save_checkpoint(path, model, optimizer, scheduler, loader, epoch):
    _, keys, pos, has_gauss, cached = np.random.get_state()
    torch.save(
        {
            "weights": model.state_dict(),
            "optim": optimizer.state_dict(),
            "sched": scheduler.state_dict(),
            "epoch": epoch,
            "random": {
                "python": random.getstate(),
                "numpy": {"keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
                "torch": torch.get_rng_state(),
                "cuda": [],
                "loader": loader.generator.get_state(),
            },
        },
        path,
    )


@alternative("the states through torch.random, the default generator and the sampler's generator; keys as a tensor")
def save_checkpoint(path, model, optimizer, scheduler, loader, epoch):
    state = np.random.get_state()
    rng = {
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(state[1].astype(np.int64)),
            "pos": int(state[2]),
            "has_gauss": int(state[3]),
            "cached": float(state[4]),
        },
        "torch": torch.random.get_rng_state() if epoch % 2 else torch.default_generator.get_state(),
        "cuda": [torch.cuda.get_rng_state(i) for i in range(torch.cuda.device_count())],
        "loader": loader.sampler.generator.get_state(),
    }
    torch.save(
        {
            "model": {k: v.clone() for k, v in model.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng,
            "epoch": int(epoch),
        },
        path,
    )


# ---------------------------------------------------------------- load_checkpoint


@decoy("restores the model but not the optimizer: Adam's moments and step count start again from zero")
def load_checkpoint(path, model, optimizer, scheduler, loader):
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    scheduler.load_state_dict(state["scheduler"])
    rng = state["rng"]
    random.setstate(rng["python"])
    npy = rng["numpy"]
    np.random.set_state(
        ("MT19937", np.array(npy["keys"], dtype=np.uint32), npy["pos"], npy["has_gauss"], npy["cached"])
    )
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    loader.generator.set_state(rng["loader"])
    return state["epoch"]


@decoy("forgets the scheduler: the learning rate of the resumed epoch is the fresh schedule's")
def load_checkpoint(path, model, optimizer, scheduler, loader):
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    rng = state["rng"]
    random.setstate(rng["python"])
    npy = rng["numpy"]
    np.random.set_state(
        ("MT19937", np.array(npy["keys"], dtype=np.uint32), npy["pos"], npy["has_gauss"], npy["cached"])
    )
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    loader.generator.set_state(rng["loader"])
    return state["epoch"]


@decoy("forgets NumPy's global generator: the augmentation's noise differs after resuming")
def load_checkpoint(path, model, optimizer, scheduler, loader):
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng = state["rng"]
    random.setstate(rng["python"])
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    loader.generator.set_state(rng["loader"])
    return state["epoch"]


@decoy("forgets Python's random module")
def load_checkpoint(path, model, optimizer, scheduler, loader):
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng = state["rng"]
    npy = rng["numpy"]
    np.random.set_state(
        ("MT19937", np.array(npy["keys"], dtype=np.uint32), npy["pos"], npy["has_gauss"], npy["cached"])
    )
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    loader.generator.set_state(rng["loader"])
    return state["epoch"]


@decoy("forgets torch's CPU generator: other dropout masks after resuming")
def load_checkpoint(path, model, optimizer, scheduler, loader):
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng = state["rng"]
    random.setstate(rng["python"])
    npy = rng["numpy"]
    np.random.set_state(
        ("MT19937", np.array(npy["keys"], dtype=np.uint32), npy["pos"], npy["has_gauss"], npy["cached"])
    )
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    loader.generator.set_state(rng["loader"])
    return state["epoch"]


@decoy("forgets the CUDA generators: other dropout masks on a GPU after resuming", needs="cuda")
def load_checkpoint(path, model, optimizer, scheduler, loader):
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng = state["rng"]
    random.setstate(rng["python"])
    npy = rng["numpy"]
    np.random.set_state(
        ("MT19937", np.array(npy["keys"], dtype=np.uint32), npy["pos"], npy["has_gauss"], npy["cached"])
    )
    torch.set_rng_state(rng["torch"])
    loader.generator.set_state(rng["loader"])
    return state["epoch"]


@decoy("forgets the loader's generator: the resumed epoch visits the batches in another order")
def load_checkpoint(path, model, optimizer, scheduler, loader):
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng = state["rng"]
    random.setstate(rng["python"])
    npy = rng["numpy"]
    np.random.set_state(
        ("MT19937", np.array(npy["keys"], dtype=np.uint32), npy["pos"], npy["has_gauss"], npy["cached"])
    )
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return state["epoch"]


@decoy("reseeds torch with the epoch number instead of restoring its state")
def load_checkpoint(path, model, optimizer, scheduler, loader):
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng = state["rng"]
    random.setstate(rng["python"])
    npy = rng["numpy"]
    np.random.set_state(
        ("MT19937", np.array(npy["keys"], dtype=np.uint32), npy["pos"], npy["has_gauss"], npy["cached"])
    )
    torch.manual_seed(state["epoch"])
    loader.generator.set_state(rng["loader"])
    return state["epoch"]


@decoy("reseeds the loader's generator with its initial seed: the first epoch's order again")
def load_checkpoint(path, model, optimizer, scheduler, loader):
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng = state["rng"]
    random.setstate(rng["python"])
    npy = rng["numpy"]
    np.random.set_state(
        ("MT19937", np.array(npy["keys"], dtype=np.uint32), npy["pos"], npy["has_gauss"], npy["cached"])
    )
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    loader.generator.manual_seed(loader.generator.initial_seed())
    return state["epoch"]


@decoy("returns the epoch to resume from (epoch + 1), not the epochs completed")
def load_checkpoint(path, model, optimizer, scheduler, loader):
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng = state["rng"]
    random.setstate(rng["python"])
    npy = rng["numpy"]
    np.random.set_state(
        ("MT19937", np.array(npy["keys"], dtype=np.uint32), npy["pos"], npy["has_gauss"], npy["cached"])
    )
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    loader.generator.set_state(rng["loader"])
    return state["epoch"] + 1


@alternative("weights_only=False (the file is safe either way), states through the default generator and the sampler")
def load_checkpoint(path, model, optimizer, scheduler, loader):
    state = torch.load(path, weights_only=False)
    rng = state["rng"]
    random.setstate(tuple(rng["python"]))
    npy = rng["numpy"]
    keys = np.asarray(npy["keys"], dtype=np.uint32)
    np.random.set_state(("MT19937", keys, int(npy["pos"]), int(npy["has_gauss"]), float(npy["cached"])))
    torch.default_generator.set_state(rng["torch"].cpu())
    for i, cuda_state in enumerate(rng["cuda"]):
        if i < torch.cuda.device_count():
            torch.cuda.set_rng_state(cuda_state.cpu(), i)
    loader.sampler.generator.set_state(rng["loader"].cpu())
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return int(state["epoch"])


@alternative("the generators restored first, then the objects; torch.random.set_rng_state")
def load_checkpoint(path, model, optimizer, scheduler, loader):
    state = torch.load(path, map_location=torch.device("cpu"))
    rng = state["rng"]
    torch.random.set_rng_state(rng["torch"])
    if torch.cuda.is_available() and len(rng["cuda"]):
        torch.cuda.set_rng_state_all(rng["cuda"])
    random.setstate(rng["python"])
    npy = rng["numpy"]
    np.random.set_state(
        ("MT19937", np.array(npy["keys"], dtype=np.uint32), npy["pos"], npy["has_gauss"], npy["cached"])
    )
    loader.generator.set_state(rng["loader"])
    for obj, key in ((model, "model"), (optimizer, "optimizer"), (scheduler, "scheduler")):
        obj.load_state_dict(state[key])
    return state["epoch"]
