"""The layout keeps its promises: imports point down only (no import circle anywhere in dlcore),
the kinds of data use only the shared machinery below them, and the generic run names no kind."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("tables", "images", "series")
# Modules that look a kind up by name: they sit above the kind packages.
ABOVE_KINDS = {"dlcore.kinds", "dlcore.templates", "dlcore.runner", "dlcore.jobs", "dlcore.scoring", "dlcore.explain",
               "dlcore.datasets", "dlcore.cli", "dlcore.__main__", "dlcore.handover.report", "dlcore.handover.bundle"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in (ROOT / "dlcore").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Every dlcore module -> the dlcore modules it imports, at the top or inside a function."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                graph[name] |= {a.name for a in node.names if a.name in mods}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    graph[name].add(full if full in mods else node.module)
        graph[name] &= set(mods)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph[v]:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_in_dlcore():
    graph = import_graph()
    assert "dlcore.runner" in graph and "dlcore.tables.run" in graph
    assert circles(graph) == []


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"a"}, "b": set()}) == [["a"]]


def test_kind_packages_use_only_the_machinery_below_them():
    graph = import_graph()
    for name, imported in graph.items():
        if name.split(".")[1:2] and name.split(".")[1] in KINDS:
            assert not imported & ABOVE_KINDS, (name, sorted(imported & ABOVE_KINDS))


def test_the_generic_run_names_no_kind():
    source = (ROOT / "dlcore" / "runner.py").read_text()
    strings = {n.value for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert not strings & {"tabular", "image", "series", "forecast"}
    imported = import_graph()["dlcore.runner"]
    assert not any(m.split(".")[1] in KINDS for m in imported if m.count(".") >= 1)


def test_every_kind_registers_once_with_its_templates():
    from dlcore import kinds

    assert list(kinds.KINDS) == ["tabular", "image", "series"]
    for kind in kinds.KINDS.values():
        assert kind.templates and all(t.kind == kind.name for t in kind.templates)
        assert (kind.prepare is None) != (kind.execute is None)  # the generic run, or a loop of its own
