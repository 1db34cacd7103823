"""Write the notebooks of bench/notebooks/ (run after changing them here):

    python -m bench.notebooks.build

- `tour.ipynb`: load an example, solve it with baselines and the optimiser, compare the
  plans, plot the Gantt chart and the SAN load.
- `simulation.ipynb`: the single-host restart's plan run through the simulator under
  five policies, with noise, then thrashing and fencing (`BENCH_SIM_RUNS`, default 40).
- `suite-NAME.ipynb`, one per suite: read a results file of `python -m bench run` and show
  the suite's tables and plots.

The notebooks find the clone from their own folder, so they run from a clone without
installing. Environment variables: `BENCH_RESULTS` (the results file; default
`results/SUITE.jsonl` in the clone) and `BENCH_TIME_LIMIT` (the tour's CP-SAT seconds,
default 5). tests/test_notebooks.py executes them all headless on a tiny suite.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

# Suite notebooks: suite -> (title, the families its rows belong to).
SUITE_NOTEBOOKS = {
    "quick": ("The quick suite: a slice of every family", ()),
    "s": ("Failover scenarios, size S", ("S",)),
    "m": ("Failover scenarios, size M", ("M",)),
    "l": ("Failover scenario, size L", ("L",)),
    "ha": ("HA operations: failover, evacuation, rebalance", ("ha",)),
    "j30": ("PSPLIB j30: the boot schedule against published optima", ("j30",)),
    "j60": ("PSPLIB j60: the boot schedule against published bounds", ("j60",)),
    "vbp": ("Vector bin packing: the placement against published optima", ("vbp",)),
    "alibaba": ("Alibaba GPU trace 2023: packing the pods alive at an instant", ("alibaba",)),
}

SETUP = """\
import os
import sys
from pathlib import Path

