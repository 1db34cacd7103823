"""The lean path: no seed or stage the problem does not need.

Two kinds of problem need little of what the optimiser is built around (the seed
portfolio of every baseline and peer, the stage loop, migrations, neighbourhoods):

- a **pure schedule**: every guest boots, each on the one host it may use, and the
  objective is `makespan` or `recovery` after `placed` (PSPLIB's RCPSP, `bench.psplib`).
  Placement is fixed; what is left is an RCPSP. Best fit and its list schedules in other
  orders (latest finish first...) give the seed; on a makespan, double justification of
  the seed and of a few sampled list schedules (`rcpsp_heuristics`) may shorten it. CP-SAT
  gets the rest of the time on the plain model (one fixed-size interval per boot, one
  cumulative per boot pool and for the batch limit, `after` as precedences, each start
  within the window its `after` chains and the seed's makespan leave), hinted with the
  seed, with its default search.
  Its plan goes through the checker; one that fails is logged as a bug and the seed is
  returned instead.
- a **pure packing**: every guest boots at 0 with nothing to schedule (no boot pool,
  batch or host boot limit, `after`, start group or stagger), on identical empty hosts
  with no placement rule, and the objective is `consolidate` after `placed` (vector bin
  packing, `bench.vbp`). Only the seeds that pay on packings run (the packers, the
  vector-packing heuristics, first fit in problem order), up to the first that meets
  the packing's lower bound (`packing_search`); the ejection search then looks for bins
  fewer, and the stage loop (`stages`, with its host-emptying neighbourhoods) starts from
  its packing with the time left, unless it met the bound (proven optimal).

`pure_kind` is cheap on every other problem (its objective rules most out).
docs/optimiser.md says what was measured, and what was tried and did not pay.
"""

from __future__ import annotations

import enum
import logging
import math
import time

import attrs
from ortools.sat.python import cp_model

from placement.bounds import StageBounds, makespan_lower_bound
from placement.check import check
from placement.indexing import HostIndex
from placement.model import Guest, GuestState, Host, Objective, Problem
from placement.plan import Action, Assignment, Plan, StageResult, Status
from placement.solvers import (
    SolveFunction,
    SolveOptions,
    get_solver,
    packing_search,
    vector_packing,
)
from placement.solvers.budget import Budget, heuristic_pass_s
from placement.solvers.common import Placement, better, finish_plan
from placement.solvers.cpsat.incumbent import reordered_schedules
from placement.solvers.cpsat.plans import SOLVER_NAME, check_estimate_s, with_checked_stages
from placement.solvers.cpsat.reasons import structural_reasons
from placement.solvers.cpsat.search import ProgressCallback, run_search
from placement.solvers.cpsat.stages import improve
from placement.solvers.rcpsp_heuristics import (
    Project,
    best_schedule,
    makespan,
    starts_of,
    windows,
)
from placement.statistics import SolveStatistics, StageLog

logger = logging.getLogger(__name__)


class PureKind(enum.Enum):
    SCHEDULE = "schedule"
    PACKING = "packing"


_SCHEDULE_OBJECTIVES = {
    (Objective.PLACED, Objective.MAKESPAN),
    (Objective.PLACED, Objective.RECOVERY),
    (Objective.MAKESPAN,),
    (Objective.RECOVERY,),
}
_PACKING_OBJECTIVES = {(Objective.PLACED, Objective.CONSOLIDATE), (Objective.CONSOLIDATE,)}
# The seeds' share of the time limit: they are the hint, CP-SAT gets the rest.
_SEED_SHARE = 0.1
# Beyond this many (guest, host) pairs a packing is left to the full path (type counts
# and neighbourhoods, `strategy`).
_MAX_PACKING_PAIRS = 100_000
# What the lean path keeps back after the search, besides four checks of the plan (`plans.
# check_estimate_s`): building the plan takes milliseconds on a few hundred guests.
_RESERVE_S = 0.05
# Sampled list schedules with double justification on a makespan: at most this many, each
# charged this much per guest in deterministic mode (measured: 1-4 ms on j60's 60 jobs on
# the loaded 2-core machine). A full second of sampling (300-2,000 samples) gave CP-SAT no
# better plans on j60 (docs/optimiser.md), so the samples stay few and the time is CP-SAT's.
_MAX_SAMPLES = 100
_SAMPLE_S_PER_GUEST = 5e-5
# The ejection search's share of the time left after the seeds on a pure packing; the
# stage loop (CP-SAT's bound, its own neighbourhoods) gets the rest unless the search
# meets the lower bound first or stalls (`packing_search._STALL_STEPS`). Without the
# stall, at 0.6 the stage loop lost a bin on class1_120_5_1 and class4_120_10_1 (34 and 18
# against 33 and 17 at 10 s).
_PACKING_SEARCH_SHARE = 0.5


