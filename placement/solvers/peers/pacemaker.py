"""Pacemaker's placement strategies: `balanced`, `utilization` and `minimal`.

A re-creation from the behaviour of Pacemaker's scheduler (`pcmk__sort_resources`,
`compare_nodes` in pcmk_sched_nodes.c, `pcmk__compare_node_capacities`,
`have_enough_capacity` and the colocated-utilization handling in
pcmk_sched_utilization.c) and the "Utilization and Placement Strategy" chapter of
*Pacemaker Explained*. No code is copied.

How Pacemaker assigns resources when `placement-strategy` is not `default`:

1. Resources are assigned one at a time, highest `priority` first. Equal priorities are
   ordered by their node scores (a resource allowed on a node that sorts earlier comes
   first, see `_resource_order`) and then by configuration order.
2. A node is a candidate if it is online (not in standby or maintenance), no location
   rule bans it (here: `host_allows`), no resource it must not share a node with is
   assigned there (anti-colocation), and it has enough capacity: for every utilization
   attribute the resource names, required <= remaining. Remaining is the node's capacity
   minus what resources already assigned there use.
3. Candidates are ordered by node score (all equal here), then, for `balanced`, by free
   capacity compared attribute by attribute: the node with more remaining in more
   attributes comes first, however small the differences; then by fewer resources
   assigned; then the node the resource is active on; then the node name.
   `utilization` skips the capacity comparison; `minimal` skips it and the resource
   count, so it packs onto the first node by name. The first candidate wins.
4. A resource that fits on no node stays stopped.

A together group is a Pacemaker group: its members' summed utilization must fit on one
node; when no node can hold them all, the members are assigned one after another to the
node of the first, and the first member that does not fit stops itself and every member
after it (each member of a group is colocated with the one before it).

Our resource names are the utilization attributes; a node's capacity is our usable amount
(`floor((capacity - reserved) * overcommit)`): Pacemaker has no overcommit, so an operator
would have configured the overcommitted amount as the node's utilization.
"""

from __future__ import annotations

import enum
import functools
import logging
import time
from collections.abc import Mapping, Sequence

from placement.model import Guest, Host, Problem, host_allows
from placement.plan import Plan
from placement.solvers import SolveOptions, register
from placement.solvers.common import Placement, finish_plan
from placement.solvers.peers._shared import StartState, demand_of

logger = logging.getLogger(__name__)


class Strategy(enum.Enum):
    """Pacemaker's `placement-strategy` cluster option (`default` ignores utilization)."""

    BALANCED = "balanced"
    UTILIZATION = "utilization"
    MINIMAL = "minimal"


class _Nodes:
    """Remaining capacity and assigned-resource count of every online node."""

    def __init__(self, online: Sequence[Host]) -> None:
        self.remaining: dict[str, dict[str, int]] = {
            host.name: {resource: host.usable(resource) for resource in host.capacity}
            for host in online
        }
        self.count: dict[str, int] = {host.name: 0 for host in online}

    def consume(self, node: str, guest: Guest) -> None:
        remaining = self.remaining[node]
        for resource, amount in guest.demand.items():
            remaining[resource] = remaining.get(resource, 0) - amount
        self.count[node] += 1

    def fits(self, node: str, demand: Mapping[str, int]) -> bool:
        """Pacemaker's check: required <= remaining for every attribute the demand names.

        An attribute the node does not define counts as 0 remaining; a node already
        overloaded by guests that stay fails even a zero requirement.
        """
        remaining = self.remaining[node]
        return all(amount <= remaining.get(resource, 0) for resource, amount in demand.items())

    def compare_capacity(self, first: str, second: str) -> int:
        """Negative when `first` has more remaining in more attributes, positive when
        `second` has; only the count of attributes matters, not by how much."""
        one, two = self.remaining[first], self.remaining[second]
        result = 0
        for resource in one.keys() | two.keys():
            a, b = one.get(resource, 0), two.get(resource, 0)
            if a > b:
                result -= 1
            elif a < b:
                result += 1
        return result


def _node_comparator(
    nodes: _Nodes, strategy: Strategy, preferred: str | None
) -> functools.partial[int]:
    return functools.partial(_compare_nodes, nodes, strategy, preferred)


def _compare_nodes(
    nodes: _Nodes, strategy: Strategy, preferred: str | None, first: str, second: str
) -> int:
    """-1 when `first` is preferred, 1 when `second` is (all node scores are equal here)."""
    if strategy is not Strategy.MINIMAL:
        if strategy is Strategy.BALANCED:
            capacity = nodes.compare_capacity(first, second)
            if capacity != 0:
                return -1 if capacity < 0 else 1
        if nodes.count[first] != nodes.count[second]:
            return -1 if nodes.count[first] < nodes.count[second] else 1
        if preferred is not None and preferred in (first, second):
            return -1 if first == preferred else 1
    return -1 if first < second else (1 if first > second else 0)


def _best_node(
    candidates: Sequence[str], nodes: _Nodes, strategy: Strategy, preferred: str | None
) -> str:
    """The first candidate in Pacemaker's order.

    The capacity comparison is not transitive (three nodes can each beat the next), and
    then Pacemaker's pick depends on the order of its node hash table. We scan the
    candidates in name order and keep the first one no later candidate beats.
    """
    compare = _node_comparator(nodes, strategy, preferred)
    best = candidates[0]
    for node in candidates[1:]:
        if compare(node, best) < 0:
            best = node
    return best


