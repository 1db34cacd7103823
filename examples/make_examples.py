"""Build the example problems in this directory, deterministically.

    python examples/make_examples.py          # rewrite the JSON files
    python examples/make_examples.py --check  # exit 1 if a file differs from what it would write

Standard library only. Each example has its own seeded random generator, so changing one
example never changes another, and running the script twice writes the same bytes.
The stories behind the examples are in README.md next to this file.

Units: RAM in MiB (`ram_mib`), vCPUs as a count (`vcpus`), SAN boot load in IOPS
(`san_iops`), durations in whole seconds.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

GIB = 1024  # MiB per GiB
TIB = 1024 * GIB

JsonDict = dict[str, Any]


# --- document builders ---------------------------------------------------------------
# Only the fields that say something are written; the rest keep their documented
# defaults. `state` and `priority` are always written because a reader looks for them.


def host(
    name: str,
    *,
    ram_gib: int,
    vcpus: int,
    state: str = "online",
    reserved_ram_gib: int = 0,
    vcpu_overcommit: float = 4.0,
    domain: str | None = None,
    labels: tuple[str, ...] = (),
    boot_cpu: int | None = None,
    max_starts: int | None = None,
) -> JsonDict:
    """A host document; RAM is never overcommitted, vCPUs are by `vcpu_overcommit`."""
    doc: JsonDict = {
        "name": name,
        "capacity": {"ram_mib": ram_gib * GIB, "vcpus": vcpus},
        "overcommit": {"ram_mib": 1.0, "vcpus": vcpu_overcommit},
    }
    if reserved_ram_gib:
        doc["reserved"] = {"ram_mib": reserved_ram_gib * GIB}
    doc["state"] = state
    if domain is not None:
        doc["domain"] = domain
    if labels:
        doc["labels"] = list(labels)
    boot: JsonDict = {}
    if boot_cpu is not None:
        boot["cpu"] = boot_cpu
    if max_starts is not None:
        boot["max_starts"] = max_starts
    if boot:
        doc["boot"] = boot
    return doc


def guest(
    name: str,
    *,
    ram_mib: int,
    vcpus: int,
    priority: int = 0,
    state: str = "stopped",
    current_host: str | None = None,
    anti_affinity: tuple[str, ...] = (),
    together: str | None = None,
    labels: tuple[str, ...] = (),
    migration_cost: int | None = None,
    duration_s: int,
    san_iops: int,
    boot_cpu: int,
    after: tuple[str, ...] = (),
    group: str | None = None,
) -> JsonDict:
    """A guest document with a boot profile that loads the `san_iops` pool."""
    doc: JsonDict = {
        "name": name,
        "demand": {"ram_mib": ram_mib, "vcpus": vcpus},
        "priority": priority,
    }
    if current_host is not None:
        doc["current_host"] = current_host
    doc["state"] = state
    if anti_affinity:
        doc["anti_affinity"] = list(anti_affinity)
    if together is not None:
        doc["together"] = together
    if labels:
        doc["labels"] = list(labels)
    if migration_cost is not None:
        doc["migration_cost"] = migration_cost
    boot: JsonDict = {"duration_s": duration_s, "load": {"san_iops": san_iops}, "cpu": boot_cpu}
    if after:
        boot["after"] = list(after)
    if group is not None:
        boot["group"] = group
    doc["boot"] = boot
    return doc


def problem(
    hosts: list[JsonDict],
    guests: list[JsonDict],
    *,
    san_iops: int,
    stagger_s: int,
    max_starts: int | None,
    horizon_s: int,
    objective: list[str],
) -> JsonDict:
    schedule: JsonDict = {"stagger_s": stagger_s}
    if max_starts is not None:
        schedule["max_starts"] = max_starts
    schedule["horizon_s"] = horizon_s
    return {
        "schema_version": 1,
        "hosts": hosts,
        "guests": guests,
        "boot_pools": {"san_iops": san_iops},
        "schedule": schedule,
        "objective": objective,
    }


# Boot profiles by operating system, as measured from start command to "ready" (login
# prompt answered, services up), not until the hypervisor's start command returns.
def linux_boot(rng: random.Random) -> tuple[int, int]:
    """(duration_s, san_iops) of a light Linux boot: 60-90 s, 300-800 IOPS."""
    return rng.randint(12, 18) * 5, rng.randint(6, 16) * 50


def windows_boot(rng: random.Random) -> tuple[int, int]:
    """(duration_s, san_iops) of a heavy Windows boot: 180-300 s, 2500-4000 IOPS."""
    return rng.randint(36, 60) * 5, rng.randint(25, 40) * 100


def migration_cost_for(ram_mib: int) -> int:
    """Moving a running guest costs about one unit per 8 GiB of RAM to copy."""
    return max(1, ram_mib // (8 * GIB))


# --- (a) one host's guests restart on the spare ---------------------------------------


def single_host_restart() -> JsonDict:
    """kvm07 died; its 30 guests restart on the spare kvm08 against one SAN.

    Starting them all at once asks the SAN for several times its 8000 IOPS.
    """
    rng = random.Random(20240101)
    hosts = [
        host(
            "kvm07",
            ram_gib=512,
            vcpus=64,
            state="failed",
            reserved_ram_gib=16,
            domain="rack-1",
            boot_cpu=16,
        ),
        host("kvm08", ram_gib=512, vcpus=64, reserved_ram_gib=16, domain="rack-1", boot_cpu=16),
    ]
    # (name, RAM GiB, vCPUs, priority)
    linux = [
        ("proxy01", 2, 2, 3),
        ("proxy02", 2, 2, 3),
        ("web01", 4, 2, 1),
        ("web02", 4, 2, 1),
        ("web03", 4, 2, 1),
        ("web04", 4, 2, 1),
        ("api01", 8, 4, 2),
        ("api02", 8, 4, 2),
        ("api03", 8, 4, 2),
        ("app01", 16, 4, 2),
        ("app02", 16, 4, 2),
        ("app03", 16, 4, 2),
        ("mq01", 8, 2, 2),
        ("mq02", 8, 2, 2),
        ("redis01", 16, 2, 2),
        ("redis02", 16, 2, 2),
        ("elk01", 32, 8, 0),
        ("prom01", 16, 4, 1),
        ("gitlab01", 16, 8, 0),
        ("jenkins01", 8, 4, 0),
    ]
    windows = [
        ("sql01", 32, 8, 3),
        ("sql02", 32, 8, 3),
        ("rds01", 16, 4, 1),
        ("rds02", 16, 4, 1),
        ("rds03", 16, 4, 1),
        ("rds04", 16, 4, 1),
        ("file01", 8, 2, 2),
        ("print01", 4, 2, 0),
        ("wsus01", 8, 2, 0),
        ("sccm01", 16, 4, 0),
    ]
    guests = []
    for name, ram_gib, vcpus, priority in linux:
        duration_s, iops = linux_boot(rng)
        guests.append(
            guest(
                name,
                ram_mib=ram_gib * GIB,
                vcpus=vcpus,
                priority=priority,
                current_host="kvm07",
                duration_s=duration_s,
                san_iops=iops,
                boot_cpu=rng.choice((1, 2)),
            )
        )
    for name, ram_gib, vcpus, priority in windows:
        duration_s, iops = windows_boot(rng)
        guests.append(
            guest(
                name,
                ram_mib=ram_gib * GIB,
                vcpus=vcpus,
                priority=priority,
                current_host="kvm07",
                duration_s=duration_s,
                san_iops=iops,
                boot_cpu=4,
            )
        )
    return problem(
        hosts,
        guests,
        san_iops=8000,
        stagger_s=5,
        max_starts=None,
        horizon_s=2 * 3600,
        objective=["placed", "recovery"],
    )


# --- (b) a three-node Proxmox-like cluster loses a node --------------------------------


def three_node_failover() -> JsonDict:
    """pve3 failed; its eight guests must fit into what pve1 and pve2 have left.

    The free RAM on the survivors is 32 GiB short of what pve3 ran, so HA priorities decide
    what comes back; dc02 may not join dc01 on pve1.
    """
    rng = random.Random(20240202)
    hosts = [
        host(
            f"pve{i}",
            ram_gib=256,
            vcpus=64,
            state="failed" if i == 3 else "online",
            reserved_ram_gib=8,
            domain=f"rack-{'ab'[i % 2]}",
            boot_cpu=16,
            max_starts=4,
        )
        for i in (1, 2, 3)
    ]
    # (name, RAM GiB, vCPUs, priority, windows?)
    by_host = {
        "pve1": [
            ("dc01", 8, 2, 3, True),
            ("web01", 8, 2, 1, False),
            ("web02", 8, 2, 1, False),
            ("app01", 32, 8, 2, False),
            ("pg01", 64, 16, 3, False),
            ("mon01", 16, 4, 1, False),
            ("ci01", 16, 8, 0, False),
            ("file01", 32, 4, 2, True),
        ],
        "pve2": [
            ("web03", 8, 2, 1, False),
            ("app02", 32, 8, 2, False),
            ("redis01", 16, 4, 2, False),
            ("mail01", 16, 4, 2, False),
            ("jira01", 32, 8, 1, False),
            ("gitlab01", 32, 8, 1, False),
            ("backup01", 16, 4, 1, False),
            ("dev01", 16, 8, 0, False),
        ],
        "pve3": [
            ("dc02", 8, 2, 3, True),
            ("sql01", 48, 8, 2, True),
            ("app03", 32, 8, 2, False),
            ("web04", 8, 2, 1, False),
            ("wiki01", 16, 4, 1, False),
            ("elk01", 32, 8, 0, False),
            ("test01", 16, 4, 0, False),
            ("build01", 16, 8, 0, False),
        ],
    }
    guests = []
    for current, rows in by_host.items():
        for name, ram_gib, vcpus, priority, windows in rows:
            duration_s, iops = windows_boot(rng) if windows else linux_boot(rng)
            guests.append(
                guest(
                    name,
                    ram_mib=ram_gib * GIB,
                    vcpus=vcpus,
                    priority=priority,
                    state="running",
                    current_host=current,
                    anti_affinity=("domain-controller",) if name.startswith("dc") else (),
                    migration_cost=migration_cost_for(ram_gib * GIB),
                    duration_s=duration_s,
                    san_iops=iops,
                    boot_cpu=4 if windows else 2,
                )
            )
    return problem(
        hosts,
        guests,
        san_iops=6000,
        stagger_s=10,
        max_starts=4,
        horizon_s=3600,
        objective=["placed", "migrations", "recovery", "balance"],
    )


# --- (c) full cold recovery of a data centre --------------------------------------------


def cold_recovery() -> JsonDict:
    """After a site-wide power loss, 20 hosts and 150 guests come back from cold.

    Ten multicast feed handlers may not share a host, two applications must sit next to
    their caches, Linux guests start in groups of five and Windows guests one by one,
    45 s apart; three guests fit nowhere and must be reported.
    """
    rng = random.Random(20240303)
    racks = "abcd"
    sizes = [(256, 48, 8, 24)] * 10 + [(384, 64, 16, 32)] * 7 + [(512, 96, 16, 32)] * 3
    hosts = [
        host(
            f"hv{i + 1:02d}",
            ram_gib=ram_gib,
            vcpus=vcpus,
            reserved_ram_gib=reserved_gib,
            domain=f"rack-{racks[i % 4]}",
            boot_cpu=boot_cpu,
            max_starts=4,
        )
        for i, (ram_gib, vcpus, reserved_gib, boot_cpu) in enumerate(sizes)
    ]

    # Linux roles: (prefix, count, RAM GiB choices, vCPU choices, priority, boot cpu,
    # anti-affinity classes). Databases and search nodes boot heavier than the rest.
    linux_roles: list[tuple[str, int, tuple[int, ...], tuple[int, ...], int, int, tuple[str, ...]]]
    linux_roles = [
        ("dns", 2, (2,), (1,), 3, 1, ()),
        ("proxy", 4, (4,), (2,), 3, 1, ()),
        ("pg", 8, (128, 192, 256), (16, 24), 3, 4, ()),
        ("feed", 10, (32,), (8,), 3, 2, ("multicast",)),
        ("kafka", 6, (64,), (16,), 2, 2, ()),
        ("app", 26, (16, 24, 32), (4, 8), 2, 2, ()),
        ("api", 10, (16,), (4,), 2, 2, ()),
        ("es", 8, (64, 96, 128), (16,), 1, 4, ()),
        ("web", 19, (8,), (2, 4), 1, 1, ()),
        ("mon", 4, (32,), (8,), 1, 2, ()),
        ("ci", 8, (16,), (8,), 0, 2, ()),
    ]
    linux_specs: list[JsonDict] = []
    for prefix, count, ram_choices, vcpu_choices, priority, boot_cpu, classes in linux_roles:
        for index in range(1, count + 1):
            duration_s, iops = linux_boot(rng)
            if prefix in ("pg", "es"):
                duration_s, iops = duration_s + 60, iops * 4
            linux_specs.append(
                guest(
                    f"{prefix}{index:02d}",
                    ram_mib=rng.choice(ram_choices) * GIB,
                    vcpus=rng.choice(vcpu_choices),
                    priority=priority,
                    anti_affinity=classes,
                    duration_s=duration_s,
                    san_iops=iops,
                    boot_cpu=boot_cpu,
                )
            )
    # An application and its cache must share a host (latency); two such pairs.
    for app, cache, cache_gib in (
        ("shop-app01", "shop-redis01", 32),
        ("erp-app01", "erp-memcached01", 16),
    ):
        group_name = app.split("-")[0]
        for name, ram_gib in ((app, 48), (cache, cache_gib)):
            duration_s, iops = linux_boot(rng)
            linux_specs.append(
                guest(
                    name,
                    ram_mib=ram_gib * GIB,
                    vcpus=8,
                    priority=2,
                    together=group_name,
                    duration_s=duration_s,
                    san_iops=iops,
                    boot_cpu=2,
                )
            )
    # "Start the Linux guests in groups of five."
    for position, spec in enumerate(linux_specs):
        spec["boot"]["group"] = f"linux-{position // 5 + 1:02d}"

    windows_roles = [
        ("dc", 4, (8,), (2,), 3),
        ("sql", 6, (64, 96, 128), (8, 16), 3),
        ("exch", 4, (64,), (8,), 2),
        ("file", 3, (16,), (4,), 2),
        ("rds", 12, (32,), (8,), 1),
        ("iis", 8, (8,), (4,), 1),
        ("wsus", 1, (8,), (2,), 0),
    ]
    windows_specs: list[JsonDict] = []
    for prefix, count, ram_choices, vcpu_choices, priority in windows_roles:
        for index in range(1, count + 1):
            duration_s, iops = windows_boot(rng)
            windows_specs.append(
                guest(
                    f"{prefix}{index:02d}",
                    ram_mib=rng.choice(ram_choices) * GIB,
                    vcpus=rng.choice(vcpu_choices),
                    priority=priority,
                    anti_affinity=("domain-controller",) if prefix == "dc" else (),
                    duration_s=duration_s,
                    san_iops=iops,
                    boot_cpu=4,
                )
            )

    # Guests that fit nowhere: larger than any host's usable RAM, or needing a GPU host
    # this site does not have. They belong in the unplaced report, not in a failed solve.
    unfit = [
        guest(
            "hana-prod01",
            ram_mib=3 * TIB // 2,
            vcpus=96,
            priority=3,
            duration_s=600,
            san_iops=6000,
            boot_cpu=8,
        ),
        guest(
            "hana-qa01",
            ram_mib=768 * GIB,
            vcpus=64,
            priority=1,
            duration_s=600,
            san_iops=6000,
            boot_cpu=8,
        ),
        guest(
            "ml-train01",
            ram_mib=128 * GIB,
            vcpus=32,
            priority=0,
            labels=("gpu",),
            duration_s=120,
            san_iops=1200,
            boot_cpu=4,
        ),
    ]
    return problem(
        hosts,
        linux_specs + windows_specs + unfit,
        san_iops=16000,
        stagger_s=45,
        max_starts=10,
        horizon_s=6 * 3600,
        objective=["placed", "recovery", "balance"],
    )


# --- (d) a frozen guest and a start order -----------------------------------------------


def frozen_and_dependencies() -> JsonDict:
    """hv04 lost its power supply; the web shop it ran restarts in order.

    pg01 (needs an SSD host, not beside its replica pg02) -> app01 and app02 -> web01.
    app02 crashed earlier and is frozen on hv02 for a memory dump: it keeps its RAM there
    and its replacement must start on another host.
    """
    rng = random.Random(20240404)
    hosts = [
        host(
            "hv01",
            ram_gib=128,
            vcpus=32,
            reserved_ram_gib=4,
            domain="rack-a",
            labels=("ssd",),
            boot_cpu=8,
        ),
        host("hv02", ram_gib=128, vcpus=32, reserved_ram_gib=4, domain="rack-a", boot_cpu=8),
        host(
            "hv03",
            ram_gib=128,
            vcpus=32,
            reserved_ram_gib=4,
            domain="rack-b",
            labels=("ssd",),
            boot_cpu=8,
        ),
        host(
            "hv04",
            ram_gib=128,
            vcpus=32,
            state="failed",
            reserved_ram_gib=4,
            domain="rack-b",
            labels=("ssd",),
            boot_cpu=8,
        ),
    ]

    def boot(heavy: bool = False) -> tuple[int, int]:
        duration_s, iops = linux_boot(rng)
        return (duration_s + 60, iops * 3) if heavy else (duration_s, iops)

    guests: list[JsonDict] = []

    def add(
        name: str,
        ram_gib: int,
        vcpus: int,
        priority: int,
        state: str,
        current: str,
        *,
        heavy: bool = False,
        **extra: Any,
    ) -> None:
        duration_s, iops = boot(heavy)
        guests.append(
            guest(
                name,
                ram_mib=ram_gib * GIB,
                vcpus=vcpus,
                priority=priority,
                state=state,
                current_host=current,
                migration_cost=migration_cost_for(ram_gib * GIB),
                duration_s=duration_s,
                san_iops=iops,
                boot_cpu=4 if heavy else 2,
                **extra,
            )
        )

    # The web shop, which ran on hv04 (and app02, frozen on hv02).
    add(
        "pg01",
        32,
        8,
        3,
        "running",
        "hv04",
        heavy=True,
        labels=("ssd",),
        anti_affinity=("postgres",),
    )
    add("app01", 16, 4, 2, "running", "hv04", after=("pg01",))
    add("app02", 16, 4, 2, "frozen", "hv02", after=("pg01",))
    add("web01", 8, 2, 2, "running", "hv04", after=("app01", "app02"))
    # Everything else keeps running where it is.
    add(
        "pg02",
        32,
        8,
        3,
        "running",
        "hv01",
        heavy=True,
        labels=("ssd",),
        anti_affinity=("postgres",),
    )
    add("ldap01", 4, 2, 3, "running", "hv01", anti_affinity=("ldap",))
    add("mon01", 8, 4, 1, "running", "hv01")
    add("backup01", 16, 4, 0, "running", "hv01")
    add("ldap02", 4, 2, 3, "running", "hv02", anti_affinity=("ldap",))
    add("ci01", 16, 8, 0, "running", "hv02")
    add("ci02", 16, 8, 0, "running", "hv02")
    add("git01", 16, 4, 1, "running", "hv02")
    add("mail01", 16, 4, 2, "running", "hv03")
    add("wiki01", 8, 2, 1, "running", "hv03")
    add("proxy01", 4, 2, 3, "running", "hv03")
    return problem(
        hosts,
        guests,
        san_iops=4000,
        stagger_s=0,
        max_starts=None,
        horizon_s=3600,
        objective=["placed", "migrations", "makespan", "balance"],
    )


# --- files ------------------------------------------------------------------------------

EXAMPLES = {
    "single-host-restart.json": single_host_restart,
    "three-node-failover.json": three_node_failover,
    "cold-recovery.json": cold_recovery,
    "frozen-and-dependencies.json": frozen_and_dependencies,
}


def render(document: JsonDict) -> str:
    """The exact text written for a document: two-space indent, trailing newline."""
    return json.dumps(document, indent=2) + "\n"


def build_all() -> dict[str, str]:
    """File name -> the text it must hold."""
    return {name: render(build()) for name, build in EXAMPLES.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="compare instead of writing; exit 1 on a difference"
    )
    args = parser.parse_args(argv)
    stale = []
    for name, text in build_all().items():
        path = HERE / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8", newline="\n")
    if stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
