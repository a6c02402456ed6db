"""The pytest plugin (dojo/plugin.py), run in-process with pytester on the fixture project: what
a learner and an instructor see for a stub, a wrong answer, a broken file, a bad --impl."""

from __future__ import annotations

import json

import pytest
import torch


def lines(result: pytest.RunResult) -> list[str]:
    return result.outlines


def before_short_summary(result: pytest.RunResult) -> str:
    """The output above pytest's own "short test summary info", whose lines are cut to the
    terminal's width locally but kept whole where the CI variable is set."""
    return result.stdout.str().split("short test summary info")[0]


def test_a_stub_reads_as_todo_without_a_traceback(project, pytester):
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(passed=0, failed=0)
    assert result.parseoutcomes().get("todo") == 7
    text = result.stdout.str()
    assert "Traceback" not in text and "NotImplementedError" not in text
    assert result.ret == 1
    verbose = pytester.runpytest_inprocess("-v", "-m", "kata02")
    verbose.stdout.fnmatch_lines(["tests/test_02_halve.py::TestHalve::test_halves_floats TODO*"])


def test_the_run_ends_with_the_progress_summary(project, pytester):
    result = pytester.runpytest_inprocess()
    result.stdout.fnmatch_lines(
        [
            "*kata progress (katas)*",
            "01_double *0/2 exercises   next: double",
            "02_halve *0/1 exercises   next: halve",
            "Next up: 01_double.double — every element times two, a new tensor",
            "*`dojo hint 01 double`*`dojo test 01 double`*`dojo test 01`*",
        ]
    )


def test_solutions_pass_without_a_summary(project, pytester):
    result = pytester.runpytest_inprocess("--impl=solutions")
    result.assert_outcomes(passed=7)
    assert "kata progress" not in result.stdout.str()


def test_kata_impl_in_the_environment_chooses_the_folder(project, pytester, monkeypatch):
    monkeypatch.setenv("KATA_IMPL", "solutions")
    pytester.runpytest_inprocess().assert_outcomes(passed=7)


def test_a_wrong_answer_shows_its_first_failure_in_full_then_one_line_repeats(submission, pytester):
    path = submission / "01_double.py"
    path.write_text(path.read_text().replace("return x * 2", "return x + 2"))
    result = pytester.runpytest_inprocess(f"--impl={submission}", "-m", "kata01")
    result.assert_outcomes(passed=3, failed=2)
    text = before_short_summary(result)
    assert text.count("double([1, 2]): got the wrong values") == 1, "the first failure is shown in full once"
    assert "fails too: double([3]): got the wrong values" in text
    assert "(the first failure of double above has the details)" in text
    assert "`dojo hint 01 double`" in text and "`dojo test 01 double`" in text
    result.stdout.fnmatch_lines(["01_double *1/2 exercises   next: double (a test fails)"])


def test_all_failures_shows_every_failure_in_full(submission, pytester):
    path = submission / "01_double.py"
    path.write_text(path.read_text().replace("return x * 2", "return x + 2"))
    result = pytester.runpytest_inprocess(f"--impl={submission}", "-m", "kata01", "--all-failures")
    assert "fails too" not in result.stdout.str()


def test_a_syntax_error_fails_only_that_kata_in_one_line(submission, pytester):
    path = submission / "01_double.py"
    source = path.read_text().splitlines()
    source[5] = "def double(x:"
    path.write_text("\n".join(source))
    result = pytester.runpytest_inprocess(f"--impl={submission}", "-rf")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1 and outcomes.get("broken") == 4 and outcomes.get("passed") == 2, outcomes
    text = before_short_summary(result)
    assert text.count("01_double.py, line 6: SyntaxError") == 2, "once as the failure, once in the progress summary"
    assert len([line for line in lines(result) if line.startswith("FAILED")]) == 1
    assert "Traceback" not in text
    result.stdout.fnmatch_lines(["Next up: make 01_double.py load again*"])


def test_a_missing_kata_file_fails_only_its_kata(submission, pytester):
    (submission / "02_halve.py").unlink()
    result = pytester.runpytest_inprocess(f"--impl={submission}")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 5 and outcomes.get("failed") == 1 and outcomes.get("broken") == 1, outcomes
    assert "02_halve.py does not exist" in result.stdout.str()


def test_a_missing_exercise_is_named(submission, pytester):
    path = submission / "02_halve.py"
    path.write_text(path.read_text().replace("def halve(", "def halved("))
    result = pytester.runpytest_inprocess(f"--impl={submission}", "-m", "kata02")
    result.assert_outcomes(failed=2)
    assert "has no 'halve' (exercise of kata 02); was it renamed or deleted?" in result.stdout.str()


