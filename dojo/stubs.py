"""Generate learner stubs from reference solutions (nbgrader-style markers).

In `solutions/NN_topic.py` the answer to each exercise sits between two marker lines:

    def add_into(x, y, out):
        \"\"\"Docstring: the exercise.\"\"\"
        # BEGIN SOLUTION
        return torch.add(x, y, out=out)
        # END SOLUTION

The stub keeps everything outside the markers and replaces each block by one `# TODO:` line
that says what to do (the exercise's summary from katas.toml, as rustlings' TODOs do) and a
NotImplementedError that names the kata and the exercise. The message carries STUB_TAG, which is
how the test run tells "not done yet" apart from a wrong answer.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
STUB_TAG = "is not done yet"
GENERIC_TODO = "your code here (the docstring above is the exercise)"


class MarkerError(ValueError):
    """Solution markers that do not pair up, or sit outside a function."""


@dataclass(frozen=True)
class Block:
    qualname: str  # "add_into" or "Net.__init__"
    start: int  # 1-based line of BEGIN
    end: int  # 1-based line of END
    body: tuple[str, ...]  # the answer's lines, stripped


def _function_spans(tree: ast.AST) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qual = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    spans.append((child.lineno, child.end_lineno or child.lineno, qual))
                visit(child, qual + ".")

    visit(tree, "")
    return spans


def find_blocks(source: str, filename: str = "<solution>") -> list[Block]:
    lines = source.splitlines()
    spans = _function_spans(ast.parse(source, filename))
    blocks, start = [], None
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if text.startswith(BEGIN):
            if start is not None:
                raise MarkerError(f"{filename}:{number}: {BEGIN} inside another block (opened at line {start})")
            start = number
        elif text.startswith(END):
            if start is None:
                raise MarkerError(f"{filename}:{number}: {END} without a {BEGIN}")
            inside = [s for s in spans if s[0] < start <= s[1]]
            if not inside:
                raise MarkerError(f"{filename}:{start}: solution markers must sit inside a function body")
            qualname = max(inside, key=lambda s: s[0])[2]  # the innermost function
            body = tuple(text.strip() for text in lines[start : number - 1] if text.strip())
            blocks.append(Block(qualname, start, number, body))
            start = None
    if start is not None:
        raise MarkerError(f"{filename}:{start}: {BEGIN} never closed by {END}")
    return blocks


def stub_message(stem: str, qualname: str) -> str:
    kata_id = stem.split("_", 1)[0]
    exercise = qualname.split(".")[0]
    return f"{stem}.{qualname} {STUB_TAG} (stuck? dojo hint {kata_id} {exercise})"


def todo_line(qualname: str, summaries: dict[str, str] | None) -> str:
    """`# TODO: <the exercise's summary>`; a method's TODO also names the method."""
    exercise, _, method = qualname.partition(".")
    summary = (summaries or {}).get(exercise) or GENERIC_TODO
    return f"# TODO ({method}): {summary}" if method else f"# TODO: {summary}"


def make_stub(source: str, stem: str, filename: str = "<solution>", summaries: dict[str, str] | None = None) -> str:
    """The learner's version of a solution file: every marked block replaced by a TODO.

    `summaries` maps exercise names to their one-line summary (katas.toml), the text of the TODO.
    """
    lines = source.splitlines(keepends=True)
    out: list[str] = []
    blocks = {b.start: b for b in find_blocks(source, filename)}
    skip_until = 0
    for number, line in enumerate(lines, start=1):
        if number <= skip_until:
            continue
        block = blocks.get(number)
        if block is None:
            out.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        out.append(f"{indent}{todo_line(block.qualname, summaries)}\n")
        message = stub_message(stem, block.qualname).replace('"', "'")
        out.append(f'{indent}raise NotImplementedError("{message}")\n')
        skip_until = block.end
    return "".join(out)


def summaries_by_stem(root: Path) -> dict[str, dict[str, str]]:
    from dojo.project import load_katas

    return {k.stem: {e.name: e.summary for e in k.exercises} for k in load_katas(root)}


def build_all(solutions: Path, katas: Path, summaries: dict[str, dict[str, str]] | None = None) -> dict[Path, str]:
    """The stub text each file in `katas` should have, generated from `solutions`
    (`summaries`: per kata stem, the exercises' summaries; default read from katas.toml next to `solutions`)."""
    if summaries is None:
        summaries = summaries_by_stem(solutions.parent) if (solutions.parent / "katas.toml").is_file() else {}
    return {
        katas / path.name: make_stub(path.read_text(), path.stem, str(path), summaries.get(path.stem))
        for path in sorted(solutions.glob("[0-9][0-9]_*.py"))
    }


def drift(root: Path) -> tuple[dict[Path, str], list[Path]]:
    """(every stub's wanted text, the stubs in katas/ that differ from it)."""
    wanted = build_all(root / "solutions", root / "katas")
    differing = [p for p, text in wanted.items() if not p.exists() or p.read_text() != text]
    return wanted, differing


def cmd_build(root: Path, args) -> int:
    """`dojo build`: regenerate katas/ from solutions/ (or, with --check, only say whether it differs)."""
    from dojo.learner import backup

    try:
        wanted, differing = drift(root)
    except (MarkerError, SyntaxError) as err:
        raise SystemExit(f"dojo build: {err}") from None
    if args.check:
        for path in differing:
            print(f"out of date: {path.relative_to(root)}")
        if differing:
            print("katas/ has drifted from solutions/; run `dojo build` and commit the result.")
            return 1
        print(f"katas/ matches solutions/ ({len(wanted)} stubs).")
        return 0
    (root / "katas").mkdir(exist_ok=True)
    for path in differing:
        saved = backup(root, path)
        path.write_text(wanted[path])
        print(f"wrote {path.relative_to(root)}" + (f" (old file in {saved.relative_to(root)})" if saved else ""))
    print(f"{len(differing)} stub(s) written, {len(wanted) - len(differing)} already up to date.")
    return 0


def add_arguments(sub) -> None:
    p = sub.add_parser("build", help="generate katas/ from the solution markers in solutions/")
    p.add_argument("--check", action="store_true", help="only check that katas/ is up to date; exit 1 if not")


_TRIVIAL = re.compile(r"^(#.*|pass|return|return None|\)|\]|\}|else:|try:|finally:)?$")


def leaked_lines(solution_source: str, stub_source: str, filename: str = "<solution>") -> list[str]:
    """Answer lines (from inside the markers) that also appear in the stub."""
    stub_lines = {line.strip() for line in stub_source.splitlines()}
    leaks = []
    for block in find_blocks(solution_source, filename):
        for line in block.body:
            if not _TRIVIAL.match(line) and line in stub_lines:
                leaks.append(f"{block.qualname}: {line}")
    return leaks
