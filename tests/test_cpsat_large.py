"""The optimiser beyond the full pair model: neighbourhoods of the incumbent.

The large path is forced on small problems by lowering `MAX_MODEL_PAIRS`, so the same
properties are checked as for the full model: plans pass the checker, are never worse
than the greedy start, and carry bounds of the original problem.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings

from bench.scenarios import generate
from placement.bounds import StageBounds
from placement.check import check
from placement.indexing import units
from placement.model import Objective, Problem
from placement.plan import Plan
from placement.solvers import SolveOptions, solve
from placement.solvers.cpsat import large, strategy
from tests.strategies import problems

OPTIONS = SolveOptions(time_limit_s=8.0, workers=2, seed=1)


@pytest.fixture
def force_large(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(strategy, "MAX_MODEL_PAIRS", 0)
    monkeypatch.setattr(large, "MIN_ROUND_S", 0.5)


def _values(problem: Problem, plan: Plan) -> list[float]:
    objectives = check(problem, plan).metrics["objectives"]
    return [float(objectives[o.value]) for o in problem.objective]


def _lexicographically_at_least_as_good(problem: Problem, a: Plan, b: Plan) -> bool:
    for objective, value_a, value_b in zip(
        problem.objective, _values(problem, a), _values(problem, b), strict=True
    ):
        if abs(value_a - value_b) > 1e-9:
            return value_a > value_b if objective.maximise else value_a < value_b
    return True


def test_restriction_keeps_the_incumbent_and_settles_running_guests() -> None:
    problem = generate("S", 0)
    incumbent = solve(problem, "best-fit", SolveOptions())
    restricted, movers, pairs = large.restrict(problem, incumbent, random.Random(0))
    # The incumbent is a plan of the restricted problem: the checker accepts it there.
    assert check(restricted, incumbent).ok
    hosts_of = {a.guest: a.host for a in incumbent.assignments}
    settled = 0
    for guest, original in zip(restricted.guests, problem.guests, strict=True):
        assert guest.hosts is not None
        if problem.runs_now(original) and hosts_of[original.name] == original.current_host:
            assert guest.hosts == {original.current_host}
            settled += 1
        elif hosts_of[original.name] is not None:
            assert hosts_of[original.name] in guest.hosts
    settled_units = sum(
        1
        for members in units(problem)
        if all(restricted.guest(g.name).hosts == {g.current_host} for g in members)
        and all(problem.runs_now(g) for g in members)
    )
    assert settled > 0
    assert movers == len(units(problem)) - settled_units
    # One pair per unit and candidate host (members of a together group share theirs).
    assert pairs == sum(len(restricted.guest(m[0].name).hosts or ()) for m in units(problem))


def test_freed_hosts_let_running_guests_move() -> None:
    problem = generate("S", 1)
    incumbent = solve(problem, "best-fit", SolveOptions())
    _, movers_before, _ = large.restrict(problem, incumbent, random.Random(0))
    restricted, movers_after, _ = large.restrict(
        problem, incumbent, random.Random(0), freed_hosts=2
    )
    assert movers_after > movers_before
    running = [g for g in restricted.guests if problem.runs_now(problem.guest(g.name))]
    assert any(len(g.hosts or ()) > 1 for g in running)


@pytest.mark.usefixtures("force_large")
def test_large_path_beats_or_equals_its_start_with_original_bounds() -> None:
    problem = generate("S", 0)
    plan = solve(problem, "cpsat", OPTIONS)
    report = check(problem, plan)
    assert report.ok, [v.message for v in report.violations]
    assert plan.statistics.neighbourhoods, "at least one neighbourhood was searched"
    greedy = solve(problem, "best-fit", SolveOptions())
    assert _lexicographically_at_least_as_good(problem, plan, greedy)
    # Every stage carries the bound placement.bounds proves on the whole problem; the
    # recovery stage's may be tightened by the time-indexed LP (recovery_lp_stage.py).
    stage_bounds = StageBounds(problem)
    held: dict[str, float] = {}
    for stage, objective in zip(plan.stages, problem.objective, strict=True):
        ours = stage_bounds(objective, held)
        if objective is Objective.RECOVERY:
            assert ours is not None
            assert stage.bound is not None
            assert ours <= stage.bound <= stage.value
        else:
            assert stage.bound == ours
        held[objective.value] = stage.value
        if objective is Objective.PLACED:
            assert stage.value <= stage.bound + 1e-9
        elif stage.bound is not None:
            assert stage.value >= stage.bound - 1e-9


@pytest.mark.usefixtures("force_large")
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(problem=problems())
def test_large_path_plans_pass_the_checker(problem: Problem) -> None:
    options = SolveOptions(time_limit_s=2.0, workers=1, seed=0)
    plan = solve(problem, "cpsat", options)
    report = check(problem, plan)
    assert report.ok, [v.message for v in report.violations]
    unplaced = {u.guest for u in plan.unplaced}
    assert unplaced == {a.guest for a in plan.assignments if a.host is None}
