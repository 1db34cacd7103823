"""The lexicographic solve: a greedy plan first, then one CP-SAT solve per objective stage.

Each stage starts from the previous stage's plan as a hint and keeps the earlier stages
at the values found. Every plan goes through the checker before it is returned; a
CP-SAT plan that fails it is logged as a bug and the best verified plan is returned.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from ortools.sat.python import cp_model

from placement.bounds import StageBounds
from placement.check import check
from placement.diagnostics import diagnose
from placement.imbalance import imbalance_of_steps, load_steps, spread_target
from placement.model import BALANCE_STEPS, Guest, Objective, Problem
from placement.plan import (
    Action,
    Assignment,
    Plan,
    StageResult,
    Status,
    Unplaced,
    expected_action,
    relative_gap,
)
from placement.solvers import Progress, SolveFunction, SolveOptions, vector_packing
from placement.solvers.common import HostLoads, Unit, better, explain_unplaced, stage_value
from placement.solvers.cpsat import consolidate
from placement.solvers.cpsat.explain import blocking_families, reason_text
from placement.solvers.cpsat.imbalance_stage import (
    TARGET_DENOMINATOR,
    add_distance_to_target,
    imbalance_of_ratio,
    ratio,
    ratio_lower_bound,
    tangent_target,
)
from placement.solvers.cpsat.migration_rules import (
    add_capacity_over_time,
    add_migration_budget,
    add_migration_concurrency,
    add_migration_load,
    possible_moves,
)
from placement.solvers.cpsat.objectives import (
    ExactModelTooLargeError,
    host_steps,
    stage_expression,
)
from placement.solvers.cpsat.placement_rules import (
    add_anti_affinity,
    add_capacity,
    add_dependencies_placed,
    add_follows,
    add_host_symmetry,
)
from placement.solvers.cpsat.schedule_rules import (
    add_after,
    add_batch_limit,
    add_boot_pools,
    add_host_boot_limits,
    add_stagger,
)
from placement.solvers.cpsat.search import run_search
from placement.solvers.cpsat.variables import Variables, create_variables
from placement.solvers.cpsat.view import ProblemView, build_view, canonical_hosts
from placement.solvers.stop import is_stopped

logger = logging.getLogger(__name__)

SOLVER_NAME = "cpsat"
_GREEDY_SEEDS = ("best-fit", "first-fit", "worst-fit")
# How long a seed takes against best fit (plan and check), measured on 10,000 guests x
# 1,000 hosts; the rest take about as long as best fit. The local search (descent-rebalance)
# took 7-9 s there whatever its limit (its first pass), 10-13 times best fit.
_SEED_COST = {
    "pacemaker-minimal": 8.0,
    "pacemaker-utilization": 8.0,
    "pacemaker-balanced": 12.0,
    "descent-rebalance": 15.0,
    # Bin-centric packing scores every unit left at each step: on the L cold pack about
    # 10 s each against best fit's 2 s (the whole portfolio took 65 s there).
    **{
        f"{vector_packing.SOLVER_NAME}/bin-centric-{score}": 6.0
        for score in vector_packing.BIN_SCORES
    },
}
_LARGE_MODEL_PAIRS = 20_000
# Beyond this many (guest, host) pairs the full pair model does not fit a 2-core budget:
# such problems are solved on neighbourhoods of the incumbent (see `large`).
MAX_MODEL_PAIRS = 400_000
# The part of a `consolidate` stage's time CP-SAT's whole-model search gets (at least,
# outside deterministic mode) before the host-emptying neighbourhoods take the rest...
_CONSOLIDATE_CP_SAT_SHARE = 0.4
# ... at the earliest, and once it has not improved for this part of the stage's time.
_CONSOLIDATE_STALL_SHARE = 0.2


@attrs.frozen
class _Solution:
    """Hosts per unit, start instants per slot and per possible move: what the model
    decides."""

    unit_host: tuple[int | None, ...]
    slot_start: tuple[int, ...]
    move_start: tuple[int, ...] = ()


RuleFamily = Callable[[ProblemView, Variables], None]

# Every rule family of the model, by the name `explain` uses to say which one blocks a
# guest. Host filters, together groups and start groups are in the variables themselves.
RULE_FAMILIES: dict[str, RuleFamily] = {
    "capacity": add_capacity,
    "anti_affinity": add_anti_affinity,
    "follows": add_follows,
    "after_placed": add_dependencies_placed,
    "pool_capacity": add_boot_pools,
    "max_starts": add_batch_limit,
    "host_boot_limits": add_host_boot_limits,
    "after": add_after,
    "stagger": add_stagger,
    "capacity_over_time": add_capacity_over_time,
    "migration_concurrency": add_migration_concurrency,
    "migration_budget": add_migration_budget,
    "migration_load": add_migration_load,
}


def build_model(
    view: ProblemView, without: frozenset[str] = frozenset(), *, symmetry: bool = True
) -> Variables:
    """The CP-SAT model of every rule the checker knows (but the families in `without`),
    with one labelling of interchangeable hosts unless `symmetry` is false."""
    variables = create_variables(view)
    for name, add_rules in RULE_FAMILIES.items():
        if name not in without:
            add_rules(view, variables)
    if symmetry:
        # Not a rule family: it removes no plan's values, so it never explains anything.
        add_host_symmetry(view, variables)
    return variables


# --- plans <-> solutions -----------------------------------------------------------------


def solution_of_plan(view: ProblemView, plan: Plan) -> _Solution:
    """The model's view of a plan (for hints). Slots of unplaced guests start at 0."""
    problem = view.problem
    by_guest = plan.by_guest()
    unit_host: list[int | None] = []
    for unit in view.units:
        host = by_guest[unit.guests[0].name].host if unit.guests[0].name in by_guest else None
        unit_host.append(problem.host_position(host) if host is not None else None)
    slot_start = []
    for slot in view.slots:
        starts = [
            by_guest[view.boots[b].guest.name].start_s
            for b in slot.boots
            if view.boots[b].guest.name in by_guest
        ]
        slot_start.append(next((s for s in starts if s is not None), 0))
    move_start = []
    for move in possible_moves(view):
        found = by_guest.get(move.guest.name)
        move_start.append(found.start_s if found is not None and found.start_s is not None else 0)
    return _Solution(canonical_hosts(view, tuple(unit_host)), tuple(slot_start), tuple(move_start))


