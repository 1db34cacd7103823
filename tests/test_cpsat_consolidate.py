"""The host-emptying neighbourhoods of the `consolidate` stage: they reach the fewest
hosts the rules allow, keep every rule and every earlier stage, and hand the main model
a solution its symmetry rule accepts."""

from __future__ import annotations

import time

import attrs
from hypothesis import HealthCheck, given, settings

from placement.check import check
from placement.model import Guest, GuestState, Host, Objective, Problem
from placement.plan import Plan, Status
from placement.solvers import SolveOptions, solve
from placement.solvers.budget import SHARES, Budget
from placement.solvers.cpsat import consolidate, model, plans, search, stages, strategy
from placement.solvers.cpsat.view import build_view, canonical_hosts
from tests.strategies import problems

OPTIONS = SolveOptions(deterministic=True, seed=3)


def _budget(seconds: float) -> Budget:
    return Budget(seconds, deterministic=OPTIONS.deterministic)


def host(name: str, ram: int = 10) -> Host:
    return Host(name=name, capacity={"ram_mib": ram, "vcpus": 10})


def guest(name: str, ram: int, **fields: object) -> Guest:
    return Guest(name=name, demand={"ram_mib": ram, "vcpus": 1}, **fields)


def one_per_host(problem: Problem) -> model.Solution:
    """Guest i on host i, every boot at instant 0: as spread as a plan gets."""
    view = build_view(problem)
    return model.Solution(tuple(range(len(view.units))), tuple(0 for _ in view.slots))


def hosts_used(plan: Plan) -> int:
    return len({a.host for a in plan.assignments if a.host is not None})


def emptied(problem: Problem, start: model.Solution, holds, lower: int = 0):
    view = build_view(problem)
    found, log = consolidate.empty_hosts(view, holds, start, OPTIONS, _budget(0.5), lower)
    plan = plans.plan_of_solution(view, found, {}, Status.FEASIBLE, 0.0)
    report = check(problem, plan)
    assert report.ok, [v.message for v in report.violations]
    return found, log, plan, report


def test_a_spread_plan_is_packed_onto_the_fewest_hosts() -> None:
    problem = Problem(
        hosts=[host(f"h{i}") for i in range(6)],
        guests=[guest(f"g{i}", ram) for i, ram in enumerate([6, 4, 5, 5, 7, 3])],
        objective=["placed", "consolidate"],
    )
    found, log, plan, _ = emptied(problem, one_per_host(problem), [(Objective.PLACED, 6)], 3)
    assert hosts_used(plan) == 3  # 6+4, 5+5, 7+3: every host full
    assert log["hosts_before"] == 6
    assert log["hosts_after"] == 3
    assert log["hosts_emptied"] == 3
    # The main model's symmetry rule needs the canonical labelling of the result.
    view = build_view(problem)
    assert found.unit_host == canonical_hosts(view, found.unit_host)


def test_the_search_stops_once_the_lower_bound_is_reached() -> None:
    problem = Problem(
        hosts=[host(f"h{i}") for i in range(4)],
        guests=[guest(f"g{i}", 5) for i in range(4)],
        objective=["placed", "consolidate"],
    )
    _, log, plan, _ = emptied(problem, one_per_host(problem), [(Objective.PLACED, 4)], 2)
    assert hosts_used(plan) == 2
    assert log["rounds"] == 2  # one host emptied per round, then nothing left to do


def test_anti_affinity_keeps_its_members_apart() -> None:
    # Four small web guests must sit on four hosts; the rest fits beside them.
    web = [guest(f"web{i}", 2, anti_affinity={"web"}) for i in range(4)]
    other = [guest(f"db{i}", 2) for i in range(2)]
    problem = Problem(
        hosts=[host(f"h{i}") for i in range(6)],
        guests=[*web, *other],
        objective=["placed", "consolidate"],
    )
    _, _, plan, _ = emptied(problem, one_per_host(problem), [(Objective.PLACED, 6)], 1)
    assert hosts_used(plan) == 4
    web_hosts = [a.host for a in plan.assignments if a.guest.startswith("web")]
    assert len(set(web_hosts)) == 4


