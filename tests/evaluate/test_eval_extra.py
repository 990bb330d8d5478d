"""The harness's packages are the ``eval`` extra: declared apart, imported only by ``bot/evaluate/``, and missed
politely."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest
import tomllib

from bot.evaluate import EXTRA_MODULES
from bot.settings import PROJECT_ROOT

#: Top-level import names the eval extra brings (MarkupSafe comes with Jinja2).
EXTRA_TOP_LEVEL = {"jsonschema", "jinja2", "markupsafe", "matplotlib", "ruamel"}


def blocked_run(args: list[str], *blocked: str) -> subprocess.CompletedProcess[str]:
    """``python -m bot ARGS`` in a process where the ``blocked`` modules cannot be imported (as if not installed)."""
    code = (f"import sys; sys.modules.update(dict.fromkeys({list(blocked)!r})); sys.argv = ['bot', *{args!r}]; "
            "from bot.cli.main import main; main()")  # fmt: skip
    return subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120, check=False)  # fmt: skip


@pytest.mark.parametrize(
    ("args", "blocked", "named"),
    [
        (["eval"], ("matplotlib",), "matplotlib"),
        (["eval", "--set", "core"], ("jinja2", "ruamel"), "jinja2, ruamel.yaml"),  # ruamel.yaml's parent missing
        (["eval", "add", "--set", "core", "--question", "q?"], ("jsonschema",), "jsonschema"),
    ],
)
def test_eval_without_the_extra_says_how_to_install_it_in_one_line(args, blocked, named) -> None:
    result = blocked_run(args, *blocked)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"python -m bot eval needs the eval extra ({named} missing): pip install -e '.[eval]'\n"


def test_help_works_without_the_extra() -> None:
    result = blocked_run(["eval", "--help"], "jsonschema", "jinja2", "matplotlib", "ruamel")
    assert result.returncode == 0 and "--compare" in result.stdout, result.stderr


def test_nothing_outside_the_harness_imports_the_eval_extra() -> None:
    sources = [*(PROJECT_ROOT / "bot").rglob("*.py"), *(PROJECT_ROOT / "bench").rglob("*.py"), PROJECT_ROOT / "app.py"]
    harness = PROJECT_ROOT / "bot" / "evaluate"
    found = []
    for path in sources:
        if harness in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            found += [f"{path.relative_to(PROJECT_ROOT)}: {n}" for n in names if n.split(".")[0] in EXTRA_TOP_LEVEL]
    assert found == []


def test_the_extra_is_declared_apart_from_the_runtime_dependencies_and_dev_installs_it() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    declared = {spec.split(">")[0].lower() for spec in extras["eval"]}
    assert declared == {"jsonschema", "jinja2", "matplotlib", "ruamel.yaml"}
    assert not declared & {spec.split(">")[0].split("[")[0].lower() for spec in project["dependencies"]}
    assert {m.lower() for m in EXTRA_MODULES} == declared  # what the CLI checks is what the extra installs
    assert "eval" in extras["dev"][0] and extras["test"][0] == "bot[eval]"
