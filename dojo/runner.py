"""Run the test suite in a subprocess and read back per-test results (the plugin's --kata-report)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from dojo.progress import TestResult, read_report

QUIET = ("-q", "--no-header", "--no-progress", "-p", "no:cacheprovider")
# Plugins a verdict does not need, dropped where a run's speed matters (dojo, dojo test, dojo
# check, dojo grade): nbval takes a quarter second to load, unraisableexception collects garbage
# several times as a session ends (another quarter second), logging wraps every test.
LEAN = ("-p", "no:nbval", "-p", "no:unraisableexception", "-p", "no:logging")


@dataclass
class Run:
    returncode: int
    results: list[TestResult]
    output: str  # combined stdout/stderr when captured, else ""
    header: dict = field(default_factory=dict)  # what ran where: impl, torch version, CUDA device

    @property
    def usage_error(self) -> bool:
        # pytest exits 4 on a usage error (a bad --impl) and 3 on an internal error.
        return self.returncode in (3, 4)


def pytest_command(impl: str | Path | None, *args: str, report: Path | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", *([f"--impl={impl}"] if impl else []), *args]
    if report is not None:
        cmd.append(f"--kata-report={report}")
    return cmd


def run_tests(root: Path, impl: str | Path | None, *args: str, capture: bool = True) -> Run:
    """Run pytest against `impl` (None: the default, KATA_IMPL or katas); quiet and captured
    unless `capture` is False."""
    with tempfile.TemporaryDirectory(prefix="dojo-") as tmp:
        report = Path(tmp) / "report.jsonl"
        proc = subprocess.run(
            pytest_command(impl, *(QUIET if capture else ()), *args, report=report),
            cwd=root,
            capture_output=capture,
            text=True,
        )
        header, results = read_report(report) if report.exists() else ({}, [])
        output = (proc.stdout or "") + (proc.stderr or "") if capture else ""
        return Run(proc.returncode, results, output, header)


def run_in_process(root: Path, impl: str | Path | None, *args: str) -> Run:
    """Like `run_tests`, but in this process: one interpreter, one torch import. For commands
    that run the suite once and then end (`dojo`, `dojo hint`); its output is captured."""
    import contextlib
    import io
    import os

    import pytest

    with tempfile.TemporaryDirectory(prefix="dojo-") as tmp:
        report = Path(tmp) / "report.jsonl"
        argv = [*([f"--impl={impl}"] if impl else []), *QUIET, *LEAN, *args, f"--kata-report={report}"]
        out = io.StringIO()
        cwd = Path.cwd()
        try:
            os.chdir(root)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                code = int(pytest.main(argv))
        finally:
            os.chdir(cwd)
        header, results = read_report(report) if report.exists() else ({}, [])
        return Run(code, results, out.getvalue(), header)


def end_now(code: int) -> None:
    """Exit without the interpreter's teardown (torch's takes over half a second): for commands
    whose work, output included, is complete."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
