"""Run every (instance, solver, schedule) and append one JSON line per run.

Each run happens in a forked child process (where the platform can fork), so a solver
that crashes or runs out of memory costs one row, not the benchmark; the parent watches
the child's resident memory and wall time and kills it past `--memory-limit-gib` or
three times the time limit plus a minute. Rows are appended and flushed as each run
finishes, so a killed benchmark keeps every row it finished; `--resume` skips runs
already in the file.

A row holds: what ran (instance, size, seed, solver, kind, schedule, time limit), how it
went (status, error, runtime_s as the plan says, wall_s as measured, first_solution_s from
the solver's first progress report, peak_rss_mib), every stage's value, bound and gap,
and what the checker says of the plan (violations and their rules, every objective,
makespan, placed guests, peak SAN load against its limit), plus the environment
(package versions, git commit, CPU model).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from bench.scenarios import POOL, describe, generate

Row = dict[str, Any]

# Schedules only matter to solvers that place first and time afterwards; the optimiser
# decides both, so it runs once per instance with this in its `schedule` field.
OPTIMISER_SCHEDULE = "joint"


# --- the environment ---------------------------------------------------------------------


def _package_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def environment() -> Row:
    """Package versions, git commit and CPU model of this machine, for every row."""
    root = Path(__file__).resolve().parent.parent
    commit: str | None = None
    dirty: bool | None = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=root,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    packages = {name: _package_version(name) for name in ("placement", "ortools", "numpy", "attrs")}
    if packages["placement"] is None:
        # Run from a clone that is not installed: the package says its own version.
        with contextlib.suppress(ImportError):
            import placement

            packages["placement"] = getattr(placement, "__version__", None)
    return {
        "python": platform.python_version(),
        "packages": packages,
        "git_commit": commit,
        "git_dirty": dirty,
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
    }


# --- one run -----------------------------------------------------------------------------


def measure(problem: Any, solver: str, schedule: str, time_limit_s: float, workers: int) -> Row:
    """Solve once and describe the plan as the checker sees it (no instance fields)."""
    from placement.check import check
    from placement.solvers import Progress, SolveOptions, get_solver, solve

    first: list[float] = []

    def on_progress(progress: Progress) -> None:
        if not first:
            first.append(progress.elapsed_s)

    options = SolveOptions(
        time_limit_s=time_limit_s,
        workers=workers,
        schedule=schedule if schedule != OPTIMISER_SCHEDULE else "list",
        on_progress=on_progress,
    )
    started = time.perf_counter()
    plan = solve(problem, solver, options)
    wall_s = time.perf_counter() - started
    report = check(problem, plan)
    metrics = report.metrics
    rules: dict[str, int] = {}
    for violation in report.violations:
        rules[violation.rule] = rules.get(violation.rule, 0) + 1
    pool = metrics["pools"].get(POOL, {})
    # A solver may report its own time to first plan; keep its scalar metrics.
    solver_metrics = {
        key: value
        for key, value in plan.metrics.items()
        if isinstance(value, int | float | str | bool) or value is None
    }
    return {
        "kind": get_solver(solver).kind,
        "status": plan.status.value,
        "runtime_s": round(plan.runtime_s, 3),
        "wall_s": round(wall_s, 3),
        "first_solution_s": round(first[0], 3) if first else None,
        "solver_metrics": solver_metrics,
        "stages": [
            {"name": s.name, "value": s.value, "bound": s.bound, "gap": s.gap} for s in plan.stages
        ],
        "objectives": dict(metrics["objectives"]),
        "violations": len(report.violations),
        "violation_rules": rules,
        "placed": metrics["placed"],
        "unplaced": metrics["unplaced"],
        "actions": dict(metrics["actions"]),
        "san_peak": pool.get("peak"),
        "san_limit": pool.get("limit"),
        "makespan_s": metrics["objectives"]["makespan"],
    }


def _peak_rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _isolated(
    task: Callable[[], Row], deadline_s: float, memory_limit_kib: int | None
) -> tuple[Row, int]:
    """Run `task` in a forked child; return its row (or why it died) and its peak RSS."""
    with tempfile.NamedTemporaryFile("w+", suffix=".json", delete=False) as handle:
        result_path = handle.name
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            row = task()
        except Exception as error:
            row = {"status": "error", "error": f"{type(error).__name__}: {error}"}
            row["traceback"] = traceback.format_exc(limit=8)
            code = 1
        try:
            with open(result_path, "w", encoding="utf-8") as out:
                json.dump(row, out)
        finally:
            os._exit(code)
    started = time.monotonic()
    peak_kib = 0
    killed: str | None = None
    rusage_kib = 0
    exit_status = 0
    try:
        while True:
            done, exit_status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                rusage_kib = usage.ru_maxrss
                break
            peak_kib = max(peak_kib, _peak_rss_kib(pid))
            if memory_limit_kib is not None and peak_kib > memory_limit_kib:
                killed = f"killed: resident memory above {memory_limit_kib // 1024} MiB"
            elif time.monotonic() - started > deadline_s:
                killed = f"killed: still running after {deadline_s:.0f} s"
            if killed is not None:
                os.kill(pid, signal.SIGKILL)
                _, exit_status, usage = os.wait4(pid, 0)
                rusage_kib = usage.ru_maxrss
                break
            time.sleep(0.05)
        peak_kib = max(peak_kib, rusage_kib)
        row: Row
        if killed is not None:
            row = {
                "status": "killed",
                "error": killed,
                "wall_s": round(time.monotonic() - started, 3),
            }
        else:
            try:
                with open(result_path, encoding="utf-8") as result:
                    row = json.load(result)
            except (OSError, ValueError):
                row = {"status": "error", "error": f"child died (wait status {exit_status})"}
        return row, peak_kib
    finally:
        with contextlib.suppress(OSError):
            os.unlink(result_path)


# --- the result file ---------------------------------------------------------------------


def read_rows(path: str | os.PathLike[str]) -> list[Row]:
    """Every complete row of a results file; a line cut short by a killed run is skipped."""
    rows: list[Row] = []
    with contextlib.suppress(FileNotFoundError), open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.endswith("\n"):
                break  # the last line of a run killed while writing it
            with contextlib.suppress(ValueError):
                row = json.loads(line)
                if isinstance(row, dict):
                    rows.append(row)
    return rows


def run_key(row: Row) -> tuple[Any, ...]:
    """What identifies a run: a later row with the same key replaces an earlier one."""
    return (row.get("instance"), row.get("solver"), row.get("schedule"), row.get("time_limit_s"))


def _drop_partial_line(path: Path) -> None:
    """Cut a trailing line without its newline, left by a run killed while writing."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as handle:
        data = handle.read()
        if data.endswith(b"\n"):
            return
        handle.truncate(data.rfind(b"\n") + 1)


