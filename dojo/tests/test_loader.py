"""Loading a learner's kata file: every way it can break is one line naming the file and line."""

import pytest

from dojo.loader import KataLoadError, load_kata


def write(tmp_path, text):
    (tmp_path / "99_demo.py").write_text(text)
    return tmp_path


def test_a_good_file_loads_as_a_module(tmp_path):
    module = load_kata(write(tmp_path, "def f():\n    return 3\n"), "99_demo")
    assert module.f() == 3


@pytest.mark.parametrize(
    "text, expected",
    [
        ("def f(:\n    pass\n", r"99_demo.py, line 1: SyntaxError"),
        ("def f():\nreturn 1\n", r"99_demo.py, line 2: IndentationError"),
        ("import torch\nx = 1 / 0\n", r"99_demo.py, line 2: ZeroDivisionError while importing"),
        ("import not_a_module_anywhere\n", r"99_demo.py, line 1: ModuleNotFoundError while importing"),
        ("raise SystemExit(3)\n", r"99_demo.py, line 1: SystemExit while importing"),
    ],
    ids=["syntax", "indentation", "import_time_error", "missing_import", "exit_at_import"],
)
def test_a_broken_file_gives_one_line_with_file_and_line(tmp_path, text, expected):
    with pytest.raises(KataLoadError, match=expected) as info:
        load_kata(write(tmp_path, text), "99_demo")
    assert "\n" not in str(info.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(KataLoadError, match=r"99_demo.py does not exist"):
        load_kata(tmp_path, "99_demo")
