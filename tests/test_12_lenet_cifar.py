"""Tests for kata 12, LeNet on CIFAR-10: one class per exercise, in learning order.

Nothing here downloads or reads the real CIFAR-10. The tests make their own data:
- CIFAR-shaped tensors of a learnable task (a bright square in one of four quadrants: its
  quadrant is the class), on which LeNet beats chance (25%) by far within four epochs;
- tiny folders of 32x32 PNG and JPEG images in the ImageFolder layout, written with PIL;
- a tiny `cifar-10-batches-py` folder in torchvision's format, whose checksums the tests give to
  `datasets.CIFAR10` (monkeypatched for that test only); `CIFAR10.download` is replaced by a
  recorder in every test of this file, so nothing can ever be downloaded.
The references (a LeNet with the tutorial's layer names, a training loop, the accuracy
arithmetic, a checkpoint format) are written here, independent of the code under test, so each
exercise is checked on its own.
"""

from __future__ import annotations

import hashlib
import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchvision import datasets

from dojo.stubs import STUB_TAG
from dojo.testing import GPU_ONLY, check, check_tensor, describe, exercise, expect_raises

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


def check_same_params(got: nn.Module, expected: nn.Module, what: str, atol: float = 1e-6) -> None:
    """Every parameter of `got` equals `expected`'s to tolerance; names the first one that differs."""
    __tracebackhide__ = True
    mine, ref = params_of(got), params_of(expected)
    for name, value in ref.items():
        gap = (mine[name] - value).abs().max().item()
        check(
            gap <= atol + 1e-5 * value.abs().max().item(),
            f"{what}: parameter {name} differs from the reference by up to {gap:.3g}; expected equal to ~{atol:g}",
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
    return torch.from_numpy(hwc).permute(2, 0, 1).float() / 255 * 2 - 1


def draws(transform, image, n: int, seed: int = 0) -> list[torch.Tensor]:
    torch.manual_seed(seed)
    return [transform(image) for _ in range(n)]


def all_equal(tensors: list[torch.Tensor]) -> bool:
    return all(torch.equal(tensors[0], t) for t in tensors[1:])


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
            f"LeNet().state_dict() holds {got};\nexpected {LENET_SHAPES} "
            "(conv1, conv2, fc1, fc2, fc3 as attributes, with these shapes)",
        )

    def test_forward_returns_logits_of_shape_n_by_classes(self, kata):
        torch.manual_seed(0)
        model = kata.LeNet(7)
        out = model(torch.randn(5, 3, 32, 32))
        check(
            isinstance(out, torch.Tensor) and out.shape == (5, 7),
            f"LeNet(7)(x of shape (5, 3, 32, 32)) returned {describe(out)}; expected shape (5, 7)",
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
            "every row of LeNet()(x) sums to 1: the model applies a softmax; expected raw logits "
            "(nn.CrossEntropyLoss applies log-softmax itself)",
        )
        check(
            not torch.allclose(out.exp().sum(1), ones, atol=1e-3),
            "LeNet()(x) returns log-probabilities (its exp sums to 1 per row): expected raw logits, no log_softmax",
        )
        check(
            (out < 0).any().item(),
            f"LeNet()(x) returned no negative value (min {out.min().item():.4g}): expected raw logits of either sign; "
            "is there a ReLU after fc3?",
        )

    def test_runs_on_each_device(self, kata, device):
        torch.manual_seed(0)
        model = kata.LeNet().to(device)
        out = model(torch.randn(3, 3, 32, 32, device=device))
        check(
            isinstance(out, torch.Tensor) and out.shape == (3, 10) and out.device.type == device.type,
            f"LeNet().to({str(device)!r})(x on {device}) returned {describe(out)}; expected shape (3, 10) on {device}",
        )

    def test_learns_the_quadrant_task_in_four_epochs(self, kata):
        torch.manual_seed(0)
        model = kata.LeNet(4)
        optimizer = sgd(model)
        train = quadrant_loader(256, seed=0, batch_size=32, shuffle=True)
        for _ in range(4):
            ref_epoch(model, train, optimizer)
        acc = ref_accuracy(model, quadrant_loader(128, seed=1, batch_size=64))
        check(
            acc >= 0.9,
            f"LeNet(4) trained 4 epochs (SGD lr=0.05, momentum=0.9) on the quadrant task reached {acc:.1%} test "
            "accuracy; expected at least 90% (chance is 25%)",
        )


