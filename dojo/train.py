"""`dojo train`: train the LeNet of kata 12 on CIFAR-10 with the chosen implementation.

Every piece of the learner's kata is used: `LeNet`, `make_datasets`, `make_loaders`,
`train_one_epoch`, `evaluate`, `save_checkpoint`, `load_checkpoint`. This module only adds what a
real run needs around them: choosing the device, finding the data (or a synthetic stand-in when
there is none), a learning-rate schedule, progress, a per-class table, checkpoints, curves.

Checkpoints resume exactly: to the kata's checkpoint (model, optimizer, epoch) the run adds the
schedule's state, every random number generator's state (torch, CUDA, NumPy, Python, the
training loader's own) and the history, so two epochs in one run and one epoch, `--resume`,
one more give the same weights, bit for bit, on the CPU.

Under torchrun (`torchrun --standalone --nproc_per_node N -m dojo train ...`, or
`dojo train --nproc N`) every process trains a DDP replica with kata 19's functions: its process
group, sharded loaders, the DDP wrapper, metrics averaged over all ranks, checkpoints written by
rank 0 alone. Rank 0 alone prints, writes curves.png and the per-class table.

The fast path (`--gpu-resident`, the default on CUDA) keeps the whole data set on the GPU as
uint8 and cuts batches there, with the same crop/flip augmentation and normalisation as the
kata's transforms: for 32x32 images, a DataLoader spends far longer decoding and collating on
the CPU than the GPU spends on LeNet.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from dojo import STARTED
from dojo.loader import KataLoadError, load_kata
from dojo.project import ImplError, find_root, impl_value, resolve_impl

KATA = "12_lenet_cifar"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
console = Console(highlight=False)


# ---------------------------------------------------------------- data


def find_dataset(data_dir: Path | None, download: bool) -> str | None:
    """Which layout `data_dir` holds: "imagefolder", "cifar10" (torchvision's), or None."""
    if data_dir is None:
        return None
    if (data_dir / "train").is_dir() and (data_dir / "test").is_dir():
        return "imagefolder"
    if (data_dir / "cifar-10-batches-py").is_dir() or download:
        return "cifar10"
    return None


def synthetic_cifar(n_train: int = 5000, n_test: int = 1000, seed: int = 0):
    """A learnable stand-in with CIFAR-10's shapes: each class is a smooth colour pattern, each
    image that pattern, shifted and noisy. uint8 (N, 3, 32, 32) images and int64 labels."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(10, 3, 4, 4, generator=g)
    templates = torch.nn.functional.interpolate(low, size=(40, 40), mode="bilinear", align_corners=False)

    def draw(n: int):
        labels = torch.randint(0, 10, (n,), generator=g)
        dx, dy = torch.randint(0, 9, (2, n), generator=g)
        images = torch.stack([templates[c, :, y : y + 32, x : x + 32] for c, x, y in zip(labels, dx, dy)])
        images = images + 0.25 * torch.randn(images.shape, generator=g)
        return (images.clamp(0, 1) * 255).to(torch.uint8), labels

    return draw(n_train), draw(n_test)


def _decode(path: str) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize((32, 32)), dtype=np.uint8)


def decoded_split(dataset, cache: Path, workers: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All images of a split as one uint8 (N, 3, 32, 32) tensor plus labels, decoded once.

    torchvision's CIFAR10 already holds a uint8 array; an ImageFolder is decoded with a process
    pool and cached, so later runs start at once.
    """
    if hasattr(dataset, "data") and isinstance(dataset.data, np.ndarray):
        return torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(dataset.targets)
    if cache.exists():
        saved = torch.load(cache, weights_only=True)
        if saved["n"] == len(dataset.samples):
            return saved["images"], saved["labels"]
    paths = [p for p, _ in dataset.samples]
    with Pool(max(1, workers)) as pool:
        arrays = pool.map(_decode, paths, chunksize=256)
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor([label for _, label in dataset.samples])
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"n": len(paths), "images": images, "labels": labels}, cache)
    return images, labels


