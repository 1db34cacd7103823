"""Emptying hosts: a neighbourhood search for the `consolidate` stage.

On tight packings CP-SAT's whole-model search stops one to three hosts above the best
packing: its generic neighbourhoods free random variables, while a packing gets better
only when one host's guests find room on a few others. This search works on hosts:

- take the least loaded used host (the target; now and then one of the three least
  loaded), and a few other used hosts its units may go to;
- hold every other unit where it is, and ask CP-SAT to re-place the units of those hosts
  among them, with as little load as possible left on the target;
- keep the answer when the target is no lighter than before (so the search drifts over
  plateaus); when the target empties, one host fewer is used.

Each neighbourhood is the full model (every rule, the earlier stages held at their
values) with the other units' variables fixed, so its solutions are plans of the whole
problem. The model has no symmetry rule (the search moves units between hosts of a class
in any order): its result is relabelled before it becomes a hint of the main model.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ortools.sat.python import cp_model

from placement.model import Objective
from placement.solvers import SolveOptions
from placement.solvers.budget import Budget
from placement.solvers.cpsat.model import Solution, add_hint, build_model, hold
from placement.solvers.cpsat.objectives import stage_expression
from placement.solvers.cpsat.search import run_search
from placement.solvers.cpsat.view import ProblemView, canonical_hosts

if TYPE_CHECKING:
    from placement.solvers.cpsat.variables import Variables

# Hosts per neighbourhood (the target and the hosts that may take its units), and the
# search time each gets: on 40-120 guests of vector packing, 4 hosts at 0.2 s packed
# better in 10 s than 3 or 5 hosts (measured in the session that added this).
NEIGHBOURHOOD_HOSTS = 4
ROUND_S = 0.2
# Above this many (unit, host) pairs one neighbourhood's model costs too much to send
# to CP-SAT hundreds of times.
MAX_PAIRS = 60_000
# Per unit, on top of its share of the host: fewer units left on the target is better.
_UNIT_WEIGHT = 100
_LOAD_SCALE = 1000
# Work charged per round beyond CP-SAT's own (a small round on 40 guests
# took about 25 ms of wall time, on 120 guests about 60 ms, mostly presolve and Python).
_ROUND_OVERHEAD_S = 0.01
_PAIR_OVERHEAD_S = 5e-6
# A run of rounds without any solution (each neighbourhood infeasible or timed out) ends
# the search: the held stages leave no room to move.
_MAX_FAILED_ROUNDS = 20


def applies(view: ProblemView, stages: Sequence[Objective]) -> bool:
    """Whether the search can run: a model small enough, and no `imbalance` stage to hold
    (it is held by a rounded ratio that a fresh model does not reproduce)."""
    return view.num_pairs <= MAX_PAIRS and Objective.IMBALANCE not in stages


def empty_hosts(
    view: ProblemView,
    holds: Sequence[tuple[Objective, int]],
    incumbent: Solution,
    options: SolveOptions,
    budget: Budget,
    lower_bound: int,
) -> tuple[Solution, dict[str, Any]]:
    """Search neighbourhoods of `incumbent` within what is left of `budget` (work in
    deterministic mode), the stages in `holds` kept at their model values; stop early
    once `lower_bound` hosts are used. Returns the best solution, relabelled for the main
    model's symmetry rule, and what the search did."""
    started = time.perf_counter()
    start_count = used = _used_hosts(view, incumbent)
    if budget.remaining() < ROUND_S / 4:
        return incumbent, _log(0, start_count, start_count, started)
    variables = build_model(view, symmetry=False)
    for objective, value in holds:
        hold(variables, objective, stage_expression(objective, view, variables), value)
    model = variables.model
    domains = {pair: model.proto.variables[var.index].domain for pair, var in variables.x.items()}
    placed_domains = [model.proto.variables[var.index].domain for var in variables.placed]
    share = _load_shares(view)
    countable = [h for h in view.online_hosts if h not in view.frozen_hosts]
    rng = random.Random(options.seed)

    best = incumbent
    rounds = failed = 0
    # What a round costs beyond CP-SAT's deterministic time (its Python and presolve work
    # on the whole model), charged in deterministic mode so the rounds stay bounded.
    overhead = _ROUND_OVERHEAD_S + _PAIR_OVERHEAD_S * view.num_pairs
    while used > lower_bound and failed < _MAX_FAILED_ROUNDS:
        if budget.expired:
            break
        if not budget.deterministic and budget.remaining() < ROUND_S / 4:
            break
        hosts = _neighbourhood(view, best, share, countable, rng)
        if hosts is None:
            break  # no used host has units that could go elsewhere
        target = hosts[0]
        freed = [u for u, h in enumerate(best.unit_host) if h in hosts]
        narrowed = _fix_outside(view, best, set(freed), set(hosts), domains, placed_domains)
        model.minimize(
            sum(
                (share[u] + _UNIT_WEIGHT) * variables.x[u, target]
                for u in freed
                if (u, target) in variables.x
            )
        )
        add_hint(view, variables, best)
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = 1
        solver.parameters.random_seed = rng.randrange(1 << 30)
        budget.limit_cpsat(solver.parameters, ROUND_S)
        status = run_search(solver, model, budget)
        if budget.deterministic:
            budget.charge(overhead)
        _release(narrowed)
        rounds += 1
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            failed += 1
            continue
        failed = 0
        found = _read(variables, solver, best, freed, hosts)
        if _target_load(share, found, target) > _target_load(share, best, target):
            continue  # CP-SAT dropped the hint and ended worse: keep the old packing
        best = found
        used = _used_hosts(view, best)
    relabelled = type(best)(canonical_hosts(view, best.unit_host), best.slot_start, best.move_start)
    return relabelled, _log(rounds, start_count, used, started)


