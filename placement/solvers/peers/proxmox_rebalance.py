"""Proxmox VE HA's CRS load balancer (`ha-auto-rebalance`), re-created from its documentation.

Sources: the "CRS Load Balancer" section of the Proxmox VE admin guide (pve-ha-manager >=
5.2), the pve-devel series "dynamic scheduler + load rebalancer" (Daniel Kral, 2026) and
"clamp load imbalance to unit interval" (Dominik Rusovac, 2026). No code is copied.

What it does, per HA manager round (about every 10 s), with the static-load scheduler:

1. Measure the cluster imbalance (`placement.imbalance`: a node's load is the mean of its
   CPU and memory ratios; the imbalance is the coefficient of variation of the node loads
   divided by sqrt(N - 1)).
2. While it stays above the threshold (default 0.3, held for a few rounds), find the
   single migration of a running HA guest — or of a together group as one — that lowers
   the imbalance most (the `bruteforce` method: every guest to every node).
3. Issue it only when it improves the imbalance by at least the margin (default 10 %,
   relative to the current imbalance); otherwise stop.

Here the rounds run back to back on the state the moves produce. Choices where the
documentation says nothing: only guests that run now move (a guest the plan starts is
placed by the `static` scheduler first, as Proxmox would, and is not moved again); a move
respects capacity (usable amounts after reservation and overcommit), node rules and
anti-affinity, as the HA rules do; ties go to the guest in natural name order, then the
node name; `migration.max_moves` (if set) caps the number of guests that end away from
where they run. The migrations are then timed by the shared baseline machinery.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from placement.imbalance import load_resources
from placement.model import Problem
from placement.plan import Plan
from placement.solvers import SolveOptions, register
from placement.solvers.common import HostLoads, Placement, Unit, finish_plan, units_of
from placement.solvers.greedy import best_fit_placement
from placement.solvers.peers._shared import natural_key
from placement.solvers.peers.proxmox import proxmox_static_placement

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

#: Proxmox's defaults: rebalance while the imbalance is above 0.3, and only by moves that
#: lower it by at least 10 % of its current value.
DEFAULT_THRESHOLD = 0.3
DEFAULT_MARGIN = 0.1
# The descent stops once no move lowers the imbalance by at least this share: a relative
# improvement this small is rounding, and it keeps the descent finite.
DESCENT_MARGIN = 1e-6


class _Loads:
    """Node loads of the online hosts, as float arrays over `load_resources`."""

    def __init__(self, problem: Problem, loads: HostLoads) -> None:
        self.online = np.flatnonzero(loads.online)
        resources = load_resources(problem)
        self.columns = [loads.resources.index(r) for r in resources if r in loads.resources]
        capacity = np.array(
            [[float(problem.hosts[h].capacity.get(r, 0)) for r in resources] for h in self.online]
        ).reshape(len(self.online), len(resources))
        self.has = capacity > 0
        self.capacity = np.where(self.has, capacity, 1.0)
        self.count = np.maximum(self.has.sum(axis=1), 1)
        self.position = {int(h): i for i, h in enumerate(self.online)}

    def of(self, used: npt.NDArray[np.int64]) -> FloatArray:
        """Load per online host from the (hosts x resources) usage."""
        amounts = used[self.online][:, self.columns].astype(float)
        ratios = np.where(self.has, amounts / self.capacity, 0.0)
        result: FloatArray = ratios.sum(axis=1) / self.count
        return result

    def added(self, positions: npt.NDArray[np.int64], vector: npt.NDArray[np.int64]) -> FloatArray:
        """How much a demand vector adds to the load of each online host position."""
        amounts = vector[self.columns].astype(float)
        ratios = np.where(self.has[positions], amounts / self.capacity[positions], 0.0)
        result: FloatArray = ratios.sum(axis=1) / self.count[positions]
        return result


def _imbalance(total: FloatArray, squares: FloatArray, count: int) -> FloatArray:
    """Imbalance from the sum and sum of squares of the loads (vectorised over moves)."""
    if count < 2:
        return np.zeros_like(total)
    mean = total / count
    variance = np.maximum(squares / count - mean * mean, 0.0)
    safe = np.where(mean > 0, mean, 1.0)
    result: FloatArray = np.where(mean > 0, np.sqrt(variance) / safe / np.sqrt(count - 1), 0.0)
    return result


def proxmox_rebalance_placement(
    problem: Problem,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    margin: float = DEFAULT_MARGIN,
    max_moves: int | None = None,
    deadline: float | None = None,
    start: Placement | None = None,
) -> Placement:
    """Proxmox's static placement of what needs a host, then its rebalancing moves.

    `max_moves` defaults to the problem's `migration.max_moves`; no move is taken after
    `deadline` (a `time.perf_counter()` instant; None: no limit). `start` places what
    needs a host before the moves (default: Proxmox's static scorer). Returns the final host
    of every guest; `Placement.reasons` explains the guests Proxmox could not place.
    """
    start = start if start is not None else proxmox_static_placement(problem)
    hosts: dict[str, str | None] = dict(start.hosts)
    budget = problem.migration.max_moves if max_moves is None else max_moves

    loads = HostLoads(problem)
    for unit in units_of(problem, (g.name for g in problem.guests)):
        placed = {hosts.get(name) for name in unit.names}
        if len(placed) == 1 and (host := next(iter(placed))) is not None:
            loads.add(unit, host)
    # Units that can move: every member runs now, may be live-migrated, all on one host.
    movable: list[Unit] = []
    for unit in units_of(problem, (g.name for g in problem.guests if problem.can_migrate(g))):
        whole = unit.guests[0].together is None or len(unit.guests) == len(
            problem.together_groups()[unit.guests[0].together]
        )
        placed = {hosts.get(n) for n in unit.names}
        if whole and len(placed) == 1 and None not in placed:
            movable.append(unit)
    movable.sort(key=lambda unit: natural_key(unit.guests[0].name))

    node = _Loads(problem, loads)
    count = len(node.online)

    def moved(assignment: Mapping[str, str | None]) -> int:
        return sum(
            1
            for guest in problem.guests
            if problem.runs_now(guest)
            and assignment.get(guest.name) is not None
            and assignment.get(guest.name) != guest.current_host
        )

    while deadline is None or time.perf_counter() < deadline:
        current = node.of(loads.used)
        now = float(_imbalance(np.array(current.sum()), np.array((current**2).sum()), count))
        if now <= threshold:
            break
        best: tuple[float, int, Unit, int] | None = None  # (imbalance, order, unit, host)
        used_moves = moved(hosts)
        for order, unit in enumerate(movable):
            source_name = hosts[unit.names[0]]
            assert source_name is not None  # movable units are placed
            at_origin = all(hosts[g.name] == g.current_host for g in unit.guests)
            if budget is not None and at_origin and used_moves + len(unit.guests) > budget:
                continue  # its move would exceed the migration budget
            source = problem.host_position(source_name)
            vector = loads.demand_vector(unit.demand)
            loads.remove(unit, source_name)
            targets = np.flatnonzero(loads.candidates(unit))
            loads.add(unit, source_name)
            # Candidates are online hosts (host_allows), so each has a load position.
            targets = targets[targets != source]
            if targets.size == 0:
                continue
            s = node.position[source]
            positions = np.array([node.position[int(t)] for t in targets], dtype=np.int64)
            added = node.added(positions, vector)
            source_after = current[s] - node.added(np.array([s]), vector)[0]
            total = current.sum() - current[s] + source_after + added  # target gains `added`
            squares = (
                (current**2).sum()
                - current[s] ** 2
                + source_after**2
                - current[positions] ** 2
                + (current[positions] + added) ** 2
            )
            scores = _imbalance(total, squares, count)
            # Ties: the lowest imbalance, then the node name.
            pick = min(
                range(len(targets)),
                key=lambda i: (round(float(scores[i]), 12), problem.hosts[int(targets[i])].name),
            )
            candidate = (round(float(scores[pick]), 12), order, unit, int(targets[pick]))
            if best is None or candidate[:2] < best[:2]:
                best = candidate
        if best is None:
            break
        value, _, unit, target = best
        if now - value < margin * now:
            break
        target_name = problem.hosts[target].name
        source_name = hosts[unit.names[0]]
        assert source_name is not None
        loads.remove(unit, source_name)
        loads.add(unit, target_name)
        hosts.update((name, target_name) for name in unit.names)
        logger.debug(
            "proxmox-rebalance: %s -> %s, imbalance %.4f -> %.4f",
            unit.label,
            target_name,
            now,
            value,
        )
    return Placement(hosts=hosts, reasons=start.reasons)


@register(
    "proxmox-rebalance",
    kind="peer",
    summary="Proxmox HA CRS load balancer: best single move while the imbalance > 0.3, "
    "only if it improves >= 10 %",
)
def solve_proxmox_rebalance(problem: Problem, options: SolveOptions) -> Plan:
    """Rebalance as Proxmox's CRS load balancer would, then apply the boot-schedule baseline."""
    started_at = time.perf_counter()
    placement = proxmox_rebalance_placement(problem)
    return finish_plan(problem, placement, options, "proxmox-rebalance", started_at)


@register(
    "descent-rebalance",
    kind="baseline",
    summary="steepest descent on Proxmox's imbalance: the best single move while it "
    "lowers the imbalance at all, within migration.max_moves",
)
def solve_descent_rebalance(problem: Problem, options: SolveOptions) -> Plan:
    """Proxmox's balancer without its thresholds: keep taking the move that lowers the
    imbalance most while any move lowers it, up to the move budget and the time limit.
    Guests that must start are placed by best fit first (capacity checked). A plain local
    search, and a starting point for the optimiser's rebalance."""
    started_at = time.perf_counter()
    placement = proxmox_rebalance_placement(
        problem,
        threshold=0.0,
        margin=DESCENT_MARGIN,
        deadline=started_at + options.time_limit_s,
        start=best_fit_placement(problem),
    )
    return finish_plan(problem, placement, options, "descent-rebalance", started_at)
