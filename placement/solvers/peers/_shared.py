"""What the peer re-creations share: guest order, the cluster as they find it, conflicts.

Both peers start from the state every baseline starts from (`common.split_guests`):
guests that run on an online host stay where they are and only the rest is placed; every
guest that stays, and every frozen copy, uses its host. `StartState` holds that state in
the plain form the peers need; each peer then applies its own rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from placement.model import Guest, GuestState, Problem, host_allows
from placement.solvers.common import split_guests

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[str | int, ...], str]:
    """A sort key that orders the numbers inside names by value: vm100 < vm101 < vm1000.

    `re.split` with a capturing group alternates text and digits (text first), so every
    position holds the same type in every key and keys always compare. The name itself
    breaks the remaining ties (`vm01` and `vm1`), so the order is total.
    """
    parts = _DIGITS.split(name)
    key = tuple(int(part) if index % 2 else part for index, part in enumerate(parts))
    return key, name


class StartState:
    """The cluster before a peer places anything.

    `stay`: guest -> host for guests that keep running where they are (as every
    baseline keeps them, `split_guests`; with `check_capacity=False`, every running
    guest whose node rules allow its online host, however loaded). `to_place`: the
    guests that need a host, in problem order. `users`: online host -> the guests using
    it already (those that stay and frozen copies). `classes` tracks, per anti-affinity
    class, which running guests of that class each host holds (frozen copies do not
    count: a crashed guest kept for debugging is no longer a member of its class).

    `reassign`: nothing stays; every guest is to place, running ones included (as
    Pacemaker's scheduler assigns every resource at each transition).
    """

    def __init__(
        self, problem: Problem, *, check_capacity: bool = True, reassign: bool = False
    ) -> None:
        self.problem = problem
        if reassign:
            self.stay: dict[str, str] = {}
            place: tuple[str, ...] = tuple(guest.name for guest in problem.guests)
        elif check_capacity:
            split = split_guests(problem)
            self.stay = dict(split.stay)
            place = split.place
        else:
            # A peer that never looks at capacity leaves every running guest where its
            # node rules allow it, overloaded or not; its own rules may move it later.
            self.stay = {
                guest.name: guest.current_host
                for guest in problem.guests
                if guest.state is GuestState.RUNNING
                and guest.current_host is not None
                and host_allows(problem.host(guest.current_host), guest)
            }
            # A guest that can neither stay nor live-migrate is stopped, as everywhere.
            stuck = set(split_guests(problem).stop) - set(self.stay)
            place = tuple(
                guest.name
                for guest in problem.guests
                if guest.name not in self.stay and guest.name not in stuck
            )
        self.to_place: list[Guest] = [problem.guest(name) for name in place]
        self.users: dict[str, list[Guest]] = {h.name: [] for h in problem.hosts if h.online}
        for guest in problem.guests:
            host = self.stay.get(guest.name)
            frozen_copy = guest.state is GuestState.FROZEN and problem.holds_current_host(guest)
            if host is None and frozen_copy:
                host = guest.current_host
            if host is not None and host in self.users:
                self.users[host].append(guest)
        self.placed: dict[str, str] = dict(self.stay)
        self._classes: dict[str, dict[str, set[str]]] = {}
        self._members: dict[str, list[Guest]] | None = None
        for name, host in self.stay.items():
            self._count_classes(problem.guest(name), host)

    def _count_classes(self, guest: Guest, host: str) -> None:
        for name in guest.anti_affinity:
            self._classes.setdefault(name, {}).setdefault(host, set()).add(guest.name)

    def place(self, guest: Guest, host: str) -> None:
        """Record that `guest` now runs on `host`."""
        self.placed[guest.name] = host
        self._count_classes(guest, host)

    def conflicting_hosts(self, guests: Iterable[Guest]) -> set[str]:
        """Hosts running a guest, other than `guests`, that shares an anti-affinity class
        with any of `guests`."""
        guests = list(guests)
        own = {guest.name for guest in guests}
        hosts: set[str] = set()
        for guest in guests:
            for name in guest.anti_affinity:
                for host, members in self._classes.get(name, {}).items():
                    if members - own:
                        hosts.add(host)
        return hosts

    def separated_hosts(self, guests: Iterable[Guest]) -> set[str]:
        """`conflicting_hosts`, plus the hosts of the together partners of every guest
        that shares a class with one of `guests`.

        Proxmox compiles its rules so: when A and B must run together and A apart from C,
        it adds the implicit rule "B apart from C", which binds C as much as B. Members
        of the own together group (`guests`) never count.
        """
        guests = list(guests)
        own = {guest.name for guest in guests}
        hosts = self.conflicting_hosts(guests)
        groups = self.problem.together_groups()
        for guest in guests:
            for name in guest.anti_affinity:
                for mate in self._class_members().get(name, ()):
                    if mate.name in own or mate.together is None:
                        continue
                    for partner in groups[mate.together]:
                        host = self.placed.get(partner.name)
                        if partner.name not in own and host is not None:
                            hosts.add(host)
        return hosts

    def _class_members(self) -> dict[str, list[Guest]]:
        if self._members is None:
            self._members = {}
            for guest in self.problem.guests:
                for name in guest.anti_affinity:
                    self._members.setdefault(name, []).append(guest)
        return self._members

    def release(self, guest: Guest) -> None:
        """Make a guest that was to stay need a host again (a peer's own rule moves it).

        It keeps using its current host among `users`: while it migrates away it still
        loads that host, as the peers count a migrating guest on both nodes.
        """
        host = self.stay.pop(guest.name)
        del self.placed[guest.name]
        for name in guest.anti_affinity:
            self._classes.get(name, {}).get(host, set()).discard(guest.name)
        self.to_place.append(guest)

    def partner_hosts(self, guest: Guest) -> dict[str, int]:
        """Host -> how many other members of the guest's together group run there now."""
        if guest.together is None:
            return {}
        counts: dict[str, int] = {}
        for partner in self.problem.together_groups()[guest.together]:
            host = self.placed.get(partner.name)
            if partner.name != guest.name and host is not None:
                counts[host] = counts.get(host, 0) + 1
        return counts


def demand_of(guests: Iterable[Guest]) -> dict[str, int]:
    """The summed demand of `guests`, per resource."""
    total: dict[str, int] = {}
    for guest in guests:
        for resource, amount in guest.demand.items():
            total[resource] = total.get(resource, 0) + amount
    return total
