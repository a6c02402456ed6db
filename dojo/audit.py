"""The static half of `dojo check`: what can be proved about the kata set without running a test.

- metadata: every solution file has a katas.toml entry and a test file, every exercise is
  defined, has a solution block and at least two hints;
- no answer line leaks into a stub, and katas/ is what `dojo build` generates;
- every kata has a lesson notebook that does not load solutions/;
- every kata has a decoy file that `dojo.variants` can read, with enough decoys and alternatives;
- **the docstring audit**: an exercise's docstring is a spec, not a recipe. For each exercise,
  the calls its reference answer makes (from the AST between the solution markers) are compared
  with the names its docstring mentions; a docstring that names every one of them gives the
  answer away, which is allowed only with a reason (`names_api = "..."` in katas.toml) where
  choosing between named APIs is the exercise's very subject.
"""

from __future__ import annotations

import ast
import builtins
import json
import re
from dataclasses import dataclass
from pathlib import Path

from dojo.project import Exercise, Kata, load_katas
from dojo.stubs import MarkerError, drift, find_blocks, leaked_lines, make_stub
from dojo.variants import ALTERNATIVE, DECOY, VariantError, read_variants

MIN_DECOYS, MIN_ALTERNATIVES = 12, 5  # per kata; katas.toml's [check] table may set others


def minimums(root: Path) -> tuple[int, int]:
    """(decoys, alternatives) every kata needs: katas.toml's [check] min_decoys and min_alternatives."""
    from dojo.project import metadata

    table = metadata(root).get("check", {})
    return int(table.get("min_decoys", MIN_DECOYS)), int(table.get("min_alternatives", MIN_ALTERNATIVES))


# Calls that say nothing about how an exercise is solved (Python's builtins, `super().__init__`).
NEUTRAL_CALLS = set(dir(builtins)) | {"__init__"}


# ---------------------------------------------------------------- the docstring audit


@dataclass(frozen=True)
class DocAudit:
    kata: Kata
    exercise: Exercise
    calls: frozenset[str]  # what the answer calls, by name
    named: frozenset[str]  # which of those the docstring mentions

    @property
    def gives_away(self) -> bool:
        """The docstring names every call of the answer (and the answer makes at least one)."""
        return bool(self.calls) and self.calls <= self.named

    @property
    def allowed(self) -> bool:
        return not self.gives_away or bool(self.exercise.names_api)


def _call_name(node: ast.Call, imported: set[str]) -> str | None:
    """The API a call uses: a method or attribute (`x.view`, `torch.no_grad`) or an imported
    name (`DataLoader`); not a call of an argument (`fn(x)`, `model(x)`) or of the module's
    own layers (`self.fc1(x)`), which are the exercise's data, not its answer."""
    func = node.func
    if isinstance(func, ast.Attribute):
        if isinstance(func.value, ast.Name) and func.value.id == "self":
            return None
        return func.attr
    if isinstance(func, ast.Name) and func.id in imported:
        return func.id
    return None


def _imported_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def _exercise_node(tree: ast.Module, name: str) -> ast.AST | None:
    return next((n for n in tree.body if getattr(n, "name", None) == name), None)


def answer_calls(source: str, name: str, filename: str = "<solution>") -> set[str]:
    """The names of the functions and methods the answer of exercise `name` calls (inside its
    solution blocks), leaving out builtins and the module's own functions and classes."""
    tree = ast.parse(source, filename)
    own = {getattr(n, "name", None) for n in tree.body} - {None}
    imported = _imported_names(tree)
    spans = [(b.start, b.end) for b in find_blocks(source, filename) if b.qualname.split(".")[0] == name]
    calls = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and any(start < node.lineno < end for start, end in spans):
            called = _call_name(node, imported)
            if called and called not in NEUTRAL_CALLS and called not in own:
                calls.add(called)
    return calls


def exercise_docstring(source: str, name: str) -> str:
    """The exercise's docstring; for a class, with its methods' docstrings."""
    node = _exercise_node(ast.parse(source), name)
    if node is None:
        return ""
    docs = [ast.get_docstring(node) or ""]
    if isinstance(node, ast.ClassDef):
        docs += [
            ast.get_docstring(n) or "" for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        ]
    return "\n".join(docs)


def docstring_names(text: str) -> set[str]:
    """The API names a docstring mentions: a name in code form (inside backticks, after a dot as
    in `x.view`, or before a parenthesis as in `clone()`), or a distinctive identifier anywhere
    (`zeros_like`, `DataLoader`). A plain English word does not count: "view", "tensor" or
    "grad" in a sentence describe the contract; `view` or `.grad()` name the API."""
    names = set()
    for span in re.findall(r"`([^`]*)`", text):
        names |= set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", span))
    names |= set(re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)", text))
    names |= set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", text))
    for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text):
        if "_" in word.strip("_") or any(c.isupper() for c in word[1:]):
            names.add(word)
    return names


def audit_docstrings(root: Path, katas: tuple[Kata, ...]) -> list[DocAudit]:
    audits = []
    for kata in katas:
        path = root / "solutions" / kata.filename
        if not path.is_file():
            continue
        source = path.read_text()
        for ex in kata.exercises:
            calls = answer_calls(source, ex.name, str(path))
            named = calls & docstring_names(exercise_docstring(source, ex.name))
            audits.append(DocAudit(kata, ex, frozenset(calls), frozenset(named)))
    return audits


