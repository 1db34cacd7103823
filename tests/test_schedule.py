"""The boot-schedule baselines: hand-computed timelines, then properties."""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping

import pytest
from hypothesis import HealthCheck, given, settings

from placement.check import check
from placement.model import BootProfile, Guest, Host, HostBoot, Problem, Schedule
from placement.plan import Plan
from placement.rules import rules_in_family
from placement.solvers import SolveOptions, solve
from placement.solvers.schedule import (
    Timing,
    all_at_once,
    batch,
    list_schedule,
    parse_schedule,
    serial,
)
from tests.strategies import problems


def boot(duration_s: int = 60, **kwargs: object) -> BootProfile:
    return BootProfile(duration_s=duration_s, **kwargs)  # type: ignore[arg-type]


def cluster(guests: list[Guest], **kwargs: object) -> Problem:
    """One roomy host 'a' (and 'b' if asked) holding every guest."""
    hosts = kwargs.pop("hosts", None) or [Host("a", {"ram_mib": 1 << 20})]
    return Problem(hosts=hosts, guests=guests, **kwargs)  # type: ignore[arg-type]


def guest(name: str, priority: int = 0, **boot_fields: object) -> Guest:
    return Guest(name, {"ram_mib": 1}, priority=priority, boot=boot(**boot_fields))  # type: ignore[arg-type]


def on_a(problem: Problem) -> dict[str, str | None]:
    return {g.name: "a" for g in problem.guests}


def starts(timing: Timing) -> dict[str, int]:
    return dict(timing.starts)


# --- all at once ---------------------------------------------------------------------------


def test_all_at_once_starts_everything_at_zero_but_honours_after() -> None:
    """Three guests, one (app) waiting for db (60 s): db and web at 0, app at 60."""
    problem = cluster(
        [guest("db"), guest("web", duration_s=30), guest("app", after=("db",))],
        boot_pools={"san": 1},
    )
    assert starts(all_at_once(problem, on_a(problem))) == {"db": 0, "web": 0, "app": 60}


# --- serial ----------------------------------------------------------------------------------


def test_serial_starts_one_every_delay_in_priority_order() -> None:
    """Priorities 0, 2, 1: starts at 0 (p2), 45 (p1), 90 (p0)."""
    problem = cluster([guest("low"), guest("high", 2), guest("mid", 1)])
    timing = serial(45)(problem, on_a(problem))
    assert starts(timing) == {"high": 0, "mid": 45, "low": 90}


def test_serial_takes_the_next_ready_guest_and_waits_when_none_is() -> None:
    """db (p2, boots 100 s), app (p1, after db), tool (p0).

    Slot 0: db. Slot 45: app is not ready to go (db ready at 100), tool is: tool. Slot 90:
    nothing ready, so the loop waits until 100 and starts app then.
    """
    problem = cluster(
        [guest("db", 2, duration_s=100), guest("app", 1, after=("db",)), guest("tool")]
    )
    assert starts(serial(45)(problem, on_a(problem))) == {"db": 0, "tool": 45, "app": 100}


def test_serial_starts_a_start_group_in_one_slot() -> None:
    """x and y form start group s; z is alone: the group takes slot 0, z slot 45."""
    problem = cluster([guest("x", 1, group="s"), guest("y", group="s"), guest("z")])
    assert starts(serial(45)(problem, on_a(problem))) == {"x": 0, "y": 0, "z": 45}


# --- batch -----------------------------------------------------------------------------------


def test_batch_starts_a_new_guest_when_one_is_ready() -> None:
    """Batch of 2; durations 60, 30, 60, 30: g0 and g1 at 0, g2 when g1 is ready (30),
    g3 when g0 is ready (60)."""
    problem = cluster(
        [
            guest("g0", duration_s=60),
            guest("g1", duration_s=30),
            guest("g2", duration_s=60),
            guest("g3", duration_s=30),
        ]
    )
    assert starts(batch(2)(problem, on_a(problem))) == {"g0": 0, "g1": 0, "g2": 30, "g3": 60}


# --- list scheduling -------------------------------------------------------------------------


def test_list_respects_the_boot_pool() -> None:
    """The SAN takes 10; each guest loads it with 6 for 60 s: one at a time."""
    problem = cluster([guest(f"g{i}", load={"san": 6}) for i in range(3)], boot_pools={"san": 10})
    assert sorted(starts(list_schedule(problem, on_a(problem))).values()) == [0, 60, 120]


def test_list_backfills_a_smaller_guest_that_fits() -> None:
    """SAN 10. big (p2, load 8, 60 s), big2 (p1, load 8), small (p0, load 2, 30 s).

    At 0: big starts (8), big2 does not fit, small does (10): it starts at 0 too.
    big2 starts at 60.
    """
    problem = cluster(
        [
            guest("big", 2, load={"san": 8}),
            guest("big2", 1, load={"san": 8}),
            guest("small", load={"san": 2}, duration_s=30),
        ],
        boot_pools={"san": 10},
    )
    assert starts(list_schedule(problem, on_a(problem))) == {"big": 0, "small": 0, "big2": 60}


