"""A plan as a person reads it: timeline, hosts before and after, unplaced guests, objectives.

`render_plan(problem, plan)` returns plain text (no colours, fixed-width columns) for
`placement show PROBLEM PLAN` and for the scenario commands. Utilisation is used over
usable (after reservation and overcommit), as the checker measures it.
"""

from __future__ import annotations

from collections.abc import Sequence

from placement.check import CheckReport, check
from placement.imbalance import host_usage, imbalance
from placement.model import GuestState, Problem
from placement.plan import Action, Plan
from placement.timeline import Step, clock, level_at, pool_intervals, step_series, timeline

# How many staying guests the timeline names before it says "and N more".
_STAYS_SHOWN = 10


def table(
    rows: Sequence[Sequence[str]], right: Sequence[int] = (), indent: str = "  "
) -> list[str]:
    """Rows padded into columns (two spaces apart) after `indent`; columns in `right` are
    right-aligned."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append(indent + "  ".join(cells).rstrip())
    return lines


def violation_counts(report: CheckReport) -> list[tuple[str, int]]:
    """(rule, number of violations) of a report, the most frequent rule first."""
    counts: dict[str, int] = {}
    for violation in report.violations:
        counts[violation.rule] = counts.get(violation.rule, 0) + 1
    return sorted(counts.items(), key=lambda item: -item[1])


def verdict(report: CheckReport) -> str:
    """The checker's verdict in one phrase: `valid`, or
    `INVALID: 31 violations (29 stagger, 1 pool_capacity, 1 host_boot_cpu)`."""
    if report.ok:
        return "valid"
    total = len(report.violations)
    rules = ", ".join(f"{count} {rule}" for rule, count in violation_counts(report))
    return f"INVALID: {total} violation{'' if total == 1 else 's'} ({rules})"


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4g}"


def _percent(used: int, usable: int) -> str:
    if usable <= 0:
        return "-" if used == 0 else "inf"
    return f"{100 * used / usable:.0f}%"


def summary_line(problem: Problem, plan: Plan) -> str:
    """The plan's first line, the same in `placement solve` and `placement show`: solver,
    the solver's own status, its solve time, guests placed."""
    placed = sum(1 for a in plan.by_guest().values() if a.host is not None)
    return (
        f"{plan.solver}: {plan.status.value} in {plan.runtime_s:.2f} s; "
        f"{placed} of {len(problem.guests)} guests placed"
    )


def search_line(plan: Plan) -> str | None:
    """How the solver found the plan, in one line (`solve` and `show`), from its
    statistics: time to the first plan, the seeds, the search returned, the stages it
    improved, the neighbourhood rounds; None when the solver reports none of it."""
    statistics = plan.statistics
    parts: list[str] = []
    if statistics.first_plan_s is not None:
        parts.append(f"first plan after {statistics.first_plan_s:.2f} s")
    if statistics.seeds:
        kept = [seed.name for seed in statistics.seeds if seed.kept]
        best = f"best: {kept[-1]}" if kept else "none valid"
        parts.append(f"{len(statistics.seeds)} seeds ({best})")
    if statistics.returned is not None:
        parts.append(f"returned the {statistics.returned} plan")
    improved = [stage.stage for stage in statistics.stages if stage.improved]
    if improved:
        parts.append(f"improved {', '.join(improved)}")
    rounds = statistics.neighbourhoods
    if rounds:
        better = sum(1 for r in rounds if r.improved)
        parts.append(f"{len(rounds)} neighbourhood rounds ({better} better)")
    if statistics.portfolio is not None:
        portfolio = statistics.portfolio
        parts.append(f"variant {portfolio.variant} of {portfolio.variants_run} run")
    parts += [
        words
        for flag, words in (
            (statistics.interrupted, "interrupted"),
            (statistics.wall_cut, "cut by the wall clock"),
        )
        if flag
    ]
    return f"search: {'; '.join(parts)}" if parts else None


