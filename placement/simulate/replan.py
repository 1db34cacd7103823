"""Re-planning: carry a plan out readiness-gated, and solve what is left again when the
recovery departs from it.

A departure is a host that goes down (its guests are lost), a guest whose every start
attempt failed, or a boot that runs late or early by more than `tolerance` of its
declared duration. At a departure the controller builds the *remaining problem* from
what it knows (`remaining_problem`):

- guests ready or running keep their host and may not move;
- guests still booting (or waiting for a retry) are pinned to their host as starts
  whose boot takes what is left of their declared duration, so their boot load still
  counts against the pools;
- what holds a host now (ready, running or booting there) is taken out of its room, so
  no re-plan can give that room away by leaving such a guest out;
- guests lost with a host, or given up on a host (which they now avoid), start again;
- guests the plan stops stay stopped (no host may take them);
- hosts that went down are failed hosts.

It solves it with the chosen solver (CP-SAT by default, the plan being carried out as
the hint) and continues readiness-gated with the new plan. While it solves, nothing
starts: the solve time (or a fixed `latency_s`) is charged to the clock, so in the
simulator a slow re-plan costs what it would cost a real cluster. Timing departures
re-plan at most once per `cooldown_s`, so a noisy recovery does not spend its time
solving.
"""

from __future__ import annotations

import functools
import heapq
import math
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import attrs

from placement.model import GuestState, Host, HostState, Problem
from placement.plan import Action, Assignment, Plan, Status, Unplaced
from placement.simulate.engine import Controller, Decision
from placement.simulate.ledger import Event, EventKind, GuestStatus, Ledger
from placement.simulate.policies import Policy, ReadinessGated

_EPS = 1e-9

#: Guests a re-plan places anew (when it has room for them).
_TO_START = (GuestStatus.WAITING, GuestStatus.LOST, GuestStatus.GAVE_UP)

#: How often (s) a live executor looks at a re-plan solving in the background.
_POLL_S = 0.5

#: The share of its declared duration a boot still booting past its duration is assumed
#: to need (what is left is unknown; the re-plan should not count it as over).
_LATE_REMAINING_SHARE = 0.25


def default_time_limit_s(guests: int) -> float:
    """The re-solve's time limit for a recovery of `guests` guests: 2 s up to 100, then
    a second per 50 more, at most 10 s."""
    return min(10.0, max(2.0, guests / 50.0))


def _remaining_s(world: Ledger, guest: int) -> int:
    """What is left, declared, of the boot of `guest` in progress (whole seconds)."""
    duration = world.problem.guests[guest].boot.duration_s
    if world.status[guest] is GuestStatus.RETRY_WAIT:
        return duration + world.settings.retry_delay_s
    started = world.started_at[guest]
    elapsed = world.now - (started if started is not None else world.now)
    left = max(duration - elapsed, _LATE_REMAINING_SHARE * duration)
    return math.ceil(left - _EPS)


#: Statuses of guests that hold their host now (running, or booting there).
_HOLDING = (GuestStatus.READY, GuestStatus.RUNNING, GuestStatus.BOOTING, GuestStatus.RETRY_WAIT)


def _holding(world: Ledger) -> list[dict[str, int]]:
    """Per host, the demand of what holds it now: guests running, ready or booting there
    (and the frozen copies of guests restarted elsewhere, on their old host)."""
    problem = world.problem
    held: list[dict[str, int]] = [{} for _ in problem.hosts]
    for g, guest in enumerate(problem.guests):
        places = []
        if world.status[g] in _HOLDING and world.host_of[g] is not None:
            places.append(world.host_of[g])
        if guest.state is GuestState.FROZEN and guest.current_host is not None:
            frozen_on = problem.host_position(guest.current_host)
            if frozen_on not in places and world.status[g] not in (GuestStatus.RUNNING,):
                places.append(frozen_on)
        for h in places:
            assert h is not None
            for resource, amount in guest.demand.items():
                held[h][resource] = held[h].get(resource, 0) + amount
    return held


def _room_left(host: Host, held: Mapping[str, int]) -> Host:
    """`host` with what `held` takes out of it: its usable amounts, less that, as plain
    capacity (no reservation, no overcommit), so no plan can count on that room."""
    resources = set(host.capacity) | set(held)
    capacity = {r: max(host.usable(r) - held.get(r, 0), 0) for r in resources}
    changes: dict[str, Any] = {"capacity": capacity, "reserved": {}, "overcommit": {}}
    return attrs.evolve(host, **changes)


