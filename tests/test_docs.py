"""The format reference names every key the schema knows, so the docs cannot fall behind."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from placement.model import Objective
from placement.schema import PLAN_SCHEMA, PROBLEM_SCHEMA

DOCS = Path(__file__).parent.parent / "docs"


def _keys(schema: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.get("properties", {}).items():
            found.add(key)
            found |= _keys(value)
        found |= _keys(schema.get("items"))
    return found


def test_format_reference_documents_every_key() -> None:
    text = (DOCS / "format.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.MULTILINE))
    documented |= set(re.findall(r"`([a-z_]+)`", text))
    missing = (_keys(PROBLEM_SCHEMA) | _keys(PLAN_SCHEMA)) - documented
    assert not missing, f"docs/format.md does not mention: {sorted(missing)}"


def test_format_reference_documents_every_objective() -> None:
    text = (DOCS / "format.md").read_text()
    for objective in Objective:
        assert f"| `{objective.value}` |" in text
