"""The plan resolved against its problem: what every rule's checker reads.

`resolve` turns the plan into one `Decision` per guest (the action its state implies,
usable times) and the `assignment` violations found on the way; `occupancies` says who
holds which host when; `Context` gathers those with the boots, the migrations and the
peaks of the boot pools and of the running migrations, which both the rules and the
metrics read. The helpers below it sweep half-open intervals and shorten name lists for
messages.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence

import attrs

from placement.check.report import Violation
from placement.errors import InputError, InvalidPlanError
from placement.model import Guest, GuestState, Problem
from placement.plan import Action, Assignment, Plan, expected_action

INF = math.inf
# How many guest names a message spells out before it says "+N more".
_NAMES_IN_MESSAGE = 8

#: A peak of summed load and the first instant it is reached (None when it is 0).
Peak = tuple[int, int | None]

#: A rule's checker: every breach of that one rule in a resolved plan, in report order.
Checker = Callable[["Context"], list[Violation]]


@attrs.frozen
class Decision:
    """What the plan decides for one guest, with the action implied by the guest's state.

    `action` is the action the guest's state and `host` imply, whatever the plan wrote
    (the difference is an `assignment` violation). For `start` and `migrate`, `start_s`
    and `ready_s` are usable integers even when the plan's were wrong: a start then runs
    for exactly its boot duration, a migration for exactly its migration time, and a
    missing time counts as 0, so the later rules judge the plan as close to what it says
    as possible. `written_ready_s` is the plan's own `ready_s` when it is usable.
    """

    guest: Guest
    host: str | None
    action: Action
    start_s: int | None
    ready_s: int | None
    written_ready_s: int | None = None


@attrs.frozen
class Occupancy:
    """A guest (or its frozen copy) holding a host over `[start_s, end_s)`."""

    guest: Guest
    start_s: int
    end_s: float  # INF when it keeps the host
    role: str  # shown in messages: "", "leaving", "frozen", "arriving"
    arrives: bool = False  # a start or a migration in: the plan brings it to the host


def unknown_names(problem: Problem, plan: Plan) -> list[InputError]:
    """An error per guest or host the plan names that the problem does not have."""
    errors = []
    for index, assignment in enumerate(plan.assignments):
        if not problem.has_guest(assignment.guest):
            errors.append(
                InputError(f"assignments[{index}].guest", f"unknown guest '{assignment.guest}'")
            )
        if assignment.host is not None and not problem.has_host(assignment.host):
            errors.append(
                InputError(f"assignments[{index}].host", f"unknown host '{assignment.host}'")
            )
    for index, unplaced in enumerate(plan.unplaced):
        if not problem.has_guest(unplaced.guest):
            errors.append(
                InputError(f"unplaced[{index}].guest", f"unknown guest '{unplaced.guest}'")
            )
    return errors


def _as_time(value: object) -> int | None:
    """`value` when it is a usable instant (an int >= 0), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _timing_issues(guest: Guest, assignment: Assignment, action: Action) -> list[str]:
    start_s, ready_s = assignment.start_s, assignment.ready_s
    if action not in (Action.START, Action.MIGRATE):
        if start_s is None and ready_s is None:
            return []
        return [f"a {action.value} has no times (got start_s={start_s!r}, ready_s={ready_s!r})"]
    issues = []
    start, ready = _as_time(start_s), _as_time(ready_s)
    if start is None:
        issues.append(f"start_s must be an integer >= 0 (got {start_s!r})")
    if ready is None:
        issues.append(f"ready_s must be an integer >= 0 (got {ready_s!r})")
    elif start is not None and action is Action.START:
        expected = start + guest.boot.duration_s
        if ready != expected:
            issues.append(
                f"ready_s must be start_s + duration_s = {start} + "
                f"{guest.boot.duration_s} = {expected} (got {ready})"
            )
    # A migration's ready_s that is a usable instant but not start_s + its migration time
    # is a `migration_time` violation, reported apart.
    return issues


