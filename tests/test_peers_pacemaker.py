"""The Pacemaker re-creations: placement strategies worked by hand, and their properties."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from placement.check import check
from placement.model import Guest, Host, Problem
from placement.solvers import SolveOptions, solve
from placement.solvers.peers.pacemaker import (
    Strategy,
    _resource_order,
    _units,
    pacemaker_placement,
)
from tests.test_peers_proxmox import _group_with_inner_clash, _problems

STRATEGIES = ["balanced", "utilization", "minimal"]


def ram_host(name: str, ram: int, **kw: object) -> Host:
    return Host(name=name, capacity={"ram": ram}, **kw)  # type: ignore[arg-type]


def ram_guest(name: str, ram: int, **kw: object) -> Guest:
    return Guest(name=name, demand={"ram": ram}, **kw)  # type: ignore[arg-type]


@pytest.fixture
def two_halves_then_a_whole() -> Problem:
    """Two hosts of 10; two resources of 5 (higher priority), then one of 10.

    balanced: r1 -> a (all equal, name), r2 -> b (5 free beats 10... b has 10 free, a 5),
    big fits nowhere (5 free on each) and stays stopped, although it fits on an empty
    host. minimal packs r1 and r2 onto a, leaving b for big.
    """
    return Problem(
        hosts=[ram_host("a", 10), ram_host("b", 10)],
        guests=[
            ram_guest("r1", 5, priority=2),
            ram_guest("r2", 5, priority=1),
            ram_guest("big", 10),
        ],
    )


def test_balanced_leaves_stopped_what_fits_elsewhere(two_halves_then_a_whole: Problem) -> None:
    balanced = pacemaker_placement(two_halves_then_a_whole, "balanced")
    assert balanced.hosts == {"r1": "a", "r2": "b", "big": None}
    assert "capacity" in balanced.reasons["big"]
    utilization = pacemaker_placement(two_halves_then_a_whole, "utilization")
    assert utilization.hosts == {"r1": "a", "r2": "b", "big": None}
    minimal = pacemaker_placement(two_halves_then_a_whole, "minimal")
    assert minimal.hosts == {"r1": "a", "r2": "a", "big": "b"}


def test_balanced_counts_attributes_not_amounts() -> None:
    """a has far more RAM but b more of two attributes out of three: b is preferred."""
    problem = Problem(
        hosts=[
            Host(name="a", capacity={"ram": 1000, "cpu": 4, "disk": 10}),
            Host(name="b", capacity={"ram": 10, "cpu": 5, "disk": 11}),
        ],
        guests=[Guest(name="r", demand={"ram": 1})],
    )
    assert pacemaker_placement(problem, "balanced").hosts["r"] == "b"
    assert pacemaker_placement(problem, "utilization").hosts["r"] == "a"


def test_utilization_prefers_fewer_resources_then_current_node_then_name() -> None:
    """b holds one running resource, a none: a wins on count. Then with equal counts the
    resource's current node (c) wins over the name order."""
    problem = Problem(
        hosts=[ram_host("a", 100), ram_host("b", 100), ram_host("c", 100)],
        guests=[
            ram_guest("run", 1, current_host="b", state="running"),
            ram_guest("r1", 50, priority=1),
            ram_guest("r2", 1, current_host="c"),
        ],
    )
    hosts = pacemaker_placement(problem, "utilization").hosts
    assert hosts["r1"] == "a"
    assert hosts["r2"] == "c"  # a, b, c each hold one resource now; c is its node
    assert pacemaker_placement(problem, "minimal").hosts["r2"] == "a"


def test_priority_first_then_configuration_order() -> None:
    """low comes first in the file but high has the higher priority and takes the room."""
    problem = Problem(
        hosts=[ram_host("a", 8)],
        guests=[ram_guest("low", 8), ram_guest("high", 8, priority=5), ram_guest("late", 8)],
    )
    hosts = pacemaker_placement(problem, "balanced").hosts
    assert hosts == {"low": None, "high": "a", "late": None}


def test_capacity_check_allows_an_exact_fit_and_counts_staying_and_frozen_guests() -> None:
    problem = Problem(
        hosts=[ram_host("a", 10), ram_host("b", 10)],
        guests=[
            ram_guest("stays", 4, current_host="a", state="running"),
            ram_guest("crashed", 7, current_host="b", state="frozen"),
            ram_guest("six", 6),
            ram_guest("seven", 7),
        ],
    )
    hosts = pacemaker_placement(problem, "minimal").hosts
    assert hosts["six"] == "a"  # 4 + 6 = 10: exact fit on a; b has 3 left
    assert hosts["crashed"] is None  # its replacement fits nowhere: a 0 left, b 3 left
    assert hosts["seven"] is None


