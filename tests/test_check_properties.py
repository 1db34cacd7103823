"""Properties of the checker on problems with a planted valid plan (see tests/planted.py).

A planted plan respects every rule, so the checker must accept it; breaking exactly one
rule by a targeted mutation must make the checker report exactly that rule. Planted
instances also round-trip through the JSON codec unchanged.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import jsonschema
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from placement.check import RULES, CheckReport, check
from placement.codec import dump_plan, dump_problem, load_plan, load_problem
from placement.model import GuestState, HostBoot, HostState, Problem, Schedule
from placement.plan import Action, Assignment, Plan, Unplaced
from placement.rules import rules_in_family
from placement.schema import PLAN_SCHEMA, PROBLEM_SCHEMA
from tests.planted import Loads, loads, plans_for, planted_instances

Case = tuple[Problem, Plan]


def measured(problem: Problem, plan: Plan) -> Loads:
    return loads(
        {h.name: h.state for h in problem.hosts}, problem.guests, plan, problem.migration.load
    )


def messages(report: CheckReport) -> list[str]:
    return [f"{v.rule}: {v.message}" for v in report.violations]


# --- a planted plan is valid, and survives the codec --------------------------------------


@settings(max_examples=100, deadline=None)
@given(planted_instances())
def test_planted_plan_is_valid(case: Case) -> None:
    problem, plan = case
    report = check(problem, plan)
    assert report.ok, messages(report)
    # The checker's pool peaks agree with an independent count.
    peaks = measured(problem, plan)
    for pool, found in report.metrics["pools"].items():
        assert (found["peak"], found["peak_at_s"]) == attrs.astuple(peaks.pool[pool]), pool
    found = report.metrics["migrations"]
    assert found["count"] == peaks.num_migrations
    assert (found["peak_running"], found["peak_at_s"]) == attrs.astuple(peaks.migrating_total)
    assert found["peak_per_host"] == max((p.amount for p in peaks.migrating.values()), default=0)


@settings(max_examples=50, deadline=None)
@given(planted_instances())
def test_planted_instances_round_trip_through_json(case: Case) -> None:
    problem, plan = case
    document = json.loads(json.dumps(dump_problem(problem)))
    jsonschema.Draft202012Validator(PROBLEM_SCHEMA).validate(document)
    assert load_problem(document) == problem
    plan_document = json.loads(json.dumps(dump_plan(plan)))
    jsonschema.Draft202012Validator(PLAN_SCHEMA).validate(plan_document)
    assert load_plan(plan_document) == plan


@settings(max_examples=50, deadline=None)
@given(planted_instances(max_guests=6).flatmap(lambda case: plans_for(case[0])))
def test_any_plan_round_trips_through_json(plan: Plan) -> None:
    assert load_plan(json.loads(json.dumps(dump_plan(plan)))) == plan


# --- mutations: each breaks exactly one rule ----------------------------------------------
#
# A mutation gets a planted case and `draw` (for its own choices) and returns the broken
# case; it calls `assume(False)` when the case offers nothing to break.


@attrs.frozen
class Broken:
    """A planted case with one rule broken; `at_s`: the instant (s) the one violation must
    name, when the mutation knows it."""

    problem: Problem
    plan: Plan
    at_s: int | None = None


def replace_guest(problem: Problem, name: str, **changes: Any) -> Problem:
    guests = [attrs.evolve(g, **changes) if g.name == name else g for g in problem.guests]
    return attrs.evolve(problem, guests=guests)


def replace_host(problem: Problem, name: str, **changes: Any) -> Problem:
    hosts = [attrs.evolve(h, **changes) if h.name == name else h for h in problem.hosts]
    return attrs.evolve(problem, hosts=hosts)


def replace_assignment(plan: Plan, assignment: Assignment) -> Plan:
    assignments = [assignment if a.guest == assignment.guest else a for a in plan.assignments]
    return attrs.evolve(plan, assignments=assignments)


def placed(plan: Plan) -> list[Assignment]:
    return [a for a in plan.assignments if a.host is not None]


def starters(plan: Plan) -> list[Assignment]:
    return [a for a in plan.assignments if a.action is Action.START]


def pick(draw: st.DrawFn, items: list[Any]) -> Any:
    assume(items)
    return draw(st.sampled_from(items))


def break_assignment(draw: st.DrawFn, problem: Problem, plan: Plan) -> Broken:
    chosen = pick(draw, list(plan.assignments))
    if chosen.action is Action.START and draw(st.booleans()):
        assert chosen.ready_s is not None
        return Broken(
            problem, replace_assignment(plan, attrs.evolve(chosen, ready_s=chosen.ready_s + 1))
        )
    wrong = draw(st.sampled_from([a for a in Action if a is not chosen.action]))
    return Broken(problem, replace_assignment(plan, attrs.evolve(chosen, action=wrong)))


def break_unplaced(draw: st.DrawFn, problem: Problem, plan: Plan) -> Broken:
    options = []
    for a in placed(plan):
        options.append([*plan.unplaced, Unplaced(a.guest, "listed by mistake")])
    for u in plan.unplaced:
        others = [v for v in plan.unplaced if v is not u]
        options.append(others)  # no reason given
        options.append([*others, Unplaced(u.guest, " ")])  # an empty reason
        options.append([*plan.unplaced, u])  # listed twice
    return Broken(problem, attrs.evolve(plan, unplaced=pick(draw, options)))


def break_host_state(draw: st.DrawFn, problem: Problem, plan: Plan) -> Broken:
    # Maintenance keeps the guests running there running: only the placement breaks.
    host = pick(draw, [a.host for a in placed(plan)])
    return Broken(replace_host(problem, host, state=HostState.MAINTENANCE), plan)


def break_allowed_hosts(draw: st.DrawFn, problem: Problem, plan: Plan) -> Broken:
    chosen = pick(draw, placed(plan))
    others = {h.name for h in problem.hosts} - {chosen.host}
    return Broken(replace_guest(problem, chosen.guest, hosts=others), plan)


def break_avoided_hosts(draw: st.DrawFn, problem: Problem, plan: Plan) -> Broken:
    chosen = pick(draw, placed(plan))
    avoid = problem.guest(chosen.guest).avoid_hosts | {chosen.host}
    return Broken(replace_guest(problem, chosen.guest, avoid_hosts=avoid), plan)


def break_labels(draw: st.DrawFn, problem: Problem, plan: Plan) -> Broken:
    chosen = pick(draw, placed(plan))
    labels = problem.guest(chosen.guest).labels | {"no-host-has-this"}
    return Broken(replace_guest(problem, chosen.guest, labels=labels), plan)


def break_frozen(draw: st.DrawFn, problem: Problem, plan: Plan) -> Broken:
    """A starter becomes the replacement of a guest frozen on its chosen host; the host
    grows by the frozen copy's demand so that capacity still holds."""
    chosen = pick(draw, starters(plan))
    guest, host = problem.guest(chosen.guest), problem.host(chosen.host)
    resources = set(host.capacity) | {r for r, amount in guest.demand.items() if amount}
    capacity = {r: host.usable(r) + guest.demand.get(r, 0) for r in resources}
    problem = replace_host(problem, host.name, capacity=capacity, overcommit={}, reserved={})
    problem = replace_guest(problem, guest.name, state=GuestState.FROZEN, current_host=host.name)
    return Broken(problem, plan)