# --------------------------------------------------------------------------------------------
def pil(hwc: np.ndarray) -> Image.Image:
    return Image.fromarray(hwc)  # (H, W, 3) uint8 -> RGB


WHITE = np.full((32, 32, 3), 255, dtype=np.uint8)
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
        got = kata.make_transform(train=False)(pil(hwc))
        check_tensor(
            got,
            expected_tensor(hwc),
            "make_transform(train=False)(a 32x32 RGB PIL image) against pixel / 255 * 2 - 1, channels first",
            rtol=0,
            atol=1e-6,
        )

    def test_eval_gives_the_same_tensor_every_call(self, kata):
        transform = kata.make_transform(train=False)
        got = draws(transform, pil(seeded_pixels(1, 32, 32, 3)), 8)
        check(
            all_equal(got),
            "make_transform(train=False) gave different tensors for the same image: expected no random augmentation",
        )

    def test_train_gives_a_3x32x32_float_tensor_in_minus_one_to_one(self, kata):
        got = draws(kata.make_transform(train=True), pil(seeded_pixels(2, 32, 32, 3)), 10)
        for t in got:
            check(
                isinstance(t, torch.Tensor) and t.shape == (3, 32, 32) and t.dtype == torch.float32,
                f"make_transform(train=True)(a 32x32 RGB PIL image) returned {describe(t)}; expected float32 of shape (3, 32, 32)",
            )
            check(
                t.min().item() >= -1 - 1e-6 and t.max().item() <= 1 + 1e-6,
                f"make_transform(train=True)(image) has values in [{t.min().item():.3f}, {t.max().item():.3f}]; expected them in [-1, 1]",
            )

    def test_train_is_random(self, kata):
        got = draws(kata.make_transform(train=True), pil(seeded_pixels(3, 32, 32, 3)), 10)
        check(
            not all_equal(got),
            "make_transform(train=True) gave the same tensor 10 times for one image: expected random augmentation",
        )

    def test_train_crops_from_a_4_pixel_black_padding(self, kata):
        # A white image: pixels stay 1, padding added to the PIL image is black (-1). Padding added
        # after Normalize is 0 (gray); RandomResizedCrop or no padding never shows a border.
        got = draws(kata.make_transform(train=True), pil(WHITE), 60)
        values = torch.unique(torch.stack(got)).tolist()
        check(
            set(values) <= {-1.0, 1.0},
            f"make_transform(train=True)(all-white image) has values {values[:6]}; expected only 1 (white) and -1 "
            "(the black padding): crop and flip the PIL image before ToTensor and Normalize",
        )
        widest = max(black_border(t) for t in got)
        check(
            widest == 4,
            f"make_transform(train=True)(all-white image): the widest black border in 60 draws is {widest} pixels; "
            "expected 4: RandomCrop(32, padding=4)",
        )

    def test_train_flips_left_and_right(self, kata):
        # Left half white, right half black; a crop shifts by 4 pixels at most, so column 8 stays
        # white unless the image is flipped.
        got = draws(kata.make_transform(train=True), pil(LEFT_WHITE), 30)
        flipped = sum(t[:, :, 8].mean().item() < 0 for t in got)
        check(
            0 < flipped < 30,
            f"make_transform(train=True) flipped {flipped} of 30 draws of a half-white image; expected about half: "
            "RandomHorizontalFlip()",
        )


# --------------------------------------------------------------------------------------------
FOLDER_CLASSES = ["ant", "bee", "cat"]  # sorted, as ImageFolder indexes them
TRAIN_COUNTS = {"cat": 3, "ant": 2, "bee": 1}
TEST_COUNTS = {"bee": 2, "ant": 1, "cat": 1}


