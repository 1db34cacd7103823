"""The CP-SAT optimiser: one tiny feasible and one tiny infeasible case per rule family,
and properties over random problems (checker-valid, never worse than greedy, bounds hold).

"Infeasible" here means the rule keeps some guest out: the optimiser always has a plan
(leaving guests unplaced), so the test asserts what it leaves out and why.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import pytest
from hypothesis import HealthCheck, given, settings

from placement.check import check
from placement.model import (
    BootProfile,
    Guest,
    GuestState,
    Host,
    HostBoot,
    HostState,
    Objective,
    Problem,
    Schedule,
)
from placement.plan import Action, Assignment, Plan, Status, Unplaced
from placement.solvers import SolveOptions, solve
from placement.solvers.budget import Budget
from tests.strategies import problems

OPTIONS = SolveOptions(time_limit_s=5.0, deterministic=True, workers=2)


def optimise(problem: Problem) -> Plan:
    """Solve with CP-SAT; every plan must pass the checker."""
    plan = solve(problem, "cpsat", OPTIONS)
    report = check(problem, plan)
    assert report.ok, [v.message for v in report.violations]
    return plan


def host(name: str, ram_gib: int = 16, vcpus: int = 8, **fields: object) -> Host:
    return Host(name=name, capacity={"ram_mib": ram_gib * 1024, "vcpus": vcpus}, **fields)


def guest(name: str, ram_gib: int = 4, vcpus: int = 1, **fields: object) -> Guest:
    return Guest(name=name, demand={"ram_mib": ram_gib * 1024, "vcpus": vcpus}, **fields)


def booting(name: str, duration_s: int, **boot: object) -> Guest:
    """A 1 GiB guest with the given boot profile."""
    return guest(name, ram_gib=1, boot=BootProfile(duration_s=duration_s, **boot))


def problem(
    hosts: Sequence[Host],
    guests: Sequence[Guest],
    objective: Sequence[str] = ("placed", "recovery"),
    **fields: object,
) -> Problem:
    return Problem(hosts=hosts, guests=guests, objective=objective, **fields)


def hosts_of(plan: Plan) -> dict[str, str | None]:
    return {a.guest: a.host for a in plan.assignments}


def starts_of(plan: Plan) -> dict[str, int | None]:
    return {a.guest: a.start_s for a in plan.assignments}


def unplaced_of(plan: Plan) -> dict[str, str]:
    return {u.guest: u.reason for u in plan.unplaced}


# --- placement rules -------------------------------------------------------------------------


def test_capacity_fits_both_when_room() -> None:
    plan = optimise(problem([host("h", ram_gib=10)], [guest("a", 5), guest("b", 5)]))
    assert set(hosts_of(plan).values()) == {"h"}
    assert plan.status is Status.OPTIMAL


def test_capacity_keeps_out_the_lower_priority_guest() -> None:
    plan = optimise(
        problem([host("h", ram_gib=10)], [guest("low", 6), guest("high", 6, priority=5)])
    )
    assert hosts_of(plan) == {"low": None, "high": "h"}
    assert "needs 6 GiB RAM" in unplaced_of(plan)["low"]


def test_overcommit_and_reservation_set_the_usable_amount() -> None:
    """4 cores x 2.0 overcommit = 8 vCPUs: two 4-vCPU guests fit, a third does not;
    16 GiB less 8 GiB reserved leaves room for two 4 GiB guests only."""
    cpu_host = host("h", ram_gib=64, vcpus=4, overcommit={"vcpus": 2.0})
    plan = optimise(problem([cpu_host], [guest(n, 1, vcpus=4) for n in "abc"]))
    assert sum(h is not None for h in hosts_of(plan).values()) == 2
    ram_host = host("r", ram_gib=16, reserved={"ram_mib": 8192})
    plan = optimise(problem([ram_host], [guest(n, 4) for n in "abc"]))
    assert sum(h is not None for h in hosts_of(plan).values()) == 2


def test_anti_affinity_spreads_and_leaves_out_the_extra_member() -> None:
    hosts = [host("h1"), host("h2")]
    two = optimise(problem(hosts, [guest(n, anti_affinity=["dns"]) for n in "ab"]))
    assert sorted(hosts_of(two).values()) == ["h1", "h2"]
    three = optimise(problem(hosts, [guest(n, anti_affinity=["dns"]) for n in "abc"]))
    assert sum(h is not None for h in hosts_of(three).values()) == 2


def test_together_group_shares_a_host_or_stays_out_whole() -> None:
    hosts = [host("small", ram_gib=8), host("big", ram_gib=16)]
    fits = optimise(
        problem(hosts, [guest("app", 6, together="g"), guest("cache", 6, together="g")])
    )
    assert hosts_of(fits) == {"app": "big", "cache": "big"}
    too_big = optimise(
        problem(hosts, [guest("app", 10, together="g"), guest("cache", 10, together="g")])
    )
    assert hosts_of(too_big) == {"app": None, "cache": None}
    assert "together group 'g'" in unplaced_of(too_big)["app"]


def test_host_filters_state_labels_and_frozen_copies() -> None:
    hosts = [
        host("ssd1", labels=["ssd"]),
        host("plain"),
        host("down", state=HostState.FAILED),
    ]
    guests = [
        guest("needs-ssd", labels=["ssd"]),
        guest("pinned-down", hosts=["down"]),
        guest("avoids", avoid_hosts=["ssd1"]),
        guest("crashed", 10, state=GuestState.FROZEN, current_host="ssd1", anti_affinity=["x"]),
    ]
    plan = optimise(problem(hosts, guests))
    placed = hosts_of(plan)
    assert placed["needs-ssd"] == "ssd1"
    assert placed["pinned-down"] is None
    assert placed["avoids"] == "plain"
    assert placed["crashed"] == "plain"  # the replacement never joins its frozen copy


def test_frozen_copy_holds_its_memory() -> None:
    """h1's frozen 12 GiB copy leaves 4 GiB: the 8 GiB guest must go to h2."""
    hosts = [host("h1"), host("h2", ram_gib=8)]
    guests = [
        guest("frozen", 12, state=GuestState.FROZEN, current_host="h1", hosts=["h1"]),
        guest("big", 8),
    ]
    plan = optimise(problem(hosts, guests))
    assert hosts_of(plan)["big"] == "h2"
    assert hosts_of(plan)["frozen"] is None  # its replacement has no other allowed host


