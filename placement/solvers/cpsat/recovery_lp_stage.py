"""The time-indexed LP bound on the recovery stage (`placement.recovery_lp`) in the
optimiser's searches: sized by the time left, and charged by its size (so that
deterministic runs repeat).

The stage loop tightens its recovery bound with it after the stage's search. When the
full model is not built (the M scenarios at 10-30 s), the bound is computed on the
re-timed plan before the neighbourhoods, and holds for the plan they return when that
plan's earlier stages are those of the re-timed plan (the bound assumes them).
"""

from __future__ import annotations

import time

import attrs

from placement.bounds import forced_units
from placement.check import check
from placement.model import Objective, Problem
from placement.plan import Action, Plan
from placement.recovery_lp import MAX_VARIABLES, SECONDS_PER_VARIABLE, recovery_lp_bound
from placement.solvers.budget import Budget
from placement.solvers.cpsat.plans import with_checked_stages

# Beyond this many boots the bounds per slot that size the LP cost too much (they are
# quadratic in the boots); the LP would be too big anyway.
MAX_LP_BOOTS = 200


def sized_recovery_lp(
    problem: Problem, held: dict[str, float], upper: float, budget: Budget, share: float = 1.0
) -> int | None:
    """The LP bound below `upper` with the stages before recovery at `held`, when it fits
    `share` of the time left of `budget` (charged by its size)."""
    if budget.stopped:
        return None
    most = min(MAX_VARIABLES, int(share * budget.remaining() / SECONDS_PER_VARIABLE))
    forced = forced_units(problem, held)
    booting = [g for unit in forced for g in unit.guests if not problem.runs_now(g)]
    if not booting or len(booting) > MAX_LP_BOOTS:
        return None
    # On 2 cores shared with other work the LP took 6 times its estimate (M-1 at 30 s:
    # 18 s): GLOP stops at the wall deadline, and the bound is then not known.
    wall_s = share * budget.wall_left()
    started = time.perf_counter()
    bound, size = recovery_lp_bound(problem, booting, held, upper, most, wall_s)
    budget.charge(size * SECONDS_PER_VARIABLE)
    if bound is None and size and time.perf_counter() - started >= wall_s:
        # The wall clock, not the work, decided: a deterministic run says so.
        budget.mark_cut()
    return bound


def leading_values(problem: Problem, plan: Plan) -> dict[str, float] | None:
    """The plan's values of the stages before `recovery` (None when it has none)."""
    if Objective.RECOVERY not in problem.objective:
        return None
    values = plan.stage_values()
    leading = [objective.value for objective in problem.stages_before(Objective.RECOVERY)]
    if any(name not in values for name in leading):
        return None
    return {name: values[name] for name in leading}


@attrs.frozen
class PlanBound:
    """An LP bound on recovery, valid for plans whose earlier stages are `held`."""

    held: dict[str, float]
    bound: int


def bound_plan(problem: Problem, plan: Plan, budget: Budget) -> PlanBound | None:
    """The LP bound on recovery below `plan`'s value (by the checker), given its earlier
    stages (None for plans of more than `MAX_LP_BOOTS` boots)."""
    boots = sum(1 for a in plan.assignments if a.action is Action.START)
    if Objective.RECOVERY not in problem.objective or boots > MAX_LP_BOOTS:
        return None
    values = check(problem, plan).metrics["objectives"]
    leading = problem.stages_before(Objective.RECOVERY)
    held = {objective.value: float(values[objective.value]) for objective in leading}
    # Half the time left at most: the neighbourhoods improve the plan with the rest.
    upper = float(values[Objective.RECOVERY.value])
    bound = sized_recovery_lp(problem, held, upper, budget, share=0.5)
    return None if bound is None else PlanBound(held, bound)


def with_plan_bound(problem: Problem, plan: Plan, found: PlanBound | None) -> Plan:
    """`plan` with its recovery bound tightened by `found` when `found` holds for it."""
    if found is None or leading_values(problem, plan) != found.held:
        return plan
    bounds = {stage.name: stage.bound for stage in plan.stages}
    current = bounds.get(Objective.RECOVERY.value)
    if current is not None and current >= found.bound:
        return plan
    bounds[Objective.RECOVERY.value] = float(found.bound)
    return with_checked_stages(problem, plan, bounds)