class GpuBatches:
    """An iterable of (images, labels) batches cut from tensors that already live on the device.

    Training batches are shuffled with a seeded generator and augmented like the kata's training
    transform: a random 32x32 crop of the image padded by `padding` pixels, and a horizontal
    flip. Every batch is normalised to [-1, 1] like ToTensor + Normalize(0.5, 0.5). Test labels
    may stay on the CPU. It quacks like a DataLoader where the kata needs one: iteration, len().
    """

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, train: bool, seed: int = 0, padding: int = 4
    ):
        self.padding = padding
        self.images = torch.nn.functional.pad(images, (padding,) * 4) if train else images
        self.labels = labels
        self.batch_size, self.train = batch_size, train
        self.generator = torch.Generator(device=images.device).manual_seed(seed)
        self.dataset = labels  # len(loader.dataset) works as with a DataLoader

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __iter__(self):
        if not self.train:
            for start in range(0, len(self.labels), self.batch_size):
                batch = slice(start, start + self.batch_size)
                yield self.images[batch].float() / 127.5 - 1.0, self.labels[batch]
            return
        n, g = len(self.labels), self.generator
        order = torch.randperm(n, device=self.labels.device, generator=g)
        # On a GPU, augment the whole epoch at once, in a handful of big kernels: per batch only a
        # slice and the normalisation are left, and with LeNet's small batches what limits a GPU
        # step is how many kernels the CPU must launch, not how long they run. On the CPU, batch
        # by batch: the same work, but in memory that stays in cache.
        chunk = self.batch_size if self.images.device.type == "cpu" else n
        for first in range(0, n, chunk):
            indices = order[first : first + chunk]
            images, labels = self._augmented(indices), self.labels[indices]
            for start in range(0, len(indices), self.batch_size):
                batch = slice(start, start + self.batch_size)
                yield images[batch].float() / 127.5 - 1.0, labels[batch]

    def _augmented(self, indices: torch.Tensor) -> torch.Tensor:
        """Images `indices`, each a random 32x32 crop of its padded self, half of them flipped."""
        n, dev, g = len(indices), indices.device, self.generator
        dy, dx = torch.randint(0, 2 * self.padding + 1, (2, n, 1), device=dev, generator=g)  # where each crop starts
        rows = (dy + torch.arange(32, device=dev))[:, None, :, None]
        cols = (dx + torch.arange(32, device=dev))[:, None, None, :]
        channels = torch.arange(3, device=dev)[None, :, None, None]
        images = self.images[indices[:, None, None, None], channels, rows, cols]
        flip = torch.rand(n, device=dev, generator=g) < 0.5
        return torch.where(flip[:, None, None, None], images.flip(3), images)


class Tracked:
    """Wrap a loader so a rich progress bar advances as the kata's loop iterates over it."""

    def __init__(self, loader, progress: Progress, task, epoch: int):
        self.loader, self.progress, self.task = loader, progress, task
        self.dataset = getattr(loader, "dataset", None)
        progress.reset(task, total=len(loader), epoch=epoch + 1, info="")

    def __getattr__(self, name: str):
        return getattr(self.loader, name)  # batch_size, sampler, ... as the kata's loop may read them

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            yield batch
            self.progress.advance(self.task)


# ---------------------------------------------------------------- the run


def pick_device(name: str) -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    return torch.device("mps" if mps and mps.is_available() else "cpu")


def load_impl(root: Path, impl: str) -> ModuleType:
    try:
        module = load_kata(resolve_impl(root, impl), KATA)
    except (ImplError, KataLoadError) as err:
        raise SystemExit(f"dojo train: {err}") from None
    return module


@dataclass
class Data:
    """What a run trains on: uint8 tensors (synthetic, or decoded for the fast path) or the kata's datasets."""

    classes: list[str]
    what: str
    tensors: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None
    datasets: tuple | None = None

    def tensor_datasets(self):
        """The tensors as TensorDatasets, normalized like the kata's Normalize(0.5, 0.5)."""
        train_x, train_y, test_x, test_y = self.tensors
        return (
            torch.utils.data.TensorDataset(train_x.float() / 127.5 - 1.0, train_y),
            torch.utils.data.TensorDataset(test_x.float() / 127.5 - 1.0, test_y),
        )


