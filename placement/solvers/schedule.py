"""Baseline boot schedules: when each starting guest starts, once hosts are chosen.

Four schedules, from what operators do by hand to one that honours every rule:

- `all-at-once`: every guest starts the moment its dependencies are ready (at 0 when it
  has none). No throttling at all: what happens when nothing staggers the starts.
- `serial:SECONDS`: one start every SECONDS, in priority order (the `start; sleep 45`
  loop). Ignores pools, host limits and the horizon.
- `batch:N`: at most N guests booting at once; a new one starts when one is *ready*
  (Pacemaker's batch-limit, with boot durations that are real). Ignores pools, host limits,
  stagger and the horizon.
- `list`: list scheduling that respects every schedule rule (boot pools, host boot CPU and
  start limits, the cluster start limit, `after`, start groups, stagger, horizon); guests
  it cannot fit in the horizon are reported unscheduled with a reason.

All four start the members of a start group together (they are one unit), start a guest
only once every guest it waits for (`after`) is ready, and take units in priority order.
A guest's priority for ordering is the highest priority of itself and every guest that
waits for it, directly or not, so an important guest does not wait behind the unimportant
database it needs. Each schedule is a function `(problem, hosts, not_before=None) ->
Timing`: `hosts` maps guest names to their chosen host (None: unplaced); only guests that
will START are timed; `not_before` gives some of them an earliest start (s), which
`placement.solvers.migration_schedule` sets for boots that need room a migration frees.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Protocol

import attrs

from placement.model import Guest, Problem

logger = logging.getLogger(__name__)


def _frozen_map(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen
class Timing:
    """A schedule's answer. `starts`: starting guest -> start instant (s). `unscheduled`:
    starting guest that could not be timed -> the reason (only `list` leaves any)."""

    starts: Mapping[str, int] = attrs.field(converter=_frozen_map)
    unscheduled: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)


class Scheduler(Protocol):
    """A boot schedule: `(problem, hosts, not_before=None) -> Timing`."""

    def __call__(
        self,
        problem: Problem,
        hosts: Mapping[str, str | None],
        not_before: Mapping[str, int] | None = None,
    ) -> Timing: ...


# --- units of the schedule ---------------------------------------------------------------


@attrs.define
class _BootUnit:
    """A start group's starting members, or one starting guest outside any start group."""

    index: int
    guests: list[Guest]
    key: tuple[int, int]  # (-inherited priority, problem position): smaller goes first
    # Guests of other units this unit waits for, grouped by unit index.
    waits_on: dict[int, list[str]] = attrs.field(factory=dict)
    dependants: list[int] = attrs.field(factory=list)
    earliest_s: int = 0  # every dependency timed so far is ready by then
    pending: int = 0  # dependency units not yet timed

    @property
    def name(self) -> str:
        group = self.guests[0].boot.group
        if group is not None:
            return f"start group '{group}'"
        return f"guest {self.guests[0].name}"

    @property
    def longest_s(self) -> int:
        return max(guest.boot.duration_s for guest in self.guests)


def starting_guests(problem: Problem, hosts: Mapping[str, str | None]) -> list[Guest]:
    """Guests that will START: placed, and not running now (stopped, failed host, frozen)."""
    return [
        guest
        for guest in problem.guests
        if hosts.get(guest.name) is not None and not problem.runs_now(guest)
    ]


def _inherited_priorities(problem: Problem, starting: list[Guest]) -> dict[str, int]:
    """Per starting guest, the highest priority of itself and its dependants (transitively)."""
    from placement.graph import topological_order

    names = {guest.name for guest in starting}
    priority = {guest.name: guest.priority for guest in starting}
    for name in reversed(topological_order(starting)):
        for dependency in problem.guest(name).boot.after:
            if dependency in names:
                priority[dependency] = max(priority[dependency], priority[name])
    return priority


