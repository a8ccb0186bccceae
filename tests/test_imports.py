"""The package's import graph, read from the source with ``ast``: no import circle, and a TensorFlow-free plan.

Every ``import`` statement counts, at module level or inside a function (a function's import runs when it is
called, so a circle through one still ties the two modules together), except those under ``if TYPE_CHECKING:``,
which never run. Nothing is imported here: the graph is the source's.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

PACKAGE = "neural_style"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE


def _module_name(path: Path) -> str:
    parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    """{dotted name: file} of every module of the package."""
    return {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements that can run: everywhere but the body of ``if TYPE_CHECKING:``."""
    if isinstance(tree, ast.If) and _is_type_checking(tree.test):
        for node in tree.orelse:
            yield from _import_nodes(node)
        return
    if isinstance(tree, ast.Import | ast.ImportFrom):
        yield tree
    for child in ast.iter_child_nodes(tree):
        yield from _import_nodes(child)


def _imported(name: str, path: Path, modules: Iterable[str]) -> tuple[set[str], set[str]]:
    """(modules of the package, top-level names of other packages) that module ``name`` imports."""
    known = set(modules)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    inside: set[str] = set()
    outside: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from package import module`` imports the module; ``from module import name``, the module.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        for target in targets:
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                while target not in known:  # ``import a.b.c`` of a name inside a module: its module
                    target = target.rpartition(".")[0]
                if target != name:
                    inside.add(target)
            else:
                outside.add(target.partition(".")[0])
    return inside, outside


def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """({module: modules of the package it imports}, {module: other top-level packages it imports})."""
    modules = _modules()
    graph, external = {}, {}
    for name, path in modules.items():
        graph[name], external[name] = _imported(name, path, modules)
    return graph, external


def find_cycle(graph: dict[str, set[str]], nodes: Iterable[str]) -> list[str] | None:
    """A circle among ``nodes`` (edges to other modules are left out) as [a, b, ..., a], or None."""
    among = set(nodes)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for after in sorted(graph[node] & among):
            if state.get(after) == 1:
                return [*path[path.index(after) :], after]
            if after not in state:
                found = visit(after)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(among):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """The modules ``start`` imports, directly or through others, and itself."""
    seen, todo = {start}, [start]
    while todo:
        for after in graph[todo.pop()]:
            if after not in seen:
                seen.add(after)
                todo.append(after)
    return seen


GRAPH, EXTERNAL = import_graph()
# The commands: the cli package, the studio's server and ``python -m neural_style``, which runs one.
COMMANDS = [
    name for name in GRAPH if name.startswith((f"{PACKAGE}.cli", f"{PACKAGE}.serve")) or name == f"{PACKAGE}.__main__"
]
LIBRARY = [name for name in GRAPH if name not in COMMANDS]


def test_the_graph_is_read_by_hand() -> None:
    """What the reader finds in modules whose imports are known: relative, aliased, function-level and type-only."""
    assert GRAPH[f"{PACKAGE}.errors"] == set()  # numpy only, and only for type checking
    assert EXTERNAL[f"{PACKAGE}.errors"] == {"__future__", "typing"}
    assert GRAPH[f"{PACKAGE}.config"] == {f"{PACKAGE}.errors"}
    assert f"{PACKAGE}.matconvnet" in GRAPH[f"{PACKAGE}.vgg"]
    assert "scipy" in EXTERNAL[f"{PACKAGE}.matconvnet"]  # imported inside a function
    assert f"{PACKAGE}.cli.command" in GRAPH[f"{PACKAGE}.cli"]  # ``from neural_style.cli.command import`` in a function
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, "abcd") == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}, "abc") is None
    assert find_cycle({"a": {"b"}, "b": {"a"}}, "a") is None  # b is not among the nodes


def test_no_import_circle_in_the_library() -> None:
    """No library module imports, through any chain, a module that imports it back."""
    cycle = find_cycle(GRAPH, LIBRARY)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_no_import_circle_in_the_commands() -> None:
    """No command module imports, through any chain, a module that imports it back."""
    cycle = find_cycle(GRAPH, COMMANDS)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_library_does_not_import_the_commands() -> None:
    """Data flows one way: the commands use the library, never the reverse."""
    used = {name: sorted(set(GRAPH[name]) & set(COMMANDS)) for name in LIBRARY}
    assert {name: found for name, found in used.items() if found} == {}


@pytest.mark.parametrize("module", ["memory", "config", "errors"])
def test_the_plan_imports_no_tensorflow(module: str) -> None:
    """The run's plan (memory estimate, tiles, deepest layer) and the settings load without TensorFlow or Keras,
    through every module they import, so a command can plan and refuse a run before TensorFlow starts."""
    chain = reachable(GRAPH, f"{PACKAGE}.{module}")
    heavy = {name: sorted(EXTERNAL[name] & {"tensorflow", "keras"}) for name in chain}
    assert {name: found for name, found in heavy.items() if found} == {}
    assert f"{PACKAGE}.tiling" not in chain and f"{PACKAGE}.vgg" not in chain


@pytest.mark.parametrize("module", ["losses", "objective"])
def test_losses_know_nothing_of_tiles(module: str) -> None:
    """The losses and the objective are pure: tiling wraps them, never the reverse."""
    assert f"{PACKAGE}.tiling" not in reachable(GRAPH, f"{PACKAGE}.{module}")
