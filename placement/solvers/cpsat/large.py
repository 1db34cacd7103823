"""Problems too big for the full pair model: large-neighbourhood search from the incumbent.

The full model has one variable per (unit, allowed host) pair; 10,000 guests on 1,000
hosts make ten million, which no 2-core budget can build, let alone search. Restricting
each guest's allowed hosts to a few candidates gives a problem whose plans are plans of
the original (a restriction only removes options), small enough for the same model.

- Round 0: running guests keep the host the incumbent gives them (and may return to their
  current host); every other unit (a guest that boots, is unplaced, or moves) may use its
  incumbent host plus `k` candidates: the hosts with the most room left after the
  incumbent, and a seeded random sample of the hosts it fits on.
- Later rounds free the running guests of a few hosts too (the fullest ones, which bind
  `balance`, and random ones), each round starting from the best plan so far.

Each round is the ordinary lexicographic solve (`stages.improve`) on the restricted
problem, so it inherits the checker guard. Bounds and gaps are computed on the original
problem with `placement.bounds` alone: what CP-SAT proves about a restriction says nothing
about the original.
"""

from __future__ import annotations

import random
import time

import attrs
import numpy as np

from placement.bounds import StageBounds
from placement.check import check
from placement.indexing import HostIndex, units
from placement.model import Guest, Objective, Problem
from placement.plan import Plan, Unplaced
from placement.solvers import SolveOptions
from placement.solvers.budget import Budget
from placement.solvers.common import HostLoads, Unit, better, explain_unplaced
from placement.solvers.cpsat.plans import check_estimate_s, with_own_bounds
from placement.solvers.cpsat.reasons import structural_reasons
from placement.solvers.cpsat.stages import improve
from placement.statistics import Incumbent, NeighbourhoodRound, SolveStatistics

# Pairs a round's restricted model aims at: a model of this size is built in a few
# seconds and searched usefully within tens of seconds on 2 cores.
TARGET_PAIRS = 60_000
_MIN_CANDIDATES = 4
_MAX_CANDIDATES = 40
# A round is not worth starting with less time than this left (building the restricted
# model of 10,000 guests alone takes a few seconds).
MIN_ROUND_S = 3.0
# What a round spends beyond the search budget it is given (restricting, building the
# model, valuing plans): about 1.5 ms a guest at first, then as measured; deterministic
# mode charges this estimate as work instead of measuring.
_OVERHEAD_S_PER_GUEST = 0.0015


