"""Markdown tables from the results files of `python -m bench run` (the `report` command,
which adds the plots of `bench.plots`, is `bench.report_command`).

    python -m bench report results/quick.jsonl                       # markdown on stdout
    python -m bench report results/quick.jsonl --write docs/benchmark-results.md

Definitions (per instance; the report groups instances by family: S, M, L, ha, j30, j60,
vbp, alibaba):

- a plan is **valid** when it ran, and the checker found no violation;
- a valid plan is **comparable** when it places as much as the best valid plan of the
  instance (`placed`, the first stage): only comparable plans have gaps, a plan that
  leaves guests out is counted, not averaged;
- the **summarised stage** is the family's main objective (recovery, makespan,
  consolidate, balance); its value is the checker's;
- **gap to reference** = (value - published upper value) / published upper value
  (0 at a proven optimum, negative below the best known);
- **gap to bound** = |value - bound| / value, where the bound is the best proven bound of
  the stage over every run of the instance; it counts only for plans whose earlier stages
  equal those of the run that proved the bound (a lexicographic bound holds only there);
- **proven optimal**: the solver says so (status `optimal`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from bench.run import OPTIMISER_SCHEDULE, Row, run_key

FAMILY_ORDER = ("S", "M", "L", "ha", "j30", "j60", "vbp", "alibaba")
FAMILY_TITLES = {
    "S": "Failover scenarios, size S (30 guests, 3 hosts)",
    "M": "Failover scenarios, size M (1,000 guests, 100 hosts)",
    "L": "Failover scenario, size L (10,000 guests, 1,000 hosts)",
    "ha": "HA operations (failover, evacuation, rebalance)",
    "j30": "PSPLIB j30 (boot schedule = RCPSP makespan)",
    "j60": "PSPLIB j60 (boot schedule = RCPSP makespan)",
    "vbp": "Vector bin packing (placement = fewest hosts)",
    "alibaba": "Alibaba GPU trace 2023 (pods alive at an instant, fewest nodes)",
    "pack": "Placement-only packs of M and L: every guest placed, then balance or fewest hosts",
}


# --- reading -----------------------------------------------------------------------------


def latest(rows: Iterable[Row]) -> list[Row]:
    """One row per run: a later row with the same key replaces an earlier one."""
    by_key: dict[tuple[Any, ...], Row] = {}
    for row in rows:
        by_key[run_key(row)] = row
    return list(by_key.values())


def ran(row: Row) -> bool:
    """The run produced a plan the checker judged (`unknown`: the solver found none)."""
    return (
        row.get("status") not in ("error", "killed", "unknown", "interrupted")
        and "objectives" in row
    )


def valid(row: Row) -> bool:
    return ran(row) and row.get("violations") == 0


def label(row: Row) -> str:
    if row.get("label"):
        return str(row["label"])
    if row.get("schedule") == OPTIMISER_SCHEDULE:
        return str(row["solver"])
    return f"{row['solver']}@{row['schedule']}"


def _family_key(family: str) -> tuple[int, str]:
    return (FAMILY_ORDER.index(family) if family in FAMILY_ORDER else 99, family)


def _label_key(rows: Sequence[Row]) -> Any:
    kinds = {label(r): r.get("kind") for r in rows}

    def key(name: str) -> tuple[int, str]:
        rank = {"optimiser": 0, "baseline": 1, "peer": 2}.get(str(kinds.get(name)), 3)
        return (rank, name)

    return key


def _maximise(stage: str) -> bool:
    return stage == "placed"


def _stage_order(row: Row) -> list[str]:
    return [stage["name"] for stage in row.get("stages") or ()]


# --- per instance ------------------------------------------------------------------------


class InstanceView:
    """The runs of one instance and what is known about it across them."""

    def __init__(self, name: str, rows: Sequence[Row]) -> None:
        self.name = name
        self.rows = list(rows)
        first = self.rows[0]
        self.family: str = first.get("family", "?")
        self.stage: str | None = next((r["stage"] for r in self.rows if r.get("stage")), None)
        self.reference: dict[str, Any] | None = first.get("reference")
        self.guests: int | None = next(
            (r["counts"]["guests"] for r in self.rows if r.get("counts")), None
        )
        good = [r for r in self.rows if valid(r)]
        self.best_placed = max((r["objectives"]["placed"] for r in good), default=None)
        self.bound, self.bound_row = self._best_bound()

    def _best_bound(self) -> tuple[float | None, Row | None]:
        if self.stage is None:
            return None, None
        best: float | None = None
        source: Row | None = None
        for row in self.rows:
            if not ran(row) or row.get("bound") is None:
                continue
            bound = float(row["bound"])
            better = best is None or (bound < best if _maximise(self.stage) else bound > best)
            if better:
                best, source = bound, row
        return best, source

    def comparable(self, row: Row) -> bool:
        return (
            valid(row)
            and self.best_placed is not None
            and row["objectives"]["placed"] >= self.best_placed - 1e-9
        )

    def bound_gap(self, row: Row) -> float | None:
        """Gap of `row`'s stage value to the best bound, when that bound applies to it."""
        if self.stage is None or self.bound is None or self.bound_row is None:
            return None
        if not self.comparable(row):
            return None
        order = _stage_order(self.bound_row)
        earlier = order[: order.index(self.stage)] if self.stage in order else []
        for stage in earlier:
            mine = float(row["objectives"][stage])
            theirs = float(self.bound_row["objectives"][stage])
            if abs(mine - theirs) > 1e-9:
                return None
        value = float(row["objectives"][self.stage])
        difference = abs(value - self.bound)
        return 0.0 if difference < 1e-9 else difference / max(abs(value), 1e-9)

    def ref_gap(self, row: Row) -> float | None:
        if self.reference is None or not self.comparable(row):
            return None
        gap = row.get("ref_gap")
        return float(gap) if gap is not None else None

    def at_reference(self, row: Row) -> bool:
        if self.reference is None or self.stage is None or not self.comparable(row):
            return False
        value = float(row["objectives"][self.stage])
        upper = float(self.reference["upper"])
        return value >= upper - 1e-9 if _maximise(self.stage) else value <= upper + 1e-9


