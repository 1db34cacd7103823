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
from placement.timeline import Step, timeline

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


def _step_row(step: Step) -> list[str]:
    start = "" if step.start_s is None else str(step.start_s)
    ready = "" if step.ready_s is None else str(step.ready_s)
    if step.action is Action.MIGRATE:
        where = f"{step.source} -> {step.target}"
    elif step.action is Action.STOP:
        where = f"{step.source} -> (stopped)"
    elif step.action is Action.START:
        where = f"-> {step.target}"
    else:
        where = step.target or ""
    return [start, ready, step.action.value, step.guest, where, step.note]


def render_timeline(problem: Problem, plan: Plan) -> list[str]:
    """The timeline section: timed actions in order, then a line per kind of non-action."""
    steps = timeline(problem, plan)
    timed = [s for s in steps if s.action in (Action.STOP, Action.MIGRATE, Action.START)]
    lines = ["Timeline"]
    if timed:
        header = ["t (s)", "ready (s)", "action", "guest", "where", "note"]
        lines += table([header, *(_step_row(s) for s in timed)], right=(0, 1))
    else:
        lines.append("  nothing to do: no guest starts, moves or stops")
    stays = [s.guest for s in steps if s.action is Action.STAY]
    if stays:
        shown = ", ".join(stays[:_STAYS_SHOWN])
        more = f" and {len(stays) - _STAYS_SHOWN} more" if len(stays) > _STAYS_SHOWN else ""
        lines.append(f"  {len(stays)} guest(s) stay where they run: {shown}{more}")
    return lines


def render_hosts(problem: Problem, plan: Plan) -> list[str]:
    """Per host: state, guests before -> after, utilisation per resource before -> after."""
    # Before: what each host held, a failed one included (what it ran until it died).
    before: dict[str, dict[str, int]] = {h.name: {} for h in problem.hosts}
    now: dict[str, int] = {h.name: 0 for h in problem.hosts}
    for guest in problem.guests:
        if guest.state is GuestState.STOPPED or guest.current_host is None:
            continue
        now[guest.current_host] += 1
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
    title = "Hosts (guests, and utilisation of usable capacity, before -> after)"
    return [title, *table(rows)]


def render_plan(problem: Problem, plan: Plan, report: CheckReport | None = None) -> str:
    """The whole report: summary and verdict, timeline, hosts, unplaced guests, objectives
    with bound and gap, and Proxmox's imbalance before and after."""
    report = report if report is not None else check(problem, plan)
    counts = report.metrics.get("actions", {})
    actions = ", ".join(f"{n} {name}" for name, n in counts.items() if n)
    placed = report.metrics.get("placed", 0)
    lines = [
        f"{plan.solver}: {plan.status.value} in {plan.runtime_s:.2f} s; "
        f"{placed} of {len(problem.guests)} guests placed; {actions or 'no guests'}",
    ]
    if report.ok:
        lines.append("valid: the plan respects every rule")
    else:
        lines.append(f"INVALID: {len(report.violations)} violation(s)")
        lines += [f"  {v.rule}: {v.message}" for v in report.violations]
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
    hysteresis = plan.metrics.get("hysteresis")
    if isinstance(hysteresis, dict):
        lines.append(
            f"  kept the cluster as it is: {hysteresis.get('rejected_solver')}'s plan reached "
            f"{_number(hysteresis.get('rejected_imbalance'))}, less than "
            f"{100 * float(hysteresis.get('min_improvement', 0)):.0f}% better"
        )
    for pool, figures in report.metrics.get("pools", {}).items():
        when = "" if figures["peak_at_s"] is None else f" at t={figures['peak_at_s']} s"
        lines.append(f"  pool {pool}: peak {figures['peak']} of {figures['limit']}{when}")
    return "\n".join(lines) + "\n"
