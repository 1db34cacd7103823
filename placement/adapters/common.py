"""What every importer shares: the result type, options, safe XML parsing, unit parsing."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET  # the Element type; parsing is defusedxml's
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from placement.adapters.names import import_name_error
from placement.codec import load_problem
from placement.errors import InputError, InvalidInputError
from placement.model import Problem


@attrs.frozen
class ImportOptions:
    """Choices an importer cannot read from the tool's state.

    `boot_duration_s`: every guest's boot duration (None: the format's default, 60 s).
    `overcommit`: per resource, the ratio every host gets (e.g. {"vcpus": 4.0}).
    `include_stopped`: also import guests that are stopped and that nothing asks to run
    (Proxmox, libvirt; Pacemaker: `target-role=Stopped`, otherwise kept stopped); they
    would then be started by the plan. `max_starts` and
    `stagger_s`: the schedule's batch limit and stagger gap (None: the tool's own, or none).
    """

    boot_duration_s: int | None = None
    max_starts: int | None = None
    stagger_s: int | None = None
    overcommit: Mapping[str, float] = attrs.field(factory=dict)
    include_stopped: bool = False


@attrs.frozen
class ImportResult:
    """A problem document built from a tool's state, and what could not be mapped.

    `document` is the problem JSON (a dict, as `placement.codec.dump_problem` writes it);
    `problem` the loaded, checked model; `warnings` one line each, naming the place in
    the source; `notes` facts worth telling (e.g. the placement strategy found).
    """

    document: dict[str, Any]
    problem: Problem
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def finish(
    document: dict[str, Any], warnings: list[str], notes: list[str], source: str
) -> ImportResult:
    """Check the built document as any problem file is checked; errors name `source`."""
    try:
        problem = load_problem(document)
    except InvalidInputError as error:
        raise InvalidInputError(
            [
                InputError(f"{source} (as imported): {item.path}", item.message)
                for item in error.errors
            ]
        ) from error
    return ImportResult(document, problem, tuple(warnings), tuple(notes))


def apply_common_options(document: dict[str, Any], options: ImportOptions) -> None:
    """Set what `options` decide on every host and guest of `document`."""
    if options.overcommit:
        for host in document["hosts"]:
            ratios = {r: v for r, v in options.overcommit.items() if r in host["capacity"]}
            if ratios:
                host["overcommit"] = ratios
    if options.max_starts is not None:
        document.setdefault("schedule", {})["max_starts"] = options.max_starts
    if options.stagger_s is not None:
        document.setdefault("schedule", {})["stagger_s"] = options.stagger_s
    if options.boot_duration_s is not None:
        for guest in document["guests"]:
            guest.setdefault("boot", {})["duration_s"] = options.boot_duration_s


def checked_name(value: Any, where: str) -> str:
    """`value` as a name, or `InvalidInputError` at `where` if no tool could take it."""
    if not isinstance(value, str):
        raise InvalidInputError([InputError(where, f"must be a name, got {value!r}")])
    error = import_name_error(value)
    if error is not None:
        raise InvalidInputError([InputError(where, error)])
    return value


def parse_xml(path: str | os.PathLike[str]) -> ET.Element:
    """Parse an XML file that may be hostile: no entity expansion, no external DTDs."""
    where = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise InvalidInputError([InputError(where, error.strerror or str(error))]) from error
    try:
        root: ET.Element = SafeET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as error:
        raise InvalidInputError(
            [
                InputError(
                    where, f"refused: {type(error).__name__} (DTDs and entities are not accepted)"
                )
            ]
        ) from error
    except ET.ParseError as error:
        line, column = error.position
        raise InvalidInputError(
            [InputError(where, f"invalid XML at line {line} column {column + 1}")]
        ) from error
    return root


# Byte multipliers of the unit names libvirt accepts (formatdomain: "Memory Allocation").
_UNITS = {
    "b": 1, "bytes": 1,
    "kb": 1000, "k": 1024, "kib": 1024,
    "mb": 1000**2, "m": 1024**2, "mib": 1024**2,
    "gb": 1000**3, "g": 1024**3, "gib": 1024**3,
    "tb": 1000**4, "t": 1024**4, "tib": 1024**4,
}  # fmt: skip


def to_mib(amount: int, unit: str, *, round_up: bool = True) -> int | None:
    """`amount` of `unit` in whole MiB (None: an unknown unit). Demands round up,
    capacities (`round_up=False`) down, so that neither is overstated in our favour."""
    factor = _UNITS.get(unit.strip().lower())
    if factor is None:
        return None
    if round_up:
        return -(-amount * factor // 1024**2)
    return amount * factor // 1024**2


def parse_int(text: str | None) -> int | None:
    """A non-negative integer from text, else None."""
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.isdigit() else None
