"""A plan as a picture: boots and migrations per host over time, boot-pool load against its
limit, and host utilisation before and after.

matplotlib is an optional extra (`pip install 'placement[plot]'`); it is imported only
when a plot is drawn, and `PlotUnavailableError` says how to install it when it is
missing. The image is rendered in memory and written whole or not at all.
"""

from __future__ import annotations

import io
import os
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from placement.codec import write_bytes_atomic
from placement.imbalance import host_usage, imbalance
from placement.model import Problem
from placement.plan import Action, Plan

if TYPE_CHECKING:
    from placement.simulate import SimulationResult

FORMATS = ("png", "svg", "pdf")
# Guest names are written on the bars up to this many timed actions; beyond, they clutter.
_LABELS_UP_TO = 40


class PlotUnavailableError(RuntimeError):
    """matplotlib is not installed."""


def _matplotlib() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise PlotUnavailableError(
            "plotting needs matplotlib: pip install 'placement[plot]'"
        ) from error
    return Figure, FigureCanvasAgg


def _step_series(intervals: list[tuple[int, int, int]]) -> tuple[list[int], list[int]]:
    """Instants and the summed amount from each instant on, for half-open intervals."""
    deltas: dict[int, int] = defaultdict(int)
    for start, end, amount in intervals:
        if end > start and amount:
            deltas[start] += amount
            deltas[end] -= amount
    times, levels, level = [0], [0], 0
    for instant in sorted(deltas):
        level += deltas[instant]
        if instant == times[-1]:
            levels[-1] = level
        else:
            times.append(instant)
            levels.append(level)
    return times, levels


def _lanes(bars: list[tuple[float, float, str, str]]) -> list[tuple[int, int]]:
    """For bars `(start, end, kind, guest)` of one host: (lane, lanes) of each, so that bars
    that overlap in time sit side by side instead of on top of each other."""
    order = sorted(range(len(bars)), key=lambda i: (bars[i][0], bars[i][1]))
    ends: list[float] = []
    lane_of = [0] * len(bars)
    for i in order:
        start, end = bars[i][0], bars[i][1]
        for lane, last in enumerate(ends):
            if last <= start:
                ends[lane] = end
                lane_of[i] = lane
                break
        else:
            lane_of[i] = len(ends)
            ends.append(end)
    return [(lane, max(len(ends), 1)) for lane in lane_of]


_STYLE = {
    "boot": {"color": "tab:blue"},
    "arriving": {"color": "tab:orange"},
    "leaving": {"color": "none", "edgecolor": "tab:orange", "hatch": "//"},
}


def _gantt(axes: Any, problem: Problem, plan: Plan) -> None:
    hosts = [h.name for h in problem.hosts]
    bars: dict[str, list[tuple[float, float, str, str]]] = {name: [] for name in hosts}
    for assignment in plan.by_guest().values():
        if assignment.host is None or assignment.start_s is None or assignment.ready_s is None:
            continue
        end = max(float(assignment.ready_s), assignment.start_s + 0.5)
        if assignment.action is Action.START:
            bars[assignment.host].append((assignment.start_s, end, "boot", assignment.guest))
        elif assignment.action is Action.MIGRATE:
            bars[assignment.host].append((assignment.start_s, end, "arriving", assignment.guest))
            source = problem.guest(assignment.guest).current_host
            if source is not None:
                bars[source].append((0.0, end, "leaving", assignment.guest))
    total = sum(len(items) for items in bars.values())
    for y, name in enumerate(hosts):
        items = bars[name]
        for (start, end, kind, guest), (lane, lanes) in zip(items, _lanes(items), strict=True):
            height = 0.8 / lanes
            centre = y - 0.4 + height * (lane + 0.5)
            axes.barh(centre, end - start, left=start, height=height * 0.9, **_STYLE[kind])
            if total <= _LABELS_UP_TO and kind != "leaving":
                axes.text(start, centre, f" {guest}", va="center", fontsize=7)
    axes.set_yticks(range(len(hosts)), [f"{h.name} ({h.state.value})" for h in problem.hosts])
    axes.invert_yaxis()
    axes.set_xlabel("time (s)")
    axes.set_title("Boots (blue) and live migrations (orange; hatched: source until ready)")
    if total == 0:
        axes.text(0.5, 0.5, "nothing starts or moves", transform=axes.transAxes, ha="center")


def _pool_intervals(problem: Problem, plan: Plan) -> dict[str, list[tuple[int, int, int]]]:
    """Pool -> the (start, end, load) of every planned boot and migration that loads it."""
    loads: dict[str, list[tuple[int, int, int]]] = {pool: [] for pool in problem.boot_pools}
    for assignment in plan.by_guest().values():
        if assignment.start_s is None or assignment.ready_s is None:
            continue
        guest = problem.guest(assignment.guest)
        if assignment.action is Action.START:
            extra = guest.boot.load
        elif assignment.action is Action.MIGRATE:
            extra = problem.migration.load
        else:
            continue
        for pool, amount in extra.items():
            loads.setdefault(pool, []).append((assignment.start_s, assignment.ready_s, amount))
    return loads


