"""The simulator: its physics on cases worked by hand, its policies, and the properties
that tie it to the checker (a valid plan with no noise replays exactly)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from placement.check import check
from placement.cli import main
from placement.codec import dump_plan, load_problem_file
from placement.model import (
    BootProfile,
    Guest,
    GuestState,
    Host,
    HostBoot,
    HostState,
    Problem,
    Schedule,
    SimulationSettings,
)
from placement.plan import Action, Assignment, Plan, Status
from placement.simulate import (
    ReadinessGated,
    RunDraws,
    draw_runs,
    policy_by_name,
    run_once,
    simulate,
)
from placement.solvers import SolveOptions, solve
from tests.strategies import problems

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _host(name: str, boot_cpu: int | None = None, state: str = "online") -> Host:
    return Host(
        name,
        {"ram_mib": 65536, "vcpus": 16},
        state=HostState(state),
        boot=HostBoot(cpu=boot_cpu),
    )


def _guest(name: str, duration_s: int = 100, load: int = 100, cpu: int = 0, **kw: object) -> Guest:
    return Guest(
        name,
        {"ram_mib": 1024},
        boot=BootProfile(duration_s=duration_s, load={"san": load}, cpu=cpu),
        **kw,  # type: ignore[arg-type]
    )


def _plan(starts: dict[str, tuple[str, int, int]]) -> Plan:
    """A plan starting each guest on (host, start_s, ready_s)."""
    return Plan(
        Status.FEASIBLE,
        "hand",
        0.0,
        [Assignment(g, h, Action.START, s, r) for g, (h, s, r) in starts.items()],
    )


def two_boots_on_one_pool(capacity: int = 100) -> Problem:
    """Two 100-second boots, each loading the SAN with 100, on a pool of `capacity`."""
    return Problem(
        hosts=[_host("h0")],
        guests=[_guest("a"), _guest("b")],
        boot_pools={"san": capacity},
    )


# --- physics worked by hand ---------------------------------------------------------------


def test_an_overloaded_pool_is_shared_between_its_boots() -> None:
    problem = two_boots_on_one_pool()
    plan = _plan({"a": ("h0", 0, 100), "b": ("h0", 0, 100)})
    outcome = simulate(problem, plan).outcomes[0]
    # Demand 200 on 100: each boot runs at half speed and needs 200 s.
    assert outcome.ready_s == {"a": pytest.approx(200.0), "b": pytest.approx(200.0)}
    assert outcome.peak_pool_ratio["san"] == pytest.approx(2.0)
    assert outcome.seconds_over_capacity == pytest.approx(200.0)


def test_a_thrashing_pool_delivers_less_than_its_capacity() -> None:
    problem = two_boots_on_one_pool()
    plan = _plan({"a": ("h0", 0, 100), "b": ("h0", 0, 100)})
    outcome = simulate(problem, plan, contention="thrash").outcomes[0]
    # Overload 2: delivered = 100 * max(0.25, 1 - 0.5 * 1) = 50, so each boot runs at 1/4.
    assert outcome.ready_s["a"] == pytest.approx(400.0)
    floor = simulate(problem, plan, contention="thrash", thrash_slope=5.0).outcomes[0]
    # 1 - 5 * 1 < 0.25: the floor holds, delivered 25, each boot at 1/8.
    assert floor.ready_s["b"] == pytest.approx(800.0)


def test_a_boot_speeds_up_when_the_one_beside_it_ends() -> None:
    problem = Problem(
        hosts=[_host("h0")],
        guests=[_guest("short", duration_s=50), _guest("long", duration_s=100)],
        boot_pools={"san": 100},
    )
    plan = _plan({"short": ("h0", 0, 50), "long": ("h0", 0, 100)})
    ready = simulate(problem, plan).outcomes[0].ready_s
    # Both at half speed until `short` has done 50 s of work at t=100; `long` has done 50
    # of its 100 by then and finishes the rest at full speed.
    assert ready["short"] == pytest.approx(100.0)
    assert ready["long"] == pytest.approx(150.0)


def test_host_boot_cpu_is_shared_like_a_pool() -> None:
    problem = Problem(
        hosts=[_host("h0", boot_cpu=4)],
        guests=[_guest("a", load=0, cpu=4), _guest("b", load=0, cpu=4)],
        boot_pools={"san": 100},
    )
    plan = _plan({"a": ("h0", 0, 100), "b": ("h0", 0, 100)})
    outcome = simulate(problem, plan).outcomes[0]
    assert outcome.ready_s["a"] == pytest.approx(200.0)
    assert outcome.peak_host_ratio == {"h0": pytest.approx(2.0)}


# --- draws ---------------------------------------------------------------------------------


def test_draws_are_common_to_every_policy_and_independent_of_the_run_count() -> None:
    problem = load_problem_file(EXAMPLES / "single-host-restart.json")
    plan = solve(problem, "first-fit", SolveOptions(schedule="list"))
    noisy = SimulationSettings(sigma=0.3)
    few = draw_runs(problem, plan, noisy, 3, seed=7)
    many = draw_runs(problem, plan, noisy, 10, seed=7)
    for a, b in zip(few, many, strict=False):
        assert np.array_equal(a.duration_factor, b.duration_factor)
    assert not np.array_equal(few[0].duration_factor, few[1].duration_factor)
    # Median 1: about half the multipliers above 1 over many guests and runs.
    factors = np.concatenate([d.duration_factor for d in many])
    assert 0.35 < float(np.mean(factors > 1.0)) < 0.65
    # Two policies on the same seed see the same boot lengths: with nothing in the way
    # (a huge pool), every guest takes its drawn duration under both.
    roomy = Problem(
        hosts=problem.hosts,
        guests=problem.guests,
        boot_pools={"san_iops": 10**9},
        schedule=problem.schedule,
    )
    for name in ("open-loop", "all-at-once"):
        result = simulate(roomy, plan, name, runs=2, seed=7, sigma=0.3)
        for outcome, draw in zip(result.outcomes, few, strict=False):
            for guest, ready in outcome.ready_s.items():
                index = roomy.guest_position(guest)
                started = ready - roomy.guests[index].boot.duration_s * draw.duration_factor[index]
                assert started >= -1e-6


# --- the checker's twin: a valid plan with no noise replays exactly ----------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_a_valid_plan_without_noise_replays_exactly_open_loop(problem: Problem) -> None:
    plan = solve(problem, "first-fit", SolveOptions(schedule="list"))
    report = check(problem, plan)
    if not report.ok:
        return
    outcome = simulate(problem, plan, "open-loop").outcomes[0]
    for assignment in plan.assignments:
        if assignment.action is Action.START:
            assert outcome.ready_s[assignment.guest] == pytest.approx(assignment.ready_s)
    assert outcome.recovery == pytest.approx(report.metrics["objectives"]["recovery"])
    assert outcome.seconds_over_capacity == 0
    assert all(ratio <= 1 + 1e-9 for ratio in outcome.peak_pool_ratio.values())
    assert not outcome.never_ready


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.floats(0.1, 1.0), st.integers(0, 10))
def test_readiness_policies_keep_every_limit_whatever_the_boots_do(
    problem: Problem, sigma: float, seed: int
) -> None:
    plan = solve(problem, "first-fit", SolveOptions(schedule="list"))
    if not check(problem, plan).ok:
        return
    gated = simulate(problem, plan, "readiness-gated", runs=3, seed=seed, sigma=sigma)
    backfill = simulate(problem, plan, "readiness-backfill", runs=3, seed=seed, sigma=sigma)
    for outcome in (*gated.outcomes, *backfill.outcomes):
        assert outcome.seconds_over_capacity == 0
        assert all(ratio <= 1 + 1e-9 for ratio in outcome.peak_pool_ratio.values())
        assert all(ratio <= 1 + 1e-9 for ratio in outcome.peak_host_ratio.values())
        # Every guest that can start is eventually ready: nothing deadlocks.
        assert not outcome.never_ready


def test_readiness_gated_never_waits_longer_than_the_plan_without_noise() -> None:
    problem = load_problem_file(EXAMPLES / "single-host-restart.json")
    plan = solve(problem, "first-fit", SolveOptions(schedule="list"))
    planned = check(problem, plan).metrics["objectives"]["recovery"]
    outcome = simulate(problem, plan, "readiness-gated").outcomes[0]
    assert outcome.recovery <= planned + 1e-6
    assert outcome.peak_pool_ratio["san_iops"] <= 1 + 1e-9


# --- failures ------------------------------------------------------------------------------


def _draws_failing(problem: Problem, failing: set[str], attempts: int = 4) -> RunDraws:
    count = len(problem.guests)
    fails = np.zeros((count, attempts), dtype=bool)
    for name in failing:
        fails[problem.guest_position(name), :] = True
    return RunDraws(0, np.ones(count), fails, np.full((count, attempts), 0.5), None)


def test_a_failed_start_is_retried_and_blocks_no_other_guest() -> None:
    problem = Problem(
        hosts=[_host("h0")],
        guests=[_guest("a", load=10), _guest("b", load=10)],
        boot_pools={"san": 100},
        simulation=SimulationSettings(retry_delay_s=30, max_retries=1),
    )
    plan = _plan({"a": ("h0", 0, 100), "b": ("h0", 0, 100)})
    draws = _draws_failing(problem, {"a"})
    outcome = run_once(problem, plan, policy_by_name("open-loop").controller(problem, plan), draws)
    assert outcome.ready_s["b"] == pytest.approx(100.0)
    # a fails half-way (t=50), is retried at t=80, fails half-way again: it gives up.
    assert outcome.never_ready == ("a",)
    assert outcome.retries == 1
    assert outcome.starts == 3


def test_a_second_host_failure_loses_the_guests_on_it_and_spares_the_rest() -> None:
    problem = Problem(
        hosts=[_host("h0"), _host("h1")],
        guests=[_guest("a", load=10), _guest("b", load=10), _guest("c", load=10)],
        boot_pools={"san": 100},
    )
    plan = _plan({"a": ("h0", 0, 100), "b": ("h1", 0, 100), "c": ("h1", 150, 250)})
    result = simulate(problem, plan, "open-loop", host_failures=[{"host": "h1", "at_s": 120}])
    outcome = result.outcomes[0]
    assert outcome.failed == ("h1",)
    assert outcome.ready_s["a"] == pytest.approx(100.0)
    # b was ready on h1 and is lost with it; c's start on a dead host is lost too.
    assert set(outcome.never_ready) == {"b", "c"}
    assert outcome.recovery == pytest.approx(100 + 2 * outcome.censor_s)


def test_storms_fence_the_single_surviving_host_and_the_plan_does_not() -> None:
    problem = load_problem_file(EXAMPLES / "single-host-restart.json")
    plan = solve(problem, "first-fit", SolveOptions(schedule="list"))
    physics = {"contention": "thrash", "fencing": True, "sigma": 0.3}
    storm = simulate(problem, plan, "all-at-once", runs=5, **physics).summary
    gated = simulate(problem, plan, "readiness-gated", runs=5, **physics).summary
    assert storm.runs_with_fencing == 5
    assert storm.fenced_hosts == {"kvm08": 5}
    assert gated.runs_with_fencing == 0
    assert gated.runs_with_never_ready == 0
    assert gated.recovery.p95 < storm.recovery.p50


# --- the peers' ways ----------------------------------------------------------------------


def _many_on_one_host(count: int) -> tuple[Problem, Plan]:
    guests = [_guest(f"g{i:02d}", load=1) for i in range(count)]
    problem = Problem(hosts=[_host("h0")], guests=guests, boot_pools={"san": 10**6})
    return problem, _plan({g.name: ("h0", 0, 100) for g in guests})


def _starts(problem: Problem, plan: Plan, policy: str) -> list[float]:
    outcome = simulate(problem, plan, policy).outcomes[0]
    durations = {g.name: g.boot.duration_s for g in problem.guests}
    return sorted(ready - durations[name] for name, ready in outcome.ready_s.items() if ready)


def test_a_batch_limit_counting_started_actions_throttles_only_the_start_command() -> None:
    problem, plan = _many_on_one_host(4)
    # Each start command returns after 5 s while the guest boots for 100 s.
    assert _starts(problem, plan, "batch:1") == pytest.approx([0, 5, 10, 15])
    assert _starts(problem, plan, "batch-ready:1") == pytest.approx([0, 100, 200, 300])


def test_serial_sleeps_after_each_start_command_returns() -> None:
    problem, plan = _many_on_one_host(3)
    assert _starts(problem, plan, "serial:45") == pytest.approx([0, 50, 100])


def test_proxmox_runs_four_workers_per_node_inside_its_rounds() -> None:
    problem, plan = _many_on_one_host(10)
    starts = _starts(problem, plan, "proxmox")
    # 4 at t=0; their `qm start` returns at 5 s, 4 more fork (still inside the 8 s
    # window); the last 2 wait for the next round at 10 s.
    assert starts == pytest.approx([0] * 4 + [5] * 4 + [10] * 2)


def test_priority_groups_wait_for_the_group_before_to_be_ready() -> None:
    guests = [
        _guest("high", load=1, priority=3),
        _guest("mid", load=1, priority=2, duration_s=50),
        _guest("low", load=1, priority=0),
    ]
    problem = Problem(hosts=[_host("h0")], guests=guests, boot_pools={"san": 100})
    plan = _plan({g.name: ("h0", 0, 100) for g in guests})
    ready = simulate(problem, plan, "priority-groups").outcomes[0].ready_s
    assert ready == {
        "high": pytest.approx(100.0),
        "mid": pytest.approx(150.0),
        "low": pytest.approx(250.0),
    }


def test_pacemaker_limits_actions_per_node_to_twice_its_cores() -> None:
    guests = [_guest(f"g{i}", load=1) for i in range(5)]
    problem = Problem(
        hosts=[Host("h0", {"ram_mib": 65536, "cores": 2})],
        guests=guests,
        boot_pools={"san": 10**6},
    )
    plan = _plan({g.name: ("h0", 0, 100) for g in guests})
    assert _starts(problem, plan, "pacemaker") == pytest.approx([0] * 4 + [5])


def test_readiness_gated_waits_for_dependencies_to_be_ready() -> None:
    guests = [
        _guest("db", load=1, duration_s=100),
        Guest(
            "app",
            {"ram_mib": 1024},
            boot=BootProfile(duration_s=10, load={"san": 1}, after=("db",)),
        ),
    ]
    problem = Problem(hosts=[_host("h0")], guests=guests, boot_pools={"san": 100})
    plan = _plan({"db": ("h0", 0, 100), "app": ("h0", 100, 110)})
    # db boots twice as long as planned: app waits for it, open loop does not.
    gated = simulate(problem, plan, ReadinessGated(), duration_factors={"db": 2.0}).outcomes[0]
    assert gated.ready_s["app"] == pytest.approx(210.0)
    blind = simulate(problem, plan, "open-loop", duration_factors={"db": 2.0}).outcomes[0]
    assert blind.ready_s["app"] == pytest.approx(110.0)


def test_unknown_policies_and_settings_are_refused() -> None:
    problem = two_boots_on_one_pool()
    plan = _plan({"a": ("h0", 0, 100)})
    with pytest.raises(ValueError, match="unknown policy"):
        simulate(problem, plan, "fastest")
    with pytest.raises(ValueError, match="serial:N"):
        policy_by_name("serial:soon")
    with pytest.raises(ValueError, match="sigma"):
        simulate(problem, plan, sigma=-1)


def test_a_problem_file_carries_its_simulation_settings() -> None:
    problem = Problem(
        hosts=[_host("h0"), _host("h1", state="failed")],
        guests=[_guest("a", current_host="h1", state=GuestState.RUNNING)],
        boot_pools={"san": 100},
        schedule=Schedule(horizon_s=1000),
        simulation=SimulationSettings(duration_factors={"a": 3.0}),
    )
    plan = _plan({"a": ("h0", 0, 100)})
    assert simulate(problem, plan).outcomes[0].ready_s["a"] == pytest.approx(300.0)


# --- command line --------------------------------------------------------------------------


def _example_plan_file(folder: Path) -> tuple[Path, Path]:
    """The single-host restart example and first fit's plan of it, written to `folder`."""
    problem_path = EXAMPLES / "single-host-restart.json"
    problem = load_problem_file(problem_path)
    plan_path = folder / "plan.json"
    plan = solve(problem, "first-fit", SolveOptions(schedule="list"))
    plan_path.write_text(json.dumps(dump_plan(plan)))
    return problem_path, plan_path


