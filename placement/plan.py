"""The plan: what a solver decided, and how good it claims that is.

A plan says, per guest, which host it runs on (or none) and, when it has to start, when
it starts and when it is ready. `placement.check` verifies a plan against its problem
independently of whichever solver produced it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import TYPE_CHECKING

import attrs

from placement.statistics import SolveStatistics

if TYPE_CHECKING:
    from placement.model import Guest, Problem


class Status(enum.Enum):
    """How far the solver got. `optimal` only when every stage was proven optimal."""

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"  # a plan, not proven optimal
    INFEASIBLE = "infeasible"  # proven: no plan satisfies the hard rules
    UNKNOWN = "unknown"  # no plan found and nothing proven


class Action(enum.Enum):
    """What happens to a guest.

    `start`: boots on `host` (a stopped guest, a guest whose host failed, or the
    replacement of a frozen guest). `stay`: keeps running where it runs. `migrate`: a
    running guest moves to `host`. `stop`: a running guest is stopped and not placed.
    `none`: a guest that is not running and is not placed.
    """

    START = "start"
    STAY = "stay"
    MIGRATE = "migrate"
    STOP = "stop"
    NONE = "none"


def expected_action(problem: Problem, guest: Guest, host: str | None) -> Action:
    """The action a plan must give `guest` when it ends on `host` (None: unplaced)."""
    if problem.runs_now(guest):
        if host is None:
            return Action.STOP
        return Action.STAY if host == guest.current_host else Action.MIGRATE
    return Action.NONE if host is None else Action.START


@attrs.frozen
class Assignment:
    """One guest's fate. `start_s` and `ready_s` are seconds from the plan's instant 0.

    For `start`, the guest boots during `[start_s, ready_s)`. For `migrate`, the move runs
    during `[start_s, ready_s)` and the guest holds resources on both hosts meanwhile.
    For `stay`, `stop` and `none`, both are None.
    """

    guest: str
    host: str | None
    action: Action = attrs.field(converter=Action)
    start_s: int | None = None
    ready_s: int | None = None


@attrs.frozen
class Unplaced:
    """A guest the plan leaves without a host, and the rule that keeps it out."""

    guest: str
    reason: str


@attrs.frozen
class StageResult:
    """One lexicographic stage: its value, a proven bound if known, and the gap.

    For a minimised stage the bound is a lower bound, for `placed` an upper bound.
    `gap` is `|value - bound| / max(|value|, 1e-9)`, 0 when proven optimal, None when
    no bound is known (heuristics report no bound).
    """

    name: str
    value: float
    bound: float | None = None
    gap: float | None = None


def relative_gap(value: float, bound: float | None) -> float | None:
    """The relative distance from a stage value to its bound (0.0 when they meet)."""
    if bound is None:
        return None
    difference = abs(value - bound)
    if difference < 1e-9:
        return 0.0
    return difference / max(abs(value), 1e-9)


# Typed converters: mypy's attrs plugin reads `converter=tuple` as taking `Iterable[_T_co]`,
# which no concrete list matches.
def _assignments(value: Iterable[Assignment]) -> tuple[Assignment, ...]:
    return tuple(value)


def _unplaced(value: Iterable[Unplaced]) -> tuple[Unplaced, ...]:
    return tuple(value)


def _stages(value: Iterable[StageResult]) -> tuple[StageResult, ...]:
    return tuple(value)


@attrs.frozen
class Plan:
    """A solver's answer: status, per-stage results, assignments, unplaced guests, and
    the solver's account of its search (`statistics`, see `placement.statistics`)."""

    status: Status = attrs.field(converter=Status)
    solver: str
    runtime_s: float
    assignments: tuple[Assignment, ...] = attrs.field(converter=_assignments)
    unplaced: tuple[Unplaced, ...] = attrs.field(default=(), converter=_unplaced)
    stages: tuple[StageResult, ...] = attrs.field(default=(), converter=_stages)
    statistics: SolveStatistics = attrs.field(factory=SolveStatistics)

    def assignment(self, guest: str) -> Assignment | None:
        """The assignment of `guest`, or None if the plan has none."""
        for assignment in self.assignments:
            if assignment.guest == guest:
                return assignment
        return None

    def by_guest(self) -> dict[str, Assignment]:
        """Guest name -> assignment (the first one counts if a guest is listed twice, as in
        the checker, which reports the second)."""
        found: dict[str, Assignment] = {}
        for assignment in self.assignments:
            found.setdefault(assignment.guest, assignment)
        return found

    def stage_values(self) -> dict[str, float]:
        """Stage name -> value, in the objective's order."""
        return {stage.name: stage.value for stage in self.stages}

    def stage(self, name: str) -> StageResult | None:
        """The result of stage `name` (an objective value), or None if the plan has none."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        return None
