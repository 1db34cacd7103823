"""Real CIBs from Pacemaker's own scheduler tests (tests/data/pacemaker-cts): each one
imports and solves with every solver, or is refused with one line per reason; never a
traceback. Most real CIBs carry no `<utilization>` at all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from placement.adapters import import_pacemaker
from placement.check import check
from placement.cli import main
from placement.errors import InvalidInputError
from placement.plan import Status
from placement.solvers import SolveOptions, available_solvers

CTS = Path(__file__).parent / "data" / "pacemaker-cts"
CIBS = sorted(CTS.glob("*.xml"))
# Guest nodes (a resource running inside another) are not hosts the importer knows.
REFUSED = {"whitebox-fail1"}


def test_the_subset_is_there() -> None:
    assert len(CIBS) >= 15


@pytest.mark.parametrize("cib", CIBS, ids=[c.stem for c in CIBS])
def test_every_solver_plans_a_real_cib(cib: Path) -> None:
    """Each solver returns a plan the checker can read; the optimiser's passes it."""
    if cib.stem in REFUSED:
        with pytest.raises(InvalidInputError) as caught:
            import_pacemaker(cib)
        assert all(item.message and "\n" not in item.message for item in caught.value.errors)
        return
    problem = import_pacemaker(cib).problem
    for info in available_solvers():
        plan = info.function(problem, SolveOptions(time_limit_s=0.5))
        report = check(problem, plan)
        assert len(plan.assignments) == len(problem.guests), info.name
        if info.kind != "peer":  # peers may break rules: that is their finding
            assert report.ok, (info.name, report.violations[:2])
            assert plan.status in (Status.OPTIMAL, Status.FEASIBLE), info.name


def test_a_cib_without_utilization_imports_and_solves_from_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`placement import pacemaker` then `placement solve`: no node lists utilization,
    yet the resources do; Pacemaker counts the missing capacity as 0."""
    problem_file = tmp_path / "p.json"
    cib = CTS / "bug-5186-partial-migrate.xml"
    assert main(["import", "pacemaker", str(cib), "-o", str(problem_file)]) == 0
    document = json.loads(problem_file.read_text())
    assert all(host["capacity"].get("ram_mib") == 0 for host in document["hosts"])
    code = main(["solve", str(problem_file), "--time-limit", "1", "-o", str(tmp_path / "plan")])
    assert code in (0, 3)  # placed or not, a valid plan (exit codes: docs/cli.md)
    assert "Traceback" not in capsys.readouterr().err


PEERS = Path(__file__).parents[2] / "shared" / "peers" / "pacemaker-cts" / "xml"


@pytest.mark.skipif(not PEERS.is_dir(), reason="the full peer suite is not beside this clone")
def test_every_cib_of_the_peer_suite_imports_or_is_refused_and_solves() -> None:
    """The development checkout's whole subset (../shared/peers), with the fast solvers."""
    fast = [info for info in available_solvers() if info.name != "cpsat"]
    for cib in sorted(PEERS.glob("*.xml")):
        try:
            problem = import_pacemaker(cib).problem
        except InvalidInputError:
            continue  # a refusal with its reasons is an answer
        for info in fast:
            plan = info.function(problem, SolveOptions(time_limit_s=0.2))
            check(problem, plan)
