"""placement: decide where each virtual machine runs and when it starts.

The usual flow is JSON -> `load_problem` -> `solve` -> `Plan` -> `check`::

    from placement import load_problem, solve, check
    problem = load_problem(json.load(open("cluster.json")))
    plan = solve(problem, "cpsat")
    report = check(problem, plan)
"""

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
from placement.solvers import SolveOptions, available_solvers, solve

# check and codec are added to the public names as they land.

__all__ = [
    "Action",
    "Assignment",
    "BootProfile",
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
    "StageResult",
    "Status",
    "Unplaced",
    "available_solvers",
    "solve",
]
