"""The suite as a learner and an instructor meet it, run end to end in subprocesses:
a broken kata fails only its own tests, a bad --impl is a one-line usage error, stubs read as
"not done yet", and `dojo grade` scores folders and writes CSV."""

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dojo.project import find_root, load_katas

ROOT = find_root(Path(__file__).parent)
KATAS = load_katas(ROOT)
FIRST, SECOND, LAST = KATAS[0], KATAS[1], KATAS[-1]
# Two katas are enough to show that a broken one does not take the other down (and keep this fast).
TWO = f"{FIRST.marker} or {SECOND.marker}"


def pytest_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--no-header", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


@pytest.fixture
def submission(tmp_path):
    """A learner's folder: a copy of the solutions, to break on purpose."""
    folder = tmp_path / "alice"
    shutil.copytree(ROOT / "solutions", folder)
    return folder


def test_a_syntax_error_fails_only_that_katas_tests_with_one_line(submission):
    path = submission / FIRST.filename
    lines = path.read_text().splitlines()
    lines[10] = "def broken(:"
    path.write_text("\n".join(lines))
    proc = pytest_run(f"--impl={submission}", "-rf", "-m", TWO)
    out = proc.stdout
    assert proc.returncode == 1, out
    assert "error" not in out.splitlines()[-1], f"collection or setup errors: {out[-400:]}"
    assert f"{FIRST.filename}, line 11: SyntaxError" in out
    failed = [l for l in out.splitlines() if l.startswith("FAILED")]
    assert failed and all(FIRST.stem in l for l in failed), failed
    assert "Traceback" not in out
    assert " passed" in out.splitlines()[-1], "the other kata's tests should still run and pass"


def test_a_missing_kata_file_fails_only_its_tests(submission):
    last = LAST
    (submission / last.filename).unlink()
    proc = pytest_run(f"--impl={submission}", "-rf", "-m", f"{FIRST.marker} or {last.marker}")
    assert proc.returncode == 1
    assert f"{last.filename} does not exist" in proc.stdout
    failed = [l for l in proc.stdout.splitlines() if l.startswith("FAILED")]
    assert failed and all(last.stem in l for l in failed), failed


@pytest.mark.parametrize("impl", ["no/such/folder", "tests"], ids=["missing_folder", "folder_without_katas"])
def test_a_bad_impl_is_a_one_line_usage_error(impl):
    proc = pytest_run(f"--impl={impl}")
    assert proc.returncode == 4
    assert proc.stderr.strip().startswith("ERROR: --impl=") and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_stubs_read_as_todo_and_end_with_the_progress_summary():
    proc = pytest_run("--impl=katas", "-m", FIRST.marker)
    assert proc.returncode == 1
    last = proc.stdout.strip().splitlines()[-1]
    assert "todo" in last and "passed" not in last and "failed" not in last, last
    assert "kata progress (katas)" in proc.stdout
    assert f"Next up: {FIRST.stem}.{FIRST.exercises[0].name}" in proc.stdout
    assert f"dojo hint {FIRST.id}" in proc.stdout
    assert "Traceback" not in proc.stdout and "NotImplementedError" not in proc.stdout


def test_grade_scores_each_folder_and_writes_csv(submission, tmp_path):
    empty = tmp_path / "bob"
    empty.mkdir()
    shutil.copy(ROOT / "katas" / FIRST.filename, empty / FIRST.filename)
    out_csv = tmp_path / "grades.csv"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dojo",
            "grade",
            str(submission),
            str(empty),
            "--csv",
            str(out_csv),
            "--katas",
            f"{FIRST.id},{SECOND.id}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = list(csv.DictReader(out_csv.open()))
    alice = {r["kata"]: r for r in rows if r["submission"] == str(submission)}
    bob = {r["kata"]: r for r in rows if r["submission"] == str(empty)}
    assert set(alice) == {FIRST.stem, SECOND.stem}
    assert all(int(r["exercises_done"]) == int(r["exercises_total"]) for r in alice.values())
    assert int(bob[FIRST.stem]["exercises_done"]) == 0 and int(bob[FIRST.stem]["tests_passed"]) == 0
