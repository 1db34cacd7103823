"""What every baseline solver shares: the current state, host loads, reasons, the final plan.

A baseline works in three steps:

1. `initial_loads(problem)` splits the guests into those that stay where they run and
   those that need a host, and returns a `HostLoads` already holding what stays (running
   guests kept on their host, frozen copies).
2. The solver picks a host for each `Unit` (a together group or a lone guest) with
   `HostLoads.candidates`, `HostLoads.fits` and `HostLoads.add`, and explains each unit it
   cannot place with `explain_unplaced`. The result is a `Placement`.
3. `finish_plan` turns a `Placement` into a `Plan`: guests that wait for an unplaced guest
   are unplaced too, every guest gets its action, migrations are timed
   (`migration_schedule`: limits, budget, `movable`), the boot-schedule baseline named by
   `SolveOptions.schedule` gives start and ready times, boots waiting for room a
   migration frees, and the objective stages are filled in (no bound: a heuristic proves
   nothing).

`HostLoads` keeps usage in numpy arrays (hosts x resources) so that testing one unit
against every host is a handful of vector operations: 10,000 guests on 1,000 hosts take
about a second.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from placement.indexing import HostIndex
from placement.model import Guest, GuestState, Host, Objective, Problem
from placement.plan import (
    Action,
    Assignment,
    Plan,
    StageResult,
    Status,
    Unplaced,
    expected_action,
)
from placement.solvers import SolveOptions
from placement.solvers.migration_schedule import time_migrations

logger = logging.getLogger(__name__)

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def _frozen_map(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen
class Placement:
    """A placement baseline's answer, before the boot schedule.

    `hosts`: guest name -> chosen host for every guest of the problem (None: unplaced;
    a guest that stays maps to its current host). `reasons`: unplaced guest -> the rule
    that keeps it out.
    """

    hosts: Mapping[str, str | None] = attrs.field(converter=_frozen_map)
    reasons: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)


# --- units -----------------------------------------------------------------------------


@attrs.frozen
class Unit:
    """What a packer places as one: a together group, or a guest outside any group.

    `demand` is the members' summed demand; `classes` the union of their anti-affinity
    classes; `priority` the highest member priority; `label` names the unit in reasons.
    """

    guests: tuple[Guest, ...]
    demand: Mapping[str, int] = attrs.field(converter=_frozen_map)
    classes: frozenset[str]
    priority: int
    label: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(guest.name for guest in self.guests)

    @property
    def leaders(self) -> frozenset[str]:
        """Guests outside the unit that its members follow (`Guest.follows`)."""
        own = set(self.names)
        return frozenset(g.follows for g in self.guests if g.follows and g.follows not in own)

    @property
    def clashing_classes(self) -> frozenset[str]:
        """Anti-affinity classes held by two members: such a unit fits on no host."""
        seen: set[str] = set()
        clashes: set[str] = set()
        for guest in self.guests:
            clashes.update(seen & guest.anti_affinity)
            seen.update(guest.anti_affinity)
        return frozenset(clashes)

    @classmethod
    def of(cls, guests: Sequence[Guest]) -> Unit:
        demand: dict[str, int] = {}
        for guest in guests:
            for resource, amount in guest.demand.items():
                demand[resource] = demand.get(resource, 0) + amount
        group = guests[0].together
        if len(guests) > 1 or group is not None:
            count = f"{len(guests)} guest" + ("s" if len(guests) != 1 else "")
            label = f"together group '{group}' ({count})"
        else:
            label = f"guest {guests[0].name}"
        return cls(
            guests=tuple(guests),
            demand=demand,
            classes=frozenset().union(*(g.anti_affinity for g in guests)),
            priority=max(g.priority for g in guests),
            label=label,
        )


def units_of(problem: Problem, names: Iterable[str]) -> list[Unit]:
    """The units formed by `names`: members of one together group become one unit.

    Units come in the order of their first member in the problem.
    """
    wanted = set(names)
    units: list[Unit] = []
    seen_groups: set[str] = set()
    groups = problem.together_groups()
    for guest in problem.guests:
        if guest.name not in wanted:
            continue
        if guest.together is None:
            units.append(Unit.of([guest]))
        elif guest.together not in seen_groups:
            seen_groups.add(guest.together)
            units.append(Unit.of([g for g in groups[guest.together] if g.name in wanted]))
    return units


# --- host loads ------------------------------------------------------------------------


class HostLoads:
    """Mutable per-host usage: resources used and anti-affinity classes present.

    Built on the problem's `HostIndex` (`placement.indexing`: usable capacity, what
    frozen copies hold, online hosts, label and allowed masks), which it shares and never
    changes; its own are `used` and the class counts. Built empty except for frozen copies
    (which hold their host's resources until the end but count for no anti-affinity
    class); `initial_loads` adds the guests that stay. Hosts and resources are indexed in
    problem order and `problem.resources` order.
    """

    def __init__(self, problem: Problem, index: HostIndex | None = None) -> None:
        self.problem = problem
        self.index = index if index is not None else HostIndex(problem)
        self.resources: tuple[str, ...] = self.index.resources
        self._resource_index = self.index.column
        self.usable: IntArray = self.index.usable
        self.online: BoolArray = self.index.online
        self.used: IntArray = self.index.fixed.copy()
        self._class_count: dict[str, IntArray] = {}
        self._allowed_cache: dict[tuple[Any, ...], BoolArray] = {}
        # Host index of every guest added (staying or placed): a follower's only host.
        self.host_of: dict[str, int] = {}

    # -- vectors and masks

    def demand_vector(self, demand: Mapping[str, int]) -> IntArray:
        """`demand` as a vector over `self.resources`."""
        return self.index.vector(demand)

    def allowed_mask(self, guest: Guest) -> BoolArray:
        """Hosts `model.host_allows` admits for `guest` (state, filters, labels, frozen);
        one mask per distinct set of filters."""
        frozen_on = guest.current_host if guest.state is GuestState.FROZEN else None
        key = (guest.hosts, guest.avoid_hosts, guest.labels, frozen_on)
        mask = self._allowed_cache.get(key)
        if mask is None:
            mask = self.index.allowed(guest)
            self._allowed_cache[key] = mask
        return mask

    def unit_allowed_mask(self, unit: Unit) -> BoolArray:
        """Hosts every member of `unit` is allowed on."""
        mask = self.online.copy()
        for guest in unit.guests:
            mask &= self.allowed_mask(guest)
        return mask

    def class_free_mask(self, classes: Iterable[str]) -> BoolArray:
        """Hosts holding no guest of any of `classes`."""
        mask = np.ones(len(self.problem.hosts), dtype=bool)
        for name in classes:
            count = self._class_count.get(name)
            if count is not None:
                mask &= count == 0
        return mask

    def capacity_mask(self, demand: Mapping[str, int]) -> BoolArray:
        """Hosts with room for `demand` on every resource it asks for (> 0)."""
        mask = np.ones(len(self.problem.hosts), dtype=bool)
        for resource, amount in demand.items():
            if amount > 0:
                r = self._resource_index[resource]
                mask &= self.used[:, r] + amount <= self.usable[:, r]
        return mask

    def follow_mask(self, unit: Unit) -> BoolArray:
        """Hosts where every member that follows a guest outside the unit finds that guest
        (none while it is not placed: leaders are placed first, see `leaders_first`)."""
        mask = np.ones(len(self.problem.hosts), dtype=bool)
        for leader in unit.leaders:
            h = self.host_of.get(leader)
            only = np.zeros(len(self.problem.hosts), dtype=bool)
            if h is not None:
                only[h] = True
            mask &= only
        return mask

    def candidates(self, unit: Unit | Guest) -> BoolArray:
        """Hosts that can take `unit` now: allowed, beside the guests it follows, no
        anti-affinity clash, room enough."""
        unit = _as_unit(unit)
        if unit.clashing_classes:
            return np.zeros(len(self.problem.hosts), dtype=bool)
        mask = self.unit_allowed_mask(unit) & self.class_free_mask(unit.classes)
        if unit.leaders:
            mask &= self.follow_mask(unit)
        return mask & self.capacity_mask(unit.demand)

    # -- single-host queries

    def fits(self, unit: Unit | Guest, host: str) -> bool:
        """Whether `host` can take `unit` now (every placement rule but `together`
        across units, which a `Unit` carries by construction)."""
        unit = _as_unit(unit)
        if unit.clashing_classes:
            return False
        h = self.problem.host_position(host)
        for guest in unit.guests:
            if not self.allowed_mask(guest)[h]:
                return False
        if any(self.host_of.get(leader) != h for leader in unit.leaders):
            return False
        for name in unit.classes:
            count = self._class_count.get(name)
            if count is not None and count[h] > 0:
                return False
        for resource, amount in unit.demand.items():
            r = self._resource_index[resource]
            if amount > 0 and self.used[h, r] + amount > self.usable[h, r]:
                return False
        return True

    def free(self, host: str, resource: str) -> int:
        """Usable minus used of `resource` on `host` (negative when overloaded)."""
        r = self._resource_index.get(resource)
        h = self.problem.host_position(host)
        if r is None:
            return 0
        return int(self.usable[h, r] - self.used[h, r])

    def used_amount(self, host: str, resource: str) -> int:
        r = self._resource_index.get(resource)
        return 0 if r is None else int(self.used[self.problem.host_position(host), r])

    def usable_amount(self, host: str, resource: str) -> int:
        r = self._resource_index.get(resource)
        return 0 if r is None else int(self.usable[self.problem.host_position(host), r])

    def holds_class(self, host: str, name: str) -> bool:
        """Whether a placed or staying guest of anti-affinity class `name` is on `host`."""
        count = self._class_count.get(name)
        return count is not None and bool(count[self.problem.host_position(host)] > 0)

    # -- changes

    def add(self, unit: Unit | Guest, host: str) -> None:
        """Put `unit` on `host` (no check: call `fits` or `candidates` first)."""
        self._change(_as_unit(unit), host, +1)

    def remove(self, unit: Unit | Guest, host: str) -> None:
        """Take `unit` off `host` again."""
        self._change(_as_unit(unit), host, -1)

    def _change(self, unit: Unit, host: str, sign: int) -> None:
        h = self.problem.host_position(host)
        self.used[h] += sign * self.demand_vector(unit.demand)
        for guest in unit.guests:
            if sign > 0:
                self.host_of[guest.name] = h
            elif self.host_of.get(guest.name) == h:
                del self.host_of[guest.name]
            for name in guest.anti_affinity:
                count = self._class_count.get(name)
                if count is None:
                    count = np.zeros(len(self.problem.hosts), dtype=np.int64)
                    self._class_count[name] = count
                count[h] += sign


def _as_unit(unit: Unit | Guest) -> Unit:
    return Unit.of([unit]) if isinstance(unit, Guest) else unit


# --- who stays, who needs a host ---------------------------------------------------------


@attrs.frozen
class Split:
    """`stay`: guests kept on their current host (name -> host); `place`: guests that need
    a host, in problem order; `stop`: running guests that can neither stay nor move (not
    `movable`) -> the reason."""

    stay: Mapping[str, str] = attrs.field(converter=_frozen_map)
    place: tuple[str, ...]
    stop: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)


def initial_loads(problem: Problem) -> tuple[HostLoads, Split]:
    """The loads baselines start from, and which guests stay or need a host.

    A guest stays when it runs on an online host that its own rules allow (for a together
    group: every member runs, all on one such host). Candidates are admitted in decreasing
    priority; one that would overload its host or share it with a guest of its
    anti-affinity class is moved instead, so the kept state itself obeys every rule.
    Everything else needs a host: stopped guests, guests of failed hosts, guests on hosts
    in maintenance, frozen guests (their replacement, which `host_allows` keeps off the
    frozen copy's host). Frozen copies are in the loads from the start. Within a priority,
    guests that cannot be live-migrated (`movable: false`) are admitted first; one that
    cannot stay all the same is to be stopped (`Split.stop`), not placed.
    """
    loads = HostLoads(problem)
    candidates: list[tuple[Unit, str]] = []
    for unit in units_of(problem, (g.name for g in problem.guests)):
        hosts = {g.current_host for g in unit.guests}
        if len(hosts) != 1 or not all(g.state is GuestState.RUNNING for g in unit.guests):
            continue
        host_name = next(iter(hosts))
        if host_name is None or not problem.host(host_name).online:
            continue
        candidates.append((unit, host_name))
    # Stable: problem order within ties. A guest may stay beside the guest it follows
    # only if that one stays: leaders are admitted first.
    depth = follow_depth(problem)
    candidates.sort(
        key=lambda item: (
            max(depth[name] for name in item[0].names),
            -item[0].priority,
            _movable(item[0]),
        )
    )
    stay: dict[str, str] = {}
    for unit, host_name in candidates:
        if loads.fits(unit, host_name):
            loads.add(unit, host_name)
            stay.update((name, host_name) for name in unit.names)
        else:
            logger.debug("%s cannot stay on %s; it will be placed again", unit.label, host_name)
    stop = {
        g.name: _stuck_reason(problem, g, loads)
        for g in problem.guests
        if g.name not in stay and problem.runs_now(g) and not g.movable
    }
    place = tuple(g.name for g in problem.guests if g.name not in stay and g.name not in stop)
    return loads, Split(stay=stay, place=place, stop=stop)


def follow_depth(problem: Problem) -> dict[str, int]:
    """Guest -> how many `follows` links lead from it to a guest that follows none (0 for
    a guest that follows none, or follows a member of its own together group)."""
    depth: dict[str, int] = {}

    def of(guest: Guest) -> int:
        if guest.name not in depth:
            leader = guest.follows
            if leader is None or (
                guest.together is not None and problem.guest(leader).together == guest.together
            ):
                depth[guest.name] = 0
            else:
                depth[guest.name] = -1  # (the model refuses loops; this guards recursion)
                depth[guest.name] = 1 + max(of(problem.guest(leader)), 0)
        return depth[guest.name]

    for guest in problem.guests:
        of(guest)
    return depth


def leaders_first(problem: Problem, units: Sequence[Unit]) -> list[Unit]:
    """`units` in their order, except that a unit comes after the units holding the guests
    it follows (stable: a packer's order holds among leaders and among followers)."""
    depth = follow_depth(problem)
    return sorted(units, key=lambda unit: max(depth[name] for name in unit.names))


def _movable(unit: Unit) -> bool:
    return all(guest.movable for guest in unit.guests)


def _stuck_reason(problem: Problem, guest: Guest, loads: HostLoads) -> str:
    """Why a running guest that cannot be live-migrated cannot stay either."""
    host_name = guest.current_host or ""
    host = problem.host(host_name)
    if not host.online:
        why = f"its host {host_name} is in {host.state.value}"
    elif not loads.allowed_mask(guest)[problem.host_position(host_name)]:
        why = f"its own host rules exclude {host_name}"
    else:
        why = f"{host_name} has no room for it beside the guests kept there"
    return f"not movable (movable: false) and cannot stay: {why}; it is stopped"


def split_guests(problem: Problem) -> Split:
    """Which guests keep their host and which need one (see `initial_loads`)."""
    return initial_loads(problem)[1]


def guests_to_place(problem: Problem) -> tuple[Guest, ...]:
    """The guests that need a host, in problem order (see `initial_loads` for who stays)."""
    return tuple(problem.guest(name) for name in split_guests(problem).place)


def unit_size(problem: Problem, unit: Unit) -> float:
    """The unit's demand, each resource divided by its total usable amount on online hosts,
    summed: the 'size' packers sort by so that RAM and vCPUs weigh alike."""
    size = 0.0
    for resource, amount in unit.demand.items():
        total = sum(host.usable(resource) for host in problem.hosts if host.online)
        size += amount / total if total > 0 else float(amount)
    return size


def packing_order(problem: Problem, units: Sequence[Unit]) -> list[Unit]:
    """Decreasing priority, then decreasing normalised size, then problem order."""
    totals = {r: sum(h.usable(r) for h in problem.hosts if h.online) for r in problem.resources}

    def size(unit: Unit) -> float:
        return sum(
            amount / totals[r] if totals.get(r, 0) > 0 else float(amount)
            for r, amount in unit.demand.items()
        )

    return sorted(units, key=lambda unit: (-unit.priority, -size(unit)))


# --- reasons ---------------------------------------------------------------------------


def format_amount(resource: str, amount: int) -> str:
    """A human amount: `ram_mib` in GiB ('96 GiB RAM'), others as '4 vcpus'."""
    if resource == "ram_mib":
        if amount >= 1024 or amount == 0:
            gib = amount / 1024
            text = f"{gib:.0f}" if gib == int(gib) else f"{gib:.1f}"
            return f"{text} GiB RAM"
        return f"{amount} MiB RAM"
    return f"{amount} {resource}"


def _names_text(names: Iterable[str], limit: int = 5) -> str:
    items = sorted(names)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _filter_reason(problem: Problem, guest: Guest) -> str:
    """Why no online host admits `guest` by its own rules: the first filter that empties."""
    hosts: list[Host] = [h for h in problem.hosts if h.online]
    if not hosts:
        return "no online host"
    if guest.hosts is not None:
        hosts = [h for h in hosts if h.name in guest.hosts]
        if not hosts:
            return f"none of its allowed hosts ({_names_text(guest.hosts)}) is online"
    if guest.avoid_hosts:
        hosts = [h for h in hosts if h.name not in guest.avoid_hosts]
        if not hosts:
            return "every online host it may use is in its avoided hosts"
    if guest.labels:
        hosts = [h for h in hosts if guest.labels <= h.labels]
        if not hosts:
            return f"no online allowed host carries labels {_names_text(guest.labels)}"
    return "its only allowed online host holds its frozen copy"


def explain_unplaced(problem: Problem, loads: HostLoads, guests: Sequence[Guest]) -> str:
    """Name the rule that keeps `guests` (one unit: a lone guest or a together group) off
    every host, given the current `loads`.

    Checked in order: the guests' own host rules (state, allowed, avoided, labels, frozen
    copy), anti-affinity, then capacity. Capacity names the binding resource
    ("needs 96 GiB RAM; largest free on allowed hosts: 64 GiB RAM"), or, when each resource
    alone fits somewhere, says that no host has all of them free at once.
    """
    unit = Unit.of(guests)
    who = "" if len(unit.guests) == 1 else f"{unit.label}: "
    for guest in unit.guests:
        if not loads.allowed_mask(guest).any():
            prefix = "" if len(unit.guests) == 1 else f"{who}member {guest.name}: "
            return prefix + _filter_reason(problem, guest)
    allowed = loads.unit_allowed_mask(unit)
    if not allowed.any():
        return f"{who}no online host is allowed for every member"
    for leader in sorted(unit.leaders):
        h = loads.host_of.get(leader)
        if h is None:
            return f"{who}follows {leader}, which is not placed"
        if not allowed[h]:
            return f"{who}follows {leader}, whose host {problem.hosts[h].name} it may not use"
        allowed = allowed & loads.follow_mask(unit)
        who = f"{who}follows {leader} on {problem.hosts[h].name}: "
    clashes = unit.clashing_classes
    if clashes:
        return (
            f"{who}two members share anti-affinity class {_names_text(clashes)}, "
            "so they cannot run on one host"
        )
    usable_hosts = allowed & loads.class_free_mask(unit.classes)
    if not usable_hosts.any():
        busy = [
            name
            for name in sorted(unit.classes)
            if (allowed & ~loads.class_free_mask([name])).any()
        ]
        return (
            f"{who}anti-affinity: every allowed host already holds a guest of class "
            f"{_names_text(busy)}"
        )
    hosts = np.flatnonzero(usable_hosts)
    asked = [(r, a) for r, a in sorted(unit.demand.items()) if a > 0]
    for resource, amount in asked:
        r = loads.resources.index(resource)
        largest = int((loads.usable[hosts, r] - loads.used[hosts, r]).max())
        if largest < amount:
            return (
                f"{who}needs {format_amount(resource, amount)}; largest free on allowed "
                f"hosts: {format_amount(resource, max(largest, 0))}"
            )
    needs = " and ".join(format_amount(r, a) for r, a in asked)
    return f"{who}needs {needs} at once; no allowed host has all of it free"


# --- the plan --------------------------------------------------------------------------


def _cascade(problem: Problem, hosts: dict[str, str | None], reasons: dict[str, str]) -> None:
    """Unplace what cannot run because of what is unplaced, until nothing changes.

    A guest that would start and waits (`after`, directly or through others) for an
    unplaced guest is unplaced; so is a guest that follows an unplaced guest; a together
    group with an unplaced member is unplaced whole.
    """
    groups = problem.together_groups()
    dependants: dict[str, list[Guest]] = {}
    followers: dict[str, list[Guest]] = {}
    for guest in problem.guests:
        for dependency in guest.boot.after:
            dependants.setdefault(dependency, []).append(guest)
        if guest.follows is not None:
            followers.setdefault(guest.follows, []).append(guest)
    queue = [name for name, host in hosts.items() if host is None]
    while queue:
        name = queue.pop()
        for guest in followers.get(name, ()):
            if hosts.get(guest.name) is not None:
                hosts[guest.name] = None
                reasons[guest.name] = f"follows unplaced guest {name}"
                queue.append(guest.name)
        for guest in dependants.get(name, ()):
            if hosts.get(guest.name) is None or problem.runs_now(guest):
                continue
            hosts[guest.name] = None
            reasons[guest.name] = f"depends on unplaced guest {name}"
            queue.append(guest.name)
        together = problem.guest(name).together
        if together is not None:
            for mate in groups[together]:
                if hosts.get(mate.name) is not None:
                    hosts[mate.name] = None
                    reasons[mate.name] = f"together group '{together}': member {name} is unplaced"
                    queue.append(mate.name)


def finish_plan(
    problem: Problem,
    placement: Placement,
    options: SolveOptions,
    solver_name: str,
    started_at: float,
) -> Plan:
    """Turn a placement into a complete plan.

    A guest missing from `placement.hosts` keeps its current host when `initial_loads`
    lets it stay, and is unplaced otherwise. Guests that wait for an unplaced guest (or
    share a together group with one) are unplaced. The schedule baseline
    `options.schedule` (`list`, `all-at-once`, `serial:SECONDS`, `batch:N`) times the
    starts after `migration_schedule.time_migrations` has timed the moves (a running
    guest that cannot move after all is stopped with its reason, and boots that need
    room a move frees start after it); a guest it cannot schedule (the list scheduler,
    within the horizon) is unplaced with its reason, which may unplace others in turn.
    Stages carry the objective values, no bound, no gap; status FEASIBLE.
    `started_at` is a `time.perf_counter()` reading taken when the solve began.
    Raises ValueError for a bad schedule spec.
    """
    from placement.solvers.schedule import parse_schedule  # schedule.py imports this module

    scheduler = parse_schedule(options.schedule)
    split = split_guests(problem)
    stay = split.stay if len(placement.hosts) < len(problem.guests) else {}
    hosts: dict[str, str | None] = {
        g.name: placement.hosts[g.name] if g.name in placement.hosts else stay.get(g.name)
        for g in problem.guests
    }
    reasons: dict[str, str] = {}
    for name, host in hosts.items():
        if host is None:
            reasons[name] = (
                placement.reasons.get(name)
                or split.stop.get(name)
                or "no host chosen by the solver"
            )
    _cascade(problem, hosts, reasons)
    while True:
        moves = time_migrations(problem, hosts)
        if moves.stopped:
            for name, reason in moves.stopped.items():
                hosts[name] = None
                reasons[name] = reason
            _cascade(problem, hosts, reasons)
            continue
        timing = scheduler(problem, hosts, moves.not_before)
        if not timing.unscheduled:
            break
        for name, reason in timing.unscheduled.items():
            hosts[name] = None
            reasons[name] = reason
        _cascade(problem, hosts, reasons)

    assignments: list[Assignment] = []
    for guest in problem.guests:
        host = hosts[guest.name]
        action = expected_action(problem, guest, host)
        start_s: int | None = None
        ready_s: int | None = None
        if action is Action.START:
            start_s = timing.starts[guest.name]
            ready_s = start_s + guest.boot.duration_s
        elif action is Action.MIGRATE:
            start_s = moves.starts[guest.name]
            ready_s = start_s + problem.migration_duration(guest)
        assignments.append(Assignment(guest.name, host, action, start_s, ready_s))
    unplaced: list[Unplaced] = [
        Unplaced(g.name, reasons[g.name]) for g in problem.guests if hosts[g.name] is None
    ]
    draft = Plan(Status.FEASIBLE, solver_name, 0.0, assignments, unplaced)
    values = objective_values(problem, draft)
    stages: list[StageResult] = [
        StageResult(name=o.value, value=values[o.value]) for o in problem.objective
    ]
    runtime_s = round(time.perf_counter() - started_at, 6)
    return Plan(Status.FEASIBLE, solver_name, runtime_s, assignments, unplaced, stages)


def objective_values(problem: Problem, plan: Plan) -> dict[str, float]:
    """Every objective's value for `plan`, as the checker computes it."""
    from placement.check import objective_values as checked_values

    return checked_values(problem, plan)


def better(problem: Problem, a: Plan, b: Plan) -> bool:
    """Whether plan `a` is lexicographically better than `b` on the problem's stages (by
    the values in their `stages`)."""
    for stage in problem.objective:
        value_a = stage_value(a, stage)
        value_b = stage_value(b, stage)
        if abs(value_a - value_b) > 1e-9:
            return value_a > value_b if stage.maximise else value_a < value_b
    return False


def stage_value(plan: Plan, stage: Objective) -> float:
    """The plan's value of `stage` (0 when the plan does not carry it)."""
    result = plan.stage(stage.value)
    return result.value if result is not None else 0.0
