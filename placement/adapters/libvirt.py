"""Import guests from libvirt domain XML files (`virsh dumpxml`, `/etc/libvirt/qemu/*.xml`).

Layout: either one folder per host (`DIR/kvm1/web1.xml`: `web1` belongs to `kvm1`), or
one flat folder with a mapping file `{"web1": "kvm1", ...}`. Host capacities come from a
hosts file (a JSON list of hosts in the problem format: `name`, `capacity`, optionally
`state`, `overcommit`, ...) or from the output of `virsh nodeinfo` saved as
`DIR/HOST/nodeinfo` (`CPU(s)` and `Memory size`); the hosts file wins where both exist.

Per domain: `<name>`; its memory (libvirt's units: `unit` defaults to KiB, and b, KB,
K/KiB, MB, M/MiB, GB, G/GiB, TB, T/TiB are understood) as `ram_mib`: `<currentMemory>`,
what the guest holds now, by default (`memory="maximum"`: `<memory>`, what it may balloon
back up to; a warning names the domains where the two differ); locked or huge-page
memory is always taken whole. `<vcpu current=...>N</vcpu>` (the `current` count when
given, else N) as `vcpus`. A dump of a running domain carries `<domain id='N'>`: such a
guest runs now on its host; one without an id is defined but stopped, and is imported
only with `include_stopped`.

What ties a domain to particular hosts is mapped, or named in a warning:

- `<hostdev>` and `<interface type='hostdev'>` passthrough: the guest is not `movable`
  (no live migration) and needs a host labelled with each device
  (`hostdev:pci:0000:65:00.0`, `hostdev:usb:VENDOR:PRODUCT`, ...); the hosts where the
  domain is defined get those labels, others can be given them in the hosts file.
- `vcpu cpuset`, `cputune` `vcpupin` / `emulatorpin` / `iothreadpin`: hosts with fewer
  CPUs than the highest pinned id are avoided (a warning: shared pins are not modelled).
- `numatune` (any mode but `preferred`): hosts whose `nodeinfo` shows fewer NUMA cells
  than the highest node named are avoided (a warning; per-node memory is not modelled).
- `memoryBacking/hugepages`: demanded as `hugepages_mib` when a host declares that
  capacity in the hosts file (its huge page pool), else a warning.
- `memoryBacking/locked`: a note; a warning if RAM is overcommitted.
- Domain `type` other than `kvm`: `qemu` (emulation) is named; any other (xen, lxc, ...)
  needs a host labelled `libvirt:TYPE`, which the hosts defining such a domain get.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET  # the Element type; parsing is defusedxml's
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from placement.adapters.common import (
    ImportOptions,
    ImportResult,
    apply_common_options,
    checked_name,
    finish,
    parse_int,
    parse_xml,
    to_mib,
)
from placement.codec import read_json
from placement.errors import InputError, InvalidInputError

_NODEINFO_LINE = re.compile(r"^\s*([^:]+):\s*(.*?)\s*$")


def parse_nodeinfo(text: str, where: str) -> dict[str, int]:
    """`virsh nodeinfo` output -> {"vcpus": CPU(s), "ram_mib": Memory size}."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        match = _NODEINFO_LINE.match(line)
        if match:
            fields[match.group(1).strip().lower()] = match.group(2)
    cpus = parse_int(fields.get("cpu(s)"))
    memory_text = fields.get("memory size", "").split()
    memory = None
    if len(memory_text) == 2 and memory_text[0].isdigit():
        memory = to_mib(int(memory_text[0]), memory_text[1], round_up=False)
    if cpus is None or memory is None:
        raise InvalidInputError(
            [InputError(where, "not `virsh nodeinfo` output: needs 'CPU(s)' and 'Memory size'")]
        )
    return {"vcpus": cpus, "ram_mib": memory}