class _Loads:
    """What the plan loads over time: each boot pool (boots and migrations), each host's
    boot CPU, and the number of guests booting; for the headroom at a start and for why a
    guest starts when it does."""

    def __init__(self, problem: Problem, plan: Plan) -> None:
        cpu: dict[str, list[tuple[int, int, int]]] = {}
        booting: list[tuple[int, int, int]] = []
        # Instant -> the (guest, start group) of each boot that starts then.
        self.starts: dict[int, list[tuple[str, str | None]]] = {}
        self.ready: dict[str, int] = {}
        for a in plan.by_guest().values():
            if a.start_s is None or a.ready_s is None:
                continue
            self.ready[a.guest] = a.ready_s
            guest = problem.guest(a.guest)
            if a.action is Action.START:
                booting.append((a.start_s, a.ready_s, 1))
                self.starts.setdefault(a.start_s, []).append((a.guest, guest.boot.group))
                if guest.boot.cpu and a.host is not None:
                    cpu.setdefault(a.host, []).append((a.start_s, a.ready_s, guest.boot.cpu))
        pools = pool_intervals(problem, plan)
        self.pools = {pool: step_series(items) for pool, items in pools.items()}
        self.cpu = {host: step_series(items) for host, items in cpu.items()}
        self.booting = step_series(booting)

    def headroom(self, problem: Problem, pool: str, instant: int) -> int:
        """The pool's limit less its planned load at `instant` (negative: over it)."""
        return problem.boot_pools.get(pool, 0) - level_at(self.pools[pool], instant)

    def waits_for(self, problem: Problem, step: Step) -> list[str]:
        """Why `step` (a start or a migration) begins when it does rather than earlier:
        the rules that would be broken a second before (its dependency not yet ready, a
        pool or the host's boot CPU full, the stagger after the previous start, the
        cluster's start limit). Empty when it begins at 0 or nothing binds."""
        if step.start_s is None or step.start_s <= 0:
            return []
        start, guest = step.start_s, problem.guest(step.guest)
        reasons = []
        late = [d for d in guest.boot.after if self.ready.get(d) == start]
        if step.action is Action.START and late:
            reasons.append(f"{', '.join(late)} ready")
        load = guest.boot.load if step.action is Action.START else problem.migration.load
        for pool, amount in sorted(load.items()):
            limit = problem.boot_pools.get(pool)
            if limit is not None and level_at(self.pools[pool], start - 1) + amount > limit:
                reasons.append(f"room in {pool}")
        if step.action is not Action.START:
            return reasons
        host = problem.host(step.target) if step.target is not None else None
        if host is not None and host.boot.cpu is not None and guest.boot.cpu:
            used = level_at(self.cpu.get(host.name, ([0], [0])), start - 1)
            if used + guest.boot.cpu > host.boot.cpu:
                reasons.append(f"boot CPU on {host.name}")
        stagger = problem.schedule.stagger_s
        before = [
            name
            for name, group in sorted(self.starts.get(start - stagger, []))
            if group is None or group != guest.boot.group
        ]
        if stagger and before:
            reasons.append(f"stagger {stagger} s after {before[-1]}")
        limit = problem.schedule.max_starts
        if limit is not None and level_at(self.booting, start - 1) >= limit:
            reasons.append(f"max_starts {limit}")
        return reasons


def _where(step: Step) -> str:
    if step.action is Action.MIGRATE:
        return f"{step.source} -> {step.target}"
    if step.action is Action.STOP:
        return f"{step.source} -> (stopped)"
    if step.action is Action.START:
        return f"-> {step.target}"
    return step.target or ""


def _step_row(problem: Problem, loads: _Loads, step: Step) -> list[str]:
    guest = problem.guest(step.guest)
    headroom = []
    for pool in problem.boot_pools:
        if step.start_s is None or step.action is Action.STOP:
            headroom.append("")
        else:
            headroom.append(f"{loads.headroom(problem, pool, step.start_s):,}")
    why = [step.note] if step.note else []
    waits = loads.waits_for(problem, step)
    if waits:
        why.append("waited for " + ", ".join(waits))
    return [
        clock(step.start_s),
        clock(step.ready_s),
        step.action.value,
        step.guest,
        str(guest.priority),
        _where(step),
        *headroom,
        "; ".join(why),
    ]


def timed_steps(problem: Problem, plan: Plan) -> list[Step]:
    """The timeline's starts, migrations and stops, in order."""
    timed = (Action.STOP, Action.MIGRATE, Action.START)
    return [s for s in timeline(problem, plan) if s.action in timed]


def render_timeline(problem: Problem, plan: Plan, first: int | None = None) -> list[str]:
    """The timeline section, as a runbook: each timed action with its clock time after the
    plan starts (`+18:35`) and when the guest is ready, the guest's priority, the hosts
    it leaves and goes to, each boot pool's headroom at that instant (its limit less the
    planned load, this guest's included) and why it starts then and not earlier; then a
    line per kind of non-action. `first`: only the first so many actions (the solve
    command's summary)."""
    steps = timeline(problem, plan)
    timed = timed_steps(problem, plan)
    shown = timed if first is None else timed[:first]
    loads = _Loads(problem, plan)
    lines = ["Timeline (clock after the plan starts, min:s)"]
    if timed:
        header = ["start", "ready", "action", "guest", "prio", "where"]
        header += [f"{pool} left" for pool in problem.boot_pools] + ["why"]
        pools = len(problem.boot_pools)
        rows = [_step_row(problem, loads, s) for s in shown]
        lines += table([header, *rows], right=(0, 1, 4, *range(6, 6 + pools)))
        if len(shown) < len(timed):
            lines.append(f"  ... {len(timed) - len(shown)} more action(s)")
    else:
        lines.append("  nothing to do: no guest starts, moves or stops")
    if first is not None:
        return lines
    stays = [s.guest for s in steps if s.action is Action.STAY]
    if stays:
        named = ", ".join(stays[:_STAYS_SHOWN])
        more = f" and {len(stays) - _STAYS_SHOWN} more" if len(stays) > _STAYS_SHOWN else ""
        lines.append(f"  {len(stays)} guest(s) stay where they run: {named}{more}")
    return lines


