"""The project's own source: its modules, the imports between them, and code versions.

A code version is a short hash of the source text of a step function and of every project module
it uses, directly or through others, so it changes exactly when code that computes the step's
result changes. Only the text is hashed (not compiled files, paths or timestamps), with line
endings made uniform, so every checkout on every machine gets the same version.

Imports are read from the source (:mod:`ast`), counting the imports inside functions: the graph
is the one the layering tests check, and nothing here imports the modules it reads.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Iterable

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "assets")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@functools.cache
def modules() -> dict[str, Path]:
    """Every module of the project's packages by dotted name."""
    return {
        module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))
    }


def _targets(
    name: str, node: ast.Import | ast.ImportFrom, is_package: bool, known: set[str]
) -> list[tuple[str, str]]:
    """``(bound name, dotted target)`` of each name an import statement binds."""
    if isinstance(node, ast.Import):
        return [(alias.asname or alias.name.split(".")[0], alias.name) for alias in node.names]
    if node.level:  # relative: from the module's package
        base = name.split(".")[: len(name.split(".")) - node.level + is_package]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    # "from pipeline import warehouse" imports the module pipeline.warehouse.
    return [
        (
            alias.asname or alias.name,
            f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in known else prefix,
        )
        for alias in node.names
    ]


def _deepest(target: str, known: set[str]) -> str | None:
    """The deepest project module a dotted import target names, if any."""
    while target and target not in known:
        target = target.rpartition(".")[0]
    return target or None


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports anywhere in its source (module level or in a
    function)."""
    tree = ast.parse(_read(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for _, target in _targets(name, node, path.name == "__init__.py", known):
                module = _deepest(target, known)
                if module and module != name:
                    found.add(module)
    return found


# The import graph as last read, by the hash of every module's name and text: parsing the ~100
# modules takes about 0.6 s, paid by every process that builds the asset graph (each code version
# follows the imports), where reading and hashing them takes a few milliseconds. Beside the
# bytecode Python caches, and as disposable: unreadable, or of other sources, it is read again.
GRAPH_CACHE = ROOT / "pipeline" / "__pycache__" / "import_graph.json"


@functools.cache
def import_graph() -> dict[str, frozenset[str]]:
    """Each project module and the project modules it imports."""
    found = modules()
    digest = hashlib.sha256()
    for name, path in found.items():
        digest.update(f"{name}\0{_read(path)}\0".encode())
    key = digest.hexdigest()
    try:
        cached = json.loads(GRAPH_CACHE.read_text(encoding="utf-8"))
        if cached["key"] == key:
            return {name: frozenset(targets) for name, targets in cached["graph"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    known = set(found)
    graph = {name: imports(name, path, known) for name, path in found.items()}
    # A package's __init__ is run by importing any of its modules: not an edge of its own.
    graph = {
        name: frozenset(t for t in targets if not name.startswith(t + "."))
        for name, targets in graph.items()
    }
    try:  # through a partial file replaced in one step: a reader sees a whole record or none
        GRAPH_CACHE.parent.mkdir(exist_ok=True)
        partial = GRAPH_CACHE.with_name(f"{GRAPH_CACHE.name}.{os.getpid()}.partial")
        record = {"key": key, "graph": {name: sorted(t) for name, t in graph.items()}}
        partial.write_text(json.dumps(record), encoding="utf-8")
        partial.replace(GRAPH_CACHE)
    except OSError:  # a read-only checkout: read every time
        pass
    return graph


def closure(names: Iterable[str]) -> set[str]:
    """``names`` and every project module they import, directly or through others."""
    graph, seen, todo = import_graph(), set(), list(names)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph.get(name, ()))
    return seen


def module_source(name: str) -> str:
    """A module's source text with ``\\n`` line endings (a checkout may convert them)."""
    return _read(modules()[name])


@functools.cache
def _read(path: Path) -> str:
    # Read once per process: every asset's code version hashes most of the same modules.
    text = path.read_bytes().decode("utf-8")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _top_level(tree: ast.Module) -> dict[str, ast.stmt]:
    """The module-level statements that define a function, class or variable, by name."""
    defined = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                for leaf in ast.walk(target):
                    if isinstance(leaf, ast.Name):
                        defined[leaf.id] = node
    return defined


def _segment(lines: list[str], node: ast.stmt) -> str:
    """A statement's source lines, its decorators included."""
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    return "\n".join(lines[first - 1 : node.end_lineno])


@functools.cache
def _definitions(module: str, source: str) -> tuple[list[str], dict[str, ast.stmt], dict[str, str]]:
    """A module's source lines, its module-level definitions by name, and the project module
    each of its module-level imports binds, by bound name. Cached by the source text: every
    asset's code version reads the same module (``pipeline.steps``)."""
    known = set(modules())
    is_package = modules()[module].name == "__init__.py"
    tree = ast.parse(source)
    imported = {}
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for bound, target in _targets(module, node, is_package, known):
                if _deepest(target, known):
                    imported[bound] = _deepest(target, known)
    return source.split("\n"), _top_level(tree), imported


def _uses(module: str, names: Iterable[str]) -> tuple[list[str], set[str]]:
    """What the module-level definitions ``names`` of ``module`` use: the source of those
    definitions and of the others of the module they use, and the project modules they import
    (at module level or inside themselves)."""
    known = set(modules())
    is_package = modules()[module].name == "__init__.py"
    lines, defined, imported = _definitions(module, module_source(module))
    segments, used, seen, todo = {}, set(), set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in imported:
            used.add(imported[name])
            continue
        node = defined.get(name)
        if node is None:  # a builtin, or a local name of the function
            continue
        segments[id(node)] = (node.lineno, _segment(lines, node))
        for inner in ast.walk(node):
            if isinstance(inner, ast.Name):
                todo.append(inner.id)
            elif isinstance(inner, (ast.Import, ast.ImportFrom)):
                used.update(
                    m
                    for _, t in _targets(module, inner, is_package, known)
                    if (m := _deepest(t, known)) and m != module
                )
    return [text for _, text in sorted(segments.values())], used


def code_version(*functions: Callable) -> str:
    """A short hash of the source of ``functions`` (module-level functions of project modules),
    of the definitions of their modules they use, and of every project module they import,
    directly or through others."""
    by_module: dict[str, set[str]] = {}
    for function in functions:
        by_module.setdefault(function.__module__, set()).add(function.__name__)
    parts, used = [], set()
    for module in sorted(by_module):
        segments, imported = _uses(module, by_module[module])
        parts += [f"{module}\n{text}" for text in segments]
        used |= imported
    # A module whose definitions are hashed one by one is hashed whole only if something else
    # imports it.
    used = closure(used)
    parts += [f"{name}\n{module_source(name)}" for name in sorted(used)]
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]
