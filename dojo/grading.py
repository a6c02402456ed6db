"""`dojo grade`: run the suite against a class's submission folders, all at once, each contained.

Grading runs learners' code. Each submission therefore runs in a child process of its own, on a
temporary copy of its kata files *and* of the test machinery (so nothing it writes to disk can
reach the next submission's run), with limits: a wall-clock time limit (the whole process group
is killed when it is reached), CPU seconds, memory (`resource.setrlimit`) and, where the grader
is not root, a cap on processes. A hang, a crash, `os._exit`, a fork or a memory blow-up fails
only its own row, with the reason; results up to that point are kept (the report is written
test by test).

Before it runs, every kata file is read (not run) for signs that it reaches into the test
machinery: importing dojo, pytest, conftest or the test modules, touching `sys.modules` or
stack frames, patching builtins, running code from strings. Such a kata is **flagged** in the
table and both CSVs and scores zero until an instructor has looked at it. This is a screen, not
a sandbox: for untrusted work, grade inside a container without network (see the README).

Output: a table that fits 80 columns, `grades.csv` (per kata), `grades-exercises.csv` (per
exercise) and `grades.png`, a heat map of submissions x exercises.
"""

from __future__ import annotations

import argparse
import ast
import csv
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dojo.loader import NOT_LOADED
from dojo.progress import KataProgress, Status, read_report, summarize
from dojo.project import ImplError, Kata, kata_by_key, load_katas, resolve_impl
from dojo.runner import LEAN

# What a kata file never needs, and what patching the tests takes.
SUSPECT_MODULES = {
    "dojo": "the test machinery (dojo)",
    "pytest": "pytest",
    "_pytest": "pytest's internals",
    "pluggy": "pytest's plugin system",
    "conftest": "conftest",
    "tests": "the test modules",
    "builtins": "builtins",
    "importlib": "importlib",
    "inspect": "inspect (stack frames)",
    "gc": "gc (every live object)",
    "ctypes": "ctypes",
}
SUSPECT_SYS = {"modules", "_getframe", "settrace", "setprofile", "meta_path", "path_hooks", "path_importer_cache"}
SUSPECT_NAMES = {"__builtins__": "touches __builtins__", "__import__": "imports by name (__import__)"}
SUSPECT_CALLS = {"eval", "exec", "compile", "globals", "setattr"}
MACHINERY = ("conftest.py", "pyproject.toml", "katas.toml", "dojo", "tests", "solutions")


