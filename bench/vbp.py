"""VPSolver `.vbp` vector bin packing instances as placement problems.

The mapping: dimension k is resource `r{k}`, every bin is an identical host with the
bin's capacities, every copy of an item type is a guest demanding the item's sizes.
Objective `["placed", "consolidate"]`: place everything, then use as few hosts as
possible, so the `consolidate` value is the number of bins.

Format (Brandão & Pedroso, VPSolver), whitespace-separated integers: `d`, then the `d`
bin capacities, then `m`, then per item type its `d` sizes and its demand (copies).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

import attrs

from placement.model import Guest, Host, Problem


class FormatError(ValueError):
    """The text is not a well-formed `.vbp` file."""


@attrs.frozen
class VbpInstance:
    """Bin capacities per dimension and item types `(sizes, copies)`, as in the file."""

    name: str
    capacities: tuple[int, ...]
    items: tuple[tuple[tuple[int, ...], int], ...]

    @property
    def dimensions(self) -> int:
        return len(self.capacities)

    @property
    def num_items(self) -> int:
        """Items counting every copy."""
        return sum(copies for _, copies in self.items)

    def expanded(self) -> list[tuple[int, ...]]:
        """The size vector of every item copy, in file order."""
        return [sizes for sizes, copies in self.items for _ in range(copies)]

    @property
    def resource_names(self) -> tuple[str, ...]:
        return tuple(f"r{k}" for k in range(self.dimensions))


def parse_vbp(text: str, name: str) -> VbpInstance:
    """Parse the text of a `.vbp` file; raise `FormatError` if malformed."""
    try:
        tokens = [int(token) for token in text.split()]
    except ValueError as error:
        raise FormatError(f"{name}: expected integers only ({error})") from None
    if not tokens:
        raise FormatError(f"{name}: empty file")
    dimensions = tokens[0]
    if dimensions < 1 or len(tokens) < 2 + dimensions:
        raise FormatError(f"{name}: bad dimension count {dimensions}")
    capacities = tuple(tokens[1 : 1 + dimensions])
    num_types = tokens[1 + dimensions]
    body = tokens[2 + dimensions :]
    if len(body) != num_types * (dimensions + 1):
        raise FormatError(
            f"{name}: {len(body)} numbers for {num_types} item types of {dimensions + 1}"
        )
    items = []
    for index in range(num_types):
        row = body[index * (dimensions + 1) : (index + 1) * (dimensions + 1)]
        sizes, copies = tuple(row[:dimensions]), row[dimensions]
        if copies < 0 or any(size < 0 for size in sizes):
            raise FormatError(f"{name}: item type {index} has a negative number")
        if any(size > cap for size, cap in zip(sizes, capacities, strict=True)):
            raise FormatError(f"{name}: item type {index} does not fit in an empty bin")
        items.append((sizes, copies))
    if any(cap < 0 for cap in capacities):
        raise FormatError(f"{name}: negative capacity")
    return VbpInstance(name=name, capacities=capacities, items=tuple(items))


def read_vbp(path: str | Path) -> VbpInstance:
    """Read a `.vbp` file; the instance is named after the file without its suffix."""
    path = Path(path)
    return parse_vbp(path.read_text(encoding="ascii"), path.stem)


def first_fit_decreasing(instance: VbpInstance) -> int:
    """Bins used by first-fit over the items sorted by decreasing normalised size sum.

    A quick, always-valid upper bound on the optimum, used to size the host list.
    """
    scale = [max(cap, 1) for cap in instance.capacities]
    order = sorted(
        instance.expanded(),
        key=lambda sizes: -sum(s / c for s, c in zip(sizes, scale, strict=True)),
    )
    bins: list[list[int]] = []
    for sizes in order:
        for free in bins:
            if all(s <= f for s, f in zip(sizes, free, strict=True)):
                for k, s in enumerate(sizes):
                    free[k] -= s
                break
        else:
            bins.append([cap - s for cap, s in zip(instance.capacities, sizes, strict=True)])
    return len(bins)


def item_guest(index: int, width: int) -> str:
    """The guest name of the `index`-th item copy (0-based, file order)."""
    return f"item{index:0{width}d}"


def bin_host(index: int, width: int) -> str:
    return f"bin{index:0{width}d}"


def num_hosts(instance: VbpInstance, upper_bound: int | None = None) -> int:
    """How many hosts the problem offers: the published upper bound when given, but never
    fewer than first-fit decreasing needs, so a plan placing every item exists and the
    greedy seeds find one."""
    needed = first_fit_decreasing(instance)
    return needed if upper_bound is None else max(upper_bound, needed)


def to_problem(instance: VbpInstance, hosts: int | None = None) -> Problem:
    """The placement problem whose best `consolidate` value is the optimal bin count.

    `hosts`: how many identical hosts (bins) to offer; default `num_hosts(instance)`.
    """
    count = num_hosts(instance) if hosts is None else hosts
    names = instance.resource_names
    capacity = dict(zip(names, instance.capacities, strict=True))
    host_width = len(str(max(count - 1, 0)))
    items = instance.expanded()
    item_width = len(str(max(len(items) - 1, 0)))
    return Problem(
        hosts=[Host(name=bin_host(k, host_width), capacity=capacity) for k in range(count)],
        guests=[
            Guest(name=item_guest(index, item_width), demand=dict(zip(names, sizes, strict=True)))
            for index, sizes in enumerate(items)
        ],
        objective=["placed", "consolidate"],
    )


@attrs.frozen
class VbpReference:
    """Published values for an instance, in bins.

    `lower`: the best lower bound; `optimum`: the proven optimum or None; `heuristic`:
    the fewest bins any heuristic of Mommessin et al. found (`best_overall`).
    """

    lower: int
    optimum: int | None
    heuristic: int

    @property
    def best_lower(self) -> int:
        """The best lower bound: the optimum when proven (the `LB` column is often lower)."""
        return self.optimum if self.optimum is not None else self.lower

    @property
    def best_known(self) -> int:
        """The optimum when proven, otherwise the best published heuristic value."""
        return self.optimum if self.optimum is not None else self.heuristic


def load_reference(path: str | Path) -> Mapping[str, VbpReference]:
    """Instance name -> published values, from a `*_summary_known.tsv` table (columns
    `instance_name`, `LB`, `OPT` with -1 for unknown, `best_overall`)."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        table = {}
        for row in csv.DictReader(handle, delimiter="\t"):
            optimum = int(row["OPT"])
            table[row["instance_name"]] = VbpReference(
                lower=int(row["LB"]),
                optimum=optimum if optimum >= 0 else None,
                heuristic=int(row["best_overall"]),
            )
        return table
