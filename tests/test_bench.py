"""The benchmark: generator, suites, runner (parallel, resumable), report and plots."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import main as bench_main
from bench.report import InstanceView, rebalance_verdict, render
from bench.run import (
    SolverSpec,
    default_solvers,
    ha_figures,
    parse_solvers,
    pool_curve,
    read_rows,
    run_suite,
)
from bench.scenarios import POOL, SIZES, describe, generate
from bench.suites import SUITES, suite
from placement.check import check
from placement.model import GuestState, HostState
from placement.operations import rebalance
from placement.solvers import SolveOptions, UnknownSolverError, available_solvers, solve
from placement.solvers.peers.proxmox_rebalance import proxmox_rebalance_placement

# --- the generator -----------------------------------------------------------------------


@pytest.mark.parametrize("size", ["S", "M"])
def test_generator_is_deterministic_per_seed(size: str) -> None:
    assert generate(size, 3) == generate(size, 3)
    assert generate(size, 3) != generate(size, 4)


@pytest.mark.parametrize("seed", range(5))
def test_small_instances_are_tight_but_best_fit_places_everyone(seed: int) -> None:
    problem = generate("S", seed)
    assert len(problem.hosts) == 3
    assert len(problem.guests) == 30
    failed = [h for h in problem.hosts if h.state is HostState.FAILED]
    assert len(failed) == 1
    restarting = [g for g in problem.guests if g.current_host == failed[0].name]
    assert restarting
    plan = solve(problem, "best-fit", SolveOptions(schedule="list"))
    assert not plan.unplaced
    assert check(problem, plan).ok
    # Tight: the survivors' RAM is at least 82 % used once everyone is back.
    survivors = [h for h in problem.hosts if h.online]
    total = sum(g.demand["ram_mib"] for g in problem.guests)
    assert total >= 0.82 * sum(h.usable("ram_mib") for h in survivors)


@pytest.mark.parametrize("size", ["S", "M"])
def test_all_at_once_overloads_the_san_several_times(size: str) -> None:
    counts = describe(generate(size, 1))
    assert counts["restart_iops"] >= 2.5 * counts["san_iops"]


def test_current_state_is_a_valid_running_cluster() -> None:
    """Before the failure nothing is overloaded: every violation is a plan's own."""
    problem = generate("M", 0)
    used: dict[str, int] = {}
    for guest in problem.guests:
        assert guest.state in (GuestState.RUNNING, GuestState.FROZEN)
        assert guest.current_host is not None
        used[guest.current_host] = used.get(guest.current_host, 0) + guest.demand["ram_mib"]
    for name, amount in used.items():
        assert amount <= problem.host(name).usable("ram_mib")
    assert problem.boot_pools[POOL] > 0


def test_large_instance_has_its_size_and_generates_fast() -> None:
    started = time.perf_counter()
    problem = generate("L", 0)
    elapsed_s = time.perf_counter() - started
    assert len(problem.guests) == SIZES["L"].num_guests == 10_000
    assert len(problem.hosts) == SIZES["L"].num_hosts == 1_000
    assert sum(not h.online for h in problem.hosts) == SIZES["L"].num_failed
    assert elapsed_s < 10


# --- suites ------------------------------------------------------------------------------


def test_every_suite_resolves_and_quick_covers_every_family() -> None:
    families = {name: {i.family for i in suite(name)} for name in SUITES if name != "j60"}
    assert families["quick"] == {"S", "ha", "j30", "vbp", "alibaba"}
    assert families["tiny"] == families["quick"]
    assert families["ha"] == {"ha"}
    quick = suite("quick")
    names = [i.name for i in quick]
    assert len(names) == len(set(names))
    # Published references where they exist, none for generated and trace instances.
    for instance in quick:
        has_reference = instance.family in ("j30", "vbp")
        assert (instance.reference is not None) == has_reference, instance.name
        if instance.reference is not None:
            assert instance.reference.lower <= instance.reference.upper
    assert len(suite("j30")) == 480
    assert [i.name for i in suite("s", match=["S-1*"], limit=1)] == ["S-1"]


def test_unknown_suite_and_solver_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["run", "--suite", "nope", "--out", "x.jsonl"]) == 2
    assert "unknown suite 'nope'" in capsys.readouterr().err
    assert bench_main(["run", "--suite", "tiny", "--solvers", "nope", "--out", "x.jsonl"]) == 2
    assert "unknown solver 'nope'" in capsys.readouterr().err


