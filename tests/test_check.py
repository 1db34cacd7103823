"""The checker is the specification: one tiny passing and one tiny failing plan per rule.

Every failing plan breaks exactly one rule and must be reported as exactly that rule, so
these tests also pin down that the checker does not double-report one breach.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from placement.check import (
    RULES,
    CheckReport,
    check,
    objective_values,
    report_to_dict,
    violations_by_rule,
)
from placement.errors import InvalidPlanError
from placement.model import (
    BootProfile,
    Guest,
    Host,
    HostBoot,
    MigrationSettings,
    Problem,
    Schedule,
)
from placement.plan import Assignment, Plan, Unplaced

# --- fixture helpers ---------------------------------------------------------------------


def host(name: str, ram: int = 1000, **fields: Any) -> Host:
    """An online host with `ram` MiB of RAM and nothing else unless `fields` say so."""
    capacity = fields.pop("capacity", {"ram_mib": ram})
    return Host(name=name, capacity=capacity, **fields)


def guest(name: str, ram: int = 100, duration_s: int = 60, **fields: Any) -> Guest:
    """A stopped guest needing `ram` MiB that boots in `duration_s` seconds."""
    boot = fields.pop("boot", None) or BootProfile(duration_s=duration_s)
    demand = fields.pop("demand", {"ram_mib": ram})
    return Guest(name=name, demand=demand, boot=boot, **fields)


def booting(name: str, duration_s: int = 60, **boot: Any) -> Guest:
    """A stopped 100 MiB guest with the given boot profile fields."""
    return guest(name, boot=BootProfile(duration_s=duration_s, **boot))


def problem(hosts: Sequence[Host], guests: Sequence[Guest], **fields: Any) -> Problem:
    return Problem(hosts=hosts, guests=guests, **fields)


def start(name: str, on: str, at: int = 0, duration_s: int = 60) -> Assignment:
    """A correct `start` assignment for a guest booting in `duration_s`."""
    return Assignment(name, on, "start", at, at + duration_s)


def stay(name: str, on: str) -> Assignment:
    return Assignment(name, on, "stay")


def migrate(name: str, to: str, at: int, ready: int) -> Assignment:
    return Assignment(name, to, "migrate", at, ready)


def moves_in(seconds: int, **fields: Any) -> MigrationSettings:
    """Migration settings under which every migration takes exactly `seconds` (nothing
    is copied: no guest has the resource `copied_mib`)."""
    return MigrationSettings(setup_s=seconds, memory_resource="copied_mib", **fields)


def none(name: str) -> Assignment:
    return Assignment(name, None, "none")


def plan(*assignments: Assignment, unplaced: Mapping[str, str] | None = None) -> Plan:
    """A plan from assignments; `unplaced` maps guest -> reason. Guests given an assignment
    without a host are listed as unplaced with a reason unless `unplaced` is given."""
    if unplaced is None:
        unplaced = {a.guest: "no room" for a in assignments if a.host is None}
    return Plan(
        status="feasible",
        solver="test",
        runtime_s=0.0,
        assignments=assignments,
        unplaced=[Unplaced(g, reason) for g, reason in unplaced.items()],
    )


def rules(report: CheckReport) -> list[str]:
    return [violation.rule for violation in report.violations]


def assert_only(report: CheckReport, rule: str, count: int = 1) -> None:
    """The report holds exactly `count` violations, all of `rule`."""
    assert rules(report) == [rule] * count, [v.message for v in report.violations]


# --- instances ---------------------------------------------------------------------------


def two_hosts() -> list[Host]:
    """Two online hosts, h1 and h2, with 1000 MiB each."""
    return [host("h1"), host("h2")]


def two_guests() -> Problem:
    """Two stopped 100 MiB guests, a and b, and two 1000 MiB hosts: anything fits."""
    return problem(two_hosts(), [guest("a"), guest("b")])


def running_on_h1(migration_s: int | None = None) -> Problem:
    """Guest r (600 MiB) runs on h1; guest s (500 MiB) is stopped; two 1000 MiB hosts.
    r's migration takes 5 + ceil(600 / 1000) = 6 s, or `migration_s` when given.

    r and s never fit on one host at once, so r's migration interval matters.
    """
    return problem(
        two_hosts(),
        [guest("r", 600, state="running", current_host="h1"), guest("s", 500)],
        migration=moves_in(migration_s) if migration_s is not None else MigrationSettings(),
    )


def frozen_on_h1() -> Problem:
    """Guest f (600 MiB) is frozen on h1; guest g (500 MiB) is stopped; hosts of 1000 MiB.

    f's frozen copy keeps 600 MiB of h1 and its replacement must go to h2, so the
    replacement and g never both fit: one of them stays unplaced.
    """
    return problem(
        two_hosts(), [guest("f", 600, state="frozen", current_host="h1"), guest("g", 500)]
    )


# --- a valid plan ------------------------------------------------------------------------


def test_valid_plan_is_ok() -> None:
    report = check(two_guests(), plan(start("a", "h1"), start("b", "h2")))
    assert report.ok
    assert report.violations == ()


# --- assignment --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("the_plan", "why"),
    [
        (plan(start("a", "h1")), "no assignment"),
        (plan(start("a", "h1"), start("b", "h1"), start("b", "h2")), "assigned twice"),
        (plan(start("a", "h1"), Assignment("b", "h2", "migrate", 0, 60)), "action must be start"),
        (plan(start("a", "h1"), Assignment("b", "h2", "start", 0, 59)), "start_s + duration_s"),
        (plan(start("a", "h1"), Assignment("b", "h2", "start", -5, 55)), "start_s must be"),
        (plan(start("a", "h1"), Assignment("b", "h2", "start", None, None)), "start_s must be"),
        (plan(start("a", "h1"), Assignment("b", None, "none", 0, None)), "has no times"),
        (plan(start("a", "h1"), Assignment("b", None, "stop")), "action must be none"),
    ],
)
def test_assignment_breaches(the_plan: Plan, why: str) -> None:
    report = check(two_guests(), the_plan)
    assert_only(report, "assignment")
    assert why in report.violations[0].message
    assert report.violations[0].guests == ("b",)


def test_running_guest_actions() -> None:
    """A running guest stays on its host, migrates with times or stops without."""
    valid = [
        plan(stay("r", "h1"), none("s")),
        plan(migrate("r", "h2", 30, 36), none("s")),
        plan(Assignment("r", None, "stop"), none("s")),
    ]
    for the_plan in valid:
        assert check(running_on_h1(), the_plan).ok
    broken = [
        plan(Assignment("r", "h1", "start", 0, 60), none("s")),  # a restart in place
        plan(Assignment("r", "h2", "migrate", None, 6), none("s")),  # no start time
        plan(Assignment("r", "h2", "stay"), none("s")),
        plan(Assignment("r", None, "none"), none("s")),
    ]
    for the_plan in broken:
        assert_only(check(running_on_h1(), the_plan), "assignment")


def test_missing_running_guest_is_judged_as_staying() -> None:
    """Leaving out a running guest keeps it on its host, where it still uses capacity."""
    report = check(running_on_h1(), plan(start("s", "h1", duration_s=60)))
    assert rules(report) == ["assignment", "capacity"]
    assert report.metrics["actions"]["stay"] == 1


def test_guest_running_on_a_failed_host_must_start() -> None:
    """r runs on the failed host h1: it is not running any more and can only be started."""
    instance = problem(
        [host("h1", state="failed"), host("h2")], [guest("r", state="running", current_host="h1")]
    )
    report = check(instance, plan(start("r", "h2")))
    assert report.ok
    assert report.metrics["hosts"]["h1"]["ram_mib"]["used"] == 0
    assert_only(check(instance, plan(migrate("r", "h2", 0, 10))), "assignment")
    assert_only(check(instance, plan(Assignment("r", None, "stop"))), "assignment")


# --- unplaced ----------------------------------------------------------------------------


def test_unplaced_guest_with_reason_passes() -> None:
    assert check(two_guests(), plan(start("a", "h1"), none("b"))).ok


@pytest.mark.parametrize(
    "the_plan",
    [
        plan(start("a", "h1"), none("b"), unplaced={}),
        plan(start("a", "h1"), none("b"), unplaced={"b": "  "}),
        plan(start("a", "h1"), start("b", "h1"), unplaced={"b": "no room"}),
        Plan(
            status="feasible",
            solver="test",
            runtime_s=0.0,
            assignments=[start("a", "h1"), none("b")],
            unplaced=[Unplaced("b", "no room"), Unplaced("b", "again")],
        ),
    ],
)
def test_unplaced_breaches(the_plan: Plan) -> None:
    report = check(two_guests(), the_plan)
    assert_only(report, "unplaced")
    assert report.violations[0].guests == ("b",)


def test_stopped_running_guest_needs_a_reason() -> None:
    the_plan = plan(Assignment("r", None, "stop"), none("s"), unplaced={"s": "no room"})
    assert_only(check(running_on_h1(), the_plan), "unplaced")


# --- host filters ------------------------------------------------------------------------


def test_host_state() -> None:
    """Only online hosts take guests, even a guest that already runs there."""
    instance = problem(
        [host("h1"), host("h2", state="maintenance"), host("h3", state="failed")],
        [guest("a"), guest("r", state="running", current_host="h2")],
    )
    assert check(instance, plan(start("a", "h1"), migrate("r", "h1", 0, 6))).ok
    report = check(instance, plan(start("a", "h3"), migrate("r", "h1", 0, 6)))
    assert_only(report, "host_state")
    assert report.violations[0].hosts == ("h3",)
    assert_only(check(instance, plan(start("a", "h1"), stay("r", "h2"))), "host_state")


def test_allowed_hosts() -> None:
    instance = problem(two_hosts(), [guest("a", hosts=["h2"])])
    assert check(instance, plan(start("a", "h2"))).ok
    assert_only(check(instance, plan(start("a", "h1"))), "allowed_hosts")


def test_avoided_hosts() -> None:
    instance = problem(two_hosts(), [guest("a", avoid_hosts=["h1"])])
    assert check(instance, plan(start("a", "h2"))).ok
    assert_only(check(instance, plan(start("a", "h1"))), "avoided_hosts")


def test_labels() -> None:
    instance = problem(
        [host("h1", labels=["ssd"]), host("h2", labels=["ssd", "gpu"])],
        [guest("a", labels=["ssd", "gpu"])],
    )
    assert check(instance, plan(start("a", "h2"))).ok
    report = check(instance, plan(start("a", "h1")))
    assert_only(report, "labels")
    assert "gpu" in report.violations[0].message


def test_frozen_replacement_avoids_its_host() -> None:
    assert check(frozen_on_h1(), plan(start("f", "h2"), none("g"))).ok
    report = check(frozen_on_h1(), plan(start("f", "h1"), none("g")))
    # f's replacement would not even fit beside its frozen copy, but the frozen rule
    # alone is what this plan is meant to break: give h1 room for both.
    roomy = problem(
        [host("h1", 2000), host("h2")],
        [guest("f", 600, state="frozen", current_host="h1"), guest("g", 500)],
    )
    assert rules(report) == ["frozen", "capacity"]
    assert_only(check(roomy, plan(start("f", "h1"), none("g"))), "frozen")


def test_frozen_copy_holds_ram_so_replacement_and_other_guest_do_not_both_fit() -> None:
    instance = frozen_on_h1()
    # g beside the frozen copy: 600 + 500 > 1000 on h1.
    report = check(instance, plan(start("f", "h2"), start("g", "h1")))
    assert_only(report, "capacity")
    violation = report.violations[0]
    assert violation.hosts == ("h1",)
    assert set(violation.guests) == {"f", "g"}
    assert "1100 used > 1000 usable" in violation.message
    assert "f (frozen)" in violation.message
    # g beside the replacement: 600 + 500 > 1000 on h2.
    assert_only(check(instance, plan(start("f", "h2"), start("g", "h2"))), "capacity")
    assert check(instance, plan(start("f", "h2"), none("g"))).ok
    assert check(instance, plan(none("f"), start("g", "h2"))).ok


def test_frozen_copy_on_failed_host_holds_nothing() -> None:
    instance = problem(
        [host("h1", state="failed"), host("h2")],
        [guest("f", 600, state="frozen", current_host="h1"), guest("g", 400)],
    )
    report = check(instance, plan(start("f", "h2"), start("g", "h2")))
    assert report.ok
    assert report.metrics["hosts"]["h1"]["ram_mib"]["used"] == 0


# --- anti-affinity and together ----------------------------------------------------------


def test_anti_affinity() -> None:
    instance = problem(
        two_hosts(), [guest("a", anti_affinity=["db"]), guest("b", anti_affinity=["db", "x"])]
    )
    assert check(instance, plan(start("a", "h1"), start("b", "h2"))).ok
    report = check(instance, plan(start("a", "h1"), start("b", "h1")))
    assert_only(report, "anti_affinity")
    assert report.violations[0].guests == ("a", "b")
    assert report.violations[0].hosts == ("h1",)


def test_anti_affinity_ignores_frozen_copies() -> None:
    instance = problem(
        two_hosts(),
        [
            guest("f", state="frozen", current_host="h1", anti_affinity=["db"]),
            guest("b", anti_affinity=["db"]),
        ],
    )
    assert check(instance, plan(start("f", "h2"), start("b", "h1"))).ok


def test_together() -> None:
    instance = problem(
        two_hosts(), [guest("a", together="app"), guest("b", together="app"), guest("c")]
    )
    assert check(instance, plan(start("a", "h2"), start("b", "h2"), start("c", "h1"))).ok
    assert check(instance, plan(none("a"), none("b"), start("c", "h1"))).ok
    split = check(instance, plan(start("a", "h1"), start("b", "h2"), start("c", "h1")))
    assert_only(split, "together")
    assert split.violations[0].hosts == ("h1", "h2")
    partial = check(instance, plan(start("a", "h1"), none("b"), start("c", "h1")))
    assert_only(partial, "together")
    assert partial.violations[0].guests == ("a", "b")


def test_follows() -> None:
    """b follows a: beside a, or nowhere; a may run alone."""
    instance = problem(two_hosts(), [guest("a"), guest("b", follows="a")])
    assert check(instance, plan(start("a", "h2"), start("b", "h2"))).ok
    assert check(instance, plan(start("a", "h1"), none("b"))).ok
    assert check(instance, plan(none("a"), none("b"))).ok
    apart = check(instance, plan(start("a", "h1"), start("b", "h2")))
    assert_only(apart, "follows")
    assert apart.violations[0].hosts == ("h2", "h1")
    alone = check(instance, plan(none("a"), start("b", "h1")))
    assert_only(alone, "follows")
    assert alone.violations[0].guests == ("b", "a")


# --- capacity ----------------------------------------------------------------------------


def test_capacity_overcommit_and_reserved() -> None:
    """usable = floor((capacity - reserved) * overcommit): vcpus floor((10 - 2) * 1.5) = 12,
    ram 1000 - 100 = 900."""
    node = host(
        "h1",
        capacity={"ram_mib": 1000, "vcpus": 10},
        reserved={"ram_mib": 100, "vcpus": 2},
        overcommit={"vcpus": 1.5},
    )
    fits = problem([node], [guest("a", demand={"ram_mib": 900, "vcpus": 12})])
    report = check(fits, plan(start("a", "h1")))
    assert report.ok
    assert report.metrics["hosts"]["h1"]["vcpus"] == {"used": 12, "usable": 12, "utilisation": 1.0}

    too_many_vcpus = problem([node], [guest("a", demand={"ram_mib": 900, "vcpus": 13})])
    report = check(too_many_vcpus, plan(start("a", "h1")))
    assert_only(report, "capacity")
    assert report.violations[0].message == "host h1 vcpus at t=0 s: 13 used > 12 usable (a)"

    too_much_ram = problem([node], [guest("a", demand={"ram_mib": 901, "vcpus": 1})])
    assert_only(check(too_much_ram, plan(start("a", "h1"))), "capacity")


def test_capacity_of_a_resource_the_host_lacks_is_zero() -> None:
    instance = problem(
        [host("h1"), host("h2", capacity={"ram_mib": 1000, "gpus": 1})],
        [guest("a", demand={"ram_mib": 1, "gpus": 1})],
    )
    assert check(instance, plan(start("a", "h2"))).ok
    assert_only(check(instance, plan(start("a", "h1"))), "capacity")


def test_one_capacity_violation_per_host_and_resource_at_its_worst_instant() -> None:
    """Four 300 MiB guests start on one 1000 MiB host at t = 0, 10, 20, 30."""
    instance = problem([host("h1")], [guest(f"g{i}", 300) for i in range(4)])
    report = check(instance, plan(*(start(f"g{i}", "h1", 10 * i) for i in range(4))))
    assert_only(report, "capacity")
    violation = report.violations[0]
    assert violation.time_s == 30
    assert "1200 used > 1000 usable" in violation.message
    assert violation.guests == ("g0", "g1", "g2", "g3")


def test_migration_holds_both_hosts_during_the_move() -> None:
    """r (600) moves h1 -> h2 during [0, 100); s (500) cannot use either host meanwhile."""
    instance = running_on_h1(migration_s=100)
    # On the source before the move ends.
    report = check(instance, plan(migrate("r", "h2", 0, 100), start("s", "h1", 50)))
    assert_only(report, "capacity")
    assert report.violations[0].hosts == ("h1",)
    assert report.violations[0].time_s == 50
    assert "r (leaving)" in report.violations[0].message
    # On the target before the move starts: the target is held from the move's start on.
    report = check(instance, plan(migrate("r", "h2", 100, 200), start("s", "h2", 0)))
    assert_only(report, "capacity")
    assert report.violations[0].time_s == 100


def test_an_overloaded_host_being_drained_is_checked_from_its_first_arrival() -> None:
    """h1 (1000 MiB) runs r1 and r2 (600 each) now: overloaded from the start. Draining it
    is no breach; a guest arriving before the move ends is, and so is keeping both."""
    instance = problem(
        [host("h1"), host("h2")],
        [
            guest("r1", 600, state="running", current_host="h1"),
            guest("r2", 600, state="running", current_host="h1"),
            guest("s", 300),
        ],
        migration=moves_in(50),
    )
    assert check(instance, plan(stay("r1", "h1"), migrate("r2", "h2", 0, 50), none("s"))).ok
    report = check(
        instance, plan(stay("r1", "h1"), migrate("r2", "h2", 0, 50), start("s", "h1", 10))
    )
    assert_only(report, "capacity")
    assert report.violations[0].time_s == 10
    assert "1500 used" in report.violations[0].message
    report = check(instance, plan(stay("r1", "h1"), stay("r2", "h1"), none("s")))
    assert_only(report, "capacity")


def test_capacity_freed_by_a_migration_is_usable_by_a_later_start() -> None:
    instance = running_on_h1(migration_s=100)
    assert check(instance, plan(migrate("r", "h2", 0, 100), start("s", "h1", 100))).ok
    assert_only(check(instance, plan(migrate("r", "h2", 0, 100), start("s", "h1", 99))), "capacity")


# --- boot pools and boot limits ----------------------------------------------------------


def test_pool_capacity() -> None:
    """Two guests each put 60 of a 100 san_iops pool while booting for 60 s."""
    instance = problem(
        two_hosts(),
        [booting("a", load={"san_iops": 60}), booting("b", load={"san_iops": 60})],
        boot_pools={"san_iops": 100},
    )
    # Half-open boot intervals: b starting when a is ready does not overlap it.
    assert check(instance, plan(start("a", "h1", 0), start("b", "h2", 60))).ok
    report = check(instance, plan(start("a", "h1", 0), start("b", "h2", 59)))
    assert_only(report, "pool_capacity")
    violation = report.violations[0]
    assert violation.time_s == 59
    assert violation.guests == ("a", "b")
    assert "120 load > 100 limit" in violation.message


def test_host_boot_cpu() -> None:
    instance = problem(
        [host("h1", boot=HostBoot(cpu=4)), host("h2")], [booting("a", cpu=3), booting("b", cpu=3)]
    )
    assert check(instance, plan(start("a", "h1", 0), start("b", "h1", 60))).ok
    assert check(instance, plan(start("a", "h1", 0), start("b", "h2", 0))).ok
    report = check(instance, plan(start("a", "h1", 0), start("b", "h1", 30)))
    assert_only(report, "host_boot_cpu")
    assert report.violations[0].time_s == 30


def test_host_max_starts() -> None:
    instance = problem(
        [host("h1", boot=HostBoot(max_starts=1)), host("h2")], [guest("a"), guest("b")]
    )
    assert check(instance, plan(start("a", "h1"), start("b", "h2"))).ok
    assert check(instance, plan(start("a", "h1", 0), start("b", "h1", 60))).ok
    assert_only(check(instance, plan(start("a", "h1"), start("b", "h1"))), "host_max_starts")


def test_max_starts_is_cluster_wide() -> None:
    instance = problem(two_hosts(), [guest("a"), guest("b")], schedule=Schedule(max_starts=1))
    assert check(instance, plan(start("a", "h1", 0), start("b", "h2", 60))).ok
    report = check(instance, plan(start("a", "h1", 0), start("b", "h2", 0)))
    assert_only(report, "max_starts")
    assert report.violations[0].hosts == ("h1", "h2")


def test_migrations_are_not_boots() -> None:
    instance = problem(
        two_hosts(),
        [guest("r", state="running", current_host="h1"), guest("a")],
        schedule=Schedule(max_starts=1, stagger_s=100),
    )
    assert check(instance, plan(migrate("r", "h2", 0, 6), start("a", "h1", 0))).ok


# --- migrations ---------------------------------------------------------------------------


def three_running_on_h1(**settings: Any) -> Problem:
    """Guests r1, r2, r3 (100 MiB each) run on h1; h2 and h3 are empty 1000 MiB hosts.
    Every migration takes 10 s; `settings` set the migration limits."""
    return problem(
        [host("h1"), host("h2"), host("h3")],
        [guest(f"r{i}", state="running", current_host="h1") for i in (1, 2, 3)],
        migration=moves_in(10, **settings),
    )


def test_migration_time_is_setup_plus_memory_over_bandwidth() -> None:
    """r (600 MiB) over 250 MiB/s with 5 s setup: 5 + ceil(600 / 250) = 8 s."""
    instance = problem(
        two_hosts(),
        [guest("r", 600, state="running", current_host="h1")],
        migration=MigrationSettings(bandwidth_mib_s=250, setup_s=5),
    )
    assert check(instance, plan(migrate("r", "h2", 3, 11))).ok
    for ready in (10, 12, 3):
        report = check(instance, plan(migrate("r", "h2", 3, ready)))
        assert_only(report, "migration_time")
        assert "takes 8 s" in report.violations[0].message
        assert report.violations[0].time_s == 3


def test_a_wrong_migration_time_is_judged_at_its_real_length() -> None:
    """The plan says r's move ends at 10, but it takes 100 s: s cannot start on h1 at 10."""
    instance = running_on_h1(migration_s=100)
    report = check(instance, plan(migrate("r", "h2", 0, 10), start("s", "h1", 10)))
    assert rules(report) == ["capacity", "migration_time"]
    assert report.metrics["objectives"]["makespan"] == 100 + 0  # the move, not s (ready 70)