def _pools(axes: Any, problem: Problem, plan: Plan) -> None:
    loads = _pool_intervals(problem, plan)
    if not loads:
        axes.text(0.5, 0.5, "no boot pools", transform=axes.transAxes, ha="center")
        axes.set_axis_off()
        return
    for index, (pool, intervals) in enumerate(sorted(loads.items())):
        color = f"C{index % 10}"
        times, levels = _step_series(intervals)
        axes.step(times, levels, where="post", color=color, label=pool)
        limit = problem.boot_pools.get(pool)
        if limit is not None:
            axes.axhline(limit, color=color, linestyle="--", linewidth=1)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("load")
    axes.set_title("Boot-pool load over time (dashed: limit)")
    axes.legend(fontsize=8)


def _utilisation(axes: Any, problem: Problem, plan: Plan) -> None:
    before = host_usage(problem, None)
    after = host_usage(problem, plan)
    resources = problem.resources
    width = 0.8 / max(2 * len(resources), 1)
    for r, resource in enumerate(resources):
        for k, (when, usage) in enumerate((("before", before), ("after", after))):
            values = []
            for host in problem.hosts:
                usable = host.usable(resource)
                used = usage[host.name].get(resource, 0)
                values.append(100 * used / usable if usable > 0 else 0.0)
            offset = (2 * r + k) * width - 0.4 + width / 2
            axes.bar(
                [i + offset for i in range(len(problem.hosts))],
                values,
                width=width,
                color=f"C{r % 10}",
                alpha=0.45 if when == "before" else 1.0,
                label=f"{resource} {when}",
            )
    axes.axhline(100, color="black", linewidth=0.8, linestyle=":")
    axes.set_xticks(range(len(problem.hosts)), [h.name for h in problem.hosts])
    axes.set_ylabel("% of usable")
    axes.set_title(
        f"Host utilisation before (pale) and after; imbalance {imbalance(problem):.3f} -> "
        f"{imbalance(problem, plan):.3f}"
    )
    axes.legend(fontsize=8, ncol=max(len(resources), 1))


def simulated_pool(
    axes: Any,
    problem: Problem,
    plan: Plan,
    result: SimulationResult,
    pool: str | None = None,
    color: str = "C0",
    title: str | None = None,
    end_s: float | None = None,
    show_plan: bool = True,
) -> None:
    """Draw one pool's simulated demand into `axes`: the median over runs, the band
    from the 5th to the 95th percentile (and, paler, min to max), the planned demand as
    a black step line (unless `show_plan` is false: a policy that ignores the plan's
    times) and the limit as a dashed red line. `result` must come from
    `simulate(..., trace=True)`; `pool` defaults to the problem's first pool; `end_s`
    fixes the time axis (default: the last run's end)."""
    import numpy as np

    names = list(problem.boot_pools)
    if not names:
        axes.text(0.5, 0.5, "no boot pools", transform=axes.transAxes, ha="center")
        axes.set_axis_off()
        return
    pool = pool or names[0]
    traces = [o.pool_trace[pool] for o in result.outcomes if pool in o.pool_trace]
    if not traces:
        raise ValueError("the simulation was run without trace=True: nothing to draw")
    end = end_s or max(times[-1] for times, _ in traces) or 1.0
    grid = np.linspace(0.0, end, 600)
    curves = []
    for times, levels in traces:
        index = np.searchsorted(np.asarray(times), grid, side="right") - 1
        curves.append(np.asarray(levels)[np.clip(index, 0, len(levels) - 1)])
    stacked = np.vstack(curves)
    low, high = np.percentile(stacked, [5, 95], axis=0)
    axes.fill_between(
        grid,
        stacked.min(axis=0),
        stacked.max(axis=0),
        color=color,
        alpha=0.15,
        step="post",
        linewidth=0,
    )
    axes.fill_between(
        grid,
        low,
        high,
        color=color,
        alpha=0.35,
        step="post",
        linewidth=0,
        label=f"simulated p5-p95 ({len(traces)} runs)",
    )
    axes.step(
        grid,
        np.median(stacked, axis=0),
        where="post",
        color=color,
        linewidth=1.2,
        label="simulated median",
    )
    if show_plan:
        planned_times, planned_levels = _step_series(_pool_intervals(problem, plan).get(pool, []))
        axes.step(
            [*planned_times, end],
            [*planned_levels, planned_levels[-1]],
            where="post",
            color="black",
            linewidth=1,
            label="planned",
        )
    limit = problem.boot_pools.get(pool)
    if limit is not None:
        axes.axhline(limit, color="red", linestyle="--", linewidth=1, label=f"limit {limit:,}")
    axes.set_xlim(0, end)
    axes.set_ylim(bottom=0)
    axes.set_ylabel(pool)
    summary = result.summary
    axes.set_title(
        title
        or f"{result.policy}: recovery p95 {summary.recovery.p95:,.0f}, peak "
        f"{summary.peak_pool_ratio.get(pool, 0.0):.2f}x, fenced in "
        f"{summary.runs_with_fencing}/{summary.runs} runs",
        fontsize=9,
    )
    axes.legend(fontsize=7, loc="upper right")