class _Units:
    """The units to time, their dependency links, and what cannot be timed at all."""

    def __init__(
        self,
        problem: Problem,
        hosts: Mapping[str, str | None],
        not_before: Mapping[str, int] | None = None,
    ) -> None:
        self.problem = problem
        starting = starting_guests(problem, hosts)
        priority = _inherited_priorities(problem, starting)
        unit_of: dict[str, int] = {}
        by_group: dict[str, int] = {}
        self.units: list[_BootUnit] = []
        for guest in starting:
            group = guest.boot.group
            if group is not None and group in by_group:
                unit = self.units[by_group[group]]
                unit.guests.append(guest)
                unit.key = min(unit.key, (-priority[guest.name], unit.key[1]))
            else:
                unit = _BootUnit(
                    index=len(self.units),
                    guests=[guest],
                    key=(-priority[guest.name], problem.guest_position(guest.name)),
                )
                self.units.append(unit)
                if group is not None:
                    by_group[group] = unit.index
            unit_of[guest.name] = unit.index
        self.unit_of = unit_of
        for unit in self.units:
            unit.earliest_s = max((not_before or {}).get(g.name, 0) for g in unit.guests)
        self.unscheduled: dict[str, str] = {}
        self.ready_s: dict[str, int] = {}
        blocked: list[tuple[int, str]] = []
        for unit in self.units:
            for guest in unit.guests:
                for dependency in guest.boot.after:
                    if dependency in unit_of:
                        other = unit_of[dependency]
                        if other == unit.index:
                            if problem.guest(dependency).boot.duration_s > 0:
                                blocked.append(
                                    (
                                        unit.index,
                                        f"{guest.name} waits for {dependency}, which starts at "
                                        f"the same instant in {unit.name}",
                                    )
                                )
                            continue
                        unit.waits_on.setdefault(other, []).append(dependency)
                    elif hosts.get(dependency) is None:
                        blocked.append((unit.index, f"depends on unplaced guest {dependency}"))
                    # Otherwise the dependency runs already (stay or migrate): ready at 0.
            unit.pending = len(unit.waits_on)
            for other in unit.waits_on:
                self.units[other].dependants.append(unit.index)
        self.dropped: set[int] = set()
        for index, reason in blocked:
            self.drop(index, reason)

    def drop(self, index: int, reason: str) -> None:
        """Leave a unit (and, transitively, what waits for it) unscheduled."""
        stack = [(index, reason)]
        while stack:
            current, why = stack.pop()
            if current in self.dropped:
                continue
            self.dropped.add(current)
            unit = self.units[current]
            for guest in unit.guests:
                self.unscheduled[guest.name] = why
            first = unit.guests[0].name
            for dependant in unit.dependants:
                stack.append((dependant, f"depends on unscheduled guest {first}"))

    def roots(self) -> list[_BootUnit]:
        return [u for u in self.units if u.pending == 0 and u.index not in self.dropped]

    def start(self, unit: _BootUnit, start_s: int) -> list[_BootUnit]:
        """Time `unit` at `start_s`; return the units this releases (all dependencies timed)."""
        for guest in unit.guests:
            self.ready_s[guest.name] = start_s + guest.boot.duration_s
        released = []
        for index in unit.dependants:
            dependant = self.units[index]
            if index in self.dropped:
                continue
            for dependency in dependant.waits_on[unit.index]:
                dependant.earliest_s = max(dependant.earliest_s, self.ready_s[dependency])
            dependant.pending -= 1
            if dependant.pending == 0:
                released.append(dependant)
        return released

    def timing(self, starts: dict[str, int]) -> Timing:
        # A unit still pending waits, through start groups, on itself.
        for unit in self.units:
            if unit.index not in self.dropped and unit.guests[0].name not in starts:
                self.drop(
                    unit.index,
                    f"{unit.name} waits, through start groups, for a guest that waits for it",
                )
        return Timing(starts=starts, unscheduled=self.unscheduled)


def _start_all(units: _Units, unit: _BootUnit, start_s: int, starts: dict[str, int]) -> None:
    for guest in unit.guests:
        starts[guest.name] = start_s


# --- all at once -------------------------------------------------------------------------


def all_at_once(
    problem: Problem,
    hosts: Mapping[str, str | None],
    not_before: Mapping[str, int] | None = None,
) -> Timing:
    """Each unit starts as soon as what it waits for is ready; no limit is honoured."""
    units = _Units(problem, hosts, not_before)
    starts: dict[str, int] = {}
    queue = units.roots()
    while queue:
        unit = queue.pop()
        _start_all(units, unit, unit.earliest_s, starts)
        queue.extend(units.start(unit, unit.earliest_s))
    return units.timing(starts)