def _solution_of_solver(
    view: ProblemView, variables: Variables, solver: cp_model.CpSolver
) -> _Solution:
    unit_host: list[int | None] = []
    for unit in view.units:
        chosen = [h for h in unit.candidates if solver.boolean_value(variables.x[unit.index, h])]
        unit_host.append(chosen[0] if chosen else None)
    slot_start = tuple(int(solver.value(start)) for start in variables.start)
    move_start = tuple(int(solver.value(start)) for start in variables.migrations.start)
    return _Solution(tuple(unit_host), slot_start, move_start)


def _add_hint(view: ProblemView, variables: Variables, solution: _Solution) -> None:
    model = variables.model
    model.clear_hints()  # type: ignore[no-untyped-call]  # untyped in ortools
    for unit in view.units:
        chosen = solution.unit_host[unit.index]
        for h in unit.candidates:
            model.add_hint(variables.x[unit.index, h], h == chosen)
        model.add_hint(variables.placed[unit.index], chosen is not None)
    for slot in view.slots:
        model.add_hint(variables.start[slot.index], solution.slot_start[slot.index])
    for b, boot in enumerate(view.boots):
        placed = solution.unit_host[boot.unit] is not None
        ready = solution.slot_start[boot.slot] + boot.duration_s if placed else 0
        model.add_hint(variables.ready[b], ready)
    moves = variables.migrations
    for i, move in enumerate(moves.moves):
        host = solution.unit_host[move.unit]
        happens = host is not None and host != move.source
        start_s = solution.move_start[i] if i < len(solution.move_start) else 0
        model.add_hint(moves.moving[i], happens)
        model.add_hint(moves.start[i], start_s)
        model.add_hint(moves.ready[i], start_s + move.duration_s if happens else 0)


def plan_of_solution(
    view: ProblemView,
    solution: _Solution,
    reasons: dict[str, str],
    status: Status,
    runtime_s: float,
    explain_budget_s: float = 0.0,
) -> Plan:
    """Turn a model solution into a plan (stages filled in by the caller).

    `explain_budget_s` > 0 lets CP-SAT probes say what keeps out a guest that some host
    still has room for (small problems only, see `explain`)."""
    problem = view.problem
    hosts = problem.hosts
    assignments: list[Assignment] = []
    host_of: dict[str, str | None] = {}
    for unit in view.units:
        h = solution.unit_host[unit.index]
        for guest in unit.guests:
            host_of[guest.name] = hosts[h].name if h is not None else None
    move_start = {
        move.guest.name: solution.move_start[i] if i < len(solution.move_start) else 0
        for i, move in enumerate(possible_moves(view))
    }
    for guest in problem.guests:
        host = host_of[guest.name]
        action = expected_action(problem, guest, host)
        start_s: int | None = None
        ready_s: int | None = None
        if action is Action.START:
            boot = view.boots[view.boot_of[guest.name]]
            start_s = solution.slot_start[boot.slot]
            ready_s = start_s + boot.duration_s
        elif action is Action.MIGRATE:
            start_s = move_start[guest.name]
            ready_s = start_s + problem.migration_duration(guest)
        assignments.append(Assignment(guest.name, host, action, start_s, ready_s))
    deadline = time.perf_counter() + explain_budget_s
    context = _ReasonContext(view, solution)
    unplaced = [
        Unplaced(name, _reason(view, context, name, reasons, host_of, deadline))
        for name, host in host_of.items()
        if host is None
    ]
    return Plan(
        status=status,
        solver=SOLVER_NAME,
        runtime_s=runtime_s,
        assignments=assignments,
        unplaced=sorted(unplaced, key=lambda u: problem.guest_position(u.guest)),
    )


class _ReasonContext:
    """What every unplaced guest's reason looks at, built once per plan (on first use):
    the hosts' loads with the placed units, and which units are placed."""

    def __init__(self, view: ProblemView, solution: _Solution) -> None:
        self._view = view
        self._solution = solution

    @functools.cached_property
    def loads(self) -> HostLoads:
        problem = self._view.problem
        loads = HostLoads(problem)
        for unit in self._view.units:
            h = self._solution.unit_host[unit.index]
            if h is not None:
                loads.add(Unit.of(unit.guests), problem.hosts[h].name)
        return loads

    @functools.cached_property
    def placed_units(self) -> set[int]:
        return {u.index for u in self._view.units if self._solution.unit_host[u.index] is not None}