# The clone: the first folder upwards that holds bench/ and placement/.
ROOT = next(
    p
    for p in [Path.cwd(), *Path.cwd().parents]
    if (p / "bench").is_dir() and (p / "placement").is_dir()
)
sys.path.insert(0, str(ROOT))"""


def tour() -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell(
            "# A tour: one failover, three ways\n\n"
            "Load an example cluster where one of three hosts has failed, plan the restart "
            "with two baselines and with the optimiser, let the independent checker judge "
            "each plan, and look at when each guest boots and what that does to the SAN."
        ),
        new_code_cell(SETUP),
        new_code_cell(
            "import json\n\n"
            "from placement import SolveOptions, check, load_problem, solve\n\n"
            'problem = load_problem(json.loads((ROOT / "examples" / '
            '"three-node-failover.json").read_text()))\n'
            "failed = [h.name for h in problem.hosts if not h.online]\n"
            'print(len(problem.hosts), "hosts,", len(problem.guests), "guests; failed:", failed)\n'
            'print("SAN limit:", dict(problem.boot_pools))'
        ),
        new_markdown_cell(
            "Three plans: first fit with the list schedule (a valid greedy plan), Proxmox's "
            "static scheduler restarting everything at once (what the real tool does), and "
            "the CP-SAT optimiser, which decides hosts and start times together."
        ),
        new_code_cell(
            'time_limit_s = float(os.environ.get("BENCH_TIME_LIMIT", "5"))\n'
            "plans = {\n"
            '    "first-fit@list": solve(problem, "first-fit", SolveOptions(schedule="list")),\n'
            '    "proxmox-static@all-at-once": solve(\n'
            '        problem, "proxmox-static", SolveOptions(schedule="all-at-once")\n'
            "    ),\n"
            '    "cpsat": solve(problem, "cpsat", SolveOptions(time_limit_s=time_limit_s)),\n'
            "}\n"
            "reports = {name: check(problem, plan) for name, plan in plans.items()}"
        ),
        new_code_cell(
            "from IPython.display import Markdown, display\n\n"
            "lines = [\n"
            '    "| plan | violations | placed | recovery | all ready s | peak SAN / limit |",\n'
            '    "|---|---:|---:|---:|---:|---:|",\n'
            "]\n"
            "for name, report in reports.items():\n"
            '    objectives = report.metrics["objectives"]\n'
            '    san = report.metrics["pools"]["san_iops"]\n'
            "    lines.append(\n"
            "        f\"| {name} | {len(report.violations)} | {report.metrics['placed']} \"\n"
            "        f\"| {objectives['recovery']:,.0f} | {objectives['makespan']:,.0f} \"\n"
            "        f\"| {san['peak']} / {san['limit']} |\"\n"
            "    )\n"
            'display(Markdown("\\n".join(lines)))\n'
            'for violation in reports["proxmox-static@all-at-once"].violations[:3]:\n'
            '    print(violation.rule, "-", violation.message)'
        ),
        new_markdown_cell(
            "The optimiser's stages, each with the value reached, the proven bound and the gap:"
        ),
        new_code_cell(
            'for stage in plans["cpsat"].stages:\n'
            '    print(f"{stage.name:12} value {stage.value:>10,.4g}  bound {stage.bound}  '
            'gap {stage.gap}")'
        ),
        new_markdown_cell(
            "## What the numbers say\n\n"
            "Placing comes first in the objective order, recovery second: a plan that places "
            "one more guest also adds that guest's ready time to its `recovery`, so recovery "
            "is compared on the guests both plans restart. The text below is written from "
            "this run's numbers."
        ),
        new_code_cell(TOUR_VERDICT),
        new_markdown_cell(
            "## The plans on the same axes\n\n"
            "`placement.plot`'s functions draw into the axes they are given (`ax=`): guests up "
            "over time and the SAN load of the three plans on one time axis, each with the "
            "checker's verdict in its legend entry, the load above the limit in red; then "
            "the optimiser's Gantt chart per host. `placement plot PROBLEM PLAN PLAN ...` "
            "draws the same from the command line."
        ),
        new_code_cell(TOUR_COMPARE),
        new_code_cell(TOUR_GANTT),
        new_markdown_cell(
            "The benchmark (`python -m bench run --suite quick`) measures the same on many "
            "instances."
        ),
    ]
    return new_notebook(cells=cells, metadata=_metadata())


def suite_notebook(suite: str, title: str, families: tuple[str, ...]) -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell(
            f"# {title}\n\n"
            f"Reads a results file of `python -m bench run --suite {suite}` (default "
            f"`results/{suite}.jsonl`, or the file named by `BENCH_RESULTS`) and shows the "
            "report's tables and plots. Column definitions: docs/benchmarks.md."
        ),
        new_code_cell(SETUP),
        new_code_cell(
            "from bench.run import read_rows\n\n"
            f'path = Path(os.environ.get("BENCH_RESULTS", ROOT / "results" / "{suite}.jsonl"))\n'
            "rows = read_rows(path)\n"
            f"families = {_tuple(families)}\n"
            'mine = [r for r in rows if not families or r.get("family") in families]\n'
            "if not mine:\n"
            '    print(f"no rows of {families} in {path}; showing every row of it")\n'
            "    mine = rows\n"
            'print(len(mine), "runs of", len({r["instance"] for r in mine}), "instances from", '
            "path)\n"
            'assert mine, f"no results in {path}: run python -m bench run --suite '
            f'{suite}"'
        ),
        new_code_cell(
            "from IPython.display import Markdown, display\n\n"
            "from bench.report import render\n\n"
            "display(Markdown(render(mine)))"
        ),
        new_markdown_cell("## Plots"),
        new_code_cell(
            "import matplotlib.pyplot as plt\n\n"
            "from bench.plots import gap_figure, runtime_figure, san_figure\n\n"
            "gap_figure(mine)\n"
            "plt.show()"
        ),
        new_code_cell("runtime_figure(mine)\nplt.show()"),
        new_code_cell("san_figure(mine)\nplt.show()"),
    ]
    if "ha" in families:
        cells.append(
            new_code_cell(
                "from bench.report import ha_table, views\n\n"
                'display(Markdown("\\n".join(ha_table(views(mine).get("ha", [])))))'
            )
        )
    return new_notebook(cells=cells, metadata=_metadata())


def _tuple(names: tuple[str, ...]) -> str:
    """`names` as ruff formats a tuple literal (double quotes)."""
    if not names:
        return "()"
    return "(" + ", ".join(f'"{name}"' for name in names) + ",)"


def _metadata() -> dict[str, object]:
    return {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }


# The tour's code cells that are longer than a line or two, as ruff formats them.
TOUR_VERDICT = """\
optimiser, greedy, storm = "cpsat", "first-fit@list", "proxmox-static@all-at-once"
started = {
    name: {a.guest: a for a in plan.assignments if a.action.value == "start"}
    for name, plan in plans.items()
}
both = sorted(set(started[optimiser]) & set(started[greedy]))


