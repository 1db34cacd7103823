"""How the optimiser searches: the solver's parameters, one search that a `StopToken` can
end (every search of the optimiser runs here), progress reports and the stall watch that
hands a stalled search over to the neighbourhoods."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ortools.sat.python import cp_model

from placement.plan import relative_gap
from placement.solvers import Progress, SolveOptions
from placement.solvers.budget import Budget


def run_search(
    solver: cp_model.CpSolver,
    model: cp_model.CpModel,
    budget: Budget,
    callback: cp_model.CpSolverSolutionCallback | None = None,
) -> cp_model.CpSolverStatus:
    """`solver.solve(model, callback)`, ended early when `budget`'s stop token is stopped
    (UNKNOWN, or FEASIBLE with the best solution found); with no time at all once it is
    (so that the solver still has a response to read). The search is charged to
    `budget` (its deterministic time, in deterministic mode)."""
    # CP-SAT's own Ctrl-C handler would end only the current search, leaving the later
    # stages to run; the caller decides what a signal means (the CLI stops the token).
    solver.parameters.catch_sigint_signal = False
    stop = budget.stop
    if stop is None:
        status = solver.solve(model, callback)
    else:
        with stop.searching(solver.stop_search) as started:
            if not started:
                solver.parameters.max_time_in_seconds = 0.0
                solver.parameters.max_deterministic_time = 0.0
            status = solver.solve(model, callback)
    budget.charge_cpsat(solver)
    return status


# Beyond this many (guest, host) pairs a model gets a light presolve (`new_solver`).
LARGE_MODEL_PAIRS = 20_000


class ProgressCallback(cp_model.CpSolverSolutionCallback):
    """Reports each solution CP-SAT finds (when `report` is given) and notes when it last
    improved on its first one (for `StallWatch`)."""

    def __init__(
        self, report: Callable[[Progress], None] | None, stage: str, started: float
    ) -> None:
        super().__init__()
        self._report = report
        self._stage = stage
        self._started = started
        self.solutions = 0
        self.improved_at: float | None = None  # perf_counter() of the latest improvement

    def on_solution_callback(self) -> None:
        self.solutions += 1
        if self.solutions > 1:  # (CP-SAT reports only better solutions)
            self.improved_at = time.perf_counter()
        if self._report is None:
            return
        value = self.objective_value
        bound = self.best_objective_bound
        self._report(
            Progress(
                elapsed_s=time.perf_counter() - self._started,
                stage=self._stage,
                objective=value,
                bound=bound,
                gap=relative_gap(value, bound),
            )
        )


class StallWatch:
    """Stops a CP-SAT search once it has improved on its first solution but not for
    `stall_s`, and not before `earliest_s` after the watch starts, from a thread beside
    the search. A search that never improves runs on: on big heterogeneous models
    CP-SAT may find its first better plan late and then improve fast (two Alibaba
    instants: 6 nodes with the whole stage, 17 when the neighbourhoods took over at 40 %
    of it on one worker)."""

    _POLL_S = 0.05

    def __init__(
        self,
        solver: cp_model.CpSolver,
        callback: ProgressCallback,
        earliest_s: float,
        stall_s: float,
    ) -> None:
        self._solver = solver
        self._callback = callback
        self._earliest = time.perf_counter() + earliest_s
        self._stall_s = stall_s
        self._done = threading.Event()
        self.stopped = False
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.wait(self._POLL_S):
            improved_at = self._callback.improved_at
            now = time.perf_counter()
            stalled = improved_at is not None and now - improved_at >= self._stall_s
            if stalled and now >= self._earliest:
                self.stopped = True
                self._solver.stop_search()
                return

    def finish(self) -> None:
        """End the watch (call once the search has returned)."""
        self._done.set()
        self._thread.join()


TWO_WORKERS = 2
TWO_WORKER_SEARCHES = ("pseudo_costs", "default_lp")  # the first that applies runs


def new_solver(
    options: SolveOptions, budget: Budget, seconds: float, large: bool
) -> cp_model.CpSolver:
    """A solver with `options`' parameters and a limit of `seconds` of `budget`."""
    solver = cp_model.CpSolver()
    parameters = solver.parameters
    if large:
        # On 1,000 x 100 pairs, full presolve (probing, symmetry, overlap detection) took
        # the whole budget before the search began; a light presolve starts from the hint.
        parameters.symmetry_level = 0
        parameters.cp_model_probing_level = 0
        parameters.max_presolve_iterations = 1
        parameters.find_big_linear_overlap = False
    parameters.num_workers = max(1, options.workers)
    parameters.random_seed = options.seed
    if parameters.num_workers == TWO_WORKERS and not options.deterministic:
        # Two workers run one full search beside the interleaved neighbourhoods; CP-SAT's
        # default one (`default_lp`) bounds recovery stages poorly. Pseudo-cost branching
        # on the LP proves much more on failovers at equal plan values (S-0..S-9 at 10 s:
        # recovery gaps 16-33 % -> 11-14 %, S-0's balance proven) and is level on
        # PSPLIB's hard j60 sets and vector packing (docs/optimiser.md). CP-SAT drops it
        # when presolve leaves no objective: `default_lp` then stays the complete search.
        # (Deterministic runs interleave CP-SAT's eight full searches: left alone.)
        parameters.subsolvers.extend(TWO_WORKER_SEARCHES)
    if options.deterministic:
        # Deterministic time and interleaved workers make runs repeatable.
        parameters.interleave_search = True
    budget.limit_cpsat(parameters, seconds)
    return solver
