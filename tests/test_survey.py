"""The failure survey: scenarios built from a state, each planned and checked, and the
verdict. Clusters are built by hand to be N+1 safe or not, so that the verdict and the
guests at risk can be worked out on paper."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from placement.cli import main
from placement.codec import dump_problem, load_problem_file
from placement.executors import InlineExecutor, ProcessExecutor
from placement.model import Guest, GuestState, Host, HostState, Problem
from placement.survey import (
    FailureScenario,
    SurveyError,
    SurveyOptions,
    domain_failures,
    failure_scenarios,
    failure_scenarios_from,
    pair_failures,
    plan_failure,
    single_host_failures,
    survey,
    survey_to_dict,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "ops" / "cluster-state.json"
FAST = SurveyOptions(time_limit_s=2, deterministic=True)
GIB = 1024


def _cluster(per_host: list[list[tuple[str, int, int]]], ram_gib: int = 64) -> Problem:
    """Hosts h1.. of `ram_gib` GiB in racks r1/r2 alternately; `per_host[i]` lists the
    (name, RAM GiB, priority) of the guests running on host i."""
    hosts = [
        Host(f"h{i + 1}", {"ram_mib": ram_gib * GIB}, domain=f"r{i % 2 + 1}")
        for i in range(len(per_host))
    ]
    guests = [
        Guest(
            name,
            {"ram_mib": ram * GIB},
            priority=priority,
            current_host=f"h{i + 1}",
            state=GuestState.RUNNING,
        )
        for i, members in enumerate(per_host)
        for name, ram, priority in members
    ]
    return Problem(hosts=hosts, guests=guests)


@pytest.fixture(scope="module")
def n1_safe() -> Problem:
    """Three 64 GiB hosts, each running two 16 GiB guests: any one host's two guests fit
    in the 32 GiB each survivor has left."""
    return _cluster([[(f"{h}{k}", 16, 1) for k in (1, 2)] for h in "abc"])


@pytest.fixture(scope="module")
def n1_unsafe() -> Problem:
    """Three 64 GiB hosts, each running three 16 GiB guests (two of priority 3 and one of
    priority 0, `a3`, `b3`, `c3`): a failure leaves 2 x 16 GiB free for 3 x 16 GiB, so the
    priority-0 guest of the failed host stays down in each scenario."""
    return _cluster([[(f"{h}1", 16, 3), (f"{h}2", 16, 3), (f"{h}3", 16, 0)] for h in "abc"])


def test_scenario_kinds_follow_the_state(n1_safe: Problem) -> None:
    assert [s.failed for s in single_host_failures(n1_safe)] == [("h1",), ("h2",), ("h3",)]
    assert [(s.name, s.failed) for s in domain_failures(n1_safe)] == [
        ("r1", ("h1", "h3")),
        ("r2", ("h2",)),
    ]
    assert [s.name for s in pair_failures(n1_safe)] == ["h1+h2", "h1+h3", "h2+h3"]
    assert failure_scenarios(n1_safe, "pairs") == pair_failures(n1_safe)


def test_hosts_already_down_are_not_failed_again(n1_safe: Problem) -> None:
    hosts = [
        Host(h.name, h.capacity, state=HostState.MAINTENANCE) if h.name == "h2" else h
        for h in n1_safe.hosts
    ]
    state = Problem(hosts=hosts, guests=[g for g in n1_safe.guests if g.current_host != "h2"])
    assert [s.name for s in single_host_failures(state)] == ["h1", "h3"]


def test_bad_scenario_requests_name_the_place(n1_safe: Problem) -> None:
    with pytest.raises(SurveyError, match="unknown kind 'racks'"):
        failure_scenarios(n1_safe, "racks")
    with pytest.raises(SurveyError, match=r"f\.json\[1\]\[0\]: unknown host \"h9\""):
        failure_scenarios_from(n1_safe, [["h1"], ["h9"]], "f.json")
    with pytest.raises(SurveyError, match=r"f\.json\[0\]\.failed: expected a non-empty list"):
        failure_scenarios_from(n1_safe, [{"name": "x", "failed": []}], "f.json")
    with pytest.raises(SurveyError, match="unknown key 'hosts'"):
        failure_scenarios_from(n1_safe, [{"hosts": ["h1"]}], "f.json")
    no_domains = Problem(
        hosts=[Host(h.name, h.capacity) for h in n1_safe.hosts], guests=n1_safe.guests
    )
    with pytest.raises(SurveyError, match="no online host names a failure domain"):
        domain_failures(no_domains)
    listed = failure_scenarios_from(
        n1_safe, {"scenarios": [{"name": "both", "failed": ["h1", "h2"]}]}, "f"
    )
    assert listed == [FailureScenario("both", ("h1", "h2"))]


def test_a_cluster_built_n1_safe_is_reported_safe(n1_safe: Problem) -> None:
    result = survey(n1_safe, "hosts", FAST)
    assert result.verdict.safe
    assert result.verdict.unsafe == ()
    assert result.verdict.at_risk == ()
    for outcome in result.outcomes:
        assert outcome.valid
        assert outcome.safe
        assert outcome.placed == outcome.guests == 6
        assert len(outcome.to_restart) == 2
        assert outcome.migrations == 0
        assert outcome.makespan_s > 0  # two guests booted


def test_a_cluster_built_unsafe_names_the_guests_at_risk(n1_unsafe: Problem) -> None:
    result = survey(n1_unsafe, "hosts", FAST)
    assert not result.verdict.safe
    assert set(result.verdict.unsafe) == {"h1", "h2", "h3"}
    # Exactly the priority-0 guest of each failed host is left, once each.
    assert sorted(result.verdict.at_risk) == [("a3", 1, 0), ("b3", 1, 0), ("c3", 1, 0)]
    for outcome in result.outcomes:
        failed_host = outcome.scenario.failed[0]
        expected = {"h1": "a3", "h2": "b3", "h3": "c3"}[failed_host]
        assert [u.guest for u in outcome.unplaced] == [expected]
        assert outcome.unplaced[0].reason  # the blocking rule is named
        assert outcome.valid


def test_min_priority_protects_only_the_guests_that_matter(n1_unsafe: Problem) -> None:
    options = SurveyOptions(time_limit_s=2, deterministic=True, min_priority=1)
    result = survey(n1_unsafe, "hosts", options)
    assert result.verdict.safe  # the priority-3 guests always restart
    assert all(len(o.unplaced) == 1 for o in result.outcomes)


def test_a_rack_failure_is_worse_than_any_host_failure(n1_safe: Problem) -> None:
    result = survey(n1_safe, "domains", FAST)
    # r1 holds h1 and h3: their four guests need 64 GiB, h2 has 32 GiB left.
    assert result.verdict.worst[0] == "r1"
    assert not result.verdict.safe
    rack = result.outcomes[0]
    assert rack.scenario.name == "r1"
    assert len(rack.unplaced) == 2


def test_pinned_first_is_the_full_failover_when_everything_fits() -> None:
    """Pinned running guests change nothing when every guest fits: the recovery equals
    the full failover's with its migrations held at 0."""
    from placement.operations import failover
    from placement.solvers import SolveOptions, solve

    state = load_problem_file(EXAMPLE)
    outcome = plan_failure(state, FailureScenario("node1", ("node1",)), FAST)
    assert outcome.pinned
    assert outcome.safe
    problem = failover(state, ["node1"], objective=FAST.objective)
    full = solve(problem, "cpsat", SolveOptions(time_limit_s=5, deterministic=True))
    stage = full.stage("recovery")
    assert stage is not None
    assert stage.gap == 0.0
    assert outcome.recovery == stage.value


