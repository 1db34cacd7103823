"""The decision variables of the CP-SAT model, created once and shared by every rule.

Variables live in dicts and lists keyed by the indices of `ProblemView`; names are left
empty on purpose (they cost memory on big models).
"""

from __future__ import annotations

from collections import defaultdict

import attrs
from ortools.sat.python import cp_model

from placement.model import Guest
from placement.solvers.cpsat.view import ProblemView


@attrs.frozen
class Move:
    """A running guest that may move: from host `source` to any of `targets`."""

    guest: Guest
    unit: int
    source: int
    targets: tuple[int, ...]
    duration_s: int


@attrs.define
class MigrationVariables:
    """`moving[i]`: move `i` happens. `start[i]`, `ready[i]`: its interval (ready 0 when
    it does not happen). `interval[i]`: the move, present when it happens."""

    moves: tuple[Move, ...]
    moving: list[cp_model.IntVar]
    start: list[cp_model.IntVar]
    ready: list[cp_model.IntVar]
    interval: list[cp_model.IntervalVar]


def possible_moves(view: ProblemView) -> tuple[Move, ...]:
    """Every running guest whose unit has a candidate host other than its own."""
    problem = view.problem
    moves = []
    for unit in view.units:
        for guest in unit.guests:
            if not problem.runs_now(guest) or guest.current_host is None:
                continue
            source = problem.host_position(guest.current_host)
            targets = tuple(h for h in unit.candidates if h != source)
            if targets:
                moves.append(
                    Move(guest, unit.index, source, targets, problem.migration_duration(guest))
                )
    return tuple(moves)


def create_migration_variables(
    view: ProblemView,
    model: cp_model.CpModel,
    x: dict[tuple[int, int], cp_model.IntVar],
    horizon_s: int,
) -> MigrationVariables:
    """One start, ready time and optional interval per possible move; a move that cannot
    end by the horizon does not happen."""
    moves = possible_moves(view)
    moving: list[cp_model.IntVar] = []
    start: list[cp_model.IntVar] = []
    ready: list[cp_model.IntVar] = []
    interval: list[cp_model.IntervalVar] = []
    for move in moves:
        happens = model.new_bool_var("")
        # It moves exactly when its unit ends on another host.
        model.add(happens == sum(x[move.unit, h] for h in move.targets))
        if move.duration_s > horizon_s:
            model.add(happens == 0)
        begin = model.new_int_var(0, max(horizon_s - move.duration_s, 0), "")
        done = model.new_int_var(0, horizon_s, "")
        model.add(done == begin + move.duration_s).only_enforce_if(happens)
        model.add(done == 0).only_enforce_if(~happens)
        moving.append(happens)
        start.append(begin)
        ready.append(done)
        interval.append(
            model.new_optional_fixed_size_interval_var(begin, move.duration_s, happens, "")
        )
    return MigrationVariables(moves, moving, start, ready, interval)


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