def _reason(
    view: ProblemView,
    context: _ReasonContext,
    name: str,
    structural: dict[str, str],
    host_of: dict[str, str | None],
    deadline: float,
) -> str:
    """The rule that keeps `name` out: a structural diagnostic, an unplaced dependency,
    the binding placement rule given the others, or (probed by CP-SAT until `deadline`)
    the rule families that leave no room for it next to the guests placed."""
    if name in structural:
        return structural[name]
    problem = view.problem
    guest = problem.guest(name)
    for dependency in guest.boot.after:
        if host_of.get(dependency) is None and dependency != name:
            return f"starts after {dependency}, which is not placed"
    loads = context.loads
    unit = view.units[view.unit_of[name]]
    members = unit.guests
    if not loads.candidates(Unit.of(members))[list(unit.candidates)].any():
        return explain_unplaced(problem, loads, members)
    if deadline <= time.perf_counter():
        families = None  # no time left for probes
    else:
        families = blocking_families(
            view, context.placed_units, unit.index, deadline - time.perf_counter()
        )
    if families is not None:
        return reason_text(families)
    return (
        "a host has room, but the higher objective stages were better served without it "
        "(the boot schedule within the horizon, or guests of higher priority)"
    )


# --- stages ------------------------------------------------------------------------------


def _meets_bounds(problem: Problem, plan: Plan, stages: Sequence[Objective]) -> bool:
    """Whether `plan` meets our own bound (`placement.bounds`) on each of `stages` in
    turn: then no search can improve them."""
    bounds = StageBounds(problem)
    held: dict[str, float] = {}
    for stage in stages:
        value = stage_value(plan, stage)
        bound = bounds(stage, held)
        if bound is None or abs(value - bound) > 1e-9 * max(1.0, abs(bound)):
            return False
        held[stage.value] = value
    return True


def with_checked_stages(problem: Problem, plan: Plan, bounds: dict[str, float | None]) -> Plan:
    """Fill the stages with the checker's values, the given bounds and the gaps; the
    status is optimal when every stage meets its bound."""
    values = check(problem, plan).metrics["objectives"]
    stages = []
    for objective in problem.objective:
        value = float(values[objective.value])
        bound = bounds.get(objective.value)
        stages.append(StageResult(objective.value, value, bound, relative_gap(value, bound)))
    status = plan.status
    if stages and all(stage.gap == 0.0 for stage in stages):
        status = Status.OPTIMAL
    elif status is Status.OPTIMAL:
        status = Status.FEASIBLE
    return attrs.evolve(plan, stages=tuple(stages), status=status)


class _ProgressCallback(cp_model.CpSolverSolutionCallback):
    """Reports each solution CP-SAT finds (when `report` is given) and notes when it last
    improved on its first one (for `_StallWatch`)."""

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


class _StallWatch:
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
        callback: _ProgressCallback,
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


def _seed_cost(name: str) -> float:
    return _SEED_COST.get(name, 1.0)


def _greedy_incumbent(problem: Problem, options: SolveOptions) -> Plan | None:
    """The best verified baseline plan (with the list schedule), or None."""
    from placement.solvers import available_solvers, get_solver

    best: Plan | None = None
    if options.hint is not None:
        # The caller's plan (re-planning: the one being carried out), if it is valid here.
        best = _checked_variant(problem, options.hint)
    # Local-search baselines (descent-rebalance) stop at their time limit: at most a quarter,
    # and only what is left of it when they start (below).
    seed_options = attrs.evolve(
        options,
        schedule="list",
        on_progress=None,
        hint=None,
        time_limit_s=options.time_limit_s / 4,
    )
    # Every baseline and peer is a candidate start: the optimiser must never end worse
    # than any of them. Peers may break rules (that is their finding); only plans that
    # pass the checker seed the search. Best fit comes first; the others run while no
    # more than a quarter of the time limit is spent.
    others = [
        info.name
        for info in available_solvers()
        if info.kind != "optimiser"
        and info.name not in (*_GREEDY_SEEDS, vector_packing.SOLVER_NAME)
    ]
    # Cheap ones first: the greedy packers, then the vector-packing heuristics one by one
    # (as one baseline they take 14 packers' time, which 10,000 guests do not leave, and
    # one of them may place more: first fit by the largest share on the L cold pack),
    # then the others, the slowest peers last.
    seeds: list[tuple[str, SolveFunction]] = [
        *((name, get_solver(name).function) for name in _GREEDY_SEEDS),
        *vector_packing.seed_functions(),
        *((name, get_solver(name).function) for name in sorted(others, key=_seed_cost)),
    ]
    started = time.perf_counter()
    # A little under a quarter of the limit: the repacked and reordered variants and the
    # first check come after the seeds (the L cold pack at 60 s: first plan after 15.2 s
    # with the whole quarter, target 15 s).
    budget = 0.22 * options.time_limit_s
    first_s: float | None = None  # how long the first seed took: the scale of the others
    for name, function in seeds:
        if best is not None and is_stopped(options.stop):
            break  # interrupted: the best seed so far is the plan
        elapsed = time.perf_counter() - started
        # Start a seed only if it should end within the budget (on 10,000 guests the
        # Pacemaker re-creations take 8-12 times as long as best fit).
        expected = _seed_cost(name) * (first_s or 0.0)
        if best is not None and first_s is not None and elapsed + expected > budget:
            continue
        seed_started = time.perf_counter()
        # A local search (descent-rebalance) runs to its limit: what is left of the budget
        # after its own check (about a seed's time); it took 17 s on the 10,000-guest
        # failover when given the whole quarter, and overruns its limit a little.
        left_s = max(0.8 * (budget - elapsed - (first_s or 0.0)), 0.05)
        plan = function(problem, attrs.evolve(seed_options, time_limit_s=left_s))
        report = check(problem, plan)
        if first_s is None:
            first_s = time.perf_counter() - seed_started
        if not report.ok:
            if name in _GREEDY_SEEDS or name.startswith(vector_packing.SOLVER_NAME):
                logger.error(
                    "BUG: baseline %s produced a plan that fails the checker: %s",
                    name,
                    report.violations[0].message,
                )
            continue
        if best is None or better(problem, plan, best):
            best = plan
    if best is not None and is_stopped(options.stop):
        return best
    if best is not None and best.unplaced:
        budget_left = budget - (time.perf_counter() - started)
        if budget_left > 2 * (first_s or 0.0):
            for variant in _repacked(problem, best, seed_options):
                if better(problem, variant, best):
                    best = variant
    if best is not None and len(problem.guests) <= 5_000:
        for variant in _reordered_schedules(problem, best):
            if better(problem, variant, best):
                best = variant
    return best


