"""Recovery as it happens: run a plan through the physics of a boot storm.

    result = simulate(problem, plan, policy="readiness-gated", runs=100, sigma=0.3)
    result.summary.recovery.p95, result.summary.peak_pool_ratio

A plan is a forecast made in an ideal world. `simulate` runs it against boots that take
longer or shorter than planned, shared storage that slows every boot when it is
overloaded (and, with `thrash`, delivers less), start commands that return before the
guest is up, failed starts, hosts fenced under overload and hosts that fail mid-way; a
*policy* decides who starts when, as an HA tool would (docs/simulation.md). Runs use
common random numbers: run k of every policy and plan sees the same draws, so two
strategies are compared on the same luck.

The physics is in `engine`, the draws in `draws`, the policies in `policies`, the
results in `outcome`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import attrs

from placement.model import Problem, SimulationSettings
from placement.plan import Plan
from placement.simulate.draws import RunDraws, draw_runs, planned_makespan_s
from placement.simulate.engine import (
    Controller,
    Decision,
    Event,
    EventKind,
    GuestStatus,
    World,
)
from placement.simulate.outcome import RunOutcome, Spread, Summary
from placement.simulate.policies import (
    POLICY_NAMES,
    AllAtOnce,
    Batch,
    OpenLoop,
    Pacemaker,
    Policy,
    PriorityGroups,
    Proxmox,
    ReadinessGated,
    Serial,
    policy_by_name,
)

__all__ = [
    "POLICY_NAMES",
    "AllAtOnce",
    "Batch",
    "Controller",
    "Decision",
    "Event",
    "EventKind",
    "GuestStatus",
    "OpenLoop",
    "Pacemaker",
    "Policy",
    "PriorityGroups",
    "Proxmox",
    "ReadinessGated",
    "RunDraws",
    "RunOutcome",
    "Serial",
    "SimulationResult",
    "Spread",
    "Summary",
    "World",
    "draw_runs",
    "policy_by_name",
    "run_once",
    "simulate",
]

#: A run stops at the latest this many times the horizon (a boot on a resource that
#: delivers nothing would otherwise never end).
_UNTIL_HORIZONS = 10.0


@attrs.frozen
class SimulationResult:
    """Every run's outcome, their summary, and what was simulated."""

    policy: str
    settings: SimulationSettings
    seed: int
    outcomes: tuple[RunOutcome, ...]
    summary: Summary
    planned_recovery: float
    planned_makespan_s: float
    runtime_s: float

    def to_dict(self, runs: bool = True) -> dict[str, Any]:
        """Plain JSON data: `{"policy", "seed", "settings", "planned", "summary", "runs"}`."""
        from placement.codec import _converter

        document: dict[str, Any] = {
            "policy": self.policy,
            "seed": self.seed,
            "settings": _converter.unstructure(self.settings),
            "planned": {"recovery": self.planned_recovery, "makespan_s": self.planned_makespan_s},
            "summary": self.summary.to_dict(),
            "runtime_s": self.runtime_s,
        }
        if runs:
            document["runs"] = [outcome.to_dict() for outcome in self.outcomes]
        return document


def run_once(
    problem: Problem,
    plan: Plan,
    controller: Controller,
    draws: RunDraws,
    settings: SimulationSettings | None = None,
) -> RunOutcome:
    """One run of `plan` under `controller` with `draws`; the building block of
    `simulate` and of the executor's simulated driver."""
    settings = settings if settings is not None else problem.simulation
    world = World(problem, plan, settings, draws)
    until = _UNTIL_HORIZONS * max(float(problem.schedule.horizon_s), planned_makespan_s(plan), 1.0)
    world.run(controller, until)
    return RunOutcome.of(world, problem, draws.run)


def simulate(
    problem: Problem,
    plan: Plan,
    policy: Policy | str = "open-loop",
    *,
    runs: int = 1,
    seed: int = 0,
    settings: SimulationSettings | None = None,
    **overrides: Any,
) -> SimulationResult:
    """Run `plan` `runs` times under `policy` and summarise.

    `settings` defaults to the problem's `simulation` object; keyword `overrides` replace
    single fields of it (`sigma=0.3`, `contention="thrash"`, `fencing=True`, ...). The
    draws depend on `seed` and the run number only, so every policy and every plan of
    the same problem sees the same ones. Raises ValueError for an unknown policy or
    setting.
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1 (got {runs})")
    chosen = policy_by_name(policy) if isinstance(policy, str) else policy
    base = settings if settings is not None else problem.simulation
    try:
        final = attrs.evolve(base, **overrides) if overrides else base
    except TypeError as error:
        raise ValueError(f"unknown simulation setting: {error}") from error
    began = time.perf_counter()
    outcomes = [
        run_once(problem, plan, chosen.controller(problem, plan), draws, final)
        for draws in draw_runs(problem, plan, final, runs, seed)
    ]
    planned = _planned(problem, plan)
    return SimulationResult(
        policy=chosen.name,
        settings=final,
        seed=seed,
        outcomes=tuple(outcomes),
        summary=Summary.of(outcomes),
        planned_recovery=planned,
        planned_makespan_s=planned_makespan_s(plan),
        runtime_s=time.perf_counter() - began,
    )


def _planned(problem: Problem, plan: Plan) -> float:
    from placement.check import objective_values

    return objective_values(problem, plan).get("recovery", 0.0)


def policies(names: Sequence[str]) -> list[Policy]:
    """The policies named (see `policy_by_name`)."""
    return [policy_by_name(name) for name in names]
