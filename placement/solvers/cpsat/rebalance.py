"""Rebalancing a large cluster: exact CP-SAT solves over a few hosts at a time.

A rebalance asks only where the running guests should end: nothing boots, and the stages
(`placed`, `spread`, `migrations`) depend on the final hosts alone; the timing of the
moves is the shared migration scheduler's (`solvers.common.finish_plan`). The full model
of 1,000 guests that may each move to 100 hosts, with timed migrations, found no
improvement in 10 s; but `spread` is a sum over hosts, so freeing the guests of a few
hosts and re-placing them among those hosts, with everything else held, is a small exact
problem whose optimum is an exact improvement of the whole (and the migrations stage
with it, as a tie-break within the neighbourhood).

Each round picks hosts (the most and least loaded against the mean, then some at random),
solves where their movable units go among them — capacity, allowed hosts, anti-affinity,
together groups as one unit, and the migration budget left by the rest — minimising
`spread` over those hosts and then the guests moved, from the incumbent as a hint, and
keeps the result when it is strictly better. Neighbourhoods grow while CP-SAT proves
them optimal quickly and shrink when it does not. The final placement is timed, checked,
and returned only when it is lexicographically better than the incumbent.
"""

from __future__ import annotations

import logging
import math
import random
import time
from fractions import Fraction

import attrs
import numpy as np
import numpy.typing as npt
from ortools.sat.python import cp_model

from placement.bounds import StageBounds
from placement.check import check
from placement.imbalance import SPREAD_STEPS, host_load_steps, load_resources, spread_target
from placement.model import Guest, Objective, Problem
from placement.plan import Action, Plan
from placement.solvers import SolveOptions
from placement.solvers.budget import SHARES, Budget
from placement.solvers.common import HostLoads, Placement, Unit, better, finish_plan, units_of
from placement.solvers.cpsat.imbalance_stage import (
    TARGET_DENOMINATOR,
    add_distance_to_target,
    ratio,
    tangent_target,
)
from placement.solvers.cpsat.plans import with_own_bounds
from placement.solvers.cpsat.search import run_search
from placement.solvers.cpsat.view import pair_count
from placement.statistics import RebalanceSearch, SolveStatistics

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]

#: Stages this search serves: those that depend on the final hosts only.
STAGES = frozenset({Objective.PLACED, Objective.SPREAD, Objective.IMBALANCE, Objective.MIGRATIONS})
#: The stages it evens the load for; the first of them in the problem's order is the goal.
GOALS = (Objective.SPREAD, Objective.IMBALANCE)
#: Below this many (guest, host) pairs the full model is solved instead (and can prove).
MIN_PAIRS = 20_000
_FIRST_HOSTS = 8
_MIN_HOSTS = 4
_MAX_HOSTS = 40
# A neighbourhood's time: short, for many rounds in 10 s. Proof times of one size vary
# from 0.04 s to over 5 s (interchangeable guests); improvements come early or not at all.
_ROUND_S = 0.25
# Proven this fast, the next neighbourhood is larger.
_EASY_S = 0.15


def applies(problem: Problem, incumbent: Plan | None) -> bool:
    """Whether the rebalance search fits: a verified incumbent, nothing to boot, only
    stages of the final hosts with `spread` or `imbalance` among them, and too many
    pairs for the full model to search well."""
    if incumbent is None or not any(goal in problem.objective for goal in GOALS):
        return False
    if not set(problem.objective) <= STAGES:
        return False
    order = list(problem.objective)
    goal = next(o for o in order if o in GOALS)
    if Objective.MIGRATIONS in order and order.index(Objective.MIGRATIONS) < order.index(goal):
        return False  # fewest migrations first: the full model's business
    if any(a.action is Action.START for a in incumbent.assignments):
        return False
    if any(guest.follows is not None for guest in problem.guests):
        return False  # its moves are unit by unit; a follower must move with its leader
    return pair_count(problem) >= MIN_PAIRS