@attrs.frozen
class Domain:
    """What one domain XML says that placement needs.

    `memory_mib` / `current_mib`: `<memory>` (the maximum) and `<currentMemory>` (what
    the balloon leaves the guest; `memory_mib` when absent). `hostdevs`: the host devices
    it passes through, each as the label a host must carry (`hostdev:pci:0000:65:00.0`).
    `max_cpu`: the highest host CPU id its `vcpu cpuset`, `vcpupin`, `emulatorpin` or
    `iothreadpin` names (None: not pinned). `max_numa_node`: the highest host NUMA node a
    binding `numatune` names. `kind`: the domain `type` (kvm, qemu, xen, ...).
    """

    name: str
    vcpus: int
    memory_mib: int
    current_mib: int
    running: bool
    kind: str = "kvm"
    hostdevs: tuple[str, ...] = ()
    hugepages: bool = False
    locked: bool = False
    max_cpu: int | None = None
    max_numa_node: int | None = None


def _memory_of(root: ET.Element, tag: str, where: str) -> int | None:
    element = root.find(tag)
    if element is None:
        return None
    amount = parse_int(element.text)
    if amount is None:
        raise InvalidInputError([InputError(f"{where}: domain/{tag}", "not a whole number")])
    unit = element.get("unit", "KiB")
    mib = to_mib(amount, unit)
    if mib is None:
        raise InvalidInputError(
            [InputError(f"{where}: domain/{tag}/@unit", f"unknown unit {unit!r}")]
        )
    return mib


def _id_set_max(text: str | None, where: str) -> int | None:
    """The highest id of a libvirt cpuset / nodeset ('0-3,^2,8' -> 8); None if empty."""
    if text is None or not text.strip():
        return None
    highest: int | None = None
    for part in text.split(","):
        part = part.strip()
        if not part or part.startswith("^"):
            continue
        low, _, high = part.partition("-")
        bound = high or low
        if not bound.strip().isdigit() or not low.strip().isdigit():
            raise InvalidInputError([InputError(where, f"not a cpuset / nodeset: {text!r}")])
        value = int(bound)
        highest = value if highest is None else max(highest, value)
    return highest


def _hex(address: ET.Element, key: str) -> int | None:
    value = address.get(key)
    if value is None:
        return None
    try:
        return int(value, 0)
    except ValueError:
        return None


def _device_label(kind: str, source: ET.Element | None) -> str:
    """The label that stands for the host device a `<hostdev>` passes through."""
    if source is None:
        return f"hostdev:{kind}"
    address = source.find("address")
    if kind == "pci" and address is not None:
        parts = [_hex(address, key) for key in ("domain", "bus", "slot", "function")]
        if None not in parts[1:]:
            domain, bus, slot, function = (part or 0 for part in parts)
            return f"hostdev:pci:{domain:04x}:{bus:02x}:{slot:02x}.{function:x}"
    if kind == "usb":
        vendor, product = source.find("vendor"), source.find("product")
        if vendor is not None and product is not None:
            return f"hostdev:usb:{vendor.get('id', '')}:{product.get('id', '')}"
        if address is not None:
            return f"hostdev:usb:{address.get('bus', '')}.{address.get('device', '')}"
    if kind == "scsi" and address is not None:
        adapter = source.find("adapter")
        name = adapter.get("name", "") if adapter is not None else ""
        return "hostdev:scsi:" + ":".join(
            [name, *(address.get(key, "") for key in ("bus", "target", "unit"))]
        )
    if kind == "mdev" and address is not None and address.get("uuid"):
        return f"hostdev:mdev:{address.get('uuid')}"
    return f"hostdev:{kind}"