def break_anti_affinity(draw: st.DrawFn, problem: Problem, plan: Plan) -> Broken:
    pairs = [
        (a.guest, b.guest) for a, b in itertools.combinations(placed(plan), 2) if a.host == b.host
    ]
    first, second = pick(draw, pairs)
    for name in (first, second):
        classes = problem.guest(name).anti_affinity | {"mutant"}
        problem = replace_guest(problem, name, anti_affinity=classes)
    return Broken(problem, plan)


def break_together(draw: st.DrawFn, problem: Problem, plan: Plan) -> Broken:
    # Two guests on different hosts, or a placed and an unplaced one.
    pairs = [
        (a.guest, b.guest)
        for a, b in itertools.combinations(plan.assignments, 2)
        if a.host != b.host
    ]
    first, second = pick(draw, pairs)
    problem = replace_guest(problem, first, together="mutant")
    return Broken(replace_guest(problem, second, together="mutant"), plan)


def break_follows(draw: st.DrawFn, problem: Problem, plan: Plan) -> Broken:
    # A placed guest made to follow one that is unplaced or on another host.
    pairs = [
        (a.guest, b.guest)
        for a, b in itertools.permutations(plan.assignments, 2)
        if a.host is not None and a.host != b.host
    ]
    follower, leader = pick(draw, pairs)
    return Broken(replace_guest(problem, follower, follows=leader), plan)


def break_capacity(draw: st.DrawFn, problem: Problem, plan: Plan) -> Broken:
    """One host and resource gets one unit less than its peak use. Mostly a peak whose
    timing is subtle, if there is one: higher than the final use (reached while a guest
    migrates away), or first reached when a guest starts migrating in."""
    peaks = measured(problem, plan)
    used = sorted(k for k, v in peaks.resource.items() if v.amount > 0)
    arrivals = {
        (a.host, a.start_s)
        for a in plan.assignments
        if a.action is Action.MIGRATE and a.ready_s != a.start_s
    }
    subtle = [
        k
        for k in used
        if peaks.resource[k].amount > peaks.final[k] or (k[0], peaks.resource[k].at_s) in arrivals
    ]
    host_name, resource = pick(draw, subtle if subtle and draw(st.integers(0, 3)) else used)
    host = problem.host(host_name)
    capacity = {**host.capacity, resource: peaks.resource[(host_name, resource)].amount - 1}
    overcommit = {r: v for r, v in host.overcommit.items() if r != resource}
    reserved = {r: v for r, v in host.reserved.items() if r != resource}
    problem = replace_host(
        problem, host_name, capacity=capacity, overcommit=overcommit, reserved=reserved
    )
    return Broken(problem, plan, peaks.resource[(host_name, resource)].at_s)


