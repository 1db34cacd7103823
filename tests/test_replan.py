"""The re-planning policy: what it re-places after a loss or a failed start, what it
pins, what a re-plan costs on the clock, and the limits it keeps whatever happens."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import placement.solvers
from placement.check import check
from placement.model import (
    BootProfile,
    Guest,
    Host,
    HostFailure,
    HostState,
    Problem,
    SimulationSettings,
)
from placement.plan import Action, Assignment, Plan, Status, Unplaced
from placement.simulate import (
    GuestStatus,
    ReadinessGated,
    Replan,
    RunDraws,
    World,
    draw_runs,
    policy_by_name,
    run_once,
)
from placement.simulate.replan import carried_plan, remaining_problem
from placement.solvers import SolveOptions, SolverInfo, solve
from tests.strategies import problems


def _host(name: str) -> Host:
    return Host(name, {"ram_mib": 8192})


def _guest(name: str, duration_s: int = 100, load: int = 40, ram: int = 2048) -> Guest:
    return Guest(
        name, {"ram_mib": ram}, boot=BootProfile(duration_s=duration_s, load={"san": load})
    )


def _plan(starts: dict[str, tuple[str, int]], duration_s: int = 100) -> Plan:
    return Plan(
        status=Status.FEASIBLE,
        solver="test",
        runtime_s=0.0,
        assignments=tuple(
            Assignment(name, host, Action.START, start, start + duration_s)
            for name, (host, start) in starts.items()
        ),
    )


def _draws(
    problem: Problem,
    failing: frozenset[str] = frozenset(),
    host_failure: tuple[int, float] | None = None,
) -> RunDraws:
    count = len(problem.guests)
    fails = np.zeros((count, 4), dtype=bool)
    for name in failing:
        fails[problem.guest_position(name), :] = True
    return RunDraws(0, np.ones(count), fails, np.full((count, 4), 0.5), host_failure)


def three_hosts() -> tuple[Problem, Plan]:
    """Six guests on h0 and h1, h2 empty: room for h1's guests on h0 and h2."""
    problem = Problem(
        hosts=[_host("h0"), _host("h1"), _host("h2")],
        guests=[_guest(f"g{i}") for i in range(6)],
        boot_pools={"san": 100},
    )
    plan = _plan(
        {
            "g0": ("h0", 0),
            "g1": ("h1", 0),
            "g2": ("h0", 100),
            "g3": ("h1", 100),
            "g4": ("h0", 200),
            "g5": ("h1", 200),
        }
    )
    assert check(problem, plan).ok
    return problem, plan


FAST = Replan(solver="best-fit", latency_s=0.0)


def test_after_a_second_host_failure_replan_starts_its_guests_again_elsewhere() -> None:
    problem, plan = three_hosts()
    draws = _draws(problem, host_failure=(1, 150.0))  # h1 dies with g1 ready, g3 booting
    gated = run_once(
        problem, plan, policy_by_name("readiness-gated").controller(problem, plan), draws
    )
    # Without re-planning the guests of h1 are never started again.
    assert set(gated.never_ready) == {"g1", "g3", "g5"}
    replanned = run_once(problem, plan, FAST.controller(problem, plan), draws)
    assert replanned.never_ready == ()
    assert replanned.failed == ("h1",)
    # Lost at 150, started again no earlier than that, and the pool kept its limit.
    for name in ("g1", "g3", "g5"):
        assert (replanned.ready_s[name] or 0.0) >= 150 + 100
    assert replanned.peak_pool_ratio["san"] <= 1 + 1e-9
    assert replanned.policy_stats["replans"] >= 1


def test_the_solve_time_is_charged_to_the_clock() -> None:
    problem, plan = three_hosts()
    draws = _draws(problem, host_failure=(1, 150.0))
    quick = run_once(problem, plan, FAST.controller(problem, plan), draws)
    slow_policy = Replan(solver="best-fit", latency_s=60.0)
    slow = run_once(problem, plan, slow_policy.controller(problem, plan), draws)
    # Nothing starts while the re-plan is solved: every re-placed guest is 60 s later.
    lost = ("g1", "g3", "g5")
    slow_first = min(slow.ready_s[n] or np.inf for n in lost)
    assert slow_first >= 150 + 60 + 100 - 1e-6
    assert slow_first > min(quick.ready_s[n] or np.inf for n in lost)
    assert slow.never_ready == ()


