"""Import a Pacemaker cluster from its CIB (`cibadmin -Q` or `pcs cluster cib`).

What is read (element and attribute names as in Pacemaker's CIB schema):

- `configuration/crm_config` nvpairs `placement-strategy`, `symmetric-cluster`,
  `batch-limit` (the batch limit of starts), `migration-limit` (migrations per node) and
  the old `default-resource-stickiness`; `configuration/rsc_defaults` meta attributes.
- `configuration/nodes/node` (`id`, `uname`), its `utilization` nvpairs (capacities) and
  `instance_attributes` `standby` / `maintenance` (the node takes no resources).
  Pacemaker Remote nodes (an `ocf:pacemaker:remote` primitive) and guest nodes (a
  resource with meta `remote-node`) become hosts too, online while that resource runs.
- `configuration/resources`: `primitive` (`id`, `template`), its `utilization` nvpairs
  (demands) and `meta_attributes` `priority`, `target-role` (`Stopped`: allowed on no
  host, so it stays or is stopped), `resource-stickiness`, `migration-threshold` and
  `allow-migrate`; a `template` lends its utilization and meta attributes to the
  primitives that name it; a `group` is a chain of its members (each is colocated with
  and ordered after the one before it) and lends them its meta attributes.
- `configuration/constraints`, on primitives or groups (a group's members): `rsc_location`
  (`node` and `score`, or rules of node-attribute expressions): -INFINITY avoids the node,
  in an opt-in cluster (`symmetric-cluster=false`) a score >= 0 allows it, and any other
  score is one of Pacemaker's scores (`pacemaker.scores`); `rsc_colocation` (`rsc`,
  `with-rsc`, `score`): -INFINITY is anti-affinity, +INFINITY makes `rsc` follow
  `with-rsc` (it runs beside it or not at all; `with-rsc` may run alone); `rsc_order`
  (`first`, `then`, `kind` or `score`) Mandatory: `then` starts after `first` is up.
  Resource sets in these constraints are read as pairs, as Pacemaker reads them.
- `status/node_state` (`in_ccm`, `crmd`): whether a node is up; its
  `lrm/lrm_resources/lrm_resource/lrm_rsc_op` history: where each resource runs now; its
  `transient_attributes`: `utilization` (what the NodeUtilization agent measured, over
  the configured amounts), node attributes for location rules, and `fail-count-*`: a
  resource that failed `migration-threshold` times on a node avoids it.

Stickiness and finite scores go to the problem's `pacemaker` block, read only by the
`pacemaker-*` re-creations, which then assign every resource afresh as Pacemaker does.
Utilization attributes are mapped to resource names: `cpu` -> `vcpus`, `memory`,
`hv_memory` and `host_memory` -> `ram_mib` (Pacemaker's attributes carry no unit; the
VirtualDomain and NodeUtilization agents set memory in MiB), anything else keeps its name.
Whatever cannot be mapped (a finite colocation score, a rule on dates or roles, a
resource set with a role, a clone without utilization, a bundle) is a warning that
names it.
"""

from __future__ import annotations

import itertools
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
from placement.model import PACEMAKER_INFINITY

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


def _false(text: str | None) -> bool:
    return text is not None and text.lower() in ("off", "false", "no", "0", "n")


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


