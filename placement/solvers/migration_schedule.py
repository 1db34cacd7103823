"""Timing live migrations for the baselines, once hosts are chosen.

A migration of a running guest takes `problem.migration_duration(guest)` seconds; while
it runs the guest holds its demand on both hosts (docs/rules.md, `capacity`). Given the
final hosts, `time_migrations` decides:

- which moves cannot happen: a guest that is not `movable`, moves beyond the budget
  `migration.max_moves` (the lowest priorities lose), a move that alone loads a boot pool
  beyond its limit or cannot end by the horizon. Such a guest is stopped instead, with a
  reason naming the rule;
- when each remaining move starts: in priority order, each at the earliest instant at
  which the migration limits (`max_per_host`, `max_total`), the boot pools (through
  `migration.load`) and the target's capacity over time allow it. A target that only has
  room once guests leave it takes the move after they have left; moves that wait for
  each other in a cycle are broken by stopping the lowest-priority one;
- the earliest start of every boot on a host that guests leave: when the host has room
  for all its boots at once for good (so a boot never lands in room that a migration
  still holds), and, for a boot that loads a pool the migrations load, after the last
  such migration (a baseline does not interleave the two on one pool).

Everything here is a plain greedy rule: the optimiser does better (docs/optimiser.md).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import attrs

from placement.model import Guest, GuestState, Problem

_NEVER = math.inf


def _frozen_map(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen
class MigrationTiming:
    """`starts`: migrating guest -> start instant (s); it is done at start plus its
    migration time. `stopped`: running guest that cannot move after all -> the reason.
    `not_before`: starting guest -> the earliest instant (s) it may start."""

    starts: Mapping[str, int] = attrs.field(converter=_frozen_map)
    stopped: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)
    not_before: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen_map)


def moving_guests(problem: Problem, hosts: Mapping[str, str | None]) -> list[Guest]:
    """Running guests the plan puts on another host, in problem order."""
    return [
        guest
        for guest in problem.guests
        if problem.runs_now(guest)
        and hosts.get(guest.name) is not None
        and hosts.get(guest.name) != guest.current_host
    ]


class _Profiles:
    """Per host, what holds it over time: guests present for good (staying, frozen
    copies), guests leaving (until their move ends; for good while the move is not timed)
    and guests arriving (from their move's start on)."""

    def __init__(self, problem: Problem, hosts: Mapping[str, str | None]) -> None:
        self.problem = problem
        self.base: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.leaving: dict[str, dict[str, float]] = defaultdict(dict)  # host -> guest -> end
        self.arriving: dict[str, list[tuple[int, Guest]]] = defaultdict(list)
        for guest in problem.guests:
            if guest.state is GuestState.FROZEN and problem.holds_current_host(guest):
                self._add(self.base[guest.current_host or ""], guest.demand)
            host = hosts.get(guest.name)
            if not problem.runs_now(guest) or guest.current_host is None:
                continue
            if host == guest.current_host:
                self._add(self.base[host], guest.demand)
            elif host is not None:
                self.leaving[guest.current_host][guest.name] = _NEVER

    @staticmethod
    def _add(into: dict[str, int], demand: Mapping[str, int]) -> None:
        for resource, amount in demand.items():
            into[resource] += amount

    def drop(self, guest: Guest) -> None:
        """The guest does not move after all: it is stopped and holds nothing."""
        if guest.current_host is not None:
            self.leaving[guest.current_host].pop(guest.name, None)

    def move(self, guest: Guest, target: str, start_s: int, end_s: int) -> None:
        assert guest.current_host is not None
        self.leaving[guest.current_host][guest.name] = end_s
        self.arriving[target].append((start_s, guest))

    def fits_in_the_end(self, host: str, extra: Mapping[str, int]) -> bool:
        """Whether `host` holds `extra` once every guest leaving it has left."""
        level: dict[str, int] = defaultdict(int, self.base[host])
        self._add(level, extra)
        for _, guest in self.arriving[host]:
            self._add(level, guest.demand)
        usable_host = self.problem.host(host)
        return all(amount <= usable_host.usable(r) for r, amount in level.items())

    def departures_end(self, host: str) -> list[float]:
        return sorted(set(self.leaving[host].values()))

    def fits_from(self, host: str, from_s: float, extra: Mapping[str, int]) -> bool:
        """Whether `host` holds everything it holds at every instant from `from_s` on,
        plus `extra` (every resource: the checker judges them all once something
        arrives)."""
        usable_host = self.problem.host(host)
        instants = {from_s} | {s for s, _ in self.arriving[host] if s > from_s}
        for instant in instants:
            level: dict[str, int] = defaultdict(int, self.base[host])
            self._add(level, extra)
            for name, end in self.leaving[host].items():
                if end > instant:
                    self._add(level, self.problem.guest(name).demand)
            for start, guest in self.arriving[host]:
                if start <= instant:
                    self._add(level, guest.demand)
            for resource, amount in level.items():
                if amount > usable_host.usable(resource):
                    return False
        return True


def _peak_within(intervals: Iterable[tuple[int, int, int]], lo: int, hi: int) -> int:
    """The highest summed amount of `(start, end, amount)` intervals inside `[lo, hi)`."""
    events: list[tuple[int, int]] = []
    for start, end, amount in intervals:
        start, end = max(start, lo), min(end, hi)
        if start < end and amount:
            events += [(start, amount), (end, -amount)]
    level = best = 0
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):
        level += delta
        best = max(best, level)
    return best


