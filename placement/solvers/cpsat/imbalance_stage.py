"""The imbalance stage: Proxmox's imbalance as an objective, minimised by a sequence of
convex CP-SAT problems (`run`, on the stage loop's `StageSolver`).

The imbalance of integer loads s_1..s_N is sqrt(V / S^2 / (N - 1)) with S = sum(s) and
V = N * sum(s^2) - S^2; minimising it is minimising r = V / S^2, a ratio with a concave
part (-S^2) that CP-SAT bounds badly: Dinkelbach's form `V - r* S^2` found no improvement
of a 4-host, 41-guest rebalance in 5 s, exact coefficients or rounded.

The convex-concave procedure does: at the incumbent (ratio r*, total S*), replace -S^2 by
its tangent, which lies above it. What is left is N * sum((s_h - t)^2) plus a constant,
with t = (1 + r*) * S* / N: the `spread` objective with its target at t instead of the
even load, separable over hosts, which CP-SAT solves and proves fast. Its optimum is
never above the incumbent in V - r* S^2, hence never a higher ratio; repeat from it
until the ratio stops falling. This finds a local optimum of the ratio, not a proven
global one. The bound comes from two more solves: the least sum of squares Q and the
largest total S any plan can have give r >= N * Q_min / S_max^2 - 1 (exact when every
plan has the same total, as on hosts of one size; weak when totals vary a lot).

t is a fraction: it is kept as p / TARGET_DENOMINATOR, so the objective is
sum((TARGET_DENOMINATOR * s_h - p)^2), exact integers of modest size. Every candidate is
accepted on its exact ratio (`ratio`), so rounding t can cost a step but never a wrong one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import attrs
from ortools.sat.python import cp_model

from placement.imbalance import imbalance_of_steps, load_steps, spread_target
from placement.solvers.budget import SHARES, Budget
from placement.solvers.cpsat.model import Solution
from placement.solvers.cpsat.objectives import host_steps
from placement.solvers.cpsat.stage_solver import StageSolver
from placement.solvers.cpsat.view import ProblemView

#: t is expressed in sixteenths of a load step.
TARGET_DENOMINATOR = 16


def ratio(steps: Sequence[int]) -> Fraction:
    """V / S^2 of integer loads, exactly (0 for no load or fewer than two): the squared
    coefficient of variation, which orders plans as the imbalance does."""
    count = len(steps)
    total = sum(steps)
    if count < 2 or total <= 0:
        return Fraction(0)
    return Fraction(count * sum(s * s for s in steps) - total * total, total * total)


def tangent_target(steps: Sequence[int]) -> int:
    """p, with t = p / TARGET_DENOMINATOR = (1 + r) * S / N at the loads `steps`."""
    count = max(len(steps), 1)
    total = sum(steps)
    target = (1 + ratio(steps)) * Fraction(total, count)
    return round(target * TARGET_DENOMINATOR)


def add_distance_to_target(
    model: cp_model.CpModel,
    steps: Sequence[tuple[cp_model.LinearExprT, int, int]],
    target: int,
) -> cp_model.LinearExpr:
    """sum((TARGET_DENOMINATOR * s_h - target)^2) over the hosts' load steps (each an
    expression with its bounds, or an int)."""
    q = TARGET_DENOMINATOR
    squares: list[cp_model.LinearExprT] = []
    constant = 0
    for expression, low, high in steps:
        low_d, high_d = q * low - target, q * high - target
        if low == high:
            constant += low_d * low_d
            continue
        distance = model.new_int_var(low_d, high_d, "")
        model.add(distance == q * expression - target)
        biggest = max(low_d * low_d, high_d * high_d)
        lowest = 0 if low_d <= 0 <= high_d else min(low_d * low_d, high_d * high_d)
        square = model.new_int_var(lowest, biggest, "")
        model.add_multiplication_equality(square, [distance, distance])
        squares.append(square)
    result: cp_model.LinearExpr = cp_model.LinearExpr.sum(squares) + constant
    return result


def ratio_lower_bound(count: int, squares_low: float, total_high: float) -> Fraction:
    """r = N * Q / S^2 - 1 >= N * Q_min / S_max^2 - 1 (and >= 0), from a lower bound on
    Q = sum(s^2) and an upper bound on S = sum(s) over every plan."""
    if count < 2 or total_high <= 0:
        return Fraction(0)
    bound = (
        Fraction(count) * Fraction(math.floor(squares_low)) / Fraction(math.ceil(total_high)) ** 2
        - 1
    )
    return max(bound, Fraction(0))


def imbalance_of_ratio(count: int, value: Fraction) -> float:
    """The imbalance whose squared variation is `value`: sqrt(r / (N - 1))."""
    return math.sqrt(float(value) / (count - 1)) if count >= 2 else 0.0


@attrs.frozen
class StageOutcome:
    """What the imbalance stage ends with: its plan's solution (None: none found), value,
    proven bound and log."""

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


def run(solver: StageSolver, budget: Budget) -> StageOutcome:
    """Lower the imbalance within `budget` from the incumbent by the convex-concave
    procedure (the module docstring), then hold it for the later stages."""
    view = solver.view
    model = solver.model
    steps = host_steps(view, solver.variables)
    incumbent = solver.incumbent
    iterations = 0
    wall = 0.0
    status_name = "UNKNOWN"
    if incumbent is None:
        # No plan yet: start from the even-load solution (`spread`'s target).
        model.minimize(add_distance_to_target(model, steps, _even_target(view)))
        cp, status = solver.search(budget, budget.remaining() / 2)
        wall += cp.wall_time
        status_name = cp.status_name(status)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            failed: dict[str, object] = {"stage": "imbalance", "cp_sat_status": status_name}
            return StageOutcome(None, 0.0, None, {**failed, "seconds": wall, "value": None})
        incumbent = solver.read(cp)
    current = _solution_steps(view, incumbent)
    # A share of the time proves the bound (below); the rest lowers the ratio.
    lowering = budget.share(SHARES.imbalance_search)
    while lowering.remaining() > 0.01 and not lowering.expired:
        distance = add_distance_to_target(model, steps, tangent_target(current))
        model.minimize(distance)
        solver.hint(incumbent)
        cp, status = solver.search(lowering)
        iterations += 1
        wall += cp.wall_time
        status_name = cp.status_name(status)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            break
        candidate = solver.read(cp)
        loads = _solution_steps(view, candidate)
        if not ratio(loads) < ratio(current):
            break  # a fixed point of the procedure (or out of time)
        incumbent, current = candidate, loads
    bound = _bound(solver, steps, budget)
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
    return StageOutcome(incumbent, value, bound, log)


def _bound(
    solver: StageSolver,
    steps: list[tuple[cp_model.LinearExprT, int, int]],
    budget: Budget,
) -> float:
    """A proven lower bound on the imbalance under the stages held so far: the least sum
    of squared loads and the largest total load, each by CP-SAT (its bound, whether or
    not it finished) within half the time left."""
    model = solver.model
    q = TARGET_DENOMINATOR
    seconds = max(budget.remaining() / 2, 0.05)
    model.clear_hints()  # type: ignore[no-untyped-call]  # untyped in ortools
    model.minimize(add_distance_to_target(model, steps, 0))  # (q * s)^2 summed
    cp, status = solver.search(budget, seconds)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return 0.0
    squares_low = cp.best_objective_bound / (q * q)
    model.maximize(cp_model.LinearExpr.sum([expression for expression, _, _ in steps]))
    cp, status = solver.search(budget, max(budget.remaining(), 0.05))
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return 0.0
    count = len(steps)
    return imbalance_of_ratio(count, ratio_lower_bound(count, squares_low, cp.best_objective_bound))


def _even_target(view: ProblemView) -> int:
    return spread_target(view.problem) * TARGET_DENOMINATOR


def _distance_at(steps: list[int], target: int) -> int:
    return sum((TARGET_DENOMINATOR * s - target) ** 2 for s in steps)
