"""The schedule stage at scale: the boots of a fixed placement re-timed.

The stage must never change where a guest runs, never worsen `recovery`, and every plan
it returns must pass the checker; on a failover whose list schedule is far from optimal
it must improve it.
"""

from __future__ import annotations

import random
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings

from bench.scenarios import SizeSpec, _mixed
from placement.bounds import StageBounds
from placement.check import check
from placement.model import Host, HostBoot, Objective, Problem
from placement.plan import Action, Plan, Unplaced
from placement.solvers import SolveOptions, solve
from placement.solvers.budget import Budget
from placement.solvers.cpsat import incumbent, large, schedule_lns, strategy
from tests.strategies import problems


@pytest.fixture(scope="module")
def failover_400() -> Problem:
    """A failover of 400 guests on 40 hosts, 5 of which failed: 44 guests restart under
    a SAN limit, a batch limit of 8 and a 2 s stagger (the L scenario, scaled down)."""
    spec = SizeSpec(400, 40, 5, stagger_s=2, max_starts=8, horizon_s=4 * 3600, fill=0.8)
    return _mixed(random.Random("T/0"), spec)


def _recovery(problem: Problem, plan: Plan) -> float:
    return float(check(problem, plan).metrics["objectives"]["recovery"])


def _hosts(plan: Plan) -> dict[str, str | None]:
    return {a.guest: a.host for a in plan.assignments}


def test_stage_improves_the_list_schedule_and_keeps_hosts(failover_400: Problem) -> None:
    problem = failover_400
    plan = solve(problem, "first-fit", SolveOptions())
    options = SolveOptions(workers=1, seed=0)
    improved, metrics = schedule_lns.improve_schedule(
        problem, plan, options, Budget.of(attrs.evolve(options, time_limit_s=3.0))
    )
    report = check(problem, improved)
    assert report.ok, [v.message for v in report.violations]
    # Only booting guests may change host.
    starting = {a.guest for a in plan.assignments if a.action is Action.START}
    assert {g: h for g, h in _hosts(improved).items() if g not in starting} == {
        g: h for g, h in _hosts(plan).items() if g not in starting
    }
    assert {a.guest: a.action for a in improved.assignments} == {
        a.guest: a.action for a in plan.assignments
    }
    before, after = _recovery(problem, plan), _recovery(problem, improved)
    # The priority rules alone took recovery from 37,250 to 34,055 here.
    assert after < 0.95 * before
    assert metrics["recovery"] == after
    # Never behind its own best priority rule: the windows start from it.
    assert after <= min(v for k, v in metrics.items() if k.startswith("rule-"))
    # The plan's own stage values are the checker's.
    values = report.metrics["objectives"]
    assert {s.name: s.value for s in improved.stages} == {
        s.name: float(values[s.name]) for s in improved.stages
    }
    # Placed and migrations are held; balance may only drop (boots spread).
    original = check(problem, plan).metrics["objectives"]
    for name in ("placed", "migrations"):
        assert values[name] == original[name]
    assert values["balance"] <= original["balance"]


def test_windows_improve_on_the_list_schedule(failover_400: Problem) -> None:
    problem = failover_400
    plan = solve(problem, "first-fit", SolveOptions())
    boots = schedule_lns.BootSchedule(problem, plan)
    found, summary = schedule_lns._search_windows(
        boots, list(boots.start), SolveOptions(workers=1), Budget(3.0)
    )
    assert summary["improved"] > 0
    assert boots.recovery(found) < boots.recovery(boots.start)
    retimed = schedule_lns._with_starts(problem, plan, boots, found)
    report = check(problem, retimed)
    assert report.ok, [v.message for v in report.violations]


def test_a_window_holds_every_boot_outside_it(failover_400: Problem) -> None:
    problem = failover_400
    plan = solve(problem, "first-fit", SolveOptions())
    boots = schedule_lns.BootSchedule(problem, plan)
    order = sorted(range(len(boots.units)), key=lambda u: boots.unit_start(boots.start, u))
    improved = 0
    # Windows of 8 units in a row: CP-SAT closes each in well under a second.
    for first in range(0, len(order) - 8, 4):
        free = order[first : first + 8]
        found, optimal = schedule_lns.solve_window(
            boots, boots.start, free, Budget(5.0), 5.0, SolveOptions(workers=1), 0, slack_s=600
        )
        assert optimal
        if found is None:
            continue
        improved += 1
        assert boots.recovery(found) < boots.recovery(boots.start)
        held = [b for b in range(len(boots.guests)) if boots.unit_of[b] not in set(free)]
        assert all(found[b] == boots.start[b] for b in held)
        assert check(problem, schedule_lns._with_starts(problem, plan, boots, found)).ok
    assert improved > 0, "the list schedule leaves room in some window"


