"""The proxmox-rebalance peer: Proxmox's CRS load balancer, move by move, on clusters small
enough to follow on paper."""

from __future__ import annotations

import attrs
import pytest

from placement.check import check
from placement.imbalance import imbalance
from placement.model import Guest, Host, MigrationSettings, Problem, ProxmoxSettings
from placement.plan import Action
from placement.solvers import SolveOptions, available_solvers, solve
from placement.solvers.budget import Budget
from placement.solvers.peers.proxmox_rebalance import proxmox_rebalance_placement


def _host(name: str, ram_mib: int = 65536, vcpus: int = 16) -> Host:
    return Host(name, {"ram_mib": ram_mib, "vcpus": vcpus})


def _running(name: str, host: str, ram_mib: int = 8192, vcpus: int = 2, **kw: object) -> Guest:
    return Guest(
        name,
        {"ram_mib": ram_mib, "vcpus": vcpus},
        current_host=host,
        state="running",  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def _crowded(**kw: object) -> Problem:
    """Three equal hosts; six guests of 1/8 each on n1 and one of 1/4 on n2.
    Loads 0.75 / 0.25 / 0: imbalance 0.661."""
    guests = [_running(f"vm{i}", "n1") for i in range(6)]
    guests.append(_running("big", "n2", 16384, 4))
    return Problem([_host("n1"), _host("n2"), _host("n3")], guests, **kw)  # type: ignore[arg-type]


def _moves(problem: Problem, hosts: dict[str, str | None]) -> list[tuple[str, str | None]]:
    return [
        (g.name, hosts[g.name])
        for g in problem.guests
        if problem.runs_now(g) and hosts[g.name] != g.current_host
    ]


def test_it_is_registered_as_a_peer() -> None:
    info = {s.name: s for s in available_solvers()}["proxmox-rebalance"]
    assert info.kind == "peer"


def test_guests_outside_ha_are_not_migrated() -> None:
    """vm0 and vm1 are not HA resources (`proxmox.unmanaged`): the balancer neither moves
    nor counts them. It sees loads 0.5 / 0.25 / 0 (imbalance 0.577), moves vm2 to n3
    (0.375 / 0.25 / 0.125, imbalance 0.289 <= 0.3) and stops."""
    problem = _crowded(proxmox=ProxmoxSettings(unmanaged={"vm0", "vm1"}))
    placement = proxmox_rebalance_placement(problem)
    assert _moves(problem, dict(placement.hosts)) == [("vm2", "n3")]


def test_guests_outside_ha_do_not_count_in_the_imbalance() -> None:
    """n1 holds six 1/8 guests that are not HA resources and n2 one HA guest of 1/4:
    the balancer sees only the latter, a single guest no move improves, and moves nothing
    (counted, the crowded n1 makes it move two)."""
    unmanaged = {f"vm{i}" for i in range(6)}
    problem = _crowded(proxmox=ProxmoxSettings(unmanaged=unmanaged))
    assert _moves(problem, dict(proxmox_rebalance_placement(problem).hosts)) == []


def test_best_single_moves_until_below_the_threshold() -> None:
    """Move 1: a 1/8 guest n1 -> n3 (0.625/0.25/0.125, imbalance 0.45); move 2: another
    (0.5/0.25/0.25, imbalance 0.25 <= 0.3): stop. Ties go to the lower guest name."""
    problem = _crowded()
    assert imbalance(problem) == pytest.approx(0.6614378)
    placement = proxmox_rebalance_placement(problem)
    assert _moves(problem, dict(placement.hosts)) == [("vm0", "n3"), ("vm1", "n3")]
    assert imbalance(problem, placement.hosts) == pytest.approx(0.25)


def test_the_plan_passes_the_checker_with_timed_migrations() -> None:
    problem = _crowded()
    plan = solve(problem, "proxmox-rebalance", SolveOptions())
    report = check(problem, plan)
    assert report.ok, report.violations
    migrations = [a for a in plan.assignments if a.action is Action.MIGRATE]
    assert len(migrations) == 2
    for assignment in migrations:
        guest = problem.guest(assignment.guest)
        assert assignment.ready_s - assignment.start_s == problem.migration_duration(guest)  # type: ignore[operator]


def test_nothing_moves_below_the_threshold() -> None:
    problem = _crowded()
    assert proxmox_rebalance_placement(problem, threshold=0.7).hosts == {
        g.name: g.current_host for g in problem.guests
    }


def test_a_move_must_improve_by_the_margin() -> None:
    """One guest alone on n1 of two hosts: imbalance 1.0, and moving it only mirrors it."""
    problem = Problem([_host("n1"), _host("n2")], [_running("a", "n1")])
    assert imbalance(problem) == pytest.approx(1.0)
    assert _moves(problem, dict(proxmox_rebalance_placement(problem).hosts)) == []
    # RAM only, hosts of 100 GiB: n1 runs 40 + 20, n2 runs 30 (imbalance 1/3). The best
    # move, 20 GiB to n2, reaches 1/9: a 2/3 improvement, enough for 50 %, not for 70 %.
    hosts = [Host(n, {"ram_mib": 102400}) for n in ("n1", "n2")]
    three = Problem(
        hosts,
        [
            Guest("a", {"ram_mib": 40960}, current_host="n1", state="running"),
            Guest("b", {"ram_mib": 20480}, current_host="n1", state="running"),
            Guest("c", {"ram_mib": 30720}, current_host="n2", state="running"),
        ],
    )
    assert imbalance(three) == pytest.approx(1 / 3)
    assert _moves(three, dict(proxmox_rebalance_placement(three, margin=0.7).hosts)) == []
    moved = proxmox_rebalance_placement(three, margin=0.5).hosts
    assert _moves(three, dict(moved)) == [("b", "n2")]
    assert imbalance(three, moved) == pytest.approx(1 / 9)


def test_the_budget_caps_the_moves() -> None:
    problem = _crowded(migration=MigrationSettings(max_moves=1))
    assert _moves(problem, dict(proxmox_rebalance_placement(problem).hosts)) == [("vm0", "n3")]
    assert _moves(problem, dict(proxmox_rebalance_placement(problem, max_moves=0).hosts)) == []


def test_moves_respect_capacity_and_movability() -> None:
    """n3 has room for one 1/8 guest only; vm0 cannot be live-migrated."""
    guests = [_running(f"vm{i}", "n1") for i in range(6)]
    guests[0] = _running("vm0", "n1", movable=False)
    guests.append(_running("big", "n2", 16384, 4))
    problem = Problem([_host("n1"), _host("n2"), _host("n3", 8192, 2)], guests)
    hosts = dict(proxmox_rebalance_placement(problem).hosts)
    assert hosts["vm0"] == "n1"
    moves = _moves(problem, hosts)
    assert sum(1 for _, host in moves if host == "n3") <= 1
    assert moves, "some move still lowers the imbalance"
    plan = solve(problem, "proxmox-rebalance", SolveOptions())
    assert check(problem, plan).ok


def test_a_together_group_moves_as_one() -> None:
    guests = [
        _running("a", "n1", together="pair"),
        _running("b", "n1", together="pair"),
        _running("c", "n1"),
    ]
    problem = Problem([_host("n1"), _host("n2")], guests)
    hosts = dict(proxmox_rebalance_placement(problem).hosts)
    assert hosts["a"] == hosts["b"]
    # Moving the pair (2/8 of 3/8) gives 1/8 vs 2/8; moving c gives 2/8 vs 1/8: a tie in
    # imbalance, broken by the guest name: the pair (a) goes.
    assert _moves(problem, hosts) == [("a", "n2"), ("b", "n2")]


def test_descent_keeps_moving_below_proxmox_threshold() -> None:
    """Without Proxmox's 0.3 threshold the descent goes on past 0.25 (where Proxmox
    stops, see above) to a local optimum that no single move improves."""
    problem = _crowded()
    plan = solve(problem, "descent-rebalance", SolveOptions())
    assert check(problem, plan).ok
    assert imbalance(problem, plan) < 0.25 - 1e-9  # below where Proxmox stops
    hosts = {a.guest: a.host for a in plan.assignments}
    # A local optimum: no single further move lowers the imbalance.
    again = proxmox_rebalance_placement(
        attrs.evolve(
            problem,
            guests=[
                attrs.evolve(g, current_host=hosts[g.name]) if problem.runs_now(g) else g
                for g in problem.guests
            ],
        ),
        threshold=0.0,
        margin=1e-6,
    )
    assert imbalance(problem, again.hosts) >= imbalance(problem, plan) - 1e-9


def test_descent_respects_the_budget_and_its_deadline() -> None:
    problem = _crowded(migration=MigrationSettings(max_moves=1))
    plan = solve(problem, "descent-rebalance", SolveOptions())
    assert sum(1 for a in plan.assignments if a.action is Action.MIGRATE) == 1
    unbudgeted = _crowded()
    placement = proxmox_rebalance_placement(
        unbudgeted, threshold=0.0, margin=1e-6, budget=Budget(0.0)
    )
    assert _moves(unbudgeted, dict(placement.hosts)) == []  # no time left: no move


@pytest.mark.parametrize("solver", ["descent-rebalance", "cpsat"])
def test_a_group_running_split_counts_each_member_against_the_budget(solver: str) -> None:
    """a (on n1) and b (on n2) form a together group that runs split now; the start
    gathers them on one host. Moving the group on to n3 takes both members away from
    where they run: two migrations, over a budget of one. Nothing may be stopped for it."""
    guests = [
        _running("a", "n1", together="ab"),
        _running("b", "n2", together="ab"),
        _running("c", "n1"),
        _running("d", "n2", movable=False),
    ]
    problem = attrs.evolve(
        Problem(
            [_host("n1"), _host("n2"), _host("n3")],
            guests,
            objective=("placed", "imbalance", "migrations"),
        ),
        migration=MigrationSettings(max_moves=1),
    )
    plan = solve(problem, solver, SolveOptions(time_limit_s=2, deterministic=True))
    report = check(problem, plan)
    assert report.ok, report.violations
    assert all(a.action is not Action.STOP for a in plan.assignments)
    assert sum(a.action is Action.MIGRATE for a in plan.assignments) <= 1