def test_running_guests_stay_unless_they_must_move() -> None:
    hosts = [host("h1"), host("h2"), host("h3", state=HostState.MAINTENANCE)]
    guests = [
        guest("stays", state=GuestState.RUNNING, current_host="h1"),
        guest("evacuated", state=GuestState.RUNNING, current_host="h3"),
    ]
    plan = optimise(problem(hosts, guests, objective=("placed", "migrations", "balance")))
    actions = {a.guest: a.action for a in plan.assignments}
    assert actions == {"stays": Action.STAY, "evacuated": Action.MIGRATE}
    assert plan.stage("migrations") is not None
    assert plan.stage("migrations").value == 1.0


def test_balance_spreads_and_consolidate_packs() -> None:
    hosts = [host("h1"), host("h2")]
    guests = [guest("a", 4), guest("b", 4)]
    spread = optimise(problem(hosts, guests, objective=("placed", "balance")))
    assert len(set(hosts_of(spread).values())) == 2
    assert spread.stage("balance").value == 0.25
    packed = optimise(problem(hosts, guests, objective=("placed", "consolidate")))
    assert len(set(hosts_of(packed).values())) == 1
    assert packed.status is Status.OPTIMAL


# --- schedule rules --------------------------------------------------------------------------


def test_boot_pool_allows_overlap_within_its_limit_and_serialises_beyond() -> None:
    pools = {"san": 10_000}
    light = [booting(n, 100, load={"san": 5000}) for n in "ab"]
    plan = optimise(problem([host("h")], light, boot_pools=pools))
    assert set(starts_of(plan).values()) == {0}
    heavy = [booting(n, 100, load={"san": 6000}) for n in "ab"]
    plan = optimise(problem([host("h")], heavy, boot_pools=pools))
    assert sorted(starts_of(plan).values()) == [0, 100]
    assert plan.stage("recovery").value == 300


