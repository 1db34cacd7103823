"""Sampled list schedules and double justification on pure schedules
(`placement.solvers.rcpsp_heuristics`), and the bounds the lean path stops at."""

from __future__ import annotations

import random
from pathlib import Path

import attrs
import pytest

from bench import psplib
from placement.bounds import makespan_lower_bound
from placement.check import check
from placement.model import BootProfile, Guest, Host, Problem, Schedule
from placement.plan import Action, Assignment, Plan, Status
from placement.solvers import SolveOptions
from placement.solvers.budget import Budget
from placement.solvers.cpsat import pure
from placement.solvers.rcpsp_heuristics import (
    Project,
    best_schedule,
    justify,
    makespan,
    sampled_order,
    serial_schedule,
    topological,
    windows,
)

PSPLIB = Path(__file__).parent.parent / "bench" / "data" / "psplib"
# Known optima (j30_reference.csv: PSPLIB, CP Optimizer and OptalCP agree).
J30_OPTIMA = {"j301_1": 43, "j3013_2": 62, "j3029_9": 97, "j3045_3": 92, "j3046_1": 59}


def j30(name: str) -> Problem:
    """A PSPLIB j30 instance (30 jobs, 4 resources) as a boot schedule."""
    return psplib.to_problem(psplib.read_sm(PSPLIB / "j30" / f"{name}.sm"))


def as_plan(project: Project, start: list[int]) -> Plan:
    assignments = [
        Assignment(name, psplib.HOST_NAME, Action.START, s, s + d)
        for name, s, d in zip(project.names, start, project.durations, strict=True)
    ]
    return Plan(status=Status.FEASIBLE, solver="test", runtime_s=0.0, assignments=assignments)


def checked_makespan(problem: Problem, project: Project, start: list[int]) -> int:
    """The schedule's makespan as the checker measures it; fails if the checker does."""
    report = check(problem, as_plan(project, start))
    assert report.ok, [v.message for v in report.violations[:3]]
    value = int(report.metrics["objectives"]["makespan"])
    assert value == makespan(project, start)
    return value


def test_the_reference_table_holds_the_optima_the_tests_use() -> None:
    reference = psplib.load_reference(PSPLIB / "j30_reference.csv")
    for name, optimum in J30_OPTIMA.items():
        assert reference[name].optimal
        assert reference[name].upper == optimum


@pytest.mark.parametrize("name", sorted(J30_OPTIMA))
def test_justification_never_lengthens_a_schedule_and_keeps_it_feasible(name: str) -> None:
    problem = j30(name)
    project = Project.of(problem)
    rng = random.Random(7)
    shorter = 0
    for _ in range(10):
        # Random activity lists give poor schedules with room to justify.
        order = sampled_order(project, [0] * len(project.names), rng)
        start = serial_schedule(project, order)
        before = checked_makespan(problem, project, start)
        after = checked_makespan(problem, project, justify(project, start))
        assert J30_OPTIMA[name] <= after <= before
        shorter += after < before
    assert shorter > 0


def test_the_sampled_schedule_is_feasible_and_at_least_as_short_as_its_seed() -> None:
    problem = j30("j3013_2")
    project = Project.of(problem)
    seed = serial_schedule(project, topological(project))
    found = best_schedule(project, [seed], samples=30, seed=0)
    assert J30_OPTIMA["j3013_2"] <= checked_makespan(problem, project, found)
    assert makespan(project, found) < makespan(project, seed)
    assert found == best_schedule(project, [seed], samples=30, seed=0)


def test_sampling_ends_at_the_lower_bound_or_when_told() -> None:
    problem = j30("j301_1")
    project = Project.of(problem)
    seed = serial_schedule(project, topological(project))
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 3

    best_schedule(project, [seed], samples=1000, seed=0, stop=stop)
    assert len(calls) == 4
    calls.clear()
    best_schedule(project, [seed], samples=1000, seed=0, lower_bound=10**6, stop=stop)
    assert not calls


@pytest.mark.parametrize("name", sorted(J30_OPTIMA))
def test_the_makespan_lower_bound_is_at_most_the_optimum(name: str) -> None:
    problem = j30(name)
    bound = makespan_lower_bound(problem, problem.guests)
    assert 0 < bound <= J30_OPTIMA[name]


def test_the_start_windows_hold_every_schedule_that_ends_in_time() -> None:
    problem = j30("j3029_9")
    project = Project.of(problem)
    rng = random.Random(3)
    for _ in range(5):
        start = justify(project, serial_schedule(project, sampled_order(project, [0] * 30, rng)))
        length = makespan(project, start)
        for (earliest, latest), s in zip(windows(project, length), start, strict=True):
            assert earliest <= s <= latest
    # A window is tight: the critical path's jobs have no slack at the path's length.
    heads = windows(project, 0)
    critical = max(e + d for (e, _), d in zip(heads, project.durations, strict=True))
    assert any(e == lt for e, lt in windows(project, critical))


def chain(objective: list[str], max_starts: int | None = None) -> Problem:
    """Four one-second boots on one pool of 2, the last after the first."""
    guests = [
        Guest(
            name=f"g{i}",
            demand={},
            hosts=(psplib.HOST_NAME,),
            boot=BootProfile(duration_s=1 + i % 2, load={"p": 1}, after=("g0",) if i == 3 else ()),
        )
        for i in range(4)
    ]
    return Problem(
        hosts=[Host(name=psplib.HOST_NAME, capacity={})],
        guests=guests,
        boot_pools={"p": 2},
        schedule=Schedule(horizon_s=100, max_starts=max_starts),
        objective=objective,
    )


def test_the_batch_limit_is_a_resource_of_the_project() -> None:
    problem = chain(["placed", "makespan"], max_starts=1)
    project = Project.of(problem)
    start = best_schedule(project, [], samples=5, seed=0)
    # One at a time: the boots' durations add up.
    assert checked_makespan(problem, project, start) == sum(project.durations)


def test_justification_serves_the_makespan_only() -> None:
    options = SolveOptions(time_limit_s=2, deterministic=True)
    for objective, expected in ((["placed", "makespan"], True), (["placed", "recovery"], False)):
        problem = chain(objective)
        assert pure.pure_kind(problem) is pure.PureKind.SCHEDULE
        seed = pure._best_seed(problem, options, pure.PureKind.SCHEDULE, Budget.of(options))
        assert seed is not None
        found = pure._justified(problem, seed, Budget.of(options), 0)
        assert (found is not None) is expected
        if found is not None:
            assert check(problem, attrs.evolve(found, solver="cpsat")).ok
