"""The vector-packing portfolio baseline: hand-checked cases, then properties."""

from __future__ import annotations

import attrs
from hypothesis import HealthCheck, given, settings

from placement.check import check
from placement.model import Guest, Host, Problem
from placement.plan import Plan
from placement.solvers import SolveOptions, get_solver, solve
from placement.solvers.common import better, finish_plan
from placement.solvers.vector_packing import bin_centric_placement, seed_functions, variants
from tests.strategies import problems

LIST = SolveOptions(schedule="list")


def box(name: str, ram: int = 10, vcpus: int = 10, **fields: object) -> Host:
    return Host(name=name, capacity={"ram_mib": ram, "vcpus": vcpus}, **fields)  # type: ignore[arg-type]


def item(name: str, ram: int, vcpus: int, **fields: object) -> Guest:
    return Guest(name=name, demand={"ram_mib": ram, "vcpus": vcpus}, **fields)  # type: ignore[arg-type]


def hosts_used(plan: Plan) -> int:
    return len({a.host for a in plan.assignments if a.host is not None})


def five_items() -> Problem:
    """Five items on 10 x 10 hosts that fit two hosts ((8,2)+(1,3)+(1,2) and (4,7)+(2,1)),
    but the greedy packers' order (decreasing sum: (4,7), (8,2), (1,3), (2,1), (1,2))
    leaves (1,2) a third host."""
    sizes = [(8, 2), (2, 1), (1, 2), (1, 3), (4, 7)]
    return Problem(
        hosts=[box(f"h{i}") for i in range(5)],
        guests=[item(f"g{i}", ram, vcpus) for i, (ram, vcpus) in enumerate(sizes)],
        objective=["placed", "consolidate"],
    )


def test_registered_as_a_baseline() -> None:
    assert get_solver("vector-pack").kind == "baseline"


def test_largest_demand_first_packs_what_the_sum_order_cannot() -> None:
    problem = five_items()
    assert hosts_used(solve(problem, "first-fit", LIST)) == 3
    assert hosts_used(solve(problem, "best-fit", LIST)) == 3
    plan = solve(problem, "vector-pack", LIST)
    assert check(problem, plan).ok
    assert hosts_used(plan) == 2
    assert plan.stage("consolidate") is not None
    assert plan.stage("consolidate").value == 2  # type: ignore[union-attr]
    # Decreasing largest demand takes (8,2) before (4,7): first fit then fills both.
    assert plan.statistics.portfolio.variant == "first-fit-decreasing-max"


def test_no_time_left_runs_the_first_variant_only() -> None:
    problem = five_items()
    plan = solve(problem, "vector-pack", SolveOptions(schedule="list", time_limit_s=0))
    assert plan.statistics.portfolio.variants_run == 1
    assert plan.statistics.portfolio.variant == variants()[0][0]
    first_fit = solve(problem, "first-fit", LIST)
    assert [a.host for a in plan.assignments] == [a.host for a in first_fit.assignments]


def test_bin_centric_fills_one_host_with_the_best_match_first() -> None:
    """Host a has room (10, 10): by dot product with it, (6,6) scores 120, (4,4) 80 and
    (5,1) 60, so (6,6) goes first; of the room (4,4) left only (4,4) fits; (5,1) opens
    host b. (In problem order, (5,1) would have taken a first.)"""
    problem = Problem(
        hosts=[box("a"), box("b")],
        guests=[item("wide", 5, 1), item("big", 6, 6), item("square", 4, 4)],
    )
    placement = bin_centric_placement(problem, "dot")
    assert dict(placement.hosts) == {"big": "a", "square": "a", "wide": "b"}


def test_bin_centric_keeps_anti_affinity_and_allowed_hosts() -> None:
    """Two db guests never share a host; 'pinned' may only use host c; the best-scoring
    unit that breaks a rule is passed over for the next."""
    problem = Problem(
        hosts=[box("a"), box("b"), box("c")],
        guests=[
            item("db1", 5, 5, anti_affinity={"db"}),
            item("db2", 5, 5, anti_affinity={"db"}),
            item("pinned", 6, 6, hosts=["c"]),
            item("small", 1, 1),
        ],
    )
    for score in ("dot", "room", "weighted-dot", "weighted-room"):
        placement = bin_centric_placement(problem, score)
        assert placement.hosts["db1"] != placement.hosts["db2"]
        assert placement.hosts["pinned"] == "c"
        assert None not in placement.hosts.values()


def test_a_unit_that_fits_nowhere_is_unplaced_with_its_reason() -> None:
    problem = Problem(hosts=[box("a")], guests=[item("huge", 20, 1), item("ok", 1, 1)])
    placement = bin_centric_placement(problem, "room")
    assert placement.hosts == {"huge": None, "ok": "a"}
    assert "huge" in placement.reasons


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_hosts=4, max_guests=8))
def test_every_variant_keeps_every_placement_rule(problem: Problem) -> None:
    """Each heuristic on its own (not only the winner): staying and frozen guests,
    together groups, allowed and avoided hosts, labels, anti-affinity and capacity all
    hold, so the scheduled plan passes the checker."""
    for name, place in variants():
        plan = finish_plan(problem, place(problem), LIST, name, 0.0)
        report = check(problem, plan)
        assert report.ok, (name, [v.message for v in report.violations])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_hosts=4, max_guests=8))
def test_never_worse_than_first_or_best_fit_and_always_valid(random: Problem) -> None:
    """Its variants include the greedy packers' own order, so on the problem's objective
    the portfolio is never behind first fit or best fit; every plan passes the checker."""
    for objective in (random.objective, ("placed", "consolidate")):
        problem = attrs.evolve(random, objective=objective)
        plan = solve(problem, "vector-pack", LIST)
        report = check(problem, plan)
        assert report.ok, [v.message for v in report.violations]
        for name in ("first-fit", "best-fit"):
            assert not better(problem, solve(problem, name, LIST), plan)


def test_seed_functions_are_every_variant_but_the_greedy_baselines() -> None:
    """The optimiser runs these one by one after first fit and best fit, which are the
    two variants by the summed size."""
    names = [name for name, _ in seed_functions()]
    assert len(names) == len(set(names)) == len(variants()) - 2
    expected = {f"vector-pack/{name}" for name, _ in variants()} - {
        "vector-pack/first-fit-decreasing-sum",
        "vector-pack/best-fit-decreasing-sum",
    }
    assert set(names) == expected
    problem = five_items()
    by_name = dict(seed_functions())
    plan = by_name["vector-pack/first-fit-decreasing-max"](problem, LIST)
    assert check(problem, plan).ok
    assert hosts_used(plan) == 2
