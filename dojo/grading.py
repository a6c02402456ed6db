"""`dojo grade` (placeholder while the CLI is being split)."""


def cmd_grade(root, args) -> int:
    raise SystemExit("dojo grade: being rebuilt")


def add_arguments(sub) -> None:
    p = sub.add_parser("grade", help="run the suite against submission folders and print a score table")
    p.add_argument("folders", nargs="+", metavar="DIR")
