"""Identical guests as types, counted per host: the placement stages of problems too big
for one boolean per (guest, host) pair.

Ten thousand guests on a thousand hosts make ten million pairs; but guests that need a
host are mostly a few shapes. Units (together groups merged) with the same summed demand,
weight, anti-affinity memberships and host filters are one **type**; the model has one
integer per (type, allowed host): how many of that type the host takes. Capacity,
anti-affinity (a class's members per host, at most one), `placed`, `balance` and
`consolidate` are all linear in those counts, so the leading placement stages of the
objective are solved lexicographically as in `stages.py`, from the incumbent's counts
as a hint, and the counts are turned back into guests (each keeps its incumbent host
where the counts allow).

Guests that run now stay where the incumbent puts them (their moves are timed
migrations, which counts cannot express); when none run, the type model is the whole
placement problem and CP-SAT's bounds on it are bounds on the original. The plan's
boots are then list-scheduled, checked, and kept only when better than the incumbent;
later stages (recovery, makespan) go to the neighbourhood search (`large.py`).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
from ortools.sat.python import cp_model

from placement.check import check
from placement.indexing import HostIndex, units
from placement.model import BALANCE_STEPS, Guest, GuestState, Objective, Problem
from placement.plan import Plan
from placement.solvers import SolveOptions
from placement.solvers.budget import Budget
from placement.solvers.common import Placement, better, finish_plan
from placement.solvers.cpsat.search import LARGE_MODEL_PAIRS, new_solver, run_search

logger = logging.getLogger(__name__)

#: Above this many (type, host) pairs the counts are not searched (see improve_placement).
MAX_TYPE_PAIRS = 100_000
#: Stages the counts express; the model solves the objective's leading run of them.
#: (`migrations` is a constant here: guests that run now keep the incumbent's host.)
STAGES = (Objective.PLACED, Objective.MIGRATIONS, Objective.BALANCE, Objective.CONSOLIDATE)


def leading_stages(problem: Problem) -> list[Objective]:
    """The objective's stages up to the first one the counts cannot express."""
    leading: list[Objective] = []
    for objective in problem.objective:
        if objective not in STAGES:
            break
        leading.append(objective)
    return leading


@attrs.frozen
class _Type:
    """Interchangeable units: `members[i]` are the guests of unit i (same shape)."""

    members: tuple[tuple[Guest, ...], ...]
    demand: np.ndarray[Any, np.dtype[np.int64]]
    weight: int
    classes: tuple[tuple[str, int], ...]  # (class, members of a unit in it)
    hosts: tuple[int, ...]  # allowed hosts with room for one unit alone


def _key(members: tuple[Guest, ...]) -> tuple[Any, ...]:
    """What makes units interchangeable for placement: summed demand, weight, class
    memberships and host filters (a frozen guest may not use its own host). Boot
    dependencies are not part of it (they split 10,000 guests into half again as many
    types); which units of a type stay out is chosen when the counts are turned back
    into guests (`_disaggregate`)."""
    demand: dict[str, int] = defaultdict(int)
    classes: dict[str, int] = defaultdict(int)
    filters = []
    for guest in members:
        for resource, amount in guest.demand.items():
            demand[resource] += amount
        for name in guest.anti_affinity:
            classes[name] += 1
        frozen_on = guest.current_host if guest.state is GuestState.FROZEN else None
        filters.append((guest.hosts, guest.avoid_hosts, guest.labels, frozen_on))
    return (
        tuple(sorted(demand.items())),
        sum(g.weight for g in members),
        tuple(sorted(classes.items())),
        tuple(sorted(filters, key=repr)),
    )


def _types(index: HostIndex, free: Sequence[tuple[Guest, ...]]) -> list[_Type]:
    grouped: dict[tuple[Any, ...], list[tuple[Guest, ...]]] = defaultdict(list)
    for members in free:
        grouped[_key(members)].append(members)
    result = []
    for (demand_items, weight, classes, _filters), group in grouped.items():
        demand = dict(demand_items)
        if any(count > 1 for _, count in classes):
            continue  # two members of one class in a unit: it fits on no host
        mask = index.fits_alone(demand)
        for guest in group[0]:
            mask &= index.allowed(guest)
        result.append(
            _Type(
                members=tuple(group),
                demand=index.vector(demand),
                weight=weight,
                classes=classes,
                hosts=tuple(int(h) for h in np.flatnonzero(mask)),
            )
        )
    return result


