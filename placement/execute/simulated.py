"""The simulated driver: `execute` against the simulator's clock and physics, so an
execution under simulation *is* the measurement (`placement.simulate.run_once` with the
same controller and draws gives the same outcome)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import attrs

from placement.execute.journal import Record, wall_clock
from placement.execute.reasons import start_reason
from placement.model import Problem, SimulationSettings
from placement.plan import Assignment, Plan
from placement.simulate import UNTIL_HORIZONS
from placement.simulate.draws import RunDraws, draw_runs, planned_makespan_s
from placement.simulate.engine import Controller, World
from placement.simulate.ledger import Event, EventKind
from placement.simulate.outcome import RunOutcome


@attrs.frozen
class SimulatedDriver:
    """Run through the simulator: `settings` (None: the problem's `simulation` object)
    and run number `run` of the draws from `seed` (`placement.simulate.draw_runs`)."""

    settings: SimulationSettings | None = None
    seed: int = 0
    run: int = 0
    name: str = "simulated"

    def draws(self, problem: Problem, plan: Plan) -> RunDraws:
        return draw_runs(problem, plan, self.settings_for(problem), 1, self.seed, self.run)[0]

    def settings_for(self, problem: Problem) -> SimulationSettings:
        return self.settings if self.settings is not None else problem.simulation


class _RecordingWorld(World):
    """A simulated world that reports each start and event as a journal record."""

    def __init__(
        self,
        problem: Problem,
        plan: Plan,
        settings: SimulationSettings,
        draws: RunDraws,
        emit: Callable[[Record], None],
    ) -> None:
        super().__init__(problem, plan, settings, draws)
        self._emit = emit
        self._policy_logged = 0
        self.planned: Mapping[str, Assignment] = plan.by_guest()

    def _note(
        self,
        kind: str,
        guest: int | None,
        host: int | None,
        at_s: float | None = None,
        **fields: object,
    ) -> None:
        self._emit(
            Record(
                kind=kind,
                t_s=self.now if at_s is None else at_s,
                time=wall_clock(),
                guest=self.problem.guests[guest].name if guest is not None else None,
                host=self.problem.hosts[host].name if host is not None else None,
                **fields,  # type: ignore[arg-type]
            )
        )

    def _launch(self, guest: int, host: int, migrate: bool) -> None:
        action = "migrate" if migrate else ("retry" if self.retrying else "start")
        why = start_reason(self, self.planned, guest, host, action)
        self._note("start", guest, host, action=action, attempt=self.attempts[guest], why=why)
        super()._launch(guest, host, migrate)

    def take_events(self) -> list[Event]:
        for at_s, text in self.policy_log[self._policy_logged :]:
            self._note("decision", None, None, why=text, at_s=at_s)
        self._policy_logged = len(self.policy_log)
        events = super().take_events()
        for event in events:
            why = None
            if event.kind in (EventKind.FAILED, EventKind.GAVE_UP):
                why = "the simulated attempt failed"
            elif event.kind is EventKind.LOST:
                why = "its host went down"
            self._note(event.kind.value, event.guest, event.host, why=why)
        return events


def run_simulated(
    problem: Problem,
    plan: Plan,
    controller: Controller,
    driver: SimulatedDriver,
    emit: Callable[[Record], None],
) -> tuple[World, RunOutcome]:
    """One simulated run, as `placement.simulate.run_once` does it, every start and
    event reported to `emit`."""
    settings = driver.settings_for(problem)
    draws = driver.draws(problem, plan)
    world = _RecordingWorld(problem, plan, settings, draws, emit)
    until = UNTIL_HORIZONS * max(float(problem.schedule.horizon_s), planned_makespan_s(plan), 1.0)
    world.run(controller, until)
    return world, RunOutcome.of(world, problem, draws.run)
