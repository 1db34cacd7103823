"""The seed portfolio: the best verified baseline plan, the optimiser's first plan and hint.

Every baseline and peer (and the caller's plan when re-planning, `SolveOptions.hint`) is
a candidate; only plans that pass the checker count. The best one is then packed again
by the tighter packers when it leaves guests out, and list-scheduled in other orders.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import attrs

from placement.check import CheckReport, check
from placement.model import Guest, Problem
from placement.plan import (
    Action,
    Plan,
    StageResult,
)
from placement.solvers import (
    SolveFunction,
    SolveOptions,
    available_solvers,
    get_solver,
    vector_packing,
)
from placement.solvers.budget import SHARES, Budget, heuristic_pass_s
from placement.solvers.common import better
from placement.solvers.migration_schedule import time_migrations
from placement.solvers.schedule import list_schedule
from placement.statistics import SeedRun

logger = logging.getLogger(__name__)

_GREEDY_SEEDS = ("best-fit", "first-fit", "worst-fit")
# How long a seed takes against best fit (plan and check), measured on 10,000 guests x
# 1,000 hosts; the rest take about as long as best fit. The local search (descent-rebalance)
# took 7-9 s there whatever its limit (its first pass), 10-13 times best fit.
_SEED_COST = {
    "pacemaker-minimal": 8.0,
    "pacemaker-utilization": 8.0,
    "pacemaker-balanced": 12.0,
    "descent-rebalance": 15.0,
    # Bin-centric packing scores every unit left at each step: on the L cold pack about
    # 10 s each against best fit's 2 s (the whole portfolio took 65 s there).
    **{
        f"{vector_packing.SOLVER_NAME}/bin-centric-{score}": 6.0
        for score in vector_packing.BIN_SCORES
    },
}


def _seed_cost(name: str) -> float:
    return _SEED_COST.get(name, 1.0)


def greedy_incumbent(
    problem: Problem,
    options: SolveOptions,
    budget: Budget,
    record: list[SeedRun] | None = None,
    enough: Callable[[Plan], bool] | None = None,
) -> Plan | None:
    """The best verified baseline plan (with the list schedule), or None: the seeds run
    within `SHARES.seeds` of `budget`'s limit, from its start; each seed run is added to
    `record` when one is given. Seeding stops early once `enough` says the best plan so
    far needs no other seed."""
    best: Plan | None = None
    if options.hint is not None:
        # The caller's plan (re-planning: the one being carried out), if it is valid here.
        best = _checked_variant(problem, options.hint)
    # Local-search baselines (descent-rebalance) stop at their time limit: at most a quarter,
    # and only what is left of it when they start (below).
    seed_options = attrs.evolve(
        options,
        schedule="list",
        on_progress=None,
        hint=None,
        time_limit_s=SHARES.local_search_seed * budget.limit_s,
    )
    seeds = budget.sub(SHARES.seeds * budget.limit_s)
    # How long the first seed takes: the scale of the others. Measured, except in
    # deterministic mode, where the portfolio is sized by the problem alone (an estimate
    # charged as work), so that the same seeds run on any machine.
    scale_s: float | None = (
        heuristic_pass_s(len(problem.guests), len(problem.hosts)) if budget.deterministic else None
    )
    for name, function in _seeds():
        if best is not None and (seeds.stopped or (seeds.deterministic and seeds.expired)):
            break  # interrupted (or past the wall backstop): the best seed so far is the plan
        elapsed = seeds.elapsed()
        # Start a seed only if it should end within the budget (on 10,000 guests the
        # Pacemaker re-creations take 8-12 times as long as best fit).
        expected = _seed_cost(name) * (scale_s or 0.0)
        if best is not None and scale_s is not None and not seeds.fits(expected):
            continue
        seed_started = time.perf_counter()
        # A local search (descent-rebalance) runs to its limit: what is left of the budget
        # after its own check (about a seed's time); it took 17 s on the 10,000-guest
        # failover when given the whole quarter, and overruns its limit a little.
        left_s = SHARES.local_search_left * (seeds.limit_s - elapsed - (scale_s or 0.0))
        plan = function(problem, attrs.evolve(seed_options, time_limit_s=max(left_s, 0.05)))
        report = check(problem, plan)
        if scale_s is None:
            scale_s = time.perf_counter() - seed_started
        seeds.charge(_seed_cost(name) * scale_s)  # (counts in deterministic mode)
        kept = report.ok and (best is None or better(problem, plan, best))
        if record is not None:
            record.append(_seed_run(problem, name, seed_started, report, kept))
        if not report.ok:
            if name in _GREEDY_SEEDS or name.startswith(vector_packing.SOLVER_NAME):
                logger.error(
                    "BUG: baseline %s produced a plan that fails the checker: %s",
                    name,
                    report.violations[0].message,
                )
            continue
        if kept:
            best = plan
        if enough is not None and best is not None and enough(best):
            break
    if best is not None and seeds.stopped:
        return best
    if best is not None and best.unplaced and seeds.remaining() > 2 * (scale_s or 0.0):
        seeds.charge(2 * (scale_s or 0.0))
        for variant in _repacked(problem, best, seed_options):
            if better(problem, variant, best):
                best = variant
    if best is not None and len(problem.guests) <= 5_000:
        for variant in _reordered_schedules(problem, best):
            if better(problem, variant, best):
                best = variant
    return best


def _seed_run(
    problem: Problem, name: str, started: float, report: CheckReport, kept: bool
) -> SeedRun:
    """What a seed did: its stage values by the checker (none when it broke a rule)."""
    values = report.metrics["objectives"] if report.ok else {}
    return SeedRun(
        name=name,
        seconds=round(time.perf_counter() - started, 3),
        valid=report.ok,
        kept=kept,
        values={o.value: values[o.value] for o in problem.objective if o.value in values},
    )


def _seeds() -> list[tuple[str, SolveFunction]]:
    """Every baseline and peer, by name, in the order they are tried.

    Every one is a candidate start: the optimiser must never end worse than any of them.
    Peers may break rules (that is their finding); only plans that pass the checker seed
    the search. Best fit comes first; the others run while no more than a quarter of the
    time limit is spent."""
    others = [
        info.name
        for info in available_solvers()
        if info.kind != "optimiser"
        and info.name not in (*_GREEDY_SEEDS, vector_packing.SOLVER_NAME)
    ]
    # Cheap ones first: the greedy packers, then the vector-packing heuristics one by one
    # (as one baseline they take 14 packers' time, which 10,000 guests do not leave, and
    # one of them may place more: first fit by the largest share on the L cold pack),
    # then the others, the slowest peers last.
    return [
        *((name, get_solver(name).function) for name in _GREEDY_SEEDS),
        *vector_packing.seed_functions(),
        *((name, get_solver(name).function) for name in sorted(others, key=_seed_cost)),
    ]


def _checked_variant(problem: Problem, plan: Plan) -> Plan | None:
    """`plan` with the checker's stage values, or None if it breaks a rule (one check)."""
    report = check(problem, plan)
    if not report.ok:
        return None
    values = report.metrics["objectives"]
    stages = [StageResult(o.value, float(values[o.value])) for o in problem.objective]
    return attrs.evolve(plan, stages=stages)