def test_movable() -> None:
    instance = problem(two_hosts(), [guest("r", state="running", current_host="h1", movable=False)])
    assert check(instance, plan(stay("r", "h1"))).ok
    assert check(instance, plan(Assignment("r", None, "stop"))).ok
    report = check(instance, plan(migrate("r", "h2", 0, 6)))
    assert_only(report, "movable")
    assert report.violations[0].hosts == ("h1", "h2")
    assert report.metrics["migrations"]["immovable_running"] == 1


def test_migration_concurrency_per_host() -> None:
    """h1 loses three guests with max_per_host 1: the moves must be serialised."""
    instance = three_running_on_h1(max_per_host=1)
    serial = plan(
        migrate("r1", "h2", 0, 10), migrate("r2", "h3", 10, 20), migrate("r3", "h2", 20, 30)
    )
    report = check(instance, serial)
    assert report.ok
    assert report.metrics["migrations"] == {
        "count": 3,
        "seconds": 30,
        "peak_running": 1,
        "peak_at_s": 0,
        "peak_per_host": 1,
        "done_s": 30,
        "immovable_running": 0,
    }
    overlapping = plan(
        migrate("r1", "h2", 0, 10), migrate("r2", "h3", 5, 15), migrate("r3", "h2", 20, 30)
    )
    report = check(instance, overlapping)
    assert_only(report, "migration_concurrency")
    violation = report.violations[0]
    assert violation.hosts == ("h1",)
    assert violation.time_s == 5
    assert violation.guests == ("r1", "r2")


