"""Proven bounds on each objective stage, computed without a solver.

CP-SAT's own bound is weak on two workers; these are cheap and often tight. Each bound is
valid for the lexicographic problem: a stage's bound assumes the earlier stages are held
at the values found (`held`), which decides which guests every plan must place.

- placed (an upper bound): guests that can go nowhere are out; an anti-affinity class
  places at most one guest per usable host; a fractional knapsack per resource.
- migrations: running guests whose host they may no longer use must move.
- recovery: critical paths of `after`; per boot pool (and for the batch limit), the
  mean-busy-time bound of a single machine that processes each boot's energy; stagger
  slots handed out heaviest first.
- makespan: critical path, energy per pool, stagger slots, batch limit.
- balance: total demand over total usable; each forced guest's best host.
- consolidate: hosts needed to cover the total demand per resource; the largest
  anti-affinity class.
- spread: fixed loads stay, each forced unit adds its lightest load, spread evenly over
  the lightest hosts (water filling), each host's distance to the even load counted
  less the one step its rounding may save.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence

import attrs
import numpy as np
import numpy.typing as npt

from placement.graph import topological_order
from placement.imbalance import SPREAD_STEPS, load_resources, spread_target
from placement.indexing import HostIndex, IntArray
from placement.indexing import units as indexing_units
from placement.model import BALANCE_STEPS, Guest, Objective, Problem


@attrs.frozen
class _Unit:
    guests: tuple[Guest, ...]
    weight: int
    demand: Mapping[str, int]
    hosts: tuple[int, ...]  # online hosts every member may use and the unit fits alone


def _units(problem: Problem, index: HostIndex | None = None) -> list[_Unit]:
    """Together groups and lone guests, with the online hosts each fits on alone."""
    index = index or HostIndex(problem)
    found: list[_Unit] = []
    for members in indexing_units(problem):
        demand: dict[str, int] = defaultdict(int)
        classes: list[str] = []
        for member in members:
            classes.extend(member.anti_affinity)
            for resource, amount in member.demand.items():
                demand[resource] += amount
        hosts: tuple[int, ...] = ()
        if len(classes) == len(set(classes)):
            mask = index.fits_alone(dict(demand))
            for member in members:
                mask &= index.allowed(member)
                if problem.runs_now(member) and not member.movable:
                    # It cannot be live-migrated: its own host or none.
                    here = problem.host_position(member.current_host or "")
                    mask &= np.arange(len(problem.hosts)) == here
            hosts = tuple(int(h) for h in np.flatnonzero(mask))
        found.append(_Unit(members, sum(m.weight for m in members), dict(demand), hosts))
    return found


def forced_units(
    problem: Problem, held: Mapping[str, float], units: Sequence[_Unit] | None = None
) -> list[_Unit]:
    """Units every plan must place, given the `placed` value held by an earlier stage:
    leaving one out would lose more weight than the held value allows."""
    placed = held.get(Objective.PLACED.value)
    units = [unit for unit in (units if units is not None else _units(problem)) if unit.hosts]
    if placed is None:
        return []
    total = sum(unit.weight for unit in units)
    return [unit for unit in units if total - unit.weight < placed - 1e-9]


class StageBounds:
    """Bounds for one problem, its units indexed once for every stage."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.index = HostIndex(problem)
        self.units = _units(problem, self.index)

    def __call__(self, objective: Objective, held: Mapping[str, float]) -> float | None:
        return stage_bound(self.problem, objective, held, self.units, self.index)


def stage_bound(
    problem: Problem,
    objective: Objective,
    held: Mapping[str, float],
    units: Sequence[_Unit] | None = None,
    index: HostIndex | None = None,
) -> float | None:
    """A proven bound on `objective` given the earlier stages' held values (an upper bound
    for `placed`, a lower bound otherwise), or None when nothing useful is known."""
    index = index or HostIndex(problem)
    units = units if units is not None else _units(problem, index)
    if objective is Objective.PLACED:
        return float(placed_upper_bound(problem, units, index))
    forced = forced_units(problem, held, units)
    if objective is Objective.MIGRATIONS:
        return float(_migrations_bound(problem, forced))
    booting = [g for unit in forced for g in unit.guests if not problem.runs_now(g)]
    if objective is Objective.RECOVERY:
        return float(recovery_lower_bound(problem, booting))
    if objective is Objective.MAKESPAN:
        return float(makespan_lower_bound(problem, booting))
    fixed, movable = _pin_running(problem, index, forced, held)
    if objective is Objective.BALANCE:
        return _balance_bound(index, fixed, movable) / BALANCE_STEPS
    if objective is Objective.CONSOLIDATE:
        return float(_consolidate_bound(index, fixed, movable))
    if objective is Objective.SPREAD:
        return float(_spread_bound(problem, index, fixed, movable))
    if objective is Objective.IMBALANCE:
        # Nothing better than "even" is known without search; CP-SAT proves more.
        return 0.0
    return None  # pragma: no cover - the enum is closed


