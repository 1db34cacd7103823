"""One CP-SAT search that a `StopToken` can end (every search of the optimiser runs here)."""

from __future__ import annotations

from ortools.sat.python import cp_model

from placement.solvers.stop import StopToken


def run_search(
    solver: cp_model.CpSolver,
    model: cp_model.CpModel,
    stop: StopToken | None,
    callback: cp_model.CpSolverSolutionCallback | None = None,
) -> cp_model.CpSolverStatus:
    """`solver.solve(model, callback)`, ended early when `stop` is stopped (UNKNOWN, or
    FEASIBLE with the best solution found); with no time at all once it is (so that the
    solver still has a response to read)."""
    # CP-SAT's own Ctrl-C handler would end only the current search, leaving the later
    # stages to run; the caller decides what a signal means (the CLI stops the token).
    solver.parameters.catch_sigint_signal = False
    if stop is None:
        return solver.solve(model, callback)
    with stop.searching(solver.stop_search) as started:
        if not started:
            solver.parameters.max_time_in_seconds = 0.0
            solver.parameters.max_deterministic_time = 0.0
        return solver.solve(model, callback)
