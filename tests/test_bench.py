"""The benchmark generator, runner and report (bench/), kept small and fast."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bench.__main__ import main as bench_main
from bench.report import render
from bench.run import read_rows, run_benchmark
from bench.scenarios import POOL, SIZES, describe, generate
from placement.check import check
from placement.model import GuestState, HostState
from placement.solvers import SolveOptions, solve


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


def _run(out: Path, solvers: list[str], *, resume: bool = False) -> list[dict[str, object]]:
    return list(
        run_benchmark(
            sizes=["S"],
            seeds=[0],
            solvers=solvers,
            schedules=["list", "serial:45"],
            time_limit_s=1.0,
            out=out,
            resume=resume,
        )
    )


def test_run_writes_rows_the_report_turns_into_tables(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    rows = _run(out, ["cpsat", "best-fit"])
    # The optimiser once, the baseline once per schedule.
    assert [(r["solver"], r["schedule"]) for r in rows] == [
        ("cpsat", "joint"),
        ("best-fit", "list"),
        ("best-fit", "serial:45"),
    ]
    stored = read_rows(out)
    assert len(stored) == 3
    for row in stored:
        assert row["status"] in ("optimal", "feasible"), row.get("error")
        assert row["placed"] == 30
        assert row["san_limit"] > 0
        assert row["env"]["packages"]["ortools"]
    optimiser = stored[0]
    assert optimiser["violations"] == 0
    assert [s["name"] for s in optimiser["stages"]] == [
        "placed",
        "migrations",
        "recovery",
        "balance",
    ]
    text = render(stored)
    assert "| cpsat |" in text
    assert "| best-fit + serial:45 |" in text
    assert "serial:45 loop on S" in text


def test_killed_run_keeps_its_finished_rows(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    _run(out, ["best-fit"])
    finished = read_rows(out)
    assert len(finished) == 2
    # A run killed while writing leaves half a line behind.
    with open(out, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(finished[0])[:40])
    assert read_rows(out) == finished
    # Resuming cuts the half line and runs only what is missing.
    rows = _run(out, ["best-fit", "first-fit"], resume=True)
    assert [(r["solver"], r["schedule"]) for r in rows] == [
        ("first-fit", "list"),
        ("first-fit", "serial:45"),
    ]
    stored = read_rows(out)
    assert stored[:2] == finished
    assert len(stored) == 4
    assert out.read_text(encoding="utf-8").endswith("\n")


def test_cli_report_prints_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.jsonl"
    code = bench_main(
        [
            "run",
            "--sizes",
            "S",
            "--seeds",
            "1",
            "--solvers",
            "first-fit",
            "--schedules",
            "all-at-once",
            "--time-limit",
            "1",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    assert bench_main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    assert "### Size S" in text
    assert "| first-fit + all-at-once |" in text
    # All at once overloads the SAN: the checker says so and the report shows it.
    row = read_rows(out)[0]
    assert row["san_peak"] > row["san_limit"]
    assert "pool_capacity" in row["violation_rules"]
