"""`placement run PROBLEM PLAN --driver NAME --policy NAME`: carry out a recovery.

Prints each decision and event as it happens (`+00:35  vm-12  start  on kvm03  (why)`),
a summary at the end, and with `--journal FILE` appends every record to a JSON-lines
journal; run again with the same journal after a crash, it takes over without starting
any guest twice. `--dry-run` prints the commands with the plan's timing and runs
nothing. Ctrl-C stops dispatching at once and reports what is still booting (exit 130).

Exit codes: 0 every guest to bring up is ready; 3 the same, but the plan leaves guests
unplaced; 1 some guest is not ready (given up, lost, never started, not moved) or a guest
the plan stops could not be shut down; 2 bad input; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from typing import Any, TextIO

import attrs

from placement.cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNPLACED,
    SourcedError,
    UsageError,
    check_output_path,
    load_problem,
)
from placement.codec import load_plan_file
from placement.errors import InvalidInputError
from placement.interrupt import EXIT_INTERRUPTED, call_stoppably, sigint_stops
from placement.limits import printable
from placement.model import HostFailure, Problem, SimulationSettings

DRIVERS = ("libvirt", "pacemaker", "proxmox", "shell", "simulated")

# Journal lines that are not printed as they happen: the run's frame and `returned`
# (it would double every start); every other kind is (`placement.execute.journal.KINDS`).
_NOT_SHOWN = frozenset({"begin", "returned", "summary"})


def _driver(args: argparse.Namespace) -> Any:
    from placement.execute import (
        LibvirtDriver,
        PacemakerDriver,
        ProxmoxDriver,
        ShellDriver,
        SimulatedDriver,
    )
    from placement.execute.drivers import split_template

    name = args.driver
    shell_options = (
        "start_command",
        "ready_command",
        "stop_command",
        "host_command",
        "migrate_command",
    )
    if name != "shell":
        given = [o for o in shell_options if getattr(args, o) is not None]
        if given:
            raise UsageError(f"--{given[0].replace('_', '-')} is for --driver shell")
    try:
        if name == "libvirt":
            return LibvirtDriver(
                uri=args.virsh_uri, ready_check=args.ready_check, xml_dir=args.xml_dir
            )
        if name == "pacemaker":
            return PacemakerDriver(args.pacemaker_shell)
        if name == "proxmox":
            return ProxmoxDriver(local_node=args.local_node, ready_check=args.ready_check)
        if name == "shell":
            if args.start_command is None or args.ready_command is None:
                raise UsageError("--driver shell needs --start-command and --ready-command")

            def template(option: str) -> tuple[str, ...] | None:
                text = getattr(args, option)
                flag = f"--{option.replace('_', '-')}"
                return None if text is None else split_template(text, flag)

            return ShellDriver(
                start_command=template("start_command") or (),
                ready_command=template("ready_command") or (),
                stop_command=template("stop_command"),
                host_command=template("host_command"),
                migrate_command=template("migrate_command"),
            )
        return SimulatedDriver(seed=args.seed, run=args.sim_run)
    except ValueError as error:
        raise UsageError(str(error)) from error


def _simulation(args: argparse.Namespace, problem: Problem) -> SimulationSettings:
    """The problem's simulation settings with this command's changes to them."""
    changes: dict[str, Any] = {}
    if args.sigma is not None:
        changes["sigma"] = args.sigma
    if args.start_failure is not None:
        changes["start_failure_probability"] = args.start_failure
    failures = []
    for value in args.fail or []:
        host, _, at = value.partition("@")
        try:
            at_s = float(at)
        except ValueError:
            at_s = -1.0
        if not problem.has_host(host) or not 0 <= at_s <= 1e9:
            raise UsageError(f"--fail {value}: expected HOST@SECONDS with a host of the problem")
        failures.append(HostFailure(host, at_s))
    if failures:
        changes["host_failures"] = (*problem.simulation.host_failures, *failures)
    try:
        return attrs.evolve(problem.simulation, **changes)
    except (TypeError, ValueError) as error:
        raise UsageError(str(error)) from error


def _options(args: argparse.Namespace) -> Any:
    from placement.execute import LiveOptions

    try:
        return LiveOptions(
            poll_s=args.poll,
            ready_timeout_s=args.ready_timeout,
            time_scale=args.time_scale,
            command_timeout_s=args.command_timeout,
            max_parallel=args.parallel,
        )
    except ValueError as error:
        raise UsageError(str(error)) from error


class _Printer:
    """Prints each record worth a line as it comes, names aligned."""

    def __init__(self, out: TextIO, width: int) -> None:
        self.out = out
        self.width = width

    def __call__(self, record: Any) -> None:
        from placement.execute.reasons import format_offset

        if record.kind in _NOT_SHOWN:
            return
        action = record.action if record.kind == "start" else record.kind
        guest = record.guest or "-"
        where = f"on {record.host}" if record.host else ""
        if record.kind == "host_down":
            guest, where = record.host or "-", "down"
        why = f"({record.why})" if record.why else ""
        line = f"{format_offset(record.t_s)}  {guest:<{self.width}}  {action:<8} "
        line += f"{where}  {why}" if where else why
        try:
            print(printable(line.rstrip()), file=self.out, flush=True)
        except BrokenPipeError:
            # The reader went away (`placement run ... | head`): the recovery goes on,
            # unprinted; the journal still has every line.
            self.out = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the run
            sys.stdout = self.out


def _print_dry_run(steps: list[Any], out: TextIO) -> None:
    from placement.execute.reasons import format_offset

    print("dry run: the plan's stops and starts with their planned times; nothing is run", file=out)
    width = max((len(step.guest) for step in steps), default=1)
    for step in steps:
        ready = f", ready {format_offset(step.ready_s)}" if step.ready_s is not None else ""
        print(
            printable(
                f"{format_offset(step.start_s)}  {step.guest:<{width}}  {step.action:<8} "
                f"on {step.host}{ready}"
            ),
            file=out,
        )
        for argv in step.argv:
            print(printable(f"    run: {shlex.join(argv)}"), file=out)
        for argv in step.probe:
            print(printable(f"    until ready, every poll: {shlex.join(argv)}"), file=out)
    if not steps:
        print("the plan stops, starts and migrates nothing", file=out)


def _print_summary(result: Any, unplaced: int, journal: str | None, out: TextIO) -> None:
    from placement.execute.reasons import format_offset

    ready = len(result.ready)
    total = len(result.guests)
    state = "stopped" if result.interrupted else "done"
    print(
        f"{state} at {format_offset(result.end_s)}: {ready} of {total} guest(s) ready "
        f"(policy {result.policy}, driver {result.driver})",
        file=out,
    )
    by_name = {g.guest: g for g in result.guests}
    for title, names in (
        ("still booting", result.booting),
        ("gave up", result.gave_up),
        ("lost", result.lost),
        ("never started", result.never_started),
        ("not moved", result.not_moved),
    ):
        for name in names:
            why = by_name[name].why
            where = f" on {by_name[name].host}" if by_name[name].host else ""
            print(printable(f"  {title}: {name}{where}" + (f" ({why})" if why else "")), file=out)
    for name in result.shutdown_failed:
        print(printable(f"  shutdown failed: {name}"), file=out)
    if unplaced:
        print(f"  {unplaced} guest(s) the plan leaves unplaced", file=out)
    if journal:
        print(f"journal: {journal}", file=out)


def _cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    from placement.check import check
    from placement.execute import execute, planned_commands
    from placement.solvers.stop import StopToken

    driver = _driver(args)
    options = _options(args)
    check_output_path(args.journal, "--journal")
    problem = load_problem(args.problem)
    if args.driver == "simulated":
        driver = attrs.evolve(driver, settings=_simulation(args, problem))
    elif args.sigma is not None or args.start_failure is not None or args.fail:
        raise UsageError("--sigma, --start-failure and --fail are for --driver simulated")
    try:
        plan = load_plan_file(args.plan)
        report = check(problem, plan)
    except InvalidInputError as error:
        raise SourcedError(args.plan, error) from error
    if not report.ok and not args.allow_violations:
        print(
            f"{args.plan}: the plan breaks {len(report.violations)} rule(s); not run "
            "(--allow-violations runs it anyway):",
            file=sys.stderr,
        )
        for violation in report.violations[:10]:
            print(printable(f"  {violation.rule}: {violation.message}"), file=sys.stderr)
        return EXIT_FAILED
    from placement.simulate.catalogue import policy_by_name

    try:
        policy = policy_by_name(args.policy)
    except ValueError as error:
        raise UsageError(f"--policy: {error}") from error
    if args.dry_run:
        if args.driver == "simulated":
            raise UsageError("--dry-run shows a real driver's commands; not with simulated")
        try:
            steps = planned_commands(problem, plan, driver)
        except InvalidInputError as error:
            raise SourcedError(args.plan, error) from error
        _print_dry_run(steps, out)
        return EXIT_OK

    width = min(max((len(g.name) for g in problem.guests), default=1), 24)
    token = StopToken()
    printer = _Printer(out, width)
    with sigint_stops(token):
        try:
            result = call_stoppably(
                lambda: execute(
                    problem,
                    plan,
                    policy,
                    driver,
                    journal=args.journal,
                    options=options,
                    stop=token,
                    on_record=printer,
                )
            )
        except InvalidInputError as error:
            raise SourcedError(args.journal or args.plan, error) from error
    out = printer.out  # /dev/null if the reader went away
    if args.json:
        document = {
            "summary": result.summary(),
            "guests": [
                {
                    "guest": g.guest,
                    "status": g.status,
                    "host": g.host,
                    "started_s": g.started_s,
                    "ready_s": g.ready_s,
                    "attempts": g.attempts,
                    "why": g.why,
                }
                for g in result.guests
            ],
        }
        print(json.dumps(document, indent=2), file=out)
    else:
        _print_summary(result, len(plan.unplaced), args.journal, out)
    if result.interrupted:
        return EXIT_INTERRUPTED
    if not result.ok:
        return EXIT_FAILED
    return EXIT_UNPLACED if plan.unplaced else EXIT_OK


def add_commands(commands: Any) -> None:
    """Add `run` to the `placement` parser's subcommands."""
    parser = commands.add_parser(
        "run",
        help="carry out a recovery through a driver, with a policy (docs/running.md)",
        description="Carry out PLAN through a driver (libvirt, pacemaker, proxmox, a shell "
        "command, or the simulator), starting guests as the policy decides, following "
        "their readiness, retrying failed starts, and journalling every event.",
    )
    parser.add_argument("problem", help="problem JSON file")
    parser.add_argument("plan", help="plan JSON file")
    parser.add_argument("--driver", required=True, choices=DRIVERS, help="what carries it out")
    parser.add_argument(
        "--policy",
        default="readiness-gated",
        metavar="NAME",
        help="readiness-gated (default), replan, replan:SOLVER, open-loop, serial:S, "
        "batch:N, ... (as `placement simulate --policy`)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the commands with the plan's timing; run none"
    )
    parser.add_argument(
        "--journal",
        metavar="FILE",
        help="append every event to this JSON-lines file; an existing one of the same "
        "problem and plan is taken over (a restart never starts a guest twice)",
    )
    parser.add_argument(
        "--allow-violations", action="store_true", help="run a plan that breaks a rule"
    )
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    live = parser.add_argument_group("following the tool (real drivers)")
    live.add_argument(
        "--poll", type=float, default=2.0, metavar="S", help="seconds between probes (2)"
    )
    live.add_argument(
        "--ready-timeout",
        type=float,
        metavar="S",
        help="seconds a started guest has to be ready (default: 3 x its boot, at least 300)",
    )
    live.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="real seconds per plan second (rehearsals: 0.1 runs ten times faster)",
    )
    live.add_argument(
        "--command-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds one tool command may take (60)",
    )
    live.add_argument(
        "--parallel",
        type=int,
        default=16,
        metavar="N",
        help="start commands running, and guests probed, at once (16)",
    )
    live.add_argument(
        "--ready-check",
        choices=("auto", "state", "agent"),
        default="auto",
        help="libvirt, proxmox: ready when the tool says running (state), when the guest "
        "agent answers (agent), or the agent if one is configured (auto, default)",
    )
    libvirt = parser.add_argument_group("libvirt")
    libvirt.add_argument(
        "--virsh-uri",
        default="qemu+ssh://{host}/system",
        metavar="TEMPLATE",
        help="connection URI of a host, {host} standing for its name",
    )
    libvirt.add_argument("--xml-dir", metavar="DIR", help="define GUEST.xml from here first")
    pacemaker = parser.add_argument_group("pacemaker")
    shells = pacemaker.add_mutually_exclusive_group()
    shells.add_argument(
        "--pcs",
        dest="pacemaker_shell",
        action="store_const",
        const="pcs",
        default="pcs",
        help="change the cluster with pcs (default)",
    )
    shells.add_argument(
        "--crm",
        dest="pacemaker_shell",
        action="store_const",
        const="crm",
        help="change the cluster with the crm shell",
    )
    proxmox = parser.add_argument_group("proxmox")
    proxmox.add_argument(
        "--local-node", metavar="NODE", help="this node's name (default: the host name)"
    )
    shell = parser.add_argument_group("shell (commands split like a shell would, then run)")
    shell.add_argument(
        "--start-command", metavar="CMD", help="start a guest: {guest} {host} {source}"
    )
    shell.add_argument(
        "--ready-command",
        metavar="CMD",
        help="exit 0: ready; 3: will not come up; else: not yet ({guest} {host})",
    )
    shell.add_argument("--stop-command", metavar="CMD", help="stop a failed attempt")
    shell.add_argument("--host-command", metavar="CMD", help="exit 0: {host} is up; 1: it is down")
    shell.add_argument(
        "--migrate-command",
        metavar="CMD",
        help="move a running guest: {guest} {source} {host} (default: the start command)",
    )
    simulated = parser.add_argument_group("simulated")
    simulated.add_argument("--seed", type=int, default=0, help="seed of the draws (0)")
    simulated.add_argument("--sigma", type=float, help="log-spread of boot durations (e.g. 0.3)")
    simulated.add_argument(
        "--start-failure", type=float, metavar="P", help="chance a start attempt fails"
    )
    simulated.add_argument(
        "--fail",
        action="append",
        metavar="HOST@SECONDS",
        help="a host that fails during the recovery (repeatable)",
    )
    simulated.add_argument(
        "--run", dest="sim_run", type=int, default=0, metavar="N", help="which run of the draws (0)"
    )
    parser.set_defaults(run=_cmd_run)
