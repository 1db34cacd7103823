"""Structural contradictions: a valid problem that cannot be fully satisfied.

These are not input errors: the file is well-formed, but some guests can never be placed
(or never started) whatever a solver does. `placement validate` reports them, and solvers
use them as the reasons of the guests they leave unplaced.
"""

from __future__ import annotations

from collections import defaultdict

import attrs
import networkx as nx
import numpy as np

from placement.graph import dependency_graph
from placement.indexing import BoolArray, HostIndex
from placement.model import Guest, Problem


@attrs.frozen
class Diagnostic:
    """Why some guests can never be placed. `rule` is a stable identifier; `guests` are
    the guests it keeps out (for `anti_affinity_class`, the class members competing for
    too few hosts, of which only some can be placed)."""

    rule: str
    guests: tuple[str, ...]
    message: str


def _shortfall(index: HostIndex, demand: dict[str, int], mask: BoolArray) -> str:
    """Name the resource that rules out the most allowed hosts, e.g. 'needs 98304 ram_mib;
    largest usable on allowed hosts: 65536'."""
    usable = index.usable[mask]

    def blocked(resource: str) -> int:
        return int((usable[:, index.column[resource]] < demand[resource]).sum())

    worst = max(sorted(demand), key=blocked)
    largest = int(usable[:, index.column[worst]].max(initial=0))
    return f"needs {demand[worst]} {worst}; largest usable on allowed hosts: {largest}"