def resolve(problem: Problem, plan: Plan) -> tuple[list[Decision], list[Violation]]:
    """One decision per guest, in problem order, and the `assignment` violations.

    A guest without an assignment is judged as left alone: a running guest stays where it
    runs, any other guest stays unplaced. When a guest is assigned twice, the first
    assignment counts.
    """
    errors = unknown_names(problem, plan)
    if errors:
        raise InvalidPlanError(errors)

    violations: list[Violation] = []
    first: dict[str, Assignment] = {}
    for index, assignment in enumerate(plan.assignments):
        if assignment.guest in first:
            violations.append(
                Violation(
                    "assignment",
                    f"guest {assignment.guest} is assigned twice "
                    f"(assignments[{index}] repeats an earlier one, which counts)",
                    guests=(assignment.guest,),
                )
            )
        else:
            first[assignment.guest] = assignment

    decisions = []
    for guest in problem.guests:
        found = first.get(guest.name)
        if found is None:
            running = problem.runs_now(guest)
            violations.append(
                Violation(
                    "assignment",
                    f"guest {guest.name} has no assignment (judged as "
                    + ("staying where it runs)" if running else "not placed)"),
                    guests=(guest.name,),
                    hosts=(guest.current_host,) if running and guest.current_host else (),
                )
            )
            host = guest.current_host if running else None
            implied = expected_action(problem, guest, host)
            decisions.append(Decision(guest, host, implied, None, None))
            continue
        assignment = found

        action = expected_action(problem, guest, assignment.host)
        issues = []
        if assignment.action is not action:
            issues.append(f"action must be {action.value} (got {assignment.action.value})")
        issues.extend(_timing_issues(guest, assignment, action))
        if issues:
            where = f"on {assignment.host}" if assignment.host is not None else "without a host"
            violations.append(
                Violation(
                    "assignment",
                    f"guest {guest.name} ({guest.state.value}, current host "
                    f"{guest.current_host}) {where}: " + "; ".join(issues),
                    guests=(guest.name,),
                    hosts=(assignment.host,) if assignment.host is not None else (),
                )
            )

        start_s: int | None = None
        ready_s: int | None = None
        if action in (Action.START, Action.MIGRATE):
            start_s = _as_time(assignment.start_s) or 0
            if action is Action.START:
                ready_s = start_s + guest.boot.duration_s
            else:
                ready_s = start_s + problem.migration_duration(guest)
        written = _as_time(assignment.ready_s) if _as_time(assignment.start_s) is not None else None
        decisions.append(Decision(guest, assignment.host, action, start_s, ready_s, written))
    return decisions, violations


def shown_names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_NAMES_IN_MESSAGE])
    if len(names) > _NAMES_IN_MESSAGE:
        shown += f", ... (+{len(names) - _NAMES_IN_MESSAGE} more)"
    return shown


def unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def sweep_peak(intervals: Iterable[tuple[int, float, int]]) -> Peak:
    """The highest summed amount of half-open intervals `(start, end, amount)`.

    Returns the peak and the first instant it is reached (None when the peak is 0).
    """
    deltas: dict[float, int] = defaultdict(int)
    for start, end, amount in intervals:
        if amount == 0 or end <= start:
            continue
        deltas[start] += amount
        if end != INF:
            deltas[end] -= amount
    peak, peak_at, level = 0, None, 0
    for instant in sorted(deltas):
        level += deltas[instant]
        if level > peak:
            peak, peak_at = level, int(instant)
    return peak, peak_at


def occupancies(problem: Problem, decisions: Sequence[Decision]) -> dict[str, list[Occupancy]]:
    """Host name -> what holds it, and when (see docs/rules.md, `capacity`)."""
    held: dict[str, list[Occupancy]] = defaultdict(list)
    for decision in decisions:
        guest = decision.guest
        if guest.state is GuestState.FROZEN and problem.holds_current_host(guest):
            assert guest.current_host is not None  # holds_current_host implies it
            held[guest.current_host].append(Occupancy(guest, 0, INF, "frozen"))
        if decision.host is None:
            continue
        if decision.action is Action.STAY:
            held[decision.host].append(Occupancy(guest, 0, INF, ""))
        elif decision.action is Action.START:
            assert decision.start_s is not None
            held[decision.host].append(Occupancy(guest, decision.start_s, INF, "", True))
        elif decision.action is Action.MIGRATE:
            assert decision.start_s is not None
            assert decision.ready_s is not None
            assert guest.current_host is not None
            held[guest.current_host].append(Occupancy(guest, 0, decision.ready_s, "leaving"))
            held[decision.host].append(Occupancy(guest, decision.start_s, INF, "arriving", True))
    return held