def test_migration_concurrency_counts_the_target_too() -> None:
    """Two moves from different sources into h3 at once break max_per_host 1 on h3 only."""
    instance = problem(
        [host("h1"), host("h2"), host("h3")],
        [
            guest("r1", state="running", current_host="h1"),
            guest("r2", state="running", current_host="h2"),
        ],
        migration=moves_in(10, max_per_host=1),
    )
    assert check(instance, plan(migrate("r1", "h3", 0, 10), migrate("r2", "h3", 10, 20))).ok
    report = check(instance, plan(migrate("r1", "h3", 0, 10), migrate("r2", "h3", 9, 19)))
    assert_only(report, "migration_concurrency")
    assert report.violations[0].hosts == ("h3",)


def test_migration_concurrency_cluster_wide() -> None:
    instance = problem(
        [host(f"h{i}") for i in range(1, 5)],
        [
            guest("r1", state="running", current_host="h1"),
            guest("r2", state="running", current_host="h2"),
        ],
        migration=moves_in(10, max_total=1),
    )
    assert check(instance, plan(migrate("r1", "h3", 0, 10), migrate("r2", "h4", 10, 20))).ok
    report = check(instance, plan(migrate("r1", "h3", 0, 10), migrate("r2", "h4", 0, 10)))
    assert_only(report, "migration_concurrency")
    assert "max_total 1" in report.violations[0].message
    assert report.violations[0].hosts == ("h1", "h3", "h2", "h4")