def tamper_signs(source: str, filename: str = "<kata>") -> list[str]:
    """Why a kata file looks like it reaches into the test machinery ([] if it does not)."""
    try:
        tree = ast.parse(source, filename)
    except SyntaxError:
        return []  # it will fail to load, which the run reports
    signs = []
    # Every name the sys module goes by here (`import sys as s`), and what was taken from it.
    sys_names = {"sys"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            sys_names |= {a.asname or a.name for a in node.names if a.name == "sys"}
        elif isinstance(node, ast.ImportFrom) and node.module == "sys":
            for a in node.names:
                if a.name in SUSPECT_SYS or a.name == "*":
                    signs.append(f"uses sys.{a.name} (line {node.lineno})")
    for node in ast.walk(tree):
        line = getattr(node, "lineno", "?")
        modules = []
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        for module in modules:
            top = module.split(".")[0]
            if top in SUSPECT_MODULES or top.startswith("test_"):
                signs.append(f"imports {SUSPECT_MODULES.get(top, 'a test module')} (line {line})")
        if (
            isinstance(node, ast.Attribute)
            and node.attr in SUSPECT_SYS
            and isinstance(node.value, ast.Name)
            and node.value.id in sys_names
        ):
            signs.append(f"uses sys.{node.attr} (line {line})")
        if isinstance(node, ast.Name) and node.id in SUSPECT_NAMES:
            signs.append(f"{SUSPECT_NAMES[node.id]} (line {line})")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in SUSPECT_CALLS:
            signs.append(f"calls {node.func.id}() (line {line})")
    return list(dict.fromkeys(signs))


# ---------------------------------------------------------------- one submission


@dataclass
class Limits:
    seconds: float = 300.0
    memory_gb: float = 8.0


@dataclass
class Graded:
    name: str
    folder: Path | None
    rows: list[KataProgress] = field(default_factory=list)
    flags: dict[str, list[str]] = field(default_factory=dict)  # kata stem -> tamper signs
    missing: set[str] = field(default_factory=set)  # kata stems without a file
    broken: set[str] = field(default_factory=set)  # kata stems whose file does not load
    problem: str = ""  # timed out, crashed, ...: the run did not finish
    error: str = ""  # nothing could be graded (no such folder, no kata file)
    seconds: float = 0.0


def _apply_limits(limits: Limits) -> None:
    """In the child: its own process group (so it can be killed whole), then the limits."""
    import resource

    os.setsid()
    memory = int(limits.memory_gb * 2**30)
    # CUDA reserves far more address space than it uses: on a GPU machine limit the data
    # segment (heap and private mappings) rather than the address space.
    kind = resource.RLIMIT_DATA if list(Path("/dev").glob("nvidia[0-9]*")) else resource.RLIMIT_AS
    resource.setrlimit(kind, (memory, memory))
    cpu = int(limits.seconds * 2) + 10  # a backstop: the wall-clock limit is the parent's
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    if os.geteuid() != 0:  # root is exempt from RLIMIT_NPROC anyway
        mine = sum(1 for p in Path("/proc").iterdir() if p.name.isdigit() and _owner(p) == os.getuid())
        resource.setrlimit(resource.RLIMIT_NPROC, (mine + 64, mine + 64))


def _owner(path: Path) -> int | None:
    try:
        return path.stat().st_uid
    except OSError:
        return None


def _child(workdir: str, args: list[str], log: str, limits: Limits) -> None:
    """A submission's test run, in a process forked from the warm fork server (torch imported)."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    try:
        _apply_limits(limits)
        os.chdir(workdir)
        sys.path.insert(0, workdir)
        os.environ.pop("KATA_IMPL", None)
        os.environ["OMP_NUM_THREADS"] = "1"
        import pytest

        code = int(pytest.main(args))
    except BaseException as err:  # noqa: BLE001 - reported through the exit code and the log
        print(f"{type(err).__name__}: {err}", flush=True)
        code = 3
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# Imported once by the fork server; every submission's process starts with them loaded.
PRELOAD = ["torch", "torchvision", "numpy", "PIL.Image", "pytest", "_pytest.pytester", "dojo.plugin", "dojo.testing"]


def _context():
    import multiprocessing

    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        return context
    return multiprocessing.get_context("spawn")  # Windows: slower, the same containment otherwise


@dataclass
class _Pending:
    graded: Graded
    tmp: tempfile.TemporaryDirectory
    workdir: Path
    args: list[str]
    report: Path
    log: Path
    started: float = 0.0
    process: object = None


def _sandbox(root: Path, folder: Path, katas: tuple[Kata, ...], tmp: Path) -> Path:
    """A throwaway copy of the test machinery with the submission's kata files beside it."""
    for name in MACHINERY:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, tmp / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "benchmarks"))
        elif source.is_file():
            shutil.copy2(source, tmp / name)
    submission = tmp / "submission"
    submission.mkdir()
    for kata in katas:
        if (folder / kata.filename).is_file():
            shutil.copy2(folder / kata.filename, submission / kata.filename)
    return submission


def _prepare(root: Path, name: str, folder_arg: str, katas: tuple[Kata, ...]) -> Graded | _Pending:
    """Everything before the run: the folder, missing files, tamper signs, the sandbox."""
    try:
        folder = resolve_impl(root, folder_arg)
    except ImplError:
        return Graded(name, None, error=f"no such folder: {folder_arg}")
    graded = Graded(name, folder)
    graded.missing = {k.stem for k in katas if not (folder / k.filename).is_file()}
    if len(graded.missing) == len(katas):
        graded.error = f"{folder} holds none of the kata files graded ({katas[0].filename}, ...)"
        return graded
    for kata in katas:
        path = folder / kata.filename
        if path.is_file():
            signs = tamper_signs(path.read_text(errors="replace"), str(path))
            if signs:
                graded.flags[kata.stem] = signs
    tmp = tempfile.TemporaryDirectory(prefix="dojo-grade-")
    workdir = Path(tmp.name)
    submission = _sandbox(root, folder, katas, workdir)
    report = workdir / "report.jsonl"
    present = [k for k in katas if k.stem not in graded.missing]
    args = [*[k.test_file for k in present], f"--impl={submission}", "-q", "--tb=no", "--no-header"]
    args += ["--no-progress", "-p", "no:cacheprovider", *LEAN, f"--kata-report={report}"]
    return _Pending(graded, tmp, workdir, args, report, workdir / "output.log")


