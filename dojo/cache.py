"""Remember each kata's test results, so `dojo` re-runs only the katas whose inputs changed.

A kata's results are reused only while all of these are the same as when they were recorded:
the kata file under test, its test file, its entry in katas.toml, the shared test machinery
(conftest.py, dojo/plugin.py, dojo/testing.py, dojo/loader.py), and the environment: the
Python executable, the installed torch and torchvision, and the accelerators visible. A result
recorded with another torch or on another device is never trusted. None of this imports torch.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from dojo.progress import TestResult
from dojo.project import Kata

CACHE_VERSION = 1
MACHINERY = ("conftest.py", "dojo/plugin.py", "dojo/testing.py", "dojo/loader.py", "dojo/report.py", "pyproject.toml")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


def environment() -> dict:
    """What could change a result without any file changing: interpreter, torch, devices."""
    return {
        "python": sys.executable,
        "python_version": platform.python_version(),
        "torch": _version("torch"),
        "torchvision": _version("torchvision"),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "nvidia_devices": sorted(glob.glob("/dev/nvidia[0-9]*")),
        "machine": f"{platform.system()} {platform.machine()}",
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b"<absent>"


def kata_key(root: Path, folder: Path, kata: Kata, shared: str) -> str:
    return _digest(
        _read(folder / kata.filename),
        _read(root / kata.test_file),
        repr(kata).encode(),
        shared.encode(),
    )


def shared_key(root: Path) -> str:
    return _digest(*(_read(root / name) for name in MACHINERY), json.dumps(environment(), sort_keys=True).encode())


@dataclass
class CachedRun:
    results: list[TestResult]
    ran: list[Kata] = field(default_factory=list)  # the katas whose tests ran this time
    usage_error: bool = False
    output: str = ""


def cache_file(root: Path, folder: Path) -> Path:
    tag = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:12]
    return root / ".dojo" / "cache" / f"results-{tag}.json"


def load(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if data.get("version") == CACHE_VERSION else {}


def cached_results(root: Path, folder: Path, katas: tuple[Kata, ...], runner=None) -> CachedRun:
    """Every kata's results, running only the test files whose key changed (in one pytest run).

    `runner(test_files) -> dojo.runner.Run` runs them (default: a quiet pytest run in this
    process, which should end soon after: the kata modules stay loaded).
    """
    if runner is None:
        from dojo.runner import run_in_process

        def runner(files):
            return run_in_process(root, folder, *files, "--tb=no")

    path = cache_file(root, folder)
    data = load(path)
    entries = data.get("katas", {})
    shared = shared_key(root)
    keys = {kata.stem: kata_key(root, folder, kata, shared) for kata in katas}
    stale = [kata for kata in katas if entries.get(kata.stem, {}).get("key") != keys[kata.stem]]
    results: list[TestResult] = []
    if stale:
        run = runner([kata.test_file for kata in stale])
        if run.usage_error:
            return CachedRun([], stale, True, run.output)
        by_stem: dict[str, list[TestResult]] = {kata.stem: [] for kata in stale}
        for r in run.results:
            by_stem.setdefault(r.stem, []).append(r)
        complete = run.returncode in (0, 1)  # a crash or an interrupt: keep nothing of this run
        for kata in stale:
            if complete:
                entries[kata.stem] = {"key": keys[kata.stem], "results": [_plain(r) for r in by_stem[kata.stem]]}
            else:
                entries.pop(kata.stem, None)
    for kata in katas:
        if kata in stale and kata.stem not in entries:
            results += [r for r in run.results if r.stem == kata.stem]
        else:
            results += [TestResult(**r) for r in entries.get(kata.stem, {}).get("results", [])]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"version": CACHE_VERSION, "katas": entries}))
    tmp.replace(path)
    return CachedRun(results, stale)


def _plain(result: TestResult) -> dict:
    return {**asdict(result), "outcome": result.outcome.value}