def improve_placement(
    problem: Problem,
    options: SolveOptions,
    incumbent: Plan,
    budget: Budget,
) -> tuple[Plan, dict[str, Any]]:
    """The leading placement stages solved on type counts within `budget`, from the
    verified `incumbent`; returns the better verified plan of the two and what happened
    (`metrics`), including CP-SAT's stage bounds when they hold for the original."""
    started = time.perf_counter()
    stages = leading_stages(problem)
    index = HostIndex(problem)
    assigned = {a.guest: a.host for a in incumbent.assignments}
    held = _Held.of(problem, index, assigned)
    types = _types(index, held.free)
    metrics: dict[str, Any] = {
        "types": len(types),
        "units": len(held.free),
        "pinned_units": len(held.pinned),
        "pairs": sum(len(t.hosts) for t in types),
        "stages": [],
    }
    if not types or not stages:
        return incumbent, metrics
    if metrics["pairs"] > MAX_TYPE_PAIRS:
        # Too diverse to pay: 10,000 generated guests make 458 types and 444,760 pairs,
        # on which CP-SAT found no better count in 30 s; the neighbourhoods get the time.
        metrics["skipped"] = "too many (type, host) pairs"
        return incumbent, metrics
    counts = _Counts.of(types, index, held, assigned)
    solved, proposed = _solve_stages(counts, stages, options, budget, metrics, index, held)
    if solved is None:
        return incumbent, metrics
    hosts = _disaggregate(problem, index, types, solved, assigned)
    for members in held.pinned:
        for guest in members:
            hosts[guest.name] = assigned.get(guest.name, guest.current_host)
    reasons = {u.guest: u.reason for u in incumbent.unplaced}
    placement = Placement(hosts=hosts, reasons=reasons)
    list_options = attrs.evolve(options, schedule="list")
    candidate = finish_plan(problem, placement, list_options, "cpsat", started)
    report = check(problem, candidate)
    metrics["seconds"] = round(time.perf_counter() - started, 3)
    if not report.ok:
        logger.error(
            "BUG: the type-count placement fails the checker (%s); keeping the incumbent",
            "; ".join(v.message for v in report.violations[:3]),
        )
        return incumbent, metrics
    metrics["bounds"] = _valid_bounds(problem, proposed, report.metrics["objectives"])
    if better(problem, candidate, incumbent):
        metrics["improved"] = True
        return candidate, metrics
    return incumbent, metrics


@attrs.frozen(eq=False)
class _Held:
    """What the counts do not decide: units with a guest running now (`pinned`: they stay
    where the incumbent keeps them) and the usage, used hosts and anti-affinity members
    they and the frozen copies hold; `free` are the other units."""

    pinned: list[tuple[Guest, ...]]
    free: list[tuple[Guest, ...]]
    fixed: np.ndarray[Any, np.dtype[np.int64]]
    occupied: set[int]
    held_class: dict[tuple[str, int], int]

    @classmethod
    def of(cls, problem: Problem, index: HostIndex, assigned: dict[str, str | None]) -> _Held:
        pinned: list[tuple[Guest, ...]] = []
        free: list[tuple[Guest, ...]] = []
        for members in units(problem):
            (pinned if any(problem.runs_now(g) for g in members) else free).append(members)
        fixed = index.fixed.copy()
        # Hosts holding something whatever the counts: frozen copies and pinned guests.
        occupied = set(index.frozen_hosts)
        held_class: dict[tuple[str, int], int] = defaultdict(int)
        for members in pinned:
            for guest in members:
                host = assigned.get(guest.name, guest.current_host)
                if host is None:
                    continue
                h = index.position[host]
                occupied.add(h)
                fixed[h] += index.vector(dict(guest.demand))
                for name in guest.anti_affinity:
                    held_class[name, h] += 1
        return cls(pinned, free, fixed, occupied, held_class)