class _State:
    """The incumbent as arrays: each movable unit's host, the usage every host keeps
    whatever the movable units do, and the integer load-step arithmetic of `spread`."""

    def __init__(self, problem: Problem, incumbent: Plan) -> None:
        self.problem = problem
        hosts = {a.guest: a.host for a in incumbent.assignments}
        for guest in problem.guests:
            if guest.name not in hosts and problem.runs_now(guest):
                hosts[guest.name] = guest.current_host
        self.hosts = hosts
        loads = HostLoads(problem)
        self.position = {h.name: i for i, h in enumerate(problem.hosts)}
        groups = problem.together_groups()
        self.units: list[Unit] = []
        for unit in units_of(problem, (g.name for g in problem.guests)):
            placed = {hosts.get(name) for name in unit.names}
            if len(placed) != 1 or None in placed:
                continue
            host = next(iter(placed))
            assert host is not None
            loads.add(unit, host)
            whole = unit.guests[0].together is None or len(unit.guests) == len(
                groups[unit.guests[0].together]
            )
            if whole and all(problem.can_migrate(g) for g in unit.guests):
                self.units.append(unit)
        self.loads = loads
        self.at = np.array([self.position[hosts[u.names[0]] or ""] for u in self.units])
        # Where each unit's members run now: on host h, a unit has size - at_home[u][h]
        # guests away from home, costing total_cost - home_cost[u][h] (the checker's
        # `migrations`); a together group may run split over several hosts now.
        self.at_home: list[dict[int, int]] = []
        self.home_cost: list[dict[int, int]] = []
        for unit in self.units:
            members_at: dict[int, int] = {}
            cost_at: dict[int, int] = {}
            for guest in unit.guests:
                where = self.position[guest.current_host or ""]
                members_at[where] = members_at.get(where, 0) + 1
                cost_at[where] = cost_at.get(where, 0) + guest.migration_cost
            self.at_home.append(members_at)
            self.home_cost.append(cost_at)
        self.total_cost = [sum(g.migration_cost for g in u.guests) for u in self.units]
        self.size = np.array([len(u.guests) for u in self.units], dtype=np.int64)
        self.demand = np.array([loads.demand_vector(u.demand) for u in self.units], dtype=np.int64)
        self.allowed = np.array([loads.unit_allowed_mask(u) for u in self.units], dtype=bool)
        self.online = np.flatnonzero(loads.online)
        self.online_set = {int(h) for h in self.online}
        self.budget = problem.migration.max_moves
        # Moves of guests outside the movable units (immovable, partly placed) count too.
        in_units = {name for unit in self.units for name in unit.names}
        away = [
            guest
            for guest in problem.guests
            if guest.name not in in_units
            and problem.runs_now(guest)
            and hosts.get(guest.name) is not None
            and hosts.get(guest.name) != guest.current_host
        ]
        self.other_moves = len(away)
        self.other_cost = sum(guest.migration_cost for guest in away)
        # Where the guests outside the units end (for anti-affinity counts).
        self.outside = {
            guest.name: hosts.get(guest.name)
            for guest in problem.guests
            if guest.name not in in_units
        }
        self._load_steps(loads)

    def _load_steps(self, loads: HostLoads) -> None:
        """The integer arithmetic of `spread`'s load steps on the online hosts."""
        problem = self.problem
        # Load steps: host h's load is sum_r used_r * scale[h, r] / denominator[h], so the
        # steps are the ceiling of SPREAD_STEPS * that, in integers as the checker.
        self.load_names = load_resources(problem)
        self.columns = [loads.resources.index(r) for r in self.load_names if r in loads.resources]
        count = len(problem.hosts)
        self.target = spread_target(problem)
        self.goal = next(o for o in problem.objective if o in GOALS)
        self.denominator = np.ones(count, dtype=np.int64)
        self.scale = np.zeros((count, len(self.columns)), dtype=np.int64)
        for h in self.online:
            capacity = problem.hosts[h].capacity
            capacities = [capacity.get(loads.resources[c], 0) for c in self.columns]
            present = [c for c in capacities if c > 0]
            if not present:
                continue
            denominator = len(present) * math.prod(present)
            self.denominator[h] = denominator
            for i, c in enumerate(capacities):
                if c > 0:
                    self.scale[h, i] = denominator // (len(present) * c)

    def place(self, where: dict[int, int]) -> None:
        """Put each unit `u` of `where` on host `where[u]`, moving its usage along."""
        for u, h in where.items():
            self.loads.used[int(self.at[u])] -= self.demand[u]
            self.loads.used[h] += self.demand[u]
            self.at[u] = h

    def moves_of(self, u: int, h: int) -> int:
        """Guests of unit `u` away from where they run now if it ends on host `h`."""
        return int(self.size[u]) - self.at_home[u].get(h, 0)

    def cost_of(self, u: int, h: int) -> int:
        """The migration cost of unit `u` ending on host `h`."""
        return self.total_cost[u] - self.home_cost[u].get(h, 0)

    def moves(self) -> int:
        return self.other_moves + sum(self.moves_of(u, int(h)) for u, h in enumerate(self.at))

    def cost(self) -> int:
        return self.other_cost + sum(self.cost_of(u, int(h)) for u, h in enumerate(self.at))

    def steps(self, h: int, used: IntArray) -> int:
        """Host `h`'s load in steps at usage `used`, rounded as the checker rounds it."""
        amounts = dict(zip(self.loads.resources, used.tolist(), strict=True))
        return host_load_steps(self.problem.hosts[h], amounts, self.load_names)

    def spread_of(self, hosts: list[int]) -> int:
        """The part of `spread` on `hosts`, as the checker counts it."""
        return sum((self.steps(h, self.loads.used[h]) - self.target) ** 2 for h in hosts)

    def all_steps(self) -> list[int]:
        """Every online host's load in steps, as the checker counts them."""
        return [self.steps(int(h), self.loads.used[h]) for h in self.online]

    def measure(self, hosts: list[int]) -> tuple[Fraction | int, int]:
        """What a round must lower, lexicographically: the goal stage (its part on
        `hosts` for `spread`, the exact squared variation for `imbalance`), then the
        migration cost (the `migrations` stage)."""
        if self.goal is Objective.SPREAD:
            return self.spread_of(hosts), self.cost()
        return ratio(self.all_steps()), self.cost()

    def goal_target(self) -> int:
        """The neighbourhood's target load, in 1/TARGET_DENOMINATOR steps: the even load
        for `spread`, the tangent point of the convex-concave procedure for `imbalance`
        (imbalance_stage.py)."""
        if self.goal is Objective.SPREAD:
            return self.target * TARGET_DENOMINATOR
        return tangent_target(self.all_steps())

    def load(self) -> npt.NDArray[np.float64]:
        """Load (in steps) of every online host."""
        used = self.loads.used[self.online][:, self.columns]
        numerator = (used * self.scale[self.online]).sum(axis=1)
        result: npt.NDArray[np.float64] = SPREAD_STEPS * numerator / self.denominator[self.online]
        return result


