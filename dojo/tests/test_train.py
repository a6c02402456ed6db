"""`dojo train` end to end on the synthetic stand-in (no data set, no network): it runs, says it
is synthetic, checkpoints, draws curves, resumes, and refuses a bad --impl in one line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dojo.project import find_root

ROOT = find_root(Path(__file__).parent)


def dojo_train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dojo", "train", "--impl", "solutions", "--device", "cpu", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"},
    )


@pytest.mark.slow
def test_trains_offline_on_synthetic_data_then_resumes(tmp_path):
    out = tmp_path / "run"
    first = dojo_train("--epochs", "1", "--out", str(out), "--data-dir", str(tmp_path / "no-cifar-here"))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "SYNTHETIC stand-in" in first.stdout
    assert "test accuracy per class" in first.stdout and "final test accuracy" in first.stdout
    assert (out / "checkpoint.pt").exists() and (out / "curves.png").stat().st_size > 1000
    second = dojo_train("--epochs", "2", "--out", str(out), "--resume", "--gpu-resident")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "resumed from" in second.stdout and "after epoch 1" in second.stdout
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert history[-1]["test_accuracy"] > 0.5, "the synthetic patterns are easy: two epochs should learn them"


def test_a_bad_impl_is_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "dojo", "train", "--impl", str(tmp_path / "missing")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith("dojo train: --impl=") and "Traceback" not in proc.stderr


def test_gpu_batches_cover_the_epoch_with_crops_and_flips_of_the_padded_images():
    import torch

    from dojo.train import GpuBatches

    images = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    batches = GpuBatches(images, torch.arange(10), batch_size=4, train=True)
    seen = []
    for x, y in batches:
        assert x.dtype == torch.float32 and x.shape[1:] == (3, 32, 32) and -1 <= x.min() <= x.max() <= 1
        for xi, yi in zip(x, y):
            padded = batches.images[yi].float() / 127.5 - 1.0
            crops = [padded[:, r : r + 32, c : c + 32] for r in range(9) for c in range(9)]
            assert any(torch.equal(xi, crop) or torch.equal(xi, crop.flip(2)) for crop in crops), (
                f"image {yi} is no crop of its padded self"
            )
        seen += y.tolist()
    assert len(batches) == 3 and sorted(seen) == list(range(10)), "every image once per epoch"

    test = GpuBatches(images, torch.arange(10), batch_size=4, train=False)
    x, y = next(iter(test))
    assert torch.equal(x, images[:4].float() / 127.5 - 1.0) and y.tolist() == [0, 1, 2, 3], (
        "test batches: in order, not augmented"
    )


@pytest.mark.slow
def test_an_image_folder_is_decoded_once_then_read_from_the_cache(tmp_path):
    import hashlib

    from PIL import Image

    data = tmp_path / "cifar"
    for split, per_class in (("train", 4), ("test", 2)):
        for c in range(10):
            folder = data / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", (32, 32), (25 * c, 10 * i, 200)).save(folder / f"{i}.jpg")
    tag = hashlib.sha1(str(data.resolve()).encode()).hexdigest()[:10]
    caches = [ROOT / ".dojo" / "cache" / f"{split}-{tag}.pt" for split in ("train", "test")]
    try:
        written = []
        for run in range(2):
            proc = dojo_train(
                "--epochs",
                "1",
                "--batch-size",
                "8",
                "--gpu-resident",
                "--decode-workers",
                "2",
                "--data-dir",
                str(data),
                "--out",
                str(tmp_path / "run"),
            )
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert "SYNTHETIC" not in proc.stdout and "decoded 60 images" in proc.stdout
            assert all(cache.exists() for cache in caches), f"run {run + 1} left no cache"
            written.append([cache.stat().st_mtime_ns for cache in caches])
        assert written[0] == written[1], "the second run decoded again instead of reading the cache"
        assert "class9" in proc.stdout, "the per-class table names the folder's classes"
    finally:
        for cache in caches:
            cache.unlink(missing_ok=True)


def final_state(out: Path) -> tuple[dict, list]:
    import torch

    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    history = [{k: v for k, v in h.items() if k != "seconds"} for h in checkpoint["history"]]
    return checkpoint["model"], history


def assert_same_run(a: Path, b: Path) -> None:
    import torch

    weights_a, history_a = final_state(a)
    weights_b, history_b = final_state(b)
    differ = [k for k in weights_a if not torch.equal(weights_a[k], weights_b[k])]
    assert not differ, f"weights differ bit for bit in {differ}"
    assert history_a == history_b, f"{history_a} != {history_b}"


@pytest.mark.slow
@pytest.mark.parametrize("path", ["--dataloader", "--gpu-resident"])
def test_two_epochs_equal_one_then_resume_then_one_bit_for_bit(tmp_path, path):
    common = ("--synthetic-train", "600", "--batch-size", "64", path)
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert dojo_train("--epochs", "2", "--out", str(whole), *common).returncode == 0
    assert dojo_train("--epochs", "1", "--out", str(split), *common).returncode == 0
    resumed = dojo_train("--epochs", "2", "--out", str(split), "--resume", *common)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "schedule and random state restored" in resumed.stdout
    assert "Detected call of" not in resumed.stdout + resumed.stderr, "the schedule is loaded, not replayed"
    assert_same_run(whole, split)


@pytest.mark.slow
def test_torchrun_trains_on_two_processes_and_resumes_bit_for_bit(tmp_path):
    common = ("--synthetic-train", "600", "--batch-size", "64", "--nproc", "2")
    whole, split = tmp_path / "whole", tmp_path / "split"
    first = dojo_train("--epochs", "2", "--out", str(whole), *common)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "with DDP: 2 processes (gloo, cpu)" in first.stdout
    assert first.stdout.count("final test accuracy") == 1, "rank 0 alone reports"
    assert (whole / "curves.png").exists() and "test accuracy per class" in first.stdout
    assert dojo_train("--epochs", "1", "--out", str(split), *common).returncode == 0
    resumed = dojo_train("--epochs", "2", "--out", str(split), "--resume", *common)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert_same_run(whole, split)
    # A plain, single-process LeNet loads the distributed checkpoint: no "module." prefix.
    import torch

    state = torch.load(whole / "checkpoint.pt", weights_only=True)
    assert not any(k.startswith("module.") for k in state["model"]) and state["epoch"] == 2