def test_earlier_stages_stay_held() -> None:
    # Four running guests, one per host, all movable; with every guest kept placed,
    # migrations held at 1 lets one host empty, not two.
    problem = Problem(
        hosts=[host(f"h{i}") for i in range(4)],
        guests=[
            guest(f"g{i}", 5, current_host=f"h{i}", state=GuestState.RUNNING) for i in range(4)
        ],
        objective=["placed", "migrations", "consolidate"],
    )
    view = build_view(problem)
    start = model.solution_of_plan(view, solve(problem, "first-fit", SolveOptions()))
    holds = [(Objective.PLACED, 4), (Objective.MIGRATIONS, 1)]
    _, log, plan, report = emptied(problem, start, holds, 2)
    assert report.metrics["objectives"]["migrations"] <= 1
    assert hosts_used(plan) == 3
    assert log["hosts_after"] == 3


def _movable_between_used_hosts(view, solution: model.Solution) -> bool:
    """Whether some unit may leave its host for another used host, on a host that could
    be emptied (one with a frozen copy never is): the search has a neighbourhood to try."""
    used = {h for h in solution.unit_host if h is not None}
    return any(
        h is not None
        and h not in view.frozen_hosts
        and any(c != h and c in used for c in view.units[u].candidates)
        for u, h in enumerate(solution.unit_host)
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_hosts=4, max_guests=8))
def test_neighbourhoods_keep_every_rule_and_never_use_more_hosts(random: Problem) -> None:
    """From worst fit's spread plan (so there is something to pack), every rule, every
    held stage and the reported host count stay true to the checker."""
    problem = attrs.evolve(random, objective=("placed", "migrations", "consolidate"))
    start_plan = solve(problem, "worst-fit", SolveOptions(schedule="list"))
    start_report = check(problem, start_plan)
    if not start_report.ok:
        return  # the list schedule misses the horizon: nothing verified to start from
    view = build_view(problem)
    start = model.solution_of_plan(view, start_plan)
    values = start_report.metrics["objectives"]
    holds = [
        (Objective.PLACED, round(values["placed"])),
        (Objective.MIGRATIONS, round(values["migrations"])),
    ]
    _, log, _, report = emptied(problem, start, holds)
    assert report.metrics["objectives"]["placed"] >= values["placed"]
    assert report.metrics["objectives"]["migrations"] <= values["migrations"]
    assert report.metrics["objectives"]["consolidate"] <= values["consolidate"]
    assert report.metrics["objectives"]["consolidate"] == log["hosts_after"]
    assert log["hosts_before"] == values["consolidate"]
    if _movable_between_used_hosts(view, start):
        assert log["rounds"] > 0


def test_deterministic_rounds_are_charged_beyond_cp_sat_time() -> None:
    """Easy neighbourhoods cost CP-SAT almost no deterministic time; each round is still
    charged its overhead, so a small budget means a few rounds, not thousands."""
    problem = Problem(
        hosts=[host(f"h{i}") for i in range(6)],
        guests=[guest(f"g{i}", 2, anti_affinity={"web"}) for i in range(6)],
        objective=["placed", "consolidate"],
    )
    view = build_view(problem)
    budget = 0.1
    _, log = consolidate.empty_hosts(
        view, [(Objective.PLACED, 6)], one_per_host(problem), OPTIONS, _budget(budget), 0
    )
    # Nothing can move (one web guest per host): every round is spent in vain.
    assert log["hosts_after"] == 6
    assert 0 < log["rounds"] <= budget / consolidate._ROUND_OVERHEAD_S + 1


def test_no_time_means_no_round() -> None:
    problem = Problem(
        hosts=[host(f"h{i}") for i in range(4)],
        guests=[guest(f"g{i}", 5) for i in range(4)],
        objective=["placed", "consolidate"],
    )
    found, log = consolidate.empty_hosts(
        build_view(problem),
        [(Objective.PLACED, 4)],
        one_per_host(problem),
        OPTIONS,
        _budget(0.0),
        0,
    )
    assert log["rounds"] == 0
    assert log["hosts_after"] == log["hosts_before"] == 4
    assert found == one_per_host(problem)


