"""Drivers: what turns an executor's decisions into a real tool's commands, and what
tells it, by asking the tool, whether a guest is up.

Every command is an argument list run by `subprocess` without a shell, with a timeout.
A name reaches a tool only as one argument, after `placement.adapters.names` has
accepted it for that tool (`check_names`); where a command goes through `ssh` (Proxmox
nodes other than the local one) it is quoted once more for the remote shell.

A driver answers four questions about a guest on a host:

- the commands that start it there (`start`), or migrate it (`migrate`);
- the commands that stop an attempt that failed or never became ready (`stop`), and
  those that tidy up after an attempt ended (`release`, e.g. a pcs location constraint);
- its state (`probe`): `READY`, `BOOTING` (it runs, it is not ready: the guest agent
  does not answer yet), `PENDING` (not running there; the tool may still start it),
  `FAILED` (it will not come up: crashed, shut off, a failed start in the tool), or
  `UNKNOWN` (the tool could not be asked);
- which hosts the tool says are down (`hosts_down`). A host the tool merely cannot
  reach is never counted down: restarting its guests elsewhere without fencing could
  run a guest twice.
"""

from __future__ import annotations

import enum
import json
import os
import re
import shlex
import socket
import subprocess
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import attrs

from placement.adapters.names import plan_name_errors
from placement.errors import InputError
from placement.model import Problem
from placement.plan import Plan

Argv = tuple[str, ...]

#: How long one tool command may run before it counts as failed (seconds).
DEFAULT_COMMAND_TIMEOUT_S = 60.0

READY_CHECKS = ("auto", "state", "agent")


class Readiness(enum.Enum):
    """A guest's state on a host, as its tool reports it."""

    READY = "ready"
    BOOTING = "booting"
    PENDING = "pending"
    FAILED = "failed"
    UNKNOWN = "unknown"


@attrs.frozen
class Probe:
    """What a probe found, with the tool's words for it (`detail`, for the journal).
    `elsewhere`: the host the tool says the guest runs on instead (it is never stopped
    for not coming up where it was started)."""

    state: Readiness
    detail: str = ""
    elsewhere: str | None = None


@attrs.frozen
class Completed:
    """A command that ran: its argument list, exit status and output. `returncode` 124
    means it timed out, 127 that the program was not found."""

    argv: Argv
    returncode: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def program(self) -> str:
        """The program's base name and its first word that is not an option (`virsh
        start` for `/usr/bin/virsh -c URI start --domain vm1`)."""
        if not self.argv:
            return "?"
        name = os.path.basename(self.argv[0])
        index = 1
        while index < len(self.argv) and self.argv[index].startswith("-"):
            # virsh -c URI, ssh -o OPTION: the option's value is not the verb
            index += 2 if self.argv[index] in ("-c", "-o") else 1
        return f"{name} {self.argv[index]}" if index < len(self.argv) else name

    def why(self) -> str:
        """One line saying how it failed: `virsh start exited 1: error: ...`."""
        program = self.program()
        if self.returncode == 124:
            return f"{program} timed out"
        if self.returncode == 127:
            return f"{program}: {self.stderr.strip() or 'not found'}"
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        tail = f": {lines[-1][:200]}" if lines else ""
        return f"{program} exited {self.returncode}{tail}"


Runner = Callable[[Argv], Completed]


def run_command(argv: Sequence[str], timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S) -> Completed:
    """Run one argument list (no shell), stdin closed; never raises for a failing tool."""
    command = tuple(argv)
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        stderr = error.stderr if isinstance(error.stderr, str) else ""
        return Completed(command, 124, "", stderr)
    except OSError as error:
        return Completed(command, 127, "", f"{command[0]}: {error.strerror or error}")
    return Completed(command, done.returncode, done.stdout, done.stderr)


