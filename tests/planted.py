"""Hypothesis strategies for problems with a planted valid plan.

`planted_instances()` draws `(problem, plan)` where the plan respects every rule of
`placement.check` *by construction*: the plan is drawn first (who runs where, what each
guest does and when), then the problem is built around it, every limit at or above what
the plan needs, with random slack that is often zero so that limits are met exactly:

- 1-5 hosts `h0`, `h1`, ... mostly online, sometimes in maintenance or failed;
- 0-12 guests `g0`, `g1`, ...: stopped, running on a live host (stay, migrate or stop),
  running on a failed host, or frozen (its copy holds its current host while that host
  has not failed); each placed on an online host or left unplaced with a reason;
- starts at a few shared instants (start groups are starters sharing an instant), with
  durations from 0 to 120 s, and migrations at 0, at a start instant or later, lasting
  their migration time (drawn settings: bandwidth, setup, the copied resource, a pool
  load); running guests that do not migrate are sometimes not `movable`;
- capacities (with overcommit and reservations) at or above the peak use over time per
  host and resource, counting frozen copies, migration sources until `ready_s` and starts
  from `start_s`; boot pools (boot and migration load), per-host boot CPU and start
  limits, the cluster start limit and the migration limits (per host, cluster-wide, the
  move budget) at or above their peaks; `after` only on guests placed and ready by the start
  (only unplaced guests depend on unplaced guests); a stagger no wider than the smallest
  gap between start instants; a horizon at or after the last ready time;
- anti-affinity classes shared only by guests placed on distinct hosts (or unplaced),
  together groups only among guests placed on one host (or all unplaced), allowed hosts
  that include the chosen host, avoided hosts that exclude it, labels the host carries.

`loads()` measures those peaks independently of the checker, so tests can break one limit
by exactly one unit. `valid_problems()` is the problem part alone; `plans_for(problem)`
draws arbitrary, schema-valid but usually invalid plans for a problem.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

import attrs
from hypothesis import strategies as st

from placement.model import (
    DEFAULT_OBJECTIVES,
    BootProfile,
    Guest,
    GuestState,
    Host,
    HostBoot,
    HostState,
    MigrationSettings,
    Objective,
    Problem,
    Schedule,
)
from placement.plan import Action, Assignment, Plan, StageResult, Status, Unplaced
from placement.statistics import (
    Incumbent,
    ModelSize,
    NeighbourhoodRound,
    SeedRun,
    SolveStatistics,
    StageLog,
    TypeCounts,
)

RESOURCES = ("ram_mib", "vcpus", "gpus")
POOLS = ("san", "net")
LABELS = ("ssd", "gpu", "nvme")
CLASSES = ("db", "mc", "web")
DURATIONS_S = (0, 5, 10, 30, 60, 120)
OVERCOMMITS = (None, None, 1.0, 0.75, 1.5, 2.0, 4.0)
REASONS = ("no room", "held back by an operator", "capacity")
OBJECTIVES = (
    DEFAULT_OBJECTIVES,
    (Objective.PLACED, Objective.MAKESPAN, Objective.CONSOLIDATE),
    (Objective.RECOVERY,),
)
_T = TypeVar("_T")

# How much of each resource one unit of slack is.
_UNIT = {"ram_mib": 256, "vcpus": 1, "gpus": 1}


# --- measuring a plan, independently of the checker --------------------------------------


@attrs.frozen
class Peak:
    """The highest summed amount over time, and the first instant (s) it is reached
    (None when nothing is ever used)."""

    amount: int
    at_s: int | None


def peak(intervals: Iterable[tuple[int, float, int]]) -> Peak:
    """The peak of amounts held over half-open intervals `[start, end)`, by brute force."""
    spans = [(s, e, a) for s, e, a in intervals if a and e > s]
    best = Peak(0, None)
    for instant in sorted({s for s, _, _ in spans}):
        level = sum(a for s, e, a in spans if s <= instant < e)
        if level > best.amount:
            best = Peak(level, instant)
    return best


@attrs.frozen
class Loads:
    """The peaks a plan reaches. `resource[(host, resource)]`: use of a host from its first
    arrival or its last departure on (`final`: in the end); `pool[pool]`: load of boots
    and migrations; `boot_cpu[host]` and `boot_count[host]`: boot CPU and guests booting
    on a host; `cluster_count`: guests
    booting cluster-wide; `migrating[host]`: migrations involving a host at once;
    `migrating_total`: migrations at once cluster-wide; `num_migrations`: how many."""

    resource: Mapping[tuple[str, str], Peak]
    final: Mapping[tuple[str, str], int]
    pool: Mapping[str, Peak]
    boot_cpu: Mapping[str, Peak]
    boot_count: Mapping[str, Peak]
    cluster_count: Peak
    migrating: Mapping[str, Peak]
    migrating_total: Peak
    num_migrations: int


def loads(
    host_states: Mapping[str, HostState],
    guests: Sequence[Guest],
    plan: Plan,
    migration_load: Mapping[str, int] | None = None,
) -> Loads:
    """The peaks of `plan` (assumed to give each guest one well-formed assignment) for
    guests whose current hosts are in the given states; each migration adds
    `migration_load` to the pools while it runs."""
    by_guest = plan.by_guest()
    held: dict[str, list[tuple[int, float, Guest]]] = defaultdict(list)
    arrivals: dict[str, list[int]] = defaultdict(list)
    boots: list[tuple[int, int, str, Guest]] = []
    moves: list[tuple[int, int, str, str]] = []
    for guest in guests:
        live = guest.current_host is not None and host_states[guest.current_host] is not (
            HostState.FAILED
        )
        if guest.state is GuestState.FROZEN and live:
            assert guest.current_host is not None
            held[guest.current_host].append((0, math.inf, guest))
        assignment = by_guest[guest.name]
        if assignment.host is None:
            continue
        if assignment.action is Action.STAY:
            held[assignment.host].append((0, math.inf, guest))
        elif assignment.action is Action.START:
            assert assignment.start_s is not None
            assert assignment.ready_s is not None
            held[assignment.host].append((assignment.start_s, math.inf, guest))
            arrivals[assignment.host].append(assignment.start_s)
            boots.append((assignment.start_s, assignment.ready_s, assignment.host, guest))
        elif assignment.action is Action.MIGRATE:
            assert assignment.start_s is not None
            assert assignment.ready_s is not None
            assert guest.current_host is not None
            held[guest.current_host].append((0, assignment.ready_s, guest))
            held[assignment.host].append((assignment.start_s, math.inf, guest))
            arrivals[assignment.host].append(assignment.start_s)
            moves.append(
                (assignment.start_s, assignment.ready_s, guest.current_host, assignment.host)
            )
    # A host is measured from its first arrival, or from when its last departure ends if
    # that is sooner: before then it only drains what ran there (docs/rules.md).
    checked_from = {
        host: min(
            min(arrivals[host], default=math.inf),
            max((e for _, e, _ in held[host] if e != math.inf), default=0),
        )
        for host in host_states
    }
    resource = {
        (host, name): peak(
            (max(s, int(checked_from[host])), e, g.demand.get(name, 0)) for s, e, g in held[host]
        )
        for host in host_states
        for name in RESOURCES
    }
    final = {
        (host, name): sum(g.demand.get(name, 0) for _, e, g in held[host] if e == math.inf)
        for host in host_states
        for name in RESOURCES
    }
    per_move = migration_load or {}
    pool = {
        name: peak(
            [
                *((s, e, g.boot.load.get(name, 0)) for s, e, _, g in boots),
                *((s, e, per_move.get(name, 0)) for s, e, _, _ in moves),
            ]
        )
        for name in POOLS
    }
    boot_cpu = {h: peak((s, e, g.boot.cpu) for s, e, o, g in boots if o == h) for h in host_states}
    boot_count = {h: peak((s, e, 1) for s, e, o, _ in boots if o == h) for h in host_states}
    cluster_count = peak((s, e, 1) for s, e, _, _ in boots)
    migrating = {h: peak((s, e, 1) for s, e, a, b in moves if h in (a, b)) for h in host_states}
    migrating_total = peak((s, e, 1) for s, e, _, _ in moves)
    return Loads(
        resource,
        final,
        pool,
        boot_cpu,
        boot_count,
        cluster_count,
        migrating,
        migrating_total,
        len(moves),
    )


# --- drawing the plan --------------------------------------------------------------------


@attrs.define
class _Draft:
    """One guest while the plan is drawn: its state and its fate."""

    index: int
    state: GuestState
    current_host: str | None
    host: str | None
    action: Action
    duration_s: int
    start_s: int | None = None
    ready_s: int | None = None
    group: str | None = None
    after: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"g{self.index}"


# Strategies built from per-example lists cannot be cached and cost more to build than to
# draw from, so choices among such lists go through integer and boolean draws.


def _one(draw: st.DrawFn, items: Sequence[_T]) -> _T:
    return items[draw(st.integers(0, len(items) - 1))]


def _subset(draw: st.DrawFn, items: Sequence[str], max_size: int = 2) -> frozenset[str]:
    if not items:
        return frozenset()
    size = draw(st.integers(0, min(max_size, len(items))))
    return frozenset(_one(draw, items) for _ in range(size))


def _draft(
    draw: st.DrawFn,
    index: int,
    states: Mapping[str, HostState],
    place_bias: int,
    instants: Sequence[int],
    running_weight: int = 4,
) -> _Draft:
    """A guest's state, current host, chosen host and action, consistent with each other."""
    names = sorted(states)
    online = [h for h in names if states[h] is HostState.ONLINE]
    live = [h for h in names if states[h] is not HostState.FAILED]
    failed = [h for h in names if states[h] is HostState.FAILED]
    kinds = ["stopped"] * 4 + ["running"] * running_weight + ["frozen"] * 2
    if failed:
        kinds += ["running_failed"] * 2
    kind = _one(draw, kinds)
    duration_s = _one(draw, DURATIONS_S)
    # `place_bias` out of 10 guests that could be placed are.
    place = draw(st.integers(0, 9)) < place_bias

    if kind == "running" and live:
        current = _one(draw, live)
        options = [Action.STOP]
        if current in online:
            options += [Action.STAY] * 3
        if [h for h in online if h != current]:
            options += [Action.MIGRATE] * 3
        action = _one(draw, options) if place else Action.STOP
        if action is Action.STAY:
            return _Draft(index, GuestState.RUNNING, current, current, action, duration_s)
        if action is Action.MIGRATE:
            target = _one(draw, [h for h in online if h != current])
            # Moves often begin at 0 or at a start instant, where their timing matters.
            # Their ready time follows from the guest's memory, drawn later.
            start_s = _one(draw, [0, 0, _one(draw, instants), draw(st.integers(0, 150))])
            return _Draft(index, GuestState.RUNNING, current, target, action, duration_s, start_s)
        return _Draft(index, GuestState.RUNNING, current, None, Action.STOP, duration_s)

    if kind == "running_failed":
        state, current = GuestState.RUNNING, _one(draw, failed)
    elif kind == "frozen":
        # Mostly on a live host, where the frozen copy holds its demand.
        state, current = GuestState.FROZEN, _one(draw, live * 3 + failed or names)
    else:
        state, current = GuestState.STOPPED, None if draw(st.booleans()) else _one(draw, names)
    targets = [h for h in online if not (state is GuestState.FROZEN and h == current)]
    if place and targets:
        # Crowding the first host makes for shared limits and neighbours.
        host = _one(draw, [targets[0], *targets])
        return _Draft(index, state, current, host, Action.START, duration_s)
    return _Draft(index, state, current, None, Action.NONE, duration_s)


