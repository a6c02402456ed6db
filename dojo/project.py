"""Where things live: the repository root, the kata metadata file, and `--impl` folders."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

METADATA_FILE = "katas.toml"
NAMED_IMPLS = ("katas", "solutions")


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


@dataclass(frozen=True)
class Kata:
    id: str  # "01"
    stem: str  # "01_tensor_ops"
    title: str
    concept: str
    exercises: tuple[Exercise, ...] = field(default_factory=tuple)

    @property
    def marker(self) -> str:
        return f"kata{self.id}"

    @property
    def filename(self) -> str:
        return f"{self.stem}.py"

    @property
    def test_file(self) -> str:
        return f"tests/test_{self.stem}.py"

    def exercise(self, name: str) -> Exercise | None:
        return next((e for e in self.exercises if e.name == name), None)


@lru_cache(maxsize=None)
def load_katas(root: Path) -> tuple[Kata, ...]:
    """Read katas.toml: one [[kata]] table per kata, its exercises in learning order."""
    with open(root / METADATA_FILE, "rb") as fh:
        data = tomllib.load(fh)
    katas = []
    for entry in data.get("kata", []):
        exercises = tuple(
            Exercise(
                name=ex["name"],
                summary=ex.get("summary", ""),
                hints=tuple(ex.get("hints", ())),
                number=i,
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


def kata_by_key(root: Path, key: str) -> Kata:
    """Find a kata by number ("1", "01"), stem or topic ("tensor_ops")."""
    katas = load_katas(root)
    wanted = key.strip().removesuffix(".py")
    for kata in katas:
        if wanted in (kata.id, kata.stem, kata.stem.split("_", 1)[1]) or (
            wanted.isdigit() and int(wanted) == int(kata.id)
        ):
            return kata
    known = ", ".join(k.id for k in katas)
    raise SystemExit(f"dojo: no kata {key!r}; the katas are {known}")


def kata_by_stem(root: Path, stem: str) -> Kata | None:
    return next((k for k in load_katas(root) if k.stem == stem), None)


class ImplError(ValueError):
    """An --impl value that names no usable folder."""


def resolve_impl(root: Path, impl: str | None) -> Path:
    """Turn an --impl value ("katas", "solutions" or a path) into an existing folder."""
    value = impl or os.environ.get("KATA_IMPL") or "katas"
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