def test_batch_limit_and_host_boot_limits() -> None:
    guests = [booting(n, 60, cpu=4) for n in "abc"]
    batch = optimise(problem([host("h")], guests, schedule=Schedule(max_starts=1)))
    assert sorted(starts_of(batch).values()) == [0, 60, 120]
    cpu = optimise(problem([host("h", boot=HostBoot(cpu=8))], guests))
    assert sorted(starts_of(cpu).values()) == [0, 0, 60]
    starts = optimise(problem([host("h", boot=HostBoot(max_starts=1))], guests))
    assert sorted(starts_of(starts).values()) == [0, 60, 120]
    # With a second host, the per-host limit is met by spreading: everything at 0.
    spread = optimise(
        problem(
            [host("h1", boot=HostBoot(max_starts=2)), host("h2", boot=HostBoot(max_starts=1))],
            guests,
        )
    )
    assert set(starts_of(spread).values()) == {0}


def test_after_dependencies_chain_and_an_unplaced_dependency_keeps_dependants_out() -> None:
    guests = [
        booting("db", 120),
        booting("app", 60, after=["db"]),
        booting("web", 30, after=["app"]),
    ]
    plan = optimise(problem([host("h")], guests, objective=("placed", "makespan")))
    assert starts_of(plan) == {"db": 0, "app": 120, "web": 180}
    assert plan.stage("makespan").value == 210
    blocked = [guest("db", 64), booting("app", 60, after=["db"])]
    plan = optimise(problem([host("h")], blocked))
    assert hosts_of(plan) == {"db": None, "app": None}
    assert "db" in unplaced_of(plan)["app"]


def test_start_groups_share_an_instant_and_stagger_spaces_instants() -> None:
    grouped = [booting(n, 60, group="linux") for n in "ab"] + [booting("win", 200)]
    plan = optimise(problem([host("h")], grouped, schedule=Schedule(stagger_s=45)))
    starts = starts_of(plan)
    assert starts["a"] == starts["b"]
    assert abs(starts["a"] - starts["win"]) >= 45
    lone = [booting(n, 60) for n in "abc"]
    plan = optimise(problem([host("h")], lone, schedule=Schedule(stagger_s=10)))
    assert sorted(starts_of(plan).values()) == [0, 10, 20]
    assert plan.stage("recovery").value == 60 + 70 + 80


def test_horizon_keeps_out_what_cannot_be_ready_in_time() -> None:
    guests = [booting("slow", 500), booting("quick", 100), booting("next", 100, after=["quick"])]
    plan = optimise(problem([host("h")], guests, schedule=Schedule(horizon_s=250)))
    assert hosts_of(plan)["slow"] is None
    assert hosts_of(plan)["next"] == "h"
    assert "horizon" in unplaced_of(plan)["slow"]


def test_priorities_order_recovery() -> None:
    """One start at a time: the heavier guest boots first."""
    guests = [booting("low", 60), booting("high", 60)]
    guests[1] = attrs.evolve(guests[1], priority=9)
    plan = optimise(problem([host("h")], guests, schedule=Schedule(max_starts=1)))
    assert starts_of(plan) == {"high": 0, "low": 60}


# --- properties ------------------------------------------------------------------------------


def _lexicographically_no_worse(problem: Problem, plan: Plan, other: Plan) -> bool:
    for objective in problem.objective:
        mine = plan.stage(objective.value)
        theirs = other.stage(objective.value)
        assert mine is not None
        assert theirs is not None
        if abs(mine.value - theirs.value) > 1e-9:
            return mine.value > theirs.value if objective.maximise else mine.value < theirs.value
    return True


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_hosts=3, max_guests=7))
def test_cpsat_plans_pass_the_checker_and_beat_greedy(random_problem: Problem) -> None:
    options = SolveOptions(time_limit_s=2.0, deterministic=True)
    plan = solve(random_problem, "cpsat", options)
    report = check(random_problem, plan)
    assert report.ok, [v.message for v in report.violations]
    for name in ("best-fit", "first-fit"):
        greedy = solve(random_problem, name, options)
        if check(random_problem, greedy).ok:
            assert _lexicographically_no_worse(random_problem, plan, greedy), name
    for stage in plan.stages:
        if stage.bound is None:
            continue
        objective = Objective(stage.name)
        if objective.maximise:
            assert stage.bound >= stage.value - 1e-9, stage
        else:
            assert stage.bound <= stage.value + 1e-9, stage
        assert stage.gap is not None
        assert stage.gap >= 0


