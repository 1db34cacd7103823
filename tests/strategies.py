"""Hypothesis strategies for small, valid problems.

`problems()` draws a `Problem` that the model accepts (every reference resolves, the
`after` relation is acyclic) and that exercises every rule at least sometimes:

- 1-5 hosts (`h0`, `h1`, ...) with `ram_mib` and `vcpus` capacities, optional vCPU
  overcommit and RAM reservation, mostly online (sometimes in maintenance or failed),
  labels from {ssd, gpu}, optional per-host boot CPU and start limits;
- 0-12 guests (`g0`, `g1`, ...) with small demands, priorities 0-3, a state (stopped,
  running on a host, frozen on a host), anti-affinity classes from {db, mc}, together
  groups from {t0, t1}, sometimes a guest drawn before it to follow, allowed / avoided
  hosts, required labels, and a boot profile: duration 0-120 s, load on the `san` pool,
  boot CPU, dependencies on guests with a lower index only (so the relation is acyclic),
  start groups from {s0, s1};
- a `san` boot pool, a stagger gap (often 0), a cluster start limit (often none) and a
  horizon (usually generous, sometimes tight enough to matter);
- migration settings: bandwidth and setup (moves of 5 to 40 s), limits per host and
  cluster-wide, a move budget and a load on the `san` pool, each often unset; a few
  guests are not `movable`.

Frozen copies always fit their hosts (a copy that overloads its host would make every
plan invalid, whatever the solver does). Problems are small so that shrinking is quick
and a failing example reads at a glance.
Pass `max_hosts` / `max_guests` to bound them further, and `horizon_s` to fix the horizon.
"""

from __future__ import annotations

import attrs
from hypothesis import strategies as st

from placement.model import (
    BootProfile,
    Guest,
    GuestState,
    Host,
    HostBoot,
    HostState,
    MigrationSettings,
    Problem,
    Schedule,
)

LABELS = ("ssd", "gpu")
CLASSES = ("db", "mc")
TOGETHER = ("t0", "t1")
START_GROUPS = ("s0", "s1")


def _subset(draw: st.DrawFn, items: tuple[str, ...] | list[str], max_size: int = 2) -> set[str]:
    if not items:
        return set()
    return draw(st.sets(st.sampled_from(items), max_size=min(max_size, len(items))))


@st.composite
def hosts(draw: st.DrawFn, index: int) -> Host:
    """One host named `h{index}`."""
    overcommit = draw(st.sampled_from([{}, {"vcpus": 2.0}, {"vcpus": 4.0}]))
    reserved = draw(st.sampled_from([{}, {"ram_mib": 1024}]))
    state = draw(
        st.sampled_from([HostState.ONLINE] * 6 + [HostState.MAINTENANCE, HostState.FAILED])
    )
    return Host(
        name=f"h{index}",
        capacity={
            "ram_mib": draw(st.integers(0, 16).map(lambda n: n * 1024)),
            "vcpus": draw(st.integers(0, 16)),
        },
        overcommit=overcommit,
        reserved=reserved,
        state=state,
        labels=_subset(draw, LABELS),
        boot=HostBoot(
            cpu=draw(st.none() | st.integers(0, 8)),
            max_starts=draw(st.none() | st.integers(1, 3)),
        ),
    )