def write_image_folder(root) -> list[tuple[np.ndarray, int]]:
    """root/train/<class>/*.jpg and root/test/<class>/*.png; returns the test images (HWC) and
    labels in ImageFolder's order (class by class, sorted names)."""
    test_items = []
    for split, counts, ext in [("train", TRAIN_COUNTS, "jpg"), ("test", TEST_COUNTS, "png")]:
        for c, name in enumerate(FOLDER_CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(counts[name]):
                hwc = seeded_pixels(100 * c + i + (50 if split == "test" else 0), 32, 32, 3)
                Image.fromarray(hwc).save(folder / f"{i:04d}.{ext}")
                if split == "test":
                    test_items.append((hwc, c))
    return test_items


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


def check_split(dataset, items, what: str) -> None:
    """`dataset` holds `items` in order: (exact eval tensor, label) each."""
    __tracebackhide__ = True
    check(len(dataset) == len(items), f"{what} has {len(dataset)} samples; expected {len(items)}")
    for i, (hwc, label) in enumerate(items):
        image, target = dataset[i]
        check(int(target) == label, f"{what}[{i}] has label {describe(target)}; expected {label}")
        check_tensor(
            image,
            expected_tensor(hwc),
            f"{what}[{i}][0] (the image, through the evaluation transform)",
            rtol=0,
            atol=1e-6,
        )


def check_augmented(dataset, what: str) -> None:
    __tracebackhide__ = True
    torch.manual_seed(0)
    got = [dataset[0][0] for _ in range(8)]
    check(
        not all_equal(got),
        f"{what}[0] gave the same image tensor 8 times: expected the training transform (random augmentation)",
    )


@exercise("make_datasets")
class TestMakeDatasets:
    def test_an_image_folder_gives_train_and_test_splits(self, kata, tmp_path):
        write_image_folder(tmp_path)
        train_set, test_set = kata.make_datasets(tmp_path)
        sizes = (len(train_set), len(test_set))
        check(
            sizes == (sum(TRAIN_COUNTS.values()), sum(TEST_COUNTS.values())),
            f"make_datasets(root with train/ of 6 images and test/ of 4) gave splits of {sizes} samples; expected (6, 4)",
        )
        for name, dataset in [("train_set", train_set), ("test_set", test_set)]:
            got = getattr(dataset, "classes", None)
            check(
                got == FOLDER_CLASSES,
                f"make_datasets(image folder): {name}.classes is {got!r}; expected {FOLDER_CLASSES}",
            )

    def test_the_image_folder_test_split_is_not_augmented(self, kata, tmp_path):
        items = write_image_folder(tmp_path)
        _, test_set = kata.make_datasets(tmp_path)
        check_split(test_set, items, "make_datasets(image folder)[1] (test_set)")

    def test_the_image_folder_train_split_is_augmented(self, kata, tmp_path):
        write_image_folder(tmp_path)
        train_set, _ = kata.make_datasets(tmp_path)
        check_augmented(train_set, "make_datasets(image folder)[0] (train_set)")

    def test_a_cifar10_folder_gives_its_train_and_test_batches(self, kata, tmp_path, monkeypatch):
        train_items, test_items = write_fake_cifar10(tmp_path, monkeypatch)
        train_set, test_set = kata.make_datasets(str(tmp_path))
        sizes = (len(train_set), len(test_set))
        check(
            sizes == (len(train_items), len(test_items)),
            f"make_datasets(a cifar-10-batches-py folder with 10 training and 4 test images) gave splits of "
            f"{sizes} samples; expected (10, 4): datasets.CIFAR10(root, train=True) and (root, train=False)",
        )
        check(
            getattr(train_set, "classes", None) == CIFAR_CLASSES,
            f"train_set.classes is {getattr(train_set, 'classes', None)!r}; expected {CIFAR_CLASSES}",
        )

    def test_the_cifar10_test_split_is_not_augmented(self, kata, tmp_path, monkeypatch):
        _, test_items = write_fake_cifar10(tmp_path, monkeypatch)
        _, test_set = kata.make_datasets(str(tmp_path))
        check_split(test_set, test_items, "make_datasets(cifar10 folder)[1] (test_set)")

    def test_the_cifar10_train_split_is_augmented(self, kata, tmp_path, monkeypatch):
        write_fake_cifar10(tmp_path, monkeypatch)
        train_set, _ = kata.make_datasets(str(tmp_path))
        check_augmented(train_set, "make_datasets(cifar10 folder)[0] (train_set)")

    def test_does_not_download_unless_asked(self, kata, tmp_path, monkeypatch, downloads):
        write_fake_cifar10(tmp_path, monkeypatch)
        kata.make_datasets(str(tmp_path))
        check(
            not downloads,
            f"make_datasets(root) called CIFAR10.download {len(downloads)} time(s); expected none: download "
            "defaults to False, only a user who asks downloads 170 MB",
        )

    def test_passes_download_on_to_cifar10(self, kata, tmp_path, monkeypatch, downloads):
        write_fake_cifar10(tmp_path, monkeypatch)
        kata.make_datasets(str(tmp_path), download=True)
        check(
            downloads,
            "make_datasets(root, download=True) never called CIFAR10.download; expected CIFAR10(..., download=download)",
        )

    def test_a_missing_cifar10_folder_raises_torchvisions_error(self, kata, tmp_path):
        empty = tmp_path / "nothing-here"
        empty.mkdir()
        with expect_raises(RuntimeError, "Dataset not found", f"make_datasets({str(empty)!r}) (an empty folder)"):
            kata.make_datasets(str(empty))


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
        check(
            first != second, f"{call} gave the same order in two epochs; expected a new order each epoch (shuffle=True)"
        )

    def test_the_train_loader_gives_batches_of_batch_size(self, kata):
        train, _ = kata.make_loaders(index_set(20), index_set(10), batch_size=8, seed=0)
        sizes = [len(x) for x, _ in train]
        check(
            sizes == [8, 8, 4],
            f"make_loaders(train_set of 20, ..., batch_size=8)[0] gave batches of {sizes}; expected [8, 8, 4]",
        )

    def test_the_train_order_depends_on_the_seed_only(self, kata):
        def first_epoch(seed, global_seed):
            train, _ = kata.make_loaders(index_set(40), index_set(10), batch_size=8, seed=seed)
            torch.manual_seed(global_seed)  # whatever else uses the global RNG must not matter
            return order(train)

        a, b, c = first_epoch(3, 1), first_epoch(3, 2), first_epoch(4, 1)
        check(
            a == b,
            "make_loaders(..., seed=3) shuffled differently when the global RNG was seeded 1 and 2 between building "
            "and iterating; expected the same order: give the DataLoader its own torch.Generator().manual_seed(seed)",
        )
        check(
            a != c,
            "make_loaders(..., seed=3) and (..., seed=4) shuffled the same way; expected the seed to set the order",
        )

    def test_the_test_loader_keeps_the_order_and_every_sample(self, kata):
        _, test = kata.make_loaders(index_set(12), index_set(10), batch_size=4, seed=0)
        got = [x.tolist() for x, _ in test]
        expected = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
        check(
            got == expected,
            f"make_loaders(..., test_set of 10, batch_size=4)[1] gave the batches {got}; expected {expected} "
            "(no shuffle, no drop_last)",
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


@exercise("train_one_epoch")
class TestTrainOneEpoch:
    def test_returns_the_mean_loss_over_samples_as_a_float(self, kata):
        loader = quadrant_loader(40, seed=2, batch_size=16)  # batches of 16, 16 and 8
        model, reference = ref_model(), ref_model()
        expected = ref_epoch(reference, loader, sgd(reference))
        got = run_train(kata, model, loader, sgd(model))
        check(type(got) is float, f"{TRAIN_CALL} returned {describe(got)}; expected a Python float (loss.item())")
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
        check_same_params(model, reference, f"after {TRAIN_CALL}, against zero_grad-forward-backward-step per batch")

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
            f"{TRAIN_CALL} on a model that arrived with leftover gradients (zero them before each backward)",
        )

    def test_runs_every_forward_in_training_mode(self, kata):
        model, probe = probed(ref_model())
        model.eval()  # as the last evaluation left it
        run_train(kata, model, quadrant_loader(40, seed=2, batch_size=16), sgd(model))
        modes = [training for training, _ in probe.seen]
        check(
            modes and all(modes),
            f"{TRAIN_CALL} on a model left in eval mode ran forward with training = {modes}; expected True each "
            "time: call model.train() first",
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
        got = kata.train_one_epoch(model, quadrant_loader(40, seed=2, batch_size=16), sgd(model), loss_fn, META)
        wrong = sorted({s for s in seen if not s.endswith("meta")})
        check(
            not wrong and seen,
            f"train_one_epoch(..., device='meta') passed {wrong or 'nothing'} to the model and loss; expected them on meta",
        )
        check(
            isinstance(got, float) and math.isclose(got, 1.0),
            f"train_one_epoch with a loss of 1.0 for every batch returned {describe(got)}; expected 1.0",
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

    def test_lenet_learns_the_quadrant_task_in_four_epochs(self, kata):
        model = ref_model()
        optimizer = sgd(model)
        train = quadrant_loader(256, seed=0, batch_size=32, shuffle=True)
        losses = [kata.train_one_epoch(model, train, optimizer, CE, "cpu") for _ in range(4)]
        acc = ref_accuracy(model, quadrant_loader(128, seed=1, batch_size=64))
        check(
            acc >= 0.9,
            f"4 epochs of train_one_epoch (SGD lr=0.05, momentum=0.9) took a LeNet to {acc:.1%} on the quadrant "
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


# 9 samples, 4 classes; class 3 never occurs. Per class: 0 -> 2/4 right, 1 -> 2/3, 2 -> 2/2.
LABELS = [0, 1, 0, 2, 0, 1, 0, 1, 2]
PREDICTIONS = [0, 1, 1, 2, 0, 0, 3, 1, 2]
ACCURACY = 6 / 9  # not the mean of the per-class values (0.722), nor the mean of batch accuracies (0.75)
PER_CLASS = [2 / 4, 2 / 3, 2 / 2]
EVAL_CALL = "evaluate(model, loader of 9 samples in batches of 4, 'cpu', num_classes=4)"


def table_setup() -> tuple[TableModel, DataLoader]:
    model = TableModel(PREDICTIONS, 4).train()
    dataset = TensorDataset(torch.arange(9, dtype=torch.float32), torch.tensor(LABELS))
    return model, DataLoader(dataset, batch_size=4)


def run_eval(kata):
    model, loader = table_setup()
    return model, kata.evaluate(model, loader, "cpu", 4)


def unpack_eval(got, what: str) -> tuple[float, list]:
    __tracebackhide__ = True
    check(
        isinstance(got, tuple) and len(got) == 2,
        f"{what} returned {describe(got)}; expected a tuple (accuracy, per_class)",
    )
    return got


def check_float_list(per_class, what: str) -> None:
    __tracebackhide__ = True
    check(
        isinstance(per_class, list) and all(isinstance(v, float) for v in per_class),
        f"{what}: per_class is {describe(per_class)}; expected a list of Python floats (tensor.tolist())",
    )


@exercise("evaluate")
class TestEvaluate:
    def test_accuracy_is_the_fraction_of_all_samples_right_as_a_float(self, kata):
        _, got = run_eval(kata)
        accuracy, _ = unpack_eval(got, EVAL_CALL)
        check(type(accuracy) is float, f"{EVAL_CALL}: accuracy is {describe(accuracy)}; expected a Python float")
        check(
            math.isclose(accuracy, ACCURACY, rel_tol=1e-9),
            f"{EVAL_CALL}: accuracy {accuracy}; expected {ACCURACY:.6f} (6 right of 9: count over the whole "
            "loader, then divide; not a mean of batch or class accuracies, not a percentage)",
        )

    def test_per_class_accuracy_divides_by_each_class_count(self, kata):
        _, got = run_eval(kata)
        _, per_class = unpack_eval(got, EVAL_CALL)
        check_float_list(per_class, EVAL_CALL)
        check(
            len(per_class) == 4,
            f"{EVAL_CALL}: per_class has {len(per_class)} entries {per_class}; expected 4, one per class",
        )
        ok = all(math.isclose(g, e, rel_tol=1e-9) for g, e in zip(per_class[:3], PER_CLASS))
        check(
            ok,
            f"{EVAL_CALL}: per_class[:3] is {per_class[:3]}; expected {[round(v, 6) for v in PER_CLASS]} "
            "(for class c: samples of label c predicted c / samples of label c; the classes have 4, 3, 2 samples)",
        )

    def test_a_class_absent_from_the_data_gets_nan(self, kata):
        _, got = run_eval(kata)
        _, per_class = unpack_eval(got, EVAL_CALL)
        check_float_list(per_class, EVAL_CALL)
        check(
            len(per_class) == 4 and math.isnan(per_class[3]),
            f"{EVAL_CALL}: per_class is {per_class}; expected 4 entries, the last nan: class 3 has no sample, "
            "so it has no accuracy (bincount(..., minlength=num_classes); 0 / 0 is nan)",
        )

    def test_runs_the_model_in_eval_mode(self, kata):
        model, _ = run_eval(kata)
        modes = [training for training, _ in model.seen]
        check(
            modes and not any(modes),
            f"{EVAL_CALL} ran forward with model.training = {modes}; expected False each time: call model.eval()",
        )

    def test_runs_the_model_without_recording_gradients(self, kata):
        model, _ = run_eval(kata)
        grad_on = [g for _, g in model.seen]
        check(
            grad_on and not any(grad_on),
            f"{EVAL_CALL} ran forward with torch.is_grad_enabled() = {grad_on}; expected False each time: "
            "wrap the loop in torch.no_grad()",
        )

    def test_argmax_over_the_classes_of_each_sample(self, kata, device):
        model = ref_model(num_classes=4, device=device)
        loader = quadrant_loader(30, seed=3, batch_size=8)
        predicted = torch.cat([model(x.to(device)).argmax(1).cpu() for x, _ in loader])
        labels = torch.cat([y for _, y in loader])
        right = (predicted == labels).double()
        expected = [right[labels == c].mean().item() for c in range(4)]
        got = kata.evaluate(model, loader, device, 4)
        accuracy, per_class = unpack_eval(got, f"evaluate(LeNet on {device}, loader of 30, {str(device)!r}, 4)")
        check_float_list(per_class, f"evaluate(LeNet on {device}, ...)")
        check(
            math.isclose(accuracy, right.mean().item(), rel_tol=1e-9)
            and all(math.isclose(g, e, rel_tol=1e-9) for g, e in zip(per_class, expected)),
            f"evaluate(LeNet on {device}, ...) returned ({accuracy}, {per_class}); expected "
            f"({right.mean().item()}, {expected}) from model(x).argmax(dim=1)",
        )


# --------------------------------------------------------------------------------------------
def resume_setup():
    """A LeNet, its SGD with momentum, and two epochs of batches (4 steps each)."""
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
    """The file `what` wrote, loaded as a dict with "model", "optimizer" and "epoch"; fails clearly otherwise."""
    __tracebackhide__ = True
    try:
        loaded, problem = torch.load(path, weights_only=True), ""
    except pickle.UnpicklingError as err:
        loaded, problem = None, str(err).split(".")[0]  # "Weights only load failed"
    check(
        not problem,
        f"torch.load(file written by {what}, weights_only=True) failed: {problem}; expected a dict of state_dicts "
        "and an int (save model.state_dict() and optimizer.state_dict(), not the objects)",
    )
    keys = sorted(map(str, loaded))[:6] if isinstance(loaded, dict) else None
    check(
        keys == ["epoch", "model", "optimizer"],
        f"{what} saved {describe(loaded) if keys is None else f'a dict with the keys {keys}'}; expected a dict "
        "with the keys 'model', 'optimizer' and 'epoch'",
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

    def test_saves_a_dict_that_loads_with_weights_only_and_holds_the_epoch(self, kata, tmp_path):
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

    def test_saves_the_optimizers_momentum(self, kata, tmp_path):
        _, optimizer, saved = self._saved(kata, tmp_path)
        got, expected = saved["optimizer"], optimizer.state_dict()["state"]
        state = got.get("state") if isinstance(got, dict) else None
        check(
            isinstance(state, dict) and len(state) == len(expected),
            f"{SAVE_CALL}: the checkpoint's 'optimizer' is {describe(got)}; expected optimizer.state_dict(), whose "
            f"'state' holds a momentum buffer for each of the {len(expected)} parameters",
        )
        for key, value in expected.items():
            check_tensor(
                state[key]["momentum_buffer"],
                value["momentum_buffer"],
                f"checkpoint['optimizer']['state'][{key}]['momentum_buffer']",
                rtol=0,
                atol=0,
            )

    def test_resuming_from_it_follows_the_uninterrupted_run(self, kata, tmp_path):
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
            "1 epoch, save_checkpoint, load into a fresh LeNet and SGD(momentum=0.9), 1 epoch; against 2 epochs straight",
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
            f"load_checkpoint(path of a checkpoint of epoch 3, model, optimizer, 'cpu') returned {describe(got)}; expected the int 3",
        )
        check_same_params(fresh, model, "after load_checkpoint into a fresh LeNet, against the saved model", atol=0)

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
            f"{len(expected)} momentum buffers of the checkpoint: optimizer.load_state_dict(checkpoint['optimizer'])",
        )
        for key, value in expected.items():
            check_tensor(
                got[key]["momentum_buffer"],
                value["momentum_buffer"],
                f"optimizer.state_dict()['state'][{key}]['momentum_buffer'] after load_checkpoint",
                rtol=0,
                atol=0,
            )

    def test_resuming_follows_the_uninterrupted_run(self, kata, tmp_path):
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
            "1 epoch, save, load_checkpoint into a fresh LeNet and SGD(momentum=0.9), 1 epoch; against 2 epochs straight",
        )

    def test_without_an_optimizer_loads_the_model_only(self, kata, tmp_path):
        model, _, path = self._checkpoint(tmp_path, epoch=2)
        fresh = ref_model(seed=99)
        got = kata.load_checkpoint(path, fresh)
        check(got == 2, f"load_checkpoint(path, model) returned {describe(got)}; expected the epoch 2")
        check_same_params(fresh, model, "after load_checkpoint(path, model) (no optimizer)", atol=0)

    def test_refuses_a_file_that_runs_code(self, kata, tmp_path):
        model, optimizer, path = self._checkpoint(tmp_path)
        torch.save(
            {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 1, "x": RunsCode()}, path
        )
        RAN.clear()
        fresh = ref_model(seed=99)
        try:
            with expect_raises(
                pickle.UnpicklingError,
                "Weights only load failed",
                "load_checkpoint(a file with a pickled function call, ...)",
            ):
                kata.load_checkpoint(path, fresh, sgd(fresh), "cpu")
        finally:
            ran = bool(RAN)
            RAN.clear()
        check(
            not ran, "load_checkpoint ran code from the file; expected torch.load(..., weights_only=True) to refuse it"
        )

    def test_a_gpu_checkpoint_loads_on_a_machine_without_one(self, kata, tmp_path, monkeypatch):
        model, optimizer, _ = self._checkpoint(tmp_path)
        path = tmp_path / "from-gpu.pt"
        # Tag every tensor as saved from cuda:0 (what torch.save writes for GPU tensors), then
        # pretend this machine has no CUDA: torch.load must be told where to put the tensors.
        with monkeypatch.context() as m:
            m.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
            ref_save(path, model, optimizer, 4)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        fresh = ref_model(seed=99)
        try:
            got, problem = kata.load_checkpoint(path, fresh, sgd(fresh), "cpu"), ""
        except RuntimeError as err:
            if STUB_TAG in str(err):
                raise
            got, problem = None, str(err).split(". ")[0]
        check(
            not problem,
            f"load_checkpoint(a checkpoint saved on a GPU, model, optimizer, 'cpu') on a machine without CUDA raised "
            f"RuntimeError: {problem}; expected torch.load(..., map_location=device) to load it there",
        )
        check(got == 4, f"load_checkpoint(GPU checkpoint of epoch 4, ...) returned {describe(got)}; expected 4")
        check_same_params(fresh, model, "after load_checkpoint of a GPU checkpoint", atol=0)

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
        check_same_params(on_gpu, model, "after load_checkpoint(cpu checkpoint, model on cuda, ...)", atol=0)
        ref_save(tmp_path / "gpu.pt", on_gpu, gpu_optimizer, 5)
        back = ref_model(seed=7)
        got = kata.load_checkpoint(tmp_path / "gpu.pt", back, sgd(back), "cpu")
        check(got == 5, f"load_checkpoint(the GPU checkpoint, cpu model, ...) returned {describe(got)}; expected 5")
        check_same_params(back, model, "after save on cuda and load_checkpoint(..., 'cpu')", atol=0)
