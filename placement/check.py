"""The independent plan checker: the specification of what a valid plan is.

`check(problem, plan)` verifies every rule of docs/rules.md and returns a `CheckReport`:
the violations found (each with a stable rule id, one human line, the guests and hosts
involved and the instant) and the plan's metrics (objective values, pool peaks, host
utilisation). It imports no solver, so a solver cannot grade its own homework.

How time works: instants are whole seconds from the plan's instant 0. Every interval is
half-open, `[start, end)`: a guest that stops holding a host at t=60 and a guest that
starts holding it at t=60 do not overlap. Every limit is checked by an event sweep, so
the cost is O((guests + events) log events), independent of the horizon.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from placement.errors import InputError, InvalidPlanError
from placement.imbalance import (
    host_load,
    host_load_steps,
    imbalance_of_loads,
    imbalance_of_steps,
    load_resources,
    spread_target,
)
from placement.model import (
    BALANCE_STEPS,
    Guest,
    GuestState,
    Host,
    HostState,
    Objective,
    Problem,
)
from placement.plan import Action, Assignment, Plan, expected_action

logger = logging.getLogger(__name__)

#: Every rule id, in the order the checker reports them. docs/rules.md documents each.
RULES = (
    "assignment",
    "unplaced",
    "host_state",
    "allowed_hosts",
    "avoided_hosts",
    "labels",
    "frozen",
    "movable",
    "anti_affinity",
    "together",
    "follows",
    "capacity",
    "pool_capacity",
    "host_boot_cpu",
    "host_max_starts",
    "max_starts",
    "after",
    "start_group",
    "stagger",
    "migration_time",
    "migration_concurrency",
    "migration_budget",
    "horizon",
)

_INF = math.inf
# How many guest names a message spells out before it says "+N more".
_NAMES_IN_MESSAGE = 8


def _str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class Violation:
    """One breach of one rule.

    `rule`: a stable id from `RULES`. `message`: one line saying what, where, when and by
    how much. `guests`, `hosts`: the names involved. `time_s`: the instant (seconds) the
    breach is worst at, or None for rules about the final state.
    """

    rule: str
    message: str
    guests: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    hosts: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    time_s: int | None = None


def _violation_tuple(value: Iterable[Violation]) -> tuple[Violation, ...]:
    return tuple(value)


@attrs.frozen
class CheckReport:
    """The checker's verdict: every violation found and the plan's metrics.

    `metrics` is plain JSON data: `objectives` (every objective's value), `placed` and
    `unplaced` (guest counts), `actions` (guest count per action), `pools` (per boot pool
    `limit`, `peak` load and `peak_at_s`, boots and migrations together), `hosts` (per
    host and resource, in the final state, `used`, `usable` and `utilisation`, the latter
    None when nothing is usable), `migrations` (`count`, summed `seconds`, `peak_running`
    cluster-wide and its `peak_at_s`, the highest `peak_per_host`, `done_s` when the last
    one ends, and `immovable_running`, the running guests that cannot be migrated), and
    `imbalance`, Proxmox's cluster imbalance in the final state (placement/imbalance.py).
    """

    violations: tuple[Violation, ...] = attrs.field(converter=_violation_tuple)
    metrics: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the plan breaks no rule."""
        return not self.violations


# --- resolving the plan ------------------------------------------------------------------


@attrs.frozen
class _Decision:
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
class _Occupancy:
    """A guest (or its frozen copy) holding a host over `[start_s, end_s)`."""

    guest: Guest
    start_s: int
    end_s: float  # _INF when it keeps the host
    role: str  # shown in messages: "", "leaving", "frozen", "arriving"
    arrives: bool = False  # a start or a migration in: the plan brings it to the host


def _unknown_names(problem: Problem, plan: Plan) -> list[InputError]:
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


def _resolve(problem: Problem, plan: Plan) -> tuple[list[_Decision], list[Violation]]:
    """One decision per guest, in problem order, and the `assignment` violations.

    A guest without an assignment is judged as left alone: a running guest stays where it
    runs, any other guest stays unplaced. When a guest is assigned twice, the first
    assignment counts.
    """
    errors = _unknown_names(problem, plan)
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
            decisions.append(_Decision(guest, host, implied, None, None))
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
        decisions.append(_Decision(guest, assignment.host, action, start_s, ready_s, written))
    return decisions, violations


# --- helpers -----------------------------------------------------------------------------


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_NAMES_IN_MESSAGE])
    if len(names) > _NAMES_IN_MESSAGE:
        shown += f", ... (+{len(names) - _NAMES_IN_MESSAGE} more)"
    return shown


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def _peak(intervals: Iterable[tuple[int, float, int]]) -> tuple[int, int | None]:
    """The highest summed amount of half-open intervals `(start, end, amount)`.

    Returns the peak and the first instant it is reached (None when the peak is 0).
    """
    deltas: dict[float, int] = defaultdict(int)
    for start, end, amount in intervals:
        if amount == 0 or end <= start:
            continue
        deltas[start] += amount
        if end != _INF:
            deltas[end] -= amount
    peak, peak_at, level = 0, None, 0
    for instant in sorted(deltas):
        level += deltas[instant]
        if level > peak:
            peak, peak_at = level, int(instant)
    return peak, peak_at


