"""Proxmox VE HA manager (`ha-manager`): the `static` and `basic` cluster resource schedulers.

A re-creation from the behaviour of pve-ha-manager (`PVE::HA::Manager::select_service_node`,
`PVE::HA::Usage::Static`, `PVE::HA::Usage::Basic`, the resource-affinity rule helpers) and
of the `proxmox-resource-scheduling` crate (`pve_static`, `topsis`). No code is copied.

How Proxmox picks a node for one HA service:

1. Services are handled one at a time, in the string order of their service ids
   (`sort keys`: vm:1000 < vm:101). Ours are guest names, in the same order.
   Guests that are not HA resources (`proxmox.unmanaged`) are neither placed nor
   counted: the HA manager does not know them.
2. Candidates: the online nodes its node-affinity rules allow (here: `host_allows`, i.e.
   allowed hosts, avoided hosts, labels, and a frozen guest's own host).
3. A service that runs on an online node stays there, and one that is merely started
   starts on the node it is configured on, when that node is a candidate and no
   affinity rule forbids it; Proxmox only scores nodes for a start when
   `ha-rebalance-on-start` is set (off by default).
4. Negative resource affinity removes the nodes that run a conflicting service; positive
   affinity then keeps only the node where most of its partners run (if that node is
   still a candidate).
5. `basic`: the candidate with the fewest HA services wins. `static`: every online node is
   scored with TOPSIS (below) and the best-scored candidate wins; ties go to the node name.
6. The chosen node's usage grows by the service's configured CPUs and memory. There is
   no capacity check anywhere: a node can be filled past its memory.

The static score imagines the service added to each online node in turn and measures the
whole cluster: the root mean square and the maximum of the per-node CPU ratios
(configured CPUs / physical CPUs) and of the per-node memory ratios, each plus 1.0, all to
be minimised, weighted 1, 2, 5 and 10. TOPSIS then divides each column by its Euclidean
norm, weighs it, and scores each alternative by its distance to the worst value of every
column over its distances to the best and the worst.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import numpy.typing as npt

from placement import imbalance
from placement.model import Guest, GuestState, Host, Problem, ProxmoxNodeAffinity, host_allows
from placement.plan import Plan
from placement.solvers import SolveOptions, register
from placement.solvers.common import Placement, finish_plan
from placement.solvers.peers._shared import StartState

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

# The criteria of Proxmox's static scheduler, all minimised: RMS of CPU ratios, highest
# CPU ratio, RMS of memory ratios, highest memory ratio.
TOPSIS_WEIGHTS = (1.0, 2.0, 5.0, 10.0)

# Resource names that stand for Proxmox's CPUs and memory, tried in order; then any
# resource whose name contains one of the fragments.

_Chooser = Callable[[Guest, Sequence[str]], str]
_Accountant = Callable[[Guest, str], None]


# --- TOPSIS ----------------------------------------------------------------------------


def topsis_scores(
    matrix: FloatArray | Sequence[Sequence[float]], weights: Sequence[float]
) -> list[float]:
    """TOPSIS closeness of each row (alternative), every criterion to be minimised.

    Each column is divided by its Euclidean norm (a column of zeros stays zeros), the
    weights are normalised to sum to 1, the ideal best is each column's minimum and the
    ideal worst its maximum. A row scores `d_worst / (d_best + d_worst)` with weighted
    Euclidean distances, in [0, 1], higher is better; 0 when every row is the same.
    """
    values = np.asarray(matrix, dtype=float)
    if values.size == 0:
        return []
    weight = np.asarray(weights, dtype=float)
    weight = weight / weight.sum()
    norms = np.sqrt(np.sum(values * values, axis=0))
    values = values / np.where(norms == 0.0, 1.0, norms)
    best = values.min(axis=0)
    worst = values.max(axis=0)
    to_best = np.sqrt(np.sum((weight * (values - best)) ** 2, axis=1))
    to_worst = np.sqrt(np.sum((weight * (values - worst)) ** 2, axis=1))
    divisor = to_best + to_worst
    safe = np.where(divisor == 0.0, 1.0, divisor)
    return [float(x) for x in np.where(divisor == 0.0, 0.0, to_worst / safe)]


class StaticUsage:
    """Static usage of the online nodes: configured CPUs and memory of their guests.

    `max_cpu` and `max_memory` are the nodes' physical amounts; `cpu` and `memory` what
    their guests are configured with. Arrays follow the order of `names`.
    """

    def __init__(self, names: Sequence[str], max_cpu: Sequence[int], max_memory: Sequence[int]):
        self.names = list(names)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.max_cpu = np.asarray(max_cpu, dtype=float)
        self.max_memory = np.asarray(max_memory, dtype=float)
        self.cpu = np.zeros(len(self.names))
        self.memory = np.zeros(len(self.names))

    def _cpu_added(self, guest_cpu: float) -> FloatArray:
        # A guest without a CPU count or limit counts as using the whole node.
        if guest_cpu == 0.0:
            return self.max_cpu.copy()
        return np.full(len(self.names), guest_cpu)

    def add(self, node: str, guest_cpu: float, guest_memory: float) -> None:
        """Add a guest's configured CPUs and memory to `node`."""
        i = self.index[node]
        self.cpu[i] += self._cpu_added(guest_cpu)[i]
        self.memory[i] += guest_memory

    def criteria(self, guest_cpu: float, guest_memory: float) -> FloatArray:
        """One row per node: the four criteria if the guest were added to that node.

        Row i holds 1 + RMS and 1 + maximum of the per-node CPU ratios, then the same of
        the memory ratios, over every online node, with the guest counted on node i.
        """
        cpu_now = self.cpu / self.max_cpu
        cpu_then = (self.cpu + self._cpu_added(guest_cpu)) / self.max_cpu
        memory_now = self.memory / self.max_memory
        memory_then = (self.memory + guest_memory) / self.max_memory
        columns = []
        for now, then in ((cpu_now, cpu_then), (memory_now, memory_then)):
            # Only node i changes in row i: adjust the sum of squares and the maximum.
            squares = float(np.sum(now * now)) - now * now + then * then
            rms = np.sqrt(np.maximum(squares, 0.0) / len(now))
            highest = np.maximum(then, _max_of_others(now))
            # Adding 1.0 keeps tiny loads from looking hugely different (0.004 vs 0.002).
            columns += [1.0 + rms, 1.0 + highest]
        return np.column_stack(columns)

    def scores(self, guest_cpu: float, guest_memory: float) -> dict[str, float]:
        """Node -> TOPSIS score for starting the guest there (in [0, 1], higher is better)."""
        values = topsis_scores(self.criteria(guest_cpu, guest_memory), TOPSIS_WEIGHTS)
        return dict(zip(self.names, values, strict=True))


