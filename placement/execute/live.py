"""The executor against a real tool: a ledger whose starts are commands and whose
readiness is polled, and the loop that asks a policy what to do.

`LiveWorld` keeps the same ledger as the simulator (`placement.simulate.ledger`), so
every policy runs unchanged: a policy's `world.start(guest, host)` becomes the driver's
start commands, run in a worker thread (they may take a while, or hang until their
timeout) while the loop goes on. When they exit 0 the start has *returned*; the guest is
then probed every `poll_s` until the driver says it is ready, failed, or its ready
timeout passes (a failed attempt: the driver's stop commands run, and a retry follows
`retry_delay_s` later if the problem's `simulation.max_retries` leaves one). A start
command that exits non-zero is a failed attempt too. Hosts the tool reports down lose
their guests, as in the simulator.

The clock is the real one, in plan seconds: `time_scale` real seconds per plan second
(1 in production; less for rehearsals and tests), so a policy's wake-ups, the stagger
gap and the retry delay mean what they mean in the plan.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import attrs

from placement.execute.drivers import (
    DEFAULT_COMMAND_TIMEOUT_S,
    Argv,
    Completed,
    Driver,
    Probe,
    Readiness,
    Runner,
    run_command,
)
from placement.execute.journal import Record, Resumed, wall_clock
from placement.execute.reasons import start_reason
from placement.model import Problem, SimulationSettings
from placement.plan import Action, Assignment, Plan
from placement.simulate.engine import Controller
from placement.simulate.ledger import Event, EventKind, GuestStatus, Ledger
from placement.solvers.stop import StopToken

logger = logging.getLogger(__name__)

_EPS = 1e-9

#: The shortest ready timeout (real seconds) when none is given.
MIN_READY_TIMEOUT_S = 300.0


@attrs.frozen
class LiveOptions:
    """How the live executor follows the tool. `poll_s`: real seconds between two probes
    of the booting guests (and of the hosts); `ready_timeout_s`: real seconds a started
    guest has to become ready (None: three times its planned boot, at least 300 s, both
    scaled by `time_scale`); `time_scale`: real seconds per plan second;
    `command_timeout_s`: the longest one tool command may run; `max_parallel`: start
    commands running at once."""

    poll_s: float = attrs.field(default=2.0)
    ready_timeout_s: float | None = None
    time_scale: float = 1.0
    command_timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S
    max_parallel: int = 16

    def __attrs_post_init__(self) -> None:
        if not self.poll_s > 0:
            raise ValueError(f"poll must be > 0 seconds (got {self.poll_s})")
        if self.ready_timeout_s is not None and not self.ready_timeout_s > 0:
            raise ValueError(f"ready timeout must be > 0 seconds (got {self.ready_timeout_s})")
        if not 0 < self.time_scale <= 1e6:
            raise ValueError(f"time scale must be > 0 (got {self.time_scale})")
        if not self.command_timeout_s > 0:
            raise ValueError(f"command timeout must be > 0 (got {self.command_timeout_s})")
        if self.max_parallel < 1:
            raise ValueError(f"max parallel must be >= 1 (got {self.max_parallel})")


class _Chain:
    """One attempt's start (or migration) commands, run in order in a worker thread."""

    def __init__(self, argv: list[Argv]) -> None:
        self.argv = argv
        self.results: list[Completed] = []
        self.done = False
        self.abandoned = False
        self.skipped = False
        # Whether its first command may have run: a stop withdraws a start that has not.
        self.began = False
        self.lock = threading.Lock()

    @property
    def ok(self) -> bool:
        return len(self.results) == len(self.argv) and all(r.ok for r in self.results)