def _occupancies(problem: Problem, decisions: Sequence[_Decision]) -> dict[str, list[_Occupancy]]:
    """Host name -> what holds it, and when (see docs/rules.md, `capacity`)."""
    held: dict[str, list[_Occupancy]] = defaultdict(list)
    for decision in decisions:
        guest = decision.guest
        if guest.state is GuestState.FROZEN and problem.holds_current_host(guest):
            assert guest.current_host is not None  # holds_current_host implies it
            held[guest.current_host].append(_Occupancy(guest, 0, _INF, "frozen"))
        if decision.host is None:
            continue
        if decision.action is Action.STAY:
            held[decision.host].append(_Occupancy(guest, 0, _INF, ""))
        elif decision.action is Action.START:
            assert decision.start_s is not None
            held[decision.host].append(_Occupancy(guest, decision.start_s, _INF, "", True))
        elif decision.action is Action.MIGRATE:
            assert decision.start_s is not None
            assert decision.ready_s is not None
            assert guest.current_host is not None
            held[guest.current_host].append(_Occupancy(guest, 0, decision.ready_s, "leaving"))
            held[decision.host].append(_Occupancy(guest, decision.start_s, _INF, "arriving", True))
    return held


def _label(occupancy: _Occupancy) -> str:
    name = occupancy.guest.name
    return f"{name} ({occupancy.role})" if occupancy.role else name


def _boots(decisions: Sequence[_Decision]) -> list[_Decision]:
    return [d for d in decisions if d.action is Action.START]


def _booting_at(boots: Iterable[_Decision], instant: int) -> list[_Decision]:
    return [
        d
        for d in boots
        if d.start_s is not None and d.ready_s is not None and d.start_s <= instant < d.ready_s
    ]


# --- placement rules (the final state) ---------------------------------------------------


def _placement_violations(problem: Problem, decisions: Sequence[_Decision]) -> list[Violation]:
    found: dict[str, list[Violation]] = defaultdict(list)
    for decision in decisions:
        if decision.host is None:
            continue
        guest, host = decision.guest, problem.host(decision.host)
        who, hosts = (guest.name,), (host.name,)
        if host.state is not HostState.ONLINE:
            found["host_state"].append(
                Violation(
                    "host_state",
                    f"guest {guest.name} is on host {host.name}, which is {host.state.value}",
                    who,
                    hosts,
                )
            )
        if guest.hosts is not None and host.name not in guest.hosts:
            found["allowed_hosts"].append(
                Violation(
                    "allowed_hosts",
                    f"guest {guest.name} is on host {host.name}, not one of its allowed hosts "
                    f"({_names(sorted(guest.hosts))})",
                    who,
                    hosts,
                )
            )
        if host.name in guest.avoid_hosts:
            found["avoided_hosts"].append(
                Violation(
                    "avoided_hosts",
                    f"guest {guest.name} is on host {host.name}, which it avoids",
                    who,
                    hosts,
                )
            )
        missing = guest.labels - host.labels
        if missing:
            found["labels"].append(
                Violation(
                    "labels",
                    f"guest {guest.name} is on host {host.name}, which lacks label(s) "
                    f"{_names(sorted(missing))}",
                    who,
                    hosts,
                )
            )
        if guest.state is GuestState.FROZEN and host.name == guest.current_host:
            found["frozen"].append(
                Violation(
                    "frozen",
                    f"frozen guest {guest.name} is replaced on its own host {host.name}",
                    who,
                    hosts,
                )
            )
    ordered: list[Violation] = []
    for rule in ("host_state", "allowed_hosts", "avoided_hosts", "labels", "frozen"):
        ordered.extend(found[rule])
    return ordered


