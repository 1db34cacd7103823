"""The problem model: hosts, guests, boot profiles, boot pools, schedule settings.

Every class is frozen and checks its own fields when built (amounts are integers >= 0,
ratios > 0, each number within its range in `placement.limits`, names non-empty and free
of control characters). `Problem` then checks the references between objects and
raises `InvalidProblemError` listing *every* problem found, each named by its JSON path
(`guests[3].boot.after[0]: unknown guest 'db9'`), so a user fixes a file in one pass.

Units are in the names: `duration_s` is whole seconds, resources carry their unit
(`ram_mib`). Resource amounts are integers.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from placement.errors import InputError, InvalidProblemError
from placement.limits import (
    MAX_AMOUNT,
    MAX_COUNT,
    MAX_PRIORITY,
    MAX_RATIO,
    MAX_SECONDS,
    MAX_TOTAL,
    MAX_WEIGHTED_SECONDS,
    bad_name,
)

SCHEMA_VERSION = 1


class HostState(enum.Enum):
    """Whether a host can run guests: only `online` hosts receive guests."""

    ONLINE = "online"
    MAINTENANCE = "maintenance"
    FAILED = "failed"


class GuestState(enum.Enum):
    """What a guest is doing now, on its `current_host`.

    `frozen`: crashed and kept paused for debugging; it keeps holding its demand on its
    current host, and its replacement must start on another host.
    """

    RUNNING = "running"
    STOPPED = "stopped"
    FROZEN = "frozen"


class Objective(enum.Enum):
    """A stage of the lexicographic objective; see docs/concepts.md."""

    PLACED = "placed"  # maximise the priority-weighted guests placed
    MIGRATIONS = "migrations"  # minimise the weighted moves of running guests
    RECOVERY = "recovery"  # minimise the priority-weighted sum of ready times
    MAKESPAN = "makespan"  # minimise the time until the last guest is ready
    BALANCE = "balance"  # minimise the highest normalised host utilisation
    CONSOLIDATE = "consolidate"  # minimise the number of hosts used
    # Minimise the sum of squared distances of the host loads (CPU and memory ratios) from
    # the even load: separable, so it scales; see placement/imbalance.py.
    SPREAD = "spread"
    # Minimise Proxmox's imbalance (the coefficient of variation of the host loads over
    # sqrt(N - 1)), the loads in steps as for `spread`; see placement/imbalance.py.
    IMBALANCE = "imbalance"

    @property
    def maximise(self) -> bool:
        return self is Objective.PLACED


# The `balance` objective is the highest used/usable ratio rounded *up* to steps of 0.01 %,
# so that it is an integer number of steps for exact solvers and their bounds.
BALANCE_STEPS = 10_000

DEFAULT_OBJECTIVES = (
    Objective.PLACED,
    Objective.MIGRATIONS,
    Objective.RECOVERY,
    Objective.BALANCE,
)


# --- field helpers ---------------------------------------------------------------------


def _frozen_map(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


def _check_name(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"'{attribute.name}' must be a non-empty string (got {value!r})")
    if (why := bad_name(value)) is not None:
        raise ValueError(f"'{attribute.name}' {why} (got {value!r})")


def _check_optional_name(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        _check_name(_inst, attribute, value)


def _check_names(_inst: object, attribute: attrs.Attribute[Any], value: Iterable[str]) -> None:
    for item in value:
        if not isinstance(item, str) or not item:
            raise ValueError(f"'{attribute.name}' must hold non-empty strings (got {item!r})")
        if (why := bad_name(item)) is not None:
            raise ValueError(f"'{attribute.name}' items {why} (got {item!r})")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_amounts(
    _inst: object, attribute: attrs.Attribute[Any], value: Mapping[str, Any]
) -> None:
    for key, amount in value.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"'{attribute.name}' keys must be non-empty strings (got {key!r})")
        if (why := bad_name(key)) is not None:
            raise ValueError(f"'{attribute.name}' keys {why} (got {key!r})")
        if not _is_int(amount):
            raise ValueError(f"'{attribute.name}.{key}' must be an integer (got {amount!r})")
        if not 0 <= amount <= MAX_AMOUNT:
            raise ValueError(
                f"'{attribute.name}.{key}' must be in [0, {MAX_AMOUNT}] (got {_short(amount)})"
            )


def _check_ratios(_inst: object, attribute: attrs.Attribute[Any], value: Mapping[str, Any]) -> None:
    for key, ratio in value.items():
        if isinstance(ratio, bool) or not isinstance(ratio, int | float):
            raise ValueError(f"'{attribute.name}.{key}' must be a number (got {ratio!r})")
        if not math.isfinite(ratio) or ratio <= 0 or ratio > MAX_RATIO:
            raise ValueError(
                f"'{attribute.name}.{key}' must be > 0 and <= {MAX_RATIO} (got {_short(ratio)})"
            )


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _in_range(most: int) -> Any:
    """A validator: an integer in [0, most] (or None)."""

    def check(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if not _is_int(value):
            raise ValueError(f"'{attribute.name}' must be an integer (got {_short(value)})")
        if not 0 <= value <= most:
            raise ValueError(f"'{attribute.name}' must be in [0, {most}] (got {_short(value)})")

    return check


def _required(check: Any) -> Any:
    def required(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            raise ValueError(f"'{attribute.name}' must be an integer (got None)")
        check(_inst, attribute, value)

    return required


_check_optional_count = _in_range(MAX_COUNT)
_check_count = _required(_check_optional_count)  # counts and short waits: 0 ... 10^6
_check_optional_amount = _in_range(MAX_AMOUNT)
_check_amount = _required(_check_optional_amount)
_check_priority = _required(_in_range(MAX_PRIORITY))
_check_seconds = _required(_in_range(MAX_SECONDS))


def _check_positive_amount(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    _check_amount(_inst, attribute, value)
    if value == 0:
        raise ValueError(f"'{attribute.name}' must be >= 1 (got 0)")


def _check_bool(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"'{attribute.name}' must be true or false (got {value!r})")


def _check_positive_optional_count(
    _inst: object, attribute: attrs.Attribute[Any], value: Any
) -> None:
    _check_optional_count(_inst, attribute, value)
    if value == 0:
        raise ValueError(f"'{attribute.name}' must be >= 1 (got 0)")


# --- hosts -----------------------------------------------------------------------------


@attrs.frozen
class HostBoot:
    """Per-host limits on booting guests.

    `cpu`: the summed boot CPU of guests booting on this host at any instant (None: no
    limit). `max_starts`: how many guests may boot on this host at once (None: no limit).
    """

    cpu: int | None = attrs.field(default=None, validator=_check_optional_amount)
    max_starts: int | None = attrs.field(default=None, validator=_check_positive_optional_count)


@attrs.frozen
class Host:
    """A hypervisor node.

    The usable amount of a resource is `floor((capacity - reserved) * overcommit)`:
    `reserved` is kept for the hypervisor itself, `overcommit` (default 1.0) lets the
    summed demand exceed the physical amount (vCPUs are usually overcommitted, RAM not).
    A resource missing from `capacity` has capacity 0 on this host.
    """

    name: str = attrs.field(validator=_check_name)
    capacity: Mapping[str, int] = attrs.field(converter=_frozen_map, validator=_check_amounts)
    overcommit: Mapping[str, float] = attrs.field(
        factory=dict, converter=_frozen_map, validator=_check_ratios
    )
    reserved: Mapping[str, int] = attrs.field(
        factory=dict, converter=_frozen_map, validator=_check_amounts
    )
    state: HostState = attrs.field(default=HostState.ONLINE, converter=HostState)
    domain: str | None = attrs.field(default=None, validator=_check_optional_name)
    labels: frozenset[str] = attrs.field(
        factory=frozenset, converter=frozenset, validator=_check_names
    )
    boot: HostBoot = attrs.field(factory=HostBoot)

    @property
    def online(self) -> bool:
        return self.state is HostState.ONLINE

    def usable(self, resource: str) -> int:
        """How much of `resource` guests may use here, after reservation and overcommit."""
        raw = self.capacity.get(resource, 0) - self.reserved.get(resource, 0)
        if raw <= 0:
            return 0
        # A small epsilon keeps 0.1 * 30 == 3 rather than 2.9999999999999996 -> 2.
        return math.floor(raw * self.overcommit.get(resource, 1.0) + 1e-9)


# --- guests ----------------------------------------------------------------------------


@attrs.frozen
class BootProfile:
    """How a guest boots.

    `duration_s`: seconds from start until the guest is ready (not until the start
    command returns). While booting, the guest adds `load[pool]` to each boot pool and
    `cpu` to its host's boot CPU. `after`: guests that must be ready before this one
    starts. `group`: guests of one start group start at the same instant.
    """

    duration_s: int = attrs.field(default=60, validator=_check_seconds)
    load: Mapping[str, int] = attrs.field(
        factory=dict, converter=_frozen_map, validator=_check_amounts
    )
    cpu: int = attrs.field(default=0, validator=_check_amount)
    after: tuple[str, ...] = attrs.field(default=(), converter=tuple, validator=_check_names)
    group: str | None = attrs.field(default=None, validator=_check_optional_name)


@attrs.frozen
class Guest:
    """A virtual machine or container.

    `hosts`: the allowed hosts (None: every host). `avoid_hosts`: never these.
    `labels`: labels every host it runs on must carry. `anti_affinity`: classes; two
    guests sharing a class never share a host. `together`: guests naming the same group
    all run on one host. `follows`: another guest this one may only run beside: it runs
    on that guest's host or not at all, while that guest may run alone (Pacemaker's
    one-way colocation). `priority` >= 0: the guest counts `priority + 1` in the
    `placed` objective and weighs its ready time in `recovery`. `migration_cost`: the
    weight of moving it while it runs. `movable`: False when it cannot be live-migrated
    (local disks, device passthrough): while it runs it may only stay or be stopped.
    """

    name: str = attrs.field(validator=_check_name)
    demand: Mapping[str, int] = attrs.field(converter=_frozen_map, validator=_check_amounts)
    priority: int = attrs.field(default=0, validator=_check_priority)
    current_host: str | None = attrs.field(default=None, validator=_check_optional_name)
    state: GuestState = attrs.field(default=GuestState.STOPPED, converter=GuestState)
    anti_affinity: frozenset[str] = attrs.field(
        factory=frozenset, converter=frozenset, validator=_check_names
    )
    together: str | None = attrs.field(default=None, validator=_check_optional_name)
    follows: str | None = attrs.field(default=None, validator=_check_optional_name)
    hosts: frozenset[str] | None = attrs.field(
        default=None,
        converter=attrs.converters.optional(frozenset),
        validator=attrs.validators.optional(_check_names),
    )
    avoid_hosts: frozenset[str] = attrs.field(
        factory=frozenset, converter=frozenset, validator=_check_names
    )
    labels: frozenset[str] = attrs.field(
        factory=frozenset, converter=frozenset, validator=_check_names
    )
    migration_cost: int = attrs.field(default=1, validator=_check_priority)
    movable: bool = attrs.field(default=True, validator=_check_bool)
    boot: BootProfile = attrs.field(factory=BootProfile)

    @property
    def weight(self) -> int:
        """What placing this guest is worth in the `placed` objective."""
        return self.priority + 1


# --- cluster-wide settings -------------------------------------------------------------


@attrs.frozen
class Schedule:
    """Cluster-wide rules for the boot schedule.

    `stagger_s`: minimum seconds between two successive start instants (guests of one
    start group share an instant). `max_starts`: the batch limit, how many guests may
    boot at once cluster-wide (None: no limit). `horizon_s`: every guest must be ready by
    then.
    """

    stagger_s: int = attrs.field(default=0, validator=_check_seconds)
    max_starts: int | None = attrs.field(default=None, validator=_check_positive_optional_count)
    horizon_s: int = attrs.field(default=86_400, validator=_check_seconds)


@attrs.frozen
class MigrationSettings:
    """How live migrations of running guests behave and what limits them.

    A migration of a guest takes `setup_s + ceil(demand[memory_resource] /
    bandwidth_mib_s)` seconds (a guest without that resource copies 0 MiB); meanwhile the
    guest holds its demand on both its current host and its target, and adds `load[pool]`
    to each boot pool. `max_per_host`: migrations running at once that involve one host,
    as source or target (None: no limit). `max_total`: migrations running at once
    cluster-wide (None: no limit). `max_moves`: the most migrations a plan may contain
    (None: no limit).
    """

    bandwidth_mib_s: int = attrs.field(default=1000, validator=_check_positive_amount)
    setup_s: int = attrs.field(default=5, validator=_check_seconds)
    memory_resource: str = attrs.field(default="ram_mib", validator=_check_name)
    max_per_host: int | None = attrs.field(default=None, validator=_check_positive_optional_count)
    max_total: int | None = attrs.field(default=None, validator=_check_positive_optional_count)
    max_moves: int | None = attrs.field(default=None, validator=_check_optional_count)
    load: Mapping[str, int] = attrs.field(
        factory=dict, converter=_frozen_map, validator=_check_amounts
    )

    def duration_s(self, guest: Guest) -> int:
        """Seconds a live migration of `guest` takes: setup, then copying its memory."""
        memory_mib = guest.demand.get(self.memory_resource, 0)
        return self.setup_s + -(-memory_mib // self.bandwidth_mib_s)


class Contention(enum.Enum):
    """How an overloaded boot pool or host boot CPU serves the boots that load it.

    `share`: processor sharing; the resource delivers its capacity, split in proportion
    to the demand. `thrash`: past saturation it delivers less than its capacity (the
    latency collapse of an overloaded array), see `SimulationSettings`.
    """

    SHARE = "share"
    THRASH = "thrash"


def _check_unit_interval(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"'{attribute.name}' must be a number (got {value!r})")
    if not 0 <= value <= 1:
        raise ValueError(f"'{attribute.name}' must be between 0 and 1 (got {value})")


def _check_number_at_least(low: float, high: float) -> Any:
    def check(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"'{attribute.name}' must be a number (got {value!r})")
        if not math.isfinite(value) or not low <= value <= high:
            raise ValueError(f"'{attribute.name}' must be between {low} and {high} (got {value})")

    return check


@attrs.frozen
class HostFailure:
    """A host that fails during the recovery, `at_s` seconds after instant 0."""

    host: str = attrs.field(validator=_check_name)
    at_s: float = attrs.field(validator=_check_number_at_least(0.0, 1e9))


def _failure_tuple(value: Iterable[HostFailure | Mapping[str, Any]]) -> tuple[HostFailure, ...]:
    # Plain mappings are accepted too, so `simulate(..., host_failures=[{...}])` works.
    return tuple(item if isinstance(item, HostFailure) else HostFailure(**item) for item in value)


@attrs.frozen
class SimulationSettings:
    """The physics a plan is run against by `placement.simulate` (docs/simulation.md).

    Boots are work: a boot needs `duration_s` seconds at full speed. An overloaded pool or
    host boot CPU slows every boot that loads it (`contention`); with `thrash` it delivers
    `capacity * max(thrash_floor, 1 - thrash_slope * (demand / capacity - 1))` past
    saturation. `sigma`: the lognormal spread of each guest's duration multiplier (median
    1); `duration_factors`: a fixed multiplier per guest on top of it. `start_return_s`:
    the start command returns this long after it was issued (or when the guest is ready,
    if sooner) while the boot goes on: what tools that count *started* actions see.
    `start_failure_probability`: the chance that one start attempt fails part-way; a
    failed start is retried `max_retries` times, `retry_delay_s` after it failed.
    `fencing`: a host whose boot pressure (its boot CPU demand over its limit, or the
    demand over capacity of a pool its booting guests load) stays above `fence_ratio`
    for longer than `fence_grace_s` is fenced, and every guest on it is lost.
    `host_failures`: hosts that fail at given instants; `random_host_failure_probability`:
    the chance per run that one more host, drawn among those receiving guests, fails at
    an instant drawn uniformly within the plan's makespan.
    """

    sigma: float = attrs.field(default=0.0, validator=_check_number_at_least(0.0, 3.0))
    contention: Contention = attrs.field(default=Contention.SHARE, converter=Contention)
    thrash_slope: float = attrs.field(default=0.5, validator=_check_number_at_least(0.0, 100.0))
    thrash_floor: float = attrs.field(default=0.25, validator=_check_unit_interval)
    start_return_s: int = attrs.field(default=5, validator=_check_seconds)
    start_failure_probability: float = attrs.field(default=0.0, validator=_check_unit_interval)
    retry_delay_s: int = attrs.field(default=30, validator=_check_seconds)
    max_retries: int = attrs.field(default=1, validator=_check_count)
    fencing: bool = attrs.field(default=False, validator=_check_bool)
    fence_ratio: float = attrs.field(default=1.5, validator=_check_number_at_least(1.0, 1e6))
    fence_grace_s: int = attrs.field(default=60, validator=_check_seconds)
    host_failures: tuple[HostFailure, ...] = attrs.field(default=(), converter=_failure_tuple)
    random_host_failure_probability: float = attrs.field(
        default=0.0, validator=_check_unit_interval
    )
    duration_factors: Mapping[str, float] = attrs.field(
        factory=dict, converter=_frozen_map, validator=_check_ratios
    )


# Pacemaker's INFINITY: scores are clamped to +-1,000,000 and that value means "always".
PACEMAKER_INFINITY = 1_000_000


def _check_scores(_inst: object, attribute: attrs.Attribute[Any], value: Mapping[str, Any]) -> None:
    for key, score in value.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"'{attribute.name}' keys must be non-empty strings (got {key!r})")
        if isinstance(score, Mapping):
            _check_scores(_inst, attribute, score)
            continue
        if not _is_int(score):
            raise ValueError(f"'{attribute.name}.{key}' must be an integer (got {score!r})")
        if not -PACEMAKER_INFINITY <= score <= PACEMAKER_INFINITY:
            raise ValueError(
                f"'{attribute.name}.{key}' must be in [-{PACEMAKER_INFINITY}, "
                f"{PACEMAKER_INFINITY}] (got {_short(score)})"
            )


def _frozen_scores(value: Mapping[str, Mapping[str, int]] | None) -> Mapping[str, Any]:
    return MappingProxyType({name: _frozen_map(scores) for name, scores in (value or {}).items()})


def _frozen_clones(value: Mapping[str, Iterable[str]] | None) -> Mapping[str, Any]:
    return MappingProxyType({name: tuple(guests) for name, guests in (value or {}).items()})


def _check_clones(_inst: object, attribute: attrs.Attribute[Any], value: Mapping[str, Any]) -> None:
    for key, guests in value.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"'{attribute.name}' keys must be non-empty strings (got {key!r})")
        _check_names(_inst, attribute, guests)


@attrs.frozen
class PacemakerSettings:
    """Pacemaker's own scores, read only by the `pacemaker-*` re-creations.

    A problem that carries them (`placement import pacemaker` writes them) is solved by
    those re-creations as Pacemaker's scheduler does at every transition: every guest is
    assigned afresh, running ones included, highest priority first, each to the allowed
    host with the highest score. `stickiness`: guest -> its `resource-stickiness`, added
    to the score of the host it runs on (guests not listed: 0). `scores`: guest -> host ->
    a finite location score (an `rsc_location` or `cli-prefer` constraint; hard bans and
    opt-in allowances are the guest's `avoid_hosts` and `hosts`). Every score is an
    integer within +-1,000,000, Pacemaker's INFINITY. `clones`: clone id -> the guests
    that are its instances, which are interchangeable: every instance that can stay where
    it runs does so before any instance moves. Other solvers ignore this block.
    """

    stickiness: Mapping[str, int] = attrs.field(
        factory=dict, converter=_frozen_map, validator=_check_scores
    )
    scores: Mapping[str, Mapping[str, int]] = attrs.field(
        factory=dict, converter=_frozen_scores, validator=_check_scores
    )
    clones: Mapping[str, tuple[str, ...]] = attrs.field(
        factory=dict, converter=_frozen_clones, validator=_check_clones
    )


@attrs.frozen
class ProxmoxNodeAffinity:
    """A Proxmox VE 9 HA node-affinity rule, as the Proxmox re-creations apply it.

    `guests` prefer `nodes` (node -> priority, higher first): Proxmox places a guest
    only on the online nodes of the highest priority present, and moves a running one
    back there (failback). A non-`strict` rule lets the guest fall back to any other
    online node (priority -1) when none of its nodes is online; a `strict` one does not.
    """

    guests: tuple[str, ...] = attrs.field(converter=tuple, validator=_check_names)
    nodes: Mapping[str, int] = attrs.field(converter=_frozen_map, validator=_check_amounts)
    strict: bool = attrs.field(default=False, validator=_check_bool)


def _affinity_tuple(
    value: Iterable[ProxmoxNodeAffinity | Mapping[str, Any]],
) -> tuple[ProxmoxNodeAffinity, ...]:
    return tuple(
        item if isinstance(item, ProxmoxNodeAffinity) else ProxmoxNodeAffinity(**item)
        for item in value
    )


def _check_cpu_counts(
    _inst: object, attribute: attrs.Attribute[Any], value: Mapping[str, Any]
) -> None:
    for key, count in value.items():
        if isinstance(count, bool) or not isinstance(count, int | float):
            raise ValueError(f"'{attribute.name}.{key}' must be a number (got {count!r})")
        if not math.isfinite(count) or count < 0 or count > MAX_RATIO:
            raise ValueError(
                f"'{attribute.name}.{key}' must be >= 0 and <= {MAX_RATIO} (got {_short(count)})"
            )


@attrs.frozen
class ProxmoxSettings:
    """The Proxmox HA configuration the `proxmox-*` re-creations follow (other solvers
    ignore it; the hard part of a rule belongs in the guests' `hosts`).

    `rebalance_on_start`: the CRS option `ha-rebalance-on-start`; a guest that HA starts
    is placed on the best-scored node instead of the node it is configured on.
    `node_affinity`: node-affinity rules with their node priorities and strictness.
    `no_failback`: guests with `failback 0` (a VE 8 group's `nofailback`): a running one
    stays on any node its rule allows instead of moving back to its highest priority.
    `unmanaged`: guests that are not HA resources (or are `ignored`): the HA manager
    neither counts their usage nor starts or recovers them. `cpus`: per guest, the CPUs
    the static scheduler counts where that is not its whole `vcpus` demand (a
    container's `cpulimit` of 0.5; 0 for no limit, which counts as every CPU of a node).
    """

    rebalance_on_start: bool = attrs.field(default=False, validator=_check_bool)
    node_affinity: tuple[ProxmoxNodeAffinity, ...] = attrs.field(
        default=(), converter=_affinity_tuple
    )
    no_failback: frozenset[str] = attrs.field(
        factory=frozenset, converter=frozenset, validator=_check_names
    )
    unmanaged: frozenset[str] = attrs.field(
        factory=frozenset, converter=frozenset, validator=_check_names
    )
    cpus: Mapping[str, float] = attrs.field(
        factory=dict, converter=_frozen_map, validator=_check_cpu_counts
    )


def _host_tuple(value: Iterable[Host]) -> tuple[Host, ...]:
    return tuple(value)


def _guest_tuple(value: Iterable[Guest]) -> tuple[Guest, ...]:
    return tuple(value)


def _objective_tuple(value: Iterable[Objective | str]) -> tuple[Objective, ...]:
    return tuple(Objective(item) for item in value)


# --- the problem -----------------------------------------------------------------------


@attrs.frozen
class Problem:
    """A cluster and what to decide about it: where each guest runs and when it starts.

    Built by `placement.codec.load_problem` from JSON or directly; either way the cross
    references are checked on construction and `InvalidProblemError` lists every error.
    """

    hosts: tuple[Host, ...] = attrs.field(converter=_host_tuple)
    guests: tuple[Guest, ...] = attrs.field(converter=_guest_tuple)
    boot_pools: Mapping[str, int] = attrs.field(
        factory=dict, converter=_frozen_map, validator=_check_amounts
    )
    schedule: Schedule = attrs.field(factory=Schedule)
    objective: tuple[Objective, ...] = attrs.field(
        default=DEFAULT_OBJECTIVES, converter=_objective_tuple
    )
    migration: MigrationSettings = attrs.field(factory=MigrationSettings)
    simulation: SimulationSettings = attrs.field(factory=SimulationSettings)
    pacemaker: PacemakerSettings | None = None
    proxmox: ProxmoxSettings = attrs.field(factory=ProxmoxSettings)
    _host_index: Mapping[str, int] = attrs.field(init=False, repr=False, eq=False)
    _guest_index: Mapping[str, int] = attrs.field(init=False, repr=False, eq=False)
    _resources: tuple[str, ...] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        for where, items, cls in (("hosts", self.hosts, Host), ("guests", self.guests, Guest)):
            for index, item in enumerate(items):
                if not isinstance(item, cls):
                    message = f"must be a {cls.__name__}, got {type(item).__name__}"
                    raise InvalidProblemError([InputError(f"{where}[{index}]", message)])
        errors = reference_errors(_reference_view(self))
        if errors:
            raise InvalidProblemError(errors)
        object.__setattr__(self, "_host_index", {h.name: i for i, h in enumerate(self.hosts)})
        object.__setattr__(self, "_guest_index", {g.name: i for i, g in enumerate(self.guests)})
        # Computed once: the checker asks for it per host (a pass over every guest each
        # time cost 3.6 s per check on 10,000 guests x 1,000 hosts).
        names: set[str] = set()
        for host in self.hosts:
            names.update(host.capacity)
        for guest in self.guests:
            names.update(guest.demand)
        object.__setattr__(self, "_resources", tuple(sorted(names)))

    # Look-ups used by solvers and the checker.
    def host(self, name: str) -> Host:
        """The host named `name` (KeyError if there is none)."""
        return self.hosts[self._host_index[name]]

    def guest(self, name: str) -> Guest:
        """The guest named `name` (KeyError if there is none)."""
        return self.guests[self._guest_index[name]]

    def host_position(self, name: str) -> int:
        """The index of host `name` in `hosts`."""
        return self._host_index[name]

    def guest_position(self, name: str) -> int:
        """The index of guest `name` in `guests`."""
        return self._guest_index[name]

    def has_host(self, name: str) -> bool:
        """Whether a host is named `name`."""
        return name in self._host_index

    def has_guest(self, name: str) -> bool:
        """Whether a guest is named `name`."""
        return name in self._guest_index

    @property
    def resources(self) -> tuple[str, ...]:
        """Every resource named by a host or guest, sorted."""
        return self._resources

    def together_groups(self) -> dict[str, tuple[Guest, ...]]:
        """Together-group name -> its member guests, in problem order."""
        groups: dict[str, list[Guest]] = {}
        for guest in self.guests:
            if guest.together is not None:
                groups.setdefault(guest.together, []).append(guest)
        return {name: tuple(members) for name, members in groups.items()}

    def start_groups(self) -> dict[str, tuple[Guest, ...]]:
        """Start-group name -> its member guests, in problem order."""
        groups: dict[str, list[Guest]] = {}
        for guest in self.guests:
            if guest.boot.group is not None:
                groups.setdefault(guest.boot.group, []).append(guest)
        return {name: tuple(members) for name, members in groups.items()}

    def holds_current_host(self, guest: Guest) -> bool:
        """Whether the guest's copy on its current host keeps using that host.

        A running guest on a live host keeps running there unless moved; a frozen guest
        on a host that has not failed stays paused there, holding its memory.
        """
        if guest.current_host is None:
            return False
        host = self.host(guest.current_host)
        if guest.state is GuestState.FROZEN:
            return host.state is not HostState.FAILED
        return guest.state is GuestState.RUNNING and host.state is not HostState.FAILED

    def runs_now(self, guest: Guest) -> bool:
        """Whether the guest is running now: state running on a host that has not failed.
        Such a guest stays, migrates or is stopped; every other guest starts or not."""
        return guest.state is GuestState.RUNNING and self.holds_current_host(guest)

    def migration_duration(self, guest: Guest) -> int:
        """Seconds a live migration of `guest` takes (see `MigrationSettings`)."""
        return self.migration.duration_s(guest)

    def stages_before(self, objective: Objective) -> tuple[Objective, ...]:
        """The objective stages before `objective`, which must be one of them."""
        return self.objective[: self.objective.index(objective)]

    def can_migrate(self, guest: Guest) -> bool:
        """Whether the guest runs now and may be live-migrated (`movable`)."""
        return guest.movable and self.runs_now(guest)

    def allowed_hosts(self, guest: Guest) -> tuple[Host, ...]:
        """Online hosts the guest's own rules allow (not counting capacity or others)."""
        return tuple(host for host in self.hosts if host_allows(host, guest))


def host_allows(host: Host, guest: Guest) -> bool:
    """Whether the guest's host filters, the host's state and labels admit this host.

    A frozen guest's replacement may not use the host where the frozen copy sits.
    """
    if not host.online:
        return False
    if guest.hosts is not None and host.name not in guest.hosts:
        return False
    if host.name in guest.avoid_hosts:
        return False
    if not guest.labels <= host.labels:
        return False
    return not (guest.state is GuestState.FROZEN and host.name == guest.current_host)


# --- cross-reference checks ------------------------------------------------------------
#
# These run on plain JSON-like data, so the codec can report reference errors in the same
# pass as structural ones, on a document whose structure is broken elsewhere: anything of
# the wrong shape is skipped here (the schema reports it).


def _duplicates(names: Iterable[str]) -> Iterator[tuple[int, str]]:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            yield index, name
        seen.add(name)


def _items(document: Mapping[str, Any], key: str) -> list[tuple[int, Mapping[str, Any]]]:
    value = document.get(key)
    if not isinstance(value, list):
        return []
    return [(index, item) for index, item in enumerate(value) if isinstance(item, Mapping)]


def _name(item: Mapping[str, Any]) -> str | None:
    name = item.get("name")
    return name if isinstance(name, str) and name else None


def _keys(value: Any) -> list[str]:
    return [key for key in value if isinstance(key, str)] if isinstance(value, Mapping) else []


def _strings(value: Any) -> list[tuple[int, str]]:
    if not isinstance(value, list | tuple | frozenset | set):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, str)]


def reference_errors(document: Mapping[str, Any]) -> list[InputError]:
    """Every error in the references between objects of a problem document (plain data,
    as in the JSON format), each with its JSON path."""
    errors: list[InputError] = []
    hosts = _items(document, "hosts")
    guests = _items(document, "guests")
    pools = set(_keys(document.get("boot_pools")))

    for index, name in _duplicates(n for _, host in hosts if (n := _name(host))):
        errors.append(InputError(f"hosts[{hosts[index][0]}].name", f"duplicate host name '{name}'"))
    named_guests = [(i, n) for i, guest in guests if (n := _name(guest))]
    for index, name in _duplicates(n for _, n in named_guests):
        errors.append(
            InputError(f"guests[{named_guests[index][0]}].name", f"duplicate guest name '{name}'")
        )

    host_names = {n for _, host in hosts if (n := _name(host))}
    guest_names = {n for _, n in named_guests}
    host_resources = {r for _, host in hosts for r in _keys(host.get("capacity"))}
    # Where a list or a name is broken the schema already says so; checking references
    # against the rest would only add errors that vanish once that one is fixed.
    raw_hosts, raw_guests = document.get("hosts"), document.get("guests")
    hosts_whole = isinstance(raw_hosts, list) and len(host_names) == len(raw_hosts)
    guests_whole = isinstance(raw_guests, list) and len(named_guests) == len(raw_guests)
    capacities_whole = hosts_whole and all(
        isinstance(host.get("capacity"), Mapping) for _, host in hosts
    )

    for index, host in hosts:
        capacity = set(_keys(host.get("capacity")))
        for field in ("overcommit", "reserved"):
            if not isinstance(host.get("capacity"), Mapping):
                break
            for resource in sorted(set(_keys(host.get(field))) - capacity):
                errors.append(
                    InputError(
                        f"hosts[{index}].{field}.{resource}",
                        f"resource '{resource}' has no capacity on this host",
                    )
                )

    for index, guest in guests:
        where = f"guests[{index}]"
        demand = guest.get("demand")
        for resource, amount in demand.items() if isinstance(demand, Mapping) else ():
            if (
                capacities_whole
                and _is_int(amount)
                and amount > 0
                and resource not in host_resources
            ):
                errors.append(
                    InputError(f"{where}.demand.{resource}", f"no host has resource '{resource}'")
                )
        current = guest.get("current_host")
        if hosts_whole and isinstance(current, str) and current and current not in host_names:
            errors.append(InputError(f"{where}.current_host", f"unknown host '{current}'"))
        state = guest.get("state", GuestState.STOPPED.value)
        state = state.value if isinstance(state, GuestState) else state
        if state in ("running", "frozen") and current is None:
            errors.append(
                InputError(f"{where}.current_host", f"a {state} guest needs its current host")
            )
        for field in ("hosts", "avoid_hosts"):
            for _, name in sorted(_strings(guest.get(field)), key=lambda item: item[1]):
                if hosts_whole and name not in host_names:
                    errors.append(InputError(f"{where}.{field}", f"unknown host '{name}'"))
        follows = guest.get("follows")
        if guests_whole and isinstance(follows, str) and follows:
            if follows not in guest_names:
                errors.append(InputError(f"{where}.follows", f"unknown guest '{follows}'"))
            elif follows == _name(guest):
                errors.append(InputError(f"{where}.follows", "a guest cannot follow itself"))
        boot = guest.get("boot")
        if not isinstance(boot, Mapping):
            continue
        for pool in _keys(boot.get("load")):
            if pool not in pools:
                errors.append(
                    InputError(f"{where}.boot.load.{pool}", f"unknown boot pool '{pool}'")
                )
        for position, dependency in _strings(boot.get("after")):
            if not guests_whole:
                continue
            if dependency not in guest_names:
                errors.append(
                    InputError(f"{where}.boot.after[{position}]", f"unknown guest '{dependency}'")
                )
            elif dependency == _name(guest):
                errors.append(
                    InputError(
                        f"{where}.boot.after[{position}]", "a guest cannot start after itself"
                    )
                )

    migration = document.get("migration")
    if isinstance(migration, Mapping):
        for pool in _keys(migration.get("load")):
            if pool not in pools:
                errors.append(InputError(f"migration.load.{pool}", f"unknown boot pool '{pool}'"))

    simulation = document.get("simulation")
    if isinstance(simulation, Mapping):
        failures = simulation.get("host_failures")
        for position, failure in enumerate(failures if isinstance(failures, list) else ()):
            failing = failure.get("host") if isinstance(failure, Mapping) else None
            if hosts_whole and isinstance(failing, str) and failing and failing not in host_names:
                errors.append(
                    InputError(
                        f"simulation.host_failures[{position}].host", f"unknown host '{failing}'"
                    )
                )
        for name in _keys(simulation.get("duration_factors")):
            if guests_whole and name not in guest_names:
                errors.append(
                    InputError(f"simulation.duration_factors.{name}", f"unknown guest '{name}'")
                )

    # Only documents are checked here (not `_reference_view`): a built problem may drop
    # guests (a subset to solve) while its Proxmox rules still name them.
    proxmox = document.get("proxmox")
    rules = proxmox.get("node_affinity") if isinstance(proxmox, Mapping) else None
    ruled: set[str] = set()
    for position, rule in enumerate(rules if isinstance(rules, list) else ()):
        if not isinstance(rule, Mapping):
            continue
        where = f"proxmox.node_affinity[{position}]"
        for index, name in _strings(rule.get("guests")):
            if guests_whole and name not in guest_names:
                errors.append(InputError(f"{where}.guests[{index}]", f"unknown guest '{name}'"))
            elif name in ruled:
                # Proxmox refuses the same: one node-affinity rule per resource.
                errors.append(
                    InputError(f"{where}.guests[{index}]", f"'{name}' is in an earlier rule")
                )
            ruled.add(name)
        for name in _keys(rule.get("nodes")):
            if hosts_whole and name not in host_names:
                errors.append(InputError(f"{where}.nodes.{name}", f"unknown host '{name}'"))
    for key in ("no_failback", "unmanaged"):
        listed = proxmox.get(key) if isinstance(proxmox, Mapping) else None
        for index, name in _strings(listed):
            if guests_whole and name not in guest_names:
                errors.append(InputError(f"proxmox.{key}[{index}]", f"unknown guest '{name}'"))
    for name in _keys(proxmox.get("cpus") if isinstance(proxmox, Mapping) else None):
        if guests_whole and name not in guest_names:
            errors.append(InputError(f"proxmox.cpus.{name}", f"unknown guest '{name}'"))

    # Imported here: graph.py imports this module for its types.
    from placement.graph import cycles

    pairs = []
    for _, item in guests:
        guest_name = _name(item)
        guest_boot = item.get("boot")
        after = guest_boot.get("after") if isinstance(guest_boot, Mapping) else None
        if guest_name is not None:
            pairs.append((guest_name, [dep for _, dep in _strings(after)]))
    first = {name: index for index, name in reversed(named_guests)}
    for cycle in cycles(pairs):
        loop = " -> ".join([*cycle, cycle[0]])
        errors.append(
            InputError(f"guests[{first[cycle[0]]}].boot.after", f"dependency cycle: {loop}")
        )
    leaders: dict[str, str] = {}
    for _, item in guests:
        follower, leader = _name(item), item.get("follows")
        if isinstance(leader, str) and leader in guest_names and follower not in (None, leader):
            leaders[str(follower)] = leader
    for ring in _follow_loops(leaders):
        errors.append(
            InputError(
                f"guests[{first[ring[0]]}].follows",
                "follows loop: " + " -> ".join([*ring, ring[0]]),
            )
        )
    errors.extend(_total_errors(document, hosts, guests))
    return errors


def _follow_loops(leaders: Mapping[str, str]) -> list[list[str]]:
    """Each loop of guests following one another (A follows B follows A), once."""
    loops: list[list[str]] = []
    done: set[str] = set()
    for start in leaders:
        path: list[str] = []
        seen: dict[str, int] = {}
        name: str | None = start
        while name is not None and name not in done and name not in seen:
            seen[name] = len(path)
            path.append(name)
            name = leaders.get(name)
        if name is not None and name in seen:
            loops.append(path[seen[name] :])
        done.update(path)
    return loops


def pacemaker_reference_errors(document: Mapping[str, Any]) -> list[InputError]:
    """Names in the `pacemaker` block of a problem document that name no guest or host.

    Checked when a file is read, not when a `Problem` is built: solvers build smaller
    problems from a bigger one (`attrs.evolve`), and the scores of guests or hosts left
    out of those are simply not used.
    """
    errors: list[InputError] = []
    hosts = _items(document, "hosts")
    guests = _items(document, "guests")
    host_names = {n for _, host in hosts if (n := _name(host))}
    guest_names = {n for _, guest in guests if (n := _name(guest))}
    hosts_whole = isinstance(document.get("hosts"), list) and len(host_names) == len(hosts)
    guests_whole = isinstance(document.get("guests"), list) and len(guest_names) == len(guests)
    pacemaker = document.get("pacemaker")
    if isinstance(pacemaker, Mapping):
        for field in ("stickiness", "scores"):
            for name in _keys(pacemaker.get(field)):
                if guests_whole and name not in guest_names:
                    errors.append(
                        InputError(f"pacemaker.{field}.{name}", f"unknown guest '{name}'")
                    )
                    continue
                if field == "scores":
                    for node in _keys(pacemaker["scores"][name]):
                        if hosts_whole and node not in host_names:
                            errors.append(
                                InputError(
                                    f"pacemaker.scores.{name}.{node}", f"unknown host '{node}'"
                                )
                            )
        clones = pacemaker.get("clones")
        for clone in _keys(clones):
            assert isinstance(clones, Mapping)
            for position, member in _strings(clones[clone]):
                if guests_whole and member not in guest_names:
                    errors.append(
                        InputError(
                            f"pacemaker.clones.{clone}[{position}]", f"unknown guest '{member}'"
                        )
                    )

    return errors


def _amount(value: Any) -> int:
    """An amount as the sums below count it (a wrong shape counts 0: the schema says so)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float) and not math.isfinite(value):
        return 0
    return int(min(max(value, 0), MAX_AMOUNT))  # (an int of any size compares exactly)


def _total_errors(
    document: Mapping[str, Any],
    hosts: list[tuple[int, Mapping[str, Any]]],
    guests: list[tuple[int, Mapping[str, Any]]],
) -> list[InputError]:
    """Sums that must fit the solvers' 64-bit arithmetic (`placement.limits`): demand and
    usable amount per resource, boot load per pool, and the largest `recovery` value."""
    errors: list[InputError] = []
    usable: dict[str, int] = {}
    for _, host in hosts:
        raw = host.get("capacity")
        capacity: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        overcommit = host.get("overcommit")
        ratios = overcommit if isinstance(overcommit, Mapping) else {}
        for resource in _keys(capacity):
            ratio = ratios.get(resource, 1.0)
            ratio = ratio if isinstance(ratio, int | float) and 0 < ratio <= MAX_RATIO else 1.0
            usable[resource] = usable.get(resource, 0) + math.floor(
                _amount(capacity[resource]) * ratio
            )
    demand: dict[str, int] = {}
    load: dict[str, int] = {}
    weighted = 0
    schedule = document.get("schedule")
    horizon = schedule.get("horizon_s", 86_400) if isinstance(schedule, Mapping) else 86_400
    horizon_s = min(horizon, MAX_SECONDS) if _is_int(horizon) and horizon > 0 else 0
    for _, guest in guests:
        raw = guest.get("demand")
        amounts: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        for resource in _keys(amounts):
            demand[resource] = demand.get(resource, 0) + _amount(amounts[resource])
        boot = guest.get("boot")
        raw = boot.get("load") if isinstance(boot, Mapping) else None
        loads: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        for pool in _keys(loads):
            load[pool] = load.get(pool, 0) + _amount(loads[pool])
        priority = guest.get("priority", 0)
        if _is_int(priority) and 0 <= priority <= MAX_PRIORITY:
            weighted += (priority + 1) * horizon_s
    for where, totals, what in (
        ("hosts", usable, "usable {} summed over hosts (capacity x overcommit)"),
        ("guests", demand, "demand of {} summed over guests"),
        ("guests", load, "boot load on pool {} summed over guests"),
    ):
        for name, total in sorted(totals.items()):
            if total > MAX_TOTAL:
                text = what.format(f"'{name}'")
                errors.append(InputError(where, f"{text} must be <= {MAX_TOTAL:.0e}, got {total}"))
    if weighted > MAX_WEIGHTED_SECONDS:
        errors.append(
            InputError(
                "guests",
                "(priority + 1) x schedule.horizon_s summed over guests must be <= "
                f"{MAX_WEIGHTED_SECONDS:.0e}, got {weighted}: lower the priorities or the horizon",
            )
        )
    return errors


def _reference_view(problem: Problem) -> dict[str, Any]:
    """The parts of a built problem that `reference_errors` reads, as plain data."""
    return {
        "hosts": [
            {
                "name": host.name,
                "capacity": host.capacity,
                "overcommit": host.overcommit,
                "reserved": host.reserved,
            }
            for host in problem.hosts
        ],
        "guests": [
            {
                "name": guest.name,
                "demand": guest.demand,
                "current_host": guest.current_host,
                "priority": guest.priority,
                "state": guest.state.value,
                "hosts": sorted(guest.hosts) if guest.hosts is not None else None,
                "avoid_hosts": sorted(guest.avoid_hosts),
                "follows": guest.follows,
                "boot": {"load": guest.boot.load, "after": list(guest.boot.after)},
            }
            for guest in problem.guests
        ],
        "boot_pools": problem.boot_pools,
        "schedule": {"horizon_s": problem.schedule.horizon_s},
        "migration": {"load": problem.migration.load},
        "simulation": {
            "host_failures": [{"host": f.host} for f in problem.simulation.host_failures],
            "duration_factors": problem.simulation.duration_factors,
        },
        "pacemaker": (
            {"stickiness": problem.pacemaker.stickiness, "scores": problem.pacemaker.scores}
            if problem.pacemaker is not None
            else None
        ),
    }
