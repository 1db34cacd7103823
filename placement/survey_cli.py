"""`placement survey`: plan every failure scenario of a cluster state and judge it.

    placement survey STATE [--fail hosts|domains|pairs|FILE] [--time-limit S]
                     [--jobs N | --scheduler tcp://HOST:PORT] [--json] [-o FILE] [--plot FILE]

Exit codes: 0 the cluster survives every scenario (every guest of priority >=
`--min-priority` restarts, every plan valid); 1 it does not; 2 bad input or options.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, TextIO

from placement.cli_common import EXIT_FAILED, EXIT_OK, UsageError, load_problem
from placement.codec import write_json_atomic
from placement.survey import (
    FAILURE_KINDS,
    FailureScenario,
    ScenarioOutcome,
    SurveyError,
    SurveyOptions,
    SurveyResult,
    survey_to_dict,
)

# How the verdict names the question each kind of scenario asks.
_QUESTION = {"hosts": "N+1", "domains": "N+domain", "pairs": "N+2", "listed": "listed-failure"}
# Scenarios whose unplaced guests the table details, worst first.
_DETAILED = 5


def _scenarios(args: argparse.Namespace, state: Any) -> str | list[FailureScenario]:
    from placement.survey import failure_scenarios_from

    if args.fail in FAILURE_KINDS:
        return str(args.fail)
    try:
        with open(args.fail, encoding="utf-8") as handle:
            document = json.load(handle)
    except json.JSONDecodeError as error:
        raise UsageError(f"{args.fail}: not JSON: {error}") from error
    except FileNotFoundError as error:
        raise UsageError(
            f"--fail: '{args.fail}' is neither {', '.join(FAILURE_KINDS)} nor a file"
        ) from error
    return failure_scenarios_from(state, document, args.fail)


def _simulated_cells(outcome: Any, shown: bool) -> list[str]:
    if not shown:
        return []
    figures = outcome.simulated
    if figures is None:
        return ["-", "-", "-", "-"]
    return [
        f"{figures.recovery_p95:g}",
        f"{figures.makespan_p95_s:.0f}",
        f"{figures.peak_pool_ratio:.2f}x",
        f"{figures.runs_with_fencing}/{figures.runs}",
    ]


def _options(args: argparse.Namespace) -> SurveyOptions:
    from placement.solvers import UnknownSolverError, get_solver

    try:
        get_solver(args.solver)
    except UnknownSolverError as error:
        raise UsageError(str(error.args[0])) from error
    fields: dict[str, Any] = {
        "solver": args.solver,
        "time_limit_s": args.time_limit,
        "seed": args.seed,
        "workers": args.workers,
        "deterministic": args.deterministic,
        "min_priority": args.min_priority,
        "moves_in_recovery": not args.no_moves,
        "simulate_runs": args.simulate or 0,
        "simulate_policy": args.policy,
        "simulate_sigma": args.sigma,
    }
    if args.objective:
        # Left out when not given, so the options keep their own default stages.
        fields["objective"] = tuple(
            item.strip() for item in args.objective.split(",") if item.strip()
        )
    try:
        return SurveyOptions(**fields)
    except SurveyError as error:
        raise UsageError(str(error)) from error


def executor_from_args(args: argparse.Namespace) -> Any:
    """The executor of `--jobs` / `--scheduler` (a bad value is a `UsageError`, exit 2)."""
    from placement.executors import ExecutorUnavailableError, make_executor

    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {args.jobs}")
    if args.scheduler is not None and args.jobs is not None:
        raise UsageError("--jobs and --scheduler exclude each other (Dask decides the workers)")
    jobs = args.jobs if args.jobs is not None else (os.cpu_count() or 1)
    try:
        return make_executor(jobs=jobs, scheduler=args.scheduler)
    except ExecutorUnavailableError as error:
        raise UsageError(str(error)) from error


class _ProgressBar:
    """`[#####.....] 37/100 scenarios, 2 unsafe` on a terminal's stderr, redrawn in place."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.unsafe = 0
        self.drawn = False

    def __call__(self, done: int, total: int, outcome: ScenarioOutcome) -> None:
        self.unsafe += not outcome.safe
        width = 30
        filled = width * done // max(total, 1)
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} scenarios, "
            f"{self.unsafe} unsafe"
        )
        self.stream.flush()
        self.drawn = True

    def finish(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def _pools_text(outcome: ScenarioOutcome) -> str:
    return ", ".join(f"{peak}/{limit}" for _, peak, limit in outcome.pools) or "-"


def render_survey(result: SurveyResult, source: str) -> str:
    """The survey as a person reads it: one line per scenario, worst first, then the
    unplaced guests of the worst scenarios and the verdict."""
    lines: list[str] = []
    question = _QUESTION.get(result.kind, result.kind)
    options = result.options
    lines.append(
        f"survey of {len(result.outcomes)} failure scenario(s) ({result.kind}) of {source}: "
        f"{result.hosts} hosts, {result.guests} guests; {options.solver}, "
        f"{options.time_limit_s:g} s per scenario, on {result.executor}, "
        f"{result.wall_s:.1f} s"
    )
    by_name = {outcome.scenario.name: outcome for outcome in result.outcomes}
    ranked = [by_name[name] for name in result.verdict.worst]
    pools = sorted({name for outcome in result.outcomes for name, _, _ in outcome.pools})
    header = [
        "scenario",
        "failed",
        "restart",
        "placed",
        "unplaced",
        "recovery",
        "makespan_s",
        f"peak {'/'.join(pools)}" if pools else "peak pools",
        "migrations",
        "plan",
    ]
    simulated = any(outcome.simulated for outcome in result.outcomes)
    if simulated:
        header[-1:-1] = ["sim. recovery p95", "sim. makespan p95", "sim. peak", "fenced"]
    rows = [header]
    for outcome in ranked:
        plan = "valid" if outcome.valid else f"{len(outcome.violations)} violation(s)"
        if not outcome.has_plan:
            plan = f"no plan ({outcome.status})"
        rows.append(
            [
                outcome.scenario.name,
                str(len(outcome.scenario.failed)),
                str(len(outcome.to_restart)),
                f"{outcome.placed}/{outcome.guests}",
                str(len(outcome.unplaced)),
                f"{outcome.recovery:g}",
                str(outcome.makespan_s),
                _pools_text(outcome),
                str(outcome.migrations),
                *_simulated_cells(outcome, simulated),
                plan,
            ]
        )
    from placement.show import table

    lines += table(rows, right=range(1, len(header) - 1))
    detailed = [outcome for outcome in ranked if outcome.unplaced][:_DETAILED]
    for outcome in detailed:
        lines.append(f"unplaced when {outcome.scenario.name} fails:")
        for unplaced in outcome.unplaced[:10]:
            lines.append(f"  {unplaced.guest}: {unplaced.reason}")
        if len(outcome.unplaced) > 10:
            lines.append(f"  and {len(outcome.unplaced) - 10} more")
    found = result.verdict
    protected = (
        "every guest"
        if found.min_priority == 0
        else f"every guest of priority >= {found.min_priority}"
    )
    if found.safe:
        tail = ""
        if ranked:
            latest = max(ranked, key=lambda o: (o.makespan_s, o.scenario.name))
            tail = (
                f"; the slowest recovery is {ranked[0].scenario.name}'s "
                f"(priority-weighted {ranked[0].recovery:g}), the last guest of all is ready "
                f"{latest.makespan_s} s after {latest.scenario.name} fails"
            )
        lines.append(
            f"verdict: {question} safe: {protected} restarts in each of the "
            f"{found.scenarios} scenario(s){tail}"
        )
    else:
        lines.append(
            f"verdict: NOT {question} safe: {len(found.unsafe)} of {found.scenarios} "
            f"scenario(s) fail to restart {protected}"
            + (f" ({len(found.invalid)} without a valid plan)" if found.invalid else "")
        )
        lines.append(f"  worst: {', '.join(found.unsafe[:8])}")
        if found.at_risk:
            risk = ", ".join(
                f"{guest} (priority {priority}) in {count}"
                for guest, count, priority in found.at_risk[:10]
            )
            more = f" and {len(found.at_risk) - 10} more" if len(found.at_risk) > 10 else ""
            lines.append(f"  at risk: {risk}{more}")
    return "\n".join(lines) + "\n"


def _verdict_line(result: SurveyResult) -> str:
    found = result.verdict
    question = _QUESTION.get(result.kind, result.kind)
    if found.safe:
        return f"{question} safe ({found.scenarios} scenarios)"
    risk = ", ".join(guest for guest, _, _ in found.at_risk[:5])
    more = f" and {len(found.at_risk) - 5} more" if len(found.at_risk) > 5 else ""
    return f"NOT {question} safe: {len(found.unsafe)} of {found.scenarios} scenarios unsafe" + (
        f"; at risk: {risk}{more}" if risk else ""
    )


def render_admission(admission: Any) -> str:
    """The admission answer as a person reads it."""
    lines = [f"without {admission.guest}: {_verdict_line(admission.baseline)}"]
    if not admission.candidates:
        lines.append(f"{admission.guest} fits on no online host now (capacity, rules)")
    else:
        lines.append(
            f"{admission.guest} fits now on {len(admission.candidates)} host(s); "
            "tried, by capacity slack after the worst failure:"
        )
        for candidate in admission.tried:
            lines.append(
                f"  {candidate.host}  slack {candidate.slack:+.2f}  "
                f"{_verdict_line(candidate.survey)}"
            )
    question = _QUESTION.get(admission.baseline.kind, admission.baseline.kind)
    if admission.admitted:
        lines.append(
            f"admit: run {admission.guest} on {admission.host}: the cluster stays {question} safe"
        )
    else:
        reason = (
            f"the cluster is not {question} safe even without it"
            if not admission.baseline.verdict.safe
            else f"no host tried keeps the cluster {question} safe"
        )
        lines.append(f"do not admit {admission.guest}: {reason}")
    return "\n".join(lines) + "\n"


def admission_to_dict(admission: Any) -> dict[str, Any]:
    """The admission answer as plain JSON data."""
    chosen = next((c for c in admission.tried if c.host == admission.host), None)
    return {
        "guest": admission.guest,
        "admitted": admission.admitted,
        "host": admission.host,
        "baseline": survey_to_dict(admission.baseline)["verdict"],
        "candidates": [
            {
                "host": c.host,
                "slack": c.slack,
                "verdict": survey_to_dict(c.survey)["verdict"] if c.survey else None,
            }
            for c in admission.candidates
        ],
        "survey": survey_to_dict(chosen.survey) if chosen and chosen.survey else None,
    }


def _admitted_guest(args: argparse.Namespace, state: Any) -> Any:
    from placement.admission import new_guest
    from placement.cli_common import SourcedError
    from placement.errors import InvalidInputError

    try:
        with open(args.admit, encoding="utf-8") as handle:
            document = json.load(handle)
    except json.JSONDecodeError as error:
        raise UsageError(f"{args.admit}: not JSON: {error}") from error
    try:
        return new_guest(state, document)
    except InvalidInputError as error:
        raise SourcedError(args.admit, error) from error


def _cmd_admit(args: argparse.Namespace, out: TextIO, state: Any, scenarios: Any) -> int:
    from placement.admission import admit

    guest = _admitted_guest(args, state)
    options = _options(args)
    progress = _ProgressBar(sys.stderr) if sys.stderr.isatty() and not args.json else None
    with executor_from_args(args) as executor:
        try:
            admission = admit(
                state,
                guest,
                scenarios,
                options,
                executor=executor,
                candidates=args.candidates,
                on_result=progress,
            )
        except SurveyError as error:
            raise UsageError(str(error)) from error
        finally:
            if progress is not None:
                progress.finish()
    document = admission_to_dict(admission)
    if args.output:
        write_json_atomic(args.output, {"admission": document})
    if args.json:
        print(json.dumps({"admission": document}, indent=2), file=out)
    else:
        print(render_admission(admission), file=out, end="")
        if args.output:
            print(f"admission written to {args.output}", file=out)
    return EXIT_OK if admission.admitted else EXIT_FAILED


def _cmd_survey(args: argparse.Namespace, out: TextIO) -> int:
    from placement.survey import survey

    state = load_problem(args.state)
    options = _options(args)
    if args.candidates < 1:
        raise UsageError(f"--candidates must be >= 1, got {args.candidates}")
    try:
        scenarios = _scenarios(args, state)
    except SurveyError as error:
        raise UsageError(str(error)) from error
    if args.admit:
        if args.plot:
            raise UsageError("--plot draws a survey, not an admission: leave one out")
        return _cmd_admit(args, out, state, scenarios)
    if args.plot:
        from placement.plot import FORMATS, PlotUnavailableError, _matplotlib

        suffix = os.path.splitext(args.plot)[1].lower().lstrip(".")
        if suffix not in FORMATS:
            raise UsageError(
                f"--plot: {args.plot}: the file name must end in "
                f"{', '.join('.' + f for f in FORMATS)}"
            )
        try:
            _matplotlib()  # fail before hours of solving, not after
        except PlotUnavailableError as error:
            raise UsageError(str(error)) from error
    progress = _ProgressBar(sys.stderr) if sys.stderr.isatty() and not args.json else None
    with executor_from_args(args) as executor:
        try:
            result = survey(state, scenarios, options, executor=executor, on_result=progress)
        except SurveyError as error:
            raise UsageError(str(error)) from error
        finally:
            if progress is not None:
                progress.finish()
    document = survey_to_dict(result)
    if args.output:
        write_json_atomic(args.output, document)
    if args.plot:
        from placement.survey_plot import write_survey_plot

        write_survey_plot(result, args.plot)
    if args.json:
        print(json.dumps(document, indent=2), file=out)
    else:
        print(render_survey(result, args.state), file=out, end="")
        if args.output:
            print(f"survey written to {args.output}", file=out)
        if args.plot:
            print(f"plot written to {args.plot}", file=out)
    return EXIT_OK if result.verdict.safe else EXIT_FAILED


def add_executor_options(parser: argparse.ArgumentParser) -> None:
    """`--jobs` and `--scheduler`, read back by `executor_from_args`."""
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="scenarios at once in local worker processes (default: the CPU cores)",
    )
    parser.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="run the scenarios on this Dask scheduler's workers (pip install 'placement[dask]')",
    )