def pure_kind(problem: Problem) -> PureKind | None:
    """Which pure problem `problem` is (see the module docstring), or None."""
    objective = tuple(problem.objective)
    if objective not in _SCHEDULE_OBJECTIVES and objective not in _PACKING_OBJECTIVES:
        return None
    if not problem.guests or problem.pacemaker is not None or problem.schedule.stagger_s:
        return None
    if not all(_boots_alone(guest) for guest in problem.guests):
        return None
    if objective in _SCHEDULE_OBJECTIVES:
        return PureKind.SCHEDULE if _one_host_each(problem) else None
    return PureKind.PACKING if _plain_packing(problem) else None


def _boots_alone(guest: Guest) -> bool:
    """A stopped guest with no rule tying it to another guest or a start instant."""
    return (
        guest.state is GuestState.STOPPED
        and guest.together is None
        and guest.follows is None
        and not guest.anti_affinity
        and guest.boot.group is None
    )


def _one_host_each(problem: Problem) -> bool:
    """Each guest may use exactly one host and no host limits boots on it."""
    if any(h.boot.cpu is not None or h.boot.max_starts is not None for h in problem.hosts):
        return False
    index = HostIndex(problem)
    return all(
        int((index.allowed(g) & index.fits_alone(dict(g.demand))).sum()) == 1
        for g in problem.guests
    )


def _plain_packing(problem: Problem) -> bool:
    """Identical empty online hosts, guests free to use any, nothing to schedule."""
    if len(problem.guests) * len(problem.hosts) > _MAX_PACKING_PAIRS:
        return False
    first = problem.hosts[0]
    if any(not h.online or _definition(h) != _definition(first) for h in problem.hosts):
        return False
    if first.boot.cpu is not None or first.boot.max_starts is not None:
        return False
    max_starts = problem.schedule.max_starts
    if max_starts is not None and max_starts < len(problem.guests):
        return False
    return all(
        g.current_host is None
        and g.hosts is None
        and not g.avoid_hosts
        and not g.labels
        and not g.boot.after
        and not any(g.boot.load.get(pool, 0) for pool in problem.boot_pools)
        and g.boot.duration_s <= problem.schedule.horizon_s
        for g in problem.guests
    )


def _definition(host: Host) -> dict[str, object]:
    """Everything about a host but its name."""
    fields = attrs.asdict(host, recurse=False)
    del fields["name"]
    return fields


def solve_pure(
    problem: Problem, options: SolveOptions, kind: PureKind, budget: Budget
) -> Plan | None:
    """The lean path's plan within `budget`, or None when no seed places every guest (the
    caller then takes the full path with the time left)."""
    # A packing's lower bound (the seeds stop at a plan that meets it).
    packing = packing_search.packing_of(problem) if kind is PureKind.PACKING else None
    lower = None if packing is None else packing_search.lower_bound(packing)
    seed = _best_seed(problem, options, kind, budget, lower)
    first_plan_s = time.perf_counter() - budget.started
    if seed is None or seed.unplaced:
        return None
    if packing is not None and lower is not None:
        return _lean_packing(problem, options, seed, budget, first_plan_s, packing, lower)
    return _lean_schedule(problem, options, seed, budget, first_plan_s)


def _lean_packing(
    problem: Problem,
    options: SolveOptions,
    seed: Plan,
    budget: Budget,
    first_plan_s: float,
    packing: packing_search.Packing,
    lower: int,
) -> Plan:
    """The ejection search (`packing_search`) on `packing` (the problem's) from `seed`
    (all placed) for `_PACKING_SEARCH_SHARE` of the time left; its plan is returned when it
    meets the lower bound `lower` (proven optimal), else the stage loop gets the rest of
    the time from it."""
    bounds: dict[str, float | None] = {o.value: None for o in problem.objective}
    bounds[Objective.PLACED.value] = float(len(problem.guests))
    bounds[Objective.CONSOLIDATE.value] = float(lower)
    statistics = SolveStatistics(first_plan_s=round(first_plan_s, 3), returned="greedy")
    plan = seed
    if _bins(plan) > lower:
        search = budget.share(_PACKING_SEARCH_SHARE)
        found, log = packing_search.eject(
            packing, _bin_of(problem, plan), search, lower, options.seed
        )
        logger.info("packing search: %s (lower bound %d)", log, lower)
        plan = _packed_plan(problem, options, found, plan, budget)
    if _bins(plan) > lower:
        plan = improve(problem, options, plan, structural_reasons(problem), budget, first_plan_s)
        bounds = {s.name: _tighter(s.bound, bounds.get(s.name)) for s in plan.stages}
        statistics = plan.statistics
    statistics = attrs.evolve(statistics, lean=PureKind.PACKING.value)
    runtime_s = round(time.perf_counter() - budget.started, 6)
    plan = attrs.evolve(plan, solver=SOLVER_NAME, runtime_s=runtime_s, statistics=statistics)
    return with_checked_stages(problem, plan, bounds)


