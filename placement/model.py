"""The problem model: hosts, guests, boot profiles, boot pools, schedule settings.

Every class is frozen and checks its own fields when built (amounts are integers >= 0,
ratios > 0, names non-empty). `Problem` then checks the references between objects and
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

    @property
    def maximise(self) -> bool:
        return self is Objective.PLACED


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


def _check_optional_name(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        _check_name(_inst, attribute, value)


def _check_names(_inst: object, attribute: attrs.Attribute[Any], value: Iterable[str]) -> None:
    for item in value:
        if not isinstance(item, str) or not item:
            raise ValueError(f"'{attribute.name}' must hold non-empty strings (got {item!r})")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_amounts(
    _inst: object, attribute: attrs.Attribute[Any], value: Mapping[str, Any]
) -> None:
    for key, amount in value.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"'{attribute.name}' keys must be non-empty strings (got {key!r})")
        if not _is_int(amount):
            raise ValueError(f"'{attribute.name}.{key}' must be an integer (got {amount!r})")
        if amount < 0:
            raise ValueError(f"'{attribute.name}.{key}' must be >= 0 (got {amount})")


def _check_ratios(_inst: object, attribute: attrs.Attribute[Any], value: Mapping[str, Any]) -> None:
    for key, ratio in value.items():
        if isinstance(ratio, bool) or not isinstance(ratio, int | float):
            raise ValueError(f"'{attribute.name}.{key}' must be a number (got {ratio!r})")
        if not math.isfinite(ratio) or ratio <= 0:
            raise ValueError(f"'{attribute.name}.{key}' must be > 0 (got {ratio})")


def _check_optional_count(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not _is_int(value):
        raise ValueError(f"'{attribute.name}' must be an integer (got {value!r})")
    if value < 0:
        raise ValueError(f"'{attribute.name}' must be >= 0 (got {value})")


def _check_count(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        raise ValueError(f"'{attribute.name}' must be an integer (got None)")
    _check_optional_count(_inst, attribute, value)


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

    cpu: int | None = attrs.field(default=None, validator=_check_optional_count)
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

    duration_s: int = attrs.field(default=60, validator=_check_count)
    load: Mapping[str, int] = attrs.field(
        factory=dict, converter=_frozen_map, validator=_check_amounts
    )
    cpu: int = attrs.field(default=0, validator=_check_count)
    after: tuple[str, ...] = attrs.field(default=(), converter=tuple, validator=_check_names)
    group: str | None = attrs.field(default=None, validator=_check_optional_name)


@attrs.frozen
class Guest:
    """A virtual machine or container.

    `hosts`: the allowed hosts (None: every host). `avoid_hosts`: never these.
    `labels`: labels every host it runs on must carry. `anti_affinity`: classes; two
    guests sharing a class never share a host. `together`: guests naming the same group
    all run on one host. `priority` >= 0: the guest counts `priority + 1` in the
    `placed` objective and weighs its ready time in `recovery`. `migration_cost`: the
    weight of moving it while it runs.
    """

    name: str = attrs.field(validator=_check_name)
    demand: Mapping[str, int] = attrs.field(converter=_frozen_map, validator=_check_amounts)
    priority: int = attrs.field(default=0, validator=_check_count)
    current_host: str | None = attrs.field(default=None, validator=_check_optional_name)
    state: GuestState = attrs.field(default=GuestState.STOPPED, converter=GuestState)
    anti_affinity: frozenset[str] = attrs.field(
        factory=frozenset, converter=frozenset, validator=_check_names
    )
    together: str | None = attrs.field(default=None, validator=_check_optional_name)
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
    migration_cost: int = attrs.field(default=1, validator=_check_count)
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

    stagger_s: int = attrs.field(default=0, validator=_check_count)
    max_starts: int | None = attrs.field(default=None, validator=_check_positive_optional_count)
    horizon_s: int = attrs.field(default=86_400, validator=_check_count)


def _objective_tuple(value: Iterable[Objective | str]) -> tuple[Objective, ...]:
    return tuple(Objective(item) for item in value)


# --- the problem -----------------------------------------------------------------------


@attrs.frozen
class Problem:
    """A cluster and what to decide about it: where each guest runs and when it starts.

    Built by `placement.codec.load_problem` from JSON or directly; either way the cross
    references are checked on construction and `InvalidProblemError` lists every error.
    """

    hosts: tuple[Host, ...] = attrs.field(converter=tuple)
    guests: tuple[Guest, ...] = attrs.field(converter=tuple)
    boot_pools: Mapping[str, int] = attrs.field(
        factory=dict, converter=_frozen_map, validator=_check_amounts
    )
    schedule: Schedule = attrs.field(factory=Schedule)
    objective: tuple[Objective, ...] = attrs.field(
        default=DEFAULT_OBJECTIVES, converter=_objective_tuple
    )
    _host_index: Mapping[str, int] = attrs.field(init=False, repr=False, eq=False)
    _guest_index: Mapping[str, int] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        errors = list(_reference_errors(self))
        if errors:
            raise InvalidProblemError(errors)
        object.__setattr__(self, "_host_index", {h.name: i for i, h in enumerate(self.hosts)})
        object.__setattr__(self, "_guest_index", {g.name: i for i, g in enumerate(self.guests)})

    # Look-ups used by solvers and the checker.
    def host(self, name: str) -> Host:
        return self.hosts[self._host_index[name]]

    def guest(self, name: str) -> Guest:
        return self.guests[self._guest_index[name]]

    def host_position(self, name: str) -> int:
        return self._host_index[name]

    def guest_position(self, name: str) -> int:
        return self._guest_index[name]

    def has_host(self, name: str) -> bool:
        return name in self._host_index

    def has_guest(self, name: str) -> bool:
        return name in self._guest_index

    @property
    def resources(self) -> tuple[str, ...]:
        """Every resource named by a host or guest, sorted."""
        names: set[str] = set()
        for host in self.hosts:
            names.update(host.capacity)
        for guest in self.guests:
            names.update(guest.demand)
        return tuple(sorted(names))

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


def _duplicates(names: Iterable[str]) -> Iterator[tuple[int, str]]:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            yield index, name
        seen.add(name)


def _reference_errors(problem: Problem) -> Iterator[InputError]:
    """Every error in the references between objects, each with its JSON path."""
    for index, host in enumerate(problem.hosts):
        if not isinstance(host, Host):
            yield InputError(f"hosts[{index}]", f"must be a Host, got {type(host).__name__}")
            return
    for index, guest in enumerate(problem.guests):
        if not isinstance(guest, Guest):
            yield InputError(f"guests[{index}]", f"must be a Guest, got {type(guest).__name__}")
            return

    for index, name in _duplicates(h.name for h in problem.hosts):
        yield InputError(f"hosts[{index}].name", f"duplicate host name '{name}'")
    for index, name in _duplicates(g.name for g in problem.guests):
        yield InputError(f"guests[{index}].name", f"duplicate guest name '{name}'")

    host_names = {h.name for h in problem.hosts}
    guest_names = {g.name for g in problem.guests}
    host_resources = {r for h in problem.hosts for r in h.capacity}

    for index, host in enumerate(problem.hosts):
        where = f"hosts[{index}]"
        for resource in sorted(set(host.overcommit) - set(host.capacity)):
            yield InputError(
                f"{where}.overcommit.{resource}",
                f"resource '{resource}' has no capacity on this host",
            )
        for resource in sorted(set(host.reserved) - set(host.capacity)):
            yield InputError(
                f"{where}.reserved.{resource}",
                f"resource '{resource}' has no capacity on this host",
            )

    for index, guest in enumerate(problem.guests):
        where = f"guests[{index}]"
        for resource in sorted(guest.demand):
            if guest.demand[resource] > 0 and resource not in host_resources:
                yield InputError(f"{where}.demand.{resource}", f"no host has resource '{resource}'")
        if guest.current_host is not None and guest.current_host not in host_names:
            yield InputError(f"{where}.current_host", f"unknown host '{guest.current_host}'")
        if guest.state is not GuestState.STOPPED and guest.current_host is None:
            yield InputError(
                f"{where}.current_host", f"a {guest.state.value} guest needs its current host"
            )
        if guest.hosts is not None:
            for name in sorted(guest.hosts - host_names):
                yield InputError(f"{where}.hosts", f"unknown host '{name}'")
        for name in sorted(guest.avoid_hosts - host_names):
            yield InputError(f"{where}.avoid_hosts", f"unknown host '{name}'")
        for pool in sorted(guest.boot.load):
            if pool not in problem.boot_pools:
                yield InputError(f"{where}.boot.load.{pool}", f"unknown boot pool '{pool}'")
        for position, dependency in enumerate(guest.boot.after):
            if dependency not in guest_names:
                yield InputError(f"{where}.boot.after[{position}]", f"unknown guest '{dependency}'")
            elif dependency == guest.name:
                yield InputError(
                    f"{where}.boot.after[{position}]", "a guest cannot start after itself"
                )
        for position, dependency in _duplicates(guest.boot.after):
            yield InputError(f"{where}.boot.after[{position}]", f"'{dependency}' is listed twice")

    # Imported here: graph.py imports this module for the types.
    from placement.graph import dependency_cycles

    for cycle in dependency_cycles(problem.guests):
        first = next(i for i, g in enumerate(problem.guests) if g.name == cycle[0])
        loop = " -> ".join([*cycle, cycle[0]])
        yield InputError(f"guests[{first}].boot.after", f"dependency cycle: {loop}")
