"""When guests boot (family `schedule`): the boot pools, the hosts' boot limits, the
batch limit, start dependencies, start groups, the stagger gap and the horizon.

Each rule's CP-SAT twin is in placement/solvers/cpsat/schedule_rules.py (start groups
and the horizon are in the model's start slots and variable domains); the rule catalogue
(placement/rules.py) says which model family enforces which rule.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterator

from placement.check.context import (
    Checker,
    Context,
    Decision,
    boot_span,
    booting_at,
    pool_load,
    shown_names,
    sweep_peak,
    unique,
)
from placement.check.report import Violation
from placement.model import Guest, Host
from placement.plan import Action


def pool_capacity_violations(context: Context) -> list[Violation]:
    problem, peaks = context.problem, context.pool_peaks
    users = [*context.boots, *context.migrations]
    violations = []
    for pool, (peak, instant) in peaks.items():
        limit = problem.boot_pools.get(pool, 0)
        if peak <= limit or instant is None:
            continue
        present = [d for d in booting_at(users, instant) if pool_load(problem, d).get(pool, 0) > 0]
        names = [
            f"{d.guest.name} (migrating)" if d.action is Action.MIGRATE else d.guest.name
            for d in present
        ]
        violations.append(
            Violation(
                "pool_capacity",
                f"boot pool {pool} at t={instant} s: {peak} load > {limit} limit "
                f"({shown_names(names)})",
                [d.guest.name for d in present],
                unique(d.host for d in present if d.host is not None),
                instant,
            )
        )
    return violations


def _boots_by_host(context: Context) -> dict[str, list[Decision]]:
    by_host: dict[str, list[Decision]] = defaultdict(list)
    for decision in context.boots:
        assert decision.host is not None
        by_host[decision.host].append(decision)
    return by_host


def _host_peaks(
    context: Context, limit_of: Callable[[Host], int | None], amount_of: Callable[[Guest], int]
) -> Iterator[tuple[Host, int, int, int, list[Decision]]]:
    """Per host with a limit (`limit_of`) its boots exceed: the host, the peak of
    `amount_of` over its boots, the limit, the instant of the peak and the boots then."""
    by_host = _boots_by_host(context)
    for host in context.problem.hosts:
        booting, limit = by_host.get(host.name, []), limit_of(host)
        if not booting or limit is None:
            continue
        peak, instant = sweep_peak((*boot_span(d), amount_of(d.guest)) for d in booting)
        if peak > limit and instant is not None:
            yield host, peak, limit, instant, booting_at(booting, instant)


def host_boot_cpu_violations(context: Context) -> list[Violation]:
    violations = []
    for host, peak, limit, instant, booting in _host_peaks(
        context, lambda host: host.boot.cpu, lambda guest: guest.boot.cpu
    ):
        names = [d.guest.name for d in booting if d.guest.boot.cpu]
        violations.append(
            Violation(
                "host_boot_cpu",
                f"host {host.name} boot cpu at t={instant} s: {peak} > {limit} "
                f"limit ({shown_names(names)})",
                names,
                (host.name,),
                instant,
            )
        )
    return violations


def host_max_starts_violations(context: Context) -> list[Violation]:
    violations = []
    for host, peak, limit, instant, booting in _host_peaks(
        context, lambda host: host.boot.max_starts, lambda guest: 1
    ):
        names = [d.guest.name for d in booting]
        violations.append(
            Violation(
                "host_max_starts",
                f"host {host.name} at t={instant} s: {peak} guests booting > "
                f"max_starts {limit} ({shown_names(names)})",
                names,
                (host.name,),
                instant,
            )
        )
    return violations


def max_starts_violations(context: Context) -> list[Violation]:
    problem, boots = context.problem, context.boots
    limit = problem.schedule.max_starts
    if limit is None:
        return []
    peak, instant = sweep_peak((*boot_span(d), 1) for d in boots)
    if peak <= limit or instant is None:
        return []
    present = booting_at(boots, instant)
    names = [d.guest.name for d in present]
    return [
        Violation(
            "max_starts",
            f"cluster at t={instant} s: {peak} guests booting > max_starts {limit} "
            f"({shown_names(names)})",
            names,
            unique(d.host for d in present if d.host is not None),
            instant,
        )
    ]


def after_violations(context: Context) -> list[Violation]:
    decisions = context.decisions
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


def start_group_violations(context: Context) -> list[Violation]:
    boots = context.boots
    starts: dict[str, list[Decision]] = defaultdict(list)
    for decision in boots:
        if decision.guest.boot.group is not None:
            starts[decision.guest.boot.group].append(decision)
    violations = []
    for group, members in starts.items():
        instants = sorted({d.start_s for d in members if d.start_s is not None})
        if len(instants) > 1:
            detail = "; ".join(
                f"t={t} s: {shown_names([d.guest.name for d in members if d.start_s == t])}"
                for t in instants
            )
            violations.append(
                Violation(
                    "start_group",
                    f"start group {group} starts at {len(instants)} instants ({detail})",
                    [d.guest.name for d in members],
                    unique(d.host for d in members if d.host is not None),
                    instants[0],
                )
            )
    return violations


def stagger_violations(context: Context) -> list[Violation]:
    problem, boots = context.problem, context.boots
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
                unique([*names_a, *names_b]),
                time_s=at_b,
            )
        )
    return violations


def horizon_violations(context: Context) -> list[Violation]:
    problem, decisions = context.problem, context.decisions
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


#: The checker of each rule of this family, by rule id.
CHECKERS: dict[str, Checker] = {
    "pool_capacity": pool_capacity_violations,
    "host_boot_cpu": host_boot_cpu_violations,
    "host_max_starts": host_max_starts_violations,
    "max_starts": max_starts_violations,
    "after": after_violations,
    "start_group": start_group_violations,
    "stagger": stagger_violations,
    "horizon": horizon_violations,
}