def _alone_reason(problem: Problem, guest: Guest, duration_s: int) -> str | None:
    settings = problem.migration
    if not guest.movable:
        return (
            f"not movable (movable: false): it cannot be live-migrated off "
            f"{guest.current_host}, so it is stopped"
        )
    for pool, load in sorted(settings.load.items()):
        if load > problem.boot_pools.get(pool, 0):
            return (
                f"its migration needs {load} of boot pool '{pool}'; the pool holds "
                f"{problem.boot_pools.get(pool, 0)}"
            )
    if duration_s > problem.schedule.horizon_s:
        return (
            f"its migration takes {duration_s} s, longer than the horizon "
            f"({problem.schedule.horizon_s} s)"
        )
    return None


def time_migrations(problem: Problem, hosts: Mapping[str, str | None]) -> MigrationTiming:
    """Time the migrations `hosts` implies and bound the boots they affect; see the
    module docstring. `hosts`: guest -> final host (None: unplaced)."""
    settings = problem.migration
    profiles = _Profiles(problem, hosts)
    stopped: dict[str, str] = {}

    def stop(guest: Guest, reason: str) -> None:
        stopped[guest.name] = reason
        profiles.drop(guest)

    order = sorted(
        moving_guests(problem, hosts),
        key=lambda g: (-g.priority, problem.guest_position(g.name)),
    )
    pending: list[Guest] = []
    for guest in order:
        reason = _alone_reason(problem, guest, problem.migration_duration(guest))
        if reason is not None:
            stop(guest, reason)
        elif settings.max_moves is not None and len(pending) >= settings.max_moves:
            stop(
                guest,
                f"migration budget: max_moves {settings.max_moves} is spent on "
                "higher-priority moves, so it is stopped",
            )
        else:
            pending.append(guest)

    starts: dict[str, int] = {}
    timed: list[tuple[int, int, Guest, str]] = []  # (start, end, guest, target)
    while pending:
        deferred: list[Guest] = []
        for guest in pending:
            placed = _earliest(problem, profiles, timed, guest, hosts[guest.name] or "")
            if placed is None:
                deferred.append(guest)
                continue
            if isinstance(placed, str):
                stop(guest, placed)
                continue
            target = hosts[guest.name] or ""
            start_s = placed
            end_s = start_s + problem.migration_duration(guest)
            starts[guest.name] = start_s
            timed.append((start_s, end_s, guest, target))
            profiles.move(guest, target, start_s, end_s)
        if len(deferred) == len(pending):
            # Every move left waits for room that only another waiting move frees.
            victim = deferred[-1]
            stop(
                victim,
                f"its target {hosts[victim.name]} has room only once guests leave it, and "
                "they wait for this move (a cycle of migrations), so it is stopped",
            )
            deferred.pop()
        pending = deferred

    return MigrationTiming(
        starts=starts, stopped=stopped, not_before=_boot_bounds(problem, hosts, profiles, timed)
    )


