"""The choice of strategy: which search the optimiser runs on a problem.

- A pure schedule or packing (`pure`): a few seeds, then CP-SAT on the plain model.
- Interrupted while seeding: the best seed, with our bounds.
- A rebalance of a large cluster: the rebalance search (`rebalance`).
- More (guest, host) pairs than the full model fits: the placement stages on type counts
  (`aggregate`), then large-neighbourhood search from the incumbent (`large`).
- A big schedule (hundreds of boots, or tens of thousands of pairs) whose seed meets our
  bounds before `recovery`: the schedule stage (`schedule_lns`), then neighbourhoods.
- Otherwise the full model, stage by stage (`stages`); neighbourhoods of its plan when
  a stage stalled with time left.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import attrs

from placement.bounds import StageBounds
from placement.model import Objective, Problem
from placement.plan import Action, Plan
from placement.solvers import SolveOptions
from placement.solvers.budget import SHARES, Budget
from placement.solvers.common import stage_value
from placement.solvers.cpsat import aggregate, rebalance, schedule_lns
from placement.solvers.cpsat.incumbent import greedy_incumbent
from placement.solvers.cpsat.large import MIN_ROUND_S, first_round_s, solve_large
from placement.solvers.cpsat.plans import SOLVER_NAME, check_estimate_s, with_own_bounds
from placement.solvers.cpsat.pure import pure_kind, solve_pure
from placement.solvers.cpsat.reasons import structural_reasons
from placement.solvers.cpsat.recovery_lp_stage import (
    MAX_LP_BOOTS,
    PlanBound,
    bound_plan,
    with_plan_bound,
)
from placement.solvers.cpsat.stages import improve
from placement.solvers.cpsat.view import pair_count
from placement.statistics import (
    Incumbent,
    ScheduleSearch,
    SeedRun,
    SolveStatistics,
    TypeCounts,
)

# Beyond this many (guest, host) pairs the full pair model does not fit a 2-core budget:
# such problems are solved on neighbourhoods of the incumbent (see `large`).
MAX_MODEL_PAIRS = 400_000
# The share of the time left after the placement stages that re-timing the boots of the
# incumbent gets (`schedule_lns`); the neighbourhoods get the rest. On L-0 the
# neighbourhoods never improved the plan (a round on 10,000 guests needs over 20 s).
SCHEDULE_SHARE = 0.75
# From this many boots on, the full model starts from the seed re-timed by the schedule
# stage's rules (no windows); the examples and the S scenarios have far fewer.
RETIME_SEED_BOOTS = 100
# From this many (guest, host) pairs on (M: 90,000; failover-1-of-16: 3,000), or from
# RETIME_SEED_BOOTS boots on, a problem whose seed meets our bounds before `recovery` skips
# the full model: its recovery stage returned its hint there (docs/optimiser.md).
SCHEDULE_ONLY_PAIRS = 20_000


def _meets_bounds(
    problem: Problem, plan: Plan, stages: Sequence[Objective], bounds: StageBounds | None = None
) -> bool:
    """Whether `plan` meets our own bound (`placement.bounds`, `bounds` when built
    already) on each of `stages` in turn: then no search can improve them."""
    bounds = bounds or StageBounds(problem)
    held: dict[str, float] = {}
    for stage in stages:
        value = stage_value(plan, stage)
        bound = bounds(stage, held)
        if bound is None or abs(value - bound) > 1e-9 * max(1.0, abs(bound)):
            return False
        held[stage.value] = value
    return True


def _placement_settled(problem: Problem) -> Callable[[Plan], bool] | None:
    """For a problem of `SCHEDULE_ONLY_PAIRS` pairs or more that minimises `recovery`
    after `placed` and `migrations` only: a test that a seed places every guest and moves
    none, which no plan betters on those stages. Later seeds could then only list-schedule
    better, which the schedule stage does far better (on L-0 the seeds took 12.5 s of 60,
    the first 2 s; on M-0 11.4 s; our bounds would cost 5 s to build on L-0)."""
    if pair_count(problem) < SCHEDULE_ONLY_PAIRS or Objective.RECOVERY not in problem.objective:
        return None
    leading = problem.stages_before(Objective.RECOVERY)
    if any(stage not in (Objective.PLACED, Objective.MIGRATIONS) for stage in leading):
        return None

    def settled(plan: Plan) -> bool:
        moved = stage_value(plan, Objective.MIGRATIONS) if Objective.MIGRATIONS in leading else 0
        return not plan.unplaced and moved == 0

    return settled


def solve_lexicographic(problem: Problem, options: SolveOptions) -> Plan:
    """The optimiser: see the module docstring. Every step takes its time from one
    `Budget` of `options.time_limit_s`; a deterministic run that its wall-clock backstop
    cut says so in `statistics.wall_cut` (its plan may then not repeat)."""
    budget = Budget.of(options)
    plan = _solve(problem, options, budget)
    if budget.wall_cut:
        plan = attrs.evolve(plan, statistics=attrs.evolve(plan.statistics, wall_cut=True))
    return plan


def _solve(problem: Problem, options: SolveOptions, budget: Budget) -> Plan:
    started = budget.started
    kind = pure_kind(problem) if options.hint is None else None
    if kind is not None:
        # A pure schedule or packing: a few seeds, then CP-SAT on the plain model.
        lean = solve_pure(problem, options, kind, budget)
        if lean is not None:
            return lean
    structural = structural_reasons(problem)
    seeds: list[SeedRun] = []
    incumbent_plan = greedy_incumbent(
        problem, options, budget, seeds, enough=_placement_settled(problem)
    )
    first_plan_s = time.perf_counter() - started
    plan = _search(problem, options, incumbent_plan, structural, budget, first_plan_s)
    # The seeds and the first plan lead every search's account of its better plans.
    first: tuple[Incumbent, ...] = ()
    if incumbent_plan is not None:
        values = incumbent_plan.stage_values()
        first = (Incumbent(seconds=round(first_plan_s, 3), source="seed", values=values),)
    statistics = attrs.evolve(
        plan.statistics, seeds=seeds, incumbents=(*first, *plan.statistics.incumbents)
    )
    return attrs.evolve(plan, statistics=statistics)


def _search(
    problem: Problem,
    options: SolveOptions,
    incumbent_plan: Plan | None,
    structural: dict[str, str],
    budget: Budget,
    first_plan_s: float,
) -> Plan:
    """The search that fits the problem (see the module docstring), from the seed."""
    started = budget.started
    if incumbent_plan is not None and budget.stopped:
        # Interrupted while seeding: the best seed, with our bounds, without building a model.
        plan = with_own_bounds(problem, incumbent_plan, StageBounds(problem))
        runtime_s = round(time.perf_counter() - started, 6)
        statistics = SolveStatistics(first_plan_s=round(first_plan_s, 3), returned="greedy")
        return attrs.evolve(plan, solver=SOLVER_NAME, runtime_s=runtime_s, statistics=statistics)

    if rebalance.applies(problem, incumbent_plan):
        assert incumbent_plan is not None  # applies() checks it
        return rebalance.solve_rebalance(problem, options, incumbent_plan, budget, first_plan_s)
    if incumbent_plan is not None and pair_count(problem) > MAX_MODEL_PAIRS:
        return _beyond_the_pair_model(problem, options, incumbent_plan, budget, first_plan_s)
    if incumbent_plan is not None and _schedule_dominates(problem, incumbent_plan):
        own_bounds = StageBounds(problem)
        if _only_the_schedule_left(problem, incumbent_plan, own_bounds):
            # A big schedule, and the seed meets our bounds on every stage before
            # `recovery`: the full model would spend its time on a recovery stage that
            # stalls on its hint (docs/optimiser.md); the schedule stage and the
            # neighbourhoods get the whole budget instead.
            return _schedule_search_only(
                problem, options, incumbent_plan, budget, first_plan_s, own_bounds
            )
    if incumbent_plan is not None and _boots(incumbent_plan) >= RETIME_SEED_BOOTS:
        # The full model's recovery stage rarely betters its hint on hundreds of boots
        # (`failover-10-of-100`: the list-scheduled seed, stalled): hint it with the
        # seed's boots spread and timed by the schedule stage's priority rules (no
        # windows: an empty budget).
        incumbent_plan, _ = schedule_lns.improve_schedule(
            problem, incumbent_plan, options, budget.sub(0.0)
        )
    plan = improve(problem, options, incumbent_plan, structural, budget, first_plan_s)
    if (
        plan.statistics.stalled
        and plan.assignments
        and budget.remaining() >= MIN_ROUND_S
        and not budget.expired
    ):
        # The full model found nothing in a stage (a big model with live migrations can
        # spend its whole share on presolve), or was too big to build in the time left:
        # re-time its boots, then search neighbourhoods of the best plan.
        found = _retimed_then_neighbourhoods(problem, options, plan, budget, first_plan_s, {})
        # The stages' account stays: which stage stalled, and what it found before.
        statistics = attrs.evolve(
            found.statistics,
            stalled=True,
            model_skipped=plan.statistics.model_skipped,
            stages=plan.statistics.stages,
            model=plan.statistics.model,
            incumbents=(*plan.statistics.incumbents, *found.statistics.incumbents),
        )
        return attrs.evolve(found, statistics=statistics)
    if plan.statistics.model_skipped is not None:
        plan = attrs.evolve(
            with_own_bounds(problem, plan, StageBounds(problem)), statistics=plan.statistics
        )
    return plan


def _boots(plan: Plan) -> int:
    return sum(1 for a in plan.assignments if a.action is Action.START)


def _schedule_dominates(problem: Problem, plan: Plan) -> bool:
    """Whether the full model is too big to better the schedule of `plan` by itself:
    hundreds of boots, or a model of tens of thousands of (guest, host) pairs."""
    return _boots(plan) >= RETIME_SEED_BOOTS or pair_count(problem) >= SCHEDULE_ONLY_PAIRS


def _only_the_schedule_left(problem: Problem, plan: Plan, own_bounds: StageBounds) -> bool:
    """Whether `recovery` is a stage and `plan` meets our bounds on every stage before
    it (everyone placed, no one moved, say): no plan betters those stages, so what is
    left to search is when the boots start, and where the later stages want them."""
    if Objective.RECOVERY not in problem.objective:
        return False
    leading = problem.stages_before(Objective.RECOVERY)
    return _meets_bounds(problem, plan, leading, own_bounds)


def _schedule_search_only(
    problem: Problem,
    options: SolveOptions,
    incumbent_plan: Plan,
    budget: Budget,
    first_plan_s: float,
    own_bounds: StageBounds,
) -> Plan:
    """The schedule stage, then neighbourhoods, from `incumbent_plan`, without the full
    model (`_only_the_schedule_left`)."""
    found = _retimed_then_neighbourhoods(
        problem, options, incumbent_plan, budget, first_plan_s, {}, own_bounds
    )
    reason = (
        f"the seed meets our bounds before recovery, and its {_boots(incumbent_plan)} boots"
        " are re-timed by the schedule stage"
    )
    return attrs.evolve(found, statistics=attrs.evolve(found.statistics, model_skipped=reason))


def _retimed_then_neighbourhoods(
    problem: Problem,
    options: SolveOptions,
    plan: Plan,
    budget: Budget,
    first_plan_s: float,
    known: dict[str, float],
    own_bounds: StageBounds | None = None,
) -> Plan:
    """`plan`'s boots re-timed (`schedule_lns`, a share of the time left, or all of it
    when the rest would not let `large` start a round), then the neighbourhoods of
    `large` from the result until the time limit. On a schedule small enough for the
    LP bound on recovery (`recovery_lp_stage`), the bound comes first, on the seed timed
    by the schedule stage's rules: after the windows, a 10 s limit left it too little
    time (M at 10 s: no LP bound, gaps of 9-16 %); when it does not fit there, again
    after the windows."""
    lp_bound: PlanBound | None = None
    start = plan
    if Objective.RECOVERY in problem.objective and _boots(plan) <= MAX_LP_BOOTS:
        start, _ = schedule_lns.improve_schedule(problem, plan, options, budget.sub(0.0))
        lp_bound = bound_plan(problem, start, budget)
    remaining = budget.remaining()
    share = SCHEDULE_SHARE
    if (1 - share) * remaining < first_round_s(problem):
        share = 1.0
    # What comes after the search: the stage's check, then `large` values the plan with
    # our bounds on the whole problem and explains what is unplaced (3.5 s on L-0 on 2
    # busy cores), building the bounds first unless built already (5 s more there).
    finish_s = 2 * check_estimate_s(problem) + 0.0004 * len(problem.guests)
    if own_bounds is None:
        finish_s += 0.0005 * len(problem.guests)
    schedule_budget = budget.sub(share * remaining - finish_s)
    retimed, log = schedule_lns.improve_schedule(problem, start, options, schedule_budget)
    if lp_bound is None and retimed is not start:
        # Too big or too slow below the rules' value: again below the windows' better
        # value, which cuts more start ticks off.
        lp_bound = bound_plan(problem, retimed, budget)
    found = solve_large(
        problem, options, retimed, budget, first_plan_s, known_bounds=known, own_bounds=own_bounds
    )
    # The LP bound holds for the neighbourhoods' plan when its earlier stages are those of
    # the plan it was computed on.
    found = with_plan_bound(problem, found, lp_bound)
    statistics = attrs.evolve(found.statistics, schedule_search=ScheduleSearch.from_log(log))
    if retimed is not plan and found.statistics.returned == "greedy":
        statistics = attrs.evolve(statistics, returned="schedule search")
    return attrs.evolve(found, statistics=statistics)


def _beyond_the_pair_model(
    problem: Problem,
    options: SolveOptions,
    incumbent_plan: Plan,
    budget: Budget,
    first_plan_s: float,
) -> Plan:
    """Too many pairs for the full model: the leading placement stages on type counts
    (unless the incumbent already meets our bounds on them), then neighbourhoods."""
    known: dict[str, float] = {}
    counted: TypeCounts | None = None
    first: tuple[Incumbent, ...] = ()  # the type counts' plan, when it was better
    leading = aggregate.leading_stages(problem)
    if leading and any(guest.follows is not None for guest in problem.guests):
        # Counts of interchangeable units cannot say beside which guest one runs.
        leading = []
        counted = TypeCounts(skipped="guests follow others, which type counts cannot express")
    own_bounds = StageBounds(problem)  # once: the neighbourhoods value plans with them
    if leading and _meets_bounds(problem, incumbent_plan, leading, own_bounds):
        # Already proven by our bounds (a failover that places everyone): the
        # neighbourhoods get the time.
        leading = []
        counted = TypeCounts(skipped="the incumbent meets our bounds on the placement stages")
    if leading:
        # The placement stages on type counts: a share of the time left (the rest goes
        # to the neighbourhoods).
        whole = len(leading) == len(problem.objective)
        share = SHARES.type_counts_whole if whole else SHARES.type_counts_leading
        incumbent_plan, log = aggregate.improve_placement(
            problem, options, incumbent_plan, budget.share(share)
        )
        counted = TypeCounts.from_log(log)
        known = dict(counted.bounds)
        if counted.improved:
            values = incumbent_plan.stage_values()
            seconds = round(time.perf_counter() - budget.started, 3)
            first = (Incumbent(seconds=seconds, source="type counts", values=values),)
    plan = _retimed_then_neighbourhoods(
        problem, options, incumbent_plan, budget, first_plan_s, known, own_bounds
    )
    if counted is not None:
        incumbents = (*first, *plan.statistics.incumbents)
        statistics = attrs.evolve(plan.statistics, type_counts=counted, incumbents=incumbents)
        plan = attrs.evolve(plan, statistics=statistics)
    return plan
