"""The report's plots (matplotlib, from the `bench` extra): gap distribution, runtime
against size, and the SAN load over time of a sample plan per solver.

    write_plots(rows, folder) -> [(caption, path), ...]

Each function also returns its `Figure`, so notebooks can show it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.report import InstanceView, label, ran, views
from placement.plot import style

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Row = dict[str, Any]


class PlotsUnavailable(RuntimeError):
    """matplotlib is not installed (install the `bench` extra)."""


def _pyplot() -> Any:
    try:
        # No backend is forced: matplotlib picks Agg without a display, and a notebook
        # keeps its inline backend.
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise PlotsUnavailable("matplotlib is missing: pip install -e '.[bench]'") from error
    return plt


# Markers of the runtime scatter: with the 10 colours, no two of 40 solvers look alike.
_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*")


def _figure_and_axes(ax: Any, size: tuple[float, float]) -> tuple[Figure, Any]:
    """`ax` and its figure, or a new pyplot figure of `size` (inches) and its axes."""
    if ax is not None:
        return ax.figure, ax
    return _pyplot().subplots(figsize=size)  # type: ignore[no-any-return]


def _kind_order(rows: Sequence[Row]) -> list[str]:
    kinds = {label(r): r.get("kind") for r in rows}
    rank = {"optimiser": 0, "baseline": 1, "peer": 2}
    return sorted(kinds, key=lambda name: (rank.get(str(kinds[name]), 3), name))


def gap_figure(rows: Sequence[Row], ax: Any = None) -> Figure:
    """Per solver, the distribution of the gap to the best proven bound (per cent) of
    every comparable plan, all families together. Draws into `ax` when given."""
    gaps: dict[str, list[float]] = defaultdict(list)
    for instances in views(rows).values():
        for view in instances:
            for row in view.rows:
                gap = view.bound_gap(row)
                if gap is not None:
                    gaps[label(row)].append(100 * gap)
    names = [n for n in _kind_order(rows) if gaps.get(n)]
    figure, axes = _figure_and_axes(ax, (8, 0.45 * max(len(names), 2) + 1.2))
    if names:
        data = [gaps[n] for n in names]
        try:
            axes.boxplot(data, orientation="horizontal")
        except TypeError:  # matplotlib before 3.10
            axes.boxplot(data, vert=False)
        axes.set_yticks(range(1, len(names) + 1), [f"{n} ({len(gaps[n])})" for n in names])
    axes.invert_yaxis()
    axes.set_xlabel("gap to the best proven bound of the summarised stage (%)")
    axes.set_title("Gap distribution (valid plans that place as much as the best)")
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return figure


def runtime_figure(rows: Sequence[Row], ax: Any = None) -> Figure:
    """Wall time of every run against the instance's guest count, per solver: a colour
    and a marker each (no two solvers alike). Draws into `ax` when given."""
    figure, axes = _figure_and_axes(ax, (8, 5))
    for index, name in enumerate(_kind_order(rows)):
        points = [
            (r["counts"]["guests"], max(float(r.get("wall_s") or 0.0), 1e-3))
            for r in rows
            if label(r) == name and ran(r) and r.get("counts")
        ]
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        optimiser = any(r.get("kind") == "optimiser" for r in rows if label(r) == name)
        axes.scatter(
            xs,
            ys,
            label=name,
            s=40 if optimiser else 18,
            color=style(index)["color"],
            marker=_MARKERS[index % len(_MARKERS)],
            alpha=0.8,
        )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("guests")
    axes.set_ylabel("wall time (s)")
    axes.set_title("Runtime against size")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    return figure


def sample_instance(rows: Sequence[Row], pool: str = "san_iops") -> InstanceView | None:
    """The first instance (family order) whose optimiser row holds a `pool` curve."""
    for instances in views(rows).values():
        for view in instances:
            if any(
                r.get("kind") == "optimiser" and (r.get("curves") or {}).get(pool)
                for r in view.rows
            ):
                return view
    return None


def _rank(row: Row) -> tuple[int, float, float]:
    """Best first: valid, then most placed, then lowest recovery."""
    recovery = float((row.get("objectives") or {}).get("recovery") or 0.0)
    return (1 if row.get("violations") else 0, -float(row.get("placed") or 0), recovery)


def san_figure(
    rows: Sequence[Row],
    instance: str | None = None,
    pool: str = "san_iops",
    ax: Any = None,
    others: int = 4,
) -> Figure:
    """The load of `pool` over time in the optimiser's plan of one instance (default:
    the first with an optimiser curve) and in the `others` best other solvers' plans
    (valid first, then most placed, then lowest recovery), against the pool's limit: a
    colour and a line style each, the checker's verdict in each legend entry. Draws into
    `ax` when given."""
    view: InstanceView | None
    if instance is None:
        view = sample_instance(rows, pool)
    else:
        view = next((v for vs in views(rows).values() for v in vs if v.name == instance), None)
    figure, axes = _figure_and_axes(ax, (9, 4.5))
    if view is None:
        axes.set_title(f"no plan with a {pool} curve")
        return figure
    drawn = []
    for name in _kind_order(view.rows):
        row = next((r for r in view.rows if label(r) == name and ran(r)), None)
        if row and (row.get("curves") or {}).get(pool):
            drawn.append(row)
    mine = [r for r in drawn if r.get("kind") == "optimiser"]
    rest = sorted((r for r in drawn if r.get("kind") != "optimiser"), key=_rank)
    chosen = mine + rest[:others]
    limit = None
    for index, row in enumerate(chosen):
        curve = row["curves"][pool]
        limit = row.get("pools", {}).get(pool, {}).get("limit", limit)
        violations = int(row.get("violations") or 0)
        verdict = "valid" if not violations else f"INVALID: {violations} violations"
        axes.step(
            [point[0] for point in curve],
            [point[1] for point in curve],
            where="post",
            label=f"{label(row)}: {verdict}",
            linewidth=2.2 if row.get("kind") == "optimiser" else 1.2,
            **style(index),
        )
    if limit:
        axes.axhline(limit, color="black", linestyle="--", linewidth=1, label=f"limit {limit}")
    axes.set_xlabel("seconds since the failure")
    axes.set_ylabel(pool)
    left_out = len(rest) - len(rest[:others])
    more = f" (the {others} best of {len(rest)} others shown)" if left_out > 0 else ""
    axes.set_title(f"{pool} load over time, instance {view.name}: the optimiser{more}")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    return figure


def write_plots(rows: Sequence[Row], folder: Path) -> list[tuple[str, Path]]:
    """Write the three plots as PNG files into `folder`; return (caption, path) pairs."""
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    made = [
        ("Gap to the best proven bound, per solver", "bench-gaps.png", gap_figure(rows)),
        ("Runtime against size", "bench-runtime.png", runtime_figure(rows)),
        ("SAN load of a sample plan per solver", "bench-san.png", san_figure(rows)),
    ]
    written = []
    for caption, name, figure in made:
        path = folder / name
        # Through a temporary name, so a half-written image never replaces a good one.
        partial = path.with_suffix(".tmp.png")
        figure.savefig(partial, dpi=110)
        plt.close(figure)
        partial.replace(path)
        written.append((caption, path))
    return written