def render_violations(report: CheckReport, per_rule: int = 3) -> list[str]:
    """The verdict line, then the violations grouped by rule, the most frequent first:
    each rule with its count and its first `per_rule` messages."""
    if report.ok:
        return ["valid: the plan respects every rule"]
    lines = [f"{verdict(report)}: do not run it as it is"]
    for rule, count in violation_counts(report):
        found = [v for v in report.violations if v.rule == rule]
        lines.append(f"  {rule} ({count}):")
        lines += [f"    {v.message}" for v in found[:per_rule]]
        if count > per_rule:
            lines.append(f"    ... and {count - per_rule} more like these")
    return lines


def render_hosts(problem: Problem, plan: Plan) -> list[str]:
    """Per host: state, guests before -> after, utilisation per resource before -> after."""
    # Before: what each host held, a failed one included (what it ran until it died).
    before: dict[str, dict[str, int]] = {h.name: {} for h in problem.hosts}
    now: dict[str, int] = {h.name: 0 for h in problem.hosts}
    for guest in problem.guests:
        if guest.current_host is None:
            continue
        # Counted where it was, stopped or not (the guests a failed host held).
        now[guest.current_host] += 1
        if guest.state is GuestState.STOPPED:
            continue
        for resource, amount in guest.demand.items():
            held = before[guest.current_host]
            held[resource] = held.get(resource, 0) + amount
    after = host_usage(problem, plan)
    then: dict[str, int] = {h.name: 0 for h in problem.hosts}
    for assignment in plan.by_guest().values():
        if assignment.host is not None and assignment.host in then:
            then[assignment.host] += 1
    resources = problem.resources
    header = ["host", "state", "guests", *resources]
    rows = [header]
    for host in problem.hosts:
        cells = [host.name, host.state.value, f"{now[host.name]} -> {then[host.name]}"]
        for resource in resources:
            usable = host.usable(resource)
            old = before[host.name].get(resource, 0)
            new = after[host.name].get(resource, 0)
            cells.append(f"{_percent(old, usable)} -> {_percent(new, usable)}")
        rows.append(cells)
    title = (
        "Hosts (guests where they were -> after, and utilisation of usable capacity "
        "before -> after)"
    )
    return [title, *table(rows)]


def render_plan(problem: Problem, plan: Plan, report: CheckReport | None = None) -> str:
    """The whole report: summary and verdict, timeline, hosts, unplaced guests, objectives
    with bound and gap, and Proxmox's imbalance before and after."""
    report = report if report is not None else check(problem, plan)
    counts = report.metrics.get("actions", {})
    actions = ", ".join(f"{n} {name}" for name, n in counts.items() if n)
    lines = [f"{summary_line(problem, plan)}; {actions or 'no guests'}"]
    lines += render_violations(report)
    lines.append("")
    lines += render_timeline(problem, plan)
    lines.append("")
    lines += render_hosts(problem, plan)
    if plan.unplaced:
        lines += ["", "Unplaced"]
        lines += table([[u.guest, u.reason] for u in plan.unplaced])
    lines += ["", "Objectives"]
    objectives = report.metrics.get("objectives", {})
    rows = [["stage", "value", "bound", "gap", "checker"]]
    for stage in plan.stages:
        gap = "-" if stage.gap is None else f"{100 * stage.gap:.2f}%"
        checked = objectives.get(stage.name)
        rows.append([stage.name, _number(stage.value), _number(stage.bound), gap, _number(checked)])
    if len(rows) > 1:
        lines += table(rows, right=(1, 2, 3, 4))
    else:
        lines.append("  the plan reports no objective stages")
    lines.append(
        f"  imbalance (Proxmox): {imbalance(problem):.4f} before -> "
        f"{imbalance(problem, plan):.4f} after"
    )
    searched = search_line(plan)
    if searched is not None:
        lines.append(f"  {searched}")
    hysteresis = plan.statistics.hysteresis
    if hysteresis is not None:
        lines.append(
            f"  kept the cluster as it is: {hysteresis.rejected_solver}'s plan reached "
            f"{_number(hysteresis.rejected_imbalance)}, less than "
            f"{100 * hysteresis.min_improvement:.0f}% better"
        )
    for pool, figures in report.metrics.get("pools", {}).items():
        when = "" if figures["peak_at_s"] is None else f" at t={figures['peak_at_s']} s"
        lines.append(f"  pool {pool}: peak {figures['peak']} of {figures['limit']}{when}")
    return "\n".join(lines) + "\n"
