"""Closed-loop recovery: carry out a plan through a driver, with a policy.

    from placement.execute import execute, LibvirtDriver, LiveOptions
    result = execute(problem, plan, "readiness-gated", LibvirtDriver(), journal="run.jsonl")
    result.ready, result.gave_up, result.never_started

A *policy* (`placement.simulate.policies`: readiness-gated, open-loop, the peers' ways,
re-planning) decides who starts when from the declared state of the recovery; a *driver*
carries the decisions out: a real tool (`LibvirtDriver`, `PacemakerDriver`,
`ProxmoxDriver`, `ShellDriver`: argument lists, never a shell string) or the simulator
(`SimulatedDriver`: the same policy object against the simulator's physics, so what is
measured is what runs). Every start and event goes to a JSON-lines journal; run again
with the same journal after a crash, the executor asks the tool for the real state and
never starts a guest twice. docs/running.md describes it all.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import attrs

from placement.check.context import unknown_names
from placement.errors import InputError, InvalidInputError
from placement.execute.drivers import (
    Completed,
    Driver,
    LibvirtDriver,
    PacemakerDriver,
    Probe,
    ProxmoxDriver,
    Readiness,
    Runner,
    ShellDriver,
    check_names,
    run_command,
)
from placement.execute.journal import Journal, Record, fingerprint, read_back, wall_clock
from placement.execute.live import LiveOptions, LiveWorld
from placement.execute.simulated import SimulatedDriver, run_simulated
from placement.model import Problem
from placement.plan import Action, Plan, Status
from placement.simulate.catalogue import policy_by_name
from placement.simulate.ledger import GuestStatus, Ledger
from placement.simulate.outcome import RunOutcome
from placement.simulate.policies import Policy
from placement.solvers.stop import StopToken

__all__ = [
    "Completed",
    "Driver",
    "Execution",
    "GuestResult",
    "Journal",
    "LibvirtDriver",
    "LiveOptions",
    "PacemakerDriver",
    "PlannedStep",
    "Probe",
    "ProxmoxDriver",
    "Readiness",
    "Record",
    "ShellDriver",
    "SimulatedDriver",
    "execute",
    "planned_commands",
    "run_command",
]


@attrs.frozen
class GuestResult:
    """One guest the recovery had to bring up, at the end. `status`: ready, booting (still,
    when the run was stopped), gave_up, lost, waiting (never started), retry_wait, running
    (its migration failed: it runs where it ran);
    `host`: where it was last started; `started_s` / `ready_s`: its last start and its
    readiness on the recovery's clock; `attempts`: start attempts; `why`: the last reason
    recorded for it (why it failed, or why it was never started)."""

    guest: str
    action: str
    status: str
    host: str | None
    started_s: float | None
    ready_s: float | None
    attempts: int
    why: str | None


@attrs.frozen
class Execution:
    """What an execution did. `guests`: one `GuestResult` per guest to start or migrate,
    in problem order; `records`: every record of this run, as journalled; `interrupted`:
    stopped before the end; `end_s`: the recovery's clock at the end; `resumed`: it took
    over from a journal; `outcome`: with the simulated driver, the simulator's measure of
    the run (`placement.simulate.RunOutcome`); `shutdown_failed`: guests the plan stops
    whose shutdown command failed; `policy_stats`: what the policy reports about itself
    (a re-planning policy: `replans`, `solve_s_total`, ...)."""

    policy: str
    driver: str
    guests: tuple[GuestResult, ...]
    records: tuple[Record, ...]
    interrupted: bool
    end_s: float
    resumed: bool = False
    outcome: RunOutcome | None = None
    shutdown_failed: tuple[str, ...] = ()
    policy_stats: dict[str, float] = attrs.field(factory=dict)

    def _with(self, *statuses: str) -> tuple[str, ...]:
        return tuple(g.guest for g in self.guests if g.status in statuses)

    @property
    def ready(self) -> tuple[str, ...]:
        return self._with("ready")

    @property
    def booting(self) -> tuple[str, ...]:
        return self._with("booting", "retry_wait")

    @property
    def gave_up(self) -> tuple[str, ...]:
        return self._with("gave_up")

    @property
    def lost(self) -> tuple[str, ...]:
        return self._with("lost")

    @property
    def never_started(self) -> tuple[str, ...]:
        return self._with("waiting")

    @property
    def not_moved(self) -> tuple[str, ...]:
        """Guests whose migration failed: they keep running where they ran."""
        return self._with("running")

    @property
    def ok(self) -> bool:
        """Every guest to bring up is ready, and every guest the plan stops was shut
        down."""
        return len(self.ready) == len(self.guests) and not self.shutdown_failed

    def summary(self) -> dict[str, Any]:
        """The counts and names a `summary` journal line carries."""
        return {
            "ready": len(self.ready),
            "to_recover": len(self.guests),
            "booting": list(self.booting),
            "gave_up": list(self.gave_up),
            "lost": list(self.lost),
            "never_started": list(self.never_started),
            "not_moved": list(self.not_moved),
            "shutdown_failed": list(self.shutdown_failed),
            "policy_stats": dict(self.policy_stats),
            "interrupted": self.interrupted,
        }


@attrs.frozen
class PlannedStep:
    """One start or migration of the plan as a driver would carry it out: when the plan
    has it (`start_s`, `ready_s`), the commands that do it (`argv`) and those that ask
    whether it is ready (`probe`)."""

    start_s: float
    ready_s: float | None
    guest: str
    action: str
    host: str
    argv: tuple[tuple[str, ...], ...]
    probe: tuple[tuple[str, ...], ...]


def planned_commands(problem: Problem, plan: Plan, driver: Driver) -> list[PlannedStep]:
    """The plan's stops, then its starts and migrations in the order of their planned
    start, with the commands `driver` would run for each on its first attempt (what
    `placement run --dry-run` prints). Raises `InvalidInputError` as `execute` does."""
    _check_plan(problem, plan)
    errors = check_names(problem, plan, driver.target)
    if errors:
        raise InvalidInputError(errors)
    steps = []
    for assignment in plan.assignments:
        guest = problem.guest(assignment.guest)
        if assignment.action is Action.STOP and guest.current_host is not None:
            steps.append(
                PlannedStep(
                    start_s=0.0,
                    ready_s=None,
                    guest=guest.name,
                    action="stop",
                    host=guest.current_host,
                    argv=tuple(driver.shutdown(guest.name, guest.current_host)),
                    probe=(),
                )
            )
            continue
        if assignment.action not in (Action.START, Action.MIGRATE) or assignment.host is None:
            continue
        source = guest.current_host
        if assignment.action is Action.MIGRATE:
            argv = driver.migrate(guest.name, source or assignment.host, assignment.host)
        else:
            down = source is not None and not problem.host(source).online
            argv = driver.start(guest.name, assignment.host, source, down, 1)
        steps.append(
            PlannedStep(
                start_s=float(assignment.start_s or 0),
                ready_s=float(assignment.ready_s) if assignment.ready_s is not None else None,
                guest=guest.name,
                action=assignment.action.value,
                host=assignment.host,
                argv=tuple(argv),
                probe=tuple(driver.probe_commands(guest.name, assignment.host)),
            )
        )
    # The plan's stops first: it counts their room as free from instant 0.
    steps.sort(key=lambda step: (step.start_s, step.action != "stop", step.guest))
    return steps


def _check_plan(problem: Problem, plan: Plan) -> None:
    if plan.status not in (Status.OPTIMAL, Status.FEASIBLE):
        raise InvalidInputError(
            [InputError("status", f"the plan is {plan.status.value}: nothing to carry out")]
        )
    errors = unknown_names(problem, plan)
    if errors:
        raise InvalidInputError(errors)


def _identity(problem: Problem, plan: Plan) -> str:
    from placement.codec import dump_plan, dump_problem

    return fingerprint({"problem": dump_problem(problem), "plan": dump_plan(plan)})


def _results(world: Ledger, records: list[Record], interrupted: bool) -> tuple[GuestResult, ...]:
    problem = world.problem
    last_why: dict[str, str] = {}
    for record in records:
        if record.guest is not None and record.why and record.kind != "start":
            last_why[record.guest] = record.why
    results = []
    for index, guest in enumerate(problem.guests):
        if not world.to_recover[index]:
            continue
        status = world.status[index]
        host = world.host_of[index]
        why = last_why.get(guest.name)
        if index in world.policy_reasons and status not in (
            GuestStatus.READY,
            GuestStatus.BOOTING,
        ):
            why = world.policy_reasons[index]
        elif status is GuestStatus.WAITING:
            why = (
                "interrupted before it could start"
                if interrupted
                else "the policy did not start it"
            )
        results.append(
            GuestResult(
                guest=guest.name,
                action=world.planned_action[index].value,
                status=status.name.lower(),
                host=problem.hosts[host].name if host is not None else None,
                started_s=world.started_at[index],
                ready_s=world.ready_at[index] if status is GuestStatus.READY else None,
                attempts=world.attempts[index],
                why=why,
            )
        )
    return tuple(results)


def execute(
    problem: Problem,
    plan: Plan,
    policy: Policy | str,
    driver: Driver | SimulatedDriver,
    *,
    journal: Journal | str | os.PathLike[str] | None = None,
    options: LiveOptions | None = None,
    stop: StopToken | None = None,
    on_record: Callable[[Record], None] | None = None,
    runner: Runner | None = None,
) -> Execution:
    """Carry out `plan` through `driver` under `policy` (a `Policy` or its name, as
    `placement simulate --policy` takes it), until every guest is ready, given up, lost
    or cannot start, or until `stop` is stopped (nothing more is started, nothing is
    waited for).

    `journal`: a JSON-lines file (or a `Journal`) every record is appended to as it
    happens; if it already holds an earlier run of the same problem and plan, this run
    takes over from it (guests it started are never started again). `on_record` is
    called with each record as it happens (to print decisions). `options`: the live
    driver's polling, timeouts and time scale. `runner` runs one command (tests pass a
    fake; default `run_command`).

    Raises `InvalidInputError` for a plan that cannot be carried out (no plan, unknown
    names, names the driver's tool cannot take, a journal of another problem or plan,
    or one another run holds) and `ValueError` for an unknown policy.
    """
    _check_plan(problem, plan)
    chosen = policy_by_name(policy) if isinstance(policy, str) else policy
    if not isinstance(driver, SimulatedDriver):
        errors = check_names(problem, plan, driver.target)
        if errors:
            raise InvalidInputError(errors)
    book = journal if isinstance(journal, Journal) or journal is None else Journal(journal)
    identity = _identity(problem, plan)
    if book is not None:
        book.acquire()  # one run at a time: two would start guests twice
    try:
        earlier = book.records() if book is not None else []
        resumed = read_back(earlier) if earlier else None
        where = str(book.path) if book is not None else "journal"
        if resumed is not None and resumed.fingerprint not in (None, identity):
            message = "the journal is of another problem or plan (start a new journal)"
            raise InvalidInputError([InputError(where, message)])
        if resumed is not None and isinstance(driver, SimulatedDriver):
            raise InvalidInputError([InputError(where, "the simulated driver does not resume")])
    except BaseException:
        if book is not None:
            book.close()
        raise

    records: list[Record] = []

    def emit(record: Record) -> None:
        records.append(record)
        if book is not None:
            book.append(record)
        if on_record is not None:
            on_record(record)

    try:
        emit(
            Record(
                kind="begin",
                t_s=resumed.end_s if resumed is not None else 0.0,
                time=wall_clock(),
                data={
                    "policy": chosen.name,
                    "driver": driver.name,
                    "fingerprint": identity,
                    "guests": sum(
                        a.action in (Action.START, Action.MIGRATE) for a in plan.assignments
                    ),
                    "resumed": resumed is not None,
                },
            )
        )
        controller = chosen.controller(problem, plan)
        outcome: RunOutcome | None = None
        interrupted = False
        shutdown_failed: tuple[str, ...] = ()
        world: Ledger
        if isinstance(driver, SimulatedDriver):
            world, outcome = run_simulated(problem, plan, controller, driver, emit)
        else:
            live = LiveWorld(
                problem,
                plan,
                problem.simulation,
                driver,
                options or LiveOptions(),
                emit,
                stop=stop,
                runner=runner,
                offset_s=resumed.end_s if resumed is not None else 0.0,
            )
            if resumed is not None:
                live.adopt(resumed)
            live.shut_down(resumed.shut_down if resumed is not None else set())
            live.run(controller)
            interrupted = live.interrupted
            shutdown_failed = tuple(live.shutdown_failed)
            world = live
        guests = _results(world, records, interrupted)
        result = Execution(
            policy=chosen.name,
            driver=driver.name,
            guests=guests,
            records=tuple(records),
            interrupted=interrupted,
            end_s=world.now,
            resumed=resumed is not None,
            outcome=outcome,
            shutdown_failed=shutdown_failed,
            policy_stats=dict(world.policy_stats),
        )
        emit(Record(kind="summary", t_s=world.now, time=wall_clock(), data=result.summary()))
        return attrs.evolve(result, records=tuple(records))
    finally:
        if book is not None:
            book.close()