def test_full_failover_runs_when_moving_a_guest_makes_room() -> None:
    """h1 (32 GiB) runs a 24 GiB guest; h2 (32 GiB) runs two 8 GiB guests, h3 (32 GiB)
    a 20 GiB one. When h1 fails, its guest fits only if h2's two small guests move to h3
    (12 GiB free there for 16 GiB: one moves) -- h2 then has 24 free."""
    state = Problem(
        hosts=[Host(f"h{i}", {"ram_mib": 32 * GIB}) for i in (1, 2, 3)],
        guests=[
            Guest("big", {"ram_mib": 24 * GIB}, current_host="h1", state="running"),
            Guest("s1", {"ram_mib": 8 * GIB}, current_host="h2", state="running"),
            Guest("s2", {"ram_mib": 8 * GIB}, current_host="h2", state="running"),
            Guest("mid", {"ram_mib": 20 * GIB}, current_host="h3", state="running"),
        ],
    )
    outcome = plan_failure(state, FailureScenario("h1", ("h1",)), FAST)
    assert not outcome.pinned
    assert outcome.safe
    assert outcome.migrations == 1


def test_local_processes_give_the_inline_results(n1_unsafe: Problem) -> None:
    inline = survey(n1_unsafe, "pairs", FAST, executor=InlineExecutor())
    with ProcessExecutor(2) as executor:
        pooled = survey(n1_unsafe, "pairs", FAST, executor=executor)
    assert _comparable(pooled) == _comparable(inline)


