"""Standing rules of the code's shape, checked by `make check` and `make test`: no import cycle, small modules.

The layer contracts (shells → engine → stages → index → contract) are import-linter's (`lint-imports`,
configured in pyproject.toml); these rules are the ones it doesn't state.
"""

from __future__ import annotations

import ast

import grimp
import networkx as nx
import pytest

from bot.settings import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "bot"
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 200


def modules() -> list[str]:
    return sorted(str(path.relative_to(PROJECT_ROOT)) for path in PACKAGE.rglob("*.py"))


def test_no_module_of_the_bot_is_in_an_import_cycle() -> None:
    # grimp reads every import statement: lazy ones inside functions and type-checking-only ones count too.
    graph = grimp.build_graph("bot", cache_dir=None)
    imports = nx.DiGraph()
    for module in graph.modules:
        imports.add_node(module)
        for imported in graph.find_modules_directly_imported_by(module):
            imports.add_edge(module, imported)
    cycles = [sorted(component) for component in nx.strongly_connected_components(imports) if len(component) > 1]
    assert cycles == [], f"import cycles: {cycles}"


@pytest.mark.parametrize("module", modules())
def test_no_module_is_longer_than_the_limit(module: str) -> None:
    lines = (PROJECT_ROOT / module).read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_MODULE_LINES, f"{module} has {lines} lines; split it (the limit is {MAX_MODULE_LINES})"


@pytest.mark.parametrize("module", modules())
def test_no_class_is_longer_than_the_limit(module: str) -> None:
    tree = ast.parse((PROJECT_ROOT / module).read_text(encoding="utf-8"))
    too_long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and node.end_lineno is not None
        if node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES
    ]
    assert not too_long, f"{module}: {', '.join(too_long)} (the limit is {MAX_CLASS_LINES} lines a class)"
