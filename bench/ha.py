"""HA benchmark scenarios, built as an operator would ask them: a running cluster state,
then `placement.operations.failover`, `evacuate` or `rebalance` on it.

    instances() -> list[Instance]   # the `ha` suite; instances(["evacuate-40"]) picks

- `failover-1-of-3`: the S scenario of seed 0 as a state (three hosts, all online), then
  its first host fails.
- `failover-1-of-16`, `failover-10-of-100`: mixed clusters (16 hosts, 200 guests; 100
  hosts, 1,000 guests) filled to at most 75 % before the failure; the 1 and the 10 hosts
  running the most guests fail.
- `evacuate-40`: a 16-host cluster whose first host (768 GiB) holds exactly 40 small
  guests (16 GiB or less);
  it goes to maintenance and every guest must leave by live migration, at most 2
  migrations per host and 4 in the cluster at once.
- `rebalance-100`: a drifted 100-host cluster: 1,000 guests on the first 70 hosts (up to
  80 % full), 30 hosts added since and nearly empty. At most 100 live migrations. Its
  imbalance (0.072) is under Proxmox's 0.3 threshold: its balancer leaves it as it is.
- `rebalance-returned-0` ... `-11`: small clusters (3-6 hosts, 12 guests per host) after a
  failover of 1 to 3 hosts by best fit, the failed hosts back and empty (imbalance
  0.30-0.63, so Proxmox's balancer acts). The migration budget is the number of moves
  Proxmox's balancer takes, so every solver is held to no more migrations than Proxmox.
The SAN (`san_iops`) is sized as in `bench.scenarios`: starting every guest that must
start at once asks it for 3-5 times its limit (in the evacuation and the rebalance, where
nothing boots, it is sized for a restart of the first host's guests). Every builder is
deterministic.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable, Sequence

import attrs

from bench import scenarios
from bench.instance import Instance
from bench.scenarios import HOST_SIZES, POOL, SizeSpec, _draw_guests, _draw_host, _Loads, _units
from placement.model import Guest, GuestState, HostState, MigrationSettings, Problem
from placement.operations import evacuate, failover, rebalance

# Migration limits of the evacuation and rebalance scenarios: a host sends or receives
# at most 2 live migrations at once (Proxmox's default bulk-migration workers is 1-4),
# and the cluster runs at most 4 (Pacemaker's `migration-limit` style).
MIGRATION = MigrationSettings(bandwidth_mib_s=1000, setup_s=5, max_per_host=2, max_total=4)


def _online(problem: Problem) -> Problem:
    """The cluster state before the failure: every failed host back online."""
    hosts = [
        attrs.evolve(h, state=HostState.ONLINE) if h.state is HostState.FAILED else h
        for h in problem.hosts
    ]
    return attrs.evolve(problem, hosts=hosts)


def _mixed_state(
    seed: str, num_hosts: int, num_guests: int, failing: int, fill: float
) -> tuple[Problem, list[str]]:
    """A mixed cluster state (all hosts online) and the `failing` hosts that will fail;
    the SAN is sized for their guests' restart."""
    rng = random.Random(seed)
    spec = SizeSpec(
        num_guests, num_hosts, failing, stagger_s=0, max_starts=12, horizon_s=4 * 3600, fill=fill
    )
    weights = [w for _, _, w in HOST_SIZES]
    for _attempt in range(50):
        hosts = [
            _draw_host(rng, i, rng.choices(HOST_SIZES, weights=weights)[0])
            for i in range(num_hosts)
        ]
        guests = _draw_guests(rng, num_guests, num_survivors=num_hosts - failing)
        if not scenarios._place_randomly(rng, guests, hosts, fill):
            continue
        # The hosts running the most guests fail: the hardest restart of its size.
        counts = [sum(1 for g in guests if g.host == h) for h in range(num_hosts)]
        failed = set(sorted(range(num_hosts), key=lambda h: (-counts[h], h))[:failing])
        problem = scenarios._to_problem(rng, spec, hosts, failed, guests)
        return _online(problem), [hosts[i].name for i in sorted(failed)]
    raise RuntimeError(f"could not lay out {num_guests} guests")  # pragma: no cover


def _san(rng: random.Random, guests: Sequence[Guest]) -> dict[str, int]:
    """A SAN sized as if `guests` restarted: all at once would ask 3-5 times its limit.
    (No guest boots in an evacuation or a rebalance; the limit is what the report shows
    the peak against.)"""
    demand = sum(g.boot.load.get(POOL, 0) for g in guests)
    floor = max((g.boot.load.get(POOL, 0) for g in guests), default=1)
    return {POOL: max(math.ceil(demand / rng.uniform(3.0, 5.0) / 500) * 500, floor)}


def failover_1_of_3() -> Problem:
    """S-0's cluster, all online, then its first host fails."""
    problem = scenarios.generate("S", 0)
    failed = [h.name for h in problem.hosts if h.state is HostState.FAILED]
    return failover(_online(problem), failed)


def failover_1_of_16() -> Problem:
    state, failed = _mixed_state("ha/failover-16", 16, 200, 1, 0.75)
    return failover(state, failed)


def failover_10_of_100() -> Problem:
    state, failed = _mixed_state("ha/failover-100", 100, 1_000, 10, 0.75)
    return failover(state, failed)