def test_list_staggers_starts() -> None:
    """Stagger 20 s, no other limit: starts at 0, 20, 40."""
    problem = cluster([guest(f"g{i}") for i in range(3)], schedule=Schedule(stagger_s=20))
    assert sorted(starts(list_schedule(problem, on_a(problem))).values()) == [0, 20, 40]


def test_list_starts_a_start_group_at_one_instant_and_staggers_groups() -> None:
    """Stagger 20; x and y form start group s (priority 1), z is alone: s at 0, z at 20."""
    problem = cluster(
        [guest("x", 1, group="s"), guest("y", group="s"), guest("z")],
        schedule=Schedule(stagger_s=20),
    )
    assert starts(list_schedule(problem, on_a(problem))) == {"x": 0, "y": 0, "z": 20}


def test_list_respects_host_start_limit_and_cluster_limit() -> None:
    """Host a starts one guest at a time, host b is unlimited, cluster-wide 2 at once.

    a1, a2 on a; b1, b2 on b; all boot 60 s, equal priority (problem order a1, a2, b1, b2).
    At 0: a1; a2 is blocked by a's limit; b1 starts (cluster now full). At 60: a2, b2.
    """
    problem = Problem(
        hosts=[
            Host("a", {"ram_mib": 100}, boot=HostBoot(max_starts=1)),
            Host("b", {"ram_mib": 100}),
        ],
        guests=[guest("a1"), guest("a2"), guest("b1"), guest("b2")],
        schedule=Schedule(max_starts=2),
    )
    hosts: Mapping[str, str | None] = {"a1": "a", "a2": "a", "b1": "b", "b2": "b"}
    assert starts(list_schedule(problem, hosts)) == {"a1": 0, "b1": 0, "a2": 60, "b2": 60}


def test_list_respects_host_boot_cpu() -> None:
    """Host a has 4 boot CPUs; two guests need 3 each: one after the other."""
    problem = Problem(
        hosts=[Host("a", {"ram_mib": 100}, boot=HostBoot(cpu=4))],
        guests=[guest("x", cpu=3), guest("y", cpu=3)],
    )
    assert sorted(starts(list_schedule(problem, on_a(problem))).values()) == [0, 60]


def test_list_priority_is_inherited_from_dependants() -> None:
    """SAN takes one boot at a time. vip (p3) waits for db (p0); other has p1.

    db inherits vip's priority, so db goes first (0), then vip (60), then other (120):
    without inheritance, other would start before db.
    """
    problem = cluster(
        [
            guest("other", 1, load={"san": 1}),
            guest("db", 0, load={"san": 1}),
            guest("vip", 3, load={"san": 1}, after=("db",)),
        ],
        boot_pools={"san": 1},
    )
    assert starts(list_schedule(problem, on_a(problem))) == {"db": 0, "vip": 60, "other": 120}


def test_list_leaves_what_misses_the_horizon_unscheduled_and_what_waits_for_it() -> None:
    """SAN one at a time, horizon 150 s, three 60 s guests and one waiting for the third:
    the third would be ready at 180 > 150; it and its dependant are unscheduled."""
    problem = cluster(
        [
            guest("g0", 2, load={"san": 1}),
            guest("g1", 1, load={"san": 1}),
            guest("g2", 0, load={"san": 1}),
            guest("g3", 0, after=("g2",)),
        ],
        boot_pools={"san": 1},
        schedule=Schedule(horizon_s=150),
    )
    timing = list_schedule(problem, on_a(problem))
    assert starts(timing) == {"g0": 0, "g1": 60}
    assert "horizon (150 s)" in timing.unscheduled["g2"]
    assert timing.unscheduled["g3"] == "depends on unscheduled guest g2"


def test_finish_plan_unplaces_what_the_list_schedule_cannot_time() -> None:
    """Same instance through a packer: g2 and g3 come back unplaced with the reasons,
    and the plan passes the checker."""
    problem = cluster(
        [
            guest("g0", 2, load={"san": 1}),
            guest("g1", 1, load={"san": 1}),
            guest("g2", 0, load={"san": 1}),
            guest("g3", 0, after=("g2",)),
        ],
        boot_pools={"san": 1},
        schedule=Schedule(horizon_s=150),
    )
    plan = solve(problem, "first-fit", SolveOptions(schedule="list"))
    assert {u.guest for u in plan.unplaced} == {"g2", "g3"}
    assert not check(problem, plan).violations


