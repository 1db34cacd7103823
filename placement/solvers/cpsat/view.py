"""The indexed view of a problem that the CP-SAT model is built from.

Solvers build their own views of the immutable model. Here: together groups merged into
units (one placement decision each), the hosts each unit may use (only allowed pairs get
a variable), what frozen copies already hold, which guests boot, and the start slots
(a start group, or a lone booting guest, shares one start instant).
"""

from __future__ import annotations

from collections import defaultdict

import attrs

from placement.model import Guest, GuestState, Problem, host_allows
from placement.solvers.common import is_currently_running


@attrs.frozen
class UnitView:
    """A together group or a lone guest: placed as one, on one host or none.

    `candidates`: host indices the unit may use (allowed for every member, room for its
    demand next to frozen copies, no anti-affinity clash inside the unit).
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

    @property
    def num_pairs(self) -> int:
        return sum(len(unit.candidates) for unit in self.units)


def build_view(problem: Problem) -> ProblemView:
    """Index the problem for the CP-SAT model."""
    hosts = problem.hosts
    resources = problem.resources
    fixed: dict[tuple[int, str], int] = defaultdict(int)
    frozen_hosts: set[int] = set()
    for guest in problem.guests:
        if guest.state is GuestState.FROZEN and guest.current_host is not None:
            if not problem.holds_current_host(guest):
                continue
            h = problem.host_position(guest.current_host)
            frozen_hosts.add(h)
            for resource, amount in guest.demand.items():
                fixed[h, resource] += amount

    # Together groups become one unit, in the order of their first member.
    members: dict[str, list[Guest]] = defaultdict(list)
    order: list[str] = []
    for guest in problem.guests:
        key = f"group:{guest.together}" if guest.together is not None else f"guest:{guest.name}"
        if key not in members:
            order.append(key)
        members[key].append(guest)

    units: list[UnitView] = []
    unit_of: dict[str, int] = {}
    for index, key in enumerate(order):
        guests = tuple(members[key])
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
            for h, host in enumerate(hosts):
                if not all(host_allows(host, guest) for guest in guests):
                    continue
                if all(
                    amount + fixed.get((h, resource), 0) <= host.usable(resource)
                    for resource, amount in demand.items()
                    if amount > 0
                ):
                    candidates.append(h)
        running = [g for g in guests if is_currently_running(problem, g)]
        move_cost = {
            h: sum(g.migration_cost for g in running if g.current_host != hosts[h].name)
            for h in candidates
        }
        units.append(
            UnitView(
                index=index,
                guests=guests,
                demand=dict(demand),
                classes=frozenset(seen),
                weight=sum(g.weight for g in guests),
                candidates=tuple(candidates),
                move_cost=move_cost,
            )
        )
        for guest in guests:
            unit_of[guest.name] = index

    # Guests that boot when placed: all but those running now (they stay or migrate).
    boots: list[Boot] = []
    slot_index: dict[str, int] = {}
    slot_members: list[list[int]] = []
    for guest in problem.guests:
        if is_currently_running(problem, guest):
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

    return ProblemView(
        problem=problem,
        units=tuple(units),
        unit_of=unit_of,
        boots=tuple(boots),
        boot_of={boot.guest.name: i for i, boot in enumerate(boots)},
        slots=tuple(slots),
        fixed=dict(fixed),
        frozen_hosts=frozenset(frozen_hosts),
        online_hosts=tuple(h for h, host in enumerate(hosts) if host.online),
        resources=resources,
    )