def _units(problem: Problem, to_place: Sequence[Guest]) -> list[list[Guest]]:
    """What is assigned as one: a single guest, or the members of a together group."""
    units: list[list[Guest]] = []
    by_group: dict[str, list[Guest]] = {}
    for guest in sorted(to_place, key=lambda g: problem.guest_position(g.name)):
        if guest.together is None:
            units.append([guest])
        elif guest.together in by_group:
            by_group[guest.together].append(guest)
        else:
            by_group[guest.together] = [guest]
            units.append(by_group[guest.together])
    return units


def _resource_order(
    problem: Problem, units: list[list[Guest]], online: Sequence[Host], strategy: Strategy
) -> list[list[Guest]]:
    """Units in Pacemaker's assignment order.

    Highest priority first (a group counts with its highest member). Then, as Pacemaker
    does for resources that are not active anywhere, the node scores are compared node by
    node over the cluster's nodes in their preferred order (here: the order an empty
    cluster would give them): the first node where one unit is allowed and the other is
    banned puts the allowed unit first. Then configuration order.
    """
    empty = _Nodes(online)
    compare = _node_comparator(empty, strategy, None)
    node_order = sorted((host.name for host in online), key=functools.cmp_to_key(compare))
    hosts = {host.name: host for host in online}

    def allowed_vector(unit: list[Guest]) -> tuple[int, ...]:
        # 0: allowed (score 0), 1: banned (-INFINITY); smaller sorts first.
        return tuple(
            0 if all(host_allows(hosts[node], guest) for guest in unit) else 1
            for node in node_order
        )

    def key(indexed: tuple[int, list[Guest]]) -> tuple[int, tuple[int, ...], int]:
        position, unit = indexed
        return (-max(guest.priority for guest in unit), allowed_vector(unit), position)

    return [unit for _, unit in sorted(enumerate(units), key=key)]


def pacemaker_placement(
    problem: Problem, strategy: Strategy | str = Strategy.BALANCED
) -> Placement:
    """Place the guests that need a host as Pacemaker's `placement-strategy` would.

    Guests that run on an online host stay; they and frozen copies use their host's
    capacity and count as resources assigned there. Capacity is our usable amount.
    """
    strategy = Strategy(strategy)
    state = StartState(problem)
    online = [host for host in problem.hosts if host.online]
    nodes = _Nodes(online)
    for name, users in state.users.items():
        for user in users:
            nodes.consume(name, user)

    hosts: dict[str, str | None] = dict(state.stay)
    reasons: dict[str, str] = {}

    def leave_stopped(unit: Sequence[Guest], reason: str) -> None:
        for guest in unit:
            hosts[guest.name] = None
            reasons[guest.name] = reason

    def assign(guest: Guest, node: str) -> None:
        hosts[guest.name] = node
        state.place(guest, node)
        nodes.consume(node, guest)

    for unit in _resource_order(problem, _units(problem, state.to_place), online, strategy):
        candidates = [
            host.name for host in online if all(host_allows(host, guest) for guest in unit)
        ]
        if not candidates:
            leave_stopped(unit, "no online host is allowed by its node rules")
            continue
        # Members of its together group that keep running pin the group to their host.
        anchors = set(state.partner_hosts(unit[0]))
        if anchors:
            candidates = [node for node in candidates if node in anchors]
            if not candidates:
                leave_stopped(unit, "its together group runs on a host it may not use")
                continue
        separate = state.conflicting_hosts(unit)
        candidates = [node for node in candidates if node not in separate]
        if not candidates:
            leave_stopped(
                unit, "anti-affinity: every allowed host already runs a guest of its class"
            )
            continue
        preferred = unit[0].current_host
        fitting = [node for node in candidates if nodes.fits(node, demand_of(unit))]
        if fitting:
            node = _best_node(fitting, nodes, strategy, preferred)
            for guest in unit:
                assign(guest, node)
            continue
        if len(unit) == 1:
            leave_stopped(unit, "no allowed host has enough remaining capacity")
            continue
        # No node holds the whole group: its members follow the first one by one.
        fitting = [node for node in candidates if nodes.fits(node, unit[0].demand)]
        if not fitting:
            leave_stopped(unit, "no allowed host has enough remaining capacity for its group")
            continue
        node = _best_node(fitting, nodes, strategy, preferred)
        for position, guest in enumerate(unit):
            if not nodes.fits(node, guest.demand):
                reason = f"its group's host {node} has not enough remaining capacity for it"
                leave_stopped(unit[position:], reason)
                break
            assign(guest, node)
    return Placement(hosts=hosts, reasons=reasons)


# --- registered solvers ----------------------------------------------------------------


def _solver(strategy: Strategy, summary: str) -> None:
    name = f"pacemaker-{strategy.value}"

    def solve(problem: Problem, options: SolveOptions) -> Plan:
        started_at = time.perf_counter()
        placement = pacemaker_placement(problem, strategy)
        return finish_plan(problem, placement, options, name, started_at)

    solve.__doc__ = f"Place as Pacemaker's `{strategy.value}` strategy would, then schedule."
    register(name, kind="peer", summary=summary)(solve)


_solver(
    Strategy.BALANCED,
    "Pacemaker placement-strategy=balanced: most free capacity attribute by attribute, "
    "capacity checked",
)
_solver(
    Strategy.UTILIZATION,
    "Pacemaker placement-strategy=utilization: fewest resources among nodes with room",
)
_solver(
    Strategy.MINIMAL,
    "Pacemaker placement-strategy=minimal: first node by name with room (packs)",
)
