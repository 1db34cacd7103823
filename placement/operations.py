"""HA operations: turn a cluster state and a question into a problem, and answer it.

A *cluster state* is a problem file whose guests carry their current host and state.
HA tools do not ask "pack these guests"; they ask:

- `failover(state, failed=[...])`: these hosts just died. Their running guests restart
  elsewhere (boot-storm limits apply); running guests elsewhere stay unless the
  objective lets them move; frozen guests keep their memory and are replaced elsewhere.
- `evacuate(state, hosts=[...])`: these hosts go to maintenance. Their running guests
  move by live migration; a guest that cannot move (`movable: false`) can only be
  stopped, and `scenario_notes` says so. A frozen copy on such a host is discarded (the
  host must end empty) and its replacement starts elsewhere.
- `rebalance(state, max_moves=K)`: lower the cluster's imbalance with at most K live
  migrations. `run_scenario(..., min_improvement=0.1)` keeps the cluster as it is unless
  the best plan lowers Proxmox's imbalance by that fraction (hysteresis: plans that
  barely help are not worth their migrations and would flap).
- `coldstart(state)`: after a whole-cluster outage every guest is stopped and every
  online host empty; everything starts again.

Each function is pure: it returns a new `Problem` (the *scenario*) that any solver solves
and `placement.check` verifies. Guests that are stopped in the state stay stopped
(except in a cold start) and are left out of the scenario; a dependency (`after`) on one
of them is dropped, which `scenario_notes` reports. Bad requests (an unknown host, a
host that is already down) raise `ScenarioError` naming the problem.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from placement.check import CheckReport, check, objective_values
from placement.imbalance import imbalance
from placement.model import (
    Guest,
    GuestState,
    HostState,
    Objective,
    Problem,
    host_allows,
)
from placement.plan import Action, Assignment, Plan, StageResult, Status
from placement.statistics import Hysteresis

logger = logging.getLogger(__name__)

__all__ = [
    "COLDSTART_OBJECTIVE",
    "EVACUATE_OBJECTIVE",
    "FAILOVER_OBJECTIVE",
    "PROXMOX_MIN_IMPROVEMENT",
    "REBALANCE_OBJECTIVE",
    "SCENARIOS",
    "ScenarioError",
    "ScenarioResult",
    "coldstart",
    "evacuate",
    "failover",
    "imbalance",
    "rebalance",
    "run_scenario",
    "scenario_notes",
    "stay_plan",
]

#: Failover: restart what died, keep running guests where they are, then recover fast.
FAILOVER_OBJECTIVE = (
    Objective.PLACED,
    Objective.MIGRATIONS,
    Objective.RECOVERY,
    Objective.BALANCE,
)
#: Evacuation: keep everything running, move only what must move, empty the host fast.
EVACUATE_OBJECTIVE = (
    Objective.PLACED,
    Objective.MIGRATIONS,
    Objective.MAKESPAN,
    Objective.BALANCE,
)
#: Cold start: start everything, soon, spread over the hosts.
COLDSTART_OBJECTIVE = (Objective.PLACED, Objective.RECOVERY, Objective.BALANCE)
#: Rebalance: the most even load, then the fewest moves to get there.
REBALANCE_OBJECTIVE = (Objective.PLACED, Objective.IMBALANCE, Objective.MIGRATIONS)

#: Proxmox's default "minimum imbalance improvement" for a rebalancing migration.
PROXMOX_MIN_IMPROVEMENT = 0.1

SCENARIOS = ("failover", "evacuate", "rebalance", "coldstart")


class ScenarioError(ValueError):
    """A scenario that cannot be built from this state (unknown host, host already down)."""


# --- building scenarios ------------------------------------------------------------------


def _host_names(problem: Problem, names: Iterable[str], option: str) -> list[str]:
    """`names` checked against the problem's hosts, in the given order, without repeats."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        raise ScenarioError(f"{option}: name at least one host")
    unknown = [name for name in wanted if not problem.has_host(name)]
    if unknown:
        known = ", ".join(host.name for host in problem.hosts)
        raise ScenarioError(
            f"{option}: unknown host{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(n) for n in unknown)} (hosts: {known})"
        )
    return wanted


