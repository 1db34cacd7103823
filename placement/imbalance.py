"""Cluster imbalance as the Proxmox VE HA load balancer measures it, and its integer proxy.

Proxmox's CRS load balancer (pve-ha-manager >= 5.2, "CRS Load Balancer" in the admin
guide; the pve-devel series "dynamic scheduler + load rebalancer" by Daniel Kral and
"clamp load imbalance to unit interval" by Dominik Rusovac, both 2026) defines, for the
static-load scheduler:

- a node's **load** is the mean of its CPU ratio (configured CPUs of its guests over the
  node's CPUs) and its memory ratio (configured memory over the node's memory);
- the cluster's **imbalance** is the coefficient of variation of the node loads
  (population standard deviation over the mean) divided by its largest possible value,
  `sqrt(N - 1)` for N nodes, so it lies in [0, 1]: 0 when every node carries the same
  load, 1 when a single node carries everything.

`imbalance()` computes exactly that over the online hosts, from a host's raw `capacity`
(Proxmox knows no reservation or overcommit) and the guests' demands. A host missing
one of the two resources is loaded by the other alone.

`spread_steps()` is the integer stand-in that an exact solver can minimise: the sum over
online hosts of the squared distance between the host's load, rounded up to steps of
1/SPREAD_STEPS, and the even load (`spread_target`: the load every host would carry if
all the demand were spread in proportion to capacity, a constant of the problem). On
hosts of one size, with the placed guests fixed, it ranks plans as the sum of squared
loads and as the imbalance; on mixed sizes it is still smallest when every load is even,
and it counts each host alike, as the imbalance does. (Tried and dropped: the plain sum
of squares, whose optimum loads large hosts more than small ones, and a sum weighted by
host size, which weighs the large hosts' deviations more; both raised the imbalance of
a drifted 100-host cluster while lowering themselves.) The imbalance itself, a ratio of
a root of sums, is not something a linear solver can hold at a value; the checker
reports both.

`imbalance_steps()` is the `imbalance` objective: Proxmox's imbalance of the loads in
those same steps, computed from exact integers (N * sum of squares - sum^2), so that
solvers can prove it; it differs from `imbalance()` by the rounding of the loads alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from placement.model import Guest, GuestState, Host, Problem
from placement.plan import Plan

# Load steps per unit of load (1.0 = a node full on both resources).
SPREAD_STEPS = 10_000

# Resource names that stand for Proxmox's CPUs and memory, tried in order; then any
# resource whose name contains one of the fragments (as the Proxmox peer baseline does).
_CPU_NAMES = ("vcpus", "cpus", "cpu", "cores")
_CPU_FRAGMENTS = ("cpu", "core")
_MEMORY_NAMES = ("ram_mib", "memory_mib", "mem_mib", "ram_mb", "memory", "ram", "mem")
_MEMORY_FRAGMENTS = ("ram", "mem")


def _pick(resources: Sequence[str], names: Sequence[str], fragments: Sequence[str]) -> str | None:
    for name in names:
        if name in resources:
            return name
    for name in resources:
        if any(fragment in name for fragment in fragments):
            return name
    return None


def cpu_resource(resources: Sequence[str]) -> str | None:
    """The resource that stands for CPUs: the first of `vcpus`, `cpus`, `cpu`, `cores`
    in `resources`, else the first whose name holds `cpu` or `core`, else None."""
    return _pick(resources, _CPU_NAMES, _CPU_FRAGMENTS)


def memory_resource(resources: Sequence[str]) -> str | None:
    """The resource that stands for memory: `ram_mib`, `memory_mib`, ... or any whose name
    holds `ram` or `mem`, else None."""
    return _pick(resources, _MEMORY_NAMES, _MEMORY_FRAGMENTS)


def load_resources(problem: Problem) -> tuple[str, ...]:
    """The resources a node's load is made of: the CPU one, then the memory one.

    The first of `vcpus`, `cpus`, `cpu`, `cores` the problem uses (else any resource
    whose name holds `cpu` or `core`), and likewise `ram_mib`, `memory_mib`, ... (`ram`,
    `mem`). A problem with neither falls back to every resource it names.
    """
    resources = problem.resources
    cpu = cpu_resource(resources)
    memory = memory_resource(resources)
    picked = tuple(name for name in (cpu, memory) if name is not None)
    return picked or resources


def current_hosts(problem: Problem) -> dict[str, str | None]:
    """Guest -> the host it runs on now (None for a guest that does not run now)."""
    return {
        guest.name: guest.current_host if problem.runs_now(guest) else None
        for guest in problem.guests
    }


def final_hosts(
    problem: Problem, plan_or_hosts: Plan | Mapping[str, str | None] | None
) -> dict[str, str | None]:
    """Guest -> its host once `plan_or_hosts` is carried out.

    A plan gives each assignment's host (a guest it does not mention keeps running where
    it runs); a mapping is taken as it is (missing guests: as now); None is the cluster
    as it is now.
    """
    hosts = current_hosts(problem)
    if plan_or_hosts is None:
        return hosts
    if isinstance(plan_or_hosts, Plan):
        for assignment in plan_or_hosts.assignments:
            if problem.has_guest(assignment.guest):
                hosts[assignment.guest] = assignment.host
        return hosts
    hosts.update(plan_or_hosts)
    return hosts


def host_usage(
    problem: Problem,
    plan_or_hosts: Plan | Mapping[str, str | None] | None = None,
    *,
    online_only: bool = False,
) -> dict[str, dict[str, int]]:
    """Host -> resource -> demand held there once `plan_or_hosts` is carried out (None:
    now): the guests on it and the frozen copies it keeps."""
    return _used(problem, final_hosts(problem, plan_or_hosts), online_only=online_only)


def _used(
    problem: Problem, hosts: Mapping[str, str | None], *, online_only: bool = True
) -> dict[str, dict[str, int]]:
    """Host -> resource -> demand held there: placed guests and frozen copies."""
    used: dict[str, dict[str, int]] = {
        h.name: {} for h in problem.hosts if h.online or not online_only
    }

    def add(host: str | None, guest: Guest) -> None:
        if host is None or host not in used:
            return
        for resource, amount in guest.demand.items():
            used[host][resource] = used[host].get(resource, 0) + amount

    for guest in problem.guests:
        if guest.state is GuestState.FROZEN and problem.holds_current_host(guest):
            add(guest.current_host, guest)
        add(hosts.get(guest.name), guest)
    return used


def _ratios(host: Host, used: Mapping[str, int], resources: Sequence[str]) -> list[tuple[int, int]]:
    """(used, capacity) per load resource the host has a capacity for."""
    return [
        (used.get(resource, 0), host.capacity.get(resource, 0))
        for resource in resources
        if host.capacity.get(resource, 0) > 0
    ]


def host_load(host: Host, used: Mapping[str, int], resources: Sequence[str]) -> float:
    """A host's load: the mean of used/capacity over the `resources` it has a capacity for
    (0.0 when it has none of them)."""
    ratios = _ratios(host, used, resources)
    return sum(u / c for u, c in ratios) / len(ratios) if ratios else 0.0


def node_loads(
    problem: Problem, plan_or_hosts: Plan | Mapping[str, str | None] | None = None
) -> dict[str, float]:
    """Online host -> its load: the mean of its CPU and memory ratios (see the module)."""
    resources = load_resources(problem)
    loads: dict[str, float] = {}
    for name, used in _used(problem, final_hosts(problem, plan_or_hosts)).items():
        loads[name] = host_load(problem.host(name), used, resources)
    return loads


def imbalance_of_loads(loads: Sequence[float]) -> float:
    """Coefficient of variation of `loads` over sqrt(N - 1): 0 balanced, 1 all on one node.

    0.0 for fewer than two nodes or no load at all.
    """
    count = len(loads)
    if count < 2:
        return 0.0
    mean = sum(loads) / count
    if mean <= 0.0:
        return 0.0
    variance = sum((load - mean) ** 2 for load in loads) / count
    return math.sqrt(variance) / mean / math.sqrt(count - 1)


def imbalance(
    problem: Problem, plan_or_hosts: Plan | Mapping[str, str | None] | None = None
) -> float:
    """Proxmox's cluster imbalance once `plan_or_hosts` is carried out (None: now).

    `plan_or_hosts` is a `Plan` or a mapping guest -> host (None: not running). See the
    module docstring for the formula and its source.
    """
    return imbalance_of_loads(list(node_loads(problem, plan_or_hosts).values()))


def host_load_steps(host: Host, used: Mapping[str, int], resources: Sequence[str]) -> int:
    """A host's load in whole steps of 1/SPREAD_STEPS, rounded up (exact integers)."""
    ratios = _ratios(host, used, resources)
    if not ratios:
        return 0
    # sum(u / c) / k as one fraction over the product of the capacities.
    denominator = len(ratios) * math.prod(c for _, c in ratios)
    numerator = sum(u * (denominator // (len(ratios) * c)) for u, c in ratios)
    return -(-SPREAD_STEPS * numerator // denominator)


def spread_target(problem: Problem) -> int:
    """The even load in steps: the mean over the load resources of (the demand of every
    guest, plus the frozen copies on online hosts, over the online hosts' raw capacity),
    rounded. Every guest counts, placed or not: it is a constant of the problem."""
    online = [host for host in problem.hosts if host.online]
    shares: list[float] = []
    for resource in load_resources(problem):
        capacity = sum(host.capacity.get(resource, 0) for host in online)
        if capacity <= 0:
            continue
        demand = sum(guest.demand.get(resource, 0) for guest in problem.guests)
        demand += sum(
            guest.demand.get(resource, 0)
            for guest in problem.guests
            if guest.state is GuestState.FROZEN
            and problem.holds_current_host(guest)
            and problem.host(guest.current_host or "").online
        )
        shares.append(demand / capacity)
    return round(SPREAD_STEPS * sum(shares) / len(shares)) if shares else 0


def spread_steps(
    problem: Problem, plan_or_hosts: Plan | Mapping[str, str | None] | None = None
) -> int:
    """The `spread` proxy: the sum over online hosts of (load in steps - even load)^2."""
    target = spread_target(problem)
    return sum((steps - target) ** 2 for steps in load_steps(problem, plan_or_hosts).values())


def imbalance_of_steps(steps: Sequence[int]) -> float:
    """Proxmox's imbalance of integer loads: sqrt(N * sum(s^2) - sum(s)^2) / (sum(s) *
    sqrt(N - 1)), the part under the root exact; 0.0 for fewer than two or no load."""
    count = len(steps)
    total = sum(steps)
    if count < 2 or total <= 0:
        return 0.0
    spread = count * sum(s * s for s in steps) - total * total
    return math.sqrt(max(spread, 0)) / total / math.sqrt(count - 1)


def load_steps(
    problem: Problem, plan_or_hosts: Plan | Mapping[str, str | None] | None = None
) -> dict[str, int]:
    """Online host -> its load in steps of 1/SPREAD_STEPS, rounded up."""
    resources = load_resources(problem)
    return {
        name: host_load_steps(problem.host(name), used, resources)
        for name, used in _used(problem, final_hosts(problem, plan_or_hosts)).items()
    }


def imbalance_steps(
    problem: Problem, plan_or_hosts: Plan | Mapping[str, str | None] | None = None
) -> float:
    """The `imbalance` objective: Proxmox's imbalance of the loads in steps."""
    return imbalance_of_steps(list(load_steps(problem, plan_or_hosts).values()))
