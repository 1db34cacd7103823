"""`python -m bench run ...` and `python -m bench report FILE...`; see docs/benchmarks.md."""

from __future__ import annotations

import argparse
import sys

DEFAULT_SOLVERS = "cpsat,best-fit,first-fit,worst-fit,proxmox-static,pacemaker-balanced"
DEFAULT_SCHEDULES = "list,serial:45,all-at-once"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run solvers on generated scenarios, one JSON line each")
    run.add_argument("--sizes", default="S,M", help="comma-separated: S, M, L (default S,M)")
    run.add_argument("--seeds", type=int, default=3, help="seeds per size (default 3)")
    run.add_argument("--first-seed", type=int, default=0, help="the first seed (default 0)")
    run.add_argument("--solvers", default=DEFAULT_SOLVERS, help=f"default {DEFAULT_SOLVERS}")
    run.add_argument(
        "--schedules",
        default=DEFAULT_SCHEDULES,
        help=f"boot schedules for the baselines (the optimiser ignores them); "
        f"default {DEFAULT_SCHEDULES}",
    )
    run.add_argument("--time-limit", type=float, default=10.0, help="seconds per solve (10)")
    run.add_argument("--workers", type=int, default=2, help="solver threads (2)")
    run.add_argument("--out", default="results.jsonl", help="results file, appended to")
    run.add_argument("--resume", action="store_true", help="skip runs already in --out")
    run.add_argument(
        "--memory-limit-gib",
        type=float,
        default=None,
        help="kill a run whose resident memory exceeds this (GiB)",
    )
    run.add_argument(
        "--in-process", action="store_true", help="do not fork a child process per run"
    )
    run.add_argument("--quiet", action="store_true", help="no progress lines on stderr")

    report = commands.add_parser("report", help="markdown tables from results files")
    report.add_argument("files", nargs="+", help="results files written by `run`")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "run":
        from bench.run import main_run

        return main_run(args)
    from bench.report import main_report

    return main_report(args)


if __name__ == "__main__":
    sys.exit(main())
