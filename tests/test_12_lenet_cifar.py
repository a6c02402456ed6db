"""Tests for kata 12, LeNet on CIFAR-10: one class per exercise, in learning order.

Nothing here downloads or reads the real CIFAR-10. The tests make their own data:
- CIFAR-shaped tensors of a learnable task (a bright square in one of four quadrants: its
  quadrant is the class), on which LeNet beats chance (25%) by far within a few epochs;
- tiny folders of 32x32 PNG and JPEG images in the class-folder layout, written with PIL;
- a tiny `cifar-10-batches-py` folder in torchvision's format, whose checksums the tests give to
  `datasets.CIFAR10` (monkeypatched for that test only); `CIFAR10.download` is replaced by a
  recorder in every test of this file, so nothing can ever be downloaded.
The references (a LeNet with the tutorial's layer names, a training loop, the accuracy
arithmetic, a checkpoint format) are written here, independent of the code under test, so each
exercise is checked on its own. Device mistakes show on a CPU-only machine through the `meta`
device: tensors with a shape and a device but no values.
"""

from __future__ import annotations

import hashlib
import math
import pickle
import weakref

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten
from torch.utils.data import DataLoader, TensorDataset
from torchvision import datasets

from dojo.stubs import STUB_TAG
from dojo.testing import GPU_ONLY, check, check_tensor, describe, exercise, expect_raises, value_mismatch

META = torch.device("meta")  # exists everywhere; catches a batch left on the CPU
LENET_PARAMS = 62_006  # the tutorial's figure for 10 classes
LENET_SHAPES = {
    "conv1.weight": (6, 3, 5, 5),
    "conv1.bias": (6,),
    "conv2.weight": (16, 6, 5, 5),
    "conv2.bias": (16,),
    "fc1.weight": (120, 400),
    "fc1.bias": (120,),
    "fc2.weight": (84, 120),
    "fc2.bias": (84,),
    "fc3.weight": (10, 84),
    "fc3.bias": (10,),
}
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def reraise_stub(err: BaseException) -> None:
    """A test that tolerates an exception must still report an unfilled stub as "not done yet"."""
    if STUB_TAG in str(err):
        raise err


# --------------------------------------------------------------------------------------------
# Shared references and data


class RefLeNet(nn.Module):
    """The test's own LeNet (same layers and names as the exercise), for the later exercises."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        return self.fc3(F.relu(self.fc2(x)))


def lenet_functional(p: dict, x: torch.Tensor) -> torch.Tensor:
    """LeNet's forward pass written with torch.nn.functional, from a dict of its tensors."""
    x = F.max_pool2d(F.relu(F.conv2d(x, p["conv1.weight"], p["conv1.bias"])), 2)
    x = F.max_pool2d(F.relu(F.conv2d(x, p["conv2.weight"], p["conv2.bias"])), 2)
    x = x.reshape(x.shape[0], -1)
    x = F.relu(F.linear(x, p["fc1.weight"], p["fc1.bias"]))
    x = F.relu(F.linear(x, p["fc2.weight"], p["fc2.bias"]))
    return F.linear(x, p["fc3.weight"], p["fc3.bias"])


def ref_model(num_classes: int = 4, seed: int = 0, device="cpu") -> RefLeNet:
    torch.manual_seed(seed)
    return RefLeNet(num_classes).to(device)


def quadrant_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n noisy dark images (N, 3, 32, 32) in [-1, 1], each with a bright 12x12 square in one
    quadrant; the quadrant (0: top left, 1: top right, 2: bottom left, 3: bottom right) is the
    label. Balanced classes, shuffled order."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randperm(n, generator=g) % 4
    x = 0.4 * torch.randn(n, 3, 32, 32, generator=g) - 0.5
    pos = torch.arange(32)
    for c in range(4):
        r, col = divmod(c, 2)
        rows = (pos >= 16 * r + 2) & (pos < 16 * r + 14)
        cols = (pos >= 16 * col + 2) & (pos < 16 * col + 14)
        x[labels == c] += 1.0 * (rows[:, None] & cols[None, :])
    return x.clamp(-1, 1), labels


def quadrant_loader(n: int, seed: int, batch_size: int, shuffle: bool = False) -> DataLoader:
    x, y = quadrant_images(n, seed)
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle, generator=generator)


def ref_accuracy(model: nn.Module, loader: DataLoader, device="cpu") -> float:
    model.eval()
    right = total = 0
    with torch.no_grad():
        for x, y in loader:
            right += (model(x.to(device)).argmax(1).cpu() == y).sum().item()
            total += len(y)
    return right / total


def ref_epoch(model: nn.Module, loader, optimizer, device="cpu") -> float:
    """The test's own training epoch: train mode, zero_grad, forward, backward, step."""
    model.train()
    total = count = 0.0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        count += len(y)
    return total / count


def sgd(model: nn.Module, momentum: float = 0.9) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=momentum)


def params_of(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().cpu().clone() for name, p in model.named_parameters()}


def check_same_params(got: nn.Module, expected: nn.Module, what: str, exact: bool = False) -> None:
    """Every parameter of `got` equals `expected`'s (bit for bit when `exact`, else to ~1e-5
    relative); names the first one that differs."""
    __tracebackhide__ = True
    mine, ref = params_of(got), params_of(expected)
    for name, value in ref.items():
        gap = (mine[name] - value).abs().max().item()
        allowed = 0.0 if exact else 1e-6 + 1e-5 * value.abs().max().item()
        check(
            gap <= allowed,
            f"{what}: parameter {name} differs from the reference by up to {gap:.3g}; expected "
            + ("the same values, bit for bit" if exact else f"equal to ~{allowed:.1g}"),
        )


class ModeProbe(nn.Module):
    """Records, at every forward, the module's training flag and whether autograd is recording."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append((self.training, torch.is_grad_enabled()))
        return x


def probed(model: nn.Module) -> tuple[nn.Sequential, ModeProbe]:
    probe = ModeProbe()
    return nn.Sequential(probe, model), probe


TRANSFERS = {"to", "copy_", "type_as", "new_tensor"}  # operations that move a tensor between devices


class MixedDevices(TorchFunctionMode):
    """Records every tensor operation whose tensor arguments (0-dim ones aside, which PyTorch lets
    through) lie on more than one device: on a GPU that operation raises. Indexing (a GPU tensor
    may be indexed with CPU indices) and transfers (`labels.to(predicted)`) are left out."""

    def __init__(self) -> None:
        super().__init__()
        self.mixed: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", repr(func))
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor) and t.dim() > 0]
        places = sorted({str(t.device) for t in tensors})
        if len(places) > 1 and not any(word in name for word in ("item", "index")) and name not in TRANSFERS:
            self.mixed.append(f"{name} on tensors on {' and '.join(places)}")
        return func(*args, **kwargs)


@pytest.fixture(autouse=True)
def downloads(monkeypatch) -> list[str]:
    """Replace CIFAR10.download by a recorder, in every test: the tests never download."""
    calls: list[str] = []

    def no_download(self):
        calls.append(str(self.root))

    monkeypatch.setattr(datasets.CIFAR10, "download", no_download)
    return calls


def seeded_pixels(seed: int, *shape: int) -> np.ndarray:
    """uint8 pixels drawn from a seeded generator, with 0 and 255 present."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
    pixels.reshape(-1)[:2] = (0, 255)
    return pixels


