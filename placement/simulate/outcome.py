"""What a simulated recovery did: one run's outcome, and the summary over runs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from placement.model import Problem
from placement.plan import Action
from placement.simulate.engine import GuestStatus, World


def _frozen(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return dict(value)


@attrs.frozen
class RunOutcome:
    """One run. `ready_s`: guest -> instant it was ready, for every guest the recovery had
    to bring up (None: never). `recovery`: the priority-weighted sum of ready instants,
    a guest never ready counted at `censor_s` (the horizon, or the run's end if later).
    `makespan_s`: when the last of them was ready (`censor_s` if one never was).
    `peak_pool_ratio`: pool -> peak demand over capacity; `peak_host_ratio`: host ->
    peak boot-CPU demand over its limit. `seconds_over_capacity`: how long any pool or
    host boot CPU was over capacity. `fenced` / `failed`: hosts lost on the way."""

    run: int
    ready_s: Mapping[str, float | None] = attrs.field(converter=_frozen)
    recovery: float
    makespan_s: float
    censor_s: float
    peak_pool_ratio: Mapping[str, float] = attrs.field(converter=_frozen)
    peak_host_ratio: Mapping[str, float] = attrs.field(converter=_frozen)
    seconds_over_capacity: float
    fenced: tuple[str, ...]
    failed: tuple[str, ...]
    never_ready: tuple[str, ...]
    starts: int
    retries: int
    end_s: float
    pool_trace: Mapping[str, tuple[tuple[float, ...], tuple[float, ...]]] = attrs.field(
        factory=dict, converter=_frozen
    )
    policy_stats: Mapping[str, float] = attrs.field(factory=dict, converter=_frozen)

    @classmethod
    def of(cls, world: World, problem: Problem, run: int) -> RunOutcome:
        """Read the outcome off a world whose run has ended."""
        censor = max(float(problem.schedule.horizon_s), world.now)
        ready: dict[str, float | None] = {}
        recovery = 0.0
        makespan = 0.0
        never = []
        for index, guest in enumerate(problem.guests):
            if not world.to_recover[index]:
                continue
            at = world.ready_at[index] if world.status[index] is GuestStatus.READY else None
            ready[guest.name] = at
            if at is None:
                never.append(guest.name)
            value = censor if at is None else at
            makespan = max(makespan, value)
            # As in the checker's objective: the guests that start count (a migration only
            # in the makespan), and so does every guest lost on the way.
            if world.planned_action[index] is Action.START or world.lost_once[index]:
                recovery += guest.weight * value
        pools = {
            name: _ratio(world.peak_demand[p], world.capacity[p])
            for p, name in enumerate(world.pools)
        }
        hosts = {}
        for index, host in enumerate(problem.hosts):
            resource = world.cpu_resource(index)
            if resource is not None and world.peak_demand[resource] > 0:
                hosts[host.name] = _ratio(world.peak_demand[resource], world.capacity[resource])
        return cls(
            run=run,
            ready_s=ready,
            recovery=recovery,
            makespan_s=makespan,
            censor_s=censor,
            peak_pool_ratio=pools,
            peak_host_ratio=hosts,
            seconds_over_capacity=world.seconds_over_capacity,
            fenced=tuple(problem.hosts[h].name for h in world.fenced),
            failed=tuple(problem.hosts[h].name for h in world.failed_hosts),
            never_ready=tuple(never),
            starts=world.starts_issued,
            retries=world.retries,
            end_s=world.now,
            pool_trace=_traces(world),
            policy_stats=world.policy_stats,
        )

    def to_dict(self) -> dict[str, Any]:
        """The run as plain JSON data."""
        return {
            "run": self.run,
            "recovery": self.recovery,
            "makespan_s": self.makespan_s,
            "peak_pool_ratio": dict(self.peak_pool_ratio),
            "peak_host_ratio": dict(self.peak_host_ratio),
            "seconds_over_capacity": self.seconds_over_capacity,
            "fenced_hosts": list(self.fenced),
            "failed_hosts": list(self.failed),
            "never_ready": list(self.never_ready),
            "starts": self.starts,
            "retries": self.retries,
            "ready_s": dict(self.ready_s),
            "policy_stats": dict(self.policy_stats),
        }


def _traces(world: World) -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]:
    """Pool -> (instants, demand from each instant on), when the run was traced."""
    if world.trace is None:
        return {}
    times = (*(t for t, _ in world.trace), world.now)
    return {
        name: (times, (*(levels[p] for _, levels in world.trace), 0.0))
        for p, name in enumerate(world.pools)
    }


def _ratio(demand: float, capacity: float) -> float:
    if demand <= 0:
        return 0.0
    return demand / capacity if capacity > 0 else math.inf


@attrs.frozen
class Spread:
    """p50, p95 and max of one figure over the runs."""

    p50: float
    p95: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        data = np.asarray(values, dtype=float)
        if data.size == 0:
            return cls(0.0, 0.0, 0.0)
        # Linear interpolation between order statistics (numpy's default).
        return cls(
            float(np.percentile(data, 50)), float(np.percentile(data, 95)), float(data.max())
        )

    def to_dict(self) -> dict[str, float]:
        return {"p50": self.p50, "p95": self.p95, "max": self.max}


@attrs.frozen
class Summary:
    """The runs summarised: spreads of recovery, makespan and time over capacity, the
    highest peak per pool and per host over all runs, how many runs fenced a host, and
    how many runs left a guest never ready (and the mean count)."""

    runs: int
    recovery: Spread
    makespan_s: Spread
    seconds_over_capacity: Spread
    peak_pool_ratio: Mapping[str, float] = attrs.field(converter=_frozen)
    peak_pool_ratio_p50: Mapping[str, float] = attrs.field(converter=_frozen)
    peak_host_ratio: Mapping[str, float] = attrs.field(converter=_frozen)
    runs_over_capacity: int
    runs_with_fencing: int
    fenced_hosts: Mapping[str, int] = attrs.field(converter=_frozen)
    runs_with_never_ready: int
    never_ready_mean: float

    @classmethod
    def of(cls, outcomes: Sequence[RunOutcome]) -> Summary:
        pools: dict[str, list[float]] = {}
        hosts: dict[str, float] = {}
        fenced: dict[str, int] = {}
        for outcome in outcomes:
            for name, ratio in outcome.peak_pool_ratio.items():
                pools.setdefault(name, []).append(ratio)
            for name, ratio in outcome.peak_host_ratio.items():
                hosts[name] = max(hosts.get(name, 0.0), ratio)
            for name in outcome.fenced:
                fenced[name] = fenced.get(name, 0) + 1
        count = len(outcomes)
        return cls(
            runs=count,
            recovery=Spread.of([o.recovery for o in outcomes]),
            makespan_s=Spread.of([o.makespan_s for o in outcomes]),
            seconds_over_capacity=Spread.of([o.seconds_over_capacity for o in outcomes]),
            peak_pool_ratio={name: max(values) for name, values in pools.items()},
            peak_pool_ratio_p50={
                name: float(np.percentile(values, 50)) for name, values in pools.items()
            },
            peak_host_ratio=hosts,
            runs_over_capacity=sum(1 for o in outcomes if o.seconds_over_capacity > 0),
            runs_with_fencing=sum(1 for o in outcomes if o.fenced),
            fenced_hosts=fenced,
            runs_with_never_ready=sum(1 for o in outcomes if o.never_ready),
            never_ready_mean=(sum(len(o.never_ready) for o in outcomes) / count) if count else 0.0,
        )

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain JSON data."""
        return {
            "runs": self.runs,
            "recovery": self.recovery.to_dict(),
            "makespan": self.makespan_s.to_dict(),
            "seconds_over_capacity": self.seconds_over_capacity.to_dict(),
            "peak_pool_ratio": dict(self.peak_pool_ratio),
            "peak_pool_ratio_p50": dict(self.peak_pool_ratio_p50),
            "peak_host_ratio": dict(self.peak_host_ratio),
            "runs_over_capacity": self.runs_over_capacity,
            "fenced_hosts": dict(self.fenced_hosts),
            "runs_with_fencing": self.runs_with_fencing,
            "never_ready": {
                "runs": self.runs_with_never_ready,
                "mean_guests": self.never_ready_mean,
            },
        }