def _online_hosts(problem: Problem, names: Iterable[str], option: str, action: str) -> list[str]:
    """`names` checked by `_host_names`, each also online (else "only an online host can
    {action}")."""
    checked = _host_names(problem, names, option)
    down = [n for n in checked if problem.host(n).state is not HostState.ONLINE]
    if down:
        states = ", ".join(f"{n} is {problem.host(n).state.value}" for n in down)
        raise ScenarioError(f"{option}: only an online host can {action} ({states})")
    return checked


def _objective(
    given: Sequence[Objective | str] | None, default: tuple[Objective, ...]
) -> tuple[Objective, ...]:
    if given is None:
        return default
    try:
        chosen = tuple(Objective(item) for item in given)
    except ValueError as error:
        names = ", ".join(o.value for o in Objective)
        raise ScenarioError(f"objective: {error} (known: {names})") from None
    if not chosen:
        raise ScenarioError("objective: name at least one objective stage")
    if len(set(chosen)) != len(chosen):
        raise ScenarioError("objective: a stage is named twice")
    return chosen


def _without_stopped(guests: Sequence[Guest], keep: Iterable[str] = ()) -> list[Guest]:
    """`guests` minus the stopped ones (but those named in `keep`); dependencies on the
    guests left out are dropped."""
    keep = set(keep)
    kept = [g for g in guests if g.state is not GuestState.STOPPED or g.name in keep]
    names = {guest.name for guest in kept}
    result = []
    for guest in kept:
        after = tuple(name for name in guest.boot.after if name in names)
        if after != guest.boot.after:
            # Through a dict: mypy reads attrs' `converter=tuple` as taking no concrete type.
            changes: dict[str, Any] = {"after": after}
            guest = attrs.evolve(guest, boot=attrs.evolve(guest.boot, **changes))
        result.append(guest)
    return result


def failover(
    problem: Problem,
    failed: Sequence[str],
    *,
    objective: Sequence[Objective | str] | None = None,
) -> Problem:
    """The scenario after hosts `failed` died: they are marked failed and their running
    guests need a new host. Stopped guests stay stopped (left out).

    The default objective (`FAILOVER_OBJECTIVE`) places as much as it can, moves no
    running guest it need not move, then minimises the priority-weighted recovery time.
    Raises `ScenarioError` for an unknown host or one that is not online.
    """
    names = _online_hosts(problem, failed, "--failed", "fail")
    hosts = [
        attrs.evolve(host, state=HostState.FAILED) if host.name in names else host
        for host in problem.hosts
    ]
    return attrs.evolve(
        problem,
        hosts=hosts,
        guests=_without_stopped(problem.guests),
        objective=_objective(objective, FAILOVER_OBJECTIVE),
    )


def evacuate(
    problem: Problem,
    hosts: Sequence[str],
    *,
    objective: Sequence[Objective | str] | None = None,
) -> Problem:
    """The scenario that puts `hosts` in maintenance: their running guests must leave by
    live migration (a `movable: false` one can only be stopped), and a frozen copy on
    them is discarded so that they end empty; its replacement starts elsewhere.

    Raises `ScenarioError` for an unknown host or one that is not online.
    """
    names = _online_hosts(problem, hosts, "--host", "be evacuated")
    if all(host.name in names or not host.online for host in problem.hosts):
        raise ScenarioError("--host: evacuating these hosts leaves no online host")
    new_hosts = [
        attrs.evolve(host, state=HostState.MAINTENANCE) if host.name in names else host
        for host in problem.hosts
    ]
    guests = []
    replaced = set()
    for guest in problem.guests:
        if guest.state is GuestState.FROZEN and guest.current_host in names:
            # The paused copy goes with the maintenance; the guest itself still has to run.
            guest = attrs.evolve(guest, state=GuestState.STOPPED)
            replaced.add(guest.name)
        guests.append(guest)
    return attrs.evolve(
        problem,
        hosts=new_hosts,
        guests=_without_stopped(guests, keep=replaced),
        objective=_objective(objective, EVACUATE_OBJECTIVE),
    )


