"""`python -m bench wall`: the wall time of `cpsat` against its limit and the goal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import wall
from bench.__main__ import main as bench_main


def test_the_goal_is_five_percent_and_half_a_second() -> None:
    assert wall.goal_s(10.0) == pytest.approx(11.0)
    assert wall.goal_s(60.0) == pytest.approx(63.5)


def test_the_default_instances_are_one_per_suite_size_and_l_only_when_named() -> None:
    names = [name for name, _ in wall.instances([])]
    assert names[: len(wall.EXAMPLE_NAMES)] == list(wall.EXAMPLE_NAMES)
    assert {"S-0", "M-0", "j601_1", "class4_40_5_0"} <= set(names)
    assert "L-0" not in names
    assert [name for name, _ in wall.instances(["L-0", "S-0"])] == ["S-0", "L-0"]


def test_the_bench_measures_both_modes_and_writes_a_row_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "wall.jsonl"
    code = bench_main(
        ["wall", "--limits", "1", "--only", "frozen-and-dependencies", "--out", str(out)]
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["mode"] for row in rows] == ["wall", "deterministic"]
    for row in rows:
        assert row["instance"] == "frozen-and-dependencies"
        assert row["wall_per_goal"] == pytest.approx(row["wall_s"] / 1.55, abs=2e-3)
        assert "placed" in row["stages"]
    printed = capsys.readouterr().out
    assert "| frozen-and-dependencies | 1 | deterministic |" in printed
    assert code == (0 if all(row["wall_per_goal"] <= 1 for row in rows) else 1)
