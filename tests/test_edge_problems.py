"""Degenerate problems every solver and command must answer: no resources, no online
host, no guests, no hosts, capacity 0, a resource no host has (refused by `validate`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from placement import load_problem
from placement.check import check
from placement.cli import main
from placement.errors import InvalidProblemError
from placement.solvers import SolveOptions, available_solvers


def _host(name: str, capacity: dict[str, int], state: str = "online") -> dict[str, Any]:
    return {"name": name, "capacity": capacity, "state": state}


EDGES: dict[str, dict[str, Any]] = {
    "no-guests": {"hosts": [_host("a", {"ram_mib": 10})], "guests": []},
    "no-hosts-no-guests": {"hosts": [], "guests": []},
    "no-hosts": {"hosts": [], "guests": [{"name": "g", "demand": {}}]},
    "no-resources": {
        "hosts": [_host("a", {}), _host("b", {})],
        "guests": [
            {"name": "g", "demand": {}, "current_host": "a", "state": "running"},
            {"name": "h", "demand": {}},
        ],
    },
    "no-online-host": {
        "hosts": [
            _host("a", {"ram_mib": 10}, "failed"),
            _host("b", {"ram_mib": 10}, "maintenance"),
        ],
        "guests": [
            {"name": "g", "demand": {"ram_mib": 1}, "current_host": "b", "state": "running"},
            {"name": "h", "demand": {"ram_mib": 1}},
        ],
    },
    "capacity-0": {
        "hosts": [_host("a", {"ram_mib": 0, "gpu": 0})],
        "guests": [{"name": "g", "demand": {"ram_mib": 0, "gpu": 1}}],
    },
}
OBJECTIVES = [
    ["placed", "migrations", "recovery", "balance"],
    ["placed", "makespan", "consolidate"],
    ["placed", "spread"],
    ["placed", "imbalance"],
]
SOLVERS = [info.name for info in available_solvers()]


@pytest.mark.parametrize("objective", OBJECTIVES, ids=lambda o: o[-1])
@pytest.mark.parametrize("edge", sorted(EDGES))
def test_every_solver_answers_a_degenerate_problem(edge: str, objective: list[str]) -> None:
    problem = load_problem({"schema_version": 1, **EDGES[edge], "objective": objective})
    for info in available_solvers():
        plan = info.function(problem, SolveOptions(time_limit_s=0.3))
        assert len(plan.assignments) == len(problem.guests), info.name
        assert {u.guest for u in plan.unplaced} == {
            a.guest for a in plan.assignments if a.host is None
        }
        if info.kind != "peer":
            assert check(problem, plan).ok, info.name


def test_a_resource_no_host_has_is_refused_with_the_reason() -> None:
    document = {
        "schema_version": 1,
        "hosts": [_host("a", {"ram_mib": 10})],
        "guests": [{"name": "g", "demand": {"gpu": 1}}],
    }
    with pytest.raises(InvalidProblemError) as caught:
        load_problem(document)
    assert [str(e) for e in caught.value.errors] == [
        "guests[0].demand.gpu: no host has resource 'gpu'"
    ]


@pytest.mark.parametrize("edge", sorted(EDGES))
def test_every_command_answers_a_degenerate_problem(
    edge: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No traceback and an exit code of the documented scheme from any command."""
    problem = tmp_path / "p.json"
    problem.write_text(json.dumps({"schema_version": 1, **EDGES[edge]}))
    plan, scenario, scenario_plan = tmp_path / "plan.json", tmp_path / "s.json", tmp_path / "sp"
    fast = ["--time-limit", "0.3"]
    first_host = EDGES[edge]["hosts"][0]["name"] if EDGES[edge]["hosts"] else "a"
    commands = [
        ["validate", str(problem)],
        ["solve", str(problem), *fast, "-o", str(plan)],
        ["check", str(problem), str(plan)],
        ["show", str(problem), str(plan)],
        ["failover", str(problem), "--failed", first_host, *fast],
        ["evacuate", str(problem), "--host", first_host, *fast],
        ["rebalance", str(problem), *fast, "-o", str(scenario_plan)],
        ["coldstart", str(problem), *fast, "--problem-out", str(scenario)],
        *(["solve", str(problem), "--solver", name, *fast] for name in SOLVERS),
        ["export", str(problem), str(plan), "--to", "shell", "-o", str(tmp_path / "x.sh")],
    ]
    for command in commands:
        code = main(command)
        assert code in (0, 1, 2, 3), command
        assert "Traceback" not in capsys.readouterr().err