def weight(name):
    return reports[name].metrics["objectives"]["placed"]


def recovery_on(name, guests):
    return sum((problem.guest(g).priority + 1) * started[name][g].ready_s for g in guests)


def placed(name):
    return reports[name].metrics["placed"]


if weight(optimiser) > weight(greedy):
    verdict = "more"
elif weight(optimiser) == weight(greedy):
    verdict = "as much"
else:
    verdict = "less"
only = sorted(set(started[optimiser]) - set(started[greedy]))
instead = sorted(set(started[greedy]) - set(started[optimiser]))
text = [
    f"**Placed first.** The optimiser places {placed(optimiser)} of "
    f"{len(problem.guests)} guests (priority weight {weight(optimiser):.0f}), first fit "
    f"{placed(greedy)} ({weight(greedy):.0f}): {verdict} priority weight placed."
    + (f" Only the optimiser restarts {', '.join(only)}." if only else "")
    + (f" Only first fit restarts {', '.join(instead)}." if instead else ""),
]
mine, theirs = recovery_on(optimiser, both), recovery_on(greedy, both)
if mine < theirs:
    how = "lower: the important guests are up sooner"
elif mine == theirs:
    how = "the same: here the list schedule is already as fast"
else:
    how = "higher"
stage = plans[optimiser].stage("recovery")
proof = ""
if stage is not None and stage.gap == 0:
    proof = " The optimiser proves its recovery optimal for what it places (gap 0)."
elif stage is not None and stage.gap is not None:
    proof = f" The optimiser's recovery is within {stage.gap:.1%} of its proven bound."
text.append(
    f"**Then recovery.** On the {len(both)} guests both plans restart, the "
    f"priority-weighted recovery is {mine:,.0f} for the optimiser and {theirs:,.0f} "
    f"for first fit: {how}. In all (each plan's own guests) it is "
    f"{reports[optimiser].metrics['objectives']['recovery']:,.0f} against "
    f"{reports[greedy].metrics['objectives']['recovery']:,.0f}.{proof}"
)
san = reports[storm].metrics["pools"]["san_iops"]
text.append(
    f"**Everything at once** peaks the SAN at {san['peak']:,} against a limit of "
    f"{san['limit']:,} ({san['peak'] / san['limit']:.1f}x) and breaks "
    f"{len(reports[storm].violations)} rules; the checker rejects it."
)
display(Markdown("\\n\\n".join(text)))"""

TOUR_COMPARE = """\
import matplotlib.pyplot as plt

from placement.plot import compare_pools, plot_gantt, plot_ready