def _finish(pending: _Pending, code: int | None, limits: Limits, katas: tuple[Kata, ...]) -> Graded:
    graded = pending.graded
    output = pending.log.read_text(errors="replace") if pending.log.exists() else ""
    _, results = read_report(pending.report) if pending.report.exists() else ({}, [])
    if code is None:
        graded.problem = f"timed out after {limits.seconds:.0f} s (tests up to then are counted)"
    elif code not in (0, 1):
        tail = [line for line in output.strip().splitlines() if line.strip()]
        if code < 0:
            why = signal.Signals(-code).name
            graded.problem = f"the test process was killed by {why}" + (
                " (the CPU time limit)" if why == "SIGXCPU" else ""
            )
        elif not results:
            graded.problem = f"the test run failed (exit code {code}): {tail[-1] if tail else 'no output'}"
        else:
            graded.problem = f"the test process exited early (code {code}); tests up to then are counted"
    text = output + "\n".join(r.message for r in results)
    if "MemoryError" in text or "can't allocate memory" in text:
        note = f"it ran out of its {limits.memory_gb:g} GB of memory"
        graded.problem = f"{graded.problem}; {note}" if graded.problem else note
    graded.rows = summarize(results, katas)
    graded.broken = {r.stem for r in results if NOT_LOADED in r.message}
    graded.seconds = time.perf_counter() - pending.started
    pending.tmp.cleanup()
    return graded


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)  # forked children and loader workers too
    except (ProcessLookupError, PermissionError):
        pass


def _score(graded: Graded, kata: Kata) -> tuple[int, int, int, str]:
    """(exercises done, tests passed, tests run, state) of one kata in a submission."""
    if kata.stem in graded.missing:
        return 0, 0, 0, "missing"
    row = next((r for r in graded.rows if r.kata.stem == kata.stem), None)
    if kata.stem in graded.flags:
        return 0, 0, row.tests_run if row else 0, "flagged"
    if row is None:
        return 0, 0, 0, "not run"
    state = "broken" if kata.stem in graded.broken else ("complete" if row.complete else "ok")
    return row.done, row.tests_passed, row.tests_run, state


# ---------------------------------------------------------------- output


def short_name(name: str, width: int) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def cell(done: int, total: int, state: str) -> tuple[str, str]:
    """(text of at most 2 characters, rich style) for one kata of one submission."""
    if state == "flagged":
        return "!", "bold magenta"
    if state == "missing":
        return "-", "dim"
    if state == "broken":
        return "x", "bold red"
    if done == total and total:
        return "✓", "green"
    if done == 0:
        return "·", "dim"
    return str(done), "yellow"


def table_lines(graded: list[Graded], katas: tuple[Kata, ...], width: int = 80) -> list[str]:
    """The score table as rich-markup lines that fit `width` columns, then its footnotes."""
    from rich.markup import escape

    n_total = sum(len(k.exercises) for k in katas)
    done_width = len(f"{n_total}/{n_total}")
    name_width = max(4, min(max((len(g.name) for g in graded), default=4), width - 3 * len(katas) - done_width - 9))
    head = f"{'':<{name_width}} " + " ".join(f"{k.id:>2}" for k in katas) + f" {'done':>{done_width}}  note"
    lines = [
        "[bold]exercises done per kata[/] (✓ all, n some, · none, - no file, x broken, ! flagged)",
        f"[bold]{escape(head)}[/]",
    ]
    notes = []
    for g in graded:
        name = escape(short_name(g.name, name_width)).ljust(name_width)
        if g.error:
            notes.append(f"{g.name}: {g.error}")
            lines.append(f"{name} [red]could not be graded[/] [dim][{len(notes)}][/]")
            continue
        cells, done = [], 0
        for kata in katas:
            d, _, _, state = _score(g, kata)
            done += d
            text, style = cell(d, len(kata.exercises), state)
            cells.append(f"[{style}]{text:>2}[/]")
        note = ""
        details = []
        if g.problem:
            details.append(g.problem)
        for stem, signs in g.flags.items():
            details.append(f"{stem} flagged: {'; '.join(signs[:3])}")
        if details:
            notes.append(f"{g.name}: " + " | ".join(details))
            note = f"[dim][{len(notes)}][/]"
        lines.append(f"{name} " + " ".join(cells) + f" {done:>{len(str(n_total))}}/{n_total}  {note}")
    if notes:
        lines.append("")
        lines += [f"[dim][{i}][/] {escape(text)}" for i, text in enumerate(notes, start=1)]
    return lines


