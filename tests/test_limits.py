"""Numbers and names that used to break the process: each has a range (placement.limits,
the one place the JSON Schema and the model read), and a value outside it is one line
with its JSON path and exit 2, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from placement import Guest, Host, load_problem
from placement.check import check
from placement.cli import main
from placement.errors import InvalidProblemError
from placement.limits import (
    MAX_AMOUNT,
    MAX_COUNT,
    MAX_PRIORITY,
    MAX_SECONDS,
)
from placement.model import reference_errors
from placement.schema import PROBLEM_SCHEMA
from placement.solvers import SolveOptions, available_solvers


def _base() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "hosts": [{"name": "a", "capacity": {"ram_mib": 1000, "vcpus": 8}}],
        "guests": [{"name": "g", "demand": {"ram_mib": 10, "vcpus": 1}}],
    }


def _with(path: tuple[Any, ...], value: Any) -> str:
    document = _base()
    target: Any = document
    for key in path[:-1]:
        target = target.setdefault(key, {}) if isinstance(key, str) else target[key]
    target[path[-1]] = value
    return json.dumps(document)


BROKEN: dict[str, tuple[str, str]] = {
    "float amount 1e308": (
        _with(("guests", 0, "demand", "ram_mib"), 1e308),
        "guests[0].demand.ram_mib: must be <= 10^12, got 1e+308",
    ),
    "400-digit amount": (
        _with(("guests", 0, "demand", "ram_mib"), 10**400),
        "guests[0].demand.ram_mib: must be <= 10^12, got 1000000000000000000000000000000000000...",
    ),
    "5000-digit amount": (
        _with(("guests", 0, "demand", "ram_mib"), 0).replace(
            '"ram_mib": 0', '"ram_mib": ' + "9" * 5000
        ),
        "invalid JSON: Exceeds the limit (4300 digits) for integer string conversion",
    ),
    "capacity 2**63-1": (
        _with(("hosts", 0, "capacity", "ram_mib"), 2**63 - 1),
        "hosts[0].capacity.ram_mib: must be <= 10^12, got 9223372036854775807",
    ),
    "overcommit 1e308": (
        _with(("hosts", 0, "overcommit"), {"vcpus": 1e308}),
        "hosts[0].overcommit.vcpus: must be <= 1000.0, got 1e+308",
    ),
    "priority 10**18": (
        _with(("guests", 0, "priority"), 10**18),
        "guests[0].priority: must be <= 10^6, got 1000000000000000000",
    ),
    "duration 10**15": (
        _with(("guests", 0, "boot"), {"duration_s": 10**15}),
        "guests[0].boot.duration_s: must be <= 10^7, got 1000000000000000",
    ),
    "200,000-deep array": (
        '{"schema_version": 1, "hosts": [], "guests": ' + "[" * 200_000 + "]" * 200_000 + "}",
        "invalid JSON: nested deeper than 64 levels",
    ),
    "100-deep array": (
        '{"schema_version": 1, "hosts": [], "guests": ' + "[" * 100 + "]" * 100 + "}",
        "guests" + "[0]" * 64 + ": nested deeper than 64 levels",
    ),
    "duplicate key": (
        '{"schema_version": 1, "hosts": [], "guests": [{"name": "a", "name": "b", "demand": {}}]}',
        "guests[0]: duplicate key 'name'",
    ),
    "newline in a name": (
        _with(("guests", 0, "name"), "db\nrm -rf"),
        "guests[0].name: must not contain a control character (U+000A at 2)",
    ),
    "NUL in a name": (
        _with(("hosts", 0, "name"), "a\x00"),
        "hosts[0].name: must not contain a control character (U+0000 at 1)",
    ),
    "lone surrogate in a label": (
        _with(("guests", 0, "labels"), ["\ud800"]),
        "guests[0].labels[0]: must not contain a lone surrogate (U+D800 at 0)",
    ),
    "control character in a resource": (
        _with(("guests", 0, "demand"), {"ram\tmib": 1}),
        'guests[0].demand: key "ram\\tmib": must not contain a control character (U+0009 at 3)',
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_number_or_name_out_of_range_is_one_line_and_exit_2(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, message = BROKEN[name]
    problem = tmp_path / "p.json"
    problem.write_text(text)
    for command in (["validate", str(problem)], ["solve", str(problem), "--time-limit", "1"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.splitlines() == [f"{problem}: {message}"] or f"{problem}: {message}" in err
        assert "Traceback" not in err


def test_sums_beyond_64_bit_room_are_refused_with_the_resource() -> None:
    document = _base()
    document["guests"] = [{"name": f"g{i}", "demand": {"ram_mib": MAX_AMOUNT}} for i in range(101)]
    with pytest.raises(InvalidProblemError) as caught:
        load_problem(document)
    assert [str(e) for e in caught.value.errors] == [
        "guests: demand of 'ram_mib' summed over guests must be <= 1e+14, got 101000000000000"
    ]


def test_the_largest_recovery_value_must_fit() -> None:
    """(priority + 1) x horizon over 100,001 guests at the largest priority and horizon."""
    document = {
        "hosts": [],
        "guests": [
            {"name": f"g{i}", "demand": {}, "priority": MAX_PRIORITY} for i in range(100_001)
        ],
        "schedule": {"horizon_s": MAX_SECONDS},
    }
    assert [str(e) for e in reference_errors(document)] == [
        "guests: (priority + 1) x schedule.horizon_s summed over guests must be <= 1e+18, "
        f"got {100_001 * (MAX_PRIORITY + 1) * MAX_SECONDS}: lower the priorities or the horizon"
    ]


def test_the_model_checks_the_same_ranges_when_built_in_code() -> None:
    with pytest.raises(ValueError, match="must be in"):
        Guest(name="g", demand={}, priority=10**18)
    with pytest.raises(ValueError, match="must be in"):
        Host(name="a", capacity={"ram_mib": 2**63 - 1})
    with pytest.raises(ValueError, match=r"<= 1000\.0"):
        Host(name="a", capacity={"vcpus": 8}, overcommit={"vcpus": 1e308})
    with pytest.raises(ValueError, match="control character"):
        Host(name="a\nb", capacity={})
    with pytest.raises(ValueError, match="lone surrogate"):
        Guest(name="g", demand={}, anti_affinity=["\udc00"])


def _numbers(schema: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(schema, dict):
        kinds = schema.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if "integer" in kinds or "number" in kinds:
            found.append((path, schema))
        for key, value in schema.items():
            found.extend(_numbers(value, f"{path}/{key}"))
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            found.extend(_numbers(value, f"{path}/{index}"))
    return found


def test_every_number_of_the_problem_schema_has_a_range() -> None:
    numbers = _numbers(PROBLEM_SCHEMA)
    assert len(numbers) > 15
    for path, schema in numbers:
        assert "maximum" in schema, path
        assert "minimum" in schema or "exclusiveMinimum" in schema, path


def test_a_problem_at_the_limits_solves_on_every_solver() -> None:
    """Every amount at or near its maximum: no solver overflows (CP-SAT refuses a model
    whose sums may overflow; the exact spread model says it does not fit and is skipped)."""
    hosts = [
        {
            "name": f"h{i}",
            "capacity": {"ram_mib": MAX_AMOUNT, "vcpus": MAX_AMOUNT},
            "overcommit": {"vcpus": 30},
            "boot": {"cpu": MAX_AMOUNT, "max_starts": MAX_COUNT},
        }
        for i in range(3)
    ]
    guests = [
        {
            "name": f"g{j}",
            "demand": {"ram_mib": MAX_AMOUNT // (1 + j % 3), "vcpus": MAX_AMOUNT // 7},
            "priority": MAX_PRIORITY,
            "migration_cost": MAX_PRIORITY,
            "boot": {"duration_s": MAX_SECONDS // 100, "load": {"san": MAX_AMOUNT // 2}},
            **({"current_host": f"h{j % 3}", "state": "running"} if j % 4 == 0 else {}),
        }
        for j in range(12)
    ]
    for objective in (["placed", "migrations", "recovery", "balance"], ["placed", "spread"]):
        problem = load_problem(
            {
                "schema_version": 1,
                "hosts": hosts,
                "guests": guests,
                "boot_pools": {"san": MAX_AMOUNT},
                "schedule": {"horizon_s": MAX_SECONDS, "max_starts": MAX_COUNT},
                "migration": {"bandwidth_mib_s": 1, "setup_s": MAX_SECONDS},
                "objective": objective,
            }
        )
        for info in available_solvers():
            plan = info.function(problem, SolveOptions(time_limit_s=0.5))
            report = check(problem, plan)
            if info.kind != "peer":
                assert report.ok, (info.name, report.violations[:1])
            for stage in plan.statistics.stages:
                assert "INVALID" not in stage.status, (info.name, stage)


def test_the_format_page_states_the_ranges_of_limits_py() -> None:
    from placement import limits

    page = (Path(__file__).parent.parent / "docs" / "format.md").read_text()

    def power(value: int) -> str:
        return f"10^{len(str(value)) - 1}"

    for value in (limits.MAX_AMOUNT, limits.MAX_TOTAL, limits.MAX_WEIGHTED_SECONDS):
        assert f"≤ {power(value)}" in page or f"… {power(value)}" in page, value
    assert f"0 … {power(limits.MAX_PRIORITY)}" in page
    assert f"0 … {power(limits.MAX_SECONDS)}" in page
    assert f"1 … {power(limits.MAX_COUNT)}" in page
    assert f"≤ {limits.MAX_RATIO:g}" in page
    assert f"≤ {limits.MAX_DEPTH} levels" in page


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (("assignments", 0, "start_s"), 10**400, "assignments[0].start_s: must be <= 10^15"),
        (("runtime_s",), 10**400, "runtime_s: must be <= 10^21"),
        (("stages", 0, "bound"), -(10**400), "stages[0].bound: must be >= -10^21"),
    ],
)
def test_a_plan_file_number_out_of_range_is_one_line_and_exit_2(
    field: tuple[Any, ...],
    value: Any,
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    problem = tmp_path / "p.json"
    problem.write_text(json.dumps(_base()))
    plan = tmp_path / "plan.json"
    assert main(["solve", str(problem), "--solver", "best-fit", "-o", str(plan)]) == 0
    document = json.loads(plan.read_text())
    target: Any = document
    for key in field[:-1]:
        target = target[key]
    target[field[-1]] = value
    plan.write_text(json.dumps(document))
    capsys.readouterr()
    for command in ("check", "show"):
        assert main([command, str(problem), str(plan)]) == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith(f"{plan}: {message}, got ")


def test_every_number_of_the_plan_schema_has_a_range() -> None:
    from placement.schema import PLAN_SCHEMA

    numbers = _numbers(PLAN_SCHEMA)
    assert len(numbers) >= 6
    for path, schema in numbers:
        assert "maximum" in schema, path
