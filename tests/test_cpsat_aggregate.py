"""The type-count model (placement.solvers.cpsat.aggregate): identical guests become one
type, counted per host; its plans pass the checker, never end worse than the incumbent,
and its bounds hold for the original problem when nothing was held out of it."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from placement.check import check
from placement.model import Guest, GuestState, Host, Objective, Problem, Schedule
from placement.plan import Plan
from placement.solvers import SolveOptions, solve
from placement.solvers.budget import Budget
from placement.solvers.cpsat import aggregate, strategy
from placement.solvers.cpsat.incumbent import greedy_incumbent

OPTIONS = SolveOptions(time_limit_s=3, deterministic=True, seed=2)


def _guest(name: str, ram_gib: int, vcpus: int, **kwargs: object) -> Guest:
    return Guest(name, {"ram_mib": ram_gib * 1024, "vcpus": vcpus}, **kwargs)  # type: ignore[arg-type]


def _pack(objective: tuple[str, ...] = ("placed", "balance")) -> Problem:
    """Four 64 GiB / 16-vCPU hosts; 12 guests of three shapes, four of each, and three
    database guests that must sit on different hosts."""
    hosts = [Host(f"h{i}", {"ram_mib": 64 * 1024, "vcpus": 16}) for i in range(4)]
    guests = [
        *(_guest(f"small{i}", 4, 2) for i in range(4)),
        *(_guest(f"mid{i}", 8, 4) for i in range(4)),
        *(_guest(f"big{i}", 24, 4) for i in range(4)),
        *(_guest(f"db{i}", 16, 4, anti_affinity=["db"]) for i in range(3)),
    ]
    return Problem(hosts, guests, objective=objective)


def _improve(problem: Problem, incumbent: Plan) -> tuple[Plan, dict[str, object]]:
    return aggregate.improve_placement(problem, OPTIONS, incumbent, Budget.of(OPTIONS))


def _key(problem: Problem, plan: Plan) -> list[float]:
    values = check(problem, plan).metrics["objectives"]
    return [-values[o.value] if o.maximise else values[o.value] for o in problem.objective]


def test_identical_guests_become_one_type_each() -> None:
    problem = _pack()
    incumbent = solve(problem, "first-fit", OPTIONS)
    _plan, metrics = _improve(problem, incumbent)
    assert metrics["types"] == 4  # small, mid, big, db
    assert metrics["units"] == 15
    assert metrics["pinned_units"] == 0


@pytest.mark.parametrize("stage", ["balance", "consolidate"])
def test_type_counts_reach_the_optimum_and_prove_it(stage: str) -> None:
    """Nothing runs, so the counts are the whole problem: both stages end where the pair
    model proves the optimum, and the type model's bounds equal the values."""
    problem = _pack(("placed", stage))
    incumbent = solve(problem, "first-fit", OPTIONS)
    plan, metrics = _improve(problem, incumbent)
    report = check(problem, plan)
    assert report.ok, report.violations
    assert _key(problem, plan) <= _key(problem, incumbent)
    full = solve(problem, "cpsat", SolveOptions(time_limit_s=5, deterministic=True, seed=1))
    assert full.status.value == "optimal"
    assert _key(problem, plan) == _key(problem, full)
    bounds = metrics["bounds"]
    assert isinstance(bounds, dict)
    values = report.metrics["objectives"]
    assert bounds["placed"] == values["placed"]
    assert bounds[stage] == pytest.approx(values[stage])


def test_running_guests_stay_where_the_incumbent_keeps_them() -> None:
    hosts = [Host(f"h{i}", {"ram_mib": 64 * 1024, "vcpus": 16}) for i in range(3)]
    running = [
        _guest(f"run{i}", 16, 4, current_host="h0", state=GuestState.RUNNING) for i in range(3)
    ]
    waiting = [_guest(f"new{i}", 16, 4) for i in range(6)]
    problem = Problem(hosts, [*running, *waiting], objective=("placed", "balance"))
    incumbent = solve(problem, "first-fit", OPTIONS)
    plan, metrics = _improve(problem, incumbent)
    assert check(problem, plan).ok
    assert metrics["pinned_units"] == 3
    assert "placed" not in metrics["bounds"]  # guests were held out: no bound of its own
    for guest in running:
        assignment = plan.assignment(guest.name)
        assert assignment is not None
        assert assignment.host == "h0"


