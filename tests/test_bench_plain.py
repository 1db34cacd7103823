"""The plain CP-SAT benchmark peers (`bench.plain`): valid plans, the optimum on small
instances, and selectable by the runner."""

from __future__ import annotations

import pytest

from bench.plain import PEERS
from bench.run import parse_solvers, solver_info
from bench.suites import suite
from placement.check import check
from placement.solvers import SolveOptions, UnknownSolverError, available_solvers

FAST = SolveOptions(time_limit_s=5, workers=2)


def test_plain_rcpsp_solves_j301_1_to_its_optimum() -> None:
    problem = suite("j30", match=["j301_1"])[0].build()
    plan = PEERS["plain-rcpsp"].function(problem, FAST)
    assert check(problem, plan).ok
    assert plan.stage("makespan").value == 43  # type: ignore[union-attr]


def test_plain_vbp_solves_a_vbp_instance_to_its_optimum() -> None:
    instance = suite("vbp", match=["class1_20_3_0"])[0]
    problem = instance.build()
    plan = PEERS["plain-vbp"].function(problem, FAST)
    assert check(problem, plan).ok
    assert instance.reference is not None
    assert plan.stage("consolidate").value == instance.reference.upper  # type: ignore[union-attr]


def test_a_plain_peer_refuses_a_problem_of_another_shape() -> None:
    problem = suite("vbp", match=["class1_20_3_0"])[0].build()
    with pytest.raises(ValueError, match="plain-rcpsp"):
        PEERS["plain-rcpsp"].function(problem, FAST)


def test_the_runner_selects_them_and_the_library_does_not_know_them() -> None:
    specs = parse_solvers("cpsat,plain-rcpsp")
    assert [spec.label for spec in specs] == ["cpsat", "plain-rcpsp"]
    assert solver_info("plain-vbp").kind == "plain"
    # Not in the registry: the optimiser's seed portfolio never runs them.
    assert not {"plain-rcpsp", "plain-vbp"} & {info.name for info in available_solvers()}
    with pytest.raises(UnknownSolverError, match="bench peers"):
        solver_info("plain-nothing")
