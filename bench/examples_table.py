"""Regenerate the table of every solver on the example problems in docs/baselines.md.

    python -m bench.examples_table            # print the table
    python -m bench.examples_table --write    # rewrite it between the markers in the doc

One row per example x solver x boot schedule: guests placed, checker violations (by rule),
peak SAN load against its limit, and the time until every guest is ready. The optimiser
decides its own schedule, so it has one row per example.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.run import measure
from placement.codec import load_problem_file
from placement.solvers import available_solvers

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DOC = ROOT / "docs" / "baselines.md"
BEGIN = "<!-- examples-table:begin (python -m bench.examples_table --write) -->"
END = "<!-- examples-table:end -->"
SCHEDULES = ("list", "all-at-once", "serial:45", "batch:4")


def _cell_violations(rules: dict[str, int]) -> str:
    if not rules:
        return "0"
    return ", ".join(f"{count} {rule}" for rule, count in sorted(rules.items()))


def table(time_limit_s: float) -> str:
    """The markdown table (one solve per row, on this machine, now)."""
    lines = [
        f"Measured with `python -m bench.examples_table --write` "
        f"(optimiser time limit {time_limit_s:g} s, 2 workers).",
        "",
        "| example | solver | schedule | placed | violations | peak SAN / limit | all ready (s) |",
        "|---|---|---|---:|---|---:|---:|",
    ]
    for path in sorted(EXAMPLES.glob("*.json")):
        problem = load_problem_file(path)
        for info in available_solvers():
            schedules = ("joint",) if info.kind == "optimiser" else SCHEDULES
            for schedule in schedules:
                row = measure(problem, info.name, schedule, time_limit_s, workers=2)
                peak, limit = row["san_peak"], row["san_limit"]
                san = f"{peak} / {limit}" if limit else "-"
                lines.append(
                    f"| {path.stem} | {info.name} | {schedule} | "
                    f"{row['placed']} / {len(problem.guests)} | "
                    f"{_cell_violations(row['violation_rules'])} | {san} | "
                    f"{row['makespan_s']:g} |"
                )
    return "\n".join(lines)


def write(text: str) -> None:
    """Replace the table between the markers of docs/baselines.md (whole file at once)."""
    from placement.codec import write_text_atomic

    document = DOC.read_text()
    if BEGIN not in document or END not in document:
        raise SystemExit(f"{DOC}: the markers {BEGIN!r} and {END!r} are missing")
    head, rest = document.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    write_text_atomic(DOC, f"{head}{BEGIN}\n{text}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.examples_table")
    parser.add_argument("--write", action="store_true", help="rewrite docs/baselines.md")
    parser.add_argument("--time-limit", type=float, default=10.0, help="optimiser seconds")
    args = parser.parse_args(argv)
    text = table(args.time_limit)
    if args.write:
        write(text)
    else:
        print(text, file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
