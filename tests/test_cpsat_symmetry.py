"""Interchangeable hosts: which hosts the model treats as one class, the labelling its
symmetry-breaking rule keeps, and that the rule costs no plan its value."""

from __future__ import annotations

from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ortools.sat.python import cp_model

from placement.check import check
from placement.model import BootProfile, Guest, GuestState, Host, HostBoot, Objective, Problem
from placement.plan import Action, Assignment, Plan, Status
from placement.solvers import SolveOptions, solve
from placement.solvers.cpsat import model, view
from placement.solvers.cpsat.view import build_view, canonical_hosts

OPTIONS = SolveOptions(time_limit_s=5.0, deterministic=True, workers=2)


def host(name: str, ram: int = 10, **fields: object) -> Host:
    return Host(name=name, capacity={"ram_mib": ram, "vcpus": 10}, **fields)


def item(name: str, ram: int, **fields: object) -> Guest:
    return Guest(name=name, demand={"ram_mib": ram, "vcpus": 1}, **fields)


def classes_of(problem: Problem) -> list[tuple[str, ...]]:
    hosts = problem.hosts
    return sorted(tuple(hosts[h].name for h in c.hosts) for c in build_view(problem).host_classes)


def test_identical_empty_hosts_form_one_class_largest_unit_first() -> None:
    problem = Problem(
        hosts=[host("a"), host("b"), host("c")],
        guests=[item("small", 2), item("big", 7), item("mid", 4)],
        objective=["placed", "consolidate"],
    )
    (only,) = build_view(problem).host_classes
    assert [problem.hosts[h].name for h in only.hosts] == ["a", "b", "c"]
    assert [problem.guests[u].name for u in only.units] == ["big", "mid", "small"]


@pytest.mark.parametrize(
    ("differs", "why"),
    [
        (host("c", ram=12), "capacity"),
        (host("c", labels={"ssd"}), "labels"),
        (host("c", domain="rack2"), "failure domain"),
    ],
)
def test_a_host_defined_differently_joins_no_class(differs: Host, why: str) -> None:
    problem = Problem(
        hosts=[host("a"), host("b"), differs],
        guests=[item("g0", 2), item("g1", 3)],
    )
    assert classes_of(problem) == [("a", "b")], why


def test_hosts_guests_are_on_or_named_by_a_guest_join_no_class() -> None:
    hosts = [host(name) for name in "abcdef"]
    guests = [
        item("running", 2, current_host="a", state=GuestState.RUNNING),
        item("stopped", 2, current_host="b", state=GuestState.STOPPED),
        item("frozen", 2, current_host="c", state=GuestState.FROZEN),
        item("picky", 2, hosts={"d", "e", "f"}),
        item("any", 2),
    ]
    # a, b, c hold a guest now; d, e, f may take `picky`, the others not: two classes
    # would be wrong, the allowed hosts make d, e, f one class of their own.
    assert classes_of(Problem(hosts=hosts, guests=guests)) == [("d", "e", "f")]


def test_canonical_hosts_number_hosts_in_order_of_first_use() -> None:
    problem = Problem(
        hosts=[host("a"), host("b"), host("c")],
        guests=[item("big", 7), item("mid", 4), item("small", 2)],
    )
    v = build_view(problem)
    # big on c, mid on b, small on c: c is used first, then b.
    assert canonical_hosts(v, (2, 1, 2)) == (0, 1, 0)
    assert canonical_hosts(v, (None, 2, 2)) == (None, 0, 0)
    assert canonical_hosts(v, (0, 1, None)) == (0, 1, None)


def test_a_hint_against_the_labelling_still_starts_the_search() -> None:
    """A greedy plan may use the last host first; its relabelled copy is the hint, and
    the returned plan keeps what it had."""
    problem = Problem(
        hosts=[host(name) for name in "abcd"],
        guests=[item(f"g{i}", 5) for i in range(4)],
        objective=["placed", "consolidate"],
    )
    backwards = Plan(
        status=Status.FEASIBLE,
        solver="test",
        runtime_s=0.0,
        assignments=tuple(
            Assignment(
                guest=f"g{i}",
                host="d" if i < 2 else "c",
                action=Action.START,
                start_s=0,
                ready_s=60,
            )
            for i in range(4)
        ),
    )
    v = build_view(problem)
    solution = model.solution_of_plan(v, backwards)
    assert solution.unit_host == (0, 0, 1, 1)
    plan = solve(problem, "cpsat", OPTIONS)
    assert check(problem, plan).ok
    assert plan.stages[-1].value == 2
    assert plan.status is Status.OPTIMAL


