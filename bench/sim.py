"""The `sim` suite: every strategy's recovery run through the simulator, side by side.

    python -m bench sim --runs 40 --out results/sim.jsonl
    python -m bench sim-report results/sim.jsonl --write docs/simulation-results.md

A *strategy* is a placement (a solver's plan) and a way to run it (a policy):

- `cpsat/open-loop`, `cpsat/readiness-gated` and `cpsat/readiness-backfill`: the
  optimiser's plan, as a script of its start times, as a partial order gated on
  readiness, and the same with backfill (a unit whose planned start has passed starts
  when the declared loads leave it room);
- `first-fit+list/open-loop`: the greedy baseline with the list schedule;
- `first-fit/all-at-once`, `first-fit/serial:45`, `first-fit/batch:4` (Pacemaker's
  `batch-limit` counting started actions), `first-fit/priority-groups` (vSphere): the
  greedy placement started the peers' usual ways;
- `proxmox-static/proxmox`: Proxmox HA's static CRS placement, started by its LRM;
- `pacemaker-balanced/pacemaker`: Pacemaker's balanced placement under its throttling;
- `cpsat/replan`: the optimiser's plan carried out readiness-gated, solved again with
  CP-SAT from the state of the recovery at each departure (a host lost, a start given
  up, a boot late or early by half its duration), only under the physics with a second
  host failure (its re-solves cost seconds each).

Each instance is simulated under every *physics*: boot-time noise sigma in {0, 0.3},
contention `share` or `thrash`, fencing off or on, and a second host failure at a random
instant in half of the runs; every strategy sees the same draws (common random
numbers). A row per (instance, physics, strategy) goes to a JSON-lines
file; the report gives recovery p50/p95 with the ratios to `serial:45` and to the
optimiser's open-loop plan, makespan, peak pool demand, seconds over capacity, and the
runs that fenced a host or left a guest never ready.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from placement.check import check
from placement.codec import load_problem_file
from placement.model import Problem
from placement.plan import Plan
from placement.simulate import simulate
from placement.solvers import SolveOptions, solve

ROOT = Path(__file__).resolve().parent.parent

#: (label, solver, schedule, policy)
STRATEGIES: tuple[tuple[str, str, str, str], ...] = (
    ("cpsat/open-loop", "cpsat", "list", "open-loop"),
    ("cpsat/readiness-gated", "cpsat", "list", "readiness-gated"),
    ("cpsat/readiness-backfill", "cpsat", "list", "readiness-backfill"),
    ("first-fit+list/open-loop", "first-fit", "list", "open-loop"),
    ("first-fit/all-at-once", "first-fit", "all-at-once", "all-at-once"),
    ("first-fit/serial:45", "first-fit", "serial:45", "serial:45"),
    ("first-fit/batch:4", "first-fit", "batch:4", "batch:4"),
    ("first-fit/priority-groups", "first-fit", "all-at-once", "priority-groups"),
    ("proxmox-static/proxmox", "proxmox-static", "all-at-once", "proxmox"),
    ("pacemaker-balanced/pacemaker", "pacemaker-balanced", "all-at-once", "pacemaker"),
)

#: Strategies run only under the physics with a second host failure: what they add is
#: what they do after one, and each of their re-plans is a solve.
FAILURE_STRATEGIES: tuple[tuple[str, str, str, str], ...] = (
    ("cpsat/replan", "cpsat", "list", "replan"),
)

#: (label, sigma, contention, fencing, share of runs with a second host failure)
PHYSICS: tuple[tuple[str, float, str, bool, float], ...] = (
    ("exact", 0.0, "share", False, 0.0),
    ("noise", 0.3, "share", False, 0.0),
    ("noise+thrash", 0.3, "thrash", False, 0.0),
    ("noise+thrash+fence", 0.3, "thrash", True, 0.0),
    ("noise+second-failure", 0.3, "share", False, 0.5),
)


def instances(names: Sequence[str] = ()) -> list[tuple[str, Callable[[], Problem]]]:
    """The suite's problems: the example recoveries and the S and M failover scenarios."""
    from bench.scenarios import generate

    found: list[tuple[str, Callable[[], Problem]]] = [
        (name, lambda name=name: load_problem_file(ROOT / "examples" / f"{name}.json"))
        for name in ("single-host-restart", "three-node-failover", "frozen-and-dependencies")
    ]
    found += [(f"S-{seed}", lambda seed=seed: generate("S", seed)) for seed in range(3)]
    found += [("M-0", lambda: generate("M", 0))]
    if names:
        found = [item for item in found if item[0] in names]
    return found


