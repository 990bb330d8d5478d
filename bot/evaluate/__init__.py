"""The evaluation harness: question sets → ``Engine.ask`` → metrics, reports and a regression gate.

A thin shell over the engine: ``runner`` asks every case through the same ``ask`` the chat page uses, and
``metrics`` scores only what the reply contains. ``suite`` makes one whole run (per composer: run, gate,
compare, reports); ``python -m bot eval`` (``bot/cli/eval.py``) drives it.

The harness needs the ``eval`` extra (``pip install -e '.[eval]'``); nothing outside this package imports it.
This module imports none of it, so the command line can say what is missing before anything fails.
"""

from __future__ import annotations

from importlib.util import find_spec

#: What the ``eval`` extra installs, by import name: set validation, HTML reports, plots, appending cases.
EXTRA_MODULES = ("jsonschema", "jinja2", "matplotlib", "ruamel.yaml")
INSTALL_EXTRA = "pip install -e '.[eval]'"


def missing_modules() -> list[str]:
    """The modules of the ``eval`` extra that are not installed."""
    missing = []
    for name in EXTRA_MODULES:
        try:
            found = find_spec(name) is not None
        except (ImportError, ValueError):  # a missing parent package (ruamel), or a half-imported module
            found = False
        if not found:
            missing.append(name)
    return missing
