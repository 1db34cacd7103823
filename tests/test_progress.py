"""Progress where people run it: `--progress` prints stage, best value, bound and elapsed
time to a log (not a terminal) at least every few seconds, `--quiet` nothing; the bench
shows a bar per suite on a terminal and `[k/N]` on every run line."""

from __future__ import annotations

import io
import re
import threading
import time
from pathlib import Path

import pytest

from placement.cli import main
from placement.progress import ProgressPrinter, progress_line
from placement.solvers import Progress

RESTART = str(Path(__file__).parent.parent / "examples" / "single-host-restart.json")


def _report(elapsed_s: float, stage: str = "recovery") -> Progress:
    return Progress(elapsed_s=elapsed_s, stage=stage, objective=20455, bound=17093, gap=0.1643)


def test_a_progress_line_names_stage_best_bound_gap_and_time() -> None:
    assert progress_line(_report(12.34)) == (
        "progress    12.3 s  recovery  best 20455  bound 17093  gap 16.43%"
    )


def test_a_log_gets_a_stage_s_first_report_then_one_per_interval() -> None:
    stream = io.StringIO()
    printer = ProgressPrinter(stream, every_report=False, interval_s=60)
    for i in range(100):  # a burst of improvements: one line, not a hundred
        printer(_report(i / 100))
    printer(_report(1.0, stage="balance"))  # a new stage is always shown
    lines = stream.getvalue().splitlines()
    assert [line.split()[3] for line in lines] == ["recovery", "balance"]


def test_a_terminal_gets_every_report() -> None:
    stream = io.StringIO()
    printer = ProgressPrinter(stream, every_report=True, interval_s=60)
    for i in range(5):
        printer(_report(i))
    assert len(stream.getvalue().splitlines()) == 5


def test_the_heartbeat_repeats_the_latest_figures_when_nothing_new_comes() -> None:
    stream = io.StringIO()
    printer = ProgressPrinter(stream, every_report=False, interval_s=0.2)
    with printer.running("solving with cpsat, limit 9 s"):
        printer(_report(0.0))
        time.sleep(1.5)
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith("solving with cpsat, limit 9 s")
    beats = [line for line in lines[2:] if "best 20455" in line]
    assert len(beats) >= 3  # about one per 0.2 s (generous: the machine is shared)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [(["--progress"], True), (["--quiet"], False), ([], False)],
    ids=["progress", "quiet", "default-not-a-terminal"],
)
def test_progress_on_stderr_follows_the_flags(
    flags: list[str], expected: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    # Only the run that shows progress needs the optimiser's stages (and its 2 s).
    solver = ["--time-limit", "2"] if expected else ["--solver", "best-fit"]
    assert main(["solve", RESTART, *solver, *flags]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("progress")]
    assert bool(lines) is expected
    if expected:
        assert re.match(r"progress +0\.0 s  solving with cpsat, limit 2 s$", lines[0])
        assert any(" recovery " in line and " bound " in line for line in lines)


def test_progress_and_quiet_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["solve", RESTART, "--progress", "--quiet"]) == 2
    assert "not allowed with" in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bench_shows_a_bar_per_suite_on_a_terminal() -> None:
    pytest.importorskip("tqdm")
    from bench.run import SuiteProgress

    stream = _Terminal()
    progress = SuiteProgress("quick", stream, bar=True)
    progress.start(3)
    for k in range(1, 4):
        progress.line(f"[{k}/3] run {k}")
        progress.advance()
    progress.close()
    text = stream.getvalue()
    assert "quick: 100%" in text
    assert "3/3" in text
    assert "[2/3] run 2" in text


def test_the_bench_writes_plain_lines_elsewhere() -> None:
    from bench.run import SuiteProgress

    stream = io.StringIO()
    progress = SuiteProgress("quick", stream, bar=True)
    progress.start(2)
    progress.line("[1/2] run 1")
    progress.advance()
    progress.close()
    assert stream.getvalue() == "[1/2] run 1\n"


def test_bench_run_lines_carry_their_place(tmp_path: Path) -> None:
    from bench.run import parse_solvers, run_suite
    from bench.suites import suite

    lines: list[str] = []
    totals: list[int] = []
    rows = list(
        run_suite(
            suite_name="tiny",
            instances=suite("tiny", match=["S-0"]),
            solvers=parse_solvers("best-fit,first-fit"),
            time_limit_s=1.0,
            out=tmp_path / "rows.jsonl",
            isolate=False,
            log=lines.append,
            on_total=totals.append,
        )
    )
    assert len(rows) == 2
    assert totals == [2]
    assert [line[:5] for line in lines[1:]] == ["[1/2]", "[2/2]"]


def test_a_progress_printer_is_safe_from_threads() -> None:
    stream = io.StringIO()
    printer = ProgressPrinter(stream, every_report=True)
    threads = [
        threading.Thread(target=lambda: [printer(_report(i)) for i in range(50)]) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(line.startswith("progress") for line in stream.getvalue().splitlines())
    assert len(stream.getvalue().splitlines()) == 200