def expected_tensor(hwc: np.ndarray) -> torch.Tensor:
    """What the evaluation transform must give for an HWC uint8 image: CHW float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(hwc)).permute(2, 0, 1).float() / 255 * 2 - 1


def pil(hwc: np.ndarray) -> Image.Image:
    return Image.fromarray(hwc)  # (H, W, 3) uint8 -> RGB


def draws(transform, image, n: int, seed: int = 0) -> list[torch.Tensor]:
    torch.manual_seed(seed)
    return [transform(image) for _ in range(n)]


def all_equal(tensors: list) -> bool:
    return all(isinstance(t, torch.Tensor) and torch.equal(tensors[0], t) for t in tensors[1:])


def value_range(t: torch.Tensor) -> str:
    return f"[{t.min().item():.4g}, {t.max().item():.4g}]"


def pixel_symptom(got: torch.Tensor, hwc: np.ndarray) -> str:
    """What is wrong with `got`, a (3, H, W) float tensor that should be `hwc` mapped to [-1, 1]:
    the channels' values as a function of the pixels, where they are one."""
    p = torch.from_numpy(np.ascontiguousarray(hwc)).permute(2, 0, 1).double() / 255  # pixels in [0, 1]
    g = got.detach().double()
    fits = []
    for c in range(3):
        a, b = (
            torch.linalg.lstsq(
                torch.stack([p[c].flatten(), torch.ones(p[c].numel(), dtype=torch.double)], 1), g[c].flatten()[:, None]
            )
            .solution.flatten()
            .tolist()
        )
        if (g[c] - (a * p[c] + b)).abs().max().item() > 1e-4:
            return (
                f"its values {value_range(got)} do not follow each pixel in place: the image's pixels "
                "were moved, cropped or flipped"
            )
        fits.append((a, b))
    if all(abs(a - 1) < 1e-4 and abs(b) < 1e-4 for a, b in fits):
        return f"its values lie in {value_range(got)}: the pixels are scaled to [0, 1] but not mapped to [-1, 1]"
    text = ", ".join(f"channel {c}: {a:.4g} * p / 255 + {b:.4g}" for c, (a, b) in enumerate(fits))
    return f"each value is a linear function of its pixel p, with other constants than expected ({text}; expected 2 * p / 255 - 1 in every channel)"


def shifted_copy(got: torch.Tensor, base: torch.Tensor) -> bool:
    """Whether `got` is `base` (3, 32, 32) shifted by up to 4 pixels each way, the uncovered
    border -1, and possibly mirrored left to right."""
    if not isinstance(got, torch.Tensor) or got.shape != base.shape:
        return False
    padded = F.pad(base, (4, 4, 4, 4), value=-1.0)
    for image in (padded, padded.flip(-1)):
        windows = image.unfold(1, 32, 1).unfold(2, 32, 1)  # (3, 9, 9, 32, 32): every 32x32 window
        gap = (windows - got.detach().float()[:, None, None]).abs().amax(dim=(0, 3, 4))
        if bool((gap <= 1e-5).any()):
            return True
    return False


def mapped_pixels_only(got: torch.Tensor, hwc: np.ndarray) -> bool:
    """Whether every value of `got` is one of the image's pixels, or black, mapped to [-1, 1]."""
    levels = (got.detach().double() + 1) / 2 * 255
    rounded = levels.round()
    allowed = torch.from_numpy(np.unique(np.append(hwc, 0))).double()
    return bool(((levels - rounded).abs() < 1e-3).all()) and bool(torch.isin(rounded, allowed).all())


# --------------------------------------------------------------------------------------------
@exercise("LeNet")
class TestLeNet:
    @pytest.mark.parametrize(
        "num_classes, count", [(10, LENET_PARAMS), (4, LENET_PARAMS - 6 * 85)], ids=["10-classes", "4-classes"]
    )
    def test_has_the_tutorials_number_of_parameters(self, kata, num_classes, count):
        model = kata.LeNet(num_classes)
        got = sum(p.numel() for p in model.parameters())
        check(got == count, f"LeNet({num_classes}) has {got} parameter values; expected {count}")

    def test_layers_are_named_and_shaped_as_in_the_tutorial(self, kata):
        got = {name: tuple(t.shape) for name, t in kata.LeNet().state_dict().items()}
        check(
            got == LENET_SHAPES,
            f"LeNet().state_dict() holds {got};\nexpected exactly {LENET_SHAPES} "
            "(conv1, conv2, fc1, fc2, fc3 as attributes, with biases, and nothing else with parameters or buffers)",
        )

    @pytest.mark.parametrize("n", [1, 5], ids=["batch-of-1", "batch-of-5"])
    def test_forward_returns_logits_of_shape_n_by_classes(self, kata, n):
        torch.manual_seed(0)
        model = kata.LeNet(7)
        out = model(torch.randn(n, 3, 32, 32))
        check(
            isinstance(out, torch.Tensor) and out.shape == (n, 7),
            f"LeNet(7)(x of shape ({n}, 3, 32, 32)) returned {describe(out)}; expected shape ({n}, 7): "
            "one row of logits per sample, the batch dimension kept",
        )

    def test_forward_is_conv_relu_pool_twice_then_three_linear_layers(self, kata):
        torch.manual_seed(0)
        model = kata.LeNet()
        x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            expected = lenet_functional(model.state_dict(), x)
            got = model(x)
        check_tensor(
            got,
            expected,
            "LeNet()(x of shape (4, 3, 32, 32)) against conv1-relu-maxpool2, conv2-relu-maxpool2, flatten, "
            "fc1-relu, fc2-relu, fc3 computed with torch.nn.functional from the model's own weights",
            rtol=1e-4,
            atol=1e-5,
        )

    def test_returns_raw_logits_not_probabilities(self, kata):
        torch.manual_seed(0)
        model = kata.LeNet()
        with torch.no_grad():
            out = model(torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(2)))
        ones = torch.ones(8)
        check(
            not torch.allclose(out.sum(1), ones, atol=1e-3),
            "every row of LeNet()(x) sums to 1: the model returns probabilities; expected raw logits "
            "(the loss turns logits into log-probabilities itself)",
        )
        check(
            not torch.allclose(out.exp().sum(1), ones, atol=1e-3),
            "LeNet()(x) returns log-probabilities (its exp sums to 1 per row): expected raw logits",
        )
        check(
            (out < 0).any().item(),
            f"LeNet()(x) returned no negative value (min {out.min().item():.4g}): expected raw logits of either "
            "sign, nothing applied after fc3",
        )

    def test_runs_on_each_device(self, kata, device):
        torch.manual_seed(0)
        model = kata.LeNet().to(device)
        out = model(torch.randn(3, 3, 32, 32, device=device))
        check(
            isinstance(out, torch.Tensor) and out.shape == (3, 10) and out.device.type == device.type,
            f"LeNet().to({str(device)!r})(x on {device}) returned {describe(out)}; expected shape (3, 10) on {device}",
        )


# --------------------------------------------------------------------------------------------
WHITE = np.full((32, 32, 3), 255, dtype=np.uint8)
WHITE_DOT = WHITE.copy()
WHITE_DOT[15:17, 15:17] = 0
LEFT_WHITE = np.zeros((32, 32, 3), dtype=np.uint8)
LEFT_WHITE[:, :16] = 255


def black_border(t: torch.Tensor) -> int:
    """Widest black (-1) border, in pixels, on any side of a transformed white image."""
    black = (t == -1).all(0)  # (32, 32)
    widths = []
    for lines in (black, black.flip(0), black.T, black.T.flip(0)):
        full = lines.all(1).tolist()
        widths.append(full.index(False) if False in full else 32)
    return max(widths)


