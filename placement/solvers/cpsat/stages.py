"""The stage loop: one CP-SAT solve of the full model per objective stage.

It starts from a verified plan (the seed portfolio's, `incumbent`) when there is one;
each stage starts from the previous stage's plan as a hint and keeps the earlier stages
at the values found. Every plan goes through the checker before it is returned; a
CP-SAT plan that fails it is logged as a bug and the best verified plan is returned.
"""

from __future__ import annotations

import logging
import math
import time

import attrs
from ortools.sat.python import cp_model

from placement.bounds import StageBounds
from placement.check import check
from placement.imbalance import imbalance_of_steps, load_steps, spread_target
from placement.model import BALANCE_STEPS, Objective, Problem
from placement.plan import Plan, Status
from placement.solvers import SolveOptions
from placement.solvers.common import better
from placement.solvers.cpsat import consolidate
from placement.solvers.cpsat.imbalance_stage import (
    TARGET_DENOMINATOR,
    add_distance_to_target,
    imbalance_of_ratio,
    ratio,
    ratio_lower_bound,
    tangent_target,
)
from placement.solvers.cpsat.model import (
    Solution,
    add_hint,
    build_model,
    hold,
    solution_of_plan,
    solution_of_solver,
)
from placement.solvers.cpsat.objectives import (
    ExactModelTooLargeError,
    host_steps,
    stage_expression,
)
from placement.solvers.cpsat.plans import (
    SOLVER_NAME,
    check_estimate_s,
    model_value,
    plan_of_solution,
    with_checked_stages,
)
from placement.solvers.cpsat.search import (
    LARGE_MODEL_PAIRS,
    ProgressCallback,
    StallWatch,
    new_solver,
    run_search,
)
from placement.solvers.cpsat.variables import Variables
from placement.solvers.cpsat.view import ProblemView, build_view
from placement.solvers.stop import is_stopped

logger = logging.getLogger(__name__)

# The part of a `consolidate` stage's time CP-SAT's whole-model search gets (at least,
# outside deterministic mode) before the host-emptying neighbourhoods take the rest...
_CONSOLIDATE_CP_SAT_SHARE = 0.4
# ... at the earliest, and once it has not improved for this part of the stage's time.
_CONSOLIDATE_STALL_SHARE = 0.2


