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


def _kind_order(rows: Sequence[Row]) -> list[str]:
    kinds = {label(r): r.get("kind") for r in rows}
    rank = {"optimiser": 0, "baseline": 1, "peer": 2}
    return sorted(kinds, key=lambda name: (rank.get(str(kinds[name]), 3), name))


def gap_figure(rows: Sequence[Row]) -> Figure:
    """Per solver, the distribution of the gap to the best proven bound (per cent) of
    every comparable plan, all families together."""
    plt = _pyplot()
    gaps: dict[str, list[float]] = defaultdict(list)
    for instances in views(rows).values():
        for view in instances:
            for row in view.rows:
                gap = view.bound_gap(row)
                if gap is not None:
                    gaps[label(row)].append(100 * gap)
    names = [n for n in _kind_order(rows) if gaps.get(n)]
    figure: Figure
    figure, axes = plt.subplots(figsize=(8, 0.45 * max(len(names), 2) + 1.2))
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


def runtime_figure(rows: Sequence[Row]) -> Figure:
    """Wall time of every run against the instance's guest count, per solver."""
    plt = _pyplot()
    figure: Figure
    figure, axes = plt.subplots(figsize=(8, 5))
    for name in _kind_order(rows):
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
            s=36 if optimiser else 12,
            marker="o" if optimiser else ".",
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


def san_figure(rows: Sequence[Row], instance: str | None = None, pool: str = "san_iops") -> Figure:
    """The load of `pool` over time in each solver's plan of one instance (default: the
    first with an optimiser curve), against the pool's limit."""
    plt = _pyplot()
    view: InstanceView | None
    if instance is None:
        view = sample_instance(rows, pool)
    else:
        view = next((v for vs in views(rows).values() for v in vs if v.name == instance), None)
    figure: Figure
    figure, axes = plt.subplots(figsize=(9, 4.5))
    if view is None:
        axes.set_title(f"no plan with a {pool} curve")
        return figure
    limit = None
    for name in _kind_order(view.rows):
        row = next((r for r in view.rows if label(r) == name and ran(r)), None)
        curve = (row or {}).get("curves", {}).get(pool) if row else None
        if not curve:
            continue
        limit = (row or {}).get("pools", {}).get(pool, {}).get("limit", limit)
        xs = [point[0] for point in curve]
        ys = [point[1] for point in curve]
        optimiser = (row or {}).get("kind") == "optimiser"
        axes.step(xs, ys, where="post", label=name, linewidth=2.2 if optimiser else 1.0)
    if limit:
        axes.axhline(limit, color="black", linestyle="--", linewidth=1, label=f"limit {limit}")
    axes.set_xlabel("seconds since the failure")
    axes.set_ylabel(pool)
    axes.set_title(f"{pool} load over time, instance {view.name}")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, ncol=2)
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
