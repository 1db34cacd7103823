"""Why a guest is left unplaced: a structural diagnostic, an unplaced dependency, the
binding placement rule given the others, or the rule families CP-SAT probes find blocking
(`explain`)."""

from __future__ import annotations

import functools

from placement.diagnostics import diagnose
from placement.model import Problem
from placement.solvers.budget import Budget
from placement.solvers.common import HostLoads, Unit, explain_unplaced
from placement.solvers.cpsat.explain import blocking_families, reason_text
from placement.solvers.cpsat.model import Solution
from placement.solvers.cpsat.view import ProblemView


def structural_reasons(problem: Problem) -> dict[str, str]:
    """Guest name -> the structural diagnostic that keeps it out whatever the plan."""
    structural: dict[str, str] = {}
    for diagnostic in diagnose(problem):
        if diagnostic.rule == "anti_affinity_class":
            continue  # only some of the class stay out: not a reason for each member
        for name in diagnostic.guests:
            structural.setdefault(name, diagnostic.message)
    return structural


class ReasonContext:
    """What every unplaced guest's reason looks at, built once per plan (on first use):
    the hosts' loads with the placed units, and which units are placed."""

    def __init__(self, view: ProblemView, solution: Solution) -> None:
        self._view = view
        self._solution = solution

    @functools.cached_property
    def loads(self) -> HostLoads:
        problem = self._view.problem
        loads = HostLoads(problem)
        for unit in self._view.units:
            h = self._solution.unit_host[unit.index]
            if h is not None:
                loads.add(Unit.of(unit.guests), problem.hosts[h].name)
        return loads

    @functools.cached_property
    def placed_units(self) -> set[int]:
        return {u.index for u in self._view.units if self._solution.unit_host[u.index] is not None}


def unplaced_reason(
    view: ProblemView,
    context: ReasonContext,
    name: str,
    structural: dict[str, str],
    host_of: dict[str, str | None],
    explain: Budget | None,
) -> str:
    """The rule that keeps `name` out: a structural diagnostic, an unplaced dependency,
    the binding placement rule given the others, or (probed by CP-SAT within `explain`)
    the rule families that leave no room for it next to the guests placed."""
    if name in structural:
        return structural[name]
    problem = view.problem
    guest = problem.guest(name)
    for dependency in guest.boot.after:
        if host_of.get(dependency) is None and dependency != name:
            return f"starts after {dependency}, which is not placed"
    loads = context.loads
    unit = view.units[view.unit_of[name]]
    members = unit.guests
    if not loads.candidates(Unit.of(members))[list(unit.candidates)].any():
        return explain_unplaced(problem, loads, members)
    if explain is None or explain.expired:
        families = None  # no time left for probes
    else:
        families = blocking_families(view, context.placed_units, unit.index, explain)
    if families is not None:
        return reason_text(families)
    return (
        "a host has room, but the higher objective stages were better served without it "
        "(the boot schedule within the horizon, or guests of higher priority)"
    )
