"""The one host view: `HostIndex` agrees with the model's per-host answers, and the
baselines' `HostLoads` and the optimiser's view read their matrices from it."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings

from placement.indexing import HostIndex
from placement.model import GuestState, Problem, host_allows
from placement.solvers.common import HostLoads, Unit
from placement.solvers.cpsat.view import build_view
from tests.strategies import problems


def _frozen_holds(problem: Problem) -> dict[tuple[int, str], int]:
    """(host, resource) -> held by frozen copies, summed guest by guest."""
    held: dict[tuple[int, str], int] = {}
    for guest in problem.guests:
        if guest.state is GuestState.FROZEN and problem.holds_current_host(guest):
            h = problem.host_position(guest.current_host or "")
            for resource, amount in guest.demand.items():
                held[h, resource] = held.get((h, resource), 0) + amount
    return held


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_hosts=5, max_guests=10))
def test_the_index_agrees_with_the_model_host_by_host(problem: Problem) -> None:
    index = HostIndex(problem)
    held = _frozen_holds(problem)
    for h, host in enumerate(problem.hosts):
        assert bool(index.online[h]) == host.online
        for r, resource in enumerate(problem.resources):
            assert index.usable[h, r] == host.usable(resource)
            assert index.fixed[h, r] == held.get((h, resource), 0)
            assert index.room(h, resource) == host.usable(resource) - held.get((h, resource), 0)
    assert index.frozen_hosts == {
        problem.host_position(g.current_host or "")
        for g in problem.guests
        if g.state is GuestState.FROZEN and problem.holds_current_host(g)
    }
    for guest in problem.guests:
        expected = [host_allows(host, guest) for host in problem.hosts]
        assert index.allowed(guest).tolist() == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_hosts=4, max_guests=8))
def test_host_loads_and_the_cpsat_view_build_on_the_index(problem: Problem) -> None:
    loads = HostLoads(problem)
    index = loads.index
    # The index's matrices, shared; `used` is the loads' own and starts at the frozen holds.
    assert loads.usable is index.usable
    assert loads.online is index.online
    assert np.array_equal(loads.used, index.fixed)
    assert loads.used is not index.fixed
    for guest in problem.guests:
        assert loads.allowed_mask(guest).tolist() == index.allowed(guest).tolist()
    # Adding and removing units changes the loads only, never the shared index.
    fixed = index.fixed.copy()
    other = HostLoads(problem, index)
    online = [host.name for host in problem.hosts if host.online]
    for guest in problem.guests[:3]:
        if online:
            loads.add(Unit.of([guest]), online[0])
    assert np.array_equal(index.fixed, fixed)
    assert np.array_equal(other.used, fixed)
    for guest in problem.guests[:3]:
        if online:
            loads.remove(Unit.of([guest]), online[0])
    assert np.array_equal(loads.used, fixed)
    view = build_view(problem)
    assert view.frozen_hosts == view.index.frozen_hosts == index.frozen_hosts
    assert view.fixed == {k: v for k, v in _frozen_holds(problem).items() if v}
    assert list(view.online_hosts) == [h for h, host in enumerate(problem.hosts) if host.online]
