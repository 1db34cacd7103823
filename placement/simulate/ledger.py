"""What a recovery manager knows: the declared state of a recovery, read by policies.

A policy decides from what it has started and what it has been told, never from the
physics. `Ledger` holds exactly that: each guest's status and host, which start commands
returned, which hosts are down, and the *declared* boot loads (the boot profiles of the
guests started and not ready yet) against the limits. Two worlds keep a ledger:

- `placement.simulate.engine.World`, where boots are simulated work under contention;
- `placement.execute.live.LiveWorld`, where starts are real commands and readiness is
  polled from the tool.

So one policy object (readiness-gated, re-planning, a peer's way) runs unchanged in the
simulator and against a real cluster. A subclass supplies `_launch` (begin a boot or a
migration), `_kill` (stop following one whose host went down) and `_schedule_retry`,
and calls `_declare_end` / `_finished` / `_host_down` as things happen.
"""

from __future__ import annotations

import abc
import enum

import attrs

from placement.model import Problem, SimulationSettings
from placement.plan import Action, Plan

_EPS = 1e-9


class GuestStatus(enum.IntEnum):
    """Where a guest is in the recovery, as a manager (and a policy) sees it."""

    WAITING = 0  # to be started (or migrated), not yet
    BOOTING = 1  # started, not ready (a migration in progress counts here too)
    READY = 2  # booted (or migrated) and ready
    RETRY_WAIT = 3  # a start attempt failed; the retry is due
    GAVE_UP = 4  # every attempt failed
    LOST = 5  # its host failed or was fenced: it must be started again somewhere
    RUNNING = 6  # ran before the recovery and keeps running (stay)
    NOT_PLACED = 7  # the plan gives it no host
    STOPPED = 8  # the plan stops it


#: Guests that occupy their host (lost when it goes down).
ON_HOST = (GuestStatus.BOOTING, GuestStatus.READY, GuestStatus.RETRY_WAIT, GuestStatus.RUNNING)

#: Statuses from which a policy may start a guest: not started yet, lost with its host,
#: given up on its host, or left unplaced by the first plan (a re-planning policy may
#: find it a host).
STARTABLE = (
    GuestStatus.WAITING,
    GuestStatus.LOST,
    GuestStatus.GAVE_UP,
    GuestStatus.NOT_PLACED,
)


class EventKind(enum.Enum):
    """What a policy is told about between two of its decisions."""

    RETURNED = "returned"  # the start command came back (the boot goes on)
    READY = "ready"
    FAILED = "failed"  # an attempt failed; a retry follows if any is left
    GAVE_UP = "gave_up"  # the last attempt failed
    LOST = "lost"  # the guest's host went down under it
    HOST_DOWN = "host_down"  # a host failed or was fenced


@attrs.frozen
class Event:
    """One thing that happened: `guest` and `host` are indices into the problem."""

    kind: EventKind
    time_s: float
    guest: int | None = None
    host: int | None = None