def render_plot(
    problem: Problem,
    plan: Plan,
    image_format: str = "png",
    simulation: SimulationResult | None = None,
) -> bytes:
    """The three panels as an image in `image_format` (png, svg or pdf), and a fourth
    with the simulated pool demand when `simulation` (traced) is given."""
    if image_format not in FORMATS:
        raise ValueError(f"unknown image format '{image_format}' (known: {', '.join(FORMATS)})")
    figure_class, canvas_class = _matplotlib()
    height = 3.0 + 0.35 * len(problem.hosts)
    ratios = [height, 3.5, 3.5] + ([3.5] if simulation is not None else [])
    figure = figure_class(figsize=(11, sum(ratios)), layout="constrained")
    canvas_class(figure)
    panels = figure.subplots(len(ratios), 1, gridspec_kw={"height_ratios": ratios})
    _gantt(panels[0], problem, plan)
    _pools(panels[1], problem, plan)
    _utilisation(panels[2], problem, plan)
    if simulation is not None:
        simulated_pool(panels[3], problem, plan, simulation)
        panels[3].set_xlabel("time (s)")
    figure.suptitle(f"{plan.solver}: {plan.status.value}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=image_format, dpi=110)
    return buffer.getvalue()


def render_comparison(
    problem: Problem,
    runs: list[tuple[Plan, SimulationResult]],
    image_format: str = "png",
    pool: str | None = None,
) -> bytes:
    """Simulated pool demand of several strategies, one panel each, on shared axes (the
    same time and demand scales), one colour per strategy."""
    if image_format not in FORMATS:
        raise ValueError(f"unknown image format '{image_format}' (known: {', '.join(FORMATS)})")
    figure_class, canvas_class = _matplotlib()
    figure = figure_class(figsize=(11, 2.6 * len(runs) + 0.6), layout="constrained")
    canvas_class(figure)
    panels = figure.subplots(len(runs), 1, sharex=True, sharey=True, squeeze=False)[:, 0]
    name = pool or next(iter(problem.boot_pools), "")
    traces = [o.pool_trace[name] for _, r in runs for o in r.outcomes if name in o.pool_trace]
    end = max((times[-1] for times, _ in traces), default=1.0)
    top = max([max(levels) for _, levels in traces] + [problem.boot_pools.get(name, 0)])
    for index, (axes, (plan, result)) in enumerate(zip(panels, runs, strict=True)):
        simulated_pool(
            axes,
            problem,
            plan,
            result,
            pool,
            color=f"C{index % 10}",
            end_s=end,
            # Only these two follow the plan's times; the peers' ways ignore them.
            show_plan=result.policy in ("open-loop", "readiness-gated"),
        )
    panels[0].set_ylim(0, 1.05 * top if top > 0 else 1.0)
    panels[-1].set_xlabel("time (s)")
    settings = runs[0][1].settings
    figure.suptitle(
        f"Simulated boot-pool demand, sigma {settings.sigma}, {settings.contention.value}, "
        f"fencing {'on' if settings.fencing else 'off'}"
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format=image_format, dpi=110)
    return buffer.getvalue()


def image_format_of(path: str | os.PathLike[str]) -> str:
    """The image format a file name asks for; ValueError for an unknown suffix."""
    target = Path(path)
    image_format = target.suffix.lower().lstrip(".")
    if image_format not in FORMATS:
        raise ValueError(
            f"{target}: the file name must end in {', '.join('.' + f for f in FORMATS)}"
        )
    return image_format


def write_plot(
    problem: Problem,
    plan: Plan,
    path: str | os.PathLike[str],
    simulation: SimulationResult | None = None,
) -> None:
    """Draw the plan to `path`; the format comes from its suffix (.png, .svg, .pdf).

    Written whole or not at all (a temporary file renamed over the target). Raises
    `PlotUnavailableError` without matplotlib and ValueError for an unknown suffix.
    """
    image_format = image_format_of(path)
    write_bytes_atomic(path, render_plot(problem, plan, image_format, simulation))