def coldstart(problem: Problem, *, objective: Sequence[Objective | str] | None = None) -> Problem:
    """The scenario after a whole-cluster outage: every guest is stopped (frozen copies
    are lost with the power) and every host keeps its state, online hosts empty.

    Every guest is started; `current_host` stays as a hint of where it was configured.
    """
    guests = [attrs.evolve(guest, state=GuestState.STOPPED) for guest in problem.guests]
    return attrs.evolve(
        problem, guests=guests, objective=_objective(objective, COLDSTART_OBJECTIVE)
    )


def rebalance(
    problem: Problem,
    *,
    max_moves: int | None = None,
    objective: Sequence[Objective | str] | None = None,
) -> Problem:
    """The scenario that evens out the load with at most `max_moves` live migrations
    (None: the state's own `migration.max_moves`). Stopped guests stay stopped.

    The default objective (`REBALANCE_OBJECTIVE`) places everything that runs, evens the
    load out, then uses as few migrations as that needs. Use `run_scenario` with
    `min_improvement` for Proxmox-style hysteresis.
    """
    if max_moves is not None and (isinstance(max_moves, bool) or max_moves < 0):
        raise ScenarioError(f"--max-moves must be >= 0, got {max_moves}")
    migration = problem.migration
    if max_moves is not None:
        migration = attrs.evolve(migration, max_moves=max_moves)
    return attrs.evolve(
        problem,
        guests=_without_stopped(problem.guests),
        migration=migration,
        objective=_objective(objective, REBALANCE_OBJECTIVE),
    )


# --- what a scenario changed -------------------------------------------------------------


