"""Fixtures of the machinery's own tests: a copy of the fixture project (a two-exercise kata with
its own stub, solution, tests, decoys and lesson) to run pytest and dojo on."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "fixture"
collect_ignore = ["fixture"]  # a project of its own, run by the tests below, not collected with them


@pytest.fixture
def project(pytester: pytest.Pytester) -> Path:
    """The fixture project, copied into pytester's folder (its rootdir for in-process runs)."""
    shutil.copytree(FIXTURE, pytester.path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    return pytester.path


@pytest.fixture
def submission(project: Path) -> Path:
    """A learner's folder, a copy of the fixture's solutions, to break on purpose."""
    folder = project / "alice"
    shutil.copytree(project / "solutions", folder)
    return folder
