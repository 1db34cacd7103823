"""Run every instance x solver x seed of a suite and append one JSON line per run.

    python -m bench run --suite quick --solvers cpsat,best-fit --time-limit 10 --seeds 1 --jobs 2

Runs happen in forked child processes (where the platform can fork), up to `--jobs` at
once: a solver that crashes or runs out of memory costs one row, not the benchmark. The
parent watches each child's resident memory and wall time and kills it past
`--memory-limit-gib` or three times the time limit plus a minute. Rows are appended and
flushed the moment a run ends, so a killed benchmark keeps every finished row; the next
`run` on the same file cuts a line left half-written and skips the runs already there
(`--rerun` repeats them; rows of failed or killed runs are always retried).

A row holds what ran (suite, family, instance, solver, schedule, seed, time limit, CP-SAT
workers), how it went (status, error, runtime_s as the plan says (the solve call's wall
time), wall_s as measured around it,
first_solution_s, peak_rss_mib), every stage's value, bound and gap, the summarised stage
(`stage`, its checker value, the solver's bound), the published reference and the gap to
it, what the checker says (violations per rule, every objective, placed guests, peak load
of each boot pool against its limit), the HA figures (guests to start and started, time
until they are all ready, migrations, final imbalance), the SAN load curve when it is
short, and the environment (package versions, git commit, CPU model).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from bench.instance import Instance
from placement.interrupt import EXIT_INTERRUPTED, call_stoppably, sigint_stops
from placement.solvers.stop import StopToken

Row = dict[str, Any]

# Rows whose runs the next `run` repeats: they did not get their whole time.
RETRIED = ("error", "killed", "interrupted")

# Schedules only matter to solvers that place first and time afterwards; the optimiser
# decides both, so it runs once per instance with this in its `schedule` field.
OPTIMISER_SCHEDULE = "joint"
# The schedule each kind of solver runs with unless `--solvers` says `name@schedule`:
# greedy packers with the best simple schedule (valid plans), peers as the real tools
# start guests (everything at once), see docs/baselines.md.
DEFAULT_SCHEDULE = {"baseline": "list", "peer": "all-at-once"}
# Pools whose load curve a row keeps (when it has at most this many points).
CURVE_POOLS = ("san_iops",)
MAX_CURVE_POINTS = 2_000


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
                ["git", "status", "--porcelain", "--untracked-files=no", "--", "placement"],
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
        # Run from a clone that is not installed: the project file says the version.
        with contextlib.suppress(OSError, ValueError, KeyError):
            import tomllib

            with open(root / "pyproject.toml", "rb") as handle:
                packages["placement"] = tomllib.load(handle)["project"]["version"]
    return {
        "python": platform.python_version(),
        "packages": packages,
        "git_commit": commit,
        "git_dirty": dirty,
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
    }


# --- which solvers -----------------------------------------------------------------------


@attrs.frozen
class SolverSpec:
    """A solver and the boot schedule applied after its placement (`joint` for the
    optimiser, which decides both). Written `name` or `name@schedule`."""

    solver: str
    schedule: str

    @property
    def label(self) -> str:
        if self.schedule == OPTIMISER_SCHEDULE:
            return self.solver
        return f"{self.solver}@{self.schedule}"


def solver_info(name: str) -> Any:
    """The `placement.solvers.SolverInfo` of `name`: a bench peer (`bench.plain.PEERS`)
    or a solver of the library's registry. Raises `placement.solvers.UnknownSolverError`."""
    from bench.plain import PEERS
    from placement.solvers import UnknownSolverError, get_solver

    if name in PEERS:
        return PEERS[name]
    try:
        return get_solver(name)
    except UnknownSolverError as error:
        known = ", ".join(PEERS)
        raise UnknownSolverError(f"{error.args[0]} (bench peers: {known})") from None


def _solve(problem: Any, name: str, options: Any) -> Any:
    """`placement.solvers.solve` for any name `solver_info` knows."""
    from placement.solvers import mark_interrupted

    started = time.perf_counter()
    plan = solver_info(name).function(problem, options)
    plan = attrs.evolve(plan, runtime_s=round(time.perf_counter() - started, 6))
    return mark_interrupted(plan, options)