def test_spread_boots_lowers_balance_at_the_same_times(failover_400: Problem) -> None:
    problem = failover_400
    plan = solve(problem, "first-fit", SolveOptions())
    spread = schedule_lns.spread_boots(problem, plan)
    assert spread is not None, "first fit fills some host to the brim"
    report = check(problem, spread)
    assert report.ok, [v.message for v in report.violations]
    before = check(problem, plan).metrics["objectives"]
    after = report.metrics["objectives"]
    assert after["balance"] < before["balance"]
    assert after["recovery"] == before["recovery"]
    times = {a.guest: (a.start_s, a.ready_s, a.action) for a in plan.assignments}
    assert {a.guest: (a.start_s, a.ready_s, a.action) for a in spread.assignments} == times
    moved = {a.guest for a in spread.assignments} - {
        a.guest for a in spread.assignments if a in plan.assignments
    }
    assert moved
    assert all(times[g][2] is Action.START for g in moved)


def test_boot_limits_on_one_host() -> None:
    host = Host(name="h", capacity={"ram_mib": 1}, boot=HostBoot(cpu=4, max_starts=2))
    # Two 2-cpu boots side by side fit; a third overlapping one breaks both limits.
    assert schedule_lns._boot_limits_hold(host, [(0, 10, 2)], [(5, 15, 2)])
    assert not schedule_lns._boot_limits_hold(host, [(0, 10, 2), (0, 10, 2)], [(5, 15, 1)])
    # A boot starting as another is ready does not overlap it.
    assert schedule_lns._boot_limits_hold(host, [(0, 10, 4)], [(10, 20, 4)])
    assert not schedule_lns._boot_limits_hold(host, [(0, 10, 4)], [(9, 20, 1)])


def test_deterministic_mode_repeats_itself(failover_400: Problem) -> None:
    problem = failover_400
    plan = solve(problem, "first-fit", SolveOptions())
    options = SolveOptions(workers=1, seed=3, deterministic=True)
    runs = [
        schedule_lns.improve_schedule(problem, plan, options, Budget(0.3, deterministic=True))[0]
        for _ in range(2)
    ]
    assert runs[0].assignments == runs[1].assignments


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(problem=problems())
def test_never_worse_and_always_checked(problem: Problem) -> None:
    # Random problems bring migrations, frozen guests, start groups and `after` chains.
    plan = solve(problem, "best-fit", SolveOptions())
    if not check(problem, plan).ok:
        return  # the stage starts from verified plans only
    improved, _ = schedule_lns.improve_schedule(problem, plan, SolveOptions(workers=1), Budget(0.5))
    report = check(problem, improved)
    assert report.ok, [v.message for v in report.violations]
    assert _recovery(problem, improved) <= _recovery(problem, plan)
    values = check(problem, improved).metrics["objectives"]
    original = check(problem, plan).metrics["objectives"]
    assert values["placed"] == original["placed"]
    assert values["migrations"] == original["migrations"]


