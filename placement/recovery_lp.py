"""A time-indexed LP bound on the recovery stage (priority-weighted ready times).

The bounds of `placement.bounds` relax each boot pool on its own to one machine; they
miss how the pools, the batch limit and the stagger gap act together, and CP-SAT's own
LP bound on the S scenarios stays 11-14 % below its plans however long it runs (S-3:
5,265 at 10 s and at 180 s). The time-indexed relaxation is much tighter: `y[s, t]` is
the share of start slot `s` that starts at tick `t`; each slot starts once; at every tick
the boots running then stay within each pool, the batch limit and the hosts' summed boot
limits; at most one slot starts within a stagger gap; a guest starts after the guests it
starts `after` (on average).

Why ticks suffice: when every boot duration, the stagger gap and (if guests may
migrate) every migration duration are multiples of `g`, some optimal plan starts every
boot at a multiple of `g` (shift the earliest start that is not one down to the multiple
below: nothing that ends in between exists, so no rule breaks and no ready time grows).

The bound needs an upper bound `upper` (a plan's value): a slot whose start would make
the sum exceed it even with the best case for the others is cut off at that tick. The
value returned comes from the LP's duals (a Lagrangian bound that any dual vector gives),
not from the LP's primal value, so that a solver tolerance cannot make it invalid.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence

from ortools.linear_solver import pywraplp

from placement.bounds import _heads, recovery_lower_bound
from placement.model import Guest, HostState, Objective, Problem

# Past this many (slot, tick) variables the LP costs seconds to build and solve in Python
# (M-1, 53 boots: about 19,000 variables, 5 s on 2 busy cores).
MAX_VARIABLES = 25_000
# Seconds per variable to build and solve the LP (measured on S and M, 2 busy cores).
SECONDS_PER_VARIABLE = 3e-4


def _tick(problem: Problem, booting: Sequence[Guest], held: Mapping[str, float]) -> int:
    """The largest tick `g` that every start of some optimal plan is a multiple of."""
    durations = [g.boot.duration_s for g in problem.guests if not problem.runs_now(g)]
    durations.append(problem.schedule.stagger_s)
    migrations = held.get(Objective.MIGRATIONS.value)
    running = [g for g in problem.guests if problem.runs_now(g)]
    if migrations is None or migrations > 0 or any(g.migration_cost == 0 for g in running):
        # Guests may move: their migrations are timed too.
        durations.extend(problem.migration_duration(g) for g in running)
    return math.gcd(*durations) or 1


def _slots(booting: Sequence[Guest]) -> list[list[Guest]]:
    """The booting guests by start slot (a start group starts at one instant)."""
    slots: dict[str, list[Guest]] = defaultdict(list)
    for guest in booting:
        key = f"group:{guest.boot.group}" if guest.boot.group else f"guest:{guest.name}"
        slots[key].append(guest)
    return list(slots.values())


def _limits(problem: Problem, booting: Sequence[Guest]) -> list[tuple[int, list[int]]]:
    """(capacity, demand per booting guest) of every limit on the boots running at once:
    the boot pools, the batch limit, and the hosts' boot CPU and starts summed over the
    online hosts (when every online host has that limit)."""
    limits = [
        (limit, [g.boot.load.get(pool, 0) for g in booting])
        for pool, limit in problem.boot_pools.items()
    ]
    if problem.schedule.max_starts is not None:
        limits.append((problem.schedule.max_starts, [1] * len(booting)))
    online = [h for h in problem.hosts if h.state is HostState.ONLINE]
    cpus = [h.boot.cpu for h in online]
    if online and all(cpu is not None for cpu in cpus):
        limits.append((sum(c or 0 for c in cpus), [g.boot.cpu for g in booting]))
    starts = [h.boot.max_starts for h in online]
    if online and all(most is not None for most in starts):
        limits.append((sum(m or 0 for m in starts), [1] * len(booting)))
    return [(cap, demand) for cap, demand in limits if sum(demand) > cap]


class _Lp:
    """Rows kept beside GLOP's, to value any dual vector ourselves."""

    def __init__(self) -> None:
        self.solver = pywraplp.Solver.CreateSolver("GLOP")
        self.cost: list[float] = []
        self.column: list[list[tuple[int, float]]] = []
        self.rhs: list[float] = []
        self.equal: list[bool] = []
        self.rows: list[pywraplp.Constraint] = []
        self.variables: list[pywraplp.Variable] = []

    def variable(self, cost: float) -> int:
        self.variables.append(self.solver.NumVar(0.0, 1.0, ""))
        self.cost.append(cost)
        self.column.append([])
        return len(self.variables) - 1

    def row(self, terms: Sequence[tuple[int, float]], rhs: float, equal: bool) -> None:
        lower = rhs if equal else -self.solver.infinity()
        constraint = self.solver.Constraint(lower, rhs)
        r = len(self.rows)
        for j, a in terms:
            constraint.SetCoefficient(self.variables[j], a)
            self.column[j].append((r, a))
        self.rows.append(constraint)
        self.rhs.append(rhs)
        self.equal.append(equal)

    def lower_bound(self) -> float | None:
        """min cost.x over the rows and 0 <= x <= 1, bounded from below by the duals GLOP
        found: sum(dual * rhs) + sum(min(0, reduced cost)) holds for any dual vector whose
        `<=` rows are <= 0, whatever GLOP's tolerances."""
        objective = self.solver.Objective()
        for j, variable in enumerate(self.variables):
            objective.SetCoefficient(variable, self.cost[j])
        objective.SetMinimization()
        if self.solver.Solve() != pywraplp.Solver.OPTIMAL:
            return None
        duals = [
            row.dual_value() if equal else min(0.0, row.dual_value())
            for row, equal in zip(self.rows, self.equal, strict=True)
        ]
        value = sum(d * b for d, b in zip(duals, self.rhs, strict=True))
        for cost, column in zip(self.cost, self.column, strict=True):
            reduced = cost - sum(duals[r] * a for r, a in column)
            value += min(0.0, reduced)
        return float(value)