def _evacuation_state() -> Problem:
    """16 hosts; the first (768 GiB, 128 cores) holds exactly 40 guests, all movable."""
    rng = random.Random("ha/evacuate-40")
    spec = SizeSpec(260, 16, 0, stagger_s=0, max_starts=12, horizon_s=4 * 3600, fill=0.75)
    weights = [w for _, _, w in HOST_SIZES]
    for _attempt in range(50):
        hosts = [_draw_host(rng, 0, HOST_SIZES[3])] + [
            _draw_host(rng, i, rng.choices(HOST_SIZES, weights=weights)[0]) for i in range(1, 16)
        ]
        guests = _draw_guests(rng, spec.num_guests, num_survivors=15)
        loads = _Loads(hosts)
        units = _units(guests)
        rng.shuffle(units)
        on_first = 0
        rest = []
        for members in units:
            # The first host runs the small guests (a host of 40 big ones would not fit).
            small = all(m.ram_gib <= 16 for m in members)
            if small and on_first + len(members) <= 40 and loads.fits(0, members, spec.fill):
                loads.put(0, members)
                on_first += len(members)
            else:
                rest.append(members)
        if on_first != 40:
            continue
        # The rest spread at random over the other hosts (never the first).
        ok = True
        for members in rest:
            candidates = [h for h in range(1, 16) if loads.fits(h, members, spec.fill)]
            if not candidates:
                ok = False
                break
            loads.put(rng.choice(candidates), members)
        if not ok:
            continue
        problem = scenarios._to_problem(rng, spec, hosts, set(), guests)
        leaving = [g for g in problem.guests if g.current_host == hosts[0].name]
        return attrs.evolve(problem, boot_pools=_san(rng, leaving), migration=MIGRATION)
    raise RuntimeError("no evacuation state in 50 draws")  # pragma: no cover


def evacuate_40() -> Problem:
    state = _evacuation_state()
    return evacuate(state, [state.hosts[0].name])


def _drifted_state() -> Problem:
    """100 hosts: 1,000 guests on the first 70 (up to 80 % full), the last 30 empty."""
    rng = random.Random("ha/rebalance-100")
    spec = SizeSpec(1_000, 100, 0, stagger_s=0, max_starts=12, horizon_s=4 * 3600, fill=0.8)
    weights = [w for _, _, w in HOST_SIZES]
    for _attempt in range(50):
        hosts = [
            _draw_host(rng, i, rng.choices(HOST_SIZES, weights=weights)[0]) for i in range(100)
        ]
        guests = _draw_guests(rng, spec.num_guests, num_survivors=70)
        if not scenarios._place_randomly(rng, guests, hosts[:70], spec.fill):
            continue
        # No guest is frozen or starting: a rebalance moves running guests only.
        problem = scenarios._to_problem(rng, spec, hosts, set(), guests)
        running = [
            attrs.evolve(g, state=GuestState.RUNNING) if g.state is GuestState.FROZEN else g
            for g in problem.guests
        ]
        on_busiest = [g for g in running if g.current_host == hosts[0].name]
        return attrs.evolve(
            problem, guests=running, boot_pools=_san(rng, on_busiest), migration=MIGRATION
        )
    raise RuntimeError("no drifted state in 50 draws")  # pragma: no cover


def rebalance_100() -> Problem:
    return rebalance(_drifted_state(), max_moves=100)


def _returned_state(scenario: Problem) -> Problem:
    """The cluster after the failover `scenario` by best fit, every guest running where
    it restarted (those it could not restart stay out), and the failed hosts online again
    with nothing on them."""
    from placement.solvers import SolveOptions, solve

    plan = solve(scenario, "best-fit", SolveOptions(time_limit_s=5, deterministic=True))
    final = {a.guest: a.host for a in plan.assignments}
    guests = [
        attrs.evolve(g, state=GuestState.RUNNING, current_host=final[g.name])
        for g in scenario.guests
        if final.get(g.name) is not None
    ]
    return attrs.evolve(_online(scenario), guests=guests)


def _at_proxmox_budget(state: Problem) -> Problem:
    """The rebalance of `state` with as many migrations as Proxmox's balancer takes."""
    from placement.solvers.peers.proxmox_rebalance import proxmox_rebalance_placement

    unlimited = rebalance(state)
    moved = proxmox_rebalance_placement(unlimited).hosts
    budget = sum(1 for g in state.guests if moved[g.name] != g.current_host)
    return rebalance(state, max_moves=budget)


#: The returned-host rebalances: seeds, all kept (none picked for its result).
RETURNED_SEEDS = range(12)


def rebalance_returned(seed: int) -> Problem:
    """Seed `seed` of the returned-host family: 3-6 hosts, 1 failed (even seeds) or a
    third of them (odd), guests restarted by best fit, then the failed hosts back."""
    hosts = 3 + seed % 4
    failing = 1 + (seed % 2) * (hosts // 3)
    state, failed = _mixed_state(f"ha/returned-{seed}", hosts, 12 * hosts, failing, 0.45)
    return _at_proxmox_budget(_returned_state(failover(state, failed)))


BUILDERS: dict[str, tuple[str, Callable[[], Problem]]] = {
    "failover-1-of-3": ("recovery", failover_1_of_3),
    "failover-1-of-16": ("recovery", failover_1_of_16),
    "failover-10-of-100": ("recovery", failover_10_of_100),
    "evacuate-40": ("makespan", evacuate_40),
    "rebalance-100": ("imbalance", rebalance_100),
    **{
        f"rebalance-returned-{seed}": ("imbalance", functools.partial(rebalance_returned, seed))
        for seed in RETURNED_SEEDS
    },
}


def instances(names: Sequence[str] | None = None) -> list[Instance]:
    """The HA instances (all, or those named, in the order given)."""
    chosen = list(BUILDERS) if names is None else [n for n in names if n in BUILDERS]
    return [
        Instance(name, "ha", BUILDERS[name][0], BUILDERS[name][1], meta={"operation": name})
        for name in chosen
    ]
