"""The objective stages as CP-SAT expressions, each equal to the checker's value.

`balance` is in steps of 1 / BALANCE_STEPS (the checker rounds the ratio up to a step),
every other stage is in the checker's own units (`spread` is an integer already);
`imbalance` is not linear and has its own module (imbalance_stage.py), on `host_steps`.
"""

from __future__ import annotations

import math
from collections import defaultdict

from ortools.sat.python import cp_model

from placement.imbalance import SPREAD_STEPS, load_resources, spread_target
from placement.model import BALANCE_STEPS, Objective
from placement.solvers.cpsat.variables import Variables, load_terms
from placement.solvers.cpsat.view import ProblemView


def stage_expression(
    objective: Objective, view: ProblemView, variables: Variables
) -> cp_model.LinearExprT:
    """The expression of one stage (to maximise for `placed`, minimise otherwise)."""
    model = variables.model
    if objective is Objective.PLACED:
        return sum(unit.weight * variables.placed[unit.index] for unit in view.units)
    if objective is Objective.MIGRATIONS:
        return sum(
            cost * variables.x[unit.index, h]
            for unit in view.units
            for h, cost in unit.move_cost.items()
            if cost > 0
        )
    if objective is Objective.RECOVERY:
        return sum(boot.guest.weight * variables.ready[b] for b, boot in enumerate(view.boots))
    if objective is Objective.MAKESPAN:
        # The last boot ready or migration done, as the checker counts it.
        makespan = model.new_int_var(0, variables.horizon_s, "")
        finishes = [*variables.ready, *variables.migrations.ready]
        if finishes:
            model.add_max_equality(makespan, finishes)
        else:
            model.add(makespan == 0)
        return makespan
    if objective is Objective.BALANCE:
        return _balance(view, variables)
    if objective is Objective.CONSOLIDATE:
        return _consolidate(view, variables)
    if objective is Objective.SPREAD:
        return _spread(view, variables)
    # `imbalance` is a ratio: stages.improve minimises it by Dinkelbach's method.
    raise ValueError(f"unknown objective {objective}")  # pragma: no cover - enum is closed


def _balance(view: ProblemView, variables: Variables) -> cp_model.IntVar:
    """The highest used/usable ratio over online hosts, in steps, rounded up:
    `steps * usable >= BALANCE_STEPS * used` for every host and resource."""
    model = variables.model
    terms = load_terms(view, variables)
    lowest = 0
    highest = BALANCE_STEPS
    constraints: list[tuple[int, int, list[tuple[int, cp_model.IntVar]]]] = []
    for h in view.online_hosts:
        for resource in view.resources:
            usable = int(view.index.usable[h, view.index.column[resource]])
            fixed = view.fixed.get((h, resource), 0)
            if usable <= 0:
                continue
            fixed_steps = -(-BALANCE_STEPS * fixed // usable)
            lowest = max(lowest, fixed_steps)
            highest = max(highest, fixed_steps)
            pairs = terms.get((h, resource), [])
            if pairs:
                constraints.append((usable, fixed, pairs))
    steps = model.new_int_var(lowest, highest, "")
    for usable, fixed, pairs in constraints:
        used = fixed + sum(amount * var for amount, var in pairs)
        model.add(steps * usable >= BALANCE_STEPS * used)
    return steps


def _consolidate(view: ProblemView, variables: Variables) -> cp_model.LinearExprT:
    """Online hosts holding anything: frozen copies count as always there."""
    model = variables.model
    always = view.frozen_hosts
    on_host: dict[int, list[cp_model.IntVar]] = defaultdict(list)
    for unit in view.units:
        for h in unit.candidates:
            on_host[h].append(variables.x[unit.index, h])
    used_hosts: list[cp_model.IntVar] = []
    for h in view.online_hosts:
        if h in always or not on_host.get(h):
            continue
        used = model.new_bool_var("")
        model.add_max_equality(used, on_host[h])
        used_hosts.append(used)
    return sum(used_hosts) + sum(1 for h in view.online_hosts if h in always)


# CP-SAT's integers are 64-bit and its sums must not overflow: room for a factor 2.
_INT_LIMIT = 2**62


class ExactModelTooLargeError(ValueError):
    """The exact load-step model of `spread` or `imbalance` needs integers beyond 64
    bits (capacities of about 10^9 and more: it multiplies a host's capacities)."""


def host_steps(
    view: ProblemView, variables: Variables
) -> list[tuple[cp_model.LinearExprT, int, int]]:
    """Each online host's load in steps (`placement.imbalance`), in `view.online_hosts`
    order, with its bounds: a variable equal to the ceiling of the mean of used/capacity
    over the load resources it has — `steps == ceil(SPREAD_STEPS * sum(used_r * prod(c) /
    c_r) / (k * prod(c)))` — or an int where nothing can change it (0 for a host without
    load resources)."""
    model = variables.model
    problem = view.problem
    resources = load_resources(problem)
    terms = load_terms(view, variables)
    result: list[tuple[cp_model.LinearExprT, int, int]] = []
    for h in view.online_hosts:
        host = problem.hosts[h]
        capacities = [(r, host.capacity.get(r, 0)) for r in resources]
        capacities = [(r, c) for r, c in capacities if c > 0]
        if not capacities:
            result.append((0, 0, 0))
            continue
        denominator = len(capacities) * math.prod(c for _, c in capacities)
        fixed = 0
        most = 0
        pairs: list[tuple[int, cp_model.IntVar]] = []
        for resource, capacity in capacities:
            weight = denominator // (len(capacities) * capacity)
            held = view.fixed.get((h, resource), 0)
            fixed += weight * held
            most += weight * held
            for amount, var in terms.get((h, resource), []):
                pairs.append((weight * amount, var))
                most += weight * amount
        lowest = -(-SPREAD_STEPS * fixed // denominator)
        if not pairs:
            result.append((lowest, lowest, lowest))
            continue
        highest = -(-SPREAD_STEPS * most // denominator)
        if max(SPREAD_STEPS * most, denominator * (highest + 1)) > _INT_LIMIT:
            raise ExactModelTooLargeError(
                f"host {host.name}: the exact load steps need integers beyond 64 bits"
            )
        steps = model.new_int_var(lowest, highest, "")
        load = SPREAD_STEPS * (fixed + sum(w * var for w, var in pairs))
        model.add(denominator * steps >= load)
        model.add(denominator * steps <= load + denominator - 1)
        result.append((steps, lowest, highest))
    return result


def _spread(view: ProblemView, variables: Variables) -> cp_model.LinearExprT:
    """The sum over online hosts of (load in steps - even load)^2 (`placement.imbalance`)."""
    model = variables.model
    target = spread_target(view.problem)
    squares: list[cp_model.LinearExprT] = []
    fixed_total = 0
    for steps, lowest, highest in host_steps(view, variables):
        low, high = lowest - target, highest - target
        if low == high:
            fixed_total += low * low
            continue
        distance = model.new_int_var(low, high, "")
        model.add(distance == steps - target)
        square = model.new_int_var(0, max(low * low, high * high), "")
        model.add_multiplication_equality(square, [distance, distance])
        squares.append(square)
    return sum(squares) + fixed_total
