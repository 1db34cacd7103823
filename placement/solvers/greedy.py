"""Greedy placement baselines: first fit, best fit, worst fit, round robin by free memory.

Every packer keeps running guests where they run (see `common.initial_loads`) and takes
the rest unit by unit (a together group is one unit), in decreasing priority then
decreasing size (each resource divided by its total usable amount on online hosts). A
unit goes only to a host that every placement rule admits: online, allowed, not
avoided, carrying the labels, not the frozen copy's host, no guest of its anti-affinity
classes, room for its demand after overcommit. A unit that fits nowhere is unplaced with
the rule that keeps it out. The boot schedule is then `SolveOptions.schedule`.

- `first-fit`: the first admitting host in problem order.
- `best-fit`: the admitting host left with the least free room (each resource divided by
  the largest usable amount of that resource on any host, summed): packs tightly.
- `worst-fit`: the admitting host whose most-used resource is least used once the unit is
  on it: spreads load, the way a balancing operator places by hand.
- `round-robin`: hosts sorted by free RAM, largest first, form a ring; each unit takes the
  next host in the ring that admits it, and the ring moves past that host. This is the
  cold-recovery script: a host that cannot take a guest goes to the back of the queue,
  and so does the one that took it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import numpy as np

from placement.model import Problem
from placement.plan import Plan
from placement.solvers import SolveOptions, register
from placement.solvers.common import (
    BoolArray,
    HostLoads,
    Placement,
    Unit,
    explain_unplaced,
    finish_plan,
    initial_loads,
    leaders_first,
    packing_order,
    units_of,
)

logger = logging.getLogger(__name__)

# Picks a host index among the admitting hosts (`mask` has at least one True).
Chooser = Callable[[HostLoads, Unit, BoolArray], int]


# Puts the units to place in the order a packer takes them.
Order = Callable[[Problem, Sequence[Unit]], list[Unit]]


def pack(
    problem: Problem, make_chooser: Callable[[HostLoads], Chooser], order: Order = packing_order
) -> Placement:
    """Keep running guests where they stay, then take the units to place in `order`
    (default: decreasing priority, then size), each on the host its chooser picks among
    those every placement rule admits; a unit no host admits is unplaced with its reason."""
    loads, split = initial_loads(problem)
    choose = make_chooser(loads)
    hosts: dict[str, str | None] = dict(split.stay)
    reasons: dict[str, str] = {}
    # A guest that follows another can only go where that one went: leaders first.
    for unit in leaders_first(problem, order(problem, units_of(problem, split.place))):
        mask = loads.candidates(unit)
        if not mask.any():
            reason = explain_unplaced(problem, loads, unit.guests)
            for name in unit.names:
                hosts[name] = None
                reasons[name] = reason
            continue
        host = problem.hosts[choose(loads, unit, mask)].name
        loads.add(unit, host)
        for name in unit.names:
            hosts[name] = host
    return Placement(hosts=hosts, reasons=reasons)


def first_chooser(_loads: HostLoads) -> Chooser:
    """The first admitting host in problem order."""

    def choose(_loads: HostLoads, _unit: Unit, mask: BoolArray) -> int:
        return int(np.argmax(mask))

    return choose


def best_chooser(loads: HostLoads) -> Chooser:
    """The admitting host left with the least room (each resource over its largest
    usable amount, summed)."""
    scale = np.maximum(loads.usable.max(axis=0, initial=0), 1).astype(float)

    def choose(loads: HostLoads, unit: Unit, mask: BoolArray) -> int:
        left = (loads.usable - loads.used - loads.demand_vector(unit.demand)) / scale
        score = np.where(mask, left.sum(axis=1), np.inf)
        return int(np.argmin(score))

    return choose


def _worst(loads: HostLoads) -> Chooser:
    usable = loads.usable.astype(float)
    counted = loads.usable > 0

    def choose(loads: HostLoads, unit: Unit, mask: BoolArray) -> int:
        after = loads.used + loads.demand_vector(unit.demand)
        ratio = np.where(counted, after / np.where(counted, usable, 1.0), 0.0)
        score = np.where(mask, ratio.max(axis=1, initial=0.0), np.inf)
        return int(np.argmin(score))

    return choose


def _memory_resource(loads: HostLoads) -> str | None:
    if "ram_mib" in loads.resources:
        return "ram_mib"
    return next((r for r in loads.resources if "ram" in r or "mem" in r), None)


def _round_robin(loads: HostLoads) -> Chooser:
    memory = _memory_resource(loads)
    if memory is None:
        free = np.zeros(len(loads.problem.hosts))
    else:
        r = loads.resources.index(memory)
        free = (loads.usable[:, r] - loads.used[:, r]).astype(float)
    # A stable sort keeps problem order among hosts with equal free memory.
    ring = np.argsort(-free, kind="stable")
    position = 0

    def choose(_loads: HostLoads, _unit: Unit, mask: BoolArray) -> int:
        nonlocal position
        admitting = np.flatnonzero(mask[ring])
        after = int(np.searchsorted(admitting, position))
        chosen = int(admitting[after]) if after < len(admitting) else int(admitting[0])
        position = (chosen + 1) % len(ring)
        return int(ring[chosen])

    return choose


def first_fit_placement(problem: Problem) -> Placement:
    """First fit: each unit on the first admitting host in problem order."""
    return pack(problem, first_chooser)


def best_fit_placement(problem: Problem) -> Placement:
    """Best fit: each unit on the admitting host left with the least normalised room."""
    return pack(problem, best_chooser)


def worst_fit_placement(problem: Problem) -> Placement:
    """Worst fit (spread): each unit where its host's highest utilisation stays lowest."""
    return pack(problem, _worst)


def round_robin_placement(problem: Problem) -> Placement:
    """Round robin over hosts sorted by free RAM, skipping hosts that cannot take a unit."""
    return pack(problem, _round_robin)


def _solve(
    problem: Problem, options: SolveOptions, name: str, place: Callable[[Problem], Placement]
) -> Plan:
    started_at = time.perf_counter()
    placement = place(problem)
    logger.debug("%s placed in %.3f s", name, time.perf_counter() - started_at)
    return finish_plan(problem, placement, options, name, started_at)


@register(
    "first-fit",
    kind="baseline",
    summary="each guest on the first host that takes it, by priority then size",
)
def solve_first_fit(problem: Problem, options: SolveOptions) -> Plan:
    return _solve(problem, options, "first-fit", first_fit_placement)


@register(
    "best-fit",
    kind="baseline",
    summary="each guest on the host it leaves fullest: packs tightly",
)
def solve_best_fit(problem: Problem, options: SolveOptions) -> Plan:
    return _solve(problem, options, "best-fit", best_fit_placement)


@register(
    "worst-fit",
    kind="baseline",
    summary="each guest on the host it leaves least utilised: spreads load",
)
def solve_worst_fit(problem: Problem, options: SolveOptions) -> Plan:
    return _solve(problem, options, "worst-fit", worst_fit_placement)


@register(
    "round-robin",
    kind="baseline",
    summary="hosts by free RAM in turn, as a cold-recovery script does",
)
def solve_round_robin(problem: Problem, options: SolveOptions) -> Plan:
    return _solve(problem, options, "round-robin", round_robin_placement)
