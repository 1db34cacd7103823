"""Measure a solver on public benchmark sets against their published values.

    python -m bench.public run --set j30 --time-limit 10 --limit 60 --out j30.jsonl
    python -m bench.public report j30.jsonl

Sets: `j30`, `j60` (PSPLIB RCPSP, objective makespan in time units), `vbp` (Panigrahy
and triplet vector bin packing, objective hosts used), and `panigrahy` / `triplet` alone.
Every plan goes through `placement.check.check`. `run` appends one JSON line per
instance as it finishes (flushed), so a killed run keeps its finished rows and
`--resume` carries on from them. See docs/public-benchmarks.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import fnmatch
import json
import math
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from bench import psplib, vbp
from placement.check import check
from placement.model import Problem
from placement.solvers import SolveOptions, solve

DATA = Path(__file__).resolve().parent / "data"
SETS = ("j30", "j60", "vbp", "panigrahy", "triplet")


@attrs.frozen
class Task:
    """One instance to solve, with its published values.

    `lower`/`upper`: the best published bounds on the optimum; `heuristic`: for vector
    packing, the fewest bins any heuristic of Mommessin et al. used (None for RCPSP).
    """

    set_name: str
    instance: str
    path: str
    lower: int
    upper: int
    heuristic: int | None
    solver: str
    time_limit_s: float
    workers: int
    seed: int


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _psplib_tasks(set_name: str, common: dict[str, Any]) -> list[Task]:
    folder = DATA / "psplib"
    reference = psplib.load_reference(folder / f"{set_name}_reference.csv")
    tasks = []
    for path in sorted((folder / set_name).glob("*.sm"), key=lambda p: _natural_key(p.stem)):
        known = reference[path.stem]
        tasks.append(Task(set_name, path.stem, str(path), known.lower, known.upper, None, **common))
    return tasks


def _vbp_tasks(family: str, common: dict[str, Any]) -> list[Task]:
    folder = DATA / "vector_packing"
    table = "Panigrahy" if family == "panigrahy" else "Triplet"
    reference = vbp.load_reference(folder / f"{table}_summary_known.tsv")
    tasks = []
    paths = sorted((folder / family).rglob("*.vbp"), key=lambda p: _natural_key(p.stem))
    for path in paths:
        known = reference[path.stem]
        tasks.append(
            Task(
                family,
                path.stem,
                str(path),
                known.best_lower,
                known.best_known,
                known.heuristic,
                **common,
            )
        )
    return tasks


def tasks_for(
    set_name: str,
    *,
    solver: str = "cpsat",
    time_limit_s: float = 10.0,
    workers: int = 2,
    seed: int = 0,
) -> list[Task]:
    """The instances of a set, in natural name order, with their published values."""
    common = {"solver": solver, "time_limit_s": time_limit_s, "workers": workers, "seed": seed}
    if set_name in ("j30", "j60"):
        return _psplib_tasks(set_name, common)
    if set_name in ("panigrahy", "triplet"):
        return _vbp_tasks(set_name, common)
    if set_name == "vbp":
        return _vbp_tasks("panigrahy", common) + _vbp_tasks("triplet", common)
    raise ValueError(f"unknown set '{set_name}' (known: {', '.join(SETS)})")


def build_problem(task: Task) -> tuple[Problem, str]:
    """The converted problem and the name of the objective stage measured."""
    if task.path.endswith(".sm"):
        return psplib.to_problem(psplib.read_sm(task.path)), "makespan"
    instance = vbp.read_vbp(task.path)
    hosts = vbp.num_hosts(instance, task.heuristic)
    return vbp.to_problem(instance, hosts), "consolidate"


def _gap(value: float, reference: int) -> float:
    return (value - reference) / max(reference, 1)


def run_task(task: Task) -> dict[str, Any]:
    """Solve one instance and judge the plan; never raises (errors become a row field)."""
    row: dict[str, Any] = {
        "set": task.set_name,
        "instance": task.instance,
        "solver": task.solver,
        "time_limit_s": task.time_limit_s,
        "workers": task.workers,
        "ref_lower": task.lower,
        "ref_upper": task.upper,
        "ref_optimal": task.lower == task.upper,
        "heuristic": task.heuristic,
    }
    started = time.perf_counter()
    try:
        problem, objective = build_problem(task)
        row.update(objective=objective, guests=len(problem.guests), hosts=len(problem.hosts))
        options = SolveOptions(time_limit_s=task.time_limit_s, workers=task.workers, seed=task.seed)
        plan = solve(problem, task.solver, options)
        row["wall_s"] = round(time.perf_counter() - started, 3)
        report = check(problem, plan)
        value = float(report.metrics["objectives"][objective])
        stage = plan.stage(objective)
        row.update(
            status=plan.status.value,
            runtime_s=plan.runtime_s,
            check_ok=report.ok,
            violations=[v.message for v in report.violations[:5]],
            unplaced=report.metrics["unplaced"],
            value=value,
            bound=stage.bound if stage is not None else None,
            gap=_gap(value, task.upper) if report.metrics["unplaced"] == 0 else None,
            gap_to_lower=_gap(value, task.lower) if report.metrics["unplaced"] == 0 else None,
        )
    except Exception as error:  # one broken instance must not stop the run
        row.update(
            wall_s=round(time.perf_counter() - started, 3),
            error=f"{type(error).__name__}: {error}",
            traceback=traceback.format_exc(limit=8),
        )
    return row


def _finished(path: Path) -> set[tuple[str, str]]:
    done: set[tuple[str, str]] = set()
    for row in read_rows(path):
        if "error" not in row:
            done.add((row["set"], row["instance"]))
    return done


def _execute(tasks: Sequence[Task], jobs: int) -> Iterator[dict[str, Any]]:
    if jobs <= 1:
        for task in tasks:
            yield run_task(task)
        return
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_task, task) for task in tasks]
        for future in concurrent.futures.as_completed(futures):
            yield future.result()


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a results file; a torn last line (a killed run) is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def _line(row: dict[str, Any]) -> str:
    value = row.get("value")
    shown = "ERROR" if "error" in row else f"{value:g}" if value is not None else "-"
    gap = row.get("gap")
    gap_text = f"{100 * gap:+.1f}%" if gap is not None else "-"
    check_text = "ok" if row.get("check_ok") else "FAIL"
    return (
        f"{row['set']}/{row['instance']}: {shown} (ref {row['ref_lower']}..{row['ref_upper']}, "
        f"gap {gap_text}, {row.get('status', '-')}, {row.get('wall_s', 0):.1f} s, {check_text})"
    )


def _code_version() -> dict[str, Any]:
    """The commit the run used, and whether `placement/` had uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "placement"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return {}
    return {"commit": commit or None, "placement_dirty": bool(dirty)}


