"""The optimiser's rebalance search (placement.solvers.cpsat.rebalance): where it applies,
that its plans pass the checker, keep the migration budget and never end worse than the
plan they start from, and that a neighbourhood holding every host finds the optimum."""

from __future__ import annotations

import itertools
import time

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from placement.check import check
from placement.imbalance import spread_steps
from placement.model import Guest, GuestState, Host, Problem
from placement.operations import failover, rebalance
from placement.plan import Action, Plan
from placement.solvers import SolveOptions, solve
from placement.solvers.cpsat import rebalance as search
from tests.test_operations import cluster_states

OPTIONS = SolveOptions(time_limit_s=1.5, deterministic=True, seed=3)


def _running(name: str, host: str, ram_mib: int, **kwargs: object) -> Guest:
    return Guest(
        name,
        {"ram_mib": ram_mib},
        current_host=host,
        state=GuestState.RUNNING,
        **kwargs,  # type: ignore[arg-type]
    )


def _moves(problem: Problem, plan: Plan) -> int:
    return sum(1 for a in plan.assignments if a.action is Action.MIGRATE)


def _search(problem: Problem, incumbent: Plan) -> Plan:
    return search.solve_rebalance(problem, OPTIONS, incumbent, time.perf_counter(), 0.0)


def _skewed(budget: int) -> Problem:
    """Three 100 GiB hosts (RAM only): n1 runs 45 and 40 GiB, n2 runs 45, 20 and 20, n3
    was just added and runs nothing; at most `budget` live migrations. With 2 moves the
    greedy descent's first move (the best single one) leads it away from the best pair."""
    hosts = [Host(n, {"ram_mib": 102400}) for n in ("n1", "n2", "n3")]
    sizes = {"a": ("n2", 45), "b": ("n2", 20), "c": ("n1", 45), "d": ("n1", 40), "e": ("n2", 20)}
    guests = [_running(name, host, gib * 1024) for name, (host, gib) in sizes.items()]
    return rebalance(Problem(hosts, guests), max_moves=budget)


def _best_by_enumeration(problem: Problem) -> tuple[int, int]:
    """(spread, moves) of the best placement within the budget, by trying them all."""
    names = [g.name for g in problem.guests]
    hosts = [h.name for h in problem.hosts]
    budget = problem.migration.max_moves
    best: tuple[int, int] | None = None
    for choice in itertools.product(hosts, repeat=len(names)):
        final = dict(zip(names, choice, strict=True))
        moves = sum(1 for g in problem.guests if final[g.name] != g.current_host)
        if budget is not None and moves > budget:
            continue
        used = dict.fromkeys(hosts, 0)
        for guest in problem.guests:
            used[final[guest.name]] += guest.demand["ram_mib"]
        if any(used[h.name] > h.usable("ram_mib") for h in problem.hosts):
            continue
        value = (spread_steps(problem, final), moves)
        best = value if best is None or value < best else best
    assert best is not None
    return best


@pytest.mark.parametrize("budget", [1, 2, 3])
def test_a_neighbourhood_of_every_host_finds_the_optimum(budget: int) -> None:
    """Three hosts fit one neighbourhood: the search solves the whole problem exactly,
    from the descent's plan, and ends at the enumerated optimum of (spread, moves)."""
    problem = _skewed(budget)
    incumbent = solve(problem, "descent-rebalance", OPTIONS)
    plan = _search(problem, incumbent)
    assert check(problem, plan).ok
    values = check(problem, plan).metrics["objectives"]
    best = _best_by_enumeration(problem)
    assert (values["spread"], _moves(problem, plan)) == best
    if budget == 2:  # the search did the work: the descent stops short of it
        start = check(problem, incumbent).metrics["objectives"]["spread"]
        assert (start, _moves(problem, incumbent)) > best


def test_applies_only_to_large_rebalances(monkeypatch: pytest.MonkeyPatch) -> None:
    problem = _skewed(2)
    incumbent = solve(problem, "descent-rebalance", OPTIONS)
    assert not search.applies(problem, incumbent)  # small: the full model proves it
    monkeypatch.setattr(search, "MIN_PAIRS", 0)
    assert search.applies(problem, incumbent)
    assert not search.applies(problem, None)
    # Guests to boot, or a stage that depends on time: the full model's business.
    recovery = failover(problem, ["n1"])
    assert not search.applies(recovery, solve(recovery, "best-fit", OPTIONS))
    timed = rebalance(problem, objective=("placed", "spread", "makespan"))
    assert not search.applies(timed, incumbent)


def test_the_optimiser_takes_the_search_on_a_large_rebalance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(search, "MIN_PAIRS", 0)
    problem = _skewed(2)
    plan = solve(problem, "cpsat", OPTIONS)
    assert check(problem, plan).ok
    assert "rebalance" in plan.metrics
    assert plan.metrics["rebalance"]["rounds"] >= 1
    assert _moves(problem, plan) <= 2


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cluster_states(), st.integers(0, 3))
def test_search_plans_pass_the_checker_keep_the_budget_and_never_get_worse(
    state: Problem, budget: int
) -> None:
    scenario = rebalance(state, max_moves=budget)
    incumbent = solve(scenario, "descent-rebalance", OPTIONS)
    assume(check(scenario, incumbent).ok)
    assume(all(a.action is not Action.START for a in incumbent.assignments))
    plan = _search(scenario, incumbent)
    report = check(scenario, plan)
    assert report.ok, report.violations
    assert _moves(scenario, plan) <= budget
    before = check(scenario, incumbent).metrics["objectives"]
    after = report.metrics["objectives"]

    def key(values: dict[str, float]) -> list[float]:
        # Lexicographic over the stages, each as a value to lower.
        return [-values[o.value] if o.maximise else values[o.value] for o in scenario.objective]

    assert key(after) <= key(before)
    for guest in scenario.guests:
        if not guest.movable and scenario.runs_now(guest):
            assignment = plan.assignment(guest.name)
            assert assignment is None or assignment.host in (guest.current_host, None)
