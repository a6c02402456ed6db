"""Run the test suite in a subprocess and read back per-test outcomes (conftest's --kata-report)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dojo import progress


@dataclass
class Run:
    returncode: int
    outcomes: list[progress.Outcome]
    output: str  # combined stdout/stderr when captured, else ""

    @property
    def usage_error(self) -> bool:
        # pytest exits 4 on a usage error (a bad --impl) and 3 on an internal error.
        return self.returncode in (3, 4)


def pytest_command(impl: str | Path, *args: str, report: Path | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", f"--impl={impl}", *args]
    if report is not None:
        cmd.append(f"--kata-report={report}")
    return cmd


def run_tests(root: Path, impl: str | Path, *args: str, capture: bool = True) -> Run:
    """Run pytest against `impl`; quiet and captured unless `capture` is False."""
    with tempfile.TemporaryDirectory(prefix="dojo-") as tmp:
        report = Path(tmp) / "report.json"
        extra = ("-q", "--no-header", "--no-progress", "-p", "no:cacheprovider") if capture else ()
        proc = subprocess.run(
            pytest_command(impl, *extra, *args, report=report),
            cwd=root,
            capture_output=capture,
            text=True,
        )
        outcomes = progress.read_report(report) if report.exists() else []
        output = (proc.stdout or "") + (proc.stderr or "") if capture else ""
        return Run(proc.returncode, outcomes, output)


def start_tests(root: Path, impl: str | Path, report: Path, *args: str) -> subprocess.Popen:
    """Start a quiet, captured run in the background (dojo check runs two at once)."""
    return subprocess.Popen(
        pytest_command(impl, "-q", "--no-header", "--no-progress", "-p", "no:cacheprovider", *args, report=report),
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