def break_pool_capacity(draw: st.DrawFn, problem: Problem, plan: Plan) -> Broken:
    peaks = measured(problem, plan)
    pool = pick(draw, sorted(p for p, v in peaks.pool.items() if v.amount > 0))
    limits = {**problem.boot_pools, pool: peaks.pool[pool].amount - 1}
    return Broken(attrs.evolve(problem, boot_pools=limits), plan, peaks.pool[pool].at_s)


def break_host_boot_cpu(draw: st.DrawFn, problem: Problem, plan: Plan) -> Broken:
    peaks = measured(problem, plan)
    host_name = pick(draw, sorted(h for h, v in peaks.boot_cpu.items() if v.amount > 0))
    boot = attrs.evolve(problem.host(host_name).boot, cpu=peaks.boot_cpu[host_name].amount - 1)
    return Broken(replace_host(problem, host_name, boot=boot), plan, peaks.boot_cpu[host_name].at_s)


def break_host_max_starts(draw: st.DrawFn, problem: Problem, plan: Plan) -> Broken:
    peaks = measured(problem, plan)
    # A limit is at least 1, so only a host booting two guests at once can exceed one.
    host_name = pick(draw, sorted(h for h, v in peaks.boot_count.items() if v.amount > 1))
    boot: HostBoot = attrs.evolve(
        problem.host(host_name).boot, max_starts=peaks.boot_count[host_name].amount - 1
    )
    at_s = peaks.boot_count[host_name].at_s
    return Broken(replace_host(problem, host_name, boot=boot), plan, at_s)


def break_max_starts(draw: st.DrawFn, problem: Problem, plan: Plan) -> Broken:
    peaks = measured(problem, plan)
    assume(peaks.cluster_count.amount > 1)
    schedule = attrs.evolve(problem.schedule, max_starts=peaks.cluster_count.amount - 1)
    return Broken(attrs.evolve(problem, schedule=schedule), plan, peaks.cluster_count.at_s)


def depends_on(problem: Problem, name: str, target: str) -> bool:
    """Whether guest `name` waits, directly or not, for guest `target`."""
    seen, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current == target:
            return True
        if current not in seen:
            seen.add(current)
            todo.extend(problem.guest(current).boot.after)
    return False


def break_after(draw: st.DrawFn, problem: Problem, plan: Plan) -> Broken:
    """A starter waits for a guest that is ready later or not placed at all."""
    pairs = []
    for starter in starters(plan):
        assert starter.start_s is not None
        for other in plan.assignments:
            late = other.action is Action.START and (other.ready_s or 0) > starter.start_s
            if (late or other.host is None) and not depends_on(problem, other.guest, starter.guest):
                pairs.append((starter.guest, other.guest))
    name, dependency = pick(draw, pairs)
    after = (*problem.guest(name).boot.after, dependency)
    boot = attrs.evolve(problem.guest(name).boot, after=after)
    return Broken(replace_guest(problem, name, boot=boot), plan)


def break_start_group(draw: st.DrawFn, problem: Problem, plan: Plan) -> Broken:
    """A starter joins a group that starts at another instant. It must be the only
    starter at its instant (or the stagger be 0), or leaving its own unit there would
    break the stagger too."""
    boots = starters(plan)
    at: dict[int | None, int] = {}
    for a in boots:
        at[a.start_s] = at.get(a.start_s, 0) + 1
    free = [a for a in boots if at[a.start_s] == 1 or problem.schedule.stagger_s == 0]
    options = []
    for mover in free:
        for other in boots:
            if other.start_s == mover.start_s:
                continue
            group = problem.guest(other.guest).boot.group
            if group is not None:
                options.append((mover.guest, [], group))
            elif other in free:
                options.append((mover.guest, [other.guest], "mutant"))
    mover, also, group = pick(draw, options)
    for name in [mover, *also]:
        boot = attrs.evolve(problem.guest(name).boot, group=group)
        problem = replace_guest(problem, name, boot=boot)
    return Broken(problem, plan)


