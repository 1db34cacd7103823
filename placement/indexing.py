"""Vectorised host filters: a guest's allowed hosts as a numpy mask over all hosts.

`model.host_allows` answers for one (host, guest) pair; on 10,000 guests x 1,000 hosts
that is ten million Python calls. `HostIndex` answers for all hosts at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from placement.model import Guest, GuestState, Problem

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


class HostIndex:
    """Per-host arrays of one problem: `usable[h, r]`, `fixed[h, r]` (held by frozen
    copies), `online[h]`, with `resources` naming the columns, and `frozen_hosts` (the
    hosts holding a frozen copy). The one host view of the baselines (`HostLoads` builds
    on it), the optimiser (`cpsat.view`), the bounds and the diagnostics; read only."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.names = [host.name for host in problem.hosts]
        self.position = {name: h for h, name in enumerate(self.names)}
        self.resources = problem.resources
        self.column = {r: i for i, r in enumerate(self.resources)}
        shape = (len(self.names), len(self.resources))
        self.usable: IntArray = np.zeros(shape, dtype=np.int64)
        self.fixed: IntArray = np.zeros(shape, dtype=np.int64)
        for h, host in enumerate(problem.hosts):
            for r, resource in enumerate(self.resources):
                self.usable[h, r] = host.usable(resource)
        frozen_hosts: set[int] = set()
        for guest in problem.guests:
            if guest.state is GuestState.FROZEN and problem.holds_current_host(guest):
                h = self.position[guest.current_host or ""]
                frozen_hosts.add(h)
                for resource, amount in guest.demand.items():
                    self.fixed[h, self.column[resource]] += amount
        self.frozen_hosts = frozenset(frozen_hosts)
        self.online: BoolArray = np.array([host.online for host in problem.hosts], dtype=bool)
        self._labels: dict[str, BoolArray] = {}

    @property
    def free(self) -> IntArray:
        """Usable minus what frozen copies hold."""
        return self.usable - self.fixed

    def room(self, h: int, resource: str) -> int:
        """Usable minus what frozen copies hold of `resource` on host `h`."""
        r = self.column[resource]
        return int(self.usable[h, r] - self.fixed[h, r])

    def vector(self, demand: Mapping[str, int]) -> IntArray:
        """A demand mapping as a row over `resources`."""
        row = np.zeros(len(self.resources), dtype=np.int64)
        for resource, amount in demand.items():
            row[self.column[resource]] += amount
        return row

    def label(self, label: str) -> BoolArray:
        """The mask of hosts carrying `label` (computed once per label, then cached)."""
        if label not in self._labels:
            self._labels[label] = np.array(
                [label in host.labels for host in self.problem.hosts], dtype=bool
            )
        return self._labels[label]

    def allowed(self, guest: Guest) -> BoolArray:
        """The mask of hosts `model.host_allows` admits for `guest`."""
        mask = self.online.copy()
        if guest.hosts is not None:
            only = np.zeros(len(self.names), dtype=bool)
            only[[self.position[name] for name in guest.hosts]] = True
            mask &= only
        for name in guest.avoid_hosts:
            mask[self.position[name]] = False
        for label in guest.labels:
            mask &= self.label(label)
        if guest.state is GuestState.FROZEN and guest.current_host is not None:
            mask[self.position[guest.current_host]] = False
        return mask

    def fits_alone(self, demand: dict[str, int]) -> BoolArray:
        """Hosts with room for `demand` next to the frozen copies (resources asked > 0)."""
        need = self.vector(demand)
        fits: BoolArray = ((self.free >= need) | (need == 0)).all(axis=1)
        return fits


def units(problem: Problem) -> list[tuple[Guest, ...]]:
    """Together groups and lone guests, in the order of their first member."""
    members: dict[str, list[Guest]] = defaultdict(list)
    order: list[str] = []
    for guest in problem.guests:
        key = f"group:{guest.together}" if guest.together is not None else f"guest:{guest.name}"
        if key not in members:
            order.append(key)
        members[key].append(guest)
    return [tuple(members[key]) for key in order]
