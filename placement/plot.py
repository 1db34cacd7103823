"""A plan as a picture: boots and migrations per host over time, boot-pool load and host
boot CPU against their limits, and host utilisation before and after; or several plans
on the same axes (`compare_figure`).

Every picture says what the checker says: the title carries its verdict (`INVALID: 31
violations (29 stagger, ...)`), load above a limit is shaded red, and the time panels
share one time axis, in minutes and seconds after the plan starts.

The drawing functions take a matplotlib `ax=` and draw into it (as PyVRP's do), so a
notebook composes them: `plot_gantt`, `plot_pools`, `plot_hosts`, `plot_utilisation`,
and, for several plans, `plot_ready` and `compare_pools`. Without `ax` each makes a
figure of its own and returns its axes. `plan_figure` and `compare_figure` compose them;
`write_plot` and `write_compare` write an image whole or not at all.

matplotlib is an optional extra (`pip install 'placement[plot]'`); it is imported only
when a plot is drawn, and `PlotUnavailableError` says how to install it when it is
missing.
"""

from __future__ import annotations

import io
import math
import os
from collections import defaultdict
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from placement.check import CheckReport, check
from placement.codec import write_bytes_atomic
from placement.imbalance import host_usage, imbalance
from placement.model import Problem
from placement.plan import Action, Plan
from placement.show import verdict
from placement.timeline import clock, cumulative_series, pool_intervals, step_series, timeline

if TYPE_CHECKING:
    from placement.simulate import SimulationResult

FORMATS = ("png", "svg", "pdf")
# Guest names are written on the bars up to this many bars, when each lane is tall enough.
_LABELS_UP_TO = 80
# Height of one Gantt lane in inches, and the Gantt panel's most (beyond, lanes shrink).
_LANE_IN = 0.2
_GANTT_MAX_IN = 14.0
# Up to this many hosts the Gantt chart has a row for each; beyond, only for the busy ones.
_IDLE_HOSTS_SHOWN = 20
# The host boot-CPU panel draws at most this many hosts (the busiest against their limit).
_HOSTS_DRAWN = 8
# Several plans on one axes: a colour and a line style each, so that no two look alike
# (also in grey print) for up to 20 plans.
_LINESTYLES = ("-", "--", "-.", ":")
# Tick spacings (s) of the time axis: the first that gives at most 10 ticks.
_TICK_STEPS_S = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800)
_OVER = "red"


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


def _new_axes(width_in: float = 11.0, height_in: float = 4.0) -> Any:
    """Axes on a figure of their own (no pyplot: nothing global, nothing shown)."""
    figure_class, canvas_class = _matplotlib()
    figure = figure_class(figsize=(width_in, height_in), layout="constrained")
    canvas_class(figure)
    return figure.add_subplot()


def style(index: int) -> dict[str, Any]:
    """The colour and line style of the `index`-th of several plans drawn on one axes."""
    return {"color": f"C{index % 10}", "linestyle": _LINESTYLES[index % len(_LINESTYLES)]}


def over_limit(
    times: Sequence[float], levels: Sequence[float], limit: float
) -> list[tuple[float, float]]:
    """The stretches `(from_s, to_s)` of a step series (each level holds from its instant
    to the next) during which the level is above `limit`."""
    spans: list[tuple[float, float]] = []
    for index, level in enumerate(levels[:-1]):
        if level <= limit:
            continue
        start, end = times[index], times[index + 1]
        if spans and spans[-1][1] == start:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def plan_end_s(plan: Plan) -> float:
    """Where a time axis showing the plan ends: 2% after its last timed action ends, so
    that the last step shows (at least 1 s, so that the axis has a width)."""
    ends = [a.ready_s for a in plan.assignments if a.ready_s is not None]
    return 1.02 * max([1, *ends])