@attrs.frozen(eq=False)
class _Counts:
    """The type-count model: `count[t, h]` guests of type `t` on host `h` (at most
    `upper[t, h]`), `on_host[h]` the (type, count) pairs of each host; hinted with the
    incumbent's counts."""

    model: cp_model.CpModel
    types: list[_Type]
    count: dict[tuple[int, int], cp_model.IntVar]
    upper: dict[tuple[int, int], int]
    on_host: dict[int, list[tuple[int, cp_model.IntVar]]]

    @classmethod
    def of(
        cls,
        types: list[_Type],
        index: HostIndex,
        held: _Held,
        assigned: dict[str, str | None],
    ) -> _Counts:
        fixed = held.fixed
        model = cp_model.CpModel()
        count: dict[tuple[int, int], cp_model.IntVar] = {}
        upper: dict[tuple[int, int], int] = {}
        on_host: dict[int, list[tuple[int, cp_model.IntVar]]] = defaultdict(list)
        for t, kind in enumerate(types):
            for h in kind.hosts:
                room = index.usable[h] - fixed[h]
                asked = kind.demand > 0
                most = (
                    int((room[asked] // kind.demand[asked]).min())
                    if asked.any()
                    else len(kind.members)
                )
                if kind.classes:
                    most = min(most, 1)
                most = min(most, len(kind.members))
                if most <= 0:
                    continue
                count[t, h] = model.new_int_var(0, most, "")
                upper[t, h] = most
                on_host[h].append((t, count[t, h]))
            placed_t = [count[t, h] for h in kind.hosts if (t, h) in count]
            if placed_t:
                model.add(sum(placed_t) <= len(kind.members))
        counts = cls(model, types, count, upper, on_host)
        counts.add_host_rules(index, held)
        counts.hint(index, assigned)
        return counts

    def add_host_rules(self, index: HostIndex, held: _Held) -> None:
        """Capacity and anti-affinity per host, next to what is held there."""
        types = self.types
        for h, pairs in self.on_host.items():
            for r in range(len(index.resources)):
                terms = [
                    (int(types[t].demand[r]), var) for t, var in pairs if types[t].demand[r] > 0
                ]
                if terms:
                    self.model.add(
                        sum(a * v for a, v in terms) <= int(index.usable[h, r] - held.fixed[h, r])
                    )
            by_class: dict[str, list[tuple[int, cp_model.IntVar]]] = defaultdict(list)
            for t, var in pairs:
                for name, in_class in types[t].classes:
                    by_class[name].append((in_class, var))
            for name, in_class_terms in by_class.items():
                total = sum(m * v for m, v in in_class_terms)
                self.model.add(total <= max(0, 1 - held.held_class[name, h]))

    def hint(self, index: HostIndex, assigned: dict[str, str | None]) -> None:
        """The incumbent's counts, as the hint."""
        incumbent_count: dict[tuple[int, int], int] = defaultdict(int)
        for t, kind in enumerate(self.types):
            for members in kind.members:
                host = assigned.get(members[0].name)
                if host is not None:
                    incumbent_count[t, index.position[host]] += 1
        for key, var in self.count.items():
            self.model.add_hint(var, incumbent_count.get(key, 0))


def _solve_stages(
    counts: _Counts,
    stages: Sequence[Objective],
    options: SolveOptions,
    budget: Budget,
    metrics: dict[str, Any],
    index: HostIndex,
    held: _Held,
) -> tuple[dict[tuple[int, int], int] | None, dict[str, tuple[float, float]]]:
    """The placement `stages` on the counts, lexicographically within `budget`: the
    counts of the last stage solved (None if none was), and per stage (CP-SAT's bound,
    the value held for the later stages) when the counts are the whole problem; each
    stage's log goes to `metrics["stages"]`."""
    model = counts.model
    count = counts.count
    exact = not held.pinned
    # stage -> (CP-SAT's bound, the value held for the later stages); the counts relax
    # the boot schedule, so a bound holds for the original only while every earlier
    # stage's held value is reached by a real plan (checked by `_valid_bounds`).
    proposed: dict[str, tuple[float, float]] = {}
    solved: dict[tuple[int, int], int] | None = None
    searched = [s for s in stages if s is not Objective.MIGRATIONS]
    for position, objective in enumerate(searched):
        expression, scale = _expression(
            objective,
            model,
            counts.types,
            counts.upper,
            count,
            counts.on_host,
            index,
            held.fixed,
            held.occupied,
        )
        if objective.maximise:
            model.maximize(expression)
        else:
            model.minimize(expression)
        stage = budget.share(1 / (len(searched) - position))
        # The optimiser's own settings: a light presolve on big models, from the hint.
        solver = new_solver(options, stage, stage.remaining(), large=len(count) > LARGE_MODEL_PAIRS)
        status = run_search(solver, model, stage)
        log: dict[str, Any] = {
            "stage": objective.value,
            "cp_sat_status": solver.status_name(status),
            "seconds": round(solver.wall_time, 3),
        }
        metrics["stages"].append(log)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            break  # the earlier stages' counts stand
        value = round(solver.objective_value)
        log["value"] = value / scale
        if exact:
            bound = value if status == cp_model.OPTIMAL else solver.best_objective_bound
            proposed[objective.value] = (bound / scale, value / scale)
        if objective.maximise:
            model.add(expression >= value)
        else:
            model.add(expression <= value)
        solved = {key: int(solver.value(var)) for key, var in count.items()}
        model.clear_hints()  # type: ignore[no-untyped-call]  # untyped in ortools
        for key, var in count.items():
            model.add_hint(var, solved[key])
    return solved, proposed


def _valid_bounds(
    problem: Problem, proposed: dict[str, tuple[float, float]], reached: dict[str, float]
) -> dict[str, float]:
    """The type model's bounds that hold for the original: the first stage's always (the
    counts relax the original), a later one's only while the checked plan reaches every
    earlier stage's held value (then that value is the original's optimum too)."""
    valid: dict[str, float] = {}
    for objective in problem.objective:
        if objective is Objective.MIGRATIONS and proposed:
            # Only computed when no guest runs now (no pins): nothing can migrate.
            valid[objective.value] = 0.0
            continue
        if objective.value not in proposed:
            break
        bound, held = proposed[objective.value]
        valid[objective.value] = bound
        if abs(reached[objective.value] - held) > 1e-9:
            break
    return valid


def _expression(
    objective: Objective,
    model: cp_model.CpModel,
    types: Sequence[_Type],
    upper: dict[tuple[int, int], int],
    count: dict[tuple[int, int], cp_model.IntVar],
    on_host: dict[int, list[tuple[int, cp_model.IntVar]]],
    index: HostIndex,
    fixed: np.ndarray[Any, np.dtype[np.int64]],
    occupied: set[int],
) -> tuple[cp_model.LinearExprT, int]:
    """A stage over the counts, in the checker's units (balance in steps), and its scale."""
    if objective is Objective.PLACED:
        # Guests that run now are placed in every plan of this model: a constant, left out.
        return sum(types[t].weight * var for (t, _h), var in count.items()), 1
    online = [int(h) for h in np.flatnonzero(index.online)]
    if objective is Objective.BALANCE:
        lowest = highest = 0
        rows = []
        for h in online:
            for r in range(len(index.resources)):
                usable = int(index.usable[h, r])
                if usable <= 0:
                    continue
                held = int(fixed[h, r])
                lowest = max(lowest, -(-BALANCE_STEPS * held // usable))
                bounded = [
                    (int(types[t].demand[r]), v, upper[t, h])
                    for t, v in on_host.get(h, [])
                    if types[t].demand[r] > 0
                ]
                most = held + sum(a * u for a, _v, u in bounded)
                highest = max(highest, -(-BALANCE_STEPS * most // usable))
                if bounded:
                    rows.append((usable, held, [(a, v) for a, v, _u in bounded]))
        steps = model.new_int_var(lowest, max(lowest, highest), "")
        for usable, held, terms in rows:
            model.add(steps * usable >= BALANCE_STEPS * (held + sum(a * v for a, v in terms)))
        return steps, BALANCE_STEPS
    # CONSOLIDATE: hosts holding anything (fixed loads count as always there).
    always = {h for h in online if h in occupied}
    used = []
    for h in online:
        if h in always or not on_host.get(h):
            continue
        flag = model.new_bool_var("")
        most = sum(upper[t, h] for t, _var in on_host[h])
        model.add(sum(var for _t, var in on_host[h]) <= most * flag)
        used.append(flag)
    return sum(used) + len(always), 1


def _disaggregate(
    problem: Problem,
    index: HostIndex,
    types: Sequence[_Type],
    solved: dict[tuple[int, int], int],
    assigned: dict[str, str | None],
) -> dict[str, str | None]:
    """Guests onto hosts by the counts: a unit keeps its incumbent host while that host
    still has room in its type's count, the rest fill the remaining counts; when a type
    has fewer slots than units, those that other guests start after, then those without
    dependencies of their own, come first (a unit left out takes its dependants along)."""
    hosts: dict[str, str | None] = {}
    needed = {name for guest in problem.guests for name in guest.boot.after}

    def urgency(members: tuple[Guest, ...]) -> tuple[bool, bool]:
        return (
            not any(g.name in needed for g in members),
            any(g.boot.after for g in members),
        )

    for t, kind in enumerate(types):
        left = {h: n for (tt, h), n in solved.items() if tt == t and n > 0}
        waiting = []
        for members in kind.members:
            host = assigned.get(members[0].name)
            h = index.position[host] if host is not None else None
            if h is not None and left.get(h, 0) > 0:
                left[h] -= 1
                hosts.update((g.name, host) for g in members)
            else:
                waiting.append(members)
        slots = [h for h, n in sorted(left.items()) for _ in range(n)]
        waiting.sort(key=urgency)
        for members, h in zip(waiting, slots, strict=False):
            hosts.update((g.name, index.names[h]) for g in members)
        for members in waiting[len(slots) :]:
            hosts.update((g.name, None) for g in members)
    return hosts