def _anti_affinity_violations(decisions: Sequence[_Decision]) -> list[Violation]:
    sharing: dict[tuple[str, str], list[str]] = defaultdict(list)
    for decision in decisions:
        if decision.host is None:
            continue
        for klass in decision.guest.anti_affinity:
            sharing[(decision.host, klass)].append(decision.guest.name)
    violations = []
    for (host, klass), guests in sorted(sharing.items(), key=lambda item: item[0]):
        if len(guests) > 1:
            violations.append(
                Violation(
                    "anti_affinity",
                    f"host {host} runs {len(guests)} guests of anti-affinity class {klass}: "
                    f"{_names(guests)}",
                    guests,
                    (host,),
                )
            )
    return violations


def _together_violations(problem: Problem, decisions: Sequence[_Decision]) -> list[Violation]:
    host_of = {d.guest.name: d.host for d in decisions}
    violations = []
    for group, members in problem.together_groups().items():
        names = [m.name for m in members]
        placed = [n for n in names if host_of[n] is not None]
        if not placed:
            continue
        left_out = [n for n in names if host_of[n] is None]
        if left_out:
            violations.append(
                Violation(
                    "together",
                    f"together group {group}: {_names(placed)} placed but {_names(left_out)} not",
                    names,
                )
            )
        hosts = _unique(h for n in placed if (h := host_of[n]) is not None)
        if len(hosts) > 1:
            spread = "; ".join(
                f"{h}: {_names([n for n in placed if host_of[n] == h])}" for h in hosts
            )
            violations.append(
                Violation(
                    "together",
                    f"together group {group} is split over {len(hosts)} hosts ({spread})",
                    placed,
                    hosts,
                )
            )
    return violations


def _follows_violations(decisions: Sequence[_Decision]) -> list[Violation]:
    """A guest that follows another runs on that guest's host, or not at all."""
    host_of = {d.guest.name: d.host for d in decisions}
    violations = []
    for decision in decisions:
        leader = decision.guest.follows
        if leader is None or decision.host is None or leader not in host_of:
            continue
        name = decision.guest.name
        if host_of[leader] is None:
            violations.append(
                Violation(
                    "follows",
                    f"{name} follows {leader}, which is not placed, yet runs on {decision.host}",
                    (name, leader),
                    (decision.host,),
                )
            )
        elif host_of[leader] != decision.host:
            violations.append(
                Violation(
                    "follows",
                    f"{name} follows {leader} but runs on {decision.host}, "
                    f"{leader} on {host_of[leader]}",
                    (name, leader),
                    (decision.host, str(host_of[leader])),
                )
            )
    return violations


# --- capacity ----------------------------------------------------------------------------


def _checked_from(occupancies: Sequence[_Occupancy]) -> int:
    """The instant from which a host's capacity is checked: the first arrival (a start or
    a migration in), or the end of the last departure if that comes first.

    Before then the host only loses guests, all present from 0: a load above its capacity
    is the state the plan starts from (a host to drain), not something the plan causes.
    """
    first_arrival = min((o.start_s for o in occupancies if o.arrives), default=_INF)
    final_from = max((o.end_s for o in occupancies if o.end_s != _INF), default=0)
    return int(min(first_arrival, final_from))  # final_from is finite


def _capacity_violations(
    problem: Problem, held: Mapping[str, Sequence[_Occupancy]]
) -> list[Violation]:
    violations = []
    for host in problem.hosts:
        occupancies = held.get(host.name, ())
        resources = sorted({r for o in occupancies for r, a in o.guest.demand.items() if a > 0})
        checked_from = _checked_from(occupancies)
        for resource in resources:
            usable = host.usable(resource)
            peak, instant = _peak(
                (max(o.start_s, checked_from), o.end_s, o.guest.demand.get(resource, 0))
                for o in occupancies
            )
            if peak <= usable or instant is None:
                continue
            present = [
                o
                for o in occupancies
                if o.start_s <= instant < o.end_s and o.guest.demand.get(resource, 0) > 0
            ]
            violations.append(
                Violation(
                    "capacity",
                    f"host {host.name} {resource} at t={instant} s: {peak} used > {usable} "
                    f"usable ({_names([_label(o) for o in present])})",
                    _unique(o.guest.name for o in present),
                    (host.name,),
                    instant,
                )
            )
    return violations


