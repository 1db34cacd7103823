"""The full model of one problem, optimised one objective after another.

The CP-SAT primer's "exchangeable objective" pattern: one object owns the model, hints
every search with the best solution found so far, and holds a finished objective at its
value before the next one is set, so that the stage loop (`stages`) and its strategies
share no model internals.
"""

from __future__ import annotations

from ortools.sat.python import cp_model

from placement.model import Objective
from placement.solvers import SolveOptions
from placement.solvers.budget import Budget
from placement.solvers.cpsat.model import (
    Solution,
    add_hint,
    build_model,
    hold,
    solution_of_solver,
)
from placement.solvers.cpsat.objectives import stage_expression
from placement.solvers.cpsat.search import LARGE_MODEL_PAIRS, new_solver, run_search
from placement.solvers.cpsat.variables import Variables
from placement.solvers.cpsat.view import ProblemView


class StageSolver:
    """The model of `view` (every rule family) with `options`' search parameters, and the
    best solution so far (`incumbent`, None before the first): the hint of each search."""

    def __init__(
        self, view: ProblemView, options: SolveOptions, incumbent: Solution | None
    ) -> None:
        self.view = view
        self.options = options
        self.variables: Variables = build_model(view)
        self.incumbent = incumbent
        # The finished stages and the values they are held at, in model units (balance
        # in steps), for the models the strategies build beside this one.
        self.holds: list[tuple[Objective, int]] = []
        # A large model gets a light presolve, and a search that ends with no solution of
        # its own on one is a stall (the neighbourhoods take over).
        self.large = view.num_pairs > LARGE_MODEL_PAIRS

    @property
    def model(self) -> cp_model.CpModel:
        return self.variables.model

    def expression(self, objective: Objective) -> cp_model.LinearExprT:
        """`objective`'s stage expression on this model (`objectives.stage_expression`)."""
        return stage_expression(objective, self.view, self.variables)

    def optimise(self, objective: Objective, expression: cp_model.LinearExprT) -> None:
        """Make `expression` the objective, in `objective`'s sense, and hint the search
        with the incumbent (when there is one)."""
        if objective.maximise:
            self.model.maximize(expression)
        else:
            self.model.minimize(expression)
        if self.incumbent is not None:
            self.hint(self.incumbent)

    def hint(self, solution: Solution) -> None:
        """Start the next search from `solution` (replacing any earlier hint)."""
        add_hint(self.view, self.variables, solution)

    def new_search(self, budget: Budget, seconds: float | None = None) -> cp_model.CpSolver:
        """A solver with the options' parameters and a limit of `seconds` of `budget`
        (None: all that is left of it)."""
        seconds = budget.remaining() if seconds is None else seconds
        return new_solver(self.options, budget, seconds, large=self.large)

    def run(
        self,
        solver: cp_model.CpSolver,
        budget: Budget,
        callback: cp_model.CpSolverSolutionCallback | None = None,
    ) -> cp_model.CpSolverStatus:
        """Search the model with `solver`, charged to `budget` (ended early by its stop
        token)."""
        return run_search(solver, self.model, budget, callback)

    def search(
        self, budget: Budget, seconds: float | None = None
    ) -> tuple[cp_model.CpSolver, cp_model.CpSolverStatus]:
        """`run` with a `new_search` of `seconds` of `budget` (None: all of it): the
        solver and the status."""
        solver = self.new_search(budget, seconds)
        return solver, self.run(solver, budget)

    def read(self, solver: cp_model.CpSolver) -> Solution:
        """The solution `solver` found on this model."""
        return solution_of_solver(self.view, self.variables, solver)

    def hold(self, objective: Objective, expression: cp_model.LinearExprT, value: int) -> None:
        """Keep `objective` (its `expression`) at `value` or better from now on."""
        hold(self.variables, objective, expression, value)
        self.holds.append((objective, value))