# --- serial with a fixed delay -----------------------------------------------------------


def serial(delay_s: int) -> Scheduler:
    """One unit every `delay_s` seconds, in priority order.

    At each slot the first unit in priority order whose dependencies are ready starts.
    When none is ready (each waits for a guest still booting), the loop waits until the
    first becomes ready, starts it then, and the next slot is `delay_s` after that: the
    script `for g in ...; do wait_for_deps g; start g; sleep 45; done`, but one that takes
    the next ready guest rather than blocking on the next in the list.
    """

    def schedule(
        problem: Problem,
        hosts: Mapping[str, str | None],
        not_before: Mapping[str, int] | None = None,
    ) -> Timing:
        units = _Units(problem, hosts, not_before)
        starts: dict[str, int] = {}
        waiting = [(u.earliest_s, u.key, u.index) for u in units.roots()]
        heapq.heapify(waiting)
        ready: list[tuple[tuple[int, int], int]] = []
        slot_s = 0
        while waiting or ready:
            if not ready and waiting[0][0] > slot_s:
                slot_s = waiting[0][0]
            while waiting and waiting[0][0] <= slot_s:
                _, key, index = heapq.heappop(waiting)
                heapq.heappush(ready, (key, index))
            _, index = heapq.heappop(ready)
            unit = units.units[index]
            _start_all(units, unit, slot_s, starts)
            for released in units.start(unit, slot_s):
                heapq.heappush(waiting, (released.earliest_s, released.key, released.index))
            slot_s += delay_s
        return units.timing(starts)

    return schedule


# --- batch limit -------------------------------------------------------------------------


def batch(limit: int) -> Scheduler:
    """At most `limit` guests booting at once; a slot frees when a guest is ready.

    Units start in priority order as soon as their dependencies are ready and slots are
    free. A start group counts as many slots as it has members; one larger than `limit`
    starts alone, when nothing else boots (it still exceeds the limit: a finding).
    """

    def schedule(
        problem: Problem,
        hosts: Mapping[str, str | None],
        not_before: Mapping[str, int] | None = None,
    ) -> Timing:
        units = _Units(problem, hosts, not_before)
        starts: dict[str, int] = {}
        waiting = [(u.earliest_s, u.key, u.index) for u in units.roots()]
        heapq.heapify(waiting)
        ready: list[tuple[tuple[int, int], int]] = []
        finishing: list[tuple[int, int]] = []  # (ready instant, number of guests)
        booting = 0
        now_s = 0
        while waiting or ready:
            while finishing and finishing[0][0] <= now_s:
                booting -= heapq.heappop(finishing)[1]
            while waiting and waiting[0][0] <= now_s:
                _, key, index = heapq.heappop(waiting)
                heapq.heappush(ready, (key, index))
            while ready:
                unit = units.units[ready[0][1]]
                size = sum(1 for guest in unit.guests if guest.boot.duration_s > 0)
                if booting + size > limit and booting > 0:
                    break
                heapq.heappop(ready)
                _start_all(units, unit, now_s, starts)
                for guest in unit.guests:
                    if guest.boot.duration_s > 0:
                        booting += 1
                        heapq.heappush(finishing, (now_s + guest.boot.duration_s, 1))
                for released in units.start(unit, now_s):
                    heapq.heappush(waiting, (released.earliest_s, released.key, released.index))
            upcoming = [heap[0][0] for heap in (finishing, waiting) if heap]
            if not upcoming:
                break
            now_s = max(now_s, min(upcoming))
        return units.timing(starts)

    return schedule


# --- list scheduling ---------------------------------------------------------------------


@attrs.define
class _Needs:
    """What one unit uses while booting: cluster-wide, and on hosts that have boot limits."""

    pools: tuple[tuple[str, int], ...]  # the whole start group's load, per pool
    count: int  # guests with a non-empty boot interval
    hosts: tuple[tuple[str, int, int], ...]  # (host, boot cpu, guests) on limited hosts