def _score_value(text: str | None) -> int | None:
    """A score as Pacemaker reads it: +-INFINITY as +-1,000,000, an integer clamped to
    that range (None when it is not a number)."""
    kind = _score(text)
    if kind == "inf":
        return PACEMAKER_INFINITY
    if kind == "-inf":
        return -PACEMAKER_INFINITY
    if text is None:
        return None
    try:
        value = int(text.strip().lstrip("+"))
    except ValueError:
        return None
    return max(-PACEMAKER_INFINITY, min(PACEMAKER_INFINITY, value))


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
            "own placement may overload nodes; its choice for comparison: placement solve "
            "PROBLEM --solver pacemaker-default"
        )

    status = root.find("status")
    node_up: dict[str, bool] = {}
    node_states: dict[str, ET.Element] = {}
    if status is not None:
        for state in status.findall("node_state"):
            if state.get("uname") is not None:
                node_up[state.get("uname", "")] = _node_up(state)
                node_states[state.get("uname", "")] = state
    resources = configuration.find("resources")
    running = _running_on(status)
    # Pacemaker Remote and guest nodes: a remote connection (ocf:pacemaker:remote,
    # named by its id) or a guest (meta `remote-node`) makes a node resources can run on.
    remote_nodes = _remote_nodes(resources, running)

    hosts: list[dict[str, Any]] = []
    node_attributes: dict[str, dict[str, str]] = {}  # what location rules test
    nodes_element = configuration.find("nodes")
    configured = list(nodes_element.findall("node")) if nodes_element is not None else []
    known = {node.get("uname") for node in configured}
    for name in sorted(remote_nodes):
        if name not in known:
            configured.append(ET.Element("node", {"uname": name, "type": "remote"}))
    for node in configured:
        where = f"{source}: nodes/{_where(node)}"
        name = checked_name(node.get("uname"), f"{where}/@uname")
        attributes: dict[str, str] = {}
        for block in node.findall("instance_attributes"):
            attributes.update(_nvpairs(block))
        capacity = _utilization(node, warnings, where)
        # What the NodeUtilization agent measures is written to the status section.
        node_state = node_states.get(name)
        if node_state is not None:
            for transient in node_state.findall("transient_attributes"):
                capacity.update(_utilization(transient, warnings, f"{source}: status/{name}"))
        tested = {**attributes, "#uname": name, "#id": node.get("id") or name}
        if node_state is not None:
            for transient in node_state.findall("transient_attributes"):
                for block in transient.findall("instance_attributes"):
                    tested.update(_nvpairs(block))
        node_attributes[name] = tested
        if name in remote_nodes:
            kind, resource = remote_nodes[name]
            # Up while what makes it runs now, on a node that is up itself.
            up = any(node_up.get(node, status is None) for node in running.get(resource, ()))
            warnings.append(
                f"{where}: {kind} node '{name}' imported as an ordinary host, online while "
                f"'{resource}' runs now; a plan that moves or stops '{resource}' does not "
                "move what runs on it"
            )
        else:
            up = node_up.get(name, status is None)
            if node.get("type") == "remote":
                warnings.append(f"{where}: remote node '{name}' imported as an ordinary host")
        if not capacity:
            warnings.append(f"{where}: node '{name}' has no utilization; capacity 0")
        if not up:
            host_state = "failed"
        elif _truthy(attributes.get("standby")) or _truthy(attributes.get("maintenance")):
            host_state = "maintenance"
        else:
            host_state = "online"
        hosts.append({"name": name, "capacity": capacity, "state": host_state})
    host_names = {host["name"] for host in hosts}

    guests: dict[str, dict[str, Any]] = {}
    parent: dict[str, str] = {}  # union-find of together groups
    group_names: dict[str, str] = {}
    group_members: dict[str, list[str]] = {}
    clone_members: dict[str, list[str]] = {}  # clone id -> its instances' guests
    clone_of: dict[str, str] = {}  # instance guest -> its clone id
    clone_firsts: dict[str, list[str]] = {}  # clone id -> each instance's first guest
    clone_bans: dict[str, set[str]] = {}  # every clone id -> nodes it may not run on
    # Anonymous clone instances are recorded as ID or ID:N: where each primitive runs.
    clone_running: dict[str, set[str]] = {}
    for resource_id, on_nodes in running.items():
        clone_running.setdefault(resource_id.split(":", 1)[0], set()).update(on_nodes)
    stickiness: dict[str, int] = {}
    thresholds: dict[str, int] = {}
    templates = {
        template.get("id"): template
        for template in (resources.findall("template") if resources is not None else ())
    }
    defaults: dict[str, str] = {}
    if properties.get("default-resource-stickiness") is not None:
        defaults["resource-stickiness"] = properties["default-resource-stickiness"]
    for block in configuration.findall("rsc_defaults"):
        defaults.update(_nvpairs(block))

    def add_primitive(
        primitive: ET.Element,
        where: str,
        inherited: dict[str, str] | None = None,
        instance: tuple[int, str | None] | None = None,
    ) -> str:
        """Add one guest. `instance`: (number, node it runs on) for a clone instance, which
        is named `ID:NUMBER`."""
        name = checked_name(primitive.get("id"), f"{where}/@id")
        if instance is not None:
            name = f"{name}:{instance[0]}"
        # Meta attributes: resource defaults, then the clone's and group's, then the
        # template's, then the primitive's own; utilization: the template's, then its own.
        meta: dict[str, str] = {**defaults, **(inherited or {})}
        sources = [primitive]
        template_id = primitive.get("template")
        if template_id is not None:
            template = templates.get(template_id)
            if template is None:
                warnings.append(f"{where}: template {template_id!r} is not defined; not mapped")
            else:
                sources.insert(0, template)
        demand: dict[str, int] = {}
        for element in sources:
            for block in element.findall("meta_attributes"):
                meta.update(_nvpairs(block))
            demand.update(_utilization(element, warnings, where))
        guest: dict[str, Any] = {"name": name, "demand": demand}
        priority_text = meta.get("priority")
        if priority_text is not None:
            priority = parse_int(priority_text.lstrip("+"))
            if priority is None:
                warnings.append(f"{where}: priority {priority_text!r} is not >= 0; priority 0 used")
            else:
                guest["priority"] = priority
        sticky = _score_value(meta.get("resource-stickiness", "0"))
        if sticky is None:
            warnings.append(
                f"{where}: resource-stickiness {meta.get('resource-stickiness')!r} is not a "
                "score; 0 used"
            )
        elif sticky:
            stickiness[name] = sticky
        threshold = _score_value(meta.get("migration-threshold", "INFINITY"))
        thresholds[name] = PACEMAKER_INFINITY if threshold is None else threshold
        if meta.get("target-role", "").lower() == "stopped":
            if options.include_stopped:
                warnings.append(
                    f"{where}: target-role=Stopped; imported as a guest to start "
                    "(--include-stopped)"
                )
            else:
                # Allowed on no host: the plan leaves it stopped (or stops it), as
                # Pacemaker does; --include-stopped has the plan start it instead.
                guest["hosts"] = []
                notes.append(
                    f"{where}: target-role=Stopped: kept stopped (--include-stopped starts it)"
                )
        if meta.get("allow-migrate", "false").lower() not in ("true", "yes", "1", "on"):
            guest["movable"] = False
        if instance is not None:
            nodes = [instance[1]] if instance[1] is not None else []
        else:
            nodes = sorted(running.get(name, set()))
        gone = [node for node in nodes if node not in host_names]
        if gone:
            # A node the status still lists but the configuration no longer has (an
            # orphaned guest node): what ran there is to be recovered.
            warnings.append(
                f"{where}: runs on {', '.join(gone)}, which is no node of the "
                "configuration; imported as not running"
            )
            nodes = [node for node in nodes if node in host_names]
        if len(nodes) > 1:
            warnings.append(f"{where}: active on several nodes {nodes}; {nodes[0]} used")
        if nodes:
            guest["current_host"] = nodes[0]
            guest["state"] = "running"
        if _false(meta.get("is-managed")) or _truthy(properties.get("maintenance-mode")):
            # Pacemaker leaves it as it is: running where it runs, or stopped.
            guest["hosts"] = [nodes[0]] if nodes else []
            warnings.append(
                f"{where}: not managed (is-managed=false or maintenance-mode): kept as it is"
            )
        guests[name] = guest
        return name

    def add_group(
        group_element: ET.Element,
        where: str,
        inherited: dict[str, str] | None = None,
        instance: tuple[int, str | None] | None = None,
    ) -> list[str]:
        """Add a group's members: each colocated with and started after the one before."""
        group = checked_name(group_element.get("id"), f"{where}/@id")
        if instance is not None:
            group = f"{group}:{instance[0]}"
        meta: dict[str, str] = dict(inherited or {})
        for block in group_element.findall("meta_attributes"):
            meta.update(_nvpairs(block))
        names: list[str] = []
        for member in group_element.findall("primitive"):
            name = add_primitive(member, f"{where}/{_where(member)}", meta, instance)
            parent.setdefault(name, name)
            group_names[name] = group
            if names:
                parent[_find(parent, name)] = _find(parent, names[-1])
                guests[name].setdefault("boot", {}).setdefault("after", []).append(names[-1])
            names.append(name)
        group_members[group] = names
        return names

    def add_clone(clone: ET.Element, where: str) -> None:
        """Add the instances of a clone (of a primitive or a group) that has utilization,
        so that the capacity they take counts: `clone-max` of them but no more than there
        are nodes, one per node at most (anti-affinity within the clone), numbered in the
        order of the nodes they run on now."""
        ident = checked_name(clone.get("id"), f"{where}/@id")
        meta: dict[str, str] = {"resource-stickiness": "1"}  # a clone instance's default
        for block in clone.findall("meta_attributes"):
            meta.update(_nvpairs(block))
        child = next((c for c in clone if c.tag in ("primitive", "group")), None)
        if child is None or child.get("id") is None:
            warnings.append(f"{where}: clone of neither a primitive nor a group; not mapped")
            return
        primitives = [child] if child.tag == "primitive" else child.findall("primitive")
        if not any(
            element.find("utilization") is not None
            for primitive in primitives
            for element in (primitive, templates.get(primitive.get("template")))
            if element is not None
        ):
            # Without utilization its instances take no capacity any solver could see.
            warnings.append(f"{where}: a clone without utilization; not mapped")
            return
        # One instance per node at most: more would only ever be stopped.
        count = min(parse_int(meta.get("clone-max", "")) or len(hosts), len(hosts))
        if (parse_int(meta.get("clone-node-max", "1")) or 1) > 1:
            warnings.append(f"{where}: clone-node-max > 1 is read as 1 instance per node")
        first = primitives[0] if primitives else None
        base = first.get("id", "") if first is not None else ""
        where_now = sorted(clone_running.get(base, set()))
        label = f"clone:{ident}"
        instances: list[str] = []
        for number in range(count):
            now = where_now[number] if number < len(where_now) else None
            at = f"{where}/{_where(child)}"
            if child.tag == "primitive":
                names = [add_primitive(child, at, meta, (number, now))]
            else:
                names = add_group(child, at, meta, (number, now))
            if names:
                classes = set(guests[names[0]].get("anti_affinity", [])) | {label}
                guests[names[0]]["anti_affinity"] = sorted(classes)
                clone_firsts.setdefault(ident, []).append(names[0])
            instances.extend(names)
            for name in names:
                clone_of[name] = ident
        clone_members[ident] = instances
        notes.append(
            f"{where}: {count} instances {instances[0] if instances else ''}... "
            "(a clone instance is stopped and started, never migrated)"
        )

    for child in list(resources) if resources is not None else ():
        where = f"{source}: resources/{_where(child)}"
        if child.tag == "primitive" and child.get("class") == "stonith":
            notes.append(f"{where}: fencing device, not a guest: left out")
        elif child.tag == "primitive":
            add_primitive(child, where)
        elif child.tag == "template":
            continue  # read through the primitives that name it
        elif child.tag == "group":
            add_group(child, where)
        elif child.tag in ("clone", "master"):
            clone_meta: dict[str, str] = {}
            for block in child.findall("meta_attributes"):
                clone_meta.update(_nvpairs(block))
            stopped = clone_meta.get("target-role", "").lower() == "stopped"
            # Where it may not run, for those that must run beside it (filled in below).
            clone_bans[child.get("id", "")] = set(host_names) if stopped else set()
            add_clone(child, where)
        else:
            warnings.append(f"{where}: <{child.tag}> resources are not mapped")

    # What makes a remote or guest node (its connection, its container) cannot run on one.
    for _kind, resource in remote_nodes.values():
        if resource in guests:
            guest = guests[resource]
            guest["avoid_hosts"] = sorted(set(guest.get("avoid_hosts", [])) | set(remote_nodes))

    # Fail-counts in the status section: a resource that failed migration-threshold
    # times on a node may not run there until the failures are cleaned up.
    for node_name, node_state in node_states.items():
        for transient in node_state.findall("transient_attributes"):
            counts: dict[str, int] = {}
            for block in transient.findall("instance_attributes"):
                for attribute, value in _nvpairs(block).items():
                    if not attribute.startswith("fail-count-"):
                        continue
                    resource = attribute.removeprefix("fail-count-").split("#", 1)[0]
                    resource = resource.split(":", 1)[0]  # an anonymous clone's instance
                    amount = _score_value(value) or 0
                    counts[resource] = min(PACEMAKER_INFINITY, counts.get(resource, 0) + amount)
            for resource, count in sorted(counts.items()):
                # A failed clone instance bans the whole (anonymous) clone from the node.
                banned = [
                    name
                    for name in guests
                    if name == resource or (name.split(":", 1)[0] == resource and name in clone_of)
                ]
                threshold = thresholds.get(banned[0], 0) if banned else 0
                if node_name not in host_names or not 0 < threshold <= count:
                    continue
                for name in banned:
                    guest = guests[name]
                    guest["avoid_hosts"] = sorted(set(guest.get("avoid_hosts", [])) | {node_name})
                if banned:
                    notes.append(
                        f"{source}: status/{node_name}: {resource} failed {count} times there "
                        f"(migration-threshold {threshold}): banned from {node_name}"
                    )

    by_id = {element.get("id"): element for element in configuration.iter() if element.get("id")}
    scores: dict[str, dict[str, int]] = {}

    def members(name: str | None, where: str, location: bool = False) -> list[str]:
        """The guests a constraint on `name` applies to: the primitive, a group's members,
        or (for a location) a clone's instances."""
        if name in group_members:
            return group_members[name]
        if location and name in clone_members:
            return clone_members[name]
        if name in clone_members:
            warnings.append(f"{where}: refers to clone {name!r}, which only locations map")
            return []
        return [name] if _known(name, guests, by_id, where, warnings) and name else []

    constraints = configuration.find("constraints")
    # A resource that must run beside a clone can only run where the clone may: its
    # -INFINITY locations, gathered first.
    for constraint in constraints.findall("rsc_location") if constraints is not None else ():
        if constraint.get("rsc") not in clone_bans:
            continue
        if constraint.find("rule") is not None:
            ruled = _rule_scores(constraint, "", node_attributes, [])
        else:
            ruled = [(constraint.get("node"), constraint.get("score"))]
        clone_bans[constraint.get("rsc", "")].update(
            node for node, score in ruled if node and _score(score) == "-inf"
        )

    def colocate(
        dependent_id: str | None,
        primary_id: str | None,
        score_text: str | None,
        where: str,
        label: str,
    ) -> None:
        """`dependent_id` with `primary_id` at `score_text` (one colocation pair)."""
        score = _score(score_text)
        if primary_id in clone_bans and score == "inf":
            bans = clone_bans[primary_id]
            for name in members(dependent_id, where):
                guest = guests[name]
                guest["avoid_hosts"] = sorted(set(guest.get("avoid_hosts", [])) | bans)
            notes.append(f"{where}: beside clone {primary_id}: only where the clone may run")
            return
        first_members = members(dependent_id, where)
        second_members = members(primary_id, where)
        if not first_members or not second_members:
            return
        # A group runs where its first member runs (the others are colocated with it).
        dependent, primary = first_members[0], second_members[0]
        if score == "-inf":
            for name in (dependent, primary):
                classes = set(guests[name].get("anti_affinity", [])) | {label}
                guests[name]["anti_affinity"] = sorted(classes)
        elif score == "inf":
            # One-way: the dependent runs beside the primary or not at all; the primary
            # may run alone.
            why = _follow_conflict(dependent, primary, guests, parent)
            if why is None:
                guests[dependent]["follows"] = primary
            else:
                warnings.append(f"{where}: {why}; imported as a together group (both or neither)")
                parent.setdefault(dependent, dependent)
                parent.setdefault(primary, primary)
                parent[_find(parent, dependent)] = _find(parent, primary)
                group_names.setdefault(primary, label)
        else:
            warnings.append(f"{where}: finite score {score_text!r} is a preference; not mapped")

    def order(first_id: str | None, then_id: str | None, where: str) -> None:
        """`then_id` starts after `first_id` is up (one mandatory start ordering)."""
        first_members = members(first_id, where)
        then_members = members(then_id, where)
        if not first_members or not then_members:
            return
        # A group is up when its last member is; it starts with its first.
        first, then = first_members[-1], then_members[0]
        after = guests[then].setdefault("boot", {}).setdefault("after", [])
        if first not in after and first != then:
            after.append(first)

    for constraint in list(constraints) if constraints is not None else ():
        where = f"{source}: constraints/{_where(constraint)}"
        has_rules = constraint.find("rule") is not None
        sets = constraint.findall("resource_set")
        if has_rules and constraint.tag != "rsc_location":
            warnings.append(f"{where}: rules are not mapped")
            continue
        unmapped_set = next(
            (
                item
                for item in sets
                if item.get("role") is not None
                or item.get("action", "start") != "start"
                or _false(item.get("require-all"))
            ),
            None,
        )
        if unmapped_set is not None:
            warnings.append(
                f"{where}: resource set {unmapped_set.get('id')!r} with a role, an action "
                "or require-all=false is not mapped"
            )
            continue
        role = constraint.get("role") or constraint.get("rsc-role")
        if role is not None and role.lower() != "started":
            # Roles of promotable clones (which instance is promoted) are not planned here.
            warnings.append(f"{where}: role {role} is not mapped")
            continue
        if constraint.tag == "rsc_location":
            if has_rules:
                matched = _rule_scores(constraint, where, node_attributes, warnings)
            else:
                matched = [(constraint.get("node"), constraint.get("score"))]
            located_ids = [constraint.get("rsc")] if not sets else _set_refs(sets)
            if located_ids == [None]:
                warnings.append(f"{where}: rsc-pattern locations are not mapped")
                continue
            for located_id in located_ids:
                for guest_name in members(located_id, where, location=True):
                    for target, score_text in matched:
                        _location(
                            where,
                            guest_name,
                            target,
                            score_text,
                            guests,
                            host_names,
                            symmetric,
                            scores,
                            warnings,
                        )
        elif constraint.tag == "rsc_colocation":
            label = f"colocation:{constraint.get('id')}"
            score_text = constraint.get("score")
            if not sets:
                colocate(
                    constraint.get("rsc"), constraint.get("with-rsc"), score_text, where, label
                )
                continue
            pairs = _colocation_set_pairs(sets, _score(score_text) == "-inf")
            for index, (dependent_id, primary_id) in enumerate(pairs):
                # A class per pair: a set's anti-colocations are pairs, not one class.
                colocate(dependent_id, primary_id, score_text, where, f"{label}:{index}")
        elif constraint.tag == "rsc_order":
            order_kind = constraint.get("kind")
            if order_kind is None:
                order_kind = (
                    "Mandatory"
                    if _score(constraint.get("score", "INFINITY")) == "inf"
                    else "Optional"
                )
            actions = (
                constraint.get("first-action", "start"),
                constraint.get("then-action", "start"),
            )
            if order_kind != "Mandatory":
                warnings.append(f"{where}: kind {order_kind} ordering is not mapped")
                continue
            if actions != ("start", "start"):
                warnings.append(
                    f"{where}: ordering of {actions[0]} then {actions[1]} is not mapped"
                )
                continue
            if not sets:
                order(constraint.get("first"), constraint.get("then"), where)
                continue
            for first_id, then_id in _order_set_pairs(sets):
                order(first_id, then_id, where)
        else:
            warnings.append(f"{where}: <{constraint.tag}> is not mapped")

    for name in list(parent):
        root_name = _find(parent, name)
        members_of = [m for m in parent if _find(parent, m) == root_name]
        label = next(
            (group_names[m] for m in members_of if m in group_names), f"together:{root_name}"
        )
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
        # Read by the pacemaker-* re-creations only: they then assign every resource
        # afresh, as Pacemaker's scheduler does at each transition.
        "pacemaker": {
            "stickiness": stickiness,
            "scores": scores,
            # Each clone's instances, by their first member (a cloned group is one unit).
            "clones": clone_firsts,
        },
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