def test_the_plan_in_force_goes_on_while_a_re_plan_is_solved() -> None:
    problem, plan = three_hosts()
    draws = _draws(problem, host_failure=(1, 150.0))
    slow = Replan(solver="best-fit", latency_s=60.0)
    outcome = run_once(problem, plan, slow.controller(problem, plan), draws)
    # g4 was planned on h0 at 200, after g2: the re-plan asked at 150 arrives at 210, but
    # g4 starts at 200 all the same.
    assert outcome.ready_s["g4"] == pytest.approx(300.0)


def _one_host_late_boot() -> tuple[Problem, Plan, RunDraws]:
    """a then b on one host, planned one after the other although both fit the pool
    together; a boots twice as long as declared (late at 150, ready at 200)."""
    problem = Problem(
        hosts=[_host("h0")],
        guests=[_guest("a"), _guest("b")],
        boot_pools={"san": 100},
    )
    plan = _plan({"a": ("h0", 0), "b": ("h0", 100)})
    draws = _draws(problem)
    draws.duration_factor[problem.guest_position("a")] = 2.0
    return problem, plan, draws


def test_a_late_boot_re_plan_lets_what_waited_for_it_start() -> None:
    problem, plan, draws = _one_host_late_boot()
    gated = run_once(problem, plan, ReadinessGated().controller(problem, plan), draws)
    assert gated.ready_s["b"] == pytest.approx(300.0)  # b waited for a to be ready
    outcome = run_once(problem, plan, FAST.controller(problem, plan), draws)
    assert outcome.policy_stats["timing_replans"] == 1
    # Re-planned at 150 with a's load still counted: b fits beside it and starts now.
    assert outcome.ready_s["b"] == pytest.approx(250.0)
    assert outcome.peak_pool_ratio["san"] <= 1 + 1e-9


def _unplace_all(problem: Problem, options: SolveOptions) -> Plan:
    return Plan(
        status=Status.FEASIBLE,
        solver="test-unplace-all",
        runtime_s=0.0,
        assignments=tuple(
            Assignment(g.name, g.current_host, Action.STAY)
            for g in problem.guests
            if problem.runs_now(g)
        ),
        unplaced=tuple(Unplaced(g.name, "test") for g in problem.guests if not problem.runs_now(g)),
    )


def test_a_timing_re_plan_worse_than_the_plan_in_force_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A solver that places nothing, registered for this test only.
    info = SolverInfo("test-unplace-all", "baseline", "test only", _unplace_all)
    monkeypatch.setitem(placement.solvers._REGISTRY, info.name, info)
    problem, plan, draws = _one_host_late_boot()
    worst = Replan(solver="test-unplace-all", latency_s=0.0)
    outcome = run_once(problem, plan, worst.controller(problem, plan), draws)
    assert outcome.policy_stats["dropped"] == 1
    assert outcome.never_ready == ()
    assert outcome.ready_s["b"] == pytest.approx(300.0)


def test_a_guest_whose_every_start_fails_is_tried_on_another_host() -> None:
    problem = Problem(
        hosts=[_host("h0"), _host("h1")],
        guests=[_guest("a"), _guest("b")],
        boot_pools={"san": 100},
        simulation=SimulationSettings(max_retries=0),
    )
    plan = _plan({"a": ("h0", 0), "b": ("h0", 0)})
    # a fails every attempt: given up on h0, re-placed on h1, where it fails again; with
    # no host left to try it is unplaced and the run ends (no endless retries).
    draws = _draws(problem, failing=frozenset({"a"}))
    outcome = run_once(problem, plan, FAST.controller(problem, plan), draws)
    assert outcome.ready_s["b"] == pytest.approx(100.0)
    assert outcome.never_ready == ("a",)
    assert outcome.starts == 3  # a on h0, b on h0, a on h1


