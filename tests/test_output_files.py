"""Small honest fixes around output: plan files get the mode a plain `open` gives, a bad
`-o` names the user's path (before solving), an unused pool has no peak instant, and
`solve` and `show` print the same solve time (the plan's `runtime_s`)."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from placement.cli import main
from placement.codec import write_json_atomic

EXAMPLES = Path(__file__).parent.parent / "examples"
RESTART = str(EXAMPLES / "single-host-restart.json")


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask_022")
def test_a_new_plan_file_has_the_mode_open_gives(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    assert main(["solve", RESTART, "--solver", "best-fit", "-o", str(plan)]) == 0
    assert _mode(plan) == 0o644  # not mkstemp's 0600


def test_the_umask_is_respected(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        write_json_atomic(tmp_path / "private.json", {})
    finally:
        os.umask(old)
    assert _mode(tmp_path / "private.json") == 0o600


@pytest.mark.usefixtures("umask_022")
def test_rewriting_a_file_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "plan.json"
    target.write_text("{}")
    target.chmod(0o640)
    write_json_atomic(target, {"a": 1})
    assert _mode(target) == 0o640
    assert json.loads(target.read_text()) == {"a": 1}


@pytest.mark.parametrize("where", ["missing/plan.json", "folder"])
def test_a_bad_output_path_is_named_as_given_before_solving(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "folder").mkdir()
    target = str(tmp_path / where)
    for command in (
        ["solve", RESTART, "-o", target, "--time-limit", "60"],
        ["coldstart", RESTART, "--problem-out", target, "--time-limit", "60"],
    ):
        assert main(command) == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert target in line
        assert ".tmp" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]  # nothing left behind


@pytest.mark.parametrize("where", ["missing/plan.json", "folder"])
def test_the_library_writer_names_the_path_not_the_temporary_file(
    where: str, tmp_path: Path
) -> None:
    (tmp_path / "folder").mkdir()
    target = tmp_path / where
    with pytest.raises(OSError, match="directory") as caught:
        write_json_atomic(target, {})
    assert caught.value.filename == str(target)
    assert list((tmp_path / "folder").iterdir()) == []


def test_an_unused_pool_has_no_peak_instant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    problem = tmp_path / "p.json"
    problem.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "hosts": [{"name": "a", "capacity": {"ram_mib": 10}}],
                "guests": [{"name": "g", "demand": {"ram_mib": 1}}],
                "boot_pools": {"san_iops": 2},
            }
        )
    )
    plan = tmp_path / "plan.json"
    assert main(["solve", str(problem), "--solver", "best-fit", "-o", str(plan)]) == 0
    capsys.readouterr()
    assert main(["check", str(problem), str(plan)]) == 0
    out = capsys.readouterr().out
    assert "pool san_iops: peak 0 of 2\n" in out
    assert "None" not in out


def test_solve_and_show_print_the_same_solve_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.json"
    assert main(["solve", RESTART, "--time-limit", "2", "-o", str(plan), "--quiet"]) == 0
    solved = re.search(r"in ([0-9.]+) s;", capsys.readouterr().out)
    assert main(["show", RESTART, str(plan)]) == 0
    shown = re.search(r"in ([0-9.]+) s;", capsys.readouterr().out)
    assert solved is not None
    assert shown is not None
    assert solved.group(1) == shown.group(1)
    assert f"{json.loads(plan.read_text())['runtime_s']:.2f}" == solved.group(1)