def test_large_path_runs_the_stage(failover_400: Problem, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(strategy, "MAX_MODEL_PAIRS", 0)
    monkeypatch.setattr(large, "MIN_ROUND_S", 0.5)
    problem = failover_400
    plan = solve(problem, "cpsat", SolveOptions(time_limit_s=6.0, workers=1, seed=0))
    report = check(problem, plan)
    assert report.ok, [v.message for v in report.violations]
    scheduled = plan.statistics.schedule_search
    assert scheduled is not None
    assert scheduled.boots == sum(1 for a in plan.assignments if a.action is Action.START)
    assert scheduled.list_recovery is not None
    assert scheduled.recovery is not None
    assert scheduled.recovery <= scheduled.list_recovery
    best_list = min(
        _recovery(problem, solve(problem, name, SolveOptions()))
        for name in ("first-fit", "best-fit", "worst-fit")
    )
    assert _recovery(problem, plan) < best_list


def test_seeding_stops_once_the_placement_stages_are_settled(
    failover_400: Problem, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem = failover_400
    assert strategy._placement_settled(problem) is None  # 14,000 pairs: the full model's
    monkeypatch.setattr(strategy, "SCHEDULE_ONLY_PAIRS", 0)
    settled = strategy._placement_settled(problem)
    assert settled is not None
    plan = solve(problem, "best-fit", SolveOptions())
    assert not plan.unplaced
    assert settled(plan)
    # A plan that leaves a guest out is not settled.
    left_out = attrs.evolve(
        plan,
        assignments=[a for a in plan.assignments if a.guest != plan.assignments[0].guest],
        unplaced=(Unplaced(plan.assignments[0].guest, "left out for the test"),),
    )
    assert not settled(left_out)
    seeds: list[str] = []

    def enough(best: Plan) -> bool:
        seeds.append(best.solver)
        return settled(best)

    options = SolveOptions(time_limit_s=10.0)
    first = incumbent.greedy_incumbent(problem, options, Budget.of(options), enough=enough)
    assert first is not None
    assert seeds == ["best-fit"], "the first seed settled placement: no other ran"


def test_full_model_starts_from_the_retimed_seed(
    failover_400: Problem, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem = failover_400
    monkeypatch.setattr(strategy, "RETIME_SEED_BOOTS", 1)
    # As when a stage before `recovery` is left to search (else the model is skipped).
    monkeypatch.setattr(strategy, "_only_the_schedule_left", lambda *args: False)
    retimed: list[float] = []
    original = schedule_lns.improve_schedule

    def spy(*args: Any, **kwargs: Any) -> tuple[Plan, dict[str, Any]]:
        found = original(*args, **kwargs)
        retimed.append(_recovery(problem, found[0]))
        return found

    monkeypatch.setattr(schedule_lns, "improve_schedule", spy)
    plan = solve(problem, "cpsat", SolveOptions(time_limit_s=5.0, workers=1, seed=0))
    report = check(problem, plan)
    assert report.ok, [v.message for v in report.violations]
    assert retimed, "the seed went through the schedule stage"
    # The full model never ends behind its (re-timed) start.
    assert _recovery(problem, plan) <= retimed[0]


def test_boot_heavy_failover_with_placement_settled_skips_the_full_model(
    failover_400: Problem, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem = failover_400
    monkeypatch.setattr(strategy, "RETIME_SEED_BOOTS", 1)
    options = SolveOptions(time_limit_s=4.0, workers=1, seed=0)
    seed = incumbent.greedy_incumbent(problem, options, Budget.of(options))
    assert seed is not None
    assert not seed.unplaced
    plan = solve(problem, "cpsat", options)
    report = check(problem, plan)
    assert report.ok, [v.message for v in report.violations]
    assert not plan.unplaced
    statistics = plan.statistics
    assert statistics.model is None, "the full model was not built"
    assert not statistics.stages
    assert statistics.model_skipped is not None
    assert "meets our bounds" in statistics.model_skipped
    assert statistics.schedule_search is not None
    # The schedule stage re-timed the seed's boots: never worse than the seed.
    assert _recovery(problem, plan) <= _recovery(problem, seed)
    # The plan's recovery bound (ours, or the LP's when it fits) stays below its value.
    recovery = plan.stage("recovery")
    assert recovery is not None
    assert recovery.bound is not None
    held = {k: v for k, v in plan.stage_values().items() if k in ("placed", "migrations")}
    own = StageBounds(problem)(Objective.RECOVERY, held)
    assert own is not None
    assert own <= recovery.bound <= recovery.value


def test_the_full_model_runs_when_a_stage_before_recovery_is_open(
    failover_400: Problem,
) -> None:
    problem = failover_400
    # The seed (which places everyone) meets our bound on `placed`, not on `balance`.
    reordered = attrs.evolve(
        problem, objective=(Objective.PLACED, Objective.BALANCE, Objective.RECOVERY)
    )
    options = SolveOptions(time_limit_s=4.0, workers=1, seed=0)
    seed = incumbent.greedy_incumbent(reordered, options, Budget.of(options))
    assert seed is not None
    assert not strategy._only_the_schedule_left(reordered, seed, StageBounds(reordered))
    assert strategy._only_the_schedule_left(problem, seed, StageBounds(problem))


def test_a_big_model_counts_as_a_big_schedule(
    failover_400: Problem, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem = failover_400
    seed = solve(problem, "best-fit", SolveOptions())
    # 44 boots on 14,000 pairs: the full model's, by boots and by pairs.
    assert not strategy._schedule_dominates(problem, seed)
    monkeypatch.setattr(strategy, "SCHEDULE_ONLY_PAIRS", 14_000)
    assert strategy._schedule_dominates(problem, seed)
    monkeypatch.setattr(strategy, "SCHEDULE_ONLY_PAIRS", 14_001)
    assert not strategy._schedule_dominates(problem, seed)
    monkeypatch.setattr(strategy, "RETIME_SEED_BOOTS", 44)
    assert strategy._schedule_dominates(problem, seed)
