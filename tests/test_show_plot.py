"""Plans a person can read: the timeline, the text report, the plot, and the CLI around them."""

from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

import pytest

from placement.check import check
from placement.cli import main
from placement.model import BootProfile, Guest, GuestState, Host, HostState, Problem, Schedule
from placement.plan import Action, Assignment, Plan, StageResult, Status, Unplaced
from placement.show import (
    render_plan,
    render_timeline,
    search_line,
    verdict,
    violation_counts,
)
from placement.statistics import NeighbourhoodRound, SeedRun, SolveStatistics, StageLog
from placement.timeline import timeline

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "ops" / "cluster-state.json"


def _storyboard() -> tuple[Problem, Plan]:
    """Three hosts, n3 failed. r1 restarts on n1 at 10 s; m1 moves n1 -> n2 during 0-10 s;
    s1 stays on n2; x1 is stopped on n1; f1 (frozen on n2) is replaced on n1 at 0 s; u1
    is not placed. Hand-written, with its times, so every line of the report is known."""
    hosts = [
        Host("n1", {"ram_mib": 16384}),
        Host("n2", {"ram_mib": 16384}),
        Host("n3", {"ram_mib": 16384}, state=HostState.FAILED),
    ]
    guests = [
        Guest("r1", {"ram_mib": 4096}, current_host="n3", state=GuestState.RUNNING),
        Guest("m1", {"ram_mib": 4096}, current_host="n1", state=GuestState.RUNNING),
        Guest("s1", {"ram_mib": 8192}, current_host="n2", state=GuestState.RUNNING),
        Guest("x1", {"ram_mib": 4096}, current_host="n1", state=GuestState.RUNNING),
        Guest("f1", {"ram_mib": 2048}, current_host="n2", state=GuestState.FROZEN),
        Guest("u1", {"ram_mib": 65536}),
    ]
    problem = Problem(hosts, guests)
    plan = Plan(
        Status.FEASIBLE,
        "hand",
        0.5,
        [
            Assignment("r1", "n1", Action.START, 10, 70),
            Assignment("m1", "n2", Action.MIGRATE, 0, 10),
            Assignment("s1", "n2", Action.STAY),
            Assignment("x1", None, Action.STOP),
            Assignment("f1", "n1", Action.START, 0, 60),
            Assignment("u1", None, Action.NONE),
        ],
        [Unplaced("x1", "makes room"), Unplaced("u1", "needs 64 GiB RAM")],
        [StageResult("placed", 4.0, 5.0, 0.25)],
    )
    return problem, plan


def test_timeline_orders_stops_migrations_then_starts() -> None:
    problem, plan = _storyboard()
    steps = timeline(problem, plan)
    assert [(s.action, s.guest) for s in steps] == [
        (Action.STOP, "x1"),
        (Action.MIGRATE, "m1"),
        (Action.START, "f1"),
        (Action.START, "r1"),
        (Action.STAY, "s1"),
        (Action.NONE, "u1"),
    ]
    by_guest = {s.guest: s for s in steps}
    assert (by_guest["m1"].source, by_guest["m1"].target) == ("n1", "n2")
    assert by_guest["r1"].note == "restart: n3 failed"
    assert by_guest["f1"].note == "replaces the frozen copy kept on n2"
    assert by_guest["u1"].note == "needs 64 GiB RAM"


def test_report_shows_timeline_hosts_unplaced_and_objectives() -> None:
    problem, plan = _storyboard()
    text = render_plan(problem, plan)
    lines = text.splitlines()
    assert lines[0] == (
        "hand: feasible in 0.50 s; 4 of 6 guests placed; 2 start, 1 stay, 1 migrate, 1 stop, 1 none"
    )
    assert lines[1] == "valid: the plan respects every rule"
    timeline_rows = [line.split() for line in lines if line.startswith("  ") and "->" in line]
    assert timeline_rows[0][:4] == ["+00:00", "+00:00", "stop", "x1"]
    assert timeline_rows[1][:4] == ["+00:00", "+00:10", "migrate", "m1"]
    assert "1 guest(s) stay where they run: s1" in text
    # Hosts before -> after: n1 held m1 + x1 (8 of 16 GiB), ends with r1 + f1 (6 GiB);
    # n2 held s1 + the frozen f1 (10 GiB), ends with s1, f1's copy and m1 (14 GiB).
    host_rows = {line.split()[0]: line.split() for line in lines if line.startswith("  n")}
    assert host_rows["n1"] == ["n1", "online", "2", "->", "2", "50%", "->", "38%"]
    assert host_rows["n2"] == ["n2", "online", "2", "->", "2", "62%", "->", "88%"]
    assert host_rows["n3"] == ["n3", "failed", "1", "->", "0", "25%", "->", "0%"]
    assert "  u1  needs 64 GiB RAM" in lines
    assert any(line.split() == ["placed", "4", "5", "25.00%", "4"] for line in lines)
    assert "imbalance (Proxmox):" in text