def test_usable_capacity_includes_overcommit_and_reservation() -> None:
    problem = Problem(
        hosts=[
            Host(
                name="a",
                capacity={"vcpus": 8},
                overcommit={"vcpus": 4.0},
                reserved={"vcpus": 2},
            )
        ],
        guests=[Guest(name="r", demand={"vcpus": 24}), Guest(name="s", demand={"vcpus": 1})],
    )
    hosts = pacemaker_placement(problem, "balanced").hosts
    assert hosts == {"r": "a", "s": None}  # (8 - 2) * 4 = 24


def test_anti_affinity_and_node_rules_exclude_nodes() -> None:
    problem = Problem(
        hosts=[ram_host("a", 10), ram_host("b", 10), ram_host("c", 10, state="maintenance")],
        guests=[
            ram_guest("db1", 1, current_host="a", state="running", anti_affinity=["db"]),
            ram_guest("db2", 1, anti_affinity=["db"]),
            ram_guest("db3", 1, anti_affinity=["db"]),
            ram_guest("pinned", 1, hosts=["c"]),
        ],
    )
    for strategy in STRATEGIES:
        placement = pacemaker_placement(problem, strategy)
        assert placement.hosts["db2"] == "b"
        assert placement.hosts["db3"] is None
        assert "anti-affinity" in placement.reasons["db3"]
        assert placement.hosts["pinned"] is None


def test_a_group_goes_where_all_fit_or_its_members_follow_the_first() -> None:
    """Group g (3 + 3) fits only on b (6 free). Group h (4 + 4) fits on no host as a
    whole after that: its first member goes to a (4 free), the second stays stopped."""
    problem = Problem(
        hosts=[ram_host("a", 4), ram_host("b", 6)],
        guests=[
            ram_guest("g1", 3, together="g", priority=1),
            ram_guest("g2", 3, together="g", priority=1),
            ram_guest("h1", 4, together="h"),
            ram_guest("h2", 4, together="h"),
        ],
    )
    hosts = pacemaker_placement(problem, "balanced").hosts
    assert hosts["g1"] == hosts["g2"] == "b"
    assert hosts["h1"] == "a"
    assert hosts["h2"] is None
    # The plan unplaces the lone member (a together group is all or nothing).
    plan = solve(problem, "pacemaker-balanced", SolveOptions(schedule="all-at-once"))
    assert {u.guest for u in plan.unplaced} == {"h1", "h2"}


def test_equal_priorities_put_a_resource_banned_from_the_first_node_later() -> None:
    """Pacemaker compares node scores node by node (in the cluster's node order) before
    configuration order: `free` may use a, the first node, and `only_b` may not."""
    problem = Problem(
        hosts=[ram_host("a", 10), ram_host("b", 10)],
        guests=[ram_guest("only_b", 1, hosts=["b"]), ram_guest("free", 1)],
    )
    online = list(problem.hosts)
    order = _resource_order(problem, _units(problem, problem.guests), online, Strategy.MINIMAL)
    assert [unit[0].name for unit in order] == ["free", "only_b"]


# --- properties --------------------------------------------------------------------------


def _frozen_overload(problem: Problem) -> bool:
    """Whether frozen copies alone overload some host (a breach no plan can avoid)."""
    for host in problem.hosts:
        for resource in host.capacity:
            held = sum(
                g.demand.get(resource, 0)
                for g in problem.guests
                if g.current_host == host.name and problem.holds_current_host(g)
            )
            if held > host.usable(resource):
                return True
    return False


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_problems())
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_pacemaker_is_deterministic_and_never_overloads(strategy: str, problem: Problem) -> None:
    name = f"pacemaker-{strategy}"
    first = solve(problem, name, SolveOptions(schedule="all-at-once"))
    second = solve(problem, name, SolveOptions(schedule="all-at-once"))
    assert first.assignments == second.assignments
    assert first.unplaced == second.unplaced
    broken = {v.rule for v in check(problem, first).violations}
    assert not broken & {
        "assignment",
        "unplaced",
        "host_state",
        "allowed_hosts",
        "avoided_hosts",
        "labels",
        "frozen",
    }
    if not _group_with_inner_clash(problem):
        assert "anti_affinity" not in broken
    if not _frozen_overload(problem):
        assert "capacity" not in broken
