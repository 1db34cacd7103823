"""No function of `placement/solvers/` is over 80 lines: a longer one holds more than one
idea, and the optimiser's are read often. (Tables are module constants, not functions,
so they are not counted.)"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 80


def _lengths() -> dict[tuple[str, str], int]:
    """(module path, function or method name) -> lines, the longest of that name."""
    lengths: dict[tuple[str, str], int] = {}
    for path in sorted((ROOT / "placement" / "solvers").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                key = (path.relative_to(ROOT).as_posix(), node.name)
                length = node.end_lineno - node.lineno + 1
                lengths[key] = max(length, lengths.get(key, 0))
    return lengths


def test_no_function_in_the_solvers_is_over_80_lines() -> None:
    assert {key: n for key, n in _lengths().items() if n > LIMIT} == {}
