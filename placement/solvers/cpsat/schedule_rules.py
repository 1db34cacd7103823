"""Boot-schedule rules of the CP-SAT model, one function per rule family.

Each booting guest has one fixed-size interval from start to ready, present when its
unit is placed; guests of one start group share one start variable (the slot), so the
start-group rule holds by construction.
"""

from __future__ import annotations

from collections import defaultdict

from ortools.sat.python import cp_model

from placement.solvers.cpsat.variables import Variables
from placement.solvers.cpsat.view import ProblemView


def add_boot_pools(view: ProblemView, variables: Variables) -> None:
    """At every instant, the boot load on each pool stays within its limit."""
    for pool, limit in view.problem.boot_pools.items():
        intervals = []
        demands = []
        for b, boot in enumerate(view.boots):
            load = boot.guest.boot.load.get(pool, 0)
            if load > 0 and boot.duration_s > 0:
                intervals.append(variables.interval[b])
                demands.append(load)
        if sum(demands) > limit:
            variables.model.add_cumulative(intervals, demands, limit)


def add_batch_limit(view: ProblemView, variables: Variables) -> None:
    """At most `schedule.max_starts` guests boot at once, cluster-wide."""
    limit = view.problem.schedule.max_starts
    if limit is None:
        return
    intervals = [variables.interval[b] for b, boot in enumerate(view.boots) if boot.duration_s]
    if len(intervals) > limit:
        variables.model.add_cumulative(intervals, [1] * len(intervals), limit)


def add_host_boot_limits(view: ProblemView, variables: Variables) -> None:
    """Per host, the boot CPU and the number of guests booting there stay within its
    limits. A boot counts on a host only if its unit is placed there, so each (boot, host)
    pair gets its own optional interval sharing the slot's start."""
    hosts = view.problem.hosts
    limited = {
        h
        for h, host in enumerate(hosts)
        if host.boot.cpu is not None or host.boot.max_starts is not None
    }
    if not limited:
        return
    per_host: dict[int, list[tuple[cp_model.IntervalVar, int]]] = defaultdict(list)
    for boot in view.boots:
        if boot.duration_s == 0:
            continue
        unit = view.units[boot.unit]
        for h in unit.candidates:
            if h not in limited:
                continue
            interval = variables.model.new_optional_fixed_size_interval_var(
                variables.start[boot.slot], boot.duration_s, variables.x[unit.index, h], ""
            )
            per_host[h].append((interval, boot.guest.boot.cpu))
    for h, items in per_host.items():
        host = hosts[h]
        intervals = [interval for interval, _ in items]
        if host.boot.cpu is not None:
            cpus = [cpu for _, cpu in items]
            if sum(cpus) > host.boot.cpu:
                variables.model.add_cumulative(intervals, cpus, host.boot.cpu)
        if host.boot.max_starts is not None and len(items) > host.boot.max_starts:
            variables.model.add_cumulative(intervals, [1] * len(items), host.boot.max_starts)


def add_after(view: ProblemView, variables: Variables) -> None:
    """A booting guest starts once each guest it starts after is ready (a guest running
    now is ready at 0, so only booting dependencies constrain the start)."""
    for boot in view.boots:
        for dependency in boot.guest.boot.after:
            d = view.boot_of.get(dependency)
            if d is None:
                continue
            variables.model.add(
                variables.start[boot.slot]
                >= variables.start[view.boots[d].slot] + view.boots[d].duration_s
            ).only_enforce_if(variables.placed[boot.unit])


def add_stagger(view: ProblemView, variables: Variables) -> None:
    """Successive start instants of different slots are at least `stagger_s` apart: each
    used slot holds a gap-long interval from its start, and these never overlap."""
    gap = view.problem.schedule.stagger_s
    if gap <= 0 or len(view.slots) < 2:
        return
    gaps = [
        variables.model.new_optional_fixed_size_interval_var(
            variables.start[slot.index], gap, variables.slot_used[slot.index], ""
        )
        for slot in view.slots
    ]
    variables.model.add_no_overlap(gaps)
