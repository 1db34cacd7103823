"""The Proxmox HA re-creations: TOPSIS worked by hand, candidate rules, no capacity check."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from placement.check import check
from placement.model import Guest, Host, Problem, ProxmoxNodeAffinity, ProxmoxSettings
from placement.rules import host_filters, rules_in_family
from placement.solvers import SolveOptions, solve
from placement.solvers.peers._shared import natural_key
from placement.solvers.peers.proxmox import (
    StaticUsage,
    proxmox_basic_placement,
    proxmox_static_placement,
    topsis_scores,
)
from tests.strategies import problems

GIB = 1024


def host(name: str, cpus: int, ram_gib: int, **kw: object) -> Host:
    return Host(name=name, capacity={"vcpus": cpus, "ram_mib": ram_gib * GIB}, **kw)  # type: ignore[arg-type]


def guest(name: str, cpus: int, ram_gib: int, **kw: object) -> Guest:
    return Guest(name=name, demand={"vcpus": cpus, "ram_mib": ram_gib * GIB}, **kw)  # type: ignore[arg-type]


def test_topsis_two_nodes_worked_by_hand() -> None:
    """Two empty nodes: a (4 CPUs, 16 GiB) and b (8 CPUs, 8 GiB); a guest of 2 CPUs, 4 GiB.

    Put on a, the per-node ratios are CPU (0.5, 0) and memory (0.25, 0):
        row a = [1 + sqrt(0.25/2), 1 + 0.5, 1 + sqrt(0.0625/2), 1 + 0.25]
              = [1.353553, 1.5, 1.176777, 1.25]
    Put on b, CPU (0, 0.25) and memory (0, 0.5):
        row b = [1.176777, 1.25, 1.353553, 1.5]
    Column 0 and column 2 hold the same pair of values, and so do columns 1 and 3, so
    after dividing by the column norms the differences between the rows are x (columns
    0 and 2) and y (columns 1 and 3). a is worst on the CPU columns, b on memory. With
    weights (1, 2, 5, 10) / 18:
        d_best(a)  = sqrt((1x)^2 + (2y)^2) / 18 =     sqrt(x^2 + 4y^2) / 18
        d_worst(a) = sqrt((5x)^2 + (10y)^2) / 18 = 5 * sqrt(x^2 + 4y^2) / 18
    so score(a) = 5 / (1 + 5) = 5/6 and, by symmetry, score(b) = 1/6: memory weighs five
    times more than CPU, and a wins.
    """
    usage = StaticUsage(["a", "b"], [4, 8], [16 * GIB, 8 * GIB])
    rows = usage.criteria(2.0, 4.0 * GIB)
    assert rows[0] == pytest.approx([1.353553, 1.5, 1.176777, 1.25], abs=1e-6)
    assert rows[1] == pytest.approx([1.176777, 1.25, 1.353553, 1.5], abs=1e-6)
    scores = usage.scores(2.0, 4.0 * GIB)
    assert scores["a"] == pytest.approx(5 / 6)
    assert scores["b"] == pytest.approx(1 / 6)

    problem = Problem(hosts=[host("a", 4, 16), host("b", 8, 8)], guests=[guest("vm100", 2, 4)])
    assert proxmox_static_placement(problem).hosts["vm100"] == "a"


def test_topsis_identical_rows_score_zero_and_ties_go_to_the_name() -> None:
    """Identical alternatives: both distances are 0, every score is 0 (as in Proxmox)."""
    assert topsis_scores([[1.0, 2.0], [1.0, 2.0]], [1.0, 1.0]) == [0.0, 0.0]
    problem = Problem(hosts=[host("n2", 4, 8), host("n1", 4, 8)], guests=[guest("vm1", 1, 1)])
    assert proxmox_static_placement(problem).hosts["vm1"] == "n1"


def test_topsis_a_dominating_row_scores_one() -> None:
    assert topsis_scores([[1.0, 1.0], [2.0, 3.0]], [1.0, 2.0]) == pytest.approx([1.0, 0.0])


def test_criteria_match_a_direct_computation() -> None:
    """The incremental RMS and maximum agree with summing over every node afresh."""
    usage = StaticUsage(["a", "b", "c"], [4, 8, 16], [8, 16, 32])
    for node, cpu, memory in (("a", 3, 6), ("b", 1, 2), ("c", 9, 30)):
        usage.add(node, cpu, memory)
    rows = usage.criteria(2.0, 5.0)
    for i in range(3):
        cpu = [(usage.cpu[j] + (2.0 if j == i else 0.0)) / usage.max_cpu[j] for j in range(3)]
        mem = [(usage.memory[j] + (5.0 if j == i else 0.0)) / usage.max_memory[j] for j in range(3)]
        expected = [
            1 + (sum(r * r for r in cpu) / 3) ** 0.5,
            1 + max(cpu),
            1 + (sum(r * r for r in mem) / 3) ** 0.5,
            1 + max(mem),
        ]
        assert rows[i] == pytest.approx(expected)


def test_static_has_no_capacity_check_and_overloads_a_host() -> None:
    """a (4 CPUs, 16 GiB), b (4 CPUs, 4 GiB); three guests of 1 CPU, 6 GiB each.

    On b a guest alone makes b's memory ratio 1.5; on a the highest memory ratio stays
    below that for all three (0.375, 0.75, 1.125), so all go to a: 18 GiB on 16 GiB.
    The checker reports the overload.
    """
    problem = Problem(
        hosts=[host("a", 4, 16), host("b", 4, 4)],
        guests=[guest(f"vm{i}", 1, 6) for i in (100, 101, 102)],
    )
    placement = proxmox_static_placement(problem)
    assert set(placement.hosts.values()) == {"a"}
    plan = solve(problem, "proxmox-static", SolveOptions(schedule="all-at-once"))
    assert "capacity" in {v.rule for v in check(problem, plan).violations}


def test_guest_without_cpu_counts_as_the_whole_node() -> None:
    """A guest asking for no CPU loads its node fully, so the next one avoids that node."""
    problem = Problem(
        hosts=[host("a", 8, 64), host("b", 8, 64)],
        guests=[guest("vm1", 0, 1), guest("vm2", 1, 1)],
    )
    hosts = proxmox_static_placement(problem).hosts
    assert hosts["vm1"] == "a"
    assert hosts["vm2"] == "b"


def test_natural_key_orders_numbers_by_value() -> None:
    """The rebalancer's tie order: numbers inside names compare by value."""
    assert sorted(["vm1000", "vm101", "vm100", "vm:2", "vm:10"], key=natural_key) == [
        "vm100",
        "vm101",
        "vm1000",
        "vm:2",
        "vm:10",
    ]


