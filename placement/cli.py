"""The `placement` command line. It owns output, progress and exit codes.

Exit codes, the same for every command that computes or reads a plan (so that an HA
tool can branch on them): 0 a valid plan that places every guest; 3 a valid plan that
leaves some guests unplaced (each with its reason); 1 no plan, or a plan that violates a
rule; 2 invalid input or usage (one line per problem on stderr, naming the file and the
JSON path, never a traceback); 130 interrupted (Ctrl-C: the best plan so far is still
checked and written, see `placement.interrupt`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

# What the command modules share, re-exported here under the names it always had.
from placement.cli_common import EXIT_FAILED as EXIT_FAILED
from placement.cli_common import EXIT_INVALID as EXIT_INVALID
from placement.cli_common import EXIT_OK as EXIT_OK
from placement.cli_common import EXIT_UNPLACED as EXIT_UNPLACED
from placement.cli_common import WALL_CUT_NOTE
from placement.cli_common import SourcedError as SourcedError
from placement.cli_common import UsageError as UsageError
from placement.cli_common import add_solve_options as add_solve_options
from placement.cli_common import check_output_path as check_output_path
from placement.cli_common import load_problem as load_problem
from placement.cli_common import plan_exit_code as plan_exit_code
from placement.cli_common import solve_options as solve_options
from placement.codec import (
    dump_plan,
    load_plan_file,
    write_json_atomic,
)
from placement.diagnostics import diagnose
from placement.errors import InvalidInputError
from placement.interrupt import (
    EXIT_INTERRUPTED,
    call_stoppably,
    interrupted_note,
    sigint_stops,
)
from placement.limits import printable
from placement.model import Problem
from placement.plan import Plan, Status
from placement.progress import reporting

# Modules that add subcommands of their own (see `build_parser`). They import what they
# share with this module from `placement.cli_common`, never this module (which loads them).
COMMAND_MODULES: tuple[str, ...] = (
    "placement.ops_cli",
    "placement.adapters.cli",
    "placement.sim_cli",
    "placement.survey_cli",
    "placement.run_cli",
)


def _print_input_errors(source: str, error: InvalidInputError, stream: TextIO) -> None:
    for item in error.errors:
        where = source if not item.path or item.path == source else f"{source}: {item.path}"
        print(printable(f"{where}: {item.message}"), file=stream)


# --- validate ------------------------------------------------------------------------------


def _cmd_validate(args: argparse.Namespace, out: TextIO) -> int:
    problem = load_problem(args.problem)
    diagnostics = diagnose(problem)
    if args.json:
        document = {
            "valid": True,
            "hosts": len(problem.hosts),
            "guests": len(problem.guests),
            "diagnostics": [
                {"rule": d.rule, "guests": list(d.guests), "message": d.message}
                for d in diagnostics
            ],
        }
        print(json.dumps(document, indent=2), file=out)
        return EXIT_OK
    online = sum(1 for host in problem.hosts if host.online)
    print(
        f"{args.problem}: valid: {len(problem.hosts)} hosts ({online} online), "
        f"{len(problem.guests)} guests, {len(problem.boot_pools)} boot pools",
        file=out,
    )
    for diagnostic in diagnostics:
        print(f"warning: {diagnostic.rule}: {diagnostic.message}", file=out)
    return EXIT_OK


# --- check ---------------------------------------------------------------------------------


def _cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    from placement.check import check, report_to_dict

    problem = load_problem(args.problem)
    try:
        plan = load_plan_file(args.plan)
        report = check(problem, plan)
    except InvalidInputError as error:
        raise SourcedError(args.plan, error) from error
    if args.json:
        print(json.dumps(report_to_dict(report), indent=2), file=out)
    else:
        _print_report(report, out)
    return plan_exit_code(report)


def _print_report(report: Any, out: TextIO, grouped: bool = False) -> None:
    """The checker's verdict and figures. `grouped`: the violations by rule with counts and
    the first few messages of each (`solve`), not every one (`check`)."""
    if grouped:
        from placement.show import render_violations

        for line in render_violations(report):
            print(line, file=out)
    elif report.ok:
        print("valid: the plan respects every rule", file=out)
    else:
        print(f"{len(report.violations)} violation(s):", file=out)
        for violation in report.violations:
            print(f"  {violation.rule}: {violation.message}", file=out)
    metrics = report.metrics
    objectives = metrics.get("objectives", {})
    if objectives:
        text = ", ".join(f"{name} {_number(value)}" for name, value in objectives.items())
        print(f"objectives: {text}", file=out)
    for pool, figures in metrics.get("pools", {}).items():
        at = figures["peak_at_s"]  # (None: nothing loads the pool; as `show` prints it)
        when = f" at t={at} s" if at is not None else ""
        print(f"pool {pool}: peak {figures['peak']} of {figures['limit']}{when}", file=out)


def _number(value: Any) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.4g}"
    return str(int(value)) if isinstance(value, float) else str(value)


# --- schema and solvers --------------------------------------------------------------------


def _cmd_schema(args: argparse.Namespace, out: TextIO) -> int:
    from placement.schema import PLAN_SCHEMA, PROBLEM_SCHEMA

    print(json.dumps(PLAN_SCHEMA if args.plan else PROBLEM_SCHEMA, indent=2), file=out)
    return EXIT_OK


def _cmd_solvers(args: argparse.Namespace, out: TextIO) -> int:
    from placement.solvers import available_solvers

    solvers = available_solvers()
    if not solvers:
        print("no solvers are registered yet", file=out)
        return EXIT_OK
    width = max(len(info.name) for info in solvers)
    for info in solvers:
        print(f"{info.name:<{width}}  {info.kind:<9}  {info.summary}", file=out)
    return EXIT_OK


# --- solve ---------------------------------------------------------------------------------


def _cmd_solve(args: argparse.Namespace, out: TextIO) -> int:
    from placement.check import check
    from placement.solvers import solve

    options = solve_options(args)
    check_output_path(args.output)
    problem = load_problem(args.problem)
    solving = f"solving with {args.solver}, limit {args.time_limit:g} s"
    # (A second Ctrl-C after the solve, while writing, is a KeyboardInterrupt: exit 130.)
    with sigint_stops(options.stop), reporting(options.on_progress, solving):
        started = time.perf_counter()
        plan = call_stoppably(lambda: solve(problem, args.solver, options))
    has_plan = plan.status in (Status.OPTIMAL, Status.FEASIBLE)
    stop = options.stop if options.stop is not None and options.stop.stopped else None
    if stop is not None and not has_plan:
        print(interrupted_note(stop, started, proven=False, has_plan=False), file=sys.stderr)
        return EXIT_INTERRUPTED
    report = check(problem, plan)
    if args.output:
        write_json_atomic(args.output, dump_plan(plan))
    if args.json:
        print(json.dumps(dump_plan(plan), indent=2), file=out)
    else:
        _print_plan_summary(problem, plan, out)
        _print_report(report, out, grouped=True)
        _print_timeline_start(problem, plan, args, out)
        if args.output:
            print(f"plan written to {args.output}", file=out)
    if plan.statistics.wall_cut:
        print(WALL_CUT_NOTE, file=sys.stderr)
    if stop is not None:
        proven = plan.status is Status.OPTIMAL
        print(interrupted_note(stop, started, proven=proven, has_plan=True), file=sys.stderr)
        return EXIT_INTERRUPTED
    return plan_exit_code(report, plan)


# How many timed actions `solve` prints; `placement show` prints them all.
_TIMELINE_SHOWN = 8


def _print_timeline_start(
    problem: Problem, plan: Plan, args: argparse.Namespace, out: TextIO
) -> None:
    """Who goes where, and when: the first actions of the timeline, and how to see all."""
    from placement.show import render_timeline, timed_steps

    total = len(timed_steps(problem, plan))
    if total == 0:
        return
    print("", file=out)
    for line in render_timeline(problem, plan, first=_TIMELINE_SHOWN):
        print(line, file=out)
    if args.output:
        command = f"placement show {args.problem} {args.output}"
    else:
        command = f"placement solve {args.problem} ... -o plan.json, then placement show"
        command += f" {args.problem} plan.json"
    print(f"every step, as a runbook: {command}", file=out)


def _print_plan_summary(problem: Problem, plan: Plan, out: TextIO) -> None:
    from placement.show import search_line, summary_line

    print(summary_line(problem, plan), file=out)
    for stage in plan.stages:
        line = f"  {stage.name:<12} {_number(stage.value)}"
        if stage.bound is not None:
            line += f"  bound {_number(stage.bound)}"
        if stage.gap is not None:
            line += f"  gap {stage.gap:.2%}"
        print(line, file=out)
    searched = search_line(plan)
    if searched is not None:
        print(f"  {searched}", file=out)
    for unplaced in plan.unplaced:
        print(f"  unplaced {unplaced.guest}: {unplaced.reason}", file=out)


# --- entry point ---------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # exit 2 with one line, as for bad input
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_INVALID)


def build_parser() -> argparse.ArgumentParser:
    """The `placement` parser: the core subcommands, then those of `COMMAND_MODULES`."""
    parser = _Parser(
        prog="placement",
        description="Decide where each virtual machine runs and when it starts.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    validate = commands.add_parser("validate", help="check a problem file; list diagnostics")
    validate.add_argument("problem", help="problem JSON file")
    validate.add_argument("--json", action="store_true", help="machine-readable output")
    validate.set_defaults(run=_cmd_validate)

    check = commands.add_parser("check", help="verify a plan against its problem")
    check.add_argument("problem", help="problem JSON file")
    check.add_argument("plan", help="plan JSON file")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(run=_cmd_check)

    schema = commands.add_parser("schema", help="print the JSON Schema of the problem format")
    schema.add_argument("--plan", action="store_true", help="the plan format instead")
    schema.set_defaults(run=_cmd_schema)

    solvers = commands.add_parser("solvers", help="list the registered solvers")
    solvers.set_defaults(run=_cmd_solvers)

    solve = commands.add_parser("solve", help="compute a plan")
    solve.add_argument("problem", help="problem JSON file")
    add_solve_options(solve)
    solve.add_argument("-o", "--output", help="write the plan JSON here (atomically)")
    solve.add_argument("--json", action="store_true", help="print the plan JSON to stdout")
    solve.set_defaults(run=_cmd_solve)

    # Subcommands that live with their concern (HA operations, adapters): each module has
    # `add_commands(commands)`, adding parsers whose `run(args, out) -> int` is set as here.
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code) if isinstance(exit_.code, int) else EXIT_INVALID
    try:
        code: int = args.run(args, sys.stdout)
    except SourcedError as error:
        _print_input_errors(error.source, error.error, sys.stderr)
        return EXIT_INVALID
    except InvalidInputError as error:
        _print_input_errors(getattr(args, "problem", "input"), error, sys.stderr)
        return EXIT_INVALID
    except UsageError as error:
        print(printable(f"placement: error: {error}"), file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        # Ctrl-C outside a solve (loading, checking, writing): files are written whole.
        print("placement: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`placement solve ... | head`): nothing left to say.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silences the exit flush
        return EXIT_OK
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        print(f"placement: error: {where}{error.strerror or error}", file=sys.stderr)
        return EXIT_INVALID
    return code


if __name__ == "__main__":
    raise SystemExit(main())
