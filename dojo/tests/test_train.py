"""`dojo train` end to end on the synthetic stand-in (no data set, no network): it runs, says it
is synthetic, checkpoints, draws curves, resumes, and refuses a bad --impl in one line."""

import json
import os
import subprocess
import sys
from pathlib import Path

from dojo.project import find_root

ROOT = find_root(Path(__file__).parent)


def dojo_train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dojo", "train", "--impl", "solutions", "--device", "cpu", *args],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"},
    )


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
        cwd=ROOT, capture_output=True, text=True,
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith("dojo train: --impl=") and "Traceback" not in proc.stderr
