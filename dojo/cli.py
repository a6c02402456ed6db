"""`dojo`: progress, hints, watch mode and stub resets for learners; build, check and grade for
instructors. Run `dojo --help` for the commands."""

from __future__ import annotations

import argparse
import ast
import csv
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dojo import progress
from dojo.project import ImplError, Kata, find_root, kata_by_key, load_katas, resolve_impl
from dojo.runner import run_tests, start_tests
from dojo.stubs import MarkerError, build_all, find_blocks, leaked_lines, make_stub

console = Console(highlight=False)
STATE_DIR = ".dojo"


# ---------------------------------------------------------------- learner commands


def _docstring(root: Path, kata: Kata, name: str) -> str:
    """The exercise's docstring, read from the solution file (stubs carry the same text)."""
    tree = ast.parse((root / "solutions" / kata.filename).read_text())
    node = next((n for n in tree.body if getattr(n, "name", None) == name), None)
    return (ast.get_docstring(node) if node else None) or ""


def _status_style(status: str) -> str:
    return {progress.DONE: "green", progress.WRONG: "red", progress.TODO: "yellow"}.get(status, "dim")


def _progress_table(rows: list[progress.KataProgress], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("kata", "topic", "progress", "done", "next exercise"):
        table.add_column(col, no_wrap=True)
    for row in rows:
        total = len(row.kata.exercises)
        nxt = row.next
        if row.complete:
            nxt_text = "[green]complete[/]"
        elif nxt:
            nxt_text = f"[{_status_style(nxt.status)}]{nxt.exercise.name}[/]" + (
                " [red](a test fails)[/]" if nxt.status == progress.WRONG else ""
            )
        else:
            nxt_text = "[dim]no test could run here[/]"
        table.add_row(row.kata.id, row.kata.stem.split("_", 1)[1], progress.bar(row.done, total), f"{row.done}/{total}", nxt_text)
    return table


def cmd_progress(root: Path, args: argparse.Namespace) -> int:
    katas = load_katas(root)
    with console.status("running the kata tests..."):
        run = run_tests(root, args.impl or "katas", "--tb=no")
    if run.usage_error:
        console.print(run.output.strip())
        return 2
    rows = progress.summarize(run.outcomes, katas)
    console.print(_progress_table(rows, f"torch-katas progress ({args.impl or 'katas'})"))
    first = next((r for r in rows if r.next), None)
    if first is None:
        console.print("\n[green bold]Every kata is complete.[/] `dojo grade` and the notebooks are next.")
        return 0
    ex = first.next
    console.print(f"\n[bold]Next: {first.kata.stem}.py → {ex.exercise.name}[/]  (exercise {ex.exercise.number} of {len(first.kata.exercises)})")
    if ex.status == progress.WRONG and ex.first_message:
        console.print(f"[red]A test fails:[/] {escape(ex.first_message)}")
    console.print(escape(_docstring(root, first.kata, ex.exercise.name)), style="cyan", soft_wrap=True)
    folder = "katas" if not args.impl or args.impl == "katas" else args.impl.rstrip("/")
    console.print(
        f"\nEdit [bold]{escape(folder)}/{first.kata.filename}[/], then: `dojo watch` (re-runs on save), "
        f"`dojo hint {first.kata.id}` when stuck, `pytest -m {first.kata.marker}` for the full test output."
    )
    return 0


def _state_file(root: Path) -> Path:
    return root / STATE_DIR / "hints.json"


def _hint_state(root: Path) -> dict[str, int]:
    path = _state_file(root)
    return json.loads(path.read_text()) if path.exists() else {}


def _save_hint_state(root: Path, state: dict[str, int]) -> None:
    path = _state_file(root)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(state, indent=1, sort_keys=True))


def cmd_hint(root: Path, args: argparse.Namespace) -> int:
    kata = kata_by_key(root, args.kata)
    if args.exercise:
        ex = kata.exercise(args.exercise)
        if ex is None:
            raise SystemExit(f"dojo: kata {kata.id} has no exercise {args.exercise!r}; it has {', '.join(e.name for e in kata.exercises)}")
    else:
        with console.status(f"finding your next exercise in kata {kata.id}..."):
            run = run_tests(root, args.impl or "katas", kata.test_file, "--tb=no")
        rows = progress.summarize(run.outcomes, (kata,))
        nxt = rows[0].next if rows else None
        if nxt is None:
            console.print(f"[green]Kata {kata.id} is complete[/]: no hint needed. (`dojo hint {kata.id} EXERCISE` shows one anyway.)")
            return 0
        ex = nxt.exercise
    key = f"{kata.stem}.{ex.name}"
    state = _hint_state(root)
    shown = state.get(key, 0)
    if not ex.hints:
        console.print(f"No hints are written for {key} yet; its docstring is all there is.")
        return 0
    index = min(shown, len(ex.hints) - 1)
    console.print(f"[bold]Hint {index + 1}/{len(ex.hints)} for {key}[/]")
    console.print(escape(ex.hints[index]), style="cyan")
    if index + 1 < len(ex.hints):
        console.print(f"[dim](run `dojo hint {kata.id}` again for a stronger hint)[/]")
    else:
        console.print(f"[dim](that was the last hint; notebooks/{kata.stem}.ipynb walks through the concept)[/]")
    state[key] = index + 1
    _save_hint_state(root, state)
    return 0


