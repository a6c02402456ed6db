"""The `dojo` command line on the fixture project: one default for what is tested (--impl, else
KATA_IMPL, else katas) honoured by every command, `dojo test`, `dojo doctor`, `dojo build`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def dojo(project, *args, env=None):
    environment = {**os.environ, "COLUMNS": "120", **(env or {})}
    environment.pop("KATA_IMPL", None) if env is None or "KATA_IMPL" not in env else None
    return subprocess.run(
        [sys.executable, "-m", "dojo", *args], cwd=project, capture_output=True, text=True, env=environment
    )


@pytest.mark.parametrize("how", ["option", "environment"])
def test_progress_tests_the_folder_kata_impl_names(project, how):
    proc = dojo(project, "--impl", "solutions") if how == "option" else dojo(project, env={"KATA_IMPL": "solutions"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "torch-katas progress (solutions" in proc.stdout and "Every kata is complete" in proc.stdout


def test_progress_on_fresh_stubs_shows_the_next_exercise_and_its_docstring(project):
    proc = dojo(project)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Next: 01_double.py → double" in out and "Return a new tensor, each element of `x` times two" in out
    assert "dojo test 01 double" in out and "dojo hint 01 double" in out
    again = dojo(project)
    assert "nothing changed" in again.stdout, "a second run reads the cache"


def test_hint_follows_kata_impl_and_names_the_exercise_in_its_follow_up(project):
    done = dojo(project, "hint", "01", env={"KATA_IMPL": "solutions"})
    assert "Kata 01 is complete" in done.stdout, done.stdout + done.stderr
    first = dojo(project, "hint", "01")
    assert "Hint 1/2 for 01_double.double" in first.stdout
    assert "run `dojo hint 01 double` again for a stronger hint" in first.stdout
    assert "Hint 2/2" in dojo(project, "hint", "01").stdout


def test_dojo_test_runs_one_kata_or_one_exercise(project):
    proc = dojo(project, "test", "01", "Counter", "--impl", "solutions")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed, 3 deselected" in proc.stdout
    proc = dojo(project, "test", "02", env={"KATA_IMPL": "solutions"})
    assert "2 passed" in proc.stdout
    assert dojo(project, "test", "01", "nothing").returncode != 0


def test_a_bad_impl_is_one_line_for_every_command(project):
    for args in (("--impl", "nowhere"), ("--impl", "nowhere", "watch"), ("--impl", "nowhere", "hint", "01")):
        proc = dojo(project, *args)
        text = (proc.stdout + proc.stderr).strip()
        assert proc.returncode != 0 and "Traceback" not in text and "no such folder" in text, (args, text)


def test_reset_needs_confirmation_without_a_terminal(project):
    path = project / "katas" / "01_double.py"
    path.write_text("mine\n")
    proc = dojo(project, "reset", "01")
    assert proc.returncode != 0 and "pass --yes" in proc.stderr
    assert dojo(project, "reset", "01", "--yes").returncode == 0 and path.read_text() != "mine\n"


def test_doctor_reports_the_setup_and_exits_zero(project):
    proc = dojo(project, "doctor")
    assert proc.returncode == 0, proc.stderr
    for topic in (
        "python",
        "torch",
        "torchvision",
        "cuda",
        "device tests",
        "DataLoader workers",
        "threads",
        "dojo watch",
    ):
        assert topic in proc.stdout, topic


def test_build_check_says_when_stubs_drift(project):
    assert dojo(project, "build", "--check").returncode == 0
    solution = project / "solutions" / "02_halve.py"
    solution.write_text(solution.read_text().replace('"""Return every', '"""Return all'))
    proc = dojo(project, "build", "--check")
    assert proc.returncode == 1 and "out of date: katas/02_halve.py" in proc.stdout
