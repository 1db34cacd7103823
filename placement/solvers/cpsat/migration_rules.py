"""Live migrations in the CP-SAT model, one function per rule family.

A guest running now moves when its unit ends on another host. Each possible move has a
start variable and an optional fixed-size interval of its migration time, present when
it moves (created with the other variables in `variables.py`; `movable: false` guests
have no other candidate host: see `view.py`). The moves obey the per-host and
cluster-wide concurrency limits (cumulatives: a move counts on its source, and on its
target through one optional interval per target host), the move budget, and load the
boot pools while they run.

Capacity over time: on a host that can lose a guest by a move and gain one, the final
state is not the peak. There one cumulative per resource holds, from the host's first
arrival `a` on (the checker's window, docs/rules.md), every guest present: guests
arriving from their start, guests of the host from `a` until they leave (never, if they
stay). Hosts that only gain guests keep the cheap final-state sum (`add_capacity`).
"""

from __future__ import annotations

from collections import defaultdict

from ortools.sat.python import cp_model

from placement.model import Guest
from placement.solvers.cpsat.variables import Variables
from placement.solvers.cpsat.view import ProblemView


def add_migration_budget(view: ProblemView, variables: Variables) -> None:
    """At most `migration.max_moves` guests move."""
    moves = variables.migrations
    budget = view.problem.migration.max_moves
    if budget is not None and len(moves.moves) > budget:
        variables.model.add(sum(moves.moving) <= budget)


def add_migration_concurrency(view: ProblemView, variables: Variables) -> None:
    """At every instant at most `max_per_host` moves involve one host (as source or
    target) and at most `max_total` run cluster-wide."""
    settings = view.problem.migration
    moves = variables.migrations
    model = variables.model
    x = variables.x
    timed = [i for i, move in enumerate(moves.moves) if move.duration_s > 0]
    if settings.max_total is not None and len(timed) > settings.max_total:
        model.add_cumulative(
            [moves.interval[i] for i in timed], [1] * len(timed), settings.max_total
        )
    if settings.max_per_host is None:
        return
    per_host: dict[int, list[cp_model.IntervalVar]] = defaultdict(list)
    for i in timed:
        move = moves.moves[i]
        per_host[move.source].append(moves.interval[i])
        for h in move.targets:
            per_host[h].append(
                model.new_optional_fixed_size_interval_var(
                    moves.start[i], move.duration_s, x[move.unit, h], ""
                )
            )
    for intervals in per_host.values():
        if len(intervals) > settings.max_per_host:
            model.add_cumulative(intervals, [1] * len(intervals), settings.max_per_host)


def add_migration_load(view: ProblemView, variables: Variables) -> None:
    """While moves run they load the boot pools by `migration.load`, together with the
    guests booting."""
    problem = view.problem
    moves = variables.migrations
    boots = variables.interval
    model = variables.model
    for pool, load in problem.migration.load.items():
        if load <= 0 or not moves.moves:
            continue
        intervals: list[cp_model.IntervalVar] = []
        demands: list[int] = []
        for i, move in enumerate(moves.moves):
            if move.duration_s > 0:
                intervals.append(moves.interval[i])
                demands.append(load)
        for b, boot in enumerate(view.boots):
            boot_load = boot.guest.boot.load.get(pool, 0)
            if boot_load > 0 and boot.duration_s > 0:
                intervals.append(boots[b])
                demands.append(boot_load)
        limit = problem.boot_pools.get(pool, 0)
        if sum(demands) > limit:
            model.add_cumulative(intervals, demands, limit)


def add_capacity_over_time(view: ProblemView, variables: Variables) -> None:
    """On hosts that can both lose a guest by a move and gain one, capacity holds at
    every instant from the host's first arrival on (see the module docstring)."""
    moves = variables.migrations
    leaving: dict[int, list[int]] = defaultdict(list)
    for i, move in enumerate(moves.moves):
        # Even a move of 0 s holds its source until it happens.
        leaving[move.source].append(i)
    if not leaving:
        return

    arrivals = _arrivals(view, variables, leaving)
    for h, departing in leaving.items():
        if not arrivals.get(h):
            continue  # it only loses guests: the final state is its peak from then on
        _add_host_over_time(view, variables, h, departing, arrivals[h])