def _names_text(names: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def scenario_notes(state: Problem, scenario: Problem) -> list[str]:
    """What building `scenario` from `state` left out, dropped or cannot do, one line each:
    guests that stay stopped, dependencies dropped with them, discarded frozen copies,
    and running guests on hosts going down that cannot be live-migrated."""
    notes: list[str] = []
    left_out = [g.name for g in state.guests if not scenario.has_guest(g.name)]
    if left_out:
        notes.append(
            f"{len(left_out)} stopped guest(s) stay stopped and are not planned: "
            f"{_names_text(left_out)}"
        )
    for guest in scenario.guests:
        before = state.guest(guest.name)
        dropped = [n for n in before.boot.after if n not in guest.boot.after]
        if dropped:
            notes.append(
                f"{guest.name} waited for {_names_text(dropped)}, which stay(s) stopped: "
                "that dependency is dropped"
            )
        if before.state is GuestState.FROZEN and guest.state is not GuestState.FROZEN:
            notes.append(
                f"the frozen copy of {guest.name} on {before.current_host} is discarded; "
                "the guest starts again"
            )
    for guest in scenario.guests:
        if not scenario.runs_now(guest) or guest.current_host is None:
            continue
        host = scenario.host(guest.current_host)
        if host.online:
            continue
        if not guest.movable:
            notes.append(
                f"{guest.name} runs on {host.name} ({host.state.value}) but cannot be "
                "live-migrated (movable: false): it can only be stopped"
            )
    return notes


# --- solving a scenario ------------------------------------------------------------------


@attrs.frozen
class ScenarioResult:
    """A scenario's answer: the plan, its check, and the imbalance before and after.

    `kept_current`: hysteresis chose the plan that moves nothing, because the best plan
    did not lower the imbalance by `min_improvement`. `candidate_imbalance` is then what
    the rejected plan would have reached.
    """

    problem: Problem
    plan: Plan
    report: CheckReport
    imbalance_before: float
    imbalance_after: float
    kept_current: bool = False
    candidate_imbalance: float | None = None


def stay_plan(problem: Problem, solver: str = "cpsat", options: object = None) -> Plan:
    """The plan that moves no running guest: each guest that runs now on an online host
    its rules allow stays there; the others (restarts, replacements of frozen guests,
    guests on hosts going down) are planned by `solver` around them.
    """
    from placement.solvers import SolveOptions, solve

    staying = {
        guest.name: guest.current_host
        for guest in problem.guests
        if problem.runs_now(guest)
        and guest.current_host is not None
        and host_allows(problem.host(guest.current_host), guest)
    }
    if len(staying) == len(problem.guests):
        started = time.perf_counter()
        assignments = [Assignment(name, host, Action.STAY) for name, host in staying.items()]
        draft = Plan(Status.FEASIBLE, "stay", 0.0, assignments)
        values = objective_values(problem, draft)
        stages = [StageResult(o.value, values[o.value]) for o in problem.objective]
        runtime_s = round(time.perf_counter() - started, 6)
        return Plan(Status.FEASIBLE, "stay", runtime_s, assignments, stages=stages)
    guests = []
    for guest in problem.guests:
        if guest.name in staying:
            only: dict[str, Any] = {"hosts": frozenset({staying[guest.name]})}
            guest = attrs.evolve(guest, **only)
        guests.append(guest)
    pinned = attrs.evolve(problem, guests=guests)
    chosen = options if isinstance(options, SolveOptions) else SolveOptions()
    return solve(pinned, solver, chosen)


def run_scenario(
    scenario: Problem,
    solver: str = "cpsat",
    options: object = None,
    *,
    min_improvement: float | None = None,
) -> ScenarioResult:
    """Solve `scenario` with `solver` (a registered name) and check the plan.

    `options` is a `placement.solvers.SolveOptions` (None: defaults). With
    `min_improvement` (a fraction, e.g. 0.1), the plan that moves nothing is returned
    instead unless the solver's plan lowers Proxmox's imbalance by at least that
    fraction of the current imbalance — and is itself valid, while the plan that moves
    nothing is too. Raises `placement.solvers.UnknownSolverError` for an unknown solver.
    """
    from placement.solvers import SolveOptions, solve

    chosen = options if isinstance(options, SolveOptions) else SolveOptions()
    if min_improvement is not None and not 0.0 <= min_improvement <= 1.0:
        raise ScenarioError(f"--min-improvement must be in [0, 1], got {min_improvement}")
    before = imbalance(scenario)
    plan = solve(scenario, solver, chosen)
    report = check(scenario, plan)
    after = imbalance(scenario, plan)
    if min_improvement is None:
        return ScenarioResult(scenario, plan, report, before, after)

    current = stay_plan(scenario, solver, chosen)
    current_report = check(scenario, current)
    current_imbalance = imbalance(scenario, current)
    enough = current_imbalance > 0 and (
        (current_imbalance - after) >= min_improvement * current_imbalance
    )
    if report.ok and (enough or not current_report.ok):
        return ScenarioResult(scenario, plan, report, before, after)
    if not current_report.ok:
        return ScenarioResult(scenario, plan, report, before, after)
    logger.info(
        "rebalance: imbalance %.4f -> %.4f is less than %.0f%% better; keeping the cluster",
        current_imbalance,
        after,
        100 * min_improvement,
    )
    hysteresis = Hysteresis(
        min_improvement=min_improvement,
        rejected_solver=plan.solver,
        rejected_imbalance=after,
        imbalance=current_imbalance,
    )
    kept = attrs.evolve(current, statistics=attrs.evolve(current.statistics, hysteresis=hysteresis))
    return ScenarioResult(
        scenario,
        kept,
        current_report,
        before,
        current_imbalance,
        kept_current=True,
        candidate_imbalance=after,
    )