def load_data(kata: ModuleType, args, root: Path, fast_path: bool, quiet: bool = False) -> Data:
    data_dir = Path(args.data_dir).expanduser() if args.data_dir else None
    layout = find_dataset(data_dir, args.download)
    if layout is None:
        where = f"at {data_dir}" if data_dir else "(no --data-dir given)"
        if not quiet:
            console.print(
                Panel(
                    f"No CIFAR-10 found {escape(where)}: training on a SYNTHETIC stand-in ({args.synthetic_train:,} "
                    "images of 10 coloured patterns), so the command runs offline. Accuracies say nothing about "
                    "CIFAR-10.\nReal data: --data-dir DIR with train/<class>/*.jpg and test/<class>/*.jpg, "
                    "or --data-dir DIR --download for torchvision's CIFAR-10 (170 MB).",
                    title="synthetic data",
                    style="yellow",
                )
            )
        (train_x, train_y), (test_x, test_y) = synthetic_cifar(n_train=args.synthetic_train, seed=args.seed)
        return Data(
            [f"pattern {i}" for i in range(10)], "synthetic stand-in", tensors=(train_x, train_y, test_x, test_y)
        )
    train_set, test_set = kata.make_datasets(data_dir, download=args.download)
    classes = list(getattr(train_set, "classes", CLASSES))
    what = f"CIFAR-10 ({layout}) from {data_dir}"
    if not fast_path:
        return Data(classes, what, datasets=(train_set, test_set))
    started = time.perf_counter()
    cache = root / ".dojo" / "cache"
    tag = hashlib.sha1(str(data_dir.resolve()).encode()).hexdigest()[:10]
    train_x, train_y = decoded_split(train_set, cache / f"train-{tag}.pt", args.decode_workers)
    test_x, test_y = decoded_split(test_set, cache / f"test-{tag}.pt", args.decode_workers)
    if not quiet:
        console.print(
            f"decoded {len(train_y) + len(test_y):,} images in {time.perf_counter() - started:.1f} s (cached in .dojo/cache)"
        )
    return Data(classes, what, tensors=(train_x, train_y, test_x, test_y))


def build_loaders(kata: ModuleType, data: Data, args, device: torch.device):
    """(train_loader, test_loader) of a single-process run."""
    if args.gpu_resident:
        return gpu_batches(*data.tensors, device, args)
    train_set, test_set = data.datasets if data.datasets else data.tensor_datasets()
    train_loader, test_loader = kata.make_loaders(train_set, test_set, args.batch_size, args.seed, args.num_workers)
    return _pin(train_loader, args), _pin(test_loader, args)


def gpu_batches(train_x, train_y, test_x, test_y, device: torch.device, args) -> tuple[GpuBatches, GpuBatches]:
    # Test labels stay on the CPU, as a DataLoader would give them: the kata's `evaluate` may
    # compare them with predictions it brought back with .cpu(). Evaluation keeps no activations
    # for a backward pass, so it takes bigger batches: fewer steps for the CPU to launch.
    return (
        GpuBatches(train_x.to(device), train_y.to(device), args.batch_size, True, args.seed, args.crop_padding),
        GpuBatches(test_x.to(device), test_y.cpu(), max(args.batch_size, 1000), False),
    )


def _pin(loader, args):
    if args.pin_memory and torch.cuda.is_available():
        loader.pin_memory = True  # read when iteration starts
    return loader


def one_cycle(epochs: int):
    """Per-epoch one-cycle factor: warm up for 20% of the epochs, then cosine down to ~0."""
    warm = max(1, round(0.2 * epochs))

    def factor(epoch: int) -> float:
        if epoch < warm:
            return (epoch + 1) / warm
        t = (epoch - warm) / max(1, epochs - warm)
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t))

    return factor