def test_simulate_command_prints_a_row_per_policy_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    problem_path, plan_path = _example_plan_file(tmp_path)
    out = tmp_path / "result.json"
    code = main(
        [
            "simulate",
            str(problem_path),
            str(plan_path),
            "--policy",
            "open-loop,readiness-gated",
            "--policy",
            "serial:45",
            "--runs",
            "4",
            "--sigma",
            "0.3",
            "-o",
            str(out),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    for name in ("open-loop", "readiness-gated", "serial:45"):
        assert f"\n{name} " in text
    document = json.loads(out.read_text())
    assert [r["policy"] for r in document["results"]] == [
        "open-loop",
        "readiness-gated",
        "serial:45",
    ]
    first = document["results"][0]
    assert len(first["runs"]) == 4
    assert set(first["summary"]["recovery"]) == {"p50", "p95", "max"}
    assert first["settings"]["sigma"] == 0.3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sigma", "-1"], "sigma"),
        (["--policy", "fastest"], "unknown policy"),
        (["--fail", "nohost@5"], "unknown host 'nohost'"),
        (["--fail", "kvm08"], "HOST@SECONDS"),
        (["--runs", "0"], "--runs"),
    ],
)
def test_simulate_command_refuses_bad_options_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    problem_path, plan_path = _example_plan_file(tmp_path)
    assert main(["simulate", str(problem_path), str(plan_path), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert message in err[0]


def test_worker_processes_give_the_same_outcomes_as_one() -> None:
    problem = load_problem_file(EXAMPLES / "single-host-restart.json")
    plan = solve(problem, "first-fit", SolveOptions(schedule="list"))
    alone = simulate(problem, plan, "readiness-gated", runs=6, seed=3, sigma=0.3)
    shared = simulate(problem, plan, "readiness-gated", runs=6, seed=3, sigma=0.3, jobs=2)
    assert [o.to_dict() for o in alone.outcomes] == [o.to_dict() for o in shared.outcomes]


def test_simulate_plot_and_plan_plot_draw_the_simulated_demand(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    problem_path, plan_path = _example_plan_file(tmp_path)
    image = tmp_path / "compare.png"
    options = ["--policy", "open-loop,serial:45", "--runs", "3", "--sigma", "0.3"]
    code = main(["simulate", str(problem_path), str(plan_path), *options, "--plot", str(image)])
    assert code == 0
    assert image.read_bytes().startswith(b"\x89PNG")
    drawn = tmp_path / "plan.png"
    args = ["plot", str(problem_path), str(plan_path), "-o", str(drawn)]
    assert main([*args, "--simulate", "readiness-gated", "--runs", "3"]) == 0
    assert drawn.read_bytes().startswith(b"\x89PNG")
    assert main(["simulate", str(problem_path), str(plan_path), "--plot", "x.gif"]) == 2


def test_a_traced_run_records_the_pool_demand_it_reports_as_peak() -> None:
    problem = two_boots_on_one_pool()
    plan = _plan({"a": ("h0", 0, 100), "b": ("h0", 50, 150)})
    outcome = simulate(problem, plan, trace=True).outcomes[0]
    times, levels = outcome.pool_trace["san"]
    assert max(levels) == pytest.approx(outcome.peak_pool_ratio["san"] * 100)
    assert times[0] == 0
    assert levels[-1] == 0


def test_backfill_starts_a_late_planned_guest_in_room_the_plan_left() -> None:
    guests = [_guest("slow", load=50), _guest("next", load=50), _guest("other", load=50)]
    problem = Problem(hosts=[_host("h0")], guests=guests, boot_pools={"san": 100})
    # `next` waits for `slow` in the plan; `other` runs beside `slow` and ends at 100.
    plan = _plan({"slow": ("h0", 0, 100), "other": ("h0", 0, 100), "next": ("h0", 100, 200)})
    # `slow` takes 3 times as long: when `other` is ready at 100 there is room for `next`.
    late = {"duration_factors": {"slow": 3.0}}
    gated = simulate(problem, plan, "readiness-gated", **late).outcomes[0]
    backfill = simulate(problem, plan, "readiness-backfill", **late).outcomes[0]
    assert gated.ready_s["next"] == pytest.approx(400.0)
    assert backfill.ready_s["next"] == pytest.approx(200.0)
    assert backfill.peak_pool_ratio["san"] <= 1.0


def test_readiness_gated_does_not_deadlock_on_a_plan_that_breaks_its_after_order() -> None:
    guests = [
        _guest("db", load=60, duration_s=100),
        Guest(
            "app",
            {"ram_mib": 1024},
            boot=BootProfile(duration_s=100, load={"san": 60}, after=("db",)),
        ),
    ]
    problem = Problem(hosts=[_host("h0")], guests=guests, boot_pools={"san": 100})
    # The plan starts app first, then db once app is ready: app waits for db by `after`,
    # db waits for app by the pool. Someone has to go first.
    plan = _plan({"app": ("h0", 0, 100), "db": ("h0", 100, 200)})
    outcome = simulate(problem, plan, "readiness-gated").outcomes[0]
    assert not outcome.never_ready
    assert outcome.peak_pool_ratio["san"] <= 1.0


EVERY_POLICY = (
    "open-loop",
    "readiness-gated",
    "readiness-backfill",
    "all-at-once",
    "serial:45",
    "batch:2",
    "batch-ready:2",
    "proxmox",
    "pacemaker",
    "priority-groups",
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    problems(),
    st.sampled_from(["first-fit", "worst-fit"]),
    st.sampled_from(["list", "all-at-once"]),
    st.floats(0.0, 0.5),
    st.booleans(),
)
def test_every_policy_runs_any_plan_to_its_end_whatever_fails(
    problem: Problem, solver: str, schedule: str, start_failure: float, fencing: bool
) -> None:
    plan = solve(problem, solver, SolveOptions(schedule=schedule))
    for name in EVERY_POLICY:
        result = simulate(
            problem,
            plan,
            name,
            runs=2,
            sigma=0.5,
            start_failure_probability=start_failure,
            fencing=fencing,
            random_host_failure_probability=0.5,
        )
        for outcome in result.outcomes:
            # Every guest to bring up is either ready by the run's end or never ready.
            for guest, ready in outcome.ready_s.items():
                assert (ready is None) == (guest in outcome.never_ready)
                assert ready is None or ready <= outcome.end_s + 1e-6
            assert outcome.makespan_s <= max(outcome.censor_s, outcome.end_s)
            if not fencing and not start_failure and not outcome.failed:
                # Nothing was lost: whatever the policy, everyone it started got up.
                assert not outcome.never_ready, name


def test_a_boot_on_a_host_whose_boot_limit_is_zero_crawls_rather_than_never_ends() -> None:
    problem = Problem(
        hosts=[_host("h0", boot_cpu=0)],
        guests=[_guest("a", load=0, cpu=2)],
        boot_pools={"san": 100},
    )
    outcome = simulate(problem, _plan({"a": ("h0", 0, 100)})).outcomes[0]
    assert outcome.ready_s["a"] == pytest.approx(400.0)  # at the floor rate, 0.25
    assert outcome.peak_host_ratio["h0"] == float("inf")
    document = simulate(problem, _plan({"a": ("h0", 0, 100)})).to_dict()
    assert document["summary"]["peak_host_ratio"] == {"h0": None}
    json.dumps(document, allow_nan=False)  # strict JSON


def test_the_speed_benchmark_times_each_policy_and_keeps_the_limits() -> None:
    from bench.sim import speed

    rows = speed(runs=2, guests=60, policies=("readiness-gated",), jobs=(1,), log=str)
    assert [(row["policy"], row["jobs"]) for row in rows] == [("readiness-gated", 1)]
    assert rows[0]["seconds"] > 0
    assert rows[0]["peak"] <= 1.0 + 1e-9