@exercise("make_transform")
class TestMakeTransform:
    def test_eval_maps_pixels_to_minus_one_to_one(self, kata):
        hwc = seeded_pixels(0, 32, 32, 3)
        expected = expected_tensor(hwc)
        got = kata.make_transform(train=False)(pil(hwc))
        call = "make_transform(train=False)(a 32x32 RGB PIL image)"
        check(
            isinstance(got, torch.Tensor) and got.shape == (3, 32, 32) and got.dtype == torch.float32,
            f"{call} returned {describe(got)}; expected a float32 tensor of shape (3, 32, 32), channels first",
        )
        mismatch = value_mismatch(got, expected, rtol=0, atol=1e-6)
        check(
            not mismatch,
            f"{call}: {mismatch}; {pixel_symptom(got, hwc)}. Expected each pixel p mapped to p / 255 * 2 - 1",
        )

    def test_eval_gives_the_same_tensor_every_call(self, kata):
        transform = kata.make_transform(train=False)
        got = draws(transform, pil(seeded_pixels(1, 32, 32, 3)), 8)
        check(
            all_equal(got),
            "make_transform(train=False) gave different tensors for the same image in 8 calls; expected the same "
            "tensor every call (no random step in the evaluation transform)",
        )

    def test_train_gives_the_image_shifted_and_maybe_mirrored(self, kata):
        hwc = seeded_pixels(2, 32, 32, 3)
        base = expected_tensor(hwc)
        got = draws(kata.make_transform(train=True), pil(hwc), 10)
        for i, t in enumerate(got):
            check(
                isinstance(t, torch.Tensor) and t.shape == (3, 32, 32) and t.dtype == torch.float32,
                f"make_transform(train=True)(a 32x32 RGB PIL image) returned {describe(t)}; expected float32 of "
                "shape (3, 32, 32)",
            )
            if shifted_copy(t, base):
                continue
            if not mapped_pixels_only(t, hwc):
                symptom = (
                    f"its values {value_range(t)} are not the image's pixels p mapped to p / 255 * 2 - 1 (and -1 "
                    "for the black border)"
                )
            else:
                symptom = "its values are the image's pixels, but not in the places a shift of up to 4 pixels gives"
            check(
                False,
                f"draw {i} of make_transform(train=True)(a 32x32 image) is not the image shifted by up to 4 pixels "
                f"each way (the uncovered border black, -1) and possibly mirrored left to right: {symptom}",
            )

    def test_train_is_random(self, kata):
        got = draws(kata.make_transform(train=True), pil(seeded_pixels(3, 32, 32, 3)), 10)
        check(
            not all_equal(got),
            "make_transform(train=True) gave the same tensor 10 times for one image: expected a new random "
            "augmentation at every call",
        )

    def test_train_pads_with_up_to_4_black_pixels(self, kata):
        # A white image with a black 2x2 dot in its middle: however it is shifted or mirrored, the
        # middle 16x16 holds white and the dot, so it shows what black and white pixels come out as.
        # Only then does a border of 0 (mid-gray) tell that the padding went in after the mapping.
        got = draws(kata.make_transform(train=True), pil(WHITE_DOT), 60)
        call = "make_transform(train=True)(a white image with a black dot)"
        middles = {(round(t[:, 8:24, 8:24].max().item(), 4), round(t[:, 8:24, 8:24].min().item(), 4)) for t in got}
        check(
            len(middles) == 1,
            f"{call}: the middle of the image changed from draw to draw (its (brightest, darkest) values: "
            f"{sorted(middles)[:4]}); expected the white image and its dot, only shifted by up to 4 pixels",
        )
        ((white, black),) = middles
        check(
            math.isclose(white, 1, abs_tol=1e-4) and math.isclose(black, -1, abs_tol=1e-4),
            f"{call}: the image's white pixels came out {white:.4g} and its black ones {black:.4g}; expected 1 "
            "and -1 (each pixel p mapped to p / 255 * 2 - 1)",
        )
        values = sorted(set(torch.unique(torch.stack(got)).tolist()))
        if not set(values) <= {-1.0, 1.0}:
            odd = next(v for v in values if v not in (-1.0, 1.0))
            gray = " (mid-gray): the padding went in after the pixel values were mapped" if odd == 0.0 else ""
            check(
                False,
                f"{call} gave the values {values[:6]} over 60 draws, though its white and black pixels come out 1 "
                f"and -1; expected only those two: the border must be black, -1, not {odd:.4g}{gray}",
            )
        widest = max(black_border(t) for t in got)
        check(
            widest == 4,
            f"{call}: the widest black border in 60 draws is {widest} pixels; expected 4 (a shift of up to 4 "
            "pixels each way, out of a 4-pixel black padding)",
        )

    def test_train_flips_left_and_right(self, kata):
        # Left half white, right half black; a shift moves it by 4 pixels at most, so column 8
        # stays white unless the image is mirrored.
        got = draws(kata.make_transform(train=True), pil(LEFT_WHITE), 30)
        flipped = sum(t[:, :, 8].mean().item() < 0 for t in got)
        check(
            0 < flipped < 30,
            f"make_transform(train=True) mirrored {flipped} of 30 draws of a half-white image left to right; "
            "expected about half of them",
        )


# --------------------------------------------------------------------------------------------
FOLDER_CLASSES = ["ant", "bee", "cat"]  # sorted, as the class-folder layout indexes them
TRAIN_COUNTS = {"cat": 3, "ant": 2, "bee": 1}
TEST_COUNTS = {"bee": 2, "ant": 1, "cat": 1}


