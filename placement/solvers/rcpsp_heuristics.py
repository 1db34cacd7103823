"""Makespan heuristics for a pure boot schedule (an RCPSP): sampled list schedules
improved by double justification.

A pure schedule (`placement.solvers.cpsat.pure`) is a resource-constrained project:
every guest boots once on its one host, boot pools (and the batch limit, as a pool of
ones) are renewable resources and `after` is a finish-to-start precedence. Here:

- the **serial schedule generation scheme**: jobs in a precedence-feasible order
  (an *activity list*), each at the earliest instant its predecessors and the pools allow;
- **regret-based biased random sampling** of activity lists on the latest finish times
  of the critical path (a job whose latest finish is much earlier than its rivals' is
  almost sure to go next; ties are a coin toss);
- **double justification** (forward-backward improvement, Valls, Ballestín and Quintanilla
  2005): every job shifted as late as it can go in order of decreasing finish, then as
  early as it can go in order of increasing start. Neither pass lengthens the schedule
  and it often shortens it.

`best_schedule` returns the shortest schedule it finds within a number of samples (the
same for a seed, whatever the machine), or until the caller says stop. Durations are whole
seconds, as everywhere in the schedule.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

import attrs

from placement.model import Problem

# The regret's exponent and floor in the sampling weights (Kolisch 1995: 1 and 1).
_REGRET_POWER = 1.0
_REGRET_FLOOR = 1.0
# Double justification repeats while it shortens the schedule, at most this often.
_MAX_JUSTIFY_ROUNDS = 4


@attrs.frozen
class Project:
    """A pure schedule as an RCPSP with jobs `0..n-1`: `durations[j]`, `loads[j]` as
    (resource, amount) pairs with amount > 0, `capacities[r]`, `predecessors[j]` and
    `successors[j]` (indices)."""

    names: tuple[str, ...]
    durations: tuple[int, ...]
    loads: tuple[tuple[tuple[int, int], ...], ...]
    capacities: tuple[int, ...]
    predecessors: tuple[tuple[int, ...], ...]
    successors: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, problem: Problem) -> Project:
        """Every guest of `problem` as a job; the boot pools and the batch limit (if any)
        as resources. A zero-length boot loads nothing (as in the checker's sweep)."""
        names = tuple(g.name for g in problem.guests)
        index = {name: j for j, name in enumerate(names)}
        pools = list(problem.boot_pools.items())
        capacities = [limit for _, limit in pools]
        if problem.schedule.max_starts is not None:
            capacities.append(problem.schedule.max_starts)
        loads = []
        for guest in problem.guests:
            load = [(r, guest.boot.load.get(pool, 0)) for r, (pool, _) in enumerate(pools)]
            if problem.schedule.max_starts is not None:
                load.append((len(pools), 1))
            loads.append(tuple((r, a) for r, a in load if a > 0 and guest.boot.duration_s))
        predecessors = [
            tuple(sorted({index[n] for n in g.boot.after if n in index})) for g in problem.guests
        ]
        successors: list[list[int]] = [[] for _ in names]
        for job, before in enumerate(predecessors):
            for other in before:
                successors[other].append(job)
        return cls(
            names=names,
            durations=tuple(g.boot.duration_s for g in problem.guests),
            loads=tuple(loads),
            capacities=tuple(capacities),
            predecessors=tuple(predecessors),
            successors=tuple(tuple(s) for s in successors),
        )

    def reversed(self) -> Project:
        """The same project with every precedence turned round (time running backwards)."""
        return attrs.evolve(self, predecessors=self.successors, successors=self.predecessors)

    def fits(self) -> bool:
        """Whether every job fits its resources alone (else no schedule exists)."""
        return all(a <= self.capacities[r] for load in self.loads for r, a in load)


def serial_schedule(project: Project, order: Sequence[int]) -> list[int]:
    """Start times of the serial schedule generation scheme: jobs in `order` (each after
    its predecessors), each at the earliest start its predecessors' finishes and the
    resources left allow."""
    durations, loads, capacities = project.durations, project.loads, project.capacities
    # What each resource has left per instant, grown as the schedule grows (its length is
    # the makespan, not the sum of the durations).
    free: list[list[int]] = [[] for _ in capacities]
    start = [0] * len(durations)
    for job in order:
        t = max((start[p] + durations[p] for p in project.predecessors[job]), default=0)
        length, load = durations[job], loads[job]
        t = _earliest_fit(free, capacities, load, t, length)
        for r, amount in load:
            row = free[r]
            for tau in range(t, t + length):
                row[tau] -= amount
        start[job] = t
    return start


def _earliest_fit(
    free: list[list[int]],
    capacities: Sequence[int],
    load: Sequence[tuple[int, int]],
    t: int,
    length: int,
) -> int:
    """The first instant from `t` at which `load` fits `free` for `length` instants."""
    while True:
        clash = -1
        for r, amount in load:
            row = free[r]
            if len(row) < t + length:
                row.extend([capacities[r]] * (t + length - len(row)))
            for tau in range(t + length - 1, t - 1, -1):
                if row[tau] < amount:
                    clash = max(clash, tau)
                    break
        if clash < 0:
            return t
        t = clash + 1


def makespan(project: Project, start: Sequence[int]) -> int:
    return max((s + d for s, d in zip(start, project.durations, strict=True)), default=0)


def justify(project: Project, start: Sequence[int]) -> list[int]:
    """Double justification of `start`, repeated while it shortens the schedule: never
    longer than `start`, and as feasible."""
    best = list(start)
    best_length = makespan(project, best)
    backward = project.reversed()
    durations = project.durations
    # Ties (zero-length boots) keep a predecessor before its successors.
    rank = [0] * len(durations)
    for position, job in enumerate(topological(project)):
        rank[job] = position
    for _ in range(_MAX_JUSTIFY_ROUNDS):
        # Right: latest finish first, as late as possible (forward in reversed time).
        finish = [s + d for s, d in zip(best, durations, strict=True)]
        order = sorted(range(len(best)), key=lambda j: (-finish[j], -best[j], -rank[j]))
        mirrored = serial_schedule(backward, order)
        length = makespan(project, mirrored)
        right = [length - m - d for m, d in zip(mirrored, durations, strict=True)]
        # Left: earliest start first, as early as possible.
        order = sorted(
            range(len(right)), key=lambda j: (right[j], right[j] + durations[j], rank[j])
        )
        left = serial_schedule(project, order)
        left_length = makespan(project, left)
        if left_length >= best_length:
            break
        best, best_length = left, left_length
    return best


def _chains(project: Project) -> tuple[list[int], list[int]]:
    """Per job, the longest precedence chain before its start (`head`) and from its start
    to the end of the project, itself included (`tail`)."""
    durations = project.durations
    order = topological(project)
    head = [0] * len(durations)
    for job in order:
        head[job] = max((head[p] + durations[p] for p in project.predecessors[job]), default=0)
    tail = [0] * len(durations)
    for job in reversed(order):
        tail[job] = durations[job] + max((tail[s] for s in project.successors[job]), default=0)
    return head, tail


def latest_finishes(project: Project) -> list[int]:
    """Each job's latest finish in a schedule as long as the critical path (from the
    precedences alone)."""
    head, tail = _chains(project)
    durations = project.durations
    length = max((h + d for h, d in zip(head, durations, strict=True)), default=0)
    return [length - t + d for t, d in zip(tail, durations, strict=True)]


def windows(project: Project, upper: int) -> list[tuple[int, int]]:
    """Each job's (earliest, latest) start in a schedule that ends by `upper`, from the
    precedences alone: the longest chain before it, and `upper` less the longest chain
    from its start (empty when that chain does not fit)."""
    head, tail = _chains(project)
    return [(h, upper - t) for h, t in zip(head, tail, strict=True)]


def _precedence_order(project: Project, pick: Callable[[list[int]], int]) -> list[int]:
    """The jobs in an order that puts each after its predecessors: at each step, the
    eligible job at index `pick(eligible)` (eligible in the order they became so)."""
    waiting = [len(p) for p in project.predecessors]
    eligible = [j for j, count in enumerate(waiting) if count == 0]
    order: list[int] = []
    while eligible:
        job = eligible.pop(pick(eligible))
        order.append(job)
        for nxt in project.successors[job]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                eligible.append(nxt)
    return order


def topological(project: Project) -> list[int]:
    """The jobs in an order that puts each after its predecessors (Kahn, smallest first)."""
    return _precedence_order(project, lambda eligible: 0)


def sampled_order(project: Project, priority: Sequence[int], rng: random.Random) -> list[int]:
    """An activity list drawn by regret-based biased random sampling: among the jobs whose
    predecessors are listed, job j is drawn with weight (max priority - priority[j] + 1),
    so jobs with the smallest `priority` (latest finish) tend to go first."""

    def pick(eligible: list[int]) -> int:
        worst = max(priority[j] for j in eligible)
        weights = [(worst - priority[j] + _REGRET_FLOOR) ** _REGRET_POWER for j in eligible]
        return rng.choices(range(len(eligible)), weights)[0]

    return _precedence_order(project, pick)


def best_schedule(
    project: Project,
    starts: Sequence[Sequence[int]],
    *,
    samples: int,
    seed: int,
    stop: Callable[[], bool] | None = None,
    lower_bound: int = 0,
) -> list[int]:
    """The shortest schedule found: each of `starts` (feasible schedules) justified, then
    `samples` sampled activity lists, each scheduled and justified; stops early when
    `stop()` says so (checked before each sample) or at `lower_bound`."""
    best: list[int] | None = None
    for start in starts:
        candidate = justify(project, start)
        if best is None or makespan(project, candidate) < makespan(project, best):
            best = candidate
    priority = latest_finishes(project)
    rng = random.Random(seed)
    for _ in range(samples):
        if best is not None and makespan(project, best) <= lower_bound:
            break
        if stop is not None and stop():
            break
        candidate = justify(
            project, serial_schedule(project, sampled_order(project, priority, rng))
        )
        if best is None or makespan(project, candidate) < makespan(project, best):
            best = candidate
    return best if best is not None else serial_schedule(project, topological(project))


def starts_of(project: Project, start_s: Mapping[str, int]) -> list[int]:
    """A plan's start times (guest name -> start, s) as the project's job vector."""
    return [start_s[name] for name in project.names]
