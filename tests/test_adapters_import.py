"""Importers: Proxmox pvesh JSON, a Pacemaker CIB and libvirt domain XML, as the tools write
them (tests/data/adapters). Each mapping is checked against the sample's hand-read values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from placement.adapters import ImportOptions, import_libvirt, import_pacemaker, import_proxmox
from placement.cli import main
from placement.errors import InvalidInputError
from placement.model import GuestState, HostState

DATA = Path(__file__).parent / "data" / "adapters"
PVE = DATA / "proxmox"
CIB = DATA / "pacemaker" / "cib.xml"
LIBVIRT = DATA / "libvirt"


def _pve(**kwargs: object) -> object:
    return import_proxmox(
        PVE / "cluster-resources.json",
        ha_resources=PVE / "ha-resources.json",
        ha_rules=PVE / "ha-rules.json",
        configs=PVE / "configs",
        **kwargs,  # type: ignore[arg-type]
    )


# --- Proxmox ---------------------------------------------------------------------------


def test_proxmox_hosts_from_nodes_offline_node_failed() -> None:
    problem = _pve().problem  # type: ignore[attr-defined]
    assert [h.name for h in problem.hosts] == ["pve1", "pve2", "pve3"]
    pve1 = problem.host("pve1")
    # maxmem 270039625728 bytes = 257529.6 MiB, floored.
    assert dict(pve1.capacity) == {"vcpus": 32, "ram_mib": 257529}
    assert problem.host("pve3").state is HostState.FAILED


def test_proxmox_static_usage_as_the_crs_derives_it() -> None:
    problem = _pve().problem  # type: ignore[attr-defined]
    # 103.json: vcpus 6 wins over sockets 2 x cores 4; memory "current=16384".
    assert dict(problem.guest("vm:103").demand) == {"vcpus": 6, "ram_mib": 16384}
    # 100.json: sockets 1 x cores 2, memory "8192" (maxmem says 8 GiB too).
    assert dict(problem.guest("vm:100").demand) == {"vcpus": 2, "ram_mib": 8192}
    # vm:101 has no config: maxcpu 2, maxmem 4 GiB from /cluster/resources.
    assert dict(problem.guest("vm:101").demand) == {"vcpus": 2, "ram_mib": 4096}
    # ct:200: cores 1, memory 1024.
    assert dict(problem.guest("ct:200").demand) == {"vcpus": 1, "ram_mib": 1024}


def test_proxmox_states_templates_and_stopped_guests() -> None:
    result = _pve()
    problem = result.problem  # type: ignore[attr-defined]
    names = {g.name for g in problem.guests}
    assert "vm:9000" not in names  # a template
    assert "ct:201" not in names  # stopped, no HA request
    web02 = problem.guest("vm:102")  # status unknown on the offline node, HA started
    assert web02.state is GuestState.RUNNING
    assert web02.current_host == "pve3"
    assert not problem.runs_now(web02)  # so a plan restarts it
    assert problem.runs_now(problem.guest("vm:100"))
    assert any("ct:201" in note for note in result.notes)  # type: ignore[attr-defined]
    with_stopped = _pve(options=ImportOptions(include_stopped=True)).problem  # type: ignore[attr-defined]
    assert with_stopped.guest("ct:201").state is GuestState.STOPPED


def test_proxmox_ha_rules_and_their_warnings() -> None:
    result = _pve()
    problem = result.problem  # type: ignore[attr-defined]
    assert problem.guest("vm:103").hosts == frozenset({"pve1", "pve2"})
    assert problem.guest("vm:101").anti_affinity == problem.guest("vm:102").anti_affinity
    assert problem.guest("vm:101").anti_affinity
    assert problem.guest("vm:103").together == problem.guest("vm:104").together is not None
    assert problem.guest("ct:200").hosts is None  # the non-strict rule is a preference
    # ... kept, with the strict rule's priorities, for the Proxmox re-creations.
    rules = {rule.guests: rule for rule in problem.proxmox.node_affinity}
    assert dict(rules[("vm:103",)].nodes) == {"pve1": 2, "pve2": 1}
    assert rules[("vm:103",)].strict
    assert dict(rules[("ct:200",)].nodes) == {"pve2": 0}
    assert not rules[("ct:200",)].strict
    text = "\n".join(result.warnings)  # type: ignore[attr-defined]
    assert "'dns-prefers-pve2' is not strict" in text
    assert "'db-on-fast-nodes' has node priorities" in text


def test_proxmox_ha_groups_restricted_and_not() -> None:
    result = import_proxmox(
        PVE / "cluster-resources.json",
        ha_resources=PVE / "ha-resources-groups.json",
        ha_groups=PVE / "ha-groups.json",
        configs=PVE / "configs",
    )
    problem = result.problem
    assert problem.guest("vm:100").hosts == frozenset({"pve1", "pve2"})  # prod, restricted
    assert problem.guest("vm:101").hosts is None  # any, not restricted: a preference
    assert any("'any' is not restricted" in w for w in result.warnings)


def test_proxmox_bad_input_names_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "resources.json"
    path.write_text(
        json.dumps(
            [{"type": "node", "node": "a\nb", "status": "online", "maxcpu": 4, "maxmem": 2**30}]
        )
    )
    with pytest.raises(InvalidInputError, match=r"resources.json\[0\].node: .*control character"):
        import_proxmox(path)
    path.write_text(json.dumps({"not": "a list"}))
    with pytest.raises(InvalidInputError, match="expected a JSON list"):
        import_proxmox(path)


# --- Pacemaker -------------------------------------------------------------------------


def test_pacemaker_nodes_states_and_utilization() -> None:
    problem = import_pacemaker(CIB).problem
    states = {h.name: h.state for h in problem.hosts}
    assert states == {
        "ha1": HostState.ONLINE,
        "ha2": HostState.ONLINE,
        "ha3": HostState.FAILED,  # in_ccm="false" crmd="offline"
        "ha4": HostState.MAINTENANCE,  # standby=on
    }
    assert dict(problem.host("ha1").capacity) == {"vcpus": 32, "ram_mib": 126976}
    assert dict(problem.guest("vm-db1").demand) == {"vcpus": 8, "ram_mib": 32768}
    assert problem.guest("vm-db1").priority == 10
    assert problem.schedule.max_starts == 4  # batch-limit


def test_pacemaker_where_resources_run_from_the_status_section() -> None:
    problem = import_pacemaker(CIB).problem
    assert problem.guest("vm-db1").current_host == "ha1"
    # vm-web2: a probe on ha1 found it not running (rc 7); started on ha2.
    assert problem.guest("vm-web2").current_host == "ha2"
    assert problem.guest("vm-web1").current_host == "ha3"
    assert not problem.runs_now(problem.guest("vm-web1"))  # ha3 is down


def test_pacemaker_constraints_groups_and_what_is_not_mapped() -> None:
    result = import_pacemaker(CIB)
    problem = result.problem
    assert problem.guest("vm-db1").avoid_hosts == frozenset({"ha3"})
    assert problem.guest("vm-web1").anti_affinity & problem.guest("vm-web2").anti_affinity
    # INFINITY colocation is one-way: vm-app1 runs beside vm-db1, which may run alone.
    assert problem.guest("vm-app1").follows == "vm-db1"
    assert problem.guest("vm-db1").follows is None
    assert problem.guest("vm-app1").boot.after == ("vm-db1",)
    # The group: colocated and ordered.
    assert problem.guest("vm-mailfront").together == "grp-mail"
    assert problem.guest("vm-mailfront").boot.after == ("vm-mailstore",)
    assert not problem.guest("vm-mailstore").movable  # no allow-migrate
    assert problem.guest("vm-db1").movable
    assert not problem.has_guest("fence-ipmi")
    text = "\n".join(result.warnings)
    # A finite location score is a score Pacemaker adds, for pacemaker-* to read.
    assert problem.pacemaker is not None
    assert problem.pacemaker.scores["vm-app1"] == {"ha1": 200}
    assert "location-vm-app1-ha1-200" not in text
    for unmapped in (
        "colocation-vm-web2-vm-app1-100",  # finite colocation score
        "clvmd-clone",  # a clone
        "order-vm-app1-vm-web1-optional",  # optional ordering
    ):
        assert unmapped in text
    assert any("pacemaker-balanced" in note for note in result.notes)


BOMB = """<?xml version="1.0"?>
<!DOCTYPE cib [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<cib><configuration><nodes><node id="1" uname="&b;"/></nodes></configuration></cib>
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BOMB, "refused"),
        ("<cib><configuration>", "invalid XML at line 1"),
        ("<domain/>", "expected a <cib> document"),
        (
            '<cib><configuration><nodes><node id="1" uname="a&#10;b"/></nodes>'
            "</configuration></cib>",
            "control character",
        ),
        (
            '<cib><configuration><nodes><node id="1" uname=""/></nodes></configuration></cib>',
            "must not be empty",
        ),
    ],
)
def test_pacemaker_hostile_or_broken_cib_is_refused(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "cib.xml"
    path.write_text(text)
    with pytest.raises(InvalidInputError, match=message):
        import_pacemaker(path)


# --- libvirt ---------------------------------------------------------------------------


def test_libvirt_units_vcpus_and_running_state() -> None:
    result = import_libvirt(LIBVIRT, hosts=LIBVIRT / "hosts.json")
    problem = result.problem
    assert dict(problem.guest("db1").demand) == {"ram_mib": 32 * 1024, "vcpus": 8}  # 32 GiB
    assert dict(problem.guest("web1").demand) == {"ram_mib": 4096, "vcpus": 2}  # 4194304 KiB
    assert dict(problem.guest("web2").demand) == {"ram_mib": 4096, "vcpus": 2}  # current='2'
    assert problem.guest("app1").current_host == "kvm3"
    assert problem.host("kvm3").state is HostState.FAILED
    # nodeinfo: 131596660 KiB = 128512.4 MiB, floored for a capacity.
    assert dict(problem.host("kvm1").capacity) == {"vcpus": 32, "ram_mib": 128512}
    assert not problem.has_guest("batch1")  # defined, no id: stopped
    stopped = import_libvirt(
        LIBVIRT, hosts=LIBVIRT / "hosts.json", options=ImportOptions(include_stopped=True)
    ).problem
    assert dict(stopped.guest("batch1").demand) == {"ram_mib": 8192, "vcpus": 2}  # bytes
    assert stopped.guest("batch1").state is GuestState.STOPPED


def test_libvirt_flat_folder_with_mapping(tmp_path: Path) -> None:
    for path in (LIBVIRT / "kvm1").glob("*.xml"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "map.json").write_text(json.dumps({"web1": "kvm1", "db1": "kvm2"}))
    (tmp_path / "hosts.json").write_text(
        json.dumps(
            [{"name": n, "capacity": {"vcpus": 8, "ram_mib": 65536}} for n in ("kvm1", "kvm2")]
        )
    )
    problem = import_libvirt(
        tmp_path, hosts=tmp_path / "hosts.json", mapping=tmp_path / "map.json"
    ).problem
    assert problem.guest("db1").current_host == "kvm2"
    (tmp_path / "map.json").write_text(json.dumps({"web1": "kvm1"}))
    with pytest.raises(InvalidInputError, match="no host for domain 'db1'"):
        import_libvirt(tmp_path, hosts=tmp_path / "hosts.json", mapping=tmp_path / "map.json")


def test_libvirt_host_without_capacity_is_an_error() -> None:
    with pytest.raises(InvalidInputError, match="host 'kvm3' has no capacity"):
        import_libvirt(LIBVIRT)


# --- command line ----------------------------------------------------------------------


def test_cli_import_writes_a_valid_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "problem.json"
    code = main(["import", "pacemaker", str(CIB), "-o", str(output), "--overcommit", "vcpus=4"])
    captured = capsys.readouterr()
    assert code == 0
    assert "4 hosts (2 online), 6 guests (3 running now)" in captured.out
    assert "warning:" in captured.err
    assert "clvmd-clone" in captured.err
    assert main(["validate", str(output)]) == 0
    document = json.loads(output.read_text())
    assert document["hosts"][0]["overcommit"] == {"vcpus": 4.0}
    assert main(["import", "pacemaker", str(CIB), "-o", str(output), "--strict"]) == 1


def test_cli_import_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cib.xml"
    path.write_text(BOMB)
    assert main(["import", "pacemaker", str(path)]) == 2
    assert "refused" in capsys.readouterr().err
    assert main(["import", "proxmox", str(tmp_path / "missing.json")]) == 2


TRANSITION_CIB = """<cib><configuration>
<crm_config><cluster_property_set id="o">
  <nvpair id="o1" name="placement-strategy" value="utilization"/>
</cluster_property_set></crm_config>
<nodes>
  <node id="1" uname="n1">
    <utilization id="u1"><nvpair id="u1m" name="memory" value="1"/></utilization>
  </node>
  <node id="2" uname="n2"/>
</nodes>
<resources>
  <template id="vm-template" class="ocf" provider="heartbeat" type="VirtualDomain">
    <meta_attributes id="t-meta"><nvpair id="t-p" name="priority" value="5"/></meta_attributes>
    <utilization id="t-u"><nvpair id="t-m" name="memory" value="512"/></utilization>
  </template>
  <primitive id="vm1" template="vm-template">
    <utilization id="vm1-u"><nvpair id="vm1-c" name="cpu" value="2"/></utilization>
  </primitive>
  <primitive id="vm2" template="vm-template">
    <meta_attributes id="vm2-m">
      <nvpair id="vm2-r" name="target-role" value="Stopped"/>
    </meta_attributes>
  </primitive>
  <group id="grp">
    <meta_attributes id="g-m">
      <nvpair id="g-s" name="resource-stickiness" value="100"/>
    </meta_attributes>
    <primitive id="a" class="ocf" provider="pacemaker" type="Dummy"/>
    <primitive id="b" class="ocf" provider="pacemaker" type="Dummy">
      <meta_attributes id="b-m">
        <nvpair id="b-t" name="migration-threshold" value="2"/>
      </meta_attributes>
    </primitive>
  </group>
</resources>
<constraints>
  <rsc_location id="grp-prefers-n2" rsc="grp" node="n2" score="50"/>
  <rsc_location id="cli-prefer-vm1" rsc="vm1" node="n1" score="INFINITY"/>
</constraints>
</configuration>
<status>
  <node_state id="1" uname="n1" in_ccm="true" crmd="online">
    <transient_attributes id="1">
      <utilization id="s-u"><nvpair id="s-m" name="memory" value="4096"/></utilization>
      <instance_attributes id="s-i">
        <nvpair id="s-f" name="fail-count-b#monitor_10000" value="1"/>
        <nvpair id="s-f2" name="fail-count-b#start_0" value="1"/>
      </instance_attributes>
    </transient_attributes>
  </node_state>
  <node_state id="2" uname="n2" in_ccm="true" crmd="online"/>
</status></cib>
"""


def test_pacemaker_transition_semantics(tmp_path: Path) -> None:
    """Templates lend utilization and meta attributes; target-role=Stopped keeps a
    resource stopped; status utilization (NodeUtilization) overrides the configured one;
    fail-counts that reach migration-threshold ban the node; constraints on a group apply
    to its members; stickiness and finite scores go to the `pacemaker` block."""
    cib = tmp_path / "cib.xml"
    cib.write_text(TRANSITION_CIB)
    problem = import_pacemaker(cib).problem
    vm1, vm2 = problem.guest("vm1"), problem.guest("vm2")
    assert dict(vm1.demand) == {"ram_mib": 512, "vcpus": 2}
    assert vm1.priority == 5
    assert vm2.hosts == frozenset()
    assert dict(vm2.demand) == {"ram_mib": 512}
    assert problem.host("n1").capacity["ram_mib"] == 4096
    assert problem.guest("b").avoid_hosts == frozenset({"n1"})  # 2 failures, threshold 2
    assert problem.guest("a").avoid_hosts == frozenset()
    assert problem.pacemaker is not None
    assert problem.pacemaker.scores["a"] == {"n2": 50} == problem.pacemaker.scores["b"]
    assert problem.pacemaker.scores["vm1"] == {"n1": 1_000_000}
    assert problem.pacemaker.stickiness == {"a": 100, "b": 100}
    # --include-stopped: a resource held with target-role=Stopped is one to start.
    held = import_pacemaker(cib, options=ImportOptions(include_stopped=True)).problem
    assert held.guest("vm2").hosts is None


RULE_CIB = """<cib><configuration>
<crm_config/><nodes><node id="1" uname="n1"/><node id="2" uname="n2">
<instance_attributes id="a2"><nvpair id="a2p" name="pingd" value="0"/></instance_attributes>
</node><node id="3" uname="n3"/></nodes>
<resources><primitive id="vm" class="ocf" provider="heartbeat" type="VirtualDomain"/></resources>
<constraints>
  <rsc_location id="ban-n1" rsc="vm"><rule id="r1" score="-INFINITY">
    <expression id="e1" attribute="#uname" operation="eq" value="n1" type="string"/>
  </rule></rsc_location>
  <rsc_location id="ping" rsc="vm"><rule id="r2" score="-INFINITY" boolean-op="or">
    <expression id="e2" attribute="pingd" operation="not_defined"/>
    <expression id="e3" attribute="pingd" operation="lte" value="0" type="number"/>
  </rule></rsc_location>
  <rsc_location id="dated" rsc="vm"><rule id="r3" score="100">
    <date_expression id="d" operation="in_range" start="2024-01-01"/>
  </rule></rsc_location>
</constraints></configuration></cib>
"""


def test_pacemaker_location_rules_on_node_attributes(tmp_path: Path) -> None:
    """A `#uname` rule bans n1; `pingd` not defined or <= 0 bans every node (n1 and n3
    have no pingd, n2 has 0); a date rule is not mapped, with a warning."""
    cib = tmp_path / "cib.xml"
    cib.write_text(RULE_CIB)
    result = import_pacemaker(cib)
    assert result.problem.guest("vm").avoid_hosts == frozenset({"n1", "n2", "n3"})
    assert any("rule 'r3' is not mapped" in warning for warning in result.warnings)


CLONE_CIB = """<cib><configuration>
<crm_config/><nodes><node id="1" uname="n1"/><node id="2" uname="n2"/><node id="3" uname="n3"/>
</nodes>
<resources>
  <clone id="cl-storage"><primitive id="storage" class="ocf" provider="heartbeat" type="Dummy"/>
  </clone>
  <primitive id="vm" class="ocf" provider="heartbeat" type="VirtualDomain"/>
  <primitive id="frozen" class="ocf" provider="heartbeat" type="VirtualDomain">
    <meta_attributes id="f-m"><nvpair id="f-u" name="is-managed" value="false"/></meta_attributes>
  </primitive>
</resources>
<constraints>
  <rsc_location id="no-storage-n3" rsc="cl-storage" node="n3" score="-INFINITY"/>
  <rsc_colocation id="vm-with-storage" rsc="vm" with-rsc="cl-storage" score="INFINITY"/>
  <rsc_location id="promoted-off-n1" rsc="vm" role="Promoted" node="n1" score="-INFINITY"/>
</constraints></configuration></cib>
"""


def test_pacemaker_beside_a_clone_and_unmanaged(tmp_path: Path) -> None:
    """A resource colocated with a clone runs only where the clone may (not n3); a
    clone without utilization is no guest; an unmanaged resource that is stopped stays
    stopped (allowed on no host)."""
    cib = tmp_path / "cib.xml"
    cib.write_text(CLONE_CIB)
    result = import_pacemaker(cib)
    problem = result.problem
    assert problem.guest("vm").avoid_hosts == frozenset({"n3"})
    assert not problem.has_guest("storage:0")
    assert problem.guest("frozen").hosts == frozenset()
    assert any("not managed" in warning for warning in result.warnings)
    # A rule for a role of a promotable clone is not ours to plan: n1 stays allowed.
    assert any("role Promoted is not mapped" in warning for warning in result.warnings)


SETS_CIB = """<cib><configuration>
<crm_config/><nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>
<resources>
  <primitive id="a" class="ocf" provider="heartbeat" type="Dummy"/>
  <primitive id="b" class="ocf" provider="heartbeat" type="Dummy"/>
  <primitive id="c" class="ocf" provider="heartbeat" type="Dummy"/>
  <primitive id="x" class="ocf" provider="heartbeat" type="Dummy"/>
  <primitive id="y" class="ocf" provider="heartbeat" type="Dummy"/>
  <primitive id="z" class="ocf" provider="heartbeat" type="Dummy"/>
</resources>
<constraints>
  <rsc_colocation id="chain" score="INFINITY">
    <resource_set id="chain-set"><resource_ref id="a"/><resource_ref id="b"/>
      <resource_ref id="c"/></resource_set>
  </rsc_colocation>
  <rsc_colocation id="apart" score="-INFINITY">
    <resource_set id="apart-set"><resource_ref id="x"/><resource_ref id="y"/>
      <resource_ref id="z"/></resource_set>
  </rsc_colocation>
  <rsc_order id="start-order" kind="Mandatory">
    <resource_set id="o1"><resource_ref id="a"/><resource_ref id="b"/></resource_set>
    <resource_set id="o2" sequential="false"><resource_ref id="x"/><resource_ref id="y"/>
    </resource_set>
  </rsc_order>
  <rsc_location id="no-n2" rsc-pattern="" node="n2" score="-INFINITY">
    <resource_set id="l1"><resource_ref id="z"/></resource_set>
  </rsc_location>
</constraints></configuration></cib>
"""


def test_pacemaker_resource_sets(tmp_path: Path) -> None:
    """A colocation set: each member beside the one before it (c follows b follows a);
    a -INFINITY set: no two members share a node; an ordering set: in order within a
    sequential set, and the next (unordered) set after its last member; a location on a
    set applies to each member."""
    cib = tmp_path / "cib.xml"
    cib.write_text(SETS_CIB)
    problem = import_pacemaker(cib).problem
    assert (problem.guest("b").follows, problem.guest("c").follows) == ("a", "b")
    x, y, z = (problem.guest(name).anti_affinity for name in "xyz")
    assert all(pair for pair in (x & y, y & z, x & z))
    assert problem.guest("b").boot.after == ("a",)
    assert problem.guest("x").boot.after == ("b",) == problem.guest("y").boot.after
    assert problem.guest("z").avoid_hosts == frozenset({"n2"})
