"""The executors: in process, local worker processes, and Dask. A Dask `LocalCluster`
started in-process (threads, for speed) must give exactly the results of this process,
for the failure survey and for the benchmark runner."""

from __future__ import annotations

import operator
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.run import parse_solvers, read_rows, run_suite
from bench.suites import suite
from placement.codec import load_problem_file
from placement.executors import (
    DaskExecutor,
    ExecutorUnavailableError,
    InlineExecutor,
    ProcessExecutor,
    make_executor,
)
from placement.survey import SurveyOptions, survey, survey_to_dict

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DETERMINISTIC = SurveyOptions(time_limit_s=2, deterministic=True)


def _scaled(shared: int, item: int) -> int:
    return shared * item


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    """A two-worker Dask cluster in this process (threads, one per worker)."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _comparable(result: Any) -> dict[str, Any]:
    document = survey_to_dict(result)
    for key in ("wall_s", "executor"):
        document.pop(key)
    for scenario in document["scenarios"]:
        scenario.pop("runtime_s")
    return document


@pytest.mark.parametrize("jobs", [1, 2])
def test_local_executors_return_every_index_once(jobs: int) -> None:
    with make_executor(jobs=jobs) as executor:
        found = sorted(executor.map_unordered(_scaled, 3, [1, 2, 3, 4]))
    assert found == [(0, 3), (1, 6), (2, 9), (3, 12)]


def test_a_failing_task_raises_in_the_caller() -> None:
    with ProcessExecutor(2) as executor, pytest.raises(TypeError):
        list(executor.map_unordered(operator.add, 1, [2, "x"]))


def test_bad_executor_requests() -> None:
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        ProcessExecutor(0)
    with pytest.raises(ValueError, match="--jobs must be >= 1"):
        make_executor(jobs=0)


def test_dask_executor_streams_every_index(dask_client: Any) -> None:
    with DaskExecutor(client=dask_client) as executor:
        assert executor.parallelism == 2
        assert "2 worker(s)" in executor.description
        found = sorted(executor.map_unordered(_scaled, 5, list(range(10))))
    assert found == [(i, 5 * i) for i in range(10)]
    assert dask_client.status == "running"  # a client the caller owns stays open


def test_survey_on_dask_equals_the_local_survey(dask_client: Any) -> None:
    """Deterministic mode: the same plans wherever the scenarios run."""
    state = load_problem_file(EXAMPLES / "frozen-and-dependencies.json")
    inline = survey(state, "pairs", DETERMINISTIC, executor=InlineExecutor())
    with DaskExecutor(client=dask_client) as executor:
        on_dask = survey(state, "pairs", DETERMINISTIC, executor=executor)
    assert "Dask scheduler" in on_dask.executor
    assert _comparable(on_dask) == _comparable(inline)
    assert not inline.verdict.safe  # a survey with guests at risk, not a trivial one
    assert inline.verdict.at_risk


def test_cli_survey_on_a_dask_scheduler(
    dask_client: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from placement.cli import main

    state = EXAMPLES / "frozen-and-dependencies.json"
    address = dask_client.scheduler.address
    code = main(
        ["survey", str(state), "--fail", "domains", "--deterministic", "--scheduler", address]
    )
    table = capsys.readouterr().out
    assert code == 1
    assert f"on Dask scheduler {address}" in table
    assert main(["survey", str(state), "--fail", "domains", "--deterministic", "--json"]) == 1
    local = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in local["scenarios"]] == ["rack-a", "rack-b"]
    assert "rack-a" in table
    assert main(["survey", str(state), "--jobs", "2", "--scheduler", address]) == 2
    assert "--jobs and --scheduler exclude each other" in capsys.readouterr().err


def test_unreachable_scheduler_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("distributed")
    from placement import executors
    from placement.cli import main

    monkeypatch.setattr(executors, "CONNECT_TIMEOUT_S", 1.0)

    state = EXAMPLES / "frozen-and-dependencies.json"
    with pytest.raises(ExecutorUnavailableError, match="cannot reach the Dask scheduler"):
        DaskExecutor("tcp://127.0.0.1:9", timeout_s=1)
    assert main(["survey", str(state), "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err
    assert len(err.strip().splitlines()) == 1


def test_bench_runner_on_dask_writes_the_local_rows(dask_client: Any, tmp_path: Path) -> None:
    def run(out: Path, executor: Any) -> list[dict[str, Any]]:
        list(
            run_suite(
                suite_name="tiny",
                instances=suite("tiny", match=["S-0", "j301_1"]),
                solvers=parse_solvers("first-fit,best-fit"),
                time_limit_s=2.0,
                out=out,
                jobs=1,
                isolate=False,
                executor=executor,
            )
        )
        return sorted(read_rows(out), key=lambda r: (r["instance"], r["label"]))

    with DaskExecutor(client=dask_client) as executor:
        remote = run(tmp_path / "dask.jsonl", executor)
    local = run(tmp_path / "local.jsonl", None)
    assert len(remote) == len(local) == 4
    for a, b in zip(remote, local, strict=True):
        assert (a["instance"], a["label"], a["status"]) == (b["instance"], b["label"], b["status"])
        assert a["objectives"] == b["objectives"]
        assert a["violations"] == b["violations"] == 0