def _pin_running(
    problem: Problem, index: HostIndex, forced: Sequence[_Unit], held: Mapping[str, float]
) -> tuple[IntArray, list[_Unit]]:
    """Split forced units into those pinned to their current host and the rest.

    With the migrations stage held at M, a forced lone guest running on a host it may use,
    whose move would cost more than M, can only stay: its demand is as good as fixed there.
    Returns the fixed loads (frozen copies plus pinned guests) and the movable units.
    """
    fixed = index.fixed.copy()
    budget = held.get(Objective.MIGRATIONS.value)
    if budget is None:
        return fixed, list(forced)
    movable: list[_Unit] = []
    for unit in forced:
        guest = unit.guests[0]
        if len(unit.guests) == 1 and problem.runs_now(guest) and guest.migration_cost > budget:
            h = problem.host_position(guest.current_host or "")
            if h in unit.hosts:
                fixed[h] += index.vector(dict(unit.demand))
                continue
        movable.append(unit)
    return fixed, movable


# --- placed ----------------------------------------------------------------------------


def placed_upper_bound(
    problem: Problem, all_units: Sequence[_Unit] | None = None, index: HostIndex | None = None
) -> int:
    """No plan places more priority weight than this."""
    units = [u for u in (all_units if all_units is not None else _units(problem)) if u.hosts]
    total = sum(unit.weight for unit in units)
    best = total
    # An anti-affinity class places at most one unit per host its units may use.
    by_class: dict[str, list[_Unit]] = defaultdict(list)
    for unit in units:
        for cls in {c for g in unit.guests for c in g.anti_affinity}:
            by_class[cls].append(unit)
    for members in by_class.values():
        hosts = {h for unit in members for h in unit.hosts}
        excess = len(members) - len(hosts)
        if excess > 0:
            lightest = sorted(unit.weight for unit in members)[:excess]
            best = min(best, total - sum(lightest))
    # Fractional knapsack per resource against everything free on online hosts.
    index = index or HostIndex(problem)
    free_on_online = np.maximum(index.free, 0)[index.online].sum(axis=0)
    for r, resource in enumerate(index.resources):
        free = int(free_on_online[r])
        items = sorted(
            units,
            key=lambda u: -(u.weight / u.demand[resource]) if u.demand.get(resource) else -math.inf,
        )
        value = 0.0
        room = float(free)
        for unit in items:
            need = unit.demand.get(resource, 0)
            if need <= room:
                value += unit.weight
                room -= need
            else:
                value += unit.weight * room / need
                break
        best = min(best, math.floor(value + 1e-9))
    return best


# --- migrations ------------------------------------------------------------------------


def _migrations_bound(problem: Problem, forced: Sequence[_Unit]) -> int:
    """Each forced unit pays at least the cost of its running members that are not on
    the unit's cheapest host (the one holding the most of that cost, if allowed)."""
    total = 0
    for unit in forced:
        running = [g for g in unit.guests if problem.runs_now(g)]
        if not running:
            continue
        cost_on: dict[int, int] = defaultdict(int)
        for guest in running:
            cost_on[problem.host_position(guest.current_host or "")] += guest.migration_cost
        allowed = set(unit.hosts)
        kept = max((cost for h, cost in cost_on.items() if h in allowed), default=0)
        total += sum(g.migration_cost for g in running) - kept
    return total


# --- recovery and makespan -------------------------------------------------------------


def earliest_starts(problem: Problem, booting: Sequence[Guest]) -> dict[str, int]:
    """Earliest start of each booting guest from its `after` chains alone."""
    names = {g.name for g in booting}
    head: dict[str, int] = {}
    by_name = {g.name: g for g in problem.guests}
    for name in topological_order(problem.guests):
        guest = by_name[name]
        earliest = 0
        for dependency in guest.boot.after:
            if dependency in head:
                earliest = max(earliest, head[dependency] + by_name[dependency].boot.duration_s)
        if name in names or not problem.runs_now(guest):
            head[name] = earliest
    return {name: head[name] for name in names}