def test_guests_go_in_service_id_string_order() -> None:
    """Proxmox walks `sort keys %$ss`, a plain string sort: vm:10 comes before vm:2, takes
    node a (a tie broken by name), and vm:2, which only a allows, joins it there. In
    numeric order vm:2 would take a and vm:10 would go to b."""
    problem = Problem(
        hosts=[host("a", 4, 16), host("b", 4, 16)],
        guests=[guest("vm:2", 2, 2, hosts=["a"]), guest("vm:10", 2, 2, hosts=["a", "b"])],
    )
    hosts = proxmox_basic_placement(problem).hosts
    assert hosts == {"vm:2": "a", "vm:10": "a"}


def test_basic_picks_the_node_with_fewest_guests() -> None:
    """b runs two guests, a one: the two new guests go to a, then (tie 2:2) a by name."""
    problem = Problem(
        hosts=[host("a", 64, 256), host("b", 64, 256)],
        guests=[
            guest("run1", 1, 1, current_host="a", state="running"),
            guest("run2", 1, 1, current_host="b", state="running"),
            guest("run3", 1, 1, current_host="b", state="running"),
            guest("vm1", 1, 1),
            guest("vm2", 1, 1),
        ],
    )
    hosts = proxmox_basic_placement(problem).hosts
    assert hosts["vm1"] == "a"
    assert hosts["vm2"] == "a"
    assert hosts["run2"] == "b"


def test_candidates_follow_node_affinity_anti_affinity_and_together() -> None:
    problem = Problem(
        hosts=[
            host("a", 8, 32),
            host("b", 8, 32),
            host("c", 8, 32),
            host("d", 8, 32, state="failed"),
        ],
        guests=[
            guest("db1", 1, 1, current_host="a", state="running", anti_affinity=["db"]),
            guest("db2", 1, 1, anti_affinity=["db"], hosts=["a", "b", "d"]),
            guest("app1", 1, 1, together="app", current_host="c", state="running"),
            guest("app2", 1, 1, together="app", current_host="d", state="running"),
        ],
    )
    for placement in (proxmox_static_placement(problem), proxmox_basic_placement(problem)):
        assert placement.hosts["db2"] == "b"  # a holds db1, c is not allowed, d failed
        assert placement.hosts["app2"] == "c"  # where its partner runs