def test_the_optimiser_takes_the_type_counts_beyond_the_pair_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(strategy, "MAX_MODEL_PAIRS", 0)
    # The greedy plan already meets our bound here: search the counts all the same.
    monkeypatch.setattr(strategy, "_meets_bounds", lambda *args: False)
    problem = _pack(("placed", "consolidate"))
    plan = solve(problem, "cpsat", OPTIONS)
    assert check(problem, plan).ok
    counted = plan.statistics.type_counts
    assert counted is not None
    assert counted.types == 4
    consolidate = plan.stage("consolidate")
    assert consolidate is not None
    assert consolidate.bound is not None


def test_no_type_counts_when_the_incumbent_meets_our_bounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Everyone placed on the fewest hosts our bound allows: nothing to count for."""
    monkeypatch.setattr(strategy, "MAX_MODEL_PAIRS", 0)
    problem = _pack(("placed", "consolidate"))
    incumbent = greedy_incumbent(problem, OPTIONS, Budget.of(OPTIONS))
    assert incumbent is not None
    assert strategy._meets_bounds(problem, incumbent, [Objective.PLACED, Objective.CONSOLIDATE])
    plan = solve(problem, "cpsat", OPTIONS)
    assert check(problem, plan).ok
    counted = plan.statistics.type_counts
    assert counted is not None
    assert counted.skipped is not None
    assert plan.stage("consolidate").value == plan.stage("consolidate").bound


@st.composite
def _packs(draw: st.DrawFn) -> Problem:
    hosts = [
        Host(f"h{i}", {"ram_mib": draw(st.sampled_from([32, 64])) * 1024, "vcpus": 16})
        for i in range(draw(st.integers(2, 4)))
    ]
    shapes = draw(
        st.lists(st.tuples(st.sampled_from([4, 8, 16]), st.integers(1, 4)), min_size=1, max_size=3)
    )
    guests = []
    for s, (ram, copies) in enumerate(shapes):
        for c in range(copies):
            classes = ["db"] if s == 0 and draw(st.booleans()) else []
            guests.append(_guest(f"g{s}_{c}", ram, 2, anti_affinity=classes, priority=s))
    stage = draw(st.sampled_from(["balance", "consolidate"]))
    return Problem(hosts, guests, objective=("placed", stage))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_packs())
def test_type_count_plans_pass_the_checker_and_never_get_worse(problem: Problem) -> None:
    incumbent = solve(problem, "best-fit", OPTIONS)
    one_s = Budget(1.0, deterministic=OPTIONS.deterministic)
    plan, metrics = aggregate.improve_placement(problem, OPTIONS, incumbent, one_s)
    report = check(problem, plan)
    assert report.ok, report.violations
    assert _key(problem, plan) <= _key(problem, incumbent)
    # With nothing held out, the bounds bound the plan.
    values = report.metrics["objectives"]
    for name, bound in metrics["bounds"].items():  # type: ignore[union-attr]
        if name == "placed":
            assert bound >= values[name]
        else:
            assert bound <= values[name] + 1e-9


def test_bounds_after_a_stage_the_schedule_cuts_short_are_dropped() -> None:
    """The counts know no boot schedule: with one start at a time and a 60 s horizon only
    one 60 s boot fits, so the counts' `placed` (4) is out of reach and their `balance`
    bound under it (0.4) would exceed the real optimum (0.2): it must not be reported."""
    hosts = [Host(f"h{i}", {"cpu": 10}) for i in range(2)]
    guests = [Guest(f"g{i}", {"cpu": 2}) for i in range(4)]
    problem = Problem(
        hosts,
        guests,
        schedule=Schedule(max_starts=1, horizon_s=60),
        objective=("placed", "balance"),
    )
    incumbent = solve(problem, "first-fit", OPTIONS)
    plan, metrics = _improve(problem, incumbent)
    assert check(problem, plan).ok
    bounds = metrics["bounds"]
    assert isinstance(bounds, dict)
    assert bounds["placed"] >= 1  # a relaxation: still an upper bound
    assert bounds.get("balance", 0.0) <= 0.2 + 1e-9


def test_a_frozen_guest_is_not_the_same_type_as_a_stopped_one() -> None:
    """h0 holds the frozen copy of f0, whose replacement may not start there; s (same
    shape, stopped) may. One type for both would give both f0's hosts or s's."""
    hosts = [Host("h0", {"cpu": 10}), Host("h1", {"cpu": 2})]
    frozen = Guest("f0", {"cpu": 2}, current_host="h0", state=GuestState.FROZEN)
    problem = Problem(hosts, [frozen, Guest("s", {"cpu": 2})], objective=("placed", "balance"))
    incumbent = solve(problem, "best-fit", OPTIONS)
    plan, metrics = _improve(problem, incumbent)
    assert metrics["types"] == 2
    assert check(problem, plan).ok
    assert metrics["bounds"]["placed"] >= check(problem, plan).metrics["objectives"]["placed"]  # type: ignore[index]
