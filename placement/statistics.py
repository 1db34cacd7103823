"""What a solve did, typed: `SolveStatistics`, a plan's account of its own search.

A plan says what was decided (`placement.plan`); its statistics say how the solver got
there: when the first plan came, which search produced the plan returned, the seeds tried,
each better plan kept on the way, each objective stage's search, and what the scale
strategies (type counts, neighbourhoods, the rebalance search, the vector-packing
portfolio) did. Every field has a default, so a baseline that reports nothing has empty
statistics, and every record is plain data that `placement.codec` writes to the plan file.

Plan files written before these types had a free-form `metrics` object;
`SolveStatistics.from_legacy` reads one (figures it does not know go to `extra`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

# JSON data (str, int, float, bool, None, lists and mappings of them); not typed further.
JsonValue = Any


def _frozen_map(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


def _floats(value: Mapping[str, float] | None) -> Mapping[str, float]:
    return MappingProxyType({str(k): float(v) for k, v in (value or {}).items()})


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


@attrs.frozen
class HostEmptying:
    """The consolidate stage's host-emptying neighbourhoods (cpsat/consolidate.py):
    rounds run, hosts in use before and after, seconds spent."""

    rounds: int
    hosts_before: int
    hosts_after: int
    seconds: float

    @property
    def hosts_emptied(self) -> int:
        return self.hosts_before - self.hosts_after


@attrs.frozen
class StageLog:
    """One objective stage's search. `status` is CP-SAT's status name, or `SKIPPED (why)`
    when the stage was not searched; `value` the value held for the later stages (model
    units scaled back; None when nothing was found); `bound` CP-SAT's own bound on the
    stage (None unless it had a solution of its own); `improved` whether the value is
    lexicographically better than the first plan's (None when unknown)."""

    stage: str
    status: str
    seconds: float = 0.0
    value: float | None = attrs.field(default=None, converter=_optional_float)
    bound: float | None = attrs.field(default=None, converter=_optional_float)
    improved: bool | None = None
    second_pass_status: str | None = None
    second_pass_seconds: float | None = None
    # The consolidate stage: CP-SAT handed over once stalled (non-deterministic mode only).
    stopped_stalled: bool | None = None
    iterations: int | None = None  # the imbalance stage's convex-concave steps
    neighbourhoods: HostEmptying | None = None
    # The recovery stage: the time-indexed LP bound below its value (None when the LP
    # was not built: too big, no time, or the stage was proven), and its seconds.
    lp_bound: float | None = attrs.field(default=None, converter=_optional_float)
    lp_seconds: float | None = None

    @classmethod
    def from_log(cls, log: Mapping[str, Any]) -> StageLog:
        """A stage log as the searches build it (a dict with CP-SAT's key names)."""
        emptying = log.get("neighbourhoods")
        return cls(
            stage=str(log["stage"]),
            status=str(log.get("cp_sat_status", log.get("status", "UNKNOWN"))),
            seconds=float(log.get("seconds", 0.0)),
            value=log.get("value"),
            bound=log.get("cp_sat_bound", log.get("bound")),
            improved=log.get("improved"),
            second_pass_status=log.get("second_pass_status"),
            second_pass_seconds=log.get("second_pass_seconds"),
            stopped_stalled=log.get("cp_sat_stopped_stalled", log.get("stopped_stalled")),
            iterations=log.get("iterations"),
            lp_bound=log.get("lp_bound"),
            lp_seconds=log.get("lp_seconds"),
            neighbourhoods=None
            if emptying is None
            else HostEmptying(
                rounds=emptying["rounds"],
                hosts_before=emptying["hosts_before"],
                hosts_after=emptying["hosts_after"],
                seconds=emptying["seconds"],
            ),
        )


def _stage_logs(value: Iterable[StageLog | Mapping[str, Any]]) -> tuple[StageLog, ...]:
    return tuple(s if isinstance(s, StageLog) else StageLog.from_log(s) for s in value)


@attrs.frozen
class SeedRun:
    """One seed of the optimiser's first plan (a baseline or peer): its objective values
    by the checker (empty when its plan broke a rule), the seconds it took with its check,
    whether its plan was valid and whether it became the best seed when it ran."""

    name: str
    seconds: float
    valid: bool
    kept: bool
    values: Mapping[str, float] = attrs.field(factory=dict, converter=_floats)


@attrs.frozen
class Incumbent:
    """A plan the search moved to: seconds since the solve started, the stage values held
    so far, and what found it: `seed` (the first plan), `stage <name>` (the solution a
    stage's search ended with, the earlier stages held), `type counts` or `neighbourhood
    search` (a verified plan better than the one before)."""

    seconds: float
    source: str
    values: Mapping[str, float] = attrs.field(factory=dict, converter=_floats)


