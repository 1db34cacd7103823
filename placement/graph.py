"""Graphs over the problem (networkx): start dependencies, together groups, conflicts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import networkx as nx

if TYPE_CHECKING:
    from placement.model import Guest


def dependency_graph(guests: Iterable[Guest]) -> nx.DiGraph:
    """Edge `dependency -> guest` for each `after` entry naming a known guest."""
    guests = list(guests)
    names = {guest.name for guest in guests}
    graph = nx.DiGraph()
    graph.add_nodes_from(guest.name for guest in guests)
    for guest in guests:
        for dependency in guest.boot.after:
            if dependency in names and dependency != guest.name:
                graph.add_edge(dependency, guest.name)
    return graph


def dependency_cycles(guests: Sequence[Guest]) -> list[list[str]]:
    """One cycle per strongly connected component that has one, as guest names.

    Each cycle starts at its member that comes first in the problem and follows the
    `after` relation: `[a, b]` means `a` waits for `b` and `b` waits for `a`.
    """
    order: dict[str, int] = {}
    for index, guest in enumerate(guests):
        order.setdefault(guest.name, index)
    graph = dependency_graph(guests).reverse(copy=False)  # edge guest -> what it waits for
    cycles = []
    for component in nx.strongly_connected_components(graph):
        if len(component) < 2:
            continue
        start = min(component, key=order.__getitem__)
        cycle_edges = nx.find_cycle(graph.subgraph(component), source=start)
        cycles.append([edge[0] for edge in cycle_edges])
    cycles.sort(key=lambda cycle: order[cycle[0]])
    return cycles


def topological_order(guests: Sequence[Guest]) -> list[str]:
    """Guest names with every dependency before its dependants; ties in problem order."""
    order = {guest.name: index for index, guest in enumerate(guests)}
    return list(
        nx.lexicographical_topological_sort(dependency_graph(guests), key=order.__getitem__)
    )