class Driver(Protocol):
    """A real tool behind the executor (see the module doc). `name` is what
    `placement run --driver` takes; `target` the name rules it obeys
    (`placement.adapters.names.TARGETS`)."""

    name: str
    target: str

    def start(
        self, guest: str, host: str, source: str | None, source_down: bool, attempt: int
    ) -> list[Argv]:
        """The commands that start `guest` on `host`. `source`: the host whose
        configuration holds the guest now (None: `host` itself, or unknown), and
        whether that host is down; `attempt`: 1 for the first start, more for retries."""
        ...

    def migrate(self, guest: str, source: str, target: str) -> list[Argv]:
        """The commands that move the running `guest` from `source` to `target`."""
        ...

    def stop(self, guest: str, host: str) -> list[Argv]:
        """The commands that stop a failed attempt of `guest` on `host` at once."""
        ...

    def shutdown(self, guest: str, host: str) -> list[Argv]:
        """The commands that shut down the running `guest` on `host` (the plan stops it
        to make room)."""
        ...

    def release(self, guest: str, host: str, migrate: bool) -> list[Argv]:
        """The commands that tidy up after an attempt ended, ready or not."""
        ...

    def probe_commands(self, guest: str, host: str) -> list[Argv]:
        """The commands `probe` runs (for a dry run)."""
        ...

    def probe(self, guest: str, host: str, run: Runner) -> Probe:
        """Ask the tool how `guest` is doing on `host`."""
        ...

    def hosts_down(self, hosts: Sequence[str], run: Runner) -> set[str]:
        """Those of `hosts` the tool says are down (failed or fenced)."""
        ...


def check_names(problem: Problem, plan: Plan, target: str) -> list[InputError]:
    """Every guest or host name of the plan's starts, migrations and stops, and every
    online host (a re-planning policy may send a guest to any), that `target`'s tool
    cannot take safely (`placement.adapters.names`)."""
    return plan_name_errors(
        problem, plan, target, verb=f"run with {target}", every_online_host=True
    )


def _check_choice(value: str, choices: Iterable[str], what: str) -> None:
    if value not in choices:
        raise ValueError(f"{what} must be one of {', '.join(choices)} (got {value!r})")


# --- libvirt -----------------------------------------------------------------------------

_AGENT_ABSENT = re.compile(r"not configured|unsupported", re.IGNORECASE)
_FAILED_STATES = ("shut off", "crashed")