class Ledger(abc.ABC):
    """The declared state of one recovery. Indices follow the problem: guest `g` is
    `problem.guests[g]`, host `h` is `problem.hosts[h]`, pool `p` is the p-th name of
    `pools`; resources are the pools, then one per host with a boot-CPU limit."""

    def __init__(self, problem: Problem, plan: Plan, settings: SimulationSettings) -> None:
        self.problem = problem
        self.settings = settings
        self.now = 0.0
        guests = problem.guests
        hosts = problem.hosts
        self.pools: tuple[str, ...] = tuple(problem.boot_pools)
        pool_index = {name: p for p, name in enumerate(self.pools)}
        self.num_pools = len(self.pools)
        capacity = [float(problem.boot_pools[name]) for name in self.pools]
        self._cpu_resource: list[int | None] = []
        for host in hosts:
            if host.boot.cpu is None:
                self._cpu_resource.append(None)
            else:
                self._cpu_resource.append(len(capacity))
                capacity.append(float(host.boot.cpu))
        self.capacity = capacity
        # What a boot (or a migration) of each guest loads: (pool, amount) pairs.
        self._boot_loads = [
            [
                (pool_index[name], float(amount))
                for name, amount in guest.boot.load.items()
                if amount > 0 and name in pool_index
            ]
            for guest in guests
        ]
        self._migrate_loads = [
            (pool_index[name], float(amount))
            for name, amount in problem.migration.load.items()
            if amount > 0 and name in pool_index
        ]

        # What the plan does with each guest, and where the recovery finds it.
        initial = {
            Action.START: GuestStatus.WAITING,
            Action.MIGRATE: GuestStatus.WAITING,
            Action.STAY: GuestStatus.RUNNING,
            Action.STOP: GuestStatus.STOPPED,
            Action.NONE: GuestStatus.NOT_PLACED,
        }
        by_guest = plan.by_guest()
        self.planned_action: list[Action] = []
        self.status: list[GuestStatus] = []
        self.host_of: list[int | None] = []
        for guest in guests:
            found = by_guest.get(guest.name)
            runs = problem.runs_now(guest) and guest.current_host is not None
            current = problem.host_position(guest.current_host or "") if runs else None
            action = found.action if found is not None else (Action.STAY if runs else Action.NONE)
            self.planned_action.append(action)
            self.status.append(initial[action])
            # A migrating guest runs where it is until its move is done.
            self.host_of.append(current if action in (Action.MIGRATE, Action.STAY) else None)
        self.to_recover = [a in (Action.START, Action.MIGRATE) for a in self.planned_action]
        self.lost_once = [False] * len(guests)

        self.online = [host.online for host in hosts]
        self.returned = [False] * len(guests)
        self.ready_at: list[float | None] = [None] * len(guests)
        self.started_at: list[float | None] = [None] * len(guests)
        self.migrating = [False] * len(guests)
        self.attempts = [0] * len(guests)
        self._retries_used = [0] * len(guests)
        self.declared_pool = [0.0] * self.num_pools
        self.declared_cpu = [0.0] * len(hosts)
        self.booting_on_host = [0] * len(hosts)
        self.booting_total = 0
        self.in_flight = 0  # started and the start command has not returned
        self.in_flight_on_host = [0] * len(hosts)
        self.last_start_s: float | None = None
        self.last_start_group: str | None = None
        self.starts_issued = 0
        self.retries = 0
        self.fenced: list[int] = []
        self.failed_hosts: list[int] = []
        self._events: list[Event] = []
        # Every attempt begun, as (instant, guest), oldest first: what a policy that
        # watches boots for lateness reads, without being told each start.
        self.start_log: list[tuple[float, int]] = []
        # Figures a policy reports about itself (re-plans, solve time), kept with the run,
        # and what it says it did and why, as (instant, text), for a person to read.
        self.policy_stats: dict[str, float] = {}
        self.policy_log: list[tuple[float, str]] = []
        # Why the policy leaves a guest of the recovery unstarted (a re-plan found it no
        # room), for the report at the end.
        self.policy_reasons: dict[int, str] = {}
        # True while `_launch` carries out a retry (not a policy's start): what a world
        # that reports its starts says.
        self.retrying = False

    # --- what a policy reads ------------------------------------------------------------

    def fits(self, guest: int, host: int) -> bool:
        """Whether starting `guest` on `host` now keeps every declared boot load within its
        limit: each pool, the host's boot CPU and start count, the cluster's batch limit."""
        for resource, amount in self._boot_loads[guest]:
            if self.declared_pool[resource] + amount > self.capacity[resource] + _EPS:
                return False
        host_boot = self.problem.hosts[host].boot
        cpu = self.problem.guests[guest].boot.cpu
        if host_boot.cpu is not None and cpu > 0 and self.declared_cpu[host] + cpu > host_boot.cpu:
            return False
        if host_boot.max_starts is not None and self.booting_on_host[host] >= host_boot.max_starts:
            return False
        limit = self.problem.schedule.max_starts
        return limit is None or self.booting_total < limit

    def pool_loads(self, guest: int) -> list[tuple[int, float]]:
        """The (pool index, load) pairs a boot of `guest` adds."""
        return self._boot_loads[guest]

    def cpu_resource(self, host: int) -> int | None:
        """The resource index of `host`'s boot CPU (None: the host sets no limit)."""
        return self._cpu_resource[host]

    @abc.abstractmethod
    def host_pressure(self, host: int) -> float:
        """The host's boot pressure (1.0: at its limits), as far as this world knows."""

    def take_events(self) -> list[Event]:
        """The events since the last call, oldest first."""
        events = self._events
        self._events = []
        return events

    # --- what a policy does -------------------------------------------------------------

    def start(self, guest: int, host: int) -> bool:
        """Carry out a policy's start (or the planned migration) of `guest` on `host`.

        Only a guest that waits, was lost or was given up on can start; on a host that is
        down the start fails at once and the guest counts as lost. Returns whether it
        started.
        """
        status = self.status[guest]
        if status not in STARTABLE:
            return False
        if not self.online[host]:
            if status is GuestStatus.WAITING:
                self._lose(guest, host)
            return False
        migrate = status is GuestStatus.WAITING and self.planned_action[guest] is Action.MIGRATE
        if status is GuestStatus.GAVE_UP:
            self._retries_used[guest] = 0  # a fresh start elsewhere gets its retries again
        if status is GuestStatus.NOT_PLACED:
            self.to_recover[guest] = True
        self.starts_issued += 1
        self.last_start_s = self.now
        self.last_start_group = self.problem.guests[guest].boot.group
        self._declare_start(guest, host, migrate)
        self._launch(guest, host, migrate)
        return True

    def cancel_migration(self, guest: int) -> bool:
        """A policy gives up a planned migration that has not begun: the guest keeps
        running where it is and is no longer part of the recovery."""
        if self.status[guest] is not GuestStatus.WAITING:
            return False
        if self.planned_action[guest] is not Action.MIGRATE:
            return False
        self.status[guest] = GuestStatus.RUNNING
        self.to_recover[guest] = False
        return True

    # --- what a subclass supplies -------------------------------------------------------

    @abc.abstractmethod
    def _launch(self, guest: int, host: int, migrate: bool) -> None:
        """Begin a boot attempt (or the migration) of `guest` on `host` now; the ledger
        already counts it."""

    @abc.abstractmethod
    def _kill(self, guest: int) -> None:
        """Stop following the attempt of `guest` (its host went down)."""

    @abc.abstractmethod
    def _schedule_retry(self, guest: int, at_s: float) -> None:
        """Arrange for `_retry(guest)` to be called at `at_s`."""

    # --- the bookkeeping ----------------------------------------------------------------

    def _declare_start(self, guest: int, host: int, migrate: bool) -> None:
        for resource, amount in self._migrate_loads if migrate else self._boot_loads[guest]:
            self.declared_pool[resource] += amount
        if not migrate:
            self.declared_cpu[host] += self.problem.guests[guest].boot.cpu
            self.booting_on_host[host] += 1
            self.booting_total += 1
        self.attempts[guest] += 1
        self.start_log.append((self.now, guest))
        self.migrating[guest] = migrate
        self.status[guest] = GuestStatus.BOOTING
        self.host_of[guest] = host
        self.started_at[guest] = self.now
        self.returned[guest] = False
        self.in_flight += 1
        self.in_flight_on_host[host] += 1

    def _declare_end(self, guest: int) -> None:
        """The guest's attempt is over (ready, failed or killed): its declared load goes."""
        host = self.host_of[guest]
        assert host is not None
        migrate = self.migrating[guest]
        for resource, amount in self._migrate_loads if migrate else self._boot_loads[guest]:
            self.declared_pool[resource] = max(self.declared_pool[resource] - amount, 0.0)
        if not migrate:
            self.declared_cpu[host] -= self.problem.guests[guest].boot.cpu
            self.booting_on_host[host] -= 1
            self.booting_total -= 1
        self._mark_returned(guest)

    def _mark_returned(self, guest: int) -> None:
        if not self.returned[guest]:
            self.returned[guest] = True
            host = self.host_of[guest]
            self.in_flight -= 1
            if host is not None:
                self.in_flight_on_host[host] -= 1

    def _returned(self, guest: int) -> None:
        """The start command of `guest` came back; its boot goes on."""
        if self.status[guest] is GuestStatus.BOOTING and not self.returned[guest]:
            self._mark_returned(guest)
            self._events.append(Event(EventKind.RETURNED, self.now, guest, self.host_of[guest]))

    def _finished(self, guest: int, ok: bool) -> None:
        """The attempt of `guest` ended: ready, or failed (then a retry if any is left)."""
        self._declare_end(guest)
        host = self.host_of[guest]
        if ok:
            self.status[guest] = GuestStatus.READY
            self.ready_at[guest] = self.now
            self._events.append(Event(EventKind.READY, self.now, guest, host))
            return
        if self._retries_used[guest] < self.settings.max_retries:
            self._retries_used[guest] += 1
            self.retries += 1
            self.status[guest] = GuestStatus.RETRY_WAIT
            self._events.append(Event(EventKind.FAILED, self.now, guest, host))
            self._schedule_retry(guest, self.now + self.settings.retry_delay_s)
        else:
            self.status[guest] = GuestStatus.GAVE_UP
            self._events.append(Event(EventKind.GAVE_UP, self.now, guest, host))

    def _retry(self, guest: int) -> bool:
        """A due retry of `guest` on its host; False when it no longer applies."""
        if self.status[guest] is not GuestStatus.RETRY_WAIT:
            return False
        host = self.host_of[guest]
        assert host is not None
        if not self.online[host]:
            self._lose(guest, host)
            return True
        self.starts_issued += 1
        self._declare_start(guest, host, migrate=False)
        self.retrying = True
        try:
            self._launch(guest, host, migrate=False)
        finally:
            self.retrying = False
        return True

    def _lose(self, guest: int, host: int) -> None:
        self.status[guest] = GuestStatus.LOST
        self.ready_at[guest] = None
        self.to_recover[guest] = True
        self.lost_once[guest] = True
        self._events.append(Event(EventKind.LOST, self.now, guest, host))

    def _host_down(self, host: int, fenced: bool) -> None:
        """`host` failed (or was fenced): every guest on it is lost."""
        if not self.online[host]:
            return
        self.online[host] = False
        (self.fenced if fenced else self.failed_hosts).append(host)
        self._events.append(Event(EventKind.HOST_DOWN, self.now, None, host))
        for guest, where in enumerate(self.host_of):
            if where != host or self.status[guest] not in ON_HOST:
                continue
            if self.status[guest] is GuestStatus.BOOTING:
                self._kill(guest)
                self._declare_end(guest)
            self._lose(guest, host)