def list_schedule(
    problem: Problem,
    hosts: Mapping[str, str | None],
    not_before: Mapping[str, int] | None = None,
) -> Timing:
    """Time every starting guest, respecting every schedule rule.

    Event-driven list scheduling: time moves from event to event (a guest becomes ready,
    a unit's dependencies become ready, a stagger gap ends); at each instant, units whose
    dependencies are ready are tried in priority order and every one that fits the boot
    pools, the hosts' boot CPU and start limits and the cluster start limit starts (only
    one per instant when a stagger gap is set). A unit that does not fit waits for the
    next event; lower-priority units that fit may start meanwhile. A unit that cannot be
    ready by the horizon, or that exceeds a limit on its own, is left unscheduled with a
    reason, and so is everything that waits for it.

    Units with the same needs share a bucket; when a bucket's best unit does not fit
    pools or cluster limits, no unit of it does, so a scan costs one test per bucket.
    """
    return _ListScheduler(problem, hosts, not_before).run()


# A bucket: units with equal global needs (pools, count); within one, sub-buckets with
# equal host needs. A sub-bucket blocked by a host waits on that host until a guest there
# is ready.
_Signature = tuple[tuple[tuple[str, int], ...], int]
_HostSignature = tuple[tuple[str, int, int], ...]
_Sub = tuple[_Signature, _HostSignature]


