"""Admission control by survey: would the cluster still survive every failure with this
new guest, and where should it go?

    guest = new_guest(state, {"name": "vm-new", "demand": {"ram_mib": 65536}, "priority": 2})
    answer = admit(state, guest, "hosts", SurveyOptions(), executor=executor)
    answer.admitted, answer.host, answer.baseline.safe

vSphere HA's admission control counts slots or a percentage of reserved capacity and knows
nothing of anti-affinity, boot-storm limits or what a restart would actually place. Here the
answer is planned: each candidate host is tried by surveying every failure scenario with the
new guest running there.

1. The candidates are the online hosts where the guest fits now (capacity after reservation
   and overcommit, its own host rules, anti-affinity with the guests there; the host of its
   `together` group if it names one).
2. They are ranked by their *capacity slack*: for each scenario and resource, what the
   surviving hosts have free minus what the failed hosts ran, relative to the latter (a
   fluid bound: a negative slack means some guest cannot restart whatever the plan); the
   candidate whose worst scenario keeps the most slack comes first, then the most free RAM.
3. Up to `candidates` of them are surveyed in that order; the first whose survey is safe is
   the answer. The survey of the cluster without the guest (the baseline) comes first, so
   that "already unsafe" is told apart from "unsafe because of this guest".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from placement.codec import dump_problem, load_problem
from placement.errors import InputError, InvalidProblemError
from placement.executors import Executor
from placement.model import Guest, GuestState, Problem, host_allows
from placement.survey import (
    FailureScenario,
    ScenarioOutcome,
    SurveyError,
    SurveyOptions,
    SurveyResult,
    failure_scenarios,
    survey,
)

logger = logging.getLogger(__name__)

__all__ = ["Admission", "CandidateResult", "admit", "candidate_hosts", "new_guest"]


def new_guest(state: Problem, document: Any) -> Guest:
    """The guest described by `document` (a guest object of the problem format, or a
    list holding one), checked against the state: its references, its name not taken.

    It is not running yet: `state` and `current_host` are ignored. Raises
    `InvalidProblemError` whose paths are relative to `document`.
    """
    if isinstance(document, list):
        if len(document) != 1:
            raise InvalidProblemError(
                [InputError("", f"give one guest to admit (got {len(document)})")]
            )
        document = document[0]
        prefix = "[0]"
    else:
        prefix = ""
    if not isinstance(document, Mapping):
        raise InvalidProblemError([InputError(prefix, "expected a guest object")])
    body = {k: v for k, v in document.items() if k not in ("state", "current_host")}
    whole = dump_problem(state)
    position = len(whole["guests"])
    whole["guests"] = [*whole["guests"], body]
    try:
        problem = load_problem(whole)
    except InvalidProblemError as error:
        own = f"guests[{position}]"
        errors = [
            InputError(prefix + item.path[len(own) :].lstrip("."), item.message)
            if item.path.startswith(own)
            else item
            for item in error.errors
        ]
        raise InvalidProblemError(errors) from error
    return problem.guests[position]


def _loads(state: Problem) -> dict[str, dict[str, int]]:
    """Per host, the demand of the guests holding it now (running and frozen copies)."""
    loads: dict[str, dict[str, int]] = {host.name: {} for host in state.hosts}
    for guest in state.guests:
        if state.holds_current_host(guest) and guest.current_host is not None:
            used = loads[guest.current_host]
            for resource, amount in guest.demand.items():
                used[resource] = used.get(resource, 0) + amount
    return loads


def candidate_hosts(state: Problem, guest: Guest) -> list[str]:
    """Online hosts where `guest` could run now, in host order (see the module docstring)."""
    loads = _loads(state)
    together = None
    if guest.together is not None:
        homes = {
            g.current_host
            for g in state.guests
            if g.together == guest.together and state.holds_current_host(g)
        }
        together = homes.pop() if len(homes) == 1 else None
    found = []
    for host in state.hosts:
        if not host_allows(host, attrs.evolve(guest, state=GuestState.STOPPED)):
            continue
        if together is not None and host.name != together:
            continue
        used = loads[host.name]
        if any(used.get(r, 0) + amount > host.usable(r) for r, amount in guest.demand.items()):
            continue
        if guest.anti_affinity and any(
            g.current_host == host.name
            and state.holds_current_host(g)
            and g.anti_affinity & guest.anti_affinity
            for g in state.guests
        ):
            continue
        found.append(host.name)
    return found


def with_guest(state: Problem, guest: Guest, host: str) -> Problem:
    """`state` with `guest` running on `host`."""
    running = attrs.evolve(guest, state=GuestState.RUNNING, current_host=host)
    return attrs.evolve(state, guests=(*state.guests, running))


def capacity_slack(state: Problem, scenarios: Iterable[FailureScenario]) -> float:
    """The worst fluid slack over `scenarios` and resources: (free on the survivors - used
    on the failed hosts) / used on the failed hosts. Negative: some guest of a failed host
    cannot restart, whatever the plan (one of the reasons; packing may add others)."""
    loads = _loads(state)
    worst = float("inf")
    for scenario in scenarios:
        failed = set(scenario.failed)
        for resource in state.resources:
            lost = sum(loads[name].get(resource, 0) for name in failed)
            if lost == 0:
                continue
            free = sum(
                max(0, host.usable(resource) - loads[host.name].get(resource, 0))
                for host in state.hosts
                if host.online and host.name not in failed
            )
            worst = min(worst, (free - lost) / lost)
    return worst


@attrs.frozen
class CandidateResult:
    """A candidate host, its capacity slack (see `capacity_slack`) and, when it was
    surveyed, the survey with the new guest running there."""

    host: str
    slack: float
    survey: SurveyResult | None = None


@attrs.frozen
class Admission:
    """The answer. `admitted`: a surveyed candidate keeps every scenario safe; `host` is
    it. `baseline`: the survey without the guest. `candidates`: every candidate host,
    ranked, those surveyed carrying their survey."""

    guest: str
    admitted: bool
    host: str | None
    baseline: SurveyResult
    candidates: tuple[CandidateResult, ...]

    @property
    def tried(self) -> tuple[CandidateResult, ...]:
        return tuple(c for c in self.candidates if c.survey is not None)


def admit(
    state: Problem,
    guest: Guest,
    scenarios: str | Iterable[FailureScenario] = "hosts",
    options: SurveyOptions | None = None,
    *,
    executor: Executor | None = None,
    candidates: int = 3,
    on_result: Callable[[int, int, ScenarioOutcome], None] | None = None,
) -> Admission:
    """Would the cluster survive every scenario with `guest`, and on which host? (module
    docstring). `candidates`: how many hosts to survey at most. Raises `SurveyError` for
    a bad request."""
    if candidates < 1:
        raise SurveyError(f"--candidates must be >= 1, got {candidates}")
    kind = scenarios if isinstance(scenarios, str) else "listed"
    listed = failure_scenarios(state, scenarios) if isinstance(scenarios, str) else list(scenarios)
    baseline = survey(state, listed, options, executor=executor, on_result=on_result, kind=kind)
    ranked = []
    for host in candidate_hosts(state, guest):
        placed = with_guest(state, guest, host)
        slack = capacity_slack(placed, listed)
        free_ram = placed.host(host).usable("ram_mib") - _loads(placed)[host].get("ram_mib", 0)
        ranked.append((-slack, -free_ram, host, slack))
    ranked.sort()
    results: list[CandidateResult] = []
    chosen: str | None = None
    for position, (_, _, host, slack) in enumerate(ranked):
        if chosen is not None or position >= candidates:
            results.append(CandidateResult(host, slack))
            continue
        logger.info("admission: surveying %s on %s", guest.name, host)
        found = survey(
            with_guest(state, guest, host),
            listed,
            options,
            executor=executor,
            on_result=on_result,
            kind=kind,
        )
        results.append(CandidateResult(host, slack, found))
        if found.verdict.safe:
            chosen = host
    return Admission(guest.name, chosen is not None, chosen, baseline, tuple(results))