def _backup(root: Path, path: Path) -> Path | None:
    if not path.exists():
        return None
    folder = root / STATE_DIR / "backup"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{path.stem}.{datetime.now():%Y%m%d-%H%M%S}.py"
    shutil.copy2(path, target)
    return target


def cmd_reset(root: Path, args: argparse.Namespace) -> int:
    kata = kata_by_key(root, args.kata)
    target = root / "katas" / kata.filename
    stub = make_stub((root / "solutions" / kata.filename).read_text(), kata.stem)
    if target.exists() and target.read_text() == stub:
        console.print(f"katas/{kata.filename} is already a fresh stub; nothing to do.")
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise SystemExit(f"dojo: reset would replace katas/{kata.filename}; pass --yes to confirm")
        answer = input(f"Replace katas/{kata.filename} with a fresh stub (your file is backed up first)? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            console.print("Nothing changed.")
            return 1
    saved = _backup(root, target)
    target.write_text(stub)
    state = {k: v for k, v in _hint_state(root).items() if not k.startswith(kata.stem + ".")}
    _save_hint_state(root, state)
    console.print(f"katas/{kata.filename} is a fresh stub again." + (f" Your version is in {saved.relative_to(root)}." if saved else ""))
    return 0


def _mtimes(folder: Path) -> dict[Path, float]:
    return {p: p.stat().st_mtime for p in folder.glob("*.py")}


def _current_kata(root: Path, impl: str) -> Kata | None:
    run = run_tests(root, impl, "--tb=no")
    rows = progress.summarize(run.outcomes, load_katas(root))
    first = next((r for r in rows if r.next), None)
    return first.kata if first else None


def cmd_watch(root: Path, args: argparse.Namespace) -> int:
    impl = args.impl or "katas"
    try:
        folder = resolve_impl(root, impl)
    except ImplError as err:
        raise SystemExit(f"dojo: {err}")
    kata = kata_by_key(root, args.kata) if args.kata else _current_kata(root, impl)
    if kata is None:
        console.print("[green]Every kata is complete.[/] Nothing to watch.")
        return 0
    console.print(f"Watching {folder}/ — kata {kata.id}. Save a file to re-run; Ctrl-C to stop.")
    seen: dict[Path, float] = {}
    try:
        while True:
            now = _mtimes(folder)
            if now != seen:
                seen = now
                console.clear()
                console.rule(f"kata {kata.id}: {kata.title}   ({datetime.now():%H:%M:%S})")
                run = run_tests(root, impl, kata.test_file, "-q", "--no-header", capture=False)
                rows = progress.summarize(run.outcomes, (kata,))
                if not args.kata and rows and rows[0].complete:
                    nxt = _current_kata(root, impl)  # the whole suite, only once this kata is done
                    if nxt is not None and nxt != kata:
                        console.print(f"\n[green bold]Kata {kata.id} is complete.[/] On to kata {nxt.id}: {nxt.title}.")
                        kata = nxt
                console.print(f"\n[dim]watching {folder.name}/ for changes (Ctrl-C to stop)[/]")
            time.sleep(args.interval)
    except KeyboardInterrupt:
        console.print("\nStopped watching.")
        return 0


# ---------------------------------------------------------------- instructor commands


def _drift(root: Path) -> tuple[dict[Path, str], list[Path]]:
    wanted = build_all(root / "solutions", root / "katas")
    differing = [p for p, text in wanted.items() if not p.exists() or p.read_text() != text]
    return wanted, differing


def cmd_build(root: Path, args: argparse.Namespace) -> int:
    try:
        wanted, differing = _drift(root)
    except (MarkerError, SyntaxError) as err:
        raise SystemExit(f"dojo build: {err}")
    if args.check:
        if differing:
            for path in differing:
                console.print(f"[red]out of date:[/] {path.relative_to(root)}")
            console.print("katas/ has drifted from solutions/; run `dojo build` and commit the result.")
            return 1
        console.print(f"katas/ matches solutions/ ({len(wanted)} stubs).")
        return 0
    (root / "katas").mkdir(exist_ok=True)
    for path in differing:
        saved = _backup(root, path)
        path.write_text(wanted[path])
        console.print(f"wrote {path.relative_to(root)}" + (f" (old file in {saved.relative_to(root)})" if saved else ""))
    console.print(f"{len(differing)} stub(s) written, {len(wanted) - len(differing)} already up to date.")
    return 0


def _metadata_problems(root: Path) -> list[str]:
    problems = []
    katas = load_katas(root)
    known = {k.filename for k in katas}
    for path in sorted((root / "solutions").glob("[0-9][0-9]_*.py")):
        if path.name not in known:
            problems.append(f"solutions/{path.name} has no [[kata]] entry in katas.toml")
    for kata in katas:
        sol = root / "solutions" / kata.filename
        if not sol.exists():
            problems.append(f"katas.toml names {kata.stem} but solutions/{kata.filename} does not exist")
            continue
        if not (root / kata.test_file).exists():
            problems.append(f"{kata.stem} has no test file {kata.test_file}")
        source = sol.read_text()
        names = {getattr(n, "name", None) for n in ast.parse(source).body}
        blocks = {b.qualname.split(".")[0] for b in find_blocks(source, str(sol))}
        for ex in kata.exercises:
            if ex.name not in names:
                problems.append(f"{kata.stem}: exercise {ex.name} is not defined in solutions/{kata.filename}")
            elif ex.name not in blocks:
                problems.append(f"{kata.stem}: exercise {ex.name} has no # BEGIN SOLUTION block, so its stub would be the answer")
            if len(ex.hints) < 2:
                problems.append(f"{kata.stem}.{ex.name}: write at least two hints (a nudge, then near the answer)")
        for leak in leaked_lines(source, make_stub(source, kata.stem)):
            problems.append(f"{kata.stem}: answer line appears in the stub too: {leak}")
        problems += _notebook_problems(root, kata)
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        if path.stem not in {k.stem for k in katas}:
            problems.append(f"notebooks/{path.name} matches no kata in katas.toml")
    return problems


def _notebook_problems(root: Path, kata: Kata) -> list[str]:
    """Every kata has a lesson, notebooks/<stem>.ipynb, and no lesson peeks at the answers."""
    path = root / "notebooks" / f"{kata.stem}.ipynb"
    if not path.exists():
        return [f"{kata.stem} has no lesson notebook notebooks/{path.name}"]
    cells = json.loads(path.read_text()).get("cells", [])
    code = "\n".join("".join(c.get("source", "")) for c in cells if c.get("cell_type") == "code")
    if "solutions" in code:
        return [f"notebooks/{path.name}: a code cell mentions solutions/ (lessons must not load the answers)"]
    return []


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def cmd_check(root: Path, args: argparse.Namespace) -> int:
    """Prove the kata set is sound: metadata, no drift, no leaks, solutions pass, stubs fail."""
    katas = load_katas(root)
    failures: list[str] = []
    started = time.perf_counter()
    try:
        failures += _metadata_problems(root)
        _, differing = _drift(root)
    except (MarkerError, SyntaxError) as err:
        raise SystemExit(f"dojo check: {err}")
    failures += [f"{p.relative_to(root)} differs from the stub built from solutions/ (run `dojo build`)" for p in differing]

    with tempfile.TemporaryDirectory(prefix="dojo-check-") as tmp:
        fresh = Path(tmp) / "stubs"
        fresh.mkdir()
        for path, text in build_all(root / "solutions", fresh).items():
            path.write_text(text)
        sol_report, stub_report = Path(tmp) / "solutions.json", Path(tmp) / "stubs.json"
        console.print("running the suite against solutions/ and against freshly built stubs...")
        runs = [(root, "solutions", sol_report, "--tb=line"), (root, fresh, stub_report, "--tb=no")]
        if _has_gpu():
            # One after the other: the timing tests of katas 07 and 11 measure real GPU work, and a
            # second suite on the same GPU would skew them.
            procs, outputs = [], []
            for run in runs:
                procs.append(start_tests(*run))
                outputs.append(procs[-1].communicate()[0])
        else:
            # Both at once: on a 2-core machine this halves the wall time of the check.
            procs = [start_tests(*run) for run in runs]
            outputs = [p.communicate()[0] for p in procs]
        sol = progress.read_report(sol_report) if sol_report.exists() else []
        stub = progress.read_report(stub_report) if stub_report.exists() else []

    if procs[0].returncode != 0 or any(o.outcome in ("failed", "todo") for o in sol):
        failures.append("solutions/ do not pass:\n" + outputs[0].strip())
    if procs[1].returncode not in (0, 1):
        failures.append("the run against fresh stubs did not complete:\n" + outputs[1].strip())
    for o in stub:
        if o.outcome == "passed":
            failures.append(f"passes against an unfilled stub (it asserts nothing): {o.nodeid}")
    ran = {(o.stem, o.exercise) for o in sol if o.outcome == "passed"}
    stub_failed = {(o.stem, o.exercise) for o in stub if o.outcome in ("failed", "todo")}
    for kata in katas:
        for ex in kata.exercises:
            if (kata.stem, ex.name) not in ran:
                failures.append(f"{kata.stem}.{ex.name}: no test of it passed against solutions/ on this machine")
            elif (kata.stem, ex.name) not in stub_failed:
                failures.append(f"{kata.stem}.{ex.name}: no test of it fails against the stub")

    n_sol = sum(o.outcome == "passed" for o in sol)
    n_skip = sum(o.outcome == "skipped" for o in sol)
    n_stub = sum(o.outcome in ("failed", "todo") for o in stub)
    n_ex = sum(len(k.exercises) for k in katas)
    elapsed = time.perf_counter() - started
    if failures:
        for f in failures:
            console.print(f"[red]✗[/] {escape(f)}")
        console.print(f"\n[red bold]dojo check failed[/] ({len(failures)} problem(s), {elapsed:.1f} s)")
        return 1
    console.print(
        f"[green]✓[/] {len(katas)} katas, {n_ex} exercises: metadata complete, katas/ in sync, no answer in any stub\n"
        f"[green]✓[/] solutions: {n_sol} tests passed, {n_skip} skipped (devices absent here)\n"
        f"[green]✓[/] fresh stubs: all {n_stub} runnable tests fail, none passes\n"
        f"dojo check passed in {elapsed:.1f} s"
    )
    return 0


def cmd_grade(root: Path, args: argparse.Namespace) -> int:
    katas = load_katas(root)
    selection: tuple[str, ...] = ()
    if args.katas:
        katas = tuple(kata_by_key(root, key) for key in args.katas.split(","))
        selection = ("-m", " or ".join(k.marker for k in katas))
    results: list[tuple[str, list[progress.KataProgress] | None, str]] = []
    for folder in args.folders:
        try:
            path = resolve_impl(root, folder)
        except ImplError as err:
            results.append((folder, None, str(err)))
            continue
        with console.status(f"grading {folder}..."):
            run = run_tests(root, path, "--tb=no", *selection)
        if run.usage_error or not run.outcomes:
            lines = [l for l in run.output.strip().splitlines() if l.strip()]
            results.append((folder, None, lines[-1] if lines else "no test ran"))
            continue
        # Katas without a file in the submission still count, as zero: summarize only sees outcomes.
        results.append((folder, progress.summarize(run.outcomes, katas), ""))

    table = Table(title="grades (exercises done / total per kata)", title_justify="left")
    table.add_column("submission", no_wrap=True)
    for kata in katas:
        table.add_column(kata.id, justify="right")
    table.add_column("exercises", justify="right")
    table.add_column("tests", justify="right")
    rows_csv = []
    n_total = sum(len(k.exercises) for k in katas)
    for name, rows, error in results:
        if rows is None:
            table.add_row(name, *["-"] * len(katas), "[red]error[/]", escape(error[:60]))
            rows_csv.append({"submission": name, "kata": "", "exercises_done": 0, "exercises_total": n_total, "tests_passed": 0, "tests_run": 0, "error": error})
            continue
        by_stem = {r.kata.stem: r for r in rows}
        cells, done, passed, ran = [], 0, 0, 0
        for kata in katas:
            r = by_stem.get(kata.stem)
            d, p, t = (r.done, r.tests_passed, r.tests_run) if r else (0, 0, 0)
            done, passed, ran = done + d, passed + p, ran + t
            style = "green" if d == len(kata.exercises) else ("yellow" if d else "dim")
            cells.append(f"[{style}]{d}/{len(kata.exercises)}[/]")
            rows_csv.append({"submission": name, "kata": kata.stem, "exercises_done": d, "exercises_total": len(kata.exercises), "tests_passed": p, "tests_run": t, "error": ""})
        table.add_row(escape(name), *cells, f"{done}/{n_total}", f"{passed}/{ran}")
    console.print(table)
    out = Path(args.csv)
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows_csv[0]))
        writer.writeheader()
        writer.writerows(rows_csv)
    console.print(f"per-kata scores written to {out}")
    return 1 if any(rows is None for _, rows, _ in results) else 0