def write_image_folder(root) -> tuple[list, list]:
    """root/train/<class>/*.jpg and root/test/<class>/*.png; returns the (train, test) items as
    (HWC pixels as decoded from the file, label) lists, in the layout's order (class by class,
    sorted names, files sorted)."""
    splits = {}
    for split, counts, ext in [("train", TRAIN_COUNTS, "jpg"), ("test", TEST_COUNTS, "png")]:
        items = []
        for c, name in enumerate(FOLDER_CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(counts[name]):
                path = folder / f"{i:04d}.{ext}"
                Image.fromarray(seeded_pixels(100 * c + i + (50 if split == "test" else 0), 32, 32, 3)).save(path)
                with Image.open(path) as image:  # a JPEG decodes to other pixels than it was given
                    items.append((np.array(image.convert("RGB")), c))
        splits[split] = items
    return splits["train"], splits["test"]


def write_fake_cifar10(root, monkeypatch, per_batch: int = 2, n_test: int = 4) -> tuple[list, list]:
    """A tiny cifar-10-batches-py in torchvision's format: five training batches of `per_batch`
    images and a test batch of `n_test`; CIFAR10's checksums are set to these files'.
    Returns (train items, test items) as (HWC pixels, label) lists, in file order."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)

    def write(name: str, obj) -> list[str]:
        path = folder / name
        path.write_bytes(pickle.dumps(obj))
        return [name, hashlib.md5(path.read_bytes()).hexdigest()]

    def batch(seed: int, n: int) -> tuple[dict, list]:
        rows = seeded_pixels(seed, n, 3 * 32 * 32)  # each row: red plane, green plane, blue plane
        labels = [(seed * 7 + i * 3) % 10 for i in range(n)]
        items = [(row.reshape(3, 32, 32).transpose(1, 2, 0), label) for row, label in zip(rows, labels)]
        return {"data": rows, "labels": labels}, items

    train_list, train_items = [], []
    for b in range(1, 6):
        entry, items = batch(b, per_batch)
        train_list.append(write(f"data_batch_{b}", entry))
        train_items += items
    entry, test_items = batch(9, n_test)
    test_list = [write("test_batch", entry)]
    _, meta_md5 = write("batches.meta", {"label_names": CIFAR_CLASSES})
    monkeypatch.setattr(datasets.CIFAR10, "train_list", train_list)
    monkeypatch.setattr(datasets.CIFAR10, "test_list", test_list)
    monkeypatch.setattr(datasets.CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names", "md5": meta_md5})
    return train_items, test_items


def own_transform(kata, train: bool, hwc: np.ndarray, seed: int):
    """The learner's own make_transform(train) applied to the image after torch.manual_seed(seed),
    or None where it fails: lets a dataset test accept what make_transform gives (its own tests
    judge its values)."""
    try:
        torch.manual_seed(seed)
        return kata.make_transform(train=train)(pil(hwc))
    except Exception:  # noqa: BLE001  (a broken make_transform is reported by its own tests)
        return None


def read_item(dataset, i: int, seed: int, what: str):
    __tracebackhide__ = True
    torch.manual_seed(seed)
    item = dataset[i]
    check(
        isinstance(item, (tuple, list)) and len(item) == 2,
        f"{what}[{i}] is {describe(item)}; expected an (image tensor, class index) pair",
    )
    return item


def check_size(dataset, items, what: str) -> None:
    __tracebackhide__ = True
    check(len(dataset) == len(items), f"{what} has {len(dataset)} samples; expected {len(items)}")


def check_label(target, label: int, what: str) -> None:
    __tracebackhide__ = True
    check(int(target) == label, f"{what} has the label {describe(target)}; expected {label}")


def check_test_split(kata, dataset, items, what: str) -> None:
    """`dataset` holds `items` in order, each image through the evaluation transform: the same
    tensor on every read, p / 255 * 2 - 1 (or what the learner's own make_transform(train=False)
    gives)."""
    __tracebackhide__ = True
    check_size(dataset, items, what)
    for i, (hwc, label) in enumerate(items):
        image, target = read_item(dataset, i, 0, what)
        again, _ = read_item(dataset, i, 1, what)
        check_label(target, label, f"{what}[{i}]")
        check(
            isinstance(image, torch.Tensor),
            f"{what}[{i}][0] is {describe(image)}; expected the image as a tensor, through the evaluation transform",
        )
        check(
            isinstance(again, torch.Tensor) and torch.equal(image, again),
            f"{what}[{i}] gave two different image tensors on two reads: the test split's images change from one "
            "read to the next (a random transform on the test split); expected the same tensor on every read",
        )
        if not value_mismatch(image, expected_tensor(hwc), rtol=0, atol=1e-6):
            continue
        own = own_transform(kata, False, hwc, 0)
        if isinstance(own, torch.Tensor) and own.shape == image.shape and torch.equal(own, image):
            continue  # make_transform(train=False)'s own values: its tests judge them
        check(
            False,
            f"{what}[{i}][0] is the same tensor on every read, but not the image through the evaluation transform: "
            f"got {describe(image)} with values in {value_range(image)}; expected make_transform(train=False) of "
            "the image (float32, (3, 32, 32), p / 255 * 2 - 1)",
        )


def check_train_split(kata, dataset, items, what: str) -> None:
    """`dataset` holds `items` in order, each image through the training transform: shifted and
    maybe mirrored (or what the learner's own make_transform(train=True) gives under the same
    seed), and another variant at each read."""
    __tracebackhide__ = True
    check_size(dataset, items, what)
    for i, (hwc, label) in enumerate(items):
        image, target = read_item(dataset, i, 10 + i, what)
        check_label(target, label, f"{what}[{i}]")
        own = own_transform(kata, True, hwc, 10 + i)
        ok = shifted_copy(image, expected_tensor(hwc)) or (
            isinstance(own, torch.Tensor)
            and isinstance(image, torch.Tensor)
            and own.shape == image.shape
            and torch.equal(own, image)
        )
        check(
            ok,
            f"{what}[{i}][0] is {describe(image)}: not the image through the training transform (float32, "
            "(3, 32, 32), p / 255 * 2 - 1, shifted by up to 4 pixels and maybe mirrored; or what your "
            "make_transform(train=True) gives)",
        )
    hwc = items[0][0]
    got = [read_item(dataset, 0, 20 + k, what)[0] for k in range(8)]
    if all_equal(got):
        own = [own_transform(kata, True, hwc, 20 + k) for k in range(8)]
        cause = (
            "make_transform(train=True) itself gives the same tensor every call (see its tests)"
            if all_equal(own)
            else "make_transform(train=True) varies, so the training split does not go through it"
        )
        check(
            False, f"{what}[0] gave the same image tensor on 8 reads; expected a new random variant each read: {cause}"
        )


@exercise("make_datasets")
class TestMakeDatasets:
    @pytest.mark.parametrize("as_type", [str, lambda p: p], ids=["root-as-str", "root-as-path"])
    def test_a_class_folder_root_gives_train_and_test_splits(self, kata, tmp_path, as_type):
        train_items, test_items = write_image_folder(tmp_path)
        train_set, test_set = kata.make_datasets(as_type(tmp_path))
        sizes = (len(train_set), len(test_set))
        check(
            sizes == (len(train_items), len(test_items)),
            f"make_datasets(root with train/ of 6 images and test/ of 4) gave splits of {sizes} samples; expected (6, 4)",
        )
        for name, dataset in [("train_set", train_set), ("test_set", test_set)]:
            got = getattr(dataset, "classes", None)
            check(
                got == FOLDER_CLASSES,
                f"make_datasets(class folders): {name}.classes is {got!r}; expected {FOLDER_CLASSES} (sorted folder names)",
            )

    def test_the_class_folder_test_split_is_the_images_as_they_are(self, kata, tmp_path):
        _, items = write_image_folder(tmp_path)
        _, test_set = kata.make_datasets(tmp_path)
        check_test_split(kata, test_set, items, "make_datasets(class folders)[1] (test_set)")

    def test_the_class_folder_train_split_is_augmented(self, kata, tmp_path):
        items, _ = write_image_folder(tmp_path)
        train_set, _ = kata.make_datasets(tmp_path)
        check_train_split(kata, train_set, items, "make_datasets(class folders)[0] (train_set)")

    def test_a_class_folder_root_never_downloads(self, kata, tmp_path, downloads):
        write_image_folder(tmp_path)
        train_set, _ = kata.make_datasets(tmp_path, download=True)
        check(
            not downloads and getattr(train_set, "classes", None) == FOLDER_CLASSES,
            f"make_datasets(root with class folders, download=True) called CIFAR10.download {len(downloads)} "
            f"time(s) and gave classes {getattr(train_set, 'classes', None)!r}; expected the class folders, read "
            "as they are, and no download",
        )

    def test_a_cifar10_folder_gives_its_train_and_test_batches(self, kata, tmp_path, monkeypatch):
        train_items, test_items = write_fake_cifar10(tmp_path, monkeypatch)
        train_set, test_set = kata.make_datasets(str(tmp_path))
        sizes = (len(train_set), len(test_set))
        check(
            sizes == (len(train_items), len(test_items)),
            f"make_datasets(a cifar-10-batches-py folder with 10 training and 4 test images) gave splits of "
            f"{sizes} samples; expected (10, 4)",
        )
        for name, dataset in [("train_set", train_set), ("test_set", test_set)]:
            got = getattr(dataset, "classes", None)
            check(
                got == CIFAR_CLASSES,
                f"make_datasets(cifar10 folder): {name}.classes is {got!r}; expected {CIFAR_CLASSES}",
            )

    def test_the_cifar10_test_split_is_the_images_as_they_are(self, kata, tmp_path, monkeypatch):
        _, test_items = write_fake_cifar10(tmp_path, monkeypatch)
        _, test_set = kata.make_datasets(str(tmp_path))
        check_test_split(kata, test_set, test_items, "make_datasets(cifar10 folder)[1] (test_set)")

    def test_the_cifar10_train_split_is_augmented(self, kata, tmp_path, monkeypatch):
        train_items, _ = write_fake_cifar10(tmp_path, monkeypatch)
        train_set, _ = kata.make_datasets(str(tmp_path))
        check_train_split(kata, train_set, train_items, "make_datasets(cifar10 folder)[0] (train_set)")

    def test_does_not_download_unless_asked(self, kata, tmp_path, monkeypatch, downloads):
        write_fake_cifar10(tmp_path, monkeypatch)
        kata.make_datasets(str(tmp_path))
        check(
            not downloads,
            f"make_datasets(root) called CIFAR10.download {len(downloads)} time(s); expected none: download "
            "defaults to False, and only a user who asks downloads 170 MB",
        )

    def test_passes_download_on_to_cifar10(self, kata, tmp_path, monkeypatch, downloads):
        write_fake_cifar10(tmp_path, monkeypatch)
        kata.make_datasets(str(tmp_path), download=True)
        check(
            downloads,
            "make_datasets(root, download=True) never called CIFAR10.download; expected torchvision to be asked to "
            "fetch what is missing",
        )

    def test_a_missing_cifar10_folder_raises_torchvisions_error(self, kata, tmp_path, downloads):
        empty = tmp_path / "nothing-here"
        empty.mkdir()
        with expect_raises(RuntimeError, "Dataset not found", f"make_datasets({str(empty)!r}) (an empty folder)"):
            kata.make_datasets(str(empty))
        check(not downloads, f"make_datasets({str(empty)!r}) tried to download; expected no download unless asked")


# --------------------------------------------------------------------------------------------
def index_set(n: int) -> TensorDataset:
    return TensorDataset(torch.arange(n), torch.arange(n) % 3)


def order(loader) -> list[int]:
    return [i for x, _ in loader for i in x.tolist()]


@exercise("make_loaders")
class TestMakeLoaders:
    def test_the_train_loader_shuffles_every_epoch(self, kata):
        train, _ = kata.make_loaders(index_set(40), index_set(10), batch_size=8, seed=0)
        first, second = order(train), order(train)
        call = "make_loaders(train_set of 40, test_set, batch_size=8, seed=0)[0]"
        check(sorted(first) == list(range(40)), f"{call} gave the samples {first}; expected each of the 40 once")
        check(first != list(range(40)), f"{call} gave the samples in their original order; expected a shuffled order")
        check(first != second, f"{call} gave the same order in two epochs; expected a new order each epoch")

    def test_the_train_loader_keeps_the_last_smaller_batch(self, kata):
        train, _ = kata.make_loaders(index_set(20), index_set(10), batch_size=8, seed=0)
        sizes = [len(x) for x, _ in train]
        check(
            sizes == [8, 8, 4],
            f"make_loaders(train_set of 20, ..., batch_size=8)[0] gave batches of {sizes}; expected [8, 8, 4]",
        )

    def test_the_train_order_depends_on_the_seed_only(self, kata):
        def two_epochs(seed, global_seed):
            train, _ = kata.make_loaders(index_set(40), index_set(10), batch_size=8, seed=seed)
            torch.manual_seed(global_seed)  # whatever else uses the global RNG must not matter
            return order(train), order(train)

        a, b, c = two_epochs(3, 1), two_epochs(3, 2), two_epochs(4, 1)
        check(
            a == b,
            "make_loaders(..., seed=3) shuffled differently when the global random number generator was seeded 1 "
            "and then 2 between building and iterating; expected the same orders: they depend on the seed only",
        )
        check(
            a != c,
            "make_loaders(..., seed=3) and (..., seed=4) shuffled the same way; expected the seed to set the order",
        )

    def test_other_loaders_do_not_change_the_train_order(self, kata):
        def pair():
            return kata.make_loaders(index_set(40), index_set(10), batch_size=8, seed=5)

        untouched, _ = pair()
        expected = [order(untouched), order(untouched)]
        call = "make_loaders(train_set of 40, test_set, batch_size=8, seed=5)"

        train, test = pair()
        order(test)
        got = [order(train), order(train)]
        check(
            got == expected,
            f"{call}: after a pass over its test loader, the training loader's first two epochs came out in "
            "another order than those of a pair made with the same seed and left alone; expected the same orders",
        )

        train, _ = pair()
        other_train, other_test = pair()
        order(other_train)
        order(other_test)
        got = [order(train), order(train)]
        check(
            got == expected,
            f"{call}: after an epoch of another pair of loaders, the training loader's first two epochs came out in "
            "another order than those of a pair left alone; expected the same orders (each training loader's "
            "order depends on its own seed only)",
        )

    def test_the_test_loader_keeps_the_order_and_every_sample(self, kata):
        _, test = kata.make_loaders(index_set(12), index_set(10), batch_size=4, seed=0)
        got = [x.tolist() for x, _ in test]
        expected = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
        check(
            got == expected,
            f"make_loaders(..., test_set of 10, batch_size=4)[1] gave the batches {got}; expected {expected} "
            "(the dataset's order, every sample, the last batch smaller)",
        )

    def test_both_loaders_use_num_workers(self, kata):
        loaders = kata.make_loaders(index_set(8), index_set(8), batch_size=4, seed=0, num_workers=2)
        got = [getattr(loader, "num_workers", None) for loader in loaders]
        check(got == [2, 2], f"make_loaders(..., num_workers=2) gave loaders with num_workers {got}; expected [2, 2]")


# --------------------------------------------------------------------------------------------
CE = nn.CrossEntropyLoss()
TRAIN_CALL = "train_one_epoch(model, loader of 40 samples in batches of 16, SGD(lr=0.05, momentum=0.9), CrossEntropyLoss(), 'cpu')"


def run_train(kata, model, loader, optimizer, device="cpu"):
    return kata.train_one_epoch(model, loader, optimizer, CE, device)


class Tracked(torch.autograd.Function):
    """The identity, as a node of the graph whose Python object lives exactly as long as the graph
    does: a weak reference to it tells whether anything still holds that batch's graph."""

    @staticmethod
    def forward(ctx, loss):
        return loss.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad


@exercise("train_one_epoch")
class TestTrainOneEpoch:
    def test_returns_the_mean_loss_over_samples_as_a_float(self, kata):
        loader = quadrant_loader(40, seed=2, batch_size=16)  # batches of 16, 16 and 8
        model, reference = ref_model(), ref_model()
        expected = ref_epoch(reference, loader, sgd(reference))
        got = run_train(kata, model, loader, sgd(model))
        check(type(got) is float, f"{TRAIN_CALL} returned {describe(got)}; expected a Python float")
        check(
            math.isclose(got, expected, rel_tol=1e-5),
            f"{TRAIN_CALL} returned {got}; expected {expected}, the mean over the 40 samples of the losses before "
            "each step (each batch's loss weighted by its size: the last batch has 8)",
        )

    def test_parameters_follow_the_reference_loop(self, kata):
        loader = quadrant_loader(40, seed=2, batch_size=16)
        model, reference = ref_model(), ref_model()
        ref_epoch(reference, loader, sgd(reference))
        run_train(kata, model, loader, sgd(model))
        check_same_params(
            model, reference, f"after {TRAIN_CALL}, against one step per batch, each on that batch's gradient"
        )

    def test_leftover_gradients_do_not_leak_into_the_first_step(self, kata):
        loader = quadrant_loader(40, seed=2, batch_size=16)
        model, reference = ref_model(), ref_model()
        for p in model.parameters():
            p.grad = torch.ones_like(p)  # left behind by earlier work
        ref_epoch(reference, loader, sgd(reference))
        run_train(kata, model, loader, sgd(model))
        check_same_params(
            model,
            reference,
            f"{TRAIN_CALL} on a model that arrived with leftover gradients (each step must follow its own batch's "
            "gradient only)",
        )

    def test_runs_every_forward_in_training_mode(self, kata):
        model, probe = probed(ref_model())
        model.eval()  # as the last evaluation left it
        run_train(kata, model, quadrant_loader(40, seed=2, batch_size=16), sgd(model))
        modes = [training for training, _ in probe.seen]
        check(
            modes and all(modes),
            f"{TRAIN_CALL} on a model that arrived in eval mode ran forward with training = {modes}; expected True "
            "each time",
        )

    def test_moves_each_batch_to_the_device(self, kata):
        seen = []

        class Recorder(nn.Module):
            def __init__(self):
                super().__init__()
                self.w = nn.Parameter(torch.zeros(4))

            def _apply(self, fn, recurse=True):
                return self  # a redundant model.to(device) leaves it on the CPU

            def forward(self, x):
                seen.append(f"images on {x.device}")
                return self.w.expand(len(x), 4)

        def loss_fn(logits, labels):
            seen.append(f"labels on {labels.device}")
            return (logits**2).mean() + 1.0

        model = Recorder()
        try:
            kata.train_one_epoch(model, quadrant_loader(40, seed=2, batch_size=16), sgd(model), loss_fn, META)
        except Exception as err:  # noqa: BLE001  (a total kept on meta has no value to return)
            reraise_stub(err)
        wrong = sorted({s for s in seen if not s.endswith("meta")})
        check(
            not wrong and seen,
            f"train_one_epoch(..., device='meta') passed {wrong or 'nothing'} to the model and loss; expected them on meta",
        )

    def test_does_not_keep_each_batchs_graph_alive(self, kata):
        graphs: list[weakref.ref] = []
        stale: dict[int, list[int]] = {}

        def loss_fn(logits, labels):
            # Batch k starts: the graphs of batches 0 .. k-2 must be gone (k-1's may still be held
            # by a local variable until its name is rebound).
            alive = [i for i, ref in enumerate(graphs[:-1]) if ref() is not None]
            if alive:
                stale[len(graphs)] = alive
            loss = Tracked.apply(F.cross_entropy(logits, labels))
            graphs.append(weakref.ref(loss.grad_fn))
            return loss

        model = ref_model()
        call = "train_one_epoch(model, loader of 5 batches, SGD, loss_fn, 'cpu')"
        got = kata.train_one_epoch(model, quadrant_loader(40, seed=2, batch_size=8), sgd(model), loss_fn, "cpu")
        after = [i for i, ref in enumerate(graphs) if ref() is not None]
        check(len(graphs) == 5, f"{call} called loss_fn {len(graphs)} times; expected 5, once per batch")
        if stale:
            k, alive = next(iter(stale.items()))
            check(
                False,
                f"{call}: when batch {k} started, the graphs of batches {alive} were still referenced; expected none "
                "older than the previous batch's (something keeps each loss tensor, and with it its graph: a running "
                "total or a list of the loss tensors themselves)",
            )
        check(
            not after,
            f"{call} returned {describe(got)}, and the graphs of batches {after} are still referenced; expected none "
            "once the epoch is over",
        )

    def test_trains_on_each_device(self, kata, device):
        model = ref_model(device=device)
        before = params_of(model)
        got = kata.train_one_epoch(model, quadrant_loader(40, seed=2, batch_size=16), sgd(model), CE, device)
        check(
            isinstance(got, float) and math.isfinite(got),
            f"train_one_epoch(..., {str(device)!r}) returned {describe(got)}; expected a finite float",
        )
        moved = [n for n, p in model.named_parameters() if p.device.type != device.type]
        check(
            not moved,
            f"after train_one_epoch(..., {str(device)!r}) the parameters {moved} are off {device}; expected them left where they were",
        )
        changed = any(not torch.equal(before[n], p.detach().cpu()) for n, p in model.named_parameters())
        check(
            changed, f"train_one_epoch(..., {str(device)!r}) left every parameter unchanged; expected optimizer steps"
        )

    def test_lenet_learns_the_quadrant_task_in_three_epochs(self, kata):
        model = ref_model()
        optimizer = sgd(model)
        train = quadrant_loader(192, seed=0, batch_size=32, shuffle=True)
        losses = [kata.train_one_epoch(model, train, optimizer, CE, "cpu") for _ in range(3)]
        acc = ref_accuracy(model, quadrant_loader(128, seed=1, batch_size=64))
        check(
            acc >= 0.9,
            f"3 epochs of train_one_epoch (SGD lr=0.05, momentum=0.9) took a LeNet to {acc:.1%} on the quadrant "
            f"task (epoch losses {[round(float(x), 3) for x in losses]}); expected at least 90% (chance is 25%)",
        )


# --------------------------------------------------------------------------------------------
class TableModel(nn.Module):
    """Predicts a fixed class per sample: x holds sample indices; the logits are one-hot-ish.

    Also records its training flag and whether autograd is recording at each forward.
    """

    def __init__(self, predictions: list[int], num_classes: int) -> None:
        super().__init__()
        self.table = torch.tensor(predictions)
        self.num_classes = num_classes
        self.scale = nn.Parameter(torch.ones(()))
        self.seen: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append((self.training, torch.is_grad_enabled()))
        predicted = self.table[x.long().cpu()]
        # -1 everywhere except +2 at the predicted class: the argmax over classes is the prediction.
        logits = 3 * F.one_hot(predicted, self.num_classes).float() - 1
        return (logits * self.scale).to(x.device)


# 10 samples, 5 classes, batches of 4, 4 and 2. Class 3 never occurs as a label (but is predicted
# once). Per class: 0 -> 2/4 right, 1 -> 2/3, 2 -> 2/2, 3 -> no sample, 4 -> 0/1.
LABELS = [0, 1, 0, 2, 0, 1, 4, 1, 2, 0]
PREDICTIONS = [0, 1, 1, 2, 0, 0, 3, 1, 2, 3]
# 6 of 10: not the mean of the batch accuracies (0.583), nor of the class accuracies (0.542).
ACCURACY = 6 / 10
PER_CLASS = [2 / 4, 2 / 3, 2 / 2, math.nan, 0.0]
EVAL_CALL = "evaluate(model, loader of 10 samples in batches of 4, 'cpu', num_classes=5)"


def table_setup() -> tuple[TableModel, DataLoader]:
    model = TableModel(PREDICTIONS, 5).train()
    dataset = TensorDataset(torch.arange(10, dtype=torch.float32), torch.tensor(LABELS))
    return model, DataLoader(dataset, batch_size=4)


def run_eval(kata):
    model, loader = table_setup()
    return model, kata.evaluate(model, loader, "cpu", 5)


def unpack_eval(got, what: str) -> tuple[float, list]:
    __tracebackhide__ = True
    check(
        isinstance(got, tuple) and len(got) == 2,
        f"{what} returned {describe(got)}; expected a tuple (accuracy, per_class)",
    )
    return got


def check_float_list(per_class, what: str, n: int) -> None:
    __tracebackhide__ = True
    check(
        isinstance(per_class, list) and all(type(v) is float for v in per_class),
        f"{what}: per_class is {describe(per_class)}; expected a list of Python floats",
    )
    check(
        len(per_class) == n, f"{what}: per_class has {len(per_class)} entries {per_class}; expected {n}, one per class"
    )


def rounded(values: list[float]) -> list[float]:
    return [v if math.isnan(v) else round(v, 6) for v in values]


class DeviceProbe(nn.Module):
    """Records the device of every batch it is given; returns logits of zeros on that device."""

    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.seen: list[str] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(str(x.device))
        return torch.zeros(len(x), self.num_classes, device=x.device)


def eval_on_meta(kata) -> tuple[list[str], list[str]]:
    """evaluate(..., device='meta') with a DeviceProbe: which devices the model saw, and which
    operations mixed devices. Meta tensors have no values, so a right answer fails at its first
    count or copy back; what it did up to there is what is checked."""
    model = DeviceProbe(4)
    loader = DataLoader(TensorDataset(torch.zeros(6, 2), torch.tensor([0, 1, 2, 3, 0, 1])), batch_size=4)
    mode = MixedDevices()
    try:
        with mode:
            kata.evaluate(model, loader, META, 4)
    except Exception as err:  # noqa: BLE001  (meta tensors cannot be counted)
        reraise_stub(err)
    return model.seen, mode.mixed


@exercise("evaluate")
class TestEvaluate:
    def test_accuracy_is_the_fraction_of_all_samples_right_as_a_float(self, kata):
        _, got = run_eval(kata)
        accuracy, _ = unpack_eval(got, EVAL_CALL)
        check(type(accuracy) is float, f"{EVAL_CALL}: accuracy is {describe(accuracy)}; expected a Python float")
        check(
            math.isclose(accuracy, ACCURACY, rel_tol=1e-6),
            f"{EVAL_CALL}: accuracy {accuracy}; expected {ACCURACY} (6 right of 10, every sample counted once; "
            "not a mean of batch or class accuracies, not a percentage)",
        )

    def test_per_class_accuracy_divides_by_each_class_count(self, kata):
        _, got = run_eval(kata)
        _, per_class = unpack_eval(got, EVAL_CALL)
        check_float_list(per_class, EVAL_CALL, 5)
        present = [0, 1, 2, 4]
        ok = all(math.isclose(per_class[c], PER_CLASS[c], rel_tol=1e-6, abs_tol=1e-12) for c in present)
        check(
            ok,
            f"{EVAL_CALL}: per_class is {rounded(per_class)}; expected {rounded(PER_CLASS)} at classes 0, 1, 2 and 4 "
            "(for class c: samples labelled c predicted c / samples labelled c; the classes have 4, 3, 2, 0 and 1 "
            "samples, and class 4's one sample is predicted wrong)",
        )

    def test_a_class_absent_from_the_data_gets_nan(self, kata):
        _, got = run_eval(kata)
        _, per_class = unpack_eval(got, EVAL_CALL)
        check_float_list(per_class, EVAL_CALL, 5)
        check(
            math.isnan(per_class[3]),
            f"{EVAL_CALL}: per_class is {rounded(per_class)}; expected nan at class 3: no sample is labelled 3, so it "
            "has no accuracy (that a sample is predicted 3 does not count)",
        )

    def test_runs_the_model_in_eval_mode(self, kata):
        model, _ = run_eval(kata)
        modes = [training for training, _ in model.seen]
        check(
            modes and not any(modes),
            f"{EVAL_CALL} on a model in training mode ran forward with model.training = {modes}; expected False each time",
        )

    def test_runs_the_model_without_recording_gradients(self, kata):
        model, _ = run_eval(kata)
        grad_on = [g for _, g in model.seen]
        check(
            grad_on and not any(grad_on),
            f"{EVAL_CALL} ran forward with torch.is_grad_enabled() = {grad_on}; expected False each time "
            "(autograd's recording switched off: no graph)",
        )

    def test_leaves_the_model_in_eval_mode(self, kata):
        model, _ = probed(ref_model())
        model.train()
        kata.evaluate(model, quadrant_loader(12, seed=3, batch_size=8), "cpu", 4)
        training = sorted({name or "(the model)" for name, m in model.named_modules() if m.training})
        check(
            not training,
            f"after evaluate(model in training mode, ...), {training} are in training mode; expected the whole model "
            "left in eval mode",
        )

    def test_leaves_the_parameters_untouched(self, kata):
        model, _ = run_eval(kata)
        p = model.scale
        check(
            p.requires_grad and p.grad is None and p.item() == 1.0,
            f"after {EVAL_CALL}, the model's parameter holds {p.item()} with requires_grad={p.requires_grad} and "
            f"grad {describe(p.grad)}; expected it as it was: 1.0, requires_grad=True, no grad",
        )

    def test_argmax_over_the_classes_of_each_sample(self, kata, device):
        model = ref_model(num_classes=4, device=device)
        loader = quadrant_loader(30, seed=3, batch_size=8)
        with torch.no_grad():
            predicted = torch.cat([model(x.to(device)).argmax(1).cpu() for x, _ in loader])
        labels = torch.cat([y for _, y in loader])
        right = (predicted == labels).double()
        expected = [right[labels == c].mean().item() for c in range(4)]
        what = f"evaluate(LeNet on {device}, loader of 30, {str(device)!r}, 4)"
        accuracy, per_class = unpack_eval(kata.evaluate(model, loader, device, 4), what)
        check_float_list(per_class, what, 4)
        check(
            math.isclose(accuracy, right.mean().item(), rel_tol=1e-6)
            and all(math.isclose(g, e, rel_tol=1e-6) for g, e in zip(per_class, expected)),
            f"{what} returned ({accuracy}, {per_class}); expected ({right.mean().item()}, {expected}): the "
            "predicted class of a sample is the index of its largest logit",
        )

    def test_each_batch_reaches_the_model_on_the_device(self, kata):
        seen, _ = eval_on_meta(kata)
        check(
            seen and all(d == "meta" for d in seen),
            f"evaluate(model, loader, device='meta', 4) gave the model batches on {seen or 'nothing (never called)'}; "
            "expected each batch on meta",
        )

    def test_compares_predictions_and_labels_on_one_device(self, kata):
        seen, mixed = eval_on_meta(kata)
        check(seen, "evaluate(model, loader, device='meta', 4) never called the model; expected one call per batch")
        check(
            not mixed,
            f"evaluate(model, loader, device='meta', 4) ran {mixed[0] if mixed else ''} (the loader gives labels "
            "on the CPU, the model's predictions are on the device); on a GPU an operation between a tensor on the "
            "GPU and one on the CPU raises. Expected every operation's tensors on one device",
        )


# --------------------------------------------------------------------------------------------
def resume_setup():
    """A LeNet, its SGD with momentum, and a loader of 4 batches (no shuffle: the same batches in
    the same order every epoch)."""
    model = ref_model(seed=5)
    return model, sgd(model), quadrant_loader(32, seed=4, batch_size=8)


def ref_save(path, model, optimizer, epoch) -> None:
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}, path)