def compare(a: Row, b: Row, stages: Sequence[str]) -> int:
    """-1 if plan `a` is lexicographically better than `b` on `stages`, 1 if worse, 0 if
    equal (`placed` is maximised, the rest minimised)."""
    for stage in stages:
        value_a = float(a["objectives"][stage])
        value_b = float(b["objectives"][stage])
        if abs(value_a - value_b) > 1e-9:
            better = value_a > value_b if _maximise(stage) else value_a < value_b
            return -1 if better else 1
    return 0


def views(rows: Iterable[Row]) -> dict[str, list[InstanceView]]:
    """Family -> its instances (in first-seen order), over the latest row of every run."""
    by_instance: dict[str, list[Row]] = defaultdict(list)
    for row in latest(rows):
        by_instance[str(row.get("instance"))].append(row)
    families: dict[str, list[InstanceView]] = defaultdict(list)
    for name, members in by_instance.items():
        view = InstanceView(name, members)
        families[view.family].append(view)
    return dict(sorted(families.items(), key=lambda item: _family_key(item[0])))


# --- formatting --------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 0, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:,.{digits}f}{suffix}"


def _pct(value: float | None, digits: int = 1) -> str:
    return _fmt(None if value is None else 100 * value, digits, " %")


def _mean(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _max(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    lines.extend("| " + " | ".join(cells) + " |" for cells in body)
    return lines


def _rules(rows: Iterable[Row]) -> str:
    total = 0
    rules: dict[str, int] = defaultdict(int)
    for row in rows:
        if not ran(row):
            continue
        total += int(row.get("violations") or 0)
        for rule, count in (row.get("violation_rules") or {}).items():
            rules[rule] += count
    if not total:
        return "0"
    return f"{total} (" + ", ".join(f"{k} {v}" for k, v in sorted(rules.items())) + ")"


def _san_ratio(row: Row) -> float | None:
    peak, limit = row.get("san_peak"), row.get("san_limit")
    if peak is None or not limit:
        return None
    return float(peak) / float(limit)


# --- the summary tables ------------------------------------------------------------------


def solver_stats(instances: Sequence[InstanceView], name: str) -> dict[str, Any]:
    """Figures of one solver label over a family's instances."""
    pairs = [(view, row) for view in instances for row in view.rows if label(row) == name]
    rows = [row for _, row in pairs]
    comparable = [(v, r) for v, r in pairs if v.comparable(r)]
    ref_gaps = [v.ref_gap(r) for v, r in comparable]
    bound_gaps = [v.bound_gap(r) for v, r in comparable]
    return {
        "runs": len(rows),
        "failed": sum(1 for r in rows if not ran(r)),
        "valid": sum(1 for r in rows if valid(r)),
        "comparable": len(comparable),
        "optimal": sum(1 for r in rows if r.get("status") == "optimal" and valid(r)),
        "with_reference": sum(1 for v, _ in pairs if v.reference is not None),
        "at_reference": sum(1 for v, r in pairs if v.at_reference(r)),
        "ref_gap_mean": _mean(ref_gaps),
        "ref_gap_max": _max(ref_gaps),
        "bound_gap_mean": _mean(bound_gaps),
        "bound_gap_max": _max(bound_gaps),
        "bound_gaps": [g for g in bound_gaps if g is not None],
        "wall_mean": _mean(r.get("wall_s") for r in rows if ran(r)),
        "san_max": _max(_san_ratio(r) for r in rows if ran(r)),
        "violations": _rules(rows),
    }


def _labels(instances: Sequence[InstanceView]) -> list[str]:
    rows = [row for view in instances for row in view.rows]
    return sorted({label(r) for r in rows}, key=_label_key(rows))


def suite_summary(families: dict[str, list[InstanceView]], optimiser: str) -> list[str]:
    """One row per family for the optimiser."""
    body = []
    for family, instances in families.items():
        s = solver_stats(instances, optimiser)
        if not s["runs"]:
            continue
        stage = ", ".join(dict.fromkeys(v.stage for v in instances if v.stage)) or "-"
        body.append(
            [
                family,
                str(len(instances)),
                str(stage),
                f"{s['valid']}/{s['runs']}",
                f"{s['optimal']}/{s['runs']}",
                f"{s['at_reference']}/{s['with_reference']}" if s["with_reference"] else "-",
                _pct(s["ref_gap_mean"], 2),
                _pct(s["ref_gap_max"], 2),
                _pct(s["bound_gap_mean"], 1),
                _pct(s["bound_gap_max"], 1),
                _fmt(s["wall_mean"], 1),
                s["violations"],
            ]
        )
    header = [
        "suite",
        "instances",
        "stage",
        "valid plans",
        "proven optimal",
        "at published reference",
        "mean gap to reference",
        "max gap to reference",
        "mean gap to bound",
        "max gap to bound",
        "mean runtime s",
        "violations",
    ]
    return _table(header, body)


def side_by_side(families: dict[str, list[InstanceView]]) -> list[str]:
    """Rows = solvers, columns = families: mean gap to the best bound (valid / runs)."""
    all_rows = [row for instances in families.values() for v in instances for row in v.rows]
    names = sorted({label(r) for r in all_rows}, key=_label_key(all_rows))
    body = []
    for name in names:
        cells = [name]
        for instances in families.values():
            s = solver_stats(instances, name)
            if not s["runs"]:
                cells.append("")
                continue
            gap = s["ref_gap_mean"] if s["with_reference"] else s["bound_gap_mean"]
            cells.append(f"{_pct(gap, 1)} ({s['comparable']}/{s['runs']})")
        body.append(cells)
    return _table(["solver", *families.keys()], body)


def family_table(instances: Sequence[InstanceView]) -> list[str]:
    """Every solver of one family side by side."""
    body = []
    has_reference = any(v.reference for v in instances)
    has_san = any(r.get("san_limit") for v in instances for r in v.rows)
    for name in _labels(instances):
        s = solver_stats(instances, name)
        cells = [
            name,
            f"{s['runs']}" + (f" ({s['failed']} failed)" if s["failed"] else ""),
            str(s["valid"]),
            str(s["comparable"]),
            str(s["optimal"]),
        ]
        if has_reference:
            cells += [
                f"{s['at_reference']}/{s['with_reference']}",
                _pct(s["ref_gap_mean"], 2),
                _pct(s["ref_gap_max"], 2),
            ]
        cells += [
            _pct(s["bound_gap_mean"], 1),
            _pct(s["bound_gap_max"], 1),
            _fmt(s["wall_mean"], 2),
        ]
        if has_san:
            cells.append(_fmt(s["san_max"], 2))
        cells.append(s["violations"])
        body.append(cells)
    header = ["solver", "runs", "valid", "all placed", "proven optimal"]
    if has_reference:
        header += ["at reference", "mean gap to ref", "max gap to ref"]
    header += ["mean gap to bound", "max gap to bound", "mean runtime s"]
    if has_san:
        header.append("peak SAN / limit (max)")
    header.append("violations (rules)")
    return _table(header, body)


def instance_table(
    instances: Sequence[InstanceView], optimiser: str
) -> tuple[list[str], list[str]]:
    """Per instance: the optimiser against the reference, the bound and the best other
    valid plan (lexicographically, over the instance's stages). Also the instances where
    the optimiser is worse than another valid plan, failed or broke a rule."""
    body = []
    worse: list[str] = []
    for view in instances:
        mine = [r for r in view.rows if label(r) == optimiser]
        others = [r for r in view.rows if label(r) != optimiser and valid(r)]
        for row in mine:
            stage = view.stage or "-"
            reference = view.reference
            ref_text = "-"
            if reference is not None:
                lower, upper = reference["lower"], reference["upper"]
                ref_text = _fmt(upper) if lower == upper else f"{_fmt(lower)}..{_fmt(upper)}"
            stages = _stage_order(row) or ["placed", stage]
            best = None
            for other in others:
                if best is None or compare(other, best, stages) < 0:
                    best = other
            if not ran(row):
                why = row.get("error") or "no plan"
                worse.append(f"{view.name} ({row.get('status')}: {why})")
                verdict = str(row.get("status"))
            elif row["violations"]:
                worse.append(f"{view.name} ({row['violations']} violation(s))")
                verdict = f"**{row['violations']} violation(s)**"
            elif best is None:
                verdict = "no other valid plan"
            else:
                order = compare(row, best, stages)
                verdict = {-1: "better", 0: "equal", 1: "**worse**"}[order]
                if order > 0:
                    worse.append(f"{view.name} (behind {label(best)})")
            value = row["objectives"][stage] if ran(row) and stage in row["objectives"] else None
            best_value = best["objectives"][stage] if best is not None else None
            digits = 4 if stage == "balance" else 0
            body.append(
                [
                    view.name,
                    _fmt(view.guests),
                    ref_text,
                    _fmt(view.bound, digits),
                    _fmt(value, digits),
                    _pct(view.ref_gap(row), 2) if reference else "-",
                    _pct(view.bound_gap(row), 1),
                    str(row.get("status")),
                    _fmt(row.get("wall_s"), 1),
                    (f"{_fmt(best_value, digits)} ({label(best)})" if best is not None else "-"),
                    verdict,
                ]
            )
    header = [
        "instance",
        "guests",
        "reference",
        "best bound",
        f"{optimiser}",
        "gap to ref",
        "gap to bound",
        "status",
        "runtime s",
        "best other valid plan",
        "lexicographic verdict",
    ]
    return _table(header, body), worse


def ha_table(instances: Sequence[InstanceView]) -> list[str]:
    """The HA figures of every solver on every HA instance."""
    body = []
    for view in instances:
        key = _label_key(view.rows)
        for row in sorted(view.rows, key=lambda r: key(label(r))):
            if not ran(row):
                body.append([view.name, label(row), str(row.get("status")), "", "", "", "", ""])
                continue
            ha = row.get("ha") or {}
            san = _san_ratio(row)
            body.append(
                [
                    view.name,
                    label(row),
                    f"{ha.get('recovered', '-')}/{ha.get('affected', '-')}",
                    _fmt(ha.get("all_ready_s")),
                    f"{_fmt(row.get('san_peak'))} / {_fmt(row.get('san_limit'))}"
                    + (f" ({_fmt(san, 2)})" if san is not None else ""),
                    str(ha.get("migrations", "-")),
                    _fmt(ha.get("imbalance"), 4),
                    _rules([row]),
                ]
            )
    header = [
        "scenario",
        "solver",
        "guests recovered",
        "all recovered ready s",
        "peak SAN / limit",
        "migrations",
        "final imbalance",
        "violations",
    ]
    return _table(header, body)


def rebalance_verdict(instances: Sequence[InstanceView], optimiser: str) -> list[str]:
    """The optimiser against `proxmox-rebalance` on the rebalances held to Proxmox's own
    migration count (`rebalance-returned-*`): lower, equal or higher final imbalance, and
    whether it used more migrations."""
    lower = equal = higher = more_moves = 0
    gains: list[float] = []
    for view in instances:
        if not view.name.startswith("rebalance-returned-"):
            continue
        by_solver = {label(r).split("@")[0]: r for r in view.rows if ran(r)}
        ours = by_solver.get(optimiser.split("@")[0])
        theirs = by_solver.get("proxmox-rebalance")
        if ours is None or theirs is None:
            continue
        a = (ours.get("ha") or {}).get("imbalance")
        b = (theirs.get("ha") or {}).get("imbalance")
        if a is None or b is None:
            continue
        if a < b - 1e-9:
            lower += 1
            gains.append((b - a) / b if b else 0.0)
        elif a > b + 1e-9:
            higher += 1
        else:
            equal += 1
        moves_a = (ours.get("ha") or {}).get("migrations") or 0
        moves_b = (theirs.get("ha") or {}).get("migrations") or 0
        more_moves += moves_a > moves_b
    total = lower + equal + higher
    if not total:
        return []
    text = (
        f"At Proxmox's own migration count (the `rebalance-returned-*` instances), {optimiser}'s "
        f"final imbalance was lower than proxmox-rebalance's on {lower} of {total}, equal on "
        f"{equal}, higher on {higher}; it used more migrations on {more_moves}."
    )
    if gains:
        text += f" Where lower, by {_pct(_mean(gains))} on average."
    return [text]


# --- the whole report --------------------------------------------------------------------


def _environment(rows: Sequence[Row]) -> list[str]:
    envs = [r["env"] for r in rows if r.get("env")]
    if not envs:
        return []
    env = envs[-1]
    commits = sorted({str(e.get("git_commit"))[:7] for e in envs})
    dirty = any(e.get("git_dirty") for e in envs)
    packages = env.get("packages") or {}
    limits = sorted({r.get("time_limit_s") for r in rows}, key=str)
    jobs = sorted({r.get("jobs") for r in rows if r.get("jobs")}, key=str)
    workers = sorted({r.get("workers") for r in rows if r.get("workers")}, key=str)
    seeds = sorted({r.get("seed", 0) for r in rows}, key=str)
    stamps = sorted(r["finished_at"] for r in rows if r.get("finished_at"))
    return [
        f"- Machine: {env.get('cpu_model')} ({env.get('cpu_count')} cores), Python "
        f"{env.get('python')}, placement {packages.get('placement')}, ortools "
        f"{packages.get('ortools')}, numpy {packages.get('numpy')}.",
        f"- Code: commit {', '.join(commits)}"
        + (" (placement/ had uncommitted changes)" if dirty else "")
        + ".",
        f"- Runs: {len(rows)}; time limit {', '.join(map(str, limits))} s; seeds "
        f"{', '.join(map(str, seeds))}; {', '.join(map(str, jobs)) or '1'} parallel job(s), "
        f"{', '.join(map(str, workers))} CP-SAT worker(s) each"
        + (f"; finished {stamps[0]} to {stamps[-1]}." if stamps else "."),
    ]


def optimiser_label(rows: Sequence[Row]) -> str:
    names = sorted({label(r) for r in rows if r.get("kind") == "optimiser"})
    return names[0] if names else "cpsat"


def render(rows: Iterable[Row], *, plots: Sequence[tuple[str, str]] = (), note: str = "") -> str:
    """The markdown report; `plots` are (caption, relative path) pairs to show."""
    rows = latest(rows)
    families = views(rows)
    optimiser = optimiser_label(rows)
    lines = ["## Environment", ""]
    lines += _environment(rows)
    if note:
        lines += [f"- Note: {note}"]
    lines += ["", f"## The optimiser ({optimiser}) per suite", ""]
    lines += suite_summary(families, optimiser)
    lines += [
        "",
        "## Every solver side by side",
        "",
        "Mean gap to the published reference where there is one (j30, j60, vbp), "
        "otherwise to the best proven bound; in brackets, the runs whose plan is valid and "
        "places as much as the best valid plan (only those have a gap), of all runs.",
        "",
    ]
    lines += side_by_side(families)
    all_worse: list[str] = []
    for family, instances in families.items():
        title = FAMILY_TITLES.get(family, family)
        lines += ["", f"## {family}: {title}", ""]
        lines += family_table(instances)
        if family == "ha":
            lines += ["", "HA figures:", ""]
            lines += ha_table(instances)
            verdict = rebalance_verdict(instances, optimiser)
            if verdict:
                lines += ["", *verdict]
        table, worse = instance_table(instances, optimiser)
        if len(table) > 2:
            lines += ["", f"{optimiser} per instance:", ""]
            lines += table
        all_worse += worse
    lines += ["", "## Verdict", ""]
    if all_worse:
        lines.append(
            f"{optimiser} was worse than another valid plan, failed, or broke a rule on "
            f"{len(all_worse)} instance(s): " + "; ".join(all_worse) + "."
        )
    else:
        lines.append(
            f"{optimiser} was never worse than any other valid plan (lexicographically over "
            "each instance's stages) and broke no rule."
        )
    if plots:
        lines += ["", "## Plots", ""]
        for caption, path in plots:
            lines += [f"![{caption}]({path})", ""]
    return "\n".join(lines).rstrip() + "\n"
