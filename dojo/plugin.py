"""The pytest plugin of torch-katas: what is tested, how each kata is loaded, and what the
learner sees. `conftest.py` registers it (`pytest_plugins = ["dojo.plugin"]`); it takes the
project from `config.rootpath` (the folder holding katas.toml) and is inactive elsewhere.

- `--impl` (env KATA_IMPL) picks the folder under test: `katas` (default), `solutions`, or any
  folder with the same file names (a learner's submission). A bad value is one usage line.
- The `kata` fixture loads `<impl>/<stem>.py` for `tests/test_<stem>.py`. A file that does not
  load fails its kata's first test with one line naming the file and line; the kata's other
  tests count as failed too but are reported as BROKEN, without a message of their own.
- A test that reaches a stub's NotImplementedError is TODO ("not done yet"), without a
  traceback; a wrong answer shows its first failing test in full and later failures of the
  same exercise in one line each. The run ends with a per-kata progress summary.
- `-m kata05` collects only kata 05's test file (the others are not even imported).
- Tests run with one torch thread unless benchmarks run: thousands of tiny ops are faster
  without OpenMP's hand-offs, benchmarks measure the machine as it is.
- Torch's process-wide settings (grad mode, default dtype, deterministic algorithms, cuDNN
  flags, anomaly mode, threads) are restored after each test: an answer that changes one for
  good fails its own test, not every later one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path

import pytest

from dojo.loader import NOT_LOADED, KataLoadError, load_kata
from dojo.progress import Outcome, ReportWriter, TestResult
from dojo.project import METADATA_FILE, ImplError, Kata, impl_label, impl_value, load_katas, resolve_impl
from dojo.report import first_sentences, write_summary
from dojo.stubs import STUB_TAG
from dojo.testing import DEVICES

DEVICE_MARKS = ("cpu", "cuda", "mps")


@dataclass
class KataRun:
    """What one pytest run knows about the katas it tests (kept in `config.stash`)."""

    root: Path
    katas: tuple[Kata, ...]
    folder: Path
    results: list[TestResult] = field(default_factory=list)
    reported: set[tuple[str, str]] = field(default_factory=set)  # exercises whose failure was shown in full
    loaded: dict[str, object] = field(default_factory=dict)  # stem -> module or KataLoadError
    broken_shown: set[str] = field(default_factory=set)  # stems whose load error was shown once
    writer: ReportWriter | None = None
    pid: int = field(default_factory=os.getpid)

    @property
    def label(self) -> str:
        return impl_label(self.root, self.folder)

    def kata_of(self, path: Path) -> Kata | None:
        """The kata whose test file `path` is (tests/test_<stem>.py), else None."""
        name = path.stem
        if not name.startswith("test_"):
            return None
        return next((k for k in self.katas if k.stem == name[5:]), None)


run_key = pytest.StashKey[KataRun]()


def kata_run(config: pytest.Config) -> KataRun | None:
    return config.stash.get(run_key, None)


# ---------------------------------------------------------------- options and set-up


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("torch-katas")
    group.addoption(
        "--impl",
        default=None,
        help="what to test: 'katas' (default; env KATA_IMPL), 'solutions', or a folder with the same file names",
    )
    group.addoption("--kata-report", default=None, help="write per-test outcomes as JSON lines (used by dojo)")
    group.addoption(
        "--exercise", default=None, metavar="NAME", help="run only the tests of this exercise (e.g. clamp_in_place)"
    )
    group.addoption(
        "--first-exercise",
        default=None,
        metavar="NAME",
        help="run this exercise's tests first (dojo check: a decoy is usually caught by its own exercise's tests)",
    )
    group.addoption("--no-progress", action="store_true", help="leave out the per-kata progress summary")
    group.addoption(
        "--all-failures",
        action="store_true",
        help="show every failing test in full (default for learners: the first failure per exercise, then one line each)",
    )
    group = parser.getgroup("torch-katas benchmarks")
    group.addoption("--bench-quick", action="store_true", help="benchmarks: small data sets, for a quick look or CI")
    group.addoption(
        "--bench-workers",
        default=None,
        help="benchmarks: num_workers values to time, e.g. 0,2,8 (default: 0,1,2,4,... up to the CPU count)",
    )


def benchmarks_run(config: pytest.Config) -> bool:
    """Whether this run times benchmarks: pytest-benchmark's --benchmark-only, or no --benchmark-skip
    (which the project's addopts give every plain run)."""
    if config.getoption("benchmark_only", default=False):
        return True
    return not config.getoption("benchmark_skip", default=False)


def pytest_configure(config: pytest.Config) -> None:
    root = Path(config.rootpath)
    if not (root / METADATA_FILE).is_file():
        return  # not a torch-katas folder (pytest's own tests of this plugin run elsewhere too)
    katas = load_katas(root)
    for name, text in [
        ("cpu", "runs on the CPU"),
        ("cuda", "needs a CUDA GPU; skipped where there is none"),
        ("mps", "needs an Apple GPU (MPS); skipped where there is none"),
        ("slow", "takes more than a few seconds (-m 'not slow' leaves it out)"),
        ("exercise(name): the kata exercise (function or class name) a test checks", None),
    ]:
        config.addinivalue_line("markers", f"{name}: {text}" if text else name)
    for kata in katas:
        config.addinivalue_line("markers", f"{kata.marker}: kata {kata.id} ({kata.title})")
    try:
        folder = resolve_impl(root, config.getoption("impl"))
    except ImplError as err:
        raise pytest.UsageError(str(err)) from None
    if not any((folder / kata.filename).is_file() for kata in katas):
        raise pytest.UsageError(
            f"--impl={impl_value(config.getoption('impl'))}: {folder} holds none of the kata files "
            f"({katas[0].filename if katas else 'NN_topic.py'}, ...); is it the right folder?"
        )
    run = KataRun(root, katas, folder)
    config.stash[run_key] = run
    if not benchmarks_run(config) and "OMP_NUM_THREADS" not in os.environ:
        import torch

        # The tests run thousands of tiny ops: one thread avoids OpenMP's hand-offs, which cost
        # more than the work itself (3x slower on 2 busy cores). Benchmarks keep the default.
        torch.set_num_threads(1)
    report = config.getoption("kata_report")
    if report:
        run.writer = ReportWriter(Path(report), _header(run))


class _TorchGlobals:
    """The process-wide torch settings a learner's answer can change and forget to restore.

    A wrong answer that switches autograd off, changes the default dtype or turns on
    deterministic algorithms for good must fail its own test, not every later test of the run
    (in one pytest process, or in a `dojo check` worker that runs many variants one after another).
    """

    def __init__(self) -> None:
        import torch

        self.torch = torch
        self.grad = torch.is_grad_enabled()
        self.dtype = torch.get_default_dtype()
        self.deterministic = torch.are_deterministic_algorithms_enabled()
        self.warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
        self.cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
        self.anomaly = torch.is_anomaly_enabled()
        self.threads = torch.get_num_threads()

    def restore(self) -> None:
        torch = self.torch
        torch.set_grad_enabled(self.grad)
        torch.set_default_dtype(self.dtype)
        # Only when changed: the call imports torch._inductor (a second or more, the first time).
        if (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()) != (
            self.deterministic,
            self.warn_only,
        ):
            torch.use_deterministic_algorithms(self.deterministic, warn_only=self.warn_only)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = self.cudnn
        if torch.is_anomaly_enabled() != self.anomaly:
            torch.set_anomaly_enabled(self.anomaly)
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    if kata_run(item.config) is None:
        return (yield)
    saved = _TorchGlobals()
    try:
        return (yield)
    finally:
        saved.restore()


def _header(run: KataRun) -> dict:
    import torch

    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"impl": run.label, "torch": torch.__version__, "cuda": cuda, "pid": run.pid}


