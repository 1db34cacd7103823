"""The optimiser's lean path for pure schedules and pure packings (`cpsat.pure`)."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from bench import psplib
from placement.check import check
from placement.model import Guest, Host, Problem
from placement.plan import Plan, Status
from placement.solvers import SolveOptions, solve
from placement.solvers.cpsat import pure
from placement.solvers.cpsat.pure import PureKind, pure_kind

J301_1 = Path(__file__).parent.parent / "bench" / "data" / "psplib" / "j30" / "j301_1.sm"
EXAMPLES = Path(__file__).parent.parent / "examples"
FAST = SolveOptions(time_limit_s=5, workers=2, deterministic=True)


def j301_1() -> Problem:
    """PSPLIB j301_1 (30 jobs, 4 resources) as a boot schedule: optimal makespan 43."""
    return psplib.to_problem(psplib.read_sm(J301_1))


def five_items(**guest_fields: object) -> Problem:
    """Five items on 10 x 10 hosts that fit two hosts ((8,2)+(1,3)+(1,2) and
    (4,7)+(2,1)); first and best fit by the summed size need three."""
    sizes = [(8, 2), (2, 1), (1, 2), (1, 3), (4, 7)]
    return Problem(
        hosts=[Host(name=f"h{i}", capacity={"ram_mib": 10, "vcpus": 10}) for i in range(5)],
        guests=[
            Guest(name=f"g{i}", demand={"ram_mib": ram, "vcpus": vcpus}, **guest_fields)  # type: ignore[arg-type]
            for i, (ram, vcpus) in enumerate(sizes)
        ],
        objective=["placed", "consolidate"],
    )


def hosts_used(plan: Plan) -> int:
    return len({a.host for a in plan.assignments if a.host is not None})


def test_an_rcpsp_takes_the_lean_path_to_its_optimum() -> None:
    problem = j301_1()
    assert pure_kind(problem) is PureKind.SCHEDULE
    plan = solve(problem, "cpsat", FAST)
    assert check(problem, plan).ok
    assert plan.statistics.lean == "schedule"
    assert plan.status is Status.OPTIMAL
    assert plan.stage("makespan").value == 43  # type: ignore[union-attr]
    assert plan.stage("makespan").bound == 43  # type: ignore[union-attr]


def test_a_packing_takes_the_lean_path_to_its_optimum() -> None:
    problem = five_items()
    assert pure_kind(problem) is PureKind.PACKING
    plan = solve(problem, "cpsat", FAST)
    assert check(problem, plan).ok
    assert plan.statistics.lean == "packing"
    assert hosts_used(plan) == 2
    assert plan.stage("consolidate").value == 2  # type: ignore[union-attr]


def test_a_failover_takes_the_full_path() -> None:
    from placement.codec import load_problem_file

    problem = load_problem_file(EXAMPLES / "single-host-restart.json")
    assert pure_kind(problem) is None
    plan = solve(problem, "cpsat", attrs.evolve(FAST, time_limit_s=2))
    assert check(problem, plan).ok
    assert plan.statistics.lean is None


@pytest.mark.parametrize(
    "change",
    [
        {"anti_affinity": ["a"]},
        {"labels": ["ssd"]},
        {"priority": 0, "together": "pair"},
    ],
)
def test_a_placement_rule_rules_the_lean_packing_out(change: dict[str, object]) -> None:
    problem = five_items()
    first = attrs.evolve(problem.guests[0], **change)
    second = attrs.evolve(problem.guests[1], **change)
    changed = attrs.evolve(problem, guests=[first, second, *problem.guests[2:]])
    assert pure_kind(changed) is None


def test_hosts_told_apart_rule_the_lean_packing_out() -> None:
    problem = five_items()
    bigger = attrs.evolve(problem.hosts[0], capacity={"ram_mib": 20, "vcpus": 10})
    assert pure_kind(attrs.evolve(problem, hosts=[bigger, *problem.hosts[1:]])) is None


def test_a_boot_with_a_choice_of_hosts_rules_the_lean_schedule_out() -> None:
    problem = j301_1()
    hosts = [*problem.hosts, Host(name="other", capacity={})]
    free = attrs.evolve(problem.guests[0], hosts=None)
    changed = attrs.evolve(problem, hosts=hosts, guests=[free, *problem.guests[1:]])
    assert pure_kind(changed) is None


def test_a_lean_plan_that_fails_the_checker_gives_way_to_the_seed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every boot at 0 breaks the resource limits: the checked seed is returned."""
    problem = j301_1()

    def all_at_zero(self: object, solver: object) -> Plan:
        return Plan(
            status=Status.FEASIBLE,
            solver="cpsat",
            runtime_s=0.0,
            assignments=[
                attrs.evolve(a, start_s=0, ready_s=problem.guest(a.guest).boot.duration_s)
                for a in solve(problem, "best-fit").assignments
            ],
        )

    monkeypatch.setattr(pure._LeanSchedule, "_plan", all_at_zero)
    plan = solve(problem, "cpsat", FAST)
    assert check(problem, plan).ok
    assert plan.statistics.returned == "greedy"


@pytest.mark.parametrize(
    ("objective", "max_starts"),
    [(("placed", "recovery"), None), (("placed", "makespan"), 2), (("recovery",), 3)],
)
def test_the_lean_schedule_keeps_every_limit_and_beats_the_list_schedule(
    objective: tuple[str, ...], max_starts: int | None
) -> None:
    """Weighted ready times and a batch limit go through the same lean model; its plan
    passes the checker (which counts the batch limit) and is no worse than best fit's."""
    base = j301_1()
    problem = attrs.evolve(
        base,
        objective=objective,
        schedule=attrs.evolve(base.schedule, max_starts=max_starts),
    )
    assert pure_kind(problem) is PureKind.SCHEDULE
    plan = solve(problem, "cpsat", attrs.evolve(FAST, time_limit_s=2))
    assert check(problem, plan).ok
    assert plan.statistics.lean == "schedule"
    last = objective[-1]
    seed = check(problem, solve(problem, "best-fit")).metrics["objectives"][last]
    assert check(problem, plan).metrics["objectives"][last] <= seed
    stage = plan.stage(last)
    assert stage is not None
    assert stage.bound is not None
    assert stage.bound <= stage.value


@pytest.mark.parametrize("problem", [j301_1(), five_items()], ids=["rcpsp", "packing"])
def test_a_stopped_lean_solve_returns_its_checked_seed(problem: Problem) -> None:
    from placement.solvers import StopToken

    token = StopToken()
    token.stop()
    plan = solve(problem, "cpsat", attrs.evolve(FAST, time_limit_s=30, stop=token))
    assert check(problem, plan).ok
    assert not plan.unplaced
    assert plan.statistics.interrupted is True
    assert plan.runtime_s < 5
