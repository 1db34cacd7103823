"""Unplaced reasons probed by CP-SAT: a guest some host has room for is kept out by the
boot schedule, and the reason names the rule family that does it."""

from __future__ import annotations

from placement.check import check
from placement.model import BootProfile, Guest, Host, HostBoot, Problem, Schedule
from placement.solvers import SolveOptions, solve

OPTIONS = SolveOptions(time_limit_s=5.0, deterministic=True, workers=2)


def _host(name: str, **fields: object) -> Host:
    return Host(name=name, capacity={"ram_mib": 64 * 1024}, **fields)


def _guest(name: str, priority: int, **boot: object) -> Guest:
    return Guest(
        name=name,
        demand={"ram_mib": 1024},
        priority=priority,
        boot=BootProfile(duration_s=60, **boot),
    )


def _unplaced_reason(problem: Problem, name: str) -> str:
    plan = solve(problem, "cpsat", OPTIONS)
    assert check(problem, plan).ok
    reasons = {u.guest: u.reason for u in plan.unplaced}
    assert set(reasons) == {name}, reasons
    return reasons[name]


def test_the_pool_keeps_out_a_guest_a_host_has_room_for() -> None:
    # Two boots of 60 s that each fill the SAN pool, and a horizon of 100 s: only one
    # can be ready in time, so the lower-priority one stays out, though RAM is plenty.
    problem = Problem(
        hosts=[_host("h0")],
        guests=[_guest("db", 3, load={"san": 100}), _guest("web", 0, load={"san": 100})],
        boot_pools={"san": 100},
        schedule=Schedule(horizon_s=100),
        objective=["placed", "recovery"],
    )
    reason = _unplaced_reason(problem, "web")
    assert "a host has room" in reason
    assert "boot pool limits" in reason


def test_host_boot_limits_keep_out_a_guest_when_only_one_host_is_allowed() -> None:
    problem = Problem(
        hosts=[_host("h0", boot=HostBoot(max_starts=1)), _host("h1", state="failed")],
        guests=[_guest("a", 2), _guest("b", 1)],
        schedule=Schedule(horizon_s=100),
        objective=["placed", "recovery"],
    )
    reason = _unplaced_reason(problem, "b")
    assert "boot CPU and concurrent-start limits" in reason
    assert "boot pool" not in reason


def test_two_limits_that_each_block_are_both_named() -> None:
    # The pool and the batch limit each allow only one boot at a time.
    problem = Problem(
        hosts=[_host("h0")],
        guests=[_guest("a", 2, load={"san": 100}), _guest("b", 1, load={"san": 100})],
        boot_pools={"san": 100},
        schedule=Schedule(horizon_s=100, max_starts=1),
        objective=["placed", "recovery"],
    )
    reason = _unplaced_reason(problem, "b")
    assert "boot pool limits" in reason
    assert "batch limit" in reason