def remaining_problem(world: Ledger, failed_on: Mapping[int, set[str]] | None = None) -> Problem:
    """The recovery's problem as it stands now, time 0 being now (see the module text).
    `failed_on`: guest -> hosts where every start of it failed, which it now avoids.

    What holds a host now (a guest running, ready or booting there) is taken out of the
    host's room and keeps no demand of its own, so no re-plan can give that room away
    by leaving such a guest out: the executor never stops what runs, and a boot under
    way cannot be taken back."""
    failed_on = failed_on or {}
    problem = world.problem
    held = _holding(world)
    hosts = []
    for h, original in enumerate(problem.hosts):
        if not world.online[h]:
            hosts.append(attrs.evolve(original, state=HostState.FAILED))
        else:
            hosts.append(_room_left(original, held[h]) if held[h] else original)
    guests = []
    for g, guest in enumerate(problem.guests):
        status = world.status[g]
        host = world.host_of[g]
        name = problem.hosts[host].name if host is not None else None
        migrating = status is GuestStatus.BOOTING and world.migrating[g]
        if status in (GuestStatus.READY, GuestStatus.RUNNING) or migrating:
            fixed: dict[str, Any] = {
                "current_host": name,
                "state": GuestState.RUNNING,
                "movable": False,
                "demand": {},
            }
            guest = attrs.evolve(guest, **fixed)
        elif status in (GuestStatus.BOOTING, GuestStatus.RETRY_WAIT):
            assert name is not None
            pinned: dict[str, Any] = {
                "current_host": None,
                "state": GuestState.STOPPED,
                "hosts": (name,),
                "avoid_hosts": (),
                "demand": {},
                "boot": attrs.evolve(guest.boot, duration_s=_remaining_s(world, g)),
            }
            guest = attrs.evolve(guest, **pinned)
        elif status in (GuestStatus.LOST, GuestStatus.GAVE_UP):
            avoid = set(guest.avoid_hosts) | failed_on.get(g, set())
            if status is GuestStatus.GAVE_UP and name is not None:
                avoid.add(name)  # it failed there: another host, if any
            again: dict[str, Any] = {
                "current_host": None,
                "state": GuestState.STOPPED,
                "avoid_hosts": sorted(avoid),
            }
            guest = attrs.evolve(guest, **again)
        elif status is GuestStatus.STOPPED:
            # The plan stopped it to make room: it stays stopped, and out of the plan.
            stopped: dict[str, Any] = {
                "current_host": None,
                "state": GuestState.STOPPED,
                "hosts": (),
            }
            guest = attrs.evolve(guest, **stopped)
        guests.append(guest)
    return attrs.evolve(problem, hosts=hosts, guests=guests)


def carried_plan(world: Ledger, remaining: Problem, plan: Plan) -> Plan:
    """`plan` as it stands for `remaining`: what runs stays, what boots starts at 0 for
    what is left of it, what waits keeps its host and its planned instants shifted to
    now; lost and given-up guests are left unplaced. The re-solve's hint (the checker
    decides whether it is still a valid plan)."""
    by_guest = plan.by_guest()
    assignments = []
    unplaced = []
    for g, guest in enumerate(remaining.guests):
        status = world.status[g]
        host = world.host_of[g]
        if remaining.runs_now(guest):
            assignments.append(Assignment(guest.name, guest.current_host, Action.STAY))
        elif status in (GuestStatus.BOOTING, GuestStatus.RETRY_WAIT):
            assert host is not None
            duration = guest.boot.duration_s
            assignments.append(
                Assignment(guest.name, remaining.hosts[host].name, Action.START, 0, duration)
            )
        elif status is GuestStatus.WAITING:
            found = by_guest.get(guest.name)
            if found is None or found.host is None or found.start_s is None:
                continue
            shift = math.ceil(world.now - _EPS)
            start = max(found.start_s - shift, 0)
            ready = start + ((found.ready_s or found.start_s) - found.start_s)
            assignments.append(Assignment(guest.name, found.host, found.action, start, ready))
        elif not remaining.runs_now(guest):
            unplaced.append(Unplaced(guest.name, "to be placed again"))
    return Plan(
        status=Status.FEASIBLE,
        solver="carried",
        runtime_s=0.0,
        assignments=tuple(assignments),
        unplaced=tuple(unplaced),
    )