# --- schedule rules (boot intervals of started guests) -----------------------------------


def _boot_span(decision: _Decision) -> tuple[int, float]:
    assert decision.start_s is not None
    assert decision.ready_s is not None
    return decision.start_s, decision.ready_s


def _pool_load(problem: Problem, decision: _Decision) -> Mapping[str, int]:
    """What a boot or a migration adds to the boot pools while it runs."""
    if decision.action is Action.MIGRATE:
        return problem.migration.load
    return decision.guest.boot.load


def _pool_peaks(problem: Problem, users: Sequence[_Decision]) -> dict[str, tuple[int, int | None]]:
    """Pool -> its peak load and when, over boots and migrations (`users`)."""
    by_pool: dict[str, list[tuple[int, float, int]]] = {pool: [] for pool in problem.boot_pools}
    for decision in users:
        start, end = _boot_span(decision)
        for pool, load in _pool_load(problem, decision).items():
            by_pool.setdefault(pool, []).append((start, end, load))
    return {pool: _peak(intervals) for pool, intervals in by_pool.items()}


def _pool_violations(
    problem: Problem, users: Sequence[_Decision], peaks: Mapping[str, tuple[int, int | None]]
) -> list[Violation]:
    violations = []
    for pool, (peak, instant) in peaks.items():
        limit = problem.boot_pools.get(pool, 0)
        if peak <= limit or instant is None:
            continue
        present = [
            d for d in _booting_at(users, instant) if _pool_load(problem, d).get(pool, 0) > 0
        ]
        names = [
            f"{d.guest.name} (migrating)" if d.action is Action.MIGRATE else d.guest.name
            for d in present
        ]
        violations.append(
            Violation(
                "pool_capacity",
                f"boot pool {pool} at t={instant} s: {peak} load > {limit} limit ({_names(names)})",
                [d.guest.name for d in present],
                _unique(d.host for d in present if d.host is not None),
                instant,
            )
        )
    return violations


def _host_boot_violations(problem: Problem, boots: Sequence[_Decision]) -> list[Violation]:
    by_host: dict[str, list[_Decision]] = defaultdict(list)
    for decision in boots:
        assert decision.host is not None
        by_host[decision.host].append(decision)
    cpu_violations, start_violations = [], []
    for host in problem.hosts:
        booting = by_host.get(host.name, [])
        if not booting:
            continue
        if host.boot.cpu is not None:
            peak, instant = _peak((*_boot_span(d), d.guest.boot.cpu) for d in booting)
            if peak > host.boot.cpu and instant is not None:
                names = [d.guest.name for d in _booting_at(booting, instant) if d.guest.boot.cpu]
                cpu_violations.append(
                    Violation(
                        "host_boot_cpu",
                        f"host {host.name} boot cpu at t={instant} s: {peak} > {host.boot.cpu} "
                        f"limit ({_names(names)})",
                        names,
                        (host.name,),
                        instant,
                    )
                )
        if host.boot.max_starts is not None:
            peak, instant = _peak((*_boot_span(d), 1) for d in booting)
            if peak > host.boot.max_starts and instant is not None:
                names = [d.guest.name for d in _booting_at(booting, instant)]
                start_violations.append(
                    Violation(
                        "host_max_starts",
                        f"host {host.name} at t={instant} s: {peak} guests booting > "
                        f"max_starts {host.boot.max_starts} ({_names(names)})",
                        names,
                        (host.name,),
                        instant,
                    )
                )
    return cpu_violations + start_violations


def _max_starts_violations(problem: Problem, boots: Sequence[_Decision]) -> list[Violation]:
    limit = problem.schedule.max_starts
    if limit is None:
        return []
    peak, instant = _peak((*_boot_span(d), 1) for d in boots)
    if peak <= limit or instant is None:
        return []
    present = _booting_at(boots, instant)
    names = [d.guest.name for d in present]
    return [
        Violation(
            "max_starts",
            f"cluster at t={instant} s: {peak} guests booting > max_starts {limit} "
            f"({_names(names)})",
            names,
            _unique(d.host for d in present if d.host is not None),
            instant,
        )
    ]