# Kinds of solver that decide both placement and boot times (no schedule after them).
JOINT_KINDS = ("optimiser", "plain")


def parse_solvers(text: str | None) -> list[SolverSpec]:
    """`cpsat,best-fit,proxmox-static@list` -> specs; None or "" -> `default_solvers()`.
    Bench peers (`plain-rcpsp`, `plain-vbp`, see `bench.plain`) are named here only.

    Raises `placement.solvers.UnknownSolverError` for an unknown name.
    """
    if not text:
        return default_solvers()
    specs = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, _, schedule = item.partition("@")
        info = solver_info(name)
        if info.kind in JOINT_KINDS:
            schedule = OPTIMISER_SCHEDULE
        elif not schedule:
            schedule = DEFAULT_SCHEDULE.get(info.kind, "list")
        specs.append(SolverSpec(name, schedule))
    return specs


def default_solvers() -> list[SolverSpec]:
    """The optimiser and every registered baseline and peer, each with its schedule."""
    from placement.solvers import available_solvers

    specs = []
    for info in available_solvers():
        schedule = (
            OPTIMISER_SCHEDULE
            if info.kind == "optimiser"
            else DEFAULT_SCHEDULE.get(info.kind, "list")
        )
        specs.append(SolverSpec(info.name, schedule))
    return specs


# --- one run -----------------------------------------------------------------------------


def pool_curve(problem: Any, plan: Any, pool: str) -> list[list[int]]:
    """The load of boot pool `pool` over time: `[[t, load], ...]`, load from `t` on.

    Boots load the pool by their boot profile during `[start_s, ready_s)`, migrations by
    `migration.load`; at an instant where one ends and another begins, the end counts first.
    """
    events: dict[int, int] = {}
    migration_load = getattr(getattr(problem, "migration", None), "load", {}) or {}
    for assignment in plan.assignments:
        if assignment.start_s is None or assignment.ready_s is None:
            continue
        action = assignment.action.value
        if action == "start":
            load = problem.guest(assignment.guest).boot.load.get(pool, 0)
        elif action == "migrate":
            load = migration_load.get(pool, 0)
        else:
            continue
        if load and assignment.ready_s > assignment.start_s:
            events[assignment.start_s] = events.get(assignment.start_s, 0) + load
            events[assignment.ready_s] = events.get(assignment.ready_s, 0) - load
    curve = [[0, 0]]
    level = 0
    for instant in sorted(events):
        level += events[instant]
        if instant == curve[-1][0]:
            curve[-1][1] = level
        else:
            curve.append([instant, level])
    return curve


def _imbalance(problem: Any, plan: Any) -> float | None:
    """Proxmox's imbalance (`placement.operations.imbalance`) once the plan is carried out."""
    from placement.operations import imbalance

    with contextlib.suppress(ValueError, KeyError, ZeroDivisionError):
        return float(imbalance(problem, plan))
    return None


def ha_figures(problem: Any, plan: Any) -> Row:
    """The HA benchmark's figures, for any plan: the guests the operation affects (those
    that must start, and running guests on hosts that are not online, which must move),
    how many of them end on a host (`recovered`), when the last of those is ready (started
    or migrated), the migrations, and Proxmox's imbalance of the final state."""
    by_guest = plan.by_guest()
    affected = [
        g.name
        for g in problem.guests
        if not problem.runs_now(g)
        or (g.current_host is not None and not problem.host(g.current_host).online)
    ]
    recovered = [
        by_guest[name] for name in affected if name in by_guest and by_guest[name].host is not None
    ]
    migrations = [a for a in plan.assignments if a.action.value == "migrate"]
    return {
        "affected": len(affected),
        "recovered": len(recovered),
        "all_ready_s": max((a.ready_s or 0 for a in recovered), default=0),
        "migrations": len(migrations),
        "migrations_done_s": max((a.ready_s or 0 for a in migrations), default=0),
        "imbalance": _imbalance(problem, plan),
    }


def _gap(value: float, reference: float, maximise: bool) -> float:
    """How much worse `value` is than `reference`, relative (negative: better)."""
    difference = reference - value if maximise else value - reference
    return difference / max(abs(reference), 1e-9) if reference else float(difference != 0)