def _checked_variant(problem: Problem, plan: Plan) -> Plan | None:
    """`plan` with the checker's stage values, or None if it breaks a rule (one check)."""
    report = check(problem, plan)
    if not report.ok:
        return None
    values = report.metrics["objectives"]
    stages = [StageResult(o.value, float(values[o.value])) for o in problem.objective]
    return attrs.evolve(plan, stages=stages)


def _repacked(problem: Problem, plan: Plan, options: SolveOptions) -> list[Plan]:
    """The guests `plan` places, packed again by the tighter packers (checked plans only).

    The seed that places the most often spreads to do it (worst fit: on a cold pack of
    10,000 guests it placed 2 more than first fit, on 980 hosts instead of 355); packing
    exactly its guests with first or best fit keeps `placed` and may need far fewer hosts.
    The guests it leaves out stay out with their reasons (whatever waits for them is out
    too, so no kept guest depends on one)."""
    from placement.solvers import get_solver

    left_out = {u.guest for u in plan.unplaced}
    kept = [g for g in problem.guests if g.name not in left_out]
    if len(kept) == len(problem.guests) or any(
        dependency in left_out for g in kept for dependency in g.boot.after
    ):
        return []
    smaller = attrs.evolve(problem, guests=kept)
    outside = [a for a in plan.assignments if a.guest in left_out]
    variants: list[Plan] = []
    for name in ("first-fit", "best-fit"):
        packed = get_solver(name).function(smaller, options)
        if packed.unplaced:
            continue  # it leaves out more than the plan did
        variant = _checked_variant(
            problem,
            attrs.evolve(
                packed, assignments=(*packed.assignments, *outside), unplaced=plan.unplaced
            ),
        )
        if variant is not None:
            variants.append(variant)
    return variants


def _reordered_schedules(problem: Problem, plan: Plan) -> list[Plan]:
    """The same placement, list-scheduled in other orders (checked plans only).

    The list schedule starts guests in priority order; for the weighted sum of ready
    times, weighted-shortest-first orders (by boot time, or by the share of the scarcest
    boot limit a boot uses over its time) are often far better starting points.
    """
    from placement.solvers.migration_schedule import time_migrations
    from placement.solvers.schedule import list_schedule

    def bottleneck(guest: Guest) -> float:
        share = max(
            (guest.boot.load.get(pool, 0) / limit for pool, limit in problem.boot_pools.items()),
            default=0.0,
        )
        if problem.schedule.max_starts:
            share = max(share, 1 / problem.schedule.max_starts)
        return share

    # The longest chain of boots from a guest's start to the end of the `after` graph:
    # the classic latest-finish priority for the makespan (RCPSP's strongest simple rule).
    followers: dict[str, list[Guest]] = {g.name: [] for g in problem.guests}
    for guest in problem.guests:
        for name in guest.boot.after:
            if name in followers:
                followers[name].append(guest)
    tail: dict[str, int] = {}
    for guest in reversed(_topological(problem)):
        after = max((tail[f.name] for f in followers[guest.name]), default=0)
        tail[guest.name] = guest.boot.duration_s + after

    orders: list[Callable[[Guest], float]] = [
        lambda g: g.weight / (g.boot.duration_s + 1),
        lambda g: g.weight / ((g.boot.duration_s + 1) * max(bottleneck(g), 1e-3)),
        lambda g: tail[g.name],
    ]
    hosts = {a.guest: a.host for a in plan.assignments}
    # Boots still wait for the room the plan's migrations free (timed as baselines do).
    not_before = time_migrations(problem, hosts).not_before
    variants: list[Plan] = []
    for key in orders:
        # Ranks stand in for priorities; the schedule's validity does not depend on them.
        rank = {g.name: i for i, g in enumerate(sorted(problem.guests, key=key))}
        ranked = attrs.evolve(
            problem, guests=[attrs.evolve(g, priority=rank[g.name]) for g in problem.guests]
        )
        timing = list_schedule(ranked, hosts, not_before)
        if timing.unscheduled:
            continue
        assignments = [
            attrs.evolve(
                a,
                start_s=timing.starts[a.guest],
                ready_s=timing.starts[a.guest] + problem.guest(a.guest).boot.duration_s,
            )
            if a.action is Action.START
            else a
            for a in plan.assignments
        ]
        variant = _checked_variant(problem, attrs.evolve(plan, assignments=assignments))
        if variant is not None:
            variants.append(variant)
    return variants


def _topological(problem: Problem) -> list[Guest]:
    """The guests, each after every guest it starts `after` (ties in problem order; an
    edge that would close a cycle is ignored, though the codec refuses cycles)."""
    placed: set[str] = set()
    visiting: set[str] = set()  # on the current path (guards against a cycle anyway)
    order: list[Guest] = []
    by_name = {g.name: g for g in problem.guests}

    def visit(guest: Guest) -> None:
        stack = [(guest, iter(guest.boot.after))]
        visiting.add(guest.name)
        while stack:
            current, pending = stack[-1]
            name = next(
                (n for n in pending if n in by_name and n not in placed and n not in visiting),
                None,
            )
            if name is not None:
                visiting.add(name)
                stack.append((by_name[name], iter(by_name[name].boot.after)))
                continue
            stack.pop()
            visiting.discard(current.name)
            if current.name not in placed:
                placed.add(current.name)
                order.append(current)

    for guest in problem.guests:
        if guest.name not in placed:
            visit(guest)
    return order


