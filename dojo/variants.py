"""Decoys (known-wrong answers) and alternatives (known-right answers written another way).

Each kata has a file `decoys/<stem>.py`. Every top-level function or class in it is one variant,
decorated with what it is:

    from dojo.variants import alternative, decoy

    @decoy("forgets the device: torch.zeros makes its tensor on the default device")
    def zeros_with_dtype(x, dtype):
        return torch.zeros(x.shape, dtype=dtype)

    @alternative("new_zeros keeps the device and takes a dtype")
    def zeros_with_dtype(x, dtype):
        return x.new_zeros(x.shape, dtype=dtype)

A variant replaces the top-level function or class *of the same name* in the reference solution
(the rest of the module stays the reference); the file's own imports are added to the module.
The mark comes first; decorators below it (`@contextmanager`) belong to the variant's code.
`dojo check` then runs the kata's tests against each variant: every decoy must fail at least one
test (the run stops at the first failure) and every alternative must pass them all. Options of
the decorators: `cite=` (where the mistake was seen: a forum thread or an issue),
`needs="cuda"` (a mistake only a GPU can show; run only where CUDA exists) and `exercise=`
(the exercise a variant is about, when it replaces something else: a helper, a whole class).

The files are read, never imported, by `dojo check` (the decorators below do nothing); running
many variants uses a few long-lived worker processes that import torch once each
(`VariantPool`), since a fresh interpreter per variant would spend most of its time importing.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

DECOY, ALTERNATIVE = "decoy", "alternative"


def decoy(why: str, *, cite: str | None = None, needs: str | None = None, exercise: str | None = None):
    """Mark a known-wrong answer: `why` says what is wrong with it (the mistake, by its symptom)."""
    return lambda obj: obj


def alternative(why: str, *, needs: str | None = None, exercise: str | None = None):
    """Mark a known-right answer written another way: `why` says how it differs."""
    return lambda obj: obj


class VariantError(ValueError):
    """A decoy file that cannot be read: a bad decorator, or a name the solution lacks."""


@dataclass(frozen=True)
class Variant:
    kind: str  # DECOY or ALTERNATIVE
    stem: str
    target: str  # the top-level name of the solution it replaces
    exercise: str
    why: str
    line: int
    source: str  # the function or class, without its decorator
    imports: tuple[str, ...] = ()
    cite: str | None = None
    needs: str | None = None

    @property
    def label(self) -> str:
        return f"{self.stem} {self.kind} {self.exercise} (line {self.line}): {self.why}"


def _const(node: ast.AST, what: str, where: str) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    raise VariantError(f"{where}: {what} must be a plain string")


def read_variants(path: Path, stem: str) -> list[Variant]:
    """Every decoy and alternative in `path`, in file order."""
    source = path.read_text()
    try:
        tree = ast.parse(source, str(path))
    except SyntaxError as err:
        raise VariantError(f"{path}, line {err.lineno}: {err.msg}") from None
    lines = source.splitlines()
    imports = tuple(
        ast.get_source_segment(source, node)
        for node in tree.body
        if isinstance(node, (ast.Import, ast.ImportFrom))
        and not (isinstance(node, ast.ImportFrom) and node.module in ("dojo.variants", "__future__"))
    )
    variants = []
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        where = f"{path}, line {node.lineno}"
        marks = [
            d
            for d in node.decorator_list
            if isinstance(d, ast.Call) and isinstance(d.func, ast.Name) and d.func.id in (DECOY, ALTERNATIVE)
        ]
        if len(marks) != 1 or node.decorator_list[0] is not marks[0]:
            raise VariantError(
                f"{where}: {node.name} needs exactly one @decoy(...) or @alternative(...), as its first decorator"
            )
        mark = marks[0]
        if not mark.args:
            raise VariantError(f"{where}: @{mark.func.id} needs the reason as its first argument")
        options = {k.arg: _const(k.value, k.arg, where) for k in mark.keywords}
        unknown = set(options) - {"cite", "needs", "exercise"}
        if unknown:
            raise VariantError(f"{where}: unknown option(s) {', '.join(sorted(unknown))}")
        if options.get("needs") not in (None, "cuda"):
            raise VariantError(f"{where}: needs= may only be 'cuda'")
        # The variant's code: from the line after the mark, so that its own decorators
        # (@contextmanager, @staticmethod...) stay with it; the mark is not the solution's.
        start = mark.end_lineno + 1 if len(node.decorator_list) > 1 else node.lineno
        body = "\n".join(lines[start - 1 : node.end_lineno])
        variants.append(
            Variant(
                kind=mark.func.id,
                stem=stem,
                target=node.name,
                exercise=options.get("exercise", node.name),
                why=_const(mark.args[0], "the reason", where),
                line=node.lineno,
                source=body,
                imports=imports,
                cite=options.get("cite"),
                needs=options.get("needs"),
            )
        )
    return variants


def apply_variant(solution: str, variant: Variant) -> str:
    """The solution module with `variant.target` replaced by the variant's code and the decoy
    file's imports added after the solution's own."""
    tree = ast.parse(solution)
    lines = solution.splitlines()
    node = next(
        (
            n
            for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == variant.target
        ),
        None,
    )
    if node is None:
        raise VariantError(f"{variant.label}: the solution has no top-level {variant.target} to replace")
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    lines[first - 1 : node.end_lineno] = variant.source.splitlines()
    last_import = max(
        (n.end_lineno for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))),
        default=0,
    )
    if variant.imports and last_import < first:
        lines[last_import:last_import] = [line for imp in variant.imports for line in imp.splitlines()]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- running tests in workers


@dataclass
class Job:
    """One pytest run: the tests of `test_file` against the folder `impl`."""

    id: str
    test_file: str
    impl: str
    stop_first: bool = False
    timeout: float = 180.0
    first_exercise: str | None = None  # its tests run first (a decoy's own exercise)


@dataclass
class JobResult:
    id: str
    results: list = field(default_factory=list)  # dojo.progress.TestResult
    returncode: int | None = None
    seconds: float = 0.0
    error: str = ""  # the run did not complete: a timeout, a dead worker, a usage error

    @property
    def outcomes(self) -> set[str]:
        return {r.outcome.value for r in self.results}


def _run_job(job: dict, root: Path) -> dict:
    """In a worker: one in-process pytest run, its results read back from its report."""
    import pytest

    from dojo.progress import read_report
    from dojo.runner import LEAN

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dojo-job-") as tmp:
        report = Path(tmp) / "report.jsonl"
        args = [job["test_file"], f"--impl={job['impl']}", "-q", "-p", "no:cacheprovider", "--no-progress"]
        args += list(LEAN)
        args += ["--tb=line", f"--kata-report={report}"] + (["-x"] if job["stop_first"] else [])
        if job.get("first_exercise"):
            args.append(f"--first-exercise={job['first_exercise']}")
        code = int(pytest.main(args))
        _, results = read_report(report) if report.exists() else ({}, [])
    _forget_modules(Path(job["impl"]))
    return {
        "id": job["id"],
        "returncode": code,
        "seconds": time.perf_counter() - started,
        "results": [{**r.__dict__, "outcome": r.outcome.value} for r in results],
    }


def _forget_modules(folder: Path) -> None:
    """Unload the kata modules a job loaded from `folder`, so the next job loads its own."""
    prefix = str(folder.resolve()) + os.sep
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str) and file.startswith(prefix) and os.sep not in file[len(prefix) :]:
            del sys.modules[name]
    with contextlib.suppress(ValueError):
        sys.path.remove(str(folder))


def worker_main(root: Path) -> None:
    """A worker: say hello (the torch build, CUDA or not), then run jobs read as JSON lines on
    stdin, answering each with a JSON line. Whatever pytest prints goes to stderr's log."""
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # pytest's own output must not mix with the answers
    os.chdir(root)
    import torch

    torch.set_num_threads(1)
    protocol.write(json.dumps({"hello": {"torch": torch.__version__, "cuda": torch.cuda.is_available()}}) + "\n")
    protocol.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        try:
            answer = _run_job(job, root)
        except BaseException as err:  # noqa: BLE001 - whatever a variant does, the worker reports it
            answer = {"id": job["id"], "error": f"{type(err).__name__}: {err}"}
        protocol.write(json.dumps(answer) + "\n")
        protocol.flush()