def _max_of_others(values: FloatArray) -> FloatArray:
    """Element i: the maximum of `values` without element i (0.0 for a single value)."""
    if len(values) < 2:
        return np.zeros(len(values))
    order = np.argsort(-values, kind="stable")
    first, second = values[order[0]], values[order[1]]
    result = np.full(len(values), first)
    result[order[0]] = second
    return result


# --- resources -------------------------------------------------------------------------


def static_resources(
    problem: Problem, cpu_resource: str | None = None, memory_resource: str | None = None
) -> tuple[str, str]:
    """The resources that stand for Proxmox's CPUs and memory.

    Given names win; otherwise the first of `vcpus`, `cpus`, `cpu`, `cores` (and
    `ram_mib`, `memory_mib`, …) the problem uses, then any resource whose name contains
    `cpu`, `core`, `ram` or `mem`. A name no host has makes the static scheduler fall
    back to `basic`, as Proxmox does when a node reports no CPU count or memory.
    """
    # The names Proxmox's scorer reads are the ones the imbalance uses; with none found,
    # `vcpus` / `ram_mib` (which no host has) make the scheduler fall back to `basic`.
    cpu = cpu_resource or imbalance.cpu_resource(problem.resources) or "vcpus"
    memory = memory_resource or imbalance.memory_resource(problem.resources) or "ram_mib"
    return cpu, memory


# --- the placement ---------------------------------------------------------------------


def _service_order(guests: Iterable[Guest]) -> list[Guest]:
    # Proxmox walks `sort keys %$ss`: a plain string sort (vm:1000 before vm:101).
    return sorted(guests, key=lambda guest: guest.name)


class NodeAffinity:
    """The problem's Proxmox node-affinity rules (`problem.proxmox.node_affinity`).

    As `PVE::HA::Rules::NodeAffinity::get_node_affinity`: a guest without a rule may use
    every allowed online node; with one, the online nodes of its rule (and, for a
    non-strict rule, every other online node at priority -1) are grouped by priority, and
    only the highest group present is preferred.
    """

    def __init__(self, problem: Problem) -> None:
        self.rules: dict[str, ProxmoxNodeAffinity] = {}
        for rule in problem.proxmox.node_affinity:
            for name in rule.guests:
                self.rules.setdefault(name, rule)
        self.no_failback = problem.proxmox.no_failback

    def _priorities(self, guest: Guest, allowed: Sequence[str]) -> dict[str, int]:
        rule = self.rules.get(guest.name)
        if rule is None:
            return dict.fromkeys(allowed, 0)
        return {
            node: rule.nodes.get(node, -1)
            for node in allowed
            if node in rule.nodes or not rule.strict
        }

    def preferred(self, guest: Guest, allowed: Sequence[str]) -> list[str]:
        """The nodes of `allowed` (online nodes the guest's rules admit) Proxmox prefers."""
        priority = self._priorities(guest, allowed)
        if not priority:
            return []
        top = max(priority.values())
        return [node for node in priority if priority[node] == top]

    def may_stay(self, guest: Guest, allowed: Sequence[str]) -> list[str]:
        """The nodes of `allowed` a running guest may stay on: its preferred ones, or,
        with failback off, every node its rule allows."""
        if guest.name in self.no_failback:
            return list(self._priorities(guest, allowed))
        return self.preferred(guest, allowed)