def _remote_nodes(
    resources: ET.Element | None, running: dict[str, set[str]]
) -> dict[str, tuple[str, str]]:
    """Node name -> ("remote" or "guest", the resource that makes the node)."""
    found: dict[str, tuple[str, str]] = {}
    for primitive in resources.iter("primitive") if resources is not None else ():
        ident = primitive.get("id")
        if ident is None:
            continue
        if (primitive.get("provider"), primitive.get("type")) == ("pacemaker", "remote"):
            found[ident] = ("remote", ident)
        meta: dict[str, str] = {}
        for block in primitive.findall("meta_attributes"):
            meta.update(_nvpairs(block))
        if meta.get("remote-node"):
            found[meta["remote-node"]] = ("guest", ident)
    return found


def _set_refs(sets: list[ET.Element]) -> list[str | None]:
    """Every resource a constraint's resource sets name, in order."""
    return [ref.get("id") for item in sets for ref in item.findall("resource_ref")]


def _sequential(item: ET.Element) -> bool:
    return not _false(item.get("sequential"))


def _colocation_set_pairs(
    sets: list[ET.Element], negative: bool
) -> list[tuple[str | None, str | None]]:
    """(dependent, primary) pairs of a colocation with resource sets, as Pacemaker reads
    them: in a sequential set each member is colocated with the one before it (with a
    negative score, with every one before it); a set is colocated with the set after it,
    through its first member and the other set's last (every member, where a set is not
    sequential)."""
    pairs: list[tuple[str | None, str | None]] = []
    refs = [[ref.get("id") for ref in item.findall("resource_ref")] for item in sets]
    for item, names in zip(sets, refs, strict=True):
        if not _sequential(item):
            continue
        for index, name in enumerate(names[1:], start=1):
            earlier = names[:index] if negative else [names[index - 1]]
            pairs.extend((name, other) for other in earlier)
    for position in range(len(sets) - 1):
        dependents = refs[position][:1] if _sequential(sets[position]) else refs[position]
        later = refs[position + 1]
        primaries = later[-1:] if _sequential(sets[position + 1]) else later
        pairs.extend((one, other) for one in dependents for other in primaries)
    return pairs


