"""The benchmark's plots, read from the matplotlib figure objects: thirteen solvers on one
instance are told apart (the optimiser against the best few others on the SAN plot, a
colour and a marker each on the runtime plot), and each plot draws into a given axes."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("matplotlib", reason="plots need the bench extra")

from bench.plots import runtime_figure, san_figure

Row = dict[str, Any]


def _row(solver: str, kind: str, violations: int, placed: int, recovery: int) -> Row:
    return {
        "instance": "s-01",
        "family": "S",
        "solver": solver,
        "schedule": "cpsat" if kind == "optimiser" else "list",
        "label": solver,
        "kind": kind,
        "status": "feasible",
        "objectives": {"placed": placed, "recovery": recovery},
        "violations": violations,
        "placed": placed,
        "counts": {"guests": 30 + placed},
        "wall_s": 0.1 + recovery / 1000,
        "curves": {"san_iops": [[0, 100 * placed], [recovery, 0]]},
        "pools": {"san_iops": {"limit": 4000}},
    }


def _thirteen() -> list[Row]:
    """The optimiser and twelve others: b0-b3 valid with recovery 500..800 (the four best),
    b4-b7 valid but slower, p0-p3 invalid."""
    rows = [_row("cpsat", "optimiser", 0, 30, 400)]
    rows += [_row(f"b{i}", "baseline", 0, 30, 500 + 100 * i) for i in range(8)]
    rows += [_row(f"p{i}", "peer", 3, 30, 100) for i in range(4)]
    return rows


def test_san_plot_shows_the_optimiser_against_the_best_four() -> None:
    figure = san_figure(_thirteen())
    axes = figure.axes[0]
    lines = [line for line in axes.get_lines() if not line.get_label().startswith("limit")]
    labels = [line.get_label() for line in lines]
    assert labels == ["cpsat: valid", "b0: valid", "b1: valid", "b2: valid", "b3: valid"]
    assert len({(line.get_color(), line.get_linestyle()) for line in lines}) == 5
    assert "the optimiser (the 4 best of 12 others shown)" in axes.get_title()


def test_runtime_plot_tells_thirteen_solvers_apart() -> None:
    figure = runtime_figure(_thirteen())
    looks = {
        (tuple(c.get_facecolor()[0]), c.get_paths()[0].vertices.tobytes())
        for c in figure.axes[0].collections
    }
    assert len(figure.axes[0].collections) == 13
    assert len(looks) == 13


def test_bench_plots_draw_into_a_given_axes() -> None:
    from matplotlib.figure import Figure

    figure = Figure()
    left, right = figure.subplots(1, 2)
    assert san_figure(_thirteen(), ax=left) is figure
    assert runtime_figure(_thirteen(), ax=right) is figure
    assert left.get_lines()
    assert right.collections