def test_nothing_allowed_leaves_the_guest_unplaced_with_a_reason() -> None:
    problem = Problem(
        hosts=[host("a", 8, 32), host("b", 8, 32, state="maintenance")],
        guests=[
            guest("x1", 1, 1, current_host="a", state="running", anti_affinity=["x"]),
            guest("x2", 1, 1, anti_affinity=["x"]),
            guest("y", 1, 1, hosts=["b"]),
        ],
    )
    placement = proxmox_static_placement(problem)
    assert placement.hosts["x2"] is None
    assert placement.hosts["y"] is None
    assert placement.reasons["x2"]
    assert placement.reasons["y"]


def test_stopped_guest_starts_on_its_configured_node() -> None:
    """Without ha-rebalance-on-start Proxmox starts a stopped guest where it is configured;
    with it, the guest is scored like any other."""
    problem = Problem(
        hosts=[host("a", 4, 8), host("b", 64, 512)],
        guests=[
            guest("big", 4, 8, current_host="a", state="running"),
            guest("vm1", 1, 2, current_host="a"),
        ],
    )
    assert proxmox_static_placement(problem).hosts["vm1"] == "a"
    assert proxmox_static_placement(problem, rebalance_on_start=True).hosts["vm1"] == "b"


def _host_of(problem: Problem, solver: str, guest_name: str) -> str | None:
    assignment = solve(problem, solver, SolveOptions()).assignment(guest_name)
    return assignment.host if assignment is not None else None


def test_rebalance_on_start_comes_from_the_problem() -> None:
    """`proxmox.rebalance_on_start` in the problem is what the registered solvers follow
    (and an explicit argument still wins)."""
    problem = Problem(
        hosts=[host("a", 4, 8), host("b", 64, 512)],
        guests=[
            guest("big", 4, 8, current_host="a", state="running"),
            guest("vm1", 1, 2, current_host="a"),
        ],
        proxmox=ProxmoxSettings(rebalance_on_start=True),
    )
    for name in ("proxmox-static", "proxmox-basic"):
        assert _host_of(problem, name, "vm1") == "b", name
    assert proxmox_static_placement(problem, rebalance_on_start=False).hosts["vm1"] == "a"


def _affinity_problem(states: dict[str, str], strict: bool, **kw: object) -> Problem:
    """vm:1 prefers a (priority 2), then b (1); c is in no rule."""
    return Problem(
        hosts=[host(name, 8, 64, state=state) for name, state in states.items()],
        guests=[guest("vm:1", 1, 1, **kw)],
        proxmox=ProxmoxSettings(
            node_affinity=[
                ProxmoxNodeAffinity(guests=["vm:1"], nodes={"a": 2, "b": 1}, strict=strict)
            ]
        ),
    )


@pytest.mark.parametrize("solver", ["proxmox-static", "proxmox-basic"])
def test_node_affinity_takes_the_highest_priority_online(solver: str) -> None:
    """a is online: vm:1 goes there (even from b, where it runs: failback). With a failed,
    b is the highest priority left, and it stays on b. With a and b failed, a non-strict
    rule falls back to c and a strict one leaves it unplaced."""
    online = {"a": "online", "b": "online", "c": "online"}
    on_b = {"current_host": "b", "state": "running"}
    a_failed = {**online, "a": "failed"}
    both_failed = {"a": "failed", "b": "failed", "c": "online"}
    for strict in (False, True):
        assert _host_of(_affinity_problem(online, strict), solver, "vm:1") == "a"
        assert _host_of(_affinity_problem(online, strict, **on_b), solver, "vm:1") == "a"
        assert _host_of(_affinity_problem(a_failed, strict, **on_b), solver, "vm:1") == "b"
    assert _host_of(_affinity_problem(both_failed, False), solver, "vm:1") == "c"
    plan = solve(_affinity_problem(both_failed, True), solver, SolveOptions())
    assert plan.assignment("vm:1") is None or plan.assignment("vm:1").host is None  # type: ignore[union-attr]
    assert "node-affinity" in plan.unplaced[0].reason


