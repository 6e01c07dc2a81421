"""The package's shape: no import circles, and each layer imports only the layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "shared" / "irtcat"

# lower layers first; a module may import its own layer and those before it
LAYERS = [("irt",), ("domain",), ("adapters", "analytics"), ("emulator",), ("demo",), ("cli",)]


def _module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Every module of the package and the package modules it imports: at the top, inside
    functions and under TYPE_CHECKING alike (a lazy import still ties two modules together)."""
    files = {_module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                origin = ".".join(base[: len(base) - node.level + 1]) if node.level else ""
                target = ".".join(p for p in (origin, node.module or "") if p)
                candidates = [target, *(f"{target}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                continue
            for candidate in candidates:
                while candidate and candidate not in files:
                    candidate = candidate.rpartition(".")[0]
                if candidate and candidate != name:
                    graph[name].add(candidate)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan 1972)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None
    return next((i for i, names in enumerate(LAYERS) if parts[1] in names), None)


def test_the_package_has_no_import_circles() -> None:
    assert circles(import_graph()) == []


def test_the_circle_check_finds_a_circle(tmp_path: Path) -> None:
    package = tmp_path / "irtcat"
    (package / "emulator").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "emulator" / "__init__.py").write_text("")
    (package / "emulator" / "a.py").write_text("def f():\n    from .b import g\n")
    (package / "emulator" / "b.py").write_text("from irtcat.emulator import a\n")
    assert circles(import_graph(package)) == [["irtcat.emulator.a", "irtcat.emulator.b"]]


def test_every_layer_imports_only_the_layers_below_it() -> None:
    upward = []
    for module, imports in import_graph().items():
        mine = _layer(module)
        for imported in imports:
            theirs = _layer(imported)
            if mine is not None and theirs is not None and theirs > mine:
                upward.append(f"{module} -> {imported}")
    assert upward == []
    assert {_layer(m) for m in import_graph()} >= set(range(len(LAYERS))), "a layer has no module"