def measure(
    problem: Any,
    solver: str,
    schedule: str,
    time_limit_s: float,
    workers: int,
    *,
    seed: int = 0,
    stage: str | None = None,
    reference: Any = None,
    stop: StopToken | None = None,
) -> Row:
    """Solve once and describe the plan as the checker sees it (no instance fields).

    `stage`: the objective stage summarised (`value`, `bound`); `reference`: a
    `bench.suites.Reference` for that stage, giving `ref_gap` (to its upper value).
    `stop`: ends the solve early; the row's status is then `interrupted` (the plan's
    own in `plan_status`), so reports leave it out and the next `run` repeats it.
    """
    from placement.check import check
    from placement.codec import dump_plan
    from placement.solvers import Progress, SolveOptions

    first: list[float] = []

    def on_progress(progress: Progress) -> None:
        if not first:
            first.append(progress.elapsed_s)

    options = SolveOptions(
        time_limit_s=time_limit_s,
        workers=workers,
        seed=seed,
        schedule=schedule if schedule != OPTIMISER_SCHEDULE else "list",
        on_progress=on_progress,
        stop=stop,
    )
    started = time.perf_counter()
    plan = _solve(problem, solver, options)
    wall_s = time.perf_counter() - started
    report = check(problem, plan)
    metrics = report.metrics
    rules: dict[str, int] = {}
    for violation in report.violations:
        rules[violation.rule] = rules.get(violation.rule, 0) + 1
    pools = {
        name: {"peak": info.get("peak"), "limit": info.get("limit")}
        for name, info in metrics["pools"].items()
    }
    san = pools.get("san_iops", {})
    # A solver may report its own time to first plan; keep its one-number statistics,
    # under the names results files have always used (`first_plan_s`, `returned`, ...).
    solver_metrics = plan.statistics.scalars()
    row: Row = {
        "kind": solver_info(solver).kind,
        "status": "interrupted" if plan.statistics.interrupted else plan.status.value,
        "plan_status": plan.status.value,
        "runtime_s": round(plan.runtime_s, 3),
        "wall_s": round(wall_s, 3),
        "first_solution_s": round(first[0], 3) if first else None,
        "solver_metrics": solver_metrics,
        # Each stage search as the plan file has it (CP-SAT's status and bound, the LP's).
        "stage_logs": dump_plan(plan).get("statistics", {}).get("stages", []),
        "stages": [
            {"name": s.name, "value": s.value, "bound": s.bound, "gap": s.gap} for s in plan.stages
        ],
        "objectives": dict(metrics["objectives"]),
        "violations": len(report.violations),
        "violation_rules": rules,
        "placed": metrics["placed"],
        "unplaced": metrics["unplaced"],
        "actions": dict(metrics["actions"]),
        "pools": pools,
        "san_peak": san.get("peak"),
        "san_limit": san.get("limit"),
        "makespan_s": metrics["objectives"]["makespan"],
        "ha": ha_figures(problem, plan),
    }
    for pool in CURVE_POOLS:
        if pool in problem.boot_pools:
            curve = pool_curve(problem, plan, pool)
            if len(curve) <= MAX_CURVE_POINTS:
                row.setdefault("curves", {})[pool] = curve
    if stage is not None:
        value = float(metrics["objectives"][stage])
        own = plan.stage(stage)
        row["stage"] = stage
        row["value"] = value
        row["bound"] = own.bound if own is not None else None
        if reference is not None:
            maximise = stage == "placed"
            row["ref_gap"] = _gap(value, reference.upper, maximise)
            row["ref_gap_lower"] = _gap(value, reference.lower, maximise)
    return row


# --- child processes ---------------------------------------------------------------------


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _safe(task: Callable[[], Row]) -> Row:
    try:
        return task()
    except Exception as error:
        return {
            "status": "error",
            "error": f"{type(error).__name__}: {error}",
            "traceback": traceback.format_exc(limit=8),
        }


@attrs.define
class _Child:
    pid: int
    key: Any
    result_path: str
    started: float
    deadline_s: float
    peak_kib: int = 0


