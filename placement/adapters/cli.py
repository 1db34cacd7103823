"""`placement import …` and `placement export …` (added to the CLI via COMMAND_MODULES)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, TextIO

from placement.adapters.common import ImportOptions, ImportResult
from placement.adapters.export import READY_CHECKS, ExportError, ExportOptions, export_script
from placement.adapters.names import TARGETS
from placement.errors import InvalidInputError
from placement.limits import printable

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def _print_errors(error: InvalidInputError, stream: TextIO, prefix: str = "") -> None:
    for item in error.errors:
        print(printable(f"{prefix}{item}"), file=stream)


def _overcommit(text: str) -> tuple[str, float]:
    resource, _, ratio = text.partition("=")
    try:
        value = float(ratio)
    except ValueError:
        value = -1.0
    if not resource or not value > 0:
        raise argparse.ArgumentTypeError(f"expected RESOURCE=RATIO with RATIO > 0, got {text!r}")
    return resource, value


def _options(args: argparse.Namespace) -> ImportOptions:
    return ImportOptions(
        boot_duration_s=args.boot_duration,
        overcommit=dict(args.overcommit or []),
        include_stopped=args.include_stopped,
        max_starts=args.max_starts,
        stagger_s=args.stagger,
    )


def _write_import(args: argparse.Namespace, result: ImportResult, out: TextIO) -> int:
    from placement.codec import write_json_atomic

    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    problem = result.problem
    if args.output:
        write_json_atomic(args.output, result.document)
        running = sum(1 for guest in problem.guests if problem.runs_now(guest))
        online = sum(1 for host in problem.hosts if host.online)
        print(
            f"{args.output}: {len(problem.hosts)} hosts ({online} online), "
            f"{len(problem.guests)} guests ({running} running now), "
            f"{len(result.warnings)} warning(s)",
            file=out,
        )
    else:
        print(json.dumps(result.document, indent=2), file=out)
    return EXIT_FAILED if args.strict and result.warnings else EXIT_OK


def _guarded(function: Any) -> Any:
    def run(args: argparse.Namespace, out: TextIO) -> int:
        try:
            code: int = function(args, out)
        except InvalidInputError as error:
            _print_errors(error, sys.stderr)
            return EXIT_INVALID
        return code

    return run


@_guarded
def _cmd_import_proxmox(args: argparse.Namespace, out: TextIO) -> int:
    from placement.adapters.proxmox import import_proxmox

    result = import_proxmox(
        args.resources,
        ha_resources=args.ha_resources,
        ha_groups=args.ha_groups,
        ha_rules=args.ha_rules,
        configs=args.configs,
        datacenter=args.datacenter,
        ha_status=args.ha_status,
        options=_options(args),
    )
    return _write_import(args, result, out)


@_guarded
def _cmd_import_pacemaker(args: argparse.Namespace, out: TextIO) -> int:
    from placement.adapters.pacemaker import import_pacemaker

    return _write_import(args, import_pacemaker(args.cib, options=_options(args)), out)


@_guarded
def _cmd_import_libvirt(args: argparse.Namespace, out: TextIO) -> int:
    from placement.adapters.libvirt import import_libvirt

    result = import_libvirt(
        args.folder,
        hosts=args.hosts,
        mapping=args.mapping,
        memory=args.memory,
        options=_options(args),
    )
    return _write_import(args, result, out)


def _cmd_export(args: argparse.Namespace, out: TextIO) -> int:
    from placement.check import check
    from placement.cli_common import SourcedError, UsageError, load_problem
    from placement.codec import load_plan_file, write_text_atomic

    if args.ready_timeout < 0 or args.poll <= 0:
        raise UsageError("--ready-timeout must be >= 0 and --poll > 0")
    if args.ready_check == "command" and not args.ready_command:
        raise UsageError("--ready-check command needs --ready-command")
    problem = load_problem(args.problem)
    try:
        plan = load_plan_file(args.plan)
    except InvalidInputError as error:
        raise SourcedError(args.plan, error) from error
    report = check(problem, plan)
    if not report.ok and not args.allow_violations:
        print(
            f"{args.plan}: the plan breaks {len(report.violations)} rule(s); "
            "not exported (--allow-violations exports it anyway):",
            file=sys.stderr,
        )
        for violation in report.violations[:10]:
            print(f"  {violation.rule}: {violation.message}", file=sys.stderr)
        return EXIT_FAILED
    options = ExportOptions(
        ready_check="command" if args.ready_command else args.ready_check,
        ready_command=args.ready_command,
        ready_timeout_s=args.ready_timeout,
        poll_s=args.poll,
        virsh_uri=args.uri,
        hook=args.hook,
    )
    try:
        script = export_script(problem, plan, args.to, options)
    except ExportError as error:
        _print_errors(error, sys.stderr, prefix=f"{args.plan}: ")
        return EXIT_INVALID
    if args.output:
        write_text_atomic(args.output, script)
        os.chmod(args.output, 0o755)
        print(f"script written to {args.output} (rehearse: {args.output} --dry-run)", file=out)
    else:
        out.write(script)
    return EXIT_OK


def _common_import_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", help="write the problem JSON here (atomically)")
    parser.add_argument(
        "--boot-duration", type=int, metavar="S", help="seconds each guest takes to boot"
    )
    parser.add_argument(
        "--overcommit",
        type=_overcommit,
        action="append",
        metavar="RES=RATIO",
        help="overcommit ratio for every host, e.g. vcpus=4 (repeatable)",
    )
    parser.add_argument(
        "--max-starts", type=int, metavar="N", help="at most N guests boot at once (batch limit)"
    )
    parser.add_argument(
        "--stagger", type=int, metavar="S", help="at least S seconds between start instants"
    )
    parser.add_argument(
        "--include-stopped",
        action="store_true",
        help="also import stopped guests nothing asks to run, Pacemaker target-role=Stopped "
        "resources too (the plan will start them)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when anything could not be mapped"
    )


def add_commands(commands: Any) -> None:
    """Add `import` (proxmox, pacemaker, libvirt) and `export` to the CLI."""
    importer = commands.add_parser("import", help="build a problem from a real tool's state")
    tools = importer.add_subparsers(dest="tool", required=True, parser_class=type(importer))

    proxmox = tools.add_parser("proxmox", help="pvesh get /cluster/resources JSON (+ HA config)")
    proxmox.add_argument(
        "resources", help="output of: pvesh get /cluster/resources --output-format json"
    )
    proxmox.add_argument(
        "--ha-resources", help="pvesh get /cluster/ha/resources JSON, or /etc/pve/ha/resources.cfg"
    )
    proxmox.add_argument(
        "--ha-groups", help="pvesh get /cluster/ha/groups JSON, or /etc/pve/ha/groups.cfg (VE 8)"
    )
    proxmox.add_argument(
        "--ha-rules", help="pvesh get /cluster/ha/rules JSON, or /etc/pve/ha/rules.cfg (VE 9)"
    )
    proxmox.add_argument(
        "--datacenter",
        help="pvesh get /cluster/options JSON, or /etc/pve/datacenter.cfg (the crs option)",
    )
    proxmox.add_argument(
        "--ha-status",
        help="pvesh get /cluster/ha/status/manager_status JSON (nodes in HA maintenance)",
    )
    proxmox.add_argument(
        "--configs", metavar="DIR", help="folder of VMID.json guest configs (pvesh get .../config)"
    )
    _common_import_options(proxmox)
    proxmox.set_defaults(run=_cmd_import_proxmox)

    pacemaker = tools.add_parser("pacemaker", help="a CIB XML file (cibadmin -Q)")
    pacemaker.add_argument("cib", help="output of: cibadmin -Q (or pcs cluster cib)")
    _common_import_options(pacemaker)
    pacemaker.set_defaults(run=_cmd_import_pacemaker)

    libvirt = tools.add_parser("libvirt", help="a folder of domain XML files")
    libvirt.add_argument("folder", help="HOST/DOMAIN.xml per host, or flat with --mapping")
    libvirt.add_argument("--hosts", help="JSON list of hosts (name, capacity, state, ...)")
    libvirt.add_argument("--mapping", help='JSON {"domain": "host"} for a flat folder')
    libvirt.add_argument(
        "--memory",
        choices=("current", "maximum"),
        default="current",
        help="demand each guest's <currentMemory>, what it holds (default), or its "
        "<memory>, what it may balloon up to",
    )
    _common_import_options(libvirt)
    libvirt.set_defaults(run=_cmd_import_libvirt)

    export = commands.add_parser("export", help="turn a plan into a script for a real tool")
    export.add_argument("problem", help="problem JSON file")
    export.add_argument("plan", help="plan JSON file")
    export.add_argument("--to", required=True, choices=TARGETS, help="the tool the script drives")
    export.add_argument("-o", "--output", help="write the script here (atomically, executable)")
    export.add_argument(
        "--ready-check", choices=READY_CHECKS, default="state", help="how readiness is tested"
    )
    export.add_argument(
        "--ready-command",
        help="shell command, run with the guest as $1 and the host as $2; ready when it exits 0",
    )
    export.add_argument("--ready-timeout", type=int, default=300, help="seconds (default 300)")
    export.add_argument("--poll", type=int, default=5, help="seconds between checks (default 5)")
    export.add_argument(
        "--uri", default="qemu+ssh://{host}/system", help="virsh: libvirt URI template of a host"
    )
    export.add_argument(
        "--hook", default="./placement-hook", help="shell: the command the script calls"
    )
    export.add_argument(
        "--allow-violations", action="store_true", help="export a plan the checker rejects"
    )
    export.set_defaults(run=_cmd_export)
