"""Turn per-test outcomes into per-exercise and per-kata progress.

The test run records one outcome per test: passed, todo (the stub's NotImplementedError),
failed (a wrong answer, or a kata file that does not load) or skipped. An exercise is done when
none of its tests failed or is todo and at least one passed; a kata's next exercise is its first
one not done.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from dojo.project import Exercise, Kata

DONE, TODO, WRONG, SKIPPED, NOT_RUN = "done", "todo", "wrong", "skipped", "not run"


@dataclass(frozen=True)
class Outcome:
    nodeid: str
    stem: str
    exercise: str
    outcome: str  # passed | todo | failed | skipped
    message: str = ""


@dataclass
class ExerciseProgress:
    exercise: Exercise
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def status(self) -> str:
        kinds = {o.outcome for o in self.outcomes}
        if not kinds:
            return NOT_RUN
        if "failed" in kinds:
            return WRONG
        if "todo" in kinds:
            return TODO
        return DONE if "passed" in kinds else SKIPPED

    @property
    def first_message(self) -> str:
        return next((o.message for o in self.outcomes if o.outcome == "failed" and o.message), "")


@dataclass
class KataProgress:
    kata: Kata
    exercises: list[ExerciseProgress]

    @property
    def done(self) -> int:
        return sum(e.status == DONE for e in self.exercises)

    @property
    def counted(self) -> int:
        """Exercises that had a test that could run here (not only skipped ones)."""
        return sum(e.status not in (SKIPPED, NOT_RUN) for e in self.exercises)

    @property
    def tests_passed(self) -> int:
        return sum(o.outcome == "passed" for e in self.exercises for o in e.outcomes)

    @property
    def tests_run(self) -> int:
        return sum(o.outcome != "skipped" for e in self.exercises for o in e.outcomes)

    @property
    def next(self) -> ExerciseProgress | None:
        return next((e for e in self.exercises if e.status in (WRONG, TODO)), None)

    @property
    def complete(self) -> bool:
        return self.counted > 0 and self.next is None


def summarize(outcomes: list[Outcome], katas: tuple[Kata, ...]) -> list[KataProgress]:
    """Progress for each kata that has at least one outcome, in learning order."""
    by_key: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_key[(o.stem, o.exercise)].append(o)
    stems = {o.stem for o in outcomes}
    return [
        KataProgress(kata, [ExerciseProgress(ex, by_key.get((kata.stem, ex.name), [])) for ex in kata.exercises])
        for kata in katas
        if kata.stem in stems
    ]


def write_report(path: Path, impl: str, outcomes: list[Outcome]) -> None:
    data = {"impl": impl, "outcomes": [o.__dict__ for o in outcomes]}
    path.write_text(json.dumps(data, indent=1))


def read_report(path: Path) -> list[Outcome]:
    return [Outcome(**o) for o in json.loads(path.read_text())["outcomes"]]


def bar(done: int, total: int, width: int = 10) -> str:
    filled = round(width * done / total) if total else 0
    return "█" * filled + "░" * (width - filled)
