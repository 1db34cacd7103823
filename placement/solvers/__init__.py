"""The solver registry: every solver is `solve(problem, options) -> Plan`, found by name.

Solvers never read files, never print and never import the CLI. A solver module
registers itself with `@register(...)`; `_load_builtin_solvers` imports the modules that
ship with the package the first time the registry is consulted, so importing
`placement` stays cheap.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import Protocol

import attrs

from placement.model import Problem
from placement.plan import Plan
from placement.solvers.stop import StopToken as StopToken  # re-exported
from placement.solvers.stop import is_stopped

# Modules that register built-in solvers. A module listed here that does not exist yet
# is skipped, so the registry grows as the package does.
_BUILTIN_MODULES = (
    "placement.solvers.greedy",
    "placement.solvers.vector_packing",
    "placement.solvers.peers.proxmox",
    "placement.solvers.peers.proxmox_rebalance",
    "placement.solvers.peers.pacemaker",
    "placement.solvers.cpsat",
)


@attrs.frozen
class Progress:
    """A progress report during a long solve (for the CLI's stderr line)."""

    elapsed_s: float
    stage: str
    objective: float | None
    bound: float | None
    gap: float | None


@attrs.frozen
class SolveOptions:
    """Options every solver accepts; a solver ignores those that do not apply to it.

    `time_limit_s`: wall-clock limit for the whole solve, in every mode (the solvers
    share it through one `placement.solvers.budget.Budget`). `seed`: random seed.
    `workers`: solver threads. `deterministic`: repeatable results within the same wall
    limit: every decision counts work (CP-SAT's deterministic time, size-based estimates
    for the heuristics), never the clock, and the wall clock is only a backstop; a run it
    cut says so in `statistics.wall_cut` (its plan is verified but may not repeat; a
    longer limit makes it repeatable). `schedule`: the boot-schedule baseline applied after a
    placement baseline (`list`, `all-at-once`, `serial:SECONDS`, `batch:N`).
    `on_progress`: called with `Progress` reports during long solves. `stop`: a
    `StopToken` that ends the solve early from another thread; the solve then returns
    its best verified plan so far. `hint`: a plan to start from (the optimiser takes it
    as its first incumbent when it passes the checker on this problem; re-planning
    passes the plan being carried out).
    """

    time_limit_s: float = 10.0
    seed: int = 0
    workers: int = 2
    deterministic: bool = False
    schedule: str = "list"
    on_progress: Callable[[Progress], None] | None = attrs.field(default=None, eq=False)
    stop: StopToken | None = attrs.field(default=None, eq=False)
    hint: Plan | None = attrs.field(default=None, eq=False)


class SolveFunction(Protocol):
    """What every solver is: a function from a problem and options to a plan. It never
    raises on a problem it cannot fully place; it reports unplaced guests instead."""

    def __call__(self, problem: Problem, options: SolveOptions) -> Plan: ...


@attrs.frozen
class SolverInfo:
    """A registered solver: `kind` is `baseline`, `peer` (re-creates an existing tool) or
    `optimiser`; `summary` is one line for `placement solvers`."""

    name: str
    kind: str
    summary: str
    function: SolveFunction


_REGISTRY: dict[str, SolverInfo] = {}
_loaded = False


def register(name: str, *, kind: str, summary: str) -> Callable[[SolveFunction], SolveFunction]:
    """Decorator: register `function` as solver `name`."""

    def decorate(function: SolveFunction) -> SolveFunction:
        if name in _REGISTRY and _REGISTRY[name].function is not function:
            raise ValueError(f"solver '{name}' is registered twice")
        _REGISTRY[name] = SolverInfo(name=name, kind=kind, summary=summary, function=function)
        return function

    return decorate


def _load_builtin_solvers() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in _BUILTIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            # Only a module that is not there yet is skipped; a broken import inside an
            # existing solver module is a bug and must surface.
            if error.name is None or not module.startswith(error.name):
                raise


def available_solvers() -> list[SolverInfo]:
    """Every registered solver, sorted by kind then name."""
    _load_builtin_solvers()
    order = {"optimiser": 0, "baseline": 1, "peer": 2}
    return sorted(_REGISTRY.values(), key=lambda info: (order.get(info.kind, 9), info.name))


class UnknownSolverError(KeyError):
    """No solver is registered under this name."""


def get_solver(name: str) -> SolverInfo:
    """The registered solver `name` (see `placement solvers`); raises
    `UnknownSolverError` naming the known ones."""
    _load_builtin_solvers()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none registered yet"
        raise UnknownSolverError(f"unknown solver '{name}' (known: {known})") from None


def solve(problem: Problem, solver: str = "cpsat", options: SolveOptions | None = None) -> Plan:
    """Solve `problem` with the solver registered as `solver`. The plan's `runtime_s`
    is the wall-clock seconds of the whole call; a plan cut short by `options.stop`
    says so in `statistics.interrupted`."""
    options = options or SolveOptions()
    started = time.perf_counter()
    plan = get_solver(solver).function(problem, options)
    # One figure for how long solving took, whatever the solver counted itself: the
    # plan file, `placement solve` and `placement show` all report this one.
    plan = attrs.evolve(plan, runtime_s=round(time.perf_counter() - started, 6))
    return mark_interrupted(plan, options)


def mark_interrupted(plan: Plan, options: SolveOptions) -> Plan:
    """`plan` with `statistics.interrupted` true when `options.stop` was stopped."""
    if not is_stopped(options.stop):
        return plan
    return attrs.evolve(plan, statistics=attrs.evolve(plan.statistics, interrupted=True))
