"""Plans from model solutions, and the stage values, bounds and gaps a plan reports."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from placement.check import check
from placement.model import BALANCE_STEPS, Objective, Problem
from placement.plan import (
    Action,
    Assignment,
    Plan,
    StageResult,
    Status,
    Unplaced,
    expected_action,
    relative_gap,
)
from placement.solvers.budget import Budget
from placement.solvers.cpsat.model import Solution
from placement.solvers.cpsat.reasons import ReasonContext, unplaced_reason
from placement.solvers.cpsat.variables import possible_moves
from placement.solvers.cpsat.view import ProblemView

SOLVER_NAME = "cpsat"

# A stage's bound given the values the earlier stages are held at (`StageBounds`).
StageBoundsFunction = Callable[[Objective, dict[str, float]], float | None]


def plan_of_solution(
    view: ProblemView,
    solution: Solution,
    reasons: dict[str, str],
    status: Status,
    runtime_s: float,
    explain: Budget | None = None,
) -> Plan:
    """Turn a model solution into a plan (stages filled in by the caller).

    `explain` (a budget) lets CP-SAT probes say what keeps out a guest that some host
    still has room for (small problems only, see `explain`)."""
    problem = view.problem
    hosts = problem.hosts
    assignments: list[Assignment] = []
    host_of: dict[str, str | None] = {}
    for unit in view.units:
        h = solution.unit_host[unit.index]
        for guest in unit.guests:
            host_of[guest.name] = hosts[h].name if h is not None else None
    move_start = {
        move.guest.name: solution.move_start[i] if i < len(solution.move_start) else 0
        for i, move in enumerate(possible_moves(view))
    }
    for guest in problem.guests:
        host = host_of[guest.name]
        action = expected_action(problem, guest, host)
        start_s: int | None = None
        ready_s: int | None = None
        if action is Action.START:
            boot = view.boots[view.boot_of[guest.name]]
            start_s = solution.slot_start[boot.slot]
            ready_s = start_s + boot.duration_s
        elif action is Action.MIGRATE:
            start_s = move_start[guest.name]
            ready_s = start_s + problem.migration_duration(guest)
        assignments.append(Assignment(guest.name, host, action, start_s, ready_s))
    context = ReasonContext(view, solution)
    unplaced = [
        Unplaced(name, unplaced_reason(view, context, name, reasons, host_of, explain))
        for name, host in host_of.items()
        if host is None
    ]
    return Plan(
        status=status,
        solver=SOLVER_NAME,
        runtime_s=runtime_s,
        assignments=assignments,
        unplaced=sorted(unplaced, key=lambda u: problem.guest_position(u.guest)),
    )


def with_checked_stages(problem: Problem, plan: Plan, bounds: dict[str, float | None]) -> Plan:
    """Fill the stages with the checker's values, the given bounds and the gaps; the
    status is optimal when every stage meets its bound."""
    values = check(problem, plan).metrics["objectives"]
    stages = []
    for objective in problem.objective:
        value = float(values[objective.value])
        bound = bounds.get(objective.value)
        stages.append(StageResult(objective.value, value, bound, relative_gap(value, bound)))
    status = plan.status
    if stages and all(stage.gap == 0.0 for stage in stages):
        status = Status.OPTIMAL
    elif status is Status.OPTIMAL:
        status = Status.FEASIBLE
    return attrs.evolve(plan, stages=tuple(stages), status=status)


def with_own_bounds(problem: Problem, plan: Plan, stage_bounds: StageBoundsFunction) -> Plan:
    """`plan` with its stages valued by the checker and bounded by `placement.bounds`."""
    values = check(problem, plan).metrics["objectives"]
    held: dict[str, float] = {}
    bounds: dict[str, float | None] = {}
    for objective in problem.objective:
        bounds[objective.value] = stage_bounds(objective, held)
        held[objective.value] = float(values[objective.value])
    return with_checked_stages(problem, plan, bounds)


def check_estimate_s(problem: Problem) -> float:
    """About how long `check` takes on `problem`: 30 us a guest (0.14-0.21 s measured on
    10,000 guests), to keep time for the checks after a search."""
    return 3e-5 * len(problem.guests)


def model_value(
    view: ProblemView, solution: Solution, reasons: dict[str, str], objective: Objective
) -> int:
    """A stage's value at a known solution, in model units (balance in steps)."""
    plan = plan_of_solution(view, solution, reasons, Status.FEASIBLE, 0.0)
    value = float(check(view.problem, plan).metrics["objectives"][objective.value])
    scale = BALANCE_STEPS if objective is Objective.BALANCE else 1
    return round(value * scale)