def test_the_consolidate_stage_hands_over_to_the_neighbourhoods(monkeypatch) -> None:
    """From a spread plan, with CP-SAT's share cut to almost nothing, the stage's value
    comes from the neighbourhoods, and it is what the returned (checked) plan uses."""
    from bench.vbp import parse_vbp, to_problem

    # 3 dimensions, 24 items of ragged sizes in [100, 400] (the start of class1_40_3_0).
    sizes = [
        (153, 372, 348), (215, 284, 152), (262, 157, 384), (203, 219, 183),
        (389, 196, 251), (332, 371, 214), (288, 235, 201), (221, 354, 334),
        (161, 245, 271), (282, 302, 237), (205, 126, 233), (165, 389, 279),
        (196, 366, 230), (209, 303, 365), (214, 128, 259), (102, 328, 375),
        (168, 102, 173), (122, 316, 217), (275, 214, 127), (275, 389, 243),
        (357, 218, 400), (133, 235, 351), (344, 289, 313), (346, 300, 140),
    ]  # fmt: skip
    text = "3\n1000 1000 1000\n24\n" + "\n".join(f"{a} {b} {c} 1" for a, b, c in sizes)
    problem = to_problem(parse_vbp(text, "ragged24"))
    monkeypatch.setattr(stages, "SHARES", attrs.evolve(SHARES, consolidate_cp_sat=0.001))
    # Start from worst fit's spread plan alone (the portfolio seeds pack it well already).
    spread = solve(problem, "worst-fit", SolveOptions(schedule="list"))
    monkeypatch.setattr(strategy, "greedy_incumbent", lambda *_, **__: spread)
    # A pure packing: the full path (the stage loop) only when the lean one is turned off.
    monkeypatch.setattr(strategy, "pure_kind", lambda _: None)
    plan = solve(problem, "cpsat", SolveOptions(time_limit_s=2.0, deterministic=True))
    report = check(problem, plan)
    assert report.ok
    stage = plan.statistics.stages[-1]
    assert stage.stage == "consolidate"
    searched = stage.neighbourhoods
    assert searched is not None
    assert searched.rounds > 0
    assert searched.hosts_after < searched.hosts_before
    assert stage.value == searched.hosts_after
    assert report.metrics["objectives"]["consolidate"] == plan.stages[-1].value == stage.value


class _FakeSolver:
    def __init__(self) -> None:
        self.stopped = 0

    def stop_search(self) -> None:
        self.stopped += 1


class _FakeCallback:
    def __init__(self, improved_at: float | None) -> None:
        self.improved_at = improved_at


def test_the_stall_watch_stops_a_search_that_improved_and_then_stalled() -> None:
    solver = _FakeSolver()
    watch = search.StallWatch(solver, _FakeCallback(time.perf_counter()), 0.0, 0.05)  # type: ignore[arg-type]
    deadline = time.perf_counter() + 5.0
    while not watch.stopped and time.perf_counter() < deadline:
        time.sleep(0.01)
    watch.finish()
    assert watch.stopped
    assert solver.stopped == 1


def test_the_stall_watch_lets_a_search_without_improvement_run() -> None:
    """CP-SAT has not improved on its start yet (a big model still early in its search):
    the watch never stops it, however long it stalls."""
    solver = _FakeSolver()
    watch = search.StallWatch(solver, _FakeCallback(None), 0.0, 0.0)  # type: ignore[arg-type]
    time.sleep(0.3)
    watch.finish()
    assert not watch.stopped
    assert solver.stopped == 0


def test_the_stall_watch_waits_for_the_earliest_hand_over() -> None:
    solver = _FakeSolver()
    watch = search.StallWatch(solver, _FakeCallback(0.0), 60.0, 0.0)  # type: ignore[arg-type]
    time.sleep(0.3)
    watch.finish()
    assert not watch.stopped