def _candidates(
    state: StartState, guest: Guest, online: Sequence[Host], affinity: NodeAffinity
) -> tuple[list[str], str]:
    """The candidate nodes after node affinity and resource affinity, or why there are none.

    Negative affinity drops nodes running a conflicting guest; a guest inherits the
    conflicts of its together partners, and a guest apart from one member of a together
    group is apart from all of them, as Proxmox's compiled rules say. Positive affinity
    then keeps only the candidate with most partners (ties to the node name), and keeps
    every candidate if no partner runs on one.
    """
    allowed = [host.name for host in online if host_allows(host, guest)]
    if not allowed:
        return [], _no_allowed_host(state.problem, guest)
    allowed = affinity.preferred(guest, allowed)
    if not allowed:
        return [], "no online node of its strict node-affinity rule (proxmox.node_affinity)"
    group = [guest]
    if guest.together is not None:
        group = list(state.problem.together_groups()[guest.together])
    separate = state.separated_hosts(group)
    candidates = [name for name in allowed if name not in separate]
    if not candidates:
        return [], "anti-affinity: every allowed host already runs a guest of its class"
    together = {node: n for node, n in state.partner_hosts(guest).items() if node in candidates}
    if together:
        return [min(together, key=lambda node: (-together[node], node))], ""
    return candidates, ""


def _no_allowed_host(problem: Problem, guest: Guest) -> str:
    if not any(host.online for host in problem.hosts):
        return "no online host"
    return "no online host is allowed by its node rules (allowed, avoided hosts, labels)"


def _stays_put(state: StartState, guest: Guest, affinity: NodeAffinity) -> bool:
    """Whether Proxmox keeps the guest on its node without scoring nodes.

    A guest that runs on an online node stays there, and a stopped guest is started on
    the node it is configured on, when its node rules allow that node and resource
    affinity does too (a together partner there, or no conflicting guest). Proxmox does
    not look at capacity for this. (`ha-rebalance-on-start` would score a stopped guest.)
    With a node-affinity rule the node must also be in its highest priority group present
    (HA resources fail back by default), or, with failback off, be one its rule allows.
    """
    current = guest.current_host
    if guest.state is GuestState.FROZEN or current is None:
        return False
    if not host_allows(state.problem.host(current), guest):
        return False
    if guest.name in affinity.rules:
        online = [host.name for host in state.problem.hosts if host_allows(host, guest)]
        if current not in affinity.may_stay(guest, online):
            return False
    if current in state.partner_hosts(guest):
        return True
    group = [guest]
    if guest.together is not None:
        group = list(state.problem.together_groups()[guest.together])
    return current not in state.separated_hosts(group)


def _place_one_by_one(
    problem: Problem,
    state: StartState,
    choose: _Chooser,
    account: _Accountant,
    *,
    rebalance_on_start: bool,
) -> Placement:
    online = [host for host in problem.hosts if host.online]
    affinity = NodeAffinity(problem)
    # A running guest that its rules no longer allow where it runs (off its preferred
    # nodes: failback; beside a guest it must avoid) moves in the same round.
    unmanaged = problem.proxmox.unmanaged
    for name in sorted(state.stay):
        guest = problem.guest(name)
        if name not in unmanaged and not _stays_put(state, guest, affinity):
            state.release(guest)
    hosts: dict[str, str | None] = dict(state.stay)
    reasons: dict[str, str] = {}
    for guest in _service_order(state.to_place):
        if guest.name in unmanaged:
            hosts[guest.name] = None
            reasons[guest.name] = (
                "not an HA resource (proxmox.unmanaged): Proxmox HA neither starts nor recovers it"
            )
            continue
        keep = guest.state is GuestState.RUNNING or not rebalance_on_start
        if keep and _stays_put(state, guest, affinity):
            node = guest.current_host
            assert node is not None  # _stays_put checked it
        else:
            candidates, reason = _candidates(state, guest, online, affinity)
            if not candidates:
                hosts[guest.name] = None
                reasons[guest.name] = reason
                continue
            node = choose(guest, candidates)
        hosts[guest.name] = node
        state.place(guest, node)
        account(guest, node)
    return Placement(hosts=hosts, reasons=reasons)


