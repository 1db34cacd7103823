"""The random draws of a Monte Carlo run, made once and shared by every strategy.

Strategies are compared on *common random numbers*: run k of every policy sees the same
boot-duration multipliers, the same failed start attempts and the same extra host
failure. Every draw is indexed by the guest's position in the problem and by the attempt
number, never by the order in which a policy happens to start guests, so what one
strategy does cannot shift the numbers another one sees.
"""

from __future__ import annotations

import math

import attrs
import numpy as np

from placement.model import Problem, SimulationSettings
from placement.plan import Action, Plan

#: Start attempts a draw covers per guest (the first start and every retry, and starts
#: after a guest was lost with its host). Further attempts reuse the last column.
ATTEMPTS = 4


@attrs.frozen(eq=False)
class RunDraws:
    """One run's draws. `duration_factor[g]`: guest g's boot takes `duration_s` times
    this; `fails[g, a]`: attempt a of guest g fails; `fail_point[g, a]`: the share of its
    work after which a failing attempt fails; `host_failure`: an extra (host index,
    instant) failure, or None."""

    run: int
    duration_factor: np.ndarray
    fails: np.ndarray
    fail_point: np.ndarray
    host_failure: tuple[int, float] | None


def _receiving_hosts(problem: Problem, plan: Plan) -> list[int]:
    """Hosts a guest starts or migrates to: where a failure hurts the recovery."""
    names = {
        a.host
        for a in plan.assignments
        if a.host is not None and a.action in (Action.START, Action.MIGRATE)
    }
    return sorted(problem.host_position(name) for name in names if problem.has_host(name))


def planned_makespan_s(plan: Plan) -> float:
    """The last planned ready instant (0 when nothing starts)."""
    return float(max((a.ready_s for a in plan.assignments if a.ready_s is not None), default=0))


def draw_runs(
    problem: Problem,
    plan: Plan,
    settings: SimulationSettings,
    runs: int,
    seed: int,
    first: int = 0,
) -> list[RunDraws]:
    """The draws of runs `first` .. `first + runs - 1` from `seed`: the same for every
    policy given the same seed, whichever process makes them.

    Boot durations: lognormal multipliers with median 1 and log-spread `settings.sigma`
    (exactly 1 when sigma is 0), times the guest's fixed `duration_factors` entry.
    """
    count = len(problem.guests)
    fixed = np.array(
        [settings.duration_factors.get(guest.name, 1.0) for guest in problem.guests], dtype=float
    )
    receiving = _receiving_hosts(problem, plan)
    horizon = max(planned_makespan_s(plan), 1.0)
    draws = []
    for run in range(first, first + runs):
        # One generator per run, seeded by (seed, run): run k is the same whatever the
        # number of runs, and runs may be computed in any order or process.
        rng = np.random.default_rng([seed, run])
        normal = rng.standard_normal(count)
        uniform_fail = rng.random((count, ATTEMPTS))
        fail_point = rng.uniform(0.05, 0.95, (count, ATTEMPTS))
        failure_roll, failure_host, failure_time = rng.random(3)
        factor = fixed * np.exp(settings.sigma * normal)  # exp(0) is exactly 1
        host_failure = None
        if receiving and failure_roll < settings.random_host_failure_probability:
            host = receiving[min(int(failure_host * len(receiving)), len(receiving) - 1)]
            host_failure = (host, float(math.floor(failure_time * horizon)))
        draws.append(
            RunDraws(
                run=run,
                duration_factor=factor,
                fails=uniform_fail < settings.start_failure_probability,
                fail_point=fail_point,
                host_failure=host_failure,
            )
        )
    return draws
