"""What the loader benchmarks share: sizes (full or quick), the device, the kata under test, the
two data sets, and the facts written beside every figure.

Usage notes live in `dojo/bench.py` (`dojo bench` runs this folder and summarizes the JSON).

- `--bench-quick` (an option of the torch-katas plugin, so it works from any folder) shrinks the
  data sets and rounds so the whole lane runs in well under a minute on a 2-core CPU machine.
- `--bench-workers=0,2,8` replaces the num_workers grid (default 0, 1, 2, 4, then powers of two
  up to the CPU count, and the CPU count itself).
- Loaders are built with the implementation's own `make_loader`, `InMemoryDataset`, `keep_batch`
  and `move_batch` (kata 11, loaded from the --impl folder): a learner times their own loader.
"""

from __future__ import annotations

import io
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from dojo.loader import KataLoadError, load_kata
from dojo.project import find_root, impl_label

KATA = "11_loader_settings"
ROOT = find_root(Path(__file__).parent)


def cpu_count() -> int:
    """CPUs this process may run on (the affinity mask where there is one, as in a container)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def worker_grid(cpus: int) -> list[int]:
    """0, 1, 2, 4, then powers of two up to `cpus`, and `cpus` itself."""
    values = {0, 1, 2, 4, cpus}
    power = 8
    while power <= cpus:
        values.add(power)
        power *= 2
    return sorted(values)


@dataclass(frozen=True)
class Sizes:
    quick: bool
    n_tensors: int  # samples of the in-memory set (float32 3x32x32, like normalized CIFAR)
    n_images: int  # PNG images of the decode-bound set
    batch_size: int
    rounds: int  # timed epochs per case
    warmup_rounds: int  # untimed epochs first: workers start, allocator warms
    h2d_sizes: tuple[int, ...]  # bytes per host-to-device copy
    h2d_bytes_per_round: int  # copies per round = this // size (at least 1)
    h2d_rounds: int


FULL = Sizes(False, 50_000, 10_000, 256, 5, 1, (64 << 10, 1 << 20, 16 << 20, 64 << 20, 256 << 20), 256 << 20, 20)
QUICK = Sizes(True, 16_384, 2_048, 128, 5, 1, (1 << 20, 64 << 20), 128 << 20, 5)


def _quick(config: pytest.Config) -> bool:
    return bool(config.getoption("bench_quick", default=None))


def size_label(n_bytes: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n_bytes >= 1 << shift and n_bytes % (1 << shift) == 0:
            return f"{n_bytes >> shift}{unit}"
    return f"{n_bytes}B"


@pytest.hookimpl(trylast=True)  # after the parametrize marks: ids read dataset-pinning-workers
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The grids that depend on the machine (CPU count) or on the mode (quick or full)."""
    if "num_workers" in metafunc.fixturenames:
        text = metafunc.config.getoption("bench_workers", default=None)
        try:
            values = sorted({int(v) for v in text.split(",")}) if text else worker_grid(cpu_count())
        except ValueError:
            raise pytest.UsageError(
                f"--bench-workers={text}: expected numbers separated by commas, e.g. 0,2,8"
            ) from None
        metafunc.parametrize("num_workers", values, ids=[f"workers{n}" for n in values])
    if "h2d_bytes" in metafunc.fixturenames:
        values = (QUICK if _quick(metafunc.config) else FULL).h2d_sizes
        metafunc.parametrize("h2d_bytes", values, ids=[size_label(n) for n in values])


@pytest.fixture(scope="session")
def sizes(pytestconfig: pytest.Config) -> Sizes:
    return QUICK if _quick(pytestconfig) else FULL


@pytest.fixture(scope="session")
def bench_device() -> torch.device:
    """The accelerator where there is one (the copy the loader feeds), else the CPU."""
    if torch.accelerator.is_available():
        return torch.device(torch.accelerator.current_accelerator().type)
    return torch.device("cpu")


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
    elif device.type != "cpu":
        torch.accelerator.synchronize()