def test_deterministic_mode_repeats_its_values() -> None:
    guests = [booting(f"g{i}", 30 + 7 * i, load={"san": 1000 + 300 * i}) for i in range(8)]
    instance = problem([host("h")], guests, boot_pools={"san": 3000})
    first = solve(instance, "cpsat", OPTIONS)
    second = solve(instance, "cpsat", OPTIONS)
    assert [(s.name, s.value) for s in first.stages] == [(s.name, s.value) for s in second.stages]


def test_statistics_account_for_the_seeds_the_stages_and_the_plans_found() -> None:
    """The SAN serialises boots: CP-SAT orders them better than the seeds' list schedule,
    and the statistics say so, stage by stage, in the order things happened."""
    guests = [booting(f"g{i}", 30 + 7 * i, load={"san": 1000 + 300 * i}) for i in range(8)]
    instance = problem([host("h")], guests, boot_pools={"san": 3000})
    plan = optimise(instance)
    statistics = plan.statistics
    assert [seed.name for seed in statistics.seeds[:3]] == ["best-fit", "first-fit", "worst-fit"]
    assert statistics.seeds[0].kept  # the first valid seed is the best so far
    kept = [seed for seed in statistics.seeds if seed.kept]
    assert all(seed.valid for seed in kept)
    seed = statistics.incumbents[0]
    assert seed.source == "seed"
    assert seed.seconds == statistics.first_plan_s
    # The first plan is at least as good as the last seed kept (variants may improve it).
    assert seed.values["placed"] >= kept[-1].values["placed"]
    assert seed.values["recovery"] <= kept[-1].values["recovery"]
    times = [found.seconds for found in statistics.incumbents]
    assert times == sorted(times)
    assert [found.source for found in statistics.incumbents[1:]] == [
        "stage placed",
        "stage recovery",
    ]
    assert statistics.incumbents[-1].values == {s.name: s.value for s in plan.stages}
    placed, recovery = statistics.stages
    assert (placed.stage, placed.improved) == ("placed", False)
    assert (recovery.stage, recovery.improved) == ("recovery", True)
    assert recovery.value == plan.stage("recovery").value < seed.values["recovery"]
    assert statistics.returned == "cp-sat"
    assert statistics.model is not None
    assert (statistics.model.units, statistics.model.boots) == (8, 8)
    assert not statistics.interrupted


@pytest.mark.parametrize(
    "name", ["single-host-restart", "three-node-failover", "frozen-and-dependencies"]
)
def test_examples_solve_to_valid_plans(name: str) -> None:
    from pathlib import Path

    from placement.codec import load_problem_file

    instance = load_problem_file(Path(__file__).parent.parent / "examples" / f"{name}.json")
    plan = solve(instance, "cpsat", SolveOptions(time_limit_s=3.0, deterministic=True))
    assert check(instance, plan).ok
    greedy = solve(instance, "best-fit", SolveOptions())
    assert _lexicographically_no_worse(instance, plan, greedy)


def test_the_second_pass_improves_an_unproven_stage_within_the_later_holds() -> None:
    """A stage left unproven gets the time the later stages did not use: searched again
    from the incumbent with every stage held, a better value is a better plan."""

    from bench.scenarios import generate
    from placement.solvers.cpsat import model, plans, stages
    from placement.solvers.cpsat.stage_solver import StageSolver
    from placement.solvers.cpsat.view import build_view

    scenario = generate("S", 1)
    start = solve(scenario, "first-fit", SolveOptions(schedule="list"))
    assert check(scenario, start).ok
    view = build_view(scenario)
    options = SolveOptions(time_limit_s=3, deterministic=True, seed=1)
    solver = StageSolver(view, options, model.solution_of_plan(view, start))
    expression = solver.expression(Objective.RECOVERY)
    found = round(check(scenario, start).metrics["objectives"]["recovery"])
    solver.model.add(expression <= found)  # held as the first pass left it
    log: dict[str, object] = {"stage": "recovery", "value": float(found)}
    bounds: dict[str, float | None] = {"recovery": None}
    better = stages._second_pass(
        solver,
        [(Objective.RECOVERY, expression, found, log)],
        bounds,
        Budget.of(options),
        bound_holds=True,  # recovery is the last stage held here
    )
    plan = plans.plan_of_solution(view, better, {}, Status.FEASIBLE, 0.0)
    report = check(scenario, plan)
    assert report.ok
    assert report.metrics["objectives"]["recovery"] < found
    assert log["value"] == report.metrics["objectives"]["recovery"]
    assert log["second_pass_status"] in ("OPTIMAL", "FEASIBLE")
    assert bounds["recovery"] is not None
    assert bounds["recovery"] <= report.metrics["objectives"]["recovery"]