def add_commands(commands: Any) -> None:
    """Add `survey` to the `placement` parser's subcommands."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "survey",
        help="plan every host (domain, pair) failure: is the cluster N+1 safe?",
    )
    parser.add_argument("state", help="cluster state: a problem file with current hosts and states")
    parser.add_argument(
        "--fail",
        default="hosts",
        metavar="hosts|domains|pairs|FILE",
        help="the failure scenarios: every single host (default), every failure domain, "
        'every pair of hosts, or a JSON file listing host sets ([["h1"], ["h2", "h3"]])',
    )
    parser.add_argument("--solver", default="cpsat", help="solver name (see `placement solvers`)")
    parser.add_argument(
        "--time-limit", type=float, default=2.0, help="seconds per scenario (default 2)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--workers", type=int, default=1, help="solver threads per scenario (default 1)"
    )
    parser.add_argument(
        "--deterministic",
        action="store_true",
        help="repeatable plans, the same wherever a scenario runs (deterministic time)",
    )
    parser.add_argument(
        "--min-priority",
        type=int,
        default=0,
        metavar="P",
        help="a scenario is safe when every guest of priority >= P restarts (default 0: all)",
    )
    parser.add_argument(
        "--objective",
        help="each failover's stages, comma-separated (default placed,migrations,recovery)",
    )
    parser.add_argument(
        "--no-moves",
        action="store_true",
        help="a restart must fit around the running guests: no live migration to make room",
    )
    add_executor_options(parser)
    parser.add_argument(
        "--simulate",
        type=int,
        nargs="?",
        const=40,
        metavar="RUNS",
        help="also run each scenario's plan through the simulator (40 runs if no number)",
    )
    parser.add_argument(
        "--policy",
        default="readiness-backfill",
        help="with --simulate: how the plan is run (default readiness-backfill)",
    )
    parser.add_argument(
        "--sigma",
        type=float,
        default=0.3,
        help="with --simulate: boot-time noise (default 0.3; the state's simulation "
        "object gives the rest of the physics)",
    )
    parser.add_argument("-o", "--output", help="write the survey JSON here (atomically)")
    parser.add_argument("--plot", metavar="FILE", help="draw the ranked scenarios (.png/.svg/.pdf)")
    parser.add_argument("--json", action="store_true", help="print the survey JSON to stdout")
    parser.add_argument(
        "--admit",
        metavar="GUEST.json",
        help="admission check: would every scenario still be safe with this new guest, "
        "and on which host? (exit 0 admitted, 1 not)",
    )
    parser.add_argument(
        "--candidates",
        type=int,
        default=3,
        metavar="K",
        help="with --admit: survey at most K candidate hosts (default 3)",
    )
    parser.set_defaults(run=_cmd_survey)


# --- rebalance --survive -----------------------------------------------------------------


def add_survive_options(parser: argparse.ArgumentParser) -> None:
    """`placement rebalance`'s options for an N+1-safe placement (read by `run_survive`)."""
    parser.add_argument(
        "--survive",
        choices=("hosts", "domains"),
        default=None,
        help="instead of evening the load: a placement within --max-moves after which "
        "every single-host (domain) failure restarts every guest of priority >= "
        "--min-priority (docs/survey.md)",
    )
    parser.add_argument(
        "--min-priority",
        type=int,
        default=0,
        metavar="P",
        help="with --survive: the guests that must restart (default 0: all)",
    )
    parser.add_argument(
        "--scenario-time-limit",
        type=float,
        default=2.0,
        metavar="S",
        help="with --survive: seconds per failure scenario of the verifying survey (2)",
    )
    add_executor_options(parser)