def _read_domain(path: Path, warnings: list[str]) -> Domain:
    where = str(path)
    root = parse_xml(path)
    if root.tag != "domain":
        raise InvalidInputError([InputError(where, f"expected a <domain>, got <{root.tag}>")])
    name = checked_name((root.findtext("name") or "").strip(), f"{where}: domain/name")
    memory = _memory_of(root, "memory", where)
    if memory is None:
        raise InvalidInputError(
            [InputError(f"{where}: domain/memory", "missing or not a whole number")]
        )
    current = _memory_of(root, "currentMemory", where)
    vcpu = root.find("vcpu")
    if vcpu is None:
        warnings.append(f"{where}: no <vcpu>; 1 vCPU assumed (libvirt's default)")
        vcpus = 1
    else:
        count = parse_int(vcpu.get("current")) or parse_int(vcpu.text)
        if count is None:
            raise InvalidInputError([InputError(f"{where}: domain/vcpu", "not a whole number")])
        vcpus = count
    running = root.get("id") not in (None, "-1")

    hostdevs: list[str] = []
    for device in root.findall("devices/hostdev"):
        kind = device.get("type") or device.get("mode") or "device"
        hostdevs.append(_device_label(kind, device.find("source")))
    for interface in root.findall("devices/interface[@type='hostdev']"):
        hostdevs.append(_device_label("pci", interface.find("source")))

    pins = [vcpu.get("cpuset") if vcpu is not None else None]
    for tag in ("vcpupin", "emulatorpin", "iothreadpin"):
        pins += [pin.get("cpuset") for pin in root.findall(f"cputune/{tag}")]
    cpu_ids = [_id_set_max(pin, f"{where}: cpuset") for pin in pins]
    max_cpu = max((i for i in cpu_ids if i is not None), default=None)

    nodes: list[int | None] = []
    for element in root.findall("numatune/memory") + root.findall("numatune/memnode"):
        # `preferred` falls back to other nodes; every other mode (strict is the
        # default, restrictive, interleave) only allocates on the nodeset.
        if element.get("mode", "strict") != "preferred":
            nodes.append(_id_set_max(element.get("nodeset"), f"{where}: numatune nodeset"))
    max_numa_node = max((n for n in nodes if n is not None), default=None)

    backing = root.find("memoryBacking")
    return Domain(
        name=name,
        vcpus=vcpus,
        memory_mib=memory,
        current_mib=current if current is not None else memory,
        running=running,
        kind=root.get("type", "kvm"),
        hostdevs=tuple(dict.fromkeys(hostdevs)),
        hugepages=backing is not None and backing.find("hugepages") is not None,
        locked=backing is not None and backing.find("locked") is not None,
        max_cpu=max_cpu,
        max_numa_node=max_numa_node,
    )


MEMORY_CHOICES = ("current", "maximum")


def _numa_cells(text: str) -> int | None:
    for line in text.splitlines():
        match = _NODEINFO_LINE.match(line)
        if match and match.group(1).strip().lower() == "numa cell(s)":
            return parse_int(match.group(2))
    return None