# ---------------------------------------------------------------- decoy files


@dataclass
class VariantCount:
    decoys: int = 0
    alternatives: int = 0
    exercises_without_decoy: tuple[str, ...] = ()


def variant_problems(root: Path, kata: Kata) -> tuple[list[str], VariantCount]:
    path = root / kata.decoy_file
    if not path.is_file():
        return [
            f"{kata.stem} has no decoy file {kata.decoy_file} (known-wrong and known-right answers)"
        ], VariantCount()
    try:
        variants = read_variants(path, kata.stem)
    except VariantError as err:
        return [str(err)], VariantCount()
    problems = []
    source = (root / "solutions" / kata.filename).read_text()
    top = {getattr(n, "name", None) for n in ast.parse(source).body}
    for v in variants:
        if v.target not in top:
            problems.append(f"{kata.decoy_file}, line {v.line}: the solution has no top-level {v.target} to replace")
        if kata.exercise(v.exercise) is None:
            problems.append(
                f"{kata.decoy_file}, line {v.line}: {v.exercise} is not an exercise of kata {kata.id}"
                " (name it with exercise=... when a variant replaces a helper)"
            )
    decoys = [v for v in variants if v.kind == DECOY]
    alternatives = [v for v in variants if v.kind == ALTERNATIVE]
    missing = tuple(e.name for e in kata.exercises if not any(v.exercise == e.name for v in decoys))
    min_decoys, min_alternatives = minimums(root)
    if len(decoys) < min_decoys:
        problems.append(f"{kata.decoy_file}: {len(decoys)} decoys; a kata needs at least {min_decoys}")
    if len(alternatives) < min_alternatives:
        problems.append(
            f"{kata.decoy_file}: {len(alternatives)} alternatives; a kata needs at least {min_alternatives}"
        )
    for name in missing:
        problems.append(f"{kata.decoy_file}: no decoy for exercise {name}")
    return problems, VariantCount(len(decoys), len(alternatives), missing)


# ---------------------------------------------------------------- metadata, stubs, notebooks


def notebook_problems(root: Path, kata: Kata) -> list[str]:
    """Every kata has a lesson, notebooks/<stem>.ipynb, and no lesson peeks at the answers."""
    path = root / "notebooks" / f"{kata.stem}.ipynb"
    if not path.exists():
        return [f"{kata.stem} has no lesson notebook notebooks/{path.name}"]
    cells = json.loads(path.read_text()).get("cells", [])
    code = "\n".join("".join(c.get("source", "")) for c in cells if c.get("cell_type") == "code")
    if "solutions" in code:
        return [f"notebooks/{path.name}: a code cell mentions solutions/ (lessons must not load the answers)"]
    return []


def kata_problems(root: Path, kata: Kata) -> list[str]:
    problems = []
    sol = root / "solutions" / kata.filename
    if not sol.exists():
        return [f"katas.toml names {kata.stem} but solutions/{kata.filename} does not exist"]
    if not (root / kata.test_file).exists():
        problems.append(f"{kata.stem} has no test file {kata.test_file}")
    source = sol.read_text()
    names = {getattr(n, "name", None) for n in ast.parse(source).body}
    blocks = {b.qualname.split(".")[0] for b in find_blocks(source, str(sol))}
    for ex in kata.exercises:
        if ex.name not in names:
            problems.append(f"{kata.stem}: exercise {ex.name} is not defined in solutions/{kata.filename}")
        elif ex.name not in blocks:
            problems.append(
                f"{kata.stem}: exercise {ex.name} has no # BEGIN SOLUTION block, so its stub would be the answer"
            )
        if len(ex.hints) < 2:
            problems.append(f"{kata.stem}.{ex.name}: write at least two hints (a nudge, then near the answer)")
        if not ex.summary:
            problems.append(f"{kata.stem}.{ex.name}: write a one-line summary (the stub's TODO says it)")
    summaries = {e.name: e.summary for e in kata.exercises}
    for leak in leaked_lines(source, make_stub(source, kata.stem, str(sol), summaries)):
        problems.append(f"{kata.stem}: answer line appears in the stub too: {leak}")
    return problems + notebook_problems(root, kata)


def static_problems(root: Path, katas: tuple[Kata, ...] | None = None) -> list[str]:
    """Everything wrong with the kata set that reading files can show (all katas, or `katas`)."""
    every = load_katas(root)
    katas = every if katas is None else katas
    problems = []
    if katas == every:
        known = {k.filename for k in every}
        for path in sorted((root / "solutions").glob("[0-9][0-9]_*.py")):
            if path.name not in known:
                problems.append(f"solutions/{path.name} has no [[kata]] entry in katas.toml")
        for path in sorted((root / "notebooks").glob("*.ipynb")):
            if path.stem not in {k.stem for k in every}:
                problems.append(f"notebooks/{path.name} matches no kata in katas.toml")
        for path in sorted((root / "decoys").glob("*.py")):
            if path.stem not in {k.stem for k in every}:
                problems.append(f"decoys/{path.name} matches no kata in katas.toml")
    for kata in katas:
        problems += kata_problems(root, kata)
    try:
        _, differing = drift(root)
    except (MarkerError, SyntaxError) as err:
        return problems + [str(err)]
    stems = {k.stem for k in katas}
    problems += [
        f"{p.relative_to(root)} differs from the stub built from solutions/ (run `dojo build`)"
        for p in differing
        if p.stem in stems
    ]
    return problems
