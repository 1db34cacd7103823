"""Import a Pacemaker cluster from its CIB (`cibadmin -Q` or `pcs cluster cib`).

What is read (element and attribute names as in Pacemaker's CIB schema):

- `configuration/crm_config` nvpairs `placement-strategy`, `symmetric-cluster`,
  `batch-limit` (the batch limit of starts) and `migration-limit` (migrations per node).
- `configuration/nodes/node` (`id`, `uname`), its `utilization` nvpairs (capacities) and
  `instance_attributes` `standby` / `maintenance` (the node takes no resources).
- `configuration/resources`: `primitive` (`id`), its `utilization` nvpairs (demands) and
  `meta_attributes` `priority` and `target-role`; a `group` is a chain of its members:
  each is colocated with and ordered after the one before it.
- `configuration/constraints`: `rsc_location` (`rsc`, `node`, `score`): -INFINITY avoids
  the node, and in an opt-in cluster (`symmetric-cluster=false`) a positive score allows
  it; `rsc_colocation` (`rsc`, `with-rsc`, `score`): -INFINITY is anti-affinity, +INFINITY
  a together group; `rsc_order` (`first`, `then`, `kind` or `score`) Mandatory: `then`
  starts after `first` is up.
- `status/node_state` (`in_ccm`, `crmd`): whether a node is up; its
  `lrm/lrm_resources/lrm_resource/lrm_rsc_op` history: where each resource runs now.

Utilization attributes are mapped to resource names: `cpu` -> `vcpus`, `memory`,
`hv_memory` and `host_memory` -> `ram_mib` (Pacemaker's attributes carry no unit; the
VirtualDomain and NodeUtilization agents set memory in MiB), anything else keeps its name.
Whatever cannot be mapped (a finite score, a rule, a resource set, a clone) is a warning.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET  # types only; parsing is defusedxml's
from typing import Any

from placement.adapters.common import (
    ImportOptions,
    ImportResult,
    apply_common_options,
    checked_name,
    finish,
    parse_int,
    parse_xml,
)
from placement.errors import InputError, InvalidInputError

UTILIZATION_NAMES = {
    "cpu": "vcpus",
    "memory": "ram_mib",
    "hv_memory": "ram_mib",
    "host_memory": "ram_mib",
}

_INFINITY = {"INFINITY", "+INFINITY", "inf", "+inf", "infinity", "+infinity"}
_MINUS_INFINITY = {"-INFINITY", "-inf", "-infinity"}
# Operations whose success leaves the resource running on the node.
_RUNNING_OPS = {"start", "migrate_from", "promote", "demote"}


def _nvpairs(element: ET.Element | None) -> dict[str, str]:
    values: dict[str, str] = {}
    if element is None:
        return values
    for pair in element.iter("nvpair"):
        name, value = pair.get("name"), pair.get("value")
        if name is not None and value is not None:
            values[name] = value
    return values


def _where(element: ET.Element) -> str:
    ident = element.get("id")
    return f"{element.tag}[@id='{ident}']" if ident else element.tag


def _utilization(element: ET.Element, warnings: list[str], where: str) -> dict[str, int]:
    amounts: dict[str, int] = {}
    seen_from: dict[str, str] = {}
    for block in element.findall("utilization"):
        for name, text in _nvpairs(block).items():
            resource = UTILIZATION_NAMES.get(name, name)
            amount = parse_int(text)
            if amount is None:
                warnings.append(
                    f"{where}: utilization {name}={text!r} is not a whole number; not mapped"
                )
                continue
            if resource in amounts:
                warnings.append(
                    f"{where}: utilization {name} and {seen_from[resource]} both map to "
                    f"{resource}; {seen_from[resource]} kept"
                )
                continue
            amounts[resource] = amount
            seen_from[resource] = name
    return amounts


def _truthy(text: str | None) -> bool:
    return text is not None and text.lower() in ("on", "true", "yes", "1", "y")


def _score(text: str | None) -> str:
    """'-inf' for -INFINITY, 'inf' for +INFINITY, 'finite' for anything else."""
    if text is None:
        return "finite"
    text = text.strip()
    if text in _MINUS_INFINITY or text.lower() in _MINUS_INFINITY:
        return "-inf"
    if text in _INFINITY or text.lower() in _INFINITY:
        return "inf"
    return "finite"


def _node_up(state: ET.Element) -> bool:
    # Pacemaker < 2.1.7 writes in_ccm="true" and crmd="online"; later versions write the
    # time the node joined instead (0 or absent means not a member).
    in_ccm = state.get("in_ccm", "false").lower()
    crmd = state.get("crmd", "offline").lower()
    return in_ccm not in ("false", "0", "") and crmd not in ("offline", "0", "")


def _running_on(status: ET.Element | None) -> dict[str, set[str]]:
    """Resource id -> the nodes whose operation history says it runs there now."""
    running: dict[str, set[str]] = {}
    if status is None:
        return running
    for state in status.findall("node_state"):
        node = state.get("uname")
        if node is None:
            continue
        for resource in state.iterfind("lrm/lrm_resources/lrm_resource"):
            ident = resource.get("id")
            if ident is None:
                continue
            ops = resource.findall("lrm_rsc_op")
            # The last non-recurring operation decides (`..._last_0`), as the scheduler reads it.
            last = [op for op in ops if op.get("interval", "0") == "0"]
            last.sort(key=lambda op: parse_int(op.get("call-id")) or -1)
            if not last:
                continue
            op = last[-1]
            rc = op.get("rc-code")
            action = op.get("operation")
            is_running = (action in _RUNNING_OPS and rc == "0") or (
                action == "monitor" and rc in ("0", "8")
            )
            if is_running:
                running.setdefault(ident, set()).add(node)
    return running


def import_pacemaker(
    cib: str | os.PathLike[str], *, options: ImportOptions | None = None
) -> ImportResult:
    """Build a problem from a Pacemaker CIB XML file (see the module docstring).

    Raises `InvalidInputError` naming the file and element for XML that is broken,
    hostile (DTDs, entities), or has names no tool could take.
    """
    options = options or ImportOptions()
    source = str(cib)
    root = parse_xml(cib)
    if root.tag != "cib":
        raise InvalidInputError(
            [InputError(source, f"expected a <cib> document, got <{root.tag}>")]
        )
    configuration = root.find("configuration")
    if configuration is None:
        raise InvalidInputError([InputError(source, "<cib> has no <configuration>")])
    warnings: list[str] = []
    notes: list[str] = []

    properties = _nvpairs(configuration.find("crm_config"))
    strategy = properties.get("placement-strategy", "default")
    symmetric = properties.get("symmetric-cluster", "true").lower() not in (
        "false",
        "no",
        "0",
        "off",
    )
    if strategy in ("balanced", "utilization", "minimal"):
        notes.append(
            f"placement-strategy={strategy}: Pacemaker's own choice for comparison: "
            f"placement solve PROBLEM --solver pacemaker-{strategy}"
        )
    else:
        notes.append(
            f"placement-strategy={strategy}: Pacemaker ignores utilization here, so its "
            "own placement may overload nodes"
        )

    status = root.find("status")
    node_up: dict[str, bool] = {}
    if status is not None:
        for state in status.findall("node_state"):
            if state.get("uname") is not None:
                node_up[state.get("uname", "")] = _node_up(state)

    hosts: list[dict[str, Any]] = []
    nodes_element = configuration.find("nodes")
    for node in nodes_element.findall("node") if nodes_element is not None else ():
        where = f"{source}: nodes/{_where(node)}"
        name = checked_name(node.get("uname"), f"{where}/@uname")
        if node.get("type") == "remote":
            warnings.append(f"{where}: remote node '{name}' imported as an ordinary host")
        attributes: dict[str, str] = {}
        for block in node.findall("instance_attributes"):
            attributes.update(_nvpairs(block))
        capacity = _utilization(node, warnings, where)
        if not capacity:
            warnings.append(f"{where}: node '{name}' has no utilization; capacity 0")
        if not node_up.get(name, status is None):
            host_state = "failed"
        elif _truthy(attributes.get("standby")) or _truthy(attributes.get("maintenance")):
            host_state = "maintenance"
        else:
            host_state = "online"
        hosts.append({"name": name, "capacity": capacity, "state": host_state})
    host_names = {host["name"] for host in hosts}

    running = _running_on(status)
    guests: dict[str, dict[str, Any]] = {}
    parent: dict[str, str] = {}  # union-find of together groups
    group_names: dict[str, str] = {}
    resources = configuration.find("resources")

    def add_primitive(primitive: ET.Element, where: str) -> str:
        name = checked_name(primitive.get("id"), f"{where}/@id")
        meta: dict[str, str] = {}
        for block in primitive.findall("meta_attributes"):
            meta.update(_nvpairs(block))
        demand = _utilization(primitive, warnings, where)
        guest: dict[str, Any] = {"name": name, "demand": demand}
        priority_text = meta.get("priority")
        if priority_text is not None:
            priority = parse_int(priority_text.lstrip("+"))
            if priority is None:
                warnings.append(f"{where}: priority {priority_text!r} is not >= 0; priority 0 used")
            else:
                guest["priority"] = priority
        if meta.get("target-role", "").lower() == "stopped":
            warnings.append(
                f"{where}: target-role=Stopped; imported as a guest to start (remove it "
                "from the problem if it must stay stopped)"
            )
        if meta.get("is-managed", "true").lower() in ("false", "no", "0", "off"):
            warnings.append(f"{where}: is-managed=false; Pacemaker will not act on it")
        if meta.get("allow-migrate", "false").lower() not in ("true", "yes", "1", "on"):
            guest["movable"] = False
        nodes = sorted(running.get(name, set()))
        if len(nodes) > 1:
            warnings.append(f"{where}: active on several nodes {nodes}; {nodes[0]} used")
        if nodes:
            if nodes[0] not in host_names:
                raise InvalidInputError([InputError(where, f"runs on unknown node '{nodes[0]}'")])
            guest["current_host"] = nodes[0]
            guest["state"] = "running"
        guests[name] = guest
        return name

    for child in list(resources) if resources is not None else ():
        where = f"{source}: resources/{_where(child)}"
        if child.tag == "primitive" and child.get("class") == "stonith":
            notes.append(f"{where}: fencing device, not a guest: left out")
        elif child.tag == "primitive":
            add_primitive(child, where)
        elif child.tag == "group":
            group = checked_name(child.get("id"), f"{where}/@id")
            previous: str | None = None
            for member in child.findall("primitive"):
                name = add_primitive(member, f"{where}/{_where(member)}")
                parent.setdefault(name, name)
                group_names[name] = group
                if previous is not None:
                    parent[_find(parent, name)] = _find(parent, previous)
                    guests[name].setdefault("boot", {}).setdefault("after", []).append(previous)
                previous = name
        else:
            warnings.append(f"{where}: <{child.tag}> resources are not mapped")

    by_id = {element.get("id"): element for element in configuration.iter() if element.get("id")}
    constraints = configuration.find("constraints")
    for constraint in list(constraints) if constraints is not None else ():
        where = f"{source}: constraints/{_where(constraint)}"
        if constraint.find("resource_set") is not None or constraint.find("rule") is not None:
            inner = "resource sets" if constraint.find("resource_set") is not None else "rules"
            warnings.append(f"{where}: {inner} are not mapped")
            continue
        if constraint.tag == "rsc_location":
            _location(constraint, where, guests, host_names, symmetric, warnings)
        elif constraint.tag == "rsc_colocation":
            first, second = constraint.get("rsc"), constraint.get("with-rsc")
            score = _score(constraint.get("score"))
            if not _known(first, guests, by_id, where, warnings) or not _known(
                second, guests, by_id, where, warnings
            ):
                continue
            assert first is not None
            assert second is not None
            if score == "-inf":
                label = f"colocation:{constraint.get('id')}"
                for name in (first, second):
                    classes = set(guests[name].get("anti_affinity", [])) | {label}
                    guests[name]["anti_affinity"] = sorted(classes)
            elif score == "inf":
                parent.setdefault(first, first)
                parent.setdefault(second, second)
                parent[_find(parent, first)] = _find(parent, second)
                group_names.setdefault(second, f"colocation:{constraint.get('id')}")
            else:
                warnings.append(
                    f"{where}: finite score {constraint.get('score')!r} is a preference; not mapped"
                )
        elif constraint.tag == "rsc_order":
            first, then = constraint.get("first"), constraint.get("then")
            kind = constraint.get("kind")
            if kind is None:
                kind = (
                    "Mandatory"
                    if _score(constraint.get("score", "INFINITY")) == "inf"
                    else "Optional"
                )
            actions = (
                constraint.get("first-action", "start"),
                constraint.get("then-action", "start"),
            )
            if kind != "Mandatory":
                warnings.append(f"{where}: kind {kind} ordering is not mapped")
                continue
            if actions != ("start", "start"):
                warnings.append(
                    f"{where}: ordering of {actions[0]} then {actions[1]} is not mapped"
                )
                continue
            if not _known(first, guests, by_id, where, warnings) or not _known(
                then, guests, by_id, where, warnings
            ):
                continue
            assert first is not None
            assert then is not None
            after = guests[then].setdefault("boot", {}).setdefault("after", [])
            if first not in after:
                after.append(first)
        else:
            warnings.append(f"{where}: <{constraint.tag}> is not mapped")

    for name in list(parent):
        root_name = _find(parent, name)
        members = [m for m in parent if _find(parent, m) == root_name]
        label = next((group_names[m] for m in members if m in group_names), f"together:{root_name}")
        guests[name]["together"] = label

    # Pacemaker counts an attribute a node does not list as capacity 0, so a resource
    # whose utilization no node lists can run nowhere (it stays stopped): say so with an
    # explicit 0 on every node, rather than refuse the whole CIB.
    demanded = {r for guest in guests.values() for r, amount in guest["demand"].items() if amount}
    for resource in sorted(demanded - {r for host in hosts for r in host["capacity"]}):
        if hosts:
            warnings.append(
                f"{source}: no node lists utilization for {resource}; capacity 0 on every "
                "node, as Pacemaker counts it"
            )
        for host in hosts:
            host["capacity"][resource] = 0

    document: dict[str, Any] = {
        "schema_version": 1,
        "hosts": hosts,
        "guests": list(guests.values()),
    }
    # batch-limit: how many actions the cluster runs at once, our batch limit of starts.
    batch_limit = parse_int(properties.get("batch-limit"))
    if batch_limit:
        document["schedule"] = {"max_starts": batch_limit}
        notes.append(f"batch-limit={batch_limit}: at most {batch_limit} guests boot at once")
    # migration-limit: live migrations a node takes part in at once (-1: no limit).
    migration_limit = parse_int(properties.get("migration-limit"))
    if migration_limit:
        document["migration"] = {"max_per_host": migration_limit}
    apply_common_options(document, options)
    return finish(document, warnings, notes, source)


def _find(parent: dict[str, str], name: str) -> str:
    while parent.setdefault(name, name) != name:
        name = parent[name]
    return name


def _known(
    name: str | None,
    guests: dict[str, dict[str, Any]],
    by_id: dict[str | None, ET.Element],
    where: str,
    warnings: list[str],
) -> bool:
    if name in guests:
        return True
    if name in by_id:
        warnings.append(f"{where}: refers to <{by_id[name].tag}> '{name}', which is not mapped")
    else:
        warnings.append(f"{where}: refers to unknown resource {name!r}; not mapped")
    return False


def _location(
    constraint: ET.Element,
    where: str,
    guests: dict[str, dict[str, Any]],
    host_names: set[str],
    symmetric: bool,
    warnings: list[str],
) -> None:
    name, node = constraint.get("rsc"), constraint.get("node")
    if name is None:
        warnings.append(f"{where}: rsc-pattern locations are not mapped")
        return
    if name not in guests:
        warnings.append(
            f"{where}: refers to {name!r}, which is not an imported primitive; not mapped"
        )
        return
    if node not in host_names:
        warnings.append(f"{where}: refers to unknown node {node!r}; not mapped")
        return
    assert node is not None
    guest = guests[name]
    score = _score(constraint.get("score"))
    if score == "-inf":
        guest["avoid_hosts"] = sorted(set(guest.get("avoid_hosts", [])) | {node})
    elif not symmetric and not constraint.get("score", "0").startswith("-"):
        guest["hosts"] = sorted(set(guest.get("hosts", [])) | {node})
    else:
        warnings.append(
            f"{where}: score {constraint.get('score')!r} for {name} on {node} is a "
            "preference in a symmetric cluster; not mapped"
        )