def _time_axis(axes: Any, end_s: float) -> None:
    """`axes`' x axis from 0 to `end_s`, ticked as clock times (`+18:35`)."""
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    step = next((s for s in _TICK_STEPS_S if end_s / s <= 10), None)
    if step is None:
        step = _TICK_STEPS_S[-1] * math.ceil(end_s / _TICK_STEPS_S[-1] / 10)
    axes.set_xlim(0, end_s)
    axes.xaxis.set_major_locator(MultipleLocator(step))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: clock(value)))
    axes.set_xlabel("time after the plan starts (min:s)")


def _shade_over(axes: Any, spans: list[tuple[float, float]], what: str) -> None:
    """Red vertical bands where `what` is above its limit (gid `overload:<what>`)."""
    for index, (start, end) in enumerate(spans):
        axes.axvspan(
            start,
            end,
            color=_OVER,
            alpha=0.18,
            linewidth=0,
            gid=f"overload:{what}",
            label="over the limit" if index == 0 else None,
        )


# --- one plan ---------------------------------------------------------------------------


def _lanes(bars: list[tuple[float, float, str, str]]) -> tuple[list[int], int]:
    """For bars `(start, end, kind, guest)` of one host: the lane of each, so that bars
    that overlap in time sit one above the other, and the number of lanes."""
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
    return lane_of, max(len(ends), 1)


_BAR_STYLE = {
    "boot": {"color": "tab:blue", "edgecolor": "white", "linewidth": 1.0},
    "arriving": {"color": "tab:orange", "edgecolor": "white", "linewidth": 1.0},
    "leaving": {"color": "none", "edgecolor": "tab:orange", "hatch": "//", "linewidth": 1.0},
}


def _gantt_bars(problem: Problem, plan: Plan) -> dict[str, list[tuple[float, float, str, str]]]:
    """Host -> its bars `(start, end, kind, guest)`: boots, arriving and leaving migrations."""
    bars: dict[str, list[tuple[float, float, str, str]]] = {h.name: [] for h in problem.hosts}
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
                bars[source].append((float(assignment.start_s), end, "leaving", assignment.guest))
    return bars


def _gantt_hosts(problem: Problem, bars: dict[str, list[Any]]) -> list[str]:
    """The hosts the Gantt chart has a row for: all of them up to `_IDLE_HOSTS_SHOWN`,
    beyond that only those with something to start or move."""
    if len(problem.hosts) <= _IDLE_HOSTS_SHOWN:
        return [h.name for h in problem.hosts]
    return [h.name for h in problem.hosts if bars[h.name]]


def gantt_lanes(problem: Problem, plan: Plan) -> int:
    """How many lanes `plot_gantt` draws (hosts, overlapping bars, the unplaced row): what
    a figure's height is sized by."""
    bars = _gantt_bars(problem, plan)
    lanes = sum(_lanes(bars[host])[1] for host in _gantt_hosts(problem, bars))
    return lanes + (1 if _unplaced(problem, plan) else 0)


def _unplaced(problem: Problem, plan: Plan) -> list[str]:
    """Guests the plan leaves without a host (stopped ones included), in timeline order."""
    return [s.guest for s in timeline(problem, plan) if s.target is None]


