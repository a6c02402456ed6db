"""The suite's machinery is the torch-katas pytest plugin, dojo/plugin.py (see its docstring)."""

pytest_plugins = ["dojo.plugin"]