def test_list_reports_a_guest_too_big_for_the_pool() -> None:
    """The SAN takes 5; one guest alone loads it with 6: it can never start."""
    problem = cluster([guest("hog", load={"san": 6})], boot_pools={"san": 5})
    timing = list_schedule(problem, on_a(problem))
    assert "boot pool 'san'" in timing.unscheduled["hog"]


def test_start_group_with_an_inner_dependency_cannot_start() -> None:
    """y waits for x, but both are in start group s (one instant): impossible."""
    problem = cluster([guest("x", group="s"), guest("y", group="s", after=("x",))])
    for scheduler in (list_schedule, all_at_once, serial(10), batch(3)):
        timing = scheduler(problem, on_a(problem))
        assert set(timing.unscheduled) == {"x", "y"}


def test_list_handles_ten_thousand_guests_quickly() -> None:
    """10,000 guests on 100 hosts with host limits, a SAN pool, stagger 1 s, chains."""
    hosts = [Host(f"h{i}", {"ram_mib": 1 << 20}, boot=HostBoot(max_starts=2)) for i in range(100)]
    guests = [
        Guest(
            f"g{j}",
            {"ram_mib": 1},
            priority=j % 4,
            boot=BootProfile(
                duration_s=30 + j % 5 * 10,
                load={"san": 1 + j % 3},
                after=(f"g{j - 1}",) if j % 10 == 1 else (),
            ),
        )
        for j in range(10_000)
    ]
    problem = Problem(
        hosts=hosts,
        guests=guests,
        boot_pools={"san": 40},
        schedule=Schedule(stagger_s=1, max_starts=30, horizon_s=10**7),
    )
    placement = {g.name: f"h{j % 100}" for j, g in enumerate(guests)}
    started = time.perf_counter()
    timing = list_schedule(problem, placement)
    assert time.perf_counter() - started < 20
    assert len(timing.starts) == 10_000


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("serial:", "serial"),
        ("serial:-5", "serial"),
        ("batch:0", "batch"),
        ("batch:two", "batch"),
        ("fast", "unknown schedule"),
    ],
)
def test_parse_schedule_rejects_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_schedule(spec)


def test_parse_schedule_accepts_every_baseline() -> None:
    for spec in ("list", "all-at-once", "serial:45", "serial:0", "batch:4"):
        assert callable(parse_schedule(spec))


# --- properties ------------------------------------------------------------------------------


def _boot_intervals(plan: Plan, problem: Problem) -> list[tuple[int, int, str]]:
    return [
        (a.start_s, a.ready_s, a.guest)
        for a in plan.assignments
        if a.action.value == "start" and a.start_s is not None and a.ready_s is not None
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems())
def test_serial_starts_are_at_least_the_delay_apart(problem: Problem) -> None:
    """Distinct start instants of serial:30 are at least 30 s apart; a start group shares
    one instant, and nothing else starts then."""
    plan = solve(problem, "first-fit", SolveOptions(schedule="serial:30"))
    instants = sorted({start for start, _, _ in _boot_intervals(plan, problem)})
    assert all(b - a >= 30 for a, b in itertools.pairwise(instants))
    by_instant: dict[int, set[str | None]] = {}
    for start, _, name in _boot_intervals(plan, problem):
        group = problem.guest(name).boot.group
        by_instant.setdefault(start, set()).add(group if group is not None else name)
    assert all(len(units) == 1 for units in by_instant.values())


@pytest.mark.parametrize("limit", [1, 3])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems())
def test_batch_never_boots_more_than_its_limit(limit: int, problem: Problem) -> None:
    """At every start instant, at most `limit` guests are booting, unless one start group
    larger than the limit boots alone."""
    plan = solve(problem, "first-fit", SolveOptions(schedule=f"batch:{limit}"))
    intervals = [(s, r, n) for s, r, n in _boot_intervals(plan, problem) if r > s]
    for instant, _, _ in intervals:
        booting = [n for s, r, n in intervals if s <= instant < r]
        if len(booting) > limit:
            groups = {problem.guest(n).boot.group for n in booting}
            assert len(groups) == 1, booting
            assert None not in groups, booting


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems())
def test_list_schedule_plans_pass_the_checker(problem: Problem) -> None:
    """The list scheduler honours every schedule rule, whatever the placement baseline."""
    plan = solve(problem, "round-robin", SolveOptions(schedule="list"))
    report = check(problem, plan)
    assert not report.violations, report.violations


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems(horizon_s=10**6))
def test_every_schedule_honours_after_and_start_groups(problem: Problem) -> None:
    """Even the throttle-free baselines start a guest only once its dependencies are
    ready and start each start group at one instant."""
    for spec in ("all-at-once", "serial:10", "batch:2"):
        plan = solve(problem, "first-fit", SolveOptions(schedule=spec))
        rules = {v.rule for v in check(problem, plan).violations}
        assert not rules & {"after", "start_group", *rules_in_family("plan")}, (spec, rules)
