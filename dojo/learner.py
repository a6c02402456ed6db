"""The learner's commands: `dojo` (progress), `dojo test`, `dojo watch`, `dojo hint`, `dojo reset`.

The logic a learner relies on is kept in small functions without output, so it can be tested
without running a suite: which kata is the current one (`current`), which hint comes next
(`next_hint`), what a reset does (`reset_kata`), which kata a save belongs to (`changed_kata`).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dojo.progress import KataProgress, Status, bar, summarize
from dojo.project import (
    NAMED_IMPLS,
    ImplError,
    Kata,
    find_kata,
    impl_label,
    impl_value,
    kata_by_key,
    load_katas,
    resolve_impl,
)
from dojo.stubs import make_stub

STATE_DIR = ".dojo"


# ---------------------------------------------------------------- which kata, which hint


def fresh_stub(root: Path, kata: Kata) -> str | None:
    solution = root / "solutions" / kata.filename
    if not solution.is_file():
        return None
    return make_stub(solution.read_text(), kata.stem, str(solution), {e.name: e.summary for e in kata.exercises})


def edited(root: Path, folder: Path, kata: Kata) -> bool:
    """Whether the learner has touched this kata: its file exists and is no longer a fresh stub."""
    path = folder / kata.filename
    if not path.is_file():
        return False
    try:
        return path.read_text() != fresh_stub(root, kata)
    except (OSError, SyntaxError, ValueError):
        return True


def folder_of(root: Path, label: str) -> Path:
    return (root / label) if label in NAMED_IMPLS else Path(label)


def current(rows: list[KataProgress], root: Path, label: str) -> KataProgress | None:
    """The kata to work on now: of the katas not complete, the one whose file was edited most
    recently; if none was edited yet, the first in learning order. (A learner on kata 12 should
    not be sent back to kata 01 because they skipped an exercise there.)"""
    pending = [r for r in rows if r.next is not None]
    if not pending:
        return None
    folder = folder_of(root, label)
    touched = [r for r in pending if edited(root, folder, r.kata)]
    if not touched:
        return pending[0]
    return max(touched, key=lambda r: (folder / r.kata.filename).stat().st_mtime)


@dataclass(frozen=True)
class Hint:
    number: int  # 1-based
    total: int
    text: str

    @property
    def last(self) -> bool:
        return self.number == self.total


def next_hint(shown: int, hints: tuple[str, ...]) -> Hint | None:
    """The hint after `shown` hints were seen: a nudge first, nearly the answer last; the last
    one again once all were seen. None when the exercise has no hints."""
    if not hints:
        return None
    index = min(shown, len(hints) - 1)
    return Hint(index + 1, len(hints), hints[index])


def changed_kata(before: dict[Path, float], after: dict[Path, float], katas: tuple[Kata, ...]) -> Kata | None:
    """The kata whose file changed between two snapshots of modification times (the newest change)."""
    changed = [p for p, t in after.items() if before.get(p) != t]
    changed.sort(key=lambda p: after[p], reverse=True)
    for path in changed:
        kata = find_kata(katas, path.stem)
        if kata is not None and kata.filename == path.name:
            return kata
    return None


def docstring_of(root: Path, kata: Kata, name: str) -> str:
    """The exercise's docstring, read from the solution file (stubs carry the same text)."""
    tree = ast.parse((root / "solutions" / kata.filename).read_text())
    node = next((n for n in tree.body if getattr(n, "name", None) == name), None)
    return (ast.get_docstring(node) if node else None) or ""


# ---------------------------------------------------------------- state: hints and backups


class HintState:
    """How many hints of each exercise the learner has seen, in .dojo/hints.json."""

    def __init__(self, root: Path) -> None:
        self.path = root / STATE_DIR / "hints.json"
        self.counts: dict[str, int] = json.loads(self.path.read_text()) if self.path.exists() else {}

    def shown(self, key: str) -> int:
        return self.counts.get(key, 0)

    def record(self, key: str, number: int) -> None:
        self.counts[key] = number
        self._save()

    def forget_kata(self, stem: str) -> None:
        self.counts = {k: v for k, v in self.counts.items() if not k.startswith(stem + ".")}
        self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(exist_ok=True)
        self.path.write_text(json.dumps(self.counts, indent=1, sort_keys=True))


def backup(root: Path, path: Path) -> Path | None:
    """Copy `path` into .dojo/backup/ with a time stamp; None if there is nothing to keep."""
    if not path.exists():
        return None
    folder = root / STATE_DIR / "backup"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{path.stem}.{datetime.now():%Y%m%d-%H%M%S-%f}.py"
    shutil.copy2(path, target)
    return target


def reset_kata(root: Path, kata: Kata) -> tuple[bool, Path | None]:
    """Make katas/<stem>.py a fresh stub again, backing the learner's file up first and forgetting
    the kata's hints. Returns (changed, backup path)."""
    target = root / "katas" / kata.filename
    stub = fresh_stub(root, kata)
    if target.exists() and target.read_text() == stub:
        return False, None
    saved = backup(root, target)
    target.write_text(stub)
    HintState(root).forget_kata(kata.stem)
    return True, saved