def pytest_unconfigure(config: pytest.Config) -> None:
    run = kata_run(config)
    if run and run.writer:
        run.writer.close()


def pytest_report_header(config: pytest.Config) -> str | None:
    run = kata_run(config)
    if run is None:
        return None
    header = _header(run)
    return f"torch-katas: testing {run.label} | torch {header['torch']} | {header['cuda'] or 'no CUDA'}"


# ---------------------------------------------------------------- collection


def _names(expression: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_]\w*", expression)) - {"and", "or", "not", "True", "False"}


def _could_match(expression: str, kata: Kata, all_katas: tuple[Kata, ...]) -> bool:
    """Whether some test of `kata` could match the -m `expression`: its kata marker is set, the
    other katas' are not, and every other marker may be either. True when unsure."""
    try:
        from _pytest.mark.expression import Expression

        compiled = Expression.compile(expression)
    except Exception:  # pytest's private API moved, or an expression pytest will reject itself
        return True
    kata_marks = {k.marker for k in all_katas}
    free = sorted(_names(expression) - kata_marks)
    if len(free) > 8:
        return True
    for values in product((False, True), repeat=len(free)):
        assigned = dict(zip(free, values))

        def matcher(name: str, /, assigned=assigned, **kwargs) -> bool:
            return name == kata.marker if name in kata_marks else assigned.get(name, False)

        if compiled.evaluate(matcher):
            return True
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """`-m kata05` imports only kata 05's test file: the learner's loop should not pay for
    importing every other kata's tests (torchvision alone takes seconds)."""
    run = kata_run(config)
    expression = config.getoption("markexpr", default="")
    if run is None or not expression or collection_path.suffix != ".py":
        return None
    kata = run.kata_of(collection_path)
    if kata is None or not (_names(expression) & {k.marker for k in run.katas}):
        return None
    return True if not _could_match(expression, kata, run.katas) else None


