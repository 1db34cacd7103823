"""Markdown tables from a results file written by `python -m bench run`.

Per size, one row per solver and schedule, averaged over the seeds: guests placed,
plans that break no rule, violations, peak SAN load over its limit, makespan, recovery,
runtime, and the ratio of makespan and recovery to the best baseline of the same
instance. The *best baseline* of an instance is the lexicographically best plan, over
the instance's objective stages, among the baseline and peer plans that break no rule
(a plan that overloads the SAN is not a recovery anyone should run). Then, per instance,
the optimiser's stages with their bounds and gaps against that best baseline, a verdict
line (the optimiser must never be worse), and the optimiser against `serial:45`, the
operator's `start; sleep 45` loop.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from bench.run import OPTIMISER_SCHEDULE, Row, read_rows, run_key

DEFAULT_STAGES = ("placed", "migrations", "recovery", "balance")
SIZE_ORDER = {"S": 0, "M": 1, "L": 2}


def latest(rows: Iterable[Row]) -> list[Row]:
    """One row per run: a later row with the same key replaces an earlier one."""
    by_key: dict[tuple[Any, ...], Row] = {}
    for row in rows:
        by_key[run_key(row)] = row
    return list(by_key.values())


def _ok(row: Row) -> bool:
    return row.get("status") not in ("error", "killed", "unknown") and "objectives" in row


def _valid(row: Row) -> bool:
    return _ok(row) and row.get("violations") == 0


def stage_names(rows: Sequence[Row]) -> tuple[str, ...]:
    for row in rows:
        names = tuple(stage["name"] for stage in row.get("stages") or ())
        if names:
            return names
    return DEFAULT_STAGES


def compare(a: Row, b: Row, stages: Sequence[str]) -> int:
    """-1 if plan `a` is lexicographically better than `b` on `stages`, 1 if worse, 0 if
    equal (`placed` is maximised, the rest minimised)."""
    for stage in stages:
        value_a = float(a["objectives"][stage])
        value_b = float(b["objectives"][stage])
        if abs(value_a - value_b) > 1e-9:
            better = value_a > value_b if stage == "placed" else value_a < value_b
            return -1 if better else 1
    return 0


def best_baseline(rows: Sequence[Row], stages: Sequence[str]) -> Row | None:
    """The lexicographically best valid non-optimiser plan among `rows` (one instance)."""
    best: Row | None = None
    for row in rows:
        if row.get("kind") == "optimiser" or not _valid(row):
            continue
        if best is None or compare(row, best, stages) < 0:
            best = row
    return best


def _label(row: Row) -> str:
    if row.get("schedule") == OPTIMISER_SCHEDULE:
        return str(row["solver"])
    return f"{row['solver']} + {row['schedule']}"


def _mean(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None and not math.isnan(v)]
    return sum(known) / len(known) if known else None


def _geomean(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None and v > 0]
    if not known:
        return None
    return math.exp(sum(math.log(v) for v in known) / len(known))


def _fmt(value: float | None, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{suffix}"


def _ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None:
        return None
    if reference == 0:
        return 1.0 if value == 0 else None
    return value / reference


def _table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    lines.extend("| " + " | ".join(cells) + " |" for cells in body)
    return lines


def _solver_table(size_rows: Sequence[Row], best: dict[str, Row | None]) -> list[str]:
    groups: dict[str, list[Row]] = defaultdict(list)
    order: dict[str, tuple[int, str]] = {}
    for row in size_rows:
        label = _label(row)
        groups[label].append(row)
        rank = 0 if row.get("kind") == "optimiser" else 1 if row.get("kind") == "baseline" else 2
        order[label] = (rank, label)
    body = []
    for label in sorted(groups, key=lambda name: order[name]):
        runs = groups[label]
        good = [r for r in runs if _ok(r)]
        failed = len(runs) - len(good)
        guests = _mean(r["counts"]["guests"] for r in good)
        placed = _mean(r["placed"] for r in good)
        valid = sum(1 for r in good if r["violations"] == 0)
        rules: dict[str, int] = defaultdict(int)
        for r in good:
            for rule, count in (r.get("violation_rules") or {}).items():
                rules[rule] += count
        san = [_ratio(r.get("san_peak"), r.get("san_limit")) for r in good]
        known_san = [s for s in san if s is not None]
        makespan_vs = [
            _ratio(r["makespan_s"], best[r["instance"]]["makespan_s"])  # type: ignore[index]
            for r in good
            if best.get(r["instance"]) is not None
        ]
        recovery_vs = [
            _ratio(r["objectives"]["recovery"], best[r["instance"]]["objectives"]["recovery"])  # type: ignore[index]
            for r in good
            if best.get(r["instance"]) is not None
        ]
        body.append(
            [
                label,
                f"{len(good)}/{len(runs)}" + (f" ({failed} failed)" if failed else ""),
                f"{_fmt(placed, 1)} / {_fmt(guests)}",
                f"{valid}/{len(good)}",
                _fmt(_mean(r["violations"] for r in good), 1)
                + (
                    " (" + ", ".join(f"{k} {v}" for k, v in sorted(rules.items())) + ")"
                    if rules
                    else ""
                ),
                _fmt(max(known_san), 2) if known_san else "-",
                _fmt(_mean(r["makespan_s"] for r in good)),
                _fmt(_mean(r["objectives"]["recovery"] for r in good)),
                _fmt(_geomean(makespan_vs), 2),
                _fmt(_geomean(recovery_vs), 2),
                _fmt(_mean(r.get("wall_s") for r in good), 2),
                _fmt(_mean((r.get("solver_metrics") or {}).get("first_plan_s") for r in good), 2),
                _fmt(_mean(r.get("first_solution_s") for r in good), 2),
                _fmt(max((r.get("peak_rss_mib") or 0) for r in runs)),
            ]
        )
    header = [
        "solver + schedule",
        "runs",
        "placed / guests",
        "valid",
        "violations (rules, total)",
        "peak SAN / limit (max)",
        "makespan s",
        "recovery",
        "makespan / best baseline",
        "recovery / best baseline",
        "wall s",
        "first plan s",
        "first CP-SAT solution s",
        "peak RSS MiB",
    ]
    return _table(header, body)


def _stage_table(
    size_rows: Sequence[Row], best: dict[str, Row | None], stages: Sequence[str]
) -> tuple[list[str], list[str]]:
    """The optimiser per instance and stage; also the instances where it is worse."""
    body = []
    worse: list[str] = []
    by_instance: dict[str, list[Row]] = defaultdict(list)
    for row in size_rows:
        by_instance[row["instance"]].append(row)
    for instance in sorted(by_instance, key=lambda name: int(name.split("-")[1])):
        for row in by_instance[instance]:
            if row.get("kind") != "optimiser":
                continue
            if not _ok(row):
                body.append([instance, row["solver"], "-", row.get("status", "?"), "", "", "", ""])
                worse.append(
                    f"{instance} ({row['solver']}: {row.get('status')} {row.get('error', '')})"
                )
                continue
            reference = best.get(instance)
            verdict = "no valid baseline"
            if reference is not None:
                order = compare(row, reference, stages)
                verdict = {-1: "better", 0: "equal", 1: "**worse**"}[order]
                if order > 0 or row["violations"]:
                    worse.append(f"{instance} ({row['solver']})")
            if row["violations"]:
                verdict += f", **{row['violations']} violation(s)**"
            for stage in row.get("stages") or ():
                base_value = reference["objectives"][stage["name"]] if reference else None
                body.append(
                    [
                        instance,
                        row["solver"],
                        stage["name"],
                        _fmt(stage["value"], 4 if stage["name"] == "balance" else 0),
                        _fmt(stage["bound"], 4 if stage["name"] == "balance" else 0),
                        _fmt(stage["gap"] * 100 if stage["gap"] is not None else None, 1, " %"),
                        _fmt(base_value, 4 if stage["name"] == "balance" else 0)
                        + (
                            f" ({_label(reference)})"
                            if reference and stage is row["stages"][0]
                            else ""
                        ),
                        verdict if stage is row["stages"][0] else "",
                    ]
                )
    header = [
        "instance",
        "solver",
        "stage",
        "value",
        "bound",
        "gap",
        "best baseline",
        "lexicographic verdict",
    ]
    return _table(header, body), worse


def _serial_table(size_rows: Sequence[Row]) -> list[str]:
    """The optimiser's makespan and recovery against the shortest `serial:45` plan."""
    body = []
    by_instance: dict[str, list[Row]] = defaultdict(list)
    for row in size_rows:
        by_instance[row["instance"]].append(row)
    reductions: list[float] = []
    for instance in sorted(by_instance, key=lambda name: int(name.split("-")[1])):
        rows = by_instance[instance]
        serial = [r for r in rows if r.get("schedule") == "serial:45" and _ok(r)]
        optimiser = [r for r in rows if r.get("kind") == "optimiser" and _ok(r)]
        if not serial or not optimiser:
            continue
        shortest = min(serial, key=lambda r: r["makespan_s"])
        san_ratio = _ratio(shortest["san_peak"], shortest["san_limit"])
        for row in optimiser:
            reduction = (
                1 - row["makespan_s"] / shortest["makespan_s"] if shortest["makespan_s"] else None
            )
            if reduction is not None:
                reductions.append(reduction)
            body.append(
                [
                    instance,
                    _fmt(shortest["makespan_s"]),
                    _label(shortest),
                    f"{shortest['violations']} ({_fmt(san_ratio, 2)})",
                    _fmt(row["makespan_s"]),
                    _fmt(reduction * 100 if reduction is not None else None, 0, " %"),
                    _fmt(
                        (1 - row["objectives"]["recovery"] / shortest["objectives"]["recovery"])
                        * 100
                        if shortest["objectives"]["recovery"]
                        else None,
                        0,
                        " %",
                    ),
                ]
            )
    if not body:
        return []
    header = [
        "instance",
        "serial:45 makespan s",
        "(shortest of)",
        "its violations (SAN peak / limit)",
        "optimiser makespan s",
        "makespan shorter by",
        "recovery lower by",
    ]
    lines = _table(header, body)
    if reductions:
        lines.append("")
        lines.append(
            f"Makespan against serial:45: shorter by {min(reductions) * 100:.0f} % at least, "
            f"{sum(reductions) / len(reductions) * 100:.0f} % on average "
            f"(40 % or more on {sum(r >= 0.40 for r in reductions)} of {len(reductions)} "
            "instance(s))."
        )
    return lines