def _comparable(result: object) -> dict[str, object]:
    document = survey_to_dict(result)  # type: ignore[arg-type]
    for key in ("wall_s", "executor"):
        document.pop(key)
    for scenario in document["scenarios"]:
        scenario.pop("runtime_s")
    return document


def test_on_result_reports_each_scenario_once(n1_safe: Problem) -> None:
    seen: list[tuple[int, int, str]] = []
    survey(n1_safe, "hosts", FAST, on_result=lambda d, t, o: seen.append((d, t, o.scenario.name)))
    assert [d for d, _, _ in seen] == [1, 2, 3]
    assert {name for _, _, name in seen} == {"h1", "h2", "h3"}


# --- the command line --------------------------------------------------------------------


def _write(path: Path, problem: Problem) -> Path:
    path.write_text(json.dumps(dump_problem(problem)))
    return path


def test_cli_safe_cluster_exits_0(
    tmp_path: Path, n1_safe: Problem, capsys: pytest.CaptureFixture[str]
) -> None:
    state = _write(tmp_path / "state.json", n1_safe)
    code = main(
        ["survey", str(state), "--jobs", "1", "--deterministic", "-o", str(tmp_path / "s.json")]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "verdict: N+1 safe" in out
    document = json.loads((tmp_path / "s.json").read_text())
    assert document["verdict"]["safe"] is True
    assert [s["failed"] for s in document["scenarios"]] == [["h1"], ["h2"], ["h3"]]


def test_cli_unsafe_cluster_exits_1_with_json(
    tmp_path: Path, n1_unsafe: Problem, capsys: pytest.CaptureFixture[str]
) -> None:
    state = _write(tmp_path / "state.json", n1_unsafe)
    code = main(["survey", str(state), "--jobs", "1", "--deterministic", "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 1
    assert document["verdict"]["safe"] is False
    first = document["scenarios"][0]
    assert set(first) >= {"failed", "placed", "unplaced", "recovery", "makespan_s"}
    assert first["unplaced"][0]["guest"] == "a3"
    assert first["unplaced"][0]["reason"]
    assert {r["guest"] for r in document["verdict"]["at_risk"]} == {"a3", "b3", "c3"}


def test_cli_unsafe_table_names_the_guests_at_risk(
    tmp_path: Path, n1_unsafe: Problem, capsys: pytest.CaptureFixture[str]
) -> None:
    state = _write(tmp_path / "state.json", n1_unsafe)
    assert main(["survey", str(state), "--jobs", "1", "--deterministic"]) == 1
    out = capsys.readouterr().out
    assert "verdict: NOT N+1 safe: 3 of 3 scenario(s)" in out
    assert "at risk: a3 (priority 0) in 1" in out
    assert "unplaced when h1 fails:" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--fail", "racks"], "--fail: 'racks' is neither hosts, domains, pairs nor a file"),
        (["--time-limit", "0"], "--time-limit must be > 0"),
        (["--jobs", "0"], "--jobs must be >= 1"),
        (["--solver", "nope"], "unknown solver 'nope'"),
        (["--objective", "placed,speed"], "--objective: unknown stage 'speed'"),
        (["--plot", "x.gif"], "--plot: x.gif: the file name must end in .png"),
    ],
)
def test_cli_bad_options_exit_2_with_one_line(
    tmp_path: Path,
    n1_safe: Problem,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    state = _write(tmp_path / "state.json", n1_safe)
    assert main(["survey", str(state), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_cli_failure_file_errors_name_the_file(
    tmp_path: Path, n1_safe: Problem, capsys: pytest.CaptureFixture[str]
) -> None:
    state = _write(tmp_path / "state.json", n1_safe)
    listed = tmp_path / "fail.json"
    listed.write_text(json.dumps([["h1", "h2"], ["h7"]]))
    assert main(["survey", str(state), "--fail", str(listed)]) == 2
    assert f'{listed}[1][0]: unknown host "h7"' in capsys.readouterr().err
    listed.write_text("[[")
    assert main(["survey", str(state), "--fail", str(listed)]) == 2
    assert f"{listed}: not JSON" in capsys.readouterr().err


def test_cli_failure_file_runs_those_scenarios(
    tmp_path: Path, n1_safe: Problem, capsys: pytest.CaptureFixture[str]
) -> None:
    state = _write(tmp_path / "state.json", n1_safe)
    listed = tmp_path / "fail.json"
    listed.write_text(json.dumps([{"name": "left", "failed": ["h1", "h2"]}]))
    assert main(["survey", str(state), "--fail", str(listed), "--jobs", "1", "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in document["scenarios"]] == ["left"]
    assert document["kind"] == "listed"


def test_cli_plot_is_written(tmp_path: Path, n1_unsafe: Problem) -> None:
    pytest.importorskip("matplotlib")
    state = _write(tmp_path / "state.json", n1_unsafe)
    image = tmp_path / "survey.png"
    assert main(["survey", str(state), "--jobs", "1", "--plot", str(image)]) == 1
    assert image.read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# --- admission ---------------------------------------------------------------------------


def test_admission_places_a_guest_where_the_cluster_stays_safe(n1_safe: Problem) -> None:
    from placement.admission import admit, new_guest

    guest = new_guest(n1_safe, {"name": "new", "demand": {"ram_mib": 16 * GIB}, "priority": 2})
    answer = admit(n1_safe, guest, "hosts", FAST)
    assert answer.baseline.verdict.safe
    assert answer.admitted
    assert answer.host in {"h1", "h2", "h3"}
    chosen = next(c for c in answer.tried if c.host == answer.host)
    assert chosen.survey is not None
    # The guest runs on its host in that survey: it restarts when that host fails.
    own = next(o for o in chosen.survey.outcomes if o.scenario.failed == (answer.host,))
    assert "new" in own.to_restart


def test_admission_refuses_a_guest_that_breaks_n1() -> None:
    """Two 64 GiB hosts with two 16 GiB guests each are N+1 safe (32 GiB free on the
    survivor); a third 16 GiB guest on either host leaves 48 GiB to restart into 32 when
    that host fails, and 32 GiB into 16 when the other one does."""
    from placement.admission import admit, new_guest

    state = _cluster([[("a1", 16, 1), ("a2", 16, 1)], [("b1", 16, 1), ("b2", 16, 1)]])
    guest = new_guest(state, {"name": "new", "demand": {"ram_mib": 16 * GIB}})
    answer = admit(state, guest, "hosts", FAST)
    assert answer.baseline.verdict.safe
    assert not answer.admitted
    assert answer.host is None
    assert [c.host for c in answer.tried] == ["h1", "h2"]
    for candidate in answer.tried:
        assert candidate.slack < 0  # 32 GiB free for 48 GiB lost
        assert candidate.survey is not None
        assert set(candidate.survey.verdict.unsafe) == {"h1", "h2"}


def test_admission_candidates_respect_capacity_and_anti_affinity(n1_safe: Problem) -> None:
    from placement.admission import candidate_hosts, new_guest

    hosts = n1_safe.hosts
    guests = [
        Guest(g.name, g.demand, current_host=g.current_host, state="running", anti_affinity=["db"])
        if g.name == "a1"
        else g
        for g in n1_safe.guests
    ]
    state = Problem(hosts=hosts, guests=guests)
    replica = new_guest(
        state, {"name": "db2", "demand": {"ram_mib": 8 * GIB}, "anti_affinity": ["db"]}
    )
    assert candidate_hosts(state, replica) == ["h2", "h3"]
    too_big = new_guest(state, {"name": "huge", "demand": {"ram_mib": 40 * GIB}})
    assert candidate_hosts(state, too_big) == []


def test_new_guest_errors_are_relative_to_its_file(n1_safe: Problem) -> None:
    from placement.admission import new_guest
    from placement.errors import InvalidProblemError

    with pytest.raises(InvalidProblemError) as caught:
        new_guest(n1_safe, {"name": "a1", "demand": {"ram_mib": -1}})
    paths = {(e.path, e.message.split(",")[0]) for e in caught.value.errors}
    assert ("demand.ram_mib", "must be >= 0") in paths
    assert any("duplicate guest name 'a1'" in e.message for e in caught.value.errors)
    with pytest.raises(InvalidProblemError, match="give one guest"):
        new_guest(n1_safe, [{"name": "x", "demand": {}}, {"name": "y", "demand": {}}])


def test_cli_admit_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = _write(
        tmp_path / "state.json",
        _cluster([[("a1", 16, 1), ("a2", 16, 1)], [("b1", 16, 1), ("b2", 16, 1)]]),
    )
    small = tmp_path / "small.json"
    small.write_text(json.dumps({"name": "new", "demand": {"ram_mib": 4 * GIB}}))
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"name": "new", "demand": {"ram_mib": 16 * GIB}}))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "new", "demand": {"ram_mib": "lots"}}))
    base = ["survey", str(state), "--jobs", "1", "--deterministic", "--admit"]
    # Even 4 GiB more breaks N+1: its host's 36 GiB would restart into 32 GiB.
    assert main([*base, str(small)]) == 1
    out = capsys.readouterr().out
    assert "without new: N+1 safe (2 scenarios)" in out
    assert "do not admit new: no host tried keeps the cluster N+1 safe" in out
    assert main([*base, str(big), "--json"]) == 1
    document = json.loads(capsys.readouterr().out)["admission"]
    assert document["admitted"] is False
    assert document["baseline"]["safe"] is True
    assert [c["host"] for c in document["candidates"]] == ["h1", "h2"]
    assert main([*base, str(bad)]) == 2
    assert f"{bad}: demand.ram_mib:" in capsys.readouterr().err


