"""Stopping a solve: the library's StopToken (from a thread, in-process) and Ctrl-C on
the command line (a subprocess sent SIGINT). The first stop returns the best verified
plan at once; the CLI writes it whole and exits 130; a second SIGINT exits at once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from placement import StopToken, check, load_problem, solve
from placement.codec import load_plan_file, load_problem_file
from placement.solvers import SolveOptions, available_solvers

EXAMPLES = Path(__file__).parent.parent / "examples"
RESTART = EXAMPLES / "single-host-restart.json"
STATE = EXAMPLES / "ops" / "cluster-state.json"


def _restart() -> object:
    return load_problem(json.loads(RESTART.read_text()))


def test_a_token_stopped_from_a_thread_ends_a_long_cpsat_solve_with_a_verified_plan() -> None:
    problem = load_problem_file(RESTART)
    token = StopToken()
    threading.Timer(1.5, token.stop).start()
    started = time.perf_counter()
    plan = solve(problem, "cpsat", SolveOptions(time_limit_s=60, stop=token))
    elapsed = time.perf_counter() - started
    assert elapsed < 20  # not the 60 s limit (generous: the machine is shared)
    assert check(problem, plan).ok
    assert plan.statistics.interrupted is True
    assert len([a for a in plan.assignments if a.host is not None]) == len(problem.guests)


@pytest.mark.parametrize("name", [info.name for info in available_solvers()])
def test_every_solver_returns_a_plan_when_stopped_before_it_starts(name: str) -> None:
    problem = load_problem_file(STATE)
    token = StopToken()
    token.stop()
    plan = solve(problem, name, SolveOptions(time_limit_s=30, stop=token))
    assert len(plan.assignments) == len(problem.guests)
    assert plan.statistics.interrupted is True
    if name == "cpsat":
        assert plan.runtime_s < 10
        assert check(problem, plan).ok


def test_an_unstopped_token_changes_nothing() -> None:
    problem = load_problem_file(RESTART)
    plan = solve(problem, "best-fit", SolveOptions(stop=StopToken()))
    assert plan.statistics.interrupted is False


def _cli(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "placement", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_solving(process: subprocess.Popen[str]) -> None:
    """Wait until the solve has begun: the `--progress` line of the first stage."""
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line or "progress" in line:
            return
    pytest.fail("no progress line within 60 s")


@pytest.mark.parametrize(
    "command",
    [
        ["solve", str(RESTART)],
        # The scenario commands share one path (failover, evacuate, rebalance, coldstart).
        ["coldstart", str(RESTART)],
    ],
    ids=["solve", "coldstart"],
)
def test_ctrl_c_writes_the_best_plan_so_far_and_exits_130(
    command: list[str], tmp_path: Path
) -> None:
    plan_file = tmp_path / "p.json"
    process = _cli(
        *command, "--time-limit", "120", "--progress", "-o", str(plan_file), cwd=tmp_path
    )
    _wait_for_solving(process)
    time.sleep(1.0)  # into the CP-SAT search
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert time.monotonic() - sent < 30  # at once, not after the 120 s limit
    assert process.returncode == 130
    assert "Traceback" not in err
    notes = [line for line in err.splitlines() if line.startswith("interrupted after")]
    assert len(notes) == 1
    assert notes[0].endswith("best plan so far, not proven") or "proven optimal" in notes[0]
    plan = load_plan_file(plan_file)
    assert plan.statistics.interrupted is True
    assert plan.assignments


def test_a_second_sigint_exits_at_once_without_a_traceback() -> None:
    script = (
        "import os, signal, time\n"
        "from placement.interrupt import sigint_stops\n"
        "from placement.solvers.stop import StopToken\n"
        "token = StopToken()\n"
        "with sigint_stops(token):\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(0.2)\n"
        "    assert token.stopped\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(30)\n"
        "print('not reached')\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert time.monotonic() - started < 25
    assert done.returncode == 130
    assert "Traceback" not in done.stderr
    assert "not reached" not in done.stdout


def test_ctrl_c_outside_a_solve_is_one_line_and_130(tmp_path: Path) -> None:
    """A KeyboardInterrupt anywhere else (here: inside loading) ends as exit 130."""
    script = (
        "import sys\n"
        "import placement.cli as cli\n"
        "def load(path):\n"
        "    raise KeyboardInterrupt\n"
        "cli.load_problem = load\n"
        f"sys.exit(cli.main(['validate', {str(RESTART)!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 130
    assert done.stderr.strip() == "placement: interrupted"


def test_bench_run_keeps_the_interrupted_row_for_the_next_run_to_repeat(tmp_path: Path) -> None:
    from bench.run import RETRIED, parse_solvers, read_rows, run_suite
    from bench.suites import suite

    out = tmp_path / "rows.jsonl"
    token = StopToken()
    threading.Timer(2.0, token.stop).start()
    rows = list(
        run_suite(
            suite_name="tiny",
            instances=suite("tiny", match=["S-0"]),
            solvers=parse_solvers("cpsat"),
            time_limit_s=60.0,
            out=out,
            isolate=False,
            stop=token,
        )
    )
    assert [row["status"] for row in rows] == ["interrupted"]
    assert rows[0]["wall_s"] < 30
    assert read_rows(out)[0]["plan_status"] in ("feasible", "optimal")
    assert "interrupted" in RETRIED  # the next run does it again


def test_options_with_a_token_can_travel_to_worker_processes() -> None:
    import copy
    import pickle

    options = SolveOptions(stop=StopToken())
    copied = pickle.loads(pickle.dumps(options))
    assert copied.stop is not None
    assert not copied.stop.stopped
    token = StopToken()
    token.stop()
    assert pickle.loads(pickle.dumps(token)).stopped
    assert copy.deepcopy(token).stopped