# ---------------------------------------------------------------- commands


def _console():
    from rich.console import Console

    return Console(highlight=False)


def _style(status: Status) -> str:
    return {Status.DONE: "green", Status.WRONG: "red", Status.TODO: "yellow"}.get(status, "dim")


def progress_table(rows: list[KataProgress], title: str):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in ("kata", "topic", "progress", "done", "next exercise"):
        table.add_column(col, no_wrap=True)
    for row in rows:
        total = len(row.kata.exercises)
        nxt = row.next
        if row.complete:
            nxt_text = "[green]complete[/]"
        elif nxt:
            nxt_text = f"[{_style(nxt.status)}]{nxt.exercise.name}[/]" + (
                " [red](a test fails)[/]" if nxt.status is Status.WRONG else ""
            )
        else:
            nxt_text = "[dim]no test could run here[/]"
        table.add_row(row.kata.id, row.kata.topic, bar(row.done, total), f"{row.done}/{total}", nxt_text)
    return table


def cmd_progress(root: Path, args: argparse.Namespace) -> int:
    from rich.markup import escape

    from dojo.cache import cached_results

    console = _console()
    katas = load_katas(root)
    try:
        folder = resolve_impl(root, args.impl)
    except ImplError as err:
        console.print(f"dojo: {escape(str(err))}")
        return 2
    label = impl_label(root, folder)
    outcome = cached_results(root, folder, katas)
    if outcome.usage_error:
        console.print(escape(outcome.output.strip()))
        return 2
    rows = summarize(outcome.results, katas)
    fresh = f", {len(outcome.ran)} re-run" if outcome.ran else ", nothing changed"
    console.print(progress_table(rows, f"torch-katas progress ({label}{fresh})"))
    row = current(rows, root, label)
    if row is None:
        console.print("\n[green bold]Every kata is complete.[/] `dojo grade` and the notebooks are next.")
        return 0
    ex, kata = row.next, row.kata
    console.print(
        f"\n[bold]Next: {kata.stem}.py → {ex.exercise.name}[/]  (exercise {ex.exercise.number} of "
        f"{len(kata.exercises)}; {escape(kata.title)}: {escape(kata.concept)})"
    )
    if ex.status is Status.WRONG and ex.first_message:
        console.print(f"[red]A test fails:[/] {escape(ex.first_message)}")
    console.print(escape(docstring_of(root, kata, ex.exercise.name)), style="cyan", soft_wrap=True)
    shown = label if label not in NAMED_IMPLS else label
    console.print(
        f"\nEdit [bold]{escape(shown)}/{kata.filename}[/], then `dojo test {kata.id} {ex.exercise.name}` "
        f"(this exercise), `dojo test {kata.id}` (the kata) or `dojo watch {kata.id}` (re-runs on save); "
        f"`dojo hint {kata.id} {ex.exercise.name}` when stuck."
    )
    return 0


def test_arguments(root: Path, kata: Kata, exercise: str | None, impl: str | None, extra: list[str]) -> list[str]:
    args = [str(root / kata.test_file)]
    if impl:
        args.append(f"--impl={impl}")
    if exercise:
        args.append(f"--exercise={exercise}")
    return args + list(extra)


def cmd_test(root: Path, args: argparse.Namespace) -> int:
    """Run one kata's tests (or one exercise's) in this process: one torch import, no subprocess."""
    kata = kata_by_key(root, args.kata)
    if args.exercise and kata.exercise(args.exercise) is None:
        raise SystemExit(
            f"dojo: kata {kata.id} has no exercise {args.exercise!r}; it has {', '.join(e.name for e in kata.exercises)}"
        )
    import pytest

    os.chdir(root)
    from dojo.runner import LEAN

    return int(pytest.main([*LEAN, *test_arguments(root, kata, args.exercise, args.impl, args.pytest_args)]))


def cmd_hint(root: Path, args: argparse.Namespace) -> int:
    from rich.markup import escape

    from dojo.cache import cached_results

    console = _console()
    kata = kata_by_key(root, args.kata)
    if args.exercise:
        ex = kata.exercise(args.exercise)
        if ex is None:
            raise SystemExit(
                f"dojo: kata {kata.id} has no exercise {args.exercise!r}; it has {', '.join(e.name for e in kata.exercises)}"
            )
    else:
        try:
            folder = resolve_impl(root, args.impl)
        except ImplError as err:
            raise SystemExit(f"dojo: {err}") from None
        outcome = cached_results(root, folder, (kata,))
        rows = summarize(outcome.results, (kata,))
        nxt = rows[0].next if rows else None
        if nxt is None:
            console.print(
                f"[green]Kata {kata.id} is complete[/]: no hint needed. "
                f"(`dojo hint {kata.id} EXERCISE` shows one anyway.)"
            )
            return 0
        ex = nxt.exercise
    key = f"{kata.stem}.{ex.name}"
    state = HintState(root)
    hint = next_hint(state.shown(key), ex.hints)
    if hint is None:
        console.print(f"No hints are written for {key} yet; its docstring is all there is.")
        return 0
    console.print(f"[bold]Hint {hint.number}/{hint.total} for {key}[/]")
    console.print(escape(hint.text), style="cyan")
    if not hint.last:
        console.print(f"[dim](run `dojo hint {kata.id} {ex.name}` again for a stronger hint)[/]")
    else:
        console.print(f"[dim](that was the last hint; notebooks/{kata.stem}.ipynb walks through the concept)[/]")
    state.record(key, hint.number)
    return 0


