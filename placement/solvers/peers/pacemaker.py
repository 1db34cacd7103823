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

from placement.model import PACEMAKER_INFINITY, Guest, Host, Problem, host_allows
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
    if problem.pacemaker is not None:
        return _reassign(problem, strategy)
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


def _add_scores(first: int, second: int) -> int:
    """Pacemaker's score sum: -INFINITY wins over anything, then +INFINITY, else the sum
    clamped to +-INFINITY."""
    if -PACEMAKER_INFINITY in (first, second):
        return -PACEMAKER_INFINITY
    if PACEMAKER_INFINITY in (first, second):
        return PACEMAKER_INFINITY
    return max(-PACEMAKER_INFINITY, min(PACEMAKER_INFINITY, first + second))


class _Scores:
    """Each unit's score on each online host, as Pacemaker sums it before assigning:
    0 where allowed (-INFINITY where a ban, the opt-in list or the host's state rule it
    out), plus the finite location scores, plus the stickiness of members that run on
    that host now. A group's score is the sum of its members' (each member is colocated
    with the one before it, so their preferences add up)."""

    def __init__(self, problem: Problem, online: Sequence[Host]) -> None:
        assert problem.pacemaker is not None
        self.problem = problem
        self.settings = problem.pacemaker
        self.online = online

    def of(self, unit: Sequence[Guest], host: Host) -> int:
        total = 0
        for guest in unit:
            if not host_allows(host, guest):
                return -PACEMAKER_INFINITY
            total = _add_scores(total, self.settings.scores.get(guest.name, {}).get(host.name, 0))
            if self.problem.runs_now(guest) and guest.current_host == host.name:
                total = _add_scores(total, self.settings.stickiness.get(guest.name, 0))
        return total

    def current_host(self, unit: Sequence[Guest]) -> str | None:
        """Where the unit runs now (its first running member's host), if anywhere."""
        for guest in unit:
            if self.problem.runs_now(guest):
                return guest.current_host
        return None


def _reassign_order(
    problem: Problem,
    units: list[list[Guest]],
    online: Sequence[Host],
    strategy: Strategy,
    scores: _Scores,
) -> list[list[Guest]]:
    """Units in the order Pacemaker assigns resources: highest priority first; then the
    one with the higher score on the host it runs on now (a stopped one counts
    -INFINITY, so running ones come first); then the scores compared host by host over
    the hosts in the order an empty cluster sorts them; then configuration order."""
    empty = _Nodes(online)
    compare = _node_comparator(empty, strategy, None)
    hosts = {host.name: host for host in online}
    ordered = [hosts[name] for name in sorted(hosts, key=functools.cmp_to_key(compare))]

    def key(indexed: tuple[int, list[Guest]]) -> tuple[int, int, tuple[int, ...], int]:
        position, unit = indexed
        current = scores.current_host(unit)
        on_current = scores.of(unit, hosts[current]) if current in hosts else -PACEMAKER_INFINITY
        vector = tuple(-scores.of(unit, host) for host in ordered)
        return (-max(guest.priority for guest in unit), -on_current, vector, position)

    return [unit for _, unit in sorted(enumerate(units), key=key)]


def _reassign(problem: Problem, strategy: Strategy) -> Placement:
    """Pacemaker's transition: every guest assigned afresh (see `PacemakerSettings`)."""
    state = StartState(problem, reassign=True)
    online = [host for host in problem.hosts if host.online]
    nodes = _Nodes(online)
    # Frozen copies are not Pacemaker's to move: they keep holding their host.
    for name, users in state.users.items():
        for user in users:
            nodes.consume(name, user)
    scores = _Scores(problem, online)
    hosts: dict[str, str | None] = {}
    reasons: dict[str, str] = {}

    def leave_stopped(unit: Sequence[Guest], reason: str) -> None:
        for guest in unit:
            hosts[guest.name] = None
            reasons[guest.name] = reason

    def assign(guest: Guest, node: str) -> None:
        hosts[guest.name] = node
        state.place(guest, node)
        nodes.consume(node, guest)

    units = _units(problem, state.to_place)
    for unit in _reassign_order(problem, units, online, strategy, scores):
        # A node with a negative score cannot run the resource.
        scored = {host.name: scores.of(unit, host) for host in online}
        candidates = [name for name, score in scored.items() if score >= 0]
        if not candidates:
            leave_stopped(unit, "no online host is allowed by its node rules and scores")
            continue
        separate = state.conflicting_hosts(unit)
        candidates = [node for node in candidates if node not in separate]
        if not candidates:
            leave_stopped(
                unit, "anti-affinity: every allowed host already runs a guest of its class"
            )
            continue
        current = scores.current_host(unit)
        fitting = [node for node in candidates if nodes.fits(node, demand_of(unit))]
        members = unit
        if not fitting and len(unit) > 1:
            # No node holds the whole group: its members follow the first one by one.
            fitting = [node for node in candidates if nodes.fits(node, unit[0].demand)]
        if not fitting:
            leave_stopped(unit, "no allowed host has enough remaining capacity")
            continue
        node = _best_scored(fitting, scored, nodes, strategy, current)
        for position, guest in enumerate(members):
            if not nodes.fits(node, guest.demand):
                reason = f"its group's host {node} has not enough remaining capacity for it"
                leave_stopped(unit[position:], reason)
                break
            assign(guest, node)
    return Placement(hosts=hosts, reasons=reasons)


def _best_scored(
    candidates: Sequence[str],
    scored: Mapping[str, int],
    nodes: _Nodes,
    strategy: Strategy,
    current: str | None,
) -> str:
    """The highest-scoring candidate, ties broken by the strategy's node order; then,
    as Pacemaker does for a positive score, the host the unit runs on wins a tie."""
    top = max(scored[node] for node in candidates)
    best = _best_node([n for n in candidates if scored[n] == top], nodes, strategy, current)
    if top > 0 and current is not None and current in candidates and scored[current] == top:
        return current
    return best


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