names, chosen = list(plans), list(plans.values())
figure, (ready, san) = plt.subplots(2, 1, figsize=(11, 7), sharex=True, layout="constrained")
plot_ready(problem, chosen, ax=ready, labels=names)
compare_pools(problem, chosen, ax=san, labels=names)
plt.show()"""

TOUR_GANTT = """\
figure, axes = plt.subplots(figsize=(11, 4), layout="constrained")
plot_gantt(problem, plans[optimiser], ax=axes)
plt.show()"""

# The simulation notebook's code cells, as ruff formats them.
SIMULATION_PLAN = """\
from placement import SolveOptions, check, solve
from placement.codec import load_problem_file
from placement.simulate import simulate

problem = load_problem_file(ROOT / "examples" / "single-host-restart.json")
time_limit_s = float(os.environ.get("BENCH_TIME_LIMIT", "5"))
runs = int(os.environ.get("BENCH_SIM_RUNS", "40"))
plan = solve(problem, "cpsat", SolveOptions(time_limit_s=time_limit_s))
print(
    "plan valid:",
    check(problem, plan).ok,
    "| planned recovery:",
    check(problem, plan).metrics["objectives"]["recovery"],
)"""

SIMULATION_TABLE = """\
from IPython.display import Markdown, display

policies = ["open-loop", "readiness-gated", "readiness-backfill", "serial:45", "all-at-once"]


def table(**physics):
    lines = [
        "| policy | recovery p50 | p95 | peak SAN | fenced runs | never ready |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    results = {}
    for name in policies:
        result = simulate(problem, plan, name, runs=runs, sigma=0.3, trace=True, **physics)
        results[name] = result
        s = result.summary
        lines.append(
            f"| {name} | {s.recovery.p50:,.0f} | {s.recovery.p95:,.0f} "
            f"| {s.peak_pool_ratio['san_iops']:.2f}x "
            f"| {s.runs_with_fencing}/{s.runs} "
            f"| {s.runs_with_never_ready}/{s.runs} |"
        )
    display(Markdown("\\n".join(lines)))
    return results


shared = table()"""

SIMULATION_PICTURE = """\
from IPython.display import Image

from placement.plot import render_comparison

Image(render_comparison(problem, [(plan, r) for r in shared.values()]))"""


def simulation() -> nbformat.NotebookNode:
    """The single-host restart run through the simulator, every way side by side."""
    cells = [
        new_markdown_cell(
            "# Recovery as it happens: one plan, five ways to run it\n\n"
            "The optimiser plans the restart of 30 guests of a failed host on its one "
            "survivor under a SAN limit. A plan is a forecast: here it runs through the "
            "simulator (docs/simulation.md) with boots 30 % noisy, the same draws for every "
            "policy, first with an SAN that shares its capacity, then with one that thrashes "
            "and hosts that are fenced when held over their limits."
        ),
        new_code_cell(SETUP),
        new_code_cell(SIMULATION_PLAN),
        new_code_cell(SIMULATION_TABLE),
        new_markdown_cell(
            "Each policy's SAN demand over the runs (median, 5-95 % band, min-max), on one "
            "time and demand scale; the black line is the plan's own schedule, drawn for the "
            "two policies that follow it."
        ),
        new_code_cell(SIMULATION_PICTURE),
        new_markdown_cell(
            "The same draws with a SAN that thrashes past saturation and hosts fenced after "
            "60 s above 1.5 times a limit: the storms lose the host and every guest on it."
        ),
        new_code_cell('harsh = table(contention="thrash", fencing=True)'),
    ]
    return new_notebook(cells=cells, metadata=_metadata())


def notebooks() -> dict[str, nbformat.NotebookNode]:
    """File name -> notebook, every notebook of bench/notebooks/."""
    result = {"tour.ipynb": tour(), "simulation.ipynb": simulation()}
    for suite, (title, families) in SUITE_NOTEBOOKS.items():
        result[f"suite-{suite}.ipynb"] = suite_notebook(suite, title, families)
    return result


def main() -> int:
    for name, notebook in notebooks().items():
        nbformat.validate(notebook)
        nbformat.write(notebook, HERE / name)
        print(f"wrote {HERE / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