def import_libvirt(
    folder: str | os.PathLike[str],
    *,
    hosts: str | os.PathLike[str] | None = None,
    mapping: str | os.PathLike[str] | None = None,
    memory: str = "current",
    options: ImportOptions | None = None,
) -> ImportResult:
    """Build a problem from a folder of libvirt domain XML files (see the module docstring).

    `memory`: `current` (default) demands what each guest holds, its `<currentMemory>`;
    `maximum` its `<memory>`, what it may balloon back up to.
    """
    if memory not in MEMORY_CHOICES:
        raise ValueError(f"memory must be one of {MEMORY_CHOICES}, got {memory!r}")
    options = options or ImportOptions()
    warnings: list[str] = []
    notes: list[str] = []
    base = Path(folder)
    if not base.is_dir():
        raise InvalidInputError([InputError(str(base), "not a folder")])

    host_documents: dict[str, dict[str, Any]] = {}
    numa_cells: dict[str, int] = {}
    for sub in sorted(p for p in base.iterdir() if p.is_dir()):
        info = sub / "nodeinfo"
        if info.is_file():
            name = checked_name(sub.name, str(sub))
            text = info.read_text(encoding="utf-8", errors="replace")
            capacity = parse_nodeinfo(text, str(info))
            host_documents[name] = {"name": name, "capacity": capacity}
            cells = _numa_cells(text)
            if cells is not None:
                numa_cells[name] = cells
    if hosts is not None:
        listed = read_json(hosts)
        if not isinstance(listed, list):
            raise InvalidInputError([InputError(str(hosts), "expected a JSON list of hosts")])
        for index, item in enumerate(listed):
            if not isinstance(item, Mapping):
                raise InvalidInputError([InputError(f"{hosts}[{index}]", "expected a host object")])
            name = checked_name(item.get("name"), f"{hosts}[{index}].name")
            host_documents[name] = dict(item)

    placed: dict[str, tuple[str, Path]] = {}  # domain file -> (host, path)
    if mapping is not None:
        table = read_json(mapping)
        if not isinstance(table, Mapping):
            raise InvalidInputError([InputError(str(mapping), "expected {domain: host}")])
        for path in sorted(base.glob("*.xml")):
            placed[path.stem] = ("", path)
    for sub in sorted(p for p in base.iterdir() if p.is_dir()):
        for path in sorted(sub.glob("*.xml")):
            placed[f"{sub.name}/{path.stem}"] = (sub.name, path)

    guests: dict[str, dict[str, Any]] = {}
    domains: dict[str, tuple[Domain, str, Path]] = {}
    # Hosts where each domain is defined: they have what it binds to (devices, driver).
    defined_on: dict[str, list[str]] = {}
    skipped: list[str] = []
    for _key, (folder_host, path) in placed.items():
        domain = _read_domain(path, warnings)
        name = domain.name
        host = folder_host
        if mapping is not None and not folder_host:
            mapped = table.get(name)
            if not isinstance(mapped, str):
                raise InvalidInputError(
                    [InputError(str(mapping), f"no host for domain '{name}' ({path})")]
                )
            host = mapped
        host = checked_name(host, str(path))
        if host not in host_documents:
            raise InvalidInputError(
                [
                    InputError(
                        str(path),
                        f"host '{host}' has no capacity (no hosts file entry, no nodeinfo)",
                    )
                ]
            )
        defined_on.setdefault(name, []).append(host)
        host_failed = host_documents[host].get("state") == "failed"
        if not domain.running and not options.include_stopped:
            skipped.append(name)
            continue
        guest: dict[str, Any] = {"name": name, "demand": {"vcpus": domain.vcpus}}
        if domain.running:
            guest.update(current_host=host, state="running")
        if name in guests:
            previous = guests[name]
            warnings.append(
                f"{path}: domain '{name}' is defined on several hosts; "
                + (
                    "the running one is kept"
                    if domain.running != ("state" in previous)
                    else "the first is kept"
                )
            )
            if "state" in previous or not domain.running:
                continue
        guests[name] = guest
        domains[name] = (domain, host, path)
        if host_failed and not domain.running:
            notes.append(f"{name}: defined on failed host {host}")
    if skipped:
        notes.append(
            f"{len(skipped)} defined but stopped domain(s) left out (--include-stopped imports "
            f"them): {', '.join(sorted(skipped)[:10])}"
        )

    binding = _Binding(host_documents, numa_cells, options, warnings, notes)
    ballooned: list[str] = []
    for name, guest in guests.items():
        domain, host, path = domains[name]
        whole = domain.hugepages or domain.locked
        if domain.current_mib != domain.memory_mib and not whole:
            ballooned.append(name)
        use_current = memory == "current" and not whole
        guest["demand"]["ram_mib"] = domain.current_mib if use_current else domain.memory_mib
        binding.apply(guest, domain, defined_on[name], str(path))
    if ballooned:
        held = "their <currentMemory> is" if memory == "current" else "their <memory> is"
        other = "maximum" if memory == "current" else "current"
        warnings.append(
            f"{len(ballooned)} domain(s) hold less memory than their maximum (<currentMemory> "
            f"< <memory>): {held} the demand (--memory {other} for the other): "
            f"{', '.join(sorted(ballooned)[:10])}" + (" …" if len(ballooned) > 10 else "")
        )

    document: dict[str, Any] = {
        "schema_version": 1,
        "hosts": list(host_documents.values()),
        "guests": list(guests.values()),
    }
    apply_common_options(document, options)
    return finish(document, warnings, notes, str(base))