def plot_gantt(
    problem: Problem,
    plan: Plan,
    ax: Any = None,
    *,
    end_s: float | None = None,
    labels: bool | None = None,
) -> Any:
    """Draw each host's boots (blue) and live migrations (orange; hatched on the source
    until the guest is ready) over time into `ax`, one lane per overlapping bar, and a
    last row naming the guests left without a host. Bars have white edges, so back-to-back
    boots stay apart. `labels`: write guest names on the bars (default: up to 80 bars).
    Returns the axes (a new figure's when `ax` is None)."""
    bars = _gantt_bars(problem, plan)
    unplaced = _unplaced(problem, plan)
    if ax is None:
        ax = _new_axes(height_in=_gantt_height_in(gantt_lanes(problem, plan)))
    total = sum(len(items) for items in bars.values())
    show_labels = total <= _LABELS_UP_TO if labels is None else labels
    ticks, names = [], []
    row = 0
    shown = _gantt_hosts(problem, bars)
    for host in (problem.host(name) for name in shown):
        items = bars[host.name]
        lane_of, lanes = _lanes(items)
        for (start, end, kind, guest), lane in zip(items, lane_of, strict=True):
            centre = row + lane + 0.5
            container = ax.barh(centre, end - start, left=start, height=0.8, **_BAR_STYLE[kind])
            for patch in container:
                patch.set_gid(f"{kind}:{guest}")
            if show_labels and kind != "leaving":
                ax.text(start, centre, f" {guest}", va="center", fontsize=6.5, clip_on=True)
        ticks.append(row + lanes / 2)
        names.append(f"{host.name} ({host.state.value})")
        row += lanes
        ax.axhline(row, color="0.85", linewidth=0.6)
    if unplaced:
        listed = ", ".join(unplaced[:12]) + (
            f" (+{len(unplaced) - 12} more)" if len(unplaced) > 12 else ""
        )
        ax.text(
            0.005,
            row + 0.5,
            f" {listed}",
            va="center",
            fontsize=7,
            color=_OVER,
            transform=ax.get_yaxis_transform(),
            gid="unplaced",
        )
        ticks.append(row + 0.5)
        names.append(f"no host ({len(unplaced)})")
        row += 1
    ax.set_yticks(ticks, names)
    ax.set_ylim(max(row, 1), 0)
    _time_axis(ax, end_s if end_s is not None else plan_end_s(plan))
    idle = len(problem.hosts) - len(shown)
    ax.set_title(
        "Boots (blue) and live migrations (orange; hatched: source until ready) per host"
        + (f"; {idle} hosts with nothing to start or move left out" if idle else ""),
        fontsize=10,
    )
    if total == 0:
        ax.text(0.5, 0.5, "nothing starts or moves", transform=ax.transAxes, ha="center")
    return ax


def _gantt_height_in(lanes: int) -> float:
    return min(_GANTT_MAX_IN, 0.9 + _LANE_IN * max(lanes, 2))


