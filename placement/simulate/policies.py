"""Policies: who starts when, decided from what a manager can see during a recovery.

A policy runs a plan's placement (which guest goes to which host) in its own way. The
same plan can be run open-loop (the script of its start times), readiness-gated (its
order as a partial order), or the way a peer tool would run it (all at once, a serial
loop with a delay, Pacemaker's batch limit counting started actions, Proxmox HA's four
workers per node, vSphere's priority groups waiting for readiness). Each policy is a
small object: `controller(problem, plan)` gives one run's `Controller`, which the engine
asks at instant 0, after every batch of events and at the wake-up instants it asks for.
The closed-loop executor (not built yet) is to run the same controllers against real
tools: a controller reads and starts through the `World` it is given, nothing else.

What a policy sees is what a manager knows: which guests it started, which start
commands returned, which guests are ready, failed or lost, which hosts are down, and the
*declared* boot loads of the guests still booting (their boot profiles) against the
limits. It never sees the physical demand on the SAN.

docs/simulation.md describes each policy and the source it is re-created from.
"""

from __future__ import annotations

import abc
import bisect
import heapq
import math
from collections.abc import Callable, Sequence

import attrs

from placement.model import Problem
from placement.plan import Action, Plan
from placement.simulate.engine import Controller, Decision
from placement.simulate.ledger import STARTABLE, Event, EventKind, GuestStatus, Ledger

#: Statuses after which a guest no longer holds up the guests ordered after it.
_SETTLED = (GuestStatus.READY, GuestStatus.GAVE_UP, GuestStatus.LOST)


@attrs.frozen
class Unit:
    """Guests that start at one instant (a start group's members, or one guest), with
    their planned hosts and times; `after`: guest indices in the recovery that every
    member waits for."""

    index: int
    guests: tuple[int, ...]
    hosts: tuple[int, ...]
    start_s: float
    ready_s: float
    priority: int
    group: str | None
    after: tuple[int, ...]


# The last few (problem, plan) pairs' units: a Monte Carlo study builds one controller
# per run of the same plan, and working out the units is most of a small run's cost.
# Keyed by identity, holding the objects so that the ids stay theirs.
_UNIT_CACHE: dict[tuple[int, int], tuple[Problem, Plan, list[Unit], _PartialOrder]] = {}
_UNIT_CACHE_SIZE = 8


def _cached(problem: Problem, plan: Plan) -> tuple[list[Unit], _PartialOrder]:
    key = (id(problem), id(plan))
    found = _UNIT_CACHE.get(key)
    if found is None or found[0] is not problem or found[1] is not plan:
        units = _plan_units(problem, plan)
        order = _PartialOrder.of(problem, units)
        found = (problem, plan, units, order)
        while len(_UNIT_CACHE) >= _UNIT_CACHE_SIZE:
            _UNIT_CACHE.pop(next(iter(_UNIT_CACHE)))
        _UNIT_CACHE[key] = found
    return found[2], found[3]


def plan_units(problem: Problem, plan: Plan) -> list[Unit]:
    """The plan's starts and migrations as units, in the plan's order (planned start, then
    planned ready, then higher priority first, then problem order, never before a unit
    it starts after)."""
    return list(_cached(problem, plan)[0])


def _plan_units(problem: Problem, plan: Plan) -> list[Unit]:
    members: dict[object, list[tuple[int, int, float, float]]] = {}
    for assignment in plan.assignments:
        if assignment.action not in (Action.START, Action.MIGRATE) or assignment.host is None:
            continue
        guest_index = problem.guest_position(assignment.guest)
        guest = problem.guests[guest_index]
        start = float(assignment.start_s or 0)
        ready = float(assignment.ready_s if assignment.ready_s is not None else start)
        key: object = (
            ("group", guest.boot.group)
            if guest.boot.group is not None and assignment.action is Action.START
            else ("guest", guest_index)
        )
        members.setdefault(key, []).append(
            (guest_index, problem.host_position(assignment.host), start, ready)
        )
    recovering = {g for items in members.values() for g, _, _, _ in items}
    starting = {
        problem.guest_position(a.guest) for a in plan.assignments if a.action is Action.START
    }
    units = []
    for items in members.values():
        guests = tuple(g for g, _, _, _ in items)
        # `after` orders boots; a migration waits for nothing.
        after = sorted(
            {
                problem.guest_position(name)
                for g in guests
                if g in starting
                for name in problem.guests[g].boot.after
                if problem.has_guest(name) and problem.guest_position(name) in recovering
            }
            - set(guests)
        )
        units.append(
            Unit(
                index=0,
                guests=guests,
                hosts=tuple(h for _, h, _, _ in items),
                start_s=min(s for _, _, s, _ in items),
                ready_s=max(r for _, _, _, r in items),
                priority=max(problem.guests[g].priority for g in guests),
                group=problem.guests[guests[0]].boot.group if len(guests) > 1 else None,
                after=tuple(after),
            )
        )
    return [attrs.evolve(unit, index=position) for position, unit in enumerate(_ordered(units))]