class _ListScheduler:
    """One run of `list_schedule`: what the pools, the hosts and the cluster have free,
    the buckets of eligible units, and the events to come."""

    def __init__(
        self,
        problem: Problem,
        hosts: Mapping[str, str | None],
        not_before: Mapping[str, int] | None,
    ) -> None:
        self.problem = problem
        self.hosts = hosts
        self.units = units = _Units(problem, hosts, not_before)
        self.schedule = problem.schedule
        self.pool_free = dict(problem.boot_pools)
        self.cluster_free = self.schedule.max_starts  # None: no limit
        self.host_cpu_free: dict[str, int | None] = {}
        self.host_starts_free: dict[str, int | None] = {}
        for host in problem.hosts:
            if host.boot.cpu is not None or host.boot.max_starts is not None:
                self.host_cpu_free[host.name] = host.boot.cpu
                self.host_starts_free[host.name] = host.boot.max_starts
        self.needs: dict[int, _Needs] = {}
        for unit in units.units:
            self.needs[unit.index] = self._need(unit)
            reason = _alone_reason(problem, unit, self.needs[unit.index])
            if reason is not None:
                units.drop(unit.index, reason)
        self.sub_heaps: dict[_Sub, list[tuple[tuple[int, int], int]]] = {}
        self.active: dict[_Signature, list[tuple[tuple[int, int], _HostSignature]]] = {}
        self.parked: dict[str, list[_Sub]] = {}
        self.is_parked: set[_Sub] = set()
        self.waiting = [(u.earliest_s, u.key, u.index) for u in units.roots()]
        heapq.heapify(self.waiting)
        self.finishing: list[tuple[int, int]] = []  # (ready instant, guest position)
        self.starts: dict[str, int] = {}
        self.last_start_s: int | None = None
        self.now_s = 0

    def _need(self, unit: _BootUnit) -> _Needs:
        pools: dict[str, int] = {}
        per_host: dict[str, list[int]] = {}
        count = 0
        for guest in unit.guests:
            if guest.boot.duration_s == 0:
                continue  # an empty boot interval overlaps nothing
            count += 1
            for pool, load in guest.boot.load.items():
                if load > 0:
                    pools[pool] = pools.get(pool, 0) + load
            host_name = self.hosts[guest.name]
            if host_name is not None and host_name in self.host_cpu_free:
                entry = per_host.setdefault(host_name, [0, 0])
                entry[0] += guest.boot.cpu
                entry[1] += 1
        return _Needs(
            pools=tuple(sorted(pools.items())),
            count=count,
            hosts=tuple((h, cpu, n) for h, (cpu, n) in sorted(per_host.items())),
        )

    def run(self) -> Timing:
        """Move from event to event, starting what fits at each, until none is left."""
        problem = self.problem
        finishing, waiting = self.finishing, self.waiting
        while True:
            while finishing and finishing[0][0] <= self.now_s:
                self._release(problem.guests[heapq.heappop(finishing)[1]])
            while waiting and waiting[0][0] <= self.now_s:
                _, _, index = heapq.heappop(waiting)
                if index not in self.units.dropped:
                    self._make_eligible(index)
            self._try_starts()
            pending = any(self.sub_heaps.values())
            upcoming = [heap[0][0] for heap in (finishing, waiting) if heap]
            stagger_s = self.schedule.stagger_s
            if pending and stagger_s > 0 and self.last_start_s is not None:
                gap_end = self.last_start_s + stagger_s
                if gap_end > self.now_s:
                    upcoming.append(gap_end)
            later = [instant for instant in upcoming if instant > self.now_s]
            if not later:
                if finishing or waiting:
                    continue  # events at this very instant remain (zero-length boots)
                break
            self.now_s = min(later)
        return self.units.timing(self.starts)

    def _global_fit(self, need: _Needs) -> bool:
        if self.cluster_free is not None and need.count > self.cluster_free:
            return False
        return all(self.pool_free[pool] >= load for pool, load in need.pools)

    def _host_block(self, need: _Needs) -> str | None:
        for host, cpu, count in need.hosts:
            cpu_free = self.host_cpu_free[host]
            starts_free = self.host_starts_free[host]
            if (cpu_free is not None and cpu > cpu_free) or (
                starts_free is not None and count > starts_free
            ):
                return host
        return None

    def _signatures(self, index: int) -> _Sub:
        need = self.needs[index]
        return (need.pools, need.count), need.hosts

    def _activate(self, sub: _Sub) -> None:
        heap = self.sub_heaps.get(sub)
        if heap:
            heapq.heappush(self.active.setdefault(sub[0], []), (heap[0][0], sub[1]))

    def _make_eligible(self, index: int) -> None:
        sub = self._signatures(index)
        heap = self.sub_heaps.setdefault(sub, [])
        heapq.heappush(heap, (self.units.units[index].key, index))
        if sub not in self.is_parked:
            # Entries are (key, host signature); stale ones are skipped when popped.
            key = self.units.units[index].key
            heapq.heappush(self.active.setdefault(sub[0], []), (key, sub[1]))

    def _release(self, guest: Guest) -> None:
        for pool, load in guest.boot.load.items():
            self.pool_free[pool] += load
        if self.cluster_free is not None:
            self.cluster_free += 1
        name = self.hosts[guest.name]
        if name is not None and name in self.host_cpu_free:
            cpu_free, starts_free = self.host_cpu_free[name], self.host_starts_free[name]
            if cpu_free is not None:
                self.host_cpu_free[name] = cpu_free + guest.boot.cpu
            if starts_free is not None:
                self.host_starts_free[name] = starts_free + 1
            for sub in self.parked.pop(name, []):
                self.is_parked.discard(sub)
                self._activate(sub)

    def _occupy(self, index: int) -> None:
        need = self.needs[index]
        for pool, load in need.pools:
            self.pool_free[pool] -= load
        if self.cluster_free is not None:
            self.cluster_free -= need.count
        for host, cpu, count in need.hosts:
            cpu_free, starts_free = self.host_cpu_free[host], self.host_starts_free[host]
            if cpu_free is not None:
                self.host_cpu_free[host] = cpu_free - cpu
            if starts_free is not None:
                self.host_starts_free[host] = starts_free - count

    def _try_starts(self) -> None:
        """Start what fits at `now_s`, best first; at most one unit with a stagger gap."""
        schedule, now_s = self.schedule, self.now_s
        if (
            schedule.stagger_s > 0
            and self.last_start_s is not None
            and now_s < self.last_start_s + schedule.stagger_s
        ):
            return
        active, sub_heaps, units = self.active, self.sub_heaps, self.units
        order = [(heap[0][0], signature) for signature, heap in active.items() if heap]
        heapq.heapify(order)
        while order:
            _, signature = heapq.heappop(order)
            heap = active[signature]
            if not heap:
                continue
            need_key, host_signature = heap[0]
            sub = (signature, host_signature)
            sub_heap = sub_heaps.get(sub)
            if not sub_heap or sub_heap[0][0] != need_key or sub in self.is_parked:
                heapq.heappop(heap)  # stale entry
                if heap:
                    heapq.heappush(order, (heap[0][0], signature))
                continue
            index = sub_heap[0][1]
            if index in units.dropped:
                heapq.heappop(sub_heap)
                heapq.heappop(heap)
                self._activate(sub)
                if heap:
                    heapq.heappush(order, (heap[0][0], signature))
                continue
            if not self._global_fit(self.needs[index]):
                continue  # nothing of this bucket fits until something is ready
            unit = units.units[index]
            if now_s + unit.longest_s > schedule.horizon_s:
                heapq.heappop(sub_heap)
                heapq.heappop(heap)
                self._activate(sub)
                units.drop(
                    index,
                    f"cannot be ready by the horizon ({schedule.horizon_s} s): the boot "
                    f"limits let {unit.name} start at {now_s} s at the earliest and it "
                    f"boots for {unit.longest_s} s",
                )
                if heap:
                    heapq.heappush(order, (heap[0][0], signature))
                continue
            blocking_host = self._host_block(self.needs[index])
            heapq.heappop(heap)
            if blocking_host is not None:
                self.parked.setdefault(blocking_host, []).append(sub)
                self.is_parked.add(sub)
            else:
                heapq.heappop(sub_heap)
                self._start(index, unit)
                self._activate(sub)
                if schedule.stagger_s > 0:
                    return
            if heap:
                heapq.heappush(order, (heap[0][0], signature))

    def _start(self, index: int, unit: _BootUnit) -> None:
        """Start `unit` (at position `index`) now: it holds its needs until each of its
        guests is ready, and the units that waited only for it are released."""
        now_s = self.now_s
        _start_all(self.units, unit, now_s, self.starts)
        self._occupy(index)
        self.last_start_s = now_s
        for guest in unit.guests:
            if guest.boot.duration_s > 0:
                ready_s = now_s + guest.boot.duration_s
                position = self.problem.guest_position(guest.name)
                heapq.heappush(self.finishing, (ready_s, position))
        for released in self.units.start(unit, now_s):
            heapq.heappush(self.waiting, (released.earliest_s, released.key, released.index))