def _repacked(problem: Problem, plan: Plan, options: SolveOptions) -> list[Plan]:
    """The guests `plan` places, packed again by the tighter packers (checked plans only).

    The seed that places the most often spreads to do it (worst fit: on a cold pack of
    10,000 guests it placed 2 more than first fit, on 980 hosts instead of 355); packing
    exactly its guests with first or best fit keeps `placed` and may need far fewer hosts.
    The guests it leaves out stay out with their reasons (whatever waits for them is out
    too, so no kept guest depends on one)."""

    left_out = {u.guest for u in plan.unplaced}
    kept = [g for g in problem.guests if g.name not in left_out]
    if len(kept) == len(problem.guests) or any(
        dependency in left_out for g in kept for dependency in g.boot.after
    ):
        return []
    smaller = attrs.evolve(problem, guests=kept)
    outside = [a for a in plan.assignments if a.guest in left_out]
    variants: list[Plan] = []
    for name in ("first-fit", "best-fit"):
        packed = get_solver(name).function(smaller, options)
        if packed.unplaced:
            continue  # it leaves out more than the plan did
        variant = _checked_variant(
            problem,
            attrs.evolve(
                packed, assignments=(*packed.assignments, *outside), unplaced=plan.unplaced
            ),
        )
        if variant is not None:
            variants.append(variant)
    return variants