def test_migration_budget() -> None:
    instance = three_running_on_h1(max_moves=2)
    two = plan(migrate("r1", "h2", 0, 10), migrate("r2", "h3", 0, 10), stay("r3", "h1"))
    assert check(instance, two).ok
    three = plan(migrate("r1", "h2", 0, 10), migrate("r2", "h3", 0, 10), migrate("r3", "h2", 0, 10))
    report = check(instance, three)
    assert_only(report, "migration_budget")
    assert report.violations[0].guests == ("r1", "r2", "r3")
    none_allowed = three_running_on_h1(max_moves=0)
    assert_only(check(none_allowed, two), "migration_budget")


def test_migration_load_counts_in_its_pool() -> None:
    """Each migration adds 1 to a `network` pool of 1; a boot adds 1 as well."""
    instance = problem(
        [host("h1"), host("h2"), host("h3")],
        [
            guest("r1", state="running", current_host="h1"),
            guest("r2", state="running", current_host="h1"),
            booting("a", load={"network": 1}),
        ],
        boot_pools={"network": 1},
        migration=moves_in(10, load={"network": 1}),
    )
    fine = plan(migrate("r1", "h2", 0, 10), migrate("r2", "h3", 10, 20), start("a", "h2", 20))
    report = check(instance, fine)
    assert report.ok
    assert report.metrics["pools"]["network"] == {"limit": 1, "peak": 1, "peak_at_s": 0}
    clash = plan(migrate("r1", "h2", 0, 10), migrate("r2", "h3", 10, 20), start("a", "h2", 15))
    report = check(instance, clash)
    assert_only(report, "pool_capacity")
    assert "(a, r2 (migrating))" in report.violations[0].message
    assert report.violations[0].time_s == 15