def _after_violations(decisions: Sequence[_Decision]) -> list[Violation]:
    by_name = {d.guest.name: d for d in decisions}
    violations = []
    for decision in decisions:
        if decision.action is not Action.START:
            continue
        assert decision.start_s is not None
        name = decision.guest.name
        for dependency_name in decision.guest.boot.after:
            dependency = by_name[dependency_name]
            if dependency.host is None:
                violations.append(
                    Violation(
                        "after",
                        f"guest {name} starts at t={decision.start_s} s but its dependency "
                        f"{dependency_name} is not placed",
                        (name, dependency_name),
                        time_s=decision.start_s,
                    )
                )
                continue
            ready_s = dependency.ready_s if dependency.action is Action.START else 0
            assert ready_s is not None
            if decision.start_s < ready_s:
                violations.append(
                    Violation(
                        "after",
                        f"guest {name} starts at t={decision.start_s} s, before its dependency "
                        f"{dependency_name} is ready at t={ready_s} s",
                        (name, dependency_name),
                        time_s=decision.start_s,
                    )
                )
    return violations


def _start_group_violations(boots: Sequence[_Decision]) -> list[Violation]:
    starts: dict[str, list[_Decision]] = defaultdict(list)
    for decision in boots:
        if decision.guest.boot.group is not None:
            starts[decision.guest.boot.group].append(decision)
    violations = []
    for group, members in starts.items():
        instants = sorted({d.start_s for d in members if d.start_s is not None})
        if len(instants) > 1:
            detail = "; ".join(
                f"t={t} s: {_names([d.guest.name for d in members if d.start_s == t])}"
                for t in instants
            )
            violations.append(
                Violation(
                    "start_group",
                    f"start group {group} starts at {len(instants)} instants ({detail})",
                    [d.guest.name for d in members],
                    _unique(d.host for d in members if d.host is not None),
                    instants[0],
                )
            )
    return violations


def _stagger_violations(problem: Problem, boots: Sequence[_Decision]) -> list[Violation]:
    gap_s = problem.schedule.stagger_s
    if gap_s <= 0:
        return []
    # A start unit is one start group at one instant; an ungrouped guest is its own group.
    units: dict[tuple[str, int], list[str]] = defaultdict(list)
    for decision in boots:
        assert decision.start_s is not None
        group = decision.guest.boot.group
        key = f"group {group}" if group is not None else f"guest {decision.guest.name}"
        units[(key, decision.start_s)].append(decision.guest.name)
    ordered = sorted(units.items(), key=lambda item: (item[0][1], item[0][0]))
    violations = []
    # Checking neighbours suffices: any pair too close together encloses a neighbouring
    # pair of different groups that is at least as close.
    for earlier, later in itertools.pairwise(ordered):
        (key_a, at_a), names_a = earlier
        (key_b, at_b), names_b = later
        if key_a == key_b or at_b - at_a >= gap_s:
            continue
        violations.append(
            Violation(
                "stagger",
                f"{key_b} starts at t={at_b} s, {at_b - at_a} s after {key_a} at t={at_a} s "
                f"(stagger {gap_s} s)",
                _unique([*names_a, *names_b]),
                time_s=at_b,
            )
        )
    return violations


# --- migrations --------------------------------------------------------------------------


def _migrations(decisions: Sequence[_Decision]) -> list[_Decision]:
    return [d for d in decisions if d.action is Action.MIGRATE]


def _movable_violations(migrations: Sequence[_Decision]) -> list[Violation]:
    return [
        Violation(
            "movable",
            f"guest {d.guest.name} migrates from {d.guest.current_host} to {d.host} but is "
            "not movable",
            (d.guest.name,),
            _unique(h for h in (d.guest.current_host, d.host) if h is not None),
            d.start_s,
        )
        for d in migrations
        if not d.guest.movable
    ]


def _migration_time_violations(
    problem: Problem, migrations: Sequence[_Decision]
) -> list[Violation]:
    violations = []
    for decision in migrations:
        written, start = decision.written_ready_s, decision.start_s
        if written is None or start is None or written == decision.ready_s:
            continue
        duration = problem.migration_duration(decision.guest)
        violations.append(
            Violation(
                "migration_time",
                f"guest {decision.guest.name} migrates to {decision.host} during "
                f"[{start}, {written}) s, but its migration takes {duration} s "
                f"(ready_s must be {start} + {duration} = {decision.ready_s})",
                (decision.guest.name,),
                (decision.host,) if decision.host is not None else (),
                start,
            )
        )
    return violations


