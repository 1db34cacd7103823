"""Import a Proxmox VE cluster: `pvesh get /cluster/resources` plus its HA configuration.

Sources, each the JSON that `pvesh get PATH --output-format json` prints:

- `/cluster/resources` (required): `type: node` entries give hosts (`maxcpu` CPUs,
  `maxmem` bytes, `status` online or not); `type: qemu` and `type: lxc` entries give
  guests (`vmid`, `node`, `status`, `maxcpu`, `maxmem`, `template`).
- `/cluster/ha/resources`: HA service ids (`vm:100`), their requested `state` and HA
  `group` (Proxmox VE 8).
- `/cluster/ha/groups`: `nodes` ("pve1:2,pve2") and `restricted` (Proxmox VE 8).
- `/cluster/ha/rules`: `node-affinity` rules (`nodes` with priorities, `strict`) and
  `resource-affinity` rules (`resources`, `affinity` positive or negative) (Proxmox VE 9).
- `/cluster/options` (or `/etc/pve/datacenter.cfg`): the `crs` option (`ha` scheduler,
  `ha-rebalance-on-start`, `ha-auto-rebalance`).

The three HA files may also be the configuration files themselves, as `/etc/pve/ha/`
holds them (`resources.cfg`, `groups.cfg`, `rules.cfg`: Proxmox's section-config text).

Node affinity (rules, or groups in VE 8): the hard part (a strict rule, a restricted
group) restricts the guest's `hosts`; the node priorities and non-strict preferences go
to the problem's `proxmox.node_affinity`, which the `proxmox-*` re-creations follow and
the other solvers do not (a warning names each such rule).
- guest configurations, `/nodes/NODE/qemu/VMID/config` or `/nodes/NODE/lxc/VMID/config`,
  one file `VMID.json` per guest in a folder.

Static usage is derived as the HA manager's static CRS derives it (the guests'
`get_derived_property` `max-cpu` and `max-memory`): a VM uses `vcpus` if set, else
`sockets * cores` (each 1 by default), and its configured `memory` (512 MiB by default);
a container uses `cpulimit`, else `cores`, and its `memory` (512 MiB by default). Without
a configuration the guest's `maxcpu` and `maxmem` from `/cluster/resources` stand in
(pvestatd caps `maxcpu` by `cpulimit`), and a warning says so.

Guests are named by their HA service id, `vm:VMID` or `ct:VMID`, so the rules and the
exported `qm` / `pct` commands refer to them unambiguously.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from placement.adapters.common import (
    ImportOptions,
    ImportResult,
    apply_common_options,
    checked_name,
    finish,
)
from placement.codec import read_json
from placement.errors import InputError, InvalidInputError

MIB = 1024 * 1024

# Requested HA states under which the HA manager keeps a guest running.
_HA_RUNNING = {"started", "enabled"}
# HA states under which the HA manager leaves the guest alone or stopped.
_HA_NOT_RUNNING = {"stopped", "disabled", "ignored", "error"}


def _entries(document: Any, source: str) -> list[tuple[int, Mapping[str, Any]]]:
    # pvesh prints a list; the HTTP API wraps it as {"data": [...]}. Accept both.
    if isinstance(document, Mapping) and "data" in document:
        document = document["data"]
    if not isinstance(document, list):
        raise InvalidInputError([InputError(source, "expected a JSON list of entries")])
    return [(i, item) for i, item in enumerate(document) if isinstance(item, Mapping)]


_SECTION_HEAD = re.compile(r"^(\S+):\s*(\S+)\s*$")
_SECTION_LINE = re.compile(r"^\s+(\S+)(?:\s+(.*?))?\s*$")


def parse_section_config(text: str, id_key: str, where: str) -> list[dict[str, Any]]:
    """Proxmox's section-config text (`/etc/pve/ha/rules.cfg` and friends) as the list
    of entries `pvesh` would print: each `TYPE: ID` head line and its indented `key value`
    lines become {"type": TYPE, id_key: ID, key: value, ...}; for `sid` the id is the
    service id `TYPE:ID` (`vm: 100` -> "vm:100"). Raises `InvalidInputError` at the line.
    """
    entries: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            if not line.strip():
                current = None
            continue
        head = _SECTION_HEAD.match(line)
        if head and not line[0].isspace():
            kind, name = head.groups()
            current = {"type": kind, id_key: f"{kind}:{name}" if id_key == "sid" else name}
            entries.append(current)
            continue
        body = _SECTION_LINE.match(line)
        if body is None or current is None:
            raise InvalidInputError(
                [InputError(f"{where}:{number}", f"not a section-config line: {line.strip()!r}")]
            )
        key, value = body.groups()
        current[key] = value if value is not None else "1"
    return entries


def _read_entries(path: str | os.PathLike[str], id_key: str) -> list[tuple[int, Mapping[str, Any]]]:
    """Entries of a `pvesh` JSON file or of the same configuration as section-config text."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = "["  # let read_json report the problem
    if text.lstrip()[:1] in ("[", "{"):
        return _entries(read_json(path), where)
    return list(enumerate(parse_section_config(text, id_key, where)))


def _number(item: Mapping[str, Any], key: str) -> float | None:
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _node_list(text: Any) -> dict[str, int]:
    """'pve1:2,pve2' -> {'pve1': 2, 'pve2': 0} (the node priority, 0 when not given)."""
    nodes: dict[str, int] = {}
    if not isinstance(text, str):
        return nodes
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, priority = part.partition(":")
        nodes[name] = int(priority) if priority.isdigit() else 0
    return nodes


def _flag(value: Any) -> bool:
    return value in (1, True, "1", "true")


def _memory_mib(value: Any) -> int | None:
    """A guest config's `memory`: an integer of MiB, or (VE 8.1+) 'current=N[,...]'."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        for part in value.split(","):
            key, _, amount = part.rpartition("=")
            if key in ("", "current") and amount.strip().isdigit():
                return int(amount)
    return None


def _config_usage(
    kind: str, config: Mapping[str, Any], where: str, warnings: list[str]
) -> tuple[float | None, int | None]:
    """(CPUs, memory MiB) as the static CRS derives them from a guest configuration
    (CPUs may be fractional: a container's cpulimit; None: no limit)."""

    def count(key: str) -> float | None:
        value = _number(config, key)
        return value if value else None

    if kind == "qemu":
        vcpus = count("vcpus")
        cpus = vcpus if vcpus else (count("sockets") or 1) * (count("cores") or 1)
        memory = _memory_mib(config.get("memory", 512))
    else:
        cpus = count("cpulimit") or count("cores") or 0
        memory = _memory_mib(config.get("memory", 512))
    if memory is None:
        warnings.append(f"{where}: memory {config.get('memory')!r} not understood; maxmem used")
    return (cpus if cpus else None), memory


def import_proxmox(
    resources: str | os.PathLike[str],
    *,
    ha_resources: str | os.PathLike[str] | None = None,
    ha_groups: str | os.PathLike[str] | None = None,
    ha_rules: str | os.PathLike[str] | None = None,
    configs: str | os.PathLike[str] | None = None,
    datacenter: str | os.PathLike[str] | None = None,
    ha_status: str | os.PathLike[str] | None = None,
    options: ImportOptions | None = None,
) -> ImportResult:
    """Build a problem from Proxmox VE's own JSON output (see the module docstring).

    Hosts get `vcpus` and `ram_mib` capacities; guests the same demands. A guest runs
    now if its status is `running`; a guest on an offline node that was running, or that
    HA wants started, is imported as running there, so the plan restarts it elsewhere.
    Stopped guests are imported only if HA wants them started, or with
    `options.include_stopped`. `datacenter` (the cluster options) sets the problem's
    `proxmox.rebalance_on_start`. `ha_status` (the HA manager's status) puts nodes in
    HA maintenance into `maintenance`, and nodes being fenced into `failed`.
    Raises `InvalidInputError` naming the file and entry.
    """
    options = options or ImportOptions()
    warnings: list[str] = []
    notes: list[str] = []
    source = str(resources)
    entries = _entries(read_json(resources), source)

    hosts: list[dict[str, Any]] = []
    node_online: dict[str, bool] = {}
    node_cpus: dict[str, int] = {}
    for index, item in entries:
        if item.get("type") != "node":
            continue
        where = f"{source}[{index}]"
        name = checked_name(item.get("node"), f"{where}.node")
        cpus, memory = _number(item, "maxcpu"), _number(item, "maxmem")
        online = item.get("status") == "online"
        if "status" not in item:
            warnings.append(f"{where}: node '{name}' has no status; taken as failed")
        if cpus is None or memory is None:
            if online:
                raise InvalidInputError(
                    [InputError(where, f"online node '{name}' has no maxcpu or maxmem")]
                )
            warnings.append(
                f"{where}: node '{name}' is {item.get('status')!r} and reports no size; capacity 0"
            )
        capacity = {"vcpus": int(cpus or 0), "ram_mib": int((memory or 0) // MIB)}
        hosts.append(
            {"name": name, "capacity": capacity, "state": "online" if online else "failed"}
        )
        node_online[name] = online
        node_cpus[name] = int(cpus or 0)

    if ha_status is not None:
        _apply_node_status(ha_status, hosts, node_online, warnings)

    ha_state: dict[str, str] = {}
    ha_group_of: dict[str, str] = {}
    no_failback: set[str] = set()
    if ha_resources is not None:
        for _index, item in _read_entries(ha_resources, "sid"):
            sid = item.get("sid")
            if isinstance(sid, str):
                ha_state[sid] = str(item.get("state", "started"))
                if isinstance(item.get("group"), str):
                    ha_group_of[sid] = item["group"]
                if "failback" in item and not _flag(item.get("failback")):
                    no_failback.add(sid)

    config_dir = Path(configs) if configs is not None else None
    exact_cpus: dict[str, float] = {}
    guests: list[dict[str, Any]] = []
    skipped_stopped: list[str] = []
    missing_config = 0
    for index, item in entries:
        kind = item.get("type")
        if kind not in ("qemu", "lxc"):
            continue
        where = f"{source}[{index}]"
        vmid = item.get("vmid")
        if isinstance(vmid, str) and vmid.isdigit():
            vmid = int(vmid)
        if not isinstance(vmid, int) or isinstance(vmid, bool) or vmid < 1:
            raise InvalidInputError([InputError(f"{where}.vmid", f"must be a VMID, got {vmid!r}")])
        sid = f"{'vm' if kind == 'qemu' else 'ct'}:{vmid}"
        if _flag(item.get("template")):
            notes.append(f"{sid} is a template: left out")
            continue
        node = checked_name(item.get("node"), f"{where}.node")
        if node not in node_online:
            raise InvalidInputError([InputError(f"{where}.node", f"unknown node '{node}'")])
        status = item.get("status")
        requested = ha_state.get(sid)
        if requested in _HA_NOT_RUNNING:
            state = "running" if status == "running" and node_online[node] else None
        elif status == "running" or (not node_online[node] and status in (None, "unknown")):
            state = "running"
        elif requested in _HA_RUNNING or options.include_stopped:
            state = "stopped"
        else:
            state = None
        if state is None:
            skipped_stopped.append(sid)
            continue

        cpus = _number(item, "maxcpu")
        memory = _number(item, "maxmem")
        static_cpus = cpus  # what the static CRS counts (pvestatd's maxcpu, else config)
        demand_mib = int(memory // MIB) if memory is not None else None
        config_path = config_dir / f"{vmid}.json" if config_dir is not None else None
        if config_path is not None and config_path.is_file():
            config = read_json(config_path)
            if not isinstance(config, Mapping):
                raise InvalidInputError([InputError(str(config_path), "expected a JSON object")])
            if isinstance(config.get("data"), Mapping):
                config = config["data"]
            from_cpus, from_memory = _config_usage(str(kind), config, str(config_path), warnings)
            if from_cpus is None and kind == "lxc":
                # An unlimited container: the CRS counts it as every CPU of a node.
                from_cpus = 0.0
            static_cpus = from_cpus if from_cpus is not None else static_cpus
            demand_mib = from_memory if from_memory is not None else demand_mib
        else:
            missing_config += 1
        demand_cpus: int | None = None
        if static_cpus is not None:
            # The plan demands whole vCPUs; an unlimited container may use its whole node.
            whole_node = node_cpus.get(node) or (math.ceil(cpus) if cpus else None)
            demand_cpus = math.ceil(static_cpus) if static_cpus else whole_node
            if static_cpus != demand_cpus:
                exact_cpus[sid] = static_cpus
        if demand_cpus is None or demand_mib is None:
            raise InvalidInputError(
                [InputError(where, f"{sid} has no maxcpu or maxmem and no configuration")]
            )
        guest: dict[str, Any] = {
            "name": sid,
            "demand": {"vcpus": demand_cpus, "ram_mib": demand_mib},
            "current_host": node,
            "state": state,
        }
        guests.append(guest)

    if skipped_stopped:
        notes.append(
            f"{len(skipped_stopped)} stopped guest(s) nothing asks to run were left out "
            f"(--include-stopped imports them): {', '.join(skipped_stopped[:10])}"
            + (" …" if len(skipped_stopped) > 10 else "")
        )
    if missing_config and guests:
        warnings.append(
            f"{missing_config} guest(s) without a configuration file: CPUs and memory from "
            "/cluster/resources maxcpu/maxmem (capped by cpulimit), not the static CRS's "
            "configured values"
        )

    by_name = {guest["name"]: guest for guest in guests}
    affinity = _Affinity(by_name, set(node_online), warnings)
    if ha_groups is not None:
        _apply_groups(ha_groups, ha_group_of, affinity)
    if ha_rules is not None:
        _apply_rules(ha_rules, affinity, notes)
    no_failback |= affinity.no_failback

    document: dict[str, Any] = {"schema_version": 1, "hosts": hosts, "guests": guests}
    peer: dict[str, Any] = {}
    if affinity.rules:
        peer["node_affinity"] = affinity.rules
    # Failback only matters to a guest with node priorities or preferences.
    if no_failback & affinity.preference_of:
        peer["no_failback"] = sorted(no_failback & affinity.preference_of)
    if exact_cpus:
        peer["cpus"] = exact_cpus
    if ha_resources is not None:
        unmanaged = sorted(name for name in by_name if ha_state.get(name, "ignored") == "ignored")
        if unmanaged:
            peer["unmanaged"] = unmanaged
            notes.append(
                f"{len(unmanaged)} guest(s) are not HA resources (proxmox.unmanaged): the "
                "proxmox-* re-creations neither count, start nor recover them, as the HA "
                f"manager; other solvers plan them: {', '.join(unmanaged[:10])}"
                + (" …" if len(unmanaged) > 10 else "")
            )
    solver = "proxmox-basic (the default CRS; --datacenter reads the cluster's)"
    if datacenter is not None:
        solver = _apply_datacenter(datacenter, peer, warnings, notes)
    if peer:
        document["proxmox"] = peer
    apply_common_options(document, options)
    notes.append(f"Proxmox's own choice for comparison: placement solve PROBLEM --solver {solver}")
    return finish(document, warnings, notes, source)


def _apply_node_status(
    path: str | os.PathLike[str],
    hosts: list[dict[str, Any]],
    node_online: dict[str, bool],
    warnings: list[str],
) -> None:
    """Node states as the HA manager sees them (`pvesh get
    /cluster/ha/status/manager_status`, or the bare manager status): `maintenance` is
    maintenance (the node runs, HA moves its guests away), `fence` is failed."""
    where = str(path)
    document = read_json(path)
    if isinstance(document, Mapping) and isinstance(document.get("manager_status"), Mapping):
        document = document["manager_status"]
    status = document.get("node_status") if isinstance(document, Mapping) else None
    if not isinstance(status, Mapping):
        raise InvalidInputError([InputError(where, "expected the HA manager status (node_status)")])
    by_name = {host["name"]: host for host in hosts}
    for node, state in sorted(status.items()):
        host = by_name.get(node)
        if host is None:
            warnings.append(f"{where}: node_status names unknown node '{node}'; ignored")
        elif state == "maintenance" and node_online[node]:
            host["state"] = "maintenance"
            node_online[node] = False
        elif state == "fence":
            host["state"] = "failed"
            node_online[node] = False
        elif state not in ("online", "maintenance") and node_online[node]:
            warnings.append(
                f"{where}: HA sees node '{node}' as {state!r}; taken as online, as "
                "/cluster/resources says"
            )


# The CRS options the re-creations follow; `ha` defaults to `basic` (datacenter.cfg(5)).
_CRS_KNOWN = {"ha", "ha-rebalance-on-start", "ha-auto-rebalance"}


def _crs_options(value: Any) -> dict[str, Any]:
    """The `crs` option as a dict: a property string ('ha=static,ha-rebalance-on-start=1')
    or an object already."""
    if isinstance(value, Mapping):
        return dict(value)
    options: dict[str, Any] = {}
    if isinstance(value, str):
        for part in value.split(","):
            key, sep, item = part.strip().partition("=")
            if key:
                # A bare value is the default key, `ha` (as in 'crs: static').
                options[key if sep else "ha"] = item if sep else key
    return options


def _apply_datacenter(
    path: str | os.PathLike[str],
    peer: dict[str, Any],
    warnings: list[str],
    notes: list[str],
) -> str:
    """Read the `crs` option into `peer`; return the re-creation that matches its mode."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = "{"  # let read_json report the problem
    crs: Any = None
    if text.lstrip()[:1] in ("{", "["):
        document = read_json(path)
        if isinstance(document, Mapping) and isinstance(document.get("data"), Mapping):
            document = document["data"]
        if not isinstance(document, Mapping):
            raise InvalidInputError([InputError(where, "expected a JSON object of options")])
        crs = document.get("crs")
    else:
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() == "crs":
                crs = value.strip()
    options = _crs_options(crs)
    mode = str(options.get("ha", "basic"))
    if _flag(options.get("ha-rebalance-on-start")):
        peer["rebalance_on_start"] = True
        notes.append(f"{where}: ha-rebalance-on-start is on (proxmox.rebalance_on_start)")
    if _flag(options.get("ha-auto-rebalance")):
        notes.append(
            f"{where}: ha-auto-rebalance is on: placement solve PROBLEM --solver "
            "proxmox-rebalance re-creates its moves"
        )
    for key in sorted(set(options) - _CRS_KNOWN):
        warnings.append(f"{where}: crs option {key}={options[key]} not mapped")
    if mode == "static":
        return "proxmox-static"
    if mode != "basic":
        warnings.append(
            f"{where}: crs ha={mode} is not re-created (it scores measured usage); "
            "proxmox-static scores the configured CPUs and memory instead"
        )
        return "proxmox-static"
    return "proxmox-basic"


class _Affinity:
    """Node affinity as the import builds it: hard parts into the guests, preferences
    into `rules` (the problem's `proxmox.node_affinity`)."""

    def __init__(
        self, guests: Mapping[str, dict[str, Any]], node_names: set[str], warnings: list[str]
    ) -> None:
        self.guests = guests
        self.node_names = node_names
        self.warnings = warnings
        self.rules: list[dict[str, Any]] = []
        self.preference_of: set[str] = set()  # guests with an entry in `rules`
        self.ruled: set[str] = set()  # guests of any rule or group so far
        self.no_failback: set[str] = set()  # members of groups with nofailback

    def add(
        self, what: str, where: str, members: list[str], nodes: dict[str, int], strict: bool
    ) -> None:
        """Apply one rule (or group) of `nodes` (node -> priority) to the guests `members`."""
        unknown = sorted(set(nodes) - self.node_names)
        if unknown:
            self.warnings.append(f"{where}: {what} names unknown node(s) {unknown}; ignored")
        known = {node: priority for node, priority in nodes.items() if node in self.node_names}
        present = [sid for sid in members if sid in self.guests]
        twice = [sid for sid in present if sid in self.ruled]
        if twice:
            self.warnings.append(
                f"{where}: {what} names {twice}, already in another rule or group; "
                "ignored for them (Proxmox allows one)"
            )
            present = [sid for sid in present if sid not in twice]
        if not present:
            return
        self.ruled.update(present)
        if strict:
            for sid in present:
                _restrict(self.guests[sid], list(known))
        preference = not strict or len(set(known.values())) > 1
        if preference:
            self.rules.append({"guests": present, "nodes": known, "strict": strict})
            self.preference_of.update(present)
            kind = "has node priorities" if strict else "is not strict (a preference)"
            self.warnings.append(
                f"{where}: {what} {kind}: only the proxmox-* re-creations follow it "
                "(proxmox.node_affinity); other solvers "
                + ("see only its nodes as allowed hosts" if strict else "do not see it")
            )


def _restrict(guest: dict[str, Any], nodes: Sequence[str]) -> None:
    allowed = set(nodes)
    if "hosts" in guest:
        allowed &= set(guest["hosts"])
    guest["hosts"] = sorted(allowed)


def _apply_groups(
    path: str | os.PathLike[str], group_of: Mapping[str, str], affinity: _Affinity
) -> None:
    source = str(path)
    groups: dict[str, tuple[dict[str, int], bool, str]] = {}
    no_failback: set[str] = set()
    for index, item in _read_entries(path, "group"):
        name = item.get("group")
        if isinstance(name, str):
            groups[name] = (
                _node_list(item.get("nodes")),
                _flag(item.get("restricted")),
                f"{source}[{index}]",
            )
            if _flag(item.get("nofailback")):
                no_failback.add(name)
    members: dict[str, list[str]] = {}
    for sid, group_name in sorted(group_of.items()):
        if sid not in affinity.guests:
            continue
        if group_name not in groups:
            affinity.warnings.append(
                f"{sid}: HA group '{group_name}' not found in {source}; not mapped"
            )
            continue
        members.setdefault(group_name, []).append(sid)
    for group_name, sids in members.items():
        nodes, restricted, where = groups[group_name]
        if not restricted:
            affinity.warnings.append(f"{where}: group '{group_name}' is not restricted")
        affinity.add(f"group '{group_name}'", where, sids, nodes, restricted)
        if group_name in no_failback:
            affinity.no_failback.update(sids)


def _apply_rules(path: str | os.PathLike[str], affinity: _Affinity, notes: list[str]) -> None:
    source = str(path)
    guests = affinity.guests
    # Positive resource affinity may chain across rules: merge the groups (union-find).
    parent: dict[str, str] = {}

    def find(name: str) -> str:
        while parent.setdefault(name, name) != name:
            name = parent[name]
        return name

    together_label: dict[str, str] = {}
    for index, item in _read_entries(path, "rule"):
        where = f"{source}[{index}]"
        rule = item.get("rule", f"rule{index}")
        if _flag(item.get("disable")):
            notes.append(f"{where}: rule '{rule}' is disabled; left out")
            continue
        members = [r.strip() for r in str(item.get("resources", "")).split(",") if r.strip()]
        present = [sid for sid in members if sid in guests]
        kind = item.get("type")
        if kind == "node-affinity":
            nodes = _node_list(item.get("nodes"))
            if item.get("affinity", "positive") != "positive":
                affinity.warnings.append(
                    f"{where}: rule '{rule}' has affinity {item.get('affinity')!r}; not mapped"
                )
                continue
            affinity.add(f"rule '{rule}'", where, present, nodes, _flag(item.get("strict")))
        elif kind == "resource-affinity":
            value = item.get("affinity")
            if value == "negative":
                for sid in present:
                    classes = set(guests[sid].get("anti_affinity", [])) | {f"rule:{rule}"}
                    guests[sid]["anti_affinity"] = sorted(classes)
            elif value == "positive":
                for sid in present[1:]:
                    parent[find(sid)] = find(present[0])
                if present:
                    together_label.setdefault(find(present[0]), f"rule:{rule}")
            else:
                affinity.warnings.append(
                    f"{where}: rule '{rule}' has affinity {value!r}; not mapped"
                )
        else:
            affinity.warnings.append(f"{where}: rule '{rule}' of type {kind!r} not mapped")
    for sid in list(parent):
        if sid in guests:
            root = find(sid)
            label = together_label.get(root)
            if label is None:
                label = next(v for k, v in together_label.items() if find(k) == root)
            guests[sid]["together"] = label