@pytest.mark.parametrize("impl", ["no/such/folder", "tests"], ids=["missing_folder", "folder_without_katas"])
def test_a_bad_impl_is_one_usage_line(project, pytester, impl):
    result = pytester.runpytest_inprocess(f"--impl={impl}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("ERROR: --impl="), errors


def test_one_kata_marker_collects_only_that_katas_file(project, pytester):
    result = pytester.runpytest_inprocess("--collect-only", "-q", "-m", "kata02")
    text = result.stdout.str()
    assert "test_02_halve.py::TestHalve::test_halves_floats" in text
    assert "test_01_double" not in text and "deselected" not in text, "kata 01's file should not even be collected"


def test_an_expression_with_other_markers_still_selects_right(project, pytester):
    result = pytester.runpytest_inprocess("--collect-only", "-q", "-m", "kata01 and cpu")
    assert "5 tests collected" in result.stdout.str()
    result = pytester.runpytest_inprocess("--collect-only", "-q", "-m", "not kata01")
    assert "2 tests collected" in result.stdout.str() and "test_01_double" not in result.stdout.str()


def test_one_exercise_runs_with_exercise_or_k(project, pytester):
    result = pytester.runpytest_inprocess("--impl=solutions", "--exercise=Counter")
    result.assert_outcomes(passed=2, deselected=5)
    result = pytester.runpytest_inprocess("--impl=solutions", "-k", "halve")
    result.assert_outcomes(passed=2, deselected=5)
    result = pytester.runpytest_inprocess("--exercise=nothing")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_a_test_without_its_exercise_mark_is_a_usage_error(project, pytester):
    (project / "tests" / "test_02_halve.py").write_text("def test_unmarked(kata):\n    pass\n")
    result = pytester.runpytest_inprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "needs @exercise(NAME) with NAME one of katas.toml's halve" in result.stderr.str()


def test_the_report_has_a_header_and_a_line_per_test(project, pytester):
    report = project / "report.jsonl"
    pytester.runpytest_inprocess("--impl=solutions", f"--kata-report={report}")
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert rows[0]["header"]["impl"] == "solutions" and rows[0]["header"]["torch"] == torch.__version__
    assert [r["outcome"] for r in rows[1:]] == ["passed"] * 7
    assert {r["exercise"] for r in rows[1:]} == {"double", "Counter", "halve"}


THREADS_PROBE = """
import torch

def test_threads():
    with open("threads.txt", "w") as fh:
        fh.write(str(torch.get_num_threads()))
"""


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    "args, pinned",
    [((), True), (("-m", "not benchmark"), True), (("--benchmark-only",), False), (("-o", "addopts="), False)],
    ids=["plain_run", "not_benchmark_marker", "benchmark_only", "without_benchmark_skip"],
)
def test_threads_are_pinned_unless_benchmarks_run(project, pytester, restore_threads, monkeypatch, args, pinned):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    pytester.makepyfile(test_threads_probe=THREADS_PROBE)
    torch.set_num_threads(2)
    pytester.runpytest_inprocess("test_threads_probe.py", *args)
    threads = int((project / "threads.txt").read_text()) if (project / "threads.txt").exists() else None
    if pinned:
        assert threads == 1, f"{args}: the tests ran with {threads} threads"
    else:
        assert torch.get_num_threads() == 2, f"{args}: threads were pinned while benchmarks may run"


def test_an_answer_that_switches_autograd_off_for_good_fails_only_its_own_test(submission, pytester):
    # The answer leaves grad mode off and float64 as the default dtype: its own test fails (its
    # expected tensor comes out float64), and every later test sees torch as it was.
    path = submission / "01_double.py"
    path.write_text(
        path.read_text().replace(
            "    return x * 2\n",
            "    torch.set_grad_enabled(False)\n    torch.set_default_dtype(torch.float64)\n    return x * 2\n",
        )
    )
    (pytester.path / "tests" / "test_zz_globals.py").write_text(
        "import torch\n\n\ndef test_torch_is_as_it_was():\n"
        "    assert torch.is_grad_enabled()\n    assert torch.get_default_dtype() == torch.float32\n"
    )
    result = pytester.runpytest_inprocess(f"--impl={submission}", "tests/test_01_double.py", "tests/test_zz_globals.py")
    result.assert_outcomes(passed=5, failed=1)
    assert torch.is_grad_enabled() and torch.get_default_dtype() == torch.float32


def test_a_stub_inside_an_expected_runtime_error_is_todo_not_a_wrong_answer(project, pytester):
    # NotImplementedError is a RuntimeError: a test that expects the answer to raise RuntimeError
    # (any message) must still read an unfilled stub as "not done yet".
    (pytester.path / "tests" / "test_02_halve.py").write_text(
        "import torch\n\nfrom dojo.testing import exercise, expect_raises\n\n\n"
        '@exercise("halve")\nclass TestHalve:\n'
        "    def test_a_string_raises(self, kata):\n"
        '        with expect_raises(RuntimeError, None, "halve(...)"):\n'
        "            kata.halve(torch.ones(2, 2))\n"
    )
    result = pytester.runpytest_inprocess("-m", "kata02")
    assert result.parseoutcomes().get("todo") == 1 and "failed" not in result.parseoutcomes()
