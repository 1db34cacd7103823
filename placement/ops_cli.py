"""Subcommands for HA operations: failover, evacuate, rebalance, coldstart, show and plot.

Each scenario command reads a cluster state (a problem file whose guests carry their
current host and state), builds the scenario (`placement.operations`), solves it, prints
the plan as a person reads it, and can write the plan (`-o`) and the scenario problem
(`--problem-out`) so that `placement check SCENARIO PLAN` verifies it independently.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from placement.cli_common import (
    EXIT_OK,
    SourcedError,
    UsageError,
    add_solve_options,
    check_output_path,
    load_problem,
    plan_exit_code,
    solve_options,
)
from placement.codec import dump_plan, dump_problem, load_plan_file, write_json_atomic
from placement.errors import InvalidInputError
from placement.interrupt import EXIT_INTERRUPTED, call_stoppably, interrupted_note, sigint_stops
from placement.model import Problem
from placement.plan import Plan, Status
from placement.progress import reporting


def _hosts(values: list[str] | None) -> list[str]:
    """Host names from repeated and comma-separated options (`--failed a,b --failed c`)."""
    return [name.strip() for value in values or [] for name in value.split(",") if name.strip()]


def _objective(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [item.strip() for item in text.split(",") if item.strip()]


def _run_scenario(
    args: argparse.Namespace,
    out: TextIO,
    build: Callable[[Problem], Problem],
    min_improvement: float | None = None,
) -> int:
    from placement.operations import ScenarioError, run_scenario

    state = load_problem(args.state)
    options = solve_options(args)
    check_output_path(args.output)
    check_output_path(args.problem_out, "--problem-out")
    try:
        scenario = build(state)
        solving = f"{args.command} with {args.solver}, limit {args.time_limit:g} s"
        with sigint_stops(options.stop), reporting(options.on_progress, solving):
            started = time.perf_counter()
            result = call_stoppably(
                lambda: run_scenario(
                    scenario, args.solver, options, min_improvement=min_improvement
                )
            )
    except ScenarioError as error:
        raise UsageError(str(error)) from error
    stop = options.stop if options.stop is not None and options.stop.stopped else None
    has_plan = result.plan.status in (Status.OPTIMAL, Status.FEASIBLE)
    if stop is not None and not has_plan:
        print(interrupted_note(stop, started, proven=False, has_plan=False), file=sys.stderr)
        return EXIT_INTERRUPTED
    code = _write_scenario(args, out, state, scenario, result)
    if stop is not None:
        proven = result.plan.status is Status.OPTIMAL
        print(interrupted_note(stop, started, proven=proven, has_plan=True), file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


def _write_scenario(
    args: argparse.Namespace, out: TextIO, state: Problem, scenario: Problem, result: Any
) -> int:
    from placement.operations import scenario_notes
    from placement.show import render_plan

    if args.problem_out:
        write_json_atomic(args.problem_out, dump_problem(scenario))
    if args.output:
        write_json_atomic(args.output, dump_plan(result.plan))
    if args.json:
        print(json.dumps(dump_plan(result.plan), indent=2), file=out)
    else:
        for note in scenario_notes(state, scenario):
            print(f"note: {note}", file=out)
        print(render_plan(scenario, result.plan, result.report), file=out, end="")
        if args.problem_out:
            print(f"scenario problem written to {args.problem_out}", file=out)
        if args.output:
            print(f"plan written to {args.output}", file=out)
            if args.problem_out:
                print(f"verify it: placement check {args.problem_out} {args.output}", file=out)
            else:
                print("(the plan is for the scenario: add --problem-out to check it)", file=out)
    return plan_exit_code(result.report, result.plan)


def _cmd_failover(args: argparse.Namespace, out: TextIO) -> int:
    from placement.operations import failover

    failed = _hosts(args.failed)
    objective = _objective(args.objective)
    return _run_scenario(args, out, lambda s: failover(s, failed, objective=objective))


def _cmd_evacuate(args: argparse.Namespace, out: TextIO) -> int:
    from placement.operations import evacuate

    hosts = _hosts(args.host)
    objective = _objective(args.objective)
    return _run_scenario(args, out, lambda s: evacuate(s, hosts, objective=objective))


def _cmd_rebalance(args: argparse.Namespace, out: TextIO) -> int:
    from placement.operations import rebalance

    if args.survive is not None:  # an N+1-safe placement instead (placement.survive)
        from placement.survey_cli import run_survive

        return run_survive(args, out)
    objective = _objective(args.objective)
    threshold = None if args.min_improvement <= 0 else args.min_improvement
    if args.min_improvement > 1:
        raise UsageError(f"--min-improvement must be in [0, 1], got {args.min_improvement}")
    return _run_scenario(
        args,
        out,
        lambda s: rebalance(s, max_moves=args.max_moves, objective=objective),
        min_improvement=threshold,
    )


def _cmd_coldstart(args: argparse.Namespace, out: TextIO) -> int:
    from placement.operations import coldstart

    objective = _objective(args.objective)
    return _run_scenario(args, out, lambda s: coldstart(s, objective=objective))


def _load_pair(args: argparse.Namespace) -> tuple[Problem, Plan]:
    from placement.check import check

    problem = load_problem(args.problem)
    try:
        plan = load_plan_file(args.plan)
        check(problem, plan)  # names the plan's unknown guests and hosts, as `check` does
    except InvalidInputError as error:
        raise SourcedError(args.plan, error) from error
    return problem, plan


def _cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    from placement.check import check
    from placement.show import render_plan

    problem, plan = _load_pair(args)
    report = check(problem, plan)
    print(render_plan(problem, plan, report), file=out, end="")
    return plan_exit_code(report)


def _plot_path(args: argparse.Namespace) -> str:
    """`-o`, or beside the (first) plan: PLAN.png, or PLAN-compare.png for several."""
    if args.output:
        return str(args.output)
    first = Path(args.plans[0])
    suffix = ".png" if len(args.plans) == 1 else "-compare.png"
    return str(first.with_name(first.stem + suffix))


def _plot_labels(paths: list[str], plans: list[Plan]) -> list[str]:
    """Each plan's name in a comparison: its file's stem, with the solver when it differs
    (the whole path when two files share a stem)."""
    stems = [Path(path).stem for path in paths]
    names = [
        path if stems.count(stem) > 1 else stem for path, stem in zip(paths, stems, strict=True)
    ]
    return [
        name if plan.solver in (name, Path(name).stem) else f"{name} ({plan.solver})"
        for name, plan in zip(names, plans, strict=True)
    ]


def _cmd_plot(args: argparse.Namespace, out: TextIO) -> int:
    from placement.check import check
    from placement.plot import PlotUnavailableError, image_format_of, write_compare, write_plot

    path = _plot_path(args)
    try:
        image_format_of(path)
    except ValueError as error:
        raise UsageError(str(error)) from error
    check_output_path(path)
    problem = load_problem(args.problem)
    plans = []
    for plan_path in args.plans:
        try:
            plan = load_plan_file(plan_path)
            check(problem, plan)  # names the plan's unknown guests and hosts, as `check` does
        except InvalidInputError as error:
            raise SourcedError(plan_path, error) from error
        plans.append(plan)
    simulations = None
    if args.simulate:
        from placement.simulate import simulate

        try:
            simulations = [
                simulate(problem, plan, args.simulate, runs=args.runs, sigma=args.sigma, trace=True)
                for plan in plans
            ]
        except ValueError as error:
            raise UsageError(str(error)) from error
    try:
        if len(plans) == 1:
            write_plot(problem, plans[0], path, simulations[0] if simulations else None)
        else:
            labels = _plot_labels(args.plans, plans)
            write_compare(problem, plans, path, labels, simulations)
    except PlotUnavailableError as error:
        raise UsageError(str(error)) from error
    print(f"plot written to {path}", file=out)
    return EXIT_OK


def _scenario_parser(
    commands: Any, name: str, help_text: str, run: Callable[[argparse.Namespace, TextIO], int]
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(name, help=help_text)
    parser.add_argument("state", help="cluster state: a problem file with current hosts and states")
    add_solve_options(parser)
    parser.add_argument(
        "--objective",
        help="objective stages in order, comma-separated (default: the scenario's own)",
    )
    parser.add_argument("-o", "--output", help="write the plan JSON here (atomically)")
    parser.add_argument(
        "--problem-out", help="write the scenario problem JSON here, to re-check the plan"
    )
    parser.add_argument("--json", action="store_true", help="print the plan JSON to stdout")
    parser.set_defaults(run=run)
    return parser


def add_commands(commands: Any) -> None:
    """Add the operations subcommands to the `placement` parser's subcommands."""
    failover = _scenario_parser(
        commands, "failover", "hosts died: restart their guests elsewhere", _cmd_failover
    )
    failover.add_argument(
        "--failed",
        action="append",
        required=True,
        metavar="HOST",
        help="a failed host (repeat, or separate with commas)",
    )
    evacuate = _scenario_parser(
        commands,
        "evacuate",
        "put hosts in maintenance: live-migrate their guests away",
        _cmd_evacuate,
    )
    evacuate.add_argument(
        "--host",
        action="append",
        required=True,
        metavar="HOST",
        help="a host to empty (repeat, or separate with commas)",
    )
    rebalance = _scenario_parser(
        commands, "rebalance", "even out the load with few live migrations", _cmd_rebalance
    )
    rebalance.add_argument(
        "--max-moves",
        type=int,
        metavar="K",
        help="at most K migrations (default: the state's migration.max_moves, else no limit)",
    )
    rebalance.add_argument(
        "--min-improvement",
        type=float,
        default=0.1,
        metavar="F",
        help="keep the cluster as it is unless the plan lowers Proxmox's imbalance by this "
        "fraction (default 0.1, as Proxmox; 0 turns hysteresis off)",
    )
    from placement.survey_cli import add_survive_options

    add_survive_options(rebalance)
    _scenario_parser(
        commands, "coldstart", "whole-cluster recovery: start every guest", _cmd_coldstart
    )

    show = commands.add_parser("show", help="print a plan: timeline, hosts, unplaced, objectives")
    show.add_argument("problem", help="problem JSON file (for a scenario: its --problem-out)")
    show.add_argument("plan", help="plan JSON file")
    show.set_defaults(run=_cmd_show)

    plot = commands.add_parser(
        "plot",
        help="draw a plan (Gantt per host, boot-pool and boot-CPU load, utilisation), or "
        "several plans on the same axes",
        description="Draw PLAN checked against PROBLEM: the title carries the checker's "
        "verdict, load above a limit is shaded red, the time panels share one axis. With "
        "several plans, draw them on the same axes (guests up over time, each pool's load), "
        "one colour and line style each, the verdict in each legend entry.",
    )
    plot.add_argument("problem", help="problem JSON file (for a scenario: its --problem-out)")
    plot.add_argument("plans", nargs="+", metavar="plan", help="plan JSON file(s)")
    plot.add_argument(
        "-o",
        "--output",
        help="image file: .png, .svg or .pdf (default: PLAN.png beside the plan, or "
        "PLAN-compare.png beside the first of several)",
    )
    plot.add_argument(
        "--simulate",
        metavar="POLICY",
        help="add the pool demand simulated under POLICY (e.g. readiness-gated) beside the "
        "plan, or each plan's simulated median to a comparison",
    )
    plot.add_argument("--runs", type=int, default=40, help="simulated runs (40)")
    plot.add_argument("--sigma", type=float, default=0.3, help="boot-time noise (0.3)")
    plot.set_defaults(run=_cmd_plot)
