"""The objective stages as CP-SAT expressions, each equal to the checker's value.

`balance` is in steps of 1 / BALANCE_STEPS (the checker rounds the ratio up to a step),
every other stage is in the checker's own units.
"""

from __future__ import annotations

from collections import defaultdict

from ortools.sat.python import cp_model

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
        makespan = model.new_int_var(0, variables.horizon_s, "")
        if variables.ready:
            model.add_max_equality(makespan, variables.ready)
        else:
            model.add(makespan == 0)
        return makespan
    if objective is Objective.BALANCE:
        return _balance(view, variables)
    if objective is Objective.CONSOLIDATE:
        return _consolidate(view, variables)
    raise ValueError(f"unknown objective {objective}")  # pragma: no cover - enum is closed


def _balance(view: ProblemView, variables: Variables) -> cp_model.IntVar:
    """The highest used/usable ratio over online hosts, in steps, rounded up:
    `steps * usable >= BALANCE_STEPS * used` for every host and resource."""
    model = variables.model
    hosts = view.problem.hosts
    terms = load_terms(view, variables)
    lowest = 0
    highest = BALANCE_STEPS
    constraints: list[tuple[int, int, list[tuple[int, cp_model.IntVar]]]] = []
    for h in view.online_hosts:
        for resource in view.resources:
            usable = hosts[h].usable(resource)
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