def valid_carried_plan(world: Ledger, remaining: Problem, plan: Plan) -> Plan:
    """`carried_plan`, re-timed by the list schedule on the same hosts when its shifted
    instants no longer hold (a late boot still loads a pool the plan thought free): a
    plan the checker accepts whenever its hosts still fit, to hint the solver and to
    measure a re-plan against."""
    from placement.check import check
    from placement.solvers import SolveOptions
    from placement.solvers.common import Placement, finish_plan

    carried = carried_plan(world, remaining, plan)
    if check(remaining, carried).ok:
        return carried
    hosts = {a.guest: a.host for a in carried.assignments}
    reasons = {u.guest: u.reason for u in carried.unplaced}
    retimed = finish_plan(
        remaining,
        Placement(hosts={g.name: hosts.get(g.name) for g in remaining.guests}, reasons=reasons),
        SolveOptions(schedule="list"),
        "carried",
        time.perf_counter(),
    )
    return retimed


@attrs.frozen
class Replan(Policy):
    """Readiness-gated, solving the rest again at each departure (see the module text).

    `solver`: what re-solves (`cpsat`, or a baseline such as `best-fit` for a fast,
    repeatable loop). `tolerance`: a boot later or earlier than its declared duration by
    more than this share departs. `time_limit_s`: the re-solve's limit (None: by the
    recovery's size, `default_time_limit_s`). `latency_s`: charge this many seconds per
    re-plan instead of the measured solve time (repeatable simulations). `cooldown_s`:
    timing departures re-plan at most once per this many seconds.
    """

    solver: str = "cpsat"
    tolerance: float = 0.5
    time_limit_s: float | None = None
    latency_s: float | None = None
    cooldown_s: float = 60.0
    seed: int = 0
    workers: int = 2

    @property
    def name(self) -> str:  # type: ignore[override]
        return "replan" if self.solver == "cpsat" else f"replan:{self.solver}"

    def controller(self, problem: Problem, plan: Plan) -> Controller:
        return _Replanning(problem, plan, self)


@attrs.frozen
class _Pending:
    """A re-plan on its way, solved on the state of the moment it was asked for: in
    force from `arrives_at` (the solve's latency later), or when `future` is done (a solve running
    in the background of a live executor)."""

    remaining: Problem | None
    plan: Plan | None
    arrives_at: float
    structural: bool
    why: str
    hint: Plan
    future: Future[tuple[Problem, Plan, float]] | None = None


