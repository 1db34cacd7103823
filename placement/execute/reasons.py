"""Why a guest starts now, in words, from what the ledger knows at that instant."""

from __future__ import annotations

from collections.abc import Mapping

from placement.plan import Action, Assignment
from placement.simulate.ledger import GuestStatus, Ledger


def format_offset(t_s: float) -> str:
    """`+01:35` (minutes and seconds), `+1:02:03` past an hour."""
    whole = max(round(t_s), 0)
    hours, rest = divmod(whole, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"+{hours}:{minutes:02d}:{seconds:02d}"
    return f"+{minutes:02d}:{seconds:02d}"


def _figure(value: float) -> str:
    return f"{value:g}" if value < 1e6 else f"{value:.3g}"


def start_reason(
    ledger: Ledger, planned: Mapping[str, Assignment], guest: int, host: int, action: str
) -> str:
    """What let `guest` start on `host` now, once the ledger counts the start: the retry
    it is, where the plan had it, the dependencies now ready, the declared boot loads
    (this one included) against their limits."""
    problem = ledger.problem
    parts: list[str] = []
    if action == "retry":
        parts.append(f"retry {ledger.attempts[guest] - 1} of {ledger.settings.max_retries}")
    elif ledger.lost_once[guest]:
        parts.append("lost with its host: started again")
    planned_one = planned.get(problem.guests[guest].name)
    planned_to_start = planned_one is not None and planned_one.action in (
        Action.START,
        Action.MIGRATE,
    )
    if (
        planned_to_start
        and planned_one is not None
        and planned_one.host is not None
        and (action != "retry")
    ):
        where = "" if planned_one.host == problem.hosts[host].name else f" on {planned_one.host}"
        parts.append(f"planned {format_offset(float(planned_one.start_s or 0))}{where}")
    after = [
        name
        for name in problem.guests[guest].boot.after
        if problem.has_guest(name)
        and ledger.status[problem.guest_position(name)] is GuestStatus.READY
    ]
    if after:
        shown = ", ".join(after[:3]) + (" ..." if len(after) > 3 else "")
        parts.append(f"after {shown} ready")
    for pool, _ in ledger.pool_loads(guest):
        parts.append(
            f"pool {ledger.pools[pool]} "
            f"{_figure(ledger.declared_pool[pool])}/{_figure(ledger.capacity[pool])}"
        )
    limit = problem.hosts[host].boot.cpu
    if limit is not None and problem.guests[guest].boot.cpu:
        parts.append(f"boot cpu {_figure(ledger.declared_cpu[host])}/{limit}")
    return "; ".join(parts)
