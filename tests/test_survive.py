"""The N+1-safe rebalance: a robust placement model (CP-SAT) with reserved failover
capacity per scenario, verified by a survey, and its migrations planned and checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from placement.cli import main
from placement.codec import dump_problem
from placement.model import Guest, Host, Problem
from placement.survey import SurveyOptions, survey
from placement.survive import SurviveOptions, robust_placement, survive

GIB = 1024
VERIFY = SurveyOptions(time_limit_s=2, deterministic=True)


def _options(max_moves: int | None, **extra: object) -> SurviveOptions:
    return SurviveOptions(
        max_moves=max_moves,
        time_limit_s=5,
        deterministic=True,
        survey=VERIFY,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def fragmented() -> Problem:
    """Four 64 GiB nodes: `big` (48 GiB, priority 3) on node1 and one 24 GiB guest on
    each other node. There is room in total, but when node1 fails no node has 48 GiB
    free (40 each) unless a 24 GiB guest joins another one first: one move makes the
    cluster N+1 safe without live migrations during the recovery."""
    hosts = [Host(f"node{i}", {"ram_mib": 64 * GIB}) for i in (1, 2, 3, 4)]
    guests = [
        Guest("big", {"ram_mib": 48 * GIB}, priority=3, current_host="node1", state="running")
    ] + [
        Guest(f"vm{i}", {"ram_mib": 24 * GIB}, priority=1, current_host=f"node{i}", state="running")
        for i in (2, 3, 4)
    ]
    return Problem(hosts=hosts, guests=guests)


def test_the_fragmented_cluster_is_unsafe_without_moves_in_recovery(
    fragmented: Problem,
) -> None:
    strict = SurveyOptions(time_limit_s=2, deterministic=True, moves_in_recovery=False)
    assert survey(fragmented, "hosts", strict).verdict.unsafe == ("node1",)
    # With live migrations during the recovery, the failover itself makes the room.
    relaxed = survey(fragmented, "hosts", VERIFY)
    assert relaxed.verdict.safe
    node1 = next(o for o in relaxed.outcomes if o.scenario.name == "node1")
    assert node1.migrations == 1


def test_no_budget_no_safety_and_the_model_proves_it(fragmented: Problem) -> None:
    result = survive(fragmented, "hosts", _options(0))
    assert not result.safe
    first = result.rounds[0]
    assert first.given_up == ("node1",)
    unsafe = first.stages[0]
    assert (unsafe.name, unsafe.value, unsafe.bound, unsafe.gap) == ("unsafe_scenarios", 1, 1, 0.0)


def test_one_move_makes_it_n1_safe_with_a_proven_bound(fragmented: Problem) -> None:
    result = survive(fragmented, "hosts", _options(3))
    assert result.safe
    first = result.rounds[0]
    assert [(s.name, s.value, s.bound, s.gap) for s in first.stages] == [
        ("unsafe_scenarios", 0, 0, 0.0),
        ("migrations", 1, 1, 0.0),
    ]
    assert result.plan is not None
    assert result.report is not None
    assert result.report.ok
    moves = [a for a in result.plan.assignments if a.action.value == "migrate"]
    assert len(moves) == 1
    assert moves[0].guest != "big"
    assert result.verdict is not None
    assert result.verdict.verdict.safe


def test_a_lower_priority_threshold_needs_no_move() -> None:
    """Three 64 GiB nodes with 48 GiB used each cannot restart everything after a failure
    (32 GiB free for 48), wherever the guests run; protecting only the priority-3 third
    (16 GiB per node), they can, without a move."""
    hosts = [Host(f"n{i}", {"ram_mib": 64 * GIB}) for i in (1, 2, 3)]
    guests = [
        Guest(f"db{i}", {"ram_mib": 16 * GIB}, priority=3, current_host=f"n{i}", state="running")
        for i in (1, 2, 3)
    ] + [
        Guest(f"t{i}", {"ram_mib": 32 * GIB}, priority=0, current_host=f"n{i}", state="running")
        for i in (1, 2, 3)
    ]
    state = Problem(hosts=hosts, guests=guests)
    everything = robust_placement(state, _scenarios(state), _options(2))
    assert everything.stages[0].value == 3  # 48 GiB lost into 32 GiB, whatever moves
    important = robust_placement(state, _scenarios(state), _options(2, min_priority=3))
    assert [(s.name, s.value) for s in important.stages] == [
        ("unsafe_scenarios", 0),
        ("migrations", 0),
    ]


def _scenarios(state: Problem) -> list[object]:
    from placement.survey import single_host_failures

    return single_host_failures(state)  # type: ignore[return-value]


def test_anti_affinity_holds_in_the_restart() -> None:
    """Two replicas of class `db` (8 GiB) on n1 and n2, and n3 holding a 60 GiB guest:
    there is room in total after any failure (fluid), but a replica can restart only on
    n3 (the other node holds its class) and n3 has 4 GiB free; `fill` needs 60 GiB where
    56 are free. No move helps (a swap of the replicas changes nothing): the model, made
    exact by the survey's findings, and the survey agree that no scenario is safe."""
    hosts = [Host(f"n{i}", {"ram_mib": 64 * GIB}) for i in (1, 2, 3)]
    guests = [
        Guest(
            "db1", {"ram_mib": 8 * GIB}, current_host="n1", state="running", anti_affinity=["db"]
        ),
        Guest(
            "db2", {"ram_mib": 8 * GIB}, current_host="n2", state="running", anti_affinity=["db"]
        ),
        Guest("fill", {"ram_mib": 60 * GIB}, current_host="n3", state="running"),
    ]
    state = Problem(hosts=hosts, guests=guests)
    strict = SurveyOptions(time_limit_s=2, deterministic=True, moves_in_recovery=False)
    assert not survey(state, "hosts", strict).verdict.safe
    result = survive(state, "hosts", _options(2))
    assert not result.safe
    assert set(result.rounds[-1].given_up) == {"n1", "n2", "n3"}
    assert result.verdict is not None
    assert set(result.verdict.verdict.unsafe) == {"n1", "n2", "n3"}


def test_cli_rebalance_survive(
    tmp_path: Path, fragmented: Problem, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps(dump_problem(fragmented)))
    plan = tmp_path / "plan.json"
    scenario = tmp_path / "scenario.json"
    base = ["rebalance", str(state), "--survive", "hosts", "--deterministic", "--jobs", "1"]
    assert main([*base, "--max-moves", "0"]) == 1
    out = capsys.readouterr().out
    assert "the model cannot protect: node1" in out
    assert "verdict: no N+1-safe placement found within the budget" in out
    code = main([*base, "--max-moves", "2", "-o", str(plan), "--problem-out", str(scenario)])
    out = capsys.readouterr().out
    assert code == 0
    assert "unsafe_scenarios 0 (bound 0, gap 0.00%), migrations 1 (bound 1, gap 0.00%)" in out
    assert "verdict: after this plan the cluster is N+1 safe" in out
    assert main(["check", str(scenario), str(plan)]) == 0
    capsys.readouterr()
    assert main([*base, "--max-moves", "2", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["safe"] is True
    assert document["rounds"][0]["stages"][1] == {
        "name": "migrations",
        "value": 1,
        "bound": 1,
        "gap": 0.0,
    }
    assert main([*base, "--max-moves", "-1"]) == 2
    assert "--max-moves must be >= 0" in capsys.readouterr().err
