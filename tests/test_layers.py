"""The layers only point down: ``assets/`` uses ``pipeline/``, never the reverse, and no module of
``pipeline/`` imports another that imports it back, directly or through others, counting the
imports inside functions (which hide a cycle from Python but not from the next reader)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipeline import sources


def _modules() -> dict[str, Path]:
    return sources.modules()


def _graph() -> dict[str, set[str]]:
    return {name: set(targets) for name, targets in sources.import_graph().items()}


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
    upward = {
        name: sorted(t for t in targets if t.split(".")[0] == "assets")
        for name, targets in graph.items()
        if name.split(".")[0] == "pipeline"
    }
    assert {k: v for k, v in upward.items() if v} == {}
    dagster = [
        name
        for name, path in _modules().items()
        if name.split(".")[0] == "pipeline"
        and any(
            isinstance(n, (ast.Import, ast.ImportFrom))
            and any(a.name.split(".")[0] == "dagster" for a in n.names)
            or (isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "dagster")
            for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        )
    ]
    assert dagster == []


def test_no_import_cycles():
    assert _cycles(_graph()) == []


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from pipeline import warehouse\n", {"pipeline.warehouse"}),
        ("def f():\n    from pipeline.ingest.ingestion import x\n", {"pipeline.ingest.ingestion"}),
        ("import pipeline.spec.study\n", {"pipeline.spec.study"}),
    ],
)
def test_the_graph_sees_every_kind_of_import(tmp_path, source, expected):
    path = tmp_path / "m.py"
    path.write_text(source)
    assert (
        sources.imports(
            "pipeline.m",
            path,
            {"pipeline", "pipeline.warehouse", "pipeline.ingest.ingestion", "pipeline.spec.study"},
        )
        == expected
    )