def _fork(key: Any, task: Callable[[], Row], deadline_s: float) -> _Child:
    with tempfile.NamedTemporaryFile("w+", suffix=".json", delete=False) as handle:
        result_path = handle.name
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            # Its own process group: a terminal's Ctrl-C reaches the parent only, which
            # passes it on once (a second one would end the child before its row).
            os.setpgid(0, 0)
            row = _safe(task)
            code = 1 if row.get("status") == "error" else 0
            with open(result_path, "w", encoding="utf-8") as out:
                json.dump(row, out)
        finally:
            os._exit(code)
    return _Child(pid, key, result_path, time.monotonic(), deadline_s)


def _collect(child: _Child, exit_status: int, killed: str | None) -> Row:
    try:
        if killed is not None:
            return {
                "status": "killed",
                "error": killed,
                "wall_s": round(time.monotonic() - child.started, 3),
            }
        try:
            with open(child.result_path, encoding="utf-8") as result:
                row: Row = json.load(result)
                return row
        except (OSError, ValueError):
            return {"status": "error", "error": f"child died (wait status {exit_status})"}
    finally:
        with contextlib.suppress(OSError):
            os.unlink(child.result_path)


def run_parallel(
    tasks: Iterable[tuple[Any, Callable[[], Row], float]],
    jobs: int,
    memory_limit_kib: int | None = None,
    stop: StopToken | None = None,
) -> Iterator[tuple[Any, Row, int]]:
    """Run `(key, task, deadline_s)` triples in up to `jobs` forked children; yield
    `(key, row, peak_rss_kib)` as each finishes (in finishing order). Once `stop` is
    stopped, no task starts and the running children get a SIGINT (once), which ends
    their solves with the best plan so far."""
    pending = list(tasks)
    pending.reverse()
    running: dict[int, _Child] = {}
    told: set[int] = set()
    try:
        while pending or running:
            if stop is not None and stop.stopped:
                pending.clear()
                for pid in running.keys() - told:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGINT)
                    told.add(pid)
            while pending and len(running) < max(1, jobs):
                key, task, deadline_s = pending.pop()
                child = _fork(key, task, deadline_s)
                running[child.pid] = child
            time.sleep(0.02)
            for pid, child in list(running.items()):
                done, exit_status, usage = os.wait4(pid, os.WNOHANG)
                killed: str | None = None
                if not done:
                    child.peak_kib = max(child.peak_kib, _rss_kib(pid))
                    if memory_limit_kib is not None and child.peak_kib > memory_limit_kib:
                        killed = f"killed: resident memory above {memory_limit_kib // 1024} MiB"
                    elif time.monotonic() - child.started > child.deadline_s:
                        killed = f"killed: still running after {child.deadline_s:.0f} s"
                    if killed is None:
                        continue
                    os.kill(pid, signal.SIGKILL)
                    _, exit_status, usage = os.wait4(pid, 0)
                del running[pid]
                peak = max(child.peak_kib, usage.ru_maxrss)
                yield child.key, _collect(child, exit_status, killed), peak
    finally:
        # Interrupted (Ctrl-C, or the consumer stopped): leave no orphan behind.
        for pid, child in running.items():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            with contextlib.suppress(OSError):
                os.unlink(child.result_path)


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
    return (
        row.get("instance"),
        row.get("solver"),
        row.get("schedule"),
        row.get("seed", 0),
        row.get("time_limit_s"),
    )


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
    """Append one row and push it to disk before the next run is reported."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


# --- the benchmark -----------------------------------------------------------------------


def _counts(problem: Any) -> Row:
    return {
        "guests": len(problem.guests),
        "hosts": len(problem.hosts),
        "to_start": sum(1 for g in problem.guests if not problem.runs_now(g)),
    }


def _task(
    instance: Instance,
    spec: SolverSpec,
    seed: int,
    time_limit_s: float,
    workers: int,
    stop: StopToken | None = None,
) -> Row:
    started = time.perf_counter()
    problem = instance.build()
    build_s = round(time.perf_counter() - started, 3)
    # Ctrl-C (in a child: the parent's, passed on) stops this solve, which keeps its row.
    with sigint_stops(stop):
        row = call_stoppably(
            lambda: measure(
                problem,
                spec.solver,
                spec.schedule,
                time_limit_s,
                workers,
                seed=seed,
                stage=instance.stage,
                reference=instance.reference,
                stop=stop,
            )
        )
    return {**row, "build_s": build_s, "counts": _counts(problem)}


def _remote_task(
    shared: tuple[float, int], key: tuple[Instance, SolverSpec, int]
) -> tuple[Row, int]:
    """One run on an executor's worker: its row, and the worker's peak RSS (KiB)."""
    import resource

    time_limit_s, threads = shared
    row = _safe(functools.partial(_task, *key, time_limit_s, threads))
    return row, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def auto_workers(jobs: int) -> int:
    """CP-SAT threads per run so that `jobs` runs share the machine's cores."""
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def run_suite(
    *,
    suite_name: str,
    instances: Sequence[Instance],
    solvers: Sequence[SolverSpec],
    seeds: Iterable[int] = (0,),
    time_limit_s: float = 10.0,
    out: str | os.PathLike[str],
    jobs: int = 1,
    workers: int | None = None,
    rerun: bool = False,
    isolate: bool = True,
    memory_limit_gib: float | None = None,
    log: Callable[[str], None] | None = None,
    stop: StopToken | None = None,
    on_total: Callable[[int], None] | None = None,
    executor: Any = None,
) -> Iterator[Row]:
    """Run every instance x solver x seed, appending each row to `out` as soon as it is
    done (finishing order); yields the rows. Runs already in `out` are skipped unless
    `rerun`; failed, killed and interrupted ones are retried. Once `stop` is stopped, the
    running solves end with their best plans (rows marked `interrupted`) and no other
    run starts. `on_total` is told how many runs there are to do, before the first;
    each run's `log` line starts with its place (`[3/40]`).

    `executor`: a `placement.executors` executor (a Dask cluster, say) that runs the
    solves instead of forked children; there no memory limit or deadline kills a run
    (Dask's own worker memory limits apply), and `peak_rss_mib` is the worker process's
    peak so far."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    _drop_partial_line(path)
    done = set()
    if not rerun:
        done = {run_key(row) for row in read_rows(path) if row.get("status") not in RETRIED}
    threads = workers if workers is not None else auto_workers(jobs)
    env = environment()
    seed_list = list(seeds)
    todo: list[tuple[Instance, SolverSpec, int]] = [
        (instance, spec, seed)
        for instance in instances
        for seed in seed_list
        for spec in solvers
        if (instance.name, spec.solver, spec.schedule, seed, time_limit_s) not in done
    ]
    if log is not None:
        skipped = len(instances) * len(seed_list) * len(solvers) - len(todo)
        log(f"{len(todo)} run(s) to do" + (f", {skipped} already in {path}" if skipped else ""))
    if on_total is not None:
        on_total(len(todo))
    finished = 0

    def base(instance: Instance, spec: SolverSpec, seed: int) -> Row:
        reference = instance.reference
        return {
            "suite": suite_name,
            "family": instance.family,
            "instance": instance.name,
            "solver": spec.solver,
            "schedule": spec.schedule,
            "label": spec.label,
            "seed": seed,
            "time_limit_s": time_limit_s,
            "workers": threads,
            "jobs": jobs,
            "reference": attrs.asdict(reference) if reference is not None else None,
            **({"meta": instance.meta} if instance.meta else {}),
        }

    def finish(key: tuple[Instance, SolverSpec, int], result: Row, peak_kib: int) -> Row:
        instance, spec, seed = key
        row = {
            **base(instance, spec, seed),
            **result,
            "peak_rss_mib": round(peak_kib / 1024, 1),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "env": env,
        }
        append_row(path, row)
        nonlocal finished
        finished += 1
        if log is not None:
            value = row.get("value")
            log(
                f"[{finished}/{len(todo)}] {instance.name} {spec.label} seed {seed}: "
                f"{row.get('status')}"
                + (f", {row['stage']} {value:g}" if value is not None else "")
                + f", {row.get('violations', '-')} violation(s), {row.get('wall_s', '-')} s"
                + (f" ({row['error']})" if row.get("error") else "")
            )
        return row

    memory_limit_kib = int(memory_limit_gib * 1024 * 1024) if memory_limit_gib else None
    if executor is not None:
        for index, (result, peak_kib) in executor.map_unordered(
            _remote_task, (time_limit_s, threads), todo
        ):
            yield finish(todo[index], result, peak_kib)
        return
    if isolate and hasattr(os, "fork") and hasattr(os, "wait4"):
        deadline_s = 3 * time_limit_s + 60
        triples = [
            (key, functools.partial(_task, *key, time_limit_s, threads, stop), deadline_s)
            for key in todo
        ]
        for key, result, peak_kib in run_parallel(triples, jobs, memory_limit_kib, stop):
            yield finish(key, result, peak_kib)
        return
    import resource

    for key in todo:
        if stop is not None and stop.stopped:
            break
        result = _safe(functools.partial(_task, *key, time_limit_s, threads, stop))
        yield finish(key, result, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def main_run(args: Any) -> int:
    """`python -m bench run`: see `bench.__main__`."""
    from bench.suites import UnknownSuiteError, suite
    from placement.solvers import UnknownSolverError

    progress = SuiteProgress(args.suite, sys.stderr, bar=not args.quiet)
    if args.quiet or not getattr(args, "verbose", False):
        # The library's warnings (a peer falling back to another scheduler, ...) are the
        # solvers' business; the rows say how each run went.
        logging.getLogger("placement").setLevel(logging.ERROR)
    try:
        instances = suite(args.suite, match=args.match, limit=args.limit)
        specs = parse_solvers(args.solvers)
    except (UnknownSuiteError, UnknownSolverError) as error:
        print(f"error: {error.args[0]}", file=sys.stderr)
        return 2
    if not instances:
        print(f"error: suite '{args.suite}' has no instance matching", file=sys.stderr)
        return 2
    stop = StopToken()
    executor = None
    if getattr(args, "scheduler", None):
        from placement.executors import DaskExecutor, ExecutorUnavailableError

        try:
            executor = DaskExecutor(args.scheduler)
        except ExecutorUnavailableError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    rows = run_suite(
        stop=stop,
        suite_name=args.suite,
        instances=instances,
        solvers=specs,
        seeds=range(args.first_seed, args.first_seed + args.seeds),
        time_limit_s=args.time_limit,
        out=args.out,
        jobs=args.jobs,
        workers=args.workers,
        rerun=args.rerun,
        isolate=not args.in_process,
        memory_limit_gib=args.memory_limit_gib,
        log=None if args.quiet else progress.line,
        on_total=progress.start,
        executor=executor,
    )
    started = time.perf_counter()
    failures = written = cut = 0
    try:
        with sigint_stops(stop, on_second=_raise_keyboard_interrupt):
            for row in rows:
                progress.advance()
                written += 1
                failures += row.get("status") in ("error", "killed")
                cut += row.get("status") == "interrupted"
    except KeyboardInterrupt:  # the second Ctrl-C: running children are killed
        progress.close()
        print(f"interrupted again: {written} row(s) written to {args.out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if executor is not None:
            executor.close()
    progress.close()
    if stop.stopped:
        after_s = (stop.stopped_at or started) - started
        print(
            f"interrupted after {after_s:.1f} s: {written} row(s) written to {args.out}, "
            f"{cut} of them cut short (status interrupted; the next run repeats them)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return 1 if failures else 0


class SuiteProgress:
    """The progress of one suite's runs on stderr: on a terminal a bar with the runs
    done and an ETA (tqdm, from the `bench` extra) under the per-run lines; elsewhere, or
    without tqdm, the per-run lines alone (they carry their `[k/N]`)."""

    def __init__(self, suite_name: str, stream: Any, *, bar: bool) -> None:
        self._suite = suite_name
        self._stream = stream
        self._wanted = bar and stream.isatty()
        self._bar: Any = None

    def start(self, total: int) -> None:
        """Open the bar for `total` runs (on a terminal, with tqdm installed)."""
        if not self._wanted or total == 0:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            return
        self._bar = tqdm(
            total=total, desc=self._suite, unit="run", file=self._stream, dynamic_ncols=True
        )

    def line(self, message: str) -> None:
        """A log line, above the bar when there is one."""
        if self._bar is not None:
            self._bar.write(message, file=self._stream)
        else:
            print(message, file=self._stream, flush=True)

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _raise_keyboard_interrupt() -> None:
    """The second Ctrl-C of a bench run: unwind, so that `run_parallel` kills its children."""
    raise KeyboardInterrupt