def ref_load(checkpoint: dict, model, optimizer) -> int:
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    return checkpoint["epoch"]


def straight_two_epochs() -> nn.Module:
    model, optimizer, loader = resume_setup()
    for _ in range(2):
        ref_epoch(model, loader, optimizer)
    return model


def load_saved(path, what: str) -> dict:
    """The file `what` wrote, opened with the safe loader, as a dict with exactly "model",
    "optimizer" and "epoch"; fails clearly otherwise."""
    __tracebackhide__ = True
    try:
        loaded, problem = torch.load(path, weights_only=True), ""
    except pickle.UnpicklingError as err:
        loaded, problem = None, str(err).split(".")[0]  # "Weights only load failed"
    check(
        not problem,
        f"torch.load(file written by {what}, weights_only=True) failed: {problem}; expected a file that holds "
        "tensors, numbers, strings and plain containers only (no model or optimizer object)",
    )
    keys = sorted(map(str, loaded))[:6] if isinstance(loaded, dict) else None
    check(
        keys == ["epoch", "model", "optimizer"],
        f"{what} saved {describe(loaded) if keys is None else f'a dict with the keys {keys}'}; expected a dict "
        "with exactly the keys 'model', 'optimizer' and 'epoch'",
    )
    return loaded


SAVE_CALL = "save_checkpoint(path, model, optimizer, 3)"