def test_a_boot_needing_room_waits_for_the_migration_that_frees_it() -> None:
    """h1 (1000 MiB) holds r (600, moving to h2 in 40 s); s (500) may start on h1 at 40."""
    instance = running_on_h1(migration_s=40)
    assert check(instance, plan(migrate("r", "h2", 0, 40), start("s", "h1", 40))).ok
    report = check(instance, plan(migrate("r", "h2", 0, 40), start("s", "h1", 39)))
    assert_only(report, "capacity")
    assert report.violations[0].time_s == 39
    # The final state alone would pass: the same hosts with s starting after the move.
    assert report.metrics["hosts"]["h1"]["ram_mib"]["used"] == 500


# --- after -------------------------------------------------------------------------------


def test_after_started_dependency() -> None:
    instance = problem(two_hosts(), [booting("db"), booting("app", after=["db"])])
    assert check(instance, plan(start("db", "h1", 0), start("app", "h2", 60))).ok
    report = check(instance, plan(start("db", "h1", 0), start("app", "h2", 59)))
    assert_only(report, "after")
    assert report.violations[0].guests == ("app", "db")
    assert "ready at t=60 s" in report.violations[0].message


def test_after_a_staying_or_migrating_dependency_is_ready_at_zero() -> None:
    instance = problem(
        two_hosts(),
        [guest("db", state="running", current_host="h1"), booting("app", after=["db"])],
    )
    assert check(instance, plan(stay("db", "h1"), start("app", "h2", 0))).ok
    assert check(instance, plan(migrate("db", "h2", 0, 6), start("app", "h1", 0))).ok


