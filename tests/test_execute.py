"""The executor: under simulation it is the simulator's measurement; live, it follows
fake tools through failures, a stop and a restart from its journal, and never starts a
guest twice."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from placement.errors import InvalidInputError
from placement.execute import (
    Completed,
    Execution,
    Journal,
    LiveOptions,
    Record,
    ShellDriver,
    SimulatedDriver,
    execute,
)
from placement.execute.journal import KINDS
from placement.execute.reasons import format_offset
from placement.model import BootProfile, Guest, Host, Problem, Schedule, SimulationSettings
from placement.plan import Action, Assignment, Plan, Status
from placement.simulate import draw_runs, policy_by_name, run_once
from placement.simulate.outcome import RunOutcome
from placement.simulate.replan import Replan
from placement.solvers import SolveOptions, StopToken, solve
from tests.fake_tools import FakeCluster, install
from tests.strategies import problems

#: 1 plan second = 10 ms: a 30-second boot profile plans 0.3 s.
FAST = LiveOptions(poll_s=0.03, time_scale=0.01, ready_timeout_s=2.0)
#: The same, with time to spare for boots of 0.6 s on a loaded machine.
PATIENT = LiveOptions(poll_s=0.03, time_scale=0.01, ready_timeout_s=4.0)

SHELL = ShellDriver(
    start_command=("fakectl", "start", "{guest}", "{host}"),
    ready_command=("fakectl", "ready", "{guest}", "{host}"),
    stop_command=("fakectl", "stop", "{guest}"),
    host_command=("fakectl", "host", "{host}"),
)


def chain_of_four(retries: int = 1) -> tuple[Problem, Plan]:
    """Four 30-second boots on two hosts, each loading the SAN with 60 of 100 (so one
    boots at a time), `d` after `a`."""
    guests = [
        Guest(
            name,
            {"ram_mib": 1024},
            boot=BootProfile(duration_s=30, load={"san": 60}, after=("a",) if name == "d" else ()),
        )
        for name in "abcd"
    ]
    problem = Problem(
        hosts=[Host("h1", {"ram_mib": 8192}), Host("h2", {"ram_mib": 8192})],
        guests=guests,
        boot_pools={"san": 100},
        schedule=Schedule(stagger_s=0),
        simulation=SimulationSettings(retry_delay_s=10, max_retries=retries),
    )
    plan = Plan(
        Status.FEASIBLE,
        "hand",
        0.0,
        [
            Assignment(
                name, "h1" if index % 2 == 0 else "h2", Action.START, 30 * index, 30 * index + 30
            )
            for index, name in enumerate("abcd")
        ],
    )
    return problem, plan


def _fake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **behaviour: dict[str, object]
) -> FakeCluster:
    guests = {name: dict(behaviour.get(name, {})) for name in "abcd"}
    return install(tmp_path, monkeypatch, guests, boot_s=0.15)


def _kinds(result: Execution, guest: str) -> list[str]:
    return [r.kind for r in result.records if r.guest == guest]


def _untimed(outcome: RunOutcome) -> RunOutcome:
    stats = {k: v for k, v in outcome.policy_stats.items() if not k.startswith("solve_s")}
    return attrs.evolve(outcome, policy_stats=stats)


# --- under simulation, execute is the measurement ------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    problems(),
    st.sampled_from(
        [
            "open-loop",
            "readiness-gated",
            "serial:10",
            "batch:2",
            "pacemaker",
            # A re-plan charged a fixed latency, so that the run is repeatable.
            Replan(solver="best-fit", latency_s=5.0),
        ]
    ),
    st.floats(0.0, 0.5),
    st.floats(0.0, 0.4),
    st.integers(0, 5),
)
def test_the_simulated_driver_gives_the_simulators_outcome(
    problem: Problem, policy: str | Replan, sigma: float, start_failure: float, run: int
) -> None:
    plan = solve(problem, "first-fit", SolveOptions(schedule="list"))
    if plan.status not in (Status.OPTIMAL, Status.FEASIBLE):
        return
    simulation = SimulationSettings(
        sigma=sigma, start_failure_probability=start_failure, random_host_failure_probability=0.3
    )
    draws = draw_runs(problem, plan, simulation, 1, seed=7, first=run)[0]
    chosen = policy_by_name(policy) if isinstance(policy, str) else policy
    expected = run_once(problem, plan, chosen.controller(problem, plan), draws, simulation)

    result = execute(problem, plan, policy, SimulatedDriver(simulation, seed=7, run=run))
    assert result.outcome is not None
    # Everything is the same but the measured solve times of a re-plan.
    assert _untimed(result.outcome) == _untimed(expected)
    # Every start and every readiness is on the record, at the simulator's instants.
    ready = {r.guest: r.t_s for r in result.records if r.kind == "ready"}
    for name, at in expected.ready_s.items():
        if at is not None:
            assert result.guests[[g.guest for g in result.guests].index(name)].ready_s == at
            assert ready[name] == pytest.approx(at)
    assert sum(r.kind == "start" for r in result.records) == expected.starts
    assert {r.kind for r in result.records} <= set(KINDS)


def test_a_simulated_execution_journals_like_a_live_one(tmp_path: Path) -> None:
    problem, plan = chain_of_four()
    path = tmp_path / "run.jsonl"
    result = execute(problem, plan, "readiness-gated", SimulatedDriver(), journal=path)
    assert result.ok
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert next(line["kind"] for line in lines) == "begin"
    assert lines[-1]["kind"] == "summary"
    assert lines[-1]["ready"] == 4
    starts = [line for line in lines if line["kind"] == "start"]
    # One boot at a time (60 + 60 > 100): each start after the previous guest's ready.
    assert [s["guest"] for s in starts] == ["a", "b", "c", "d"]
    assert [s["t_s"] for s in starts] == [0, 30, 60, 90]
    assert "pool san 60/100" in starts[1]["why"]
    assert "after a ready" in starts[3]["why"]
    # A simulated run does not take over a journal.
    with pytest.raises(InvalidInputError, match="does not resume"):
        execute(problem, plan, "readiness-gated", SimulatedDriver(), journal=path)


# --- live, through fake tools ----------------------------------------------------------------


def test_live_readiness_gated_follows_the_plans_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem, plan = chain_of_four()
    fake = _fake(tmp_path, monkeypatch)
    result = execute(problem, plan, "readiness-gated", SHELL, options=FAST)
    assert result.ok
    assert not result.interrupted
    assert fake.starts() == {"a": 1, "b": 1, "c": 1, "d": 1}
    starts = [r for r in result.records if r.kind == "start"]
    ready = {r.guest: r.t_s for r in result.records if r.kind == "ready"}
    # The declared SAN load lets one boot at a time: each starts after the one before is up.
    for before, after in itertools.pairwise(starts):
        assert after.t_s >= ready[before.guest]
    assert starts[0].argv == (("fakectl", "start", "a", "h1"),)
    for guest in result.guests:
        assert guest.status == "ready"
        assert guest.attempts == 1
        assert guest.ready_s is not None
        assert guest.started_s is not None
        assert guest.ready_s > guest.started_s


def test_a_failed_start_is_retried_and_a_second_failure_gives_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem, plan = chain_of_four(retries=1)
    fake = _fake(tmp_path, monkeypatch, b={"fail_starts": 1}, c={"fail_starts": 2})
    result = execute(problem, plan, "readiness-gated", SHELL, options=FAST)
    assert result.ready == ("a", "b", "d")
    assert result.gave_up == ("c",)
    assert _kinds(result, "b") == ["start", "failed", "start", "returned", "ready"]
    assert _kinds(result, "c") == ["start", "failed", "start", "gave_up"]
    failed = next(r for r in result.records if r.kind == "failed" and r.guest == "b")
    assert "fakectl start exited 1" in (failed.why or "")
    retry = [r for r in result.records if r.kind == "start" and r.guest == "b"][1]
    assert retry.action == "retry"
    assert retry.attempt == 2
    assert "retry 1 of 1" in (retry.why or "")
    # The retry waits the problem's retry delay (10 plan seconds).
    assert retry.t_s >= failed.t_s + 10
    assert fake.starts()["c"] == 2
    assert "fakectl start exited 1" in (next(g for g in result.guests if g.guest == "c").why or "")


def test_a_guest_never_ready_times_out_and_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem, plan = chain_of_four(retries=0)
    fake = _fake(tmp_path, monkeypatch, a={"never_ready": True})
    options = LiveOptions(poll_s=0.03, time_scale=0.01, ready_timeout_s=0.4)
    result = execute(problem, plan, "readiness-gated", SHELL, options=options)
    assert result.gave_up == ("a",)
    gave_up = next(r for r in result.records if r.kind == "gave_up")
    assert "not ready after 0.4 s" in (gave_up.why or "")
    assert gave_up.argv == (("fakectl", "stop", "a"),)
    assert fake.state()["guests"]["a"]["started"] is None
    # A dependency that gave up no longer holds its dependants back.
    assert set(result.ready) == {"b", "c", "d"}


def test_a_crash_while_booting_is_a_failed_attempt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem, plan = chain_of_four(retries=0)
    _fake(tmp_path, monkeypatch, a={"crash": True, "boot_s": 0.3})
    result = execute(problem, plan, "readiness-gated", SHELL, options=FAST)
    assert result.gave_up == ("a",)
    assert "exited 3" in (next(r for r in result.records if r.kind == "gave_up").why or "")


def test_a_host_going_down_loses_its_guests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem, plan = chain_of_four()
    fake = _fake(tmp_path, monkeypatch, a={"boot_s": 5.0})

    def down_once_a_starts(record: Record) -> None:
        if record.kind == "returned" and record.guest == "a":
            fake.update(down=["h1"])

    result = execute(
        problem, plan, "readiness-gated", SHELL, options=FAST, on_record=down_once_a_starts
    )
    kinds = [(r.kind, r.guest, r.host) for r in result.records]
    assert ("host_down", None, "h1") in kinds
    assert ("lost", "a", "h1") in kinds
    assert "a" in result.lost
    # c was planned on h1: its start finds the host down and it is lost too.
    assert "c" in result.lost
    assert fake.starts()["c"] == 0
    assert set(result.ready) == {"b", "d"}


def test_a_stop_dispatches_nothing_more_and_reports_what_boots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem, plan = chain_of_four()
    fake = _fake(tmp_path, monkeypatch, b={"boot_s": 5.0})
    token = StopToken()

    def stop_when_b_returns(record: Record) -> None:
        if record.kind == "returned" and record.guest == "b":
            token.stop()

    result = execute(
        problem,
        plan,
        "readiness-gated",
        SHELL,
        options=FAST,
        stop=token,
        on_record=stop_when_b_returns,
    )
    assert result.interrupted
    assert result.ready == ("a",)
    assert result.booting == ("b",)
    assert set(result.never_started) == {"c", "d"}
    stop = next(r for r in result.records if r.kind == "stop")
    assert "still booting: b on h2" in (stop.why or "")
    assert fake.starts() == {"a": 1, "b": 1, "c": 0, "d": 0}
    assert result.records[-1].kind == "summary"
    assert result.records[-1].data["interrupted"]


# --- the journal and a restart -----------------------------------------------------------------


def test_a_start_stopped_before_its_commands_ran_is_withdrawn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem, plan = chain_of_four()
    fake = _fake(tmp_path, monkeypatch)
    journal = tmp_path / "run.jsonl"
    token = StopToken()

    def stop_at_bs_start(record: Record) -> None:
        if record.kind == "start" and record.guest == "b":
            token.stop()  # b's start line is written; its command has not run

    first = execute(
        problem,
        plan,
        "readiness-gated",
        SHELL,
        options=FAST,
        journal=journal,
        stop=token,
        on_record=stop_at_bs_start,
    )
    assert first.interrupted
    assert [(r.kind, r.guest) for r in first.records][-3:-1] == [("cancelled", "b"), ("stop", None)]
    assert first.ready == ("a",)
    assert set(first.never_started) == {"b", "c", "d"}
    assert fake.starts()["b"] == 0
    second = execute(problem, plan, "readiness-gated", SHELL, options=FAST, journal=journal)
    assert second.resumed
    assert second.ok
    assert [r.guest for r in second.records if r.kind == "adopted"] == ["a"]
    assert fake.starts() == {"a": 1, "b": 1, "c": 1, "d": 1}
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [line["kind"] for line in lines].count("begin") == 2
    # The second run's clock goes on from the first's.
    begins = [line for line in lines if line["kind"] == "begin"]
    assert begins[1]["t_s"] >= max(line["t_s"] for line in lines[: lines.index(begins[1])])


def test_a_guest_the_journal_started_that_is_not_up_is_never_started_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem, plan = chain_of_four()
    fake = _fake(tmp_path, monkeypatch, b={"boot_s": 5.0})
    journal = tmp_path / "run.jsonl"
    token = StopToken()

    def crash_when_b_returns(record: Record) -> None:
        if record.kind == "returned" and record.guest == "b":
            token.stop()

    execute(
        problem,
        plan,
        "readiness-gated",
        SHELL,
        options=FAST,
        journal=journal,
        stop=token,
        on_record=crash_when_b_returns,
    )
    fake.guest("b", started=None)  # b died while no executor watched
    second = execute(problem, plan, "readiness-gated", SHELL, options=FAST, journal=journal)
    adopted = {r.guest: r.why for r in second.records if r.kind == "adopted"}
    assert set(adopted) == {"a", "b"}
    # b is followed until its ready timeout, then given up: never started a second time.
    assert second.gave_up == ("b",)
    gave_up = next(r for r in second.records if r.kind == "gave_up")
    assert "not ready after 2 s" in (gave_up.why or "")
    assert fake.starts() == {"a": 1, "b": 1, "c": 1, "d": 1}


def test_a_restart_follows_a_guest_still_booting_and_adopts_one_already_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem, plan = chain_of_four()
    fake = _fake(tmp_path, monkeypatch, b={"boot_s": 1.0})
    journal = tmp_path / "run.jsonl"
    token = StopToken()

    def crash_when_b_returns(record: Record) -> None:
        if record.kind == "returned" and record.guest == "b":
            token.stop()

    execute(
        problem,
        plan,
        "readiness-gated",
        SHELL,
        options=FAST,
        journal=journal,
        stop=token,
        on_record=crash_when_b_returns,
    )
    # Someone started c by hand on its planned host meanwhile.
    fake.guest("c", host="h1", started=0.0)
    second = execute(problem, plan, "readiness-gated", SHELL, options=FAST, journal=journal)
    assert second.ok
    adopted = {r.guest: r.why or "" for r in second.records if r.kind == "adopted"}
    assert "started by an earlier run" in adopted["b"]
    assert "exited 1" in adopted["b"]
    assert "found on its planned host" in adopted["c"]
    assert fake.starts() == {"a": 1, "b": 1, "c": 0, "d": 1}
    # b, still booting when the first run died, is followed until it is ready.
    assert "b" in {r.guest for r in second.records if r.kind == "ready"}


def test_a_journal_of_another_plan_or_torn_by_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem, plan = chain_of_four()
    _fake(tmp_path, monkeypatch)
    journal = tmp_path / "run.jsonl"
    execute(problem, plan, "readiness-gated", SHELL, options=FAST, journal=journal)
    with journal.open("a") as file:
        file.write('{"v": 1, "t_s": 3.0, "kind": "sta')  # the line being written at a crash
    assert Journal(journal).records()[-1].kind == "summary"
    other = Plan(Status.FEASIBLE, "hand", 0.0, [Assignment("a", "h2", Action.START, 0, 30)])
    with pytest.raises(InvalidInputError, match="another problem or plan"):
        execute(problem, other, "readiness-gated", SHELL, options=FAST, journal=journal)
    # The torn line goes and the next run appends after the last whole one.
    second = execute(problem, plan, "readiness-gated", SHELL, options=FAST, journal=journal)
    assert second.resumed
    assert second.ok
    assert Journal(journal).records()[-1].kind == "summary"
    assert '"kind": "sta' not in journal.read_text()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('not json\n{"v": 1, "t_s": 0, "kind": "begin"}\n')
    with pytest.raises(InvalidInputError, match="line 1"):
        execute(problem, plan, "readiness-gated", SHELL, options=FAST, journal=bad)


def test_bad_input_is_refused_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem, plan = chain_of_four()
    fake = _fake(tmp_path, monkeypatch)
    unknown = Plan(Status.FEASIBLE, "hand", 0.0, [Assignment("zz", "h1", Action.START, 0, 30)])
    with pytest.raises(InvalidInputError, match="unknown guest 'zz'"):
        execute(problem, unknown, "readiness-gated", SHELL, options=FAST)
    with pytest.raises(InvalidInputError, match="nothing to carry out"):
        execute(problem, Plan(Status.INFEASIBLE, "hand", 0.0, []), "readiness-gated", SHELL)
    with pytest.raises(ValueError, match="unknown policy"):
        execute(problem, plan, "no-such-policy", SHELL, options=FAST)
    with pytest.raises(ValueError, match="poll"):
        LiveOptions(poll_s=0)
    assert fake.calls() == []


def test_offsets_read_like_a_clock() -> None:
    assert format_offset(35) == "+00:35"
    assert format_offset(3723) == "+1:02:03"
    assert format_offset(-1) == "+00:00"


def test_the_running_page_documents_every_journal_kind_and_field_and_driver() -> None:
    from placement.run_cli import DRIVERS

    page = (Path(__file__).parent.parent / "docs" / "running.md").read_text()
    for kind in KINDS:
        assert f"| `{kind}` |" in page, kind
    fields = set(
        Record(
            kind="begin",
            t_s=0,
            guest="g",
            host="h",
            action="start",
            attempt=1,
            why="w",
            argv=[["x"]],
        ).to_dict()
    )
    for field in fields - {"kind"}:
        assert f"`{field}`" in page, field
    for name in DRIVERS:
        assert f"--driver {name}" in page or f"`{name}`" in page, name


def test_booting_guests_are_probed_in_parallel() -> None:
    """Eight guests boot at once and each probe takes 0.2 s: a poll round takes about
    one probe's time, not eight (a cluster reached over ssh answers slowly)."""
    import threading
    import time

    from placement.execute import Completed

    names = [f"g{i}" for i in range(8)]
    problem = Problem(
        hosts=[Host("h1", {"ram_mib": 65536})],
        guests=[
            Guest(n, {"ram_mib": 1024}, boot=BootProfile(duration_s=30, load={"san": 10}))
            for n in names
        ],
        boot_pools={"san": 100},
        schedule=Schedule(stagger_s=0),
    )
    plan = Plan(
        Status.FEASIBLE, "hand", 0.0, [Assignment(n, "h1", Action.START, 0, 30) for n in names]
    )
    probes: dict[str, int] = {}
    lock = threading.Lock()

    def runner(argv: tuple[str, ...]) -> Completed:
        if argv[0] == "start":
            return Completed(argv, 0)
        time.sleep(0.2)
        with lock:
            probes[argv[1]] = probes.get(argv[1], 0) + 1
            return Completed(argv, 0 if probes[argv[1]] >= 2 else 1)

    driver = ShellDriver(start_command=("start", "{guest}"), ready_command=("ready", "{guest}"))
    began = time.perf_counter()
    result = execute(problem, plan, "all-at-once", driver, options=FAST, runner=runner)
    elapsed = time.perf_counter() - began
    assert result.ok
    assert probes == dict.fromkeys(names, 2)
    assert elapsed < 1.6  # one after another: 16 probes x 0.2 s = 3.2 s


