"""A plan as an ordered timeline of actions a person (or an HA tool) carries out.

Stops come first (at t=0: they free what a start or a migration may need), then starts
and migrations in the order they begin; guests that stay where they run, and guests left
without a host, close the list without a time.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

import attrs

from placement.model import GuestState, HostState, Problem
from placement.plan import Action, Plan


def clock(seconds: float | None) -> str:
    """Seconds after the plan starts as a clock an operator reads: `+18:35` (minutes and
    seconds), `+1:02:03` past an hour; "" for None."""
    if seconds is None:
        return ""
    total = round(seconds)
    sign = "-" if total < 0 else "+"
    hours, rest = divmod(abs(total), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}:{minutes:02d}:{secs:02d}"
    return f"{sign}{minutes:02d}:{secs:02d}"


def step_series(intervals: Iterable[tuple[int, int, int]]) -> tuple[list[int], list[int]]:
    """Instants and the summed amount from each instant on, for half-open intervals
    `(start, end, amount)`; the series starts at 0 with what is there at 0."""
    deltas: dict[int, int] = defaultdict(int)
    for start, end, amount in intervals:
        if end > start and amount:
            deltas[start] += amount
            deltas[end] -= amount
    return cumulative_series(deltas)


def pool_intervals(problem: Problem, plan: Plan) -> dict[str, list[tuple[int, int, int]]]:
    """Pool -> the (start, end, load) of every planned boot and migration that loads it."""
    loads: dict[str, list[tuple[int, int, int]]] = {pool: [] for pool in problem.boot_pools}
    for assignment in plan.by_guest().values():
        if assignment.start_s is None or assignment.ready_s is None:
            continue
        guest = problem.guest(assignment.guest)
        if assignment.action is Action.START:
            extra = guest.boot.load
        elif assignment.action is Action.MIGRATE:
            extra = problem.migration.load
        else:
            continue
        for pool, amount in extra.items():
            loads.setdefault(pool, []).append((assignment.start_s, assignment.ready_s, amount))
    return loads


def cumulative_series(deltas: Mapping[int, int]) -> tuple[list[int], list[int]]:
    """Instants and the running sum of `deltas` (instant -> change) from each instant on;
    the series starts at 0 with what changes at 0."""
    times, levels, level = [0], [0], 0
    for instant in sorted(deltas):
        level += deltas[instant]
        if instant == times[-1]:
            levels[-1] = level
        else:
            times.append(instant)
            levels.append(level)
    return times, levels


def level_at(series: tuple[Sequence[int], Sequence[int]], instant: float) -> int:
    """The level of a `step_series` at `instant` (0 before it starts)."""
    times, levels = series
    index = bisect_right(times, instant) - 1
    return levels[index] if index >= 0 else 0


# Within one instant: stops free room, migrations then begin, starts last.
_ORDER = {Action.STOP: 0, Action.MIGRATE: 1, Action.START: 2, Action.STAY: 3, Action.NONE: 4}


@attrs.frozen
class Step:
    """One guest's action. `start_s`/`ready_s`: when it begins and when the guest is ready
    (stop: both 0; stay and none: None). `source`: the host a migrating or stopped guest
    leaves, or where a restarted or replaced guest was. `target`: where it ends (None: no
    host). `note`: why, in a few words (a restart after a failure, a replaced frozen copy,
    the reason a guest is not placed)."""

    action: Action
    guest: str
    source: str | None
    target: str | None
    start_s: int | None
    ready_s: int | None
    note: str = ""


def _start_note(problem: Problem, guest_name: str) -> tuple[str | None, str]:
    guest = problem.guest(guest_name)
    current = guest.current_host
    if current is None:
        return None, ""
    host = problem.host(current)
    if guest.state is GuestState.FROZEN:
        if host.state is HostState.FAILED:
            return current, f"replaces the frozen copy on failed {current}"
        return current, f"replaces the frozen copy kept on {current}"
    if guest.state is GuestState.RUNNING and host.state is HostState.FAILED:
        return current, f"restart: {current} failed"
    if host.state is HostState.FAILED:  # stopped there: it went down with its host
        return current, f"from failed {current}"
    return None, ""


def timeline(problem: Problem, plan: Plan) -> list[Step]:
    """The plan's actions in the order they happen (see the module docstring).

    A guest the plan does not mention is listed as the checker judges it: a running guest
    stays, any other is not placed.
    """
    reasons = {u.guest: u.reason for u in plan.unplaced}
    by_guest = plan.by_guest()
    steps: list[Step] = []
    for guest in problem.guests:
        found = by_guest.get(guest.name)
        if found is None:
            running = problem.runs_now(guest)
            action = Action.STAY if running else Action.NONE
            host = guest.current_host if running else None
            steps.append(Step(action, guest.name, host, host, None, None, "not in the plan"))
            continue
        action = found.action
        if action is Action.START:
            source, note = _start_note(problem, guest.name)
            steps.append(
                Step(action, guest.name, source, found.host, found.start_s, found.ready_s, note)
            )
        elif action is Action.MIGRATE:
            steps.append(
                Step(
                    action,
                    guest.name,
                    guest.current_host,
                    found.host,
                    found.start_s,
                    found.ready_s,
                    "live migration",
                )
            )
        elif action is Action.STOP:
            note = reasons.get(guest.name, "")
            steps.append(Step(action, guest.name, guest.current_host, None, 0, 0, note))
        elif action is Action.STAY:
            steps.append(Step(action, guest.name, found.host, found.host, None, None))
        else:
            steps.append(
                Step(action, guest.name, None, None, None, None, reasons.get(guest.name, ""))
            )

    def key(step: Step) -> tuple[int, int, int, int, str]:
        timed = step.start_s is not None
        return (
            0 if timed else 1,
            step.start_s if step.start_s is not None else 0,
            _ORDER[step.action],
            step.ready_s if step.ready_s is not None else 0,
            step.guest,
        )

    return sorted(steps, key=key)
