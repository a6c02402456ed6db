"""Load one kata file from an implementation folder, by path, with a one-line error if it breaks.

Kata files start with a number (01_tensor_ops.py), so they are not importable names; importlib
loads them from their path instead. A learner's file can be broken in many ways (a syntax error,
an exception at import time, a missing file); each becomes a KataLoadError whose message names
the file and line, so the test run can report it in one line instead of a traceback.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType

# In the message of every test of a kata whose file does not load (how `dojo grade` tells).
NOT_LOADED = "the kata file does not load"


class KataLoadError(Exception):
    """A kata file that could not be loaded; str() is one line naming the file and line."""


def _short(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def load_kata(folder: Path, stem: str) -> ModuleType:
    path = folder / f"{stem}.py"
    if not path.is_file():
        raise KataLoadError(f"{_short(path)} does not exist (expected a file named {stem}.py in {_short(folder)})")
    # The module is registered under its plain stem, with its folder on sys.path, so that a
    # DataLoader worker started with "spawn" (the default on macOS and Windows) can import it
    # again to unpickle a Dataset defined in the kata. Only if another folder's version of the
    # same kata is already loaded in this process does it get a unique, folder-specific name.
    name = stem
    loaded = sys.modules.get(name)
    if loaded is not None and Path(getattr(loaded, "__file__", "")) != path:
        name = f"kata_{hashlib.sha1(str(folder).encode()).hexdigest()[:8]}_{stem}"
    if str(folder) not in sys.path:
        sys.path.append(str(folder))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:  # IndentationError and TabError are SyntaxErrors too
        sys.modules.pop(name, None)
        where = f"{_short(path)}, line {err.lineno}"
        raise KataLoadError(f"{where}: {type(err).__name__}: {err.msg}") from None
    except (Exception, SystemExit) as err:  # an import-time exception in learner code
        sys.modules.pop(name, None)
        line = next(
            (f.lineno for f in reversed(traceback.extract_tb(err.__traceback__)) if Path(f.filename) == path),
            None,
        )
        where = _short(path) + (f", line {line}" if line else "")
        raise KataLoadError(f"{where}: {type(err).__name__} while importing: {err}") from None
    return module