def break_stagger(draw: st.DrawFn, problem: Problem, plan: Plan) -> Broken:
    boots = starters(plan)
    units = {(problem.guest(a.guest).boot.group or a.guest, a.start_s) for a in boots}
    assume(len(units) > 1)
    instants = sorted({a.start_s for a in boots if a.start_s is not None})
    gap_s = min((b - a for a, b in itertools.pairwise(instants)), default=0)
    schedule: Schedule = attrs.evolve(problem.schedule, stagger_s=gap_s + 1)
    return Broken(attrs.evolve(problem, schedule=schedule), plan)


def migrations(plan: Plan) -> list[Assignment]:
    return [a for a in plan.assignments if a.action is Action.MIGRATE]


def break_movable(draw: st.DrawFn, problem: Problem, plan: Plan) -> Broken:
    chosen = pick(draw, migrations(plan))
    return Broken(replace_guest(problem, chosen.guest, movable=False), plan)


def break_migration_time(draw: st.DrawFn, problem: Problem, plan: Plan) -> Broken:
    """A migration claims to end a second early or late; the checker judges it at its real
    length, so only its time is wrong."""
    chosen = pick(draw, migrations(plan))
    assert chosen.ready_s is not None
    assert chosen.start_s is not None
    shifts = [1] if chosen.ready_s == chosen.start_s else [1, -1]
    ready_s = chosen.ready_s + draw(st.sampled_from(shifts))
    return Broken(problem, replace_assignment(plan, attrs.evolve(chosen, ready_s=ready_s)))


def break_migration_concurrency(draw: st.DrawFn, problem: Problem, plan: Plan) -> Broken:
    """One below the peak of migrations at once: per host (every host at that peak breaks
    it) or cluster-wide (one breach, where the peak is first reached)."""
    peaks = measured(problem, plan)
    per_host = max((p.amount for p in peaks.migrating.values()), default=0)
    options = []
    if per_host > 1:
        options.append("per_host")
    if peaks.migrating_total.amount > 1:
        options.append("total")
    which = pick(draw, options)
    if which == "per_host":
        settings = attrs.evolve(problem.migration, max_per_host=per_host - 1)
        return Broken(attrs.evolve(problem, migration=settings), plan)
    settings = attrs.evolve(problem.migration, max_total=peaks.migrating_total.amount - 1)
    return Broken(attrs.evolve(problem, migration=settings), plan, peaks.migrating_total.at_s)


def break_migration_budget(draw: st.DrawFn, problem: Problem, plan: Plan) -> Broken:
    count = len(migrations(plan))
    assume(count > 0)
    settings = attrs.evolve(problem.migration, max_moves=count - draw(st.integers(1, count)))
    return Broken(attrs.evolve(problem, migration=settings), plan)


def break_horizon(draw: st.DrawFn, problem: Problem, plan: Plan) -> Broken:
    last_s = max((a.ready_s for a in plan.assignments if a.ready_s is not None), default=0)
    assume(last_s > 0)
    schedule = attrs.evolve(problem.schedule, horizon_s=last_s - 1)
    return Broken(attrs.evolve(problem, schedule=schedule), plan)


MUTATIONS: Mapping[str, Callable[[st.DrawFn, Problem, Plan], Broken]] = {
    "assignment": break_assignment,
    "unplaced": break_unplaced,
    "host_state": break_host_state,
    "allowed_hosts": break_allowed_hosts,
    "avoided_hosts": break_avoided_hosts,
    "labels": break_labels,
    "frozen": break_frozen,
    "anti_affinity": break_anti_affinity,
    "together": break_together,
    "follows": break_follows,
    "capacity": break_capacity,
    "pool_capacity": break_pool_capacity,
    "host_boot_cpu": break_host_boot_cpu,
    "host_max_starts": break_host_max_starts,
    "max_starts": break_max_starts,
    "after": break_after,
    "start_group": break_start_group,
    "stagger": break_stagger,
    "movable": break_movable,
    "migration_time": break_migration_time,
    "migration_concurrency": break_migration_concurrency,
    "migration_budget": break_migration_budget,
    "horizon": break_horizon,
}


def test_every_rule_has_a_mutation() -> None:
    assert set(MUTATIONS) == set(RULES)


# Migration rules need migrations to break: their cases have mostly running guests.
_CASES = {
    rule: planted_instances(min_guests=5, running_weight=16)
    if rule in rules_in_family("migration")
    else planted_instances(min_guests=3)
    for rule in RULES
}


@pytest.mark.parametrize("rule", RULES)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_breaking_one_rule_reports_exactly_that_rule(rule: str, data: st.DataObject) -> None:
    problem, plan = data.draw(_CASES[rule], label="case")
    broken = MUTATIONS[rule](data.draw, problem, plan)
    report = check(broken.problem, broken.plan)
    assert {v.rule for v in report.violations} == {rule}, messages(report)
    if broken.at_s is not None:
        # A limit set one below its peak is broken once, where the peak is first reached.
        assert [v.time_s for v in report.violations] == [broken.at_s], messages(report)
