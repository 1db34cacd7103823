"""The time-indexed LP bound on the recovery stage (placement/recovery_lp.py): never above
a proven optimum, tighter than the one-pool bounds, and in the plans' bounds."""

from __future__ import annotations

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.scenarios import generate
from placement.bounds import StageBounds, forced_units, recovery_lower_bound
from placement.check import check
from placement.model import (
    BootProfile,
    Guest,
    GuestState,
    Host,
    HostBoot,
    Objective,
    Problem,
    Schedule,
)
from placement.recovery_lp import recovery_lp_bound
from placement.solvers import SolveOptions, solve
from placement.statistics import StageLog
from tests.strategies import problems

RECOVERY_LAST = (Objective.PLACED, Objective.MIGRATIONS, Objective.RECOVERY)


def _booting(problem: Problem, held: dict[str, float]) -> list[Guest]:
    units = StageBounds(problem).units
    forced = forced_units(problem, held, units)
    return [g for unit in forced for g in unit.guests if not problem.runs_now(g)]


def _proven_recovery(problem: Problem) -> tuple[dict[str, float], float] | None:
    """The held values of `placed` and `migrations` and the recovery value that CP-SAT
    proved optimal under them (None when it did not prove it)."""
    plan = solve(problem, "cpsat", SolveOptions(time_limit_s=5, workers=1, deterministic=True))
    report = check(problem, plan)
    assert report.ok, report.violations
    logs = {log.stage: log for log in plan.statistics.stages}
    log = logs.get("recovery")
    if log is None or log.status != "OPTIMAL" or log.value is None:
        return None
    values = report.metrics["objectives"]
    held = {"placed": float(values["placed"]), "migrations": float(values["migrations"])}
    return held, float(log.value)


@st.composite
def boot_problems(draw: st.DrawFn) -> Problem:
    """2-6 guests to boot (sometimes one running that may move) on 1-2 hosts: a SAN
    pool, start groups, `after`, a stagger gap, batch and host boot limits, durations
    that share a tick (5 or 10 s) or not. Small enough for CP-SAT to prove the optimum."""
    num_hosts = draw(st.integers(1, 2))
    hosts = [
        Host(
            name=f"h{h}",
            capacity={"ram_mib": 16 * 1024},
            boot=HostBoot(
                cpu=draw(st.none() | st.integers(2, 6)),
                max_starts=draw(st.none() | st.integers(1, 3)),
            ),
        )
        for h in range(num_hosts)
    ]
    guests: list[Guest] = []
    for i in range(draw(st.integers(2, 6))):
        running = i == 0 and draw(st.booleans())
        guests.append(
            Guest(
                name=f"g{i}",
                demand={"ram_mib": draw(st.integers(1, 8)) * 512},
                priority=draw(st.integers(0, 3)),
                state=GuestState.RUNNING if running else GuestState.STOPPED,
                current_host="h0" if running else None,
                migration_cost=draw(st.integers(0, 1)),
                boot=BootProfile(
                    duration_s=draw(st.sampled_from([0, 10, 20, 30, 45, 60])),
                    load={"san": draw(st.integers(0, 8))},
                    cpu=draw(st.integers(0, 3)),
                    after=tuple(
                        sorted(draw(st.sets(st.sampled_from([g.name for g in guests]), max_size=1)))
                    )
                    if guests
                    else (),
                    group=draw(st.none() | st.none() | st.just("s0")),
                ),
            )
        )
    return Problem(
        hosts=hosts,
        guests=guests,
        boot_pools={"san": draw(st.integers(6, 12))},
        schedule=Schedule(
            stagger_s=draw(st.sampled_from([0, 5, 10, 15])),
            max_starts=draw(st.none() | st.integers(1, 3)),
            horizon_s=3600,
        ),
        objective=RECOVERY_LAST,
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(boot_problems())
def test_the_bound_never_exceeds_a_proven_optimum(problem: Problem) -> None:
    """On small boot problems of every schedule rule, CP-SAT's proven optimum of the
    recovery stage is never below the LP bound, even when the LP is told that optimum as
    its upper bound (which cuts the most ticks off)."""
    _assert_below_the_optimum(problem)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_hosts=3, max_guests=6))
