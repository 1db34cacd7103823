"""The packages depend one way: no import circles in `placement/` or `bench/`.

The graph is read from the source (AST), so it sees what a run may never reach:
- every `import` and `from … import` counts, at module level or inside a function
  (a function-level import that closes a circle is still a circle, only a hidden one);
- imports inside an `if TYPE_CHECKING:` block do not count (they never run);
- `from package import name` is an edge to `package.name` when that is a module, else
  to `package` (its `__init__`);
- a module that calls `importlib.import_module` has an edge to every module of ours whose
  dotted name appears in it as a string (the CLI's `COMMAND_MODULES`, the solver registry);
- a package's `__init__` importing its own submodules (re-exports, the solver registry)
  does not count: Python runs the `__init__` first whatever is imported, so such an edge
  adds no order the package does not already have. A submodule importing names from its
  own package's `__init__` (`from placement.solvers import SolveOptions`) does count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("placement", "bench")


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of `tree` but those under an `if TYPE_CHECKING:` (its `else` counts)."""
    found: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        found.append(node)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))
    return found


def _imported(node: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The modules of ours that the import statement `node` in `module` loads."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
        return {_known_prefix(name, known) for name in names} - {""}
    if not isinstance(node, ast.ImportFrom):
        return set()
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join([*base, node.module] if node.module else base)
    else:
        source = node.module or ""
    targets = set()
    for alias in node.names:
        full = f"{source}.{alias.name}"
        targets.add(full if full in known else _known_prefix(source, known))
    return targets - {""}


def _known_prefix(name: str, known: set[str]) -> str:
    parts = name.split(".")
    while parts and ".".join(parts) not in known:
        parts.pop()
    return ".".join(parts)


def import_graph(root: Path = ROOT) -> nx.DiGraph:
    """Module -> the modules of ours it imports, by the rules in the module docstring."""
    paths = {
        _module_name(root, path): path
        for package in PACKAGES
        for path in sorted((root / package).rglob("*.py"))
    }
    known = set(paths)
    graph = nx.DiGraph()
    graph.add_nodes_from(known)
    for module, path in paths.items():
        is_package = path.name == "__init__.py"
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(path))
        nodes = _nodes(tree)
        targets: set[str] = set()
        for node in nodes:
            targets |= _imported(node, module, is_package, known)
        if "import_module" in source:
            targets |= {
                node.value
                for node in nodes
                if isinstance(node, ast.Constant) and node.value in known
            }
        for target in targets:
            if target == module:
                continue
            if is_package and target.startswith(module + "."):
                continue  # a package's __init__ importing its own submodules
            graph.add_edge(module, target)
    return graph


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_a_function_level_import_closes_a_circle(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "placement/__init__.py": "from placement import a\n",  # its own submodule
            "placement/a.py": "from placement.b import thing\n",
            "placement/b.py": "def thing():\n    from placement import a\n",
        },
    )
    cycles = [sorted(cycle) for cycle in nx.simple_cycles(import_graph(root))]
    assert cycles == [["placement.a", "placement.b"]]


def test_type_checking_imports_and_a_package_importing_its_submodules_do_not(
    tmp_path: Path,
) -> None:
    root = _write(
        tmp_path,
        {
            "placement/__init__.py": "from placement import a, b\n",
            "placement/a.py": "from placement import b\nimport placement\n",
            "placement/b.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from placement.a import A\n"
            ),
        },
    )
    graph = import_graph(root)
    assert set(graph.edges) == {("placement.a", "placement.b"), ("placement.a", "placement")}
    assert list(nx.simple_cycles(graph)) == []


def test_the_graph_sees_function_level_and_dynamic_imports() -> None:
    graph = import_graph()
    # A function-level import (a suite lists the HA instances) ...
    assert graph.has_edge("bench.suites", "bench.ha")
    # ... and one through `importlib` (the CLI's command modules).
    assert graph.has_edge("placement.cli", "placement.ops_cli")


def test_no_import_circles() -> None:
    """(A command module imports what it shares with the CLI from `placement.cli_common`;
    a CP-SAT strategy imports `cpsat.model`, `cpsat.search`, `cpsat.plans`, never the
    reverse.)"""
    circles = sorted(" -> ".join(cycle) for cycle in nx.simple_cycles(import_graph()))
    assert circles == []