def save_curves(history: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, [h["train_loss"] for h in history], marker="o")
    ax1.set(xlabel="epoch", ylabel="mean training loss", title="loss")
    ax2.plot(epochs, [100 * h["test_accuracy"] for h in history], marker="o", color="tab:green")
    ax2.set(xlabel="epoch", ylabel="test accuracy (%)", title="accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def per_class_table(classes: list[str], per_class: list[float]) -> Table:
    table = Table(title="test accuracy per class", title_justify="left")
    table.add_column("class")
    table.add_column("accuracy", justify="right")
    for name, acc in zip(classes, per_class):
        table.add_row(name, "-" if math.isnan(acc) else f"{100 * acc:.1f}%")
    return table


# ---------------------------------------------------------------- exact resume


def rng_state(loader) -> dict:
    """Every random number generator the next epoch draws from, as tensors and numbers (so the
    checkpoint still loads with weights_only=True): torch's, CUDA's, NumPy's, Python's, and the
    training loader's own generators (its shuffle order and its workers' seeds)."""
    py_version, py_state, py_gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": {"version": py_version, "state": torch.tensor(py_state, dtype=torch.int64), "gauss": py_gauss},
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "loader": [g.get_state() for g in loader_generators(loader)],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, loader) -> None:
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state(("MT19937", npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"], npy["cached"]))
    for generator, saved in zip(loader_generators(loader), state["loader"]):
        generator.set_state(saved)
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def loader_generators(loader) -> list[torch.Generator]:
    """The generators a loader draws its order and worker seeds from (each once)."""
    found: list[torch.Generator] = []
    for owner in (
        loader,
        getattr(loader, "sampler", None),
        getattr(getattr(loader, "batch_sampler", None), "sampler", None),
    ):
        g = getattr(owner, "generator", None)
        if isinstance(g, torch.Generator) and all(g is not h for h in found):
            found.append(g)
    return found


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # CUDA's generators too


def add_train_state(path: Path, **state) -> None:
    """Add the run's own state to the checkpoint the kata wrote (model, optimizer, epoch), in place."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    checkpoint.update(state)
    tmp = path.with_suffix(".tmp")
    torch.save(checkpoint, tmp)
    os.replace(tmp, path)


def make_optimizer(parameters, args, device: torch.device):
    # fused: on CUDA the whole update (weight decay, momentum, step) is one kernel, not a handful.
    fused = True if device.type == "cuda" else None
    optimizer = torch.optim.SGD(parameters, lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-4, fused=fused)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, one_cycle(args.epochs))
    return optimizer, scheduler, torch.nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)


def restore_schedule(scheduler, state: dict, start_epoch: int) -> None:
    if "scheduler" in state:
        scheduler.load_state_dict(state["scheduler"])
        return
    # A checkpoint without the schedule (the kata's own format): move the schedule on by hand.
    # The order is right (each optimizer step came before these), but PyTorch cannot know that.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(start_epoch):
            scheduler.step()


# ---------------------------------------------------------------- the run


def under_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ or ("RANK" in os.environ and "WORLD_SIZE" in os.environ)


def launch_torchrun(args: argparse.Namespace) -> int:
    """`dojo train --nproc N`: the same command under torchrun, N processes on this machine."""
    argv, skip = [], False
    for word in args.argv:
        if skip:
            skip = False
            continue
        if word == "--nproc":
            skip = True
            continue
        if word.startswith("--nproc="):
            continue
        argv.append(word)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(max(1, cpus // args.nproc)))}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={args.nproc}",
        "-m",
        "dojo",
        *argv,
    ]
    console.print(f"[dim]$ {escape(' '.join(cmd[1:]))}[/]")
    return subprocess.run(cmd, env=env).returncode


def cmd_train(root: Path, args: argparse.Namespace) -> int:
    return train(args, root)


def train(args: argparse.Namespace, root: Path | None = None) -> int:
    root = root or find_root()
    args.impl = impl_value(getattr(args, "impl", None))
    if getattr(args, "nproc", None) and not under_torchrun():
        return launch_torchrun(args)
    kata = load_impl(root, args.impl)
    if under_torchrun():
        return train_distributed(kata, args, root)
    device = pick_device(args.device)
    if args.gpu_resident is None:
        args.gpu_resident = device.type == "cuda"
    seed_everything(args.seed)
    if device.type == "cuda":
        # Every batch has one of a few shapes, so cuDNN may time its convolution algorithms once
        # per shape and keep the fastest, instead of guessing.
        torch.backends.cudnn.benchmark = True
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "checkpoint.pt"

    wall = time.perf_counter()
    data = load_data(kata, args, root, fast_path=args.gpu_resident)
    train_loader, test_loader = build_loaders(kata, data, args, device)
    model = kata.LeNet().to(device)
    optimizer, scheduler, loss_fn = make_optimizer(model.parameters(), args, device)
    history: list[dict] = []
    start_epoch = 0
    if args.resume:
        if not checkpoint.exists():
            raise SystemExit(f"dojo train: --resume, but there is no {checkpoint}")
        start_epoch = kata.load_checkpoint(checkpoint, model, optimizer, device)
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        restore_schedule(scheduler, state, start_epoch)
        history = list(state.get("history", []))[:start_epoch]
        if "rng" in state:
            set_rng_state(state["rng"], train_loader)
            console.print(f"resumed from {checkpoint} after epoch {start_epoch} (schedule and random state restored)")
        else:
            console.print(f"resumed from {checkpoint} after epoch {start_epoch} (no random state saved: not bit-exact)")

    path = (
        f"GPU-resident batches, crop padding {args.crop_padding}"
        if args.gpu_resident
        else f"DataLoader, num_workers={args.num_workers}, pin_memory={args.pin_memory}"
    )
    console.print(
        f"training LeNet from [bold]{escape(args.impl)}[/] on {device} | {data.what} | {path} | "
        f"{args.epochs} epochs, batch {args.batch_size}, lr {args.lr} (one-cycle), label smoothing "
        f"{args.label_smoothing} | torch {torch.__version__}"
    )
    acc, per_class = float("nan"), []
    with epoch_progress(train_loader, start_epoch, True) as (progress, task):
        for epoch in range(start_epoch, args.epochs):
            started = time.perf_counter()
            loader = Tracked(train_loader, progress, task, epoch) if progress else train_loader
            loss = kata.train_one_epoch(model, loader, optimizer, loss_fn, device)
            scheduler.step()
            acc, per_class = kata.evaluate(model, test_loader, device, len(data.classes))
            seconds = time.perf_counter() - started
            history.append({"epoch": epoch + 1, "train_loss": loss, "test_accuracy": acc, "seconds": seconds})
            kata.save_checkpoint(checkpoint, model, optimizer, epoch + 1)
            add_train_state(checkpoint, scheduler=scheduler.state_dict(), rng=rng_state(train_loader), history=history)
            (out / "history.json").write_text(json.dumps(history, indent=1))
            report_epoch(progress, task, epoch, loss, acc, seconds)
    finish(history, data, per_class, acc, args, out, checkpoint, wall)
    return 0


@contextmanager
def epoch_progress(loader, start_epoch: int, lead: bool):
    """A rich progress bar over each epoch's batches (on the leading process only)."""
    if not lead:
        yield None, None
        return
    columns = [
        TextColumn("epoch {task.fields[epoch]:>3}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    ]
    with Progress(*columns, console=console, transient=not console.is_terminal) as progress:
        yield progress, progress.add_task("train", total=len(loader), epoch=start_epoch + 1, info="")


def report_epoch(progress, task, epoch: int, loss: float, acc: float, seconds: float) -> None:
    if progress is None:
        return
    progress.update(task, info=f"loss {loss:.3f}  test acc {100 * acc:.1f}%  {seconds:.1f} s")
    if not console.is_terminal:
        console.print(f"epoch {epoch + 1:>3}: loss {loss:.3f}, test accuracy {100 * acc:.1f}% ({seconds:.1f} s)")


def finish(
    history, data: Data, per_class, acc: float, args, out: Path, checkpoint: Path, wall: float, note: str = ""
) -> None:
    total = time.perf_counter() - wall
    if per_class:
        console.print(per_class_table(data.classes, per_class))
    if history:
        save_curves(history, out / "curves.png", f"LeNet, {data.what}")
    console.print(
        f"[bold]final test accuracy {100 * acc:.2f}%[/] after {args.epochs} epochs{note}; {total:.1f} s of data "
        f"loading, training and evaluation, {time.perf_counter() - STARTED:.1f} s since the command started "
        f"(imports included).\nCheckpoint: {checkpoint}; curves: {out / 'curves.png'}"
    )


# ---------------------------------------------------------------- under torchrun (kata 19)

DDP_KATA = "19_distributed_data_parallel"


def train_distributed(kata: ModuleType, args: argparse.Namespace, root: Path) -> int:
    """One process of `torchrun ... -m dojo train`: kata 12's LeNet and training epoch, kata 19's
    process group, sharded loaders, DDP model, global metrics and rank-0 checkpoints."""
    import torch.distributed as dist

    try:
        ddp = load_kata(resolve_impl(root, args.impl), DDP_KATA)
    except (ImplError, KataLoadError) as err:
        raise SystemExit(f"dojo train: {err}") from None
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if args.device == "auto":
        device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
        if device.type == "cuda" and device.index is None:
            device = torch.device(f"cuda:{local_rank}")
    backend = "nccl" if device.type == "cuda" else "gloo"
    with ddp.process_group(backend) as (rank, world):
        lead = rank == 0
        seed_everything(args.seed + rank)  # each rank its own augmentation draws; DDP syncs the weights
        out = Path(args.out)
        checkpoint = out / "checkpoint.pt"
        if lead:
            out.mkdir(parents=True, exist_ok=True)
        wall = time.perf_counter()
        data = load_data(kata, args, root, fast_path=False, quiet=not lead)
        train_set, test_set = data.datasets if data.datasets else data.tensor_datasets()
        train_loader = ddp.distributed_loader(train_set, args.batch_size, args.seed, args.num_workers)
        test_loader = torch.utils.data.DataLoader(ddp.eval_shard(test_set, rank, world), batch_size=args.batch_size)
        model = kata.LeNet().to(device)
        wrapped = ddp.wrap_model(model, device)
        optimizer, scheduler, loss_fn = make_optimizer(wrapped.parameters(), args, device)
        history: list[dict] = []
        start_epoch = 0
        if args.resume:
            if not checkpoint.exists():
                raise SystemExit(f"dojo train: --resume, but there is no {checkpoint}")
            state = ddp.load_on_every_rank(checkpoint, device)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            start_epoch = int(state["epoch"])
            restore_schedule(scheduler, state, start_epoch)
            history = list(state.get("history", []))[:start_epoch]
            saved = state.get("rng")
            if saved and len(saved) == world:
                set_rng_state(saved[rank], train_loader)
            if lead:
                exact = "random state restored" if saved and len(saved) == world else "not bit-exact: other world size"
                console.print(f"resumed from {checkpoint} after epoch {start_epoch} ({exact})")
        if lead:
            console.print(
                f"training LeNet from [bold]{escape(args.impl)}[/] with DDP: {world} processes ({backend}, {device.type}) | "
                f"{data.what} | DataLoader per rank, num_workers={args.num_workers} | {args.epochs} epochs, batch "
                f"{args.batch_size} per process, lr {args.lr} (one-cycle) | torch {torch.__version__}"
            )
        acc = float("nan")
        with epoch_progress(train_loader, start_epoch, lead) as (progress, task):
            for epoch in range(start_epoch, args.epochs):
                started = time.perf_counter()
                ddp.begin_epoch(train_loader, epoch)
                loader = Tracked(train_loader, progress, task, epoch) if progress else train_loader
                local_loss = kata.train_one_epoch(wrapped, loader, optimizer, loss_fn, device)
                scheduler.step()
                seen = len(train_loader.sampler)
                loss = ddp.global_mean(local_loss * seen, seen, device)
                local_acc, _ = kata.evaluate(model, test_loader, device, len(data.classes))
                shard = len(test_loader.dataset)
                acc = ddp.global_mean(round(local_acc * shard), shard, device)
                seconds = time.perf_counter() - started
                history.append({"epoch": epoch + 1, "train_loss": loss, "test_accuracy": acc, "seconds": seconds})
                states = [None] * world
                dist.all_gather_object(states, rng_state(train_loader))
                ddp.save_on_rank0(
                    checkpoint,
                    wrapped,
                    optimizer=optimizer.state_dict(),
                    epoch=epoch + 1,
                    scheduler=scheduler.state_dict(),
                    rng=states,
                    history=history,
                    world_size=world,
                )
                if lead:
                    (out / "history.json").write_text(json.dumps(history, indent=1))
                report_epoch(progress, task, epoch, loss, acc, seconds)
        if lead:
            full = torch.utils.data.DataLoader(test_set, batch_size=args.batch_size)
            _, per_class = kata.evaluate(model, full, device, len(data.classes))
            finish(history, data, per_class, acc, args, out, checkpoint, wall, note=f" on {world} processes")
    return 0