TWO_WORKERS = 2
TWO_WORKER_SEARCHES = ("pseudo_costs", "default_lp")  # the first that applies runs


def _parameters(options: SolveOptions, seconds: float, large: bool) -> cp_model.CpSolver:
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
        parameters.max_deterministic_time = max(seconds, 0.01)
        parameters.interleave_search = True
    else:
        parameters.max_time_in_seconds = max(seconds, 0.01)
    return solver


def structural_reasons(problem: Problem) -> dict[str, str]:
    """Guest name -> the structural diagnostic that keeps it out whatever the plan."""
    structural: dict[str, str] = {}
    for diagnostic in diagnose(problem):
        if diagnostic.rule == "anti_affinity_class":
            continue  # only some of the class stay out: not a reason for each member
        for name in diagnostic.guests:
            structural.setdefault(name, diagnostic.message)
    return structural


def pair_count(problem: Problem) -> int:
    """An upper estimate of the model's (guest, host) pairs: each guest's allowed hosts."""
    online = sum(1 for host in problem.hosts if host.online)
    return sum(online if g.hosts is None else len(g.hosts) for g in problem.guests)


def solve_lexicographic(problem: Problem, options: SolveOptions) -> Plan:
    """The optimiser: see the module docstring."""
    started = time.perf_counter()
    structural = structural_reasons(problem)
    incumbent_plan = _greedy_incumbent(problem, options)
    first_plan_s = time.perf_counter() - started
    from placement.solvers.cpsat import rebalance
    from placement.solvers.cpsat.large import MIN_ROUND_S, _with_own_bounds, solve_large

    if incumbent_plan is not None and is_stopped(options.stop):
        # Interrupted while seeding: the best seed, with our bounds, without building a model.
        plan = _with_own_bounds(problem, incumbent_plan, StageBounds(problem))
        runtime_s = round(time.perf_counter() - started, 6)
        metrics = {"first_plan_s": round(first_plan_s, 3), "returned": "greedy"}
        return attrs.evolve(plan, solver=SOLVER_NAME, runtime_s=runtime_s, metrics=metrics)

    if rebalance.applies(problem, incumbent_plan):
        assert incumbent_plan is not None  # applies() checks it
        return rebalance.solve_rebalance(problem, options, incumbent_plan, started, first_plan_s)
    if incumbent_plan is not None and pair_count(problem) > MAX_MODEL_PAIRS:
        from placement.solvers.cpsat import aggregate

        known: dict[str, float] = {}
        counted: dict[str, Any] | None = None
        leading = aggregate.leading_stages(problem)
        if leading and any(guest.follows is not None for guest in problem.guests):
            # Counts of interchangeable units cannot say beside which guest one runs.
            leading = []
            counted = {"skipped": "guests follow others, which type counts cannot express"}
        if leading and _meets_bounds(problem, incumbent_plan, leading):
            # Already proven by our bounds (a failover that places everyone): the
            # neighbourhoods get the time.
            leading = []
            counted = {"skipped": "the incumbent meets our bounds on the placement stages"}
        if leading:
            # The placement stages on type counts: 60 % of the time left when they are the
            # whole objective, else 40 % (the rest goes to the neighbourhoods).
            share = 0.6 if len(leading) == len(problem.objective) else 0.4
            remaining = options.time_limit_s - (time.perf_counter() - started)
            deadline = time.perf_counter() + share * remaining
            incumbent_plan, counted = aggregate.improve_placement(
                problem, options, incumbent_plan, deadline
            )
            known = counted.get("bounds") or {}
        plan = solve_large(
            problem, options, incumbent_plan, started, first_plan_s, known_bounds=known
        )
        if counted is not None:
            plan = attrs.evolve(plan, metrics={**plan.metrics, "type_counts": counted})
        return plan
    plan = improve(problem, options, incumbent_plan, structural, started, first_plan_s)
    remaining = options.time_limit_s - (time.perf_counter() - started)
    if (
        plan.metrics.get("stalled")
        and plan.assignments
        and remaining >= MIN_ROUND_S
        and not is_stopped(options.stop)
    ):
        # The full model found nothing in a stage (a big model with live migrations can
        # spend its whole share on presolve): search neighbourhoods of the best plan.
        return solve_large(problem, options, plan, started, first_plan_s)
    return plan