@attrs.frozen
class ModelSize:
    """The full CP-SAT model: seconds to build it, units (guests, together groups
    merged), (unit, host) pairs and boot intervals."""

    build_s: float
    units: int
    pairs: int
    boots: int


@attrs.frozen
class TypeCounts:
    """The placement stages on counts of identical guests per host (cpsat/aggregate.py):
    the types, units and pairs, the units held where they run (`pinned_units`), each
    stage's search, seconds in all, CP-SAT's bounds that hold for the original problem,
    whether its plan was better than the incumbent, or why it was skipped."""

    types: int = 0
    units: int = 0
    pinned_units: int = 0
    pairs: int = 0
    stages: tuple[StageLog, ...] = attrs.field(default=(), converter=_stage_logs)
    seconds: float | None = None
    bounds: Mapping[str, float] = attrs.field(factory=dict, converter=_floats)
    improved: bool = False
    skipped: str | None = None

    @classmethod
    def from_log(cls, log: Mapping[str, Any]) -> TypeCounts:
        """What `aggregate.improve_placement` reports (a dict with these keys)."""
        return cls(
            types=log.get("types", 0),
            units=log.get("units", 0),
            pinned_units=log.get("pinned_units", 0),
            pairs=log.get("pairs", 0),
            stages=log.get("stages", ()),
            seconds=log.get("seconds"),
            bounds=log.get("bounds") or {},
            improved=bool(log.get("improved", False)),
            skipped=log.get("skipped"),
        )


@attrs.frozen
class NeighbourhoodRound:
    """One round of the large-neighbourhood search (cpsat/large.py): guests free to move,
    (guest, host) pairs of the restricted problem, seconds, whether the round's plan was
    better, and the best plan's stage values after it."""

    round: int
    seconds: float
    movers: int
    pairs: int
    improved: bool
    values: Mapping[str, float] = attrs.field(factory=dict, converter=_floats)


@attrs.frozen
class ScheduleSearch:
    """The schedule stage of a large problem (cpsat/schedule_lns.py): the boots and start
    units it re-timed, whether it spread the boots over the roomiest hosts, the boots'
    recovery by the list schedule (`list_recovery`), by each priority rule (`rules`) and
    at its end (`recovery`), the CP-SAT windows it solved, improved with and proved
    optimal, and its seconds."""

    boots: int
    units: int
    spread: bool
    list_recovery: float | None = None
    rules: Mapping[str, float] = attrs.field(factory=dict, converter=_floats)
    recovery: float | None = None
    windows: int = 0
    windows_improved: int = 0
    windows_optimal: int = 0
    seconds: float | None = None

    @classmethod
    def from_log(cls, log: Mapping[str, Any]) -> ScheduleSearch:
        """The record of `schedule_lns.improve_schedule`'s log."""
        windows = log.get("windows") or {}
        return cls(
            boots=int(log.get("boots", 0)),
            units=int(log.get("units", 0)),
            spread=bool(log.get("spread", False)),
            list_recovery=log.get("list"),
            rules={k: v for k, v in log.items() if k.startswith("rule-")},
            recovery=log.get("recovery"),
            windows=int(windows.get("windows", 0)),
            windows_improved=int(windows.get("improved", 0)),
            windows_optimal=int(windows.get("optimal", 0)),
            seconds=log.get("seconds", log.get("rules_s")),
        )


@attrs.frozen
class RebalanceSearch:
    """The rebalance search of a large cluster (cpsat/rebalance.py): rounds, rounds that
    improved, rounds proven optimal, the goal searched and the last neighbourhood size."""

    rounds: int
    improved: int
    proven: int
    goal: str
    last_hosts: int


@attrs.frozen
class PortfolioChoice:
    """The vector-packing portfolio: the variant whose plan was returned, how many
    variants ran and how many distinct placements they made."""

    variant: str
    variants_run: int
    placements: int


@attrs.frozen
class Hysteresis:
    """A rebalance that kept the cluster as it is: the solver's plan lowered the imbalance
    from `imbalance` to `rejected_imbalance`, less than `min_improvement` better."""

    min_improvement: float
    rejected_solver: str
    rejected_imbalance: float
    imbalance: float


def _seeds(value: Iterable[SeedRun]) -> tuple[SeedRun, ...]:
    return tuple(value)


def _incumbents(value: Iterable[Incumbent]) -> tuple[Incumbent, ...]:
    return tuple(value)