def _ordered(units: list[Unit]) -> list[Unit]:
    """Units by planned start, then ready, higher priority, problem order, but never a
    unit before one it starts after (boots of no duration tie on every time)."""
    unit_of_guest = {g: position for position, unit in enumerate(units) for g in unit.guests}
    blocking = [0] * len(units)
    unblocks: list[list[int]] = [[] for _ in units]
    for position, unit in enumerate(units):
        for dependency in {unit_of_guest[g] for g in unit.after}:
            blocking[position] += 1
            unblocks[dependency].append(position)

    def key(position: int) -> tuple[float, float, int, int, int]:
        unit = units[position]
        return (unit.start_s, unit.ready_s, -unit.priority, unit.guests[0], position)

    heap = [key(p) for p, count in enumerate(blocking) if count == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        position = heapq.heappop(heap)[-1]
        order.append(units[position])
        for later in unblocks[position]:
            blocking[later] -= 1
            if blocking[later] == 0:
                heapq.heappush(heap, key(later))
    return order


class Policy(abc.ABC):
    """A way to run a plan. `name` is what `placement simulate --policy` takes."""

    name: str = ""

    @abc.abstractmethod
    def controller(self, problem: Problem, plan: Plan) -> Controller:
        """A fresh controller for one run of `plan`."""


def _deps_met(world: Ledger, unit: Unit, need_ready: bool) -> bool:
    """Whether every guest the unit starts after is ready (or, for tools that order on
    the start action, whose start returned). A dependency that will never be ready
    (gave up, lost) no longer holds the unit back."""
    for dependency in unit.after:
        status = world.status[dependency]
        if status in _SETTLED:
            continue
        if need_ready or not (status is GuestStatus.BOOTING and world.returned[dependency]):
            return False
    return True


class _ListController:
    """The frame most policies share: units wait in order; at each decision the pending
    units are scanned and those the policy's gate admits start now."""

    def __init__(self, units: Sequence[Unit], need_ready: bool) -> None:
        self.pending: list[Unit] = list(units)
        self.need_ready = need_ready

    def gate(self, world: Ledger, unit: Unit) -> bool | None:
        """True: start now; False: not now, look at later units; None: not now, and
        no later unit either (the policy's order is strict)."""
        raise NotImplementedError

    def wake(self, world: Ledger) -> float | None:
        return None

    def decide(self, world: Ledger, events: Sequence[Event]) -> Decision:
        kept: list[Unit] = []
        stop = False
        for position, unit in enumerate(self.pending):
            if stop:
                kept.extend(self.pending[position:])
                break
            if not _deps_met(world, unit, self.need_ready):
                kept.append(unit)
                continue
            verdict = self.gate(world, unit)
            if verdict:
                for guest, host in zip(unit.guests, unit.hosts, strict=True):
                    world.start(guest, host)
                self.started(world, unit)
            else:
                kept.append(unit)
                stop = verdict is None
        self.pending = kept
        # The starts were carried out above, so that each gate saw the ones before it.
        return Decision((), self.wake(world) if self.pending else None)

    def started(self, world: Ledger, unit: Unit) -> None:
        """Hook: the unit has just started."""


# --- our plan's own ways -----------------------------------------------------------------


class _OpenLoop:
    """Starts each unit at its planned instant: a pointer into the units by start time,
    woken at the next one; events change nothing."""

    watches_events = False
    watches_returns = False

    def __init__(self, units: Sequence[Unit]) -> None:
        self.units = sorted(units, key=lambda u: (u.start_s, u.index))
        self.next = 0

    def decide(self, world: Ledger, events: Sequence[Event]) -> Decision:
        units = self.units
        while self.next < len(units) and units[self.next].start_s <= world.now + 1e-9:
            unit = units[self.next]
            for guest, host in zip(unit.guests, unit.hosts, strict=True):
                world.start(guest, host)
            self.next += 1
        return Decision((), units[self.next].start_s if self.next < len(units) else None)


@attrs.frozen
class OpenLoop(Policy):
    """The plan's start times as given: a script of starts and sleeps. It never waits for
    a guest to be ready and never reacts to what happens."""

    name: str = "open-loop"

    def controller(self, problem: Problem, plan: Plan) -> Controller:
        # Open loop follows the clock alone: its dependencies are in the times already.
        return _OpenLoop(plan_units(problem, plan))


def _competition_keys(problem: Problem, units: Sequence[Unit]) -> list[set[tuple[str, int]]]:
    """What each unit competes for: the pools it loads, its hosts' boot limits (boot CPU
    or start slots), the cluster's batch limit."""
    pools = {name: p for p, name in enumerate(problem.boot_pools)}
    limit = problem.schedule.max_starts
    keys: list[set[tuple[str, int]]] = []
    for unit in units:
        key: set[tuple[str, int]] = set()
        for guest_index, host_index in zip(unit.guests, unit.hosts, strict=True):
            guest = problem.guests[guest_index]
            host = problem.hosts[host_index]
            key.update(
                ("pool", pools[name])
                for name, load in guest.boot.load.items()
                if load > 0 and name in pools
            )
            if host.boot.max_starts is not None or (host.boot.cpu is not None and guest.boot.cpu):
                key.add(("host", host_index))
        if limit is not None:
            key.add(("batch", 0))
        keys.append(key)
    return keys


@attrs.frozen
class _PartialOrder:
    """The plan as a partial order, worked out once per plan.

    A unit waits, for each thing it competes for (a key), for every unit of that key the
    plan has ready by its start (earlier in the plan's order at a tie): in the key's
    users sorted by (planned ready, order), a *prefix*. So a unit needs, per key, the
    key's settled prefix to reach a length, and its `after` dependencies' units to
    settle. Per key the waiting units are sorted by that length, so settling a unit
    costs O(keys it has + units it releases), never the O(n^2) edges of the relation.
    """

    key_position: tuple[dict[int, int], ...]  # per key: unit -> its place in the prefix order
    key_sizes: tuple[int, ...]
    key_waiters: tuple[tuple[tuple[int, int], ...], ...]  # per key: (length needed, unit)
    unit_keys: tuple[tuple[int, ...], ...]
    pending: tuple[int, ...]  # per unit: keys it needs a prefix of + `after` units
    after_successors: tuple[tuple[int, ...], ...]
    unit_of_guest: dict[int, int]
    shared_pools: frozenset[int]

    @classmethod
    def of(cls, problem: Problem, units: Sequence[Unit]) -> _PartialOrder:
        keys = _competition_keys(problem, units)
        names = sorted({k for key in keys for k in key})
        number = {name: k for k, name in enumerate(names)}
        unit_keys = tuple(tuple(sorted(number[k] for k in key)) for key in keys)
        users: list[list[int]] = [[] for _ in names]
        for unit in units:
            for k in unit_keys[unit.index]:
                users[k].append(unit.index)
        pending = [0] * len(units)
        waiters: list[list[tuple[int, int]]] = [[] for _ in names]
        for k, order in enumerate(users):
            order.sort(key=lambda u: (units[u].ready_s, u))
            marks = [(units[u].ready_s, u) for u in order]
            for member in order:
                # Units ready by this one's start; at a tie only those earlier in the
                # plan's order (boots of no duration would wait for each other).
                needed = bisect.bisect_left(marks, (units[member].start_s, member))
                if needed > 0:
                    waiters[k].append((needed, member))
                    pending[member] += 1
            waiters[k].sort()
        unit_of_guest = {g: unit.index for unit in units for g in unit.guests}
        after_successors: list[list[int]] = [[] for _ in units]
        for unit in units:
            for dependency in {unit_of_guest[g] for g in unit.after}:
                after_successors[dependency].append(unit.index)
                pending[unit.index] += 1
        pool_sets = [{k for kind, k in key if kind == "pool"} for key in keys]
        shared = frozenset.intersection(*map(frozenset, pool_sets)) if pool_sets else frozenset()
        return cls(
            key_position=tuple({u: i for i, u in enumerate(order)} for order in users),
            key_sizes=tuple(len(order) for order in users),
            key_waiters=tuple(tuple(w) for w in waiters),
            unit_keys=unit_keys,
            pending=tuple(pending),
            after_successors=tuple(tuple(s) for s in after_successors),
            unit_of_guest=unit_of_guest,
            shared_pools=shared,
        )


class _ReadinessGated:
    """Units become *eligible* when every unit they wait for has settled; each decision
    scans the eligible ones in the plan's order, so a decision costs what is eligible,
    not what is pending."""

    watches_returns = False

    def __init__(
        self,
        units: Sequence[Unit],
        order: _PartialOrder,
        stagger_s: int,
        problem: Problem,
        backfill: bool,
    ) -> None:
        self.units = units
        self.order = order
        self.pending = list(order.pending)
        self.prefix = [0] * len(order.key_sizes)  # per key: the settled prefix's length
        self.settled_at = [bytearray(size) for size in order.key_sizes]
        self.next_waiter = [0] * len(order.key_sizes)
        self.unsettled = [len(unit.guests) for unit in units]
        self.eligible = [unit.index for unit in units if self.pending[unit.index] == 0]
        self.queued = [self.pending[unit.index] == 0 for unit in units]
        self.started = 0
        heapq.heapify(self.eligible)
        # With backfill, a unit whose planned start has passed may also start while what
        # the plan had before it still boots, if the declared loads leave it room.
        self.by_start = sorted(units, key=lambda u: (u.start_s, u.index)) if backfill else []
        self.next_by_start = 0
        self.stagger_s = stagger_s
        self.problem = problem
        self.blocked: set[tuple[str, int]] = set()
        self.settled: set[int] = set()
        self.stagger_wake: float | None = None

    def _release(self, unit: int) -> None:
        self.pending[unit] -= 1
        if self.pending[unit] == 0 and not self.queued[unit]:
            self.queued[unit] = True
            heapq.heappush(self.eligible, unit)

    def _settle(self, guest: int) -> None:
        order = self.order
        index = order.unit_of_guest.get(guest)
        if index is None:
            return
        self.unsettled[index] -= 1
        if self.unsettled[index]:
            return
        for successor in order.after_successors[index]:
            self._release(successor)
        for k in order.unit_keys[index]:
            marks = self.settled_at[k]
            marks[order.key_position[k][index]] = 1
            length = self.prefix[k]
            while length < len(marks) and marks[length]:
                length += 1
            self.prefix[k] = length
            waiters = order.key_waiters[k]
            position = self.next_waiter[k]
            while position < len(waiters) and waiters[position][0] <= length:
                self._release(waiters[position][1])
                position += 1
            self.next_waiter[k] = position

    def decide(self, world: Ledger, events: Sequence[Event]) -> Decision:
        for event in events:
            settles = event.kind in (EventKind.READY, EventKind.GAVE_UP, EventKind.LOST)
            # A guest settles once: lost after it was ready changes nothing here.
            if settles and event.guest is not None and event.guest not in self.settled:
                self.settled.add(event.guest)
                self._settle(event.guest)
        self.blocked = set()
        self.stagger_wake = None
        while (
            self.next_by_start < len(self.by_start)
            and self.by_start[self.next_by_start].start_s <= world.now + 1e-9
        ):
            unit = self.by_start[self.next_by_start]
            if self.queued[unit.index]:
                self.next_by_start += 1
            elif _deps_met(world, unit, need_ready=True):
                self.queued[unit.index] = True
                heapq.heappush(self.eligible, unit.index)
                self.next_by_start += 1
            else:
                break  # its dependencies are not ready: it comes in through them
        self._scan(world)
        if (
            not world.booting_total
            and not self.eligible
            and self.stagger_wake is None
            and self.started < len(self.units)
        ):
            # Nothing boots and nothing may start: a plan that breaks its own `after`
            # order can make units wait for each other. The first unit not started goes.
            first = min(u for u in range(len(self.units)) if not self.queued[u])
            self.queued[first] = True
            heapq.heappush(self.eligible, first)
            self._scan(world)
        wake = self.stagger_wake
        if self.next_by_start < len(self.by_start):
            planned = self.by_start[self.next_by_start].start_s
            if planned > world.now + 1e-9:
                wake = planned if wake is None else min(wake, planned)
        return Decision((), wake)

    def adopt(self, world: Ledger) -> None:
        """Take over a recovery under way (after a re-plan): units whose guests have all
        begun count as started, and those settled (ready, given up, lost) as settled, so
        the plan's order waits only for what is still to come."""
        for unit in self.units:
            if any(world.status[g] in STARTABLE for g in unit.guests):
                continue
            if not self.queued[unit.index]:
                self.queued[unit.index] = True
            else:
                self.eligible.remove(unit.index)
                heapq.heapify(self.eligible)
            self.started += 1
            for guest in unit.guests:
                settled = world.status[guest] in (*_SETTLED, GuestStatus.RUNNING)
                if settled and guest not in self.settled:
                    self.settled.add(guest)
                    self._settle(guest)

    def _scan(self, world: Ledger) -> None:
        """Start the eligible units the gate admits, in the plan's order."""
        kept: list[int] = []
        while self.eligible:
            index = heapq.heappop(self.eligible)
            verdict = self.gate(world, self.units[index])
            if verdict:
                unit = self.units[index]
                for guest, host in zip(unit.guests, unit.hosts, strict=True):
                    world.start(guest, host)
                self.started += 1
                continue
            kept.append(index)
            if verdict is None or any(("pool", p) in self.blocked for p in self.order.shared_pools):
                # Nothing later can start now: every unit loads a pool that is full.
                break
        for index in kept:
            heapq.heappush(self.eligible, index)

    def _resources(self, world: Ledger, unit: Unit) -> set[tuple[str, int]]:
        found = {("pool", pool) for g in unit.guests for pool, _ in world.pool_loads(g)}
        found.update(("host", h) for h in unit.hosts)
        return found

    def gate(self, world: Ledger, unit: Unit) -> bool | None:
        resources = self._resources(world, unit)
        if resources & self.blocked:
            return False
        last = world.last_start_s
        if (
            last is not None
            and (unit.group is None or unit.group != world.last_start_group)
            and world.now + 1e-9 < last + self.stagger_s
        ):
            # Every later unit waits for the same gap: ask again when it has passed.
            self.stagger_wake = last + self.stagger_s
            return None
        if not self._fits(world, unit):
            # Later units that need what this one waits for do not overtake it.
            self.blocked.update(resources)
            return False
        return True

    def _fits(self, world: Ledger, unit: Unit) -> bool:
        if len(unit.guests) == 1:
            guest, host = unit.guests[0], unit.hosts[0]
            # A boot larger than a limit on its own may start when nothing else loads it.
            return world.fits(guest, host) or _alone(world, guest, host)
        pools = [0.0] * world.num_pools
        for guest in unit.guests:
            for pool, load in world.pool_loads(guest):
                pools[pool] += load
        for pool, load in enumerate(pools):
            busy = world.declared_pool[pool] > 0
            if load and busy and world.declared_pool[pool] + load > world.capacity[pool] + 1e-9:
                return False
        limit = self.problem.schedule.max_starts
        if (
            limit is not None
            and world.booting_total
            and world.booting_total + len(unit.guests) > limit
        ):
            return False
        per_host: dict[int, list[int]] = {}
        for guest, host in zip(unit.guests, unit.hosts, strict=True):
            per_host.setdefault(host, []).append(guest)
        for host, guests in per_host.items():
            boot = self.problem.hosts[host].boot
            cpu = sum(self.problem.guests[g].boot.cpu for g in guests)
            busy = world.booting_on_host[host] > 0
            if busy and boot.cpu is not None and world.declared_cpu[host] + cpu > boot.cpu:
                return False
            starts = world.booting_on_host[host] + len(guests)
            if busy and boot.max_starts is not None and starts > boot.max_starts:
                return False
        return True


def _alone(world: Ledger, guest: int, host: int) -> bool:
    """Whether nothing else loads what `guest` would load on `host` (so a guest too big
    for a limit on its own may start rather than wait forever)."""
    if any(world.declared_pool[pool] > 0 for pool, _ in world.pool_loads(guest)):
        return False
    if world.booting_on_host[host] > 0:
        return False
    return world.problem.schedule.max_starts is None or world.booting_total == 0


@attrs.frozen
class ReadinessGated(Policy):
    """The plan as a partial order: a guest starts once the guests the plan has ready by
    its start, and that compete with it for a pool or a host's boot limits, are ready,
    its dependencies are ready, the stagger gap has passed and the declared boot loads
    leave room for it. It starts no later than that, so short boots pull the schedule
    in and long ones push it out, and the limits hold whatever the boots do."""

    backfill: bool = False

    @property
    def name(self) -> str:  # type: ignore[override]
        return "readiness-backfill" if self.backfill else "readiness-gated"

    def controller(self, problem: Problem, plan: Plan) -> Controller:
        units, order = _cached(problem, plan)
        return _ReadinessGated(units, order, problem.schedule.stagger_s, problem, self.backfill)


# --- the peers' ways ---------------------------------------------------------------------


def _peer_order(problem: Problem, plan: Plan) -> list[Unit]:
    """Units in the order a tool without a schedule takes them: highest priority first,
    then the plan's order."""
    units = plan_units(problem, plan)
    return sorted(units, key=lambda u: (-u.priority, u.start_s, u.index))


class _AllAtOnce(_ListController):
    def gate(self, world: Ledger, unit: Unit) -> bool | None:
        return True


@attrs.frozen
class AllAtOnce(Policy):
    """Every guest starts at once; a dependant starts when its dependency's start action
    has returned (ordering on the action, as Pacemaker orders `start` operations)."""

    name: str = "all-at-once"

    def controller(self, problem: Problem, plan: Plan) -> Controller:
        return _AllAtOnce(_peer_order(problem, plan), need_ready=False)


class _Serial(_ListController):
    def __init__(self, units: Sequence[Unit], delay_s: int) -> None:
        super().__init__(units, need_ready=False)
        self.delay_s = delay_s
        self.next_s = 0.0
        self.waiting_for: int | None = None  # the guest whose start command runs

    def decide(self, world: Ledger, events: Sequence[Event]) -> Decision:
        if self.waiting_for is not None:
            if (
                world.status[self.waiting_for] is GuestStatus.BOOTING
                and not world.returned[self.waiting_for]
            ):
                return Decision((), None)
            # The command returned (or the attempt ended): sleep, then the next one.
            self.next_s = world.now + self.delay_s
            self.waiting_for = None
        return super().decide(world, events)

    def gate(self, world: Ledger, unit: Unit) -> bool | None:
        if self.waiting_for is not None or world.now + 1e-9 < self.next_s:
            return None
        return True

    def started(self, world: Ledger, unit: Unit) -> None:
        self.waiting_for = unit.guests[-1]

    def wake(self, world: Ledger) -> float | None:
        return self.next_s if self.waiting_for is None else None


@attrs.frozen
class Serial(Policy):
    """`for g in ...; do start g; sleep DELAY; done`: one start at a time, the next one
    `delay_s` after the previous start command returned, highest priority first."""

    delay_s: int = 45

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"serial:{self.delay_s}"

    def controller(self, problem: Problem, plan: Plan) -> Controller:
        return _Serial(_peer_order(problem, plan), self.delay_s)


class _Batch(_ListController):
    def __init__(self, units: Sequence[Unit], limit: int, count_ready: bool) -> None:
        super().__init__(units, need_ready=count_ready)
        self.limit = limit
        self.count_ready = count_ready

    def gate(self, world: Ledger, unit: Unit) -> bool | None:
        busy = world.booting_total if self.count_ready else world.in_flight
        return True if busy == 0 or busy + len(unit.guests) <= self.limit else None


@attrs.frozen
class Batch(Policy):
    """At most `limit` starts in progress. `count="started"`: a start counts until its
    command returns (Pacemaker's `batch-limit` counts actions in flight, and an agent's
    start returns long before the guest is up); `count="ready"`: until the guest is ready
    (what a batch limit is meant to do)."""

    limit: int = 4
    count: str = attrs.field(default="started")

    @count.validator
    def _check_count(self, _attribute: attrs.Attribute[str], value: str) -> None:
        if value not in ("started", "ready"):
            raise ValueError(f"count must be 'started' or 'ready' (got {value!r})")

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"batch:{self.limit}" if self.count == "started" else f"batch-ready:{self.limit}"

    def controller(self, problem: Problem, plan: Plan) -> Controller:
        return _Batch(_peer_order(problem, plan), self.limit, self.count == "ready")


class _PerHostWorkers(_ListController):
    """Per host at most `workers(world, host)` start commands running at once."""

    def __init__(self, units: Sequence[Unit], workers: Callable[[Ledger, int], int]) -> None:
        super().__init__(units, need_ready=False)
        self.workers = workers

    def gate(self, world: Ledger, unit: Unit) -> bool | None:
        for host in set(unit.hosts):
            wanted = unit.hosts.count(host)
            running = world.in_flight_on_host[host]
            if running and running + wanted > self.workers(world, host):
                return False
        return True


class _Proxmox(_PerHostWorkers):
    def __init__(self, units: Sequence[Unit], max_workers: int, round_s: float, window_s: float):
        super().__init__(units, lambda _world, _host: max_workers)
        self.round_s = round_s
        self.window_s = window_s

    def gate(self, world: Ledger, unit: Unit) -> bool | None:
        # Workers are forked only while the LRM round runs its workers.
        if world.now % self.round_s > self.window_s + 1e-9:
            return None
        return super().gate(world, unit)

    def wake(self, world: Ledger) -> float | None:
        return (math.floor(world.now / self.round_s + 1e-9) + 1) * self.round_s


@attrs.frozen
class Proxmox(Policy):
    """Proxmox HA's local resource manager: a round every `round_s` (10 s), in which it
    forks start workers for `window_s` (8 s), at most `max_workers` (datacenter.cfg
    `max_workers`, 4) at a time per node, in service-id order (no priorities). A worker
    ends when `qm start` returns, once the QEMU process runs, long before the guest has
    booted (pve-ha-manager LRM.pm `run_workers`, Resources/PVEVM.pm `start`)."""

    max_workers: int = 4
    round_s: float = 10.0
    window_s: float = 8.0
    name: str = "proxmox"

    def controller(self, problem: Problem, plan: Plan) -> Controller:
        units = sorted(plan_units(problem, plan), key=lambda u: problem.guests[u.guests[0]].name)
        return _Proxmox(units, self.max_workers, self.round_s, self.window_s)


def _host_cores(problem: Problem, host: int) -> int:
    capacity = problem.hosts[host].capacity
    for name in ("cores", "cpus", "vcpus", "cpu"):
        if capacity.get(name):
            return int(capacity[name])
    return 4


class _Pacemaker(_PerHostWorkers):
    def __init__(
        self, units: Sequence[Unit], problem: Problem, threshold: float, sample_s: float
    ) -> None:
        super().__init__(units, self._node_limit)
        self.problem = problem
        self.threshold = threshold
        self.sample_s = sample_s
        self.modes = [0] * len(problem.hosts)  # 0 none, 1 low, 2 medium, 3 high
        self.sampled_s = -math.inf

    def _sample(self, world: Ledger) -> None:
        """Every node measures its load every `sample_s` and picks a throttle mode:
        low, medium and high past 1.2, 1.6 and 2.0 times load-threshold per core (the
        load-average rule of controld_throttle.c; boot pressure stands for load)."""
        if world.now < self.sampled_s + self.sample_s - 1e-9:
            return
        self.sampled_s = world.now
        for host in range(len(self.problem.hosts)):
            load = world.host_pressure(host)
            mode = 0
            for level, factor in enumerate((1.2, 1.6, 2.0), start=1):
                if load > factor * self.threshold:
                    mode = level
            self.modes[host] = mode

    def _node_limit(self, world: Ledger, host: int) -> int:
        most = 2 * _host_cores(self.problem, host)  # node-action-limit: twice the cores
        return (most, max(most // 2, 1), max(most // 4, 1), 1)[self.modes[host]]

    def decide(self, world: Ledger, events: Sequence[Event]) -> Decision:
        self._sample(world)
        return super().decide(world, events)

    def gate(self, world: Ledger, unit: Unit) -> bool | None:
        if any(mode == 3 for mode in self.modes):
            # batch-limit 0 becomes half the nodes while any node is highly loaded.
            online = sum(world.online)
            if world.in_flight and world.in_flight + len(unit.guests) > max(online // 2, 1):
                return None
        return super().gate(world, unit)

    def wake(self, world: Ledger) -> float | None:
        return self.sampled_s + self.sample_s


@attrs.frozen
class Pacemaker(Policy):
    """Pacemaker with its defaults: `batch-limit` 0 (no cluster-wide cap until a node is
    highly loaded, then half the nodes), each node at most `node-action-limit` (twice its
    cores) actions at once, cut to a half, a quarter and one as its load passes 1.2, 1.6
    and 2.0 times `load-threshold` (80 %) per core, measured every 30 s
    (controld_throttle.c). An action ends when the agent's start returns (VirtualDomain
    returns once libvirt reports the domain running); ordering constraints wait for the
    start action, not for readiness."""

    load_threshold: float = 0.8
    sample_s: float = 30.0
    name: str = "pacemaker"

    def controller(self, problem: Problem, plan: Plan) -> Controller:
        return _Pacemaker(_peer_order(problem, plan), problem, self.load_threshold, self.sample_s)


class _PriorityGroups(_ListController):
    def __init__(self, units: Sequence[Unit], timeout_s: float, post_ready_delay_s: float) -> None:
        # vSphere's VM dependency rules restart a VM once those it depends on are ready.
        super().__init__(units, need_ready=True)
        levels = sorted({unit.priority for unit in units}, reverse=True)
        self.levels = levels
        self.level = 0
        self.level_started_s = 0.0
        self.open_from_s = 0.0
        self.timeout_s = timeout_s
        self.post_ready_delay_s = post_ready_delay_s
        self.members = {
            level: [g for unit in units if unit.priority == level for g in unit.guests]
            for level in levels
        }

    def decide(self, world: Ledger, events: Sequence[Event]) -> Decision:
        while self.level < len(self.levels) - 1:
            members = self.members[self.levels[self.level]]
            done = all(world.status[g] in _SETTLED for g in members)
            timed_out = world.now + 1e-9 >= self.level_started_s + self.timeout_s
            if not (done or timed_out) or world.now + 1e-9 < self.open_from_s:
                break
            if done and self.open_from_s <= self.level_started_s:
                # The group is ready: the next one opens after the post-ready delay.
                self.open_from_s = world.now + self.post_ready_delay_s
                if self.post_ready_delay_s > 0:
                    break
            self.level += 1
            self.level_started_s = world.now
        return super().decide(world, events)

    def gate(self, world: Ledger, unit: Unit) -> bool | None:
        return self.levels.index(unit.priority) <= self.level

    def wake(self, world: Ledger) -> float | None:
        candidates = [self.level_started_s + self.timeout_s]
        if self.open_from_s > world.now:
            candidates.append(self.open_from_s)
        return min(candidates)


@attrs.frozen
class PriorityGroups(Policy):
    """vSphere HA restart priorities: guests start in groups of equal priority, highest
    first, all of a group at once (a guest with dependencies once they are ready, as
    vSphere's VM dependency rules do); the next group starts when every guest of the one
    before is ready (the readiness condition, e.g. guest heartbeats), `post_ready_delay_s`
    later, or after `timeout_s` whatever its state."""

    timeout_s: float = 600.0
    post_ready_delay_s: float = 0.0
    name: str = "priority-groups"

    def controller(self, problem: Problem, plan: Plan) -> Controller:
        return _PriorityGroups(_peer_order(problem, plan), self.timeout_s, self.post_ready_delay_s)


# --- by name -----------------------------------------------------------------------------
