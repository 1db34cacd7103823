"""What every `placement` command module shares: exit codes, input and usage errors,
loading a problem, the solving options and the exit code of a checked plan.

`placement.cli` and the command modules it loads (`COMMAND_MODULES`: each has
`add_commands(commands)`) import these from here, never from each other, so the CLI's
modules form no import circle. `placement.cli` re-exports them under their old names.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from placement.codec import load_problem_file
from placement.errors import InvalidInputError
from placement.model import Problem
from placement.plan import Plan, Status
from placement.progress import ProgressPrinter

if TYPE_CHECKING:
    from placement.solvers import SolveOptions

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_UNPLACED = 3

# What `solve` says on stderr when the wall-clock limit cut a deterministic search (the
# plan's `statistics.wall_cut`).
WALL_CUT_NOTE = (
    "placement: the time limit (wall clock) cut the deterministic search on this machine: "
    "the plan is valid but may not repeat; a longer --time-limit makes it repeatable"
)


class UsageError(Exception):
    """A bad option value found after parsing (reported like a parse error, exit 2)."""


class SourcedError(Exception):
    """An input error in a given file (the plan, when the problem was fine)."""

    def __init__(self, source: str, error: InvalidInputError) -> None:
        super().__init__(str(error))
        self.source = source
        self.error = error


def load_problem(path: str) -> Problem:
    """Load a problem file; errors propagate as `InvalidInputError` (exit 2)."""
    return load_problem_file(path)


def plan_exit_code(report: Any, plan: Plan | None = None) -> int:
    """The exit code of a checked plan: 1 when it breaks a rule (or, given the solver's
    `plan`, when the solver found none), else 3 when some guest has no host, else 0."""
    if not report.ok:
        return EXIT_FAILED
    if plan is not None and plan.status not in (Status.OPTIMAL, Status.FEASIBLE):
        return EXIT_FAILED
    return EXIT_UNPLACED if report.metrics["unplaced"] else EXIT_OK


def add_solve_options(parser: argparse.ArgumentParser) -> None:
    """The options every solving command takes (read back by `solve_options`)."""
    parser.add_argument("--solver", default="cpsat", help="solver name (see `placement solvers`)")
    parser.add_argument(
        "--schedule",
        default="list",
        help="boot schedule after a baseline placement: list, all-at-once, serial:S, batch:N",
    )
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--workers", type=int, default=2, help="solver threads (default 2)")
    parser.add_argument(
        "--deterministic",
        action="store_true",
        help="repeatable results within the same wall-clock limit (the plan says when the "
        "limit cut the search: then it may not repeat)",
    )
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument(
        "--progress",
        action="store_true",
        default=None,
        help="progress lines on stderr: stage, best value, bound, elapsed time, at least "
        "every 5 s (default: on when stderr is a terminal)",
    )
    shown.add_argument("--quiet", dest="progress", action="store_false", help="no progress lines")


def solve_options(args: argparse.Namespace, *, progress: bool = True) -> SolveOptions:
    """The options of `add_solve_options`, checked before any solving starts (a bad value
    is a `UsageError`, exit 2), with a `StopToken` for Ctrl-C and, unless `progress` is
    false, a `ProgressPrinter` on stderr per `--progress` / `--quiet` (default: whether
    stderr is a terminal)."""
    from placement.solvers import SolveOptions, StopToken, UnknownSolverError, get_solver

    if args.time_limit <= 0:
        raise UsageError(f"--time-limit must be > 0, got {args.time_limit}")
    if args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    try:
        get_solver(args.solver)
    except UnknownSolverError as error:
        raise UsageError(str(error.args[0])) from error
    if args.schedule != "list":
        # Validate the spec before solving, so a typo fails fast with exit 2.
        from placement.solvers.schedule import parse_schedule

        try:
            parse_schedule(args.schedule)
        except ValueError as error:
            raise UsageError(f"--schedule: {error}") from error
    return SolveOptions(
        time_limit_s=args.time_limit,
        seed=args.seed,
        workers=args.workers,
        deterministic=args.deterministic,
        schedule=args.schedule,
        on_progress=_progress(args) if progress else None,
        stop=StopToken(),  # Ctrl-C stops it (`placement.interrupt`)
    )


def check_output_path(path: str | None, option: str = "-o") -> None:
    """Refuse an output path that cannot be written, before any solving starts."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{option} {path}: is a directory")
    if not (target.parent if str(target.parent) else Path(".")).is_dir():
        raise UsageError(f"{option} {path}: no such directory: {target.parent}")


def _progress(args: argparse.Namespace) -> ProgressPrinter | None:
    terminal = sys.stderr.isatty()
    chosen = getattr(args, "progress", None)
    wanted = terminal if chosen is None else chosen
    return ProgressPrinter(sys.stderr, every_report=terminal) if wanted else None
