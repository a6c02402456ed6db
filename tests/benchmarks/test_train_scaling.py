"""What a second process buys `dojo train`: one epoch on the synthetic stand-in with 1 and with 2
CPU processes (DistributedDataParallel over gloo, kata 19's functions), as a ratio.

    pytest tests/benchmarks/test_train_scaling.py --benchmark-only --impl=solutions -s

Each case is one `dojo train` command (one round: a training run is not a microbenchmark); the
figure to read is the epoch time that `dojo train` itself measures (in `extra_info`, without the
start-up of the processes), and the ratio printed after the second case. LeNet is tiny: on a
CPU, two processes split the same cores and add an all-reduce per step, so expect little or no
gain; see the README for when DDP pays off.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest
import torch

from dojo.project import find_root

ROOT = find_root()
EPOCH_SECONDS: dict[int, float] = {}
SETTINGS = ("--epochs", "1", "--synthetic-train", "10000", "--batch-size", "128", "--device", "cpu")


@pytest.mark.benchmark
@pytest.mark.parametrize("nproc", [1, 2], ids=["1_process", "2_processes"])
def test_one_epoch_of_dojo_train(benchmark, tmp_path, impl_folder, nproc):
    out = tmp_path / "run"
    how = ("--nproc", str(nproc)) if nproc > 1 else ("--dataloader",)
    cmd = [sys.executable, "-m", "dojo", "train", "--impl", str(impl_folder), *SETTINGS, *how, "--out", str(out)]
    env = {**os.environ, "COLUMNS": "200"}

    def run():
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]

    benchmark.pedantic(run, rounds=1, iterations=1)
    epoch = json.loads((out / "history.json").read_text())[0]["seconds"]
    EPOCH_SECONDS[nproc] = epoch
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    benchmark.extra_info.update(
        {
            "nproc": nproc,
            "epoch_seconds": epoch,
            "cpus": cpus,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "settings": " ".join(SETTINGS),
        }
    )
    line = (
        f"\n{nproc} process(es): one epoch {epoch:.2f} s ({' '.join(SETTINGS)}, {cpus} CPUs, torch {torch.__version__})"
    )
    if nproc == 2 and 1 in EPOCH_SECONDS:
        line += f"; speed-up of 2 processes over 1: {EPOCH_SECONDS[1] / epoch:.2f}x"
    print(line)
