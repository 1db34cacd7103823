"""The choice of strategy: which search the optimiser runs on a problem.

- Interrupted while seeding: the best seed, with our bounds.
- A rebalance of a large cluster: the rebalance search (`rebalance`).
- More (guest, host) pairs than the full model fits: the placement stages on type counts
  (`aggregate`), then large-neighbourhood search from the incumbent (`large`).
- Otherwise the full model, stage by stage (`stages`); neighbourhoods of its plan when
  a stage stalled with time left.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import attrs

from placement.bounds import StageBounds
from placement.model import Objective, Problem
from placement.plan import Plan
from placement.solvers import SolveOptions
from placement.solvers.common import stage_value
from placement.solvers.cpsat import aggregate, rebalance
from placement.solvers.cpsat.incumbent import greedy_incumbent
from placement.solvers.cpsat.large import MIN_ROUND_S, solve_large
from placement.solvers.cpsat.plans import SOLVER_NAME, with_own_bounds
from placement.solvers.cpsat.reasons import structural_reasons
from placement.solvers.cpsat.stages import improve
from placement.solvers.cpsat.view import pair_count
from placement.solvers.stop import is_stopped
from placement.statistics import Incumbent, SeedRun, SolveStatistics, TypeCounts

# Beyond this many (guest, host) pairs the full pair model does not fit a 2-core budget:
# such problems are solved on neighbourhoods of the incumbent (see `large`).
MAX_MODEL_PAIRS = 400_000


def _meets_bounds(problem: Problem, plan: Plan, stages: Sequence[Objective]) -> bool:
    """Whether `plan` meets our own bound (`placement.bounds`) on each of `stages` in
    turn: then no search can improve them."""
    bounds = StageBounds(problem)
    held: dict[str, float] = {}
    for stage in stages:
        value = stage_value(plan, stage)
        bound = bounds(stage, held)
        if bound is None or abs(value - bound) > 1e-9 * max(1.0, abs(bound)):
            return False
        held[stage.value] = value
    return True


def solve_lexicographic(problem: Problem, options: SolveOptions) -> Plan:
    """The optimiser: see the module docstring."""
    started = time.perf_counter()
    structural = structural_reasons(problem)
    seeds: list[SeedRun] = []
    incumbent_plan = greedy_incumbent(problem, options, seeds)
    first_plan_s = time.perf_counter() - started
    plan = _search(problem, options, incumbent_plan, structural, started, first_plan_s)
    # The seeds and the first plan lead every search's account of its better plans.
    first: tuple[Incumbent, ...] = ()
    if incumbent_plan is not None:
        values = {stage.name: stage.value for stage in incumbent_plan.stages}
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
    started: float,
    first_plan_s: float,
) -> Plan:
    """The search that fits the problem (see the module docstring), from the seed."""
    if incumbent_plan is not None and is_stopped(options.stop):
        # Interrupted while seeding: the best seed, with our bounds, without building a model.
        plan = with_own_bounds(problem, incumbent_plan, StageBounds(problem))
        runtime_s = round(time.perf_counter() - started, 6)
        statistics = SolveStatistics(first_plan_s=round(first_plan_s, 3), returned="greedy")
        return attrs.evolve(plan, solver=SOLVER_NAME, runtime_s=runtime_s, statistics=statistics)

    if rebalance.applies(problem, incumbent_plan):
        assert incumbent_plan is not None  # applies() checks it
        return rebalance.solve_rebalance(problem, options, incumbent_plan, started, first_plan_s)
    if incumbent_plan is not None and pair_count(problem) > MAX_MODEL_PAIRS:
        return _beyond_the_pair_model(problem, options, incumbent_plan, started, first_plan_s)
    plan = improve(problem, options, incumbent_plan, structural, started, first_plan_s)
    remaining = options.time_limit_s - (time.perf_counter() - started)
    if (
        plan.statistics.stalled
        and plan.assignments
        and remaining >= MIN_ROUND_S
        and not is_stopped(options.stop)
    ):
        # The full model found nothing in a stage (a big model with live migrations can
        # spend its whole share on presolve): search neighbourhoods of the best plan.
        found = solve_large(problem, options, plan, started, first_plan_s)
        # The stages' account stays: which stage stalled, and what it found before.
        statistics = attrs.evolve(
            found.statistics,
            stalled=True,
            stages=plan.statistics.stages,
            model=plan.statistics.model,
            incumbents=(*plan.statistics.incumbents, *found.statistics.incumbents),
        )
        return attrs.evolve(found, statistics=statistics)
    return plan


def _beyond_the_pair_model(
    problem: Problem,
    options: SolveOptions,
    incumbent_plan: Plan,
    started: float,
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
    if leading and _meets_bounds(problem, incumbent_plan, leading):
        # Already proven by our bounds (a failover that places everyone): the
        # neighbourhoods get the time.
        leading = []
        counted = TypeCounts(skipped="the incumbent meets our bounds on the placement stages")
    if leading:
        # The placement stages on type counts: 60 % of the time left when they are the
        # whole objective, else 40 % (the rest goes to the neighbourhoods).
        share = 0.6 if len(leading) == len(problem.objective) else 0.4
        remaining = options.time_limit_s - (time.perf_counter() - started)
        deadline = time.perf_counter() + share * remaining
        incumbent_plan, log = aggregate.improve_placement(
            problem, options, incumbent_plan, deadline
        )
        counted = TypeCounts.from_log(log)
        known = dict(counted.bounds)
        if counted.improved:
            values = {stage.name: stage.value for stage in incumbent_plan.stages}
            seconds = round(time.perf_counter() - started, 3)
            first = (Incumbent(seconds=seconds, source="type counts", values=values),)
    plan = solve_large(problem, options, incumbent_plan, started, first_plan_s, known_bounds=known)
    if counted is not None:
        incumbents = (*first, *plan.statistics.incumbents)
        statistics = attrs.evolve(plan.statistics, type_counts=counted, incumbents=incumbents)
        plan = attrs.evolve(plan, statistics=statistics)
    return plan