@attrs.frozen
class LibvirtDriver:
    """libvirt through `virsh`, one connection URI per host (`uri`, `{host}` standing for
    its name). Starts with `virsh start` (after `virsh define` from `xml_dir/GUEST.xml`
    when that file exists, for a domain not defined on its new host); readiness from
    `virsh domstate` and, unless `ready_check` is `state`, the guest agent's
    `guest-ping`: `agent` requires an answer, `auto` accepts a domain without a
    configured agent once it runs."""

    uri: str = "qemu+ssh://{host}/system"
    ready_check: str = "auto"
    xml_dir: str | None = None
    virsh: str = "virsh"
    name: str = "libvirt"
    target: str = "virsh"

    def __attrs_post_init__(self) -> None:
        _check_choice(self.ready_check, READY_CHECKS, "ready check")
        if "{host}" not in self.uri:
            raise ValueError(f"the URI template must contain {{host}} (got {self.uri!r})")

    def _uri(self, host: str) -> str:
        return self.uri.replace("{host}", host)

    def _virsh(self, host: str, *words: str) -> Argv:
        return (self.virsh, "-c", self._uri(host), *words)

    def start(
        self, guest: str, host: str, source: str | None, source_down: bool, attempt: int
    ) -> list[Argv]:
        commands = []
        if self.xml_dir is not None:
            from pathlib import Path

            xml = Path(self.xml_dir) / f"{guest}.xml"
            if xml.is_file():
                commands.append(self._virsh(host, "define", "--file", str(xml)))
        commands.append(self._virsh(host, "start", "--domain", guest))
        return commands

    def migrate(self, guest: str, source: str, target: str) -> list[Argv]:
        return [
            self._virsh(
                source,
                "migrate",
                "--live",
                "--persistent",
                "--undefinesource",
                "--domain",
                guest,
                "--desturi",
                self._uri(target),
            )
        ]

    def stop(self, guest: str, host: str) -> list[Argv]:
        return [self._virsh(host, "destroy", "--domain", guest)]

    def shutdown(self, guest: str, host: str) -> list[Argv]:
        return [self._virsh(host, "shutdown", "--domain", guest)]

    def release(self, guest: str, host: str, migrate: bool) -> list[Argv]:
        return []

    def _ping(self, guest: str, host: str) -> Argv:
        return self._virsh(
            host, "qemu-agent-command", "--domain", guest, '{"execute":"guest-ping"}'
        )

    def probe_commands(self, guest: str, host: str) -> list[Argv]:
        state = self._virsh(host, "domstate", "--domain", guest)
        return [state] if self.ready_check == "state" else [state, self._ping(guest, host)]

    def probe(self, guest: str, host: str, run: Runner) -> Probe:
        state = run(self._virsh(host, "domstate", "--domain", guest))
        if not state.ok:
            if "not found" in state.stderr.lower() or "no domain" in state.stderr.lower():
                return Probe(Readiness.PENDING, "not defined there")
            return Probe(Readiness.UNKNOWN, state.why())
        words = (state.stdout.strip().splitlines() or [""])[0].strip()
        if words in _FAILED_STATES:
            return Probe(Readiness.FAILED, f"domstate {words}")
        if words != "running":
            return Probe(Readiness.BOOTING if words else Readiness.UNKNOWN, f"domstate {words}")
        if self.ready_check == "state":
            return Probe(Readiness.READY, "running")
        ping = run(self._ping(guest, host))
        if ping.ok:
            return Probe(Readiness.READY, "running, guest agent answers")
        if self.ready_check == "auto" and _AGENT_ABSENT.search(ping.stderr):
            return Probe(Readiness.READY, "running (no guest agent configured)")
        return Probe(Readiness.BOOTING, "running, guest agent not answering yet")

    def hosts_down(self, hosts: Sequence[str], run: Runner) -> set[str]:
        # libvirt cannot tell a dead host from an unreachable one: never counted down.
        return set()


# --- Pacemaker ---------------------------------------------------------------------------

_FAIL_COUNT = re.compile(r"value=(\S+)")


