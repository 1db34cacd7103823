"""Names from imported cluster state are untrusted: the rules they must follow.

A name reaches a generated script only as one shell word quoted by `shlex.quote`, so no
name can run a command of its own. What quoting cannot fix is a name the *target tool*
would misread: a leading dash parses as an option, a newline splits a log line or a
crm shell command, a slash is not a libvirt domain name, and Pacemaker ids must be XML
ids. `import_name_error` is the rule every importer applies; `target_name_error` adds the
rules of one export target.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable

from placement.errors import InputError
from placement.model import Problem
from placement.plan import Action, Plan

# Control characters (C0, DEL, C1) and the Unicode line and paragraph separators: none
# can be passed through a line-oriented tool or log safely.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

# A host name as Proxmox accepts a node name (and as a libvirt URI can carry it).
HOSTNAME = re.compile(
    r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
# Pacemaker resource ids are XML ids (NCName, ASCII subset): what pcs and crm accept.
XML_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# Proxmox guests are named by their HA service id: vm:VMID or ct:VMID.
PROXMOX_SID = re.compile(r"^(vm|ct):([1-9][0-9]{2,8})$")

MAX_NAME_LENGTH = 255

TARGETS = ("virsh", "pcs", "crm", "proxmox", "shell")


def quote(value: str | int) -> str:
    """One shell word that stands for exactly `value`."""
    return shlex.quote(str(value))


def import_name_error(name: str) -> str | None:
    """Why `name` cannot be imported at all (None: it can)."""
    if not name:
        return "a name must not be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"a name must be at most {MAX_NAME_LENGTH} characters, got {len(name)}"
    match = _CONTROL.search(name)
    if match:
        return f"name {name!r} contains the control character {match.group()!r}"
    return None


def target_name_error(name: str, kind: str, target: str) -> str | None:
    """Why `name` (a `kind`: "guest" or "host") cannot be passed to `target` (None: it can)."""
    error = import_name_error(name)
    if error is not None:
        return error
    if name.startswith("-"):
        return f"{kind} name {name!r} starts with '-', which {target} would read as an option"
    if target == "virsh":
        if kind == "host" and not HOSTNAME.match(name):
            return f"host name {name!r} is not a host name a libvirt URI can carry"
        if kind == "guest" and "/" in name:
            return f"guest name {name!r} contains '/', which libvirt does not allow"
    elif target in ("pcs", "crm"):
        if kind == "guest" and not XML_ID.match(name):
            return (
                f"guest name {name!r} is not a Pacemaker resource id "
                "(a letter or '_', then letters, digits, '_', '.', '-')"
            )
        if kind == "host" and any(char.isspace() for char in name):
            return f"host name {name!r} contains white space, which {target} splits"
    elif target == "proxmox":
        if kind == "guest" and not PROXMOX_SID.match(name):
            return f"guest name {name!r} is not a Proxmox service id such as 'vm:100' or 'ct:101'"
        if kind == "host" and not HOSTNAME.match(name):
            return f"host name {name!r} is not a Proxmox node name"
    return None


def plan_name_errors(
    problem: Problem,
    plan: Plan,
    target: str,
    *,
    verb: str,
    every_online_host: bool = False,
    skip: Callable[[str], bool] = lambda _guest: False,
) -> list[InputError]:
    """Every guest or host name of the plan's starts, migrations and stops (and the
    guests' current hosts) that `target`'s tool cannot take safely, once each, as
    "cannot VERB: why". `every_online_host`: every online host too (a policy that
    re-plans may send a guest to any of them); `skip`: guests left to the tool itself."""
    errors: list[InputError] = []
    seen: set[tuple[str, str]] = set()

    def check(name: str, kind: str, where: str) -> None:
        if (kind, name) in seen:
            return
        seen.add((kind, name))
        error = target_name_error(name, kind, target)
        if error is not None:
            errors.append(InputError(where, f"cannot {verb}: {error}"))

    for index, assignment in enumerate(plan.assignments):
        if assignment.action not in (Action.START, Action.MIGRATE, Action.STOP):
            continue
        if skip(assignment.guest):
            continue
        where = f"assignments[{index}]"
        check(assignment.guest, "guest", f"{where}.guest")
        if assignment.host is not None:
            check(assignment.host, "host", f"{where}.host")
        if problem.has_guest(assignment.guest):
            current = problem.guest(assignment.guest).current_host
            if current is not None:
                check(current, "host", f"{where}: current host of {assignment.guest}")
    if every_online_host:
        for host in problem.hosts:
            if host.online:
                check(host.name, "host", f"hosts: {host.name}")
    return errors
