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
documentation says nothing: only HA resources that run now move (a guest the plan
starts is placed by the `static` scheduler first, as Proxmox would, and is not moved
again; `proxmox.unmanaged` guests neither move nor count in the imbalance, though
they take room on their host); a move
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
from placement.solvers.budget import Budget
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
# The work charged per move step in deterministic mode, per (movable unit, host) pair a
# step scores (vectorised: about 50 ms a step on 10,000 units x 1,000 hosts, estimated).
_STEP_S_PER_PAIR = 5e-9


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
    budget: Budget | None = None,
    start: Placement | None = None,
) -> Placement:
    """Proxmox's static placement of what needs a host, then its rebalancing moves.

    `max_moves` defaults to the problem's `migration.max_moves`; no move is taken once
    `budget` (None: no limit) is spent or stopped; in deterministic mode each move step
    counts as work (its size), so the same moves are taken on any machine. `start` places what
    needs a host before the moves (default: Proxmox's static scorer). Returns the final host
    of every guest; `Placement.reasons` explains the guests Proxmox could not place.
    """
    start = start if start is not None else proxmox_static_placement(problem)
    hosts: dict[str, str | None] = dict(start.hosts)
    move_budget = problem.migration.max_moves if max_moves is None else max_moves

    loads, counted = _loads(problem, hosts)
    movable = _movable_units(problem, hosts)
    if not movable:
        return Placement(hosts=hosts, reasons=start.reasons)

    moves = _Moves(problem, loads, movable, hosts, counted)
    moved = sum(
        1
        for guest in problem.guests
        if problem.runs_now(guest)
        and hosts.get(guest.name) is not None
        and hosts.get(guest.name) != guest.current_host
    )
    # A step scores every movable unit on every host.
    step_s = _STEP_S_PER_PAIR * len(movable) * len(problem.hosts)
    while budget is None or not budget.expired:
        if budget is not None:
            budget.charge(step_s)
        now = moves.imbalance()
        if now <= threshold:
            break
        best = moves.best(None if move_budget is None else move_budget - moved)
        if best is None:
            break
        value, u, target = best
        if now - value < margin * now:
            break
        unit = movable[u]
        source_name = hosts[unit.names[0]]
        assert source_name is not None  # movable units are placed
        target_name = problem.hosts[target].name
        moved += moves.move(u, target)
        hosts.update((name, target_name) for name in unit.names)
        logger.debug(
            "proxmox-rebalance: %s -> %s, imbalance %.4f -> %.4f",
            unit.label,
            target_name,
            now,
            value,
        )
    return Placement(hosts=hosts, reasons=start.reasons)


def _loads(problem: Problem, hosts: dict[str, str | None]) -> tuple[HostLoads, HostLoads]:
    """The hosts' loads with every placed unit, and the loads the balancer measures (HA
    resources only; the same object when every guest is one)."""
    unmanaged = problem.proxmox.unmanaged
    loads = HostLoads(problem)
    counted = HostLoads(problem, loads.index) if unmanaged else loads
    for unit in units_of(problem, (g.name for g in problem.guests)):
        placed = {hosts.get(name) for name in unit.names}
        if len(placed) == 1 and (host := next(iter(placed))) is not None:
            loads.add(unit, host)
            if unmanaged and not set(unit.names) & unmanaged:
                counted.add(unit, host)
    return loads, counted


def _movable_units(problem: Problem, hosts: dict[str, str | None]) -> list[Unit]:
    """Units the balancer may move, in service-id order: HA resources only, every member
    running now and live-migratable, all on one host, the whole together group."""
    migratable = (
        g.name
        for g in problem.guests
        if problem.can_migrate(g) and g.name not in problem.proxmox.unmanaged
    )
    movable: list[Unit] = []
    for unit in units_of(problem, migratable):
        whole = unit.guests[0].together is None or len(unit.guests) == len(
            problem.together_groups()[unit.guests[0].together]
        )
        placed = {hosts.get(n) for n in unit.names}
        if whole and len(placed) == 1 and None not in placed and not unit.clashing_classes:
            movable.append(unit)
    movable.sort(key=lambda unit: natural_key(unit.guests[0].name))
    return movable