def command_run(args: argparse.Namespace) -> int:
    tasks = tasks_for(
        args.set,
        solver=args.solver,
        time_limit_s=args.time_limit,
        workers=args.workers,
        seed=args.seed,
    )
    if args.match:
        tasks = [t for t in tasks if any(fnmatch.fnmatch(t.instance, m) for m in args.match)]
    if args.limit is not None:
        tasks = tasks[: args.limit]
    out = Path(args.out)
    if args.resume:
        done = _finished(out)
        tasks = [t for t in tasks if (t.set_name, t.instance) not in done]
    elif out.exists():
        out.unlink()
    print(f"{len(tasks)} instance(s) to run, results appended to {out}", file=sys.stderr)
    version = _code_version()
    failures = 0
    with out.open("a", encoding="utf-8") as handle:
        for row in _execute(tasks, args.jobs):
            row.update(version)
            handle.write(json.dumps(row, sort_keys=True) + "\n")
            handle.flush()
            failures += 1 if "error" in row or not row.get("check_ok") else 0
            print(_line(row), file=sys.stderr)
    return 1 if failures else 0


# --- report ------------------------------------------------------------------------------


def _latest(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (set, instance): the last one written (a resumed run may repeat)."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        latest[(row["set"], row["instance"])] = row
    return sorted(latest.values(), key=lambda r: (r["set"], _natural_key(r["instance"])))


def _format_number(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def instance_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """A Markdown table, one line per instance."""
    lines = [
        "| set | instance | value | reference (lb..ub) | heuristic | gap % | bound | status | "
        "time s | check |",
        "|---|---|---:|---|---:|---:|---:|---|---:|---|",
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['set']} | {row['instance']} | ERROR: {row['error']} |||||||")
            continue
        reference = (
            f"{row['ref_upper']}"
            if row["ref_optimal"]
            else f"{row['ref_lower']}..{row['ref_upper']}"
        )
        gap = row.get("gap")
        lines.append(
            f"| {row['set']} | {row['instance']} | {_format_number(row['value'])} | {reference} "
            f"| {_format_number(row.get('heuristic'))} "
            f"| {_format_number(None if gap is None else 100 * gap, 2)} "
            f"| {_format_number(row.get('bound'))} | {row['status']} "
            f"| {_format_number(row.get('wall_s'), 1)} | {'ok' if row['check_ok'] else 'FAIL'} |"
        )
    return lines


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Summary figures of one set's rows (see docs/public-benchmarks.md)."""
    solved = [r for r in rows if "error" not in r]
    complete = [r for r in solved if r.get("gap") is not None]
    gaps = [r["gap"] for r in complete]
    with_optimum = [r for r in complete if r["ref_optimal"]]
    summary: dict[str, Any] = {
        "instances": len(rows),
        "errors": len(rows) - len(solved),
        "check_failures": sum(1 for r in solved if not r["check_ok"]),
        "not_all_placed": sum(1 for r in solved if r.get("unplaced")),
        "at_reference": sum(1 for r in complete if r["value"] <= r["ref_upper"]),
        "better_than_reference": sum(1 for r in complete if r["value"] < r["ref_upper"]),
        "with_known_optimum": len(with_optimum),
        "at_known_optimum": sum(1 for r in with_optimum if r["value"] == r["ref_upper"]),
        "proven_optimal": sum(1 for r in solved if r.get("status") == "optimal"),
        "mean_gap": sum(gaps) / len(gaps) if gaps else None,
        "max_gap": max(gaps) if gaps else None,
        "mean_wall_s": (sum(r["wall_s"] for r in solved) / len(solved)) if solved else None,
        "max_wall_s": max((r["wall_s"] for r in solved), default=None),
    }
    heuristic_rows = [r for r in complete if r.get("heuristic") is not None]
    if heuristic_rows:
        summary["above_heuristic"] = sum(1 for r in heuristic_rows if r["value"] > r["heuristic"])
        summary["below_heuristic"] = sum(1 for r in heuristic_rows if r["value"] < r["heuristic"])
        summary["worst_over_heuristic"] = max(r["value"] - r["heuristic"] for r in heuristic_rows)
    return summary


def summary_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    by_set: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_set.setdefault(row["set"], []).append(row)
    lines = []
    for set_name, members in by_set.items():
        s = summarise(members)
        mean_gap = _format_number(None if s["mean_gap"] is None else 100 * s["mean_gap"], 3)
        max_gap = _format_number(None if s["max_gap"] is None else 100 * s["max_gap"], 2)
        lines.append(
            f"{set_name}: {s['instances']} instances; at or below the reference "
            f"{s['at_reference']} (below: {s['better_than_reference']}); at the known optimum "
            f"{s['at_known_optimum']}/{s['with_known_optimum']}; proven optimal "
            f"{s['proven_optimal']}; gap to reference mean {mean_gap} %, max {max_gap} %; "
            f"checker failures {s['check_failures']}; errors {s['errors']}; not all placed "
            f"{s['not_all_placed']}; time mean {_format_number(s['mean_wall_s'], 1)} s, "
            f"max {_format_number(s['max_wall_s'], 1)} s"
        )
        if "above_heuristic" in s:
            lines.append(
                f"{set_name}: versus the best published heuristic (Mommessin et al.): more hosts "
                f"on {s['above_heuristic']} (worst {s['worst_over_heuristic']:+g}), fewer on "
                f"{s['below_heuristic']}"
            )
    return lines


def command_report(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    for path in args.results:
        rows.extend(read_rows(path))
    rows = _latest(rows)
    if not rows:
        print("no rows", file=sys.stderr)
        return 1
    if not args.summary_only:
        print("\n".join(instance_table(rows)))
        print()
    print("\n".join(summary_lines(rows)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.public", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="solve a set and append rows to a JSON-lines file")
    run.add_argument("--set", required=True, choices=SETS)
    run.add_argument("--solver", default="cpsat")
    run.add_argument("--time-limit", type=float, default=10.0, help="seconds per instance")
    run.add_argument("--limit", type=int, default=None, help="only the first N instances")
    run.add_argument("--match", action="append", default=[], help="instance name glob (repeatable)")
    run.add_argument("--jobs", type=int, default=1, help="instances solved in parallel")
    run.add_argument("--workers", type=int, default=2, help="solver threads per instance")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--out", required=True)
    run.add_argument("--resume", action="store_true", help="skip instances already in --out")
    run.set_defaults(handler=command_run)
    report = commands.add_parser("report", help="tables and summary of result files")
    report.add_argument("results", nargs="+")
    report.add_argument("--summary-only", action="store_true")
    report.set_defaults(handler=command_report)
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
