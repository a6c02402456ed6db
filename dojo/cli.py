"""`dojo`: the command line. This module only parses arguments and dispatches; each command's
logic and options live with the command:

- learner.py   `dojo` (progress), `test`, `watch`, `hint`, `reset`
- stubs.py     `build`
- check.py     `check` (with audit.py and variants.py)
- grading.py   `grade`
- doctor.py    `doctor`
- train.py     `train`;  bench.py  `bench`

Run `dojo --help` for the commands. Nothing here imports torch: commands that need it import it
when they run.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

from dojo.project import find_root

# command -> (module, function); the module also has add_arguments(subparsers) for its parsers.
COMMANDS = {
    "progress": ("dojo.learner", "cmd_progress"),
    "test": ("dojo.learner", "cmd_test"),
    "watch": ("dojo.learner", "cmd_watch"),
    "hint": ("dojo.learner", "cmd_hint"),
    "reset": ("dojo.learner", "cmd_reset"),
    "doctor": ("dojo.doctor", "cmd_doctor"),
    "train": ("dojo.train", "cmd_train"),
    "bench": ("dojo.bench", "cmd_bench"),
    "build": ("dojo.stubs", "cmd_build"),
    "check": ("dojo.check", "cmd_check"),
    "grade": ("dojo.grading", "cmd_grade"),
}
PARSER_MODULES = (
    "dojo.learner",
    "dojo.doctor",
    "dojo.train_options",
    "dojo.bench",
    "dojo.stubs",
    "dojo.check",
    "dojo.grading",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dojo",
        description="torch-katas: see your progress, run and watch your tests, get hints; build, check and grade katas.",
        epilog="With no command: the progress table and your next exercise.",
    )
    parser.add_argument(
        "--impl", default=None, help="folder to test: katas (default; env KATA_IMPL), solutions, or a path"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in PARSER_MODULES:
        import_module(name).add_arguments(sub)
    return parser


def run(argv: list[str] | None = None) -> int:
    """Parse `argv` and run the command; returns its exit code."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `dojo train --nproc` starts itself again
    if not hasattr(args, "impl"):
        args.impl = None
    module, function = COMMANDS[args.command or "progress"]
    root = find_root()
    return getattr(import_module(module), function)(root, args)


def main(argv: list[str] | None = None) -> int:
    """The `dojo` command: `run`, then, once torch is loaded, exit without the interpreter's
    teardown (over half a second of torch's, on a command a learner types again and again)."""
    code = run(argv)
    if "torch" in sys.modules:
        from dojo.runner import end_now

        end_now(code)
    return code
