"""placement: decide where each virtual machine runs and when it starts.

The usual flow is JSON -> `load_problem` -> `solve` -> `Plan` -> `check`::

    from placement import load_problem, solve, check
    problem = load_problem(json.load(open("cluster.json")))
    plan = solve(problem, "cpsat")
    report = check(problem, plan)
"""

from placement.check import CheckReport, Violation, check
from placement.codec import dump_plan, dump_problem, load_plan, load_problem
from placement.errors import InputError, InvalidInputError, InvalidPlanError, InvalidProblemError
from placement.model import (
    BootProfile,
    Guest,
    GuestState,
    Host,
    HostBoot,
    HostState,
    Objective,
    Problem,
    Schedule,
)
from placement.plan import Action, Assignment, Plan, StageResult, Status, Unplaced
from placement.solvers import SolveOptions, StopToken, available_solvers, solve
from placement.statistics import SolveStatistics

__all__ = [
    "Action",
    "Assignment",
    "BootProfile",
    "CheckReport",
    "Guest",
    "GuestState",
    "Host",
    "HostBoot",
    "HostState",
    "InputError",
    "InvalidInputError",
    "InvalidPlanError",
    "InvalidProblemError",
    "Objective",
    "Plan",
    "Problem",
    "Schedule",
    "SolveOptions",
    "SolveStatistics",
    "StageResult",
    "Status",
    "StopToken",
    "Unplaced",
    "Violation",
    "available_solvers",
    "check",
    "dump_plan",
    "dump_problem",
    "load_plan",
    "load_problem",
    "solve",
]
