"""Replay Pacemaker's scheduler regression tests against our re-creation.

For every CTS test (`NAME.xml`, the CIB, beside `NAME.summary`, what `crm_simulate`
printed for it) whose `placement-strategy` is `balanced`, `utilization` or `minimal`
(with `--all`, `default` too), import the CIB, solve it
with `pacemaker-<strategy>`, and compare where each resource ends up with the "Revised
Cluster Status" of the summary, resource by resource.

What is compared: every primitive the summary lists outside clones and bundles, except
fencing devices (`stonith:` class), which are not guests. A resource Pacemaker lists
that our import does not hold is a disagreement ("not imported"), and so is every
resource of a CIB the importer refuses.

    python -m bench pacemaker-cts [FOLDER] [--all] [--verbose]
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import attrs

from placement.adapters import import_pacemaker
from placement.errors import InvalidInputError
from placement.solvers import SolveOptions, get_solver
from placement.solvers.peers.pacemaker import pacemaker_placement

STRATEGIES = ("balanced", "utilization", "minimal")
# `crm_simulate` lists a primitive as `* NAME\t(class:provider:type):\t STATE [NODE]`.
_PRIMITIVE = re.compile(r"^ *\* (?P<name>\S+)\t\((?P<agent>[^)]*)\):\s+(?P<state>.*)$")
_CONTAINER = re.compile(r"^ *\* (?P<kind>Clone Set|Container bundle set|Resource Group):")
_ON_NODE = ("Started", "FAILED", "Promoted", "Unpromoted", "Migrating")


def revised_placement(summary: str) -> dict[str, str | None]:
    """Resource -> the node it runs on after the transition (None: stopped), from the
    "Revised Cluster Status" of a `crm_simulate` summary. Members of clones and bundles
    and fencing devices are left out; group members are listed by their own id."""
    lines = summary.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("Revised Cluster Status"))
    except StopIteration:
        raise ValueError("no 'Revised Cluster Status' section") from None
    placement: dict[str, str | None] = {}
    skip_below: int | None = None  # indent of a clone or bundle whose lines we skip
    for line in lines[start + 1 :]:
        indent = len(line) - len(line.lstrip(" "))
        if skip_below is not None:
            if indent > skip_below:
                continue
            skip_below = None
        container = _CONTAINER.match(line)
        if container is not None:
            if container["kind"] != "Resource Group":
                skip_below = indent
            continue
        match = _PRIMITIVE.match(line)
        if match is None or match["agent"].startswith("stonith:"):
            continue
        words = match["state"].split()
        node = words[1] if len(words) > 1 and words[0] in _ON_NODE else None
        if node == "[":  # active on several nodes: `Started [ node1 node2 ]`, the first
            node = words[2] if len(words) > 2 and words[2] != "]" else None
        placement[match["name"]] = node
    return placement


@attrs.frozen
class Case:
    """One CTS test replayed: the resources compared and the ones that disagree
    (resource, our node or None, Pacemaker's node or None); `refused` holds the
    importer's reason when it refused the CIB."""

    name: str
    strategy: str
    compared: int
    disagreements: tuple[tuple[str, str | None, str | None], ...]
    refused: str | None = None
    # Where the plan (after timing the moves) still differs from Pacemaker although the
    # decision agreed: a guest that cannot be live-migrated (`movable: false`) is
    # stopped where Pacemaker would stop it and start it elsewhere.
    plan_disagreements: tuple[tuple[str, str | None, str | None], ...] = ()

    @property
    def agrees(self) -> bool:
        return self.refused is None and not self.disagreements


def strategy_of(cib: Path) -> str:
    """The CIB's `placement-strategy` (default when unset)."""
    match = re.search(r'name="placement-strategy"\s+value="([^"]+)"', cib.read_text())
    return match.group(1) if match else "default"


def replay(cib: Path, summary: Path) -> Case:
    """Import `cib`, solve it as Pacemaker's strategy would, compare with `summary`."""
    strategy = strategy_of(cib)
    expected = revised_placement(summary.read_text())
    try:
        problem = import_pacemaker(cib).problem
    except InvalidInputError as error:
        reason = "; ".join(f"{item.where}: {item.message}" for item in error.errors[:2])
        return Case(cib.stem, strategy, len(expected), (), refused=reason)
    decided = pacemaker_placement(problem, strategy).hosts
    plan = get_solver(f"pacemaker-{strategy}").function(problem, SolveOptions(time_limit_s=1))
    planned = {a.guest: a.host for a in plan.assignments}
    disagreements = []
    plan_disagreements = []
    for resource, node in sorted(expected.items()):
        if resource not in planned:
            disagreements.append((resource, "(not imported)", node))
        elif decided.get(resource) != node:
            disagreements.append((resource, decided.get(resource), node))
        elif planned[resource] != node:
            plan_disagreements.append((resource, planned[resource], node))
    return Case(
        cib.stem, strategy, len(expected), tuple(disagreements), None, tuple(plan_disagreements)
    )


def cases(folder: Path, strategies: Iterable[str] = STRATEGIES) -> list[Path]:
    """The CIBs in `folder` (or its `xml/`) with a summary and one of `strategies`."""
    xml = folder / "xml" if (folder / "xml").is_dir() else folder
    summaries = folder / "summary" if (folder / "summary").is_dir() else folder
    wanted = set(strategies)
    return [
        cib
        for cib in sorted(xml.glob("*.xml"))
        if (summaries / f"{cib.stem}.summary").is_file() and strategy_of(cib) in wanted
    ]


def summary_of(cib: Path) -> Path:
    """Where the summary of `cib` is: beside it, or in `../summary/`."""
    beside = cib.with_suffix(".summary")
    return beside if beside.is_file() else cib.parent.parent / "summary" / f"{cib.stem}.summary"


def report(results: list[Case], verbose: bool = False) -> str:
    """Lines for a terminal: agreement per test and overall, then the disagreements."""
    agreed = sum(case.agrees for case in results)
    decisions = sum(case.compared for case in results if case.refused is None)
    matched = sum(
        case.compared - len(case.disagreements) for case in results if case.refused is None
    )
    total = sum(case.compared for case in results)
    in_plans = sum(len(case.plan_disagreements) for case in results)
    lines = [
        f"tests agreeing: {agreed}/{len(results)}; resources placed as Pacemaker does: "
        f"{matched}/{total} ({total - decisions} in refused CIBs); of those, the plan "
        f"stops {in_plans} that cannot be live-migrated where Pacemaker restarts them elsewhere"
    ]
    for case in results:
        if case.plan_disagreements:
            moved = ", ".join(resource for resource, _, _ in case.plan_disagreements)
            lines.append(f"  {case.name}: the plan leaves stopped: {moved}")
        if case.agrees and not verbose:
            continue
        head = f"{case.name} [{case.strategy}]"
        if case.refused is not None:
            lines.append(f"  {head}: refused: {case.refused}")
            continue
        if case.agrees:
            lines.append(f"  {head}: agrees ({case.compared} resources)")
            continue
        wrong = ", ".join(
            f"{resource} ours {ours or 'stopped'} theirs {theirs or 'stopped'}"
            for resource, ours, theirs in case.disagreements
        )
        lines.append(f"  {head}: {len(case.disagreements)}/{case.compared} differ: {wrong}")
    return "\n".join(lines)


def main(folder: Path, verbose: bool = False, every_strategy: bool = False) -> int:
    """Replay the suite in `folder` and print the report; 2 when it holds no test.
    `every_strategy`: the tests with the `default` strategy too (`pacemaker-default`)."""
    found = cases(folder, (*STRATEGIES, "default") if every_strategy else STRATEGIES)
    if not found:
        print(f"{folder}: no CTS tests with a summary and a strategy")
        return 2
    results = [replay(cib, summary_of(cib)) for cib in found]
    print(report(results, verbose))
    return 0