def test_after_an_unplaced_dependency() -> None:
    instance = problem(two_hosts(), [booting("db"), booting("app", after=["db"])])
    report = check(instance, plan(none("db"), start("app", "h2", 100)))
    assert_only(report, "after")
    assert "not placed" in report.violations[0].message
    # A stopped running dependency is not placed either.
    running = problem(
        two_hosts(),
        [guest("db", state="running", current_host="h1"), booting("app", after=["db"])],
    )
    assert_only(
        check(running, plan(Assignment("db", None, "stop"), start("app", "h2", 0))), "after"
    )
    # Nothing starts, nothing waits.
    assert check(instance, plan(none("db"), none("app"))).ok


# --- start groups and stagger ------------------------------------------------------------


def test_start_group() -> None:
    instance = problem(two_hosts(), [booting("a", group="web"), booting("b", group="web")])
    assert check(instance, plan(start("a", "h1", 10), start("b", "h2", 10))).ok
    # A member left unplaced does not hold the others back.
    assert check(instance, plan(start("a", "h1", 10), none("b"))).ok
    report = check(instance, plan(start("a", "h1", 10), start("b", "h2", 20)))
    assert_only(report, "start_group")
    assert report.violations[0].guests == ("a", "b")


def test_stagger_between_ungrouped_guests() -> None:
    instance = problem(two_hosts(), [guest("a"), guest("b")], schedule=Schedule(stagger_s=30))
    assert check(instance, plan(start("a", "h1", 0), start("b", "h2", 30))).ok
    report = check(instance, plan(start("a", "h1", 0), start("b", "h2", 29)))
    assert_only(report, "stagger")
    assert report.violations[0].time_s == 29


def test_stagger_with_start_groups() -> None:
    """Group web (a, b) and group db (c, d) start together inside, 30 s apart outside;
    e is ungrouped."""
    instance = problem(
        [host("h1")],
        [
            booting("a", group="web"),
            booting("b", group="web"),
            booting("c", group="db"),
            booting("d", group="db"),
            booting("e"),
        ],
        schedule=Schedule(stagger_s=30),
    )
    good = plan(
        start("a", "h1", 0),
        start("b", "h1", 0),
        start("c", "h1", 30),
        start("d", "h1", 30),
        start("e", "h1", 90),
    )
    assert check(instance, good).ok
    too_close = plan(
        start("a", "h1", 0),
        start("b", "h1", 0),
        start("c", "h1", 20),
        start("d", "h1", 20),
        start("e", "h1", 90),
    )
    report = check(instance, too_close)
    assert_only(report, "stagger")
    assert set(report.violations[0].guests) == {"a", "b", "c", "d"}
    # An ungrouped guest starting with a group is a separate start: one breach.
    with_group = plan(
        start("a", "h1", 0),
        start("b", "h1", 0),
        start("c", "h1", 30),
        start("d", "h1", 30),
        start("e", "h1", 30),
    )
    assert_only(check(instance, with_group), "stagger")


# --- horizon -----------------------------------------------------------------------------


def test_horizon() -> None:
    instance = problem(
        two_hosts(),
        [guest("a"), guest("r", state="running", current_host="h1")],
        schedule=Schedule(horizon_s=100),
    )
    assert check(instance, plan(start("a", "h1", 40), migrate("r", "h2", 94, 100))).ok
    report = check(instance, plan(start("a", "h1", 41), stay("r", "h1")))
    assert_only(report, "horizon")
    assert report.violations[0].time_s == 101
    assert_only(check(instance, plan(start("a", "h1", 0), migrate("r", "h2", 95, 101))), "horizon")


# --- invalid input -----------------------------------------------------------------------


def test_unknown_names_raise_invalid_plan_error_listing_each() -> None:
    the_plan = plan(
        start("a", "h1"),
        start("x", "h1"),
        start("b", "h9"),
        unplaced={"y": "gone"},
    )
    with pytest.raises(InvalidPlanError) as caught:
        check(two_guests(), the_plan)
    found = [(error.path, error.message) for error in caught.value.errors]
    assert found == [
        ("assignments[1].guest", "unknown guest 'x'"),
        ("assignments[2].host", "unknown host 'h9'"),
        ("unplaced[0].guest", "unknown guest 'y'"),
    ]
    with pytest.raises(InvalidPlanError):
        objective_values(two_guests(), the_plan)


# --- metrics -----------------------------------------------------------------------------


def metrics_instance() -> Problem:
    """Three 1000 MiB hosts (h3 in maintenance, with a frozen 300 MiB guest on it), a
    running guest r (200, priority 1, migration cost 5) on h1 and three stopped guests
    p, q, u loading a 100 san_iops pool by 30, 50 and 40 while they boot."""
    return problem(
        [host("h1"), host("h2"), host("h3", state="maintenance")],
        [
            guest("r", 200, state="running", current_host="h1", priority=1, migration_cost=5),
            guest("f", 300, state="frozen", current_host="h3"),
            guest("p", 300, boot=BootProfile(duration_s=60, load={"san_iops": 30}), priority=2),
            guest("q", 500, boot=BootProfile(duration_s=60, load={"san_iops": 50})),
            guest("u", 100, boot=BootProfile(duration_s=60, load={"san_iops": 40})),
        ],
        boot_pools={"san_iops": 100},
    )


