"""A failure survey as a picture: the scenarios ranked worst first, with the priority
weight each leaves unplaced and the planned time until its last restarted guest is ready.

matplotlib is the optional `plot` extra, imported only when a picture is drawn
(`placement.plot.PlotUnavailableError` says how to install it). `draw_survey` draws into
two matplotlib axes the caller owns; `write_survey_plot` writes a file whole or not at all.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from placement.codec import write_bytes_atomic
from placement.plot import FORMATS, _matplotlib
from placement.survey import ScenarioOutcome, SurveyResult

#: At most this many scenarios are drawn (the worst ones); the rest are counted in the title.
MAX_BARS = 60
_UNSAFE = "#c0392b"
_SAFE = "#2e86c1"


def _ranked(result: SurveyResult) -> list[ScenarioOutcome]:
    by_name = {outcome.scenario.name: outcome for outcome in result.outcomes}
    return [by_name[name] for name in result.verdict.worst if name in by_name]


def draw_survey(result: SurveyResult, unplaced_axes: Any, time_axes: Any) -> None:
    """Draw the ranked scenarios: unplaced priority weight on `unplaced_axes`, makespan
    (s) on `time_axes`; unsafe scenarios in red."""
    ranked = _ranked(result)[:MAX_BARS]
    names = [outcome.scenario.name for outcome in ranked]
    colours = [_SAFE if outcome.safe else _UNSAFE for outcome in ranked]
    positions = list(range(len(ranked)))
    unplaced_axes.bar(positions, [o.unplaced_weight for o in ranked], color=colours)
    unplaced_axes.set_ylabel("unplaced weight\n(priority + 1)")
    time_axes.bar(positions, [o.makespan_s for o in ranked], color=colours)
    time_axes.set_ylabel("last guest ready (s)")
    time_axes.set_xticks(positions)
    time_axes.set_xticklabels(names, rotation=90, fontsize=7 if len(names) > 20 else 9)
    time_axes.set_xlabel("failure scenario, worst first (red: not every protected guest restarts)")
    for axes in (unplaced_axes, time_axes):
        axes.grid(axis="y", alpha=0.3)
        axes.set_xlim(-0.6, max(len(ranked), 1) - 0.4)


def render_survey_plot(result: SurveyResult, image_format: str = "png") -> bytes:
    """The survey picture as image bytes (`png`, `svg` or `pdf`)."""
    if image_format not in FORMATS:
        raise ValueError(f"unknown image format '{image_format}' (known: {', '.join(FORMATS)})")
    figure_class, canvas_class = _matplotlib()
    width = min(16.0, max(6.0, 0.25 * min(len(result.outcomes), MAX_BARS) + 2))
    figure = figure_class(figsize=(width, 6.5), layout="constrained")
    canvas_class(figure)
    unplaced_axes, time_axes = figure.subplots(2, 1, sharex=True)
    draw_survey(result, unplaced_axes, time_axes)
    found = result.verdict
    verdict = "safe" if found.safe else f"{len(found.unsafe)} unsafe"
    shown = min(len(result.outcomes), MAX_BARS)
    more = f", the worst {shown} shown" if shown < len(result.outcomes) else ""
    figure.suptitle(f"{len(result.outcomes)} failure scenarios ({result.kind}){more}: {verdict}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=image_format, dpi=110)
    return buffer.getvalue()


def write_survey_plot(result: SurveyResult, path: str | os.PathLike[str]) -> None:
    """Draw the survey to `path` (format from the suffix), whole or not at all. Raises
    `PlotUnavailableError` without matplotlib and ValueError for an unknown suffix."""
    target = Path(path)
    image_format = target.suffix.lower().lstrip(".")
    if image_format not in FORMATS:
        raise ValueError(
            f"{target}: the file name must end in {', '.join('.' + f for f in FORMATS)}"
        )
    write_bytes_atomic(target, render_survey_plot(result, image_format))
