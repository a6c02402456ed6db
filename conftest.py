"""The suite's machinery is the torch-katas pytest plugin, dojo/plugin.py (see its docstring);
pytester is pytest's own, for the tests of that plugin in dojo/tests."""

pytest_plugins = ["dojo.plugin", "pytester"]