def _pick_hosts(state: _State, rng: random.Random, count: int) -> list[int]:
    """Hosts of one round: a few drawn from the most and least loaded quarters and at
    random, each joined by the homes of the guests moved onto it and the hosts holding
    guests moved away from it, so that a move can be taken back and spent elsewhere when
    the migration budget binds; up to `count` hosts."""
    online = [int(h) for h in state.online]
    if len(online) <= count:
        return online
    order = [online[i] for i in np.argsort(state.load(), kind="stable")]
    quarter = max(len(order) // 4, 1)
    away = [u for u, h in enumerate(state.at) if state.moves_of(u, int(h)) > 0]
    chosen: list[int] = []

    def add(h: int) -> None:
        if h not in chosen and len(chosen) < count:
            chosen.append(h)

    pools = [order[-quarter:], order[:quarter], online]
    turn = 0
    while len(chosen) < count:
        add(rng.choice(pools[turn % 3]))
        turn += 1
        last = chosen[-1]
        # Homes of the guests moved onto `last`, and where the guests of `last` went.
        linked = [h for u in away if state.at[u] == last for h in state.at_home[u]]
        linked += [int(state.at[u]) for u in away if last in state.at_home[u]]
        rng.shuffle(linked)
        for h in linked[:2]:
            if h != last and h in state.online_set:
                add(h)
    return sorted(chosen)


def _solve_neighbourhood(
    state: _State, hosts: list[int], options: SolveOptions, budget: Budget
) -> tuple[dict[int, int], bool] | None:
    """Best places among `hosts` for the movable units on them: unit -> host, and whether
    proven optimal; None when CP-SAT found nothing better than where they are."""
    on = set(hosts)
    freed = [u for u in range(len(state.units)) if int(state.at[u]) in on]
    if not freed:
        return None
    loads = state.loads
    kept = {h: loads.used[h].copy() for h in hosts}
    for u in freed:
        kept[int(state.at[u])] -= state.demand[u]
    classes = _kept_classes(state, on, set(freed))

    model = cp_model.CpModel()
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    for u in freed:
        options_u = [h for h in hosts if state.allowed[u, h]]
        for h in options_u:
            x[u, h] = model.new_bool_var("")
        model.add_exactly_one(x[u, h] for h in options_u)
        for h in options_u:
            model.add_hint(x[u, h], h == int(state.at[u]))
    usable = loads.usable
    for h in hosts:
        on_h = [(u, x[u, h]) for u in freed if (u, h) in x]
        for r in range(usable.shape[1]):
            terms = [(int(state.demand[u, r]), var) for u, var in on_h if state.demand[u, r] > 0]
            if terms:
                model.add(sum(a * v for a, v in terms) <= int(usable[h, r] - kept[h][r]))
    members: dict[str, list[int]] = {}  # class -> freed units with a member in it
    for u in freed:
        for name in state.units[u].classes:
            members.setdefault(name, []).append(u)
    for name, units_in in members.items():
        for h in hosts:
            held = classes.get(name, {}).get(h, 0)
            vars_h = [x[u, h] for u in units_in if (u, h) in x]
            if vars_h:
                model.add(sum(vars_h) <= max(0, 1 - held))
    # Moves: each member away from where it runs now counts against the budget, and its
    # migration cost is the tie-break; the rest of the plan keeps its own.
    moved_here = cp_model.LinearExpr.weighted_sum(
        [x[u, h] for u in freed for h in hosts if (u, h) in x],
        [state.moves_of(u, h) for u in freed for h in hosts if (u, h) in x],
    )
    cost_here = cp_model.LinearExpr.weighted_sum(
        [x[u, h] for u in freed for h in hosts if (u, h) in x],
        [state.cost_of(u, h) for u in freed for h in hosts if (u, h) in x],
    )
    if state.budget is not None:
        outside = state.moves() - sum(state.moves_of(u, int(state.at[u])) for u in freed)
        model.add(moved_here <= state.budget - outside)
    target = state.goal_target()
    host_loads = _host_load_steps(state, x, hosts, freed, kept)
    # Lexicographic in one objective: the distance to the target first, then the cost.
    distance = add_distance_to_target(model, host_loads, target)
    most_cost = sum(max(state.cost_of(u, h) for h in hosts) for u in freed) + 1
    model.minimize(cp_model.LinearExpr.sum([distance * most_cost, cost_here]))

    solver = _round_solver(options, budget)
    status = run_search(solver, model, budget)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    chosen = {u: h for (u, h), var in x.items() if solver.value(var)}
    return chosen, status == cp_model.OPTIMAL


def _kept_classes(state: _State, on: set[int], freed: set[int]) -> dict[str, dict[int, int]]:
    """Anti-affinity class -> host of `on` -> members that stay there (the units not
    `freed`, and the guests outside the movable units)."""
    classes: dict[str, dict[int, int]] = {}  # class -> host -> members kept there

    def hold(guest: Guest, h: int) -> None:
        if h in on:
            for name in guest.anti_affinity:
                counts = classes.setdefault(name, {})
                counts[h] = counts.get(h, 0) + 1

    for u, unit in enumerate(state.units):
        if u not in freed:
            for guest in unit.guests:
                hold(guest, int(state.at[u]))
    for guest in state.problem.guests:
        host = state.outside.get(guest.name)
        if host is not None:
            hold(guest, state.position[host])
    return classes


def _host_load_steps(
    state: _State,
    x: dict[tuple[int, int], cp_model.IntVar],
    hosts: list[int],
    freed: list[int],
    kept: dict[int, IntArray],
) -> list[tuple[cp_model.LinearExprT, int, int]]:
    """Per host of the round: its load in steps as a linear expression of `x`, and the
    least and largest value that expression takes."""
    host_loads: list[tuple[cp_model.LinearExprT, int, int]] = []
    for h in hosts:
        # Each unit's load on the host, rounded to a step: a linear stand-in for the
        # rounded-up sum the checker takes (no ceiling constraint with coefficients in
        # the billions, which CP-SAT bounded slowly); rounds are accepted on the exact
        # value (`_apply`), so the rounding can cost a round, never a wrong step.
        scale = state.scale[h]
        denominator = int(state.denominator[h])
        fixed = round(SPREAD_STEPS * int((kept[h][state.columns] * scale).sum()) / denominator)
        pairs = [
            (
                round(
                    SPREAD_STEPS * int((state.demand[u][state.columns] * scale).sum()) / denominator
                ),
                x[u, h],
            )
            for u in freed
            if (u, h) in x
        ]
        steps = fixed + cp_model.LinearExpr.weighted_sum(
            [v for _, v in pairs], [a for a, _ in pairs]
        )
        host_loads.append((steps, fixed, fixed + sum(a for a, _ in pairs)))
    return host_loads


def _round_solver(options: SolveOptions, budget: Budget) -> cp_model.CpSolver:
    """The solver of a round: the options' workers and seed, a limit of `_ROUND_S` of
    `budget`."""
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = max(1, options.workers)
    solver.parameters.random_seed = options.seed
    if options.deterministic:
        solver.parameters.interleave_search = True
    budget.limit_cpsat(solver.parameters, _ROUND_S)
    return solver


def _apply(state: _State, chosen: dict[int, int], hosts: list[int]) -> bool:
    """Move the units as `chosen` says if that lowers `state.measure`; whether it did
    (if not, nothing changed)."""
    before = state.measure(hosts)
    old = {u: int(state.at[u]) for u in chosen}
    state.place(chosen)
    if state.measure(hosts) < before:
        return True
    state.place(old)  # not better: undo
    return False


def solve_rebalance(
    problem: Problem, options: SolveOptions, incumbent: Plan, budget: Budget, first_plan_s: float
) -> Plan:
    """Improve the verified `incumbent` of a rebalance by neighbourhoods within `budget`
    (from the start of the solve); returns the best verified plan with stages bounded
    by `placement.bounds`."""
    started = budget.started
    state = _State(problem, incumbent)
    rng = random.Random(options.seed)
    size = _FIRST_HOSTS
    rounds = improved = proven = 0
    # Leave time to time the migrations and check the plan (about a second on 1,000).
    finish_s = SHARES.rebalance_finish * budget.limit_s
    search = budget.leaving(finish_s)
    while search.remaining() > _ROUND_S and state.units:
        if search.expired:
            break
        hosts = _pick_hosts(state, rng, size)
        before = search.elapsed()  # (work in deterministic mode, so sizes repeat)
        found = _solve_neighbourhood(state, hosts, options, search)
        took = search.elapsed() - before
        rounds += 1
        if found is None:
            size = max(_MIN_HOSTS, size - 2)
            continue
        chosen, optimal = found
        proven += optimal
        better_now = _apply(state, chosen, hosts)
        improved += better_now
        if optimal and took < _EASY_S:
            size = min(_MAX_HOSTS, size + 2)
        elif not optimal and not better_now:
            size = max(_MIN_HOSTS, size - 2)

    final = dict(state.hosts)
    for u, unit in enumerate(state.units):
        final.update((name, problem.hosts[int(state.at[u])].name) for name in unit.names)
    placement = Placement(hosts=final, reasons={a.guest: a.reason for a in incumbent.unplaced})
    candidate = finish_plan(problem, placement, options, "cpsat", started)
    stage_bounds = StageBounds(problem)
    best = with_own_bounds(problem, incumbent, stage_bounds)
    returned = "greedy"
    report = check(problem, candidate)
    if report.ok:
        candidate = with_own_bounds(problem, candidate, stage_bounds)
        if better(problem, candidate, best):
            best, returned = candidate, "neighbourhood search"
    else:
        logger.error(
            "BUG: the rebalance search's plan fails the checker (%s); returning the incumbent",
            "; ".join(v.message for v in report.violations[:3]),
        )
    statistics = SolveStatistics(
        first_plan_s=round(first_plan_s, 3),
        returned=returned,
        rebalance=RebalanceSearch(
            rounds=rounds,
            improved=improved,
            proven=proven,
            goal=state.goal.value,
            last_hosts=size,
        ),
        note=(
            "rebalance of a large cluster: neighbourhoods of a few hosts solved exactly; "
            "bounds from placement.bounds on the whole problem"
        ),
    )
    return attrs.evolve(
        best,
        solver="cpsat",
        runtime_s=round(time.perf_counter() - started, 6),
        statistics=statistics,
    )