def _pools(problem: Problem, booting: Sequence[Guest]) -> list[tuple[int, dict[str, int]]]:
    """(capacity, guest -> load) per boot pool, plus the batch limit as a pool of 1s."""
    pools = [
        (limit, {g.name: g.boot.load.get(pool, 0) for g in booting if g.boot.load.get(pool, 0)})
        for pool, limit in problem.boot_pools.items()
        if limit > 0
    ]
    if problem.schedule.max_starts is not None:
        pools.append((problem.schedule.max_starts, {g.name: 1 for g in booting}))
    return pools


def start_slots(booting: Sequence[Guest]) -> list[list[Guest]]:
    """The booting guests by start slot: a start group's members start at one instant,
    every other guest at its own."""
    slots: dict[str, list[Guest]] = defaultdict(list)
    for guest in booting:
        key = f"group:{guest.boot.group}" if guest.boot.group else f"guest:{guest.name}"
        slots[key].append(guest)
    return list(slots.values())


def _slot_weights(booting: Sequence[Guest]) -> list[tuple[int, int]]:
    """(summed weight, shortest duration) per start slot among the booting guests."""
    return [
        (sum(g.weight for g in members), min(g.boot.duration_s for g in members))
        for members in start_slots(booting)
    ]


def recovery_lower_bound(problem: Problem, booting: Sequence[Guest]) -> int:
    """No plan that boots every guest of `booting` has a smaller priority-weighted sum of
    ready times."""
    if not booting:
        return 0
    heads = earliest_starts(problem, booting)
    bound = sum(g.weight * (heads[g.name] + g.boot.duration_s) for g in booting)
    plain = sum(g.weight * g.boot.duration_s for g in booting)
    for capacity, loads in _pools(problem, booting):
        # Each boot spends load x duration of the pool's energy; a single machine that
        # processes energy at the pool's rate gives mean-busy-time bounds (WSPT order).
        jobs = [g for g in booting if loads.get(g.name, 0) > 0 and g.boot.duration_s > 0]
        jobs.sort(key=lambda g: -g.weight / (loads[g.name] * g.boot.duration_s / capacity))
        elapsed = 0.0
        value = float(plain - sum(g.weight * g.boot.duration_s for g in jobs))
        for guest in jobs:
            p_energy = loads[guest.name] * guest.boot.duration_s / capacity
            elapsed += p_energy
            value += guest.weight * (elapsed - p_energy / 2 + guest.boot.duration_s / 2)
        bound = max(bound, math.ceil(value - 1e-6))
    gap = problem.schedule.stagger_s
    if gap > 0:
        slots = sorted(_slot_weights(booting), key=lambda item: -item[0])
        bound = max(bound, plain + sum(weight * k * gap for k, (weight, _) in enumerate(slots)))
    return bound


def makespan_lower_bound(problem: Problem, booting: Sequence[Guest]) -> int:
    """No plan that boots every guest of `booting` has them all ready sooner."""
    if not booting:
        return 0
    heads = earliest_starts(problem, booting)
    bound = max(heads[g.name] + g.boot.duration_s for g in booting)
    for capacity, loads in _pools(problem, booting):
        energy = sum(loads.get(g.name, 0) * g.boot.duration_s for g in booting)
        bound = max(bound, math.ceil(energy / capacity - 1e-9))
    gap = problem.schedule.stagger_s
    if gap > 0:
        slots = _slot_weights(booting)
        shortest = min(duration for _, duration in slots)
        bound = max(bound, (len(slots) - 1) * gap + shortest)
    return bound


# --- balance and consolidate -------------------------------------------------------------