@pytest.mark.parametrize("solver", ["proxmox-static", "proxmox-basic"])
def test_failback_off_stays_on_a_lower_priority_node(solver: str) -> None:
    """vm:1 runs on b (priority 1) while a (priority 2) is online: with failback on it
    moves to a, with failback off it stays; off a node its rule does not list (c, for a
    strict rule) it moves either way."""
    online = {"a": "online", "b": "online", "c": "online"}
    on_b = {"current_host": "b", "state": "running"}
    problem = _affinity_problem(online, True, **on_b)
    assert _host_of(problem, solver, "vm:1") == "a"
    kept = attrs.evolve(problem, proxmox=attrs.evolve(problem.proxmox, no_failback={"vm:1"}))
    assert _host_of(kept, solver, "vm:1") == "b"
    on_c = _affinity_problem(online, True, current_host="c", state="running")
    on_c = attrs.evolve(on_c, proxmox=attrs.evolve(on_c.proxmox, no_failback={"vm:1"}))
    assert _host_of(on_c, solver, "vm:1") == "a"


def test_guests_that_are_not_ha_resources_are_neither_counted_nor_recovered() -> None:
    """`big1` and `big2` run on a but are not HA resources: Proxmox does not count them,
    so the two nodes tie and vm:1 goes to a (by name); `lost` is not an HA resource
    either, so its failed node's loss is not Proxmox HA's business and it stays
    unplaced. Counted (no `unmanaged`), the two sends vm:1 to b (lost goes to b too)."""
    hosts = [host("a", 8, 64), host("b", 8, 64), host("c", 8, 64, state="failed")]
    guests = [
        guest("big1", 3, 24, current_host="a", state="running"),
        guest("big2", 3, 24, current_host="a", state="running"),
        guest("lost", 1, 1, current_host="c", state="running"),
        guest("vm:1", 1, 1),
    ]
    for solver in ("proxmox-static", "proxmox-basic"):
        counted = Problem(hosts=hosts, guests=guests)
        assert _host_of(counted, solver, "vm:1") == "b"
        assert _host_of(counted, solver, "lost") == "b"
        unmanaged = {"big1", "big2", "lost"}
        ignored = attrs.evolve(counted, proxmox=ProxmoxSettings(unmanaged=unmanaged))
        assert _host_of(ignored, solver, "vm:1") == "a"
        plan = solve(ignored, solver, SolveOptions())
        assert _host_of(ignored, solver, "lost") is None
        assert "not an HA resource" in {u.guest: u.reason for u in plan.unplaced}["lost"]
        assert _host_of(ignored, solver, "big1") == "a"


def test_exact_static_cpus_replace_the_whole_vcpu_demand() -> None:
    """a has 4 CPUs, b 8 and runs x (4 CPUs); no memory anywhere. ct:1 demands 4 whole
    vCPUs: on a the CPU ratios would be (1.0, 0.5), on b (0, 1.0): same maximum, lower
    RMS on b, so b. As an unlimited container (`proxmox.cpus` 0) it counts every CPU of
    the node it is scored on: on a (1.0, 0.5), on b (0, 1.5): a."""
    problem = Problem(
        hosts=[host("a", 4, 16), host("b", 8, 16)],
        guests=[guest("x", 4, 0, current_host="b", state="running"), guest("ct:1", 4, 0)],
    )
    assert proxmox_static_placement(problem).hosts["ct:1"] == "b"
    exact = attrs.evolve(problem, proxmox=ProxmoxSettings(cpus={"ct:1": 0}))
    assert proxmox_static_placement(exact).hosts["ct:1"] == "a"


def test_node_affinity_top_group_is_scored() -> None:
    """Two nodes share the top priority: the scorer picks between them only (c, empty and
    huge, would win the score but has a lower priority)."""
    problem = Problem(
        hosts=[host("a", 8, 64), host("b", 8, 64), host("c", 128, 1024)],
        guests=[
            guest("vm:0", 4, 32, current_host="a", state="running"),
            guest("vm:1", 1, 1),
        ],
        proxmox=ProxmoxSettings(
            node_affinity=[ProxmoxNodeAffinity(guests=["vm:1"], nodes={"a": 1, "b": 1, "c": 0})]
        ),
    )
    assert proxmox_static_placement(problem).hosts["vm:1"] == "b"


def test_missing_memory_falls_back_to_basic() -> None:
    problem = Problem(
        hosts=[Host(name="a", capacity={"vcpus": 8}), Host(name="b", capacity={"vcpus": 8})],
        guests=[
            Guest(name="r", demand={"vcpus": 1}, current_host="a", state="running"),
            Guest(name="vm1", demand={"vcpus": 1}),
        ],
    )
    assert proxmox_static_placement(problem).hosts["vm1"] == "b"