def improve(
    problem: Problem,
    options: SolveOptions,
    incumbent_plan: Plan | None,
    structural: dict[str, str],
    started: float,
    first_plan_s: float,
) -> Plan:
    """Stage by stage from `incumbent_plan` (a verified plan, or None) until
    `started + options.time_limit_s`; returns the best verified plan."""
    view = build_view(problem)
    variables = build_model(view)
    model_s = time.perf_counter() - started - first_plan_s
    incumbent = solution_of_plan(view, incumbent_plan) if incumbent_plan is not None else None

    bounds: dict[str, float | None] = {}
    held: dict[str, float] = {}  # the value each finished stage is held at
    holds: list[tuple[Objective, int]] = []  # the same in model units, for other models
    stage_bounds = StageBounds(problem)
    stage_log: list[dict[str, object]] = []
    # The stages search until `search_s`: the rest of the limit assembles and checks the
    # plan, and explains unplaced guests when the incumbent has some (probes, explain.py).
    explain_s = min(2.0, options.time_limit_s / 10)
    reserve_s = 0.03 * options.time_limit_s + 0.05
    # The plan is checked about four times after the search (valuing, returning, the
    # seed beside it): on 10,000 guests that is several seconds.
    reserve_s += 4 * check_estimate_s(problem)
    if incumbent_plan is not None and incumbent_plan.unplaced:
        reserve_s += explain_s
    search_s = max(options.time_limit_s - reserve_s, 0.5 * options.time_limit_s)
    # Stages CP-SAT left unproven, for a second pass with the time the later stages saved.
    unproven: list[tuple[Objective, cp_model.LinearExprT, int, dict[str, object]]] = []
    # Solutions that end an `imbalance` stage: held in later stages by a rounded bound
    # when the exact one does not fit in 64 bits, so they stay candidates themselves.
    kept: list[_Solution] = []
    stalled = False  # a stage of a large model ended with no solution of CP-SAT's own
    stages = list(problem.objective)
    for position, objective in enumerate(stages):
        if objective is Objective.IMBALANCE:
            remaining = search_s - (time.perf_counter() - started)
            budget = max(remaining / (len(stages) - position), 0.05)
            try:
                outcome = _imbalance_stage(view, variables, incumbent, options, budget)
            except ExactModelTooLargeError as error:
                stage_log.append(_too_large(objective, error))
                break  # the plan so far stands, valued by the checker
            if outcome.solution is None:
                break  # nothing to hold the later stages to; the greedy plan stands
            incumbent = outcome.solution
            kept.append(outcome.solution)
            stage_log.append(outcome.log)
            held[objective.value] = outcome.value
            bounds[objective.value] = _tighter(
                objective, outcome.bound, stage_bounds(objective, held)
            )
            continue
        try:
            expression = stage_expression(objective, view, variables)
        except ExactModelTooLargeError as error:
            stage_log.append(_too_large(objective, error))
            break  # the plan so far stands, valued by the checker
        scale = BALANCE_STEPS if objective is Objective.BALANCE else 1
        ours = stage_bounds(objective, held)
        if incumbent is not None and ours is not None:
            known = _model_value(view, incumbent, structural, objective)
            if abs(known - ours * scale) < 0.5:
                # The incumbent meets a bound we proved ourselves: no search needed.
                value = known
                bounds[objective.value] = ours
                held[objective.value] = value / scale
                stage_log.append(
                    {
                        "stage": objective.value,
                        "cp_sat_status": "SKIPPED (meets the bound)",
                        "seconds": 0.0,
                        "value": value / scale,
                        "cp_sat_bound": None,
                    }
                )
                _hold(variables, objective, expression, value)
                holds.append((objective, value))
                continue
        if objective.maximise:
            variables.model.maximize(expression)
        else:
            variables.model.minimize(expression)
        if incumbent is not None:
            _add_hint(view, variables, incumbent)
        stage_started = time.perf_counter()
        remaining = search_s - (stage_started - started)
        budget = max(remaining / (len(stages) - position), 0.05)
        # Consolidation: CP-SAT first (it proves the easy packings and the bound), then
        # the host-emptying neighbourhoods with the rest of the stage's time. CP-SAT
        # hands over after its share once it has improved on its start and stalled
        # (a fixed share in deterministic mode, where wall time must not decide).
        emptying = objective is Objective.CONSOLIDATE and consolidate.applies(view, stages)
        watched = emptying and not options.deterministic
        cp_budget = budget * _CONSOLIDATE_CP_SAT_SHARE if emptying and not watched else budget
        solver = _parameters(options, cp_budget, large=view.num_pairs > _LARGE_MODEL_PAIRS)
        callback = (
            _ProgressCallback(options.on_progress, objective.value, started)
            if options.on_progress is not None or watched
            else None
        )
        watch = (
            _StallWatch(
                solver,
                callback,
                budget * _CONSOLIDATE_CP_SAT_SHARE,
                budget * _CONSOLIDATE_STALL_SHARE,
            )
            if watched and callback is not None
            else None
        )
        try:
            status = run_search(solver, variables.model, options.stop, callback)
        finally:
            if watch is not None:
                watch.finish()
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE, cp_model.INFEASIBLE):
            stalled = view.num_pairs > _LARGE_MODEL_PAIRS
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            incumbent = _solution_of_solver(view, variables, solver)
            value = round(solver.objective_value)
        elif incumbent is not None:
            value = _model_value(view, incumbent, structural, objective)
        else:
            break  # nothing to hold the later stages to; the greedy plan stands
        # CP-SAT's bound means something only once it has a solution of its own.
        cp_bound: float | None = None
        if status == cp_model.OPTIMAL:
            cp_bound = value / scale
        elif status == cp_model.FEASIBLE and abs(solver.best_objective_bound) < 1e15:
            cp_bound = solver.best_objective_bound / scale
        stage_log.append(
            {
                "stage": objective.value,
                "cp_sat_status": solver.status_name(status),
                "seconds": round(solver.wall_time, 3),
                "value": value / scale,
                "cp_sat_bound": cp_bound,
            }
        )
        bound = _tighter(objective, cp_bound, ours)
        searchable = status != cp_model.INFEASIBLE and incumbent is not None
        if watch is not None:
            stage_log[-1]["cp_sat_stopped_stalled"] = watch.stopped
        if emptying and searchable and (bound is None or value > bound):
            if options.deterministic:
                left = budget - solver.deterministic_time
            else:
                left = budget - (time.perf_counter() - stage_started)
            assert incumbent is not None  # (searchable)
            incumbent, searched = consolidate.empty_hosts(
                view, holds, incumbent, options, left, math.ceil(bound or 0)
            )
            value = min(value, searched["hosts_after"])
            stage_log[-1]["value"] = value / scale
            stage_log[-1]["neighbourhoods"] = searched
        held[objective.value] = value / scale
        bounds[objective.value] = bound
        _hold(variables, objective, expression, value)
        holds.append((objective, value))
        if status == cp_model.FEASIBLE and bounds[objective.value] != value / scale:
            # (A stage with no solution of CP-SAT's own is not retried: the model is too
            # big for the time, and the neighbourhood search takes over when it stalls.)
            unproven.append((objective, expression, value, stage_log[-1]))

    if unproven and incumbent is not None:
        incumbent = _second_pass(
            view,
            variables,
            options,
            incumbent,
            unproven,
            bounds,
            started + search_s,
            # CP-SAT's bound is the lexicographic one only when no later stage is held.
            bound_holds=unproven[0][0] is stages[-1],
        )

    runtime_s = round(time.perf_counter() - started, 6)
    candidates: list[Plan] = []
    if is_stopped(options.stop):
        explain_s = 0.0  # interrupted: the plan now, with the reasons known without probes
    if incumbent is not None:
        # Probes explain vague unplaced reasons within a tenth of the limit (at most 2 s).
        plan = plan_of_solution(view, incumbent, structural, Status.FEASIBLE, runtime_s, explain_s)
        report = check(problem, plan)
        if report.ok:
            candidates.append(with_checked_stages(problem, plan, bounds))
        else:
            logger.error(
                "BUG: the CP-SAT plan fails the checker (%s); returning the best verified plan",
                "; ".join(v.message for v in report.violations[:3]),
            )
    for solution in kept:
        plan = plan_of_solution(view, solution, structural, Status.FEASIBLE, runtime_s)
        if check(problem, plan).ok:
            candidates.append(with_checked_stages(problem, plan, bounds))
    if incumbent_plan is not None:
        greedy = attrs.evolve(incumbent_plan, solver=SOLVER_NAME, runtime_s=runtime_s)
        candidates.append(with_checked_stages(problem, greedy, bounds))
    if not candidates:
        return Plan(status=Status.UNKNOWN, solver=SOLVER_NAME, runtime_s=runtime_s, assignments=())
    best = candidates[0]
    for plan in candidates[1:]:
        if better(problem, plan, best):
            best = plan
    metrics = {
        "first_plan_s": round(first_plan_s, 3),
        "model_build_s": round(model_s, 3),
        "units": len(view.units),
        "pairs": view.num_pairs,
        "boots": len(view.boots),
        "stages": stage_log,
        "returned": "cp-sat" if best is candidates[0] and incumbent is not None else "greedy",
        "stalled": stalled,
    }
    return attrs.evolve(best, metrics=metrics)


