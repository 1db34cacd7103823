"""Structural contradictions are reported as diagnostics naming the guests they keep out."""

from __future__ import annotations

import attrs

from placement.diagnostics import diagnose
from placement.model import (
    BootProfile,
    Guest,
    GuestState,
    Host,
    HostBoot,
    HostState,
    Problem,
    Schedule,
)


def two_hosts() -> list[Host]:
    """Two 64 GiB / 16-core hosts, `big` labelled ssd; `small` has 8 GiB reserved."""
    return [
        Host(name="big", capacity={"ram_mib": 65536, "vcpus": 16}, labels=["ssd"]),
        Host(name="small", capacity={"ram_mib": 65536, "vcpus": 16}, reserved={"ram_mib": 8192}),
    ]


def rules(problem: Problem) -> dict[str, tuple[str, ...]]:
    return {d.rule: d.guests for d in diagnose(problem)}


def test_a_feasible_problem_has_no_diagnostics() -> None:
    guests = [Guest(name=f"vm{i}", demand={"ram_mib": 4096}) for i in range(4)]
    assert diagnose(Problem(hosts=two_hosts(), guests=guests)) == []


def test_guest_larger_than_every_allowed_host_names_the_resource() -> None:
    guests = [Guest(name="hana", demand={"ram_mib": 98304})]
    (diagnostic,) = diagnose(Problem(hosts=two_hosts(), guests=guests))
    assert diagnostic.rule == "too_large"
    assert diagnostic.message == (
        "guest 'hana' needs 98304 ram_mib; largest usable on allowed hosts: 65536"
    )


def test_reserved_capacity_counts_against_the_allowed_host() -> None:
    """60 GiB fits `big` (64 GiB) but not `small` (64 - 8 GiB reserved)."""
    fits = Guest(name="a", demand={"ram_mib": 61440}, hosts=["big"])
    does_not = Guest(name="b", demand={"ram_mib": 61440}, hosts=["small"])
    assert rules(Problem(hosts=two_hosts(), guests=[fits, does_not])) == {"too_large": ("b",)}


def test_together_group_with_two_guests_of_one_class() -> None:
    guests = [
        Guest(name="a", demand={}, together="g", anti_affinity=["dns"]),
        Guest(name="b", demand={}, together="g", anti_affinity=["dns"]),
        Guest(name="c", demand={}, together="g"),
    ]
    assert rules(Problem(hosts=two_hosts(), guests=guests)) == {
        "together_anti_affinity": ("a", "b", "c")
    }


def test_together_group_too_large_for_any_host() -> None:
    guests = [Guest(name=n, demand={"ram_mib": 40000}, together="g") for n in ("a", "b")]
    assert rules(Problem(hosts=two_hosts(), guests=guests)) == {"too_large": ("a", "b")}


def test_allowed_hosts_all_down_and_missing_label() -> None:
    hosts = [*two_hosts(), Host(name="down", capacity={"ram_mib": 1}, state=HostState.FAILED)]
    guests = [
        Guest(name="pinned", demand={}, hosts=["down"]),
        Guest(name="needs-nvme", demand={}, labels=["nvme"]),
    ]
    assert rules(Problem(hosts=hosts, guests=guests)) == {"no_allowed_host": ("needs-nvme",)}
    assert [d.guests for d in diagnose(Problem(hosts=hosts, guests=guests))] == [
        ("pinned",),
        ("needs-nvme",),
    ]


def test_frozen_guest_replacement_cannot_use_its_own_host() -> None:
    guests = [
        Guest(
            name="crashed",
            demand={},
            state=GuestState.FROZEN,
            current_host="big",
            hosts=["big"],
        )
    ]
    assert rules(Problem(hosts=two_hosts(), guests=guests)) == {"no_allowed_host": ("crashed",)}