# A guest that may arrive on a host: (its start expression, its presence, the guest).
_Arrival = tuple[cp_model.LinearExprT, cp_model.IntVar, Guest]


def _arrivals(
    view: ProblemView, variables: Variables, leaving: dict[int, list[int]]
) -> dict[int, list[_Arrival]]:
    """Per host in `leaving`, every boot and move that may end on it."""
    moves = variables.migrations
    x = variables.x
    boot_start = variables.start
    arrivals: dict[int, list[_Arrival]] = defaultdict(list)
    for boot in view.boots:
        unit = view.units[boot.unit]
        for h in unit.candidates:
            if h in leaving:
                arrivals[h].append((boot_start[boot.slot], x[unit.index, h], boot.guest))
    for i, move in enumerate(moves.moves):
        for h in move.targets:
            if h in leaving:
                arrivals[h].append((moves.start[i], x[move.unit, h], move.guest))
    return arrivals


def _add_host_over_time(
    view: ProblemView,
    variables: Variables,
    h: int,
    departing: list[int],
    arrivals: list[_Arrival],
) -> None:
    """Capacity over time on host `h`: the moves `departing` it and the `arrivals`."""
    problem = view.problem
    moves = variables.migrations
    model = variables.model
    x = variables.x
    end_s = problem.schedule.horizon_s + 1  # "for good": past every instant that matters
    first = model.new_int_var(0, end_s, "")
    for begin, present, _ in arrivals:
        model.add(first <= begin).only_enforce_if(present)
    items: list[tuple[cp_model.IntervalVar, Guest]] = []
    for begin, present, guest in arrivals:
        size = model.new_int_var(0, end_s, "")
        model.add(size == end_s - begin).only_enforce_if(present)
        items.append((model.new_optional_interval_var(begin, size, end_s, present, ""), guest))
    moving_away = {moves.moves[i].guest.name for i in departing}
    for i in departing:
        move = moves.moves[i]
        stays = x.get((move.unit, move.source))
        # Held from `first` until the move ends, for good if it stays, not at all if
        # it is stopped.
        until = model.new_int_var(0, end_s, "")
        model.add(until == moves.ready[i]).only_enforce_if(moves.moving[i])
        if stays is not None:
            model.add(until == end_s).only_enforce_if(stays)
            model.add(until == 0).only_enforce_if(~moves.moving[i], ~stays)
        else:
            model.add(until == 0).only_enforce_if(~moves.moving[i])
        clipped = model.new_int_var(0, end_s, "")
        model.add_max_equality(clipped, [until, first])
        size = model.new_int_var(0, end_s, "")
        model.add(size == clipped - first)
        items.append((model.new_interval_var(first, size, clipped, ""), move.guest))
    # Guests that may stay on the host but never move (no other candidate), kept
    # from `first` on when their unit stays.
    for unit in view.units:
        if (unit.index, h) not in x:
            continue
        for guest in unit.guests:
            if (
                guest.name in moving_away
                or not problem.runs_now(guest)
                or guest.current_host != problem.hosts[h].name
            ):
                continue
            size = model.new_int_var(0, end_s, "")
            model.add(size == end_s - first)
            items.append(
                (
                    model.new_optional_interval_var(first, size, end_s, x[unit.index, h], ""),
                    guest,
                )
            )
    for resource in view.resources:
        demands = [guest.demand.get(resource, 0) for _, guest in items]
        room = view.index.room(h, resource)
        if sum(demands) <= room:
            continue
        chosen = [(interval, d) for (interval, _), d in zip(items, demands, strict=True) if d]
        model.add_cumulative(
            [interval for interval, _ in chosen], [d for _, d in chosen], max(room, 0)
        )
