"""Import guests from libvirt domain XML files (`virsh dumpxml`, `/etc/libvirt/qemu/*.xml`).

Layout: either one folder per host (`DIR/kvm1/web1.xml`: `web1` belongs to `kvm1`), or
one flat folder with a mapping file `{"web1": "kvm1", ...}`. Host capacities come from a
hosts file (a JSON list of hosts in the problem format: `name`, `capacity`, optionally
`state`, `overcommit`, ...) or from the output of `virsh nodeinfo` saved as
`DIR/HOST/nodeinfo` (`CPU(s)` and `Memory size`); the hosts file wins where both exist.

Per domain: `<name>`; `<memory unit=...>` (the boot memory; `unit` defaults to KiB, and
b, KB, K/KiB, MB, M/MiB, GB, G/GiB, TB, T/TiB are understood as in libvirt's domain
format) as `ram_mib`; `<vcpu current=...>N</vcpu>` (the `current` count when given, else
N) as `vcpus`. A dump of a running domain carries `<domain id='N'>`: such a guest runs
now on its host; one without an id is defined but stopped, and is imported only with
`include_stopped`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from placement.adapters.common import (
    ImportOptions,
    ImportResult,
    apply_common_options,
    checked_name,
    finish,
    parse_int,
    parse_xml,
    to_mib,
)
from placement.codec import read_json
from placement.errors import InputError, InvalidInputError

_NODEINFO_LINE = re.compile(r"^\s*([^:]+):\s*(.*?)\s*$")


def parse_nodeinfo(text: str, where: str) -> dict[str, int]:
    """`virsh nodeinfo` output -> {"vcpus": CPU(s), "ram_mib": Memory size}."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        match = _NODEINFO_LINE.match(line)
        if match:
            fields[match.group(1).strip().lower()] = match.group(2)
    cpus = parse_int(fields.get("cpu(s)"))
    memory_text = fields.get("memory size", "").split()
    memory = None
    if len(memory_text) == 2 and memory_text[0].isdigit():
        memory = to_mib(int(memory_text[0]), memory_text[1], round_up=False)
    if cpus is None or memory is None:
        raise InvalidInputError(
            [InputError(where, "not `virsh nodeinfo` output: needs 'CPU(s)' and 'Memory size'")]
        )
    return {"vcpus": cpus, "ram_mib": memory}


def _read_domain(path: Path, warnings: list[str]) -> tuple[str, dict[str, int], bool]:
    where = str(path)
    root = parse_xml(path)
    if root.tag != "domain":
        raise InvalidInputError([InputError(where, f"expected a <domain>, got <{root.tag}>")])
    name = checked_name((root.findtext("name") or "").strip(), f"{where}: domain/name")
    demand: dict[str, int] = {}
    memory = root.find("memory")
    amount = parse_int(memory.text) if memory is not None else None
    if memory is None or amount is None:
        raise InvalidInputError(
            [InputError(f"{where}: domain/memory", "missing or not a whole number")]
        )
    unit = memory.get("unit", "KiB")
    mib = to_mib(amount, unit)
    if mib is None:
        raise InvalidInputError(
            [InputError(f"{where}: domain/memory/@unit", f"unknown unit {unit!r}")]
        )
    demand["ram_mib"] = mib
    vcpu = root.find("vcpu")
    if vcpu is None:
        warnings.append(f"{where}: no <vcpu>; 1 vCPU assumed (libvirt's default)")
        demand["vcpus"] = 1
    else:
        count = parse_int(vcpu.get("current")) or parse_int(vcpu.text)
        if count is None:
            raise InvalidInputError([InputError(f"{where}: domain/vcpu", "not a whole number")])
        demand["vcpus"] = count
    running = root.get("id") not in (None, "-1")
    return name, demand, running


def import_libvirt(
    folder: str | os.PathLike[str],
    *,
    hosts: str | os.PathLike[str] | None = None,
    mapping: str | os.PathLike[str] | None = None,
    options: ImportOptions | None = None,
) -> ImportResult:
    """Build a problem from a folder of libvirt domain XML files (see the module docstring)."""
    options = options or ImportOptions()
    warnings: list[str] = []
    notes: list[str] = []
    base = Path(folder)
    if not base.is_dir():
        raise InvalidInputError([InputError(str(base), "not a folder")])

    host_documents: dict[str, dict[str, Any]] = {}
    for sub in sorted(p for p in base.iterdir() if p.is_dir()):
        info = sub / "nodeinfo"
        if info.is_file():
            name = checked_name(sub.name, str(sub))
            capacity = parse_nodeinfo(info.read_text(encoding="utf-8", errors="replace"), str(info))
            host_documents[name] = {"name": name, "capacity": capacity}
    if hosts is not None:
        listed = read_json(hosts)
        if not isinstance(listed, list):
            raise InvalidInputError([InputError(str(hosts), "expected a JSON list of hosts")])
        for index, item in enumerate(listed):
            if not isinstance(item, Mapping):
                raise InvalidInputError([InputError(f"{hosts}[{index}]", "expected a host object")])
            name = checked_name(item.get("name"), f"{hosts}[{index}].name")
            host_documents[name] = dict(item)

    placed: dict[str, tuple[str, Path]] = {}  # domain file -> (host, path)
    if mapping is not None:
        table = read_json(mapping)
        if not isinstance(table, Mapping):
            raise InvalidInputError([InputError(str(mapping), "expected {domain: host}")])
        for path in sorted(base.glob("*.xml")):
            placed[path.stem] = ("", path)
    for sub in sorted(p for p in base.iterdir() if p.is_dir()):
        for path in sorted(sub.glob("*.xml")):
            placed[f"{sub.name}/{path.stem}"] = (sub.name, path)

    guests: dict[str, dict[str, Any]] = {}
    skipped: list[str] = []
    for _key, (folder_host, path) in placed.items():
        name, demand, running = _read_domain(path, warnings)
        host = folder_host
        if mapping is not None and not folder_host:
            mapped = table.get(name)
            if not isinstance(mapped, str):
                raise InvalidInputError(
                    [InputError(str(mapping), f"no host for domain '{name}' ({path})")]
                )
            host = mapped
        host = checked_name(host, str(path))
        if host not in host_documents:
            raise InvalidInputError(
                [
                    InputError(
                        str(path),
                        f"host '{host}' has no capacity (no hosts file entry, no nodeinfo)",
                    )
                ]
            )
        host_failed = host_documents[host].get("state") == "failed"
        if not running and not options.include_stopped:
            skipped.append(name)
            continue
        guest: dict[str, Any] = {"name": name, "demand": demand}
        if running:
            guest.update(current_host=host, state="running")
        if name in guests:
            previous = guests[name]
            warnings.append(
                f"{path}: domain '{name}' is defined on several hosts; "
                + (
                    "the running one is kept"
                    if running != ("state" in previous)
                    else "the first is kept"
                )
            )
            if "state" in previous or not running:
                continue
        guests[name] = guest
        if host_failed and not running:
            notes.append(f"{name}: defined on failed host {host}")
    if skipped:
        notes.append(
            f"{len(skipped)} defined but stopped domain(s) left out (--include-stopped imports "
            f"them): {', '.join(sorted(skipped)[:10])}"
        )

    document: dict[str, Any] = {
        "schema_version": 1,
        "hosts": list(host_documents.values()),
        "guests": list(guests.values()),
    }
    apply_common_options(document, options)
    return finish(document, warnings, notes, str(base))
