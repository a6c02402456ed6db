try:
    from dojo.cli import main
except ModuleNotFoundError as err:  # run with a Python that lacks the project's dependencies
    raise SystemExit(
        f"dojo: {err.name} is not installed in this Python. Set up once with `tox -e torch` "
        "(or `tox -e learn`), then `source .tox/torch/bin/activate`, or run `.tox/torch/bin/dojo`."
    ) from None

raise SystemExit(main())