@exercise("save_checkpoint")
class TestSaveCheckpoint:
    def _saved(self, kata, tmp_path):
        model, optimizer, loader = resume_setup()
        ref_epoch(model, loader, optimizer)
        path = tmp_path / "ckpt.pt"
        kata.save_checkpoint(path, model, optimizer, 3)
        return model, optimizer, load_saved(path, SAVE_CALL)

    def test_saves_a_dict_that_opens_safely_and_holds_the_epoch(self, kata, tmp_path):
        _, _, saved = self._saved(kata, tmp_path)
        epoch = saved["epoch"]
        check(type(epoch) is int and epoch == 3, f"{SAVE_CALL} saved the epoch {describe(epoch)}; expected the int 3")

    def test_saves_the_model_weights(self, kata, tmp_path):
        model, _, saved = self._saved(kata, tmp_path)
        got, state = saved["model"], model.state_dict()
        check(
            isinstance(got, dict) and sorted(got) == sorted(state),
            f"{SAVE_CALL}: the checkpoint's 'model' is {describe(got) if not isinstance(got, dict) else sorted(got)}; "
            f"expected model.state_dict(), with the keys {sorted(state)}",
        )
        for name, value in state.items():
            check_tensor(got[name], value, f"checkpoint['model'][{name!r}]", rtol=0, atol=0)

    def test_saves_the_optimizers_settings_and_momentum(self, kata, tmp_path):
        _, optimizer, saved = self._saved(kata, tmp_path)
        expected = optimizer.state_dict()
        got = saved["optimizer"]
        state = got.get("state") if isinstance(got, dict) else None
        check(
            isinstance(state, dict) and len(state) == len(expected["state"]),
            f"{SAVE_CALL}: the checkpoint's 'optimizer' is {describe(got)}; expected optimizer.state_dict(), whose "
            f"'state' holds a momentum buffer for each of the {len(expected['state'])} parameters",
        )
        check(
            got.get("param_groups") == expected["param_groups"],
            f"{SAVE_CALL}: the checkpoint's 'optimizer' has the param_groups {describe(got.get('param_groups'))}; "
            "expected optimizer.state_dict()'s (the learning rate, momentum and the rest of the settings)",
        )
        for key, value in expected["state"].items():
            check_tensor(
                state[key]["momentum_buffer"],
                value["momentum_buffer"],
                f"checkpoint['optimizer']['state'][{key}]['momentum_buffer']",
                rtol=0,
                atol=0,
            )

    def test_resuming_from_it_takes_the_steps_of_the_uninterrupted_run(self, kata, tmp_path):
        model, optimizer, loader = resume_setup()
        ref_epoch(model, loader, optimizer)
        kata.save_checkpoint(tmp_path / "ckpt.pt", model, optimizer, 1)
        saved = load_saved(tmp_path / "ckpt.pt", "save_checkpoint(path, model, optimizer, 1)")
        resumed = ref_model(seed=99)  # fresh weights, fresh optimizer without momentum
        resumed_optimizer = sgd(resumed)
        ref_load(saved, resumed, resumed_optimizer)
        ref_epoch(resumed, loader, resumed_optimizer)
        check_same_params(
            resumed,
            straight_two_epochs(),
            "1 epoch, save_checkpoint, load into a fresh LeNet and SGD(momentum=0.9), 1 epoch on the same batches; "
            "against 2 epochs straight",
            exact=True,
        )


