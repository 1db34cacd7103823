"""The stage loop: the full model optimised one objective stage after another.

It starts from a verified plan (the seed portfolio's, `incumbent`) when there is one;
each stage starts from the best solution so far as a hint and keeps the earlier stages
at the values found (`StageSolver`). Every plan goes through the checker before it is
returned; a CP-SAT plan that fails it is logged as a bug and the best verified plan is
returned.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import attrs
from ortools.sat.python import cp_model

from placement.bounds import StageBounds
from placement.check import check
from placement.model import BALANCE_STEPS, Objective, Problem
from placement.plan import Plan, Status
from placement.solvers import SolveOptions
from placement.solvers.budget import SHARES, Budget
from placement.solvers.common import better
from placement.solvers.cpsat import consolidate, imbalance_stage
from placement.solvers.cpsat.model import Solution, solution_of_plan
from placement.solvers.cpsat.objectives import ExactModelTooLargeError
from placement.solvers.cpsat.plans import (
    SOLVER_NAME,
    check_estimate_s,
    model_value,
    plan_of_solution,
    with_checked_stages,
)
from placement.solvers.cpsat.recovery_lp_stage import sized_recovery_lp
from placement.solvers.cpsat.search import ProgressCallback, StallWatch
from placement.solvers.cpsat.stage_solver import StageSolver
from placement.solvers.cpsat.view import build_view
from placement.statistics import Incumbent, ModelSize, SolveStatistics, StageLog

logger = logging.getLogger(__name__)

# Building the full model, per (unit, host) pair, and setting up one stage on it (its
# expression, the hint, CP-SAT loading and presolving the model): `model_setup_estimate_s`.
_BUILD_S_PER_PAIR = 45e-6
_STAGE_SETUP_S_PER_PAIR = 25e-6


def improve(
    problem: Problem,
    options: SolveOptions,
    incumbent_plan: Plan | None,
    structural: dict[str, str],
    budget: Budget,
    first_plan_s: float,
) -> Plan:
    """Stage by stage from `incumbent_plan` (a verified plan, or None) within `budget`
    (from the start of the solve: what it spent before counts); returns the best
    verified plan. A model whose building and stage set-up alone would take more than
    a share of the search time is not built: the incumbent is returned, marked stalled
    (the neighbourhoods of `large` may take over)."""
    search, explain_s = _search_budget(problem, incumbent_plan, budget)
    view = build_view(problem)
    setup_s = model_setup_estimate_s(view.num_pairs, len(problem.objective))
    if incumbent_plan is not None and not search.fits(setup_s / SHARES.model_setup):
        return _model_skipped(incumbent_plan, budget, first_plan_s, setup_s)
    solver = StageSolver(view, options, None)
    model_s = time.perf_counter() - budget.started - first_plan_s
    if incumbent_plan is not None:
        solver.incumbent = solution_of_plan(view, incumbent_plan)
    loop = _StageLoop(solver, structural, search)
    loop.run()
    if loop.unproven and solver.incumbent is not None:
        solver.incumbent = _second_pass(
            solver,
            loop.unproven,
            loop.bounds,
            search,
            # CP-SAT's bound is the lexicographic one only when no later stage is held.
            bound_holds=loop.unproven[0][0] is loop.stages[-1],
        )
    runtime_s = round(time.perf_counter() - budget.started, 6)
    if budget.stopped:
        explain_s = 0.0  # interrupted: the plan now, with the reasons known without probes
    candidates = _candidates(loop, incumbent_plan, runtime_s, budget.sub(explain_s))
    if not candidates:
        return Plan(status=Status.UNKNOWN, solver=SOLVER_NAME, runtime_s=runtime_s, assignments=())
    best = candidates[0]
    for plan in candidates[1:]:
        if better(problem, plan, best):
            best = plan
    statistics = SolveStatistics(
        first_plan_s=round(first_plan_s, 3),
        model=ModelSize(
            build_s=round(model_s, 3),
            units=len(view.units),
            pairs=view.num_pairs,
            boots=len(view.boots),
        ),
        stages=_typed_logs(loop.log, incumbent_plan),
        incumbents=loop.found,
        returned="cp-sat" if best is candidates[0] and solver.incumbent is not None else "greedy",
        stalled=loop.stalled,
    )
    return attrs.evolve(best, statistics=statistics)


def _typed_logs(logs: list[dict[str, object]], seed: Plan | None) -> list[StageLog]:
    """The stage logs, typed, each marked `improved` when its value beats the seed's
    while every earlier stage ties with it (after a better stage, or with no seed, the
    later stages are not compared: None)."""
    typed: list[StageLog] = []
    tied = seed is not None
    for log in logs:
        entry = StageLog.from_log(log)
        start = seed.stage(entry.stage) if seed is not None and tied else None
        if start is None or entry.value is None:
            tied = False
            typed.append(entry)
            continue
        objective = Objective(entry.stage)
        tolerance = 1e-9 * max(1.0, abs(start.value))
        gain = entry.value - start.value if objective.maximise else start.value - entry.value
        tied = abs(gain) <= tolerance
        typed.append(attrs.evolve(entry, improved=gain > tolerance))
    return typed


def _search_budget(
    problem: Problem, incumbent_plan: Plan | None, budget: Budget
) -> tuple[Budget, float]:
    """The stages' search budget and the explanation probes' seconds. The stages search
    until `search_s` into the budget: the rest of the limit assembles and checks the
    plan, and explains unplaced guests when the incumbent has some (probes, explain.py)."""
    limit_s = budget.limit_s
    explain_s = min(SHARES.explain_max_s, SHARES.explain * limit_s)
    reserve_s = SHARES.reserve * limit_s + SHARES.reserve_fixed_s
    # The plan is checked about four times after the search (valuing, returning, the
    # seed beside it): on 10,000 guests that is several seconds.
    reserve_s += 4 * check_estimate_s(problem)
    if incumbent_plan is not None and incumbent_plan.unplaced:
        reserve_s += explain_s
    search_s = max(limit_s - reserve_s, SHARES.least_search * limit_s)
    return budget.leaving(limit_s - search_s), explain_s


def model_setup_estimate_s(pairs: int, stages: int) -> float:
    """About how long building the full model of `pairs` (unit, host) pairs and setting
    up `stages` objective stages on it take (expressions, hints, CP-SAT's loading and
    presolve of the model), before any search: CPU time measured on M-0 (92,000 pairs
    with migrations: 4.1 s to build, about 2.2 s per stage) and the examples."""
    return pairs * (_BUILD_S_PER_PAIR + stages * _STAGE_SETUP_S_PER_PAIR)


def _model_skipped(incumbent: Plan, budget: Budget, first_plan_s: float, setup_s: float) -> Plan:
    """The verified `incumbent` as it is, when the model would not fit (the caller
    bounds it: on a restricted problem of `large`, bounds would be wasted work)."""
    runtime_s = round(time.perf_counter() - budget.started, 6)
    statistics = SolveStatistics(
        first_plan_s=round(first_plan_s, 3),
        model_skipped=f"building it would take about {setup_s:.1f} s of the time left",
        returned="greedy",
        stalled=True,
    )
    return attrs.evolve(incumbent, solver=SOLVER_NAME, runtime_s=runtime_s, statistics=statistics)


# One stage CP-SAT left unproven: its objective, expression, the value it is held at and
# its log entry, for a second pass with the time the later stages saved.
_Unproven = tuple[Objective, cp_model.LinearExprT, int, dict[str, object]]


class _StageLoop:
    """One pass over the problem's objective stages on `solver`, searching within
    `budget`, and what it found: the values held, the bounds, the log."""

    def __init__(self, solver: StageSolver, structural: dict[str, str], budget: Budget) -> None:
        self.solver = solver
        self.view = solver.view
        self.options = solver.options
        self.structural = structural
        self.budget = budget
        self.stages = list(self.view.problem.objective)
        self.bounds: dict[str, float | None] = {}
        self.held: dict[str, float] = {}  # the value each finished stage is held at
        self.stage_bounds = StageBounds(self.view.problem)
        self.log: list[dict[str, object]] = []
        self.unproven: list[_Unproven] = []
        # Solutions that end an `imbalance` stage: held in later stages by a rounded bound
        # when the exact one does not fit in 64 bits, so they stay candidates themselves.
        self.kept: list[Solution] = []
        self.stalled = False  # a stage of a large model ended with no solution of its own
        self.found: list[Incumbent] = []  # each stage's solution: when, and the values held

    def run(self) -> None:
        """Each stage in turn; the first that finds nothing to hold ends the pass (the
        plan so far stands, valued by the checker)."""
        for position, objective in enumerate(self.stages):
            if objective is Objective.IMBALANCE:
                if not self._imbalance(objective, self._budget(position)):
                    break
                continue
            try:
                expression = self.solver.expression(objective)
            except ExactModelTooLargeError as error:
                self.log.append(_too_large(objective, error))
                break
            ours = self.stage_bounds(objective, self.held)
            if self._meets_own_bound(objective, expression, ours):
                continue
            if not self._search(objective, expression, ours, position):
                break  # nothing to hold the later stages to; the greedy plan stands

    def _budget(self, position: int) -> Budget:
        """An equal share of the search time left for each stage from `position` on."""
        return self.budget.share(1 / (len(self.stages) - position))

    def _imbalance(self, objective: Objective, budget: Budget) -> bool:
        try:
            outcome = imbalance_stage.run(self.solver, budget)
        except ExactModelTooLargeError as error:
            self.log.append(_too_large(objective, error))
            return False
        if outcome.solution is None:
            return False
        self.solver.incumbent = outcome.solution
        self.kept.append(outcome.solution)
        self.log.append(outcome.log)
        self.held[objective.value] = outcome.value
        self.bounds[objective.value] = _tighter(
            objective, outcome.bound, self.stage_bounds(objective, self.held)
        )
        self._found(objective)
        return True

    def _found(self, objective: Objective) -> None:
        """Record the incumbent a stage's search ended with (its held values so far)."""
        self.found.append(
            Incumbent(
                seconds=round(time.perf_counter() - self.budget.solve_started, 3),
                source=f"stage {objective.value}",
                values=self.held,
            )
        )

    def _meets_own_bound(
        self, objective: Objective, expression: cp_model.LinearExprT, ours: float | None
    ) -> bool:
        """Whether the incumbent meets a bound we proved ourselves (`ours`): then the
        stage is held at its value with no search."""
        incumbent = self.solver.incumbent
        if incumbent is None or ours is None:
            return False
        scale = _scale(objective)
        value = model_value(self.view, incumbent, self.structural, objective)
        if abs(value - ours * scale) >= 0.5:
            return False
        self.bounds[objective.value] = ours
        self.held[objective.value] = value / scale
        self.log.append(
            {
                "stage": objective.value,
                "cp_sat_status": "SKIPPED (meets the bound)",
                "seconds": 0.0,
                "value": value / scale,
                "cp_sat_bound": None,
            }
        )
        self.solver.hold(objective, expression, value)
        return True

    def _search(
        self,
        objective: Objective,
        expression: cp_model.LinearExprT,
        ours: float | None,
        position: int,
    ) -> bool:
        """Optimise `objective` from the incumbent within the stage's share of the time,
        then hold it at the value found; False when there is nothing to hold."""
        solver = self.solver
        solver.optimise(objective, expression)
        budget = self._budget(position)
        # Consolidation: CP-SAT first (it proves the easy packings and the bound), then
        # the host-emptying neighbourhoods with the rest of the stage's time.
        emptying = objective is Objective.CONSOLIDATE and consolidate.applies(
            self.view, self.stages
        )
        cp, status, watch = self._cp_search(objective, budget, emptying)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE, cp_model.INFEASIBLE):
            self.stalled = solver.large
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            solver.incumbent = solver.read(cp)
            value = round(cp.objective_value)
        elif solver.incumbent is not None:
            value = model_value(self.view, solver.incumbent, self.structural, objective)
        else:
            return False
        scale = _scale(objective)
        # CP-SAT's bound means something only once it has a solution of its own.
        cp_bound: float | None = None
        if status == cp_model.OPTIMAL:
            cp_bound = value / scale
        elif status == cp_model.FEASIBLE and abs(cp.best_objective_bound) < 1e15:
            cp_bound = cp.best_objective_bound / scale
        log: dict[str, object] = {
            "stage": objective.value,
            "cp_sat_status": cp.status_name(status),
            "seconds": round(cp.wall_time, 3),
            "value": value / scale,
            "cp_sat_bound": cp_bound,
        }
        self.log.append(log)
        bound = _tighter(objective, cp_bound, ours)
        if objective is Objective.RECOVERY and (bound is None or value > bound):
            bound = _tighter(objective, bound, self._recovery_lp(value, log))
        searchable = status != cp_model.INFEASIBLE and solver.incumbent is not None
        if watch is not None:
            log["cp_sat_stopped_stalled"] = watch.stopped
        if emptying and searchable and (bound is None or value > bound):
            searched = self._empty_hosts(budget, bound)
            value = min(value, searched["hosts_after"])
            log["value"] = value / scale
            log["neighbourhoods"] = searched
        self.held[objective.value] = value / scale
        self.bounds[objective.value] = bound
        solver.hold(objective, expression, value)
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            self._found(objective)
        if status == cp_model.FEASIBLE and self.bounds[objective.value] != value / scale:
            # (A stage with no solution of CP-SAT's own is not retried: the model is too
            # big for the time, and the neighbourhood search takes over when it stalls.)
            self.unproven.append((objective, expression, value, log))
        return True

    def _recovery_lp(self, value: float, log: dict[str, object]) -> float | None:
        """The time-indexed LP bound on the recovery stage below `value`
        (`recovery_lp_stage`), when it fits a quarter of the time left."""
        started = time.perf_counter()
        # A quarter of the time left at most: the later stages and the second pass (which
        # improves this stage's plan) keep the rest. (S at 10 s: a tenth admitted S-0, S-3
        # and S-4 only; a quarter adds S-6 and S-9 at plans equal within noise.)
        bound = sized_recovery_lp(self.view.problem, self.held, value, self.budget, share=0.25)
        log["lp_bound"] = bound
        log["lp_seconds"] = round(time.perf_counter() - started, 3)
        return None if bound is None else float(bound)

    def _cp_search(
        self, objective: Objective, budget: Budget, emptying: bool
    ) -> tuple[cp_model.CpSolver, cp_model.CpSolverStatus, StallWatch | None]:
        """CP-SAT's search of the stage. Before the host-emptying neighbourhoods CP-SAT
        hands over after its share once it has improved on its start and stalled (a
        fixed share in deterministic mode, where wall time must not decide)."""
        options = self.options
        watched = emptying and not options.deterministic
        seconds = budget.remaining()
        cp_seconds = seconds * SHARES.consolidate_cp_sat if emptying and not watched else seconds
        cp = self.solver.new_search(budget, cp_seconds)
        callback = (
            ProgressCallback(options.on_progress, objective.value, self.budget.solve_started)
            if options.on_progress is not None or watched
            else None
        )
        watch = (
            StallWatch(
                cp,
                callback,
                seconds * SHARES.consolidate_cp_sat,
                seconds * SHARES.consolidate_stall,
            )
            if watched and callback is not None
            else None
        )
        try:
            status = self.solver.run(cp, budget, callback)
        finally:
            if watch is not None:
                watch.finish()
        return cp, status, watch

    def _empty_hosts(self, budget: Budget, bound: float | None) -> dict[str, Any]:
        """The consolidate stage's host-emptying neighbourhoods for what is left of
        `budget` from the incumbent (the earlier stages held), which they improve; what
        they did."""
        incumbent = self.solver.incumbent
        assert incumbent is not None  # (searchable)
        incumbent, searched = consolidate.empty_hosts(
            self.view, self.solver.holds, incumbent, self.options, budget, math.ceil(bound or 0)
        )
        self.solver.incumbent = incumbent
        return searched