class _Moves:
    """Every single move of every movable unit, scored at once (units x online hosts).

    Holds what the search changes (usage, anti-affinity counts, each unit's host) as
    arrays; `best` scores all moves with the same sum-of-squares update Proxmox's
    bruteforce method amounts to, and `move` applies one.
    """

    def __init__(
        self,
        problem: Problem,
        loads: HostLoads,
        movable: list[Unit],
        hosts: Mapping[str, str | None],
        counted: HostLoads,
    ) -> None:
        self.node = _Loads(problem, loads)
        self.used = loads.used.copy()
        # What the balancer measures: the usage of HA resources only (Proxmox's static
        # usage knows nothing else); capacity checks see every guest (`used`).
        self.counted = counted.used.copy()
        self.usable = loads.usable
        online = self.node.online
        self.count = len(online)
        self.demand = np.array([loads.demand_vector(u.demand) for u in movable], dtype=np.int64)
        # Load a unit adds to each online host: demand over capacity, averaged (units x hosts).
        share = np.where(self.node.has, 1.0 / self.node.capacity, 0.0) / self.node.count[:, None]
        self.added: FloatArray = self.demand[:, self.node.columns].astype(float) @ share.T
        self.allowed = np.array([loads.unit_allowed_mask(u)[online] for u in movable], dtype=bool)
        self.asks = self.demand > 0
        classes = sorted({c for unit in movable for c in unit.classes})
        index = {c: i for i, c in enumerate(classes)}
        # Members of each anti-affinity class per unit (a unit clashes if any is held).
        self.member = np.zeros((len(movable), len(classes)), dtype=np.int64)
        for u, unit in enumerate(movable):
            for guest in unit.guests:
                for c in guest.anti_affinity:
                    self.member[u, index[c]] += 1
        # Anti-affinity members per online host and class, from every placed guest.
        self.holding = np.zeros((len(problem.hosts), len(classes)), dtype=np.int64)
        for guest in problem.guests:
            host = hosts.get(guest.name)
            if host is not None:
                for c in guest.anti_affinity:
                    if c in index:
                        self.holding[problem.host_position(host), index[c]] += 1
        position = self.node.position
        self.at = np.array(
            [position[problem.host_position(hosts[u.names[0]] or "")] for u in movable],
            dtype=np.int64,
        )
        # Members of each unit that run now on each online host: a unit on host h has
        # size - at_home[u, h] guests away from where they run (a together group may run
        # split over several hosts now).
        self.at_home = np.zeros((len(movable), len(online)), dtype=np.int64)
        for u, unit in enumerate(movable):
            for guest in unit.guests:
                h = problem.host_position(guest.current_host or "")
                if guest.current_host is not None and h in position:
                    self.at_home[u, position[h]] += 1
        self.size = np.array([len(u.guests) for u in movable], dtype=np.int64)
        self.units = np.arange(len(movable))
        # Ties go to the lowest imbalance, then the unit order, then the node name.
        names = [problem.hosts[int(h)].name for h in online]
        self.name_rank = np.argsort(np.argsort(np.array(names, dtype=object)))

    def loads(self) -> FloatArray:
        return self.node.of(self.counted)

    def imbalance(self) -> float:
        current = self.loads()
        return float(_imbalance(np.array(current.sum()), np.array((current**2).sum()), self.count))

    def best(self, moves_left: int | None) -> tuple[float, int, int] | None:
        """(imbalance after, unit, target host position in the problem) of the best move
        within `moves_left` more guests away from home (None: no limit), or None."""
        current = self.loads()
        online = self.node.online
        used = self.used[online]
        room = used[None, :, :] + self.demand[:, None, :] <= self.usable[online][None, :, :]
        fits = np.all(room | ~self.asks[:, None, :], axis=2)
        clash = (self.member @ (self.holding[online] > 0).T) > 0
        # A unit clashes with its own source only through itself; the source is no target.
        feasible = self.allowed & fits & ~clash
        feasible[self.units, self.at] = False
        if moves_left is not None:
            # A move changes the guests away from home by at_home[u, here] - at_home[u, h].
            here = self.at_home[self.units, self.at]
            feasible &= here[:, None] - self.at_home <= moves_left
        if not feasible.any():
            return None
        own = self.added[self.units, self.at]  # what each unit adds where it is
        source = current[self.at]
        total = current.sum() - own[:, None] + self.added
        squares = (
            (current**2).sum()
            - (source**2)[:, None]
            + ((source - own) ** 2)[:, None]
            - (current**2)[None, :]
            + (current[None, :] + self.added) ** 2
        )
        scores = np.round(_imbalance(total, squares, self.count), 12)
        scores[~feasible] = np.inf
        lowest = scores.min()
        units, targets = np.nonzero(scores == lowest)
        first = units.min()
        choices = targets[units == first]
        target = choices[np.argmin(self.name_rank[choices])]
        return float(lowest), int(first), int(online[target])

    def move(self, u: int, target: int) -> int:
        """Move unit `u` to host `target` (a problem position); returns the change in the
        number of guests away from home."""
        source = int(self.node.online[self.at[u]])
        before = int(self.at_home[u, self.at[u]])
        self.used[source] -= self.demand[u]
        self.used[target] += self.demand[u]
        self.counted[source] -= self.demand[u]
        self.counted[target] += self.demand[u]
        self.holding[source] -= self.member[u]
        self.holding[target] += self.member[u]
        self.at[u] = self.node.position[target]
        return before - int(self.at_home[u, self.at[u]])


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
        budget=Budget.of(options),
        start=best_fit_placement(problem),
    )
    return finish_plan(problem, placement, options, "descent-rebalance", started_at)