class _Replanning:
    """One run: a readiness-gated controller for the plan in force, replaced by a new one
    when a re-plan arrives. The plan in force goes on while a re-plan is solved."""

    def __init__(self, problem: Problem, plan: Plan, policy: Replan) -> None:
        self.policy = policy
        self.plan = plan
        self.inner = ReadinessGated().controller(problem, plan)
        self.pending: _Pending | None = None
        self.known_down: frozenset[int] = frozenset()
        self.watched = 0  # entries of world.start_log already given a deadline
        self.deadlines: list[tuple[float, int, float]] = []  # (late at, guest, started at)
        self.last_timing_replan = -math.inf
        # Hosts each guest gave up on: never tried again, so repeated failures end.
        self.failed_on: dict[int, set[str]] = {}

    def decide(self, world: Ledger, events: Sequence[Event]) -> Decision:
        self._collect(world)
        departure = self._departure(world, events)
        if departure is not None:
            self._ask(world, *departure)
            self._collect(world)
        decision = self.inner.decide(world, events)
        self._watch_starts(world)
        return Decision(decision.starts, self._wake(world, decision.wake_at_s))

    # --- departures ---------------------------------------------------------------------

    def _watch_starts(self, world: Ledger) -> None:
        log = world.start_log
        factor = 1.0 + self.policy.tolerance
        while self.watched < len(log):
            at, guest = log[self.watched]
            self.watched += 1
            duration = world.problem.guests[guest].boot.duration_s
            if not world.migrating[guest] and duration > 0:
                heapq.heappush(self.deadlines, (at + factor * duration, guest, at))

    def _wake(self, world: Ledger, inner: float | None) -> float | None:
        """The inner controller's wake-up, the next instant a boot turns late (one that
        is ready by then only costs a question), or the re-plan's arrival."""
        candidates = [t for t in (inner,) if t is not None]
        if self.deadlines:
            candidates.append(self.deadlines[0][0])
        if self.pending is not None:
            # A background solve is looked at again shortly; a simulated one arrives.
            soon = world.now + _POLL_S if self.pending.future is not None else None
            candidates.append(soon if soon is not None else self.pending.arrives_at)
        return min(candidates, default=None)

    def _departure(self, world: Ledger, events: Sequence[Event]) -> tuple[str, bool] | None:
        """Why the recovery departs from the plan now, and whether the departure is
        structural (a loss or a failure, not timing), or None. A loss on a host the last
        re-plan already knew was down is no news."""
        structural = None
        timing = None
        for event in events:
            known = event.host is not None and event.host in self.known_down
            if event.kind is EventKind.HOST_DOWN and event.host is not None and not known:
                structural = structural or f"host {world.problem.hosts[event.host].name} down"
            elif event.kind is EventKind.GAVE_UP and event.guest is not None:
                if event.host is not None:
                    host_name = world.problem.hosts[event.host].name
                    self.failed_on.setdefault(event.guest, set()).add(host_name)
                name = world.problem.guests[event.guest].name
                structural = structural or f"every start of {name} failed"
            elif event.kind is EventKind.LOST and event.guest is not None and not known:
                name = world.problem.guests[event.guest].name
                structural = structural or f"{name} lost with its host"
            elif event.kind is EventKind.READY and event.guest is not None:
                timing = timing or self._early(world, event.guest)
        while self.deadlines and self.deadlines[0][0] <= world.now + _EPS:
            _, guest, started = heapq.heappop(self.deadlines)
            booting = world.status[guest] is GuestStatus.BOOTING
            if booting and world.started_at[guest] == started:
                timing = timing or f"{world.problem.guests[guest].name} late"
        if structural is None:
            cooling = world.now - self.last_timing_replan < self.policy.cooldown_s
            if timing is None or cooling or self.pending is not None:
                return None
        why = structural or timing
        assert why is not None
        if not self._anything_to_place(world, structural is not None):
            return None
        return why, structural is not None

    def _early(self, world: Ledger, guest: int) -> str | None:
        started = world.started_at[guest]
        duration = world.problem.guests[guest].boot.duration_s
        if started is None or world.migrating[guest] or duration <= 0:
            return None
        if world.now - started < (1.0 - self.policy.tolerance) * duration - _EPS:
            return f"{world.problem.guests[guest].name} early"
        return None

    def _anything_to_place(self, world: Ledger, structural: bool) -> bool:
        """Whether a re-plan could change anything: a guest still to start (or, after a
        loss or a failure, one to start again)."""
        wanted = _TO_START if structural else (GuestStatus.WAITING,)
        return any(status in wanted for status in world.status)

    # --- re-planning --------------------------------------------------------------------

    def _ask(self, world: Ledger, why: str, structural: bool) -> None:
        """Solve the remaining problem as it stands; a later departure replaces a re-plan
        still on its way (its snapshot is older)."""
        policy = self.policy
        remaining = remaining_problem(world, self.failed_on)
        hint = valid_carried_plan(world, remaining, self.plan)
        to_place = sum(
            1
            for status in world.status
            if status not in (GuestStatus.READY, GuestStatus.RUNNING, GuestStatus.STOPPED)
        )
        limit = policy.time_limit_s or default_time_limit_s(to_place)
        self.known_down = frozenset(h for h, online in enumerate(world.online) if not online)
        if not structural:
            self.last_timing_replan = world.now
        solve = functools.partial(_solve, remaining, hint, policy, limit)
        if getattr(world, "solves_in_background", False):
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="replan")
            future = executor.submit(solve)
            executor.shutdown(wait=False)
            self.pending = _Pending(None, None, math.inf, structural, why, hint, future=future)
            return
        _, plan, solve_s = solve()
        latency = policy.latency_s if policy.latency_s is not None else solve_s
        self._record(world, structural, solve_s)
        self.pending = _Pending(remaining, plan, world.now + latency, structural, why, hint)

    def _record(self, world: Ledger, structural: bool, solve_s: float) -> None:
        stats = world.policy_stats
        stats["replans"] = stats.get("replans", 0.0) + 1
        if not structural:
            stats["timing_replans"] = stats.get("timing_replans", 0.0) + 1
        stats["solve_s_total"] = stats.get("solve_s_total", 0.0) + solve_s
        stats["solve_s_max"] = max(stats.get("solve_s_max", 0.0), solve_s)

    def _collect(self, world: Ledger) -> None:
        """Put in force a re-plan that has arrived."""
        pending = self.pending
        if pending is None:
            return
        if pending.future is not None:
            if not pending.future.done():
                return
            remaining, plan, solve_s = pending.future.result()
            self._record(world, pending.structural, solve_s)
        elif world.now + _EPS < pending.arrives_at:
            return
        else:
            assert pending.remaining is not None
            assert pending.plan is not None
            remaining, plan = pending.remaining, pending.plan
        self.pending = None
        if not pending.structural and _better(remaining, pending.hint, plan):
            # A timing re-plan worse than the plan in force (carried to the same instant)
            # is dropped; one as good is kept: its order is fresh, the old one waits for
            # boots that are late.
            world.policy_stats["dropped"] = world.policy_stats.get("dropped", 0.0) + 1
            world.policy_log.append(
                (world.now, f"re-plan ({pending.why}) dropped: worse than the plan in force")
            )
            return
        self._install(world, remaining, plan, pending.why)

    def _install(self, world: Ledger, remaining: Problem, plan: Plan, why: str) -> None:
        """Continue with the re-solved plan: a fresh readiness-gated controller that
        knows what has started and what has settled."""
        world.policy_stats["unplaced"] = float(len(plan.unplaced))
        world.policy_log.append(
            (
                world.now,
                f"re-plan ({why}) in force: {self.policy.solver}, "
                f"{_moved(world, self.plan, plan)} guest(s) to a new host, "
                f"{len(plan.unplaced)} unplaced",
            )
        )
        reasons = {u.guest: u.reason for u in plan.unplaced}
        for g, guest in enumerate(world.problem.guests):
            reason = reasons.get(guest.name)
            if reason is None:
                world.policy_reasons.pop(g, None)
            elif world.to_recover[g] and world.status[g] in _TO_START:
                world.policy_reasons[g] = f"the re-plan ({why}) left it unplaced: {reason}"
        actions = {a.guest: a.action for a in plan.assignments}
        for g, guest in enumerate(world.problem.guests):
            if actions.get(guest.name) not in (Action.MIGRATE, None):
                world.cancel_migration(g)  # the new plan leaves it where it runs
        self.plan = plan
        inner = ReadinessGated().controller(remaining, plan)
        adopt = getattr(inner, "adopt", None)
        assert adopt is not None
        adopt(world)
        self.inner = inner


