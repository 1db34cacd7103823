"""The survey benchmark's admission baselines: vSphere HA's slot and percentage policies,
re-created, on a cluster whose answers can be worked out on paper."""

from __future__ import annotations

from bench.survey_bench import _admit_if, _best_fit_admit, _percentage_ok, _slots_ok
from placement.model import Guest, Host, Problem
from placement.survey import single_host_failures

GIB = 1024


def _state() -> Problem:
    """Three hosts of 64 GiB and 16 vCPUs; one 16 GiB, 2-vCPU guest runs on h1."""
    hosts = [Host(f"h{i}", {"ram_mib": 64 * GIB, "vcpus": 16}) for i in (1, 2, 3)]
    running = Guest("db", {"ram_mib": 16 * GIB, "vcpus": 2}, current_host="h1", state="running")
    return Problem(hosts=hosts, guests=[running])


def _admitted(policy: object, count: int = 40) -> int:
    state = _state()
    admitted = 0
    for index in range(count):
        guest = Guest(f"n{index}", {"ram_mib": 4 * GIB, "vcpus": 1})
        host = policy(state, guest)  # type: ignore[operator]
        if host is not None:
            running = Guest(guest.name, guest.demand, current_host=host, state="running")
            state = Problem(hosts=state.hosts, guests=[*state.guests, running])
            admitted += 1
    return admitted


def test_slot_policy_counts_every_guest_as_the_largest() -> None:
    """Slot = 16 GiB / 2 vCPUs: 4 slots per host, 12 in all, 8 once the largest host is
    held back; db takes one, so 7 small guests come in (28 GiB of 192)."""
    assert _admitted(lambda s, g: _admit_if(s, g, _slots_ok)) == 7


def test_percentage_policy_reserves_the_largest_hosts_share() -> None:
    """A third of RAM and vCPUs is reserved: 128 GiB usable, db holds 16, so 28 guests of
    4 GiB; vCPUs (32 usable, 2 + 28 used) do not bind."""
    assert _admitted(lambda s, g: _admit_if(s, g, _percentage_ok)) == 28


def test_best_fit_survey_admits_only_what_restarts() -> None:
    """Every single-host failure must restart by best fit: at most 128 GiB in all (two
    hosts' worth), and each host's guests must fit on the other two."""
    scenarios = single_host_failures(_state())
    admitted = _admitted(lambda s, g: _best_fit_admit(s, g, scenarios))
    assert 24 <= admitted <= 28
