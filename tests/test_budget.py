"""The one time budget of a solve (placement/solvers/budget.py): parts never outlive
their parent, deterministic mode counts work and not the clock, the wall clock stays a
backstop that marks the run cut, and a whole solve keeps its wall-clock limit."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from ortools.sat.python import cp_model

from placement.check import check
from placement.codec import load_problem_file
from placement.model import Problem
from placement.plan import Plan
from placement.solvers import SolveOptions, solve
from placement.solvers import budget as budget_module
from placement.solvers.budget import DETERMINISTIC_TIME_PER_S, Budget
from placement.solvers.stop import StopToken

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class FakeClock:
    """A `time.perf_counter` stand-in that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_wall_mode_counts_the_clock_and_expires_at_the_deadline() -> None:
    clock = FakeClock()
    budget = Budget(10.0, clock=clock)
    clock.now += 4.0
    assert budget.remaining() == pytest.approx(6.0)
    assert not budget.expired
    clock.now += 6.0
    assert budget.remaining() == 0.0
    assert budget.expired
    assert not budget.wall_cut  # the wall clock is the limit itself here, not a backstop


def test_a_share_never_outlives_its_parent_and_leaves_the_rest_for_later() -> None:
    clock = FakeClock()
    parent = Budget(10.0, clock=clock)
    clock.now += 2.0
    part = parent.share(0.25)
    assert part.limit_s == pytest.approx(2.0)  # a quarter of the 8 s left
    assert part.deadline == pytest.approx(clock.now + 2.0)
    # The 6 s not handed over stay at the end of the parent's time.
    assert parent.deadline - part.deadline == pytest.approx(6.0)
    bigger = part.sub(50.0)
    assert bigger.limit_s == pytest.approx(2.0)
    assert bigger.deadline <= part.deadline
    clock.now += 2.0
    assert part.expired
    assert bigger.expired
    assert not parent.expired


def test_deterministic_mode_counts_work_not_the_clock() -> None:
    clock = FakeClock()
    budget = Budget(10.0, deterministic=True, clock=clock)
    part = budget.share(0.5)
    clock.now += 3.0  # a slow machine: time passes, no work is charged
    assert part.remaining() == pytest.approx(5.0)
    assert budget.remaining() == pytest.approx(10.0)
    part.charge(2.0)
    assert part.remaining() == pytest.approx(3.0)
    assert budget.remaining() == pytest.approx(8.0)  # a part's work counts for its parent
    assert not budget.wall_cut


def test_the_wall_backstop_ends_deterministic_work_and_marks_the_run_cut() -> None:
    clock = FakeClock()
    budget = Budget(10.0, deterministic=True, clock=clock)
    # The searches keep 2 s at the end of the wall time; a stage is half of them.
    searches = budget.leaving(2.0)
    stage = searches.share(0.5)
    assert stage.limit_s == pytest.approx(4.0)
    clock.now += 7.0  # a slow machine: past the stage's nominal time, no work charged
    assert not stage.expired  # the backstop is the solve's end (less what is kept)
    clock.now += 1.5
    assert stage.remaining() == pytest.approx(4.0)
    assert stage.expired
    assert searches.expired
    assert budget.wall_cut
    assert stage.wall_cut
    assert not budget.expired  # the 2 s kept are still there for what follows


def test_a_step_that_fits_the_work_but_not_the_wall_clock_is_a_cut() -> None:
    clock = FakeClock()
    budget = Budget(10.0, deterministic=True, clock=clock)
    assert budget.fits(9.0)
    clock.now += 4.0  # slow uncounted work: 6 s of wall time left, 10 s of work
    assert not budget.fits(11.0)  # too much work: an ordinary no
    assert not budget.wall_cut
    assert budget.fits(5.0)
    assert not budget.fits(7.0)  # the work is there, the wall time is not
    assert budget.wall_cut


def test_outside_deterministic_mode_a_part_ends_at_its_own_time() -> None:
    clock = FakeClock()
    budget = Budget(10.0, clock=clock)
    stage = budget.leaving(2.0).share(0.5)
    clock.now += 4.0
    assert stage.expired
    assert not budget.wall_cut


def test_a_stopped_budget_expires_without_a_cut() -> None:
    token = StopToken()
    budget = Budget(10.0, deterministic=True, stop=token)
    token.stop()
    assert budget.stopped
    assert budget.expired
    assert not budget.wall_cut


def test_cp_sat_limits_are_set_in_one_place() -> None:
    clock = FakeClock()
    wall = Budget(10.0, clock=clock)
    parameters = cp_model.CpSolver().parameters
    wall.limit_cpsat(parameters, 30.0)
    assert parameters.max_time_in_seconds == pytest.approx(10.0)  # within the deadline
    deterministic = Budget(10.0, deterministic=True, clock=clock)
    parameters = cp_model.CpSolver().parameters
    deterministic.limit_cpsat(parameters, 4.0)
    assert parameters.max_deterministic_time == pytest.approx(4.0 * DETERMINISTIC_TIME_PER_S)
    assert parameters.max_time_in_seconds == pytest.approx(10.0)  # the backstop