def test_live_replan_restarts_the_guests_of_a_host_that_went_down_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem, plan = chain_of_four()
    fake = _fake(tmp_path, monkeypatch, a={"boot_s": 0.6})

    def h1_dies_under_a(record: Record) -> None:
        if record.kind == "returned" and record.guest == "a":
            fake.update(down=["h1"])

    result = execute(
        problem, plan, "replan:best-fit", SHELL, options=PATIENT, on_record=h1_dies_under_a
    )
    assert result.ok, result.guests
    assert {g.guest: g.host for g in result.guests} == dict.fromkeys("abcd", "h2")
    assert [(r.kind, r.host) for r in result.records if r.guest == "a"][:3] == [
        ("start", "h1"),
        ("returned", "h1"),
        ("lost", "h1"),
    ]
    decisions = [r.why or "" for r in result.records if r.kind == "decision"]
    assert any("re-plan (host h1 down) in force" in text for text in decisions)
    assert result.policy_stats["replans"] >= 1
    # Done once every guest is up, though the re-planner still watches for late boots.
    last_ready = max(g.ready_s or 0.0 for g in result.guests)
    assert result.end_s < last_ready + 10
    # a booted on h1 when h1 died: started again on h2, once; nothing else twice.
    starts = [c[2:] for c in fake.calls("fakectl") if c[1] == "start"]
    assert sorted(starts) == [["a", "h1"], ["a", "h2"], ["b", "h2"], ["c", "h2"], ["d", "h2"]]


