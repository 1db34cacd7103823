"""Proxmox's own CRS regression tests (tests/data/proxmox-ha), replayed decision by
decision through `placement import proxmox` and the `proxmox-*` re-creations
(bench/proxmox_replay.py). Every decision the real HA manager logs must be ours too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.proxmox_replay import DATA, main, replay, replay_dirs

TESTS = list(replay_dirs([DATA]))

# Decisions per test, counted by hand in each log.expect: starts (a re-balance selection,
# or request_start -> started), moves, recoveries ("no recovery node found" once), the
# balancer's moves and, with ha-auto-rebalance, its "no move" at the end.
DECISIONS = {
    "test-crs-dynamic-auto-rebalance0": 1,  # no services: the balancer does nothing
    "test-crs-dynamic1": 2,  # vm:102 starts on node1, recovers to node3
    "test-crs-static-auto-rebalance1": 2,  # vm:101 starts; the balancer finds no move
    "test-crs-static-rebalance-resource-affinity1": 9,  # 8 rebalanced starts, vm:103 stuck
    "test-crs-static-rebalance2": 4,  # four services added one by one
    "test-crs-static1": 2,
    "test-crs-static3": 18,  # 9 starts, 9 migrations off a node in maintenance
    "test-crs-static5": 14,  # 8 starts, 6 relocations
}


def test_the_suite_is_there() -> None:
    assert set(DECISIONS) <= {test.name for test in TESTS}


@pytest.mark.parametrize("test", TESTS, ids=[t.name for t in TESTS])
def test_every_decision_agrees_with_proxmox(test: Path) -> None:
    decisions = replay(test)
    if test.name in DECISIONS:
        assert len(decisions) == DECISIONS[test.name]
    assert [d for d in decisions if not d.agrees] == []


def _test_dir(tmp_path: Path, log: list[str], rules: str | None = None) -> Path:
    """Two equal nodes, vm:1 configured on node1; `log` is the manager's log."""
    test = tmp_path / "test-x"
    test.mkdir()
    node = {"power": "off", "network": "off", "maxcpu": 8, "maxmem": 2**34}
    files = {
        "hardware_status": {"node1": node, "node2": node},
        "service_config": {"vm:1": {"node": "node1", "state": "started"}},
        "static_service_stats": {"vm:1": {"maxcpu": 1, "maxmem": 2**30}},
        "datacenter.cfg": {"crs": {"ha": "static"}},
    }
    for name, document in files.items():
        (test / name).write_text(json.dumps(document))
    if rules is not None:
        (test / "rules_config").write_text(rules)
    crm = "info     20    node1/crm: "
    head = [
        f"{crm}node 'node1': state changed from 'unknown' => 'online'",
        f"{crm}node 'node2': state changed from 'unknown' => 'online'",
        f"{crm}adding new service 'vm:1' on node 'node1'",
        f"{crm}service 'vm:1': state changed from 'request_start' to 'started'  (node = node1)",
    ]
    (test / "log.expect").write_text("\n".join(head + log) + "\n")
    return test


def test_a_choice_proxmox_does_not_make_is_a_disagreement(tmp_path: Path) -> None:
    """vm:1 must be on node2 (a strict rule), yet this log starts it on node1 and keeps it
    there while vm:2 starts at t=40: our start on node2 disagrees, and in the t=40 round
    moving the running vm:1 (which Proxmox leaves alone) disagrees too."""
    rules = "node-affinity: on-node2\n\tresources vm:1\n\tnodes node2\n\tstrict 1\n"
    crm = "info     40    node1/crm: "
    later = [
        "info     40      cmdlist: execute service vm:2 add node1 started 0",
        f"{crm}adding new service 'vm:2' on node 'node1'",
        f"{crm}service 'vm:2': state changed from 'request_start' to 'started'  (node = node1)",
    ]
    decisions = replay(_test_dir(tmp_path, later, rules))
    assert [(d.kind, d.service, d.expected, d.ours) for d in decisions] == [
        ("start", "vm:1", "node1", "node2"),
        ("start", "vm:2", "node1", "node1"),
        ("stay", "vm:1", "node1", "node2"),
    ]
    assert [d.agrees for d in decisions] == [False, True, False]