def test_metrics_values() -> None:
    # Booting loads: p [0,60) 30, q [30,90) 50, u [70,130) 40 -> 30, 80, 50, 90, 40.
    the_plan = plan(
        migrate("r", "h2", 0, 6),
        none("f"),
        start("p", "h1", 0),
        start("q", "h2", 30),
        start("u", "h1", 70),
    )
    report = check(metrics_instance(), the_plan)
    assert report.ok, [v.message for v in report.violations]
    metrics = report.metrics
    assert metrics["pools"] == {"san_iops": {"limit": 100, "peak": 90, "peak_at_s": 70}}
    assert metrics["placed"] == 4
    assert metrics["unplaced"] == 1
    assert metrics["hosts"]["h1"]["ram_mib"] == {"used": 400, "usable": 1000, "utilisation": 0.4}
    assert metrics["hosts"]["h2"]["ram_mib"]["used"] == 700
    assert metrics["hosts"]["h3"]["ram_mib"]["used"] == 300  # the frozen copy
    objectives = metrics["objectives"]
    # The even load: 1400 MiB of guests (the frozen copy is on a host not online) over
    # 2000 MiB online, 7000 steps.
    even = 7000
    assert objectives == {
        "placed": 2 + 3 + 1 + 1,
        "migrations": 5,
        "recovery": 3 * 60 + 1 * 90 + 1 * 130,
        "makespan": 130,
        "balance": 0.7,  # h2; the maintenance host h3 does not count
        "consolidate": 2,
        # RAM only: h1 at 0.4 and h2 at 0.7 of 1000 MiB, in steps of 0.01 %, each one's
        # distance from the even load squared.
        "spread": (4000 - even) ** 2 + (7000 - even) ** 2,
        # Loads 4000 and 7000 steps: sd 1500 over mean 5500, over sqrt(1).
        "imbalance": pytest.approx(1500 / 5500),
    }
    # Proxmox's imbalance of loads 0.4 and 0.7: sd 0.15 over mean 0.55, sqrt(1) = 1.
    assert metrics["imbalance"] == pytest.approx(0.15 / 0.55)
    assert objective_values(metrics_instance(), the_plan) == objectives


def test_balance_and_consolidate_count_frozen_copies_on_online_hosts() -> None:
    report = check(frozen_on_h1(), plan(start("f", "h2"), none("g")))
    assert report.metrics["objectives"]["balance"] == 0.6
    assert report.metrics["objectives"]["consolidate"] == 2


def test_empty_plan_metrics() -> None:
    instance = problem(two_hosts(), [guest("a")], boot_pools={"san": 10})
    report = check(instance, plan(none("a")))
    assert report.ok
    assert report.metrics["objectives"]["makespan"] == 0
    assert report.metrics["objectives"]["balance"] == 0
    assert report.metrics["objectives"]["consolidate"] == 0
    assert report.metrics["pools"]["san"] == {"limit": 10, "peak": 0, "peak_at_s": None}


def test_report_to_dict_is_json() -> None:
    instance = metrics_instance()
    report = check(
        instance, plan(stay("r", "h1"), none("f"), start("p", "h1"), none("q"), none("u"))
    )
    data = json.loads(json.dumps(report_to_dict(report)))
    assert data["ok"] is True
    assert data["metrics"]["placed"] == 2
    broken = check(two_guests(), plan(start("a", "h1")))
    data = json.loads(json.dumps(report_to_dict(broken)))
    assert data["ok"] is False
    assert data["violations"][0]["rule"] == "assignment"
    assert set(data["violations"][0]) == {"rule", "message", "guests", "hosts", "time_s"}


def test_violations_by_rule() -> None:
    instance = problem([host("h1")], [guest("a", 600), guest("b", 600), guest("c")])
    report = check(instance, plan(start("a", "h1"), start("b", "h1")))
    grouped = violations_by_rule(report)
    assert list(grouped) == ["assignment", "capacity"]
    assert len(grouped["capacity"]) == 1


# --- properties --------------------------------------------------------------------------


@st.composite
def random_starts(draw: st.DrawFn) -> tuple[Problem, Plan]:
    """Up to 3 hosts and 8 stopped guests, each started at a random instant on a random host."""
    num_hosts = draw(st.integers(1, 3))
    hosts = [host(f"h{i}", draw(st.integers(0, 1000))) for i in range(num_hosts)]
    guests, assignments = [], []
    for index in range(draw(st.integers(1, 8))):
        duration_s = draw(st.integers(0, 50))
        guests.append(guest(f"g{index}", draw(st.integers(0, 500)), duration_s=duration_s))
        on = f"h{draw(st.integers(0, num_hosts - 1))}"
        assignments.append(start(f"g{index}", on, draw(st.integers(0, 100)), duration_s))
    return problem(hosts, guests), plan(*assignments)


