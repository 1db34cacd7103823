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
from typing import Any

import attrs

from placement.model import Problem, SimulationSettings
from placement.plan import Plan
from placement.simulate.catalogue import POLICY_NAMES, policy_by_name
from placement.simulate.draws import RunDraws, draw_runs, planned_makespan_s
from placement.simulate.engine import (
    Controller,
    Decision,
    Event,
    EventKind,
    GuestStatus,
    World,
)
from placement.simulate.ledger import Ledger
from placement.simulate.outcome import RunOutcome, Spread, Summary
from placement.simulate.policies import (
    AllAtOnce,
    Batch,
    OpenLoop,
    Pacemaker,
    Policy,
    PriorityGroups,
    Proxmox,
    ReadinessGated,
    Serial,
)
from placement.simulate.replan import Replan

__all__ = [
    "POLICY_NAMES",
    "AllAtOnce",
    "Batch",
    "Controller",
    "Decision",
    "Event",
    "EventKind",
    "GuestStatus",
    "Ledger",
    "OpenLoop",
    "Pacemaker",
    "Policy",
    "PriorityGroups",
    "Proxmox",
    "ReadinessGated",
    "Replan",
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
        """Plain JSON data: `{"policy", "seed", "settings", "planned", "summary", "runs"}`
        (a ratio over a limit of 0, infinite, is null)."""
        from placement.codec import _converter, _plain

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
        # JSON has no infinity: a ratio over a limit of 0 is written as null.
        plain: dict[str, Any] = _plain(document)
        return plain


def run_once(
    problem: Problem,
    plan: Plan,
    controller: Controller,
    draws: RunDraws,
    settings: SimulationSettings | None = None,
    trace: bool = False,
) -> RunOutcome:
    """One run of `plan` under `controller` with `draws`; the building block of
    `simulate` and of the executor's simulated driver. `trace`: keep the pool demand
    over time in `RunOutcome.pool_trace` (for plots)."""
    settings = settings if settings is not None else problem.simulation
    world = World(problem, plan, settings, draws)
    if trace:
        world.trace = []
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
    jobs: int = 1,
    trace: bool = False,
    **overrides: Any,
) -> SimulationResult:
    """Run `plan` `runs` times under `policy` and summarise.

    `settings` defaults to the problem's `simulation` object; keyword `overrides` replace
    single fields of it (`sigma=0.3`, `contention="thrash"`, `fencing=True`, ...). The
    draws depend on `seed` and the run number only, so every policy and every plan of
    the same problem sees the same ones, and `jobs` worker processes (runs split into
    contiguous blocks) give the same outcomes as one. `trace`: keep each run's pool
    demand over time (`RunOutcome.pool_trace`, what `placement.plot` draws). Raises
    ValueError for an unknown policy or setting.
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1 (got {runs})")
    chosen = policy_by_name(policy) if isinstance(policy, str) else policy
    base = settings if settings is not None else problem.simulation
    try:
        final = attrs.evolve(base, **overrides) if overrides else base
    except TypeError as error:
        raise ValueError(f"unknown simulation setting: {error}") from error
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1 (got {jobs})")
    began = time.perf_counter()
    if jobs == 1 or runs < 2 * jobs:
        outcomes = _run_range(problem, plan, chosen, final, seed, 0, runs, trace)
    else:
        outcomes = _run_in_processes(problem, plan, chosen, final, seed, runs, jobs, trace)
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


def _run_range(
    problem: Problem,
    plan: Plan,
    policy: Policy,
    settings: SimulationSettings,
    seed: int,
    first: int,
    count: int,
    trace: bool = False,
) -> list[RunOutcome]:
    return [
        run_once(problem, plan, policy.controller(problem, plan), draws, settings, trace)
        for draws in draw_runs(problem, plan, settings, count, seed, first)
    ]


def _run_block(
    problem_document: dict[str, Any],
    plan_document: dict[str, Any],
    policy: Policy,
    seed: int,
    first: int,
    count: int,
    trace: bool,
) -> list[RunOutcome]:
    """A worker process's share: the problem and plan travel as JSON documents (the
    model's read-only mappings do not pickle), the settings inside the problem."""
    from placement.codec import load_plan, load_problem

    problem = load_problem(problem_document)
    plan = load_plan(plan_document)
    return _run_range(problem, plan, policy, problem.simulation, seed, first, count, trace)


def _run_in_processes(
    problem: Problem,
    plan: Plan,
    policy: Policy,
    settings: SimulationSettings,
    seed: int,
    runs: int,
    jobs: int,
    trace: bool,
) -> list[RunOutcome]:
    from concurrent.futures import ProcessPoolExecutor

    from placement.codec import dump_plan, dump_problem

    problem_document = dump_problem(attrs.evolve(problem, simulation=settings))
    plan_document = dump_plan(plan)
    size = -(-runs // jobs)
    blocks = [(first, min(size, runs - first)) for first in range(0, runs, size)]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [
            pool.submit(
                _run_block, problem_document, plan_document, policy, seed, first, count, trace
            )
            for first, count in blocks
        ]
        return [outcome for future in futures for outcome in future.result()]


def _planned(problem: Problem, plan: Plan) -> float:
    from placement.check import objective_values

    return objective_values(problem, plan).get("recovery", 0.0)