# ---------------------------------------------------------------- training (kata 12)


def cmd_bench(root: Path, args: argparse.Namespace) -> int:
    from dojo.bench import run

    return run(args, root)


def cmd_train(root: Path, args: argparse.Namespace) -> int:
    from dojo.train import train  # imports torch: only when training

    return train(args)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--impl", default=argparse.SUPPRESS, help="whose kata 12 to train: katas (default), solutions, or a folder")
    p.add_argument("--data-dir", help="CIFAR-10: an ImageFolder layout (train/, test/) or torchvision's folder")
    p.add_argument("--download", action="store_true", help="let torchvision download CIFAR-10 into --data-dir")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05, help="peak learning rate of the one-cycle schedule")
    p.add_argument("--device", default="auto", help="auto (CUDA, else MPS, else CPU), cpu, cuda, mps")
    p.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes (DataLoader path)")
    p.add_argument("--pin-memory", action="store_true", help="pin host memory (DataLoader path, CUDA only)")
    fast = p.add_mutually_exclusive_group()
    fast.add_argument("--gpu-resident", dest="gpu_resident", action="store_true", default=None,
                      help="keep the data set on the device and batch there (default on CUDA)")
    fast.add_argument("--dataloader", dest="gpu_resident", action="store_false", help="use the kata's DataLoaders")
    p.add_argument("--decode-workers", type=int, default=os.cpu_count() or 1,
                   help="processes decoding JPEGs once for --gpu-resident (cached afterwards)")
    p.add_argument("--crop-padding", type=int, default=2,
                   help="--gpu-resident: random 32x32 crops of the image padded by this many pixels (default 2; "
                        "the kata's transform uses 4, which costs a model as small as LeNet accuracy)")
    p.add_argument("--label-smoothing", type=float, default=0.1,
                   help="of the cross-entropy loss (default 0.1; 0 for the plain loss)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/lenet", help="folder for checkpoint.pt, history.json and curves.png")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")