def recovery_lp_bound(
    problem: Problem,
    booting: Sequence[Guest],
    held: Mapping[str, float],
    upper: float,
    max_variables: int = MAX_VARIABLES,
) -> tuple[int | None, int]:
    """A lower bound on the priority-weighted ready times of any plan that boots every
    guest of `booting` with the earlier stages at `held`, given that one such plan has
    the value `upper` (None when the LP would have more than `max_variables` variables
    or finds nothing), and the number of variables of the LP built (0: none)."""
    if not booting:
        return None, 0
    g = _tick(problem, booting, held)
    heads = _heads(problem, booting)
    slots = _slots(booting)
    plain = sum(guest.weight * guest.boot.duration_s for guest in booting)
    ranges: list[tuple[int, int]] = []
    for members in slots:
        names = {m.name for m in members}
        rest = recovery_lower_bound(problem, [x for x in booting if x.name not in names])
        own = sum(m.weight * m.boot.duration_s for m in members)
        weight = sum(m.weight for m in members)
        latest = problem.schedule.horizon_s - max(m.boot.duration_s for m in members)
        if weight > 0:
            latest = min(latest, math.floor((upper - rest - own) / weight + 1e-9))
        first = -(-max(heads[m.name] for m in members) // g)
        ranges.append((first, latest // g))
    size = sum(max(0, last - first + 1) for first, last in ranges)
    if size > max_variables or any(last < first for first, last in ranges):
        # Too big, or `upper` is below what these ticks allow: nothing to add.
        return None, 0
    lp = _Lp()
    y: list[dict[int, int]] = []
    for members, (first, last) in zip(slots, ranges, strict=True):
        weight = sum(m.weight for m in members)
        y.append({t: lp.variable(weight * g * t) for t in range(first, last + 1)})
    # Each slot starts once.
    for ticks in y:
        lp.row([(j, 1.0) for j in ticks.values()], 1.0, equal=True)
    _add_limits(problem, booting, slots, y, g, lp)
    _add_stagger(problem, y, g, lp)
    _add_after(booting, slots, y, g, lp)
    value = lp.lower_bound()
    if value is None:
        return None, size
    return math.ceil(plain + value - 1e-6 * max(1.0, abs(plain + value))), size


def _add_limits(
    problem: Problem,
    booting: Sequence[Guest],
    slots: list[list[Guest]],
    y: list[dict[int, int]],
    g: int,
    lp: _Lp,
) -> None:
    """At each tick, the boots running stay within each limit of `_limits`."""
    position = {guest.name: i for i, guest in enumerate(booting)}
    for capacity, demand in _limits(problem, booting):
        per_tick: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
        for s, members in enumerate(slots):
            for member in members:
                amount = demand[position[member.name]]
                ticks = member.boot.duration_s // g
                if amount <= 0 or ticks <= 0:
                    continue
                for t, j in y[s].items():
                    for tau in range(t, t + ticks):
                        per_tick[tau][j] += amount
        for terms in per_tick.values():
            if sum(terms.values()) > capacity:
                lp.row(list(terms.items()), float(capacity), equal=False)


def _add_stagger(problem: Problem, y: list[dict[int, int]], g: int, lp: _Lp) -> None:
    """At most one slot starts within any stagger gap."""
    width = problem.schedule.stagger_s // g
    if width <= 0 or len(y) < 2:
        return
    starting: dict[int, list[int]] = defaultdict(list)
    for ticks in y:
        for t, j in ticks.items():
            for tau in range(t, t + width):
                starting[tau].append(j)
    for js in starting.values():
        if len(js) > 1:
            lp.row([(j, 1.0) for j in js], 1.0, equal=False)


def _add_after(
    booting: Sequence[Guest], slots: list[list[Guest]], y: list[dict[int, int]], g: int, lp: _Lp
) -> None:
    """A guest starts once each booting guest it starts after is ready (mean start
    ticks: sum t y[dependency, t] + duration <= sum t y[guest, t])."""
    slot_of = {m.name: s for s, members in enumerate(slots) for m in members}
    duration = {m.name: m.boot.duration_s for m in booting}
    for s, members in enumerate(slots):
        for member in members:
            for dependency in member.boot.after:
                d = slot_of.get(dependency)
                if d is None or d == s:
                    continue
                terms = [(j, float(t)) for t, j in y[d].items()]
                terms += [(j, -float(t)) for t, j in y[s].items()]
                lp.row(terms, -duration[dependency] / g, equal=False)
