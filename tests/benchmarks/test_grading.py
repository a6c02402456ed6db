"""How long `dojo grade` takes per submission: 12 generated submissions of mixed quality (complete,
fresh stubs, half done, wrong answers taken from the decoy files, a file that does not load, a
flagged one), graded together with one child process per CPU, as an instructor would run it.

    pytest tests/benchmarks/test_grading.py --benchmark-only

One round (grading a class is not a microbenchmark); the figure is the wall time divided by the
number of submissions, with the configuration beside it in `extra_info`.
"""

from __future__ import annotations

import os
import platform
import shutil

import pytest
import torch

from dojo.grading import Limits, _score, grade
from dojo.project import find_root, load_katas
from dojo.stubs import build_all
from dojo.variants import DECOY, apply_variant, read_variants

ROOT = find_root()
SUBMISSIONS = 12


def make_class(folder) -> list[str]:
    """12 submission folders: 3 complete, 3 fresh stubs, 3 half done, 2 with decoys, 1 broken and flagged."""
    katas = load_katas(ROOT)
    stubs = build_all(ROOT / "solutions", folder / "stubs-src")
    paths = []
    for i in range(SUBMISSIONS):
        sub = folder / f"learner{i:02d}"
        sub.mkdir(parents=True)
        for n, kata in enumerate(katas):
            solution = (ROOT / "solutions" / kata.filename).read_text()
            stub = stubs[folder / "stubs-src" / kata.filename]
            text = solution
            if 3 <= i < 6 or (6 <= i < 9 and n >= len(katas) // 2):
                text = stub
            elif 9 <= i < 11 and (ROOT / kata.decoy_file).is_file():
                decoys = [
                    v for v in read_variants(ROOT / kata.decoy_file, kata.stem) if v.kind == DECOY and not v.needs
                ]
                if decoys:
                    text = apply_variant(solution, decoys[(i + n) % len(decoys)])
            elif i == 11 and n == 0:
                text = solution.replace("def ", "def (", 1)  # a syntax error
            elif i == 11 and n == 1:
                text = "import pytest\n" + solution
            (sub / kata.filename).write_text(text)
        paths.append(str(sub))
    shutil.rmtree(folder / "stubs-src", ignore_errors=True)
    return paths


@pytest.mark.benchmark
def test_grade_a_class_of_twelve(benchmark, tmp_path):
    paths = make_class(tmp_path)
    katas = load_katas(ROOT)
    jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    graded = benchmark.pedantic(grade, args=(ROOT, paths, katas, jobs, Limits(600, 8)), rounds=1, iterations=1)
    assert len(graded) == SUBMISSIONS and not any(g.error for g in graded)
    assert not any(g.problem for g in graded), [g.problem for g in graded if g.problem]
    for g in graded[:3]:  # the complete ones: every exercise of every kata done, child processes included
        missing = [k.stem for k in katas if _score(g, k)[0] != len(k.exercises)]
        assert not missing, f"{g.name}, a copy of the solutions, did not score full marks on {missing}"
    seconds = benchmark.stats.stats.median
    benchmark.extra_info.update(
        {
            "submissions": SUBMISSIONS,
            "seconds_per_submission": seconds / SUBMISSIONS,
            "jobs": jobs,
            "cpu_count": os.cpu_count(),
            "katas": len(katas),
            "torch": torch.__version__,
            "python": platform.python_version(),
        }
    )
    print(
        f"\ngrading {SUBMISSIONS} submissions x {len(katas)} katas, {jobs} at a time, torch {torch.__version__}: "
        f"{seconds:.1f} s, {seconds / SUBMISSIONS:.1f} s per submission"
    )
