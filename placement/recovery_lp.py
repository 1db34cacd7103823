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
from collections.abc import Mapping, Sequence

import attrs
import numpy as np
import numpy.typing as npt
from ortools.linear_solver import linear_solver_pb2, pywraplp

from placement.bounds import earliest_starts, recovery_lower_bound, start_slots
from placement.model import Guest, HostState, Objective, Problem

FloatArray = npt.NDArray[np.float64]

# Past this many (slot, tick) variables the LP costs seconds to build and solve in Python
# (M-0 below the value of its seed timed by the rules: 30,947 variables, 2.0 s on the
# quiet 2-core machine; 5 s for 19,000 on 2 busy cores).
MAX_VARIABLES = 40_000
# Seconds per variable to build and solve the LP (M-0..M-2 on the quiet 2-core machine:
# 6.6e-5 to 1.1e-4; GLOP stops at the wall deadline when a busy machine is slower).
SECONDS_PER_VARIABLE = 1.0e-4


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
    """The LP as (row, column, coefficient) arrays, solved by GLOP and valued from its
    duals by us. Rows are `<=` unless `equal`; every variable is in [0, 1]."""

    def __init__(self) -> None:
        self.cost: list[float] = []
        self.parts: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], FloatArray]] = []
        self.rhs: list[float] = []
        self.equal: list[bool] = []

    def variables(self, costs: Sequence[float]) -> range:
        """New variables with these costs; their column indices."""
        first = len(self.cost)
        self.cost.extend(costs)
        return range(first, len(self.cost))

    def rows(
        self,
        rows: npt.NDArray[np.int64],
        columns: npt.NDArray[np.int64],
        values: FloatArray,
        rhs: Sequence[float],
        equal: bool,
    ) -> None:
        """Rows `0 .. len(rhs) - 1` of these triples (duplicates are summed), each
        `<= rhs` (`== rhs` when `equal`), appended after the rows so far."""
        self.parts.append((rows + len(self.rhs), columns, values))
        self.rhs.extend(rhs)
        self.equal.extend([equal] * len(rhs))

    def lower_bound(self, time_limit_s: float | None) -> float | None:
        """min cost.x over the rows and 0 <= x <= 1, bounded from below by the duals GLOP
        found: sum(dual * rhs) + sum(min(0, reduced cost)) holds for any dual vector whose
        `<=` rows are <= 0, whatever GLOP's tolerances. None when GLOP did not finish
        within `time_limit_s` (None: no limit)."""
        rows = np.concatenate([r for r, _, _ in self.parts])
        columns = np.concatenate([c for _, c, _ in self.parts])
        values = np.concatenate([v for _, _, v in self.parts])
        # Sorted by row then column, duplicates summed (members of one start group).
        keys, where = np.unique(rows * len(self.cost) + columns, return_inverse=True)
        values = np.bincount(where.ravel(), weights=values, minlength=len(keys))
        rows, columns = keys // len(self.cost), keys % len(self.cost)
        starts = np.searchsorted(rows, np.arange(len(self.rhs) + 1))
        proto = linear_solver_pb2.MPModelProto()
        for cost in self.cost:
            proto.variable.add(lower_bound=0.0, upper_bound=1.0, objective_coefficient=cost)
        row_columns = columns.tolist()
        row_values = values.tolist()
        for r, (rhs, equal) in enumerate(zip(self.rhs, self.equal, strict=True)):
            constraint = proto.constraint.add(
                lower_bound=rhs if equal else -math.inf, upper_bound=rhs
            )
            constraint.var_index.extend(row_columns[starts[r] : starts[r + 1]])
            constraint.coefficient.extend(row_values[starts[r] : starts[r + 1]])
        request = linear_solver_pb2.MPModelRequest(
            model=proto,
            solver_type=linear_solver_pb2.MPModelRequest.GLOP_LINEAR_PROGRAMMING,
        )
        if time_limit_s is not None:
            request.solver_time_limit_seconds = max(time_limit_s, 0.001)
        response = linear_solver_pb2.MPSolutionResponse()
        pywraplp.Solver.SolveWithProto(request, response)
        if response.status != linear_solver_pb2.MPSOLVER_OPTIMAL:
            return None
        duals = np.array(response.dual_value, dtype=float)
        if len(duals) != len(self.rhs):
            return None
        duals = np.where(np.array(self.equal), duals, np.minimum(duals, 0.0))
        used = np.bincount(columns, weights=values * duals[rows], minlength=len(self.cost))
        reduced = np.array(self.cost) - used
        return float(duals @ np.array(self.rhs) + np.minimum(reduced, 0.0).sum())


@attrs.frozen
class _Grid:
    """The LP's start variables: per start slot, its members (`slots`), its start ticks
    (`ranges`, first and last) and its columns; `g` is the tick in seconds."""

    slots: list[list[Guest]]
    ranges: list[tuple[int, int]]
    columns: list[range]
    g: int