def test_the_second_pass_keeps_no_bound_while_a_later_stage_is_held() -> None:
    """Re-solving `placed` with `migrations` held at 0 proves 1 on that restriction, but
    moving r makes room for both guests: 1 must not become the bound of `placed`."""

    from placement.solvers.cpsat import model, stages
    from placement.solvers.cpsat.stage_solver import StageSolver
    from placement.solvers.cpsat.view import build_view

    hosts = [Host("h0", {"cpu": 10}), Host("h1", {"cpu": 10})]
    guests = [
        Guest("r", {"cpu": 6}, current_host="h0", state=GuestState.RUNNING),
        Guest("s", {"cpu": 6}, hosts=["h0"]),
    ]
    scenario = Problem(hosts, guests, objective=("placed", "migrations"))
    view = build_view(scenario)
    start = solve(scenario, "first-fit", SolveOptions())
    options = SolveOptions(time_limit_s=2, deterministic=True)
    solver = StageSolver(view, options, model.solution_of_plan(view, start))
    placed = solver.expression(Objective.PLACED)
    moves = solver.expression(Objective.MIGRATIONS)
    found = round(check(scenario, start).metrics["objectives"]["placed"])
    solver.model.add(placed >= found)
    solver.model.add(moves <= 0)
    bounds: dict[str, float | None] = {"placed": 2 * found + 10.0}
    stages._second_pass(
        solver,
        [(Objective.PLACED, placed, found, {"stage": "placed", "value": float(found)})],
        bounds,
        Budget.of(options),
        bound_holds=False,
    )
    best = solve(scenario, "cpsat", SolveOptions(time_limit_s=2, deterministic=True))
    assert bounds["placed"] is not None
    assert bounds["placed"] >= check(scenario, best).metrics["objectives"]["placed"]


def test_topological_order_puts_every_guest_after_what_it_waits_for() -> None:
    from placement.solvers.cpsat import incumbent

    guests = [
        Guest("c", {"cpu": 1}, boot=BootProfile(after=["b"])),
        Guest("d", {"cpu": 1}, boot=BootProfile(after=["a", "c"])),
        Guest("b", {"cpu": 1}, boot=BootProfile(after=["a"])),
        Guest("a", {"cpu": 1}),
        Guest("e", {"cpu": 1}),
    ]
    problem = Problem([Host("h", {"cpu": 10})], guests)
    order = [g.name for g in incumbent._topological(problem)]
    assert sorted(order) == ["a", "b", "c", "d", "e"]
    position = {name: i for i, name in enumerate(order)}
    for guest in guests:
        for name in guest.boot.after:
            assert position[name] < position[guest.name]


@pytest.mark.parametrize(
    ("workers", "deterministic", "subsolvers"),
    [
        (1, False, []),
        (2, False, ["pseudo_costs", "default_lp"]),
        (2, True, []),
        (4, False, []),
    ],
)
def test_two_workers_run_the_lp_pseudo_cost_search(
    workers: int, deterministic: bool, subsolvers: list[str]
) -> None:
    """With two workers CP-SAT runs one full search: ours is pseudo-cost branching on the
    LP (it bounds recovery stages far better, see `new_solver`), `default_lp` when there
    is no objective; with one worker, several, or in deterministic mode (CP-SAT then
    interleaves all its full searches), CP-SAT's own choice stands."""
    from placement.solvers.cpsat.search import new_solver

    options = SolveOptions(workers=workers, deterministic=deterministic)
    solver = new_solver(options, Budget.of(options), 1.0, large=False)
    assert list(solver.parameters.subsolvers) == subsolvers
    assert solver.parameters.num_workers == workers


