"""What the pictures draw, read from the matplotlib figure objects (never from pixels):
titles with the checker's verdict, red bands over a limit, limits drawn, one time axis,
bars kept apart, unplaced guests shown, several plans on the same axes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from placement.check import check
from placement.cli import main
from placement.codec import dump_plan
from placement.model import BootProfile, Guest, Host, HostBoot, HostState, Problem, Schedule
from placement.plan import Action, Assignment, Plan, Status, Unplaced

pytest.importorskip("matplotlib")

from placement.plot import (
    compare_figure,
    over_limit,
    plan_figure,
    plot_gantt,
    plot_hosts,
    plot_pools,
    plot_ready,
    style,
)


def _boot(duration_s: int, san: int, cpu: int) -> BootProfile:
    return BootProfile(duration_s=duration_s, load={"san": san}, cpu=cpu)


def _san_cluster() -> Problem:
    """One failed host (h0) that ran a, b and c; one online host (h1) with 4 boot CPU
    and a SAN of 100: a and b each load the SAN by 60 and need 3 boot CPU for 60 s, so
    any two at once overload both. c (64 GiB) fits nowhere."""
    hosts = [
        Host("h0", {"ram_mib": 8192}, state=HostState.FAILED),
        Host("h1", {"ram_mib": 8192}, boot=HostBoot(cpu=4)),
    ]
    guests = [
        Guest("a", {"ram_mib": 1024}, priority=2, current_host="h0", boot=_boot(60, 60, 3)),
        Guest("b", {"ram_mib": 1024}, priority=1, current_host="h0", boot=_boot(60, 60, 3)),
        Guest("c", {"ram_mib": 65536}, current_host="h0"),
    ]
    return Problem(hosts, guests, boot_pools={"san": 100}, schedule=Schedule(stagger_s=0))


def _at_once(problem: Problem) -> Plan:
    """a and b start together at 0 on h1 (60 s of 120 SAN and 6 boot CPU); c unplaced."""
    return Plan(
        Status.FEASIBLE,
        "at-once",
        0.1,
        [
            Assignment("a", "h1", Action.START, 0, 60),
            Assignment("b", "h1", Action.START, 0, 60),
            Assignment("c", None, Action.NONE),
        ],
        [Unplaced("c", "needs 64 GiB RAM")],
    )


def _back_to_back(problem: Problem) -> Plan:
    """a from 0 to 60, then b from 60 to 120, on h1: within every limit."""
    return Plan(
        Status.FEASIBLE,
        "serial",
        0.1,
        [
            Assignment("a", "h1", Action.START, 0, 60),
            Assignment("b", "h1", Action.START, 60, 120),
            Assignment("c", None, Action.NONE),
        ],
        [Unplaced("c", "needs 64 GiB RAM")],
    )


def _bands(axes: Any, what: str) -> list[tuple[float, float]]:
    """The red `overload:<what>` bands of `axes` as (from, to) in seconds."""
    return [
        (patch.get_x(), patch.get_x() + patch.get_width())
        for patch in axes.patches
        if patch.get_gid() == f"overload:{what}"
    ]


def _bars(axes: Any) -> dict[str, Any]:
    return {
        patch.get_gid(): patch
        for patch in axes.patches
        if (patch.get_gid() or "").split(":")[0] in ("boot", "arriving", "leaving")
    }


def test_title_carries_the_checkers_verdict_in_red() -> None:
    problem = _san_cluster()
    figure = plan_figure(problem, _at_once(problem))
    title = figure.get_suptitle()
    assert title.startswith("at-once: feasible; INVALID: 2 violations (")
    assert "1 pool_capacity" in title
    assert "1 host_boot_cpu" in title
    assert figure._suptitle.get_color() == "red"
    valid = plan_figure(problem, _back_to_back(problem))
    assert valid.get_suptitle() == "serial: feasible; valid"


def test_overloaded_stretches_are_red_and_limits_are_drawn() -> None:
    problem = _san_cluster()
    plan = _at_once(problem)
    pools = plot_pools(problem, plan)
    assert _bands(pools, "san") == [(0, 60)]
    assert any(list(line.get_ydata()) == [100, 100] for line in pools.get_lines())
    hosts = plot_hosts(problem, plan)
    assert _bands(hosts, "h1") == [(0, 60)]
    assert any(list(line.get_ydata()) == [4, 4] for line in hosts.get_lines())  # h1's limit
    assert [t.get_text() for t in hosts.get_legend().get_texts()] == ["h1", "over the limit"]
    fine = _back_to_back(problem)
    assert _bands(plot_pools(problem, fine), "san") == []
    assert _bands(plot_hosts(problem, fine), "h1") == []


def test_over_limit_merges_adjacent_stretches() -> None:
    assert over_limit([0, 10, 20, 30, 40], [5, 7, 3, 9, 0], 4) == [(0, 20), (30, 40)]
    assert over_limit([0, 10], [4, 0], 4) == []


def test_time_panels_share_one_axis_from_zero() -> None:
    problem = _san_cluster()
    figure = plan_figure(problem, _back_to_back(problem))
    gantt, pools, hosts, utilisation = figure.axes
    for axes in (pools, hosts):
        assert gantt.get_shared_x_axes().joined(gantt, axes)
        assert axes.get_xlim() == gantt.get_xlim()
    assert not gantt.get_shared_x_axes().joined(gantt, utilisation)
    assert gantt.get_xlim()[0] == 0
    assert gantt.get_xlim()[1] >= 120
    assert gantt.xaxis.get_major_formatter()(90, 0) == "+01:30"


def test_back_to_back_boots_are_separate_bars_with_edges() -> None:
    problem = _san_cluster()
    bars = _bars(plot_gantt(problem, _back_to_back(problem)))
    assert set(bars) == {"boot:a", "boot:b"}
    first, second = bars["boot:a"], bars["boot:b"]
    assert first.get_y() == second.get_y()  # one lane
    assert first.get_x() + first.get_width() == second.get_x() == 60
    for bar in (first, second):
        assert bar.get_linewidth() > 0
        assert bar.get_edgecolor()[:3] == (1.0, 1.0, 1.0)
    overlapping = _bars(plot_gantt(problem, _at_once(problem)))
    assert overlapping["boot:a"].get_y() != overlapping["boot:b"].get_y()


def test_unplaced_guests_have_a_row_of_their_own() -> None:
    problem = _san_cluster()
    axes = plot_gantt(problem, _back_to_back(problem))
    labels = [tick.get_text() for tick in axes.get_yticklabels()]
    assert labels == ["h0 (failed)", "h1 (online)", "no host (1)"]
    [row] = [text for text in axes.texts if text.get_gid() == "unplaced"]
    assert row.get_text().strip() == "c"


def test_guest_names_are_left_off_when_they_would_overlap() -> None:
    hosts = [Host("h", {"ram_mib": 10**6})]
    guests = [Guest(f"g{i}", {"ram_mib": 1}) for i in range(120)]
    problem = Problem(hosts, guests)
    plan = Plan(
        Status.FEASIBLE,
        "x",
        0,
        [Assignment(f"g{i}", "h", Action.START, i, i + 60) for i in range(120)],
    )
    axes = plot_gantt(problem, plan)
    assert len(_bars(axes)) == 120
    assert [t for t in axes.texts if t.get_text().strip().startswith("g")] == []
    few = plot_gantt(problem, plan, labels=True)
    assert len([t for t in few.texts if t.get_text().strip().startswith("g")]) == 120


def test_drawing_functions_draw_into_the_axes_they_are_given() -> None:
    from matplotlib.figure import Figure

    problem = _san_cluster()
    plan = _back_to_back(problem)
    figure = Figure()
    left, right = figure.subplots(1, 2)
    assert plot_gantt(problem, plan, ax=left) is left
    assert plot_pools(problem, plan, ax=right) is right
    assert len(figure.axes) == 2
    assert _bars(left)
    assert right.get_lines()


def test_compare_draws_every_plan_on_the_same_axes_with_its_verdict() -> None:
    problem = _san_cluster()
    plans = [_back_to_back(problem), _at_once(problem)]
    figure = compare_figure(problem, plans, labels=["serial", "at once"])
    ready, pool = figure.axes
    assert ready.get_shared_x_axes().joined(ready, pool)
    legend = [text.get_text() for text in ready.get_legend().get_texts()]
    assert legend[0].startswith("serial: valid; 2 of 3 up, the last at +02:00")
    assert legend[1].startswith("at once: INVALID: 2 violations (")
    lines = [line for line in pool.get_lines() if line.get_label().startswith(("serial", "at"))]
    looks = {(line.get_color(), line.get_linestyle()) for line in lines}
    assert len(looks) == 2
    assert [p.get_gid() for p in pool.collections if p.get_gid()] == ["overload:at once"]
    assert figure.get_suptitle() == "2 plans on the same axes; 1 of 2 valid"


def test_plot_ready_counts_guests_up_over_time() -> None:
    problem = _san_cluster()
    axes = plot_ready(problem, [_back_to_back(problem)])
    [line] = [line for line in axes.get_lines() if line.get_label().startswith("serial")]
    assert list(line.get_xdata())[:3] == [0, 60, 120]
    assert list(line.get_ydata())[:3] == [0, 1, 2]


def test_styles_differ_for_twenty_plans() -> None:
    looks = {(style(i)["color"], style(i)["linestyle"]) for i in range(20)}
    assert len(looks) == 20


# --- the command line -------------------------------------------------------------------


def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    problem = _san_cluster()
    from placement.codec import dump_problem

    problem_path = tmp_path / "cluster.json"
    problem_path.write_text(json.dumps(dump_problem(problem)))
    serial, at_once = tmp_path / "serial.json", tmp_path / "at-once.json"
    serial.write_text(json.dumps(dump_plan(_back_to_back(problem))))
    at_once.write_text(json.dumps(dump_plan(_at_once(problem))))
    assert not check(problem, _at_once(problem)).ok
    return problem_path, serial, at_once


def test_plot_writes_plan_png_beside_the_plan_without_o(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    problem_path, serial, _ = _files(tmp_path)
    assert main(["plot", str(problem_path), str(serial)]) == 0
    assert (tmp_path / "serial.png").read_bytes()[:4] == b"\x89PNG"
    assert f"plot written to {tmp_path / 'serial.png'}" in capsys.readouterr().out


def test_plot_compares_several_plans(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    problem_path, serial, at_once = _files(tmp_path)
    assert main(["plot", str(problem_path), str(serial), str(at_once)]) == 0
    assert (tmp_path / "serial-compare.png").read_bytes()[:4] == b"\x89PNG"
    out = tmp_path / "both.svg"
    assert main(["plot", str(problem_path), str(serial), str(at_once), "-o", str(out)]) == 0
    assert "INVALID: 2 violations" in out.read_text()


def test_plot_names_a_bad_plan_among_several(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    problem_path, serial, _ = _files(tmp_path)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    code = main(
        ["plot", str(problem_path), str(serial), str(broken), "-o", str(tmp_path / "x.png")]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert str(broken) in err
    assert "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_home_page_picture_puts_both_plans_on_one_time_axis() -> None:
    """What docs/index.md shows (bench/pictures.py), drawn from fast plans: a list
    schedule stands in for the optimiser."""
    from bench.pictures import EXAMPLE, home_figure
    from placement.codec import load_problem_file
    from placement.solvers import SolveOptions, solve

    problem = load_problem_file(EXAMPLE)
    listed = solve(problem, "first-fit", SolveOptions(schedule="list"))
    serial = solve(problem, "first-fit", SolveOptions(schedule="serial:45"))
    figure = home_figure(problem, listed, serial)
    ready, san = figure.axes
    assert ready.get_shared_x_axes().joined(ready, san)
    assert ready.get_xlim() == san.get_xlim()
    assert ready.get_xlim()[0] == 0
    legend = [text.get_text() for text in ready.get_legend().get_texts()]
    assert legend[0].startswith("first-fit (placement and start times together): valid; 30 of 30")
    assert legend[1].startswith("serial:45: INVALID: 2 violations (1 pool_capacity, 1 host_boot")
    # serial:45 overloads the SAN: its red fill; the list schedule has none.
    assert [c.get_gid() for c in san.collections if c.get_gid()] == ["overload:serial:45"]
    assert "a start every 45 s" in figure.get_suptitle()


def test_compare_adds_each_plans_simulated_median() -> None:
    from placement.simulate import simulate

    problem = _san_cluster()
    plans = [_back_to_back(problem), _at_once(problem)]
    runs = [simulate(problem, plan, "open-loop", runs=3, sigma=0.2, trace=True) for plan in plans]
    figure = compare_figure(problem, plans, labels=["serial", "at once"], simulations=runs)
    pool = figure.axes[1]
    medians = [line for line in pool.get_lines() if "simulated median" in line.get_label()]
    assert [line.get_label() for line in medians] == [
        "serial: simulated median (open-loop, 3 runs)",
        "at once: simulated median (open-loop, 3 runs)",
    ]
    plan_lines = {line.get_label(): line for line in pool.get_lines()}
    assert medians[0].get_color() == plan_lines["serial: valid"].get_color()


def test_plot_compare_simulate_from_the_command_line(tmp_path: Path) -> None:
    problem_path, serial, at_once = _files(tmp_path)
    image = tmp_path / "sim.svg"
    argv = ["plot", str(problem_path), str(serial), str(at_once), "-o", str(image)]
    assert main([*argv, "--simulate", "open-loop", "--runs", "2"]) == 0
    assert "simulated median (open-loop, 2 runs)" in image.read_text()


def test_a_large_cluster_gantt_leaves_idle_hosts_out_and_says_so() -> None:
    hosts = [Host(f"h{i:02d}", {"ram_mib": 4096}) for i in range(30)]
    guests = [Guest("a", {"ram_mib": 1}), Guest("b", {"ram_mib": 1})]
    problem = Problem(hosts, guests)
    plan = Plan(
        Status.FEASIBLE,
        "x",
        0,
        [
            Assignment("a", "h03", Action.START, 0, 60),
            Assignment("b", "h17", Action.START, 0, 60),
        ],
    )
    axes = plot_gantt(problem, plan)
    assert [t.get_text() for t in axes.get_yticklabels()] == ["h03 (online)", "h17 (online)"]
    assert "28 hosts with nothing to start or move left out" in axes.get_title()
    small = Problem(hosts[:3], guests)
    few = Plan(Status.FEASIBLE, "x", 0, [Assignment("a", "h00", Action.START, 0, 60)])
    drawn = plot_gantt(small, few)
    labels = [t.get_text() for t in drawn.get_yticklabels()]
    assert labels == ["h00 (online)", "h01 (online)", "h02 (online)", "no host (1)"]
    assert "left out" not in drawn.get_title()
