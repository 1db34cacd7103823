"""Placement rules of the CP-SAT model, one function per rule family.

Host state, allowed / avoided hosts, labels, frozen copies' hosts and together groups
are already in the variables: only allowed pairs exist and a together group is one unit.
"""

from __future__ import annotations

import itertools
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
    for (h, resource), pairs in terms.items():
        room = view.index.room(h, resource)
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


def add_follows(view: ProblemView, variables: Variables) -> None:
    """A guest that follows another runs on that guest's host or nowhere: per candidate
    host of its unit, being there implies the leader's unit is there too."""
    model = variables.model
    for unit in view.units:
        for guest in unit.guests:
            if guest.follows is None:
                continue
            leader = view.unit_of[guest.follows]
            if leader == unit.index:
                continue
            for h in unit.candidates:
                there = variables.x.get((leader, h))
                if there is None:
                    model.add(variables.x[unit.index, h] == 0)
                else:
                    model.add_implication(variables.x[unit.index, h], there)


def add_dependencies_placed(view: ProblemView, variables: Variables) -> None:
    """A booting guest may be placed only if every guest it starts after is placed."""
    for boot in view.boots:
        for dependency in boot.guest.boot.after:
            u = view.unit_of[dependency]
            if u != boot.unit:
                variables.model.add_implication(variables.placed[boot.unit], variables.placed[u])


def add_host_symmetry(view: ProblemView, variables: Variables) -> None:
    """One labelling per plan of interchangeable hosts (`HostClass`): the hosts of a
    class are used in order, and its p-th unit, largest first, uses one of its first
    p + 1 hosts. Every plan has such a labelling (number the hosts in the order the units
    first use them: `canonical_hosts`), so no value is lost; without it CP-SAT explores
    every permutation of identical empty hosts, which on bin packing costs it the last
    host or two."""
    model = variables.model
    for host_class in view.host_classes:
        for p, u in enumerate(host_class.units):
            for h in host_class.hosts[p + 1 :]:
                model.add(variables.x[u, h] == 0)
        used = []
        for h in host_class.hosts:
            on_host = [variables.x[u, h] for u in host_class.units]
            used.append(model.new_bool_var(""))
            model.add_max_equality(used[-1], on_host)
        for earlier, later in itertools.pairwise(used):
            model.add_implication(later, earlier)
