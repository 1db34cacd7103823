"""Proxmox's own CRS regression tests (tests/data/proxmox-ha), replayed decision by
decision through `placement import proxmox` and the `proxmox-*` re-creations
(bench/proxmox_replay.py). Every decision the real HA manager logs must be ours too."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.proxmox_replay import DATA, log_steps, main, replay, replay_dirs

TESTS = list(replay_dirs([DATA]))

# Decisions per test, counted by hand in each log.expect: every `state changed ... to
# 'started' (node = X)` (last one per service and step) and every "no recovery node found".
DECISIONS = {
    "test-crs-dynamic-auto-rebalance0": 0,  # no services: nothing to decide
    "test-crs-dynamic1": 2,  # vm:102 starts on node1, recovers to node3
    "test-crs-static-auto-rebalance1": 1,  # vm:101 starts; the balancer finds no move
    "test-crs-static-rebalance-resource-affinity1": 9,  # 8 rebalanced starts, vm:103 stuck
    "test-crs-static-rebalance2": 4,  # four services added one by one
    "test-crs-static1": 2,
    "test-crs-static3": 18,  # 9 starts, 9 migrations off a node in maintenance
    "test-crs-static5": 14,  # 8 starts, 6 relocations
}


def test_the_suite_is_there() -> None:
    assert {test.name for test in TESTS} == set(DECISIONS)


@pytest.mark.parametrize("test", TESTS, ids=[t.name for t in TESTS])
def test_every_decision_agrees_with_proxmox(test: Path) -> None:
    decisions = replay(test)
    assert len([d for d in decisions if not d.moved]) == DECISIONS[test.name]
    differing = [d for d in decisions if not d.agrees]
    assert differing == []


def test_the_log_is_read_step_by_step() -> None:
    changed = "node1/crm: service 'vm:1': state changed from"
    no_node = "node1/crm: recovering service 'vm:1' from fenced node 'node2' failed, no recovery"
    log = "\n".join(
        [
            "info     20      cmdlist: execute power node1 on",
            "info     20      cmdlist: execute power node2 on",
            f"info     20    {changed} 'request_start' to 'request_start_balance'  "
            "(node = node1, target = node2)",
            f"info     40    {changed} 'request_start_balance' to 'started'  (node = node2)",
            "info    120      cmdlist: execute network node2 off",
            f"info    160    {changed} 'started' to 'fence'",
            f"err     240    {no_node} node found",
            f"err     260    {no_node} node found",
            "info    300      cmdlist: execute power node2 on",
            f"info    320    {changed} 'recovery' to 'started'  (node = node2)",
        ]
    )
    assert log_steps(log) == [{"vm:1": "node2"}, {"vm:1": None}, {"vm:1": "node2"}]


def test_an_unknown_command_is_named(tmp_path: Path) -> None:
    test = tmp_path / "test-x"
    test.mkdir()
    source = DATA / "test-crs-static1"
    for name in ("hardware_status", "service_config", "static_service_stats", "datacenter.cfg"):
        (test / name).write_text((source / name).read_text())
    (test / "cmdlist").write_text('[["power node1 on"], ["reboot node1"]]')
    (test / "log.expect").write_text("")
    with pytest.raises(ValueError, match="command not replayed: 'reboot node1'"):
        replay(test)


def test_the_report_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(DATA / "test-crs-static3")]) == 0
    out = capsys.readouterr().out
    assert "test-crs-static3" in out
    assert out.splitlines()[-1].split() == ["total", "18", "/", "18"]
