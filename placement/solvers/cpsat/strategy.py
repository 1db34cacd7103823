"""The choice of strategy: which search the optimiser runs on a problem.

- A pure schedule or packing (`pure`): a few seeds, then CP-SAT on the plain model.
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
from typing import Any

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
from placement.solvers.cpsat.pure import pure_kind, solve_pure
from placement.solvers.cpsat.reasons import structural_reasons
from placement.solvers.cpsat.stages import improve
from placement.solvers.cpsat.view import pair_count
from placement.solvers.stop import is_stopped

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
    kind = pure_kind(problem) if options.hint is None else None
    if kind is not None:
        # A pure schedule or packing: a few seeds, then CP-SAT on the plain model.
        lean = solve_pure(problem, options, kind, started)
        if lean is not None:
            return lean
    structural = structural_reasons(problem)
    incumbent_plan = greedy_incumbent(problem, options)
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
    plan = improve(problem, options, incumbent_plan, structural, started, first_plan_s)
    remaining = options.time_limit_s - (time.perf_counter() - started)
    if (
        plan.metrics.get("stalled")
        and plan.assignments
        and remaining >= MIN_ROUND_S
        and not is_stopped(options.stop)
    ):
        # The full model found nothing in a stage (a big model with live migrations can
        # spend its whole share on presolve): search neighbourhoods of the best plan.
        return solve_large(problem, options, plan, started, first_plan_s)
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
    counted: dict[str, Any] | None = None
    leading = aggregate.leading_stages(problem)
    if leading and any(guest.follows is not None for guest in problem.guests):
        # Counts of interchangeable units cannot say beside which guest one runs.
        leading = []
        counted = {"skipped": "guests follow others, which type counts cannot express"}
    if leading and _meets_bounds(problem, incumbent_plan, leading):
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
    plan = solve_large(problem, options, incumbent_plan, started, first_plan_s, known_bounds=known)
    if counted is not None:
        plan = attrs.evolve(plan, metrics={**plan.metrics, "type_counts": counted})
    return plan
