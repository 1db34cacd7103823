"""What the checker measures in a plan, valid or not: objective values, pool peaks, host
utilisation, migrations and Proxmox's imbalance (docs/rules.md, Metrics)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from placement.check.context import INF, Context, Decision, Occupancy, Peak
from placement.imbalance import (
    host_load,
    host_load_steps,
    imbalance_of_loads,
    imbalance_of_steps,
    load_resources,
    spread_target,
)
from placement.model import BALANCE_STEPS, Host, Objective, Problem
from placement.plan import Action


def _final_use(held: Mapping[str, Sequence[Occupancy]], host: Host) -> dict[str, int]:
    used: dict[str, int] = defaultdict(int)
    for occupancy in held.get(host.name, ()):
        if occupancy.end_s == INF:
            for resource, amount in occupancy.guest.demand.items():
                used[resource] += amount
    return used


def objectives(
    problem: Problem, decisions: Sequence[Decision], held: Mapping[str, Sequence[Occupancy]]
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
        if any(o.end_s == INF for o in occupancies):
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
    problem: Problem, held: Mapping[str, Sequence[Occupancy]]
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
    migrations: Sequence[Decision],
    peaks: tuple[Peak, Mapping[str, Peak]],
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


def metrics(context: Context) -> dict[str, Any]:
    """The plan's metrics as plain JSON data (`CheckReport.metrics`)."""
    problem, decisions, held = context.problem, context.decisions, context.held
    actions: dict[str, int] = {action.value: 0 for action in Action}
    for decision in decisions:
        actions[decision.action.value] += 1
    num_placed = sum(1 for d in decisions if d.host is not None)
    return {
        "objectives": objectives(problem, decisions, held),
        "placed": num_placed,
        "unplaced": len(decisions) - num_placed,
        "actions": actions,
        "pools": {
            pool: {"limit": problem.boot_pools.get(pool, 0), "peak": peak, "peak_at_s": at}
            for pool, (peak, at) in context.pool_peaks.items()
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
        "migrations": _migration_metrics(problem, context.migrations, context.migration_peaks),
    }