def _log(rounds: int, hosts_before: int, hosts_after: int, started: float) -> dict[str, Any]:
    return {
        "rounds": rounds,
        "hosts_emptied": hosts_before - hosts_after,
        "hosts_before": hosts_before,
        "hosts_after": hosts_after,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _load_shares(view: ProblemView) -> list[int]:
    """Each unit's size: its demand as a share of a typical usable capacity, summed over
    resources, in thousandths (the part of a host it takes)."""
    usable = view.index.usable[list(view.online_hosts)]
    typical: dict[str, int] = {}
    for r, resource in enumerate(view.resources):
        sizes = sorted(int(size) for size in usable[:, r])
        sizes = [size for size in sizes if size > 0]
        if sizes:
            typical[resource] = sizes[len(sizes) // 2]
    return [
        sum(
            _LOAD_SCALE * amount // typical[resource]
            for resource, amount in unit.demand.items()
            if resource in typical
        )
        for unit in view.units
    ]


def _used_hosts(view: ProblemView, solution: Solution) -> int:
    """The `consolidate` value of `solution`: online hosts holding a unit or a frozen copy."""
    online = set(view.online_hosts)
    return len({h for h in solution.unit_host if h in online} | (view.frozen_hosts & online))


def _target_load(share: list[int], solution: Solution, target: int) -> int:
    return sum(share[u] + _UNIT_WEIGHT for u, h in enumerate(solution.unit_host) if h == target)


def _neighbourhood(
    view: ProblemView,
    solution: Solution,
    share: list[int],
    countable: list[int],
    rng: random.Random,
) -> list[int] | None:
    """The target host first, then up to `NEIGHBOURHOOD_HOSTS - 1` other used hosts that
    some unit of the target may use; None when no used host has such a unit."""
    load: dict[int, int] = {}
    on_host: dict[int, list[int]] = {}
    for u, h in enumerate(solution.unit_host):
        if h is not None:
            load[h] = load.get(h, 0) + share[u] + _UNIT_WEIGHT
            on_host.setdefault(h, []).append(u)
    ranked = sorted((h for h in countable if h in load), key=lambda h: (load[h], h))
    # Mostly the lightest host; now and then one of the next two, to leave a plateau.
    order = ranked if rng.random() < 0.8 else rng.sample(ranked[:3], min(3, len(ranked)))
    order += [h for h in ranked if h not in order]
    for target in order:
        reachable = {
            h
            for u in on_host[target]
            for h in view.units[u].candidates
            if h != target and h in load
        }
        if reachable:
            others = rng.sample(sorted(reachable), min(NEIGHBOURHOOD_HOSTS - 1, len(reachable)))
            return [target, *others]
    return None


def _fix_outside(
    view: ProblemView,
    solution: Solution,
    freed: set[int],
    hosts: set[int],
    domains: dict[tuple[int, int], Any],
    placed_domains: list[Any],
) -> list[Any]:
    """Hold every unit but `freed` where `solution` has it (or unplaced), and keep the
    freed ones on `hosts`, by narrowing the variables' domains in place; returns the
    domains narrowed. (A unit held on one host needs only that pair fixed: the model's
    exactly-one rule fixes the rest in presolve.)"""
    narrowed: list[Any] = []
    for unit in view.units:
        u = unit.index
        own = solution.unit_host[u]
        if own is None:
            placed_domains[u][1] = 0
            narrowed.append(placed_domains[u])
        elif u not in freed:
            domains[u, own][0] = 1
            narrowed.append(domains[u, own])
        else:
            for h in unit.candidates:
                if h not in hosts:
                    domains[u, h][1] = 0
                    narrowed.append(domains[u, h])
    return narrowed


def _read(
    variables: Variables,
    solver: cp_model.CpSolver,
    before: Solution,
    freed: list[int],
    hosts: list[int],
) -> Solution:
    """The solver's solution: `before` but the freed units' hosts and every start (the
    held units' pairs were fixed)."""
    unit_host = list(before.unit_host)
    for u in freed:
        unit_host[u] = next(
            (h for h in hosts if (u, h) in variables.x and solver.boolean_value(variables.x[u, h])),
            None,
        )
    return type(before)(
        tuple(unit_host),
        tuple(int(solver.value(start)) for start in variables.start),
        tuple(int(solver.value(start)) for start in variables.migrations.start),
    )


def _release(narrowed: list[Any]) -> None:
    """Undo `_fix_outside`: back to {0, 1} (booleans, as `create_variables` made them)."""
    for domain in narrowed:
        domain[0] = 0
        domain[1] = 1