def test_report_lists_violations() -> None:
    problem, plan = _storyboard()
    broken = Plan(
        plan.status,
        plan.solver,
        plan.runtime_s,
        [
            Assignment("r1", "n3", Action.START, 10, 70),
            *plan.assignments[1:],
        ],
        plan.unplaced,
    )
    text = render_plan(problem, broken)
    assert "INVALID: 1 violation (1 host_state): do not run it as it is" in text
    assert "  host_state (1):\n    guest r1 is on host n3, which is failed" in text


def _runbook() -> tuple[Problem, Plan]:
    """One host, a SAN of 100, a 5 s stagger. a (60 of the SAN) boots 0-60; b (60) waits
    for the SAN until a is ready; c (10) starts 5 s after b (the stagger); d (10) waits
    for b, its dependency. Every start is known, and why."""

    def boot(load: int, after: tuple[str, ...] = ()) -> BootProfile:
        return BootProfile(duration_s=60, load={"san": load}, after=after)

    hosts = [Host("old", {"ram_mib": 8192}, state=HostState.FAILED), Host("h", {"ram_mib": 8192})]
    guests = [
        Guest("a", {"ram_mib": 1}, priority=3, current_host="old", boot=boot(60)),
        Guest("b", {"ram_mib": 1}, priority=2, current_host="old", boot=boot(60)),
        Guest("c", {"ram_mib": 1}, priority=1, current_host="old", boot=boot(10)),
        Guest("d", {"ram_mib": 1}, current_host="old", boot=boot(10, ("b",))),
    ]
    problem = Problem(hosts, guests, boot_pools={"san": 100}, schedule=Schedule(stagger_s=5))
    plan = Plan(
        Status.FEASIBLE,
        "hand",
        1.234,
        [
            Assignment("a", "h", Action.START, 0, 60),
            Assignment("b", "h", Action.START, 60, 120),
            Assignment("c", "h", Action.START, 65, 125),
            Assignment("d", "h", Action.START, 120, 180),
        ],
    )
    return problem, plan


def test_timeline_is_a_runbook_clock_priority_headroom_and_why() -> None:
    problem, plan = _runbook()
    assert check(problem, plan).ok
    lines = render_timeline(problem, plan)
    header = lines[1].split()
    assert header == ["start", "ready", "action", "guest", "prio", "where", "san", "left", "why"]
    rows = {line.split()[3]: line for line in lines[2:]}
    assert rows["a"].split()[:8] == ["+00:00", "+01:00", "start", "a", "3", "->", "h", "40"]
    assert rows["b"].split()[:8] == ["+01:00", "+02:00", "start", "b", "2", "->", "h", "40"]
    assert rows["b"].endswith("waited for room in san")
    assert rows["c"].split()[7] == "30"
    assert rows["c"].endswith("waited for stagger 5 s after b")
    assert rows["d"].split()[7] == "80"
    assert rows["d"].endswith("waited for b ready")
    assert "from failed old" in rows["a"]  # stopped on the failed host


def test_failed_hosts_guests_are_counted_where_they_were() -> None:
    problem, plan = _runbook()
    lines = render_plan(problem, plan).splitlines()
    host_rows = {
        line.split()[0]: line.split() for line in lines if line.startswith(("  old", "  h "))
    }
    assert host_rows["old"][:5] == ["old", "failed", "4", "->", "0"]
    assert host_rows["h"][:5] == ["h", "online", "0", "->", "4"]


def test_violations_are_grouped_by_rule_with_counts() -> None:
    problem, plan = _runbook()
    at_once = Plan(
        Status.FEASIBLE,
        "all-at-once",
        0.0,
        [Assignment(g.name, "h", Action.START, 0, 60) for g in problem.guests],
    )
    report = check(problem, at_once)
    text = render_plan(problem, at_once, report)
    counts = dict(violation_counts(report))
    assert counts["stagger"] == 3
    assert f"INVALID: {len(report.violations)} violations (3 stagger, " in text
    assert "  stagger (3):" in text
    assert sum(1 for line in text.splitlines() if "(stagger 5 s)" in line) == 3
    assert verdict(check(problem, plan)) == "valid"