@st.composite
def guests(draw: st.DrawFn, index: int, host_names: list[str], earlier: list[str]) -> Guest:
    """One guest named `g{index}`; it may wait for guests named in `earlier`."""
    state = draw(
        st.sampled_from([GuestState.STOPPED] * 3 + [GuestState.RUNNING] * 3 + [GuestState.FROZEN])
    )
    if state is GuestState.STOPPED:
        current_host = draw(st.none() | st.sampled_from(host_names))
    else:
        current_host = draw(st.sampled_from(host_names))
    allowed = draw(st.none() | st.sets(st.sampled_from(host_names), min_size=1))
    duration_s = draw(st.sampled_from([0, 10, 30, 60, 120]))
    return Guest(
        name=f"g{index}",
        demand={
            "ram_mib": draw(st.integers(0, 8).map(lambda n: n * 512)),
            "vcpus": draw(st.integers(0, 6)),
        },
        priority=draw(st.integers(0, 3)),
        current_host=current_host,
        state=state,
        anti_affinity=_subset(draw, CLASSES, 1),
        together=draw(st.none() | st.none() | st.sampled_from(TOGETHER)),
        # Only guests drawn before it, so that no two follow each other.
        follows=draw(st.none() | st.none() | st.none() | st.sampled_from(earlier))
        if earlier
        else None,
        hosts=allowed,
        avoid_hosts=_subset(draw, host_names, 1) if draw(st.integers(0, 4)) == 0 else set(),
        labels=_subset(draw, LABELS, 1) if draw(st.integers(0, 3)) == 0 else set(),
        migration_cost=draw(st.integers(0, 3)),
        movable=draw(st.integers(0, 4)) > 0,
        boot=BootProfile(
            duration_s=duration_s,
            load={"san": draw(st.integers(0, 5))},
            cpu=draw(st.integers(0, 4)),
            after=tuple(sorted(_subset(draw, earlier, 2))),
            group=draw(st.none() | st.none() | st.sampled_from(START_GROUPS)),
        ),
    )


def _fit_frozen_copies(host_list: list[Host], guest_list: list[Guest]) -> list[Guest]:
    """Turn frozen guests whose copies would overload their host into stopped ones.

    A frozen copy holds its host whatever the plan does, so an overloaded copy makes
    every plan break the capacity rule; such problems say nothing about a solver.
    """
    by_name = {host.name: host for host in host_list}
    used: dict[tuple[str, str], int] = {}
    result = []
    for guest in guest_list:
        host = by_name.get(guest.current_host or "")
        if (
            guest.state is GuestState.FROZEN
            and host is not None
            and host.state is not HostState.FAILED
        ):
            fits = all(
                used.get((host.name, r), 0) + amount <= host.usable(r)
                for r, amount in guest.demand.items()
            )
            if fits:
                for r, amount in guest.demand.items():
                    used[(host.name, r)] = used.get((host.name, r), 0) + amount
            else:
                guest = attrs.evolve(guest, state=GuestState.STOPPED)
        result.append(guest)
    return result


@st.composite
def problems(
    draw: st.DrawFn,
    max_hosts: int = 5,
    max_guests: int = 12,
    horizon_s: int | None = None,
) -> Problem:
    """A small valid problem; see the module docstring for what it contains."""
    num_hosts = draw(st.integers(1, max_hosts))
    host_list = [draw(hosts(index)) for index in range(num_hosts)]
    host_names = [host.name for host in host_list]
    num_guests = draw(st.integers(0, max_guests))
    guest_list: list[Guest] = []
    for index in range(num_guests):
        guest_list.append(draw(guests(index, host_names, [g.name for g in guest_list])))
    if horizon_s is None:
        horizon_s = draw(st.sampled_from([86_400, 86_400, 86_400, 300, 120]))
    schedule = Schedule(
        stagger_s=draw(st.sampled_from([0, 0, 5, 20])),
        max_starts=draw(st.none() | st.integers(1, 4)),
        horizon_s=horizon_s,
    )
    guest_list = _fit_frozen_copies(host_list, guest_list)
    return Problem(
        hosts=host_list,
        guests=guest_list,
        boot_pools={"san": draw(st.integers(5, 12))},
        schedule=schedule,
        migration=draw(migration_settings()),
    )


@st.composite
def migration_settings(draw: st.DrawFn) -> MigrationSettings:
    """Moves of a few seconds to about 40 s for the demands above, with limits that
    often bind on a handful of guests."""
    return MigrationSettings(
        bandwidth_mib_s=draw(st.sampled_from([1000, 128, 512])),
        setup_s=draw(st.sampled_from([5, 0, 10])),
        max_per_host=draw(st.none() | st.integers(1, 2)),
        max_total=draw(st.none() | st.integers(1, 2)),
        max_moves=draw(st.none() | st.none() | st.integers(0, 3)),
        load=draw(st.sampled_from([{}, {}, {"san": 1}, {"san": 3}])),
    )
