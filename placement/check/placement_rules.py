"""Where a guest may run (family `placement`): host filters, frozen copies,
anti-affinity, together groups, followers, and capacity over time.

Each rule's CP-SAT twin is in placement/solvers/cpsat/placement_rules.py (or, for the
host filters and together groups, in the candidate hosts and units of the model's view);
the rule catalogue (placement/rules.py) says which model family enforces which rule.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

from placement.check.context import (
    INF,
    Checker,
    Context,
    Occupancy,
    occupancy_label,
    shown_names,
    sweep_peak,
    unique,
)
from placement.check.report import Violation
from placement.model import Guest, GuestState, Host, HostState


def _placed(context: Context) -> Iterator[tuple[Guest, Host]]:
    """Each guest the plan gives a host, with that host, in problem order."""
    for decision in context.decisions:
        if decision.host is not None:
            yield decision.guest, context.problem.host(decision.host)


def host_state_violations(context: Context) -> list[Violation]:
    return [
        Violation(
            "host_state",
            f"guest {guest.name} is on host {host.name}, which is {host.state.value}",
            (guest.name,),
            (host.name,),
        )
        for guest, host in _placed(context)
        if host.state is not HostState.ONLINE
    ]


def allowed_hosts_violations(context: Context) -> list[Violation]:
    return [
        Violation(
            "allowed_hosts",
            f"guest {guest.name} is on host {host.name}, not one of its allowed hosts "
            f"({shown_names(sorted(guest.hosts))})",
            (guest.name,),
            (host.name,),
        )
        for guest, host in _placed(context)
        if guest.hosts is not None and host.name not in guest.hosts
    ]


def avoided_hosts_violations(context: Context) -> list[Violation]:
    return [
        Violation(
            "avoided_hosts",
            f"guest {guest.name} is on host {host.name}, which it avoids",
            (guest.name,),
            (host.name,),
        )
        for guest, host in _placed(context)
        if host.name in guest.avoid_hosts
    ]


def labels_violations(context: Context) -> list[Violation]:
    return [
        Violation(
            "labels",
            f"guest {guest.name} is on host {host.name}, which lacks label(s) "
            f"{shown_names(sorted(guest.labels - host.labels))}",
            (guest.name,),
            (host.name,),
        )
        for guest, host in _placed(context)
        if guest.labels - host.labels
    ]


def frozen_violations(context: Context) -> list[Violation]:
    return [
        Violation(
            "frozen",
            f"frozen guest {guest.name} is replaced on its own host {host.name}",
            (guest.name,),
            (host.name,),
        )
        for guest, host in _placed(context)
        if guest.state is GuestState.FROZEN and host.name == guest.current_host
    ]


def anti_affinity_violations(context: Context) -> list[Violation]:
    decisions = context.decisions
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
                    f"{shown_names(guests)}",
                    guests,
                    (host,),
                )
            )
    return violations


def together_violations(context: Context) -> list[Violation]:
    problem, decisions = context.problem, context.decisions
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
                    f"together group {group}: {shown_names(placed)} placed but "
                    f"{shown_names(left_out)} not",
                    names,
                )
            )
        hosts = unique(h for n in placed if (h := host_of[n]) is not None)
        if len(hosts) > 1:
            spread = "; ".join(
                f"{h}: {shown_names([n for n in placed if host_of[n] == h])}" for h in hosts
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


def follows_violations(context: Context) -> list[Violation]:
    """A guest that follows another runs on that guest's host, or not at all."""
    decisions = context.decisions
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


def _checked_from(occupancies: Sequence[Occupancy]) -> int:
    """The instant from which a host's capacity is checked: the first arrival (a start or
    a migration in), or the end of the last departure if that comes first.

    Before then the host only loses guests, all present from 0: a load above its capacity
    is the state the plan starts from (a host to drain), not something the plan causes.
    """
    first_arrival = min((o.start_s for o in occupancies if o.arrives), default=INF)
    final_from = max((o.end_s for o in occupancies if o.end_s != INF), default=0)
    return int(min(first_arrival, final_from))  # final_from is finite


def capacity_violations(context: Context) -> list[Violation]:
    problem, held = context.problem, context.held
    violations = []
    for host in problem.hosts:
        occupancies = held.get(host.name, ())
        resources = sorted({r for o in occupancies for r, a in o.guest.demand.items() if a > 0})
        checked_from = _checked_from(occupancies)
        for resource in resources:
            usable = host.usable(resource)
            peak, instant = sweep_peak(
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
                    f"usable ({shown_names([occupancy_label(o) for o in present])})",
                    unique(o.guest.name for o in present),
                    (host.name,),
                    instant,
                )
            )
    return violations


#: The checker of each rule of this family, by rule id.
CHECKERS: dict[str, Checker] = {
    "host_state": host_state_violations,
    "allowed_hosts": allowed_hosts_violations,
    "avoided_hosts": avoided_hosts_violations,
    "labels": labels_violations,
    "frozen": frozen_violations,
    "anti_affinity": anti_affinity_violations,
    "together": together_violations,
    "follows": follows_violations,
    "capacity": capacity_violations,
}
