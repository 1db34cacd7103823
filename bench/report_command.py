"""`python -m bench report FILE... [--write MARKDOWN]`: the report page and its plots.

The tables are `bench.report`'s, the plots `bench.plots`' (which reads the report's
instance views); this command writes both.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.report import label, latest, render
from bench.run import Row, read_rows


def main_report(args: Any) -> int:
    """`python -m bench report FILE... [--write MARKDOWN]`."""
    from bench.plots import PlotsUnavailable, write_plots
    from placement.codec import write_text_atomic

    rows: list[Row] = []
    for path in args.files:
        rows.extend(read_rows(path))
    if not rows:
        print("error: no rows in " + ", ".join(args.files), file=sys.stderr)
        return 1
    plots: list[tuple[str, str]] = []
    folder = args.plots
    if folder is None and args.write is not None:
        folder = str(Path(args.write).parent / "img")
    if folder is not None:
        try:
            written = write_plots(latest(rows), Path(folder))
        except PlotsUnavailable as error:
            print(f"warning: no plots ({error})", file=sys.stderr)
            written = []
        base = Path(args.write).parent if args.write else Path(".")
        plots = [(caption, _relative(path, base)) for caption, path in written]
    text = render(rows, plots=plots, note=getattr(args, "note", "") or "")
    if args.write is None:
        print(text, end="")
        return 0
    write_text_atomic(args.write, _page_header(rows, args.files, args.write) + text)
    print(f"wrote {args.write}" + (f" and {len(plots)} plot(s) in {folder}" if plots else ""))
    return 0


def _page_header(rows: Sequence[Row], files: Sequence[str], target: str) -> str:
    """Title and provenance of a written report page."""
    # One command per suite, with that suite's own settings (solvers, limit, jobs, match).
    commands = []
    for suite in sorted({str(r.get("suite")) for r in rows if r.get("suite")}):
        mine = [r for r in rows if r.get("suite") == suite]
        limits = sorted({float(r.get("time_limit_s") or 10) for r in mine})
        jobs = sorted({int(r.get("jobs") or 1) for r in mine})
        labels = sorted({label(r) for r in mine})
        command = f"python -m bench run --suite {suite} --time-limit {limits[0]:g} --jobs {jobs[0]}"
        if all(r.get("kind") == "optimiser" for r in mine):
            command += f" --solvers {labels[0]}" if len(labels) == 1 else ""
        elif len(labels) <= 6:
            command += f" --solvers {','.join(labels)}"
        commands.append(command)
    commands.append(f"python -m bench report {' '.join(files)} --write {target}")
    return (
        "# Benchmark results\n\n"
        "Written by the benchmark itself (do not edit by hand); the definitions of every "
        "column are in [benchmarks.md](benchmarks.md). Reproduce with:\n\n```sh\n"
        + "\n".join(commands)
        + "\n```\n\n"
    )


def _relative(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.as_posix()