def _order_set_pairs(sets: list[ET.Element]) -> list[tuple[str | None, str | None]]:
    """(first, then) pairs of an ordering with resource sets: in a sequential set each
    member starts after the one before it; a set starts after the set before it (its
    first member after the other's last, or every member where a set is not sequential)."""
    pairs: list[tuple[str | None, str | None]] = []
    refs = [[ref.get("id") for ref in item.findall("resource_ref")] for item in sets]
    for item, names in zip(sets, refs, strict=True):
        if _sequential(item):
            pairs.extend(itertools.pairwise(names))
    for position in range(len(sets) - 1):
        earlier = refs[position][-1:] if _sequential(sets[position]) else refs[position]
        later = refs[position + 1]
        thens = later[:1] if _sequential(sets[position + 1]) else later
        pairs.extend((one, other) for one in earlier for other in thens)
    return pairs


def _follow_conflict(
    dependent: str, primary: str, guests: dict[str, dict[str, Any]], parent: dict[str, str]
) -> str | None:
    """Why `dependent` cannot simply follow `primary` (None when it can)."""
    if dependent == primary:
        return f"{dependent} is colocated with itself"
    already = guests[dependent].get("follows")
    if already is not None and already != primary:
        return f"{dependent} already follows {already}, and a guest follows one guest"
    leader: str | None = primary
    while leader is not None:
        if leader == dependent:
            return f"{primary} follows {dependent} in turn"
        leader = guests[leader].get("follows")
    if (
        dependent in parent
        and primary in parent
        and _find(parent, dependent) == _find(parent, primary)
    ):
        return f"{dependent} and {primary} are in one group already"
    return None


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
    where: str,
    name: str,
    node: str | None,
    score_text: str | None,
    guests: dict[str, dict[str, Any]],
    host_names: set[str],
    symmetric: bool,
    scores: dict[str, dict[str, int]],
    warnings: list[str],
) -> None:
    """-INFINITY bans the node; in an opt-in cluster a score >= 0 allows it; a finite or
    +INFINITY score is also a score Pacemaker adds (`pacemaker.scores`)."""
    if node not in host_names:
        warnings.append(f"{where}: refers to unknown node {node!r}; not mapped")
        return
    assert node is not None
    guest = guests[name]
    score = _score_value(score_text)
    if score is None:
        warnings.append(f"{where}: score {score_text!r} is not a score; not mapped")
        return
    if score == -PACEMAKER_INFINITY:
        guest["avoid_hosts"] = sorted(set(guest.get("avoid_hosts", [])) | {node})
        return
    if not symmetric and score >= 0 and guest.get("hosts") != []:
        guest["hosts"] = sorted(set(guest.get("hosts", [])) | {node})
    if score:
        per_host = scores.setdefault(name, {})
        per_host[node] = max(
            -PACEMAKER_INFINITY, min(PACEMAKER_INFINITY, per_host.get(node, 0) + score)
        )


