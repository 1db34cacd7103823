"""Plain CP-SAT models of the public benchmark problems: the yardstick for the optimiser.

Two benchmark peers, selectable with `python -m bench run --solvers cpsat,plain-rcpsp`:

- `plain-rcpsp`: the textbook RCPSP model of a PSPLIB problem (`bench.psplib`): one
  fixed-size interval per boot, one cumulative per boot pool, `after` as precedences,
  minimise the makespan.
- `plain-vbp`: the textbook vector bin packing model of a `.vbp` problem (`bench.vbp`):
  `x[i, b]`, `y[b]`, one capacity row per bin and dimension, `y[b] >= y[b + 1]`, a
  first-fit-decreasing hint, minimise the bins used.

They take the same `Problem` the bench gives `cpsat`, with the same time limit, worker
count and seed, and return a `Plan` of that problem (which the runner checks like any
other); a problem of another shape raises `ValueError` (the row is an error). They are
bench peers, not library solvers: they live in their own table (`PEERS`), not in the
library's registry, so the optimiser's seed portfolio never runs them.
"""

from __future__ import annotations

from collections.abc import Sequence

from ortools.sat.python import cp_model

from placement.check import check
from placement.model import Objective, Problem
from placement.plan import Action, Assignment, Plan, StageResult, Status
from placement.solvers import SolveFunction, SolveOptions, SolverInfo
from placement.statistics import SolveStatistics

# The kind of these peers in result rows: like the optimiser, they decide where and when.
KIND = "plain"


def _solver(options: SolveOptions) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = max(1, options.workers)
    solver.parameters.random_seed = options.seed
    solver.parameters.max_time_in_seconds = max(options.time_limit_s, 0.01)
    solver.parameters.catch_sigint_signal = False
    return solver


def _plan(
    problem: Problem,
    name: str,
    solver: cp_model.CpSolver,
    status: cp_model.CpSolverStatus,
    assignments: Sequence[Assignment],
) -> Plan:
    """The plan of a solved model: stage values are the checker's, the last stage's bound
    CP-SAT's."""
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        raise ValueError(f"{name}: CP-SAT found no solution ({solver.status_name(status)})")
    plan = Plan(
        status=Status.OPTIMAL if status == cp_model.OPTIMAL else Status.FEASIBLE,
        solver=name,
        runtime_s=solver.wall_time,
        assignments=assignments,
    )
    values = check(problem, plan).metrics["objectives"]
    stages = [StageResult(o.value, float(values[o.value])) for o in problem.objective[:-1]]
    last = problem.objective[-1].value
    bound = float(round(solver.best_objective_bound))
    stages.append(StageResult(last, float(values[last]), bound, None))
    return Plan(
        status=plan.status,
        solver=name,
        runtime_s=solver.wall_time,
        assignments=assignments,
        stages=stages,
        statistics=SolveStatistics(extra={"cpsat_status": solver.status_name(status)}),
    )


def solve_rcpsp(problem: Problem, options: SolveOptions) -> Plan:
    """The plain RCPSP model: every guest boots on the one host; minimise the makespan."""
    if len(problem.hosts) != 1 or problem.objective != (Objective.PLACED, Objective.MAKESPAN):
        raise ValueError("plain-rcpsp: needs one host and the objective placed, makespan")
    if problem.schedule.max_starts or problem.schedule.stagger_s:
        raise ValueError("plain-rcpsp: a batch limit or stagger gap is not RCPSP")
    model = cp_model.CpModel()
    horizon = problem.schedule.horizon_s
    start, end, interval = {}, {}, {}
    for guest in problem.guests:
        duration = guest.boot.duration_s
        start[guest.name] = model.new_int_var(0, horizon - duration, "")
        end[guest.name] = start[guest.name] + duration
        interval[guest.name] = model.new_fixed_size_interval_var(start[guest.name], duration, "")
    # One cumulative per boot pool (PSPLIB's renewable resources).
    for pool, capacity in problem.boot_pools.items():
        users = [g for g in problem.guests if g.boot.load.get(pool, 0) > 0]
        model.add_cumulative(
            [interval[g.name] for g in users], [g.boot.load[pool] for g in users], capacity
        )
    # Precedences: a boot starts once those it waits for are ready.
    for guest in problem.guests:
        for before in guest.boot.after:
            model.add(start[guest.name] >= end[before])
    makespan = model.new_int_var(0, horizon, "")
    model.add_max_equality(makespan, list(end.values()))
    model.minimize(makespan)
    solver = _solver(options)
    status = solver.solve(model)
    host = problem.hosts[0].name
    assignments = [
        Assignment(
            g.name,
            host,
            Action.START,
            solver.value(start[g.name]),
            solver.value(start[g.name]) + g.boot.duration_s,
        )
        for g in problem.guests
    ]
    return _plan(problem, "plain-rcpsp", solver, status, assignments)


