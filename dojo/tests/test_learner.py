"""The learner's logic without a test run: which kata is current, which hint comes next, what a
reset does, which kata a save belongs to, and the results cache (as rustlings tests its
`next_pending_exercise`)."""

from __future__ import annotations

import os
import time

from dojo import cache, learner
from dojo.progress import Outcome, TestResult, summarize
from dojo.project import load_katas
from dojo.runner import Run


def results(stem: str, outcomes: dict[str, str]) -> list[TestResult]:
    return [TestResult(f"{stem}::{ex}", stem, ex, Outcome(o)) for ex, o in outcomes.items()]


def katas_of(project):
    load_katas.cache_clear()
    return load_katas(project)


def rows_for(project, **by_kata):
    katas = katas_of(project)
    return summarize([r for stem, outcomes in by_kata.items() for r in results(stem, outcomes)], katas)


def test_the_next_exercise_is_the_first_not_done(project):
    rows = rows_for(project, **{"01_double": {"double": "passed", "Counter": "todo"}})
    assert rows[0].next.exercise.name == "Counter" and rows[0].done == 1


def test_a_failing_exercise_comes_before_a_later_todo(project):
    rows = rows_for(project, **{"01_double": {"double": "failed", "Counter": "todo"}})
    assert rows[0].next.exercise.name == "double" and rows[0].next.status.value == "wrong"


def test_the_current_kata_is_the_first_while_nothing_is_edited(project):
    rows = rows_for(project, **{"01_double": {"double": "todo"}, "02_halve": {"halve": "todo"}})
    assert learner.current(rows, project, "katas").kata.stem == "01_double"


def test_the_current_kata_is_the_one_edited_most_recently(project):
    rows = rows_for(project, **{"01_double": {"double": "todo"}, "02_halve": {"halve": "failed"}})
    path = project / "katas" / "02_halve.py"
    path.write_text(path.read_text() + "\n# working on it\n")
    assert learner.current(rows, project, "katas").kata.stem == "02_halve"
    other = project / "katas" / "01_double.py"
    other.write_text(other.read_text() + "\n# and now this one\n")
    later = time.time() + 10
    os.utime(other, (later, later))
    assert learner.current(rows, project, "katas").kata.stem == "01_double"


def test_a_complete_kata_is_never_current(project):
    rows = rows_for(project, **{"01_double": {"double": "passed", "Counter": "passed"}, "02_halve": {"halve": "todo"}})
    path = project / "katas" / "01_double.py"
    path.write_text(path.read_text() + "\n# done\n")
    assert learner.current(rows, project, "katas").kata.stem == "02_halve"


def test_hints_go_from_nudge_to_near_answer_then_stay_on_the_last():
    hints = ("nudge", "api", "near")
    shown = [learner.next_hint(n, hints) for n in range(5)]
    assert [h.text for h in shown] == ["nudge", "api", "near", "near", "near"]
    assert [h.last for h in shown] == [False, False, True, True, True]
    assert learner.next_hint(0, ()) is None


def test_hint_state_is_remembered_per_exercise(project):
    state = learner.HintState(project)
    state.record("01_double.double", 2)
    assert learner.HintState(project).shown("01_double.double") == 2
    assert learner.HintState(project).shown("01_double.Counter") == 0


def test_reset_backs_up_the_file_and_forgets_the_katas_hints(project):
    kata = katas_of(project)[0]
    path = project / "katas" / kata.filename
    path.write_text("my work\n")
    learner.HintState(project).record(f"{kata.stem}.double", 3)
    learner.HintState(project).record("02_halve.halve", 1)
    changed, saved = learner.reset_kata(project, kata)
    assert changed and saved.read_text() == "my work\n"
    assert path.read_text() == learner.fresh_stub(project, kata)
    state = learner.HintState(project)
    assert state.shown(f"{kata.stem}.double") == 0 and state.shown("02_halve.halve") == 1
    assert learner.reset_kata(project, kata) == (False, None), "a fresh stub is left alone"


def test_the_kata_of_a_saved_file_is_found(project):
    katas = katas_of(project)
    folder = project / "katas"
    before = {p: 1.0 for p in folder.glob("*.py")}
    after = dict(before)
    after[folder / "02_halve.py"] = 2.0
    assert learner.changed_kata(before, after, katas).stem == "02_halve"
    assert learner.changed_kata(before, before, katas) is None


def fake_runner(calls, outcome="todo"):
    def run(files):
        calls.append(list(files))
        stems = [f.split("test_", 1)[1].removesuffix(".py") for f in files]
        found = [TestResult(f"{s}::x", s, "double" if s == "01_double" else "halve", Outcome(outcome)) for s in stems]
        return Run(1, found, "")

    return run


def test_the_cache_reruns_only_katas_whose_files_changed(project):
    katas = katas_of(project)
    folder = project / "katas"
    calls: list = []
    first = cache.cached_results(project, folder, katas, fake_runner(calls))
    assert [k.stem for k in first.ran] == ["01_double", "02_halve"]
    second = cache.cached_results(project, folder, katas, fake_runner(calls))
    assert second.ran == [] and len(second.results) == 2, "nothing changed: nothing runs"
    path = folder / "02_halve.py"
    path.write_text(path.read_text() + "\n# edited\n")
    third = cache.cached_results(project, folder, katas, fake_runner(calls))
    assert [k.stem for k in third.ran] == ["02_halve"] and calls[-1] == ["tests/test_02_halve.py"]


def test_the_cache_is_not_trusted_after_a_test_file_or_metadata_changes(project):
    katas = katas_of(project)
    folder = project / "katas"
    calls: list = []
    cache.cached_results(project, folder, katas, fake_runner(calls))
    test = project / "tests" / "test_01_double.py"
    test.write_text(test.read_text() + "\n")
    assert [k.stem for k in cache.cached_results(project, folder, katas, fake_runner(calls)).ran] == ["01_double"]


def test_the_cache_is_not_trusted_in_another_environment(project, monkeypatch):
    katas = katas_of(project)
    folder = project / "katas"
    calls: list = []
    cache.cached_results(project, folder, katas, fake_runner(calls))
    real = cache.environment()
    monkeypatch.setattr(cache, "environment", lambda: {**real, "torch": "9.9.9"})
    assert len(cache.cached_results(project, folder, katas, fake_runner(calls)).ran) == 2
    monkeypatch.setattr(cache, "environment", lambda: {**real, "nvidia_devices": ["/dev/nvidia0"]})
    assert len(cache.cached_results(project, folder, katas, fake_runner(calls)).ran) == 2