def test_solver_specs_default_to_every_solver_with_its_kinds_schedule() -> None:
    specs = default_solvers()
    assert {s.solver for s in specs} == {info.name for info in available_solvers()}
    by_name = {s.solver: s.schedule for s in specs}
    assert by_name["cpsat"] == "joint"
    assert by_name["best-fit"] == "list"
    assert by_name["proxmox-static"] == "all-at-once"
    assert parse_solvers("cpsat@serial:5,first-fit@serial:45,pacemaker-balanced") == [
        SolverSpec("cpsat", "joint"),
        SolverSpec("first-fit", "serial:45"),
        SolverSpec("pacemaker-balanced", "all-at-once"),
    ]
    assert parse_solvers("") == specs
    with pytest.raises(UnknownSolverError):
        parse_solvers("cpsat,nope")


# --- HA scenarios ------------------------------------------------------------------------


def test_ha_scenarios_are_what_their_names_say() -> None:
    built = {i.name: i.build() for i in suite("ha")}
    returned = {f"rebalance-returned-{seed}" for seed in range(12)}
    assert set(built) == {
        "failover-1-of-3",
        "failover-1-of-16",
        "failover-10-of-100",
        "evacuate-40",
        "rebalance-100",
        *returned,
    }
    for name, hosts, failed in (
        ("failover-1-of-3", 3, 1),
        ("failover-1-of-16", 16, 1),
        ("failover-10-of-100", 100, 10),
    ):
        problem = built[name]
        assert len(problem.hosts) == hosts
        assert sum(h.state is HostState.FAILED for h in problem.hosts) == failed
    evacuation = built["evacuate-40"]
    leaving = [h.name for h in evacuation.hosts if h.state is HostState.MAINTENANCE]
    assert len(leaving) == 1
    assert sum(g.current_host == leaving[0] for g in evacuation.guests) == 40
    drifted = built["rebalance-100"]
    assert drifted.migration.max_moves == 100
    empty = {h.name for h in drifted.hosts} - {g.current_host for g in drifted.guests}
    assert len(empty) == 30
    for name in returned:
        # Failed hosts came back empty; the budget is what Proxmox's balancer takes.
        problem = built[name]
        assert all(h.online for h in problem.hosts)
        empty = {h.name for h in problem.hosts} - {g.current_host for g in problem.guests}
        assert empty
        moved = proxmox_rebalance_placement(rebalance(problem)).hosts
        taken = sum(moved[g.name] != g.current_host for g in problem.guests)
        assert problem.migration.max_moves == taken


def test_ha_figures_count_the_affected_guests_and_when_they_are_ready() -> None:
    problem = suite("ha", match=["failover-1-of-3"])[0].build()
    plan = solve(problem, "first-fit", SolveOptions(schedule="list"))
    figures = ha_figures(problem, plan)
    failed = {h.name for h in problem.hosts if not h.online}
    affected = [g.name for g in problem.guests if g.current_host in failed]
    assert figures["affected"] == len(affected)
    assert figures["recovered"] == sum(plan.assignment(n).host is not None for n in affected)  # type: ignore[union-attr]
    assert figures["all_ready_s"] == max(plan.assignment(n).ready_s or 0 for n in affected)  # type: ignore[union-attr]
    assert figures["migrations"] == 0
    assert 0.0 <= figures["imbalance"] <= 1.0


@pytest.mark.parametrize("solver", ["cpsat", "first-fit", "proxmox-static"])
@pytest.mark.parametrize("schedule", ["list", "all-at-once"])
def test_pool_curve_peak_is_the_checkers(solver: str, schedule: str) -> None:
    problem = generate("S", 1)
    plan = solve(problem, solver, SolveOptions(time_limit_s=1, schedule=schedule))
    curve = pool_curve(problem, plan, POOL)
    assert curve[0][0] == 0
    assert [t for t, _ in curve] == sorted({t for t, _ in curve})
    assert curve[-1][1] == 0  # every boot ends
    assert max(load for _, load in curve) == check(problem, plan).metrics["pools"][POOL]["peak"]


# --- the runner --------------------------------------------------------------------------


