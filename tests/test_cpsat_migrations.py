"""The CP-SAT optimiser with live migrations: hand-checkable evacuations, a boot that
waits for the room a migration frees, `movable`, the move budget; then a property over
random problems with migration settings: CP-SAT's own plan passes the checker."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from placement.check import check
from placement.model import BootProfile, Guest, Host, MigrationSettings, Problem
from placement.plan import Action, Plan
from placement.solvers import SolveOptions, solve
from tests.strategies import problems

GIB = 1024
OPTIONS = SolveOptions(time_limit_s=3.0, deterministic=True, workers=2)


def host(name: str, gib: int = 16, **fields: Any) -> Host:
    return Host(name=name, capacity={"ram_mib": gib * GIB}, **fields)


def running(name: str, on: str, gib: int = 2, **fields: Any) -> Guest:
    return Guest(
        name=name, demand={"ram_mib": gib * GIB}, state="running", current_host=on, **fields
    )


def optimise(problem: Problem, caplog: pytest.LogCaptureFixture) -> Plan:
    """Solve with CP-SAT: the plan is CP-SAT's own (no fallback) and passes the checker."""
    with caplog.at_level(logging.ERROR):
        plan = solve(problem, "cpsat", OPTIONS)
    assert not [r for r in caplog.records if "BUG" in r.getMessage()]
    report = check(problem, plan)
    assert report.ok, [v.message for v in report.violations]
    return plan


def moves(plan: Plan) -> dict[str, tuple[int | None, int | None]]:
    return {a.guest: (a.start_s, a.ready_s) for a in plan.assignments if a.action is Action.MIGRATE}


def evacuation(**limits: Any) -> Problem:
    """h0 goes into maintenance with three running 2 GiB guests; h1 and h2 have room.
    Each move takes 5 + ceil(2048 / 1000) = 8 s."""
    return Problem(
        hosts=[host("h0", state="maintenance"), host("h1"), host("h2")],
        guests=[running(f"r{i}", "h0") for i in range(3)],
        objective=["placed", "migrations", "makespan"],
        migration=MigrationSettings(**limits),
    )


def test_one_move_per_host_serialises_the_evacuation(caplog: pytest.LogCaptureFixture) -> None:
    plan = optimise(evacuation(max_per_host=1), caplog)
    timed = sorted(moves(plan).values())
    assert timed == [(0, 8), (8, 16), (16, 24)]
    makespan = plan.stage("makespan")
    assert makespan is not None
    assert makespan.value == 24  # the sum of the three durations, proven optimal
    assert makespan.bound == 24


def test_without_limits_the_evacuation_takes_one_move_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    plan = optimise(evacuation(), caplog)
    assert sorted(moves(plan).values()) == [(0, 8)] * 3


def test_a_cluster_wide_limit_of_two_takes_two_rounds(caplog: pytest.LogCaptureFixture) -> None:
    plan = optimise(evacuation(max_total=2), caplog)
    makespan = plan.stage("makespan")
    assert makespan is not None
    assert makespan.value == 16


def test_a_boot_waits_for_the_migration_that_frees_its_room(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """h0 (4 GiB) runs r (3 GiB), which may no longer run there; s (3 GiB, allowed only
    on h0) boots once r's 9 s move to h1 is done: the final state alone would let it
    start at 0."""
    problem = Problem(
        hosts=[host("h0", 4), host("h1", 4)],
        guests=[
            running("r", "h0", 3, avoid_hosts=["h0"]),
            Guest(name="s", demand={"ram_mib": 3 * GIB}, hosts=["h0"]),
        ],
        objective=["placed", "recovery"],
    )
    plan = optimise(problem, caplog)
    assert moves(plan) == {"r": (0, 9)}
    start = plan.assignment("s")
    assert start is not None
    assert (start.host, start.start_s) == ("h0", 9)
    recovery = plan.stage("recovery")
    assert recovery is not None
    assert recovery.value == 9 + 60


def test_an_immovable_guest_stays_or_stops(caplog: pytest.LogCaptureFixture) -> None:
    """On h0 (4 GiB) a 3 GiB guest that cannot move and one that can: the movable one
    leaves. On the host in maintenance the immovable guest can only stop."""
    problem = Problem(
        hosts=[host("h0", 4), host("h1", 4), host("h2", state="maintenance")],
        guests=[
            running("movable", "h0", 3, priority=1),
            running("pinned", "h0", 3, movable=False),
            running("stuck", "h2", 1, movable=False),
        ],
    )
    plan = optimise(problem, caplog)
    assert moves(plan) == {"movable": (0, 9)}
    actions = {a.guest: (a.action, a.host) for a in plan.assignments}
    assert actions["pinned"] == (Action.STAY, "h0")
    assert actions["stuck"] == (Action.STOP, None)


def test_the_move_budget_keeps_the_heaviest_guests(caplog: pytest.LogCaptureFixture) -> None:
    problem = Problem(
        hosts=[host("h0", state="maintenance"), host("h1")],
        guests=[running(f"r{i}", "h0", priority=i) for i in range(3)],
        migration=MigrationSettings(max_moves=1),
    )
    plan = optimise(problem, caplog)
    assert list(moves(plan)) == ["r2"]
    assert {u.guest for u in plan.unplaced} == {"r0", "r1"}


def test_migration_load_and_boots_share_a_pool(caplog: pytest.LogCaptureFixture) -> None:
    """A move and a boot each take the whole `network` pool: they run one after the
    other, and the optimiser starts the boot first for recovery."""
    problem = Problem(
        hosts=[host("h0", state="maintenance"), host("h1")],
        guests=[
            running("r", "h0"),
            Guest(
                name="s",
                demand={"ram_mib": GIB},
                boot=BootProfile(duration_s=30, load={"network": 1}),
            ),
        ],
        boot_pools={"network": 1},
        migration=MigrationSettings(load={"network": 1}),
        objective=["placed", "recovery", "makespan"],
    )
    plan = optimise(problem, caplog)
    start = plan.assignment("s")
    assert start is not None
    assert start.start_s == 0
    assert moves(plan) == {"r": (30, 38)}


class _Errors(logging.Handler):
    """Collects the error records logged while it is attached."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_hosts=3, max_guests=7))
def test_cpsat_plans_with_migrations_pass_the_checker_without_fallback(
    random_problem: Problem,
) -> None:
    """The model holds every migration rule the checker applies: CP-SAT's own plan never
    fails the checker (which would be logged as a bug and replaced by the greedy plan)."""
    errors = _Errors()
    logger = logging.getLogger("placement.solvers.cpsat.stages")
    logger.addHandler(errors)
    try:
        plan = solve(random_problem, "cpsat", SolveOptions(time_limit_s=1.0, deterministic=True))
    finally:
        logger.removeHandler(errors)
    assert not [m for m in errors.messages if "BUG" in m], errors.messages
    report = check(random_problem, plan)
    assert report.ok, [v.message for v in report.violations]
