"""Where things live: the repository root, the kata metadata file, and `--impl` folders.

This module owns the one default of the project: which folder is under test when nobody says
(`--impl`, else the environment variable KATA_IMPL, else `katas`). Every command and the pytest
plugin ask `impl_value` for it, so `KATA_IMPL=solutions dojo` and `KATA_IMPL=solutions pytest`
test the same thing.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

METADATA_FILE = "katas.toml"
NAMED_IMPLS = ("katas", "solutions")
IMPL_ENV = "KATA_IMPL"
DEFAULT_IMPL = "katas"


def find_root(start: Path | None = None) -> Path:
    """The repository root: the nearest folder above `start` (default: cwd) holding katas.toml.

    Falls back to the folder this package sits in, so `dojo` also works from elsewhere when the
    project is installed in editable mode.
    """
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / METADATA_FILE).is_file():
            return folder
    package_parent = Path(__file__).resolve().parent.parent
    if (package_parent / METADATA_FILE).is_file():
        return package_parent
    raise SystemExit(f"dojo: no {METADATA_FILE} here or above {here}; run dojo inside the torch-katas folder")


@dataclass(frozen=True)
class Exercise:
    name: str
    summary: str
    hints: tuple[str, ...]
    number: int  # 1-based position in the kata
    # Why this exercise's docstring may name the API that solves it (choosing between named APIs
    # is the exercise's very subject); None for every other exercise.
    names_api: str | None = None


@dataclass(frozen=True)
class Kata:
    id: str  # "01"
    stem: str  # "01_tensor_ops"
    title: str
    concept: str  # one sentence; `dojo` shows it above the kata's next exercise
    exercises: tuple[Exercise, ...] = field(default_factory=tuple)

    @property
    def topic(self) -> str:
        """The stem without its number: "tensor_ops"."""
        return self.stem.split("_", 1)[1]

    @property
    def marker(self) -> str:
        return f"kata{self.id}"

    @property
    def filename(self) -> str:
        return f"{self.stem}.py"

    @property
    def test_file(self) -> str:
        return f"tests/test_{self.stem}.py"

    @property
    def decoy_file(self) -> str:
        return f"decoys/{self.stem}.py"

    def exercise(self, name: str) -> Exercise | None:
        return next((e for e in self.exercises if e.name == name), None)


@cache
def metadata(root: Path) -> dict:
    """katas.toml as read: [[kata]] tables, and the [check] table of `dojo check`'s minimums."""
    with open(root / METADATA_FILE, "rb") as fh:
        return tomllib.load(fh)


@cache
def load_katas(root: Path) -> tuple[Kata, ...]:
    """Read katas.toml: one [[kata]] table per kata, its exercises in learning order."""
    data = metadata(root)
    katas = []
    for entry in data.get("kata", []):
        exercises = tuple(
            Exercise(
                name=ex["name"],
                summary=ex.get("summary", ""),
                hints=tuple(ex.get("hints", ())),
                number=i,
                names_api=ex.get("names_api"),
            )
            for i, ex in enumerate(entry.get("exercise", []), start=1)
        )
        katas.append(
            Kata(
                id=entry["id"],
                stem=entry["stem"],
                title=entry["title"],
                concept=entry.get("concept", ""),
                exercises=exercises,
            )
        )
    return tuple(sorted(katas, key=lambda k: k.stem))


def find_kata(katas: tuple[Kata, ...], key: str) -> Kata | None:
    """The kata a learner means by `key`: a number ("1", "01"), a stem, a topic or a file name."""
    wanted = Path(key.strip()).name.removesuffix(".py").removeprefix("test_")
    for kata in katas:
        if wanted in (kata.id, kata.stem, kata.topic) or (wanted.isdigit() and int(wanted) == int(kata.id)):
            return kata
    return None


def kata_by_key(root: Path, key: str) -> Kata:
    """Like `find_kata`, for the command line: an unknown kata is a one-line exit."""
    katas = load_katas(root)
    kata = find_kata(katas, key)
    if kata is None:
        raise SystemExit(f"dojo: no kata {key!r}; the katas are {', '.join(k.id for k in katas)}")
    return kata


def kata_by_stem(root: Path, stem: str) -> Kata | None:
    return next((k for k in load_katas(root) if k.stem == stem), None)


class ImplError(ValueError):
    """An --impl value that names no usable folder."""


def impl_value(impl: str | os.PathLike | None = None) -> str:
    """What is under test: `impl` if given, else $KATA_IMPL, else "katas". The one place that
    decides; commands pass None through rather than a default of their own."""
    return str(impl) if impl else os.environ.get(IMPL_ENV) or DEFAULT_IMPL


def resolve_impl(root: Path, impl: str | os.PathLike | None = None) -> Path:
    """Turn an --impl value ("katas", "solutions" or a path; None: `impl_value`) into an existing folder."""
    value = impl_value(impl)
    path = root / value if value in NAMED_IMPLS else Path(value).expanduser()
    if not path.is_absolute():
        path = Path.cwd() / path
    path = path.resolve()
    if not path.is_dir():
        raise ImplError(
            f"--impl={value}: no such folder ({path}). Use 'katas', 'solutions', "
            "or the path of a folder holding files named like katas/ (01_tensor_ops.py, ...)."
        )
    return path


def impl_label(root: Path, folder: Path) -> str:
    for name in NAMED_IMPLS:
        if folder == (root / name).resolve():
            return name
    return str(folder)
