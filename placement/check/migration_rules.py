"""Moves of running guests (family `migration`): who may move, how long a move takes,
how many run at once, and how many the plan may make. (While it runs a migration also
counts in `capacity` and `pool_capacity`, which the placement and schedule families
check.)

Each rule's CP-SAT twin is in placement/solvers/cpsat/migration_rules.py (`movable` and
the move's duration are in the model's possible moves); the rule catalogue
(placement/rules.py) says which model family enforces which rule.
"""

from __future__ import annotations

from placement.check.context import (
    Checker,
    Context,
    booting_at,
    migration_hosts,
    shown_names,
    unique,
)
from placement.check.report import Violation


def movable_violations(context: Context) -> list[Violation]:
    return [
        Violation(
            "movable",
            f"guest {d.guest.name} migrates from {d.guest.current_host} to {d.host} but is "
            "not movable",
            (d.guest.name,),
            unique(h for h in (d.guest.current_host, d.host) if h is not None),
            d.start_s,
        )
        for d in context.migrations
        if not d.guest.movable
    ]


def migration_time_violations(context: Context) -> list[Violation]:
    problem, migrations = context.problem, context.migrations
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


def migration_concurrency_violations(context: Context) -> list[Violation]:
    problem, migrations, peaks = context.problem, context.migrations, context.migration_peaks
    settings = problem.migration
    (total, total_at), per_host = peaks
    violations = []
    if settings.max_per_host is not None:
        for host, (peak, instant) in per_host.items():
            if peak <= settings.max_per_host or instant is None:
                continue
            present = [d for d in booting_at(migrations, instant) if host in migration_hosts(d)]
            violations.append(
                Violation(
                    "migration_concurrency",
                    f"host {host} at t={instant} s: {peak} migrations running > max_per_host "
                    f"{settings.max_per_host} ({shown_names([d.guest.name for d in present])})",
                    [d.guest.name for d in present],
                    (host,),
                    instant,
                )
            )
    if settings.max_total is not None and total > settings.max_total and total_at is not None:
        present = booting_at(migrations, total_at)
        violations.append(
            Violation(
                "migration_concurrency",
                f"cluster at t={total_at} s: {total} migrations running > max_total "
                f"{settings.max_total} ({shown_names([d.guest.name for d in present])})",
                [d.guest.name for d in present],
                unique(h for d in present for h in migration_hosts(d)),
                total_at,
            )
        )
    return violations


def migration_budget_violations(context: Context) -> list[Violation]:
    problem, migrations = context.problem, context.migrations
    budget = problem.migration.max_moves
    if budget is None or len(migrations) <= budget:
        return []
    names = [d.guest.name for d in migrations]
    return [
        Violation(
            "migration_budget",
            f"{len(migrations)} migrations > max_moves {budget} ({shown_names(names)})",
            names,
        )
    ]


#: The checker of each rule of this family, by rule id.
CHECKERS: dict[str, Checker] = {
    "movable": movable_violations,
    "migration_time": migration_time_violations,
    "migration_concurrency": migration_concurrency_violations,
    "migration_budget": migration_budget_violations,
}
