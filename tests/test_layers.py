"""The layers only point down: ``assets/`` uses ``pipeline/``, never the reverse, and no module of
``pipeline/`` imports another that imports it back, directly or through others, counting the
imports inside functions (which hide a cycle from Python but not from the next reader)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "assets")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports anywhere in its source (module level or in a function)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package
                base = name.split(".")[: len(name.split(".")) - node.level + is_package]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # "from pipeline import warehouse" imports the module pipeline.warehouse.
            targets = [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in known else prefix
                       for alias in node.names]
        else:
            continue
        for target in targets:
            # The deepest project module named by the import.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph = {name: _imports(name, path, known) for name, path in modules.items()}
    # A package's __init__ is run by importing any of its modules: not an edge of its own.
    return {name: {t for t in targets if not name.startswith(t + ".")} for name, targets in graph.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str, counter=[0]) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_core_never_imports_the_dagster_layer():
    graph = _graph()
    upward = {name: sorted(t for t in targets if t.split(".")[0] == "assets")
              for name, targets in graph.items() if name.split(".")[0] == "pipeline"}
    assert {k: v for k, v in upward.items() if v} == {}
    dagster = [name for name, path in _modules().items() if name.split(".")[0] == "pipeline"
               and any(isinstance(n, (ast.Import, ast.ImportFrom)) and
                       any(a.name.split(".")[0] == "dagster" for a in n.names)
                       or (isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "dagster")
                       for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))))]
    assert dagster == []


def test_no_import_cycles():
    assert _cycles(_graph()) == []


@pytest.mark.parametrize("source, expected", [
    ("from pipeline import warehouse\n", {"pipeline.warehouse"}),
    ("def f():\n    from pipeline.ingest.ingestion import x\n", {"pipeline.ingest.ingestion"}),
    ("import pipeline.spec.study\n", {"pipeline.spec.study"}),
])
def test_the_graph_sees_every_kind_of_import(tmp_path, source, expected):
    path = tmp_path / "m.py"
    path.write_text(source)
    assert _imports("pipeline.m", path, {"pipeline", "pipeline.warehouse", "pipeline.ingest.ingestion",
                                        "pipeline.spec.study"}) == expected