def test_the_bound_holds_on_problems_of_every_rule(problem: Problem) -> None:
    """The same on the general small problems (placement rules, frozen guests, tight
    horizons, migrations with their own durations)."""
    _assert_below_the_optimum(attrs.evolve(problem, objective=RECOVERY_LAST))


def _assert_below_the_optimum(problem: Problem) -> None:
    """The LP bound, told the proven optimum as its upper bound, is at most that optimum
    (nothing to assert when CP-SAT proves none)."""
    proven = _proven_recovery(problem)
    if proven is None:
        return
    held, optimum = proven
    bound, _ = recovery_lp_bound(problem, _booting(problem, held), held, optimum)
    assert bound is None or bound <= optimum + 1e-6


def _san_and_stagger() -> Problem:
    """Four guests on one host behind a SAN of 10: two heavy ones (7 and 6) that cannot
    boot together, two light ones, starts 10 s apart."""
    host = Host(name="h0", capacity={"ram_mib": 8192}, boot=HostBoot(cpu=None))
    loads = [(7, 60, 3), (6, 60, 2), (2, 30, 1), (2, 30, 1)]
    guests = [
        Guest(
            name=f"g{i}",
            demand={"ram_mib": 512},
            priority=priority,
            boot=BootProfile(duration_s=duration, load={"san": load}),
        )
        for i, (load, duration, priority) in enumerate(loads)
    ]
    return Problem(
        hosts=[host],
        guests=guests,
        boot_pools={"san": 10},
        schedule=Schedule(stagger_s=10, horizon_s=3600),
        objective=RECOVERY_LAST,
    )


def test_the_bound_is_tight_where_the_pool_bound_is_not() -> None:
    """The two heavy guests run one after the other and starts are 10 s apart: the LP
    sees both, the mean-busy-time bound of the pool alone does not; the optimum (CP-SAT,
    proven) is met or nearly."""
    problem = _san_and_stagger()
    proven = _proven_recovery(problem)
    assert proven is not None
    held, optimum = proven
    booting = _booting(problem, held)
    bound, size = recovery_lp_bound(problem, booting, held, optimum)
    assert bound is not None
    assert size > 0
    assert recovery_lower_bound(problem, booting) < bound <= optimum


def test_the_bound_declines_an_lp_larger_than_allowed() -> None:
    problem = _san_and_stagger()
    held = {"placed": 4.0, "migrations": 0.0}
    assert recovery_lp_bound(problem, _booting(problem, held), held, 10_000, 5) == (None, 0)


def test_the_optimiser_reports_the_lp_bound_on_a_failover_scenario() -> None:
    """S-4 (11 boots): the recovery stage's bound in the plan is at least the LP bound
    below the plan's value, above CP-SAT's own bound and our one-pool bound."""
    problem = generate("S", 4)
    plan = solve(problem, "cpsat", SolveOptions(time_limit_s=6))
    assert check(problem, plan).ok
    stage = plan.stage("recovery")
    assert stage is not None
    assert stage.bound is not None
    held = {"placed": plan.stage("placed").value, "migrations": plan.stage("migrations").value}
    booting = _booting(problem, held)
    bound, _ = recovery_lp_bound(problem, booting, held, stage.value)
    assert bound is not None
    assert stage.bound >= bound > recovery_lower_bound(problem, booting)
    logs = {log.stage: log for log in plan.statistics.stages}
    cp_bound = logs["recovery"].bound
    assert cp_bound is None or cp_bound <= stage.bound


def test_the_stage_log_reports_the_lp_bound() -> None:
    """The stage loop's log entry (CP-SAT's key names) reaches the typed statistics with
    the LP's bound and seconds beside CP-SAT's own bound."""
    log = StageLog.from_log(
        {
            "stage": "recovery",
            "cp_sat_status": "FEASIBLE",
            "seconds": 4.8,
            "value": 5945,
            "cp_sat_bound": 5265,
            "lp_bound": 5474,
            "lp_seconds": 0.31,
        }
    )
    assert (log.value, log.bound, log.lp_bound, log.lp_seconds) == (5945.0, 5265.0, 5474.0, 0.31)
    unbuilt = StageLog.from_log({"stage": "recovery", "cp_sat_status": "FEASIBLE"})
    assert unbuilt.lp_bound is None