def _instants(draw: st.DrawFn) -> list[int]:
    """A few distinct start instants (s), in order."""
    instants = [draw(st.integers(0, 30))]
    for _ in range(_one(draw, [1, 2, 0, 3])):
        instants.append(instants[-1] + draw(st.integers(1, 90)))
    return instants


def _schedule_starts(draw: st.DrawFn, drafts: Sequence[_Draft], instants: Sequence[int]) -> int:
    """Give every starter one of `instants` and start groups; return a valid stagger (s)."""
    starters = [d for d in drafts if d.action is Action.START]
    at: dict[int, list[_Draft]] = defaultdict(list)
    # Hypothesis favours small choices, so random picks would crowd the first instant;
    # half the time the starters take the instants in turn.
    in_turn = draw(st.booleans())
    for position, draft in enumerate(starters):
        if in_turn:
            draft.start_s = instants[position % len(instants)]
        else:
            draft.start_s = _one(draw, instants)
        draft.ready_s = draft.start_s + draft.duration_s
        at[draft.start_s].append(draft)

    # A staggered schedule has one start unit per instant: every instant with several
    # starters starts them as one group.
    staggered = draw(st.booleans())
    for position, instant in enumerate(sorted(at)):
        members = at[instant]
        if staggered and len(members) > 1:
            grouped = members
        else:
            grouped = [d for d in members if draw(st.integers(0, 2)) == 0]
        for draft in grouped:
            draft.group = f"s{position}"

    units_per_instant = [
        len({d.group if d.group is not None else d.name for d in at[t]}) for t in sorted(at)
    ]
    if any(units > 1 for units in units_per_instant):
        return 0
    used = sorted(at)
    if len(used) < 2:
        return _one(draw, [0, 0, 15])
    smallest_gap = min(b - a for a, b in itertools.pairwise(used))
    return _one(draw, [0, smallest_gap, draw(st.integers(0, smallest_gap))])