@pytest.mark.parametrize(("costly", "search"), [(False, "default_lp"), (True, "pseudo_costs")])
def test_the_two_worker_search_falls_back_when_there_is_no_objective(
    costly: bool, search: str
) -> None:
    """CP-SAT drops the pseudo-cost search when presolve leaves nothing to minimise; the
    complete search that runs then is `default_lp`, not none."""
    from ortools.sat.python import cp_model

    from placement.solvers.cpsat.search import new_solver

    model = cp_model.CpModel()  # an assignment problem, costs (i * j) % 5 or none
    x = {(i, j): model.new_bool_var("") for i in range(5) for j in range(5)}
    for k in range(5):
        model.add_exactly_one(x[k, j] for j in range(5))
        model.add_exactly_one(x[i, k] for i in range(5))
    model.minimize(sum((i * j) % 5 * int(costly) * v for (i, j), v in x.items()))
    solver = new_solver(SolveOptions(workers=2), Budget(5.0), 5.0, large=False)
    solver.parameters.log_search_progress = True
    solver.parameters.log_to_stdout = False
    lines: list[str] = []
    solver.log_callback = lines.append
    assert solver.solve(model) == cp_model.OPTIMAL
    (full,) = [line for line in lines if "full problem subsolver" in line]
    assert f"[{search}]" in full


def _spread_plan_with_one_left_out(problem: Problem) -> Plan:
    """g0..g3 spread over the three hosts, `huge` (fits nowhere) left out."""
    hosts = ["a", "b", "c", "a"]
    return Plan(
        status=Status.FEASIBLE,
        solver="test",
        runtime_s=0.0,
        assignments=(
            *(
                Assignment(f"g{i}", host, Action.START, start_s=0, ready_s=60)
                for i, host in enumerate(hosts)
            ),
            Assignment("huge", None, Action.NONE),
        ),
        unplaced=(Unplaced("huge", "too large for every host"),),
    )


def test_the_placed_guests_of_a_seed_are_packed_again_onto_fewer_hosts() -> None:
    """Worst fit may place the most by spreading; its guests packed again by first fit
    keep `placed` and need fewer hosts, the guest it left out stays out."""
    from placement.solvers.cpsat.incumbent import _repacked

    problem = Problem(
        hosts=[host(name, ram_gib=12) for name in "abc"],
        guests=[*(guest(f"g{i}", ram_gib=3) for i in range(4)), guest("huge", ram_gib=13)],
        objective=["placed", "consolidate"],
    )
    spread = _spread_plan_with_one_left_out(problem)
    assert check(problem, spread).metrics["objectives"]["consolidate"] == 3
    variants = _repacked(problem, spread, SolveOptions(time_limit_s=2.0))
    assert variants
    for variant in variants:
        report = check(problem, variant)
        assert report.ok
        assert report.metrics["objectives"]["consolidate"] == 1
        assert {a.guest for a in variant.assignments if a.host} == {f"g{i}" for i in range(4)}
        assert [u.guest for u in variant.unplaced] == ["huge"]
        assert variant.stage("consolidate").value == 1


def test_no_repacking_when_a_kept_guest_waits_for_one_left_out() -> None:
    from placement.solvers.cpsat.incumbent import _repacked

    problem = Problem(
        hosts=[host(name, ram_gib=12) for name in "abc"],
        guests=[
            *(guest(f"g{i}", ram_gib=3) for i in range(3)),
            guest("g3", ram_gib=3, boot=BootProfile(after=("huge",))),
            guest("huge", ram_gib=13),
        ],
        objective=["placed", "consolidate"],
    )
    assert _repacked(problem, _spread_plan_with_one_left_out(problem), SolveOptions()) == []


def test_a_follower_runs_beside_its_leader_which_may_run_alone() -> None:
    """app follows db. Both fit on big: both there. When app fits beside db nowhere, db
    is placed alone (a together group would lose both)."""
    hosts = [host("small", ram_gib=8), host("big", ram_gib=16)]
    both = optimise(problem(hosts, [guest("db", 6), guest("app", 6, follows="db")]))
    assert hosts_of(both) == {"db": "big", "app": "big"}
    alone = optimise(problem(hosts, [guest("db", 12), guest("app", 6, follows="db")]))
    assert hosts_of(alone) == {"db": "big", "app": None}
    assert check(problem(hosts, [guest("db", 12), guest("app", 6, follows="db")]), alone).ok