def _migration_hosts(decision: _Decision) -> tuple[str, ...]:
    return _unique(h for h in (decision.guest.current_host, decision.host) if h is not None)


def _migration_peaks(
    problem: Problem, migrations: Sequence[_Decision]
) -> tuple[tuple[int, int | None], dict[str, tuple[int, int | None]]]:
    """The cluster-wide peak of running migrations and when, and the same per host (as
    source or target)."""
    total = _peak((*_boot_span(d), 1) for d in migrations)
    by_host: dict[str, list[_Decision]] = defaultdict(list)
    for decision in migrations:
        for host in _migration_hosts(decision):
            by_host[host].append(decision)
    per_host = {
        host.name: _peak((*_boot_span(d), 1) for d in by_host.get(host.name, ()))
        for host in problem.hosts
    }
    return total, per_host


def _migration_concurrency_violations(
    problem: Problem,
    migrations: Sequence[_Decision],
    peaks: tuple[tuple[int, int | None], Mapping[str, tuple[int, int | None]]],
) -> list[Violation]:
    settings = problem.migration
    (total, total_at), per_host = peaks
    violations = []
    if settings.max_per_host is not None:
        for host, (peak, instant) in per_host.items():
            if peak <= settings.max_per_host or instant is None:
                continue
            present = [d for d in _booting_at(migrations, instant) if host in _migration_hosts(d)]
            violations.append(
                Violation(
                    "migration_concurrency",
                    f"host {host} at t={instant} s: {peak} migrations running > max_per_host "
                    f"{settings.max_per_host} ({_names([d.guest.name for d in present])})",
                    [d.guest.name for d in present],
                    (host,),
                    instant,
                )
            )
    if settings.max_total is not None and total > settings.max_total and total_at is not None:
        present = _booting_at(migrations, total_at)
        violations.append(
            Violation(
                "migration_concurrency",
                f"cluster at t={total_at} s: {total} migrations running > max_total "
                f"{settings.max_total} ({_names([d.guest.name for d in present])})",
                [d.guest.name for d in present],
                _unique(h for d in present for h in _migration_hosts(d)),
                total_at,
            )
        )
    return violations


def _migration_budget_violations(
    problem: Problem, migrations: Sequence[_Decision]
) -> list[Violation]:
    budget = problem.migration.max_moves
    if budget is None or len(migrations) <= budget:
        return []
    names = [d.guest.name for d in migrations]
    return [
        Violation(
            "migration_budget",
            f"{len(migrations)} migrations > max_moves {budget} ({_names(names)})",
            names,
        )
    ]


def _horizon_violations(problem: Problem, decisions: Sequence[_Decision]) -> list[Violation]:
    horizon_s = problem.schedule.horizon_s
    violations = []
    for decision in decisions:
        if decision.ready_s is not None and decision.ready_s > horizon_s:
            what = "is ready" if decision.action is Action.START else "finishes migrating"
            violations.append(
                Violation(
                    "horizon",
                    f"guest {decision.guest.name} {what} at t={decision.ready_s} s, after the "
                    f"horizon t={horizon_s} s",
                    (decision.guest.name,),
                    (decision.host,) if decision.host is not None else (),
                    decision.ready_s,
                )
            )
    return violations


def _unplaced_violations(plan: Plan, decisions: Sequence[_Decision]) -> list[Violation]:
    assigned = {a.guest for a in plan.assignments}
    reasons: dict[str, list[str]] = defaultdict(list)
    for unplaced in plan.unplaced:
        reasons[unplaced.guest].append(unplaced.reason)
    violations = []
    for decision in decisions:
        name = decision.guest.name
        listed = reasons.get(name, [])
        if decision.host is not None:
            if listed:
                violations.append(
                    Violation(
                        "unplaced",
                        f"guest {name} is placed on {decision.host} but listed as unplaced",
                        (name,),
                        (decision.host,),
                    )
                )
            continue
        if name not in assigned:
            continue  # already an `assignment` violation
        if not listed:
            violations.append(
                Violation(
                    "unplaced",
                    f"guest {name} has no host but is not listed as unplaced with a reason",
                    (name,),
                )
            )
        elif len(listed) > 1:
            violations.append(
                Violation(
                    "unplaced", f"guest {name} is listed {len(listed)} times as unplaced", (name,)
                )
            )
        elif not (isinstance(listed[0], str) and listed[0].strip()):
            violations.append(
                Violation("unplaced", f"guest {name} is unplaced with an empty reason", (name,))
            )
    return violations