def test_late_boots_replan_within_the_cooldown_and_the_tolerance() -> None:
    problem, plan = three_hosts()
    late = SimulationSettings(duration_factors={"g0": 3.0})
    draws = _draws(problem)
    draws.duration_factor[problem.guest_position("g0")] = 3.0
    eager = Replan(solver="best-fit", latency_s=0.0, tolerance=0.5)
    outcome = run_once(problem, plan, eager.controller(problem, plan), draws, late)
    assert outcome.policy_stats["timing_replans"] == 1
    assert outcome.never_ready == ()
    lenient = Replan(solver="best-fit", latency_s=0.0, tolerance=5.0)
    outcome = run_once(problem, plan, lenient.controller(problem, plan), draws, late)
    assert "replans" not in outcome.policy_stats


def test_the_remaining_problem_pins_booting_guests_and_fixes_the_ready_ones() -> None:
    problem, plan = three_hosts()
    world = World(problem, plan, problem.simulation, _draws(problem))
    world.start(0, 0)
    world.start(1, 1)
    world.now = 100.0
    world._finished(0, ok=True)  # g0 ready on h0
    world.start(2, 0)  # g2 booting on h0 since 100
    world.now = 130.0
    world._host_down(1, fenced=False)  # g1 lost with h1
    remaining = remaining_problem(world)
    by_name = {guest.name: guest for guest in remaining.guests}
    assert remaining.hosts[1].state is HostState.FAILED
    assert remaining.runs_now(by_name["g0"])
    assert not by_name["g0"].movable
    assert by_name["g2"].hosts == frozenset({"h0"})
    assert by_name["g2"].boot.duration_s == 70  # 100 s declared, 30 s done
    assert by_name["g1"].current_host is None
    assert world.status[1] is GuestStatus.LOST
    # The new plan from any solver is a valid plan of the remaining problem, and keeps
    # the pinned boot where it is.
    new = solve(remaining, "best-fit", SolveOptions())
    assert check(remaining, new).ok
    assert new.by_guest()["g2"].host == "h0"
    assert new.by_guest()["g1"].host in ("h0", "h2")


def test_the_plan_carried_at_instant_zero_is_the_plan_itself() -> None:
    problem, plan = three_hosts()
    world = World(problem, plan, problem.simulation, _draws(problem))
    remaining = remaining_problem(world)
    carried = carried_plan(world, remaining, plan)
    assert check(remaining, carried).ok
    assert {(a.guest, a.host, a.start_s) for a in carried.assignments} == {
        (a.guest, a.host, a.start_s) for a in plan.assignments
    }


def test_replan_names_and_unknown_solvers() -> None:
    assert policy_by_name("replan").name == "replan"
    assert policy_by_name("replan:best-fit").name == "replan:best-fit"
    with pytest.raises(ValueError, match="unknown solver"):
        policy_by_name("replan:nonesuch")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.floats(0.1, 1.0), st.integers(0, 10), st.floats(0.0, 1.0))
def test_replan_keeps_every_limit_and_re_places_what_a_host_failure_loses(
    problem: Problem, sigma: float, seed: int, when: float
) -> None:
    plan = solve(problem, "first-fit", SolveOptions(schedule="list"))
    if not check(problem, plan).ok:
        return
    receiving = sorted({a.host for a in plan.assignments if a.action is Action.START and a.host})
    if not receiving:
        return
    makespan = max(a.ready_s or 0 for a in plan.assignments)
    physics = attrs.evolve(
        problem.simulation,
        sigma=sigma,
        host_failures=[HostFailure(receiving[0], when * makespan)],
    )
    for draws in draw_runs(problem, plan, physics, 2, seed):
        controller = FAST.controller(problem, plan)
        outcome = run_once(problem, plan, controller, draws, physics)
        # The declared loads keep every limit whatever the boots and the re-plans do.
        assert outcome.seconds_over_capacity == 0
        assert all(ratio <= 1 + 1e-9 for ratio in outcome.peak_pool_ratio.values())
        assert all(ratio <= 1 + 1e-9 for ratio in outcome.peak_host_ratio.values())
        # Every guest the failure took is ready again, or the last re-plan left it
        # unplaced and says why.
        final = controller.plan  # type: ignore[attr-defined]
        reasons = {u.guest: u.reason for u in final.unplaced}
        for name in outcome.never_ready:
            assert reasons.get(name), name
