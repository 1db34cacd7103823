"""The CP-SAT model: every rule family, the solution type, hints and holds.

`build_model` adds each family of `RULE_FAMILIES` (one `add_<rule>` function each, in
`placement_rules`, `schedule_rules` and `migration_rules`; their names, order and the
checker rules each enforces are in the rule catalogue, placement/rules.py) to the
variables of `variables`. A `Solution` is what the model decides, in the view's indices: the stage
loop, the strategies and the probes hint it (`add_hint`), read it back from a solver
(`solution_of_solver`), and keep a finished objective at its value (`hold`).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
from ortools.sat.python import cp_model

from placement.model import Objective
from placement.plan import Plan
from placement.rules import MODEL_FAMILIES
from placement.solvers.cpsat.migration_rules import (
    add_capacity_over_time,
    add_migration_budget,
    add_migration_concurrency,
    add_migration_load,
)
from placement.solvers.cpsat.placement_rules import (
    add_anti_affinity,
    add_capacity,
    add_dependencies_placed,
    add_follows,
    add_host_symmetry,
)
from placement.solvers.cpsat.schedule_rules import (
    add_after,
    add_batch_limit,
    add_boot_pools,
    add_host_boot_limits,
    add_stagger,
)
from placement.solvers.cpsat.variables import Variables, create_variables, possible_moves
from placement.solvers.cpsat.view import ProblemView, canonical_hosts


@attrs.frozen
class Solution:
    """Hosts per unit, start instants per slot and per possible move: what the model
    decides."""

    unit_host: tuple[int | None, ...]
    slot_start: tuple[int, ...]
    move_start: tuple[int, ...] = ()


RuleFamily = Callable[[ProblemView, Variables], None]

# The function that adds each constraint family of the rule catalogue
# (placement/rules.py, `MODEL_FAMILIES`: names, order, the rules each one enforces).
# Host filters, together groups and start groups are in the variables themselves.
_ADD_FAMILY: dict[str, RuleFamily] = {
    "capacity": add_capacity,
    "anti_affinity": add_anti_affinity,
    "follows": add_follows,
    "after_placed": add_dependencies_placed,
    "pool_capacity": add_boot_pools,
    "max_starts": add_batch_limit,
    "host_boot_limits": add_host_boot_limits,
    "after": add_after,
    "stagger": add_stagger,
    "capacity_over_time": add_capacity_over_time,
    "migration_concurrency": add_migration_concurrency,
    "migration_budget": add_migration_budget,
    "migration_load": add_migration_load,
}

# Every rule family of the model, in the catalogue's order, by the name `explain` uses to
# say which one blocks a guest.
RULE_FAMILIES: dict[str, RuleFamily] = {
    family.name: _ADD_FAMILY[family.name] for family in MODEL_FAMILIES
}


def build_model(
    view: ProblemView, without: frozenset[str] = frozenset(), *, symmetry: bool = True
) -> Variables:
    """The CP-SAT model of every rule the checker knows (but the families in `without`),
    with one labelling of interchangeable hosts unless `symmetry` is false."""
    variables = create_variables(view)
    for name, add_rules in RULE_FAMILIES.items():
        if name not in without:
            add_rules(view, variables)
    if symmetry:
        # Not a rule family: it removes no plan's values, so it never explains anything.
        add_host_symmetry(view, variables)
    return variables


def solution_of_plan(view: ProblemView, plan: Plan) -> Solution:
    """The model's view of a plan (for hints). Slots of unplaced guests start at 0."""
    problem = view.problem
    by_guest = plan.by_guest()
    unit_host: list[int | None] = []
    for unit in view.units:
        host = by_guest[unit.guests[0].name].host if unit.guests[0].name in by_guest else None
        unit_host.append(problem.host_position(host) if host is not None else None)
    slot_start = []
    for slot in view.slots:
        starts = [
            by_guest[view.boots[b].guest.name].start_s
            for b in slot.boots
            if view.boots[b].guest.name in by_guest
        ]
        slot_start.append(next((s for s in starts if s is not None), 0))
    move_start = []
    for move in possible_moves(view):
        found = by_guest.get(move.guest.name)
        move_start.append(found.start_s if found is not None and found.start_s is not None else 0)
    return Solution(canonical_hosts(view, tuple(unit_host)), tuple(slot_start), tuple(move_start))


def solution_of_solver(
    view: ProblemView, variables: Variables, solver: cp_model.CpSolver
) -> Solution:
    unit_host: list[int | None] = []
    for unit in view.units:
        chosen = [h for h in unit.candidates if solver.boolean_value(variables.x[unit.index, h])]
        unit_host.append(chosen[0] if chosen else None)
    slot_start = tuple(int(solver.value(start)) for start in variables.start)
    move_start = tuple(int(solver.value(start)) for start in variables.migrations.start)
    return Solution(tuple(unit_host), slot_start, move_start)


def add_hint(view: ProblemView, variables: Variables, solution: Solution) -> None:
    model = variables.model
    model.clear_hints()  # type: ignore[no-untyped-call]  # untyped in ortools
    for unit in view.units:
        chosen = solution.unit_host[unit.index]
        for h in unit.candidates:
            model.add_hint(variables.x[unit.index, h], h == chosen)
        model.add_hint(variables.placed[unit.index], chosen is not None)
    for slot in view.slots:
        model.add_hint(variables.start[slot.index], solution.slot_start[slot.index])
    for b, boot in enumerate(view.boots):
        placed = solution.unit_host[boot.unit] is not None
        ready = solution.slot_start[boot.slot] + boot.duration_s if placed else 0
        model.add_hint(variables.ready[b], ready)
    moves = variables.migrations
    for i, move in enumerate(moves.moves):
        host = solution.unit_host[move.unit]
        happens = host is not None and host != move.source
        start_s = solution.move_start[i] if i < len(solution.move_start) else 0
        model.add_hint(moves.moving[i], happens)
        model.add_hint(moves.start[i], start_s)
        model.add_hint(moves.ready[i], start_s + move.duration_s if happens else 0)


def hold(
    variables: Variables, objective: Objective, expression: cp_model.LinearExprT, value: int
) -> None:
    """Keep a finished stage at the value found while the later ones are optimised."""
    if objective.maximise:
        variables.model.add(expression >= value)
    else:
        variables.model.add(expression <= value)