def cmd_reset(root: Path, args: argparse.Namespace) -> int:
    console = _console()
    kata = kata_by_key(root, args.kata)
    target = root / "katas" / kata.filename
    if target.exists() and target.read_text() == fresh_stub(root, kata):
        console.print(f"katas/{kata.filename} is already a fresh stub; nothing to do.")
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise SystemExit(f"dojo: reset would replace katas/{kata.filename}; pass --yes to confirm")
        answer = input(f"Replace katas/{kata.filename} with a fresh stub (your file is backed up first)? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            console.print("Nothing changed.")
            return 1
    _, saved = reset_kata(root, kata)
    console.print(
        f"katas/{kata.filename} is a fresh stub again."
        + (f" Your version is in {saved.relative_to(root)}." if saved else "")
    )
    return 0


def _mtimes(folder: Path) -> dict[Path, float]:
    return {p: p.stat().st_mtime for p in folder.glob("[0-9][0-9]_*.py")}


def cmd_watch(root: Path, args: argparse.Namespace) -> int:
    """Re-run a kata's tests whenever a kata file is saved: the kata of the file that changed
    (or always the kata given on the command line)."""
    from dojo.cache import cached_results
    from dojo.runner import run_tests

    console = _console()
    impl = impl_value(args.impl)
    try:
        folder = resolve_impl(root, impl)
    except ImplError as err:
        raise SystemExit(f"dojo: {err}") from None
    katas = load_katas(root)
    pinned = kata_by_key(root, args.kata) if args.kata else None
    kata = pinned
    if kata is None:
        rows = summarize(cached_results(root, folder, katas).results, katas)
        row = current(rows, root, impl_label(root, folder))
        if row is None:
            console.print("[green]Every kata is complete.[/] Nothing to watch.")
            return 0
        kata = row.kata
    which = f"kata {kata.id}" if pinned else f"kata {kata.id} now, then the kata of whichever file you save"
    console.print(f"Watching {folder}/ ({which}). Save a file to re-run; Ctrl-C to stop.")
    seen = _mtimes(folder)
    first = True
    try:
        while True:
            now = _mtimes(folder)
            if first or now != seen:
                if not first and pinned is None:
                    kata = changed_kata(seen, now, katas) or kata
                seen, first = now, False
                console.clear()
                console.rule(f"kata {kata.id}: {kata.title}   ({datetime.now():%H:%M:%S})")
                run = run_tests(root, folder, kata.test_file, "-q", "--no-header", capture=False)
                rows = summarize(run.results, (kata,))
                if rows and rows[0].complete:
                    console.print(f"\n[green bold]Kata {kata.id} is complete.[/] Open the next kata's file to go on.")
                console.print(f"\n[dim]watching {folder.name}/ for changes (Ctrl-C to stop)[/]")
            time.sleep(args.interval)
    except KeyboardInterrupt:
        console.print("\nStopped watching.")
        return 0


def add_arguments(sub) -> None:
    p = sub.add_parser("progress", help="progress table and the next exercise (the default)")
    p.add_argument("--impl", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p = sub.add_parser("test", help="run one kata's tests, or one exercise's: dojo test 05 [clamp_in_place]")
    p.add_argument("kata", help="kata number or name, e.g. 05")
    p.add_argument("exercise", nargs="?", help="only this exercise's tests")
    p.add_argument("--impl", default=argparse.SUPPRESS, help="folder to test (default katas; env KATA_IMPL)")
    p.add_argument("pytest_args", nargs="*", metavar="-- PYTEST_ARGS", help="after --: more pytest arguments")
    p = sub.add_parser("watch", help="re-run a kata's tests whenever you save a kata file")
    p.add_argument("kata", nargs="?", help="kata to watch (default: the kata of the file you save)")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between checks for changes")
    p = sub.add_parser("hint", help="the next hint for an exercise: a nudge first, near the answer last")
    p.add_argument("kata", help="kata number or name, e.g. 01")
    p.add_argument("exercise", nargs="?", help="exercise name (default: the kata's first one not done)")
    p = sub.add_parser("reset", help="restore a kata's stub (your file is backed up in .dojo/backup/)")
    p.add_argument("kata")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")


COMMANDS = {"progress": cmd_progress, "test": cmd_test, "watch": cmd_watch, "hint": cmd_hint, "reset": cmd_reset}