def append_row(path: Path, row: Row) -> None:
    """Append one row and push it to disk before the next run starts."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


# --- the benchmark -----------------------------------------------------------------------


def plan_runs(solvers: Iterable[str], schedules: Iterable[str]) -> list[tuple[str, str]]:
    """(solver, schedule) pairs: a baseline once per schedule, the optimiser once."""
    from placement.solvers import get_solver

    pairs: list[tuple[str, str]] = []
    schedule_list = list(schedules)
    for solver in solvers:
        if get_solver(solver).kind == "optimiser":
            pairs.append((solver, OPTIMISER_SCHEDULE))
        else:
            pairs.extend((solver, schedule) for schedule in schedule_list)
    return pairs


def run_benchmark(
    *,
    sizes: Iterable[str],
    seeds: Iterable[int],
    solvers: Iterable[str],
    schedules: Iterable[str],
    time_limit_s: float,
    out: str | os.PathLike[str],
    workers: int = 2,
    resume: bool = False,
    isolate: bool = True,
    memory_limit_gib: float | None = None,
    log: Callable[[str], None] | None = None,
) -> Iterator[Row]:
    """Run the benchmark, appending each row to `out` as soon as it is done; yields rows."""
    path = Path(out)
    _drop_partial_line(path)
    done = {run_key(row) for row in read_rows(path)} if resume else set()
    pairs = plan_runs(solvers, schedules)
    env = environment()
    can_fork = isolate and hasattr(os, "fork") and hasattr(os, "wait4")
    memory_limit_kib = int(memory_limit_gib * 1024 * 1024) if memory_limit_gib else None
    for size in sizes:
        for seed in seeds:
            instance = f"{size}-{seed}"
            todo = [
                (solver, schedule)
                for solver, schedule in pairs
                if (instance, solver, schedule, time_limit_s) not in done
            ]
            if not todo:
                continue
            started = time.perf_counter()
            problem = generate(size, seed)
            generate_s = round(time.perf_counter() - started, 3)
            counts = describe(problem)
            for solver, schedule in todo:
                base: Row = {
                    "instance": instance,
                    "size": size,
                    "seed": seed,
                    "solver": solver,
                    "schedule": schedule,
                    "time_limit_s": time_limit_s,
                    "workers": workers,
                    "generate_s": generate_s,
                    "counts": counts,
                }

                def task(
                    problem: Any = problem, solver: str = solver, schedule: str = schedule
                ) -> Row:
                    return measure(problem, solver, schedule, time_limit_s, workers)

                if log is not None:
                    log(f"{instance} {solver} {schedule} ...")
                peak_kib = 0
                if can_fork:
                    deadline_s = 3 * time_limit_s + 60
                    result, peak_kib = _isolated(task, deadline_s, memory_limit_kib)
                else:
                    try:
                        result = task()
                    except Exception as error:
                        result = {"status": "error", "error": f"{type(error).__name__}: {error}"}
                    import resource

                    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                row = {
                    **base,
                    **result,
                    "peak_rss_mib": round(peak_kib / 1024, 1),
                    "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "env": env,
                }
                append_row(path, row)
                if log is not None:
                    log(
                        f"{instance} {solver} {schedule}: {row.get('status')} "
                        f"in {row.get('wall_s')} s, {row.get('violations')} violation(s)"
                        + (f" ({row['error']})" if row.get("error") else "")
                    )
                yield row


def main_run(args: Any) -> int:
    """`python -m bench run`: see `bench.__main__`."""

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    rows = run_benchmark(
        sizes=[s.strip() for s in args.sizes.split(",") if s.strip()],
        seeds=range(args.first_seed, args.first_seed + args.seeds),
        solvers=[s.strip() for s in args.solvers.split(",") if s.strip()],
        schedules=[s.strip() for s in args.schedules.split(",") if s.strip()],
        time_limit_s=args.time_limit,
        out=args.out,
        workers=args.workers,
        resume=args.resume,
        isolate=not args.in_process,
        memory_limit_gib=args.memory_limit_gib,
        log=None if args.quiet else log,
    )
    failures = sum(1 for row in rows if row.get("status") in ("error", "killed"))
    return 1 if failures else 0