def test_a_cp_sat_search_is_charged_in_deterministic_time() -> None:
    model = cp_model.CpModel()
    x = [model.new_int_var(0, 10, "") for _ in range(6)]
    model.add(sum(x) == 25)
    model.maximize(x[0] * 3 + x[1])
    budget = Budget(5.0, deterministic=True)
    solver = cp_model.CpSolver()
    budget.limit_cpsat(solver.parameters, 1.0)
    solver.solve(model)
    budget.charge_cpsat(solver)
    charged = 5.0 - budget.remaining()
    assert charged == pytest.approx(solver.deterministic_time / DETERMINISTIC_TIME_PER_S)


def _single_host_restart() -> Problem:
    return load_problem_file(EXAMPLES / "single-host-restart.json")


def _two_deterministic_solves(problem: Problem, limit_s: float) -> list[Plan]:
    options = SolveOptions(time_limit_s=limit_s, deterministic=True)
    plans = []
    for _ in range(2):
        started = time.perf_counter()
        plan = solve(problem, "cpsat", options)
        # A behaviour test, not a speed figure: the bound leaves room for a loaded CI
        # machine (the contract is 1.05 x limit + 0.5 s; see `python -m bench wall`).
        assert time.perf_counter() - started < 3 * limit_s
        assert check(problem, plan).ok
        plans.append(plan)
    return plans


def _same(first: Plan, second: Plan) -> bool:
    return (first.assignments, first.unplaced, first.stages) == (
        second.assignments,
        second.unplaced,
        second.stages,
    )


def test_deterministic_solves_keep_the_wall_limit_and_repeat_unless_cut() -> None:
    first, second = _two_deterministic_solves(_single_host_restart(), 2.0)
    if not first.statistics.wall_cut and not second.statistics.wall_cut:
        assert _same(first, second)


def test_deterministic_solves_repeat_when_the_backstop_does_not_fire(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With deterministic time cheap enough for any machine the backstop stays quiet,
    and the two plans are the same (this one does not depend on the machine's load)."""
    monkeypatch.setattr(budget_module, "DETERMINISTIC_TIME_PER_S", 0.01)
    monkeypatch.setattr(budget_module, "DETERMINISTIC_TIME_PER_S_ONE_WORKER", 0.01)
    first, second = _two_deterministic_solves(_single_host_restart(), 2.0)
    assert not first.statistics.wall_cut
    assert not second.statistics.wall_cut
    assert _same(first, second)


def test_a_run_the_backstop_cuts_keeps_the_limit_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With deterministic time worth far more than the wall clock can give, the wall
    backstop ends the search: the plan is still verified, on time, and marked cut."""
    monkeypatch.setattr(budget_module, "DETERMINISTIC_TIME_PER_S", 1000.0)
    problem = _single_host_restart()
    started = time.perf_counter()
    plan = solve(problem, "cpsat", SolveOptions(time_limit_s=1.0, deterministic=True))
    assert time.perf_counter() - started < 4.0
    assert check(problem, plan).ok
    assert plan.statistics.wall_cut is True


def test_the_cli_says_when_the_backstop_cut_the_search(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from placement.cli import main
    from placement.cli_common import WALL_CUT_NOTE

    monkeypatch.setattr(budget_module, "DETERMINISTIC_TIME_PER_S", 1000.0)
    path = str(EXAMPLES / "single-host-restart.json")
    main(["solve", path, "--time-limit", "1", "--deterministic"])
    assert WALL_CUT_NOTE in capsys.readouterr().err
    monkeypatch.setattr(budget_module, "DETERMINISTIC_TIME_PER_S", 0.01)
    monkeypatch.setattr(budget_module, "DETERMINISTIC_TIME_PER_S_ONE_WORKER", 0.01)
    main(["solve", path, "--time-limit", "3", "--deterministic"])
    assert WALL_CUT_NOTE not in capsys.readouterr().err


def test_a_model_too_big_for_the_time_left_is_not_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """When building the full model would take more than half the search time, the seed
    stands (verified, with our bounds) and the solve returns at once."""
    from placement.solvers.cpsat import stages

    monkeypatch.setattr(stages, "_BUILD_S_PER_PAIR", 1.0)  # a second a pair
    problem = _single_host_restart()
    started = time.perf_counter()
    # (2 s: too short for a neighbourhood round, which would not fit either.)
    plan = solve(problem, "cpsat", SolveOptions(time_limit_s=2.0, deterministic=True))
    assert time.perf_counter() - started < 2.0
    assert check(problem, plan).ok
    assert plan.statistics.model_skipped is not None
    assert plan.statistics.returned == "greedy"
    assert all(stage.bound is not None for stage in plan.stages)