def improve(
    problem: Problem,
    options: SolveOptions,
    incumbent_plan: Plan | None,
    structural: dict[str, str],
    started: float,
    first_plan_s: float,
) -> Plan:
    """Stage by stage from `incumbent_plan` (a verified plan, or None) until
    `started + options.time_limit_s`; returns the best verified plan."""
    view = build_view(problem)
    variables = build_model(view)
    model_s = time.perf_counter() - started - first_plan_s
    incumbent = solution_of_plan(view, incumbent_plan) if incumbent_plan is not None else None

    bounds: dict[str, float | None] = {}
    held: dict[str, float] = {}  # the value each finished stage is held at
    holds: list[tuple[Objective, int]] = []  # the same in model units, for other models
    stage_bounds = StageBounds(problem)
    stage_log: list[dict[str, object]] = []
    # The stages search until `search_s`: the rest of the limit assembles and checks the
    # plan, and explains unplaced guests when the incumbent has some (probes, explain.py).
    explain_s = min(2.0, options.time_limit_s / 10)
    reserve_s = 0.03 * options.time_limit_s + 0.05
    # The plan is checked about four times after the search (valuing, returning, the
    # seed beside it): on 10,000 guests that is several seconds.
    reserve_s += 4 * check_estimate_s(problem)
    if incumbent_plan is not None and incumbent_plan.unplaced:
        reserve_s += explain_s
    search_s = max(options.time_limit_s - reserve_s, 0.5 * options.time_limit_s)
    # Stages CP-SAT left unproven, for a second pass with the time the later stages saved.
    unproven: list[tuple[Objective, cp_model.LinearExprT, int, dict[str, object]]] = []
    # Solutions that end an `imbalance` stage: held in later stages by a rounded bound
    # when the exact one does not fit in 64 bits, so they stay candidates themselves.
    kept: list[Solution] = []
    stalled = False  # a stage of a large model ended with no solution of CP-SAT's own
    stages = list(problem.objective)
    for position, objective in enumerate(stages):
        if objective is Objective.IMBALANCE:
            remaining = search_s - (time.perf_counter() - started)
            budget = max(remaining / (len(stages) - position), 0.05)
            try:
                outcome = _imbalance_stage(view, variables, incumbent, options, budget)
            except ExactModelTooLargeError as error:
                stage_log.append(_too_large(objective, error))
                break  # the plan so far stands, valued by the checker
            if outcome.solution is None:
                break  # nothing to hold the later stages to; the greedy plan stands
            incumbent = outcome.solution
            kept.append(outcome.solution)
            stage_log.append(outcome.log)
            held[objective.value] = outcome.value
            bounds[objective.value] = _tighter(
                objective, outcome.bound, stage_bounds(objective, held)
            )
            continue
        try:
            expression = stage_expression(objective, view, variables)
        except ExactModelTooLargeError as error:
            stage_log.append(_too_large(objective, error))
            break  # the plan so far stands, valued by the checker
        scale = BALANCE_STEPS if objective is Objective.BALANCE else 1
        ours = stage_bounds(objective, held)
        if incumbent is not None and ours is not None:
            known = model_value(view, incumbent, structural, objective)
            if abs(known - ours * scale) < 0.5:
                # The incumbent meets a bound we proved ourselves: no search needed.
                value = known
                bounds[objective.value] = ours
                held[objective.value] = value / scale
                stage_log.append(
                    {
                        "stage": objective.value,
                        "cp_sat_status": "SKIPPED (meets the bound)",
                        "seconds": 0.0,
                        "value": value / scale,
                        "cp_sat_bound": None,
                    }
                )
                hold(variables, objective, expression, value)
                holds.append((objective, value))
                continue
        if objective.maximise:
            variables.model.maximize(expression)
        else:
            variables.model.minimize(expression)
        if incumbent is not None:
            add_hint(view, variables, incumbent)
        stage_started = time.perf_counter()
        remaining = search_s - (stage_started - started)
        budget = max(remaining / (len(stages) - position), 0.05)
        # Consolidation: CP-SAT first (it proves the easy packings and the bound), then
        # the host-emptying neighbourhoods with the rest of the stage's time. CP-SAT
        # hands over after its share once it has improved on its start and stalled
        # (a fixed share in deterministic mode, where wall time must not decide).
        emptying = objective is Objective.CONSOLIDATE and consolidate.applies(view, stages)
        watched = emptying and not options.deterministic
        cp_budget = budget * _CONSOLIDATE_CP_SAT_SHARE if emptying and not watched else budget
        solver = new_solver(options, cp_budget, large=view.num_pairs > LARGE_MODEL_PAIRS)
        callback = (
            ProgressCallback(options.on_progress, objective.value, started)
            if options.on_progress is not None or watched
            else None
        )
        watch = (
            StallWatch(
                solver,
                callback,
                budget * _CONSOLIDATE_CP_SAT_SHARE,
                budget * _CONSOLIDATE_STALL_SHARE,
            )
            if watched and callback is not None
            else None
        )
        try:
            status = run_search(solver, variables.model, options.stop, callback)
        finally:
            if watch is not None:
                watch.finish()
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE, cp_model.INFEASIBLE):
            stalled = view.num_pairs > LARGE_MODEL_PAIRS
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            incumbent = solution_of_solver(view, variables, solver)
            value = round(solver.objective_value)
        elif incumbent is not None:
            value = model_value(view, incumbent, structural, objective)
        else:
            break  # nothing to hold the later stages to; the greedy plan stands
        # CP-SAT's bound means something only once it has a solution of its own.
        cp_bound: float | None = None
        if status == cp_model.OPTIMAL:
            cp_bound = value / scale
        elif status == cp_model.FEASIBLE and abs(solver.best_objective_bound) < 1e15:
            cp_bound = solver.best_objective_bound / scale
        stage_log.append(
            {
                "stage": objective.value,
                "cp_sat_status": solver.status_name(status),
                "seconds": round(solver.wall_time, 3),
                "value": value / scale,
                "cp_sat_bound": cp_bound,
            }
        )
        bound = _tighter(objective, cp_bound, ours)
        searchable = status != cp_model.INFEASIBLE and incumbent is not None
        if watch is not None:
            stage_log[-1]["cp_sat_stopped_stalled"] = watch.stopped
        if emptying and searchable and (bound is None or value > bound):
            if options.deterministic:
                left = budget - solver.deterministic_time
            else:
                left = budget - (time.perf_counter() - stage_started)
            assert incumbent is not None  # (searchable)
            incumbent, searched = consolidate.empty_hosts(
                view, holds, incumbent, options, left, math.ceil(bound or 0)
            )
            value = min(value, searched["hosts_after"])
            stage_log[-1]["value"] = value / scale
            stage_log[-1]["neighbourhoods"] = searched
        held[objective.value] = value / scale
        bounds[objective.value] = bound
        hold(variables, objective, expression, value)
        holds.append((objective, value))
        if status == cp_model.FEASIBLE and bounds[objective.value] != value / scale:
            # (A stage with no solution of CP-SAT's own is not retried: the model is too
            # big for the time, and the neighbourhood search takes over when it stalls.)
            unproven.append((objective, expression, value, stage_log[-1]))

    if unproven and incumbent is not None:
        incumbent = _second_pass(
            view,
            variables,
            options,
            incumbent,
            unproven,
            bounds,
            started + search_s,
            # CP-SAT's bound is the lexicographic one only when no later stage is held.
            bound_holds=unproven[0][0] is stages[-1],
        )

    runtime_s = round(time.perf_counter() - started, 6)
    candidates: list[Plan] = []
    if is_stopped(options.stop):
        explain_s = 0.0  # interrupted: the plan now, with the reasons known without probes
    if incumbent is not None:
        # Probes explain vague unplaced reasons within a tenth of the limit (at most 2 s).
        plan = plan_of_solution(view, incumbent, structural, Status.FEASIBLE, runtime_s, explain_s)
        report = check(problem, plan)
        if report.ok:
            candidates.append(with_checked_stages(problem, plan, bounds))
        else:
            logger.error(
                "BUG: the CP-SAT plan fails the checker (%s); returning the best verified plan",
                "; ".join(v.message for v in report.violations[:3]),
            )
    for solution in kept:
        plan = plan_of_solution(view, solution, structural, Status.FEASIBLE, runtime_s)
        if check(problem, plan).ok:
            candidates.append(with_checked_stages(problem, plan, bounds))
    if incumbent_plan is not None:
        greedy = attrs.evolve(incumbent_plan, solver=SOLVER_NAME, runtime_s=runtime_s)
        candidates.append(with_checked_stages(problem, greedy, bounds))
    if not candidates:
        return Plan(status=Status.UNKNOWN, solver=SOLVER_NAME, runtime_s=runtime_s, assignments=())
    best = candidates[0]
    for plan in candidates[1:]:
        if better(problem, plan, best):
            best = plan
    metrics = {
        "first_plan_s": round(first_plan_s, 3),
        "model_build_s": round(model_s, 3),
        "units": len(view.units),
        "pairs": view.num_pairs,
        "boots": len(view.boots),
        "stages": stage_log,
        "returned": "cp-sat" if best is candidates[0] and incumbent is not None else "greedy",
        "stalled": stalled,
    }
    return attrs.evolve(best, metrics=metrics)