@st.composite
def packing_problems(draw: st.DrawFn) -> Problem:
    """A few identical empty hosts (and maybe one other), stopped guests with classes,
    together groups, dependencies and boot loads, under one of the objectives."""
    count = draw(st.integers(2, 4))
    hosts = [host(f"h{i}", boot=_boot(draw)) for i in range(count)]
    if draw(st.booleans()):
        hosts.append(host("other", ram=draw(st.integers(4, 14))))
    guests: list[Guest] = []
    for i in range(draw(st.integers(1, 7))):
        earlier = [g.name for g in guests]
        guests.append(
            item(
                f"g{i}",
                draw(st.integers(1, 8)),
                priority=draw(st.integers(0, 2)),
                anti_affinity=draw(st.sets(st.sampled_from(["db"]), max_size=1)),
                together=draw(st.none() | st.none() | st.just("t")),
                boot=BootProfile(
                    duration_s=draw(st.sampled_from([0, 30, 60])),
                    load={"san": draw(st.integers(0, 3))},
                    cpu=draw(st.integers(0, 2)),
                    after=tuple(draw(st.sets(st.sampled_from(earlier), max_size=1)))
                    if earlier
                    else (),
                ),
            )
        )
    objective = draw(
        st.sampled_from(
            [
                ["placed", "consolidate"],
                ["placed", "balance"],
                ["placed", "recovery", "consolidate"],
                ["placed", "spread"],
                ["placed", "makespan", "balance"],
            ]
        )
    )
    return Problem(hosts=hosts, guests=guests, objective=objective, boot_pools={"san": 4})


def _boot(draw: st.DrawFn) -> HostBoot:
    return draw(st.sampled_from([HostBoot(), HostBoot(cpu=2), HostBoot(max_starts=1)]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packing_problems())
def test_symmetry_breaking_loses_no_value(problem: Problem) -> None:
    """Every stage proven optimal with and without the rule reaches the same value."""
    with_rule = solve(problem, "cpsat", OPTIONS)
    with mock.patch.object(view, "_host_classes", return_value=()):
        without_rule = solve(problem, "cpsat", OPTIONS)
    for plan in (with_rule, without_rule):
        assert check(problem, plan).ok
    if with_rule.status is Status.OPTIMAL and without_rule.status is Status.OPTIMAL:
        assert [s.value for s in with_rule.stages] == [s.value for s in without_rule.stages]
    assert [Objective(s.name) for s in with_rule.stages] == list(problem.objective)


def test_the_rule_is_in_the_model_when_hosts_are_interchangeable() -> None:
    """The rule removes pairs: the largest unit may only use the first host."""
    problem = Problem(
        hosts=[host(name) for name in "abc"],
        guests=[item("big", 7), item("small", 2)],
        objective=["placed", "consolidate"],
    )
    v = build_view(problem)
    variables = model.build_model(v)
    fixed_to_zero = {
        (u, h)
        for (u, h), var in variables.x.items()
        if any(
            list(c.linear.vars) == [var.index] and list(c.linear.domain) == [0, 0]
            for c in variables.model.proto.constraints
        )
    }
    assert fixed_to_zero == {(0, 1), (0, 2), (1, 2)}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packing_problems(), st.sampled_from(["first-fit", "best-fit", "worst-fit"]))
def test_every_plan_relabelled_satisfies_the_model(problem: Problem, packer: str) -> None:
    """The relabelled hosts of any valid plan satisfy the model with the rule: the hint
    CP-SAT gets is a solution, and the rule cuts no plan off."""
    plan = solve(problem, packer, SolveOptions(time_limit_s=2.0))
    assert check(problem, plan).ok
    v = build_view(problem)
    variables = model.build_model(v)
    solution = model.solution_of_plan(v, plan)
    for (u, h), var in variables.x.items():
        variables.model.add(var == int(solution.unit_host[u] == h))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = 5.0
    solver.parameters.num_workers = 1
    assert solver.solve(variables.model) in (cp_model.OPTIMAL, cp_model.FEASIBLE)