def render_survive(result: Any) -> str:
    """The rounds of `placement.survive`: each model solve with its stages, and what the
    survey of its placement found."""
    lines = []
    for found in result.rounds:
        stages = ", ".join(
            f"{s.name} {s.value:g} (bound {s.bound:g}, gap {s.gap:.2%})"
            if s.bound is not None and s.gap is not None
            else f"{s.name} {s.value:g}"
            for s in found.stages
        )
        lines.append(
            f"model round {found.index + 1}: {found.status}; {stages or 'no placement'}; "
            f"{found.moves} migration(s); {found.runtime_s:.1f} s"
        )
        if found.given_up:
            lines.append(f"  the model cannot protect: {', '.join(found.given_up)}")
        if found.verified is not None:
            lines.append(f"  survey of that placement: {_verdict_line(found.verified)}")
    return "\n".join(lines) + "\n"


def run_survive(args: argparse.Namespace, out: TextIO) -> int:
    """`placement rebalance STATE --survive hosts|domains`: exit 0 when the placement is
    planned, valid and verified safe; 1 otherwise; 2 bad input."""
    from placement.cli_common import solve_options
    from placement.codec import dump_plan, dump_problem
    from placement.show import render_plan
    from placement.survive import SurviveOptions, survive

    state = load_problem(args.state)
    chosen = solve_options(args, progress=False)
    if args.scenario_time_limit <= 0:
        raise UsageError(f"--scenario-time-limit must be > 0, got {args.scenario_time_limit}")
    try:
        options = SurviveOptions(
            min_priority=args.min_priority,
            max_moves=args.max_moves,
            time_limit_s=chosen.time_limit_s,
            seed=chosen.seed,
            workers=chosen.workers,
            deterministic=chosen.deterministic,
            survey=SurveyOptions(
                time_limit_s=args.scenario_time_limit,
                seed=chosen.seed,
                deterministic=chosen.deterministic,
            ),
        )
        with executor_from_args(args) as executor:
            result = survive(state, args.survive, options, executor=executor, solver=args.solver)
    except SurveyError as error:
        raise UsageError(str(error)) from error
    if args.problem_out and result.problem is not None:
        write_json_atomic(args.problem_out, dump_problem(result.problem))
    if args.output and result.plan is not None:
        write_json_atomic(args.output, dump_plan(result.plan))
    if args.json:
        document = {
            "safe": result.safe,
            "rounds": [
                {
                    "status": r.status,
                    "stages": [
                        {"name": s.name, "value": s.value, "bound": s.bound, "gap": s.gap}
                        for s in r.stages
                    ],
                    "given_up": list(r.given_up),
                    "migrations": r.moves,
                    "verdict": survey_to_dict(r.verified)["verdict"] if r.verified else None,
                }
                for r in result.rounds
            ],
            "plan": dump_plan(result.plan) if result.plan is not None else None,
        }
        print(json.dumps(document, indent=2), file=out)
    else:
        print(render_survive(result), file=out, end="")
        if result.plan is not None and result.problem is not None and result.report is not None:
            print(render_plan(result.problem, result.plan, result.report), file=out, end="")
        question = "N+1" if args.survive == "hosts" else "N+domain"
        if result.safe:
            print(f"verdict: after this plan the cluster is {question} safe", file=out)
        else:
            print(f"verdict: no {question}-safe placement found within the budget", file=out)
        if args.output and result.plan is not None:
            print(f"plan written to {args.output}", file=out)
    return EXIT_OK if result.safe else EXIT_FAILED