def plans(problem: Problem, time_limit_s: float) -> dict[tuple[str, str], Plan]:
    """Each (solver, schedule) plan the strategies need, solved once."""
    needed = {(solver, schedule) for _, solver, schedule, _ in STRATEGIES + FAILURE_STRATEGIES}
    return {
        (solver, schedule): solve(
            problem, solver, SolveOptions(time_limit_s=time_limit_s, schedule=schedule)
        )
        for solver, schedule in sorted(needed)
    }


def run(
    names: Sequence[str],
    runs: int,
    time_limit_s: float,
    out: Path,
    seed: int = 0,
    log: Callable[[str], None] = lambda _message: None,
    only: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Simulate every strategy of every instance under every physics (or those named in
    `only`); append the rows."""
    unknown = set(only) - {p[0] for p in PHYSICS}
    if unknown:
        raise ValueError(f"unknown physics: {', '.join(sorted(unknown))}")
    chosen = [p for p in PHYSICS if not only or p[0] in only]
    rows = []
    out.parent.mkdir(parents=True, exist_ok=True)
    for name, build in instances(names):
        problem = build()
        solved = plans(problem, time_limit_s)
        for physics, sigma, contention, fencing, failures in chosen:
            count = runs if sigma > 0 else 1
            strategies = STRATEGIES + (FAILURE_STRATEGIES if failures > 0 else ())
            for label, solver, schedule, policy in strategies:
                plan = solved[(solver, schedule)]
                began = time.perf_counter()
                result = simulate(
                    problem,
                    plan,
                    policy,
                    runs=count,
                    seed=seed,
                    sigma=sigma,
                    contention=contention,
                    fencing=fencing,
                    random_host_failure_probability=failures,
                )
                stats = [o.policy_stats for o in result.outcomes]
                row = {
                    "instance": name,
                    "physics": physics,
                    "strategy": label,
                    "solver": solver,
                    "schedule": schedule,
                    "policy": policy,
                    "plan_valid": check(problem, plan).ok,
                    "plan_runtime_s": plan.runtime_s,
                    "seconds": time.perf_counter() - began,
                    "replans_mean": sum(s.get("replans", 0.0) for s in stats) / len(stats),
                    "solve_s_max": max((s.get("solve_s_max", 0.0) for s in stats), default=0.0),
                    # Never-ready guests the last re-plan found no room for, per run.
                    "replan_unplaced_mean": sum(s.get("unplaced", 0.0) for s in stats) / len(stats),
                    **result.to_dict(runs=False),
                }
                rows.append(row)
                with out.open("a", encoding="utf-8") as stream:
                    stream.write(json.dumps(row) + "\n")
            log(f"{name} {physics}: {len(strategies)} strategies, {count} run(s) each")
    return rows


def read(path: Path) -> list[dict[str, Any]]:
    """The rows of a results file (the last row wins for a repeated key)."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            rows[(row["instance"], row["physics"], row["strategy"])] = row
    return list(rows.values())


def _ratio(value: float, base: float | None) -> str:
    if not base:
        return "-"
    return f"{value / base:.2f}"


def _replans(row: dict[str, Any]) -> str:
    """Mean re-plans per run and the longest re-solve, for a re-planning strategy."""
    if not row.get("replans_mean"):
        return "-"
    return f"{row['replans_mean']:.1f}, {row.get('solve_s_max', 0.0):.1f}"


def report(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown: one table per (instance, physics), a row per strategy."""
    lines = []
    keys = sorted(
        {(r["instance"], r["physics"]) for r in rows},
        key=lambda k: (k[0], [p[0] for p in PHYSICS].index(k[1])),
    )
    order = [label for label, *_ in STRATEGIES + FAILURE_STRATEGIES]
    for instance, physics in keys:
        group = {
            r["strategy"]: r for r in rows if (r["instance"], r["physics"]) == (instance, physics)
        }
        serial = group.get("first-fit/serial:45")
        ours = group.get("cpsat/open-loop")
        gated = group.get("cpsat/readiness-gated")
        serial_p95 = serial["summary"]["recovery"]["p95"] if serial else None
        ours_p95 = ours["summary"]["recovery"]["p95"] if ours else None
        gated_p95 = gated["summary"]["recovery"]["p95"] if gated else None
        first = next(iter(group.values()))
        settings = first["settings"]
        lines += [
            "",
            f"### {instance}, {physics}",
            "",
            f"sigma {settings.get('sigma', 0)}, "
            f"contention {settings.get('contention', 'share')}, "
            f"fencing {'on' if settings.get('fencing') else 'off'}, "
            f"second host failure in {settings.get('random_host_failure_probability', 0):.0%}"
            " of the runs; "
            f"{first['summary']['runs']} run(s) on common draws, seed {first['seed']}.",
            "",
            "| strategy | plan valid | recovery p50 | p95 | p95 / serial:45 "
            "| p95 / cpsat open-loop | p95 / cpsat gated | makespan p95 s | peak pool "
            "| over cap. p95 s | runs fenced | runs never ready | re-plans, max solve s |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for label in order:
            row = group.get(label)
            if row is None:
                continue
            summary = row["summary"]
            p95 = summary["recovery"]["p95"]
            peak = max(summary["peak_pool_ratio"].values(), default=0.0)
            lines.append(
                f"| {label} | {'yes' if row['plan_valid'] else 'no'} "
                f"| {summary['recovery']['p50']:,.0f} | {p95:,.0f} "
                f"| {_ratio(p95, serial_p95)} | {_ratio(p95, ours_p95)} "
                f"| {_ratio(p95, gated_p95)} "
                f"| {summary['makespan']['p95']:,.0f} | {peak:.2f}x "
                f"| {summary['seconds_over_capacity']['p95']:,.0f} "
                f"| {summary['runs_with_fencing']}/{summary['runs']} "
                f"| {summary['never_ready']['runs']}/{summary['runs']} "
                f"| {_replans(row)} |"
            )
    return "\n".join(lines) + "\n"


def speed(
    runs: int = 1000,
    guests: int = 600,
    policies: Sequence[str] = ("readiness-gated", "readiness-backfill", "open-loop"),
    jobs: Sequence[int] = (1, 2),
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Time `runs` simulated runs of a large recovery per policy and worker count: the
    first `guests` guests of the M-0 cluster started cold (`coldstart`) on its hosts,
    planned by first fit with the list schedule, sigma 0.3."""
    import attrs

    from bench.scenarios import generate
    from placement.operations import coldstart

    cold = coldstart(generate("M", 0))
    problem = attrs.evolve(cold, guests=cold.guests[:guests])
    plan = solve(problem, "first-fit", SolveOptions(schedule="list"))
    starting = sum(1 for a in plan.assignments if a.action.value == "start")
    log(f"{starting} guests to start on {len(problem.hosts)} hosts, {runs} runs, sigma 0.3")
    rows = []
    for policy in policies:
        for count in jobs:
            began = time.perf_counter()
            result = simulate(problem, plan, policy, runs=runs, sigma=0.3, jobs=count)
            seconds = time.perf_counter() - began
            peak = max(result.summary.peak_pool_ratio.values(), default=0.0)
            log(f"{policy:20} jobs {count}: {seconds:6.1f} s  (peak pool {peak:.2f}x)")
            rows.append({"policy": policy, "jobs": count, "seconds": seconds, "peak": peak})
    return rows