def _bins(plan: Plan) -> int:
    """Hosts `plan` uses: its `consolidate` value on a pure packing."""
    return len({a.host for a in plan.assignments if a.host is not None})


def _bin_of(problem: Problem, plan: Plan) -> list[int]:
    """The host index of each guest in `plan` (which places them all), in problem order."""
    hosts = {host.name: k for k, host in enumerate(problem.hosts)}
    by_guest = plan.by_guest()
    return [hosts[str(by_guest[guest.name].host)] for guest in problem.guests]


def _tighter(a: float | None, b: float | None) -> float | None:
    """The tighter of two lower bounds on a minimised stage (`placed` is the guest count,
    its upper bound, in both)."""
    return b if a is None else a if b is None else max(a, b)


def _packed_plan(
    problem: Problem, options: SolveOptions, bin_of: list[int], seed: Plan, budget: Budget
) -> Plan:
    """The plan of the packing `bin_of` (bin k is the k-th host), when the checker passes
    it and it beats `seed`; else `seed`."""
    names = [host.name for host in problem.hosts]
    placement = Placement(
        hosts={g.name: names[b] for g, b in zip(problem.guests, bin_of, strict=True)}, reasons={}
    )
    plan_options = attrs.evolve(options, schedule="list", on_progress=None, hint=None)
    plan = finish_plan(problem, placement, plan_options, SOLVER_NAME, budget.started)
    return _guarded(problem, plan, seed)


def _lean_schedule(
    problem: Problem, options: SolveOptions, seed: Plan, budget: Budget, first_plan_s: float
) -> Plan:
    """CP-SAT on the plain schedule model from `seed` (all placed), checked."""
    bounds = StageBounds(problem)
    values = dict(zip(problem.objective, _values(problem, seed), strict=True))
    last = problem.objective[-1]
    held = {o.value: values[o] for o in problem.objective[:-1]}
    ours = bounds(last, held)
    stage_bounds: dict[str, float | None] = {o.value: bounds(o, {}) for o in problem.objective[:-1]}
    logs: list[StageLog] = []
    plan = seed
    if ours is None or abs(values[last] - ours) > 1e-9:
        lean = _LeanSchedule(problem, seed, ours)
        reserve_s = _RESERVE_S + 4 * check_estimate_s(problem)
        seconds = budget.remaining() - reserve_s
        found, cp_bound, log = lean.search(options, budget, seconds)
        logs.append(log)
        if cp_bound is not None:
            ours = max(ours or 0.0, cp_bound)
        if found is not None:
            plan = _guarded(problem, found, seed)
    stage_bounds[last.value] = ours
    statistics = SolveStatistics(
        first_plan_s=round(first_plan_s, 3),
        returned="greedy" if plan is seed else "cp-sat",
        lean="schedule",
        stages=logs,
    )
    plan = attrs.evolve(plan, solver=SOLVER_NAME, status=Status.FEASIBLE, statistics=statistics)
    runtime_s = round(time.perf_counter() - budget.started, 6)
    return attrs.evolve(with_checked_stages(problem, plan, stage_bounds), runtime_s=runtime_s)


def _values(problem: Problem, plan: Plan) -> list[float]:
    objectives = check(problem, plan).metrics["objectives"]
    return [float(objectives[o.value]) for o in problem.objective]


def _guarded(problem: Problem, plan: Plan, seed: Plan) -> Plan:
    """`plan` if the checker passes it and it is no worse than `seed`, else `seed`."""
    report = check(problem, plan)
    if not report.ok:
        logger.error(
            "BUG: a lean-path plan fails the checker (%s); returning the seed",
            "; ".join(v.message for v in report.violations[:3]),
        )
        return seed
    values = report.metrics["objectives"]
    stages = [StageResult(o.value, float(values[o.value])) for o in problem.objective]
    plan = attrs.evolve(plan, stages=stages)
    return seed if better(problem, seed, plan) else plan