class LiveWorld(Ledger):
    """One recovery against a real tool (see the module doc). `emit` receives every
    record as it happens (the journal and the printed decisions hang on it)."""

    #: A re-planning policy solves in a worker thread while the plan in force goes on
    #: (placement.simulate.replan): real time passes while it solves.
    solves_in_background = True

    def __init__(
        self,
        problem: Problem,
        plan: Plan,
        settings: SimulationSettings,
        driver: Driver,
        options: LiveOptions,
        emit: Callable[[Record], None],
        stop: StopToken | None = None,
        runner: Runner | None = None,
        clock: Callable[[], float] = time.monotonic,
        offset_s: float = 0.0,
    ) -> None:
        super().__init__(problem, plan, settings)
        self.driver = driver
        self.options = options
        self._emit = emit
        self._stop = stop
        timeout = options.command_timeout_s
        self._run: Runner = runner or (lambda argv: run_command(argv, timeout))
        self._clock = clock
        self._t0 = clock()
        self._offset_s = offset_s
        self.now = offset_s
        self.planned: Mapping[str, Assignment] = plan.by_guest()
        self._chains: dict[int, _Chain] = {}
        self._following: dict[int, float] = {}  # booting guest -> real ready deadline
        self._retry_due: dict[int, float] = {}
        self._why: dict[int, str] = {}
        self._argv: dict[int, list[Argv]] = {}
        self._not_again: set[int] = set()
        self._initial_events: list[Event] = []
        self._changed = threading.Event()
        self._slots = threading.BoundedSemaphore(options.max_parallel)
        self._last_poll = -math.inf
        # Where each guest's configuration is (Proxmox moves it with the guest).
        self._config_host: list[str | None] = [guest.current_host for guest in problem.guests]
        self.interrupted = False
        self._policy_logged = 0
        self.shutdown_failed: list[str] = []
        self.not_moved: list[str] = []  # migrations that failed: still on their source
        self.booting_at_stop: list[tuple[str, str]] = []

    # --- the clock ----------------------------------------------------------------------

    def _tick(self) -> float:
        real = self._clock()
        self.now = self._offset_s + (real - self._t0) / self.options.time_scale
        return real

    def _real_at(self, t_s: float) -> float:
        return self._t0 + (t_s - self._offset_s) * self.options.time_scale

    def _ready_timeout(self, guest: int) -> float:
        if self.options.ready_timeout_s is not None:
            return self.options.ready_timeout_s
        planned = 3.0 * self.problem.guests[guest].boot.duration_s
        return max(MIN_READY_TIMEOUT_S, planned) * self.options.time_scale

    # --- records ------------------------------------------------------------------------

    def _note(
        self,
        kind: str,
        guest: int | None = None,
        host: int | None = None,
        at_s: float | None = None,
        **fields: object,
    ) -> None:
        record = Record(
            kind=kind,
            t_s=self.now if at_s is None else at_s,
            time=wall_clock(),
            guest=self.problem.guests[guest].name if guest is not None else None,
            host=self.problem.hosts[host].name if host is not None else None,
            **fields,  # type: ignore[arg-type]
        )
        self._emit(record)

    def _drain(self) -> list[Event]:
        """Take the ledger's events and record each, with what the policy said it did."""
        for at_s, text in self.policy_log[self._policy_logged :]:
            self._note("decision", why=text, at_s=at_s)
        self._policy_logged = len(self.policy_log)
        events = self.take_events()
        for event in events:
            why: str | None = None
            argv: list[Argv] = []
            if event.guest is not None and event.kind is not EventKind.RETURNED:
                why = self._why.pop(event.guest, None)
                argv = self._argv.pop(event.guest, [])
            if event.kind is EventKind.LOST:
                why = why or "its host went down"
            self._note(
                event.kind.value, event.guest, event.host, why=why, argv=argv, at_s=event.time_s
            )
        return events

    # --- the ledger's hooks -------------------------------------------------------------

    def start(self, guest: int, host: int) -> bool:
        # A guest an earlier run started and that did not come up is not started again
        # (it may still be coming up; a person decides); lost with its host, it may.
        if guest in self._not_again and self.status[guest] is GuestStatus.GAVE_UP:
            return False
        return super().start(guest, host)

    def _launch(self, guest: int, host: int, migrate: bool) -> None:
        name = self.problem.guests[guest].name
        host_name = self.problem.hosts[host].name
        if migrate:
            source = self.problem.guests[guest].current_host or host_name
            argv = self.driver.migrate(name, source, host_name)
            action = "migrate"
        else:
            source_name = self._config_host[guest]
            source_down = source_name is not None and not self._online_by_name(source_name)
            argv = self.driver.start(
                name, host_name, source_name, source_down, self.attempts[guest]
            )
            action = "retry" if self.retrying else "start"
        why = start_reason(self, self.planned, guest, host, action)
        # Written (and synced) before anything runs: a crash after this line never leads
        # to a second start of this guest.
        self._note(
            "start", guest, host, action=action, attempt=self.attempts[guest], why=why, argv=argv
        )
        chain = _Chain(argv)
        self._chains[guest] = chain
        worker = threading.Thread(
            target=self._run_chain, args=(chain,), name=f"placement-start-{name}", daemon=True
        )
        worker.start()

    def _online_by_name(self, host: str) -> bool:
        return self.problem.has_host(host) and self.online[self.problem.host_position(host)]

    def _run_chain(self, chain: _Chain) -> None:
        try:
            with self._slots:
                with chain.lock:
                    if chain.abandoned or self._stopped():
                        chain.skipped = True
                        return
                    chain.began = True
                for argv in chain.argv:
                    if chain.abandoned or self._stopped():
                        chain.skipped = True
                        break
                    done = self._run(argv)
                    chain.results.append(done)
                    if not done.ok:
                        break
        finally:
            chain.done = True
            self._changed.set()

    def _kill(self, guest: int) -> None:
        chain = self._chains.pop(guest, None)
        if chain is not None:
            chain.abandoned = True
        self._following.pop(guest, None)

    def _schedule_retry(self, guest: int, at_s: float) -> None:
        self._retry_due[guest] = at_s

    def host_pressure(self, host: int) -> float:
        """The declared boot pressure (the tool does not report the SAN's)."""
        pressure = 0.0
        resource = self.cpu_resource(host)
        if resource is not None and self.capacity[resource] > 0:
            pressure = self.declared_cpu[host] / self.capacity[resource]
        for pool in range(self.num_pools):
            if self.capacity[pool] > 0:
                pressure = max(pressure, self.declared_pool[pool] / self.capacity[pool])
        return pressure

    # --- following the tool -------------------------------------------------------------

    def _end_attempt(self, guest: int, ok: bool, why: str, stop_it: bool) -> None:
        """The attempt of `guest` is over: tidy up with the driver, then tell the ledger."""
        host = self.host_of[guest]
        assert host is not None
        name = self.problem.guests[guest].name
        host_name = self.problem.hosts[host].name
        migrate = self.migrating[guest]
        commands: list[Argv] = []
        if stop_it and not migrate:  # a failed migration leaves the guest where it ran
            commands += self.driver.stop(name, host_name)
        commands += self.driver.release(name, host_name, migrate)
        for argv in commands:
            done = self._run(argv)
            if not done.ok:
                logger.warning("%s: %s", name, done.why())
        self._following.pop(guest, None)
        self._argv[guest] = commands
        if migrate and not ok:
            self._migration_failed(guest, host, why)
            return
        self._why[guest] = why
        self._finished(guest, ok)

    def _migration_failed(self, guest: int, target: int, why: str) -> None:
        """A migration that failed leaves the guest running where it ran: it is neither
        retried (a retry is a start, and the guest would run twice) nor started anywhere
        else. Policies are told it gave up, so nothing waits for it."""
        self._declare_end(guest)
        current = self.problem.guests[guest].current_host
        self.status[guest] = GuestStatus.RUNNING
        self.host_of[guest] = self.problem.host_position(current) if current else None
        self.migrating[guest] = False
        self.not_moved.append(self.problem.guests[guest].name)
        self._why[guest] = f"{why}; it keeps running on {current}"
        self._events.append(Event(EventKind.GAVE_UP, self.now, guest, target))

    def _collect(self) -> None:
        """Act on the start commands that have finished."""
        for guest, chain in list(self._chains.items()):
            if not chain.done:
                continue
            del self._chains[guest]
            if chain.abandoned or chain.skipped:
                continue
            host = self.host_of[guest]
            assert host is not None
            if chain.ok:
                self._config_host[guest] = self.problem.hosts[host].name
                self._returned(guest)
                self._following[guest] = self._clock() + self._ready_timeout(guest)
            else:
                self._end_attempt(guest, False, chain.results[-1].why(), stop_it=False)

    def _poll(self, real: float) -> None:
        """Probe the booting guests whose commands returned, and the hosts."""
        if real < self._last_poll + self.options.poll_s:
            return
        self._last_poll = real
        online = [host.name for h, host in enumerate(self.problem.hosts) if self.online[h]]
        for name in sorted(self.driver.hosts_down(online, self._run)):
            self._host_down(self.problem.host_position(name), fenced=False)
        for guest in list(self._following):
            if self.status[guest] is not GuestStatus.BOOTING:
                self._following.pop(guest, None)
        asked = []
        for guest in self._following:
            host = self.host_of[guest]
            assert host is not None
            asked.append((guest, self.problem.guests[guest].name, self.problem.hosts[host].name))
        probes = self._probe_all([(name, host) for _, name, host in asked])
        self._tick()  # the probes took a while: their answers are from now
        for (guest, _, _), probe in zip(asked, probes, strict=True):
            deadline = self._following[guest]
            if probe.state is Readiness.READY:
                self._end_attempt(guest, True, probe.detail, stop_it=False)
            elif probe.state is Readiness.FAILED:
                self._end_attempt(guest, False, probe.detail, stop_it=True)
            elif self._clock() > deadline:
                waited = self._ready_timeout(guest)
                why = f"not ready after {waited:g} s ({probe.detail})"
                if probe.elsewhere is not None:
                    # It runs, elsewhere: stopping it would take down a guest that is up.
                    why += f"; left running on {probe.elsewhere}"
                self._end_attempt(guest, False, why, stop_it=probe.elsewhere is None)

    def _probe_all(self, asked: Sequence[tuple[str, str]]) -> list[Probe]:
        """Probe each (guest, host), up to `max_parallel` at once, answers in order."""
        if len(asked) <= 1 or self.options.max_parallel == 1:
            return [self.driver.probe(guest, host, self._run) for guest, host in asked]
        workers = min(self.options.max_parallel, len(asked))
        with ThreadPoolExecutor(workers, thread_name_prefix="placement-probe") as pool:
            return list(
                pool.map(lambda item: self.driver.probe(item[0], item[1], self._run), asked)
            )

    def _fire_retries(self) -> None:
        for guest, due in sorted(self._retry_due.items(), key=lambda item: item[1]):
            if due <= self.now + _EPS:
                del self._retry_due[guest]
                self._retry(guest)

    def _all_ready(self) -> bool:
        return all(
            self.status[guest] is GuestStatus.READY
            for guest, recovering in enumerate(self.to_recover)
            if recovering
        )

    def _busy(self) -> bool:
        return bool(self._chains or self._following or self._retry_due)

    def _wait(self, wake_at_s: float | None) -> None:
        """Sleep until something may have happened: a start command ended, the next
        poll, a retry or the policy's wake-up is due (at most 0.2 s, to see a stop)."""
        real = self._clock()
        until = real + 0.2
        if self._following:
            until = min(until, self._last_poll + self.options.poll_s)
        if wake_at_s is not None:
            until = min(until, self._real_at(wake_at_s))
        if self._retry_due:
            until = min(until, self._real_at(min(self._retry_due.values())))
        if until > real and not self._changed.is_set():
            self._changed.wait(until - real)
        self._changed.clear()

    # --- the plan's stops ---------------------------------------------------------------

    def shut_down(self, already: set[str]) -> None:
        """Shut down the guests the plan stops, first (the plan counts their room as free
        from instant 0), except those `already` shut down by an earlier run. A failed
        shutdown is recorded and the recovery goes on (`shutdown_failed`)."""
        for guest, action in enumerate(self.planned_action):
            name = self.problem.guests[guest].name
            current = self.problem.guests[guest].current_host
            if action is not Action.STOP or current is None or name in already:
                continue
            if self._stopped():
                return
            host = self.problem.host_position(current)
            if not self.online[host]:
                continue
            commands = self.driver.shutdown(name, current)
            failed = None
            for argv in commands:
                done = self._run(argv)
                if not done.ok:
                    failed = done
                    break
            self._tick()
            if failed is not None:
                self.shutdown_failed.append(name)
            why = "the plan stops it" if failed is None else failed.why()
            ok = failed is None
            self._note("shutdown", guest, host, why=why, argv=commands, data={"ok": ok})

    # --- a restart ----------------------------------------------------------------------

    def adopt(self, resumed: Resumed) -> None:
        """Take over from an earlier run: a guest it started is asked for on the host it
        was started on, and followed if it is booting, counted ready if it is, and never
        started again if it is neither; a guest it did not start but that is ready on its
        planned host is counted ready."""
        # Hosts the earlier run saw go down stay down (their guests were lost then).
        for name in sorted(resumed.hosts_down):
            if self.problem.has_host(name) and self.online[self.problem.host_position(name)]:
                self._host_down(self.problem.host_position(name), fenced=False)
        asked: list[tuple[int, str, str]] = []
        for guest, problem_guest in enumerate(self.problem.guests):
            if not self.to_recover[guest] or self.status[guest] is not GuestStatus.WAITING:
                continue
            name = problem_guest.name
            planned = self.planned.get(name)
            where = resumed.started.get(name) or (planned.host if planned is not None else None)
            if where is None or not self.problem.has_host(where):
                continue
            if self.online[self.problem.host_position(where)]:  # a dead host is not asked
                asked.append((guest, name, where))
        probes = self._probe_all([(name, where) for _, name, where in asked])
        for (guest, name, where), probe in zip(asked, probes, strict=True):
            earlier = resumed.started.get(name)
            host = self.problem.host_position(where)
            attempts = resumed.attempts.get(name, 1) if earlier else 1
            if earlier:
                # Its next failure is final: no retry, no second start.
                self._not_again.add(guest)
                self._retries_used[guest] = self.settings.max_retries
            if probe.state is Readiness.READY:
                self.status[guest] = GuestStatus.READY
                self.host_of[guest] = host
                self.ready_at[guest] = self.now
                self.started_at[guest] = resumed.started_at.get(name, self.now)
                self.returned[guest] = True
                self.attempts[guest] = attempts
                self._initial_events.append(Event(EventKind.READY, self.now, guest, host))
                found = "started by an earlier run" if earlier else "found on its planned host"
                self._note("adopted", guest, host, why=f"{found}: {probe.detail}")
            elif probe.state is Readiness.BOOTING or (
                earlier and probe.state in (Readiness.PENDING, Readiness.UNKNOWN)
            ):
                migrate = self.planned_action[guest] is Action.MIGRATE
                self._declare_start(guest, host, migrate)
                self.started_at[guest] = resumed.started_at.get(name, self.now)
                self.attempts[guest] = attempts
                self._mark_returned(guest)
                self._following[guest] = self._clock() + self._ready_timeout(guest)
                found = "started by an earlier run" if earlier else "found booting"
                self._note("adopted", guest, host, why=f"{found}: {probe.detail}")
            elif earlier:
                self.status[guest] = GuestStatus.GAVE_UP
                self.host_of[guest] = host
                self.attempts[guest] = attempts
                self._initial_events.append(Event(EventKind.GAVE_UP, self.now, guest, host))
                self._note(
                    "gave_up",
                    guest,
                    host,
                    why=f"started by an earlier run, {probe.detail} now: not started again",
                )

    def _withdraw(self, guest: int) -> None:
        host = self.host_of[guest]
        self._declare_end(guest)
        self.status[guest] = GuestStatus.WAITING
        current = self.problem.guests[guest].current_host
        # A migration that never began leaves the guest where it runs.
        migrating = self.planned_action[guest] is Action.MIGRATE
        self.host_of[guest] = (
            self.problem.host_position(current) if migrating and current is not None else None
        )
        self.started_at[guest] = None
        self._note("cancelled", guest, host, why="stopped before any of its commands ran")

    # --- the loop -----------------------------------------------------------------------

    def _stopped(self) -> bool:
        return self._stop is not None and self._stop.stopped

    def run(self, controller: Controller) -> None:
        """Ask `controller` at the start, after every batch of events and at the wake-ups
        it asks for, until nothing boots, no start command or retry is pending and no
        wake-up is due (or every guest to bring up is ready); or until the stop token is
        stopped (then nothing more is dispatched and nothing is waited for:
        `booting_at_stop` lists what was left)."""
        watches_events = getattr(controller, "watches_events", True)
        events: Sequence[Event] = self._initial_events
        self._initial_events = []
        wake: float | None = None
        ask = True
        while True:
            real = self._tick()
            if self._stopped():
                self._halt()
                return
            if ask:
                decision = controller.decide(self, events)
                for guest, host in decision.starts:
                    self.start(guest, host)
                wake = decision.wake_at_s
                if wake is not None and wake <= self.now + _EPS:
                    wake = None  # asking again at once would ask the same question
                events = self._drain()
                if events and watches_events:
                    continue
                ask = False
            if not self._busy() and (wake is None or self._all_ready()):
                # Every guest is up: a policy's wake-ups (a re-planner watching for late
                # boots) would only keep a real operator waiting.
                return
            self._wait(wake)
            real = self._tick()
            if self._stopped():
                continue
            self._collect()
            self._fire_retries()
            self._poll(real)
            events = self._drain()
            if events and watches_events:
                ask = True
            if wake is not None and self.now + _EPS >= wake:
                ask = True
                wake = None

    def _halt(self) -> None:
        self.interrupted = True
        for guest, chain in self._chains.items():
            with chain.lock:
                chain.abandoned = True
                if chain.began:
                    continue
            # None of its commands ran, nor will: the start is withdrawn, and a restart
            # may start the guest.
            self._withdraw(guest)
        booting = [
            (self.problem.guests[g].name, self.problem.hosts[h].name)
            for g, h in enumerate(self.host_of)
            if h is not None and self.status[g] is GuestStatus.BOOTING
        ]
        self.booting_at_stop = booting
        names = ", ".join(f"{g} on {h}" for g, h in booting) or "nothing"
        self._note("stop", why=f"stopped: no more starts; still booting: {names}")
