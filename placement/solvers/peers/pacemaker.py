"""Pacemaker's placement strategies: `balanced`, `utilization`, `minimal` and `default`.

A re-creation from the behaviour of Pacemaker's scheduler (`assign_resources` and
`pcmk__sort_resources` / `cmp_resources`, `compare_nodes` in pcmk_sched_nodes.c,
`assign_best_node` and `pcmk__primitive_assign` in pcmk_sched_primitive.c,
`pcmk__compare_node_capacities`, `have_enough_capacity` and
`pcmk__ban_insufficient_capacity` in pcmk_sched_utilization.c) and the "Utilization and
Placement Strategy" chapter of *Pacemaker Explained*. No code is copied.

Scores. A unit's score on a node is 0 where its rules allow it (-INFINITY elsewhere),
plus its finite location scores, plus its `resource-stickiness` on the node it runs on,
from `problem.pacemaker` (`PacemakerSettings`); a group sums its members'. A negative
score keeps it off the node. With `problem.pacemaker` every guest is assigned afresh, as
the scheduler does at each transition; without it guests running on an online host stay
and only the others are assigned.

1. Order. Highest `priority` first; then (not for `default`, which keeps configuration
   order) the unit with the higher score on the node it runs on now (a stopped one
   counts -INFINITY), then the scores with those of the guests it follows, node by node
   over the nodes in the order an empty cluster sorts them; then configuration order.
2. A unit that follows another (`Guest.follows`) is assigned after it, and only to its
   node. A node is a candidate if it is online, no rule bans it, its score is >= 0, no
   guest of one of its anti-affinity classes is assigned there, and it has room: for
   every utilization attribute, required <= remaining, for the unit together with every
   unit not yet assigned that follows it; when no node has room for them all, room for
   the unit's first member, and the node with the most free capacity is preferred if it
   scores as well as the best. `default` checks no capacity.
3. Candidates are ordered by score (a primary's counts its dependents' preferences,
   never below 0), then, for `balanced`, by free capacity compared attribute by
   attribute (the node with more remaining in more attributes first, however small the
   differences); then by fewer resources assigned; then the node the unit is active on;
   then the node name. `minimal` skips the capacity comparison and the resource count,
   so it packs onto the first node by name. The first candidate wins; with a positive
   score, the node it runs on wins a tie.
4. A unit that fits on no node stays stopped. A group that no node can hold whole is
   assigned member by member to its first member's node, and the first member that does
   not fit stops itself and every member after it.

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

from placement.model import (
    PACEMAKER_INFINITY,
    Guest,
    Host,
    PacemakerSettings,
    Problem,
    host_allows,
)
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
    DEFAULT = "default"


class _Nodes:
    """Remaining capacity and assigned-resource count of every online node.

    `checked`: whether capacity is checked at all (not with the `default` strategy,
    which ignores utilization: every node fits).
    """

    def __init__(self, online: Sequence[Host], checked: bool = True) -> None:
        self.checked = checked
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
        if not self.checked:
            return True
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
    that host now (`problem.pacemaker`; none without it). A group's score is the sum of
    its members' (each member is colocated with the one before it, so their preferences
    add up)."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        settings = problem.pacemaker or PacemakerSettings()
        self.stickiness = settings.stickiness
        self.scores = settings.scores

    def of(self, unit: Sequence[Guest], host: Host) -> int:
        total = 0
        for guest in unit:
            if not host_allows(host, guest):
                return -PACEMAKER_INFINITY
            total = _add_scores(total, self.scores.get(guest.name, {}).get(host.name, 0))
            if self.problem.runs_now(guest) and guest.current_host == host.name:
                total = _add_scores(total, self.stickiness.get(guest.name, 0))
        return total

    def with_leaders(self, unit: Sequence[Guest], host: Host) -> int:
        """The unit's score plus those of the guests it follows, and theirs in turn, as
        Pacemaker weighs a dependent when it orders resources."""
        total = self.of(unit, host)
        seen = {guest.name for guest in unit}
        for guest in unit:
            leader = guest.follows
            while leader is not None and leader not in seen:
                seen.add(leader)
                followed = self.problem.guest(leader)
                total = _add_scores(total, self.of([followed], host))
                leader = followed.follows
        return total

    def current_host(self, unit: Sequence[Guest]) -> str | None:
        """Where the unit runs now (its first running member's host), if anywhere."""
        for guest in unit:
            if self.problem.runs_now(guest):
                return guest.current_host
        return None


def _resource_order(
    problem: Problem, units: list[list[Guest]], online: Sequence[Host], strategy: Strategy
) -> list[list[Guest]]:
    """Units in the order Pacemaker assigns resources (`cmp_resources`).

    Highest priority first (a group counts with its highest member). Then the unit with
    the higher score on the host it runs on now (a stopped one counts -INFINITY, so
    running ones come first). Then the scores (with those of the guests it follows) are
    compared host by host over the hosts in the order an empty cluster sorts them: the
    first host where one scores higher puts it first. Then configuration order.
    """
    scores = _Scores(problem)
    empty = _Nodes(online)
    compare = _node_comparator(empty, strategy, None)
    hosts = {host.name: host for host in online}
    ordered = [hosts[name] for name in sorted(hosts, key=functools.cmp_to_key(compare))]

    def key(indexed: tuple[int, list[Guest]]) -> tuple[int, int, tuple[int, ...], int]:
        position, unit = indexed
        if strategy is Strategy.DEFAULT:
            # The default strategy does not sort: priority (as the CIB is read), then
            # configuration order.
            return (-max(guest.priority for guest in unit), 0, (), position)
        current = scores.current_host(unit)
        on_current = (
            scores.with_leaders(unit, hosts[current]) if current in hosts else -PACEMAKER_INFINITY
        )
        vector = tuple(-scores.with_leaders(unit, host) for host in ordered)
        return (-max(guest.priority for guest in unit), -on_current, vector, position)

    return [unit for _, unit in sorted(enumerate(units), key=key)]


def pacemaker_placement(
    problem: Problem, strategy: Strategy | str = Strategy.BALANCED
) -> Placement:
    """Place the guests as Pacemaker's `placement-strategy` would.

    With Pacemaker's scores (`problem.pacemaker`, as `placement import pacemaker` writes
    them) every guest is assigned afresh, running ones included, as the scheduler does at
    each transition. Without them guests that run on an online host stay, and only the
    others are placed. Frozen copies (and guests that stay) use their host's capacity and
    count as resources assigned there. Capacity is our usable amount.
    """
    return _Transition(problem, Strategy(strategy)).run()


class _Transition:
    """One run of Pacemaker's assignment: the units, where each went, and why not."""

    def __init__(self, problem: Problem, strategy: Strategy) -> None:
        self.problem = problem
        self.strategy = strategy
        self.state = StartState(problem, reassign=problem.pacemaker is not None)
        self.online = [host for host in problem.hosts if host.online]
        self.nodes = _Nodes(self.online, checked=strategy is not Strategy.DEFAULT)
        for name, users in self.state.users.items():
            for user in users:
                self.nodes.consume(name, user)
        self.scores = _Scores(problem)
        self.hosts: dict[str, str | None] = dict(self.state.stay)
        self.reasons: dict[str, str] = {}
        self.units = _units(problem, self.state.to_place)
        self.unit_of = {g.name: index for index, unit in enumerate(self.units) for g in unit}
        self.followers: dict[int, list[int]] = {}
        for index, unit in enumerate(self.units):
            for guest in unit:
                leader = self.unit_of.get(guest.follows or "")
                if leader is not None and leader != index:
                    self.followers.setdefault(leader, []).append(index)
        self.done: set[int] = set()
        # Clone instances are interchangeable: when the first of a clone's comes up,
        # every instance that can stay where it runs stays, before any instance moves.
        self.siblings: dict[int, list[int]] = {}
        for instances in (problem.pacemaker.clones if problem.pacemaker else {}).values():
            indices = [self.unit_of[name] for name in instances if name in self.unit_of]
            for position in indices:
                self.siblings[position] = indices

    def run(self) -> Placement:
        for unit in _resource_order(self.problem, self.units, self.online, self.strategy):
            self.place(self.unit_of[unit[0].name])
        return Placement(hosts=self.hosts, reasons=self.reasons)

    def leave_stopped(self, unit: Sequence[Guest], reason: str) -> None:
        for guest in unit:
            self.hosts[guest.name] = None
            self.reasons[guest.name] = reason

    def assign(self, guest: Guest, node: str) -> None:
        self.hosts[guest.name] = node
        self.state.place(guest, node)
        self.nodes.consume(node, guest)

    def colocated_demand(self, index: int) -> dict[str, int]:
        """The unit and every unit not yet assigned that follows it, directly or not:
        Pacemaker checks their summed utilization before it picks the primary's node."""
        members = [*self.units[index]]
        queue, seen = [index], {index}
        while queue:
            for other in self.followers.get(queue.pop(), ()):
                if other not in seen and other not in self.done:
                    seen.add(other)
                    queue.append(other)
                    members.extend(self.units[other])
        return demand_of(members)

    def stay_if_possible(self, index: int) -> None:
        """Assign a running unit to the node it runs on when every rule lets it."""
        unit = self.units[index]
        current = self.scores.current_host(unit)
        if current is None or current not in self.nodes.count:
            return
        host = next(host for host in self.online if host.name == current)
        if any(g.follows is not None for g in unit) or self.scores.of(unit, host) < 0:
            return
        if current in self.state.conflicting_hosts(unit):
            return
        if not self.nodes.fits(current, demand_of(unit)):
            return
        self.done.add(index)
        for guest in unit:
            self.assign(guest, current)

    def leaders_host(self, index: int) -> tuple[bool, set[str] | None]:
        """Assign the guests the unit follows first (Pacemaker assigns a primary before
        its dependent): (False, _) when one is not placed, else the hosts it may use
        (None: it follows no one)."""
        unit = self.units[index]
        pinned: set[str] | None = None
        for guest in unit:
            leader = guest.follows
            if leader is None or any(leader == member.name for member in unit):
                continue
            if leader in self.unit_of:
                self.place(self.unit_of[leader])
            where = self.hosts.get(leader)
            if where is None:
                self.leave_stopped(unit, f"follows {leader}, which is not placed")
                return False, None
            pinned = {where} if pinned is None else pinned & {where}
        return True, pinned

    def scored(self, index: int) -> dict[str, int]:
        """The unit's score per online host. What follows it pulls it along: each
        dependent's scores are added where they keep the score from going negative
        (Pacemaker passes preferences, not bans, from a dependent to its primary)."""
        unit = self.units[index]
        scored = {host.name: self.scores.of(unit, host) for host in self.online}
        for other in self.followers.get(index, ()):
            for host in self.online:
                own = scored[host.name]
                if own >= 0:
                    pulled = _add_scores(own, self.scores.of(self.units[other], host))
                    scored[host.name] = max(pulled, 0)
        return scored

    def candidates(
        self, index: int, scored: Mapping[str, int], pinned: set[str] | None
    ) -> list[str]:
        """The hosts its rules leave it (empty, with the reason recorded, when none)."""
        unit = self.units[index]
        # A host with a negative score cannot run the resource.
        candidates = [name for name, score in scored.items() if score >= 0]
        if pinned is not None:
            candidates = [name for name in candidates if name in pinned]
        if not candidates:
            self.leave_stopped(unit, "no online host is allowed by its node rules and scores")
            return []
        # Members of its together group that keep running pin the group to their host.
        anchors = set(self.state.partner_hosts(unit[0]))
        if anchors:
            candidates = [node for node in candidates if node in anchors]
            if not candidates:
                self.leave_stopped(unit, "its together group runs on a host it may not use")
                return []
        separate = self.state.conflicting_hosts(unit)
        candidates = [node for node in candidates if node not in separate]
        if not candidates:
            self.leave_stopped(
                unit, "anti-affinity: every allowed host already runs a guest of its class"
            )
        return candidates

    def place(self, index: int) -> None:
        if index in self.done:
            return
        for sibling in self.siblings.pop(index, ()):
            self.siblings.pop(sibling, None)
            if sibling not in self.done:
                self.stay_if_possible(sibling)
        if index in self.done:
            return
        self.done.add(index)
        unit = self.units[index]
        placed, pinned = self.leaders_host(index)
        if not placed:
            return
        scored = self.scored(index)
        candidates = self.candidates(index, scored, pinned)
        if not candidates:
            return
        together = self.colocated_demand(index)
        fitting = [node for node in candidates if self.nodes.fits(node, together)]
        prefer: str | None = None
        if not fitting:
            # No host holds it with all that follows it: the hosts with room for the
            # first member alone remain, and Pacemaker prefers the one with the most
            # free capacity (when it scores as well as the best).
            fitting = [node for node in candidates if self.nodes.fits(node, unit[0].demand)]
            prefer = _most_free(candidates, self.nodes)
        if not fitting:
            self.leave_stopped(unit, "no allowed host has enough remaining capacity")
            return
        current = self.scores.current_host(unit)
        node = _best_scored(fitting, scored, self.nodes, self.strategy, current, prefer)
        for position, guest in enumerate(unit):
            if not self.nodes.fits(node, guest.demand):
                reason = f"its group's host {node} has not enough remaining capacity for it"
                self.leave_stopped(unit[position:], reason)
                break
            self.assign(guest, node)


def _most_free(candidates: Sequence[str], nodes: _Nodes) -> str | None:
    """The candidate with the most free capacity, attribute by attribute (the first in
    name order that no later one beats)."""
    best: str | None = None
    for node in sorted(candidates):
        if best is None or nodes.compare_capacity(node, best) < 0:
            best = node
    return best


def _best_scored(
    candidates: Sequence[str],
    scored: Mapping[str, int],
    nodes: _Nodes,
    strategy: Strategy,
    current: str | None,
    prefer: str | None = None,
) -> str:
    """The highest-scoring candidate, ties broken by the strategy's node order; a
    preferred host wins when it scores as well as that; then, as Pacemaker does for a
    positive score, the host the unit runs on wins a tie."""
    top = max(scored[node] for node in candidates)
    if prefer is not None and prefer in candidates and scored[prefer] >= top:
        return prefer
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
    Strategy.DEFAULT,
    "Pacemaker placement-strategy=default: utilization ignored, fewest resources first "
    "(may overload hosts)",
)
_solver(
    Strategy.MINIMAL,
    "Pacemaker placement-strategy=minimal: first node by name with room (packs)",
)