def _rank(draft: _Draft) -> tuple[int, int, int, int]:
    """Dependencies point only to guests of lower rank, so `after` is acyclic: running
    guests that stay placed, then starters by ready time, then unplaced guests."""
    if draft.action in (Action.STAY, Action.MIGRATE):
        return (0, 0, 0, draft.index)
    if draft.action is Action.START:
        assert draft.start_s is not None
        assert draft.ready_s is not None
        return (1, draft.ready_s, draft.start_s, draft.index)
    return (2, 0, 0, draft.index)


def _draw_after(draw: st.DrawFn, drafts: Sequence[_Draft]) -> None:
    for draft in drafts:
        lower = [d for d in drafts if _rank(d) < _rank(draft)]
        if draft.action is Action.START:
            assert draft.start_s is not None
            # Placed and ready by the start.
            candidates = [
                d
                for d in lower
                if d.action in (Action.STAY, Action.MIGRATE)
                or (
                    d.action is Action.START
                    and d.ready_s is not None
                    and d.ready_s <= draft.start_s
                )
            ]
        else:
            # `after` binds starts only; a lower rank keeps the relation acyclic.
            candidates = lower
        draft.after = tuple(sorted(_subset(draw, [d.name for d in candidates])))


# --- building the problem around it ------------------------------------------------------


