"""`dojo check`: prove that the kata set is sound.

Static checks first (`dojo.audit`: metadata, stubs in sync, no answer in a stub, lessons,
decoy files, the docstring audit), then the tests of every kata run against:
- the reference solutions: every test passes (or is skipped for a missing device), and every
  exercise has a test that ran here;
- freshly built stubs: every test fails (a test that passes against an unfilled stub asserts
  nothing);
- every decoy: at least one test fails (the run stops at the first failure);
- every alternative: every test passes.
The runs share a few worker processes (`dojo.variants.VariantPool`); the result is a table per
kata and a non-zero exit for any problem.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dojo.audit import audit_docstrings, minimums, static_problems, variant_problems
from dojo.progress import Outcome
from dojo.project import Kata, kata_by_key, load_katas
from dojo.stubs import build_all
from dojo.variants import (
    ALTERNATIVE,
    DECOY,
    Job,
    JobResult,
    Variant,
    VariantError,
    VariantPool,
    apply_variant,
    read_variants,
)


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass
class KataTally:
    kata: Kata
    solution_passed: int = 0
    solution_skipped: int = 0
    stub_tests: int = 0
    stub_failed: int = 0
    decoys: int = 0
    decoys_caught: int = 0
    decoys_skipped: int = 0
    alternatives: int = 0
    alternatives_passed: int = 0
    gives_away: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)  # per variant: what caught it, how long it took


def _variant_jobs(root: Path, tmp: Path, kata: Kata, variants: list[Variant], cuda: bool, timeout: float):
    source = (root / "solutions" / kata.filename).read_text()
    jobs, skipped = [], []
    for n, variant in enumerate(variants):
        if variant.needs == "cuda" and not cuda:
            skipped.append(variant)
            continue
        folder = tmp / f"{kata.id}-{variant.kind}-{n:03d}"
        folder.mkdir()
        (folder / kata.filename).write_text(apply_variant(source, variant))
        jobs.append(
            (Job(folder.name, kata.test_file, str(folder), variant.kind == DECOY, timeout, variant.exercise), variant)
        )
    return jobs, skipped


def _first_failure(result: JobResult) -> str:
    if result.error:
        return result.error
    failed = next((r for r in result.results if r.outcome in (Outcome.FAILED, Outcome.TODO)), None)
    if failed is None:
        return "no test ran" if not result.results else ""
    return f"{failed.nodeid}: {failed.message or failed.outcome.value}"


def run_check(
    root: Path, katas: tuple[Kata, ...], workers: int | None, timeout: float, say=print
) -> tuple[list[KataTally], list[str], list]:
    """(a tally per kata, the problems found, the docstring audit)."""
    problems = static_problems(root, None if katas == load_katas(root) else katas)
    audits = audit_docstrings(root, katas)
    tallies = {k.stem: KataTally(k) for k in katas}
    for a in audits:
        if a.gives_away:
            tallies[a.kata.stem].gives_away += 1
            if not a.allowed:
                problems.append(
                    f"{a.kata.stem}.{a.exercise.name}: the docstring names every call of the answer "
                    f"({', '.join(sorted(a.calls))}); describe the contract and the symptom instead, and move "
                    'the API to the hints (or record why it must be named: names_api = "..." in katas.toml)'
                )
    variants: dict[str, list[Variant]] = {}
    for kata in katas:
        found, _ = variant_problems(root, kata)
        problems += found
        try:
            variants[kata.stem] = (
                read_variants(root / kata.decoy_file, kata.stem) if (root / kata.decoy_file).is_file() else []
            )
        except VariantError:
            variants[kata.stem] = []

    with tempfile.TemporaryDirectory(prefix="dojo-check-") as tmp_name:
        tmp = Path(tmp_name)
        stubs = tmp / "stubs"
        stubs.mkdir()
        for path, text in build_all(root / "solutions", stubs).items():
            path.write_text(text)
        log = tmp / "workers.log"
        with VariantPool(root, 1, log) as pool:
            cuda = pool.cuda()
            # On a GPU, one run at a time: katas 07 and 11 time real GPU work, and two suites on one
            # GPU would skew each other. On a CPU, a worker per core.
            pool.size = workers or (1 if cuda else min(cpu_count(), 8))
            jobs: list[tuple[Job, str, object]] = []
            for kata in katas:
                jobs.append(
                    (
                        Job(f"{kata.id}-solutions", kata.test_file, str(root / "solutions"), False, timeout),
                        "solutions",
                        kata,
                    )
                )
                jobs.append((Job(f"{kata.id}-stubs", kata.test_file, str(stubs), False, timeout), "stubs", kata))
                vjobs, skipped = _variant_jobs(root, tmp, kata, variants[kata.stem], cuda, timeout)
                tallies[kata.stem].decoys_skipped = sum(v.kind == DECOY for v in skipped)
                jobs += [(job, variant.kind, variant) for job, variant in vjobs]
            say(
                f"running {len(jobs)} test runs ({len(katas)} katas: solutions, fresh stubs, "
                f"{sum(kind == DECOY for _, kind, _ in jobs)} decoys, {sum(kind == ALTERNATIVE for _, kind, _ in jobs)} "
                f"alternatives) in {pool.size} worker(s); torch {pool.info.get('torch')}, "
                f"{'CUDA' if cuda else 'no CUDA'}"
            )
            by_id = {job.id: (kind, what) for job, kind, what in jobs}
            counter = {"done": 0}

            def progress(result: JobResult) -> None:
                counter["done"] += 1
                if counter["done"] % 25 == 0:
                    say(f"  {counter['done']}/{len(jobs)} runs done")

            # Long runs first (whole suites), short ones (decoys stop at their first failure) last.
            order = sorted(jobs, key=lambda j: j[1] == DECOY)
            results = pool.run([job for job, _, _ in order], progress)
        worker_log = log.read_text() if log.exists() else ""

    for job_id, result in results.items():
        kind, what = by_id[job_id]
        kata = what if isinstance(what, Kata) else next(k for k in katas if k.stem == what.stem)
        tally = tallies[kata.stem]
        tally.seconds += result.seconds
        outcomes = [r.outcome for r in result.results]
        if kind == "solutions":
            tally.solution_passed = outcomes.count(Outcome.PASSED)
            tally.solution_skipped = outcomes.count(Outcome.SKIPPED)
            bad = [r for r in result.results if r.outcome in (Outcome.FAILED, Outcome.TODO)]
            if result.error or bad or result.returncode not in (0, 5):
                detail = result.error or "; ".join(f"{r.nodeid}: {r.message}" for r in bad[:5])
                tally.problems.append(
                    f"solutions/{kata.filename} does not pass its tests: {detail or f'exit code {result.returncode}'}"
                )
            ran = {r.exercise for r in result.results if r.outcome is Outcome.PASSED}
            for ex in kata.exercises:
                if ex.name not in ran:
                    tally.problems.append(
                        f"{kata.stem}.{ex.name}: no test of it passed against solutions/ on this machine"
                    )
        elif kind == "stubs":
            tally.stub_tests = sum(o is not Outcome.SKIPPED for o in outcomes)
            tally.stub_failed = sum(o in (Outcome.FAILED, Outcome.TODO) for o in outcomes)
            if result.error:
                tally.problems.append(f"the run against the fresh stub of {kata.stem} did not complete: {result.error}")
            for r in result.results:
                if r.outcome is Outcome.PASSED:
                    tally.problems.append(f"passes against an unfilled stub (it asserts nothing): {r.nodeid}")
            failing = {r.exercise for r in result.results if r.outcome in (Outcome.FAILED, Outcome.TODO)}
            for ex in kata.exercises:
                if ex.name not in failing and not result.error:
                    tally.problems.append(f"{kata.stem}.{ex.name}: no test of it fails against the stub")
        elif kind == DECOY:
            tally.decoys += 1
            caught = Outcome.FAILED in outcomes and not result.error
            tally.decoys_caught += caught
            catcher = next((r.nodeid for r in result.results if r.outcome is Outcome.FAILED), "nothing")
            tally.details.append(f"{what.label}: caught by {catcher} ({result.seconds:.2f} s)")
            if not caught:
                why = result.error or ("every test passed" if outcomes else "no test ran")
                tally.problems.append(f"decoy not caught: {what.label} — {why}")
        elif kind == ALTERNATIVE:
            tally.alternatives += 1
            failure = _first_failure(result)
            passed = not failure and Outcome.PASSED in outcomes
            tally.alternatives_passed += passed
            tally.details.append(f"{what.label}: {'passes' if passed else failure} ({result.seconds:.2f} s)")
            if not passed:
                tally.problems.append(f"alternative rejected: {what.label} — {failure or 'no test passed'}")
    if any("did not start" in p for p in problems) and worker_log:
        problems.append(worker_log[-2000:])
    for tally in tallies.values():
        problems += tally.problems
    return list(tallies.values()), problems, audits


def _table(tallies: list[KataTally], min_decoys: int, min_alternatives: int):
    from rich import box
    from rich.table import Table

    table = Table(
        title="dojo check per kata: tests passed by the solutions (skipped), stub tests failing, decoys caught "
        "(+N GPU-only, not run here), alternatives passing, docstrings naming every call of the answer, seconds "
        "of test runs",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )

    def cell(ok: bool, text: str) -> tuple[str, str]:
        return text, "green" if ok else "red"

    rows = []
    for t in tallies:
        n_ex = len(t.kata.exercises)
        decoys = f"{t.decoys_caught}/{t.decoys}" + (f"+{t.decoys_skipped}g" if t.decoys_skipped else "")
        rows.append(
            [
                (t.kata.stem, ""),
                (str(n_ex), ""),
                cell(
                    not any("does not pass" in p or "no test of it passed" in p for p in t.problems),
                    f"{t.solution_passed} ({t.solution_skipped})",
                ),
                cell(t.stub_failed == t.stub_tests, f"{t.stub_failed}/{t.stub_tests}"),
                cell(t.decoys_caught == t.decoys and t.decoys + t.decoys_skipped >= min_decoys, decoys),
                cell(
                    t.alternatives_passed == t.alternatives and t.alternatives >= min_alternatives,
                    f"{t.alternatives_passed}/{t.alternatives}",
                ),
                (f"{t.gives_away}/{n_ex}", ""),
                (f"{t.seconds:.0f}", ""),
            ]
        )
    # Fits 80 columns (a terminal's default, and rich's width when output is not a terminal):
    # every figure keeps its full width, and only a long kata name is cut.
    names = ("kata", "ex.", "solutions", "stubs", "decoys", "alts", "doc", "s")
    for i, name in enumerate(names):
        width = max([len(name)] + [len(row[i][0]) for row in rows])
        if i == 0:
            table.add_column(name, no_wrap=True, max_width=min(width, 21), overflow="ellipsis")
        else:
            table.add_column(name, justify="right", no_wrap=True, min_width=width)
    for row in rows:
        table.add_row(*(f"[{style}]{text}[/]" if style else text for text, style in row))
    return table


def cmd_check(root: Path, args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False)
    started = time.perf_counter()
    katas = tuple(kata_by_key(root, key) for key in args.katas) if args.katas else load_katas(root)
    tallies, problems, audits = run_check(root, katas, args.workers, args.timeout, lambda m: console.print(escape(m)))
    if args.verbose:
        for tally in tallies:
            for line in tally.details:
                console.print(escape(line), soft_wrap=True)
    console.print(_table(tallies, *minimums(root)))
    n_ex = len(audits)
    giving = [a for a in audits if a.gives_away]
    reasons = sum(1 for a in giving if a.allowed)
    console.print(
        f"docstring audit: {len(giving)} of {n_ex} exercises ({100 * len(giving) / max(n_ex, 1):.0f}%) have a docstring "
        f"that names every call of their answer; {reasons} of them with a recorded reason (names_api)."
    )
    elapsed = time.perf_counter() - started
    if problems:
        for p in problems:
            console.print(f"[red]✗[/] {escape(p)}")
        console.print(f"\n[red bold]dojo check failed[/] ({len(problems)} problem(s), {elapsed:.1f} s)")
        return 1
    n_tests = sum(t.solution_passed for t in tallies)
    console.print(
        f"[green]✓[/] {len(katas)} katas, {sum(len(k.exercises) for k in katas)} exercises: metadata complete, "
        f"katas/ in sync, no answer in any stub\n"
        f"[green]✓[/] solutions: {n_tests} tests passed; fresh stubs: every runnable test fails\n"
        f"[green]✓[/] {sum(t.decoys for t in tallies)} decoys caught, {sum(t.alternatives for t in tallies)} alternatives pass\n"
        f"dojo check passed in {elapsed:.1f} s"
    )
    return 0


def add_arguments(sub) -> None:
    p = sub.add_parser(
        "check",
        help="prove the kata set sound: solutions pass, fresh stubs fail, decoys fail, alternatives pass, docstrings audited",
    )
    p.add_argument("katas", nargs="*", metavar="KATA", help="only these katas (default: all)")
    p.add_argument(
        "--workers", type=int, default=None, help="test processes (default: one per CPU, at most 8; 1 on a GPU)"
    )
    p.add_argument("--timeout", type=float, default=300.0, help="seconds one run may take before it counts as hung")
    p.add_argument("--verbose", "-v", action="store_true", help="list every decoy with the test that caught it")