@attrs.frozen
class PacemakerDriver:
    """Pacemaker through `pcs` or the crm shell (`flavour`). A start pins the resource
    to its host with a location constraint `placement-start-GUEST` (score INFINITY) and
    enables it; the constraint goes when the attempt ends. A retry first clears the
    resource's failures (`resource cleanup`); a failed attempt disables it again.
    Readiness: `crm_resource --locate` lists the host (Pacemaker's start operation and
    monitor succeeded); failure: a fail count on the host (`crm_failcount --query`).
    Hosts down: `crm_node -l` lists them `lost`."""

    flavour: str = "pcs"
    name: str = "pacemaker"

    def __attrs_post_init__(self) -> None:
        _check_choice(self.flavour, ("pcs", "crm"), "the Pacemaker shell")

    @property
    def target(self) -> str:
        return self.flavour

    @staticmethod
    def constraint_id(guest: str) -> str:
        return f"placement-start-{guest}"

    def start(
        self, guest: str, host: str, source: str | None, source_down: bool, attempt: int
    ) -> list[Argv]:
        constraint = self.constraint_id(guest)
        if self.flavour == "pcs":
            commands = [
                ("pcs", "constraint", "location", "add", constraint, guest, host, "INFINITY"),
                ("pcs", "resource", "enable", guest),
            ]
            cleanup: Argv = ("pcs", "resource", "cleanup", guest)
        else:
            commands = [
                ("crm", "configure", "location", constraint, guest, "inf:", host),
                ("crm", "resource", "start", guest),
            ]
            cleanup = ("crm", "resource", "cleanup", guest)
        return [cleanup, *commands] if attempt > 1 else commands

    def migrate(self, guest: str, source: str, target: str) -> list[Argv]:
        return [(self.flavour, "resource", "move", guest, target)]

    def stop(self, guest: str, host: str) -> list[Argv]:
        if self.flavour == "pcs":
            return [("pcs", "resource", "disable", guest)]
        return [("crm", "resource", "stop", guest)]

    def shutdown(self, guest: str, host: str) -> list[Argv]:
        return self.stop(guest, host)

    def release(self, guest: str, host: str, migrate: bool) -> list[Argv]:
        if migrate:
            return [(self.flavour, "resource", "clear", guest)]
        if self.flavour == "pcs":
            return [("pcs", "constraint", "remove", self.constraint_id(guest))]
        return [("crm", "configure", "delete", self.constraint_id(guest))]

    def probe_commands(self, guest: str, host: str) -> list[Argv]:
        return [
            ("crm_resource", "--locate", "--resource", guest, "--quiet"),
            ("crm_failcount", "--query", "--resource", guest, "--node", host),
        ]

    def probe(self, guest: str, host: str, run: Runner) -> Probe:
        locate_argv, failcount_argv = self.probe_commands(guest, host)
        located = run(locate_argv)
        said = f"{located.stdout}\n{located.stderr}".lower()
        if located.ok:
            nodes = [line.strip() for line in located.stdout.splitlines() if line.strip()]
        elif "not running" in said:
            nodes = []  # some versions say so with a non-zero exit
        else:
            return Probe(Readiness.UNKNOWN, located.why())
        if host in nodes:
            return Probe(Readiness.READY, f"running on {host}")
        count = run(failcount_argv)
        found = _FAIL_COUNT.search(count.stdout) if count.ok else None
        if found is not None and found.group(1) not in ("0", "(null)"):
            return Probe(Readiness.FAILED, f"fail count {found.group(1)} on {host}")
        if nodes:
            return Probe(Readiness.PENDING, f"running on {', '.join(nodes)}", nodes[0])
        return Probe(Readiness.PENDING, "not running yet")

    def hosts_down(self, hosts: Sequence[str], run: Runner) -> set[str]:
        listed = run(("crm_node", "-l"))
        if not listed.ok:
            return set()
        down = set()
        for line in listed.stdout.splitlines():
            words = line.split()
            if len(words) >= 3 and words[2] == "lost":
                down.add(words[1])
        return down & set(hosts)


# --- Proxmox VE --------------------------------------------------------------------------

_PROXMOX_SID = re.compile(r"^(vm|ct):(\d+)$")
_NO_AGENT = re.compile(r"no qemu guest agent configured|agent.*not.*(enabled|configured)", re.I)