def plot_pools(problem: Problem, plan: Plan, ax: Any = None, *, end_s: float | None = None) -> Any:
    """Draw each boot pool's planned load (boots and migrations) over time into `ax`,
    its limit as a dashed line of the same colour, and every stretch above a limit as a
    red band. Returns the axes."""
    ax = ax if ax is not None else _new_axes()
    loads = pool_intervals(problem, plan)
    end = end_s if end_s is not None else plan_end_s(plan)
    _time_axis(ax, end)
    if not loads:
        ax.text(0.5, 0.5, "no boot pools", transform=ax.transAxes, ha="center")
        ax.set_yticks([])
        return ax
    for index, (pool, intervals) in enumerate(sorted(loads.items())):
        color = f"C{index % 10}"
        times, levels = step_series(intervals)
        ax.step([*times, end], [*levels, levels[-1]], where="post", color=color, label=pool)
        limit = problem.boot_pools.get(pool)
        if limit is not None:
            ax.axhline(limit, color=color, linestyle="--", linewidth=1, label=f"{pool} limit")
            _shade_over(ax, over_limit(times, levels, limit), pool)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("load")
    ax.set_title("Boot-pool load (dashed: limit; red: above it)", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    return ax


def _host_boot_cpu(problem: Problem, plan: Plan) -> dict[str, list[tuple[int, int, int]]]:
    """Host -> the (start, end, boot cpu) of every boot planned on it that uses boot CPU."""
    loads: dict[str, list[tuple[int, int, int]]] = {}
    for assignment in plan.by_guest().values():
        if (
            assignment.action is not Action.START
            or assignment.host is None
            or assignment.start_s is None
            or assignment.ready_s is None
        ):
            continue
        cpu = problem.guest(assignment.guest).boot.cpu
        if cpu:
            loads.setdefault(assignment.host, []).append(
                (assignment.start_s, assignment.ready_s, cpu)
            )
    return loads


def plot_hosts(
    problem: Problem,
    plan: Plan,
    ax: Any = None,
    *,
    end_s: float | None = None,
    most: int = _HOSTS_DRAWN,
) -> Any:
    """Draw the boot CPU planned on each host over time into `ax`, each host's boot-CPU
    limit as a dashed line of its colour, and every stretch above a limit as a red band.
    At most `most` hosts are drawn: those that come closest to (or go furthest over)
    their limit. Returns the axes."""
    ax = ax if ax is not None else _new_axes()
    end = end_s if end_s is not None else plan_end_s(plan)
    _time_axis(ax, end)
    loads = _host_boot_cpu(problem, plan)
    if not loads:
        ax.text(0.5, 0.5, "no boot uses host CPU", transform=ax.transAxes, ha="center")
        ax.set_yticks([])
        return ax
    series = {host: step_series(intervals) for host, intervals in loads.items()}

    def pressure(host: str) -> float:
        limit = problem.host(host).boot.cpu
        peak = max(series[host][1])
        return peak / limit if limit else peak / 1e12

    ranked = sorted(series, key=lambda host: (-pressure(host), host))
    drawn = ranked[:most]
    order = {host.name: i for i, host in enumerate(problem.hosts)}
    for index, host in enumerate(sorted(drawn, key=order.__getitem__)):
        times, levels = series[host]
        color = f"C{index % 10}"
        ax.step([*times, end], [*levels, levels[-1]], where="post", color=color, label=host)
        limit = problem.host(host).boot.cpu
        if limit is not None:
            ax.axhline(limit, color=color, linestyle="--", linewidth=1)
            _shade_over(ax, over_limit(times, levels, limit), host)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("boot CPU")
    more = "" if len(ranked) <= most else f"; the {most} of {len(ranked)} hosts nearest it"
    ax.set_title(f"Boot CPU per host (dashed: the host's limit; red: above it{more})", fontsize=10)
    ax.legend(fontsize=8, loc="upper right", ncol=min(len(drawn), 4))
    return ax


def plot_utilisation(problem: Problem, plan: Plan, ax: Any = None) -> Any:
    """Draw each host's utilisation of usable capacity per resource, before (pale) and
    after the plan, into `ax`, with Proxmox's imbalance in the title. Returns the axes."""
    ax = ax if ax is not None else _new_axes()
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
            ax.bar(
                [i + offset for i in range(len(problem.hosts))],
                values,
                width=width,
                color=f"C{r % 10}",
                alpha=0.45 if when == "before" else 1.0,
                label=f"{resource} {when}",
            )
    ax.axhline(100, color="black", linewidth=0.8, linestyle=":")
    many = len(problem.hosts) > _IDLE_HOSTS_SHOWN
    ax.set_xticks(
        range(len(problem.hosts)),
        [h.name for h in problem.hosts],
        rotation=90 if many else 0,
        fontsize=6 if many else 10,
    )
    ax.set_ylabel("% of usable")
    ax.set_title(
        f"Host utilisation before (pale) and after; imbalance {imbalance(problem):.3f} -> "
        f"{imbalance(problem, plan):.3f}",
        fontsize=10,
    )
    ax.legend(fontsize=8, ncol=max(len(resources), 1))
    return ax


# --- several plans on the same axes -----------------------------------------------------------


def _ready_series(problem: Problem, plan: Plan) -> tuple[list[int], list[int]]:
    """Instants and how many guests are up from each on: those that stay where they run
    from the start, then each started or moved guest from its ready instant."""
    ready: dict[int, int] = defaultdict(int)
    for step in timeline(problem, plan):
        if step.target is None:
            continue
        ready[step.ready_s if step.ready_s is not None else 0] += 1
    return cumulative_series(ready)


def plot_ready(
    problem: Problem,
    plans: Sequence[Plan],
    ax: Any = None,
    *,
    labels: Sequence[str] | None = None,
    reports: Sequence[CheckReport] | None = None,
    end_s: float | None = None,
) -> Any:
    """Draw, for each plan on the same axes, how many guests are up over time (a step
    line in the plan's `style`), with the checker's verdict in each legend entry.
    `labels` default to the solvers' names; `reports` to `check` of each plan. Returns
    the axes."""
    ax = ax if ax is not None else _new_axes()
    labels = list(labels) if labels is not None else [p.solver for p in plans]
    reports = list(reports) if reports is not None else [check(problem, p) for p in plans]
    end = end_s if end_s is not None else max(plan_end_s(p) for p in plans)
    _time_axis(ax, end)
    for index, (plan, label, report) in enumerate(zip(plans, labels, reports, strict=True)):
        times, levels = _ready_series(problem, plan)
        placed = levels[-1]
        last = clock(times[-1]) if len(times) > 1 else "+00:00"
        ax.step(
            [*times, end],
            [*levels, placed],
            where="post",
            linewidth=1.6,
            label=f"{label}: {verdict(report)}; {placed} of {len(problem.guests)} "
            f"up, the last at {last}",
            **style(index),
        )
    ax.axhline(len(problem.guests), color="0.5", linewidth=0.8, linestyle=":")
    ax.set_ylim(0, len(problem.guests) * 1.05 or 1)
    ax.set_ylabel("guests up")
    ax.set_title("Guests up over time (dotted: every guest)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return ax


def compare_pools(
    problem: Problem,
    plans: Sequence[Plan],
    ax: Any = None,
    *,
    pool: str | None = None,
    labels: Sequence[str] | None = None,
    reports: Sequence[CheckReport] | None = None,
    simulations: Sequence[SimulationResult | None] | None = None,
    end_s: float | None = None,
) -> Any:
    """Draw one boot pool's planned load of each plan on the same axes (the plan's
    `style`), the limit as a black dashed line, and the load above it in red; with
    `simulations` (traced, one per plan or None), each plan's simulated median too, thin
    in the plan's style. `pool` defaults to the problem's first. Returns the axes."""
    ax = ax if ax is not None else _new_axes()
    labels = list(labels) if labels is not None else [p.solver for p in plans]
    reports = list(reports) if reports is not None else [check(problem, p) for p in plans]
    runs = list(simulations) if simulations is not None else [None] * len(plans)
    end = end_s if end_s is not None else max(plan_end_s(p) for p in plans)
    _time_axis(ax, end)
    name = pool or next(iter(problem.boot_pools), None)
    if name is None:
        ax.text(0.5, 0.5, "no boot pools", transform=ax.transAxes, ha="center")
        ax.set_yticks([])
        return ax
    limit = problem.boot_pools.get(name)
    import numpy as np

    for index, (plan, label, report) in enumerate(zip(plans, labels, reports, strict=True)):
        times, levels = step_series(pool_intervals(problem, plan).get(name, []))
        xs, ys = [*times, end], [*levels, levels[-1]]
        word = "valid" if report.ok else "INVALID"
        ax.step(xs, ys, where="post", linewidth=1.4, label=f"{label}: {word}", **style(index))
        if limit is not None and any(level > limit for level in levels):
            # The step drawn explicitly (each level from its instant to the next), so
            # that a single stretch above the limit is filled too.
            corner_x = [x for pair in pairwise(xs) for x in pair]
            corner_y = [y for y in ys[:-1] for _ in range(2)]
            ax.fill_between(
                corner_x,
                limit,
                corner_y,
                where=[y > limit for y in corner_y],
                color=_OVER,
                alpha=0.2,
                linewidth=0,
                gid=f"overload:{label}",
            )
        result = runs[index]
        if result is not None:
            grid, stacked = _simulated_curves(result, name, end)
            ax.step(
                grid,
                np.median(stacked, axis=0),
                where="post",
                linewidth=0.8,
                alpha=0.7,
                label=f"{label}: simulated median ({result.policy}, {stacked.shape[0]} runs)",
                **style(index),
            )
    if limit is not None:
        ax.axhline(limit, color="black", linestyle="--", linewidth=1, label=f"limit {limit:,}")
    ax.set_ylim(bottom=0)
    ax.set_ylabel(name)
    ax.set_title(f"Boot-pool load, {name} (dashed: limit; red: above it)", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    return ax


# --- simulated runs ----------------------------------------------------------------------


def _simulated_curves(result: SimulationResult, pool: str, end: float) -> tuple[Any, Any]:
    """A time grid from 0 to `end` and each traced run's demand of `pool` on it."""
    import numpy as np

    traces = [o.pool_trace[pool] for o in result.outcomes if pool in o.pool_trace]
    if not traces:
        raise ValueError("the simulation was run without trace=True: nothing to draw")
    grid = np.linspace(0.0, end, 600)
    curves = []
    for times, levels in traces:
        index = np.searchsorted(np.asarray(times), grid, side="right") - 1
        curves.append(np.asarray(levels)[np.clip(index, 0, len(levels) - 1)])
    return grid, np.vstack(curves)


def simulated_end_s(result: SimulationResult) -> float:
    """When the last traced run of `result` ends (0 when nothing was traced)."""
    ends = [times[-1] for o in result.outcomes for times, _ in o.pool_trace.values() if times]
    return float(max(ends, default=0.0))


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
    if not any(pool in o.pool_trace for o in result.outcomes):
        raise ValueError("the simulation was run without trace=True: nothing to draw")
    end = end_s or simulated_end_s(result) or 1.0
    grid, stacked = _simulated_curves(result, pool, end)
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
        label=f"simulated p5-p95 ({stacked.shape[0]} runs)",
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
        planned_times, planned_levels = step_series(pool_intervals(problem, plan).get(pool, []))
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
    _time_axis(axes, end)
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


# --- figures -----------------------------------------------------------------------------


def _figure(width_in: float, height_in: float) -> Any:
    figure_class, canvas_class = _matplotlib()
    figure = figure_class(figsize=(width_in, height_in), layout="constrained")
    canvas_class(figure)
    return figure


def plan_figure(
    problem: Problem,
    plan: Plan,
    report: CheckReport | None = None,
    simulation: SimulationResult | None = None,
) -> Any:
    """One plan as a matplotlib figure: the Gantt per host, boot-pool load, host boot
    CPU (these share one time axis), then host utilisation; a last time panel with the
    pool demand simulated under `simulation` (traced) when given. The title carries the
    checker's verdict (`report`, default `check(problem, plan)`), red when the plan
    breaks a rule."""
    report = report if report is not None else check(problem, plan)
    end = plan_end_s(plan)
    if simulation is not None:
        end = max(end, simulated_end_s(simulation))
    gantt_in = _gantt_height_in(gantt_lanes(problem, plan))
    ratios = [gantt_in, 2.6, 2.6, 2.8] + ([2.8] if simulation is not None else [])
    figure = _figure(11, sum(ratios) + 0.6)
    grid = figure.add_gridspec(len(ratios), 1, height_ratios=ratios)
    gantt = figure.add_subplot(grid[0])
    pools = figure.add_subplot(grid[1], sharex=gantt)
    hosts = figure.add_subplot(grid[2], sharex=gantt)
    plot_gantt(problem, plan, gantt, end_s=end)
    plot_pools(problem, plan, pools, end_s=end)
    plot_hosts(problem, plan, hosts, end_s=end)
    plot_utilisation(problem, plan, figure.add_subplot(grid[3]))
    if simulation is not None:
        simulated = figure.add_subplot(grid[4], sharex=gantt)
        simulated_pool(simulated, problem, plan, simulation, end_s=end)
    figure.suptitle(
        f"{plan.solver}: {plan.status.value}; {verdict(report)}",
        color="black" if report.ok else _OVER,
        fontweight="bold",
    )
    return figure


def compare_figure(
    problem: Problem,
    plans: Sequence[Plan],
    labels: Sequence[str] | None = None,
    simulations: Sequence[SimulationResult | None] | None = None,
) -> Any:
    """Several plans of one problem on the same axes: guests up over time, then each
    boot pool's load (with each plan's simulated median when `simulations` are given),
    one colour and line style per plan, the checker's verdict in each legend entry."""
    if not plans:
        raise ValueError("nothing to compare: no plans")
    labels = list(labels) if labels is not None else [p.solver for p in plans]
    reports = [check(problem, p) for p in plans]
    end = max(plan_end_s(p) for p in plans)
    for result in simulations or []:
        if result is not None:
            end = max(end, simulated_end_s(result))
    pools: list[str | None] = [*problem.boot_pools] or [None]
    figure = _figure(11, 3.6 + 3.2 * len(pools) + 0.6)
    axes = figure.subplots(1 + len(pools), 1, sharex=True, squeeze=False)[:, 0]
    plot_ready(problem, plans, axes[0], labels=labels, reports=reports, end_s=end)
    for ax, pool in zip(axes[1:], pools, strict=True):
        compare_pools(
            problem,
            plans,
            ax,
            pool=pool,
            labels=labels,
            reports=reports,
            simulations=simulations,
            end_s=end,
        )
    valid = sum(1 for r in reports if r.ok)
    figure.suptitle(
        f"{len(plans)} plans on the same axes; {valid} of {len(plans)} valid",
        fontweight="bold",
    )
    return figure


def _image(figure: Any, image_format: str) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format=image_format, dpi=110)
    return buffer.getvalue()


def _check_format(image_format: str) -> None:
    if image_format not in FORMATS:
        raise ValueError(f"unknown image format '{image_format}' (known: {', '.join(FORMATS)})")


def render_plot(
    problem: Problem,
    plan: Plan,
    image_format: str = "png",
    simulation: SimulationResult | None = None,
) -> bytes:
    """`plan_figure` as an image in `image_format` (png, svg or pdf)."""
    _check_format(image_format)
    return _image(plan_figure(problem, plan, simulation=simulation), image_format)


def render_compare(
    problem: Problem,
    plans: Sequence[Plan],
    image_format: str = "png",
    labels: Sequence[str] | None = None,
    simulations: Sequence[SimulationResult | None] | None = None,
) -> bytes:
    """`compare_figure` as an image in `image_format` (png, svg or pdf)."""
    _check_format(image_format)
    return _image(compare_figure(problem, plans, labels, simulations), image_format)


def render_comparison(
    problem: Problem,
    runs: list[tuple[Plan, SimulationResult]],
    image_format: str = "png",
    pool: str | None = None,
) -> bytes:
    """Simulated pool demand of several strategies, one panel each, on shared axes (the
    same time and demand scales), one colour per strategy."""
    _check_format(image_format)
    figure = _figure(11, 2.6 * len(runs) + 0.6)
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
    settings = runs[0][1].settings
    figure.suptitle(
        f"Simulated boot-pool demand, sigma {settings.sigma}, {settings.contention.value}, "
        f"fencing {'on' if settings.fencing else 'off'}"
    )
    return _image(figure, image_format)


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


def write_compare(
    problem: Problem,
    plans: Sequence[Plan],
    path: str | os.PathLike[str],
    labels: Sequence[str] | None = None,
    simulations: Sequence[SimulationResult | None] | None = None,
) -> None:
    """Draw several plans on the same axes (`compare_figure`) to `path`; the format comes
    from its suffix. Written whole or not at all, like `write_plot`."""
    image_format = image_format_of(path)
    write_bytes_atomic(path, render_compare(problem, plans, image_format, labels, simulations))