def _capacity_for(
    draw: st.DrawFn, need: Mapping[str, int], keep_all: bool
) -> tuple[dict[str, int], dict[str, float], dict[str, int]]:
    """Capacity, overcommit and reserved amounts whose usable amount is >= `need`."""
    capacity: dict[str, int] = {}
    overcommit: dict[str, float] = {}
    reserved: dict[str, int] = {}
    for resource in RESOURCES:
        used = need.get(resource, 0)
        if used == 0 and not keep_all and draw(st.integers(0, 3)) == 0:
            continue  # the host lacks this resource: capacity 0
        unit = _UNIT[resource]
        target = used + unit * _one(draw, [0, 0, 1, 4])
        ratio = _one(draw, OVERCOMMITS)
        kept = unit * _one(draw, [0, 0, 1])
        amount = kept + math.ceil(target / (ratio or 1.0))
        probe = Host(
            name="probe",
            capacity={resource: amount},
            overcommit={resource: ratio} if ratio else {},
            reserved={resource: kept},
        )
        while probe.usable(resource) < target:  # float rounding, at most a step or two
            amount += 1
            probe = attrs.evolve(probe, capacity={resource: amount})
        capacity[resource] = amount
        if ratio is not None:
            overcommit[resource] = ratio
        if kept or draw(st.booleans()):
            reserved[resource] = kept
    return capacity, overcommit, reserved


def _limit(draw: st.DrawFn, at_least: int, can_be_none: bool = True) -> int | None:
    if can_be_none and draw(st.booleans()):
        return None
    return at_least + _one(draw, [0, 0, 1, 3])


def _guest(
    draw: st.DrawFn,
    draft: _Draft,
    host_names: Sequence[str],
    host_labels: Mapping[str, frozenset[str]],
) -> Guest:
    """The guest of a draft, with filters its chosen host passes (classes and together
    groups are settled later, across guests)."""
    others = [h for h in host_names if h != draft.host]
    if draft.host is not None:
        allowed = None if draw(st.booleans()) else {draft.host} | _subset(draw, others)
        avoid = _subset(draw, others, 1) if draw(st.integers(0, 2)) == 0 else frozenset()
        labels = _subset(draw, sorted(host_labels[draft.host]))
    else:
        allowed = (
            None if draw(st.booleans()) else {_one(draw, host_names)} | _subset(draw, host_names)
        )
        avoid = _subset(draw, host_names, 1)
        labels = _subset(draw, LABELS, 1)
    demand = {
        "ram_mib": 256 * draw(st.integers(0, 8)),
        "vcpus": draw(st.integers(0, 4)),
    }
    if draw(st.integers(0, 3)) == 0:
        demand["gpus"] = draw(st.integers(0, 1))
    load = {pool: draw(st.integers(0, 5)) for pool in POOLS if draw(st.integers(0, 2)) > 0}
    return Guest(
        name=draft.name,
        demand=demand,
        priority=draw(st.integers(0, 3)),
        current_host=draft.current_host,
        state=draft.state,
        hosts=allowed,
        avoid_hosts=avoid,
        labels=labels,
        migration_cost=draw(st.integers(0, 3)),
        # Only a guest that is not migrated may be immovable.
        movable=draft.action is Action.MIGRATE or draw(st.integers(0, 2)) > 0,
        boot=BootProfile(
            duration_s=draft.duration_s,
            load=load,
            cpu=draw(st.integers(0, 3)),
            after=draft.after,
            group=draft.group,
        ),
    )


