"""`dojo check`'s parts: reading decoy files, applying a variant to a solution, the docstring
audit, and the whole check on the fixture project (one test run per kata, stub and variant)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from dojo import audit, variants

SOLUTION = textwrap.dedent('''
    """A solution."""

    import torch


    def double(x):
        """Return a new tensor, twice x."""
        # BEGIN SOLUTION
        return torch.mul(x, 2)
        # END SOLUTION


    def helper():
        return 1
''')


def write_decoys(tmp_path, text):
    path = tmp_path / "decoys.py"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_decoy_file_is_read_variant_by_variant(tmp_path):
    path = write_decoys(
        tmp_path,
        """
        import numpy as np
        from dojo.variants import alternative, decoy

        @decoy("adds two", cite="https://example.org/thread")
        def double(x):
            return x + 2

        @alternative("x + x")
        def double(x):
            return x + x

        @decoy("the helper is wrong", exercise="double", needs="cuda")
        def helper():
            return np.int64(2)
        """,
    )
    found = variants.read_variants(path, "01_demo")
    assert [(v.kind, v.target, v.exercise) for v in found] == [
        ("decoy", "double", "double"),
        ("alternative", "double", "double"),
        ("decoy", "helper", "double"),
    ]
    assert found[0].cite == "https://example.org/thread" and found[2].needs == "cuda"
    assert found[0].imports == ("import numpy as np",)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("def double(x):\n    return x\n", "needs exactly one @decoy"),
        ("@staticmethod\n@decoy('why')\ndef double(x):\n    return x\n", "as its first decorator"),
        ("@decoy('why')\n@alternative('why')\ndef double(x):\n    return x\n", "needs exactly one @decoy"),
        ("@decoy()\ndef double(x):\n    return x\n", "needs the reason"),
        ("@decoy('why', when='now')\ndef double(x):\n    return x\n", "unknown option"),
        ("@decoy('why', needs='tpu')\ndef double(x):\n    return x\n", "needs= may only be 'cuda'"),
        ("@decoy(REASON)\ndef double(x):\n    return x\n", "must be a plain string"),
    ],
    ids=[
        "no_decorator",
        "mark_not_first",
        "two_marks",
        "no_reason",
        "unknown_option",
        "unknown_device",
        "not_a_string",
    ],
)
def test_a_malformed_decoy_is_reported_with_its_line(tmp_path, text, problem):
    with pytest.raises(variants.VariantError, match=problem):
        variants.read_variants(write_decoys(tmp_path, text), "01_demo")


def test_a_variant_replaces_its_namesake_and_keeps_the_rest(tmp_path):
    path = write_decoys(
        tmp_path,
        """
        import math
        from dojo.variants import decoy

        @decoy("adds two")
        def double(x):
            return x + math.e
        """,
    )
    (variant,) = variants.read_variants(path, "01_demo")
    module = variants.apply_variant(SOLUTION, variant)
    namespace: dict = {}
    exec(compile(module, "variant", "exec"), namespace)
    assert namespace["double"](0) == pytest.approx(2.718281828) and namespace["helper"]() == 1
    assert "torch.mul" not in module and "import math" in module


def test_a_variant_keeps_its_own_decorators_below_the_mark(tmp_path):
    path = write_decoys(
        tmp_path,
        """
        import contextlib
        from dojo.variants import decoy

        @decoy("a context manager that yields three")
        @contextlib.contextmanager
        def double(x):
            yield 3
        """,
    )
    (variant,) = variants.read_variants(path, "01_demo")
    assert variant.source.startswith("@contextlib.contextmanager\ndef double")
    namespace: dict = {}
    exec(compile(variants.apply_variant(SOLUTION, variant), "variant", "exec"), namespace)
    with namespace["double"](0) as value:
        assert value == 3


def test_the_audit_lists_the_api_calls_of_an_answer():
    assert audit.answer_calls(SOLUTION, "double") == {"mul"}
    source = textwrap.dedent('''
        import torch
        from torch import nn

        def f(fn, model, x):
            """Doc."""
            # BEGIN SOLUTION
            y = fn(x) + model(x) + len(x)
            return nn.Linear(2, 2)(torch.relu(y)).detach()
            # END SOLUTION
    ''')
    assert audit.answer_calls(source, "f") == {"Linear", "relu", "detach"}, "arguments and builtins do not count"


def test_a_docstring_naming_every_call_gives_the_answer_away():
    named = SOLUTION.replace('"""Return a new tensor, twice x."""', '"""Return torch.mul(x, 2)."""')
    assert audit.docstring_names(audit.exercise_docstring(named, "double")) >= {"mul"}
    assert not (
        audit.answer_calls(SOLUTION, "double") <= audit.docstring_names(audit.exercise_docstring(SOLUTION, "double"))
    )


@pytest.mark.slow
def test_dojo_check_passes_on_the_fixture_project(project):
    proc = subprocess.run(
        [sys.executable, "-m", "dojo", "check"],
        cwd=project,
        capture_output=True,
        text=True,
        env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "dojo check passed" in proc.stdout and "5 decoys caught, 3 alternatives pass" in proc.stdout


@pytest.mark.slow
def test_dojo_check_fails_for_a_surviving_decoy_a_rejected_alternative_and_a_test_that_asserts_nothing(project):
    decoys = project / "decoys" / "02_halve.py"
    decoys.write_text(
        decoys.read_text()
        + '\n\n@decoy("true division, written out: not wrong at all")\ndef halve(x):\n    return x / 2.0\n'
        '\n\n@alternative("floor division: not right at all")\ndef halve(x):\n    return x // 2\n'
    )
    tests = project / "tests" / "test_02_halve.py"
    tests.write_text(tests.read_text() + "\n    def test_nothing(self, kata):\n        pass\n")
    proc = subprocess.run(
        [sys.executable, "-m", "dojo", "check", "02"],
        cwd=project,
        capture_output=True,
        text=True,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    out = proc.stdout
    assert proc.returncode == 1, out
    assert "decoy not caught: 02_halve decoy halve" in out and "every test passed" in out
    assert "alternative rejected: 02_halve alternative halve" in out
    assert (
        "passes against an unfilled stub (it asserts nothing): tests/test_02_halve.py::TestHalve::test_nothing" in out
    )