def render(rows: Iterable[Row]) -> str:
    """The markdown report of a results file's rows."""
    rows = latest(rows)
    lines: list[str] = []
    by_size: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_size[row.get("size", "?")].append(row)
    all_worse: list[str] = []
    compared = 0
    for size in sorted(by_size, key=lambda s: (SIZE_ORDER.get(s, 9), s)):
        size_rows = by_size[size]
        stages = stage_names([r for r in size_rows if r.get("kind") == "optimiser"])
        instances: dict[str, list[Row]] = defaultdict(list)
        for row in size_rows:
            instances[row["instance"]].append(row)
        best = {name: best_baseline(runs, stages) for name, runs in instances.items()}
        limits = sorted({r.get("time_limit_s") for r in size_rows}, key=str)
        limit_text = ", ".join(map(str, limits))
        lines.append(f"### Size {size}: {len(instances)} instance(s), time limit {limit_text} s")
        lines.append("")
        lines.extend(_solver_table(size_rows, best))
        lines.append("")
        stage_lines, worse = _stage_table(size_rows, best, stages)
        if len(stage_lines) > 2:
            lines.append(f"Optimiser stages on {size} (lexicographic: {', '.join(stages)}):")
            lines.append("")
            lines.extend(stage_lines)
            lines.append("")
        compared += sum(
            1 for r in size_rows if r.get("kind") == "optimiser" and best.get(r["instance"])
        )
        all_worse.extend(worse)
        serial = _serial_table(size_rows)
        if serial:
            lines.append(f"Optimiser against the operator's serial:45 loop on {size}:")
            lines.append("")
            lines.extend(serial)
            lines.append("")
    if all_worse:
        lines.append(
            "**The optimiser was worse than the best baseline, failed, or broke a rule on: "
            + "; ".join(all_worse)
            + ".**"
        )
    elif compared:
        lines.append(
            f"The optimiser was never worse than the best valid baseline: on all {compared} "
            "instance(s) it is lexicographically better or equal over the objective stages, "
            "with no violations."
        )
    return "\n".join(lines) + "\n"


def main_report(args: Any) -> int:
    """`python -m bench report FILE...`."""
    rows: list[Row] = []
    for path in args.files:
        rows.extend(read_rows(path))
    if not rows:
        print("no rows", flush=True)
        return 1
    print(render(rows), end="")
    return 0
