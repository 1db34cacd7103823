"""Placement rules of the CP-SAT model, one function per rule family.

Host state, allowed / avoided hosts, labels, frozen copies' hosts and together groups
are already in the variables: only allowed pairs exist and a together group is one unit.
"""

from __future__ import annotations

from collections import defaultdict

from ortools.sat.python import cp_model

from placement.solvers.cpsat.variables import Variables, load_terms
from placement.solvers.cpsat.view import ProblemView


def add_capacity(view: ProblemView, variables: Variables) -> None:
    """Per host and resource, the units placed there plus the frozen copies fit in the
    usable amount (capacity after reservation, times overcommit).

    This is the final state. On a host that only gains guests (or loses them only by
    stops, at instant 0) the final state is the peak; hosts a migration may leave get
    the time-resolved rule too (`migration_rules.add_capacity_over_time`).
    """
    terms = load_terms(view, variables)
    hosts = view.problem.hosts
    for (h, resource), pairs in terms.items():
        room = hosts[h].usable(resource) - view.fixed.get((h, resource), 0)
        if sum(amount for amount, _ in pairs) <= room:
            continue  # everything fits at once: no constraint needed
        variables.model.add(sum(amount * var for amount, var in pairs) <= room)


def add_anti_affinity(view: ProblemView, variables: Variables) -> None:
    """Guests sharing an anti-affinity class never share a host: at most one unit of each
    class per host (a unit holding two members of one class has no candidates)."""
    by_class_host: dict[tuple[str, int], list[cp_model.IntVar]] = defaultdict(list)
    for unit in view.units:
        for cls in unit.classes:
            for h in unit.candidates:
                by_class_host[cls, h].append(variables.x[unit.index, h])
    for members in by_class_host.values():
        if len(members) > 1:
            variables.model.add_at_most_one(members)


def add_dependencies_placed(view: ProblemView, variables: Variables) -> None:
    """A booting guest may be placed only if every guest it starts after is placed."""
    for boot in view.boots:
        for dependency in boot.guest.boot.after:
            u = view.unit_of[dependency]
            if u != boot.unit:
                variables.model.add_implication(variables.placed[boot.unit], variables.placed[u])
