"""`dojo doctor` (placeholder while the CLI is being split)."""


def cmd_doctor(root, args) -> int:
    print("dojo doctor: not yet")
    return 0


def add_arguments(sub) -> None:
    sub.add_parser("doctor", help="one screen about this setup: Python, torch builds, devices, loader settings")
