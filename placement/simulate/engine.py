"""The physics of a recovery: boots as work under contention, failures, fencing.

A discrete-event simulation over *rate changes*. Between two events every boot
progresses at a constant rate, so time jumps from event to event: a boot that finishes
or fails, a start command that returns, a retry, a host that fails or is fenced, or a
policy's wake-up. Boots that load the same resources (the same pools, the same host's
boot CPU) always progress at the same rate, so they share one *group* with a virtual
clock: a boot's finish is a mark on its group's clock and a heap per group finds the
next one. An event then costs O(groups + log boots), not O(boots).

Rates (processor sharing): a resource whose demand exceeds its capacity serves every
boot that loads it at `delivered / demand` of full speed; a boot runs at the smallest
such factor over what it loads. `delivered` is the capacity (`share`) or, past
saturation, `capacity * max(floor, 1 - slope * (demand / capacity - 1))` (`thrash`).
Demand is the summed boot load of every boot in progress, slowed or not: a slow boot
keeps its I/O queue full. With a valid plan and no noise nothing is ever over capacity,
so every guest is ready exactly when the plan says (a property test holds it to that).

The engine decides nothing: a policy (placement.simulate.policies) says which guest to
start where, from what it can see (`World`: who is booting, ready, failed; the declared
boot load against the limits), exactly as an HA tool would.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from placement.model import Contention, Problem, SimulationSettings
from placement.plan import Plan
from placement.simulate.draws import ATTEMPTS, RunDraws
from placement.simulate.ledger import (
    Event,
    EventKind,
    GuestStatus,
    Ledger,
)

__all__ = ["Controller", "Decision", "Event", "EventKind", "GuestStatus", "World"]

_EPS = 1e-9


class Decision(NamedTuple):
    """A policy's answer: `(guest, host)` index pairs to start now, and when to be asked
    again even if nothing happens (None: only on the next event)."""

    starts: Sequence[tuple[int, int]] = ()
    wake_at_s: float | None = None


class Controller(Protocol):
    """One run of a policy: asked at instant 0, after every batch of events and at the
    wake-up instants it asks for.

    A controller may carry `watches_events = False` (asked only at instant 0 and at its
    wake-ups: a script that follows the clock) and `watches_returns = False` (it never
    reads `World.returned` or the in-flight counts, so start commands need not be
    followed); both default to True. They only save work.
    """

    def decide(self, world: Ledger, events: Sequence[Event]) -> Decision: ...


# Timer kinds, ordered so that at one instant host failures come first (a guest cannot
# become ready on a host that died at that very instant), then returns and retries.
_T_HOST_FAILURE = 0
_T_FENCE = 1
_T_RETURN = 2
_T_RETRY = 3
_T_WAKE = 4


class World(Ledger):
    """One simulated run: the ledger a policy reads (placement.simulate.ledger), and the
    physics under it. The physical demand on each resource (`demand`, `peak_demand`) is
    the engine's alone; policies see only the declared loads."""

    def __init__(
        self,
        problem: Problem,
        plan: Plan,
        settings: SimulationSettings,
        draws: RunDraws,
    ) -> None:
        super().__init__(problem, plan, settings)
        self.draws = draws
        capacity = self.capacity
        self.demand = [0.0] * len(capacity)
        self.peak_demand = [0.0] * len(capacity)
        self._factor = [1.0] * len(capacity)
        self._num_over = 0
        self.seconds_over_capacity = 0.0

        # Jobs (boot attempts and migrations) and their groups.
        self._job_guest: list[int] = []
        self._job_group: list[int] = []
        self._job_alive: list[bool] = []
        self._job_fails: list[bool] = []
        self._job_loads: list[list[tuple[int, float]]] = []
        self._job_host: list[int] = []
        self._job_of_guest: list[int | None] = [None] * len(problem.guests)
        # A group's virtual clock is kept lazily: clock(t) = base + rate * (t - since), so
        # an event touches only the groups whose rate it changes.
        self._group_of_signature: dict[tuple[int, ...], int] = {}
        self._group_signature: list[tuple[int, ...]] = []
        self._group_base: list[float] = []
        self._group_since: list[float] = []
        self._group_rate: list[float] = []
        self._group_version: list[int] = []
        self._group_heap: list[list[tuple[float, int]]] = []
        self._group_live: list[int] = []
        self._groups_of_resource: list[list[int]] = [[] for _ in capacity]
        self._changed_resources: set[int] = set()
        # Predicted finishes of each group's first job: (instant, seq, group, version, job).
        self._finishes: list[tuple[float, int, int, int, int]] = []
        self._host_pool_jobs = [[0] * self.num_pools for _ in problem.hosts]

        self._timers: list[tuple[float, int, int, int, int]] = []
        self._timer_seq = 0
        self._wake_version = 0
        self._fence_version = [0] * len(problem.hosts)
        self._fence_due: list[float | None] = [None] * len(problem.hosts)
        self._follow_returns = True
        # (instant, demand per pool) after every change, when asked for (plots).
        self.trace: list[tuple[float, tuple[float, ...]]] | None = None

        for failure in settings.host_failures:
            self._add_timer(failure.at_s, _T_HOST_FAILURE, problem.host_position(failure.host))
        if draws.host_failure is not None:
            failing, at_s = draws.host_failure
            self._add_timer(at_s, _T_HOST_FAILURE, failing)

    def host_pressure(self, host: int) -> float:
        """The host's boot pressure: its boot-CPU demand over its limit, or the demand
        over capacity of a pool its booting guests load, whichever is higher."""
        pressure = 0.0
        resource = self._cpu_resource[host]
        if resource is not None and self.demand[resource] > 0:
            capacity = self.capacity[resource]
            pressure = self.demand[resource] / capacity if capacity > 0 else math.inf
        counts = self._host_pool_jobs[host]
        for pool in range(self.num_pools):
            if counts[pool]:
                capacity = self.capacity[pool]
                ratio = self.demand[pool] / capacity if capacity > 0 else math.inf
                pressure = max(pressure, ratio)
        return pressure

    # --- timers -------------------------------------------------------------------------

    def _add_timer(self, at_s: float, kind: int, subject: int, version: int = 0) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (at_s, kind, self._timer_seq, subject, version))

    def _set_wake(self, at_s: float | None) -> None:
        self._wake_version += 1
        # A wake-up at or before now would only ask the same question again.
        if at_s is not None and at_s > self.now + _EPS:
            self._add_timer(at_s, _T_WAKE, 0, self._wake_version)

    # --- rates --------------------------------------------------------------------------

    def _delivered_factor(self, resource: int) -> float:
        demand = self.demand[resource]
        capacity = self.capacity[resource]
        if demand <= capacity + _EPS:
            return 1.0
        if capacity <= 0:
            # A limit of 0 (no boots wanted there) is a rule, not a device that stops:
            # boots that break it crawl at the floor rate instead of never ending.
            return self.settings.thrash_floor if self.settings.thrash_floor > 0 else 0.25
        overload = demand / capacity
        if self.settings.contention is Contention.THRASH:
            settings = self.settings
            delivered = capacity * max(
                settings.thrash_floor, 1.0 - settings.thrash_slope * (overload - 1.0)
            )
        else:
            delivered = capacity
        return delivered / demand

    def _change_demand(self, loads: list[tuple[int, float]], sign: float) -> None:
        for resource, amount in loads:
            before = self.demand[resource] > self.capacity[resource] + _EPS
            self.demand[resource] += sign * amount
            if self.demand[resource] < _EPS:
                self.demand[resource] = 0.0
            after = self.demand[resource] > self.capacity[resource] + _EPS
            self._num_over += int(after) - int(before)
            if self.demand[resource] > self.peak_demand[resource]:
                self.peak_demand[resource] = self.demand[resource]
            factor = self._delivered_factor(resource)
            if factor != self._factor[resource]:
                self._factor[resource] = factor
                self._changed_resources.add(resource)

    def _clock(self, group: int) -> float:
        return self._group_base[group] + self._group_rate[group] * (
            self.now - self._group_since[group]
        )

    def _predict(self, group: int) -> None:
        """Queue the instant the group's first job finishes at its current rate."""
        heap = self._group_heap[group]
        while heap and not self._job_alive[heap[0][1]]:
            heapq.heappop(heap)
        rate = self._group_rate[group]
        if not heap or rate <= 0:
            return
        at = self.now + max(heap[0][0] - self._clock(group), 0.0) / rate
        self._timer_seq += 1
        heapq.heappush(
            self._finishes, (at, self._timer_seq, group, self._group_version[group], heap[0][1])
        )

    def _refresh_rates(self) -> None:
        """New rates for the groups that load a resource whose factor changed."""
        if not self._changed_resources:
            return
        groups = {g for r in self._changed_resources for g in self._groups_of_resource[r]}
        self._changed_resources.clear()
        for group in groups:
            rate = self._rate_of(self._group_signature[group])
            if rate == self._group_rate[group]:
                continue
            self._group_base[group] = self._clock(group)
            self._group_since[group] = self.now
            self._group_rate[group] = rate
            self._group_version[group] += 1
            if self._group_live[group]:
                self._predict(group)

    def _advance(self, to_s: float) -> None:
        elapsed = to_s - self.now
        if elapsed <= 0:
            return
        if self._num_over:
            self.seconds_over_capacity += elapsed
        self.now = to_s

    def _next_completion(self) -> float:
        finishes = self._finishes
        while finishes:
            _, _, group, version, job = finishes[0]
            if version == self._group_version[group] and self._job_alive[job]:
                return finishes[0][0]
            heapq.heappop(finishes)
        return math.inf

    # --- jobs ---------------------------------------------------------------------------

    def _rate_of(self, signature: tuple[int, ...]) -> float:
        return min((self._factor[resource] for resource in signature), default=1.0)

    def _group(self, signature: tuple[int, ...]) -> int:
        group = self._group_of_signature.get(signature)
        if group is None:
            group = len(self._group_signature)
            self._group_of_signature[signature] = group
            self._group_signature.append(signature)
            self._group_base.append(0.0)
            self._group_since.append(self.now)
            self._group_rate.append(self._rate_of(signature))
            self._group_version.append(0)
            self._group_heap.append([])
            self._group_live.append(0)
            for resource in signature:
                self._groups_of_resource[resource].append(group)
        return group

    def _launch(self, guest: int, host: int, migrate: bool) -> None:
        """Start the physics of a boot attempt (or a migration) of `guest` on `host`."""
        problem_guest = self.problem.guests[guest]
        if migrate:
            loads = list(self._migrate_loads)
            work = float(self.problem.migration_duration(problem_guest))
        else:
            loads = list(self._boot_loads[guest])
            cpu_resource = self._cpu_resource[host]
            if cpu_resource is not None and problem_guest.boot.cpu > 0:
                loads.append((cpu_resource, float(problem_guest.boot.cpu)))
            work = float(problem_guest.boot.duration_s)
        # The ledger has counted this attempt already: its draw is the one before.
        attempt = min(self.attempts[guest] - 1, ATTEMPTS - 1)
        work *= float(self.draws.duration_factor[guest])
        fails = bool(self.draws.fails[guest, attempt]) and not migrate
        if fails:
            work *= float(self.draws.fail_point[guest, attempt])
        if work <= _EPS:
            loads = []  # a boot of no duration is over at once and loads nothing
        signature = tuple(sorted({resource for resource, _ in loads}))
        group = self._group(signature)
        job = len(self._job_guest)
        self._job_guest.append(guest)
        self._job_group.append(group)
        self._job_alive.append(True)
        self._job_fails.append(fails)
        self._job_loads.append(loads)
        self._job_host.append(host)
        self._job_of_guest[guest] = job
        heap = self._group_heap[group]
        mark = self._clock(group) + work
        first = not heap or mark < heap[0][0]
        heapq.heappush(heap, (mark, job))
        self._group_live[group] += 1
        if first:
            self._predict(group)
        self._change_demand(loads, +1.0)
        for resource, _ in loads:
            if resource < self.num_pools:
                self._host_pool_jobs[host][resource] += 1
        if self._follow_returns:
            self._add_timer(self.now + self.settings.start_return_s, _T_RETURN, guest, job)

    def _end_job(self, job: int) -> None:
        """Take a finished, failed or killed job out of the physics."""
        self._job_alive[job] = False
        group = self._job_group[job]
        self._group_live[group] -= 1
        if self._group_live[group] == 0:
            self._group_heap[group].clear()
        else:
            self._predict(group)  # the group's next job (a no-op duplicate is harmless)
        loads = self._job_loads[job]
        self._change_demand(loads, -1.0)
        host = self._job_host[job]
        for resource, _ in loads:
            if resource < self.num_pools:
                self._host_pool_jobs[host][resource] -= 1
        self._job_of_guest[self._job_guest[job]] = None

    def _kill(self, guest: int) -> None:
        job = self._job_of_guest[guest]
        if job is not None:
            self._end_job(job)

    def _schedule_retry(self, guest: int, at_s: float) -> None:
        self._add_timer(at_s, _T_RETRY, guest)

    def _host_down(self, host: int, fenced: bool) -> None:
        if self.online[host]:
            self._fence_version[host] += 1
            self._fence_due[host] = None
        super()._host_down(host, fenced)

    def _complete(self, job: int) -> None:
        guest = self._job_guest[job]
        self._end_job(job)
        self._finished(guest, ok=not self._job_fails[job])

    def _fire_timer(self, kind: int, subject: int, version: int) -> bool:
        """Act on a due timer; False for a stale one (nothing happened)."""
        if kind == _T_HOST_FAILURE:
            self._host_down(subject, fenced=False)
        elif kind == _T_FENCE:
            if version != self._fence_version[subject]:
                return False
            self._host_down(subject, fenced=True)
        elif kind == _T_RETURN:
            if self._job_of_guest[subject] != version or self.returned[subject]:
                return False
            self._returned(subject)
        elif kind == _T_RETRY:
            return self._retry(subject)
        elif kind == _T_WAKE:
            return version == self._wake_version
        return True

    def _check_fencing(self) -> None:
        ratio = self.settings.fence_ratio
        for host, online in enumerate(self.online):
            if not online:
                continue
            over = self.host_pressure(host) > ratio + _EPS
            due = self._fence_due[host]
            if over and due is None:
                self._fence_version[host] += 1
                self._fence_due[host] = self.now + self.settings.fence_grace_s
                self._add_timer(
                    self._fence_due[host] or 0.0, _T_FENCE, host, self._fence_version[host]
                )
            elif not over and due is not None:
                self._fence_version[host] += 1
                self._fence_due[host] = None

    def _record(self) -> None:
        assert self.trace is not None
        demand = tuple(self.demand[: self.num_pools])
        if self.trace and self.trace[-1][0] == self.now:
            self.trace[-1] = (self.now, demand)
        elif not self.trace or self.trace[-1][1] != demand:
            self.trace.append((self.now, demand))

    # --- the loop -----------------------------------------------------------------------

    def run(self, controller: Controller, until_s: float) -> None:
        """Run to the end: nothing booting, no timer left, or `until_s` reached."""
        events: list[Event] = []
        watches_events = getattr(controller, "watches_events", True)
        self._follow_returns = getattr(controller, "watches_returns", True)
        ask = True
        while True:
            if ask:
                decision = controller.decide(self, events)
                for guest, host in decision.starts:
                    self.start(guest, host)
                self._set_wake(decision.wake_at_s)
                if self.settings.fencing:
                    self._check_fencing()
                self._refresh_rates()
                if self.trace is not None:
                    self._record()
                # Starts on a host that is down produce events of their own.
                events = self.take_events()
                if events and watches_events:
                    continue
            completion_at = self._next_completion()
            timer_at = self._timers[0][0] if self._timers else math.inf
            next_at = min(completion_at, timer_at)
            if next_at == math.inf:
                break  # nothing left to happen (a boot on a resource delivering 0 never ends)
            if next_at > until_s:
                self._advance(until_s)
                break
            self._advance(next_at)
            ask = False
            # Timers first at one instant (a host failure beats a readiness at the same
            # second), then every boot whose work is done.
            while self._timers and self._timers[0][0] <= self.now + _EPS:
                _, kind, _, subject, version = heapq.heappop(self._timers)
                if self._fire_timer(kind, subject, version) and (watches_events or kind == _T_WAKE):
                    ask = True
            finishes = self._finishes
            while finishes and finishes[0][0] <= self.now + 1e-6:
                _, _, group, version, job = heapq.heappop(finishes)
                if version != self._group_version[group] or not self._job_alive[job]:
                    continue
                self._complete(job)
                ask = ask or watches_events
            if self.settings.fencing:
                self._check_fencing()
            self._refresh_rates()
            events = self.take_events()
            if self.trace is not None:
                self._record()