def write_kata_csv(path: Path, graded: list[Graded], katas: tuple[Kata, ...]) -> None:
    fields = [
        "submission",
        "folder",
        "kata",
        "exercises_done",
        "exercises_total",
        "tests_passed",
        "tests_run",
        "state",
        "note",
    ]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for g in graded:
            for kata in katas:
                if g.error:
                    d, p, t, state = 0, 0, 0, "error"
                else:
                    d, p, t, state = _score(g, kata)
                note = g.error or "; ".join(g.flags.get(kata.stem, [])) or g.problem
                writer.writerow(
                    {
                        "submission": g.name,
                        "folder": str(g.folder or ""),
                        "kata": kata.stem,
                        "exercises_done": d,
                        "exercises_total": len(kata.exercises),
                        "tests_passed": p,
                        "tests_run": t,
                        "state": state,
                        "note": note,
                    }
                )


def exercise_states(g: Graded, kata: Kata) -> list[tuple[str, int, int, str]]:
    """(status, tests passed, tests run, first failure) per exercise of `kata` in a submission."""
    if g.error:
        return [("error", 0, 0, g.error)] * len(kata.exercises)
    if kata.stem in g.missing:
        return [("missing", 0, 0, "")] * len(kata.exercises)
    row = next((r for r in g.rows if r.kata.stem == kata.stem), None)
    if row is None:
        return [(Status.NOT_RUN.value, 0, 0, "")] * len(kata.exercises)
    flagged = kata.stem in g.flags
    return [
        ("flagged" if flagged else e.status.value, 0 if flagged else e.tests_passed, e.tests_run, e.first_message)
        for e in row.exercises
    ]


def write_exercise_csv(path: Path, graded: list[Graded], katas: tuple[Kata, ...]) -> None:
    fields = ["submission", "kata", "exercise", "status", "tests_passed", "tests_run", "first_failure"]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for g in graded:
            for kata in katas:
                for ex, (status, p, t, message) in zip(kata.exercises, exercise_states(g, kata)):
                    writer.writerow(
                        {
                            "submission": g.name,
                            "kata": kata.stem,
                            "exercise": ex.name,
                            "status": status,
                            "tests_passed": p,
                            "tests_run": t,
                            "first_failure": message,
                        }
                    )


HEAT_COLOURS = {
    Status.DONE.value: "#2e9d4a",
    Status.WRONG.value: "#d1403a",
    Status.TODO.value: "#f2c14e",
    Status.SKIPPED.value: "#9fb7d6",
    Status.NOT_RUN.value: "#d9d9d9",
    "missing": "#f0f0f0",
    "flagged": "#8e44ad",
    "error": "#555555",
}


def write_heatmap(path: Path, graded: list[Graded], katas: tuple[Kata, ...]) -> Path:
    """Submissions x exercises, a colour per status, katas separated and labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    names = list(HEAT_COLOURS)
    grid = []
    for g in graded:
        grid.append([names.index(s) for kata in katas for s, *_ in exercise_states(g, kata)])
    n_ex = sum(len(k.exercises) for k in katas)
    fig_w = min(30, 2.5 + 0.16 * n_ex)
    fig_h = min(30, 1.8 + 0.32 * max(len(graded), 1))
    fig, ax = plt.subplots(figsize=(fig_w, fig_h))
    ax.imshow(
        grid or [[names.index(Status.NOT_RUN.value)] * n_ex],
        cmap=ListedColormap(list(HEAT_COLOURS.values())),
        vmin=0,
        vmax=len(names) - 1,
        aspect="auto",
        interpolation="nearest",
    )
    edge = -0.5
    ticks = []
    for kata in katas:
        ticks.append(edge + len(kata.exercises) / 2)
        edge += len(kata.exercises)
        ax.axvline(edge, color="white", linewidth=2)
    ax.set_xticks(ticks, [k.id for k in katas])
    ax.set_yticks(range(len(graded)), [g.name for g in graded])
    ax.set_xlabel("kata (one column per exercise, in learning order)")
    ax.set_title("dojo grade: submissions x exercises")
    ax.legend(
        handles=[Patch(color=c, label=n) for n, c in HEAT_COLOURS.items()],
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
        fontsize=8,
        frameon=False,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- the command


def submission_names(folders: list[str]) -> list[str]:
    """Folder names, not paths; made unique with their parent's name where two are alike."""
    paths = [Path(f).expanduser().resolve() for f in folders]
    names = [p.name or str(p) for p in paths]
    alike = {name for name in names if names.count(name) > 1}
    return [f"{p.parent.name}/{name}" if name in alike else name for p, name in zip(paths, names)]


