"""Every policy by the name `placement simulate --policy` and `placement run --policy`
take (`serial:45`, `replan:best-fit`, ...)."""

from __future__ import annotations

from collections.abc import Callable

from placement.simulate.policies import (
    AllAtOnce,
    Batch,
    OpenLoop,
    Pacemaker,
    Policy,
    PriorityGroups,
    Proxmox,
    ReadinessGated,
    Serial,
)
from placement.simulate.replan import Replan

POLICY_NAMES = (
    "open-loop",
    "readiness-gated",
    "readiness-backfill",
    "all-at-once",
    "serial:SECONDS",
    "batch:N",
    "batch-ready:N",
    "proxmox",
    "pacemaker",
    "priority-groups",
    "replan",
    "replan:SOLVER",
)


def policy_by_name(spec: str) -> Policy:
    """The policy a name stands for (`serial:45`, `batch:4`, ...); ValueError if none."""
    name, _, argument = spec.partition(":")
    simple: dict[str, Callable[[], Policy]] = {
        "open-loop": OpenLoop,
        "readiness-gated": ReadinessGated,
        "readiness-backfill": lambda: ReadinessGated(backfill=True),
        "all-at-once": AllAtOnce,
        "proxmox": Proxmox,
        "pacemaker": Pacemaker,
        "priority-groups": PriorityGroups,
    }
    if name in simple and not argument:
        return simple[name]()
    if name == "replan":
        return _replan(argument, spec)
    if name in ("serial", "batch", "batch-ready"):
        try:
            value = int(argument) if argument else (45 if name == "serial" else 4)
        except ValueError:
            value = -1
        if value < (0 if name == "serial" else 1):
            raise ValueError(f"policy '{spec}': expected {name}:N with a whole number N")
        if name == "serial":
            return Serial(value)
        return Batch(value, "started" if name == "batch" else "ready")
    raise ValueError(f"unknown policy '{spec}' (expected one of: {', '.join(POLICY_NAMES)})")


def _replan(solver: str, spec: str) -> Policy:
    if not solver:
        return Replan()
    from placement.solvers import UnknownSolverError, get_solver

    try:
        get_solver(solver)
    except UnknownSolverError as error:
        raise ValueError(f"policy '{spec}': {error.args[0]}") from None
    return Replan(solver=solver)