def _solve(
    remaining: Problem, hint: Plan, policy: Replan, limit_s: float
) -> tuple[Problem, Plan, float]:
    from placement.solvers import SolveOptions, solve

    options = SolveOptions(
        time_limit_s=limit_s, seed=policy.seed, workers=policy.workers, hint=hint
    )
    began = time.perf_counter()
    plan = solve(remaining, policy.solver, options)
    return remaining, plan, time.perf_counter() - began


def _better(problem: Problem, plan: Plan, carried: Plan) -> bool:
    """Whether `plan` beats the plan in force carried to the same instant, both plans of
    `problem`, on the problem's objective, stage by stage."""
    from placement.check import objective_values

    ours = objective_values(problem, plan)
    theirs = objective_values(problem, carried)
    for stage in problem.objective:
        a, b = ours.get(stage.value, 0.0), theirs.get(stage.value, 0.0)
        if abs(a - b) > 1e-9:
            return a > b if stage.maximise else a < b
    return False


def _moved(world: Ledger, before: Plan, after: Plan) -> int:
    """Guests still to start that the new plan sends to another host than the old one."""
    hosts = {a.guest: a.host for a in before.assignments}
    count = 0
    for assignment in after.assignments:
        if assignment.action is not Action.START:
            continue
        g = world.problem.guest_position(assignment.guest)
        if world.status[g] in (GuestStatus.BOOTING, GuestStatus.RETRY_WAIT):
            continue
        if hosts.get(assignment.guest) != assignment.host:
            count += 1
    return count
