"""What a test run prints for the learner at its end: a line per kata, then the next exercise
and the commands that help with it."""

from __future__ import annotations

import re
from pathlib import Path

from dojo.progress import Status, TestResult, bar, summarize
from dojo.project import Kata

_SENTENCE_END = re.compile(r"[.;:!?)](?=\s)")


def first_sentences(message: str, limit: int = 300) -> str:
    """The first line of `message`, cut at the end of a sentence when it runs past `limit`
    characters (never in the middle of a word; a line with no sentence end stays whole)."""
    line = message.strip().splitlines()[0] if message.strip() else ""
    if len(line) <= limit:
        return line
    ends = [m.end() for m in _SENTENCE_END.finditer(line) if m.end() <= limit]
    return (line[: ends[-1]] + " ...") if ends else line


def progress_lines(rows, broken: dict[str, str]) -> list[str]:
    lines = []
    for row in rows:
        total = len(row.kata.exercises)
        if row.kata.stem in broken:
            lines.append(f"{row.kata.stem:<24} {bar(0, total)}  0/{total} exercises   the file does not load")
            continue
        nxt = row.next
        status = "complete" if row.complete else (f"next: {nxt.exercise.name}" if nxt else "")
        if nxt and nxt.status is Status.WRONG:
            status += " (a test fails)"
        lines.append(f"{row.kata.stem:<24} {bar(row.done, total)} {row.done:>2}/{total} exercises   {status}")
    return lines


def write_exercise_summary(tr, rows, exercise: str) -> None:
    """After `--exercise NAME`: where that one exercise stands (the kata's others did not run)."""
    for row in rows:
        for ex in row.exercises:
            if ex.exercise.name != exercise:
                continue
            kata = row.kata
            tr.section(f"{kata.stem}.{exercise}", sep="=", bold=True)
            if ex.status is Status.DONE:
                tr.write_line(
                    f"{exercise} is done: all {ex.tests_passed} of its tests pass. `dojo test {kata.id}` runs the kata.",
                    green=True,
                )
            elif ex.status is Status.WRONG:
                tr.write_line(f"{exercise}: a test fails (above). Stuck? `dojo hint {kata.id} {exercise}`", red=True)
            elif ex.status is Status.TODO:
                tr.write_line(
                    f"{exercise} is not done yet: {ex.exercise.summary}. Stuck? `dojo hint {kata.id} {exercise}`"
                )
            else:
                tr.write_line(f"{exercise}: no test could run here ({ex.status.value})")


def write_summary(
    tr,
    label: str,
    results: list[TestResult],
    katas: tuple[Kata, ...],
    broken: dict[str, str],
    exercise: str | None = None,
) -> None:
    """The "kata progress" section at the end of a pytest run (`tr`: the terminal reporter)."""
    from dojo.learner import current

    rows = summarize(results, katas)
    if exercise and not broken:
        write_exercise_summary(tr, rows, exercise)
        return
    tr.section(f"kata progress ({label})", sep="=", bold=True)
    for line in progress_lines(rows, broken):
        tr.write_line(line)
    for error in broken.values():
        tr.write_line(f"  {error}", red=True)
    row = current(rows, Path(tr.config.rootpath), label)
    if row is not None and row.kata.stem in broken:
        tr.write_line("")
        tr.write_line(f"Next up: make {row.kata.filename} load again (the line above)", bold=True)
        tr.write_line(f"  `dojo reset {row.kata.id}` restores a fresh stub; your file is backed up first")
    elif row is not None:
        nxt, kata = row.next, row.kata
        tr.write_line("")
        tr.write_line(f"Next up: {kata.stem}.{nxt.exercise.name} — {nxt.exercise.summary}", bold=True)
        tr.write_line(
            f"  stuck? `dojo hint {kata.id} {nxt.exercise.name}`   only this exercise: "
            f"`dojo test {kata.id} {nxt.exercise.name}`   this kata: `dojo test {kata.id}`"
        )
    elif rows and not broken:
        tr.write_line("Every kata in this run is complete.", green=True)