def test_anti_affinity_class_larger_than_usable_hosts() -> None:
    guests = [Guest(name=f"mc{i}", demand={}, anti_affinity=["multicast"]) for i in range(3)]
    (diagnostic,) = diagnose(Problem(hosts=two_hosts(), guests=guests))
    assert diagnostic.rule == "anti_affinity_class"
    assert "at most 2 can be placed" in diagnostic.message


def test_boot_limits_that_can_never_be_met() -> None:
    hosts = [Host(name="h", capacity={"ram_mib": 1024}, boot=HostBoot(cpu=4))]
    guests = [
        Guest(name="heavy", demand={}, boot=BootProfile(load={"san": 9000})),
        Guest(name="hot", demand={}, boot=BootProfile(cpu=8)),
        Guest(name="slow", demand={}, boot=BootProfile(duration_s=7200)),
    ]
    problem = Problem(
        hosts=hosts, guests=guests, boot_pools={"san": 8000}, schedule=Schedule(horizon_s=3600)
    )
    assert rules(problem) == {
        "boot_pool_too_small": ("heavy",),
        "boot_cpu_too_small": ("hot",),
        "horizon_too_short": ("slow",),
    }


def test_dependants_of_an_unplaceable_guest_are_reported_but_not_running_ones() -> None:
    guests = [
        Guest(name="db", demand={"ram_mib": 10**6}),
        Guest(name="app", demand={}, boot=BootProfile(after=["db"])),
        Guest(name="web", demand={}, boot=BootProfile(after=["app"])),
        Guest(
            name="old",
            demand={},
            state=GuestState.RUNNING,
            current_host="big",
            boot=BootProfile(after=["db"]),
        ),
    ]
    found = diagnose(Problem(hosts=two_hosts(), guests=guests))
    assert {d.guests[0]: d.rule for d in found} == {
        "db": "too_large",
        "app": "dependency_unplaceable",
        "web": "dependency_unplaceable",
    }


def test_a_running_guest_that_cannot_move_off_a_host_in_maintenance_can_only_stop() -> None:
    hosts = [
        Host(name="old", capacity={"ram_mib": 65536}, state="maintenance"),
        Host(name="new", capacity={"ram_mib": 65536}),
    ]
    guests = [
        Guest(
            name="db",
            demand={"ram_mib": 4096},
            state="running",
            current_host="old",
            movable=False,
        ),
        Guest(name="web", demand={"ram_mib": 4096}, state="running", current_host="old"),
    ]
    (diagnostic,) = diagnose(Problem(hosts=hosts, guests=guests))
    assert diagnostic.rule == "immovable"
    assert diagnostic.guests == ("db",)
    assert diagnostic.message == (
        "guest 'db' runs on old, which is in maintenance, and cannot be live-migrated "
        "(movable: false): it can only be stopped"
    )
    # On a host that stays online it may stay: nothing to report.
    online = [attrs.evolve(hosts[0], state="online"), hosts[1]]
    assert diagnose(Problem(hosts=online, guests=guests)) == []


def test_a_follower_needs_a_host_beside_its_leader_and_a_placeable_leader() -> None:
    """b follows a, but only `small` may take b and only `big` a: b can never run. d
    follows c, which is too large anywhere, and e follows d: both are out too."""
    guests = [
        Guest(name="a", demand={}, hosts=["big"]),
        Guest(name="b", demand={}, hosts=["small"], follows="a"),
        Guest(name="c", demand={"ram_mib": 10**6}),
        Guest(name="d", demand={}, follows="c"),
        Guest(name="e", demand={}, follows="d"),
        Guest(name="f", demand={"ram_mib": 40000}),
        Guest(name="g", demand={"ram_mib": 40000}, follows="f"),
    ]
    found = {d.guests[0]: d.rule for d in diagnose(Problem(hosts=two_hosts(), guests=guests))}
    assert found == {
        "b": "follows_apart",
        "c": "too_large",
        "d": "follows_unplaceable",
        "e": "follows_unplaceable",
        "g": "follows_apart",
    }
