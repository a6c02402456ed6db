"""`dojo doctor`: one screen for a learner whose setup misbehaves.

What it reports: Python and whether the project's shared environment is the one in use; the
torch and torchvision builds (CPU or CUDA wheel, CUDA runtime, cuDNN, the driver when visible);
which accelerators work (CUDA device name and capability, MPS); which device tests will run or
be skipped, and why; the DataLoader's start method and the size of /dev/shm (too small a
/dev/shm is why DataLoader workers die with a bus error in containers); thread settings; and
whether `dojo watch` can see saves in the kata folder (network and Windows drives may not tell).
It only reads; it always exits 0.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

# File systems on which modification times may arrive late or not at all for a polling watcher.
REMOTE_FILESYSTEMS = {
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "9p",
    "drvfs",
    "fuse.sshfs",
    "fuse.rclone",
    "afs",
    "virtiofs",
}
SHM_ADVICE_BYTES = 1 << 30


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def filesystem_of(path: Path) -> str | None:
    """The type of the file system `path` is on (Linux: from /proc/mounts), else None."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    best, kind = "", None
    target = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3 and (target == parts[1] or target.startswith(parts[1].rstrip("/") + "/")):
            if len(parts[1]) > len(best):
                best, kind = parts[1], parts[2]
    return kind


def driver_version() -> str | None:
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def findings(root: Path) -> list[tuple[str, str, str]]:
    """(topic, what was found, what it means) rows."""
    rows: list[tuple[str, str, str]] = []
    shared = (root / ".tox" / "torch").resolve()
    in_shared = Path(sys.prefix).resolve() == shared
    rows.append(
        (
            "python",
            f"{platform.python_version()} at {sys.executable}",
            "the project's shared environment (.tox/torch)"
            if in_shared
            else (
                f"not the shared environment: `source {shared}/bin/activate` (or `tox -e learn`)"
                if shared.exists()
                else "no shared environment yet: `tox -e learn` builds it"
            ),
        )
    )
    try:
        import torch
    except ImportError as err:
        rows.append(("torch", f"not importable ({err})", "install it: `tox -e torch`, then activate .tox/torch"))
        return rows
    cuda_build = torch.version.cuda
    hip = getattr(torch.version, "hip", None)
    build = f"CUDA {cuda_build} wheel" if cuda_build else (f"ROCm {hip} wheel" if hip else "CPU-only wheel")
    rows.append(("torch", f"{torch.__version__} ({build})", "the suite is tested with 2.14.1; 2.11 or newer works"))
    vision = _version("torchvision")
    try:
        import torchvision  # noqa: F401  the import is the check (a mismatched build fails here)

        vision_note = "imports with this torch"
    except Exception as err:  # a torchvision built for another torch
        vision_note = f"does not import with this torch: {type(err).__name__}: {err}"
    rows.append(("torchvision", vision or "not installed", vision_note))
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            major, minor = torch.cuda.get_device_capability(i)
            rows.append(("cuda", f"device {i}: {torch.cuda.get_device_name(i)}, capability {major}.{minor}", "usable"))
        rows.append(("cuda runtime", f"CUDA {cuda_build}, cuDNN {cudnn}, driver {driver_version() or 'unknown'}", ""))
        device_tests = "cuda tests run here"
    else:
        why = (
            "this torch is a CPU-only build"
            if not cuda_build
            else f"this torch is built for CUDA {cuda_build}, but no GPU is visible"
            + (f" (driver {driver_version()})" if driver_version() else " (no nvidia-smi, no driver)")
        )
        rows.append(("cuda", "not available", why))
        device_tests = f"cuda tests are SKIPPED: {why}"
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps and mps.is_available())
    rows.append(("mps", "available" if mps_ok else "not available", "Apple GPUs only"))
    rows.append(
        (
            "device tests",
            device_tests + ("; mps tests run" if mps_ok else "; mps tests are SKIPPED"),
            "cpu tests always run; `pytest -m cuda -rs` lists skip reasons",
        )
    )
    method = multiprocessing.get_start_method(allow_none=True) or multiprocessing.get_context().get_start_method()
    rows.append(
        (
            "DataLoader workers",
            f"start method {method!r}",
            "spawn (macOS, Windows) re-imports the kata in each worker: Datasets must be defined at module level",
        )
    )
    shm = Path("/dev/shm")
    if shm.is_dir():
        stats = os.statvfs(shm)
        size = stats.f_blocks * stats.f_frsize
        note = (
            "enough for the loader benchmarks"
            if size >= SHM_ADVICE_BYTES
            else "small: DataLoader workers may die with a bus error; give the container --shm-size=1g"
        )
        rows.append(("/dev/shm", f"{size / 2**30:.1f} GiB", note))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    env = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ}
    rows.append(
        (
            "threads",
            f"torch uses {torch.get_num_threads()} of {cpus} CPUs" + (f"; {env}" if env else ""),
            "the test run pins 1 thread (tiny ops are faster so); benchmarks keep the default",
        )
    )
    katas = root / "katas"
    kind = filesystem_of(katas)
    remote = kind in REMOTE_FILESYSTEMS or str(katas.resolve()).startswith("/mnt/") and kind in (None, "9p", "drvfs")
    rows.append(
        (
            "dojo watch",
            f"katas/ is on {kind or 'an unknown file system'}",
            "saves may reach `dojo watch` late or not at all there: run `dojo test NN` after saving"
            if remote
            else "saves are seen within half a second",
        )
    )
    return rows


def cmd_doctor(root: Path, args) -> int:
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(title=f"dojo doctor: {root}", title_justify="left", box=box.SIMPLE, show_header=False, pad_edge=False)
    table.add_column("topic", style="bold", no_wrap=True)
    table.add_column("found", overflow="fold")
    for topic, found, note in findings(root):
        table.add_row(topic, escape(found) + (f"\n[dim]{escape(note)}[/]" if note else ""))
    console.print(table)
    return 0


def add_arguments(sub) -> None:
    sub.add_parser("doctor", help="one screen about this setup: Python, torch builds, devices, loader settings")
