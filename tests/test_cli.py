"""The command line, called in-process: outputs, exit codes, atomic plan files."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from placement.cli import main
from placement.codec import dump_plan, load_problem_file
from placement.plan import Action, Assignment, Plan, Status

EXAMPLES = Path(__file__).parent.parent / "examples"
FROZEN = EXAMPLES / "frozen-and-dependencies.json"


def write(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document))
    return path


def tiny_problem(tmp_path: Path) -> Path:
    """One 8 GiB host; `db` (4 GiB, 120 s boot) and `app` (2 GiB) that starts after it."""
    return write(
        tmp_path / "problem.json",
        {
            "schema_version": 1,
            "hosts": [{"name": "h1", "capacity": {"ram_mib": 8192}}],
            "guests": [
                {"name": "db", "demand": {"ram_mib": 4096}, "boot": {"duration_s": 120}},
                {"name": "app", "demand": {"ram_mib": 2048}, "boot": {"after": ["db"]}},
            ],
        },
    )


def tiny_plan(app_start_s: int) -> Plan:
    return Plan(
        status=Status.FEASIBLE,
        solver="hand",
        runtime_s=0.0,
        assignments=(
            Assignment("db", "h1", Action.START, 0, 120),
            Assignment("app", "h1", Action.START, app_start_s, app_start_s + 60),
        ),
    )


def test_validate_reports_counts_and_diagnostics(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLES / "cold-recovery.json")]) == 0
    out = capsys.readouterr().out
    assert "valid: 20 hosts (20 online), 150 guests" in out
    assert "warning: too_large: guest 'hana-prod01'" in out


def test_validate_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(FROZEN), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["valid"] is True
    assert document["guests"] == len(load_problem_file(FROZEN).guests)


def test_check_valid_plan_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    problem = tiny_problem(tmp_path)
    plan = write(tmp_path / "plan.json", dump_plan(tiny_plan(app_start_s=120)))
    assert main(["check", str(problem), str(plan)]) == 0
    assert "valid: the plan respects every rule" in capsys.readouterr().out


def test_check_violation_exits_1_and_names_the_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    problem = tiny_problem(tmp_path)
    plan = write(tmp_path / "plan.json", dump_plan(tiny_plan(app_start_s=60)))
    assert main(["check", str(problem), str(plan)]) == 1
    out = capsys.readouterr().out
    assert "1 violation(s):" in out
    assert "after:" in out
    assert main(["check", str(problem), str(plan), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [v["rule"] for v in report["violations"]] == ["after"]


def test_check_plan_naming_unknown_guest_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    problem = tiny_problem(tmp_path)
    document = dump_plan(tiny_plan(app_start_s=120))
    document["assignments"][1]["guest"] = "ghost"
    plan = write(tmp_path / "plan.json", document)
    assert main(["check", str(problem), str(plan)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{plan}: assignments[1].guest: unknown guest 'ghost'"
    ]


def test_check_broken_plan_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    problem = tiny_problem(tmp_path)
    plan = write(tmp_path / "plan.json", {"schema_version": 1, "status": "great"})
    assert main(["check", str(problem), str(plan)]) == 2
    err = capsys.readouterr().err
    assert f"{plan}: status: must be one of" in err
    assert f"{plan}: assignments: required key is missing" in err


def test_schema_prints_valid_json_schemas(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    problem_schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(problem_schema)
    assert main(["schema", "--plan"]) == 0
    plan_schema = json.loads(capsys.readouterr().out)
    assert plan_schema["title"] == "placement plan"
    for path in sorted(EXAMPLES.glob("*.json")):
        jsonschema.validate(json.loads(path.read_text()), problem_schema)


def test_unknown_command_and_bad_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["frobnicate"]) == 2
    problem = tiny_problem(tmp_path)
    assert main(["solve", str(problem), "--solver", "no-such-solver"]) == 2
    assert "unknown solver 'no-such-solver'" in capsys.readouterr().err
    assert main(["solve", str(problem), "--time-limit", "0"]) == 2
    assert main(["solve", str(problem), "--time-limit", "soon"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "absent.json")]) == 2
    assert (
        capsys.readouterr().err.strip() == f"{tmp_path / 'absent.json'}: No such file or directory"
    )


def test_solvers_lists_registered_solvers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["solvers"]) == 0
    out = capsys.readouterr().out
    assert out.strip()


def test_solve_writes_a_plan_that_check_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    problem = tiny_problem(tmp_path)
    plan = tmp_path / "plan.json"
    assert main(["solve", str(problem), "--solver", "pacemaker-balanced", "-o", str(plan)]) == 0
    assert f"plan written to {plan}" in capsys.readouterr().out
    assert main(["check", str(problem), str(plan)]) == 0
    written = json.loads(plan.read_text())
    starts = {a["guest"]: a["start_s"] for a in written["assignments"]}
    assert starts["app"] >= starts["db"] + 120  # the list schedule waits for db


def test_solve_json_prints_the_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    problem = tiny_problem(tmp_path)
    assert main(["solve", str(problem), "--solver", "pacemaker-minimal", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["solver"] == "pacemaker-minimal"
    assert {a["guest"] for a in document["assignments"]} == {"db", "app"}


def test_solve_with_a_bad_schedule_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    problem = tiny_problem(tmp_path)
    code = main(["solve", str(problem), "--solver", "pacemaker-minimal", "--schedule", "batch:0"])
    assert code == 2
    assert "--schedule" in capsys.readouterr().err


def test_solve_that_overloads_exits_1_and_still_writes_the_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Proxmox's static scorer has no capacity check: 3 x 4 GiB onto one 8 GiB host."""
    problem = write(
        tmp_path / "problem.json",
        {
            "schema_version": 1,
            "hosts": [{"name": "h1", "capacity": {"ram_mib": 8192, "vcpus": 8}}],
            "guests": [
                {"name": f"vm{i}", "demand": {"ram_mib": 4096, "vcpus": 1}} for i in range(3)
            ],
        },
    )
    plan = tmp_path / "plan.json"
    assert main(["solve", str(problem), "--solver", "proxmox-static", "-o", str(plan)]) == 1
    out = capsys.readouterr().out
    assert "INVALID: 1 violation (1 capacity): do not run it as it is" in out
    assert "  capacity (1):\n    host h1 ram_mib" in out  # the rule, then its message
    assert plan.exists()