@pytest.hookimpl(tryfirst=True)  # before -k and -m deselect: `-k clamp_in_place` matches the exercise
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run = kata_run(config)
    if run is None:
        return
    only = config.getoption("exercise")
    deselected = []
    for item in items:
        kata = run.kata_of(item.path)
        if kata is None:
            continue
        item.add_marker(kata.marker)
        if not any(item.get_closest_marker(m) for m in DEVICE_MARKS):
            item.add_marker("cpu")
        mark = item.get_closest_marker("exercise")
        if mark is None or kata.exercise(mark.args[0]) is None:
            known = ", ".join(e.name for e in kata.exercises)
            raise pytest.UsageError(f"{item.nodeid}: needs @exercise(NAME) with NAME one of katas.toml's {known}")
        item.extra_keyword_matches.add(mark.args[0])
        if only and mark.args[0] != only:
            deselected.append(item)
    first = config.getoption("first_exercise")
    if first:
        items.sort(
            key=lambda item: (
                item.get_closest_marker("exercise") is None or item.get_closest_marker("exercise").args[0] != first
            )
        )
    if only:
        if not any(kata.exercise(only) for kata in run.katas):
            names = ", ".join(e.name for k in run.katas for e in k.exercises)
            raise pytest.UsageError(f"--exercise={only}: no kata has that exercise (they are: {names})")
        config.hook.pytest_deselected(items=deselected)
        dropped = set(deselected)
        items[:] = [item for item in items if item not in dropped]


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def kata(request: pytest.FixtureRequest):
    """The module under test: <impl>/<stem>.py for tests/test_<stem>.py."""
    run = kata_run(request.config)
    info = run.kata_of(request.node.path) if run else None
    if info is None:
        pytest.fail("the kata fixture works in tests/test_<stem>.py files of a torch-katas folder", pytrace=False)
    if info.stem not in run.loaded:
        try:
            run.loaded[info.stem] = load_kata(run.folder, info.stem)
        except KataLoadError as err:
            run.loaded[info.stem] = err
    module = run.loaded[info.stem]
    if isinstance(module, KataLoadError):
        first = info.stem not in run.broken_shown
        run.broken_shown.add(info.stem)
        request.node.kata_broken = "first" if first else "repeat"
        pytest.fail(f"{module} ({NOT_LOADED}: every test of kata {info.id} waits for that line)", pytrace=False)
    name = request.node.get_closest_marker("exercise").args[0]
    if not hasattr(module, name):
        request.node.kata_missing = True
        pytest.fail(
            f"{module.__file__} has no {name!r} (exercise of kata {info.id}); was it renamed or deleted? "
            f"`dojo reset {info.id}` restores the stub (your file is backed up first)",
            pytrace=False,
        )
    return module


@pytest.fixture(scope="session")
def impl_folder(pytestconfig: pytest.Config) -> Path:
    """The folder under test (--impl), for code that loads a kata itself (benchmarks, tools)."""
    run = kata_run(pytestconfig)
    if run is None:
        pytest.fail("impl_folder needs a torch-katas folder (katas.toml at the root)", pytrace=False)
    return run.folder


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest):
    """Each device a test should hold on: cpu always; cuda and mps where present (SKIPPED elsewhere)."""
    import torch

    return torch.device(request.param)


# ---------------------------------------------------------------- reports