def _free_step(problem: Problem) -> int:
    """Hosts whose running guests a round frees, per round number: a twentieth of the
    online hosts (at least 2), so rebalancing a 100-host cluster moves work on 5 hosts."""
    return max(2, sum(1 for host in problem.hosts if host.online) // 20)


def solve_large(
    problem: Problem,
    options: SolveOptions,
    incumbent: Plan,
    budget: Budget,
    first_plan_s: float,
    known_bounds: dict[str, float] | None = None,
    own_bounds: StageBounds | None = None,
) -> Plan:
    """Improve the verified `incumbent` by solving restricted problems within `budget`
    (from the start of the solve); returns the best verified plan with stages bounded on
    the original problem (by `placement.bounds`, `own_bounds` when the caller built them
    already, and by `known_bounds`, proven elsewhere on the whole problem)."""
    started = budget.started
    structural = structural_reasons(problem)
    stage_bounds = _Bounds(problem, known_bounds or {}, own_bounds)
    best = with_own_bounds(problem, incumbent, stage_bounds)
    rng = random.Random(options.seed)
    rounds: list[NeighbourhoodRound] = []
    kept: list[Incumbent] = []  # each better plan, when it was found
    number, free_step = 0, _free_step(problem)
    # A round ends with checks of the whole problem (its own and this loop's), kept out of
    # the round's budget.
    finish_s = 6 * check_estimate_s(problem)
    # A round's work beyond its search (as measured; charged in deterministic mode).
    overhead_s = first_round_s(problem) - MIN_ROUND_S - finish_s
    while budget.fits(MIN_ROUND_S + finish_s + overhead_s):
        round_started = time.perf_counter()
        restricted, movers, pairs = restrict(problem, best, rng, freed_hosts=number * free_step)
        if movers == 0:
            # Every guest is settled (a rebalance): free hosts from the first round on.
            restricted, movers, pairs = restrict(
                problem, best, rng, freed_hosts=(number + 1) * free_step
            )
        # Earlier rounds get the larger share: round 0 holds most of the gain.
        remaining = budget.remaining() - finish_s - overhead_s
        round_s = remaining if remaining < 4 * MIN_ROUND_S else remaining / 2
        if budget.deterministic:
            budget.charge(overhead_s)
        round_options = attrs.evolve(options, time_limit_s=round_s)
        found = improve(restricted, round_options, best, structural, budget.sub(round_s), 0.0)
        if found.statistics.model_skipped is not None:
            break  # even the restricted model does not fit the time left
        candidate = with_own_bounds(problem, found, stage_bounds)
        improved = check(problem, candidate).ok and better(problem, candidate, best)
        if improved:
            best = candidate
            kept.append(_found(best, started))
        if not budget.deterministic:
            overhead_s = max(time.perf_counter() - round_started - round_s, 0.0)
        rounds.append(
            NeighbourhoodRound(
                round=number,
                seconds=round(time.perf_counter() - round_started, 3),
                movers=movers,
                pairs=pairs,
                improved=improved,
                values=best.stage_values(),
            )
        )
        number += 1
    runtime_s = round(time.perf_counter() - started, 6)
    unplaced = _reasons_on_original(problem, best, structural)
    statistics = SolveStatistics(
        first_plan_s=round(first_plan_s, 3),
        returned="neighbourhood search" if kept else "greedy",
        incumbents=kept,
        neighbourhoods=rounds,
        note=(
            "too many (guest, host) pairs for the full model: neighbourhoods of the "
            "incumbent were solved; bounds from placement.bounds on the whole problem"
        ),
    )
    return attrs.evolve(
        best,
        solver="cpsat",
        runtime_s=runtime_s,
        unplaced=unplaced,
        statistics=statistics,
    )


def _found(plan: Plan, started: float) -> Incumbent:
    """A better plan the neighbourhoods found: when, and its stage values."""
    values = plan.stage_values()
    return Incumbent(round(time.perf_counter() - started, 3), "neighbourhood search", values)


def first_round_s(problem: Problem) -> float:
    """The least time left (s) with which `solve_large` starts a first round."""
    return MIN_ROUND_S + 6 * check_estimate_s(problem) + _OVERHEAD_S_PER_GUEST * len(problem.guests)


def restrict(
    problem: Problem, plan: Plan, rng: random.Random, freed_hosts: int = 0
) -> tuple[Problem, int, int]:
    """`problem` with each guest's allowed hosts cut down to a few candidates around `plan`.

    Returns the restricted problem, the number of units free to choose among candidates
    and the number of (unit, host) pairs. Every host `plan` gives a guest stays allowed,
    so `plan` is a plan of the restricted problem. `freed_hosts` > 0 also frees the
    running guests of that many hosts (half the fullest, half at random).
    """
    index = HostIndex(problem)
    hosts = [h.name for h in problem.hosts]
    assigned = plan.by_guest()

    def host_of(guest: Guest) -> int | None:
        assignment = assigned.get(guest.name)
        if assignment is None:
            # No assignment: a running guest stays, any other guest is unplaced.
            return index.position[guest.current_host or ""] if problem.runs_now(guest) else None
        return index.position[assignment.host] if assignment.host is not None else None

    groups = units(problem)
    demand = [index.vector(_summed(members)) for members in groups]
    chosen = [host_of(members[0]) for members in groups]
    used = index.fixed.copy()
    for row, h in zip(demand, chosen, strict=True):
        if h is not None:
            used[h] += row
    usable = np.maximum(index.usable, 1)
    # Room of a host: the smallest free share over its resources.
    room = ((index.usable - used) / usable).min(axis=1)
    room = np.where(index.online, room, -np.inf)

    freed: set[int] = set()
    if freed_hosts > 0:
        fullest = [int(h) for h in np.argsort(room) if index.online[h]]
        freed.update(fullest[: (freed_hosts + 1) // 2])
        online = [h for h in range(len(hosts)) if index.online[h]]
        freed.update(rng.sample(online, min(len(online), freed_hosts // 2 + 1)))

    def settled(members: tuple[Guest, ...], h: int | None) -> bool:
        # A unit whose members all keep running where they run now, on a host not freed.
        return (
            h is not None
            and h not in freed
            and all(problem.runs_now(g) and g.current_host == hosts[h] for g in members)
        )

    movers = [i for i, members in enumerate(groups) if not settled(members, chosen[i])]
    settled_count = len(groups) - len(movers)
    k = (TARGET_PAIRS - settled_count) // max(len(movers), 1)
    k = max(_MIN_CANDIDATES, min(_MAX_CANDIDATES, k))

    candidates = {
        i: _candidates(problem, index, groups[i], chosen[i], room, k, rng) for i in movers
    }

    guests: list[Guest] = []
    group_of = {g.name: i for i, members in enumerate(groups) for g in members}
    for guest in problem.guests:
        i = group_of[guest.name]
        if i in candidates:
            allowed = frozenset(hosts[h] for h in candidates[i])
        else:
            h = chosen[i]
            assert h is not None  # a settled unit has a host
            allowed = frozenset({hosts[h]})
        # The model's converter types confuse mypy's attrs plugin; a frozenset is what
        # the field holds.
        guests.append(attrs.evolve(guest, hosts=allowed))  # type: ignore[arg-type]
    pairs = settled_count + sum(len(c) for c in candidates.values())
    return attrs.evolve(problem, guests=guests), len(movers), pairs


def _candidates(
    problem: Problem,
    index: HostIndex,
    members: tuple[Guest, ...],
    current: int | None,
    room: np.ndarray,
    k: int,
    rng: random.Random,
) -> set[int]:
    """The hosts a unit free to move may use in a round: its `current` host, its members'
    own hosts, and about `k` others it fits on (the roomiest half, then a random sample)."""
    mask = index.fits_alone(_summed(members))
    for guest in members:
        mask &= index.allowed(guest)
    options = np.flatnonzero(mask)
    keep: set[int] = set()
    if current is not None:
        keep.add(current)
    for guest in members:
        if problem.runs_now(guest) and mask[index.position[guest.current_host or ""]]:
            keep.add(index.position[guest.current_host or ""])
    if len(options) > 0:
        # Most room first, then a random sample for diversity.
        roomiest = options[np.argsort(-room[options], kind="stable")][: (k + 1) // 2]
        keep.update(int(h) for h in roomiest)
        rest = [int(h) for h in options if int(h) not in keep]
        keep.update(rng.sample(rest, min(len(rest), k - len(keep) + len(roomiest) // 2)))
    return keep


def _summed(members: tuple[Guest, ...]) -> dict[str, int]:
    total: dict[str, int] = {}
    for guest in members:
        for resource, amount in guest.demand.items():
            total[resource] = total.get(resource, 0) + amount
    return total


class _Bounds:
    """`placement.bounds` per stage, tightened by bounds proven elsewhere on the whole
    problem (the type-count model's, when no guest was held out of it)."""

    def __init__(
        self, problem: Problem, known: dict[str, float], own: StageBounds | None = None
    ) -> None:
        # Built once per problem: 2-5 s on 10,000 guests.
        self._own = own or StageBounds(problem)
        self._known = known

    def __call__(self, objective: Objective, held: dict[str, float]) -> float | None:
        own = self._own(objective, held)
        known = self._known.get(objective.value)
        if known is None:
            return own
        if own is None:
            return known
        return min(own, known) if objective.maximise else max(own, known)


def _reasons_on_original(
    problem: Problem, plan: Plan, structural: dict[str, str]
) -> tuple[Unplaced, ...]:
    """Why each unplaced guest is out, judged on the original problem (the restricted
    problems' reasons would blame the candidate lists)."""
    host_of = {a.guest: a.host for a in plan.assignments}
    out = [g for g in problem.guests if host_of.get(g.name) is None]
    if not out:
        return ()
    loads = HostLoads(problem)
    groups = units(problem)
    for members in groups:
        host = host_of.get(members[0].name)
        if host is not None:
            loads.add(Unit.of(members), host)
    group_of = {g.name: members for members in groups for g in members}
    reasons = []
    for guest in out:
        reason = structural.get(guest.name)
        if reason is None:
            missing = [d for d in guest.boot.after if host_of.get(d) is None]
            if missing:
                reason = f"starts after {missing[0]}, which is not placed"
        if reason is None:
            unit = Unit.of(group_of[guest.name])
            if loads.candidates(unit).any():
                reason = (
                    "a host has room, but the higher objective stages were better served "
                    "without it (the boot schedule within the horizon, or guests of higher "
                    "priority)"
                )
            else:
                reason = explain_unplaced(problem, loads, group_of[guest.name])
        reasons.append(Unplaced(guest.name, reason))
    return tuple(reasons)