def test_a_journal_another_run_holds_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem, plan = chain_of_four()
    fake = _fake(tmp_path, monkeypatch)
    journal = tmp_path / "run.jsonl"
    holder = Journal(journal)
    holder.acquire()
    with pytest.raises(InvalidInputError, match="in use by another placement run"):
        execute(problem, plan, "readiness-gated", SHELL, options=FAST, journal=journal)
    assert fake.calls() == []
    holder.close()
    assert execute(problem, plan, "readiness-gated", SHELL, options=FAST, journal=journal).ok


def test_a_restart_keeps_a_host_the_earlier_run_saw_go_down_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run 1 loses a with h1 and dies; run 2 (re-planning) knows h1 is down, does not
    take a for started, and starts it on h2: once on each host in all."""
    problem, plan = chain_of_four()
    fake = _fake(tmp_path, monkeypatch, a={"boot_s": 0.6})
    journal = tmp_path / "run.jsonl"
    token = StopToken()

    def h1_dies_then_the_executor(record: Record) -> None:
        if record.kind == "returned" and record.guest == "a":
            fake.update(down=["h1"])
        if record.kind == "lost":
            token.stop()

    first = execute(
        problem,
        plan,
        "readiness-gated",
        SHELL,
        options=FAST,
        journal=journal,
        stop=token,
        on_record=h1_dies_then_the_executor,
    )
    assert first.lost == ("a",)
    second = execute(problem, plan, "replan:best-fit", SHELL, options=PATIENT, journal=journal)
    assert second.ok, second.guests
    assert [r.host for r in second.records if r.kind == "host_down"] == ["h1"]
    assert not [r for r in second.records if r.kind == "adopted" and r.guest == "a"]
    starts = sorted(c[2:] for c in fake.calls("fakectl") if c[1] == "start")
    assert starts == [["a", "h1"], ["a", "h2"], ["b", "h2"], ["c", "h2"], ["d", "h2"]]


class _MemoryHypervisor:
    """An in-memory stand-in for a tool, as a command runner: `start GUEST HOST` and
    `ready GUEST HOST` (ready `duration_s * scale` real seconds after its start)."""

    def __init__(self, problem: Problem, scale: float) -> None:
        import threading

        self.boot_s = {g.name: g.boot.duration_s * scale for g in problem.guests}
        self.running: dict[str, tuple[str, float]] = {}
        self.starts: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, argv: tuple[str, ...]) -> Completed:
        import time

        verb, guest, host = argv
        with self.lock:
            if verb == "start":
                if guest in self.running:
                    return Completed(argv, 1, "", "already running")
                self.running[guest] = (host, time.monotonic())
                self.starts[guest] = self.starts.get(guest, 0) + 1
                return Completed(argv, 0)
            where, at = self.running.get(guest, ("", math.inf))
            up = where == host and time.monotonic() - at >= self.boot_s[guest]
            return Completed(argv, 0 if up else 1)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_guests=8))
def test_live_readiness_gated_brings_any_valid_plan_up_in_dependency_order(
    problem: Problem,
) -> None:
    from placement.check import check

    plan = solve(problem, "first-fit", SolveOptions(schedule="list"))
    if not check(problem, plan).ok:
        return
    scale = 0.002  # a 120-second boot takes 0.24 s
    tool = _MemoryHypervisor(problem, scale)
    driver = ShellDriver(
        start_command=("start", "{guest}", "{host}"), ready_command=("ready", "{guest}", "{host}")
    )
    options = LiveOptions(poll_s=0.005, time_scale=scale, ready_timeout_s=5.0)
    result = execute(problem, plan, "readiness-gated", driver, options=options, runner=tool)
    assert result.ok, result.guests
    starting = [a.guest for a in plan.assignments if a.action is Action.START]
    moving = [a.guest for a in plan.assignments if a.action is Action.MIGRATE]
    # (Without a migrate command the shell driver moves a guest with its start command.)
    assert tool.starts == dict.fromkeys([*starting, *moving], 1)
    started = {r.guest: r.t_s for r in result.records if r.kind == "start"}
    ready = {r.guest: r.t_s for r in result.records if r.kind == "ready"}
    for name in starting:
        # Never before a dependency is ready, never ready before its boot is done.
        for dependency in problem.guest(name).boot.after:
            if dependency in starting:
                assert started[name] >= ready[dependency]
        assert ready[name] >= started[name] + problem.guest(name).boot.duration_s - 1e-6
