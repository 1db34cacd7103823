"""One exit-code scheme for every command (docs: CLI reference), so that an HA tool can
branch on it: 0 a valid plan placing every guest, 3 a valid plan leaving guests
unplaced, 1 no plan or violations, 2 bad input, 130 interrupted (tests/test_interrupt.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from placement.cli import EXIT_FAILED, EXIT_INVALID, EXIT_OK, EXIT_UNPLACED, main

EXAMPLES = Path(__file__).parent.parent / "examples"
RESTART = str(EXAMPLES / "single-host-restart.json")
STATE = str(EXAMPLES / "ops" / "cluster-state.json")
FAST = ["--time-limit", "2"]


def _write(path: Path, document: object) -> str:
    path.write_text(json.dumps(document))
    return str(path)


def test_a_plan_that_places_every_guest_is_0(tmp_path: Path) -> None:
    plan = str(tmp_path / "plan.json")
    assert main(["solve", RESTART, "--solver", "best-fit", "-o", plan]) == EXIT_OK
    assert main(["check", RESTART, plan]) == EXIT_OK
    assert main(["show", RESTART, plan]) == EXIT_OK
    assert main(["failover", STATE, "--failed", "node1", *FAST]) == EXIT_OK


def test_failing_every_host_places_nobody_and_is_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan, scenario = str(tmp_path / "plan.json"), str(tmp_path / "scenario.json")
    command = ["failover", STATE, "--failed", "node1,node2,node3,node4", *FAST]
    assert main([*command, "-o", plan, "--problem-out", scenario]) == EXIT_UNPLACED
    document = json.loads(Path(plan).read_text())
    assert all(a["host"] is None for a in document["assignments"])
    assert len(document["unplaced"]) == 17
    capsys.readouterr()
    assert main(["check", scenario, plan]) == EXIT_UNPLACED
    assert main(["show", scenario, plan]) == EXIT_UNPLACED


@pytest.mark.parametrize("solver", ["cpsat", "best-fit", "vector-pack", "pacemaker-minimal"])
def test_a_zero_horizon_leaves_the_guest_out_and_is_3(solver: str, tmp_path: Path) -> None:
    problem = _write(
        tmp_path / "p.json",
        {
            "schema_version": 1,
            "hosts": [{"name": "a", "capacity": {"ram_mib": 10}}],
            "guests": [{"name": "g", "demand": {"ram_mib": 1}}],
            "schedule": {"horizon_s": 0},
        },
    )
    assert main(["solve", problem, "--solver", solver, *FAST]) == EXIT_UNPLACED


def test_a_plan_that_breaks_a_rule_is_1(tmp_path: Path) -> None:
    """All guests at once overload the SAN: the baseline's plan is a finding, exit 1."""
    plan = str(tmp_path / "plan.json")
    command = ["solve", RESTART, "--solver", "best-fit", "--schedule", "all-at-once"]
    assert main([*command, "-o", plan]) == EXIT_FAILED
    assert main(["check", RESTART, plan]) == EXIT_FAILED
    assert main(["show", RESTART, plan]) == EXIT_FAILED
    assert main(["export", RESTART, plan, "--to", "shell"]) == EXIT_FAILED


def test_bad_input_is_2(tmp_path: Path) -> None:
    broken = _write(tmp_path / "broken.json", {"schema_version": 1, "hosts": []})
    assert main(["validate", broken]) == EXIT_INVALID
    assert main(["solve", broken]) == EXIT_INVALID
    assert main(["failover", STATE, "--failed", "node9"]) == EXIT_INVALID
    assert main(["solve", RESTART, "--time-limit", "0"]) == EXIT_INVALID
