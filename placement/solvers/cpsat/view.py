"""The indexed view of a problem that the CP-SAT model is built from.

Solvers build their own views of the immutable model. Here: together groups merged into
units (one placement decision each), the hosts each unit may use (only allowed pairs get
a variable), what frozen copies already hold, which guests boot, and the start slots
(a start group, or a lone booting guest, shares one start instant).
"""

from __future__ import annotations

from collections import defaultdict

import attrs
import numpy as np

from placement.indexing import HostIndex
from placement.indexing import units as together_units
from placement.model import Guest, Host, Problem


@attrs.frozen
class UnitView:
    """A together group or a lone guest: placed as one, on one host or none.

    `candidates`: host indices the unit may use (allowed for every member, room for its
    demand next to frozen copies, no anti-affinity clash inside the unit, only its
    current host for a unit with a running guest that is not `movable`).
    `move_cost[h]`: the migration cost if the unit ends on host `h` (members running now
    on another host move).
    """

    index: int
    guests: tuple[Guest, ...]
    demand: dict[str, int]
    classes: frozenset[str]
    weight: int
    candidates: tuple[int, ...]
    move_cost: dict[int, int]


@attrs.frozen
class Boot:
    """A guest that boots if its unit is placed."""

    guest: Guest
    unit: int
    slot: int
    duration_s: int


@attrs.frozen
class Slot:
    """A start instant shared by a start group (or used by one lone booting guest)."""

    index: int
    boots: tuple[int, ...]  # indices into ProblemView.boots
    longest_s: int


@attrs.frozen
class HostClass:
    """Hosts no rule tells apart: the same definition but the name, nothing on them now,
    and the same units may use them. Relabelling these hosts in a plan keeps it valid and
    keeps every objective value, so the model asks for one labelling of each plan only.

    `units`: the units that may use them, largest first (the order the symmetry-breaking
    rule and `canonical_hosts` follow).
    """

    hosts: tuple[int, ...]
    units: tuple[int, ...]


@attrs.frozen
class ProblemView:
    problem: Problem
    units: tuple[UnitView, ...]
    unit_of: dict[str, int]
    boots: tuple[Boot, ...]
    boot_of: dict[str, int]
    slots: tuple[Slot, ...]
    fixed: dict[tuple[int, str], int]  # (host, resource) -> held by frozen copies
    frozen_hosts: frozenset[int]  # hosts holding a frozen copy (they count as used)
    online_hosts: tuple[int, ...]
    resources: tuple[str, ...]
    index: HostIndex  # usable and frozen-held amounts per host, as the baselines see them
    host_classes: tuple[HostClass, ...] = ()

    @property
    def num_pairs(self) -> int:
        return sum(len(unit.candidates) for unit in self.units)


def build_view(problem: Problem) -> ProblemView:
    """Index the problem for the CP-SAT model."""
    resources = problem.resources
    index = HostIndex(problem)
    fixed: dict[tuple[int, str], int] = {
        (int(h), resource): int(index.fixed[h, r])
        for r, resource in enumerate(resources)
        for h in np.flatnonzero(index.fixed[:, r])
    }
    frozen_hosts = index.frozen_hosts
    units = [
        _unit_view(problem, index, position, guests)
        for position, guests in enumerate(together_units(problem))
    ]
    unit_of = {guest.name: unit.index for unit in units for guest in unit.guests}
    boots, slots = _boots_and_slots(problem, unit_of)

    return ProblemView(
        problem=problem,
        units=tuple(units),
        unit_of=unit_of,
        boots=tuple(boots),
        boot_of={boot.guest.name: i for i, boot in enumerate(boots)},
        slots=tuple(slots),
        fixed=dict(fixed),
        frozen_hosts=frozen_hosts,
        online_hosts=tuple(int(h) for h in np.flatnonzero(index.online)),
        resources=resources,
        index=index,
        host_classes=_host_classes(problem, units, {*frozen_hosts, *(h for h, _ in fixed)}),
    )


def _unit_view(
    problem: Problem, index: HostIndex, position: int, guests: tuple[Guest, ...]
) -> UnitView:
    """The unit of `guests` (a together group, or a lone guest) at `position`."""
    hosts = problem.hosts
    demand: dict[str, int] = defaultdict(int)
    for guest in guests:
        for resource, amount in guest.demand.items():
            demand[resource] += amount
    seen: set[str] = set()
    clash = False
    for guest in guests:
        clash = clash or bool(seen & guest.anti_affinity)
        seen |= guest.anti_affinity
    candidates: list[int] = []
    if not clash:
        mask = index.fits_alone(dict(demand))
        for guest in guests:
            mask &= index.allowed(guest)
            if problem.runs_now(guest) and not guest.movable:
                # It cannot be live-migrated: its own host or none.
                mask &= np.arange(len(hosts)) == problem.host_position(guest.current_host or "")
        candidates = [int(h) for h in np.flatnonzero(mask)]
    running = [g for g in guests if problem.runs_now(g)]
    move_cost = {
        h: sum(g.migration_cost for g in running if g.current_host != hosts[h].name)
        for h in candidates
    }
    return UnitView(
        index=position,
        guests=guests,
        demand=dict(demand),
        classes=frozenset(seen),
        weight=sum(g.weight for g in guests),
        candidates=tuple(candidates),
        move_cost=move_cost,
    )