# --- metrics -----------------------------------------------------------------------------


def _final_use(held: Mapping[str, Sequence[_Occupancy]], host: Host) -> dict[str, int]:
    used: dict[str, int] = defaultdict(int)
    for occupancy in held.get(host.name, ()):
        if occupancy.end_s == _INF:
            for resource, amount in occupancy.guest.demand.items():
                used[resource] += amount
    return used


def _objectives(
    problem: Problem, decisions: Sequence[_Decision], held: Mapping[str, Sequence[_Occupancy]]
) -> dict[str, float]:
    placed = sum(d.guest.weight for d in decisions if d.host is not None)
    migrations = sum(d.guest.migration_cost for d in decisions if d.action is Action.MIGRATE)
    recovery = sum(
        d.guest.weight * d.ready_s
        for d in decisions
        if d.action is Action.START and d.ready_s is not None
    )
    makespan = max(
        (
            d.ready_s
            for d in decisions
            if d.action in (Action.START, Action.MIGRATE) and d.ready_s is not None
        ),
        default=0,
    )
    balance_steps = 0
    consolidate = 0
    spread = 0
    load_names = load_resources(problem)
    target = spread_target(problem)
    all_steps: list[int] = []
    for host in problem.hosts:
        if not host.online:
            continue
        steps = host_load_steps(host, _final_use(held, host), load_names)
        spread += (steps - target) ** 2
        all_steps.append(steps)
        occupancies = held.get(host.name, ())
        if any(o.end_s == _INF for o in occupancies):
            consolidate += 1
        for resource, used in _final_use(held, host).items():
            usable = host.usable(resource)
            if usable > 0:
                # Rounded up to whole steps, so solvers can work in integers (model.py).
                balance_steps = max(balance_steps, -(-BALANCE_STEPS * used // usable))
    return {
        Objective.PLACED.value: float(placed),
        Objective.MIGRATIONS.value: float(migrations),
        Objective.RECOVERY.value: float(recovery),
        Objective.MAKESPAN.value: float(makespan),
        Objective.BALANCE.value: balance_steps / BALANCE_STEPS,
        Objective.CONSOLIDATE.value: float(consolidate),
        Objective.SPREAD.value: float(spread),
        Objective.IMBALANCE.value: imbalance_of_steps(all_steps),
    }


def _host_metrics(
    problem: Problem, held: Mapping[str, Sequence[_Occupancy]]
) -> dict[str, dict[str, dict[str, Any]]]:
    metrics: dict[str, dict[str, dict[str, Any]]] = {}
    for host in problem.hosts:
        used = _final_use(held, host)
        per_resource: dict[str, dict[str, Any]] = {}
        for resource in sorted(set(host.capacity) | {r for r, a in used.items() if a > 0}):
            usable = host.usable(resource)
            amount = used.get(resource, 0)
            per_resource[resource] = {
                "used": amount,
                "usable": usable,
                "utilisation": amount / usable if usable > 0 else None,
            }
        metrics[host.name] = per_resource
    return metrics


def _migration_metrics(
    problem: Problem,
    migrations: Sequence[_Decision],
    peaks: tuple[tuple[int, int | None], Mapping[str, tuple[int, int | None]]],
) -> dict[str, Any]:
    (total, total_at), per_host = peaks
    return {
        "count": len(migrations),
        "seconds": sum(problem.migration_duration(d.guest) for d in migrations),
        "peak_running": total,
        "peak_at_s": total_at,
        "peak_per_host": max((peak for peak, _ in per_host.values()), default=0),
        "done_s": max((d.ready_s for d in migrations if d.ready_s is not None), default=0),
        "immovable_running": sum(
            1 for g in problem.guests if problem.runs_now(g) and not g.movable
        ),
    }


# --- public API --------------------------------------------------------------------------


def check(problem: Problem, plan: Plan) -> CheckReport:
    """Verify `plan` against every rule of `problem`; see docs/rules.md.

    Returns every violation found (one per distinct breach, in the order of `RULES`) and
    the plan's metrics. Raises `InvalidPlanError` listing every assignment or unplaced
    entry that names a guest or host the problem does not have.
    """
    decisions, violations = _resolve(problem, plan)
    held = _occupancies(problem, decisions)
    boots = _boots(decisions)
    migrations = _migrations(decisions)
    pool_peaks = _pool_peaks(problem, [*boots, *migrations])
    migration_peaks = _migration_peaks(problem, migrations)

    violations.extend(_unplaced_violations(plan, decisions))
    violations.extend(_placement_violations(problem, decisions))
    violations.extend(_movable_violations(migrations))
    violations.extend(_anti_affinity_violations(decisions))
    violations.extend(_together_violations(problem, decisions))
    violations.extend(_follows_violations(decisions))
    violations.extend(_capacity_violations(problem, held))
    violations.extend(_pool_violations(problem, [*boots, *migrations], pool_peaks))
    violations.extend(_host_boot_violations(problem, boots))
    violations.extend(_max_starts_violations(problem, boots))
    violations.extend(_after_violations(decisions))
    violations.extend(_start_group_violations(boots))
    violations.extend(_stagger_violations(problem, boots))
    violations.extend(_migration_time_violations(problem, migrations))
    violations.extend(_migration_concurrency_violations(problem, migrations, migration_peaks))
    violations.extend(_migration_budget_violations(problem, migrations))
    violations.extend(_horizon_violations(problem, decisions))

    actions: dict[str, int] = {action.value: 0 for action in Action}
    for decision in decisions:
        actions[decision.action.value] += 1
    num_placed = sum(1 for d in decisions if d.host is not None)
    metrics: dict[str, Any] = {
        "objectives": _objectives(problem, decisions, held),
        "placed": num_placed,
        "unplaced": len(decisions) - num_placed,
        "actions": actions,
        "pools": {
            pool: {"limit": problem.boot_pools.get(pool, 0), "peak": peak, "peak_at_s": at}
            for pool, (peak, at) in pool_peaks.items()
        },
        "hosts": _host_metrics(problem, held),
        # Proxmox's cluster imbalance in the final state (placement/imbalance.py).
        "imbalance": imbalance_of_loads(
            [
                host_load(host, _final_use(held, host), load_resources(problem))
                for host in problem.hosts
                if host.online
            ]
        ),
        "migrations": _migration_metrics(problem, migrations, migration_peaks),
    }
    if violations:
        logger.debug("plan from %s breaks %d rule(s)", plan.solver, len(violations))
    return CheckReport(violations=violations, metrics=metrics)


def objective_values(problem: Problem, plan: Plan) -> dict[str, float]:
    """Every objective's value for `plan`, keyed by `Objective` value (`placed`, ...).

    `placed` is the priority-weighted count of placed guests, `migrations` the summed
    migration cost, `recovery` the priority-weighted sum of ready times (s), `makespan` the
    last ready time (s), `balance` the highest final used/usable ratio on an online host,
    `consolidate` the number of online hosts holding anything, `spread` the sum over online
    hosts of the squared distance of the load in steps from the even load, `imbalance`
    Proxmox's imbalance of the loads in steps (placement/imbalance.py). Computed as `check` does,
    whether or not the plan is valid; raises `InvalidPlanError` for unknown names.
    """
    decisions, _ = _resolve(problem, plan)
    return _objectives(problem, decisions, _occupancies(problem, decisions))


def violations_by_rule(report: CheckReport) -> dict[str, list[Violation]]:
    """The report's violations grouped by rule id, in the order of `RULES`."""
    grouped: dict[str, list[Violation]] = {}
    for rule in RULES:
        matching = [v for v in report.violations if v.rule == rule]
        if matching:
            grouped[rule] = matching
    return grouped


def violation_to_dict(violation: Violation) -> dict[str, Any]:
    """A violation as JSON data; the keys are the attrs field names."""
    return {
        "rule": violation.rule,
        "message": violation.message,
        "guests": list(violation.guests),
        "hosts": list(violation.hosts),
        "time_s": violation.time_s,
    }


def report_to_dict(report: CheckReport) -> dict[str, Any]:
    """The report as JSON data: `ok`, `violations` (a list) and `metrics`."""
    return {
        "ok": report.ok,
        "violations": [violation_to_dict(v) for v in report.violations],
        "metrics": _plain(report.metrics),
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
