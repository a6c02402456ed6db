"""Turn per-test outcomes into per-exercise and per-kata progress.

The test run records one `TestResult` per test, whose `Outcome` is passed, todo (the stub's
NotImplementedError), failed (a wrong answer, or a kata file that does not load) or skipped. An
exercise's `Status` is done when none of its tests failed or is todo and at least one passed; a
kata's next exercise is its first one not done.

A run's report file (`--kata-report`) is JSON lines: a header with what ran where, then one
line per test, written as each test ends, so a run that is killed half-way (a time limit in
`dojo grade`) still tells what it got through.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

from dojo.project import Exercise, Kata


class Outcome(str, Enum):
    """What happened to one test."""

    PASSED = "passed"
    TODO = "todo"  # it reached an unfilled stub
    FAILED = "failed"  # a wrong answer, or a kata file that does not load
    SKIPPED = "skipped"


class Status(str, Enum):
    """Where one exercise stands."""

    DONE = "done"
    TODO = "todo"
    WRONG = "wrong"
    SKIPPED = "skipped"  # every test of it needs a device this machine lacks
    NOT_RUN = "not run"


@dataclass(frozen=True)
class TestResult:
    __test__ = False  # not a pytest test class, whatever its name says

    nodeid: str
    stem: str
    exercise: str
    outcome: Outcome
    message: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "outcome", Outcome(self.outcome))


@dataclass
class ExerciseProgress:
    exercise: Exercise
    results: list[TestResult] = field(default_factory=list)

    @property
    def status(self) -> Status:
        kinds = {r.outcome for r in self.results}
        if not kinds:
            return Status.NOT_RUN
        if Outcome.FAILED in kinds:
            return Status.WRONG
        if Outcome.TODO in kinds:
            return Status.TODO
        return Status.DONE if Outcome.PASSED in kinds else Status.SKIPPED

    @property
    def first_message(self) -> str:
        return next((r.message for r in self.results if r.outcome is Outcome.FAILED and r.message), "")

    @property
    def tests_passed(self) -> int:
        return sum(r.outcome is Outcome.PASSED for r in self.results)

    @property
    def tests_run(self) -> int:
        return sum(r.outcome is not Outcome.SKIPPED for r in self.results)


@dataclass
class KataProgress:
    kata: Kata
    exercises: list[ExerciseProgress]

    @property
    def done(self) -> int:
        return sum(e.status is Status.DONE for e in self.exercises)

    @property
    def counted(self) -> int:
        """Exercises that had a test that could run here (not only skipped ones)."""
        return sum(e.status not in (Status.SKIPPED, Status.NOT_RUN) for e in self.exercises)

    @property
    def tests_passed(self) -> int:
        return sum(e.tests_passed for e in self.exercises)

    @property
    def tests_run(self) -> int:
        return sum(e.tests_run for e in self.exercises)

    @property
    def next(self) -> ExerciseProgress | None:
        """The first exercise that is not done: the one to work on."""
        return next((e for e in self.exercises if e.status in (Status.WRONG, Status.TODO)), None)

    @property
    def complete(self) -> bool:
        return self.counted > 0 and self.next is None


def summarize(results: list[TestResult], katas: tuple[Kata, ...]) -> list[KataProgress]:
    """Progress for each kata that has at least one result, in learning order."""
    by_key: dict[tuple[str, str], list[TestResult]] = defaultdict(list)
    for r in results:
        by_key[(r.stem, r.exercise)].append(r)
    stems = {r.stem for r in results}
    return [
        KataProgress(kata, [ExerciseProgress(ex, by_key.get((kata.stem, ex.name), [])) for ex in kata.exercises])
        for kata in katas
        if kata.stem in stems
    ]


class ReportWriter:
    """Writes a run's report as it goes: a header line, then one line per test."""

    def __init__(self, path: Path, header: dict) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w")
        self._write({"header": header})

    def _write(self, data: dict) -> None:
        self._file.write(json.dumps(data) + "\n")
        self._file.flush()

    def add(self, result: TestResult) -> None:
        self._write({**asdict(result), "outcome": result.outcome.value})

    def close(self) -> None:
        self._file.close()


def read_report(path: Path) -> tuple[dict, list[TestResult]]:
    """(header, results) of a report file; a last line cut off mid-write is ignored."""
    header: dict = {}
    results = []
    for line in Path(path).read_text().splitlines():
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "header" in data:
            header = data["header"]
        else:
            results.append(TestResult(**data))
    return header, results


def bar(done: int, total: int, width: int = 10) -> str:
    filled = round(width * done / total) if total else 0
    return "█" * filled + "░" * (width - filled)
