"""The JSON codec: every invalid input gives its one-line error; round trips change nothing;
the printed schema and the loader agree."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import attrs
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from placement.cli import main
from placement.codec import (
    dump_plan,
    dump_problem,
    json_path,
    load_plan,
    load_problem,
    load_problem_file,
    write_json_atomic,
)
from placement.errors import InvalidPlanError, InvalidProblemError
from placement.model import reference_errors
from placement.plan import Action, Assignment, Plan, StageResult, Status, Unplaced
from placement.schema import PLAN_SCHEMA, PROBLEM_SCHEMA
from placement.statistics import (
    HostEmptying,
    Hysteresis,
    Incumbent,
    ModelSize,
    NeighbourhoodRound,
    PortfolioChoice,
    RebalanceSearch,
    SeedRun,
    SolveStatistics,
    StageLog,
    TypeCounts,
)

DATA = Path(__file__).parent / "data"
INVALID = sorted((DATA / "invalid").glob("*.json"))
EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.json"))


def small_cluster() -> dict[str, Any]:
    """Two hosts (one failed) and four guests: a database that ran on the failed host, an
    application server and a web front end that start after it, and a cache; migrations
    one per host at a time, loading the SAN."""
    return {
        "schema_version": 1,
        "hosts": [
            {
                "name": "node1",
                "capacity": {"ram_mib": 65536, "vcpus": 16},
                "overcommit": {"vcpus": 4.0},
            },
            {"name": "node2", "capacity": {"ram_mib": 65536, "vcpus": 16}, "state": "failed"},
        ],
        "guests": [
            {
                "name": "db",
                "demand": {"ram_mib": 8192, "vcpus": 4},
                "current_host": "node2",
                "state": "running",
                "boot": {"duration_s": 120, "load": {"san_iops": 3000}},
            },
            {"name": "app", "demand": {"ram_mib": 4096, "vcpus": 2}, "boot": {"after": ["db"]}},
            {"name": "web", "demand": {"ram_mib": 2048, "vcpus": 2}, "boot": {"after": ["app"]}},
            {"name": "cache", "demand": {"ram_mib": 2048, "vcpus": 1}},
        ],
        "boot_pools": {"san_iops": 10000},
        "migration": {"max_per_host": 1, "load": {"san_iops": 500}},
    }


@pytest.mark.parametrize("path", INVALID, ids=[path.stem for path in INVALID])
def test_invalid_input_gives_its_error_lines_and_exit_2(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = path.with_suffix(".expected").read_text().splitlines()
    assert expected, f"{path.name} has no .expected file"
    code = main(["validate", str(path)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.splitlines() == [f"{path}: {line}" for line in expected]
    assert "Traceback" not in captured.err


def test_every_invalid_file_has_one_failure_mode() -> None:
    """Each file in data/invalid breaks one rule, so its message is the only one."""
    for path in INVALID:
        lines = path.with_suffix(".expected").read_text().splitlines()
        assert len(lines) == 1, path.name


def test_all_errors_are_reported_in_one_pass() -> None:
    document = small_cluster()
    document["guests"][3]["demand"]["ram_mib"] = -5
    document["guests"][1]["colour"] = "blue"
    document["guests"][2]["boot"]["after"] = ["dns"]
    document["hosts"][0]["state"] = "up"
    with pytest.raises(InvalidProblemError) as raised:
        load_problem(document)
    assert [str(error) for error in raised.value.errors] == [
        'hosts[0].state: must be one of "online", "maintenance", "failed", got string "up"',
        "guests[1].colour: unknown key (expected one of: anti_affinity, avoid_hosts, boot, "
        "current_host, demand, follows, hosts, labels, migration_cost, movable, name, priority, "
        "state, together)",
        "guests[3].demand.ram_mib: must be >= 0, got -5",
        "guests[2].boot.after[0]: unknown guest 'dns'",
    ]


def test_json_path_quotes_keys_that_are_not_plain() -> None:
    assert json_path(["guests", 3, "demand", "ram_mib"]) == "guests[3].demand.ram_mib"
    assert json_path(["boot_pools", "san.iops"]) == 'boot_pools["san.iops"]'


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_examples_round_trip(path: Path) -> None:
    problem = load_problem_file(path)
    document = dump_problem(problem)
    assert load_problem(document) == problem
    assert dump_problem(load_problem(document)) == document
    jsonschema.validate(document, PROBLEM_SCHEMA)


def test_dump_leaves_out_defaults_but_keeps_what_was_set() -> None:
    document = dump_problem(load_problem(small_cluster()))
    cache = document["guests"][3]
    assert cache == {"name": "cache", "demand": {"ram_mib": 2048, "vcpus": 1}}
    assert document["hosts"][1]["state"] == "failed"


def test_migration_settings_and_movable_round_trip_with_their_defaults() -> None:
    document = small_cluster()
    document["guests"][0]["movable"] = False
    document["migration"] = {"bandwidth_mib_s": 500, "setup_s": 2, "max_moves": 0}
    problem = load_problem(document)
    assert not problem.guest("db").movable
    assert problem.guest("app").movable
    # setup 2 s + ceil(8192 MiB / 500 MiB/s) = 2 + 17; a guest without RAM copies nothing.
    assert problem.migration_duration(problem.guest("db")) == 19
    assert problem.migration.max_per_host is None
    assert problem.migration.memory_resource == "ram_mib"
    dumped = dump_problem(problem)
    assert dumped["migration"] == {"bandwidth_mib_s": 500, "setup_s": 2, "max_moves": 0}
    assert dumped["guests"][0]["movable"] is False
    assert "movable" not in dumped["guests"][1]
    assert load_problem(dumped) == problem
    del document["migration"]
    default = load_problem(document)
    assert "migration" not in dump_problem(default)
    assert default.migration_duration(default.guest("db")) == 5 + 9  # ceil(8192 / 1000) = 9


def test_plan_stage_values_and_lookup() -> None:
    plan = Plan(
        status=Status.FEASIBLE,
        solver="first-fit",
        runtime_s=0.1,
        assignments=(),
        stages=(StageResult("placed", 3.0), StageResult("recovery", 120.0, 100.0, 1 / 6)),
    )
    assert plan.stage_values() == {"placed": 3.0, "recovery": 120.0}
    assert list(plan.stage_values()) == ["placed", "recovery"]
    recovery = plan.stage("recovery")
    assert recovery is not None
    assert recovery.bound == 100.0
    assert plan.stage("balance") is None


def test_plan_round_trip_and_errors() -> None:
    plan = Plan(
        status=Status.FEASIBLE,
        solver="first-fit",
        runtime_s=0.25,
        assignments=(
            Assignment("db", "node1", Action.START, 0, 120),
            Assignment("cache", None, Action.NONE),
        ),
        unplaced=(Unplaced("cache", "needs 2048 ram_mib; largest free: 0"),),
        stages=(StageResult("placed", 1.0), StageResult("recovery", 120.0, 100.0, 1 / 6)),
        statistics=SolveStatistics(
            first_plan_s=0.24,
            returned="cp-sat",
            model=ModelSize(build_s=0.02, units=2, pairs=4, boots=1),
            seeds=(SeedRun("best-fit", 0.01, valid=True, kept=True, values={"placed": 1}),),
            incumbents=(Incumbent(0.24, "seed", {"placed": 1}),),
            stages=(
                StageLog(
                    "recovery",
                    "FEASIBLE",
                    0.2,
                    value=120,
                    bound=100,
                    improved=True,
                    lp_bound=110,
                    lp_seconds=0.05,
                ),
                StageLog(
                    "consolidate", "OPTIMAL", 0.1, 1, 1, neighbourhoods=HostEmptying(2, 3, 1, 0.1)
                ),
            ),
            type_counts=TypeCounts(types=2, units=2, pairs=4, bounds={"placed": 1}),
            neighbourhoods=(NeighbourhoodRound(0, 0.5, 2, 4, improved=False, values={}),),
            rebalance=RebalanceSearch(3, 1, 2, "spread", 6),
            portfolio=PortfolioChoice("first-fit-decreasing-max", 14, 5),
            hysteresis=Hysteresis(0.1, "cpsat", 0.2, 0.21),
            extra={"pools": {"san_iops": {"peak": 3000, "limit": 10000}}},
        ),
    )
    document = dump_plan(plan)
    jsonschema.validate(document, PLAN_SCHEMA)
    assert "metrics" not in document
    assert document["statistics"]["stages"][1]["neighbourhoods"]["hosts_after"] == 1
    assert load_plan(json.loads(json.dumps(document))) == plan
    # Statistics at their defaults are written as an empty object, and read back.
    bare = attrs.evolve(plan, statistics=SolveStatistics())
    assert dump_plan(bare)["statistics"] == {}
    assert load_plan(dump_plan(bare)) == bare
    unknown = copy.deepcopy(document)
    unknown["statistics"]["seeds"][0]["colour"] = "red"
    with pytest.raises(InvalidPlanError):
        load_plan(unknown)
    broken = copy.deepcopy(document)
    broken["assignments"][0]["action"] = "boot"
    broken["assignments"][1]["start_s"] = -1
    with pytest.raises(InvalidPlanError) as raised:
        load_plan(broken)
    assert [str(e) for e in raised.value.errors] == [
        'assignments[0].action: must be one of "start", "stay", "migrate", "stop", "none", '
        'got string "boot"',
        "assignments[1].start_s: must be >= 0, got -1",
    ]


def test_write_json_atomic_replaces_whole_or_leaves_old(tmp_path: Path) -> None:
    target = tmp_path / "plan.json"
    write_json_atomic(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    with pytest.raises(TypeError):
        write_json_atomic(target, {"a": object()})  # not serialisable: nothing written
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]


# --- the schema and the loader accept and reject the same documents ----------------------

_MUTATIONS: list[tuple[str, Any]] = [
    ("int", -1),
    ("int", 0),
    ("int", 7),
    ("float", 2.5),
    ("str", "x"),
    ("str", ""),
    ("bool", True),
    ("null", None),
    ("list", []),
    ("list", ["node1"]),
    ("dict", {}),
    ("dict", {"extra": 1}),
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*prefix, index)))
    return found


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid document with one to three values replaced, keys added or keys removed."""
    document = small_cluster()
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(document) if p]
        path = draw(st.sampled_from(paths))
        parent: Any = document
        for key in path[:-1]:
            parent = parent[key]
        how = draw(st.sampled_from(["replace", "add", "remove"]))
        if how == "remove" and isinstance(parent, dict):
            del parent[path[-1]]
        elif how == "add" and isinstance(parent, dict):
            key = draw(st.sampled_from(["state", "priority", "boot", "colour", "ram_mib", "after"]))
            # Copies, so a later mutation never changes the shared samples themselves.
            parent[key] = copy.deepcopy(draw(st.sampled_from(_MUTATIONS))[1])
        else:
            parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(_MUTATIONS))[1])
    return document


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_documents())
def test_schema_and_loader_agree(document: dict[str, Any]) -> None:
    schema_ok = jsonschema.Draft202012Validator(PROBLEM_SCHEMA).is_valid(document)
    errors: list[str] = []
    try:
        load_problem(document)
    except InvalidProblemError as error:
        errors = [str(e) for e in error.errors]
    loaded = not errors
    # Every rejection is a named error, never the fallback for a schema/model gap.
    assert not any(message.startswith("invalid document") for message in errors), errors
    if loaded:
        assert schema_ok
    elif schema_ok:
        # The schema cannot see references between objects; only those may reject then.
        assert reference_errors(document)