def _seed_functions(kind: PureKind) -> list[tuple[str, SolveFunction]]:
    """The seeds that pay on a pure problem: best fit (on a pure schedule the one
    placement); on a packing, the seeds that gave the best packing of some instance of
    the vector-packing sample (docs/optimiser.md): the packers, the vector-packing
    heuristics, and Pacemaker's `minimal` (first fit in problem order, which alone packs
    the triplet instances, listed triplet by triplet, into their optimum)."""
    if kind is PureKind.SCHEDULE:
        return [("best-fit", get_solver("best-fit").function)]
    names = ("best-fit", "first-fit", "pacemaker-minimal")
    return [
        *((name, get_solver(name).function) for name in names),
        *vector_packing.seed_functions(),
    ]


def _best_seed(
    problem: Problem,
    options: SolveOptions,
    kind: PureKind,
    budget: Budget,
    lower: int | None = None,
) -> Plan | None:
    """The best verified seed within `_SEED_SHARE` of the limit (the first always runs;
    in deterministic mode each is charged a size-based estimate, not its run time), or
    the first to place every guest on `lower` hosts (a packing's lower bound: no seed can
    do better); on a schedule, also its list schedules in other orders (latest finish
    first...) and, on a makespan, their double justification (`_justified`)."""
    seeds = budget.sub(_SEED_SHARE * budget.limit_s)
    seed_options = attrs.evolve(
        options, schedule="list", on_progress=None, hint=None, time_limit_s=seeds.limit_s
    )
    best: Plan | None = None
    for _, function in _seed_functions(kind):
        if best is not None and (seeds.expired or _meets(best, lower)):
            break
        plan = function(problem, seed_options)
        seeds.charge(heuristic_pass_s(len(problem.guests), len(problem.hosts)))
        if check(problem, plan).ok and (best is None or better(problem, plan, best)):
            best = plan
    if best is not None and kind is PureKind.SCHEDULE and not best.unplaced:
        for variant in reordered_schedules(problem, best):
            if better(problem, variant, best):
                best = variant
        justified = _justified(problem, best, seeds, options.seed)
        if justified is not None and better(problem, justified, best):
            best = justified
    return best


def _justified(problem: Problem, seed: Plan, budget: Budget, random_seed: int) -> Plan | None:
    """On a makespan, the seed and sampled list schedules improved by double
    justification (`rcpsp_heuristics`) for what is left of `budget` (in deterministic
    mode, a number of samples charged by a size-based estimate), checked (`_guarded`);
    None when it does not apply or ends past the horizon."""
    if problem.objective[-1] is not Objective.MAKESPAN:
        return None
    project = Project.of(problem)
    if not project.fits():
        return None
    per_sample_s = _SAMPLE_S_PER_GUEST * len(problem.guests)
    if not budget.fits(per_sample_s):
        return None
    samples = min(_MAX_SAMPLES, int(budget.remaining() / per_sample_s) - 1)
    # Deterministic mode: the samples are the budget; only a stop token ends them early.
    stop = (lambda: budget.stopped) if budget.deterministic else (lambda: budget.expired)
    by_guest = seed.by_guest()
    start = starts_of(project, {g.name: by_guest[g.name].start_s or 0 for g in problem.guests})
    lower = makespan_lower_bound(problem, problem.guests)
    found = best_schedule(
        project, [start], samples=samples, seed=random_seed, stop=stop, lower_bound=lower
    )
    budget.charge((samples + 1) * per_sample_s)
    if makespan(project, found) > problem.schedule.horizon_s:
        return None
    assignments = [
        Assignment(name, by_guest[name].host, Action.START, begin, begin + duration)
        for name, begin, duration in zip(project.names, found, project.durations, strict=True)
    ]
    return _guarded(problem, attrs.evolve(seed, assignments=assignments), seed)


def _meets(plan: Plan, lower: int | None) -> bool:
    """Whether `plan` places every guest on `lower` hosts (never when `lower` is None)."""
    return lower is not None and not plan.unplaced and _bins(plan) <= lower


