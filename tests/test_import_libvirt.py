"""The libvirt importer on what ties a domain to particular hosts (tests/data/adapters/
libvirt-binding): device passthrough, CPU and NUMA pinning, huge pages and locked memory,
non-KVM domain types, and ballooned memory. Each is mapped to the model or named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from placement.adapters import import_libvirt
from placement.cli import main
from placement.errors import InvalidInputError
from placement.solvers import SolveOptions, solve

BINDING = Path(__file__).parent / "data" / "adapters" / "libvirt-binding"
HOSTS = BINDING / "hosts.json"
GPU = ["hostdev:pci:0000:3b:02.1", "hostdev:pci:0000:65:00.0"]


def _import(tmp_path: Path | None = None, hosts: list[dict[str, object]] | None = None, **kw):  # type: ignore[no-untyped-def]
    path = HOSTS
    if hosts is not None and tmp_path is not None:
        path = tmp_path / "hosts.json"
        path.write_text(json.dumps(hosts))
    return import_libvirt(BINDING, hosts=path, **kw)


def test_passthrough_needs_a_host_with_the_device_and_cannot_migrate(tmp_path: Path) -> None:
    """gpu1 passes through a GPU and an SR-IOV function on kvm3, which has failed: only a
    host labelled with both devices can restart it, and none is."""
    result = _import()
    gpu = result.problem.guest("gpu1")
    assert not gpu.movable
    assert sorted(gpu.labels) == GPU
    assert sorted(result.problem.host("kvm3").labels) == GPU
    assert any("gpu1 passes through hostdev:pci:0000:65:00.0" in w for w in result.warnings)
    plan = solve(result.problem, "best-fit", SolveOptions())
    assignment = plan.assignment("gpu1")
    assert assignment is None or assignment.host is None
    assert "label" in {u.guest: u.reason for u in plan.unplaced}["gpu1"]
    # kvm2 has the same devices (the operator says so in the hosts file): it restarts there.
    kvm2 = {"name": "kvm2", "capacity": {"vcpus": 64, "ram_mib": 128512}, "labels": GPU}
    failed = json.loads(HOSTS.read_text())
    problem = _import(tmp_path, [*failed, kvm2]).problem
    plan = solve(problem, "best-fit", SolveOptions())
    assert plan.assignment("gpu1").host == "kvm2"  # type: ignore[union-attr]


def test_cpu_and_numa_pinning_avoid_hosts_that_lack_them() -> None:
    """pinned1 names host CPUs up to 37 (cpuset 32-35 minus 33, emulatorpin 36-37) and
    strict NUMA node 1: kvm1 (32 CPUs, 1 cell) cannot run it; kvm3's cells are unknown."""
    result = _import()
    assert result.problem.guest("pinned1").avoid_hosts == frozenset({"kvm1"})
    text = "\n".join(result.warnings)
    assert "hosts with fewer than 38 CPUs are avoided (kvm1)" in text
    assert "fewer than 2 NUMA cells are avoided (kvm1); unknown for kvm3" in text
    # A preferred nodeset binds nothing: huge1 avoids no host.
    assert result.problem.guest("huge1").avoid_hosts == frozenset()


def test_memory_is_what_the_guest_holds_unless_asked_for_the_maximum() -> None:
    """balloon1 holds 4 GiB of its 8 GiB; locked and huge-page memory is taken whole."""
    result = _import()
    problem = result.problem
    assert problem.guest("balloon1").demand["ram_mib"] == 4096
    assert problem.guest("locked1").demand["ram_mib"] == 4096  # currentMemory 2048
    assert problem.guest("huge1").demand["ram_mib"] == 16384  # currentMemory 8 GiB
    ballooned = [w for w in result.warnings if "hold less memory than their maximum" in w]
    assert ballooned == [
        "1 domain(s) hold less memory than their maximum (<currentMemory> < <memory>): their "
        "<currentMemory> is the demand (--memory maximum for the other): balloon1"
    ]
    maximum = _import(memory="maximum").problem
    assert maximum.guest("balloon1").demand["ram_mib"] == 8192
    with pytest.raises(ValueError, match="memory must be one of"):
        _import(memory="largest")


def test_huge_pages_come_from_the_pool_when_hosts_declare_one(tmp_path: Path) -> None:
    result = _import()
    assert any("huge1 is backed by huge pages" in w and "not mapped" in w for w in result.warnings)
    hosts = [
        {"name": "kvm1", "capacity": {"vcpus": 32, "ram_mib": 96000, "hugepages_mib": 32768}},
        {"name": "kvm2", "capacity": {"vcpus": 64, "ram_mib": 96000, "hugepages_mib": 8192}},
        *json.loads(HOSTS.read_text()),
    ]
    problem = _import(tmp_path, hosts).problem
    assert dict(problem.guest("huge1").demand) == {"vcpus": 4, "hugepages_mib": 16384}
    # kvm2's pool (8 GiB) cannot hold it; kvm1's can.
    plan = solve(problem, "best-fit", SolveOptions())
    assert plan.assignment("huge1").host == "kvm1"  # type: ignore[union-attr]


def test_locked_memory_with_ram_overcommit_is_named() -> None:
    from placement.adapters import ImportOptions

    result = _import(options=ImportOptions(overcommit={"ram_mib": 1.5}))
    assert any("locked1 locks its memory" in w and "x1.5" in w for w in result.warnings)
    assert any("locked1: locks its memory" in n for n in _import().notes)


def test_non_kvm_domain_types() -> None:
    """A Xen domain needs a Xen host (one labelled libvirt:xen); an emulated (type qemu)
    one runs anywhere but boots slowly, which is named."""
    result = _import()
    assert result.problem.guest("xen1").labels == frozenset({"libvirt:xen"})
    assert "libvirt:xen" in result.problem.host("kvm2").labels
    assert not result.problem.guest("tcg1").labels
    assert any("tcg1 is a type 'qemu' domain" in w for w in result.warnings)


def test_a_bad_cpuset_names_the_file(tmp_path: Path) -> None:
    host = tmp_path / "kvm1"
    host.mkdir()
    (host / "nodeinfo").write_text((BINDING / "kvm1" / "nodeinfo").read_text())
    (host / "bad.xml").write_text(
        "<domain type='kvm' id='1'><name>bad</name><memory>1024</memory>"
        "<vcpu cpuset='0-x'>1</vcpu></domain>"
    )
    with pytest.raises(InvalidInputError, match=r"bad.xml: cpuset: not a cpuset / nodeset"):
        import_libvirt(tmp_path)
    assert main(["import", "libvirt", str(tmp_path)]) == 2


def test_cli_memory_option(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    args = ["import", "libvirt", str(BINDING), "--hosts", str(HOSTS), "-o", str(out)]
    assert main([*args, "--memory", "maximum"]) == 0
    guests = {g["name"]: g for g in json.loads(out.read_text())["guests"]}
    assert guests["balloon1"]["demand"]["ram_mib"] == 8192
    assert guests["gpu1"]["movable"] is False
    assert main([*args, "--strict"]) == 1  # warnings: something could not be mapped