class _Worker:
    def __init__(self, root: Path, log) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dojo.variants", "worker", str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=root,
            env=env,
            start_new_session=True,  # DataLoader workers and the like die with it
        )
        self.job: Job | None = None
        self.deadline = 0.0
        self.started = 0.0
        self.hello: dict | None = None

    def send(self, job: Job) -> None:
        self.job, self.started = job, time.perf_counter()
        self.deadline = self.started + job.timeout
        self.proc.stdin.write(json.dumps(job.__dict__) + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, 9)
        self.proc.wait()


class VariantPool:
    """A few worker processes that each import torch once and then run pytest jobs in-process."""

    def __init__(self, root: Path, workers: int, log_path: Path | None = None) -> None:
        self.root = root
        self.size = max(1, workers)
        self.log = open(log_path, "w") if log_path else subprocess.DEVNULL
        self.workers: list[_Worker] = []
        self.info: dict = {}

    def __enter__(self) -> VariantPool:
        return self

    def __exit__(self, *exc) -> None:
        for w in self.workers:
            with contextlib.suppress(BrokenPipeError, OSError):
                w.proc.stdin.close()
            w.kill()
        if self.log is not subprocess.DEVNULL:
            self.log.close()

    def _start(self) -> _Worker:
        worker = _Worker(self.root, self.log)
        line = worker.proc.stdout.readline()
        try:
            worker.hello = json.loads(line)["hello"]
        except (ValueError, KeyError):
            worker.kill()
            raise RuntimeError(f"a test worker did not start: {line.strip() or 'it printed nothing'}") from None
        self.info = worker.hello
        return worker

    def cuda(self) -> bool:
        if not self.workers:
            self.workers.append(self._start())
        return bool(self.info.get("cuda"))

    def run(self, jobs: Iterable[Job], on_result: Callable[[JobResult], None] | None = None) -> dict[str, JobResult]:
        from dojo.progress import TestResult

        pending = list(jobs)
        pending.reverse()  # pop() takes them in the order given
        done: dict[str, JobResult] = {}
        while len(self.workers) < min(self.size, len(pending)):
            self.workers.append(self._start())
        selector = selectors.DefaultSelector()
        for w in self.workers:
            selector.register(w.proc.stdout, selectors.EVENT_READ, w)
        try:
            for w in self.workers:
                if pending:
                    w.send(pending.pop())
            while any(w.job for w in self.workers):
                busy = [w for w in self.workers if w.job]
                wait = max(0.0, min(w.deadline for w in busy) - time.perf_counter())
                events = selector.select(timeout=wait)
                finished: list[tuple[_Worker, JobResult]] = []
                for key, _ in events:
                    w = key.data
                    line = w.proc.stdout.readline()
                    if not w.job:
                        continue
                    if not line:  # the worker died (a variant called os._exit, a segfault)
                        result = JobResult(w.job.id, error=f"the test process died (exit code {w.proc.poll()})")
                        finished.append((w, result))
                        continue
                    data = json.loads(line)
                    result = JobResult(
                        data["id"],
                        [TestResult(**r) for r in data.get("results", [])],
                        data.get("returncode"),
                        data.get("seconds", time.perf_counter() - w.started),
                        data.get("error", ""),
                    )
                    if result.returncode in (2, 3, 4) and not result.results:
                        result.error = (
                            result.error or f"pytest exited with code {result.returncode} before any test ran"
                        )
                    finished.append((w, result))
                now = time.perf_counter()
                for w in busy:
                    if w.job and now >= w.deadline and all(f[0] is not w for f in finished):
                        finished.append((w, JobResult(w.job.id, error=f"timed out after {w.job.timeout:.0f} s")))
                for w, result in finished:
                    done[result.id] = result
                    if on_result:
                        on_result(result)
                    if result.error and ("died" in result.error or "timed out" in result.error):
                        selector.unregister(w.proc.stdout)
                        w.kill()
                        index = self.workers.index(w)
                        w = self.workers[index] = self._start()
                        selector.register(w.proc.stdout, selectors.EVENT_READ, w)
                    w.job = None
                    if pending:
                        w.send(pending.pop())
        finally:
            selector.close()
        return done


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "worker":
        worker_main(Path(argv[1]))
    else:
        raise SystemExit("usage: python -m dojo.variants worker ROOT   (started by `dojo check`)")


if __name__ == "__main__":
    main()
