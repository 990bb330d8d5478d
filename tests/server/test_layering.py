"""The shape of ``bot.server``: imports point one way (no cycles, nothing imports the app), modules stay small.

Read from the source, so every import counts: at the top, inside functions, and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bot.settings import PROJECT_ROOT

SERVER = PROJECT_ROOT / "bot" / "server"
MODULES = sorted(SERVER.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> dict[str, bool]:
    """The ``bot`` modules ``path`` imports, each with whether any of its imports is inside a function."""
    found: dict[str, bool] = {}

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.module:
                names = [child.module, *(f"{child.module}.{alias.name}" for alias in child.names)]
            for name in names:
                if name.startswith("bot.") and name not in (module_name(path), "bot.server"):
                    found[name] = found.get(name, False) or in_function
            visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


GRAPH = {module_name(path): imported(path) for path in MODULES}


def reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for name in GRAPH[todo.pop()]:
            if name in GRAPH and name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_module_of_the_server_imports_itself_back(module: str) -> None:
    assert module not in reachable(module)


@pytest.mark.parametrize("module", ["bot.server.page", "bot.server.answering", "bot.server.services",
                                    "bot.server.routes.chat", "bot.server.routes.feedback",
                                    "bot.server.routes.service", "bot.server.routes.openai"])  # fmt: skip
def test_the_page_and_the_routes_never_depend_on_the_app(module: str) -> None:
    assert "bot.server.app" not in reachable(module)


def test_only_the_page_is_imported_lazily_because_importing_gradio_takes_seconds() -> None:
    """Every other module of the project is imported at the top, where a reader sees what a module needs."""
    lazy = {(module, name) for module, imports in GRAPH.items() for name, in_function in imports.items() if in_function}
    assert lazy == {("bot.server.app", "bot.server.page")}


def imports_gradio(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        if any(name == "gradio" or name.startswith("gradio.") for name in names):
            return True
    return False


def test_only_the_page_imports_gradio() -> None:
    assert {module_name(path) for path in MODULES if imports_gradio(path)} == {"bot.server.page"}


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_modules_and_classes_stay_small(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert len(source.splitlines()) <= 400
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            assert node.end_lineno is not None and node.end_lineno - node.lineno + 1 <= 200, node.name