def _is_stub_error(exc: BaseException | None) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, NotImplementedError) and STUB_TAG in str(exc):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport | None:
    """A test that hit an unfilled stub gets its report without a formatted traceback: pytest
    would spend about 25 ms formatting each one, only for the wrapper below to replace it."""
    run = kata_run(item.config)
    if run is None or call.when != "call" or call.excinfo is None or run.kata_of(item.path) is None:
        return None
    if not _is_stub_error(call.excinfo.value):
        return None
    return pytest.TestReport(
        item.nodeid,
        item.location,
        {name: 1 for name in item.keywords},
        "failed",
        "not done yet",  # replaced by the one-line TODO message below
        "call",
        duration=call.duration,
        start=call.start,
        stop=call.stop,
        user_properties=item.user_properties,
    )


def _crash_message(report: pytest.TestReport) -> str:
    crash = getattr(getattr(report.longrepr, "reprcrash", None), "message", None)
    return (crash if crash is not None else str(report.longrepr)).strip().removeprefix("Failed: ")


# (A second implementation of the hook in one module: pluggy's specname; pytest reads only names
# that start with "pytest_".)
@pytest.hookimpl(wrapper=True, specname="pytest_runtest_makereport")
def pytest_runtest_makereport_record(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    run = kata_run(item.config)
    kata = run.kata_of(item.path) if run else None
    if kata is None:
        return report
    exercise = item.get_closest_marker("exercise").args[0]
    broken = getattr(item, "kata_broken", None)
    outcome = None
    if report.when == "call" and report.failed and _is_stub_error(call.excinfo and call.excinfo.value):
        outcome = Outcome.TODO
        report.kata_todo = True
        report.longrepr = f"{kata.stem}.{exercise} is not done yet (dojo hint {kata.id} {exercise})"
    elif report.failed and broken:
        outcome = Outcome.FAILED
        report.kata_broken = broken
        report.kata_setup_failure = report.when == "setup"
        if broken == "repeat":
            report.longrepr = ""  # counted as failed; the first test of the kata carries the message
        else:
            report.sections.append(
                ("what next", f"Fix that line, or `dojo reset {kata.id}` for a fresh stub (your file is backed up).")
            )
    elif report.failed and (report.when == "call" or getattr(item, "kata_missing", False)):
        outcome = Outcome.FAILED
        report.kata_setup_failure = report.when == "setup"
        if (kata.stem, exercise) in run.reported and _shorten_repeats(item.config, run):
            # One full report per exercise is enough to act on; the rest would be a wall of text.
            report.longrepr = (
                f"fails too: {first_sentences(_crash_message(report)) or 'the same way'}\n"
                f"(the first failure of {exercise} above has the details)"
            )
        else:
            run.reported.add((kata.stem, exercise))
            report.sections.append(
                (
                    "what next",
                    f"Read the message above, then `dojo hint {kata.id} {exercise}` for a hint, "
                    f"or `dojo test {kata.id} {exercise}` to run only this exercise's tests.",
                )
            )
    elif report.when == "call" and report.passed:
        outcome = Outcome.PASSED
    elif report.skipped:
        outcome = Outcome.SKIPPED
    if outcome is not None:
        message = ""
        if outcome is Outcome.FAILED and call.excinfo is not None:
            value = call.excinfo.value
            lines = str(getattr(value, "msg", None) or value).strip().splitlines()
            message = lines[0] if lines else type(value).__name__
        result = TestResult(item.nodeid, kata.stem, exercise, outcome, message[:500])
        run.results.append(result)
        if run.writer is not None and os.getpid() == run.pid:  # a forked child must not write
            run.writer.add(result)
    return report


def _shorten_repeats(config: pytest.Config, run: KataRun) -> bool:
    return not config.getoption("all_failures") and run.label != "solutions"


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    if getattr(report, "kata_broken", None) == "repeat":
        return "broken", "B", ("BROKEN", {"red": True})
    if getattr(report, "kata_todo", False):
        return "todo", "t", ("TODO", {"yellow": True})
    if getattr(report, "kata_setup_failure", False):
        # A kata file that does not load, or lacks an exercise: a failed test of that kata, not
        # an error of the suite.
        return "failed", "F", ("FAILED", {"red": True})
    return None


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    run = kata_run(config)
    if run is None or config.getoption("no_progress") or not run.results or run.label == "solutions":
        return
    broken = {stem: str(err) for stem, err in run.loaded.items() if isinstance(err, KataLoadError)}
    write_summary(terminalreporter, run.label, run.results, run.katas, broken, config.getoption("exercise"))