class _Binding:
    """Maps what ties a domain to particular hosts onto the problem, or names it."""

    def __init__(
        self,
        hosts: dict[str, dict[str, Any]],
        numa_cells: Mapping[str, int],
        options: ImportOptions,
        warnings: list[str],
        notes: list[str],
    ) -> None:
        self.hosts = hosts
        self.numa_cells = numa_cells
        self.options = options
        self.warnings = warnings
        self.notes = notes
        self.hugepage_hosts = {
            name for name, host in hosts.items() if "hugepages_mib" in host.get("capacity", {})
        }

    def _label_hosts(self, label: str, hosts: list[str]) -> None:
        for name in hosts:
            labels = set(self.hosts[name].get("labels", [])) | {label}
            self.hosts[name]["labels"] = sorted(labels)

    def _avoid(self, guest: dict[str, Any], hosts: set[str]) -> None:
        if hosts:
            guest["avoid_hosts"] = sorted(set(guest.get("avoid_hosts", [])) | hosts)

    def apply(self, guest: dict[str, Any], domain: Domain, defined: list[str], where: str) -> None:
        name = domain.name
        if domain.hostdevs:
            guest["movable"] = False
            guest["labels"] = sorted(set(guest.get("labels", [])) | set(domain.hostdevs))
            for label in domain.hostdevs:
                self._label_hosts(label, defined)
            self.warnings.append(
                f"{where}: {name} passes through {', '.join(domain.hostdevs)} (<hostdev>): "
                f"not movable (no live migration), and only hosts labelled so take it "
                f"({', '.join(sorted(set(defined)))}, where it is defined; label others in "
                "--hosts)"
            )
        if domain.kind != "kvm":
            if domain.kind == "qemu":
                self.warnings.append(
                    f"{where}: {name} is a type 'qemu' domain (emulation, no KVM): it boots "
                    "far slower than its boot duration says"
                )
            else:
                label = f"libvirt:{domain.kind}"
                guest["labels"] = sorted(set(guest.get("labels", [])) | {label})
                self._label_hosts(label, defined)
                self.warnings.append(
                    f"{where}: {name} is a type '{domain.kind}' domain: only hosts labelled "
                    f"'{label}' take it ({', '.join(sorted(set(defined)))}; label others in "
                    "--hosts)"
                )
        if domain.max_cpu is not None:
            needed = domain.max_cpu + 1
            small = {
                host
                for host, document in self.hosts.items()
                if document.get("capacity", {}).get("vcpus", needed) < needed
            }
            self._avoid(guest, small)
            self.warnings.append(
                f"{where}: {name} is pinned to host CPUs up to {domain.max_cpu} (vcpu cpuset / "
                f"cputune): hosts with fewer than {needed} CPUs are avoided"
                + (f" ({', '.join(sorted(small))})" if small else "")
                + "; which guests share the pinned CPUs is not modelled"
            )
        if domain.max_numa_node is not None:
            needed = domain.max_numa_node + 1
            unknown = sorted(set(self.hosts) - set(self.numa_cells))
            small = {host for host, cells in self.numa_cells.items() if cells < needed}
            self._avoid(guest, small)
            self.warnings.append(
                f"{where}: {name} binds its memory to host NUMA node(s) up to "
                f"{domain.max_numa_node} (numatune): hosts with fewer than {needed} NUMA cells "
                "are avoided"
                + (f" ({', '.join(sorted(small))})" if small else "")
                + (f"; unknown for {', '.join(unknown)} (no nodeinfo)" if unknown else "")
                + "; memory per NUMA node is not modelled"
            )
        if domain.hugepages:
            if self.hugepage_hosts:
                memory_mib = guest["demand"].pop("ram_mib")
                guest["demand"]["hugepages_mib"] = memory_mib
                self.notes.append(
                    f"{name}: backed by huge pages: its memory is demanded as hugepages_mib "
                    "(hosts' ram_mib should leave out their huge page pool)"
                )
            else:
                self.warnings.append(
                    f"{where}: {name} is backed by huge pages, which come from a host's huge "
                    "page pool: not mapped (give hosts a hugepages_mib capacity in --hosts)"
                )
        if domain.locked:
            ratio = self.options.overcommit.get("ram_mib", 1.0)
            if ratio <= 1.0:
                self.notes.append(
                    f"{name}: locks its memory (memoryBacking/locked): demanded whole, never "
                    "overcommitted"
                )
            else:
                self.warnings.append(
                    f"{where}: {name} locks its memory (memoryBacking/locked): it cannot be "
                    f"overcommitted, but every host's ram_mib is overcommitted x{ratio}; not "
                    "mapped"
                )