def _too_large(objective: Objective, error: ExactModelTooLargeError) -> dict[str, object]:
    logger.warning("%s stage not searched: %s", objective.value, error)
    return {
        "stage": objective.value,
        "cp_sat_status": f"SKIPPED ({error})",
        "seconds": 0.0,
        "value": None,
        "cp_sat_bound": None,
    }


def _second_pass(
    view: ProblemView,
    variables: Variables,
    options: SolveOptions,
    incumbent: _Solution,
    unproven: list[tuple[Objective, cp_model.LinearExprT, int, dict[str, object]]],
    bounds: dict[str, float | None],
    search_end: float,
    *,
    bound_holds: bool,
) -> _Solution:
    """Search the first unproven stage again with the time the later stages left (they
    were proven fast or met their bounds). Every stage stays held, the later ones at the
    values found after it, so a better value here is a lexicographically better plan;
    the later stages' bounds stay valid (they assumed this stage no better than before).
    CP-SAT's bound here is on plans that also keep the later stages' values, which bounds
    the stage itself only when it is the last one (`bound_holds`). Returns the incumbent,
    improved or not; updates the stage's log entry and, when it holds, its bound."""
    remaining = search_end - time.perf_counter()
    if remaining < 0.5:
        return incumbent
    objective, expression, found, log = unproven[0]
    scale = BALANCE_STEPS if objective is Objective.BALANCE else 1
    if objective.maximise:
        variables.model.maximize(expression)
    else:
        variables.model.minimize(expression)
    _add_hint(view, variables, incumbent)
    solver = _parameters(options, remaining, large=view.num_pairs > _LARGE_MODEL_PAIRS)
    status = run_search(solver, variables.model, options.stop)
    log["second_pass_seconds"] = round(solver.wall_time, 3)
    log["second_pass_status"] = solver.status_name(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return incumbent
    value = round(solver.objective_value)
    if value > found if objective.maximise else value < found:
        incumbent = _solution_of_solver(view, variables, solver)
        log["value"] = value / scale
        _hold(variables, objective, expression, value)
    if not bound_holds:
        return incumbent
    cp_bound = value / scale if status == cp_model.OPTIMAL else None
    if status == cp_model.FEASIBLE and abs(solver.best_objective_bound) < 1e15:
        cp_bound = solver.best_objective_bound / scale
    bounds[objective.value] = _tighter(objective, cp_bound, bounds[objective.value])
    return incumbent


@attrs.frozen
class _StageOutcome:
    solution: _Solution | None
    value: float
    bound: float | None
    log: dict[str, object]


def _solution_steps(view: ProblemView, solution: _Solution) -> list[int]:
    """The online hosts' loads in steps under `solution`, in `view.online_hosts` order."""
    hosts = view.problem.hosts
    final = {
        guest.name: hosts[h].name if (h := solution.unit_host[unit.index]) is not None else None
        for unit in view.units
        for guest in unit.guests
    }
    steps = load_steps(view.problem, final)
    return [steps[hosts[h].name] for h in view.online_hosts]


def check_estimate_s(problem: Problem) -> float:
    """About how long `check` takes on `problem`: 30 us a guest (0.14-0.21 s measured on
    10,000 guests), to keep time for the checks after a search."""
    return 3e-5 * len(problem.guests)


def _imbalance_stage(
    view: ProblemView,
    variables: Variables,
    incumbent: _Solution | None,
    options: SolveOptions,
    seconds: float,
) -> _StageOutcome:
    """Lower the imbalance within `seconds` from `incumbent` by the convex-concave
    procedure (imbalance_stage.py), then hold it for the later stages."""
    model = variables.model
    steps = host_steps(view, variables)
    deadline = time.perf_counter() + seconds
    large = view.num_pairs > _LARGE_MODEL_PAIRS
    iterations = 0
    wall = 0.0
    status_name = "UNKNOWN"
    if incumbent is None:
        # No plan yet: start from the even-load solution (`spread`'s target).
        model.minimize(add_distance_to_target(model, steps, _even_target(view)))
        solver = _parameters(options, seconds / 2, large)
        status = run_search(solver, model, options.stop)
        wall += solver.wall_time
        status_name = solver.status_name(status)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            failed: dict[str, object] = {"stage": "imbalance", "cp_sat_status": status_name}
            return _StageOutcome(None, 0.0, None, {**failed, "seconds": wall, "value": None})
        incumbent = _solution_of_solver(view, variables, solver)
    current = _solution_steps(view, incumbent)
    # A share of the time proves the bound (below); the rest lowers the ratio.
    search_deadline = time.perf_counter() + 0.7 * (deadline - time.perf_counter())
    while (remaining := search_deadline - time.perf_counter()) > 0.01:
        distance = add_distance_to_target(model, steps, tangent_target(current))
        model.minimize(distance)
        _add_hint(view, variables, incumbent)
        solver = _parameters(options, remaining, large)
        status = run_search(solver, model, options.stop)
        iterations += 1
        wall += solver.wall_time
        status_name = solver.status_name(status)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            break
        candidate = _solution_of_solver(view, variables, solver)
        loads = _solution_steps(view, candidate)
        if not ratio(loads) < ratio(current):
            break  # a fixed point of the procedure (or out of time)
        incumbent, current = candidate, loads
    bound = _imbalance_bound(view, variables, steps, options, deadline, large)
    # Later stages keep the last problem's objective at the incumbent's value, which
    # keeps the ratio at or below the incumbent's (up to the target's rounding; the
    # incumbent itself stays a candidate, see `kept`).
    target = tangent_target(current)
    model.add(add_distance_to_target(model, steps, target) <= _distance_at(current, target))
    value = imbalance_of_steps(current)
    bound = min(bound, value)
    log: dict[str, object] = {
        "stage": "imbalance",
        "cp_sat_status": status_name,
        "seconds": round(wall, 3),
        "value": value,
        "cp_sat_bound": bound,
        "iterations": iterations,
    }
    return _StageOutcome(incumbent, value, bound, log)


def _imbalance_bound(
    view: ProblemView,
    variables: Variables,
    steps: list[tuple[cp_model.LinearExprT, int, int]],
    options: SolveOptions,
    deadline: float,
    large: bool,
) -> float:
    """A proven lower bound on the imbalance under the stages held so far: the least sum
    of squared loads and the largest total load, each by CP-SAT (its bound, whether or
    not it finished) within half the time left."""
    model = variables.model
    q = TARGET_DENOMINATOR
    seconds = max((deadline - time.perf_counter()) / 2, 0.05)
    model.clear_hints()  # type: ignore[no-untyped-call]  # untyped in ortools
    model.minimize(add_distance_to_target(model, steps, 0))  # (q * s)^2 summed
    solver = _parameters(options, seconds, large)
    status = run_search(solver, model, options.stop)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return 0.0
    squares_low = solver.best_objective_bound / (q * q)
    model.maximize(cp_model.LinearExpr.sum([expression for expression, _, _ in steps]))
    solver = _parameters(options, max(deadline - time.perf_counter(), 0.05), large)
    status = run_search(solver, model, options.stop)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return 0.0
    count = len(steps)
    return imbalance_of_ratio(
        count, ratio_lower_bound(count, squares_low, solver.best_objective_bound)
    )


def _even_target(view: ProblemView) -> int:
    return spread_target(view.problem) * TARGET_DENOMINATOR


def _distance_at(steps: list[int], target: int) -> int:
    return sum((TARGET_DENOMINATOR * s - target) ** 2 for s in steps)


def _hold(
    variables: Variables, objective: Objective, expression: cp_model.LinearExprT, value: int
) -> None:
    """Keep a finished stage at the value found while the later ones are optimised."""
    if objective.maximise:
        variables.model.add(expression >= value)
    else:
        variables.model.add(expression <= value)


def _tighter(objective: Objective, a: float | None, b: float | None) -> float | None:
    known = [bound for bound in (a, b) if bound is not None]
    if not known:
        return None
    return min(known) if objective.maximise else max(known)


def _model_value(
    view: ProblemView, solution: _Solution, reasons: dict[str, str], objective: Objective
) -> int:
    """A stage's value at a known solution, in model units (balance in steps)."""
    plan = plan_of_solution(view, solution, reasons, Status.FEASIBLE, 0.0)
    value = float(check(view.problem, plan).metrics["objectives"][objective.value])
    scale = BALANCE_STEPS if objective is Objective.BALANCE else 1
    return round(value * scale)