@attrs.frozen
class ProxmoxDriver:
    """Proxmox VE through `qm` (VMs, `vm:ID`) and `pct` (containers, `ct:ID`). They act on
    the guests of the node they run on, so a command for another node goes through
    `remote` (`ssh -o BatchMode=yes root@{node} --`, the cluster's root ssh) with its
    words quoted for the remote shell. A guest whose configuration is on another node
    moves first: `qm migrate` from a live node, or `mv` of its configuration file under
    /etc/pve from a dead one (the Proxmox VE admin guide's manual recovery). Readiness:
    `qm status` says running, and unless `ready_check` is `state`, `qm guest cmd ID ping`
    answers (`auto`: or the VM has no guest agent configured). Hosts down: nodes
    `pvesh get /nodes` reports offline."""

    local_node: str | None = None
    remote: tuple[str, ...] = ("ssh", "-o", "BatchMode=yes", "root@{node}", "--")
    ready_check: str = "auto"
    name: str = "proxmox"
    target: str = "proxmox"

    def __attrs_post_init__(self) -> None:
        _check_choice(self.ready_check, READY_CHECKS, "ready check")

    def _local(self) -> str:
        if self.local_node is not None:
            return self.local_node
        # A Proxmox node is named by its short host name.
        return socket.gethostname().split(".", 1)[0]

    def _on(self, node: str, *words: str) -> Argv:
        if node == self._local():
            return tuple(words)
        prefix = tuple(word.replace("{node}", node) for word in self.remote)
        return (*prefix, shlex.join(words))

    @staticmethod
    def _split(guest: str) -> tuple[str, str, str]:
        found = _PROXMOX_SID.match(guest)
        if found is None:
            raise ValueError(f"not a Proxmox service id: {guest!r}")
        kind, vmid = found.groups()
        return ("qm", "qemu-server", vmid) if kind == "vm" else ("pct", "lxc", vmid)

    def start(
        self, guest: str, host: str, source: str | None, source_down: bool, attempt: int
    ) -> list[Argv]:
        tool, _config_dir, vmid = self._split(guest)
        commands: list[Argv] = []
        if source is not None and source != host:
            if source_down:
                commands.append(self._move_config(guest, source, host))
            else:
                # A stopped guest on a live node moves with an offline migration.
                commands.append(self._on(source, tool, "migrate", vmid, host))
        commands.append(self._on(host, tool, "start", vmid))
        return commands

    def _move_config(self, guest: str, source: str, host: str) -> Argv:
        _tool, config_dir, vmid = self._split(guest)
        return (
            "mv",
            f"/etc/pve/nodes/{source}/{config_dir}/{vmid}.conf",
            f"/etc/pve/nodes/{host}/{config_dir}/{vmid}.conf",
        )

    def migrate(self, guest: str, source: str, target: str) -> list[Argv]:
        tool, _, vmid = self._split(guest)
        if tool == "qm":
            return [self._on(source, "qm", "migrate", vmid, target, "--online")]
        # A container cannot move while it runs: pct stops it, moves it, starts it.
        return [self._on(source, "pct", "migrate", vmid, target, "--restart")]

    def stop(self, guest: str, host: str) -> list[Argv]:
        tool, _, vmid = self._split(guest)
        return [self._on(host, tool, "stop", vmid)]

    def shutdown(self, guest: str, host: str) -> list[Argv]:
        tool, _, vmid = self._split(guest)
        return [self._on(host, tool, "shutdown", vmid)]

    def release(self, guest: str, host: str, migrate: bool) -> list[Argv]:
        return []

    def probe_commands(self, guest: str, host: str) -> list[Argv]:
        tool, _, vmid = self._split(guest)
        commands = [self._on(host, tool, "status", vmid)]
        if tool == "qm" and self.ready_check != "state":
            commands.append(self._on(host, "qm", "guest", "cmd", vmid, "ping"))
        return commands

    def probe(self, guest: str, host: str, run: Runner) -> Probe:
        commands = self.probe_commands(guest, host)
        status = run(commands[0])
        if not status.ok:
            if "does not exist" in status.stderr:
                return Probe(Readiness.PENDING, "no configuration on that node")
            return Probe(Readiness.UNKNOWN, status.why())
        words = status.stdout.strip()
        if words != "status: running":
            return Probe(Readiness.PENDING, words or "no status")
        if len(commands) == 1:
            return Probe(Readiness.READY, "running")
        ping = run(commands[1])
        if ping.ok:
            return Probe(Readiness.READY, "running, guest agent answers")
        if self.ready_check == "auto" and _NO_AGENT.search(ping.stderr):
            return Probe(Readiness.READY, "running (no guest agent configured)")
        return Probe(Readiness.BOOTING, "running, guest agent not answering yet")

    def hosts_down(self, hosts: Sequence[str], run: Runner) -> set[str]:
        listed = run(("pvesh", "get", "/nodes", "--output-format", "json"))
        if not listed.ok:
            return set()
        try:
            nodes = json.loads(listed.stdout)
        except ValueError:
            return set()
        down = {
            str(node.get("node"))
            for node in nodes
            if isinstance(node, dict) and node.get("status") == "offline"
        }
        return down & set(hosts)