def test_solve_prints_the_first_steps_and_the_same_solve_time_as_show(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = EXAMPLE.parent.parent / "single-host-restart.json"
    plan_path = tmp_path / "plan.json"
    argv = ["solve", str(example), "--solver", "first-fit", "--quiet", "-o", str(plan_path)]
    assert main(argv) == 0
    solved = capsys.readouterr().out.splitlines()
    first = solved.index("Timeline (clock after the plan starts, min:s)") + 2
    assert solved[first].split()[0] == "+00:00"
    assert solved[first].split()[2] == "start"
    assert "  ... 22 more action(s)" in solved
    assert f"every step, as a runbook: placement show {example} {plan_path}" in solved
    assert main(["show", str(example), str(plan_path)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0].startswith(solved[0])  # one solve-time figure, the same words
    assert sum(1 for line in shown if line.startswith("  +") and " start " in line) == 30


# --- the CLI ------------------------------------------------------------------------------


def test_failover_cli_writes_a_plan_that_placement_check_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_path, scenario_path = tmp_path / "plan.json", tmp_path / "scenario.json"
    code = main(
        [
            "failover",
            str(EXAMPLE),
            "--failed",
            "node1",
            "--solver",
            "best-fit",
            "-o",
            str(plan_path),
            "--problem-out",
            str(scenario_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "note: 1 stopped guest(s) stay stopped and are not planned: test01" in out
    assert f"verify it: placement check {scenario_path} {plan_path}" in out
    scenario = json.loads(scenario_path.read_text())
    assert {h["name"]: h.get("state", "online") for h in scenario["hosts"]}["node1"] == "failed"
    assert main(["check", str(scenario_path), str(plan_path)]) == 0
    assert main(["show", str(scenario_path), str(plan_path)]) == 0
    shown = capsys.readouterr().out
    assert "restart: node1 failed" in shown


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["failover", str(EXAMPLE), "--failed", "node9"], "unknown host 'node9'"),
        (["evacuate", str(EXAMPLE), "--host", "node1,node2,node3,node4"], "no online host"),
        (["rebalance", str(EXAMPLE), "--min-improvement", "1.5"], "--min-improvement"),
        (["rebalance", str(EXAMPLE), "--max-moves", "-2"], "--max-moves must be >= 0"),
        (["coldstart", str(EXAMPLE), "--solver", "nope"], "unknown solver 'nope'"),
        (["coldstart", str(EXAMPLE), "--objective", "placed,quick"], "'quick' is not a valid"),
    ],
)
def test_bad_scenario_options_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_show_names_the_plan_file_when_it_names_unknown_guests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "status": "feasible",
                "solver": "x",
                "runtime_s": 0,
                "assignments": [{"guest": "ghost", "host": None, "action": "none"}],
            }
        )
    )
    assert main(["show", str(EXAMPLE), str(plan)]) == 2
    assert f"{plan}: assignments[0].guest: unknown guest 'ghost'" in capsys.readouterr().err


def _scenario_files(tmp_path: Path) -> tuple[Path, Path]:
    plan_path, scenario_path = tmp_path / "plan.json", tmp_path / "scenario.json"
    argv = ["coldstart", str(EXAMPLE), "--solver", "best-fit", "-o", str(plan_path)]
    assert main([*argv, "--problem-out", str(scenario_path)]) == 0
    return scenario_path, plan_path


def test_plot_writes_an_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    scenario_path, plan_path = _scenario_files(tmp_path)
    image = tmp_path / "plan.png"
    assert main(["plot", str(scenario_path), str(plan_path), "-o", str(image)]) == 0
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = tmp_path / "plan.svg"
    assert main(["plot", str(scenario_path), str(plan_path), "-o", str(svg)]) == 0
    assert "<svg" in svg.read_text()
    assert main(["plot", str(scenario_path), str(plan_path), "-o", str(tmp_path / "x.gif")]) == 2
    assert "must end in .png, .svg, .pdf" in capsys.readouterr().err
    assert not (tmp_path / "x.gif").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_plot_without_matplotlib_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario_path, plan_path = _scenario_files(tmp_path)
    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    image = tmp_path / "plan.png"
    assert main(["plot", str(scenario_path), str(plan_path), "-o", str(image)]) == 2
    assert "pip install 'placement[plot]'" in capsys.readouterr().err
    assert not image.exists()


def test_solve_groups_the_violations_of_a_plan_the_checker_rejects(
    capsys: pytest.CaptureFixture[str],
) -> None:
    example = EXAMPLE.parent.parent / "single-host-restart.json"
    argv = ["solve", str(example), "--solver", "first-fit", "--schedule", "all-at-once"]
    assert main([*argv, "--quiet"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[3] == (
        "INVALID: 31 violations (29 stagger, 1 pool_capacity, 1 host_boot_cpu): "
        "do not run it as it is"
    )
    assert "  stagger (29):" in out
    assert "    ... and 26 more like these" in out
    assert sum(1 for line in out if "(stagger 5 s)" in line) == 3


def test_the_search_line_reads_the_typed_statistics() -> None:
    plan = Plan(Status.FEASIBLE, "cpsat", 1.0, ())
    assert search_line(plan) is None  # a solver that reports nothing
    statistics = SolveStatistics(
        first_plan_s=0.5,
        returned="neighbourhood search",
        interrupted=True,
        seeds=[
            SeedRun("best-fit", 0.1, valid=True, kept=True),
            SeedRun("first-fit", 0.1, valid=True, kept=True),
            SeedRun("proxmox", 0.1, valid=False, kept=False),
        ],
        stages=[
            StageLog("placed", "OPTIMAL", improved=False),
            StageLog("recovery", "FEASIBLE", improved=True),
        ],
        neighbourhoods=[
            NeighbourhoodRound(0, 1.0, 5, 20, improved=True),
            NeighbourhoodRound(1, 1.0, 5, 20, improved=False),
        ],
    )
    plan = Plan(Status.FEASIBLE, "cpsat", 1.0, (), statistics=statistics)
    assert search_line(plan) == (
        "search: first plan after 0.50 s; 3 seeds (best: first-fit); returned the "
        "neighbourhood search plan; improved recovery; 2 neighbourhood rounds (1 better); "
        "interrupted"
    )
