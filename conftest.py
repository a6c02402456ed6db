"""The suite's switchboard: which implementation is tested, how each kata is loaded, and what the
learner sees at the end of a run.

- `--impl` (env KATA_IMPL) picks the folder under test: `katas` (default), `solutions`, or any
  folder with the same file names (a learner's submission).
- The `kata` fixture loads the file whose stem matches the test file (tests/test_01_x.py ->
  01_x.py) with importlib. A file that does not load fails only its own kata's tests, each with a
  one-line message naming the file and line.
- A test that reaches a stub's NotImplementedError is reported as TODO ("not done yet"), not as
  a failure with a traceback; the run ends with a per-kata progress summary.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dojo import progress
from dojo.loader import KataLoadError, load_kata
from dojo.project import ImplError, find_root, impl_label, kata_by_stem, load_katas, resolve_impl
from dojo.stubs import STUB_TAG
from dojo.testing import DEVICES

ROOT = find_root(Path(__file__).parent)
KATAS = load_katas(ROOT)
DEVICE_MARKS = ("cpu", "cuda", "mps")

impl_key = pytest.StashKey[Path]()
outcomes_key = pytest.StashKey[list]()
failed_exercises_key = pytest.StashKey[set]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("torch-katas")
    group.addoption(
        "--impl",
        default=None,
        help="what to test: 'katas' (default; env KATA_IMPL), 'solutions', or a folder with the same file names",
    )
    group.addoption("--kata-report", default=None, help="write per-test outcomes as JSON (used by dojo)")
    group.addoption("--no-progress", action="store_true", help="leave out the per-kata progress summary")
    group.addoption(
        "--all-failures",
        action="store_true",
        help="show every failing test in full (default for learners: the first failure per exercise, then one line each)",
    )


def pytest_configure(config: pytest.Config) -> None:
    for name, text in [
        ("cpu", "runs on the CPU"),
        ("cuda", "needs a CUDA GPU; skipped where there is none"),
        ("mps", "needs an Apple GPU (MPS); skipped where there is none"),
        ("slow", "takes more than a few seconds"),
        ("benchmark", "a pytest-benchmark measurement; runs only when selected with -m benchmark"),
        ("exercise(name): the kata exercise (function name) a test checks", None),
    ]:
        config.addinivalue_line("markers", f"{name}: {text}" if text else name)
    for kata in KATAS:
        config.addinivalue_line("markers", f"{kata.marker}: kata {kata.id} ({kata.title})")
    try:
        folder = resolve_impl(ROOT, config.getoption("impl"))
    except ImplError as err:
        raise pytest.UsageError(str(err)) from None
    if not any((folder / kata.filename).is_file() for kata in KATAS):
        raise pytest.UsageError(
            f"--impl={config.getoption('impl') or folder}: {folder} holds none of the kata files "
            f"({KATAS[0].filename}, ...); is it the right folder?"
        )
    config.stash[impl_key] = folder
    if "benchmark" not in (config.getoption("markexpr") or "") and "OMP_NUM_THREADS" not in os.environ:
        import torch

        # The tests run thousands of tiny ops: one thread avoids OpenMP's hand-offs, which cost
        # more than the work itself (3x slower on 2 busy cores, and `dojo check` runs two suites
        # at once). Benchmarks keep PyTorch's default.
        torch.set_num_threads(1)
    config.stash[outcomes_key] = []
    config.stash[failed_exercises_key] = set()
    config.pluginmanager.register(StubReports(), "torch-katas-stub-reports")


def pytest_report_header(config: pytest.Config) -> str:
    import torch

    folder = config.stash[impl_key]
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA"
    return f"torch-katas: testing {impl_label(ROOT, folder)} | torch {torch.__version__} | {cuda}"


def _stem_of(item: pytest.Item) -> str | None:
    name = item.path.stem
    return name.removeprefix("test_") if name.startswith("test_") and kata_by_stem(ROOT, name[5:]) else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run_benchmarks = "benchmark" in (config.getoption("markexpr") or "")
    skip_bench = pytest.mark.skip(reason="benchmarks run only when selected: pytest -m benchmark")
    for item in items:
        if item.get_closest_marker("benchmark") and not run_benchmarks:
            item.add_marker(skip_bench)
        stem = _stem_of(item)
        if stem is None:
            continue
        kata = kata_by_stem(ROOT, stem)
        item.add_marker(kata.marker)
        if not any(item.get_closest_marker(m) for m in DEVICE_MARKS):
            item.add_marker("cpu")
        mark = item.get_closest_marker("exercise")
        if mark is None or kata.exercise(mark.args[0]) is None:
            known = ", ".join(e.name for e in kata.exercises)
            raise pytest.UsageError(f"{item.nodeid}: needs @exercise(NAME) with NAME one of katas.toml's {known}")


_loaded: dict[tuple[Path, str], object] = {}


@pytest.fixture
def kata(request: pytest.FixtureRequest):
    """The module under test: <impl>/<stem>.py for tests/test_<stem>.py."""
    folder = request.config.stash[impl_key]
    stem = _stem_of(request.node)
    key = (folder, stem)
    if key not in _loaded:
        try:
            _loaded[key] = load_kata(folder, stem)
        except KataLoadError as err:
            _loaded[key] = err
    module = _loaded[key]
    if isinstance(module, KataLoadError):
        request.node.kata_load_error = True
        pytest.fail(str(module), pytrace=False)
    name = request.node.get_closest_marker("exercise").args[0]
    if not hasattr(module, name):
        request.node.kata_load_error = True
        kata_id = stem.split("_", 1)[0]
        pytest.fail(
            f"{module.__file__} has no {name!r} (exercise of kata {kata_id}); was it renamed or deleted? "
            f"`dojo reset {kata_id}` restores the stub (your file is backed up first)",
            pytrace=False,
        )
    return module


def _shorten_repeats(config: pytest.Config) -> bool:
    return not config.getoption("all_failures") and impl_label(ROOT, config.stash[impl_key]) != "solutions"


@pytest.fixture(scope="session")
def impl_folder(pytestconfig: pytest.Config) -> Path:
    """The folder under test (--impl), for code that loads a kata itself (benchmarks, tools)."""
    return pytestconfig.stash[impl_key]


def _is_stub_error(exc: BaseException | None) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, NotImplementedError) and STUB_TAG in str(exc):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


class StubReports:
    """A test that hit an unfilled stub gets its report without a formatted traceback.

    pytest would format (and the hook below would then throw away) a traceback for every such
    test: about 25 ms each, which made a run over fresh stubs slower than one over the solutions.
    (A plugin object, because a conftest can hold only one function per hook name.)
    """

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport | None:
        if call.when != "call" or call.excinfo is None or _stem_of(item) is None:
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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    stem = _stem_of(item)
    if stem is None:
        return report
    exercise = item.get_closest_marker("exercise").args[0]
    kata_id = stem.split("_", 1)[0]
    report.kata_outcome = None
    if report.when == "call" and report.failed and call.excinfo and _is_stub_error(call.excinfo.value):
        report.kata_outcome = "todo"
        report.longrepr = f"{stem}.{exercise} is not done yet (dojo hint {kata_id})"
    elif report.failed and (report.when == "call" or getattr(item, "kata_load_error", False)):
        report.kata_outcome = "failed"
        seen = item.config.stash[failed_exercises_key]
        if (stem, exercise) in seen and _shorten_repeats(item.config):
            # One full report per exercise is enough to act on; the rest would be a wall of text.
            crash = getattr(getattr(report.longrepr, "reprcrash", None), "message", "") or str(report.longrepr)
            first_line = crash.strip().splitlines()[0].removeprefix("Failed: ")[:300] if crash.strip() else "same failure"
            report.longrepr = f"fails too: {first_line}\n(the first failure of {exercise} above has the details)"
        else:
            seen.add((stem, exercise))
            report.sections.append(("what next", f"Read the message above, then `dojo hint {kata_id}` for a hint on {exercise}."))
    elif report.when == "call" and report.passed:
        report.kata_outcome = "passed"
    elif report.skipped:
        report.kata_outcome = "skipped"
    if report.kata_outcome:
        message = ""
        if report.kata_outcome == "failed" and call.excinfo is not None:
            message = str(getattr(call.excinfo.value, "msg", None) or call.excinfo.value).strip().splitlines()[0:1]
            message = message[0] if message else type(call.excinfo.value).__name__
        item.config.stash[outcomes_key].append(
            progress.Outcome(item.nodeid, stem, exercise, report.kata_outcome, message[:300])
        )
    return report


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    outcome = getattr(report, "kata_outcome", None)
    if outcome == "todo":
        return "todo", "t", ("TODO", {"yellow": True})
    if outcome == "failed" and report.when == "setup":
        # A kata file that does not load: a failed test of that kata, not an error of the suite.
        return "failed", "F", ("FAILED", {"red": True})
    return None


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    outcomes = config.stash.get(outcomes_key, [])
    folder = config.stash.get(impl_key, None)
    if folder is None or config.getoption("no_progress") or not outcomes:
        return
    label = impl_label(ROOT, folder)
    if label == "solutions":
        return
    tr = terminalreporter
    tr.section(f"kata progress ({label})", sep="=", bold=True)
    rows = progress.summarize(outcomes, KATAS)
    for row in rows:
        total = len(row.kata.exercises)
        nxt = row.next
        status = "complete" if row.complete else (f"next: {nxt.exercise.name}" if nxt else "")
        if nxt and nxt.status == progress.WRONG:
            status += " (a test fails)"
        tr.write_line(f"{row.kata.stem:<24} {progress.bar(row.done, total)} {row.done:>2}/{total} exercises   {status}")
    first = next((r for r in rows if r.next), None)
    if first:
        nxt = first.next
        tr.write_line("")
        tr.write_line(f"Next up: {first.kata.stem}.{nxt.exercise.name} — {nxt.exercise.summary}", bold=True)
        tr.write_line(f"  stuck? `dojo hint {first.kata.id}`   run only this kata: `pytest -m {first.kata.marker}`")
    elif rows:
        tr.write_line("Every kata in this run is complete.", green=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = session.config.getoption("kata_report", None)
    if path and impl_key in session.config.stash:
        folder = session.config.stash[impl_key]
        progress.write_report(Path(path), impl_label(ROOT, folder), session.config.stash[outcomes_key])


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest):
    """Each device a test should hold on: cpu always; cuda and mps where present (SKIPPED elsewhere)."""
    import torch

    return torch.device(request.param)
