"""The JSON Schema documents itself, and agrees with the model and with docs/format.md:
every property has a title, a description and an example (and a default when optional),
each default is what the model assumes, each example is valid, and every default that
docs/format.md's tables state is the schema's."""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import jsonschema
import pytest

from placement.model import (
    BootProfile,
    Guest,
    Host,
    HostBoot,
    MigrationSettings,
    PacemakerSettings,
    Problem,
    ProxmoxNodeAffinity,
    ProxmoxSettings,
    Schedule,
    SimulationSettings,
)
from placement.schema import PLAN_SCHEMA, PROBLEM_SCHEMA

FORMAT = Path(__file__).parent.parent / "docs" / "format.md"


def _properties(schema: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(JSON path, property schema, required) of every property, outermost first."""
    if not isinstance(schema, dict):
        return
    required = set(schema.get("required", ()))
    for key, child in schema.get("properties", {}).items():
        where = f"{path}.{key}" if path else key
        yield where, child, key in required
        yield from _properties(child, where)
    yield from _properties(schema.get("items"), f"{path}[]")


def _all() -> list[tuple[str, str, dict[str, Any], bool]]:
    return [
        (name, path, child, required)
        for name, schema in (("problem", PROBLEM_SCHEMA), ("plan", PLAN_SCHEMA))
        for path, child, required in _properties(schema)
    ]


def test_every_property_has_a_title_description_example_and_default() -> None:
    properties = _all()
    assert len(properties) == 115  # 95, and the plan statistics (20)
    missing = [
        f"{name}: {path}: {what}"
        for name, path, child, required in properties
        for what in ("title", "description", "examples")
        if not child.get(what)
    ]
    missing += [
        f"{name}: {path}: default"
        for name, path, child, required in properties
        if not required and "default" not in child
    ]
    assert not missing


@pytest.mark.parametrize(("name", "path", "child", "required"), _all(), ids=lambda v: str(v))
def test_each_example_and_default_is_valid(
    name: str, path: str, child: dict[str, Any], required: bool
) -> None:
    for example in child["examples"]:
        jsonschema.validate(example, child)
    if "default" in child:
        jsonschema.validate(child["default"], child)


def test_schemas_have_real_ids_titles_and_descriptions() -> None:
    for schema, kind in ((PROBLEM_SCHEMA, "problem"), (PLAN_SCHEMA, "plan")):
        assert schema["$id"] == f"urn:placement:schema:{kind}:v1"
        assert schema["title"] == f"placement {kind}"
        assert schema["description"]


def _plain(value: Any) -> Any:
    """A model default as JSON data (enums by value, sets sorted, tuples as lists)."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _model_default(cls: type, field: str) -> Any:
    found = attrs.fields_dict(cls)[field].default
    if isinstance(found, attrs.Factory):  # type: ignore[arg-type]
        found = found.factory()
    if attrs.has(type(found)):  # a nested settings object: absent means all defaults
        return {}
    return _plain(found)


_MODEL = {
    "problem": (Problem, ""),
    "host": (Host, "hosts[]."),
    "host boot": (HostBoot, "hosts[].boot."),
    "guest": (Guest, "guests[]."),
    "boot profile": (BootProfile, "guests[].boot."),
    "schedule": (Schedule, "schedule."),
    "migration": (MigrationSettings, "migration."),
    "simulation": (SimulationSettings, "simulation."),
    "proxmox": (ProxmoxSettings, "proxmox."),
    "pacemaker": (PacemakerSettings, "pacemaker."),
    "proxmox node affinity": (ProxmoxNodeAffinity, "proxmox.node_affinity[]."),
}


def test_every_default_is_the_models() -> None:
    by_path = {path: child for name, path, child, _ in _all() if name == "problem"}
    checked = 0
    for cls, prefix in _MODEL.values():
        for field in attrs.fields_dict(cls):
            path = prefix + field
            if path not in by_path or "default" not in by_path[path]:
                continue
            assert by_path[path]["default"] == _model_default(cls, field), path
            checked += 1
    assert checked == 65  # every default of the problem format


# docs/format.md: each section's table, and the schema object it documents.
_SECTIONS = {
    "## Problem": "",
    "### Host": "hosts[].",
    "### Guest": "guests[].",
    "### Boot profile (`guest.boot`)": "guests[].boot.",
    "### Schedule": "schedule.",
    "### Migration": "migration.",
    "### Simulation": "simulation.",
    "### Proxmox HA configuration": "proxmox.",
    "### Pacemaker": "pacemaker.",
}
# How docs/format.md words a default that is not a JSON value.
_WORDED = {
    "required": "required",
    "see below": {},
    "no limits": {},
    "1.0 each": {},
    "0 each": {},
    "null (all)": None,
}


def _documented_defaults() -> dict[str, Any]:
    """JSON path -> the default docs/format.md's tables state."""
    found: dict[str, Any] = {}
    section = None
    for line in FORMAT.read_text().splitlines():
        if line.startswith("#"):
            section = _SECTIONS.get(line.strip())
            continue
        row = re.match(r"^\| `([a-z_]+)` \| [^|]*(?:\\\|[^|]*)* \| ([^|]+) \|", line)
        if section is None or row is None:
            continue
        cell = row.group(2).strip()
        found[section + row.group(1)] = _WORDED[cell] if cell in _WORDED else _value(cell)
    return found


def _value(cell: str) -> Any:
    """A table cell as JSON: `1`, `null`, a backticked value, or a backticked word."""
    inner = cell[1:-1] if cell.startswith("`") and cell.endswith("`") else cell
    try:
        return json.loads(inner)
    except json.JSONDecodeError:
        if inner is cell:
            raise
        return inner


def test_format_reference_states_the_schemas_defaults() -> None:
    documented = _documented_defaults()
    schema = {path: (child, req) for name, path, child, req in _all() if name == "problem"}
    # Every key of the problem format has its row, but the simulation's failure list's
    # fields, the host boot limits and the Proxmox rules' fields, which their parents'
    # rows describe.
    nested = ("simulation.host_failures[]", "hosts[].boot.", "proxmox.node_affinity[]")
    rows = {p for p in schema if not p.startswith(nested)}
    assert set(documented) == rows - {"simulation"}
    for path, value in documented.items():
        child, required = schema[path]
        if value == "required":
            assert required, f"docs/format.md says {path} is required; the schema does not"
        else:
            assert not required, f"docs/format.md gives {path} a default; the schema requires it"
            assert child["default"] == value, f"docs/format.md: {path} defaults to {value!r}"