# ---------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dojo",
        description="torch-katas: see your progress, get hints, watch your tests; build, check and grade katas.",
    )
    parser.add_argument("--impl", default=None, help="folder to test: katas (default), solutions, or a path")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("progress", help="progress table and the next exercise (the default)")
    p.add_argument("--impl", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p = sub.add_parser("watch", help="re-run the current kata's tests whenever a file is saved")
    p.add_argument("kata", nargs="?", help="kata to watch (default: the first one not complete)")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between checks for changes")
    p = sub.add_parser("hint", help="the next hint for a kata's next exercise: a nudge first, near the answer last")
    p.add_argument("kata", help="kata number or name, e.g. 01")
    p.add_argument("exercise", nargs="?", help="exercise name (default: the first one not done)")
    p = sub.add_parser("reset", help="restore a kata's stub (your file is backed up in .dojo/backup/)")
    p.add_argument("kata")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p = sub.add_parser("train", help="train kata 12's LeNet on CIFAR-10 (or a synthetic stand-in offline)")
    add_train_arguments(p)
    p = sub.add_parser("bench", help="time DataLoader settings (num_workers x pin_memory) with your kata 11; table + chart")
    from dojo.bench import add_arguments as add_bench_arguments  # no torch import at module level

    add_bench_arguments(p)
    p = sub.add_parser("build", help="generate katas/ from the solution markers in solutions/")
    p.add_argument("--check", action="store_true", help="only check that katas/ is up to date; exit 1 if not")
    sub.add_parser("check", help="prove every solution passes, every fresh stub fails each test, no answer leaks")
    p = sub.add_parser("grade", help="run the suite against submission folders and print a score table")
    p.add_argument("folders", nargs="+", metavar="DIR")
    p.add_argument("--csv", default="grades.csv", help="where to write per-kata scores (default grades.csv)")
    p.add_argument("--katas", help="grade only these katas, e.g. 01,02,03 (default: all)")
    return parser


COMMANDS = {
    None: cmd_progress,
    "progress": cmd_progress,
    "watch": cmd_watch,
    "hint": cmd_hint,
    "reset": cmd_reset,
    "build": cmd_build,
    "check": cmd_check,
    "grade": cmd_grade,
    "train": cmd_train,
    "bench": cmd_bench,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = find_root()
    return COMMANDS[args.command](root, args)