def _boots_and_slots(problem: Problem, unit_of: dict[str, int]) -> tuple[list[Boot], list[Slot]]:
    """The guests that boot when placed (all but those running now: they stay or
    migrate), and their start instants (one per start group, else one per guest)."""
    boots: list[Boot] = []
    slot_index: dict[str, int] = {}
    slot_members: list[list[int]] = []
    for guest in problem.guests:
        if problem.runs_now(guest):
            continue
        key = f"group:{guest.boot.group}" if guest.boot.group is not None else f"guest:{guest.name}"
        if key not in slot_index:
            slot_index[key] = len(slot_members)
            slot_members.append([])
        slot_members[slot_index[key]].append(len(boots))
        boots.append(
            Boot(
                guest=guest,
                unit=unit_of[guest.name],
                slot=slot_index[key],
                duration_s=guest.boot.duration_s,
            )
        )
    slots = [
        Slot(index=i, boots=tuple(m), longest_s=max(boots[b].duration_s for b in m))
        for i, m in enumerate(slot_members)
    ]
    return boots, slots


# Finding interchangeable hosts costs one pass over the pairs (a few seconds at
# 10,000 x 1,000); beyond this the neighbourhood search holds most hosts anyway.
SYMMETRY_MAX_PAIRS = 400_000


def _definition(host: Host) -> tuple[object, ...]:
    """Everything about a host that a rule reads, but its name."""
    return (
        tuple(sorted(host.capacity.items())),
        tuple(sorted(host.overcommit.items())),
        tuple(sorted(host.reserved.items())),
        host.state,
        host.domain,
        host.labels,
        host.boot,
    )


def _host_classes(
    problem: Problem, units: list[UnitView], held_hosts: set[int]
) -> tuple[HostClass, ...]:
    """Classes of two or more interchangeable hosts (see `HostClass`).

    A host some guest is on now (running, stopped or frozen) is told apart by the
    migrations and the frozen copies, so it joins no class."""
    if sum(len(unit.candidates) for unit in units) > SYMMETRY_MAX_PAIRS:
        return ()
    occupied = {g.current_host for g in problem.guests if g.current_host is not None}
    users: dict[int, list[int]] = defaultdict(list)
    for unit in units:
        for h in unit.candidates:
            users[h].append(unit.index)
    groups: dict[tuple[tuple[object, ...], tuple[int, ...]], list[int]] = defaultdict(list)
    for h, host in enumerate(problem.hosts):
        if h in users and h not in held_hosts and host.name not in occupied:
            groups[_definition(host), tuple(users[h])].append(h)
    classes = []
    for (_, members), group in groups.items():
        if len(group) < 2:
            continue
        host = problem.hosts[group[0]]
        rank = {u: _largest_first(units[u].demand, host, u) for u in members}
        classes.append(HostClass(tuple(group), tuple(sorted(members, key=rank.__getitem__))))
    return tuple(classes)


def _largest_first(demand: dict[str, int], host: Host, u: int) -> tuple[float, float, int]:
    """Sort key: the unit's largest share of the host, then its summed shares."""
    shares = [
        amount / host.usable(resource)
        for resource, amount in demand.items()
        if amount > 0 and host.usable(resource) > 0
    ]
    return (-max(shares, default=0.0), -sum(shares), u)


def canonical_hosts(view: ProblemView, unit_host: tuple[int | None, ...]) -> tuple[int | None, ...]:
    """The same plan with each class's hosts relabelled in the order the class's units
    first use them: the labelling the symmetry-breaking rule keeps (hints must obey it)."""
    hosts = list(unit_host)
    for host_class in view.host_classes:
        members = set(host_class.hosts)
        relabel: dict[int, int] = {}
        for u in host_class.units:
            h = hosts[u]
            if h is not None and h in members and h not in relabel:
                relabel[h] = host_class.hosts[len(relabel)]
        for u in host_class.units:
            h = hosts[u]
            if h is not None and h in relabel:
                hosts[u] = relabel[h]
    return tuple(hosts)


def pair_count(problem: Problem) -> int:
    """An upper estimate of the model's (guest, host) pairs: each guest's allowed hosts."""
    online = sum(1 for host in problem.hosts if host.online)
    return sum(online if g.hosts is None else len(g.hosts) for g in problem.guests)