def occupancy_label(occupancy: Occupancy) -> str:
    name = occupancy.guest.name
    return f"{name} ({occupancy.role})" if occupancy.role else name


def boots_of(decisions: Sequence[Decision]) -> list[Decision]:
    return [d for d in decisions if d.action is Action.START]


def booting_at(boots: Iterable[Decision], instant: int) -> list[Decision]:
    return [
        d
        for d in boots
        if d.start_s is not None and d.ready_s is not None and d.start_s <= instant < d.ready_s
    ]


def boot_span(decision: Decision) -> tuple[int, float]:
    assert decision.start_s is not None
    assert decision.ready_s is not None
    return decision.start_s, decision.ready_s


def migrations_of(decisions: Sequence[Decision]) -> list[Decision]:
    return [d for d in decisions if d.action is Action.MIGRATE]


def pool_load(problem: Problem, decision: Decision) -> Mapping[str, int]:
    """What a boot or a migration adds to the boot pools while it runs."""
    if decision.action is Action.MIGRATE:
        return problem.migration.load
    return decision.guest.boot.load


def pool_peaks(problem: Problem, users: Sequence[Decision]) -> dict[str, Peak]:
    """Pool -> its peak load and when, over boots and migrations (`users`)."""
    by_pool: dict[str, list[tuple[int, float, int]]] = {pool: [] for pool in problem.boot_pools}
    for decision in users:
        start, end = boot_span(decision)
        for pool, load in pool_load(problem, decision).items():
            by_pool.setdefault(pool, []).append((start, end, load))
    return {pool: sweep_peak(intervals) for pool, intervals in by_pool.items()}


def migration_hosts(decision: Decision) -> tuple[str, ...]:
    return unique(h for h in (decision.guest.current_host, decision.host) if h is not None)


def migration_peaks(
    problem: Problem, migrations: Sequence[Decision]
) -> tuple[Peak, dict[str, Peak]]:
    """The cluster-wide peak of running migrations and when, and the same per host (as
    source or target)."""
    total = sweep_peak((*boot_span(d), 1) for d in migrations)
    by_host: dict[str, list[Decision]] = defaultdict(list)
    for decision in migrations:
        for host in migration_hosts(decision):
            by_host[host].append(decision)
    per_host = {
        host.name: sweep_peak((*boot_span(d), 1) for d in by_host.get(host.name, ()))
        for host in problem.hosts
    }
    return total, per_host


@attrs.frozen
class Context:
    """A plan resolved against its problem, and what several rules and metrics share.

    `decisions`: one per guest, in problem order. `malformed`: the `assignment`
    violations found while resolving. `held`: host name -> what holds it, and when.
    `boots`, `migrations`: the decisions that start or migrate a guest. `pool_peaks`:
    per boot pool, its peak load over boots and migrations. `migration_peaks`: the peak of
    running migrations cluster-wide, and per host.
    """

    problem: Problem
    plan: Plan
    decisions: Sequence[Decision]
    malformed: Sequence[Violation]
    held: Mapping[str, Sequence[Occupancy]]
    boots: Sequence[Decision]
    migrations: Sequence[Decision]
    pool_peaks: Mapping[str, Peak]
    migration_peaks: tuple[Peak, Mapping[str, Peak]]


def resolved(problem: Problem, plan: Plan) -> Context:
    """The plan resolved against `problem`; raises `InvalidPlanError` as `resolve` does."""
    decisions, malformed = resolve(problem, plan)
    boots = boots_of(decisions)
    migrations = migrations_of(decisions)
    return Context(
        problem=problem,
        plan=plan,
        decisions=decisions,
        malformed=malformed,
        held=occupancies(problem, decisions),
        boots=boots,
        migrations=migrations,
        pool_peaks=pool_peaks(problem, [*boots, *migrations]),
        migration_peaks=migration_peaks(problem, migrations),
    )
