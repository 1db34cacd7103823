"""Seeded generator of realistic failover scenarios for the benchmark.

    generate("S", 0) -> Problem

Every scenario is a cluster in which some hosts have just failed: the guests that ran on
them must restart on the survivors (action `start`), the guests on live hosts keep
running (they may stay or be migrated). One SAN pool, `san_iops`, absorbs every boot;
it is sized so that starting every restarting guest at once asks it for several times
its limit, which is what turns a failover into a boot storm.

Sizes (`SIZES`):

- `S`: 30 guests on 3 hosts of one size; one host fails. It ran the guests drawn first,
  until one did not fit (7 to 25 of the 30 over seeds 0-19); the two survivors take them
  all. The guest mix is redrawn until the survivors' RAM is 82-95 % used after the
  failover and best fit places everyone, so the instance is tight but feasible.
  Stagger 5 s, no batch limit.
- `M`: 1,000 guests on 100 hosts of mixed sizes; 5 hosts fail. Batch limit 12.
- `L`: 10,000 guests on 1,000 hosts of mixed sizes; 20 hosts fail. Stagger 2 s, batch
  limit 24.

What is modelled, all drawn from one `random.Random` seeded by `f"{size}/{seed}"` (a
string seed is hashed with SHA-512 by `random`, so the stream is the same in every
process and on every platform):

- Hosts: 256/384/512/768 GiB RAM with 32/48/64/128 cores, vCPU overcommit 2-4, 8-32 GiB
  RAM reserved for the hypervisor, a boot CPU budget of a quarter of the cores and 4-8
  concurrent starts per host; four racks as failure domains.
- Guests: RAM 2-8 GiB for most (70 %), 16-64 GiB for some (25 %), 128-256 GiB for a few
  (5 %), vCPUs growing with RAM; priorities 0-3 by role.
- Boot profiles (from start until ready): Linux, light: 30-120 s, 200-1000 IOPS, 1-2 boot
  CPUs; Windows, heavy: 120-300 s, 1500-4000 IOPS, 4 boot CPUs; databases: 240-600 s,
  2000-5000 IOPS, 4 boot CPUs.
- Rules: database replica pairs in their own anti-affinity class (`replicas-N`); feed
  handlers in one class `multicast`; application + cache pairs in a together group
  (`stack-N`), the application starting after its database (`after`); light Linux guests
  of a failed host in start groups of 3-4 (`wave-N`); a frozen guest (crashed, kept for
  debugging) on a live host in M and L.
- Objective: placed, migrations, recovery, balance (the library default).

The current state is built as a valid running cluster (capacity and anti-affinity hold
on every host before the failure), so every violation a plan has is the plan's own.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from placement.model import (
    BootProfile,
    Guest,
    GuestState,
    Host,
    HostBoot,
    HostState,
    Problem,
    Schedule,
)

GIB = 1024  # MiB per GiB
POOL = "san_iops"
RAM = "ram_mib"
CPU = "vcpus"


@dataclass(frozen=True)
class SizeSpec:
    """How big a scenario is and which cluster-wide limits it carries."""

    num_guests: int
    num_hosts: int
    num_failed: int
    stagger_s: int
    max_starts: int | None
    horizon_s: int
    # Fraction of a host's usable RAM and vCPUs the running cluster fills at most before
    # the failure (so no host starts at its overcommit ceiling).
    fill: float


SIZES: dict[str, SizeSpec] = {
    "S": SizeSpec(30, 3, 1, stagger_s=5, max_starts=None, horizon_s=2 * 3600, fill=0.97),
    "M": SizeSpec(1_000, 100, 5, stagger_s=0, max_starts=12, horizon_s=4 * 3600, fill=0.80),
    "L": SizeSpec(10_000, 1_000, 20, stagger_s=2, max_starts=24, horizon_s=6 * 3600, fill=0.80),
}

# (RAM GiB, cores, weight in mixed clusters)
HOST_SIZES: tuple[tuple[int, int, float], ...] = (
    (256, 32, 0.35),
    (384, 48, 0.30),
    (512, 64, 0.25),
    (768, 128, 0.10),
)


# --- drawing guests ----------------------------------------------------------------------


@dataclass
class _Spec:
    """A guest before it becomes a `Guest`: mutable while the scenario is assembled."""

    name: str
    ram_gib: int
    vcpus: int
    priority: int
    kind: str  # linux | windows | database
    anti_affinity: tuple[str, ...] = ()
    together: str | None = None
    after: tuple[str, ...] = ()
    group: str | None = None
    host: int | None = None  # index of the current host
    frozen: bool = False
    boot: tuple[int, int, int] = (60, 500, 1)  # duration_s, san_iops, boot cpu
    unit: int = -1  # placement unit: a together group is one
    extra: dict[str, str] = field(default_factory=dict)


def _size(rng: random.Random) -> tuple[int, int]:
    """(RAM GiB, vCPUs) from the realistic mix: many small, some medium, a few large."""
    draw = rng.random()
    if draw < 0.70:
        ram = rng.choice((2, 2, 4, 4, 4, 8, 8))
        return ram, rng.choice((1, 2, 2, 4)) if ram <= 4 else rng.choice((2, 4, 4))
    if draw < 0.95:
        ram = rng.choice((16, 16, 24, 32, 32, 48, 64))
        return ram, rng.choice((4, 4, 8, 8, 16))
    ram = rng.choice((128, 128, 192, 256))
    return ram, rng.choice((16, 24, 32))


def _boot(rng: random.Random, kind: str) -> tuple[int, int, int]:
    """(duration_s, san_iops, boot cpu) of a boot profile; durations in steps of 5 s."""
    if kind == "windows":
        return rng.randint(24, 60) * 5, rng.randint(15, 40) * 100, 4
    if kind == "database":
        return rng.randint(48, 120) * 5, rng.randint(20, 50) * 100, 4
    return rng.randint(6, 24) * 5, rng.randint(4, 20) * 50, rng.choice((1, 2))


def _draw_guests(rng: random.Random, count: int, *, num_survivors: int) -> list[_Spec]:
    """`count` guests in services: replica pairs, app + cache stacks, feed handlers and
    standalone Linux and Windows guests."""
    specs: list[_Spec] = []
    # Roughly one replica pair and one stack per 35 guests, one feed handler per 50;
    # at least one of each even in S. The multicast class never outgrows the survivors.
    num_pairs = max(1, count // 35)
    num_stacks = max(1, count // 35)
    num_feeds = min(max(2, count // 50), num_survivors)
    unit = 0

    def add(spec: _Spec, *, same_unit: bool = False) -> None:
        nonlocal unit
        if not same_unit:
            unit += 1
        spec.unit = unit
        specs.append(spec)

    for pair in range(num_pairs):
        ram = rng.choice((32, 48, 64, 128))
        vcpus = rng.choice((8, 16))
        for replica in "ab":
            add(
                _Spec(
                    f"pg{pair:04d}{replica}",
                    ram,
                    vcpus,
                    3,
                    "database",
                    anti_affinity=(f"replicas-{pair}",),
                )
            )
    for stack in range(num_stacks):
        database = f"pg{rng.randrange(num_pairs):04d}a"
        ram, vcpus = _size(rng)
        add(
            _Spec(
                f"app{stack:04d}",
                min(ram, 32),
                vcpus,
                2,
                "linux",
                together=f"stack-{stack}",
                after=(database,),
            )
        )
        add(
            _Spec(
                f"cache{stack:04d}",
                rng.choice((4, 8, 16)),
                2,
                2,
                "linux",
                together=f"stack-{stack}",
            ),
            same_unit=True,
        )
    for feed in range(num_feeds):
        add(_Spec(f"feed{feed:04d}", 16, 4, 3, "linux", anti_affinity=("multicast",)))
    index = 0
    while len(specs) < count:
        ram, vcpus = _size(rng)
        windows = rng.random() < 0.25
        kind = "windows" if windows else "linux"
        priority = rng.choices((0, 1, 2, 3), weights=(3, 4, 2, 1))[0]
        add(_Spec(f"{'win' if windows else 'vm'}{index:05d}", ram, vcpus, priority, kind))
        index += 1
    for spec in specs:
        spec.boot = _boot(rng, spec.kind)
    return specs


# --- drawing hosts -----------------------------------------------------------------------


@dataclass(frozen=True)
class _HostSpec:
    name: str
    ram_gib: int
    cores: int
    overcommit: float
    reserved_gib: int
    max_starts: int
    domain: str

    @property
    def usable_ram(self) -> int:
        return (self.ram_gib - self.reserved_gib) * GIB

    @property
    def usable_vcpus(self) -> int:
        return math.floor(self.cores * self.overcommit + 1e-9)


def _draw_host(rng: random.Random, index: int, size: tuple[int, int, float]) -> _HostSpec:
    ram_gib, cores, _ = size
    return _HostSpec(
        name=f"hv{index:04d}",
        ram_gib=ram_gib,
        cores=cores,
        overcommit=rng.choice((2.0, 3.0, 4.0)),
        reserved_gib=rng.choice((8, 16, 16, 32)) if ram_gib >= 384 else rng.choice((8, 16)),
        max_starts=rng.choice((4, 6, 8)),
        domain=f"rack-{'abcd'[index % 4]}",
    )


# --- the current state -------------------------------------------------------------------


class _Loads:
    """Current RAM and vCPU use per host, and the anti-affinity classes present."""

    def __init__(self, hosts: Sequence[_HostSpec]) -> None:
        self.hosts = hosts
        self.ram = [0] * len(hosts)
        self.vcpus = [0] * len(hosts)
        self.classes: list[set[str]] = [set() for _ in hosts]

    def fits(self, h: int, members: Sequence[_Spec], fill: float) -> bool:
        host = self.hosts[h]
        ram = sum(m.ram_gib for m in members) * GIB
        vcpus = sum(m.vcpus for m in members)
        classes = [c for m in members for c in m.anti_affinity]
        return (
            self.ram[h] + ram <= fill * host.usable_ram
            and self.vcpus[h] + vcpus <= fill * host.usable_vcpus
            and not self.classes[h].intersection(classes)
        )

    def put(self, h: int, members: Sequence[_Spec]) -> None:
        for member in members:
            member.host = h
            self.ram[h] += member.ram_gib * GIB
            self.vcpus[h] += member.vcpus
            self.classes[h].update(member.anti_affinity)


def _units(specs: Sequence[_Spec]) -> list[list[_Spec]]:
    by_unit: dict[int, list[_Spec]] = {}
    for spec in specs:
        by_unit.setdefault(spec.unit, []).append(spec)
    return list(by_unit.values())


def _place_randomly(
    rng: random.Random, specs: Sequence[_Spec], hosts: Sequence[_HostSpec], fill: float
) -> bool:
    """Give every guest a current host: a few random tries, then the emptiest host that
    fits. False if some unit fits nowhere (the caller draws again)."""
    loads = _Loads(hosts)
    units = _units(specs)
    # Big units first, as a real cluster grew around its big guests.
    units.sort(key=lambda members: -sum(m.ram_gib for m in members))
    for members in units:
        for _ in range(8):
            h = rng.randrange(len(hosts))
            if loads.fits(h, members, fill):
                loads.put(h, members)
                break
        else:
            candidates = [h for h in range(len(hosts)) if loads.fits(h, members, fill)]
            if not candidates:
                return False
            h = min(candidates, key=lambda h: loads.ram[h] / hosts[h].usable_ram)
            loads.put(h, members)
    return True


# --- assembling the problem --------------------------------------------------------------


def _to_problem(
    rng: random.Random,
    spec: SizeSpec,
    hosts: Sequence[_HostSpec],
    failed: set[int],
    guests: Sequence[_Spec],
) -> Problem:
    restarting = [g for g in guests if g.host in failed or g.frozen]
    # Start groups: light Linux guests of failed hosts that wait for nothing and that
    # nothing waits for, in waves of 3-4 ("start the Linux guests in groups").
    waited_on = {name for g in guests for name in g.after}
    light = [
        g
        for g in restarting
        if g.kind == "linux"
        and not g.after
        and g.name not in waited_on
        and g.together is None
        and not g.frozen
        and g.boot[2] == 1
    ]
    rng.shuffle(light)
    wave = 0
    position = 0
    while position + 3 <= len(light) and wave < max(1, len(restarting) // 12):
        take = rng.choice((3, 4))
        for member in light[position : position + take]:
            member.group = f"wave-{wave}"
        position += take
        wave += 1

    # The SAN: all restarting guests at once ask for 3-5 times its limit, but it always
    # takes the heaviest single boot and the heaviest start group.
    demand_iops = sum(g.boot[1] for g in restarting)
    group_iops: dict[str, int] = {}
    for g in restarting:
        if g.group is not None:
            group_iops[g.group] = group_iops.get(g.group, 0) + g.boot[1]
    floor_iops = max([g.boot[1] for g in restarting] + list(group_iops.values()) + [1])
    san_iops = max(math.ceil(demand_iops / rng.uniform(3.0, 5.0) / 500) * 500, floor_iops)

    host_objects = [
        Host(
            name=h.name,
            capacity={RAM: h.ram_gib * GIB, CPU: h.cores},
            overcommit={RAM: 1.0, CPU: h.overcommit},
            reserved={RAM: h.reserved_gib * GIB},
            state=HostState.FAILED if i in failed else HostState.ONLINE,
            domain=h.domain,
            boot=HostBoot(cpu=h.cores // 4, max_starts=h.max_starts),
        )
        for i, h in enumerate(hosts)
    ]
    guest_objects = []
    for g in guests:
        if g.host is None:
            raise RuntimeError(f"{g.name} has no current host")  # pragma: no cover
        # A guest of a failed host is still "running" there: the host's failure is what
        # makes it restart, exactly as the model reads it.
        state = GuestState.FROZEN if g.frozen else GuestState.RUNNING
        duration_s, iops, boot_cpu = g.boot
        guest_objects.append(
            Guest(
                name=g.name,
                demand={RAM: g.ram_gib * GIB, CPU: g.vcpus},
                priority=g.priority,
                current_host=hosts[g.host].name,
                state=state,
                anti_affinity=g.anti_affinity,
                together=g.together,
                migration_cost=max(1, g.ram_gib // 8),
                boot=BootProfile(
                    duration_s=duration_s,
                    load={POOL: iops},
                    cpu=boot_cpu,
                    after=g.after,
                    group=g.group,
                ),
            )
        )
    return Problem(
        hosts=host_objects,
        guests=guest_objects,
        boot_pools={POOL: san_iops},
        schedule=Schedule(
            stagger_s=spec.stagger_s, max_starts=spec.max_starts, horizon_s=spec.horizon_s
        ),
        objective=("placed", "migrations", "recovery", "balance"),
    )


def _small(rng: random.Random, spec: SizeSpec) -> Problem:
    """S: three hosts of one size, the first fails, the survivors end up 82-95 % full."""
    from placement.solvers import SolveOptions, solve

    ram_gib, cores, _ = rng.choice(HOST_SIZES[:3])
    for _attempt in range(200):
        hosts = [_draw_host(rng, i, (ram_gib, cores, 1.0)) for i in range(spec.num_hosts)]
        # One overcommit and reservation for all three, so the failed host is like the rest.
        hosts = [
            _HostSpec(
                h.name,
                h.ram_gib,
                h.cores,
                hosts[0].overcommit,
                hosts[0].reserved_gib,
                h.max_starts,
                h.domain,
            )
            for h in hosts
        ]
        guests = _draw_guests(rng, spec.num_guests, num_survivors=spec.num_hosts - 1)
        survivors_ram = sum(h.usable_ram for h in hosts[1:])
        survivors_vcpus = sum(h.usable_vcpus for h in hosts[1:])
        total_ram = sum(g.ram_gib for g in guests) * GIB
        total_vcpus = sum(g.vcpus for g in guests)
        if not (0.82 <= total_ram / survivors_ram <= 0.95 and total_vcpus <= survivors_vcpus):
            continue
        # Fill the host that fails first (it ran most of the guests), the rest go to the
        # survivors, as long as the running cluster is valid.
        loads = _Loads(hosts)
        units = _units(guests)
        rng.shuffle(units)
        ok = True
        open_first = True  # the failing host takes units until the first that misses
        for members in units:
            open_first = open_first and loads.fits(0, members, spec.fill)
            if open_first:
                loads.put(0, members)
                continue
            survivors = sorted((1, 2), key=lambda h: loads.ram[h])
            choice = next((h for h in survivors if loads.fits(h, members, spec.fill)), None)
            if choice is None:
                ok = False
                break
            loads.put(choice, members)
        if not ok:
            continue
        problem = _to_problem(rng, spec, hosts, {0}, guests)
        plan = solve(problem, "best-fit", SolveOptions(schedule="list"))
        if not plan.unplaced:
            return problem
    raise RuntimeError("no tight but feasible S scenario in 200 draws")  # pragma: no cover


def _mixed(rng: random.Random, spec: SizeSpec) -> Problem:
    """M and L: hosts of mixed sizes, running guests spread at random, some hosts fail."""
    weights = [w for _, _, w in HOST_SIZES]
    for _attempt in range(50):
        hosts = [
            _draw_host(rng, i, rng.choices(HOST_SIZES, weights=weights)[0])
            for i in range(spec.num_hosts)
        ]
        guests = _draw_guests(rng, spec.num_guests, num_survivors=spec.num_hosts - spec.num_failed)
        if not _place_randomly(rng, guests, hosts, spec.fill):
            continue
        failed = set(rng.sample(range(spec.num_hosts), spec.num_failed))
        # One crashed guest per 500, kept frozen on its live host for debugging: its
        # replacement starts elsewhere while it keeps holding its memory.
        live = [g for g in guests if g.host not in failed and g.together is None and not g.after]
        for g in rng.sample(live, max(1, spec.num_guests // 500)):
            g.frozen = True
        return _to_problem(rng, spec, hosts, failed, guests)
    raise RuntimeError(f"could not lay out {spec.num_guests} guests")  # pragma: no cover


def generate(size: str, seed: int) -> Problem:
    """The failover scenario of `size` (`S`, `M` or `L`, see `SIZES`) for `seed`.

    Deterministic: the same (size, seed) gives an equal `Problem` in every process.
    Raises KeyError for an unknown size.
    """
    spec = SIZES[size]
    rng = random.Random(f"{size}/{seed}")
    if size == "S":
        return _small(rng, spec)
    return _mixed(rng, spec)


def describe(problem: Problem) -> dict[str, int]:
    """Counts that say what an instance holds (for reports and the docs)."""
    failed = {h.name for h in problem.hosts if not h.online}
    restarting = [
        g for g in problem.guests if g.current_host in failed or g.state is GuestState.FROZEN
    ]
    return {
        "hosts": len(problem.hosts),
        "failed_hosts": len(failed),
        "guests": len(problem.guests),
        "restarting": len(restarting),
        "restart_iops": sum(g.boot.load.get(POOL, 0) for g in restarting),
        "san_iops": problem.boot_pools.get(POOL, 0),
        "start_groups": len(problem.start_groups()),
        "together_groups": len(problem.together_groups()),
        "after": sum(len(g.boot.after) for g in problem.guests),
    }
