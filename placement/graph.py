"""Graphs over the problem (networkx): start dependencies, together groups, conflicts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import networkx as nx

if TYPE_CHECKING:
    from placement.model import Guest


def _graph(edges_from: Iterable[tuple[str, Sequence[str]]]) -> nx.DiGraph:
    """Edge `dependency -> guest` for each (guest, after) pair naming a known guest."""
    pairs = list(edges_from)
    names = {name for name, _ in pairs}
    graph = nx.DiGraph()
    graph.add_nodes_from(name for name, _ in pairs)
    for name, after in pairs:
        for dependency in after:
            if dependency in names and dependency != name:
                graph.add_edge(dependency, name)
    return graph


def dependency_graph(guests: Iterable[Guest]) -> nx.DiGraph:
    """Edge `dependency -> guest` for each `after` entry naming a known guest."""
    return _graph((guest.name, guest.boot.after) for guest in guests)


def cycles(pairs: Sequence[tuple[str, Sequence[str]]]) -> list[list[str]]:
    """One cycle per strongly connected component that has one, as guest names.

    `pairs` are (guest, the guests it starts after). Each cycle starts at its member that
    comes first and follows the `after` relation: `[a, b]` means `a` waits for `b` and `b`
    waits for `a`.
    """
    order: dict[str, int] = {}
    for index, (name, _) in enumerate(pairs):
        order.setdefault(name, index)
    graph = _graph(pairs).reverse(copy=False)  # edge guest -> what it waits for
    found = []
    for component in nx.strongly_connected_components(graph):
        if len(component) < 2:
            continue
        start = min(component, key=order.__getitem__)
        cycle_edges = nx.find_cycle(graph.subgraph(component), source=start)
        found.append([edge[0] for edge in cycle_edges])
    found.sort(key=lambda cycle: order[cycle[0]])
    return found


def dependency_cycles(guests: Sequence[Guest]) -> list[list[str]]:
    """The dependency cycles among `guests` (see `cycles`)."""
    return cycles([(guest.name, guest.boot.after) for guest in guests])


def topological_order(guests: Sequence[Guest]) -> list[str]:
    """Guest names with every dependency before its dependants; ties in problem order."""
    order = {guest.name: index for index, guest in enumerate(guests)}
    return list(
        nx.lexicographical_topological_sort(dependency_graph(guests), key=order.__getitem__)
    )