_COMPARISONS = {"lt", "gt", "lte", "gte", "eq", "ne"}


def _rule_scores(
    constraint: ET.Element,
    where: str,
    node_attributes: dict[str, dict[str, str]],
    warnings: list[str],
) -> list[tuple[str | None, str | None]]:
    """(node, score) for every node a location rule matches. Rules made of node-attribute
    expressions (`#uname`, `#id`, node and transient attributes; `eq`, `ne`, `lt`, `gt`,
    `lte`, `gte`, `defined`, `not_defined`) joined by `and` / `or` are evaluated; a rule
    with anything else (dates, roles, nested rules, `score-attribute`) is not mapped."""
    matched: list[tuple[str | None, str | None]] = []
    for rule in constraint.findall("rule"):
        score_text = rule.get("score")
        children = list(rule)
        unmappable = (
            score_text is None
            or rule.get("role") is not None
            or not children
            or any(child.tag != "expression" for child in children)
            or any(
                child.get("operation") not in _COMPARISONS | {"defined", "not_defined"}
                or child.get("value-source", "literal") != "literal"
                for child in children
            )
        )
        if unmappable:
            warnings.append(f"{where}: rule {rule.get('id')!r} is not mapped")
            continue
        combine = all if rule.get("boolean-op", "and") == "and" else any
        for node, attributes in node_attributes.items():
            if combine(_expression_holds(child, attributes) for child in children):
                matched.append((node, score_text))
    return matched


def _expression_holds(expression: ET.Element, attributes: dict[str, str]) -> bool:
    operation = expression.get("operation")
    value = attributes.get(expression.get("attribute", ""))
    if operation == "defined":
        return value is not None
    if operation == "not_defined":
        return value is None
    wanted = expression.get("value")
    if value is None or wanted is None:
        return operation == "ne"
    kind = expression.get("type")
    left: float | str = value
    right: float | str = wanted
    if kind in ("number", "integer") or (kind is None and operation not in ("eq", "ne")):
        try:
            left, right = float(value), float(wanted)
        except ValueError:
            if kind is not None:
                return False
    if operation == "eq":
        return left == right
    if operation == "ne":
        return left != right
    if isinstance(left, float) != isinstance(right, float):
        return False
    return {
        "lt": left < right,  # type: ignore[operator]
        "gt": left > right,  # type: ignore[operator]
        "lte": left <= right,  # type: ignore[operator]
        "gte": left >= right,  # type: ignore[operator]
    }[operation or ""]