def _alone_reason(problem: Problem, unit: _BootUnit, need: _Needs) -> str | None:
    """Why `unit` could not start even on an idle cluster, or None."""
    for pool, load in need.pools:
        if load > problem.boot_pools[pool]:
            return (
                f"{unit.name} needs {load} of boot pool '{pool}' while booting; "
                f"the pool holds {problem.boot_pools[pool]}"
            )
    limit = problem.schedule.max_starts
    if limit is not None and need.count > limit:
        return f"{unit.name} boots {need.count} guests at once; max_starts is {limit}"
    for host_name, cpu, count in need.hosts:
        host = problem.host(host_name)
        if host.boot.cpu is not None and cpu > host.boot.cpu:
            return (
                f"{unit.name} needs {cpu} boot cpu on {host_name}; the host allows {host.boot.cpu}"
            )
        if host.boot.max_starts is not None and count > host.boot.max_starts:
            return (
                f"{unit.name} boots {count} guests at once on {host_name}; "
                f"its max_starts is {host.boot.max_starts}"
            )
    if unit.longest_s > problem.schedule.horizon_s:
        return (
            f"boots for {unit.longest_s} s, longer than the horizon "
            f"({problem.schedule.horizon_s} s)"
        )
    return None


# --- by name -----------------------------------------------------------------------------


def parse_schedule(spec: str) -> Scheduler:
    """The schedule named by `spec`: `list`, `all-at-once`, `serial:SECONDS` (an integer
    >= 0) or `batch:N` (an integer >= 1). Raises ValueError naming what is wrong."""
    text = spec.strip()
    if text == "list":
        return list_schedule
    if text == "all-at-once":
        return all_at_once
    kind, sep, value = text.partition(":")
    if sep and kind in ("serial", "batch"):
        try:
            number = int(value)
        except ValueError:
            number = -1
        if kind == "serial" and number >= 0:
            return serial(number)
        if kind == "batch" and number >= 1:
            return batch(number)
        wanted = "seconds >= 0" if kind == "serial" else "a count >= 1"
        raise ValueError(f"schedule '{spec}': '{kind}:' needs an integer, {wanted} (got '{value}')")
    raise ValueError(
        f"unknown schedule '{spec}' (expected list, all-at-once, serial:SECONDS or batch:N)"
    )