def _balance_bound(index: HostIndex, fixed: IntArray, forced: Sequence[_Unit]) -> int:
    """In steps: the highest utilisation no plan can avoid, given the `fixed` loads and
    the `forced` units still to place."""
    online = index.online
    usable = index.usable
    positive = usable > 0
    steps = 0
    if online.any():
        held_steps = np.where(positive, -(-BALANCE_STEPS * fixed // np.maximum(usable, 1)), 0)
        steps = int(held_steps[online].max(initial=0))
    # Spread perfectly, some host still carries at least the average share.
    totals = usable[online].sum(axis=0)
    demand = fixed[online].sum(axis=0)
    for unit in forced:
        demand = demand + index.vector(dict(unit.demand))
    for r in range(len(index.resources)):
        if totals[r] > 0:
            steps = max(steps, int(-(-BALANCE_STEPS * demand[r] // totals[r])))
    # A forced unit lands somewhere: at best on the host where it weighs least.
    for unit in forced:
        if not unit.hosts:
            continue
        hosts = np.array(unit.hosts)
        need = index.vector(dict(unit.demand))
        cap = usable[hosts]
        load = need + fixed[hosts]
        counted = (cap > 0) & (need > 0)
        ratio = np.where(counted, -(-BALANCE_STEPS * load // np.maximum(cap, 1)), 0)
        # (With no resource at all, every ratio is 0: `initial` covers the empty rows.)
        steps = max(steps, int(ratio.max(axis=1, initial=0).min()))
    return steps


def _consolidate_bound(index: HostIndex, fixed: IntArray, forced: Sequence[_Unit]) -> int:
    """Hosts no plan can do without: those holding fixed loads, and enough more to cover
    the rest of the demand."""
    online = index.online
    bound = int((fixed[online] > 0).any(axis=1).sum())
    for r, resource in enumerate(index.resources):
        demand = sum(unit.demand.get(resource, 0) for unit in forced)
        if demand <= 0:
            continue
        capacities = sorted(index.usable[online, r].tolist(), reverse=True)
        covered = 0
        needed = 0
        for capacity in capacities:
            if covered >= demand:
                break
            covered += capacity
            needed += 1
        bound = max(bound, needed)
    by_class: dict[str, int] = defaultdict(int)
    for unit in forced:
        for cls in {c for g in unit.guests for c in g.anti_affinity}:
            by_class[cls] += 1
    if by_class:
        bound = max(bound, max(by_class.values()))
    return bound


def _spread_bound(
    problem: Problem, index: HostIndex, fixed: IntArray, forced: Sequence[_Unit]
) -> int:
    """A lower bound on the `spread` stage: each online host keeps at least its fixed
    load, and each forced unit adds at least its smallest load on a host it may use; the
    sum of squares is smallest when that added load levels the lightest hosts (water
    filling), and rounding a load up to a step only raises it."""
    resources = [r for r in load_resources(problem) if r in index.column]
    online = [h for h in range(len(problem.hosts)) if index.online[h]]
    if not online or not resources:
        return 0
    columns = [index.column[r] for r in resources]
    capacity = np.array(
        [[float(problem.hosts[h].capacity.get(r, 0)) for r in resources] for h in online]
    )
    has = capacity > 0
    safe = np.where(has, capacity, 1.0)
    count = np.maximum(has.sum(axis=1), 1)
    position = {h: i for i, h in enumerate(online)}

    def steps(vectors: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        ratios = np.where(has, vectors / safe, 0.0)
        result: npt.NDArray[np.float64] = SPREAD_STEPS * ratios.sum(axis=1) / count
        return result

    base = steps(fixed[online][:, columns].astype(float))
    added = 0.0
    for unit in forced:
        hosts = [position[h] for h in unit.hosts if h in position]
        if not hosts:
            continue
        need = index.vector(dict(unit.demand))[columns].astype(float)
        added += float(steps(np.tile(need, (len(online), 1)))[hosts].min())
    # Water filling: raise the lightest hosts to a common level until `added` is used.
    levels = np.sort(base)
    remaining = added
    level = float(levels[0])
    for i in range(len(levels)):
        following = float(levels[i + 1]) if i + 1 < len(levels) else math.inf
        room = (following - level) * (i + 1)
        if remaining <= room:
            level += remaining / (i + 1)
            break
        remaining -= room
        level = following
    # A host's steps are its load rounded up: at or above the even load that only adds,
    # below it the rounding may close the distance by up to one step. Hosts below the
    # even load cost less when raised, so they are raised to it at no charge.
    target = spread_target(problem)
    # A host without load resources keeps load 0 whatever it holds.
    loadable = has.any(axis=1)
    filled = np.where(loadable, np.maximum(base, max(level, target - 1.0)), 0.0)
    distance = np.where(filled >= target, filled - target, np.maximum(target - filled - 1.0, 0.0))
    distance = np.where(loadable, distance, float(target))
    return max(math.floor(float((distance**2).sum()) * (1 - 1e-9)), 0)