def _scale(objective: Objective) -> int:
    """Model units per unit of `objective` (balance is modelled in steps)."""
    return BALANCE_STEPS if objective is Objective.BALANCE else 1


def _candidates(
    loop: _StageLoop, incumbent_plan: Plan | None, runtime_s: float, explain: Budget
) -> list[Plan]:
    """The verified plans to choose from, valued by the checker and bounded by the loop's
    bounds: CP-SAT's first (a failure of the checker is logged as a bug), then the
    solutions kept from `imbalance` stages, then the seed."""
    solver = loop.solver
    problem = solver.view.problem
    structural = loop.structural
    candidates: list[Plan] = []
    if solver.incumbent is not None:
        # Probes explain vague unplaced reasons within a tenth of the limit (at most 2 s).
        plan = plan_of_solution(
            solver.view, solver.incumbent, structural, Status.FEASIBLE, runtime_s, explain
        )
        report = check(problem, plan)
        if report.ok:
            candidates.append(with_checked_stages(problem, plan, loop.bounds))
        else:
            logger.error(
                "BUG: the CP-SAT plan fails the checker (%s); returning the best verified plan",
                "; ".join(v.message for v in report.violations[:3]),
            )
    for solution in loop.kept:
        plan = plan_of_solution(solver.view, solution, structural, Status.FEASIBLE, runtime_s)
        if check(problem, plan).ok:
            candidates.append(with_checked_stages(problem, plan, loop.bounds))
    if incumbent_plan is not None:
        greedy = attrs.evolve(incumbent_plan, solver=SOLVER_NAME, runtime_s=runtime_s)
        candidates.append(with_checked_stages(problem, greedy, loop.bounds))
    return candidates


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
    solver: StageSolver,
    unproven: list[_Unproven],
    bounds: dict[str, float | None],
    budget: Budget,
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
    incumbent = solver.incumbent
    assert incumbent is not None  # (the caller checks it)
    if budget.remaining() < 0.5 or budget.expired:
        return incumbent
    objective, expression, found, log = unproven[0]
    scale = _scale(objective)
    solver.optimise(objective, expression)
    cp, status = solver.search(budget)
    log["second_pass_seconds"] = round(cp.wall_time, 3)
    log["second_pass_status"] = cp.status_name(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return incumbent
    value = round(cp.objective_value)
    if value > found if objective.maximise else value < found:
        incumbent = solver.read(cp)
        log["value"] = value / scale
        solver.hold(objective, expression, value)
    if not bound_holds:
        return incumbent
    cp_bound = value / scale if status == cp_model.OPTIMAL else None
    if status == cp_model.FEASIBLE and abs(cp.best_objective_bound) < 1e15:
        cp_bound = cp.best_objective_bound / scale
    bounds[objective.value] = _tighter(objective, cp_bound, bounds[objective.value])
    return incumbent


def _tighter(objective: Objective, a: float | None, b: float | None) -> float | None:
    known = [bound for bound in (a, b) if bound is not None]
    if not known:
        return None
    return min(known) if objective.maximise else max(known)