def _too_large(objective: Objective, error: ExactModelTooLargeError) -> dict[str, object]:
    logger.warning("%s stage not searched: %s", objective.value, error)
    return {
        "stage": objective.value,
        "cp_sat_status": f"SKIPPED ({error})",
        "seconds": 0.0,
        "value": None,
        "cp_sat_bound": None,
    }


def _second_pass(
    view: ProblemView,
    variables: Variables,
    options: SolveOptions,
    incumbent: Solution,
    unproven: list[tuple[Objective, cp_model.LinearExprT, int, dict[str, object]]],
    bounds: dict[str, float | None],
    search_end: float,
    *,
    bound_holds: bool,
) -> Solution:
    """Search the first unproven stage again with the time the later stages left (they
    were proven fast or met their bounds). Every stage stays held, the later ones at the
    values found after it, so a better value here is a lexicographically better plan;
    the later stages' bounds stay valid (they assumed this stage no better than before).
    CP-SAT's bound here is on plans that also keep the later stages' values, which bounds
    the stage itself only when it is the last one (`bound_holds`). Returns the incumbent,
    improved or not; updates the stage's log entry and, when it holds, its bound."""
    remaining = search_end - time.perf_counter()
    if remaining < 0.5:
        return incumbent
    objective, expression, found, log = unproven[0]
    scale = BALANCE_STEPS if objective is Objective.BALANCE else 1
    if objective.maximise:
        variables.model.maximize(expression)
    else:
        variables.model.minimize(expression)
    add_hint(view, variables, incumbent)
    solver = new_solver(options, remaining, large=view.num_pairs > LARGE_MODEL_PAIRS)
    status = run_search(solver, variables.model, options.stop)
    log["second_pass_seconds"] = round(solver.wall_time, 3)
    log["second_pass_status"] = solver.status_name(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return incumbent
    value = round(solver.objective_value)
    if value > found if objective.maximise else value < found:
        incumbent = solution_of_solver(view, variables, solver)
        log["value"] = value / scale
        hold(variables, objective, expression, value)
    if not bound_holds:
        return incumbent
    cp_bound = value / scale if status == cp_model.OPTIMAL else None
    if status == cp_model.FEASIBLE and abs(solver.best_objective_bound) < 1e15:
        cp_bound = solver.best_objective_bound / scale
    bounds[objective.value] = _tighter(objective, cp_bound, bounds[objective.value])
    return incumbent


@attrs.frozen
class _StageOutcome:
    solution: Solution | None
    value: float
    bound: float | None
    log: dict[str, object]


def _solution_steps(view: ProblemView, solution: Solution) -> list[int]:
    """The online hosts' loads in steps under `solution`, in `view.online_hosts` order."""
    hosts = view.problem.hosts
    final = {
        guest.name: hosts[h].name if (h := solution.unit_host[unit.index]) is not None else None
        for unit in view.units
        for guest in unit.guests
    }
    steps = load_steps(view.problem, final)
    return [steps[hosts[h].name] for h in view.online_hosts]


def _imbalance_stage(
    view: ProblemView,
    variables: Variables,
    incumbent: Solution | None,
    options: SolveOptions,
    seconds: float,
) -> _StageOutcome:
    """Lower the imbalance within `seconds` from `incumbent` by the convex-concave
    procedure (imbalance_stage.py), then hold it for the later stages."""
    model = variables.model
    steps = host_steps(view, variables)
    deadline = time.perf_counter() + seconds
    large = view.num_pairs > LARGE_MODEL_PAIRS
    iterations = 0
    wall = 0.0
    status_name = "UNKNOWN"
    if incumbent is None:
        # No plan yet: start from the even-load solution (`spread`'s target).
        model.minimize(add_distance_to_target(model, steps, _even_target(view)))
        solver = new_solver(options, seconds / 2, large)
        status = run_search(solver, model, options.stop)
        wall += solver.wall_time
        status_name = solver.status_name(status)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            failed: dict[str, object] = {"stage": "imbalance", "cp_sat_status": status_name}
            return _StageOutcome(None, 0.0, None, {**failed, "seconds": wall, "value": None})
        incumbent = solution_of_solver(view, variables, solver)
    current = _solution_steps(view, incumbent)
    # A share of the time proves the bound (below); the rest lowers the ratio.
    search_deadline = time.perf_counter() + 0.7 * (deadline - time.perf_counter())
    while (remaining := search_deadline - time.perf_counter()) > 0.01:
        distance = add_distance_to_target(model, steps, tangent_target(current))
        model.minimize(distance)
        add_hint(view, variables, incumbent)
        solver = new_solver(options, remaining, large)
        status = run_search(solver, model, options.stop)
        iterations += 1
        wall += solver.wall_time
        status_name = solver.status_name(status)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            break
        candidate = solution_of_solver(view, variables, solver)
        loads = _solution_steps(view, candidate)
        if not ratio(loads) < ratio(current):
            break  # a fixed point of the procedure (or out of time)
        incumbent, current = candidate, loads
    bound = _imbalance_bound(view, variables, steps, options, deadline, large)
    # Later stages keep the last problem's objective at the incumbent's value, which
    # keeps the ratio at or below the incumbent's (up to the target's rounding; the
    # incumbent itself stays a candidate, see `kept`).
    target = tangent_target(current)
    model.add(add_distance_to_target(model, steps, target) <= _distance_at(current, target))
    value = imbalance_of_steps(current)
    bound = min(bound, value)
    log: dict[str, object] = {
        "stage": "imbalance",
        "cp_sat_status": status_name,
        "seconds": round(wall, 3),
        "value": value,
        "cp_sat_bound": bound,
        "iterations": iterations,
    }
    return _StageOutcome(incumbent, value, bound, log)


def _imbalance_bound(
    view: ProblemView,
    variables: Variables,
    steps: list[tuple[cp_model.LinearExprT, int, int]],
    options: SolveOptions,
    deadline: float,
    large: bool,
) -> float:
    """A proven lower bound on the imbalance under the stages held so far: the least sum
    of squared loads and the largest total load, each by CP-SAT (its bound, whether or
    not it finished) within half the time left."""
    model = variables.model
    q = TARGET_DENOMINATOR
    seconds = max((deadline - time.perf_counter()) / 2, 0.05)
    model.clear_hints()  # type: ignore[no-untyped-call]  # untyped in ortools
    model.minimize(add_distance_to_target(model, steps, 0))  # (q * s)^2 summed
    solver = new_solver(options, seconds, large)
    status = run_search(solver, model, options.stop)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return 0.0
    squares_low = solver.best_objective_bound / (q * q)
    model.maximize(cp_model.LinearExpr.sum([expression for expression, _, _ in steps]))
    solver = new_solver(options, max(deadline - time.perf_counter(), 0.05), large)
    status = run_search(solver, model, options.stop)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return 0.0
    count = len(steps)
    return imbalance_of_ratio(
        count, ratio_lower_bound(count, squares_low, solver.best_objective_bound)
    )


def _even_target(view: ProblemView) -> int:
    return spread_target(view.problem) * TARGET_DENOMINATOR


def _distance_at(steps: list[int], target: int) -> int:
    return sum((TARGET_DENOMINATOR * s - target) ** 2 for s in steps)


def _tighter(objective: Objective, a: float | None, b: float | None) -> float | None:
    known = [bound for bound in (a, b) if bound is not None]
    if not known:
        return None
    return min(known) if objective.maximise else max(known)
