"""Fake `virsh`, `pcs`, `crm`, `crm_resource`, `crm_failcount`, `crm_node`, `qm`, `pct`,
`pvesh`, `ssh`, `mv` and a `fakectl` for the shell driver: one small Python script
installed under each name in a temporary folder put first on PATH.

They share a JSON state file (`FAKE_STATE`, locked while used) holding each guest's
host, the instant it started and how it behaves: `boot_s` until it is ready,
`fail_starts` start attempts that fail first, `never_ready`, `crash` (it dies half-way
through its boot), `agent` (a guest agent is configured); and the hosts that are
`down`. Every call is appended to a log (`FAKE_LOG`, one JSON argument list a line), so
a test can check which commands ran and that no guest was started twice.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = r'''#!@PYTHON@
import fcntl, json, os, shlex, sys, time

STATE = os.environ["FAKE_STATE"]
LOG = os.environ["FAKE_LOG"]
tool = os.path.basename(sys.argv[0])
args = sys.argv[1:]
node = os.environ.get("FAKE_NODE", "pve1")

with open(LOG, "a") as log:
    log.write(json.dumps({"tool": tool, "args": args, "node": node}) + "\n")

lock = open(STATE + ".lock", "a")
fcntl.flock(lock, fcntl.LOCK_EX)
with open(STATE) as f:
    state = json.load(f)
now = time.time()


def save():
    with open(STATE + ".tmp", "w") as f:
        json.dump(state, f)
    os.replace(STATE + ".tmp", STATE)


def fail(message, code=1):
    save()
    print(message, file=sys.stderr)
    sys.exit(code)


def guest(name):
    if name not in state["guests"]:
        fail(f"error: failed to get domain '{name}'")
    return state["guests"][name]


def phase(g, host):
    """stopped, booting, ready or crashed, for guest g on host."""
    if g.get("started") is None or g.get("host") != host:
        return "stopped"
    age = now - g["started"]
    if g.get("crash") and age >= g.get("boot_s", 0.3) / 2:
        return "crashed"
    if g.get("never_ready") or age < g.get("boot_s", 0.3):
        return "booting"
    return "ready"


def start(name, host):
    if host in state["down"]:
        fail(f"error: failed to connect to the hypervisor on {host}")
    g = guest(name)
    # A guest whose host died is not running anywhere.
    if g.get("started") is not None and g.get("host") not in state["down"]:
        fail(f"error: Requested operation is not valid: domain '{name}' is already running")
    g["starts"] = g.get("starts", 0) + 1
    if g.get("fail_starts", 0) > 0:
        g["fail_starts"] -= 1
        g["failcount"] = {host: "INFINITY"}
        fail(f"error: Failed to start domain '{name}'")
    g["host"] = host
    g["started"] = now


def stop(name):
    g = guest(name)
    g["started"] = None


if tool == "virsh":
    uri = args[args.index("-c") + 1]
    host = uri.split("://", 1)[1].split("/", 1)[0]
    verb = args[2]
    if host in state["down"]:
        fail(f"error: failed to connect to the hypervisor {uri}")
    name = args[args.index("--domain") + 1] if "--domain" in args else None
    if verb == "start":
        start(name, host)
    elif verb == "domstate":
        p = phase(guest(name), host)
        print({"stopped": "shut off", "crashed": "crashed"}.get(p, "running"))
    elif verb == "qemu-agent-command":
        g = guest(name)
        p = phase(g, host)
        if p == "stopped":
            fail(f"error: Requested operation is not valid: domain is not running")
        if not g.get("agent", True):
            fail("error: argument unsupported: QEMU guest agent is not configured")
        if p != "ready":
            fail("error: Guest agent is not responding: QEMU guest agent is not connected")
        print('{"return":{}}')
    elif verb in ("destroy", "shutdown"):
        if guest(name).get("started") is None:
            fail(f"error: Requested operation is not valid: domain '{name}' is not running")
        stop(name)
    elif verb == "migrate":
        g = guest(name)
        target = args[args.index("--desturi") + 1].split("://", 1)[1].split("/", 1)[0]
        if phase(g, host) == "stopped":
            fail(f"error: Requested operation is not valid: domain '{name}' is not running")
        if g.get("fail_migrate") or target in state["down"]:
            fail(f"error: operation failed: migration of '{name}' to {target} failed")
        g["host"] = target
    elif verb == "define":
        pass
    else:
        fail(f"fake virsh: unknown verb {verb}")
elif tool in ("pcs", "crm"):
    if args[:3] == ["constraint", "location", "add"]:
        state.setdefault("constraints", {})[args[3]] = [args[4], args[5]]
    elif args[:2] == ["configure", "location"]:
        state.setdefault("constraints", {})[args[2]] = [args[3], args[5]]
    elif args[:2] in (["constraint", "remove"], ["configure", "delete"]):
        if state.get("constraints", {}).pop(args[-1], None) is None:
            fail(f"Error: Unable to find constraint - '{args[-1]}'")
    elif args[:2] in (["resource", "enable"], ["resource", "start"]):
        name = args[2]
        pins = [h for r, h in state.get("constraints", {}).values() if r == name]
        if not pins:
            fail(f"fake {tool}: {name} has no location constraint")
        g = guest(name)
        if g.get("started") is None and not g.get("failcount"):
            g["starts"] = g.get("starts", 0) + 1
            if g.get("fail_starts", 0) > 0:
                g["fail_starts"] -= 1
                g["failcount"] = {pins[0]: "INFINITY"}
            else:
                g["host"] = pins[0]
                g["started"] = now
    elif args[:2] in (["resource", "disable"], ["resource", "stop"]):
        stop(args[2])
    elif args[:2] == ["resource", "cleanup"]:
        guest(args[2])["failcount"] = {}
    else:
        fail(f"fake {tool}: unknown command {args}")
elif tool == "crm_resource":
    name = args[args.index("--resource") + 1]
    g = guest(name)
    if g.get("host") and phase(g, g["host"]) == "ready":
        print(g["host"])
elif tool == "crm_failcount":
    g = guest(args[args.index("--resource") + 1])
    host = args[args.index("--node") + 1]
    value = (g.get("failcount") or {}).get(host, "0")
    print(f"scope=status  name=fail-count-x value={value}")
elif tool == "crm_node":
    for i, host in enumerate(state["hosts"], start=1):
        print(f"{i} {host} {'lost' if host in state['down'] else 'member'}")
elif tool in ("qm", "pct"):
    name = ("vm:" if tool == "qm" else "ct:") + (args[1] if args[0] != "guest" else args[2])
    g = guest(name)
    if g.get("node") != node:
        kind = "qemu-server" if tool == "qm" else "lxc"
        fail(f"Configuration file 'nodes/{node}/{kind}/{name[3:]}.conf' does not exist", 2)
    if args[0] == "start":
        start(name, node)
    elif args[0] == "status":
        p = phase(g, node)
        print("status: stopped" if p in ("stopped", "crashed") else "status: running")
    elif args[0] == "guest":
        if not g.get("agent", True):
            fail("No QEMU guest agent configured", 255)
        if phase(g, node) != "ready":
            fail("QEMU guest agent is not running", 255)
    elif args[0] == "stop":
        stop(name)
    elif args[0] == "migrate":
        if g.get("started") is not None:
            fail("can't migrate running VM without --online")
        g["node"] = args[2]
    else:
        fail(f"fake {tool}: unknown command {args}")
elif tool == "pvesh":
    print(json.dumps([
        {"node": h, "status": "offline" if h in state["down"] else "online"}
        for h in state["hosts"]
    ]))
elif tool == "mv":
    source, target = args
    parts_from, parts_to = source.split("/"), target.split("/")
    name = ("vm:" if parts_from[5] == "qemu-server" else "ct:") + parts_from[6][:-5]
    g = guest(name)
    if g.get("node") != parts_from[4]:
        fail(f"mv: cannot stat '{source}': No such file or directory")
    g["node"] = parts_to[4]
elif tool == "ssh":
    where = [a for a in args if a.startswith("root@")][0][5:]
    command = args[args.index("--") + 1:]
    if where in state["down"]:
        fail(f"ssh: connect to host {where} port 22: No route to host", 255)
    save()
    fcntl.flock(lock, fcntl.LOCK_UN)
    os.environ["FAKE_NODE"] = where
    words = shlex.split(" ".join(command))
    os.execvp(words[0], words)
elif tool == "fakectl":
    verb, name = args[0], args[1]
    host = args[2] if len(args) > 2 else None
    if verb == "start":
        start(name, host)
    elif verb == "ready":
        p = phase(guest(name), host)
        save()
        sys.exit({"ready": 0, "crashed": 3}.get(p, 1))
    elif verb == "stop":
        stop(name)
    elif verb == "host":
        save()
        sys.exit(1 if name in state["down"] else 0)
save()
'''

TOOLS = (
    "virsh",
    "pcs",
    "crm",
    "crm_resource",
    "crm_failcount",
    "crm_node",
    "qm",
    "pct",
    "pvesh",
    "ssh",
    "mv",
    "fakectl",
)


class FakeCluster:
    """The fake tools' shared state and their log of calls."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.state_path = folder / "state.json"
        self.log_path = folder / "calls.jsonl"

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.state_path.read_text())
        return result

    def write(self, state: dict[str, Any]) -> None:
        self.state_path.write_text(json.dumps(state))

    def update(self, **changes: Any) -> None:
        state = self.state()
        state.update(changes)
        self.write(state)

    def guest(self, name: str, **changes: Any) -> None:
        state = self.state()
        state["guests"][name].update(changes)
        self.write(state)

    def calls(self, tool: str | None = None) -> list[list[str]]:
        """Every call's arguments (of `tool` only, if given), oldest first."""
        if not self.log_path.exists():
            return []
        found = []
        for line in self.log_path.read_text().splitlines():
            call = json.loads(line)
            if tool is None or call["tool"] == tool:
                found.append([call["tool"], *call["args"]])
        return found

    def starts(self) -> dict[str, int]:
        """How many times each guest's start reached the fake hypervisor."""
        return {name: g.get("starts", 0) for name, g in self.state()["guests"].items()}


def install(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    guests: dict[str, dict[str, Any]],
    hosts: tuple[str, ...] = ("h1", "h2"),
    boot_s: float = 0.3,
) -> FakeCluster:
    """Put the fake tools first on PATH, with `guests` (name -> behaviour: `boot_s`,
    `fail_starts`, `never_ready`, `crash`, `agent`, `node`) on `hosts`."""
    folder = tmp_path / "fake"
    folder.mkdir()
    script = SCRIPT.replace("@PYTHON@", sys.executable)
    for tool in TOOLS:
        path = folder / tool
        path.write_text(script)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    cluster = FakeCluster(folder)
    cluster.write(
        {
            "hosts": list(hosts),
            "down": [],
            "guests": {
                name: {"boot_s": boot_s, "started": None, "host": None, **behaviour}
                for name, behaviour in guests.items()
            },
        }
    )
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_STATE", str(cluster.state_path))
    monkeypatch.setenv("FAKE_LOG", str(cluster.log_path))
    return cluster