def test_an_operator_migration_is_not_a_decision(tmp_path: Path) -> None:
    """A migration the operator asked for ('got crm command') is not the scheduler's."""
    crm = "info     40    node1/crm: "
    log = [
        "info     40      cmdlist: execute service vm:1 migrate node2",
        f"{crm}got crm command: migrate vm:1 node2",
        f"{crm}migrate service 'vm:1' to node 'node2'",
        f"{crm}service 'vm:1': state changed from 'started' to 'migrate'  "
        "(node = node1, target = node2)",
        "info     60    node1/crm: service 'vm:1': state changed from 'migrate' to "
        "'started'  (node = node2)",
    ]
    decisions = replay(_test_dir(tmp_path, log))
    assert [(d.kind, d.service, d.expected) for d in decisions] == [("start", "vm:1", "node1")]
    assert all(d.agrees for d in decisions)


def test_a_test_may_start_from_a_manager_status(tmp_path: Path) -> None:
    """vm:1 already runs on node2 (manager_status, no 'adding new service' line); node2
    fails and the manager recovers it to node1, the only node left."""
    test = _test_dir(tmp_path, [])
    status = {
        "node_status": {"node1": "online", "node2": "online"},
        "service_status": {"vm:1": {"node": "node2", "state": "started"}},
    }
    (test / "manager_status").write_text(json.dumps(status))
    crm = "info    300    node1/crm: "
    (test / "log.expect").write_text(
        "\n".join(
            [
                f"{crm}node 'node2': state changed from 'online' => 'unknown'",
                f"{crm}service 'vm:1': state changed from 'started' to 'fence'",
                f"{crm}service 'vm:1': state changed from 'fence' to 'recovery'",
                f"{crm}recover service 'vm:1' from fenced node 'node2' to node 'node1'",
            ]
        )
    )
    decisions = replay(test)
    assert [(d.kind, d.expected, d.ours) for d in decisions] == [("recover", "node1", "node1")]


def test_a_service_being_stopped_still_counts(tmp_path: Path) -> None:
    """vm:2 is configured stopped but still on node1 (request_stop): Proxmox counts its
    usage there, so vm:1, rebalanced on start, goes to node2, not to node1 by name."""
    test = _test_dir(tmp_path, [])
    (test / "datacenter.cfg").write_text(
        json.dumps({"crs": {"ha": "static", "ha-rebalance-on-start": 1}})
    )
    config = {
        "vm:1": {"node": "node1", "state": "started"},
        "vm:2": {"node": "node1", "state": "stopped"},
    }
    (test / "service_config").write_text(json.dumps(config))
    stats = {"vm:1": {"maxcpu": 1, "maxmem": 2**30}, "vm:2": {"maxcpu": 4, "maxmem": 2**33}}
    (test / "static_service_stats").write_text(json.dumps(stats))
    crm = "info     20    node1/crm: "
    lines = [
        f"{crm}node 'node1': state changed from 'unknown' => 'online'",
        f"{crm}node 'node2': state changed from 'unknown' => 'online'",
        f"{crm}adding new service 'vm:1' on node 'node1'",
        f"{crm}adding new service 'vm:2' on node 'node1'",
        f"{crm}service vm:1: re-balance selected new node node2 for startup",
    ]
    (test / "log.expect").write_text("\n".join(lines) + "\n")
    decisions = replay(test)
    assert [(d.kind, d.service, d.expected, d.ours) for d in decisions] == [
        ("start", "vm:1", "node2", "node2")
    ]


def test_the_report_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(DATA / "test-crs-static3")]) == 0
    out = capsys.readouterr().out
    assert "test-crs-static3" in out
    assert out.splitlines()[-1].split() == ["total", "18", "/", "18"]