def test_simulate_runs_each_scenario_plan_through_the_simulator(
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = load_problem_file(EXAMPLE)
    options = SurveyOptions(time_limit_s=1.0, simulate_runs=5, simulate_sigma=0.3)
    scenario = single_host_failures(state)[0]
    outcome = plan_failure(state, scenario, options)
    figures = outcome.simulated
    assert figures is not None
    assert figures.runs == 5
    assert figures.policy == "readiness-backfill"
    # Run by readiness, the plan keeps its pools within their limits whatever the boots do.
    assert figures.peak_pool_ratio <= 1.0 + 1e-9
    assert figures.recovery_p95 > 0
    # Without noise the simulated recovery is at most the planned one (backfill may only
    # start guests earlier than planned).
    exact = plan_failure(state, scenario, attrs.evolve(options, simulate_sigma=0.0))
    assert exact.simulated is not None
    assert exact.simulated.recovery_p95 <= exact.recovery + 1e-6
    assert plan_failure(state, scenario, attrs.evolve(options, simulate_runs=0)).simulated is None
    with pytest.raises(SurveyError, match="policy"):
        SurveyOptions(simulate_runs=2, simulate_policy="fastest")
    code = main(["survey", str(EXAMPLE), "--time-limit", "1", "--simulate", "3", "--json"])
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert all(s["simulated"]["runs"] == 3 for s in document["scenarios"])