# --- a user's commands -------------------------------------------------------------------


def _fill(template: Sequence[str], **values: str) -> Argv:
    """Each argument of `template` with `{guest}`, `{host}`, `{source}` replaced: a name
    stays inside the argument it is put in, whatever it contains."""
    filled = []
    for word in template:
        for key, value in values.items():
            word = word.replace("{" + key + "}", value)
        filled.append(word)
    return tuple(filled)


def split_template(text: str, option: str) -> tuple[str, ...]:
    """A command template given as one string on the command line, split into its
    arguments like a shell would (quotes group words), *before* any name is put in."""
    try:
        words = tuple(shlex.split(text))
    except ValueError as error:
        raise ValueError(f"{option}: {error}") from error
    if not words:
        raise ValueError(f"{option}: the command is empty")
    return words


@attrs.frozen
class ShellDriver:
    """Commands of the user's, per guest: argument-list templates in which `{guest}`,
    `{host}` (and for `migrate_command`, `{source}`) are replaced inside each argument.
    `ready_command` exits 0 when the guest is ready, 3 when it will not come up, anything
    else while it is not ready yet. `stop_command` (optional) stops a failed attempt, and
    a guest the plan stops;
    `host_command` (optional) exits 0 while `{host}` is up and 1 once it is down (failed
    or fenced; any other status: cannot tell)."""

    start_command: tuple[str, ...]
    ready_command: tuple[str, ...]
    stop_command: tuple[str, ...] | None = None
    migrate_command: tuple[str, ...] | None = None
    host_command: tuple[str, ...] | None = None
    name: str = "shell"
    target: str = "shell"

    def start(
        self, guest: str, host: str, source: str | None, source_down: bool, attempt: int
    ) -> list[Argv]:
        return [_fill(self.start_command, guest=guest, host=host, source=source or "")]

    def migrate(self, guest: str, source: str, target: str) -> list[Argv]:
        if self.migrate_command is None:
            return [_fill(self.start_command, guest=guest, host=target, source=source)]
        return [_fill(self.migrate_command, guest=guest, host=target, source=source)]

    def stop(self, guest: str, host: str) -> list[Argv]:
        if self.stop_command is None:
            return []
        return [_fill(self.stop_command, guest=guest, host=host)]

    def shutdown(self, guest: str, host: str) -> list[Argv]:
        return self.stop(guest, host)

    def release(self, guest: str, host: str, migrate: bool) -> list[Argv]:
        return []

    def probe_commands(self, guest: str, host: str) -> list[Argv]:
        return [_fill(self.ready_command, guest=guest, host=host)]

    def probe(self, guest: str, host: str, run: Runner) -> Probe:
        done = run(self.probe_commands(guest, host)[0])
        if done.ok:
            return Probe(Readiness.READY, "ready command exited 0")
        if done.returncode == 3:
            return Probe(Readiness.FAILED, done.why())
        if done.returncode in (124, 127):
            return Probe(Readiness.UNKNOWN, done.why())
        return Probe(Readiness.PENDING, f"ready command exited {done.returncode}")

    def hosts_down(self, hosts: Sequence[str], run: Runner) -> set[str]:
        if self.host_command is None or not hosts:
            return set()
        template = self.host_command

        def down(host: str) -> bool:
            return run(_fill(template, host=host)).returncode == 1

        # One check per host, at the same time: a dead host's check may hang a while.
        with ThreadPoolExecutor(min(len(hosts), 16), thread_name_prefix="host-check") as pool:
            answers = list(pool.map(down, hosts))
        return {host for host, is_down in zip(hosts, answers, strict=True) if is_down}
