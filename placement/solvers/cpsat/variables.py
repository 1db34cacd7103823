"""The decision variables of the CP-SAT model, created once and shared by every rule.

Variables live in dicts and lists keyed by the indices of `ProblemView`; names are left
empty on purpose (they cost memory on big models).
"""

from __future__ import annotations

from collections import defaultdict

import attrs
from ortools.sat.python import cp_model

from placement.solvers.cpsat.migration_rules import (
    MigrationVariables,
    create_migration_variables,
)
from placement.solvers.cpsat.view import ProblemView


@attrs.define
class Variables:
    """`x[u, h]`: unit `u` runs on host `h` (only candidate pairs exist). `placed[u]`: the
    unit has a host. `start[s]`: the start instant of slot `s`. `ready[b]`: when boot `b` is
    ready (0 if its unit is unplaced). `interval[b]`: the boot, present when placed.
    `slot_used[s]`: some guest of slot `s` boots. `migrations`: the possible live
    migrations of running guests and their timing (`migration_rules`)."""

    model: cp_model.CpModel
    horizon_s: int
    x: dict[tuple[int, int], cp_model.IntVar]
    placed: list[cp_model.IntVar]
    start: list[cp_model.IntVar]
    ready: list[cp_model.IntVar]
    interval: list[cp_model.IntervalVar]
    slot_used: list[cp_model.IntVar]
    migrations: MigrationVariables


def create_variables(view: ProblemView) -> Variables:
    """Create every decision variable, with the rules that define them:

    each unit is on exactly one of its candidate hosts, or unplaced; each boot's interval
    is present exactly when its unit is placed and ends by the horizon.
    """
    model = cp_model.CpModel()
    horizon_s = view.problem.schedule.horizon_s
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    placed: list[cp_model.IntVar] = []
    for unit in view.units:
        choices = []
        for h in unit.candidates:
            x[unit.index, h] = model.new_bool_var("")
            choices.append(x[unit.index, h])
        is_placed = model.new_bool_var("")
        # A unit is on exactly one candidate host when placed, on none otherwise.
        model.add(sum(choices) == is_placed)
        placed.append(is_placed)

    start = [model.new_int_var(0, max(horizon_s - slot.longest_s, 0), "") for slot in view.slots]
    ready: list[cp_model.IntVar] = []
    interval: list[cp_model.IntervalVar] = []
    for boot in view.boots:
        present = placed[boot.unit]
        interval.append(
            model.new_optional_fixed_size_interval_var(
                start[boot.slot], boot.duration_s, present, ""
            )
        )
        done = model.new_int_var(0, horizon_s, "")
        # Ready when booted if placed; 0 (no contribution to any objective) if not.
        model.add(done == start[boot.slot] + boot.duration_s).only_enforce_if(present)
        model.add(done == 0).only_enforce_if(~present)
        ready.append(done)

    slot_used: list[cp_model.IntVar] = []
    for slot in view.slots:
        used = model.new_bool_var("")
        members = [placed[view.boots[b].unit] for b in slot.boots]
        model.add_max_equality(used, members)
        slot_used.append(used)
    return Variables(
        model=model,
        horizon_s=horizon_s,
        x=x,
        placed=placed,
        start=start,
        ready=ready,
        interval=interval,
        slot_used=slot_used,
        migrations=create_migration_variables(view, model, x, horizon_s),
    )


LoadTerms = dict[tuple[int, str], list[tuple[int, cp_model.IntVar]]]


def load_terms(view: ProblemView, variables: Variables) -> LoadTerms:
    """(host, resource) -> (amount, x) for every unit that may land there and asks for
    some of that resource: the sum of `amount * x` is what the placed units use."""
    terms: dict[tuple[int, str], list[tuple[int, cp_model.IntVar]]] = defaultdict(list)
    for unit in view.units:
        for h in unit.candidates:
            for resource, amount in unit.demand.items():
                if amount > 0:
                    terms[h, resource].append((amount, variables.x[unit.index, h]))
    return terms
