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
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from placement.bounds import StageBounds
from placement.model import Objective, Problem
from placement.plan import Action, Plan
from placement.solvers import SolveOptions
from placement.solvers.common import stage_value
from placement.solvers.cpsat import aggregate, rebalance, schedule_lns
from placement.solvers.cpsat.incumbent import greedy_incumbent
from placement.solvers.cpsat.large import MIN_ROUND_S, first_round_s, solve_large
from placement.solvers.cpsat.plans import SOLVER_NAME, check_estimate_s, with_own_bounds
from placement.solvers.cpsat.reasons import structural_reasons
from placement.solvers.cpsat.stages import improve
from placement.solvers.cpsat.view import pair_count
from placement.solvers.stop import is_stopped

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
    """For a problem beyond the pair model that minimises `recovery` after `placed`
    and `migrations` only: a test that a seed places every guest and moves none, which no
    plan betters on those stages. Later seeds could then only list-schedule better, which
    the schedule stage does far better (on L-0 the seeds took 12.5 s of 60, the first 2 s;
    our bounds would cost 5 s to build there)."""
    if pair_count(problem) <= MAX_MODEL_PAIRS or Objective.RECOVERY not in problem.objective:
        return None
    leading = problem.objective[: problem.objective.index(Objective.RECOVERY)]
    if any(stage not in (Objective.PLACED, Objective.MIGRATIONS) for stage in leading):
        return None

    def settled(plan: Plan) -> bool:
        moved = stage_value(plan, Objective.MIGRATIONS) if Objective.MIGRATIONS in leading else 0
        return not plan.unplaced and moved == 0

    return settled


def solve_lexicographic(problem: Problem, options: SolveOptions) -> Plan:
    """The optimiser: see the module docstring."""
    started = time.perf_counter()
    structural = structural_reasons(problem)
    incumbent_plan = greedy_incumbent(problem, options, _placement_settled(problem))
    first_plan_s = time.perf_counter() - started
    if incumbent_plan is not None and is_stopped(options.stop):
        # Interrupted while seeding: the best seed, with our bounds, without building a model.
        plan = with_own_bounds(problem, incumbent_plan, StageBounds(problem))
        runtime_s = round(time.perf_counter() - started, 6)
        metrics = {"first_plan_s": round(first_plan_s, 3), "returned": "greedy"}
        return attrs.evolve(plan, solver=SOLVER_NAME, runtime_s=runtime_s, metrics=metrics)

    if rebalance.applies(problem, incumbent_plan):
        assert incumbent_plan is not None  # applies() checks it
        return rebalance.solve_rebalance(problem, options, incumbent_plan, started, first_plan_s)
    if incumbent_plan is not None and pair_count(problem) > MAX_MODEL_PAIRS:
        return _beyond_the_pair_model(problem, options, incumbent_plan, started, first_plan_s)
    if incumbent_plan is not None and _boots(incumbent_plan) >= RETIME_SEED_BOOTS:
        # The full model's recovery stage rarely betters its hint on hundreds of boots
        # (`failover-10-of-100`: the list-scheduled seed, stalled): hint it with the
        # seed's boots spread and timed by the schedule stage's priority rules.
        incumbent_plan, _ = schedule_lns.improve_schedule(
            problem, incumbent_plan, options, deadline=time.perf_counter()
        )
    plan = improve(problem, options, incumbent_plan, structural, started, first_plan_s)
    remaining = options.time_limit_s - (time.perf_counter() - started)
    if (
        plan.metrics.get("stalled")
        and plan.assignments
        and remaining >= MIN_ROUND_S
        and not is_stopped(options.stop)
    ):
        # The full model found nothing in a stage (a big model with live migrations can
        # spend its whole share on presolve): re-time its boots, then search
        # neighbourhoods of the best plan.
        return _retimed_then_neighbourhoods(problem, options, plan, started, first_plan_s, {})
    return plan


def _boots(plan: Plan) -> int:
    return sum(1 for a in plan.assignments if a.action is Action.START)


def _retimed_then_neighbourhoods(
    problem: Problem,
    options: SolveOptions,
    plan: Plan,
    started: float,
    first_plan_s: float,
    known: dict[str, float],
    own_bounds: StageBounds | None = None,
) -> Plan:
    """`plan`'s boots re-timed (`schedule_lns`, a share of the time left, or all of it
    when the rest would not let `large` start a round), then the neighbourhoods of
    `large` from the result until the time limit."""
    remaining = options.time_limit_s - (time.perf_counter() - started)
    share = SCHEDULE_SHARE
    if (1 - share) * remaining < first_round_s(problem):
        share = 1.0
    # What comes after the search: the stage's check, then `large` values the plan with
    # our bounds on the whole problem and explains what is unplaced (3.5 s on L-0 on 2
    # busy cores), building the bounds first unless built already (5 s more there).
    finish_s = 2 * check_estimate_s(problem) + 0.0004 * len(problem.guests)
    if own_bounds is None:
        finish_s += 0.0005 * len(problem.guests)
    deadline = time.perf_counter() + share * remaining - finish_s
    retimed, scheduled = schedule_lns.improve_schedule(problem, plan, options, deadline)
    found = solve_large(
        problem, options, retimed, started, first_plan_s, known_bounds=known, own_bounds=own_bounds
    )
    metrics = {**found.metrics, "schedule_search": scheduled}
    if retimed is not plan and found.metrics.get("returned") == "greedy":
        metrics["returned"] = "schedule search"
    return attrs.evolve(found, metrics=metrics)


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
    counted: dict[str, Any] | None = None
    leading = aggregate.leading_stages(problem)
    if leading and any(guest.follows is not None for guest in problem.guests):
        # Counts of interchangeable units cannot say beside which guest one runs.
        leading = []
        counted = {"skipped": "guests follow others, which type counts cannot express"}
    own_bounds = StageBounds(problem)  # once: the neighbourhoods value plans with them
    if leading and _meets_bounds(problem, incumbent_plan, leading, own_bounds):
        # Already proven by our bounds (a failover that places everyone): the
        # neighbourhoods get the time.
        leading = []
        counted = {"skipped": "the incumbent meets our bounds on the placement stages"}
    if leading:
        # The placement stages on type counts: 60 % of the time left when they are the
        # whole objective, else 40 % (the rest goes to the neighbourhoods).
        share = 0.6 if len(leading) == len(problem.objective) else 0.4
        remaining = options.time_limit_s - (time.perf_counter() - started)
        deadline = time.perf_counter() + share * remaining
        incumbent_plan, counted = aggregate.improve_placement(
            problem, options, incumbent_plan, deadline
        )
        known = counted.get("bounds") or {}
    plan = _retimed_then_neighbourhoods(
        problem, options, incumbent_plan, started, first_plan_s, known, own_bounds
    )
    if counted is not None:
        plan = attrs.evolve(plan, metrics={**plan.metrics, "type_counts": counted})
    return plan