def _run(out: Path, solvers: str, *, jobs: int = 2, **extra: Any) -> list[dict[str, Any]]:
    return list(
        run_suite(
            suite_name="tiny",
            instances=suite("tiny", match=["S-0", "j301_1"]),
            solvers=parse_solvers(solvers),
            time_limit_s=2.0,
            out=out,
            jobs=jobs,
            **extra,
        )
    )


def test_run_writes_one_row_per_instance_solver_and_seed(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    rows = _run(out, "cpsat,first-fit,proxmox-static@all-at-once")
    stored = read_rows(out)
    assert len(rows) == len(stored) == 6
    assert {(r["instance"], r["label"]) for r in stored} == {
        (i, s)
        for i in ("S-0", "j301_1")
        for s in ("cpsat", "first-fit@list", "proxmox-static@all-at-once")
    }
    for row in stored:
        assert row["status"] in ("optimal", "feasible"), row.get("error")
        assert row["env"]["packages"]["ortools"]
        assert row["env"]["git_commit"]
        assert row["env"]["cpu_model"]
        assert row["workers"] >= 1
        assert row["value"] == row["objectives"][row["stage"]]
    by = {(r["instance"], r["label"]): r for r in stored}
    optimiser = by[("j301_1", "cpsat")]
    assert optimiser["violations"] == 0
    assert optimiser["reference"]["upper"] == 43
    assert optimiser["ref_gap"] == pytest.approx((optimiser["value"] - 43) / 43)
    assert by[("S-0", "cpsat")]["stage"] == "recovery"
    assert [s["name"] for s in by[("S-0", "cpsat")]["stages"]] == [
        "placed",
        "migrations",
        "recovery",
        "balance",
    ]
    # The stage searches as the plan file has them: a status per stage searched or skipped.
    logs = by[("S-0", "cpsat")]["stage_logs"]
    assert [log["stage"] for log in logs] == ["placed", "migrations", "recovery", "balance"]
    assert all(log["status"] for log in logs)
    assert by[("S-0", "proxmox-static@all-at-once")]["stage_logs"] == []
    storm = by[("S-0", "proxmox-static@all-at-once")]
    assert storm["san_peak"] > storm["san_limit"]
    assert "pool_capacity" in storm["violation_rules"]
    assert max(load for _, load in storm["curves"][POOL]) == storm["san_peak"]


def test_killed_run_keeps_its_finished_rows_and_resume_does_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    _run(out, "first-fit")
    finished = read_rows(out)
    assert len(finished) == 2
    # A run killed while writing leaves half a line behind.
    with open(out, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(finished[0])[:40])
    assert read_rows(out) == finished
    # The next run cuts the half line and runs only what is missing.
    rows = _run(out, "first-fit,best-fit")
    assert sorted(r["label"] for r in rows) == ["best-fit@list", "best-fit@list"]
    stored = read_rows(out)
    assert stored[:2] == finished
    assert len(stored) == 4
    assert out.read_text(encoding="utf-8").endswith("\n")
    # --rerun repeats them.
    assert len(_run(out, "first-fit", rerun=True, jobs=1)) == 2


def test_a_run_past_its_deadline_is_killed_and_recorded(tmp_path: Path) -> None:
    from bench.run import run_parallel

    def sleeper() -> dict[str, Any]:
        time.sleep(30)
        return {"status": "feasible"}

    def quick() -> dict[str, Any]:
        return {"status": "feasible", "x": 1}

    results = {key: row for key, row, _ in run_parallel([("a", sleeper, 0.3), ("b", quick, 5)], 2)}
    assert results["a"]["status"] == "killed"
    assert "still running" in results["a"]["error"]
    assert results["b"] == {"status": "feasible", "x": 1}


def test_a_crashing_solver_costs_one_error_row(tmp_path: Path) -> None:
    from bench.run import run_parallel

    def crash() -> dict[str, Any]:
        raise ZeroDivisionError("boom")

    [(_, row, _)] = list(run_parallel([("a", crash, 5)], 1))
    assert row["status"] == "error"
    assert "ZeroDivisionError: boom" in row["error"]


# --- the report --------------------------------------------------------------------------


def _row(instance: str, name: str, placed: float, recovery: float, **extra: Any) -> dict[str, Any]:
    kind = "optimiser" if name == "cpsat" else "baseline"
    migrations = extra.pop("migrations", 0)
    stages = ["placed", "migrations", "recovery"]
    return {
        "instance": instance,
        "family": "S",
        "solver": name,
        "schedule": "joint" if kind == "optimiser" else "list",
        "label": name,
        "kind": kind,
        "status": "feasible",
        "stage": "recovery",
        "objectives": {"placed": placed, "migrations": migrations, "recovery": recovery},
        "stages": [{"name": s, "value": 0, "bound": None, "gap": None} for s in stages],
        "violations": 0,
        "wall_s": 1.0,
        "counts": {"guests": 10},
        **extra,
    }  # fmt: skip


def test_gaps_count_only_where_they_mean_something() -> None:
    rows = [
        _row("S-0", "cpsat", 10, 100, bound=80),
        _row("S-0", "first-fit", 10, 160),
        _row("S-0", "best-fit", 9, 50),  # places less: no gap, however low its recovery
        _row("S-0", "worst-fit", 10, 120, migrations=2),  # other earlier stages: no bound gap
        _row("S-0", "round-robin", 10, 90, violations=3),  # breaks rules: no gap
    ]
    view = InstanceView("S-0", rows)
    assert view.bound == 80
    gaps = {r["label"]: view.bound_gap(r) for r in rows}
    assert gaps["cpsat"] == pytest.approx(0.2)
    assert gaps["first-fit"] == pytest.approx(0.5)
    assert gaps["best-fit"] is None
    assert gaps["worst-fit"] is None
    assert gaps["round-robin"] is None
    text = render(rows)
    assert "| S-0 | 10 | - | 80 | 100 |" in text
    assert "better" in text
    assert "never worse" in text
    # The optimiser behind a valid plan is called out.
    text = render([*rows, _row("S-0", "pacemaker-minimal", 10, 95)])
    assert "**worse**" in text
    assert "S-0 (behind pacemaker-minimal)" in text


def test_rebalance_verdict_counts_against_proxmox_at_its_budget() -> None:
    def row(instance: str, name: str, imbalance: float, moves: int) -> dict[str, Any]:
        return _row(
            instance,
            name,
            10,
            0,
            label=f"{name}@all-at-once" if name != "cpsat" else name,
            ha={"imbalance": imbalance, "migrations": moves},
        )

    rows = [
        row("rebalance-returned-0", "cpsat", 0.20, 3),
        row("rebalance-returned-0", "proxmox-rebalance", 0.25, 3),
        row("rebalance-returned-1", "cpsat", 0.30, 2),
        row("rebalance-returned-1", "proxmox-rebalance", 0.30, 1),
        row("rebalance-100", "cpsat", 0.01, 100),  # not held to Proxmox's budget: left out
        row("rebalance-100", "proxmox-rebalance", 0.07, 0),
    ]
    views = [InstanceView(name, [r for r in rows if r["instance"] == name]) for name in
             ("rebalance-returned-0", "rebalance-returned-1", "rebalance-100")]  # fmt: skip
    (text,) = rebalance_verdict(views, "cpsat")
    assert "lower than proxmox-rebalance's on 1 of 2, equal on 1, higher on 0" in text
    assert "more migrations on 1" in text
    assert "by 20.0 %" in text


def test_cli_runs_and_writes_the_report_with_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results.jsonl"
    args = ["run", "--suite", "tiny", "--match", "S-0", "--match", "class1_*", "--quiet"]
    args += ["--solvers", "cpsat,first-fit", "--time-limit", "1", "--out", str(out)]
    assert bench_main(args) == 0
    assert bench_main(["report", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "## S: Failover scenarios" in printed
    assert "## vbp:" in printed
    assert "| first-fit@list |" in printed
    pytest.importorskip("matplotlib", reason="plots need the bench extra")
    page = tmp_path / "docs" / "results.md"
    assert bench_main(["report", str(out), "--write", str(page)]) == 0
    text = page.read_text(encoding="utf-8")
    assert text.startswith("# Benchmark results")
    for name in ("bench-gaps.png", "bench-runtime.png", "bench-san.png"):
        assert f"](img/{name})" in text
        assert (tmp_path / "docs" / "img" / name).read_bytes().startswith(b"\x89PNG")
