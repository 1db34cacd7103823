"""`python -m bench wall`: does `cpsat` keep its wall-clock limit, in both modes?

One instance per suite size and family (the examples, S-0, M-0, L-0, a j60, a vector
packing), each solved at the given limits without and with `--deterministic`, one after
the other in this process (the library is imported and warmed up first, so the import
is not counted). Each row is the wall time of `solve` against the limit and against the
goal of issue #20, `1.05 x limit + 0.5 s`, and whether the deterministic backstop cut
the run (`statistics.wall_cut`: the plan may then not repeat).

`--busy` runs a CPU burner process beside the measurements (a second core taken), the
"busy machine" of the issue. Timings are noisy on a shared machine: re-run on a quiet
one before quoting them.

    python -m bench wall --limits 3,10
    python -m bench wall --limits 60 --only L-0 --busy
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from placement.model import Problem

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE_NAMES = (
    "single-host-restart",
    "three-node-failover",
    "cold-recovery",
    "frozen-and-dependencies",
)
# One per suite: L-0 takes a minute a run at its usual limit, so it is opt-in (--only).
SUITE_PICKS = (("s", "S-0"), ("m", "M-0"), ("j60", "j601_1"), ("vbp", "class4_40_5_0"))
LARGE_PICK = ("l", "L-0")
GOAL_FACTOR = 1.05
GOAL_FIXED_S = 0.5


def goal_s(limit_s: float) -> float:
    """The wall time a solve with `limit_s` may take (issue #20): 1.05 x limit + 0.5 s."""
    return GOAL_FACTOR * limit_s + GOAL_FIXED_S


def instances(only: Sequence[str]) -> list[tuple[str, Callable[[], Problem]]]:
    """(name, build) of the measured instances: `only` names them (default: all but L-0)."""
    from bench.suites import suite
    from placement.codec import load_problem_file

    found: list[tuple[str, Callable[[], Problem]]] = []
    for name in EXAMPLE_NAMES:
        path = EXAMPLES / f"{name}.json"
        found.append((name, lambda path=path: load_problem_file(path)))
    picks = [*SUITE_PICKS, LARGE_PICK] if only else list(SUITE_PICKS)
    for suite_name, instance_name in picks:
        if only and instance_name not in only:
            continue
        for instance in suite(suite_name, match=[instance_name], limit=1):
            found.append((instance.name, instance.build))
    if only:
        found = [(name, build) for name, build in found if name in only]
    return found


@contextmanager
def cpu_burner(busy: bool) -> Iterator[None]:
    """A process spinning on one core while the block runs (when `busy`)."""
    if not busy:
        yield
        return
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        burner.kill()
        burner.wait()


def measure(problem: Problem, limit_s: float, deterministic: bool) -> dict[str, Any]:
    """One `cpsat` solve of `problem`: its wall time and what the plan says."""
    from placement.solvers import SolveOptions, solve

    options = SolveOptions(time_limit_s=limit_s, deterministic=deterministic)
    started = time.perf_counter()
    plan = solve(problem, "cpsat", options)
    wall_s = time.perf_counter() - started
    return {
        "limit_s": limit_s,
        "mode": "deterministic" if deterministic else "wall",
        "wall_s": round(wall_s, 3),
        "wall_per_limit": round(wall_s / limit_s, 3),
        "wall_per_goal": round(wall_s / goal_s(limit_s), 3),
        "wall_cut": bool(plan.statistics.wall_cut),
        "stages": plan.stage_values(),
    }


def _warm_up() -> None:
    """Import the solvers and solve a tiny problem once, outside the measurements."""
    from placement.codec import load_problem_file
    from placement.solvers import SolveOptions, solve

    problem = load_problem_file(EXAMPLES / "frozen-and-dependencies.json")
    solve(problem, "cpsat", SolveOptions(time_limit_s=0.5))


def run(
    limits: Sequence[float],
    modes: Sequence[bool],
    only: Sequence[str],
    busy: bool,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Every (instance, limit, mode) measured; each row also goes to `log` as it comes."""
    _warm_up()
    rows: list[dict[str, Any]] = []
    with cpu_burner(busy):
        for name, build in instances(only):
            problem = build()
            for limit_s in limits:
                for deterministic in modes:
                    row = {
                        "instance": name,
                        "busy": busy,
                        **measure(problem, limit_s, deterministic),
                    }
                    rows.append(row)
                    log(json.dumps(row))
    return rows


def table(rows: Sequence[dict[str, Any]]) -> str:
    """A markdown table of `rows`: wall / limit and wall / goal per instance and mode."""
    lines = [
        "| instance | limit s | mode | busy | wall s | wall / limit | wall / goal | cut |",
        "|---|---:|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        verdict = "ok" if row["wall_per_goal"] <= 1.0 else "OVER"
        lines.append(
            f"| {row['instance']} | {row['limit_s']:g} | {row['mode']} | "
            f"{'yes' if row['busy'] else 'no'} | {row['wall_s']:.2f} | "
            f"{row['wall_per_limit']:.2f} | {row['wall_per_goal']:.2f} {verdict} | "
            f"{'cut' if row['wall_cut'] else ''} |"
        )
    over = sum(1 for row in rows if row["wall_per_goal"] > 1.0)
    cut = sum(1 for row in rows if row["wall_cut"])
    lines.append("")
    lines.append(
        f"{len(rows)} runs; {over} over the goal (1.05 x limit + 0.5 s); "
        f"{cut} deterministic runs cut by the wall backstop"
    )
    return "\n".join(lines)


def main_wall(args: Any) -> int:
    limits = [float(value) for value in args.limits.split(",") if value]
    modes = {"wall": [False], "deterministic": [True], "both": [False, True]}[args.modes]
    only = [name for name in args.only.split(",") if name] if args.only else []
    out = Path(args.out) if args.out else None

    def log(line: str) -> None:
        print(line, file=sys.stderr)
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("a") as file:
                file.write(line + "\n")

    rows = run(limits, modes, only, args.busy, log)
    print(table(rows))
    return 0 if all(row["wall_per_goal"] <= 1.0 for row in rows) else 1
