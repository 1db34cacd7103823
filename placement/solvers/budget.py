"""One time budget for a solve, passed down through every solver step.

    budget = Budget.of(options)               # the whole solve: options.time_limit_s
    counts = budget.share(SHARES.type_counts_leading)   # a part of what is left now
    counts.limit_cpsat(solver.parameters, counts.remaining())
    status = solver.solve(model)
    counts.charge_cpsat(solver)               # (counts in deterministic mode)

`time_limit_s` is a wall-clock limit in every mode. The solver steps do no time
arithmetic of their own: a step asks its budget what is left (`remaining`), hands a part
of it to a sub-step (`share`, `sub`, `leaving`), and stops when it is `expired`. A part
never outlives its parent.

Deterministic mode (`SolveOptions.deterministic`) repeats results *and* keeps the wall
limit. Every decision (how long a stage searches, how many seeds or rounds run) is made
from work, never from the wall clock: a budget's `elapsed` is the work charged to it, in
nominal seconds (CP-SAT's deterministic time converted by `DETERMINISTIC_TIME_PER_S`,
and size-based estimates for the heuristics, `charge`). The wall clock is only a
backstop: every CP-SAT search also gets a wall limit, and steps check `expired` between
them. When the backstop ends a step before its work was done, the run is cut
(`wall_cut`): its plan is valid and verified but may differ from another run's, and the
plan says so (`statistics.wall_cut`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from placement.solvers.stop import StopToken, is_stopped

if TYPE_CHECKING:
    from placement.solvers import SolveOptions

# CP-SAT deterministic time given per nominal second of a budget in deterministic mode.
# CP-SAT's unit is "about a second" but varies widely by model, machine and search. Per
# CPU second, measured on the examples and S-0 (docs/optimiser.md "Time"), interleaved
# two-worker searches count 0.10 (cold-recovery) to 0.31 (single-host-restart), so
# 0.2-0.6 per wall second on a quiet 2-core machine; one-worker searches (neighbourhoods,
# probes) about 0.6. These rates keep the backstop quiet on most instances of a quiet
# machine and leave the search most of its time; the rest is the backstop's job, and the
# plan says when it fired (`python -m bench wall` measures the outcome).
DETERMINISTIC_TIME_PER_S = 0.2
DETERMINISTIC_TIME_PER_S_ONE_WORKER = 0.5


def deterministic_rate(parameters: Any) -> float:
    """CP-SAT deterministic time per nominal second for a search with `parameters`."""
    if parameters.num_workers == 1:
        return DETERMINISTIC_TIME_PER_S_ONE_WORKER
    return DETERMINISTIC_TIME_PER_S


# Work estimates of the heuristics, charged in deterministic mode in place of their wall
# time: one greedy pass (best fit, or one vector-packing variant) with its check, the
# unit of the seed portfolio's costs. CPU time measured: 4 ms on 30 guests x 2 hosts,
# 16 ms on 150 x 20 (the examples), about 2 s on the L cold pack's 10,000 x 1,000.
PASS_FIXED_S = 0.001
PASS_S_PER_GUEST = 1e-4
PASS_S_PER_PAIR = 2e-7


def heuristic_pass_s(guests: int, hosts: int) -> float:
    """The work charged for one greedy pass over `guests` on `hosts` (deterministic mode)."""
    return PASS_FIXED_S + PASS_S_PER_GUEST * guests + PASS_S_PER_PAIR * guests * hosts


@attrs.frozen
class Shares:
    """The named fractions of a budget that the solver steps hand to one another; each
    was a constant of its own module before and keeps its value."""

    # The seed portfolio (incumbent.py): a little under a quarter of the limit, since the
    # repacked and reordered variants and the first check come after the seeds (the L
    # cold pack at 60 s: first plan after 15.2 s with the whole quarter, target 15 s).
    seeds: float = 0.22
    # What a local-search seed (descent-rebalance) may run at most: a quarter.
    local_search_seed: float = 0.25
    # The part of the seeds' budget left after a seed that a local search takes (it
    # overruns its limit a little, and its own check comes after it).
    local_search_left: float = 0.8
    # The placement stages on type counts (aggregate.py) when they are the whole
    # objective, of the time left after seeding; the rest goes to the neighbourhoods.
    type_counts_whole: float = 0.6
    # ... and when later stages follow them.
    type_counts_leading: float = 0.4
    # The stage loop's reserve for assembling and checking the plan (stages.improve):
    # this share of the limit plus `reserve_fixed_s`...
    reserve: float = 0.03
    reserve_fixed_s: float = 0.05
    # ... but the stages search at least this share of the limit.
    least_search: float = 0.5
    # The full model is built only when building it and setting up its stages should
    # take at most this share of the stages' search time (else the incumbent stands and
    # the neighbourhoods may take over).
    model_setup: float = 0.5
    # Probes that explain unplaced guests: a tenth of the limit, at most `explain_max_s`.
    explain: float = 0.1
    explain_max_s: float = 2.0
    # A `consolidate` stage: CP-SAT's whole-model search gets this share of the stage
    # (at least, outside deterministic mode) before the host-emptying neighbourhoods...
    consolidate_cp_sat: float = 0.4
    # ... at the earliest, and once it has not improved for this share of the stage.
    consolidate_stall: float = 0.2
    # An imbalance stage lowers the ratio with this share; the rest proves the bound.
    imbalance_search: float = 0.7
    # The rebalance search (rebalance.py) keeps this share of the limit to finish.
    rebalance_finish: float = 0.1
    # survive.py: CP-SAT's search for the fewest moves, then the balance with the rest.
    survive_moves: float = 0.6
    survive_balance: float = 0.4


SHARES = Shares()


class Budget:
    """The time a solve step may spend: `limit_s` nominal seconds from its creation, and
    a wall-clock `deadline` (a `time.perf_counter()` instant) it never passes. Outside
    deterministic mode the two are the same clock. In deterministic mode `elapsed` is
    the work charged (`charge`, `charge_cpsat`), and the deadline is a backstop.

    Build one with `Budget.of(options)`; parts with `share`, `sub` and `leaving`."""

    def __init__(
        self,
        limit_s: float,
        *,
        deterministic: bool = False,
        stop: StopToken | None = None,
        clock: Callable[[], float] = time.perf_counter,
        _parent: Budget | None = None,
        _deadline: float | None = None,
    ) -> None:
        self._clock = clock
        self.deterministic = deterministic
        self.stop = stop
        self.started = clock()
        self._parent = _parent
        self._root: Budget = self if _parent is None else _parent._root
        self._spent_s = 0.0
        self._cut = False
        self.limit_s = max(limit_s, 0.0)
        self.deadline = self.started + self.limit_s if _deadline is None else _deadline

    @classmethod
    def of(cls, options: SolveOptions) -> Budget:
        """The budget of a whole solve: `options.time_limit_s`, its mode and stop token."""
        return cls(options.time_limit_s, deterministic=options.deterministic, stop=options.stop)

    def share(self, fraction: float) -> Budget:
        """A part of this budget: `fraction` of what is left of it now."""
        return self.sub(fraction * self.remaining())

    def sub(self, seconds: float) -> Budget:
        """A part of this budget of `seconds` (at most what is left of it). Its wall
        deadline is as far (outside deterministic mode, where the wall clock is the
        limit), or this budget's (deterministic mode: the backstop is where the solve
        must end, not where a part would end on a machine of some speed)."""
        limit_s = min(max(seconds, 0.0), self.remaining())
        deadline = self.deadline
        if not self.deterministic:
            deadline = min(deadline, self._clock() + limit_s)
        return self._part(limit_s, deadline)

    def leaving(self, seconds: float) -> Budget:
        """This budget less its last `seconds`, kept for what follows it (assembling and
        checking a plan): in wall time too, in every mode."""
        seconds = max(seconds, 0.0)
        return self._part(self.remaining() - seconds, self.deadline - seconds)

    def _part(self, limit_s: float, deadline: float) -> Budget:
        return Budget(
            limit_s,
            deterministic=self.deterministic,
            stop=self.stop,
            clock=self._clock,
            _parent=self,
            _deadline=min(deadline, self.deadline),
        )

    @property
    def solve_started(self) -> float:
        """When the whole solve began (a `time.perf_counter()` instant)."""
        return self._root.started

    def elapsed(self) -> float:
        """Nominal seconds spent: the work charged in deterministic mode, else wall time."""
        if self.deterministic:
            return self._spent_s
        return self._clock() - self.started

    def remaining(self) -> float:
        """Nominal seconds left (never negative): what a step sizes itself by. Outside
        deterministic mode, at most the wall time left."""
        left = max(self.limit_s - self.elapsed(), 0.0)
        if not self.deterministic:
            left = min(left, self.wall_left())
        return left

    def wall_left(self) -> float:
        """Wall-clock seconds until the deadline (never negative)."""
        return max(self.deadline - self._clock(), 0.0)

    @property
    def stopped(self) -> bool:
        """Whether the stop token was stopped."""
        return is_stopped(self.stop)

    @property
    def expired(self) -> bool:
        """Whether the step must end now: stopped, out of time, or (deterministic mode)
        past the wall backstop, which then marks the run cut."""
        if self.stopped or self.remaining() <= 0.0:
            return True
        if self.wall_left() <= 0.0:
            self.mark_cut()
            return True
        return False

    def fits(self, seconds: float) -> bool:
        """Whether a step that cannot be interrupted, of about `seconds`, fits: in what
        is left of this budget and in its wall time. In deterministic mode a step the
        work left allows but the wall clock does not is the backstop firing: the run is
        marked cut."""
        if self.stopped or self.remaining() < seconds:
            return False
        if self.wall_left() < seconds:
            self.mark_cut()
            return False
        return True

    def charge(self, seconds: float) -> None:
        """Count `seconds` of nominal work against this budget and its parents (what a
        step did that CP-SAT does not count: a heuristic, by a size-based estimate)."""
        budget: Budget | None = self
        while budget is not None:
            budget._spent_s += seconds
            budget = budget._parent

    def limit_cpsat(self, parameters: Any, seconds: float) -> None:
        """Set a CP-SAT search's limits (`parameters`: its `SatParameters`, workers
        already set) for `seconds` of this budget: deterministic time in deterministic
        mode, with the wall time left as the backstop; else wall time, within the
        deadline."""
        seconds = max(min(seconds, self.remaining()), 0.0)
        if self.deterministic:
            units = seconds * deterministic_rate(parameters)
            parameters.max_deterministic_time = max(units, 0.001)
            parameters.max_time_in_seconds = max(self.wall_left(), 0.01)
        else:
            parameters.max_time_in_seconds = max(min(seconds, self.wall_left()), 0.01)

    def charge_cpsat(self, solver: Any) -> None:
        """Count a finished CP-SAT search (`solver`, a `CpSolver`) against this budget;
        in deterministic mode, a search the backstop ended marks the run cut."""
        if not self.deterministic:
            return
        self.charge(solver.deterministic_time / deterministic_rate(solver.parameters))
        # A search that neither finished (proved its answer) nor used its deterministic
        # time was ended by its wall limit (or by the stop token, which `mark_cut`
        # ignores): nothing else ends a search in deterministic mode. (Comparing its wall
        # time with its wall limit missed cuts on a loaded machine, where CP-SAT counts
        # less wall time than the limit it was given.)
        parameters = solver.parameters
        short = solver.deterministic_time < 0.999 * parameters.max_deterministic_time
        # (`solver.status_name()` without a status raises in ortools 9.15.)
        status = solver.status_name(solver.response_proto.status)
        finished = status in ("OPTIMAL", "INFEASIBLE", "MODEL_INVALID")
        if short and not finished:
            self.mark_cut()

    def mark_cut(self) -> None:
        """Record that the wall backstop ended deterministic work early."""
        if self.deterministic and not self.stopped:
            self._root._cut = True

    @property
    def wall_cut(self) -> bool:
        """Whether the wall backstop cut this solve (deterministic mode only): the plan
        is verified but may not repeat."""
        return self._root._cut
