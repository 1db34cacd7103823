"""The Proxmox importer on a cluster's own configuration files: /etc/pve/ha/*.cfg
(section-config text), datacenter.cfg and /cluster/options (the CRS options), node
affinity with priorities for the re-creations, and what it warns about."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from placement.adapters import import_proxmox
from placement.adapters.proxmox import parse_section_config
from placement.cli import main
from placement.codec import dump_problem

PVE = Path(__file__).parent / "data" / "adapters" / "proxmox"


def test_section_config_is_read_as_pvesh_prints_it() -> None:
    """rules.cfg holds the same rules as ha-rules.json: the problems are the same."""
    entries = parse_section_config((PVE / "rules.cfg").read_text(), "rule", "rules.cfg")
    assert entries[0] == {
        "type": "node-affinity",
        "rule": "db-on-fast-nodes",
        "resources": "vm:103",
        "nodes": "pve1:2,pve2:1",
        "strict": "1",
    }
    resources = parse_section_config((PVE / "resources.cfg").read_text(), "sid", "r.cfg")
    assert resources[-1] == {"type": "ct", "sid": "ct:200", "state": "started"}

    def problem(rules: str, ha: str) -> dict[str, object]:
        result = import_proxmox(
            PVE / "cluster-resources.json",
            ha_resources=PVE / ha,
            ha_rules=PVE / rules,
            configs=PVE / "configs",
        )
        return dump_problem(result.problem)

    from_cfg = problem("rules.cfg", "resources.cfg")
    # resources.cfg has one more setting than ha-resources.json: failback 0 on vm:103.
    assert from_cfg["proxmox"].pop("no_failback") == ["vm:103"]  # type: ignore[attr-defined]
    assert from_cfg == problem("ha-rules.json", "ha-resources.json")


def test_failback_off_goes_to_the_re_creations() -> None:
    """resources.cfg sets `failback 0` on vm:103, whose rule has node priorities."""
    result = import_proxmox(
        PVE / "cluster-resources.json",
        ha_resources=PVE / "resources.cfg",
        ha_rules=PVE / "rules.cfg",
        configs=PVE / "configs",
    )
    assert result.problem.proxmox.no_failback == frozenset({"vm:103"})
    assert not any("failback" in warning for warning in result.warnings)


def test_bad_section_config_names_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.cfg"
    rules.write_text("node-affinity: a\n\tresources vm:100\nnodes pve1\n")
    out = tmp_path / "p.json"
    args = [str(PVE / "cluster-resources.json"), "--ha-rules", str(rules)]
    code = main(["import", "proxmox", *args, "--configs", str(PVE / "configs"), "-o", str(out)])
    assert code == 2
    assert not out.exists()
    assert capsys.readouterr().err == f"{rules}:3: not a section-config line: 'nodes pve1'\n"


def test_datacenter_cfg_turns_on_rebalance_on_start() -> None:
    result = import_proxmox(
        PVE / "cluster-resources.json", datacenter=PVE / "datacenter.cfg", configs=PVE / "configs"
    )
    assert result.problem.proxmox.rebalance_on_start
    assert result.document["proxmox"] == {"rebalance_on_start": True}
    assert any("--solver proxmox-static" in note for note in result.notes)
    assert not any("crs" in warning for warning in result.warnings)


def test_cluster_options_json_dynamic_mode_and_unknown_options_warn() -> None:
    result = import_proxmox(
        PVE / "cluster-resources.json",
        datacenter=PVE / "cluster-options.json",
        configs=PVE / "configs",
    )
    assert not result.problem.proxmox.rebalance_on_start
    text = "\n".join(result.warnings)
    assert "crs ha=dynamic is not re-created" in text
    assert "crs option ha-auto-rebalance-threshold=0.5 not mapped" in text
    assert any("--solver proxmox-rebalance" in note for note in result.notes)


def test_without_datacenter_the_default_basic_scheduler_is_named() -> None:
    result = import_proxmox(PVE / "cluster-resources.json", configs=PVE / "configs")
    assert any("--solver proxmox-basic" in note for note in result.notes)
    assert "proxmox" not in result.document


def test_node_without_status_is_failed_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "resources.json"
    path.write_text(
        json.dumps(
            [
                {"type": "node", "node": "a", "status": "online", "maxcpu": 4, "maxmem": 2**32},
                {"type": "node", "node": "b", "maxcpu": 4, "maxmem": 2**32},
            ]
        )
    )
    result = import_proxmox(path)
    assert result.problem.host("b").state.value == "failed"
    assert result.warnings == (f"{path}[1]: node 'b' has no status; taken as failed",)


def test_group_priorities_go_to_the_re_creations() -> None:
    """VE 8 groups: 'any' (pve1:2, pve2:1, pve3:1, not restricted) is a preference with
    priorities; 'prod' (restricted, equal priorities) is only a host restriction."""
    result = import_proxmox(
        PVE / "cluster-resources.json",
        ha_resources=PVE / "ha-resources-groups.json",
        ha_groups=PVE / "ha-groups.json",
        configs=PVE / "configs",
    )
    rules = result.problem.proxmox.node_affinity
    assert len(rules) == 1
    assert rules[0].guests == ("vm:101",)
    assert dict(rules[0].nodes) == {"pve1": 2, "pve2": 1, "pve3": 1}
    assert not rules[0].strict
    assert result.problem.guest("vm:100").hosts == frozenset({"pve1", "pve2"})


def test_cli_reads_the_configuration_files(tmp_path: Path) -> None:
    out = tmp_path / "problem.json"
    files = {
        "--ha-resources": "resources.cfg",
        "--ha-rules": "rules.cfg",
        "--datacenter": "datacenter.cfg",
        "--configs": "configs",
    }
    args = [item for flag, name in files.items() for item in (flag, str(PVE / name))]
    code = main(["import", "proxmox", str(PVE / "cluster-resources.json"), *args, "-o", str(out)])
    assert code == 0
    document = json.loads(out.read_text())
    assert document["proxmox"]["rebalance_on_start"] is True
    assert {"guests": ["ct:200"], "nodes": {"pve2": 0}, "strict": False} in document["proxmox"][
        "node_affinity"
    ]


def test_ha_status_puts_nodes_in_maintenance(tmp_path: Path) -> None:
    """pvesh shows a node in HA maintenance as online; the HA manager's status does not.
    pve2 in maintenance: its host state is maintenance, so its running guests move."""
    status = tmp_path / "manager-status.json"
    status.write_text(
        json.dumps(
            {
                "manager_status": {
                    "master_node": "pve1",
                    "node_status": {"pve1": "unknown", "pve2": "maintenance", "pve9": "gone"},
                },
                "quorum": {"node": "pve1", "quorate": 1},
            }
        )
    )
    result = import_proxmox(
        PVE / "cluster-resources.json", configs=PVE / "configs", ha_status=status
    )
    problem = result.problem
    assert problem.host("pve2").state.value == "maintenance"
    assert problem.host("pve1").state.value == "online"
    on_pve2 = [g for g in problem.guests if g.current_host == "pve2"]
    assert on_pve2
    assert not any(problem.runs_now(g) and problem.host("pve2").online for g in on_pve2)
    text = "\n".join(result.warnings)
    assert "HA sees node 'pve1' as 'unknown'; taken as online" in text
    assert "unknown node 'pve9'" in text
    # The bare manager status (the file /etc/pve/ha/manager_status) reads the same.
    status.write_text(json.dumps({"node_status": {"pve2": "fence"}}))
    fenced = import_proxmox(
        PVE / "cluster-resources.json", configs=PVE / "configs", ha_status=status
    )
    assert fenced.problem.host("pve2").state.value == "failed"
    status.write_text(json.dumps([]))
    code = main(
        ["import", "proxmox", str(PVE / "cluster-resources.json"), "--ha-status", str(status)]
    )
    assert code == 2


def test_guests_outside_ha_are_unmanaged_for_the_re_creations(tmp_path: Path) -> None:
    """Only vm:100 and vm:103 are HA resources, and vm:101 is `ignored`: the rest is not
    the HA manager's to count or recover."""
    ha = tmp_path / "ha-resources.json"
    ha.write_text(
        json.dumps(
            [
                {"sid": "vm:100", "state": "started"},
                {"sid": "vm:101", "state": "ignored"},
                {"sid": "vm:103", "state": "started"},
            ]
        )
    )
    result = import_proxmox(
        PVE / "cluster-resources.json", ha_resources=ha, configs=PVE / "configs"
    )
    names = {g.name for g in result.problem.guests}
    assert "vm:101" in names  # running: imported, but not HA's
    assert result.problem.proxmox.unmanaged == names - {"vm:100", "vm:103"}
    assert any("are not HA resources (proxmox.unmanaged)" in note for note in result.notes)
    # Without the HA resources, nothing is known: every guest counts as HA's.
    plain = import_proxmox(PVE / "cluster-resources.json", configs=PVE / "configs")
    assert not plain.problem.proxmox.unmanaged


def test_fractional_and_unlimited_container_cpus(tmp_path: Path) -> None:
    """ct:200 with cpulimit 0.5 demands 1 whole vCPU but the static CRS counts 0.5. With
    no cpulimit and no cores the CRS counts it as every CPU of a node (0); its demand is
    its node's CPUs, here (pve3 has failed and reports no size) pvestatd's maxcpu, 1."""
    configs = tmp_path / "configs"
    configs.mkdir()
    for path in (PVE / "configs").iterdir():
        (configs / path.name).write_text(path.read_text())
    container = json.loads((configs / "200.json").read_text())
    container["cpulimit"] = "0.5"
    (configs / "200.json").write_text(json.dumps(container))
    problem = import_proxmox(PVE / "cluster-resources.json", configs=configs).problem
    assert problem.guest("ct:200").demand["vcpus"] == 1
    assert dict(problem.proxmox.cpus) == {"ct:200": 0.5}
    del container["cpulimit"], container["cores"]
    (configs / "200.json").write_text(json.dumps(container))
    problem = import_proxmox(PVE / "cluster-resources.json", configs=configs).problem
    assert problem.guest("ct:200").demand["vcpus"] == 1
    assert dict(problem.proxmox.cpus) == {"ct:200": 0}