def _reordered_schedules(problem: Problem, plan: Plan) -> list[Plan]:
    """The same placement, list-scheduled in other orders (checked plans only).

    The list schedule starts guests in priority order; for the weighted sum of ready
    times, weighted-shortest-first orders (by boot time, or by the share of the scarcest
    boot limit a boot uses over its time) are often far better starting points.
    """

    def bottleneck(guest: Guest) -> float:
        share = max(
            (guest.boot.load.get(pool, 0) / limit for pool, limit in problem.boot_pools.items()),
            default=0.0,
        )
        if problem.schedule.max_starts:
            share = max(share, 1 / problem.schedule.max_starts)
        return share

    # The longest chain of boots from a guest's start to the end of the `after` graph:
    # the classic latest-finish priority for the makespan (RCPSP's strongest simple rule).
    followers: dict[str, list[Guest]] = {g.name: [] for g in problem.guests}
    for guest in problem.guests:
        for name in guest.boot.after:
            if name in followers:
                followers[name].append(guest)
    tail: dict[str, int] = {}
    for guest in reversed(_topological(problem)):
        after = max((tail[f.name] for f in followers[guest.name]), default=0)
        tail[guest.name] = guest.boot.duration_s + after

    orders: list[Callable[[Guest], float]] = [
        lambda g: g.weight / (g.boot.duration_s + 1),
        lambda g: g.weight / ((g.boot.duration_s + 1) * max(bottleneck(g), 1e-3)),
        lambda g: tail[g.name],
    ]
    hosts = {a.guest: a.host for a in plan.assignments}
    # Boots still wait for the room the plan's migrations free (timed as baselines do).
    not_before = time_migrations(problem, hosts).not_before
    variants: list[Plan] = []
    for key in orders:
        # Ranks stand in for priorities; the schedule's validity does not depend on them.
        rank = {g.name: i for i, g in enumerate(sorted(problem.guests, key=key))}
        ranked = attrs.evolve(
            problem, guests=[attrs.evolve(g, priority=rank[g.name]) for g in problem.guests]
        )
        timing = list_schedule(ranked, hosts, not_before)
        if timing.unscheduled:
            continue
        assignments = [
            attrs.evolve(
                a,
                start_s=timing.starts[a.guest],
                ready_s=timing.starts[a.guest] + problem.guest(a.guest).boot.duration_s,
            )
            if a.action is Action.START
            else a
            for a in plan.assignments
        ]
        variant = _checked_variant(problem, attrs.evolve(plan, assignments=assignments))
        if variant is not None:
            variants.append(variant)
    return variants


# The lean path of pure schedules (`pure`) takes these orders too.
reordered_schedules = _reordered_schedules


def _topological(problem: Problem) -> list[Guest]:
    """The guests, each after every guest it starts `after` (ties in problem order; an
    edge that would close a cycle is ignored, though the codec refuses cycles)."""
    placed: set[str] = set()
    visiting: set[str] = set()  # on the current path (guards against a cycle anyway)
    order: list[Guest] = []
    by_name = {g.name: g for g in problem.guests}

    def visit(guest: Guest) -> None:
        stack = [(guest, iter(guest.boot.after))]
        visiting.add(guest.name)
        while stack:
            current, pending = stack[-1]
            name = next(
                (n for n in pending if n in by_name and n not in placed and n not in visiting),
                None,
            )
            if name is not None:
                visiting.add(name)
                stack.append((by_name[name], iter(by_name[name].boot.after)))
                continue
            stack.pop()
            visiting.discard(current.name)
            if current.name not in placed:
                placed.add(current.name)
                order.append(current)

    for guest in problem.guests:
        if guest.name not in placed:
            visit(guest)
    return order