def grade(
    root: Path, folders: list[str], katas: tuple[Kata, ...], jobs: int, limits: Limits, on_done=None
) -> list[Graded]:
    """Grade every folder, `jobs` at a time, each in a child of a fork server that has torch
    imported already (so a submission's run starts in a moment, not after seconds of imports)."""
    from multiprocessing.connection import wait

    names = submission_names(folders)
    prepared = [_prepare(root, name, folder, katas) for name, folder in zip(names, folders)]
    done: dict[int, Graded] = {i: p for i, p in enumerate(prepared) if isinstance(p, Graded)}
    queue = [i for i, p in enumerate(prepared) if isinstance(p, _Pending)]
    running: dict[int, _Pending] = {}
    context = _context() if queue else None
    try:
        while queue or running:
            while queue and len(running) < max(1, jobs):
                i = queue.pop(0)
                pending = prepared[i]
                # Not a daemon: a daemonic process may not start processes of its own, and the
                # tests do (DataLoader workers in kata 10, the two ranks of kata 19). The process
                # group is killed whatever happens (below), so nothing outlives the grading.
                pending.process = context.Process(
                    target=_child, args=(str(pending.workdir), pending.args, str(pending.log), limits), daemon=False
                )
                pending.started = time.perf_counter()
                pending.process.start()
                running[i] = pending
            deadline = min(p.started + limits.seconds for p in running.values())
            wait([p.process.sentinel for p in running.values()], timeout=max(0.0, deadline - time.perf_counter()))
            now = time.perf_counter()
            for i, pending in list(running.items()):
                process = pending.process
                if process.exitcode is None and now < pending.started + limits.seconds:
                    continue
                timed_out = process.exitcode is None
                _kill_group(process.pid)
                process.join()
                done[i] = _finish(pending, None if timed_out else process.exitcode, limits, katas)
                del running[i]
                if on_done:
                    on_done(done[i])
    finally:
        for pending in running.values():
            _kill_group(pending.process.pid)
            pending.process.join()
            pending.tmp.cleanup()
    return [done[i] for i in range(len(prepared))]


def cmd_grade(root: Path, args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console(highlight=False)
    katas = tuple(kata_by_key(root, key) for key in args.katas.split(",")) if args.katas else load_katas(root)
    jobs = args.jobs or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    limits = Limits(args.timeout, args.memory_gb)
    started = time.perf_counter()
    console.print(f"grading {len(args.folders)} submission(s), {jobs} at a time...")
    graded = grade(root, args.folders, katas, jobs, limits, lambda g: console.print(f"  {g.name}: {g.seconds:.1f} s"))
    elapsed = time.perf_counter() - started
    for line in table_lines(graded, katas, max(80, console.width if console.is_terminal else 80)):
        console.print(line, soft_wrap=True)
    out = Path(args.csv)
    write_kata_csv(out, graded, katas)
    per_exercise = out.with_name(out.stem + "-exercises.csv")
    write_exercise_csv(per_exercise, graded, katas)
    png = Path(args.heatmap) if args.heatmap else out.with_suffix(".png")
    write_heatmap(png, graded, katas)
    console.print(
        f"\n{len(graded)} submission(s) in {elapsed:.1f} s ({elapsed / max(len(graded), 1):.1f} s each, {jobs} at a time). "
        f"Per kata: {out}; per exercise: {per_exercise}; heat map: {png}"
    )
    if any(g.flags for g in graded):
        console.print(
            "[magenta]Flagged katas score zero until you have read them: see the notes above and the CSVs.[/]"
        )
    return 1 if any(g.error for g in graded) else 0


def add_arguments(sub) -> None:
    p = sub.add_parser(
        "grade", help="run the suite against submission folders (in parallel, each contained); table, CSVs, heat map"
    )
    p.add_argument("folders", nargs="+", metavar="DIR")
    p.add_argument("--katas", help="grade only these katas, e.g. 01,02,03 (default: all)")
    p.add_argument(
        "--csv", default="grades.csv", help="per-kata scores (default grades.csv; per exercise: grades-exercises.csv)"
    )
    p.add_argument("--heatmap", help="the heat map PNG (default: the CSV's name with .png)")
    p.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: one per CPU)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds one submission may run (default 300)")
    p.add_argument("--memory-gb", type=float, default=8.0, help="memory one submission may use (default 8 GB)")