def diagnose(problem: Problem) -> list[Diagnostic]:
    """Every structural reason some guests cannot be placed or started, in problem order."""
    index = HostIndex(problem)
    found: list[Diagnostic] = []
    blocked: dict[str, str] = {}  # guest -> reason, for propagation along dependencies

    def block(rule: str, guests: tuple[str, ...], message: str) -> None:
        found.append(Diagnostic(rule, guests, message))
        for name in guests:
            blocked.setdefault(name, message)

    groups = problem.together_groups()
    # Guests a solver places as one unit: a together group, or a guest alone.
    units: list[tuple[str | None, tuple[Guest, ...]]] = []
    seen_groups: set[str] = set()
    for guest in problem.guests:
        if guest.together is None:
            units.append((None, (guest,)))
        elif guest.together not in seen_groups:
            seen_groups.add(guest.together)
            units.append((guest.together, groups[guest.together]))

    for group, members in units:
        names = tuple(member.name for member in members)
        label = f"together group '{group}'" if group else f"guest '{names[0]}'"
        mask = index.online.copy()
        for member in members:
            mask &= index.allowed(member)
        if group is not None:
            member_classes: dict[str, list[str]] = defaultdict(list)
            for member in members:
                for cls in member.anti_affinity:
                    member_classes[cls].append(member.name)
            clashing = {cls: who for cls, who in member_classes.items() if len(who) > 1}
            if clashing:
                cls, who = sorted(clashing.items())[0]
                block(
                    "together_anti_affinity",
                    names,
                    f"{label} holds {', '.join(who)}, which share anti-affinity class "
                    f"'{cls}' and so can never share a host",
                )
                continue
        pinned = [m for m in members if problem.runs_now(m) and not m.movable]
        for member in pinned:
            here = problem.host_position(member.current_host or "")
            if not mask[here]:
                host = problem.hosts[here]
                why = (
                    f"which is in {host.state.value}"
                    if host.state.value == "maintenance"
                    else f"which has {host.state.value}"
                    if not host.online
                    else "which its host rules exclude"
                )
                block(
                    "immovable",
                    names,
                    f"guest '{member.name}' runs on {host.name}, {why}, and cannot be "
                    "live-migrated (movable: false): it can only be stopped",
                )
                break
            mask &= np.arange(len(problem.hosts)) == here
        if pinned and names[0] in blocked:
            continue
        if not mask.any():
            block("no_allowed_host", names, f"{label}: no online host satisfies its host rules")
            continue
        demand: dict[str, int] = defaultdict(int)
        for member in members:
            for resource, amount in member.demand.items():
                demand[resource] += amount
        need = index.vector(dict(demand))
        if not (index.usable[mask] >= need).all(axis=1).any():
            block("too_large", names, f"{label} {_shortfall(index, dict(demand), mask)}")
            continue
        for member in members:
            for pool, load in sorted(member.boot.load.items()):
                if load > problem.boot_pools[pool]:
                    block(
                        "boot_pool_too_small",
                        (member.name,),
                        f"guest '{member.name}' boots with {load} {pool}, more than the "
                        f"pool's limit {problem.boot_pools[pool]}",
                    )
            if member.boot.cpu > 0 and not any(
                problem.hosts[h].boot.cpu is None
                or (problem.hosts[h].boot.cpu or 0) >= member.boot.cpu
                for h in np.flatnonzero(mask)
            ):
                block(
                    "boot_cpu_too_small",
                    (member.name,),
                    f"guest '{member.name}' boots with {member.boot.cpu} boot CPU, more than "
                    f"any allowed host's boot CPU budget",
                )
            if member.boot.duration_s > problem.schedule.horizon_s:
                block(
                    "horizon_too_short",
                    (member.name,),
                    f"guest '{member.name}' boots for {member.boot.duration_s} s, longer "
                    f"than the horizon of {problem.schedule.horizon_s} s",
                )

    # An anti-affinity class with more members than hosts it can use.
    class_members: dict[str, list[Guest]] = defaultdict(list)
    for guest in problem.guests:
        for cls in guest.anti_affinity:
            class_members[cls].append(guest)
    for cls, class_guests in sorted(class_members.items()):
        reachable = np.zeros(len(problem.hosts), dtype=bool)
        for member in class_guests:
            reachable |= index.allowed(member)
        usable_hosts = int(reachable.sum())
        if len(class_guests) > usable_hosts:
            found.append(
                Diagnostic(
                    "anti_affinity_class",
                    tuple(m.name for m in class_guests),
                    f"anti-affinity class '{cls}' has {len(class_guests)} guests but only "
                    f"{usable_hosts} hosts they may use: at most {usable_hosts} "
                    "can be placed",
                )
            )

    # A guest that follows another runs beside it or not at all: it needs a host both may
    # use with room for both, and a leader that can be placed.
    followers: dict[str, list[Guest]] = defaultdict(list)
    for guest in problem.guests:
        leader_name = guest.follows
        if leader_name is None or guest.name in blocked:
            continue
        leader = problem.guest(leader_name)
        if guest.together is not None and guest.together == leader.together:
            continue
        followers[leader_name].append(guest)
        if leader_name in blocked:
            continue  # said below: it follows a guest that cannot be placed
        both = index.allowed(guest) & index.allowed(leader)
        need = index.vector(
            {
                resource: guest.demand.get(resource, 0) + leader.demand.get(resource, 0)
                for resource in guest.demand.keys() | leader.demand.keys()
            }
        )
        if not both.any():
            block(
                "follows_apart",
                (guest.name,),
                f"guest '{guest.name}' follows '{leader_name}', but no online host admits both",
            )
        elif not (index.usable[both] >= need).all(axis=1).any():
            block(
                "follows_apart",
                (guest.name,),
                f"guest '{guest.name}' follows '{leader_name}', but no host both may use "
                "holds the two",
            )
    queue = [name for name in blocked if name in followers]
    while queue:
        name = queue.pop()
        for guest in followers.get(name, ()):
            if guest.name not in blocked:
                block(
                    "follows_unplaceable",
                    (guest.name,),
                    f"guest '{guest.name}' follows '{name}', which cannot be placed",
                )
                queue.append(guest.name)

    # A guest that waits for a guest that can never be placed can never start either.
    graph = dependency_graph(problem.guests)
    for name in list(blocked):
        for dependant in nx.descendants(graph, name):
            if dependant not in blocked:
                guest = problem.guest(dependant)
                if problem.holds_current_host(guest):
                    continue  # already running: it does not start
                message = f"guest '{dependant}' starts after '{name}', which cannot be placed"
                blocked[dependant] = message
                found.append(Diagnostic("dependency_unplaceable", (dependant,), message))
    return found