def test_frozen_copy_loads_its_host_and_the_replacement_goes_elsewhere() -> None:
    problem = Problem(
        hosts=[host("a", 8, 32), host("b", 8, 32), host("c", 8, 32)],
        guests=[
            guest("crashed", 4, 24, current_host="a", state="frozen"),
            guest("vm1", 1, 4),
        ],
    )
    hosts = proxmox_static_placement(problem).hosts
    assert hosts["crashed"] in {"b", "c"}
    assert hosts["vm1"] in {"b", "c"}
    assert hosts["vm1"] != hosts["crashed"]


# --- properties --------------------------------------------------------------------------


@st.composite
def small_problems(draw: st.DrawFn) -> Problem:
    """A few hosts (some not online) and guests in every state, with rules."""
    num_hosts = draw(st.integers(1, 4))
    hosts = [
        Host(
            name=f"h{i}",
            capacity={"vcpus": draw(st.integers(1, 16)), "ram_mib": draw(st.integers(1, 64))},
            state=draw(st.sampled_from(["online", "online", "failed", "maintenance"])),
        )
        for i in range(num_hosts)
    ]
    names = [h.name for h in hosts]
    guests = []
    for i in range(draw(st.integers(0, 8))):
        state = draw(st.sampled_from(["running", "stopped", "frozen"]))
        current = (
            draw(st.sampled_from(names))
            if state != "stopped"
            else draw(st.one_of(st.none(), st.sampled_from(names)))
        )
        guests.append(
            Guest(
                name=f"vm{draw(st.integers(1, 1000))}x{i}",
                demand={"vcpus": draw(st.integers(0, 8)), "ram_mib": draw(st.integers(0, 32))},
                priority=draw(st.integers(0, 2)),
                state=state,
                current_host=current,
                anti_affinity=draw(st.sets(st.sampled_from(["p", "q"]), max_size=1)),
                together=draw(st.sampled_from([None, None, "t"])),
                hosts=draw(st.one_of(st.none(), st.sets(st.sampled_from(names), min_size=1))),
            )
        )
    return Problem(hosts=hosts, guests=guests)


def _problems() -> st.SearchStrategy[Problem]:
    """The shared problem strategy, and small problems with every host state."""
    return st.one_of(small_problems(), problems())


@pytest.mark.parametrize("name", ["proxmox-static", "proxmox-basic"])
def test_apart_from_one_member_of_a_together_group_is_apart_from_all(name: str) -> None:
    """Proxmox adds an implicit negative rule: web and cache run together and db apart
    from cache, so db is apart from web too. Proxmox takes them in name order: with web
    placed before db and cache after it (cache stays on its configured node beside web),
    db must not go to web's node. Found by Hypothesis: db was put beside web, and then
    cache beside db."""
    problem = Problem(
        hosts=[host("n1", 8, 16)],
        guests=[
            guest("vm1-web", 1, 1, together="app"),
            guest("vm2-db", 1, 1, anti_affinity=["db-class"]),
            guest("vm3-cache", 1, 1, together="app", anti_affinity=["db-class"], current_host="n1"),
        ],
    )
    plan = solve(problem, name, SolveOptions(schedule="all-at-once"))
    assert {a.guest for a in plan.assignments if a.host is not None} == {"vm1-web", "vm3-cache"}
    assert [u.guest for u in plan.unplaced] == ["vm2-db"]
    assert "anti_affinity" not in {v.rule for v in check(problem, plan).violations}


def _group_with_inner_clash(problem: Problem) -> bool:
    """Whether two members of one together group share an anti-affinity class: the two
    rules contradict each other and the peers keep the group together."""
    for members in problem.together_groups().values():
        seen: set[str] = set()
        for guest in members:
            if seen & guest.anti_affinity:
                return True
            seen |= guest.anti_affinity
    return False


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_problems())
@pytest.mark.parametrize("name", ["proxmox-static", "proxmox-basic"])
def test_proxmox_is_deterministic_and_obeys_its_own_candidate_rules(
    name: str, problem: Problem
) -> None:
    first = solve(problem, name, SolveOptions(schedule="all-at-once"))
    second = solve(problem, name, SolveOptions(schedule="all-at-once"))
    assert first.assignments == second.assignments
    assert first.unplaced == second.unplaced
    report = check(problem, first)
    # Its rules filter hosts by state, node affinity and anti-affinity; only capacity
    # (which it does not check) and together groups split by those rules may break.
    broken = {v.rule for v in report.violations}
    assert not broken & {*rules_in_family("plan"), *host_filters()}
    if not _group_with_inner_clash(problem):
        assert "anti_affinity" not in broken