def proxmox_basic_placement(
    problem: Problem, *, rebalance_on_start: bool | None = None
) -> Placement:
    """Proxmox's `basic` scheduler: each guest goes to the candidate with fewest HA guests.

    Every guest that occupies an online host counts (running ones and frozen copies).
    Ties go to the node name. No capacity is looked at. `rebalance_on_start` (None: the
    problem's `proxmox.rebalance_on_start`) scores the nodes for a guest HA starts.
    """
    if rebalance_on_start is None:
        rebalance_on_start = problem.proxmox.rebalance_on_start
    return _basic(
        problem, StartState(problem, check_capacity=False), rebalance_on_start=rebalance_on_start
    )


def _basic(problem: Problem, state: StartState, *, rebalance_on_start: bool) -> Placement:
    unmanaged = problem.proxmox.unmanaged
    counts = {
        name: sum(1 for user in users if user.name not in unmanaged)
        for name, users in state.users.items()
    }

    def choose(_guest: Guest, candidates: Sequence[str]) -> str:
        return min(candidates, key=lambda node: (counts[node], node))

    def account(_guest: Guest, node: str) -> None:
        counts[node] += 1

    return _place_one_by_one(problem, state, choose, account, rebalance_on_start=rebalance_on_start)


def proxmox_static_placement(
    problem: Problem,
    *,
    cpu_resource: str | None = None,
    memory_resource: str | None = None,
    rebalance_on_start: bool | None = None,
) -> Placement:
    """Proxmox's `static` scheduler: TOPSIS over configured CPU and memory ratios.

    A node's CPUs and memory are the host's raw `capacity` (Proxmox knows no
    reservation or overcommit); a guest's usage is its demand, and a guest asking for no
    CPU counts as using all of its node's CPUs. As in Proxmox, an online node without a
    CPU count or memory makes the static scheduler fail and `basic` is used instead.
    `rebalance_on_start` (None: the problem's `proxmox.rebalance_on_start`) scores the
    nodes for a guest HA starts instead of starting it on its configured node.
    """
    if rebalance_on_start is None:
        rebalance_on_start = problem.proxmox.rebalance_on_start
    state = StartState(problem, check_capacity=False)
    cpu_name, memory_name = static_resources(problem, cpu_resource, memory_resource)
    online = [host for host in problem.hosts if host.online]
    broken = [
        host.name
        for host in online
        if host.capacity.get(cpu_name, 0) <= 0 or host.capacity.get(memory_name, 0) <= 0
    ]
    if broken:
        logger.warning(
            "proxmox-static: host %s has no %s or %s capacity; using basic instead",
            broken[0],
            cpu_name,
            memory_name,
        )
        return _basic(problem, state, rebalance_on_start=rebalance_on_start)

    usage = StaticUsage(
        [host.name for host in online],
        [host.capacity[cpu_name] for host in online],
        [host.capacity[memory_name] for host in online],
    )

    exact_cpus = problem.proxmox.cpus

    def demand(guest: Guest) -> tuple[float, float]:
        cpus = exact_cpus.get(guest.name, guest.demand.get(cpu_name, 0))
        return float(cpus), float(guest.demand.get(memory_name, 0))

    for node, users in state.users.items():
        for user in users:
            # The HA manager only counts its own resources (its service status).
            if user.name not in problem.proxmox.unmanaged:
                usage.add(node, *demand(user))

    def choose(guest: Guest, candidates: Sequence[str]) -> str:
        scores = usage.scores(*demand(guest))
        return min(candidates, key=lambda node: (-scores[node], node))

    def account(guest: Guest, node: str) -> None:
        usage.add(node, *demand(guest))

    return _place_one_by_one(problem, state, choose, account, rebalance_on_start=rebalance_on_start)


# --- registered solvers ----------------------------------------------------------------


@register(
    "proxmox-static",
    kind="peer",
    summary="Proxmox HA static CRS: TOPSIS over CPU/memory ratios, one guest at a time, "
    "no capacity check",
)
def solve_proxmox_static(problem: Problem, options: SolveOptions) -> Plan:
    """Place as Proxmox's `static` scheduler would, then apply the boot-schedule baseline."""
    started_at = time.perf_counter()
    placement = proxmox_static_placement(problem)
    return finish_plan(problem, placement, options, "proxmox-static", started_at)


@register(
    "proxmox-basic",
    kind="peer",
    summary="Proxmox HA basic CRS: the node with the fewest HA guests, no capacity check",
)
def solve_proxmox_basic(problem: Problem, options: SolveOptions) -> Plan:
    """Place as Proxmox's `basic` scheduler would, then apply the boot-schedule baseline."""
    started_at = time.perf_counter()
    placement = proxmox_basic_placement(problem)
    return finish_plan(problem, placement, options, "proxmox-basic", started_at)
