"""The stub builder: markers in, TODO + NotImplementedError out, and nothing of the answer left."""

import pytest

from dojo.stubs import STUB_TAG, MarkerError, find_blocks, leaked_lines, make_stub

SOLUTION = '''import torch


def double(x):
    """Return 2 * x."""
    # BEGIN SOLUTION
    # a comment that explains the answer
    return x * 2
    # END SOLUTION


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        # BEGIN SOLUTION
        self.w = torch.nn.Parameter(torch.zeros(2))
        # END SOLUTION
'''


def test_each_block_becomes_a_todo_and_a_tagged_raise():
    stub = make_stub(SOLUTION, "99_demo")
    assert "return x * 2" not in stub and "a comment that explains" not in stub
    assert stub.count("# TODO") == 2
    assert f'raise NotImplementedError("99_demo.double {STUB_TAG}' in stub
    assert f'raise NotImplementedError("99_demo.Net.__init__ {STUB_TAG}' in stub
    assert '"""Return 2 * x."""' in stub and "super().__init__()" in stub


def test_the_todo_says_what_to_do_with_the_exercises_summary():
    stub = make_stub(SOLUTION, "99_demo", summaries={"double": "twice x", "Net": "one parameter of two zeros"})
    assert "    # TODO: twice x\n" in stub
    assert "        # TODO (__init__): one parameter of two zeros\n" in stub


def test_the_stub_raises_the_tagged_error_when_called():
    namespace: dict = {}
    exec(make_stub(SOLUTION, "99_demo"), namespace)
    with pytest.raises(NotImplementedError, match=f"99_demo.double {STUB_TAG}"):
        namespace["double"](1)


@pytest.mark.parametrize(
    "source, problem",
    [
        ("def f():\n    # BEGIN SOLUTION\n    return 1\n", "never closed"),
        ("def f():\n    return 1\n    # END SOLUTION\n", "without a"),
        ("# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n", "inside a function"),
        ("def f():\n    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n", "inside another"),
    ],
    ids=["unclosed", "unopened", "module_level", "nested"],
)
def test_markers_that_do_not_pair_up_are_reported_with_their_line(source, problem):
    with pytest.raises(MarkerError, match=problem):
        find_blocks(source, "x.py")


def test_an_answer_line_repeated_outside_the_markers_is_a_leak():
    leaky = SOLUTION + "\n\ndef helper(x):\n    return x * 2\n"
    assert leaked_lines(leaky, make_stub(leaky, "99_demo")) == ["double: return x * 2"]
    assert leaked_lines(SOLUTION, make_stub(SOLUTION, "99_demo")) == []