class RunsCode:
    """Unpickling this calls `_ran`: a stand-in for a file that runs code when loaded."""

    def __reduce__(self):
        return (_ran, ())


RAN: list[bool] = []


def _ran():
    RAN.append(True)
    return 0


@exercise("load_checkpoint")
class TestLoadCheckpoint:
    def _checkpoint(self, tmp_path, epoch=3):
        model, optimizer, loader = resume_setup()
        ref_epoch(model, loader, optimizer)
        path = tmp_path / "ckpt.pt"
        ref_save(path, model, optimizer, epoch)
        return model, optimizer, path

    def test_restores_the_weights_and_returns_the_epoch(self, kata, tmp_path):
        model, _, path = self._checkpoint(tmp_path, epoch=3)
        fresh = ref_model(seed=99)
        got = kata.load_checkpoint(path, fresh, sgd(fresh), "cpu")
        check(
            type(got) is int and got == 3,
            f"load_checkpoint(path of a checkpoint of epoch 3, model, optimizer, 'cpu') returned {describe(got)}; "
            "expected the int 3",
        )
        check_same_params(fresh, model, "after load_checkpoint into a fresh LeNet, against the saved model", exact=True)

    def test_restores_the_optimizers_momentum(self, kata, tmp_path):
        _, optimizer, path = self._checkpoint(tmp_path)
        fresh = ref_model(seed=99)
        fresh_optimizer = sgd(fresh)
        kata.load_checkpoint(path, fresh, fresh_optimizer, "cpu")
        expected = optimizer.state_dict()["state"]
        got = fresh_optimizer.state_dict()["state"]
        check(
            len(got) == len(expected),
            f"after load_checkpoint, the fresh optimizer holds state for {len(got)} parameters; expected the "
            f"{len(expected)} momentum buffers of the checkpoint",
        )
        for key, value in expected.items():
            check_tensor(
                got[key]["momentum_buffer"],
                value["momentum_buffer"],
                f"optimizer.state_dict()['state'][{key}]['momentum_buffer'] after load_checkpoint",
                rtol=0,
                atol=0,
            )

    def test_resuming_takes_the_steps_of_the_uninterrupted_run(self, kata, tmp_path):
        model, optimizer, loader = resume_setup()
        ref_epoch(model, loader, optimizer)
        ref_save(tmp_path / "ckpt.pt", model, optimizer, 1)
        resumed = ref_model(seed=99)
        resumed_optimizer = sgd(resumed)
        kata.load_checkpoint(tmp_path / "ckpt.pt", resumed, resumed_optimizer, "cpu")
        ref_epoch(resumed, loader, resumed_optimizer)
        check_same_params(
            resumed,
            straight_two_epochs(),
            "1 epoch, save, load_checkpoint into a fresh LeNet and SGD(momentum=0.9), 1 epoch on the same batches; "
            "against 2 epochs straight",
            exact=True,
        )

    def test_without_an_optimizer_loads_the_model_only(self, kata, tmp_path):
        model, _, path = self._checkpoint(tmp_path, epoch=2)
        fresh = ref_model(seed=99)
        got = kata.load_checkpoint(path, fresh)
        check(got == 2, f"load_checkpoint(path, model) returned {describe(got)}; expected the epoch 2")
        check_same_params(fresh, model, "after load_checkpoint(path, model) (no optimizer)", exact=True)

    @pytest.mark.parametrize("change", ["missing-entry", "extra-entry", "other-shape"])
    def test_a_checkpoint_that_does_not_fit_the_model_raises(self, kata, tmp_path, change):
        model, optimizer, path = self._checkpoint(tmp_path)
        state = model.state_dict()
        if change == "missing-entry":
            del state["fc3.bias"]
        elif change == "extra-entry":
            state["fc4.weight"] = torch.zeros(2, 84)
        else:
            state["fc3.weight"], state["fc3.bias"] = torch.zeros(10, 84), torch.zeros(10)  # 10 classes, not 4
        torch.save({"model": state, "optimizer": optimizer.state_dict(), "epoch": 1}, path)
        fresh = ref_model(seed=99)
        what = {
            "missing-entry": "a checkpoint without 'fc3.bias'",
            "extra-entry": "a checkpoint with an extra 'fc4.weight'",
            "other-shape": "a checkpoint of a 10-class fc3",
        }[change]
        try:
            kata.load_checkpoint(path, fresh, sgd(fresh), "cpu")
        except RuntimeError as err:
            reraise_stub(err)
            return
        check(False, f"load_checkpoint({what}, LeNet(4), ...) returned without raising; expected RuntimeError")

    def test_refuses_a_file_that_runs_code(self, kata, tmp_path):
        model, optimizer, path = self._checkpoint(tmp_path)
        torch.save(
            {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 1, "x": RunsCode()}, path
        )
        RAN.clear()
        fresh = ref_model(seed=99)
        try:
            with expect_raises(
                pickle.UnpicklingError, None, "load_checkpoint(a file with a pickled function call, ...)"
            ):
                kata.load_checkpoint(path, fresh, sgd(fresh), "cpu")
        finally:
            ran = bool(RAN)
            RAN.clear()
        check(not ran, "load_checkpoint ran code from the file; expected the file refused before any of its code runs")

    def test_a_gpu_checkpoint_loads_on_a_machine_without_one(self, kata, tmp_path, monkeypatch):
        model, optimizer, _ = self._checkpoint(tmp_path)
        path = tmp_path / "from-gpu.pt"
        # Tag every tensor as saved from cuda:0 (what torch.save writes for GPU tensors), then
        # pretend this machine has no CUDA: the tensors must be put where this machine holds them.
        with monkeypatch.context() as m:
            m.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
            ref_save(path, model, optimizer, 4)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        fresh = ref_model(seed=99)
        try:
            got, problem = kata.load_checkpoint(path, fresh, sgd(fresh), "cpu"), ""
        except RuntimeError as err:
            reraise_stub(err)
            got, problem = None, str(err).split(". ")[0]
        check(
            not problem,
            f"load_checkpoint(a checkpoint saved on a GPU, model, optimizer, 'cpu') on a machine without CUDA raised "
            f"RuntimeError: {problem}; expected it to load there, its tensors on the CPU",
        )
        check(got == 4, f"load_checkpoint(GPU checkpoint of epoch 4, ...) returned {describe(got)}; expected 4")
        check_same_params(fresh, model, "after load_checkpoint of a GPU checkpoint", exact=True)

    @pytest.mark.parametrize("device", GPU_ONLY)
    def test_moves_a_cpu_checkpoint_to_the_gpu_and_back(self, kata, tmp_path, device):
        model, optimizer, path = self._checkpoint(tmp_path)
        on_gpu = ref_model(seed=99, device=device)
        gpu_optimizer = sgd(on_gpu)
        kata.load_checkpoint(path, on_gpu, gpu_optimizer, device)
        places = {str(s["momentum_buffer"].device) for s in gpu_optimizer.state.values()}
        check(
            places == {"cuda:0"},
            f"after load_checkpoint(cpu checkpoint, model on cuda, optimizer, 'cuda'), the momentum buffers are on {places}; expected cuda:0",
        )
        check_same_params(on_gpu, model, "after load_checkpoint(cpu checkpoint, model on cuda, ...)", exact=True)
        ref_save(tmp_path / "gpu.pt", on_gpu, gpu_optimizer, 5)
        back = ref_model(seed=7)
        got = kata.load_checkpoint(tmp_path / "gpu.pt", back, sgd(back), "cpu")
        check(got == 5, f"load_checkpoint(the GPU checkpoint, cpu model, ...) returned {describe(got)}; expected 5")
        check_same_params(back, model, "after save on cuda and load_checkpoint(..., 'cpu')", exact=True)