def _classes_and_groups(
    draw: st.DrawFn, guests: list[Guest], drafts: Sequence[_Draft]
) -> list[Guest]:
    """Anti-affinity classes shared only across hosts, together groups only within one."""
    taken: set[tuple[str, str]] = set()
    result = []
    for guest, draft in zip(guests, drafts, strict=True):
        classes = set(_subset(draw, CLASSES))
        if draft.host is not None:
            classes = {c for c in classes if (draft.host, c) not in taken}
            taken.update((draft.host, c) for c in classes)
        result.append(attrs.evolve(guest, anti_affinity=classes))

    on_host: dict[str | None, list[int]] = defaultdict(list)
    for position, draft in enumerate(drafts):
        on_host[draft.host].append(position)
    for host, positions in on_host.items():
        if draw(st.integers(0, 2)) != 0:
            continue
        members = [p for p in positions if draw(st.booleans())]
        name = f"t-{host}" if host is not None else "t-unplaced"
        for position in members:
            result[position] = attrs.evolve(result[position], together=name)
    return result


@st.composite
def planted_instances(
    draw: st.DrawFn,
    max_hosts: int = 5,
    min_guests: int = 0,
    max_guests: int = 12,
    running_weight: int = 4,
) -> tuple[Problem, Plan]:
    """A small problem and a plan that respects every rule; see the module docstring.
    `running_weight` (against 4 for stopped and 2 for frozen) sets how many guests run
    now, and so how many stay, migrate or stop."""
    num_hosts = draw(st.integers(1, max_hosts))
    host_names = [f"h{i}" for i in range(num_hosts)]
    state_choices = [HostState.ONLINE] * 5 + [HostState.MAINTENANCE, HostState.FAILED]
    states = {name: _one(draw, state_choices) for name in host_names}
    if draw(st.integers(0, 4)) > 0:
        states["h0"] = HostState.ONLINE  # mostly some host is there to place guests on
    host_labels = {name: _subset(draw, LABELS) for name in host_names}

    place_bias = _one(draw, [5, 8, 10])
    num_guests = draw(st.integers(min_guests, max_guests))
    instants = _instants(draw)
    drafts = [
        _draft(draw, index, states, place_bias, instants, running_weight)
        for index in range(num_guests)
    ]
    stagger_s = _schedule_starts(draw, drafts, instants)
    _draw_after(draw, drafts)

    # A few guests that do not start carry a start-group name: groups bind starts only.
    groups = sorted({d.group for d in drafts if d.group is not None})
    for draft in drafts:
        if draft.action is not Action.START and groups and draw(st.integers(0, 5)) == 0:
            draft.group = _one(draw, groups)

    guests = [_guest(draw, d, host_names, host_labels) for d in drafts]
    guests = _classes_and_groups(draw, guests, drafts)
    migration = MigrationSettings(
        bandwidth_mib_s=_one(draw, [1000, 64, 256, 1024]),
        setup_s=_one(draw, [5, 0, 10]),
        # Mostly RAM is copied; sometimes a resource no guest has, so a move is setup only.
        memory_resource=_one(draw, ["ram_mib", "ram_mib", "copied_mib"]),
        load={pool: draw(st.integers(0, 3)) for pool in POOLS if draw(st.booleans())},
    )
    for draft, guest in zip(drafts, guests, strict=True):
        if draft.action is Action.MIGRATE:
            assert draft.start_s is not None
            draft.ready_s = draft.start_s + migration.duration_s(guest)

    assignments = [Assignment(d.name, d.host, d.action, d.start_s, d.ready_s) for d in drafts]
    unplaced = [Unplaced(d.name, _one(draw, REASONS)) for d in drafts if d.host is None]
    plan = Plan(
        status=_one(draw, [Status.OPTIMAL, Status.FEASIBLE]),
        solver="planted",
        runtime_s=_one(draw, [0.0, 0.25, 3.5]),
        assignments=draw(st.permutations(assignments)),
        unplaced=unplaced,
    )

    peaks = loads(states, guests, plan, migration.load)

    hosts = []
    for name in host_names:
        need = {r: peaks.resource[(name, r)].amount for r in RESOURCES}
        capacity, overcommit, reserved = _capacity_for(draw, need, keep_all=name == "h0")
        hosts.append(
            Host(
                name=name,
                capacity=capacity,
                overcommit=overcommit,
                reserved=reserved,
                state=states[name],
                domain=_one(draw, [None, "rack-a", "rack-b"]),
                labels=host_labels[name],
                boot=HostBoot(
                    cpu=_limit(draw, peaks.boot_cpu[name].amount),
                    max_starts=_limit(draw, max(1, peaks.boot_count[name].amount)),
                ),
            )
        )
    ready = [d.ready_s for d in drafts if d.ready_s is not None]
    schedule = Schedule(
        stagger_s=stagger_s,
        max_starts=_limit(draw, max(1, peaks.cluster_count.amount)),
        horizon_s=max(ready, default=0) + _one(draw, [0, 0, 1, 600]),
    )
    problem = Problem(
        hosts=hosts,
        guests=guests,
        boot_pools={
            pool: _limit(draw, peaks.pool[pool].amount, can_be_none=False) for pool in POOLS
        },
        schedule=schedule,
        objective=_one(draw, OBJECTIVES),
        migration=attrs.evolve(
            migration,
            max_per_host=_limit(draw, max(1, max(p.amount for p in peaks.migrating.values()))),
            max_total=_limit(draw, max(1, peaks.migrating_total.amount)),
            max_moves=_limit(draw, peaks.num_migrations),
        ),
    )
    return problem, plan