class _LeanSchedule:
    """The plain CP-SAT model of a pure schedule, hinted with `seed` (which places every
    guest) and bounded below by our own bound `bound` and above by the seed's value."""

    def __init__(self, problem: Problem, seed: Plan, bound: float | None) -> None:
        self.problem = problem
        self.seed = seed.by_guest()
        self.model = cp_model.CpModel()
        self.start: dict[str, cp_model.IntVar] = {}
        self.seed_value = seed_value = _values(problem, seed)[-1]
        objective = self._schedule()
        lower = 0 if bound is None else math.ceil(bound - 1e-9)
        self.model.add(objective >= lower)
        self.model.add(objective <= round(seed_value))
        self.model.minimize(objective)

    def _schedule(self) -> cp_model.LinearExprT:
        """One fixed-size interval per boot, a cumulative per limit, `after` precedences;
        the makespan or the weighted sum of ready times."""
        problem, model = self.problem, self.model
        horizon = problem.schedule.horizon_s
        interval = {}
        for guest, (earliest, latest) in zip(problem.guests, self._windows(), strict=True):
            duration = guest.boot.duration_s
            start = model.new_int_var(earliest, max(latest, earliest), "")
            self.start[guest.name] = start
            interval[guest.name] = model.new_fixed_size_interval_var(start, duration, "")
            model.add_hint(start, self.seed[guest.name].start_s or 0)
        # At every instant, each boot pool's load stays within its limit.
        for pool, limit in problem.boot_pools.items():
            users = [
                g for g in problem.guests if g.boot.load.get(pool, 0) > 0 and g.boot.duration_s
            ]
            if sum(g.boot.load[pool] for g in users) > limit:
                model.add_cumulative(
                    [interval[g.name] for g in users], [g.boot.load[pool] for g in users], limit
                )
        # At most `max_starts` guests boot at once.
        booting = [interval[g.name] for g in problem.guests if g.boot.duration_s]
        max_starts = problem.schedule.max_starts
        if max_starts is not None and len(booting) > max_starts:
            model.add_cumulative(booting, [1] * len(booting), max_starts)
        # A boot starts once every guest it starts after is ready.
        ready = {g.name: self.start[g.name] + g.boot.duration_s for g in problem.guests}
        for guest in problem.guests:
            for name in guest.boot.after:
                if name in ready:
                    model.add(self.start[guest.name] >= ready[name])
        if problem.objective[-1] is Objective.RECOVERY:
            return sum(g.weight * ready[g.name] for g in problem.guests)
        makespan = model.new_int_var(0, horizon, "")
        model.add_max_equality(makespan, list(ready.values()))
        return makespan

    def _windows(self) -> list[tuple[int, int]]:
        """Each boot's start window from the `after` chains: none starts before its
        predecessors can be ready, or so late that its successors end past the seed's
        makespan (the horizon, on `recovery`). The seed lies in its windows."""
        problem = self.problem
        upper = problem.schedule.horizon_s
        if problem.objective[-1] is Objective.MAKESPAN:
            upper = min(upper, round(self.seed_value))
        return windows(Project.of(problem), upper)

    def search(
        self, options: SolveOptions, budget: Budget, seconds: float
    ) -> tuple[Plan | None, float | None, StageLog]:
        """CP-SAT's default search for `seconds` of `budget`: its best plan (unchecked),
        its bound and the stage's log."""
        solver = cp_model.CpSolver()
        parameters = solver.parameters
        parameters.num_workers = max(1, options.workers)
        parameters.random_seed = options.seed
        if options.deterministic:
            parameters.interleave_search = True
        budget.limit_cpsat(parameters, seconds)
        stage = self.problem.objective[-1].value
        callback = ProgressCallback(options.on_progress, stage, budget.solve_started)
        status = run_search(solver, self.model, budget, callback)
        found = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
        log = StageLog(
            stage=stage,
            status=solver.status_name(status),
            seconds=round(solver.wall_time, 3),
            value=solver.objective_value if found else None,
            bound=solver.best_objective_bound if found else None,
        )
        if not found:
            return None, None, log
        bound = math.ceil(solver.best_objective_bound - 1e-9)
        return self._plan(solver), float(bound), log

    def _plan(self, solver: cp_model.CpSolver) -> Plan:
        assignments = []
        for guest in self.problem.guests:
            start = solver.value(self.start[guest.name])
            host = self.seed[guest.name].host
            ready = start + guest.boot.duration_s
            assignments.append(Assignment(guest.name, host, Action.START, start, ready))
        return Plan(
            status=Status.FEASIBLE, solver=SOLVER_NAME, runtime_s=0.0, assignments=assignments
        )