def recovery_lp_bound(
    problem: Problem,
    booting: Sequence[Guest],
    held: Mapping[str, float],
    upper: float,
    max_variables: int = MAX_VARIABLES,
    time_limit_s: float | None = None,
) -> tuple[int | None, int]:
    """A lower bound on the priority-weighted ready times of any plan that boots every
    guest of `booting` with the earlier stages at `held`, given that one such plan has
    the value `upper` (None when the LP would have more than `max_variables` variables
    or finds nothing, or GLOP does not finish within `time_limit_s`), and the number of
    variables of the LP built (0: none)."""
    if not booting:
        return None, 0
    g = _tick(problem, booting, held)
    heads = earliest_starts(problem, booting)
    slots = start_slots(booting)
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
    columns: list[range] = []
    for members, (first, last) in zip(slots, ranges, strict=True):
        weight = sum(m.weight for m in members)
        columns.append(lp.variables([weight * g * t for t in range(first, last + 1)]))
    # Each slot starts once.
    lp.rows(
        np.concatenate([np.full(len(c), s, dtype=np.int64) for s, c in enumerate(columns)]),
        np.arange(size, dtype=np.int64),
        np.ones(size),
        [1.0] * len(columns),
        equal=True,
    )
    grid = _Grid(slots, ranges, columns, g)
    _add_limits(problem, booting, grid, lp)
    _add_stagger(problem, grid, lp)
    _add_after(booting, grid, lp)
    value = lp.lower_bound(time_limit_s)
    if value is None:
        return None, size
    return math.ceil(plain + value - 1e-6 * max(1.0, abs(plain + value))), size


def _covering(
    ranges: Sequence[tuple[int, int]], columns: Sequence[range], lengths: Sequence[int]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(tick, column) for every tick each slot's start variable covers: the variable of
    start tick t covers ticks t .. t + length - 1 (one length per entry)."""
    ticks: list[npt.NDArray[np.int64]] = []
    cols: list[npt.NDArray[np.int64]] = []
    for (first, last), column, length in zip(ranges, columns, lengths, strict=True):
        if length <= 0:
            continue
        start = np.arange(first, last + 1, dtype=np.int64)
        ticks.append((start[:, None] + np.arange(length, dtype=np.int64)[None, :]).ravel())
        cols.append(np.repeat(np.arange(column.start, column.stop, dtype=np.int64), length))
    if not ticks:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(ticks), np.concatenate(cols)


def _tick_rows(
    lp: _Lp,
    ticks: npt.NDArray[np.int64],
    columns: npt.NDArray[np.int64],
    values: FloatArray,
    capacity: float,
) -> None:
    """One row per tick: the sum of `values` of the columns covering it <= capacity,
    for the ticks where all of them together could exceed it."""
    if len(ticks) == 0:
        return
    used, row = np.unique(ticks, return_inverse=True)
    most = np.bincount(row, weights=values, minlength=len(used))
    keep = most > capacity + 1e-9
    if not keep.any():
        return
    renumber = np.cumsum(keep) - 1
    chosen = keep[row]
    lp.rows(
        renumber[row[chosen]],
        columns[chosen],
        values[chosen],
        [float(capacity)] * int(keep.sum()),
        equal=False,
    )


def _add_limits(problem: Problem, booting: Sequence[Guest], grid: _Grid, lp: _Lp) -> None:
    """At each tick, the boots running stay within each limit of `_limits`."""
    position = {guest.name: i for i, guest in enumerate(booting)}
    for capacity, demand in _limits(problem, booting):
        ticks: list[npt.NDArray[np.int64]] = []
        cols: list[npt.NDArray[np.int64]] = []
        values: list[FloatArray] = []
        for members, span, column in zip(grid.slots, grid.ranges, grid.columns, strict=True):
            for member in members:
                amount = demand[position[member.name]]
                if amount <= 0:
                    continue
                t, c = _covering([span], [column], [member.boot.duration_s // grid.g])
                ticks.append(t)
                cols.append(c)
                values.append(np.full(len(t), float(amount)))
        if ticks:
            _tick_rows(
                lp, np.concatenate(ticks), np.concatenate(cols), np.concatenate(values), capacity
            )


def _add_stagger(problem: Problem, grid: _Grid, lp: _Lp) -> None:
    """At most one slot starts within any stagger gap."""
    width = problem.schedule.stagger_s // grid.g
    if width <= 0 or len(grid.columns) < 2:
        return
    ticks, cols = _covering(grid.ranges, grid.columns, [width] * len(grid.columns))
    _tick_rows(lp, ticks, cols, np.ones(len(ticks)), 1.0)


def _add_after(booting: Sequence[Guest], grid: _Grid, lp: _Lp) -> None:
    """A guest starts once each booting guest it starts after is ready (mean start
    ticks: sum t y[dependency, t] + duration <= sum t y[guest, t])."""
    slots, ranges, columns = grid.slots, grid.ranges, grid.columns
    slot_of = {m.name: s for s, members in enumerate(slots) for m in members}
    duration = {m.name: m.boot.duration_s for m in booting}
    for s, members in enumerate(slots):
        for member in members:
            for dependency in member.boot.after:
                d = slot_of.get(dependency)
                if d is None or d == s:
                    continue
                cols = np.concatenate(
                    [
                        np.arange(columns[d].start, columns[d].stop),
                        np.arange(columns[s].start, columns[s].stop),
                    ]
                ).astype(np.int64)
                values = np.concatenate(
                    [
                        np.arange(ranges[d][0], ranges[d][1] + 1, dtype=float),
                        -np.arange(ranges[s][0], ranges[s][1] + 1, dtype=float),
                    ]
                )
                lp.rows(
                    np.zeros(len(cols), dtype=np.int64),
                    cols,
                    values,
                    [-duration[dependency] / grid.g],
                    equal=False,
                )