def valid_problems(max_hosts: int = 5, max_guests: int = 12) -> st.SearchStrategy[Problem]:
    """Problems that have at least one valid plan (the planted one)."""
    return planted_instances(max_hosts=max_hosts, max_guests=max_guests).map(lambda c: c[0])


# Statistics a plan file may carry: none, every common record, and figures of no type.
_STATISTICS = [
    SolveStatistics(),
    SolveStatistics(
        first_plan_s=0.25,
        returned="cp-sat",
        interrupted=True,
        model=ModelSize(build_s=0.1, units=3, pairs=9, boots=3),
        seeds=[SeedRun("best-fit", 0.01, valid=True, kept=True, values={"placed": 3})],
        incumbents=[Incumbent(0.25, "seed", {"placed": 3.0})],
        stages=[StageLog("placed", "OPTIMAL", 0.1, value=3, bound=3, improved=False)],
        type_counts=TypeCounts(skipped="the incumbent meets our bounds"),
        neighbourhoods=[NeighbourhoodRound(0, 0.5, 2, 8, improved=True, values={"placed": 3})],
        extra={"peak_san": 3, "notes": ["a", "b"]},
    ),
]


@st.composite
def plans_for(draw: st.DrawFn, problem: Problem) -> Plan:
    """Any plan naming only the problem's guests and hosts, valid for the plan schema but
    usually breaking rules: wrong actions and times, guests missing or repeated."""
    host_names = [h.name for h in problem.hosts]
    guest_names = [g.name for g in problem.guests]
    times = st.none() | st.integers(0, 300)
    assignments = []
    if guest_names:
        for _ in range(draw(st.integers(0, len(guest_names) + 2))):
            assignments.append(
                Assignment(
                    draw(st.sampled_from(guest_names)),
                    draw(st.none() | st.sampled_from(host_names)),
                    draw(st.sampled_from(list(Action))),
                    draw(times),
                    draw(times),
                )
            )
    unplaced = [Unplaced(name, draw(st.sampled_from(["", *REASONS]))) for name in guest_names]
    stages = [
        StageResult(
            objective.value,
            draw(st.floats(-1e6, 1e6, allow_nan=False)),
            draw(st.none() | st.floats(-1e6, 1e6, allow_nan=False)),
            draw(st.none() | st.floats(0, 10, allow_nan=False)),
        )
        for objective in problem.objective
        if draw(st.booleans())
    ]
    return Plan(
        status=draw(st.sampled_from(list(Status))),
        solver=draw(st.sampled_from(["planted", "greedy", ""])),
        runtime_s=draw(st.floats(0, 100, allow_nan=False)),
        assignments=assignments,
        unplaced=draw(st.lists(st.sampled_from(unplaced), unique=True)) if unplaced else [],
        stages=stages,
        statistics=draw(st.sampled_from(_STATISTICS)),
    )
