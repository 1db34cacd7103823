"""`placement simulate PROBLEM PLAN`: run a plan through the physics of a recovery.

One or more policies (`--policy open-loop,readiness-gated,serial:45`) run the same plan
on the same random draws, so their rows compare like with like. Settings come from the
problem's `simulation` object; options given here replace single fields of it.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from placement.cli_common import EXIT_OK, SourcedError, UsageError, load_problem
from placement.codec import load_plan_file, write_json_atomic
from placement.errors import InvalidInputError
from placement.model import HostFailure, Problem
from placement.plan import Plan


def _policies(values: list[str] | None) -> list[str]:
    names = [name.strip() for value in values or [] for name in value.split(",") if name.strip()]
    return names or ["open-loop"]


def _failures(problem: Problem, values: list[str] | None) -> list[HostFailure]:
    """`--fail HOST@SECONDS` (repeatable) as host failures."""
    failures = []
    for value in values or []:
        host, _, at = value.partition("@")
        if not problem.has_host(host):
            raise UsageError(f"--fail {value}: unknown host '{host}'")
        try:
            at_s = float(at)
        except ValueError:
            at_s = -1.0
        if not at or not 0 <= at_s <= 1e9:
            raise UsageError(f"--fail {value}: expected HOST@SECONDS, e.g. kvm03@120")
        failures.append(HostFailure(host, at_s))
    return failures


def _overrides(args: argparse.Namespace, problem: Problem) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for option, field in (
        ("sigma", "sigma"),
        ("contention", "contention"),
        ("start_failure", "start_failure_probability"),
        ("start_return", "start_return_s"),
        ("fence_ratio", "fence_ratio"),
        ("fence_grace", "fence_grace_s"),
        ("random_failure", "random_host_failure_probability"),
    ):
        value = getattr(args, option)
        if value is not None:
            overrides[field] = value
    if args.fencing is not None:
        overrides["fencing"] = args.fencing
    failures = _failures(problem, args.fail)
    if failures:
        overrides["host_failures"] = (*problem.simulation.host_failures, *failures)
    return overrides


def _figure(value: float) -> str:
    if value == float("inf"):
        return "inf"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def _print_table(results: list[Any], plan: Plan, out: TextIO) -> None:
    first = results[0]
    settings = first.settings
    print(
        f"plan {plan.solver}: planned recovery {_figure(first.planned_recovery)}, "
        f"makespan {_figure(first.planned_makespan_s)} s; {first.summary.runs} run(s), "
        f"sigma {settings.sigma}, {settings.contention.value}, "
        f"fencing {'on' if settings.fencing else 'off'}, seed {first.seed}",
        file=out,
    )
    pools = sorted({name for r in results for name in r.summary.peak_pool_ratio})
    header = [
        "policy",
        "recovery p50",
        "p95",
        "max",
        "makespan p50",
        "p95",
        *[f"peak {pool}" for pool in pools],
        "peak host",
        "over cap. p95 s",
        "fenced",
        "never ready",
    ]
    rows = []
    for result in results:
        summary = result.summary
        hosts = max(summary.peak_host_ratio.values(), default=0.0)
        rows.append(
            [
                result.policy,
                _figure(summary.recovery.p50),
                _figure(summary.recovery.p95),
                _figure(summary.recovery.max),
                _figure(summary.makespan_s.p50),
                _figure(summary.makespan_s.p95),
                *[f"{summary.peak_pool_ratio.get(pool, 0.0):.2f}x" for pool in pools],
                f"{hosts:.2f}x",
                _figure(summary.seconds_over_capacity.p95),
                f"{summary.runs_with_fencing}/{summary.runs}",
                f"{summary.runs_with_never_ready}/{summary.runs}",
            ]
        )
    from placement.show import table

    for line in table([header, *rows], right=range(1, len(header)), indent=""):
        print(line, file=out)
    print(
        "peaks are demand over capacity, the highest over all runs; a guest never ready "
        "counts at the horizon in recovery and makespan",
        file=out,
    )


def _cmd_simulate(args: argparse.Namespace, out: TextIO) -> int:
    from placement.check import check
    from placement.simulate import simulate

    problem = load_problem(args.problem)
    try:
        plan = load_plan_file(args.plan)
        check(problem, plan)  # unknown guests or hosts in the plan are input errors
    except InvalidInputError as error:
        raise SourcedError(args.plan, error) from error
    if args.runs < 1:
        raise UsageError(f"--runs must be >= 1 (got {args.runs})")
    overrides = _overrides(args, problem)
    if args.plot:
        from placement.plot import image_format_of

        try:
            image_format = image_format_of(args.plot)
        except ValueError as error:
            raise UsageError(str(error)) from error
    results = []
    try:
        for name in _policies(args.policy):
            results.append(
                simulate(
                    problem,
                    plan,
                    name,
                    runs=args.runs,
                    seed=args.seed,
                    jobs=args.jobs,
                    trace=bool(args.plot),
                    **overrides,
                )
            )
    except ValueError as error:
        raise UsageError(str(error)) from error
    if args.plot:
        from placement.codec import write_bytes_atomic
        from placement.plot import PlotUnavailableError, render_comparison

        try:
            image = render_comparison(problem, [(plan, r) for r in results], image_format)
        except PlotUnavailableError as error:
            raise UsageError(str(error)) from error
        write_bytes_atomic(args.plot, image)
    documents = [result.to_dict(runs=True) for result in results]
    document: Any = documents[0] if len(documents) == 1 else {"results": documents}
    if args.output:
        write_json_atomic(args.output, document)
    if args.json:
        print(json.dumps(document, indent=2), file=out)
    else:
        _print_table(results, plan, out)
    return EXIT_OK


def add_commands(commands: Any) -> None:
    """Add `simulate` to the `placement` parser's subcommands."""
    parser = commands.add_parser(
        "simulate",
        help="run a plan through a simulated recovery (noise, contention, failures)",
        description="Run PLAN through the physics of a recovery: boot times drawn around "
        "the profiles, overloaded pools slowing every boot, start commands returning early, "
        "failed starts, fencing, host failures. Several policies run on the same draws.",
    )
    parser.add_argument("problem", help="problem JSON file (its 'simulation' object, if any)")
    parser.add_argument("plan", help="plan JSON file")
    parser.add_argument(
        "--policy",
        action="append",
        metavar="NAME",
        help="open-loop (default), readiness-gated, readiness-backfill, all-at-once, "
        "serial:SECONDS, batch:N, batch-ready:N, proxmox, pacemaker, priority-groups, "
        "replan (re-solve with CP-SAT at each departure), replan:SOLVER; repeat or "
        "separate with commas",
    )
    parser.add_argument("--runs", type=int, default=1, help="Monte Carlo runs (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    parser.add_argument(
        "--jobs", type=int, default=1, help="worker processes for the runs (same results)"
    )
    parser.add_argument("--sigma", type=float, help="log-spread of boot durations (e.g. 0.3)")
    parser.add_argument("--contention", choices=("share", "thrash"), help="overload model")
    parser.add_argument(
        "--fencing",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fence hosts held over fence-ratio for fence-grace seconds",
    )
    parser.add_argument("--fence-ratio", type=float, help="overload that counts (1.5)")
    parser.add_argument("--fence-grace", type=int, help="seconds of overload before fencing (60)")
    parser.add_argument(
        "--start-failure", type=float, metavar="P", help="chance a start attempt fails"
    )
    parser.add_argument(
        "--start-return", type=int, metavar="S", help="seconds until a start command returns (5)"
    )
    parser.add_argument(
        "--fail",
        action="append",
        metavar="HOST@SECONDS",
        help="a host that fails during the recovery (repeatable)",
    )
    parser.add_argument(
        "--random-failure",
        type=float,
        metavar="P",
        help="chance per run that a host receiving guests fails at a random instant",
    )
    parser.add_argument(
        "--plot",
        metavar="IMAGE",
        help="draw each policy's simulated pool demand on shared axes (.png, .svg, .pdf)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("-o", "--output", help="write the result JSON here (atomically)")
    parser.set_defaults(run=_cmd_simulate)
