"""The Pacemaker re-creations: placement strategies worked by hand, and their properties."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import HealthCheck, given, settings

from placement.check import check
from placement.model import PACEMAKER_INFINITY, Guest, Host, PacemakerSettings, Problem
from placement.rules import host_filters, rules_in_family
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
@pytest.mark.parametrize("transition", [False, True], ids=["running-stay", "transition"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_pacemaker_is_deterministic_and_never_overloads(
    strategy: str, transition: bool, problem: Problem
) -> None:
    """With Pacemaker's scores (`transition`) every guest is assigned afresh; either
    way the same plan twice, and no rule a strategy checks is broken."""
    if transition:
        problem = attrs.evolve(problem, pacemaker=PacemakerSettings())
    name = f"pacemaker-{strategy}"
    first = solve(problem, name, SolveOptions(schedule="all-at-once"))
    second = solve(problem, name, SolveOptions(schedule="all-at-once"))
    assert first.assignments == second.assignments
    assert first.unplaced == second.unplaced
    broken = {v.rule for v in check(problem, first).violations}
    assert not broken & {*rules_in_family("plan"), *host_filters()}
    if not _group_with_inner_clash(problem):
        assert "anti_affinity" not in broken
    if not _frozen_overload(problem):
        assert "capacity" not in broken


# --- Pacemaker's transition: every resource assigned afresh (problem.pacemaker) ---------


def _transition(
    guests: list[Guest], stickiness: dict[str, int] | None = None, **scores: dict[str, int]
) -> Problem:
    """Two hosts of 1024 and `guests`, with Pacemaker's scores (so everything is
    reassigned at each transition)."""
    return Problem(
        hosts=[ram_host("node1", 1024), ram_host("node2", 1024)],
        guests=guests,
        pacemaker=PacemakerSettings(stickiness=stickiness or {}, scores=scores),
    )


def test_a_higher_priority_resource_preempts_running_ones() -> None:
    """As utilization-order2: rsc4 (1024, priority 3) is stopped, rsc3 (512, priority 2)
    runs on node1, rsc1 (768) on node2. Pacemaker assigns rsc4 first, to node1 (both
    empty, name), moves rsc3 to node2 and has no room left for rsc1. Without Pacemaker's
    scores running guests stay and rsc4 finds no room."""
    guests = [
        ram_guest("rsc1", 768, current_host="node2", state="running"),
        ram_guest("rsc3", 512, priority=2, current_host="node1", state="running"),
        ram_guest("rsc4", 1024, priority=3),
    ]
    placed = pacemaker_placement(_transition(guests), "utilization").hosts
    assert placed == {"rsc4": "node1", "rsc3": "node2", "rsc1": None}
    kept = pacemaker_placement(Problem(hosts=_transition(guests).hosts, guests=guests))
    assert kept.hosts["rsc4"] is None


def test_stickiness_keeps_a_running_resource_against_a_finite_preference() -> None:
    """vm runs on node1 and prefers node2 by 50: with stickiness 0 it moves there, with
    100 it stays (its score on node1 is then 100 > 50)."""
    guests = [ram_guest("vm", 512, current_host="node1", state="running")]
    moved = pacemaker_placement(_transition(guests, vm={"node2": 50}), "balanced")
    assert moved.hosts == {"vm": "node2"}
    stays = pacemaker_placement(_transition(guests, {"vm": 100}, vm={"node2": 50}), "balanced")
    assert stays.hosts == {"vm": "node1"}


def test_a_negative_score_keeps_a_resource_off_that_host() -> None:
    guests = [ram_guest("vm", 512)]
    placed = pacemaker_placement(_transition(guests, vm={"node1": -10}), "minimal")
    assert placed.hosts == {"vm": "node2"}
    nowhere = _transition(guests, vm={"node1": -10, "node2": -1})
    assert pacemaker_placement(nowhere, "minimal").hosts == {"vm": None}


def test_running_resources_are_assigned_before_stopped_ones_of_equal_priority() -> None:
    """A stopped resource scores -INFINITY on its (absent) current node, so the running
    one, listed later, is assigned first and keeps its node; the stopped one of the same
    size finds no room left (minimal packs onto node1 by name otherwise)."""
    guests = [
        ram_guest("new", 1024),
        ram_guest("old", 1024, current_host="node2", state="running"),
    ]
    problem = Problem(
        hosts=[ram_host("node1", 1024), ram_host("node2", 1024)],
        guests=guests,
        pacemaker=PacemakerSettings(scores={"old": {"node1": 10}}),
    )
    # old goes first and takes node1 (score 10); new then gets node2.
    assert pacemaker_placement(problem, "minimal").hosts == {"old": "node1", "new": "node2"}


def test_a_primary_goes_to_the_most_free_host_when_its_dependents_fit_nowhere() -> None:
    """colocated-utilization-primitive-2: rsc2 and rsc3 (priority 1) follow rsc1, 2 cpu
    each, on hosts of 2 and 4. rsc3 goes first and assigns rsc1 first; the three (6)
    fit nowhere, so rsc1 takes the host with the most free capacity, node2, and only
    rsc3 fits beside it."""
    problem = Problem(
        hosts=[Host(name="node1", capacity={"cpu": 2}), Host(name="node2", capacity={"cpu": 4})],
        guests=[
            Guest(name="rsc1", demand={"cpu": 2}),
            Guest(name="rsc2", demand={"cpu": 2}, follows="rsc1"),
            Guest(name="rsc3", demand={"cpu": 2}, follows="rsc1", priority=1),
        ],
        pacemaker=PacemakerSettings(),
    )
    placed = pacemaker_placement(problem, "utilization").hosts
    assert placed == {"rsc1": "node2", "rsc3": "node2", "rsc2": None}


def test_a_dependent_pulls_its_primary_to_the_host_it_prefers_but_bans_nothing() -> None:
    """app follows db and prefers node2 (score 100): db goes there too, where minimal
    alone would take node1. app's ban of node1 is not passed on: when app may not use
    node2 either, db still takes node1."""
    guests = [ram_guest("db", 256), ram_guest("app", 256, follows="db")]
    pulled = _transition(guests, app={"node2": 100})
    assert pacemaker_placement(pulled, "minimal").hosts == {"db": "node2", "app": "node2"}
    banned = _transition(guests, app={"node1": -PACEMAKER_INFINITY, "node2": -1})
    assert pacemaker_placement(banned, "minimal").hosts == {"db": "node1", "app": None}


def test_default_ignores_utilization_and_keeps_configuration_order() -> None:
    """placement-strategy=default: no capacity check (both land, node1 is overloaded
    when the count ties break by name) and no sorting but by priority: `later` (running,
    listed second) does not go first as it would with a strategy."""
    guests = [
        ram_guest("first", 1024),
        ram_guest("later", 1024, current_host="node2", state="running"),
        ram_guest("big", 2048, priority=1),
    ]
    placed = pacemaker_placement(_transition(guests), "default").hosts
    # big (priority 1) first: node1 by name; first: node2 (fewer resources); later:
    # a tie at one each, so the node it runs on.
    assert placed == {"big": "node1", "first": "node2", "later": "node2"}
    plan = solve(_transition(guests), "pacemaker-default")
    assert {v.rule for v in check(_transition(guests), plan).violations} == {"capacity"}


def test_clone_instances_that_can_stay_stay_before_any_moves() -> None:
    """utilization-order2's clone: `c:0` runs on node1, which rsc4 (priority 3) takes;
    `c:1` runs on node2 and has room there. The instances are interchangeable: `c:1`
    stays, `c:0` finds no other room and stops (it does not take node2 from `c:1`)."""
    guests = [
        ram_guest("rsc4", 1024, priority=3),
        ram_guest(
            "c:0", 512, priority=1, current_host="node1", state="running", anti_affinity=["clone:c"]
        ),
        ram_guest(
            "c:1", 512, priority=1, current_host="node2", state="running", anti_affinity=["clone:c"]
        ),
    ]
    problem = Problem(
        hosts=[ram_host("node1", 1024), ram_host("node2", 1024)],
        guests=guests,
        pacemaker=PacemakerSettings(clones={"c": ["c:0", "c:1"]}),
    )
    placed = pacemaker_placement(problem, "utilization").hosts
    assert placed == {"rsc4": "node1", "c:1": "node2", "c:0": None}
