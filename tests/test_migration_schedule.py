"""Baselines time live migrations: hand-checkable evacuations, then properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from placement.check import check
from placement.model import Guest, Host, MigrationSettings, Problem
from placement.plan import Action, Plan
from placement.rules import rules_in_family
from placement.solvers import SolveOptions, available_solvers, solve
from placement.solvers.migration_schedule import time_migrations
from tests.strategies import problems

GIB = 1024
SCHEDULES = ("list", "all-at-once", "serial:30", "batch:2")
_BASELINES = [info.name for info in available_solvers() if info.kind != "optimiser"]


def host(name: str, gib: int = 16, **fields: Any) -> Host:
    return Host(name=name, capacity={"ram_mib": gib * GIB}, **fields)


def running(name: str, on: str, gib: int = 2, **fields: Any) -> Guest:
    return Guest(
        name=name, demand={"ram_mib": gib * GIB}, state="running", current_host=on, **fields
    )


def moves(plan: Plan) -> dict[str, tuple[int | None, int | None]]:
    return {a.guest: (a.start_s, a.ready_s) for a in plan.assignments if a.action is Action.MIGRATE}


def assert_valid(problem: Problem, plan: Plan) -> None:
    report = check(problem, plan)
    assert report.ok, [v.message for v in report.violations]


def evacuation(**limits: Any) -> Problem:
    """h0 goes into maintenance with three running 2 GiB guests; h1 and h2 are empty.
    A move copies 2048 MiB at 1000 MiB/s after 5 s of setup: 5 + 3 = 8 s."""
    return Problem(
        hosts=[host("h0", state="maintenance"), host("h1"), host("h2")],
        guests=[running(f"r{i}", "h0", priority=3 - i) for i in range(3)],
        migration=MigrationSettings(**limits),
    )


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_one_move_per_host_at_a_time_serialises_an_evacuation(schedule: str) -> None:
    problem = evacuation(max_per_host=1)
    plan = solve(problem, "first-fit", SolveOptions(schedule=schedule))
    assert_valid(problem, plan)
    # Every move leaves h0, so they run one after the other, highest priority first.
    assert moves(plan) == {"r0": (0, 8), "r1": (8, 16), "r2": (16, 24)}
    report = check(problem, plan)
    assert report.metrics["migrations"]["done_s"] == 24  # the sum of the three durations
    assert report.metrics["objectives"]["makespan"] == 24


def test_without_limits_an_evacuation_moves_everything_at_once() -> None:
    problem = evacuation()
    plan = solve(problem, "first-fit")
    assert_valid(problem, plan)
    assert moves(plan) == {"r0": (0, 8), "r1": (0, 8), "r2": (0, 8)}


def test_cluster_wide_limit_serialises_moves_from_different_hosts() -> None:
    problem = Problem(
        hosts=[host("h0", state="maintenance"), host("h1", state="maintenance"), host("h2")],
        guests=[running("a", "h0", priority=1), running("b", "h1")],
        migration=MigrationSettings(max_total=1, bandwidth_mib_s=512, setup_s=0),
    )
    plan = solve(problem, "best-fit")
    assert_valid(problem, plan)
    assert moves(plan) == {"a": (0, 4), "b": (4, 8)}


def test_migration_load_on_a_pool_serialises_moves() -> None:
    problem = Problem(
        hosts=[host("h0", state="maintenance"), host("h1")],
        guests=[running("a", "h0", priority=1), running("b", "h0")],
        boot_pools={"network": 1},
        migration=MigrationSettings(load={"network": 1}),
    )
    plan = solve(problem, "first-fit")
    assert_valid(problem, plan)
    assert moves(plan) == {"a": (0, 8), "b": (8, 16)}


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_a_boot_waits_for_the_migration_that_frees_its_room(schedule: str) -> None:
    """h0 (4 GiB) runs r (3 GiB), which may no longer run there; s (3 GiB, allowed only
    on h0) can boot once r's 5 + ceil(3072 / 1000) = 9 s move to h1 is done."""
    problem = Problem(
        hosts=[host("h0", 4), host("h1", 4)],
        guests=[
            running("r", "h0", 3, avoid_hosts=["h0"]),
            Guest(name="s", demand={"ram_mib": 3 * GIB}, hosts=["h0"]),
        ],
    )
    plan = solve(problem, "first-fit", SolveOptions(schedule=schedule))
    assert_valid(problem, plan)
    assert moves(plan) == {"r": (0, 9)}
    start = plan.assignment("s")
    assert start is not None
    assert start.host == "h0"
    assert start.start_s == 9


def test_a_guest_that_cannot_be_migrated_is_stopped_with_the_reason() -> None:
    problem = Problem(
        hosts=[host("h0", state="maintenance"), host("h1")],
        guests=[running("local-disk", "h0", movable=False), running("web", "h0")],
    )
    for name in _BASELINES:
        plan = solve(problem, name)
        assert_valid(problem, plan)
        stopped = plan.assignment("local-disk")
        assert stopped is not None
        assert stopped.action is Action.STOP
        reason = {u.guest: u.reason for u in plan.unplaced}["local-disk"]
        assert "not movable" in reason
        assert "maintenance" in reason


def test_an_immovable_guest_keeps_its_host_before_a_movable_one() -> None:
    """h0 (4 GiB) holds two 3 GiB guests of one priority; the one that cannot move stays."""
    problem = Problem(
        hosts=[host("h0", 4), host("h1", 4)],
        guests=[running("movable", "h0", 3), running("pinned", "h0", 3, movable=False)],
    )
    plan = solve(problem, "first-fit")
    assert_valid(problem, plan)
    assert moves(plan) == {"movable": (0, 9)}


def test_the_move_budget_keeps_the_highest_priorities() -> None:
    problem = evacuation(max_moves=1)
    plan = solve(problem, "worst-fit")
    assert_valid(problem, plan)
    assert list(moves(plan)) == ["r0"]
    reasons = {u.guest: u.reason for u in plan.unplaced}
    assert set(reasons) == {"r1", "r2"}
    assert all("max_moves 1" in reason for reason in reasons.values())


def test_a_swap_between_full_hosts_is_broken_by_stopping_one_guest() -> None:
    """a must leave h0 for h1 and b h1 for h0 (host filters), both hosts full: each move
    needs the other done first, so one guest stops rather than overload a host."""
    problem = Problem(
        hosts=[host("h0", 4), host("h1", 4)],
        guests=[
            running("a", "h0", 3, hosts=["h1"], priority=1),
            running("b", "h1", 3, hosts=["h0"]),
        ],
    )
    timing = time_migrations(problem, {"a": "h1", "b": "h0"})
    assert set(timing.stopped) == {"b"}
    assert "cycle" in timing.stopped["b"]
    assert timing.starts == {"a": 0}
    plan = solve(problem, "first-fit")
    assert_valid(problem, plan)


_MIGRATION_RULES = set(rules_in_family("migration"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems())
def test_every_baseline_keeps_the_migration_rules(problem: Problem) -> None:
    """Whatever else a baseline breaks (a peer has no capacity check, some schedules no
    limits), its migrations are timed, limited and budgeted as the checker demands; and
    with the list schedule a packer's plan is valid outright."""
    for name in _BASELINES:
        plan = solve(problem, name, SolveOptions(schedule="all-at-once"))
        broken = {v.rule for v in check(problem, plan).violations}
        assert not broken & _MIGRATION_RULES, (name, broken)
    for name in ("first-fit", "best-fit", "worst-fit", "round-robin"):
        assert_valid(problem, solve(problem, name))
