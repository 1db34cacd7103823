"""The schedule side at scale: better boot times for a placement held fixed.

On a large failover the placement stages are settled early (everyone placed, nobody
moved) and `recovery` is decided by *when* the boots start: the cluster-wide limits
(boot pools, the batch limit, the stagger gap) bind, not the hosts. The full pair model
cannot be built there, and the neighbourhoods of `large` re-solve placement and schedule
together on a model of 10,000 guests, which leaves CP-SAT no time for the schedule.
This stage keeps the incumbent's hosts and improves only the start times:

1. Priority rules: the list schedule in other orders (weight over boot time, weight over
   the energy a boot takes from its scarcest limit, inherited priority), keeping the best
   by recovery.
2. CP-SAT on windows of boots: the start units (a start group, or one guest) whose start
   falls in a window of the current schedule are free, every other boot is held where it
   is; a lean model (pool, batch-limit and per-host cumulatives, `after`, stagger,
   horizon, start groups as one start) minimises the weighted ready times of the window,
   hinted with the current schedule. When every unit fits one window, the whole schedule
   is one model. A window's answer is kept only when it lowers recovery.

Every plan this stage returns has passed `placement.check` (the caller keeps its input
otherwise). Boots on a host that a migration leaves keep their start as the earliest one
(the room they use may be freed by that migration); boots elsewhere only ever find more
room later, so any start the rules allow is valid there.
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np
from ortools.sat.python import cp_model

from placement.check import check
from placement.model import BALANCE_STEPS, Guest, Host, Problem
from placement.plan import Action, Plan, StageResult
from placement.solvers import SolveOptions
from placement.solvers.budget import Budget
from placement.solvers.common import HostLoads, better, units_of
from placement.solvers.cpsat.search import run_search
from placement.solvers.schedule import list_schedule

logger = logging.getLogger(__name__)

# Start units a window frees, at first and within bounds: on L-0 (176 units, 2 busy
# cores) a model of every unit found nothing better than its hint in 20 s, while windows
# of 20 units, each solved for up to half a second, improved the schedule 2-4 % in 20 s
# (windows of 40 for a second each: 1 %).
INITIAL_WINDOW_UNITS = 20
MIN_WINDOW_UNITS = 8
MAX_WINDOW_UNITS = 120
# CP-SAT time per window (s), and the least time worth starting one with.
WINDOW_S = 0.5
MIN_WINDOW_S = 0.2
# The least work a window is charged in deterministic mode, so that windows CP-SAT
# closes in no time still end the search.
MIN_WINDOW_CHARGE_S = 0.05


def _leaving_hosts(problem: Problem, plan: Plan) -> set[str | None]:
    """Hosts a migration of `plan` leaves (room there grows when it ends)."""
    return {
        problem.guest(a.guest).current_host for a in plan.assignments if a.action is Action.MIGRATE
    }


class BootSchedule:
    """The boots of one plan, as arrays indexed by boot and by start unit.

    A start unit is a start group's members, or one booting guest outside any group: its
    members share one start instant. `release[u]` is the earliest start unit `u` may take.
    """

    def __init__(self, problem: Problem, plan: Plan) -> None:
        self.problem = problem
        host_position = {h.name: i for i, h in enumerate(problem.hosts)}
        leaving = _leaving_hosts(problem, plan)
        starts = [a for a in plan.assignments if a.action is Action.START]
        self.guests: list[Guest] = [problem.guest(a.guest) for a in starts]
        self.host: list[int] = [host_position[a.host or ""] for a in starts]
        self.start: list[int] = [int(a.start_s or 0) for a in starts]
        boot_of = {g.name: b for b, g in enumerate(self.guests)}
        self.boot_of = boot_of
        unit_of_group: dict[str, int] = {}
        self.units: list[list[int]] = []
        self.unit_of: list[int] = []
        for b, guest in enumerate(self.guests):
            group = guest.boot.group
            if group is not None and group in unit_of_group:
                u = unit_of_group[group]
                self.units[u].append(b)
            else:
                u = len(self.units)
                self.units.append([b])
                if group is not None:
                    unit_of_group[group] = u
            self.unit_of.append(u)
        self.release = [
            max(
                (self.start[b] if starts[b].host in leaving else 0 for b in members),
                default=0,
            )
            for members in self.units
        ]
        # Booting dependencies per boot (a running dependency is ready at 0).
        self.after: list[list[int]] = [
            [boot_of[d] for d in g.boot.after if d in boot_of] for g in self.guests
        ]
        self.dependants: list[list[int]] = [[] for _ in self.guests]
        for b, deps in enumerate(self.after):
            for d in deps:
                self.dependants[d].append(b)
        # Migrations hold the pools as boots do; they stay where the plan has them.
        self.migration_loads: list[tuple[int, int, Mapping[str, int]]] = [
            (int(a.start_s or 0), int(a.ready_s or 0), problem.migration.load)
            for a in plan.assignments
            if a.action is Action.MIGRATE and problem.migration.load
        ]

    def unit_start(self, starts: Sequence[int], u: int) -> int:
        return starts[self.units[u][0]]

    def recovery(self, starts: Sequence[int]) -> int:
        """The priority-weighted sum of ready times of the boots at `starts`."""
        return sum(
            g.weight * (s + g.boot.duration_s) for g, s in zip(self.guests, starts, strict=True)
        )


# --- priority rules ----------------------------------------------------------------------


def _rules(problem: Problem) -> list[Callable[[Sequence[Guest]], tuple[float, float]]]:
    """Priority keys of a start unit (its members), larger first.

    The unit's weight over its longest boot, or over its members' mean boot (the
    weighted-shortest-first rule for a unit that holds one slot of the stagger and, per
    member, one of the batch limit); and start groups before every lone guest, then by
    weight over boot time or over the energy the boots take from the scarcest
    cluster-wide limit. A start group needs several batch slots at one instant, which
    are all free only at the start: on L-0 (18 groups of 3-4, batch limit 24) ranking
    each group by its best member, as the list schedule does, cost 25,000 of recovery
    (263,725 against 238,860 with groups first).
    """
    limit = problem.schedule.max_starts

    def share(guest: Guest) -> float:
        used = max(
            (guest.boot.load.get(pool, 0) / cap for pool, cap in problem.boot_pools.items()),
            default=0.0,
        )
        return max(used, 1 / limit if limit else 0.0, 1e-3)

    def weight(members: Sequence[Guest]) -> float:
        return float(sum(g.weight for g in members))

    def group(members: Sequence[Guest]) -> float:
        return 1.0 if members[0].boot.group is not None else 0.0

    return [
        lambda m: (0.0, weight(m) / max(g.boot.duration_s + 1 for g in m)),
        lambda m: (0.0, weight(m) * len(m) / sum(g.boot.duration_s + 1 for g in m)),
        lambda m: (group(m), weight(m) / sum(g.boot.duration_s + 1 for g in m)),
        lambda m: (group(m), weight(m) / sum((g.boot.duration_s + 1) * share(g) for g in m)),
    ]


def _boot_problem(problem: Problem, boots: BootSchedule) -> Problem:
    """`problem` cut down to the booting guests and the guests they start after: the list
    scheduler times only guests that start, so the other running guests are dead weight
    (10,000 guests cost a second per schedule)."""
    keep = {g.name for g in boots.guests}
    keep.update(d for g in boots.guests for d in g.boot.after)
    guests = [g for g in problem.guests if g.name in keep]
    return attrs.evolve(problem, guests=guests)


def priority_rule_schedules(
    problem: Problem, boots: BootSchedule, hosts: Mapping[str, str | None]
) -> list[tuple[str, list[int]]]:
    """(rule, starts) for each priority rule whose list schedule times every boot."""
    small = _boot_problem(problem, boots)
    not_before = {
        boots.guests[b].name: boots.release[u]
        for u, members in enumerate(boots.units)
        for b in members
        if boots.release[u] > 0
    }
    found = []
    for number, key in enumerate(_rules(problem)):
        members = [[boots.guests[b] for b in unit] for unit in boots.units]
        ranked = sorted(range(len(members)), key=lambda u: key(members[u]))
        # Ranks stand in for priorities (the list schedule takes higher ones first); a
        # guest that only runs (a dependency) is not timed, so its rank does not matter.
        rank = {g.name: 1 + i for i, u in enumerate(ranked) for g in members[u]}
        reordered = attrs.evolve(
            small, guests=[attrs.evolve(g, priority=rank.get(g.name, 0)) for g in small.guests]
        )
        timing = list_schedule(reordered, hosts, not_before)
        if timing.unscheduled or len(timing.starts) != len(boots.guests):
            continue
        found.append((f"rule-{number}", [timing.starts[g.name] for g in boots.guests]))
    return found


# --- CP-SAT on a window of start units ---------------------------------------------------


@attrs.define
class _Window:
    """The model of one window: free units' start variables and the objective's terms."""

    model: cp_model.CpModel
    start: dict[int, cp_model.IntVar]
    weight: dict[int, int]


def _domains(
    boots: BootSchedule, starts: Sequence[int], free: Sequence[int], slack_s: int | None
) -> dict[int, tuple[int, int]]:
    """Per free unit, the interval its start may take: from its release and its held
    dependencies' ready times to the horizon and its held dependants' starts; within
    `slack_s` of its current start when given (a time window)."""
    horizon = boots.problem.schedule.horizon_s
    free_set = set(free)
    domains = {}
    for u in free:
        lo, hi = boots.release[u], horizon
        for b in boots.units[u]:
            duration = boots.guests[b].boot.duration_s
            hi = min(hi, horizon - duration)
            for d in boots.after[b]:
                if boots.unit_of[d] not in free_set:
                    lo = max(lo, starts[d] + boots.guests[d].boot.duration_s)
            for f in boots.dependants[b]:
                if boots.unit_of[f] not in free_set:
                    hi = min(hi, starts[f] - duration)
        current = boots.unit_start(starts, u)
        if slack_s is not None:
            lo, hi = max(lo, current - slack_s), min(hi, current + slack_s)
        domains[u] = (min(lo, current), max(hi, current))
    return domains


def _build_window(
    boots: BootSchedule, starts: Sequence[int], free: Sequence[int], slack_s: int | None
) -> _Window:
    """The lean schedule model of `free` units with every other boot held at `starts`."""
    model = cp_model.CpModel()
    domains = _domains(boots, starts, free, slack_s)
    start = {u: model.new_int_var(lo, hi, "") for u, (lo, hi) in domains.items()}
    free_set = set(free)
    # Held boots matter only where a free one may overlap them.
    span_lo = min(lo for lo, _ in domains.values())
    span_hi = max(
        hi + max(boots.guests[b].boot.duration_s for b in boots.units[u])
        for u, (_, hi) in domains.items()
    )
    # Per boot: its interval (a variable one when free, a fixed one when held nearby).
    interval: dict[int, cp_model.IntervalVar] = {}
    for b, guest in enumerate(boots.guests):
        duration = guest.boot.duration_s
        if duration == 0:
            continue
        u = boots.unit_of[b]
        if u in free_set:
            interval[b] = model.new_fixed_size_interval_var(start[u], duration, "")
        elif starts[b] < span_hi and starts[b] + duration > span_lo:
            interval[b] = model.new_fixed_size_interval_var(starts[b], duration, "")
    _add_cumulatives(boots, model, interval, span_lo, span_hi)
    # Each free boot starts once every booting guest it starts after is ready.
    for u in free:
        for b in boots.units[u]:
            for d in boots.after[b]:
                v = boots.unit_of[d]
                if v in free_set and v != u:
                    model.add(start[u] >= start[v] + boots.guests[d].boot.duration_s)
    _add_stagger(boots, model, starts, start, span_lo, span_hi)
    weight = {u: sum(boots.guests[b].weight for b in boots.units[u]) for u in free}
    model.minimize(sum(weight[u] * start[u] for u in free))
    for u in free:
        model.add_hint(start[u], boots.unit_start(starts, u))
    return _Window(model, start, weight)


def _add_cumulatives(
    boots: BootSchedule,
    model: cp_model.CpModel,
    interval: Mapping[int, cp_model.IntervalVar],
    span_lo: int,
    span_hi: int,
) -> None:
    """Boot pools (with the plan's migrations), the batch limit and each host's boot CPU
    and start limits, over the boots that have an interval in the window's model."""
    problem = boots.problem
    for pool, limit in problem.boot_pools.items():
        items = [
            (interval[b], boots.guests[b].boot.load.get(pool, 0))
            for b in interval
            if boots.guests[b].boot.load.get(pool, 0) > 0
        ]
        for begin, end, load in boots.migration_loads:
            if load.get(pool, 0) > 0 and begin < span_hi and end > span_lo and end > begin:
                items.append(
                    (model.new_fixed_size_interval_var(begin, end - begin, ""), load[pool])
                )
        if sum(load for _, load in items) > limit:
            model.add_cumulative([i for i, _ in items], [d for _, d in items], limit)
    batch = problem.schedule.max_starts
    if batch is not None and len(interval) > batch:
        model.add_cumulative(list(interval.values()), [1] * len(interval), batch)
    per_host: dict[int, list[int]] = defaultdict(list)
    for b in interval:
        per_host[boots.host[b]].append(b)
    for h, members in per_host.items():
        host = problem.hosts[h]
        intervals = [interval[b] for b in members]
        if host.boot.cpu is not None:
            cpus = [boots.guests[b].boot.cpu for b in members]
            if sum(cpus) > host.boot.cpu:
                model.add_cumulative(intervals, cpus, host.boot.cpu)
        if host.boot.max_starts is not None and len(members) > host.boot.max_starts:
            model.add_cumulative(intervals, [1] * len(members), host.boot.max_starts)


def _add_stagger(
    boots: BootSchedule,
    model: cp_model.CpModel,
    starts: Sequence[int],
    start: Mapping[int, cp_model.IntVar],
    span_lo: int,
    span_hi: int,
) -> None:
    """Start instants of different units at least `stagger_s` apart: a gap-long interval
    from each unit's start, none overlapping (held units near the window included)."""
    gap = boots.problem.schedule.stagger_s
    if gap <= 0:
        return
    gaps = []
    for u in range(len(boots.units)):
        if u in start:
            gaps.append(model.new_fixed_size_interval_var(start[u], gap, ""))
        else:
            at = boots.unit_start(starts, u)
            if span_lo - gap < at < span_hi + gap:
                gaps.append(model.new_fixed_size_interval_var(at, gap, ""))
    if len(gaps) > 1:
        model.add_no_overlap(gaps)


def solve_window(
    boots: BootSchedule,
    starts: Sequence[int],
    free: Sequence[int],
    budget: Budget,
    seconds: float,
    options: SolveOptions,
    seed: int,
    slack_s: int | None = None,
) -> tuple[list[int] | None, bool]:
    """Better starts for the `free` units with the others held (None when CP-SAT finds
    none within `seconds` of `budget`, which it is charged to), and whether CP-SAT proved
    the window optimal."""
    window = _build_window(boots, starts, free, slack_s)
    solver = cp_model.CpSolver()
    parameters = solver.parameters
    parameters.num_workers = max(1, options.workers)
    parameters.random_seed = seed
    budget.limit_cpsat(parameters, seconds)
    status = run_search(solver, window.model, budget)
    optimal = status == cp_model.OPTIMAL
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None, False
    current = sum(window.weight[u] * boots.unit_start(starts, u) for u in free)
    if solver.objective_value >= current - 0.5:
        return None, optimal
    found = list(starts)
    for u in free:
        value = int(solver.value(window.start[u]))
        for b in boots.units[u]:
            found[b] = value
    return found, optimal


def _window(boots: BootSchedule, starts: Sequence[int], size: int, rng: random.Random) -> list[int]:
    """`size` units in a row of the current start order, from a random place in it."""
    order = sorted(range(len(boots.units)), key=lambda u: (boots.unit_start(starts, u), u))
    if len(order) <= size:
        return order
    first = rng.randrange(len(order) - size + 1)
    return order[first : first + size]


# --- the placement side: boots spread for balance ----------------------------------------


def _final_loads(problem: Problem, plan: Plan, keep_out: set[str]) -> HostLoads:
    """Every guest's final host load under `plan` (frozen copies included), but the
    guests of `keep_out`."""
    loads = HostLoads(problem)
    for a in plan.assignments:
        if a.host is not None and a.guest not in keep_out:
            loads.add(problem.guest(a.guest), a.host)
    return loads


def _steps(loads: HostLoads) -> int:
    """The plan's `balance` in steps: the fullest online host and resource."""
    counted = loads.usable > 0
    ratio = np.where(counted, -(-BALANCE_STEPS * loads.used // np.maximum(loads.usable, 1)), 0)
    return int(ratio[loads.online].max(initial=0))


def _boot_limits_hold(
    host: Host, held: Sequence[tuple[int, int, int]], adding: Sequence[tuple[int, int, int]]
) -> bool:
    """Whether `host`'s boot CPU and start limits hold with the boots (start, ready, cpu)
    of `held` and `adding` together."""
    if host.boot.cpu is None and host.boot.max_starts is None:
        return True
    events = sorted(
        [(s, 1, cpu) for s, e, cpu in (*held, *adding) if e > s]
        + [(e, -1, -cpu) for s, e, cpu in (*held, *adding) if e > s]
    )
    count = cpu_used = 0
    for _, step, cpu in events:  # ends sort before starts at one instant (-1 < 1)
        count += step
        cpu_used += cpu
        if host.boot.cpu is not None and cpu_used > host.boot.cpu:
            return False
        if host.boot.max_starts is not None and count > host.boot.max_starts:
            return False
    return True


def spread_boots(problem: Problem, plan: Plan) -> Plan | None:
    """`plan` with its booting placement units moved, at the same start times, to the
    hosts left with the most room (worst fit, largest unit first), or None when that
    does not lower `balance`. A unit keeps its host when a member follows or is followed,
    or the host is one a migration leaves; a host a migration leaves takes no boot."""
    by_guest = plan.by_guest()
    leaving = {
        problem.guest(a.guest).current_host for a in plan.assignments if a.action is Action.MIGRATE
    }
    followed = {g.follows for g in problem.guests if g.follows}
    movable = [
        unit
        for unit in units_of(problem, (a.guest for a in plan.assignments if a.host is not None))
        if all(
            by_guest[g.name].action is Action.START
            and g.follows is None
            and g.name not in followed
            and by_guest[g.name].host not in leaving
            for g in unit.guests
        )
    ]
    if not movable:
        return None
    moving = {name for unit in movable for name in unit.names}
    loads = _final_loads(problem, plan, moving)
    before = _final_loads(problem, plan, set())
    boots: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for a in plan.assignments:
        if a.action is Action.START and a.guest not in moving and a.host is not None:
            boots[problem.host_position(a.host)].append(
                (int(a.start_s or 0), int(a.ready_s or 0), problem.guest(a.guest).boot.cpu)
            )
    blocked = np.array([h.name in leaving for h in problem.hosts], dtype=bool)
    usable = np.maximum(loads.usable, 1).astype(float)
    hosts: dict[str, str] = {}
    for unit in sorted(movable, key=lambda u: (-max(u.demand.values(), default=0), u.label)):
        mask = loads.candidates(unit) & ~blocked
        adding = [
            (int(by_guest[g.name].start_s or 0), int(by_guest[g.name].ready_s or 0), g.boot.cpu)
            for g in unit.guests
        ]
        after = (loads.used + loads.demand_vector(unit.demand)) / usable
        score = np.where(mask, after.max(axis=1, initial=0.0), np.inf)
        chosen = next(
            (
                int(h)
                for h in np.argsort(score, kind="stable")
                if np.isfinite(score[h])
                and _boot_limits_hold(problem.hosts[int(h)], boots[int(h)], adding)
            ),
            None,
        )
        if chosen is None:
            return None
        loads.add(unit, problem.hosts[chosen].name)
        boots[chosen].extend(adding)
        hosts.update((name, problem.hosts[chosen].name) for name in unit.names)
    if _steps(loads) >= _steps(before):
        return None
    assignments = [
        attrs.evolve(a, host=hosts[a.guest]) if a.guest in hosts else a for a in plan.assignments
    ]
    return attrs.evolve(plan, assignments=assignments)


# --- the stage ---------------------------------------------------------------------------


def _with_starts(problem: Problem, plan: Plan, boots: BootSchedule, starts: Sequence[int]) -> Plan:
    """`plan` with its boots at `starts`, its stages valued by the checker's rules."""
    by_name = {g.name: s for g, s in zip(boots.guests, starts, strict=True)}
    assignments = [
        attrs.evolve(
            a,
            start_s=by_name[a.guest],
            ready_s=by_name[a.guest] + problem.guest(a.guest).boot.duration_s,
        )
        if a.guest in by_name
        else a
        for a in plan.assignments
    ]
    return attrs.evolve(plan, assignments=assignments)


def _checked(problem: Problem, plan: Plan) -> Plan | None:
    report = check(problem, plan)
    if not report.ok:
        logger.error(
            "BUG: the schedule stage built a plan that fails the checker: %s",
            report.violations[0].message,
        )
        return None
    values = report.metrics["objectives"]
    stages = [
        StageResult(o.value, float(values[o.value]))
        if not any(s.name == o.value for s in plan.stages)
        else attrs.evolve(
            next(s for s in plan.stages if s.name == o.value), value=float(values[o.value])
        )
        for o in problem.objective
    ]
    return attrs.evolve(plan, stages=stages)


def improve_schedule(
    problem: Problem, plan: Plan, options: SolveOptions, budget: Budget
) -> tuple[Plan, dict[str, Any]]:
    """`plan` with its boots re-timed for a lower `recovery` within `budget` (the priority
    rules always run, the windows while time is left), and its booting units spread over
    the roomiest hosts when that lowers `balance` at the same times; returns the plan
    (`plan` itself when nothing better passed the checker) and a log of what each step
    found (`statistics.ScheduleSearch.from_log` types it)."""
    started = time.perf_counter()
    # Boots spread first, at the list schedule's times: the rules then time them on
    # hosts whose boot limits no longer bind (first fit's placement of L-0 held 33 boots
    # on one host; its best rule ended 7,000 behind worst fit's).
    spread = spread_boots(problem, plan)
    base = spread or plan
    boots = BootSchedule(problem, base)
    metrics: dict[str, Any] = {
        "boots": len(boots.guests),
        "units": len(boots.units),
        "spread": spread is not None,
    }
    if not boots.guests:
        return plan, metrics
    starts = list(boots.start)
    metrics["list"] = boots.recovery(starts)
    hosts = {a.guest: a.host for a in base.assignments}
    for rule, found in priority_rule_schedules(problem, boots, hosts):
        metrics[rule] = boots.recovery(found)
        if boots.recovery(found) < boots.recovery(starts):
            starts = found
    metrics["rules_s"] = round(time.perf_counter() - started, 3)
    starts, metrics["windows"] = _search_windows(boots, starts, options, budget)
    metrics["recovery"] = boots.recovery(starts)
    candidate = _with_starts(problem, base, boots, starts)
    if candidate.assignments == plan.assignments:
        return plan, metrics
    checked = _checked(problem, candidate)
    metrics["seconds"] = round(time.perf_counter() - started, 3)
    if checked is None or not better(problem, checked, plan):
        return plan, metrics
    return checked, metrics


def _search_windows(
    boots: BootSchedule, starts: list[int], options: SolveOptions, budget: Budget
) -> tuple[list[int], dict[str, Any]]:
    """Windows of start units solved one after another within `budget`: each a run of
    consecutive units in start order, free within `slack` of their start. The window
    grows while CP-SAT proves windows optimal well within their time and shrinks when it
    does not. In deterministic mode the budget counts CP-SAT's work (at least
    `MIN_WINDOW_CHARGE_S` a window), so the same windows are solved on every run the
    wall backstop does not cut.
    Returns the best starts and a summary of the windows."""
    rng = random.Random(options.seed)
    size = min(INITIAL_WINDOW_UNITS, len(boots.units))
    summary = {"windows": 0, "improved": 0, "optimal": 0, "largest": size}
    while not budget.expired and budget.remaining() >= MIN_WINDOW_S:
        free = _window(boots, starts, size, rng)
        longest = max(boots.guests[b].boot.duration_s for u in free for b in boots.units[u])
        seconds = min(budget.remaining(), WINDOW_S)
        before = budget.elapsed()
        found, optimal = solve_window(
            boots,
            starts,
            free,
            budget,
            seconds,
            options,
            rng.randrange(1 << 30),
            slack_s=2 * longest,
        )
        spent = budget.elapsed() - before
        if budget.deterministic and spent < MIN_WINDOW_CHARGE_S:
            budget.charge(MIN_WINDOW_CHARGE_S - spent)
        summary["windows"] += 1
        summary["optimal"] += optimal
        if found is not None and boots.recovery(found) < boots.recovery(starts):
            starts = found
            summary["improved"] += 1
        elif optimal and len(free) == len(boots.units) and 2 * longest >= _span(boots, starts):
            break  # the whole schedule is optimal for this placement
        if optimal and spent < seconds / 2:
            size = min(len(boots.units), MAX_WINDOW_UNITS, size + max(1, size // 5))
        elif not optimal:
            size = max(MIN_WINDOW_UNITS, size - max(1, size // 5))
        summary["largest"] = max(summary["largest"], size)
    return starts, summary


def _span(boots: BootSchedule, starts: Sequence[int]) -> int:
    """The time from the first start to the last ready instant (s)."""
    return max(s + g.boot.duration_s for g, s in zip(boots.guests, starts, strict=True)) - min(
        starts
    )