def first_fit_decreasing(sizes: Sequence[Sequence[int]], capacity: Sequence[int]) -> list[int]:
    """The bin of every item under first fit, items by decreasing normalised size sum."""
    scale = [max(c, 1) for c in capacity]
    order = sorted(
        range(len(sizes)), key=lambda i: -sum(s / c for s, c in zip(sizes[i], scale, strict=True))
    )
    free: list[list[int]] = []
    bins = [0] * len(sizes)
    for item in order:
        fits = (b for b, room in enumerate(free) if all(map(int.__le__, sizes[item], room)))
        chosen = next(fits, None)
        if chosen is None:
            chosen = len(free)
            free.append(list(capacity))
        free[chosen] = [r - s for r, s in zip(free[chosen], sizes[item], strict=True)]
        bins[item] = chosen
    return bins


def solve_vbp(problem: Problem, options: SolveOptions) -> Plan:
    """The plain vector bin packing model over the problem's identical hosts."""
    hosts = problem.hosts
    capacity = dict(hosts[0].capacity)
    if any(dict(h.capacity) != capacity for h in hosts) or problem.objective != (
        Objective.PLACED,
        Objective.CONSOLIDATE,
    ):
        raise ValueError("plain-vbp: needs identical hosts and the objective placed, consolidate")
    dims = sorted(capacity)
    sizes = [[g.demand.get(d, 0) for d in dims] for g in problem.guests]
    caps = [capacity[d] for d in dims]
    items, bins = range(len(sizes)), range(len(hosts))
    model = cp_model.CpModel()
    x = {(i, b): model.new_bool_var("") for i in items for b in bins}
    y = [model.new_bool_var("") for _ in bins]
    # Each item in exactly one bin; a bin's load within its capacity, zero if unused.
    for i in items:
        model.add_exactly_one(x[i, b] for b in bins)
    for b in bins:
        for k, cap in enumerate(caps):
            model.add(sum(sizes[i][k] * x[i, b] for i in items) <= cap * y[b])
    # Identical bins: use them in order.
    for b in bins[:-1]:
        model.add(y[b] >= y[b + 1])
    hint = first_fit_decreasing(sizes, caps)
    for i in items:
        for b in bins:
            model.add_hint(x[i, b], hint[i] == b)
    for b in bins:
        model.add_hint(y[b], b <= max(hint))
    model.minimize(sum(y))
    solver = _solver(options)
    status = solver.solve(model)
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        chosen = [next(b for b in bins if solver.boolean_value(x[i, b])) for i in items]
    else:
        # No solution of CP-SAT's own in the time (120 items x 54 bins can take more than
        # 10 s on 2 workers): the hint, as "CP-SAT plus a first-fit-decreasing hint" is.
        chosen = hint
        status = cp_model.FEASIBLE
    assignments = [
        Assignment(guest.name, hosts[b].name, Action.START, 0, guest.boot.duration_s)
        for guest, b in zip(problem.guests, chosen, strict=True)
    ]
    return _plan(problem, "plain-vbp", solver, status, assignments)


def _info(name: str, summary: str, function: SolveFunction) -> SolverInfo:
    return SolverInfo(name=name, kind=KIND, summary=summary, function=function)


# The bench's own peers, by name (`bench.run.solver_info` looks here first).
PEERS: dict[str, SolverInfo] = {
    info.name: info
    for info in (
        _info("plain-rcpsp", "plain CP-SAT RCPSP model (PSPLIB problems only)", solve_rcpsp),
        _info("plain-vbp", "plain CP-SAT vector bin packing model (.vbp problems only)", solve_vbp),
    )
}