def _earliest(
    problem: Problem,
    profiles: _Profiles,
    timed: Sequence[tuple[int, int, Guest, str]],
    guest: Guest,
    target: str,
) -> int | str | None:
    """The earliest start of `guest`'s move to `target` given the moves timed so far; a
    reason when it cannot end by the horizon; None when its target lacks room until a
    move not timed yet frees it."""
    settings = problem.migration
    duration_s = problem.migration_duration(guest)
    source = guest.current_host or ""
    candidates = sorted({0} | {end for _, end, _, _ in timed})
    # A target that cannot hold the guest even once everything has left it is overloaded
    # by the placement itself (a peer without a capacity check): no timing helps, so the
    # move waits only for the departures timed so far and the overload is the finding.
    overloaded = not profiles.fits_in_the_end(target, guest.demand)
    if overloaded:
        left_s = max((e for e in profiles.departures_end(target) if e != _NEVER), default=0)
        candidates = [c for c in candidates if c >= left_s] or [int(left_s)]
    for start_s in candidates:
        end_s = start_s + duration_s
        if end_s > problem.schedule.horizon_s:
            return (
                f"its migration cannot end by the horizon ({problem.schedule.horizon_s} s) "
                "within the migration limits, so it is stopped"
            )
        window_end = max(end_s, start_s + 1)  # a zero-length move still needs its instant
        if duration_s > 0:
            if settings.max_total is not None:
                running = _peak_within(((s, e, 1) for s, e, _, _ in timed), start_s, window_end)
                if running + 1 > settings.max_total:
                    continue
            if settings.max_per_host is not None and any(
                _peak_within(
                    ((s, e, 1) for s, e, g, t in timed if host in (g.current_host, t)),
                    start_s,
                    window_end,
                )
                + 1
                > settings.max_per_host
                for host in (source, target)
            ):
                continue
            if any(
                _peak_within(((s, e, load) for s, e, _, _ in timed), start_s, window_end) + load
                > problem.boot_pools.get(pool, 0)
                for pool, load in settings.load.items()
                if load > 0
            ):
                continue
        if overloaded or profiles.fits_from(target, start_s, guest.demand):
            return start_s
    return None


def _boot_bounds(
    problem: Problem,
    hosts: Mapping[str, str | None],
    profiles: _Profiles,
    timed: Sequence[tuple[int, int, Guest, str]],
) -> dict[str, int]:
    """Per starting guest, the earliest start the migrations allow (see the module
    docstring); guests without a bound are left out."""
    boots: dict[str, list[Guest]] = defaultdict(list)
    for guest in problem.guests:
        host = hosts.get(guest.name)
        if host is not None and not problem.runs_now(guest):
            boots[host].append(guest)
    loaded_pools = {pool for pool, load in problem.migration.load.items() if load > 0}
    pools_free_s = max((end for _, end, _, _ in timed), default=0)
    bounds: dict[str, int] = {}
    for host, guests in boots.items():
        departures = [end for end in profiles.departures_end(host) if end != _NEVER]
        host_free_s = 0
        if departures:
            together: dict[str, int] = defaultdict(int)
            for guest in guests:
                for resource, amount in guest.demand.items():
                    together[resource] += amount
            # The earliest instant from which the host holds every boot at once for good;
            # after the last departure only the final state is left.
            host_free_s = int(departures[-1])
            for instant in [0, *departures]:
                if profiles.fits_from(host, instant, together):
                    host_free_s = int(instant)
                    break
        for guest in guests:
            bound = host_free_s
            if timed and any(guest.boot.load.get(pool, 0) > 0 for pool in loaded_pools):
                bound = max(bound, pools_free_s)
            if bound > 0:
                bounds[guest.name] = bound
    return bounds