def test_an_old_plan_files_metrics_are_read_as_statistics() -> None:
    """Plan files written before the typed statistics had a free-form `metrics` object:
    the figures the solvers wrote are typed, the others kept in `extra`."""
    document = dump_plan(Plan(Status.FEASIBLE, "cpsat", 1.5, ()))
    del document["statistics"]
    document["metrics"] = {
        "first_plan_s": 0.3,
        "model_build_s": 0.05,
        "units": 10,
        "pairs": 40,
        "boots": 10,
        "returned": "cp-sat",
        "stalled": False,
        "interrupted": True,
        "stages": [
            {
                "stage": "placed",
                "cp_sat_status": "OPTIMAL",
                "seconds": 0.1,
                "value": 10.0,
                "cp_sat_bound": 10.0,
                "second_pass_status": "OPTIMAL",
            }
        ],
        "type_counts": {"skipped": "too many (type, host) pairs"},
        "rounds": [
            {"round": 0, "seconds": 1.0, "movers": 5, "pairs": 20, "improved": True, "values": {}}
        ],
        "variant": "first-fit-decreasing-max",
        "variants_run": 14,
        "placements": 6,
        "peak_san": 3,
    }
    statistics = load_plan(document).statistics
    assert statistics.first_plan_s == 0.3
    assert statistics.model == ModelSize(build_s=0.05, units=10, pairs=40, boots=10)
    assert statistics.returned == "cp-sat"
    assert statistics.interrupted
    assert not statistics.stalled
    assert statistics.stages == (
        StageLog("placed", "OPTIMAL", 0.1, value=10, bound=10, second_pass_status="OPTIMAL"),
    )
    assert statistics.type_counts == TypeCounts(skipped="too many (type, host) pairs")
    assert [r.movers for r in statistics.neighbourhoods] == [5]
    assert statistics.portfolio == PortfolioChoice("first-fit-decreasing-max", 14, 6)
    assert dict(statistics.extra) == {"peak_san": 3}
    # The bench's one-number figures keep their old names.
    assert statistics.scalars() == {
        "first_plan_s": 0.3,
        "returned": "cp-sat",
        "model_build_s": 0.05,
        "units": 10,
        "pairs": 40,
        "boots": 10,
        "stalled": False,
        "variant": "first-fit-decreasing-max",
        "variants_run": 14,
        "placements": 6,
        "interrupted": True,
    }
    document["metrics"]["rounds"] = [{"round": 0}]
    with pytest.raises(InvalidPlanError) as raised:
        load_plan(document)
    assert str(raised.value.errors[0]).startswith("metrics: unreadable figures")
