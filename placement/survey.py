"""The failure survey: "if any one host (or this rack) dies, can every guest restart, and
how long will it take?", answered by planning every failure before it happens.

    from placement.survey import SurveyOptions, survey
    result = survey(state, "hosts", SurveyOptions(time_limit_s=2))
    result.verdict.safe, result.verdict.worst, result.verdict.at_risk

Each failure scenario is a set of hosts that fail together: every single online host
(`"hosts"`, N+1), every failure domain (`"domains"`, N+domain), every pair of online
hosts (`"pairs"`, N+2), or a list given by the caller (`failure_scenarios_from`). For each,
`placement.operations.failover` builds the problem from the state, a solver plans it, and
the checker verifies the plan. The outcome says what had to restart, what was placed,
what was not and why (the blocking rule the solver names), the priority-weighted recovery
and the makespan of the planned restart, the peak use of each boot pool and the running
guests that had to move.

**How a scenario is planned.** First with every running guest pinned where it runs
(`placement.operations.stay_plan`): a much smaller model (1.1 s instead of 5 s per
single-host failure of a 1,000-guest cluster). When that places every guest it is the
answer of the full failover objective too: `placed` is at its maximum, no migration is the
least possible, and the recovery stage then optimises exactly over plans that move nothing.
Only when the pinned plan leaves a guest unplaced is the full failover problem solved, in
which running guests may move to make room; the better of the two plans (more
priority-weighted guests placed) is kept and its moves reported as migrations needed.

**The verdict.** A scenario is *safe* when its plan is valid and places every guest of
priority >= `min_priority`. The cluster is N+1 (N+domain, ...) safe when every scenario is.
The worst scenarios come first (most priority-weight left unplaced, then the longest
recovery), and each guest at risk is listed with the number of scenarios that leave it
without a host.

Scenarios are independent, so they run on an executor (`placement.executors`): this
process, local worker processes, or a Dask cluster. Each outcome depends only on the
state, the scenario and the options, so with `deterministic=True` the results do not
depend on where they ran. The library never prints; `on_result` reports each outcome as it
arrives (the CLI draws its progress bar from it).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from placement.codec import dump_problem, load_problem
from placement.executors import Executor, InlineExecutor
from placement.model import GuestState, Objective, Problem
from placement.plan import Plan, Status, Unplaced

logger = logging.getLogger(__name__)

__all__ = [
    "FAILURE_KINDS",
    "SURVEY_OBJECTIVE",
    "FailureScenario",
    "ScenarioOutcome",
    "SurveyError",
    "SurveyOptions",
    "SurveyResult",
    "Verdict",
    "domain_failures",
    "failure_scenarios",
    "failure_scenarios_from",
    "pair_failures",
    "plan_failure",
    "single_host_failures",
    "survey",
    "survey_to_dict",
    "verdict",
]

#: The scenario families `failure_scenarios` builds.
FAILURE_KINDS = ("hosts", "domains", "pairs")
#: A survey's objective: restart as much as fits, move as little as possible, then bring
#: the restarted guests up as early as the boot-storm limits allow. (Failover's `balance`
#: stage is left out: it changes no answer the survey reports.)
SURVEY_OBJECTIVE = (Objective.PLACED, Objective.MIGRATIONS, Objective.RECOVERY)


class SurveyError(ValueError):
    """A survey that cannot be built: an unknown kind, an unknown host, no domains."""


# --- failure scenarios -------------------------------------------------------------------


def _names(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _stages(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class FailureScenario:
    """Hosts that fail together. `name` labels it in reports: the host, the domain, or the
    hosts joined by `+`."""

    name: str
    failed: tuple[str, ...] = attrs.field(converter=_names)


def _online_names(state: Problem) -> list[str]:
    return [host.name for host in state.hosts if host.online]


def single_host_failures(state: Problem) -> list[FailureScenario]:
    """Every online host failing alone (the N+1 question)."""
    return [FailureScenario(name, (name,)) for name in _online_names(state)]


def domain_failures(state: Problem) -> list[FailureScenario]:
    """Every failure domain failing as a whole: its online hosts. Raises `SurveyError`
    when no host names a domain."""
    domains: dict[str, list[str]] = {}
    for host in state.hosts:
        if host.domain is not None and host.online:
            domains.setdefault(host.domain, []).append(host.name)
    if not domains:
        raise SurveyError("--fail domains: no online host names a failure domain ('domain')")
    return [FailureScenario(domain, tuple(hosts)) for domain, hosts in sorted(domains.items())]


def pair_failures(state: Problem) -> list[FailureScenario]:
    """Every pair of online hosts failing together (N+2): n (n - 1) / 2 scenarios."""
    return [
        FailureScenario(f"{a}+{b}", (a, b))
        for a, b in itertools.combinations(_online_names(state), 2)
    ]


def failure_scenarios(state: Problem, kind: str) -> list[FailureScenario]:
    """The scenarios of `kind`: `hosts`, `domains` or `pairs` (see `FAILURE_KINDS`)."""
    builders: dict[str, Callable[[Problem], list[FailureScenario]]] = {
        "hosts": single_host_failures,
        "domains": domain_failures,
        "pairs": pair_failures,
    }
    try:
        scenarios = builders[kind](state)
    except KeyError:
        raise SurveyError(
            f"--fail: unknown kind '{kind}' (known: {', '.join(FAILURE_KINDS)}, or a file)"
        ) from None
    if not scenarios:
        raise SurveyError(f"--fail {kind}: the state has no online host to fail")
    return scenarios


def failure_scenarios_from(state: Problem, document: Any, source: str) -> list[FailureScenario]:
    """Scenarios listed in a JSON document: a list whose items are each a list of host
    names (`[["node1"], ["node2", "node3"]]`) or an object `{"name": ..., "failed": [...]}`.
    Every error names `source` and the place (`fail.json: [1].failed[0]: unknown host 'x'`)."""
    if isinstance(document, Mapping) and "scenarios" in document:
        document = document["scenarios"]
        where = f"{source}: scenarios"
    else:
        where = source
    if not isinstance(document, list) or not document:
        raise SurveyError(f"{where}: expected a non-empty list of scenarios")
    scenarios = []
    online = set(_online_names(state))
    for index, item in enumerate(document):
        place = f"{where}[{index}]"
        name: Any = None
        failed: Any = item
        if isinstance(item, Mapping):
            unknown = sorted(set(item) - {"name", "failed"})
            if unknown:
                raise SurveyError(f"{place}: unknown key '{unknown[0]}' (known: name, failed)")
            name, failed = item.get("name"), item.get("failed")
            place += ".failed"
        if not isinstance(failed, list) or not failed:
            raise SurveyError(f"{place}: expected a non-empty list of host names")
        for position, host in enumerate(failed):
            if not isinstance(host, str) or not state.has_host(host):
                raise SurveyError(f"{place}[{position}]: unknown host {json.dumps(host)}")
            if host not in online:
                raise SurveyError(
                    f"{place}[{position}]: host '{host}' is {state.host(host).state.value}, "
                    "not online: only an online host can fail"
                )
        hosts = tuple(dict.fromkeys(failed))
        if name is not None and not isinstance(name, str):
            raise SurveyError(f"{source}[{index}].name: expected a string")
        scenarios.append(FailureScenario(name or "+".join(hosts), hosts))
    return scenarios


# --- one scenario ------------------------------------------------------------------------


@attrs.frozen
class SurveyOptions:
    """How each scenario is planned.

    `solver`: a registered solver name. `time_limit_s`: per scenario and solve (a
    scenario that needs the full model after the pinned one may take twice as long).
    `workers`: solver threads per scenario (1: run scenarios in parallel instead).
    `deterministic`: work counted instead of the clock, so that a scenario's plan is the
    same wherever it runs (unless the wall-clock limit cut it: `SolveOptions`).
    `min_priority`: the guests that must restart for a scenario to be
    safe (priority >= this). `objective`: the stages of each failover.
    `moves_in_recovery`: running guests may be live-migrated to make room for a restart
    (the full failover is solved when the pinned plan leaves a guest down); False: a
    restart must fit around the running guests as they are, the stricter question of
    capacity reserved in advance (`placement.survive` verifies with it).
    `simulate_runs` > 0: each scenario's plan also runs that many times through the
    simulator (`placement.simulate`) under `simulate_policy`, with the state's
    `simulation` settings and boot-time noise `simulate_sigma` (None: the state's own).
    """

    solver: str = "cpsat"
    time_limit_s: float = 2.0
    seed: int = 0
    workers: int = 1
    deterministic: bool = False
    min_priority: int = 0
    objective: tuple[str, ...] = attrs.field(
        default=tuple(o.value for o in SURVEY_OBJECTIVE), converter=_stages
    )
    moves_in_recovery: bool = True
    simulate_runs: int = 0
    simulate_policy: str = "readiness-backfill"
    simulate_sigma: float | None = 0.3

    def __attrs_post_init__(self) -> None:
        if self.simulate_runs < 0:
            raise SurveyError(f"--simulate must be >= 0 runs, got {self.simulate_runs}")
        if self.simulate_runs:
            from placement.simulate import policy_by_name

            try:
                policy_by_name(self.simulate_policy)
            except ValueError as error:
                raise SurveyError(f"--policy: {error}") from error
        if self.time_limit_s <= 0:
            raise SurveyError(f"--time-limit must be > 0, got {self.time_limit_s}")
        if self.workers < 1:
            raise SurveyError(f"--workers must be >= 1, got {self.workers}")
        if self.min_priority < 0:
            raise SurveyError(f"--min-priority must be >= 0, got {self.min_priority}")
        known = {o.value for o in Objective}
        unknown = [name for name in self.objective if name not in known]
        if unknown or not self.objective:
            raise SurveyError(
                f"--objective: unknown stage '{unknown[0] if unknown else ''}' "
                f"(known: {', '.join(sorted(known))})"
            )


@attrs.frozen
class SimulatedFigures:
    """A scenario's plan run through the simulator: the policy, the runs, p95 recovery
    and makespan, the highest pool demand over capacity, the runs that fenced a host or
    left a guest never ready."""

    policy: str
    runs: int
    recovery_p95: float
    makespan_p95_s: float
    peak_pool_ratio: float
    runs_with_fencing: int
    runs_with_never_ready: int


@attrs.frozen
class ScenarioOutcome:
    """What one failure scenario's plan says.

    `to_restart`: guests that ran (or were frozen) on the failed hosts. `placed` and
    `guests`: guests of the scenario with a host in the plan, and in all.
    `unplaced`: every guest left without a host, with the solver's reason. `at_risk`:
    those of priority >= the survey's `min_priority`. `recovery`: the priority-weighted
    sum of ready times (the `recovery` objective, s) and its proven lower bound when the
    solver gives one; `makespan_s`: when the last started guest is ready. `pools`: per
    boot pool `(name, peak, limit)`. `migrations`: running guests the plan moves.
    `valid`: the checker found no violation (`violations` lists them). `pinned`: the plan
    kept every running guest where it runs (see the module docstring). `runtime_s`: wall
    time of the scenario, model building, solving and checking included.
    """

    scenario: FailureScenario
    status: str
    to_restart: tuple[str, ...]
    placed: int
    guests: int
    unplaced: tuple[Unplaced, ...]
    at_risk: tuple[str, ...]
    unplaced_weight: int
    recovery: float
    recovery_bound: float | None
    makespan_s: int
    pools: tuple[tuple[str, int, int], ...]
    migrations: int
    valid: bool
    violations: tuple[str, ...]
    pinned: bool
    runtime_s: float
    simulated: SimulatedFigures | None = None

    @property
    def has_plan(self) -> bool:
        return self.status in (Status.OPTIMAL.value, Status.FEASIBLE.value)

    @property
    def safe(self) -> bool:
        """A valid plan that leaves no guest of the protected priorities without a host."""
        return self.has_plan and self.valid and not self.at_risk


def _weight(problem: Problem, plan: Plan) -> int:
    return sum(problem.guest(a.guest).weight for a in plan.assignments if a.host is not None)


def plan_failure(
    state: Problem, scenario: FailureScenario, options: SurveyOptions | None = None
) -> ScenarioOutcome:
    """Plan one failure scenario and describe it (see `ScenarioOutcome`).

    Raises `placement.operations.ScenarioError` for a host that is unknown or not online,
    and `placement.solvers.UnknownSolverError` for an unknown solver.
    """
    from placement.check import check
    from placement.operations import failover, stay_plan
    from placement.solvers import SolveOptions, solve

    chosen = options or SurveyOptions()
    started = time.perf_counter()
    problem = failover(state, scenario.failed, objective=chosen.objective)
    solve_options = SolveOptions(
        time_limit_s=chosen.time_limit_s,
        seed=chosen.seed,
        workers=chosen.workers,
        deterministic=chosen.deterministic,
    )
    plan = stay_plan(problem, chosen.solver, solve_options)
    pinned = True
    if chosen.moves_in_recovery and (
        plan.unplaced or plan.status not in (Status.OPTIMAL, Status.FEASIBLE)
    ):
        # Moving running guests may make room: solve the whole failover.
        full = solve(problem, chosen.solver, solve_options)
        full_has_plan = full.status in (Status.OPTIMAL, Status.FEASIBLE)
        if full_has_plan and (
            plan.status not in (Status.OPTIMAL, Status.FEASIBLE)
            or _weight(problem, full) > _weight(problem, plan)
        ):
            plan, pinned = full, False
    simulated = _simulated(problem, plan, chosen) if chosen.simulate_runs else None
    report = check(problem, plan)
    failed = set(scenario.failed)
    to_restart = tuple(
        g.name
        for g in state.guests
        if g.current_host in failed and g.state in (GuestState.RUNNING, GuestState.FROZEN)
    )
    placed_names = {a.guest for a in plan.assignments if a.host is not None}
    unplaced = tuple(plan.unplaced) + tuple(
        Unplaced(g.name, "the plan gives it no host")
        for g in problem.guests
        if g.name not in placed_names and g.name not in {u.guest for u in plan.unplaced}
    )
    at_risk = tuple(
        u.guest for u in unplaced if problem.guest(u.guest).priority >= chosen.min_priority
    )
    objectives = report.metrics.get("objectives", {})
    stage = plan.stage("recovery")
    pools = tuple(
        (name, int(info.get("peak") or 0), int(info.get("limit") or 0))
        for name, info in sorted(report.metrics.get("pools", {}).items())
    )
    actions = report.metrics.get("actions", {})
    return ScenarioOutcome(
        scenario=scenario,
        status=plan.status.value,
        to_restart=to_restart,
        placed=len(placed_names),
        guests=len(problem.guests),
        unplaced=unplaced,
        at_risk=at_risk,
        unplaced_weight=sum(problem.guest(u.guest).weight for u in unplaced),
        recovery=float(objectives.get("recovery", 0.0)),
        recovery_bound=stage.bound if stage is not None else None,
        makespan_s=int(objectives.get("makespan", 0)),
        pools=pools,
        migrations=int(actions.get("migrate", 0)),
        valid=report.ok,
        violations=tuple(f"{v.rule}: {v.message}" for v in report.violations),
        pinned=pinned,
        runtime_s=round(time.perf_counter() - started, 3),
        simulated=simulated,
    )


def _simulated(problem: Problem, plan: Plan, options: SurveyOptions) -> SimulatedFigures:
    from placement.simulate import simulate

    overrides: dict[str, Any] = {}
    if options.simulate_sigma is not None:
        overrides["sigma"] = options.simulate_sigma
    result = simulate(
        problem,
        plan,
        options.simulate_policy,
        runs=options.simulate_runs,
        seed=options.seed,
        **overrides,
    )
    summary = result.summary
    return SimulatedFigures(
        policy=result.policy,
        runs=summary.runs,
        recovery_p95=summary.recovery.p95,
        makespan_p95_s=summary.makespan_s.p95,
        peak_pool_ratio=max(summary.peak_pool_ratio.values(), default=0.0),
        runs_with_fencing=summary.runs_with_fencing,
        runs_with_never_ready=summary.runs_with_never_ready,
    )


# --- running a survey --------------------------------------------------------------------

# Per worker process: the states already decoded, by the digest of their JSON.
_STATES: dict[str, Problem] = {}


@attrs.frozen
class _Shared:
    """What every worker gets once: the state as JSON (a `Problem` does not pickle) and
    its digest, and the options."""

    digest: str
    document: dict[str, Any]
    options: SurveyOptions


def _shared(state: Problem, options: SurveyOptions) -> _Shared:
    document = dump_problem(state)
    text = json.dumps(document, sort_keys=True)
    return _Shared(hashlib.sha256(text.encode("utf-8")).hexdigest(), document, options)


def _survey_task(shared: _Shared, scenario: FailureScenario) -> ScenarioOutcome:
    state = _STATES.get(shared.digest)
    if state is None:
        state = load_problem(shared.document)
        _STATES.clear()  # one state per worker at a time is enough
        _STATES[shared.digest] = state
    return plan_failure(state, scenario, shared.options)


@attrs.frozen
class Verdict:
    """The survey's answer. `safe`: every scenario is safe (see `ScenarioOutcome.safe`).
    `worst`: scenario names, worst first (most priority-weight unplaced, then an invalid or
    missing plan, then the longest recovery). `at_risk`: `(guest, scenarios, priority)`,
    each guest of the protected priorities that some scenario leaves without a host, with
    how many; most often first. `unsafe`: the unsafe scenarios' names. `invalid`: those
    whose plan the checker rejected or that have no plan."""

    safe: bool
    scenarios: int
    unsafe: tuple[str, ...]
    invalid: tuple[str, ...]
    worst: tuple[str, ...]
    at_risk: tuple[tuple[str, int, int], ...]
    min_priority: int


def verdict(state: Problem, outcomes: Sequence[ScenarioOutcome], min_priority: int = 0) -> Verdict:
    """The verdict over `outcomes` (see `Verdict`)."""

    def badness(outcome: ScenarioOutcome) -> tuple[Any, ...]:
        broken = not (outcome.has_plan and outcome.valid)
        return (
            -sum(state.guest(g).weight for g in outcome.at_risk),
            -outcome.unplaced_weight,
            not broken,
            -outcome.recovery,
            -outcome.makespan_s,
            outcome.scenario.name,
        )

    ranked = sorted(outcomes, key=badness)
    counts: dict[str, int] = {}
    for outcome in outcomes:
        for guest in outcome.at_risk:
            counts[guest] = counts.get(guest, 0) + 1
    at_risk = sorted(
        ((guest, count, state.guest(guest).priority) for guest, count in counts.items()),
        key=lambda item: (-item[1], -item[2], item[0]),
    )
    return Verdict(
        safe=all(outcome.safe for outcome in outcomes),
        scenarios=len(outcomes),
        unsafe=tuple(o.scenario.name for o in ranked if not o.safe),
        invalid=tuple(o.scenario.name for o in ranked if not (o.has_plan and o.valid)),
        worst=tuple(o.scenario.name for o in ranked),
        at_risk=tuple(at_risk),
        min_priority=min_priority,
    )


@attrs.frozen
class SurveyResult:
    """Every scenario's outcome (in scenario order), the verdict, and how it ran:
    `wall_s` from the first task submitted to the last result, `executor` where."""

    kind: str
    outcomes: tuple[ScenarioOutcome, ...]
    verdict: Verdict
    options: SurveyOptions
    wall_s: float
    executor: str
    hosts: int
    guests: int


def survey(
    state: Problem,
    scenarios: str | Iterable[FailureScenario] = "hosts",
    options: SurveyOptions | None = None,
    *,
    executor: Executor | None = None,
    on_result: Callable[[int, int, ScenarioOutcome], None] | None = None,
    kind: str | None = None,
) -> SurveyResult:
    """Plan every failure scenario of `state` and judge the cluster (module docstring).

    `scenarios`: a kind (`hosts`, `domains`, `pairs`) or the scenarios themselves.
    `executor`: where the scenarios run (default: this process, one after another).
    `on_result(done, total, outcome)` is called in this process as each one finishes.
    `kind` labels listed scenarios in the result (default `listed`).
    Raises `SurveyError` for a bad request (unknown kind or host, no domains).
    """
    from placement.operations import ScenarioError

    chosen = options or SurveyOptions()
    if isinstance(scenarios, str):
        kind = scenarios
        listed = failure_scenarios(state, scenarios)
    else:
        kind = kind or "listed"
        listed = list(scenarios)
        if not listed:
            raise SurveyError("name at least one failure scenario")
    online = set(_online_names(state))
    for scenario in listed:
        bad = [name for name in scenario.failed if name not in online]
        if bad:
            raise SurveyError(
                f"scenario '{scenario.name}': host '{bad[0]}' is unknown or not online"
            )
    runner = executor if executor is not None else InlineExecutor()
    shared = _shared(state, chosen)
    outcomes: list[ScenarioOutcome | None] = [None] * len(listed)
    started = time.perf_counter()
    done = 0
    try:
        for index, outcome in runner.map_unordered(_survey_task, shared, listed):
            outcomes[index] = outcome
            done += 1
            if on_result is not None:
                on_result(done, len(listed), outcome)
    except ScenarioError as error:  # pragma: no cover - the hosts were checked above
        raise SurveyError(str(error)) from error
    wall_s = time.perf_counter() - started
    finished = tuple(outcome for outcome in outcomes if outcome is not None)
    logger.info("survey: %d scenario(s) in %.1f s on %s", len(finished), wall_s, runner.description)
    return SurveyResult(
        kind=kind,
        outcomes=finished,
        verdict=verdict(state, finished, chosen.min_priority),
        options=chosen,
        wall_s=round(wall_s, 3),
        executor=runner.description,
        hosts=len(state.hosts),
        guests=len(state.guests),
    )


# --- JSON --------------------------------------------------------------------------------


def outcome_to_dict(outcome: ScenarioOutcome) -> dict[str, Any]:
    """One scenario as plain JSON data."""
    return {
        "name": outcome.scenario.name,
        "failed": list(outcome.scenario.failed),
        "status": outcome.status,
        "safe": outcome.safe,
        "to_restart": len(outcome.to_restart),
        "placed": outcome.placed,
        "guests": outcome.guests,
        "unplaced": [{"guest": u.guest, "reason": u.reason} for u in outcome.unplaced],
        "at_risk": list(outcome.at_risk),
        "recovery": outcome.recovery,
        "recovery_bound": outcome.recovery_bound,
        "makespan_s": outcome.makespan_s,
        "pools": {name: {"peak": peak, "limit": limit} for name, peak, limit in outcome.pools},
        "migrations": outcome.migrations,
        "valid": outcome.valid,
        "violations": list(outcome.violations),
        "pinned": outcome.pinned,
        "runtime_s": outcome.runtime_s,
        "simulated": attrs.asdict(outcome.simulated) if outcome.simulated else None,
    }


def survey_to_dict(result: SurveyResult) -> dict[str, Any]:
    """The survey as plain JSON data: `scenarios` (in scenario order) and `verdict`."""
    found = result.verdict
    return {
        "kind": result.kind,
        "hosts": result.hosts,
        "guests": result.guests,
        "options": {
            "solver": result.options.solver,
            "time_limit_s": result.options.time_limit_s,
            "seed": result.options.seed,
            "workers": result.options.workers,
            "deterministic": result.options.deterministic,
            "min_priority": result.options.min_priority,
            "objective": list(result.options.objective),
            "moves_in_recovery": result.options.moves_in_recovery,
        },
        "executor": result.executor,
        "wall_s": result.wall_s,
        "scenarios": [outcome_to_dict(outcome) for outcome in result.outcomes],
        "verdict": {
            "safe": found.safe,
            "scenarios": found.scenarios,
            "unsafe": list(found.unsafe),
            "invalid": list(found.invalid),
            "worst": list(found.worst),
            "at_risk": [
                {"guest": guest, "scenarios": count, "priority": priority}
                for guest, count, priority in found.at_risk
            ],
            "min_priority": found.min_priority,
        },
    }