@settings(max_examples=60, deadline=None)
@given(random_starts())
def test_capacity_matches_the_final_state_when_guests_only_start(
    case: tuple[Problem, Plan],
) -> None:
    """Starts only add load, so a host is overloaded at some instant iff it is at the end."""
    instance, the_plan = case
    report = check(instance, the_plan)
    overloaded = {v.hosts[0] for v in report.violations if v.rule == "capacity"}
    expected = {
        name
        for name, resources in report.metrics["hosts"].items()
        if resources["ram_mib"]["used"] > resources["ram_mib"]["usable"]
    }
    assert overloaded == expected
    assert set(rules(report)) <= {"capacity"}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 100), st.integers(0, 60), st.integers(0, 40)),
        min_size=1,
        max_size=8,
    ),
    st.integers(0, 120),
)
def test_pool_peak_matches_brute_force(boots: list[tuple[int, int, int]], limit: int) -> None:
    """The pool peak equals the highest load over every whole second, and is reached at
    the reported instant."""
    guests = [
        guest(f"g{i}", 0, boot=BootProfile(duration_s=d, load={"san": load}))
        for i, (_, d, load) in enumerate(boots)
    ]
    instance = problem([host("h1")], guests, boot_pools={"san": limit})
    the_plan = plan(*(start(f"g{i}", "h1", at, d) for i, (at, d, _) in enumerate(boots)))
    report = check(instance, the_plan)

    def load_at(t: int) -> int:
        return sum(load for at, d, load in boots if at <= t < at + d)

    peak = max(load_at(t) for t in range(0, 161))
    pool = report.metrics["pools"]["san"]
    assert pool["peak"] == peak
    if peak:
        assert load_at(pool["peak_at_s"]) == peak
    assert (peak > limit) == ("pool_capacity" in rules(report))


@st.composite
def random_plans(draw: st.DrawFn) -> tuple[Problem, Plan]:
    """Any small problem with any plan naming only its guests and hosts: wrong actions,
    missing or negative times, repeated and missing assignments included."""
    num_hosts = draw(st.integers(1, 3))
    states = st.sampled_from(["online", "maintenance", "failed"])
    hosts = [
        host(
            f"h{i}",
            draw(st.integers(0, 500)),
            state=draw(states),
            boot=HostBoot(cpu=draw(st.none() | st.integers(0, 3)), max_starts=1),
        )
        for i in range(num_hosts)
    ]
    host_names = [h.name for h in hosts]
    num_guests = draw(st.integers(1, 6))
    guests = []
    for index in range(num_guests):
        state = draw(st.sampled_from(["running", "stopped", "frozen"]))
        guests.append(
            Guest(
                name=f"g{index}",
                demand={"ram_mib": draw(st.integers(0, 300))},
                state=state,
                movable=draw(st.booleans()),
                current_host=draw(st.sampled_from(host_names)) if state != "stopped" else None,
                anti_affinity=draw(st.sets(st.sampled_from(["a", "b"]))),
                together=draw(st.none() | st.just("t")),
                boot=BootProfile(
                    duration_s=draw(st.integers(0, 30)),
                    load={"san": draw(st.integers(0, 5))},
                    cpu=draw(st.integers(0, 2)),
                    after=[f"g{j}" for j in range(index) if draw(st.booleans())],
                    group=draw(st.none() | st.just("grp")),
                ),
            )
        )
    times = st.none() | st.integers(-5, 120)
    assignments = [
        Assignment(
            f"g{draw(st.integers(0, num_guests - 1))}",
            draw(st.none() | st.sampled_from(host_names)),
            draw(st.sampled_from(["start", "stay", "migrate", "stop", "none"])),
            draw(times),
            draw(times),
        )
        for _ in range(draw(st.integers(0, num_guests + 2)))
    ]
    reasons = {f"g{i}": "why" for i in range(num_guests) if draw(st.booleans())}
    instance = problem(
        hosts,
        guests,
        boot_pools={"san": 5},
        schedule=Schedule(stagger_s=draw(st.integers(0, 20)), max_starts=2, horizon_s=100),
        migration=MigrationSettings(
            bandwidth_mib_s=draw(st.integers(1, 200)),
            setup_s=draw(st.integers(0, 10)),
            max_per_host=draw(st.none() | st.integers(1, 2)),
            max_total=draw(st.none() | st.integers(1, 2)),
            max_moves=draw(st.none() | st.integers(0, 2)),
            load={"san": draw(st.integers(0, 3))},
        ),
    )
    return instance, plan(*assignments, unplaced=reasons)


@settings(max_examples=80, deadline=None)
@given(random_plans())
def test_any_plan_gets_a_verdict(case: tuple[Problem, Plan]) -> None:
    """Whatever the plan says, the checker judges it without failing, with known rule ids,
    JSON-ready output and the same objective values as `objective_values`."""
    instance, the_plan = case
    report = check(instance, the_plan)
    assert set(rules(report)) <= set(RULES)
    assert all(v.message for v in report.violations)
    json.dumps(report_to_dict(report))
    assert report.metrics["objectives"] == objective_values(instance, the_plan)
    assert report.metrics["placed"] + report.metrics["unplaced"] == len(instance.guests)


# --- speed -------------------------------------------------------------------------------


def test_large_plan_is_checked_quickly() -> None:
    """10,000 guests on 1,000 hosts, every guest booting, checked in well under seconds."""
    hosts = [
        host(
            f"h{i}", capacity={"ram_mib": 262144, "vcpus": 64}, boot=HostBoot(cpu=32, max_starts=4)
        )
        for i in range(1000)
    ]
    guests = [
        guest(
            f"g{i}",
            demand={"ram_mib": 4096, "vcpus": 2},
            boot=BootProfile(duration_s=60, load={"san": 100}, cpu=2, group=f"grp{i // 5}"),
            anti_affinity=[f"c{i % 7}"] if i % 3 == 0 else [],
        )
        for i in range(10_000)
    ]
    instance = problem(
        hosts,
        guests,
        boot_pools={"san": 10**9},
        schedule=Schedule(stagger_s=1, max_starts=10_000, horizon_s=10**6),
    )
    the_plan = plan(*(start(f"g{i}", f"h{i % 1000}", 60 * (i // 5)) for i in range(10_000)))
    began = time.perf_counter()
    report = check(instance, the_plan)
    elapsed_s = time.perf_counter() - began
    assert report.ok, report.violations[:3]
    assert elapsed_s < 5.0