def _rounds(value: Iterable[NeighbourhoodRound]) -> tuple[NeighbourhoodRound, ...]:
    return tuple(value)


@attrs.frozen
class SolveStatistics:
    """A solver's account of its search; every field optional (see the module docstring).

    `returned` names the search whose plan came back (`greedy`: the best seed, `cp-sat`,
    `neighbourhood search`); `interrupted` says `SolveOptions.stop` cut the solve short,
    `wall_cut` that the wall-clock backstop did, `stalled` that a stage of a large model
    ended with no solution of its own, `model_skipped` why the full model was not built
    (it would not have fitted the time left), `schedule_search` what re-timing the boots
    of a large problem found, `lean` which lean path a pure problem took (`schedule`:
    the plain RCPSP model; `packing`: the packing seeds, then the stages). Figures no
    type covers go to `extra`."""

    first_plan_s: float | None = None
    returned: str | None = None
    interrupted: bool = False
    stalled: bool = False
    wall_cut: bool = False
    model_skipped: str | None = None
    model: ModelSize | None = None
    seeds: tuple[SeedRun, ...] = attrs.field(default=(), converter=_seeds)
    incumbents: tuple[Incumbent, ...] = attrs.field(default=(), converter=_incumbents)
    stages: tuple[StageLog, ...] = attrs.field(default=(), converter=_stage_logs)
    type_counts: TypeCounts | None = None
    neighbourhoods: tuple[NeighbourhoodRound, ...] = attrs.field(default=(), converter=_rounds)
    schedule_search: ScheduleSearch | None = None
    lean: str | None = None
    rebalance: RebalanceSearch | None = None
    portfolio: PortfolioChoice | None = None
    hysteresis: Hysteresis | None = None
    note: str | None = None
    extra: Mapping[str, JsonValue] = attrs.field(factory=dict, converter=_frozen_map)

    def scalars(self) -> dict[str, JsonValue]:
        """The one-number figures under the names plan files and bench results used
        before these types (`first_plan_s`, `model_build_s`, `units`, `variant`, ...):
        what is known, and the flags that are set."""
        found: dict[str, JsonValue] = {
            "first_plan_s": self.first_plan_s,
            "returned": self.returned,
            "note": self.note,
            "model_skipped": self.model_skipped,
        }
        if self.model is not None:
            found.update(
                model_build_s=self.model.build_s,
                units=self.model.units,
                pairs=self.model.pairs,
                boots=self.model.boots,
                stalled=self.stalled,
            )
        if self.portfolio is not None:
            found.update(
                variant=self.portfolio.variant,
                variants_run=self.portfolio.variants_run,
                placements=self.portfolio.placements,
            )
        for flag in ("interrupted", "stalled", "wall_cut"):
            if getattr(self, flag):
                found[flag] = True
        return {key: value for key, value in found.items() if value is not None}

    @classmethod
    def from_legacy(cls, metrics: Mapping[str, Any]) -> SolveStatistics:
        """The statistics of an old plan file's free-form `metrics` object: the figures
        the solvers wrote then, typed; anything else kept in `extra`."""
        rest = dict(metrics)

        def take(key: str) -> Any:
            return rest.pop(key, None)

        first_plan_s, returned, note = take("first_plan_s"), take("returned"), take("note")
        interrupted, stalled = bool(take("interrupted")), bool(take("stalled"))
        build_s, units, pairs, boots = (
            take(k) for k in ("model_build_s", "units", "pairs", "boots")
        )
        model = None
        if None not in (build_s, units, pairs, boots):
            model = ModelSize(build_s=build_s, units=units, pairs=pairs, boots=boots)
        counted, rounds, rebalance = take("type_counts"), take("rounds"), take("rebalance")
        variant, run, placements = take("variant"), take("variants_run"), take("placements")
        hysteresis = take("hysteresis")
        return cls(
            first_plan_s=first_plan_s,
            returned=returned,
            interrupted=interrupted,
            stalled=stalled,
            model=model,
            stages=take("stages") or (),
            type_counts=None if counted is None else TypeCounts.from_log(counted),
            neighbourhoods=[NeighbourhoodRound(**r) for r in rounds or ()],
            rebalance=None if rebalance is None else RebalanceSearch(**rebalance),
            portfolio=None
            if variant is None
            else PortfolioChoice(
                variant=variant, variants_run=run or 0, placements=placements or 0
            ),
            hysteresis=None if hysteresis is None else Hysteresis(**hysteresis),
            note=note,
            extra=rest,
        )
