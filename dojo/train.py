"""`dojo train`: train the LeNet of kata 12 on CIFAR-10 with the chosen implementation.

Every piece of the learner's kata is used: `LeNet`, `make_datasets`, `make_loaders`,
`train_one_epoch`, `evaluate`, `save_checkpoint`, `load_checkpoint`. This module only adds what a
real run needs around them: choosing the device, finding the data (or a synthetic stand-in when
there is none), a learning-rate schedule, progress, a per-class table, checkpoints, curves.

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
import time
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

    def __init__(self, loader, progress: Progress, task):
        self.loader, self.progress, self.task = loader, progress, task
        self.dataset = getattr(loader, "dataset", None)

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


def build_data(kata: ModuleType, args, device: torch.device, root: Path):
    """(train_loader, test_loader, class names, description) for the run."""
    data_dir = Path(args.data_dir).expanduser() if args.data_dir else None
    layout = find_dataset(data_dir, args.download)
    if layout is None:
        where = f"at {data_dir}" if data_dir else "(no --data-dir given)"
        console.print(
            Panel(
                f"No CIFAR-10 found {escape(where)}: training on a SYNTHETIC stand-in (5,000 images of "
                "10 coloured patterns), so the command runs offline. Accuracies say nothing about "
                "CIFAR-10.\nReal data: --data-dir DIR with train/<class>/*.jpg and test/<class>/*.jpg, "
                "or --data-dir DIR --download for torchvision's CIFAR-10 (170 MB).",
                title="synthetic data",
                style="yellow",
            )
        )
        (train_x, train_y), (test_x, test_y) = synthetic_cifar(seed=args.seed)
        classes, what = [f"pattern {i}" for i in range(10)], "synthetic stand-in"
        if args.gpu_resident:
            return gpu_batches(train_x, train_y, test_x, test_y, device, args) + (classes, what)
        norm = lambda x: x.float() / 127.5 - 1.0  # noqa: E731  the kata's Normalize(0.5, 0.5)
        train_set = torch.utils.data.TensorDataset(norm(train_x), train_y)
        test_set = torch.utils.data.TensorDataset(norm(test_x), test_y)
        train_loader, test_loader = kata.make_loaders(train_set, test_set, args.batch_size, args.seed, args.num_workers)
        return _pin(train_loader, args), _pin(test_loader, args), classes, what

    train_set, test_set = kata.make_datasets(data_dir, download=args.download)
    classes = list(getattr(train_set, "classes", CLASSES))
    what = f"CIFAR-10 ({layout}) from {data_dir}"
    if args.gpu_resident:
        started = time.perf_counter()
        cache = root / ".dojo" / "cache"
        tag = hashlib.sha1(str(data_dir.resolve()).encode()).hexdigest()[:10]
        train_x, train_y = decoded_split(train_set, cache / f"train-{tag}.pt", args.decode_workers)
        test_x, test_y = decoded_split(test_set, cache / f"test-{tag}.pt", args.decode_workers)
        console.print(
            f"decoded {len(train_y) + len(test_y):,} images in {time.perf_counter() - started:.1f} s (cached in .dojo/cache)"
        )
        return gpu_batches(train_x, train_y, test_x, test_y, device, args) + (classes, what)
    train_loader, test_loader = kata.make_loaders(train_set, test_set, args.batch_size, args.seed, args.num_workers)
    return _pin(train_loader, args), _pin(test_loader, args), classes, what


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


def cmd_train(root: Path, args: argparse.Namespace) -> int:
    return train(args, root)


def train(args: argparse.Namespace, root: Path | None = None) -> int:
    root = root or find_root()
    args.impl = impl_value(getattr(args, "impl", None))
    kata = load_impl(root, args.impl)
    device = pick_device(args.device)
    if args.gpu_resident is None:
        args.gpu_resident = device.type == "cuda"
    torch.manual_seed(args.seed)
    if device.type == "cuda":
        # Every batch has one of a few shapes, so cuDNN may time its convolution algorithms once
        # per shape and keep the fastest, instead of guessing.
        torch.backends.cudnn.benchmark = True
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "checkpoint.pt"

    wall = time.perf_counter()
    train_loader, test_loader, classes, what = build_data(kata, args, device, root)
    model = kata.LeNet().to(device)
    # fused: on CUDA the whole update (weight decay, momentum, step) is one kernel, not a handful.
    fused = True if device.type == "cuda" else None
    optimizer = torch.optim.SGD(
        model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-4, fused=fused
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, one_cycle(args.epochs))
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    history: list[dict] = []
    start_epoch = 0
    if args.resume:
        if not checkpoint.exists():
            raise SystemExit(f"dojo train: --resume, but there is no {checkpoint}")
        start_epoch = kata.load_checkpoint(checkpoint, model, optimizer, device)
        history_file = out / "history.json"
        history = json.loads(history_file.read_text())[:start_epoch] if history_file.exists() else []
        for _ in range(start_epoch):
            scheduler.step()
        console.print(f"resumed from {checkpoint} after epoch {start_epoch}")

    path = (
        f"GPU-resident batches, crop padding {args.crop_padding}"
        if args.gpu_resident
        else f"DataLoader, num_workers={args.num_workers}, pin_memory={args.pin_memory}"
    )
    console.print(
        f"training LeNet from [bold]{escape(args.impl)}[/] on {device} | {what} | {path} | "
        f"{args.epochs} epochs, batch {args.batch_size}, lr {args.lr} (one-cycle), label smoothing "
        f"{args.label_smoothing} | torch {torch.__version__}"
    )
    columns = [
        TextColumn("epoch {task.fields[epoch]:>3}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    ]
    acc, per_class = float("nan"), []
    with Progress(*columns, console=console, transient=not console.is_terminal) as progress:
        task = progress.add_task("train", total=len(train_loader), epoch=start_epoch + 1, info="")
        for epoch in range(start_epoch, args.epochs):
            progress.reset(task, total=len(train_loader), epoch=epoch + 1, info="")
            started = time.perf_counter()
            loss = kata.train_one_epoch(model, Tracked(train_loader, progress, task), optimizer, loss_fn, device)
            scheduler.step()
            acc, per_class = kata.evaluate(model, test_loader, device, len(classes))
            seconds = time.perf_counter() - started
            history.append({"epoch": epoch + 1, "train_loss": loss, "test_accuracy": acc, "seconds": seconds})
            kata.save_checkpoint(checkpoint, model, optimizer, epoch + 1)
            (out / "history.json").write_text(json.dumps(history, indent=1))
            progress.update(task, info=f"loss {loss:.3f}  test acc {100 * acc:.1f}%  {seconds:.1f} s")
            if not console.is_terminal:
                console.print(
                    f"epoch {epoch + 1:>3}: loss {loss:.3f}, test accuracy {100 * acc:.1f}% ({seconds:.1f} s)"
                )

    total = time.perf_counter() - wall
    if per_class:
        console.print(per_class_table(classes, per_class))
    if history:
        save_curves(history, out / "curves.png", f"LeNet, {what}")
    console.print(
        f"[bold]final test accuracy {100 * acc:.2f}%[/] after {args.epochs} epochs; {total:.1f} s of data "
        f"loading, training and evaluation, {time.perf_counter() - STARTED:.1f} s since the command started "
        f"(imports included).\nCheckpoint: {checkpoint}; curves: {out / 'curves.png'}"
    )
    return 0
