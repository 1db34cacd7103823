"""`python -m bench run|report|suites`: the benchmark from a clone; see docs/benchmarks.md.

python -m bench run --suite quick --jobs 2 --out results/quick.jsonl
python -m bench report results/quick.jsonl --write docs/benchmark-results.md
python -m bench suites
python -m bench sim --runs 40 --out results/sim.jsonl
python -m bench sim-report results/sim.jsonl --write docs/simulation-results.md
python -m bench sim-speed
python -m bench survey throughput|admission --out results/survey.jsonl
python -m bench pacemaker-cts ../shared/peers/pacemaker-cts
python -m bench wall --limits 3,10 [--busy] [--only L-0]
"""

from __future__ import annotations

import argparse
import sys


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run", help="run solvers on a suite's instances, one JSON line per run"
    )
    run.add_argument("--suite", default="quick", help="suite name (python -m bench suites)")
    run.add_argument(
        "--solvers",
        default=None,
        help="comma-separated NAME or NAME@SCHEDULE (e.g. best-fit@serial:45); default: "
        "cpsat, every baseline with the list schedule and every peer all at once",
    )
    run.add_argument("--time-limit", type=float, default=10.0, help="seconds per solve (10)")
    run.add_argument("--seeds", type=int, default=1, help="solver seeds per instance (1)")
    run.add_argument("--first-seed", type=int, default=0, help="the first seed (0)")
    run.add_argument("--jobs", type=int, default=1, help="runs in parallel processes (1)")
    run.add_argument(
        "--workers",
        type=int,
        default=None,
        help="CP-SAT threads per run (default: CPU cores divided by --jobs)",
    )
    run.add_argument("--match", action="append", default=[], help="instance name glob")
    run.add_argument("--limit", type=int, default=None, help="only the first N instances")
    run.add_argument("--out", default=None, help="results file, appended to (results/SUITE.jsonl)")
    run.add_argument(
        "--rerun", action="store_true", help="repeat runs already in --out (default: skip them)"
    )
    run.add_argument(
        "--memory-limit-gib",
        type=float,
        default=None,
        help="kill a run whose resident memory exceeds this (GiB)",
    )
    run.add_argument("--in-process", action="store_true", help="no child processes (no --jobs)")
    run.add_argument(
        "--scheduler",
        default=None,
        metavar="tcp://HOST:PORT",
        help="run on this Dask scheduler's workers instead of local children "
        "(pip install 'placement[dask]'; each worker needs this clone importable)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    run.add_argument("--verbose", action="store_true", help="show the library's warnings too")

    report = commands.add_parser("report", help="markdown tables and plots from results files")
    report.add_argument("files", nargs="+", help="results files written by `run`")
    report.add_argument(
        "--write",
        default=None,
        metavar="MARKDOWN",
        help="write the report to this file and its plots to img/ beside it "
        "(default: markdown on stdout, no plots)",
    )
    report.add_argument("--plots", default=None, help="plot folder (default: img/ beside --write)")
    report.add_argument("--note", default="", help="a line for the environment section")

    commands.add_parser("suites", help="list the suites")

    sim = commands.add_parser(
        "sim", help="the sim suite: every strategy through the simulator (bench/sim.py)"
    )
    sim.add_argument("--runs", type=int, default=40, help="Monte Carlo runs with noise (40)")
    sim.add_argument("--time-limit", type=float, default=10.0, help="seconds per solve (10)")
    sim.add_argument("--seed", type=int, default=0, help="seed of the draws (0)")
    sim.add_argument("--instance", action="append", default=[], help="only these instances")
    sim.add_argument("--out", default="results/sim.jsonl", help="results file, appended to")
    sim.add_argument(
        "--physics",
        action="append",
        default=[],
        help="only these physics (exact, noise, noise+thrash, noise+thrash+fence, "
        "noise+second-failure)",
    )

    sim_speed = commands.add_parser(
        "sim-speed", help="time 1,000 simulated runs of a 583-guest recovery per policy"
    )
    sim_speed.add_argument("--runs", type=int, default=1000, help="runs per timing (1000)")

    sim_report = commands.add_parser("sim-report", help="markdown tables of a sim results file")
    sim_report.add_argument("file", help="results file written by `sim`")
    sim_report.add_argument("--write", default=None, metavar="MARKDOWN", help="write it here")
    surveys = commands.add_parser(
        "survey", help="failure-survey benchmark: throughput per executor, admission policies"
    )
    surveys.add_argument("what", choices=("throughput", "admission"))
    surveys.add_argument("--sizes", default="M,L", help="throughput: cluster sizes (M,L)")
    surveys.add_argument("--kinds", default="hosts,domains", help="throughput: scenario kinds")
    surveys.add_argument(
        "--executors", default="local-1,local-2,dask-2", help="throughput: local-N, dask-N"
    )
    surveys.add_argument("--limit", type=int, default=None, help="throughput: first N scenarios")
    surveys.add_argument("--size", default="M", help="admission: the cluster size (M)")
    surveys.add_argument("--count", type=int, default=300, help="admission: guests offered")
    surveys.add_argument("--jobs", type=int, default=2, help="admission: survey workers")
    surveys.add_argument("--time-limit", type=float, default=2.0, help="seconds per scenario")
    surveys.add_argument("--out", default="results/survey.jsonl", help="rows appended here")
    surveys.add_argument("--plots", default=None, help="admission: draw each survey here")
    wall = commands.add_parser(
        "wall", help="wall time of cpsat against its limit, per suite size, in both modes"
    )
    wall.add_argument("--limits", default="3,10", help="comma-separated seconds (3,10)")
    wall.add_argument(
        "--modes", choices=("wall", "deterministic", "both"), default="both", help="(both)"
    )
    wall.add_argument(
        "--only", default="", help="comma-separated instance names (L-0 only when named)"
    )
    wall.add_argument("--busy", action="store_true", help="a CPU burner on another core")
    wall.add_argument("--out", default=None, help="JSON lines appended here")
    cts = commands.add_parser(
        "pacemaker-cts",
        help="replay Pacemaker's scheduler tests: our pacemaker-<strategy> against the "
        "final placement of each .summary",
    )
    cts.add_argument(
        "folder",
        nargs="?",
        default="tests/data/pacemaker-cts",
        help="NAME.xml and NAME.summary, side by side or in xml/ and summary/ "
        "(tests/data/pacemaker-cts)",
    )
    cts.add_argument("--verbose", action="store_true", help="list the agreeing tests too")
    cts.add_argument(
        "--all",
        action="store_true",
        help="the tests with placement-strategy=default too (pacemaker-default)",
    )
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "run":
        from bench.run import main_run

        if args.out is None:
            args.out = f"results/{args.suite}.jsonl"
        return main_run(args)
    if args.command == "sim":
        from pathlib import Path

        from bench.sim import run

        run(
            args.instance,
            args.runs,
            args.time_limit,
            Path(args.out),
            args.seed,
            log=lambda message: print(message, file=sys.stderr),
            only=args.physics,
        )
        return 0
    if args.command == "sim-speed":
        from bench.sim import speed

        speed(runs=args.runs)
        return 0
    if args.command == "sim-report":
        from pathlib import Path

        from bench.sim import read, report

        text = report(read(Path(args.file)))
        if args.write:
            from placement.codec import write_text_atomic

            write_text_atomic(args.write, text)
        else:
            print(text)
        return 0
    if args.command == "wall":
        from bench.wall import main_wall

        return main_wall(args)
    if args.command == "survey":
        from bench.survey_bench import main_survey

        return main_survey(args)
    if args.command == "pacemaker-cts":
        from pathlib import Path

        from bench.pacemaker_cts import main as main_cts

        return main_cts(Path(args.folder), verbose=args.verbose, every_strategy=args.all)
    if args.command == "suites":
        from bench.suites import SUITES

        for name, (summary, _) in SUITES.items():
            print(f"{name:8} {summary}")
        return 0
    from bench.report_command import main_report

    return main_report(args)


if __name__ == "__main__":
    sys.exit(main())