@pytest.fixture(scope="session")
def sync(bench_device: torch.device):
    """sync(): wait until the work queued on the device is done, so a clock read afterwards
    counts all of it (a no-op on the CPU, where work is done when the call returns)."""
    return lambda: _synchronize(bench_device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@pytest.fixture(scope="session")
def machine_info(bench_device: torch.device, sizes: Sizes, impl_folder: Path) -> dict:
    """What every figure needs beside it to mean something."""
    return {
        "device": str(bench_device),
        "device_name": device_name(bench_device),
        "cpu_count": cpu_count(),
        "torch_threads": torch.get_num_threads(),  # the main process's; each worker uses one
        "torch": torch.__version__,
        "python": platform.python_version(),
        "impl": impl_label(ROOT, impl_folder),
        "quick": sizes.quick,
    }


@pytest.fixture(scope="session")
def loader_kata(impl_folder: Path):
    """Kata 11 from the folder under test; SKIPPED (with what to do) while it is an unfilled stub."""
    label = impl_label(ROOT, impl_folder)
    try:
        kata = load_kata(impl_folder, KATA)
    except KataLoadError as err:
        pytest.fail(f"cannot time kata 11's loader: {err}", pytrace=False)
    try:
        # One cheap call of each piece the benchmarks use: a stub raises NotImplementedError.
        data = kata.InMemoryDataset(torch.arange(4.0), torch.arange(4))
        loader = kata.make_loader(data, 2, persistent_workers=True, prefetch_factor=2, collate_fn=kata.keep_batch)
        for batch in loader:
            kata.move_batch(batch, "cpu")
        kata.move_batch((torch.zeros(1),), "cpu")
    except NotImplementedError as err:
        pytest.skip(
            f"kata 11 in {label} is not finished ({err}): finish kata 11 first "
            "(`pytest -m kata11`), or time the reference with --impl=solutions"
        )
    except Exception as err:  # a wrong answer: its tests say more than a benchmark could
        pytest.fail(
            f"kata 11 in {label} fails a quick check before timing ({type(err).__name__}: {err}); "
            f"run `pytest --impl={label} -m kata11` and fix it first",
            pytrace=False,
        )
    return kata


# ---------------------------------------------------------------- the two data sets


class EncodedImages:
    """A CIFAR-like image set as it comes from disk: each image is PNG bytes (held in memory, so
    the disk is out of the measurement), decoded with PIL and turned into a normalized float
    tensor per item, the work `torchvision.datasets.ImageFolder` + `ToTensor` + `Normalize` does.
    Deterministic and self-made: the images are `dojo.train.synthetic_cifar`'s patterns."""

    def __init__(self, blobs: list[bytes], labels: list[int]) -> None:
        from torchvision import transforms

        self.blobs, self.labels = blobs, labels
        self.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)])

    def __len__(self) -> int:
        return len(self.blobs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        with Image.open(io.BytesIO(self.blobs[index])) as image:
            return self.transform(image.convert("RGB")), self.labels[index]


def encode_png(images: torch.Tensor) -> list[bytes]:
    """uint8 (N, 3, H, W) images as PNG files' bytes."""
    from PIL import Image

    blobs = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(buffer, format="PNG")
        blobs.append(buffer.getvalue())
    return blobs


@dataclass
class BenchData:
    name: str
    description: str
    dataset: object
    collate_fn: object  # None: the default collate


@pytest.fixture(scope="session")
def tensor_set(sizes: Sizes) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(sizes.n_tensors, 3, 32, 32, generator=g).sub_(0.5).div_(0.5)
    labels = torch.randint(0, 10, (sizes.n_tensors,), generator=g)
    return images, labels


@pytest.fixture(scope="session")
def png_set(sizes: Sizes) -> EncodedImages:
    from dojo.train import synthetic_cifar

    (images, labels), _ = synthetic_cifar(n_train=sizes.n_images, n_test=1, seed=0)
    return EncodedImages(encode_png(images), labels.tolist())


@pytest.fixture
def bench_data(request: pytest.FixtureRequest, loader_kata, sizes: Sizes) -> BenchData:
    """The data set named by the test's `dataset` parameter, built only when a case needs it."""
    name = request.getfixturevalue("dataset")
    if name == "tensors":
        images, labels = request.getfixturevalue("tensor_set")
        return BenchData(
            name,
            f"{len(images)} float32 3x32x32 tensors in memory, kata 11's InMemoryDataset (a batch per __getitems__)",
            loader_kata.InMemoryDataset(images, labels),
            loader_kata.keep_batch,
        )
    if name == "png":
        data = request.getfixturevalue("png_set")
        return BenchData(
            name,
            f"{len(data)} 32x32 PNG images decoded with PIL per item, then ToTensor + Normalize (default collate)",
            data,
            None,
        )
    raise ValueError(f"unknown data set {name!r}")
