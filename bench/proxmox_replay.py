"""Replay Proxmox's own HA regression tests through `placement import proxmox` and the
`proxmox-*` re-creations, decision by decision.

    python -m bench.proxmox_replay [-v] [TEST_DIR ...]   (default: tests/data/proxmox-ha/*)

Each test directory holds the HA simulator's input (`hardware_status`, `service_config`,
`static_service_stats`, `datacenter.cfg`, `rules_config` or `groups`, `cmdlist`) and
`log.expect`, the log of the real HA manager. The log drives the replay: it says, round by
round, what the manager saw (node states as it changed them, services as it added and
moved them, the commands the simulator ran) and what it decided. A decision is

- where a service HA starts goes: "re-balance selected ... node X for startup", or its
  change from `request_start` to `started` on its node;
- where a running service moves: "migrate service 'S' to node 'X'" or "relocate ...",
  unless a command asked for it (an operator's, or the balancer's, counted below);
- where a service of a fenced node is recovered: "recover service 'S' ... to node 'X'",
  or "no recovery node found" (counted once per recovery);
- with `ha-auto-rebalance`, each "auto rebalance - migrate S to X", and, at the end of the
  log, that the balancer finds no further move.

Before the first decision of a round, the replay writes the cluster as the manager sees
it the way Proxmox's own tools would show it (`/cluster/resources` JSON, the HA resources,
the HA manager's node status, the test's `rules_config` or `groups` as they are, the
datacenter options), imports it with `import_proxmox`, and solves it with the
re-creation the importer names (`proxmox-static` or `proxmox-basic`); for a balancer
decision, `proxmox-rebalance` limited to one move. Every decision of the round is
compared with our host for that service, and a running service we move that the round
leaves alone is a disagreement too. The state then follows the log, not our plan, so one
disagreement is not counted again in every later round. A test may start from an earlier
`manager_status`; the simulator's own resource types (`fa:`, which fail on purpose) are
left out.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from placement.adapters import import_proxmox
from placement.model import Problem
from placement.solvers import SolveOptions, solve
from placement.solvers.peers.proxmox_rebalance import proxmox_rebalance_placement

DATA = Path(__file__).parents[1] / "tests" / "data" / "proxmox-ha"

_LINE = re.compile(r"^(\w+)\s+(\d+)\s+(\S+):\s(.*)$")
_NODE = re.compile(r"^node '([^']+)': state changed from '[^']*' => '([^']+)'")
_ADD = re.compile(r"^adding new service '([^']+)' on node '([^']+)'")
_STATE = re.compile(r"^service '([^']+)': state changed from '[^']*' to '([^']+)'(?:\s+\((.*)\))?")
_SELECT = re.compile(r"^service (\S+): re-balance selected (?:new|current) node (\S+) for")
_MOVE = re.compile(r"^(?:migrate|relocate) service '([^']+)' to node '([^']+)'")
_RECOVER = re.compile(r"^recover service '([^']+)' from fenced node '[^']+' to node '([^']+)'")
_NO_NODE = re.compile(r"^recovering service '([^']+)' from fenced node '[^']+' failed")
_AUTO = re.compile(r"^auto rebalance - (?:migrate|relocate) (\S+) to (\S+)")
_COMMAND = re.compile(r"^got crm command: (?:migrate|relocate) (\S+) (\S+)")
_EXECUTE = re.compile(r"^execute (.*)$")
_GUEST = re.compile(r"^(vm|ct):\d+$")

# CRM service states, and where a service in them stands for the replay.
_ON_TARGET = {"migrate", "relocate", "request_start_balance"}  # running at its target
# Still on its node, using it, but not the scheduler's to move (it counts their usage).
_HELD = {"request_stop", "freeze", "error"}
_LEFT_OUT = {"fence", "stopped"}
_BALANCER = "(balancer)"


@attrs.frozen
class Decision:
    """One decision of the real HA manager and ours. `kind`: start, move, recover,
    rebalance, or stay (a running service we moved that the round left alone).
    `expected` and `ours` are node names, or None for "no node" (for `rebalance`
    of the balancer at the end of a log: None for "no move", else the service moved)."""

    test: str
    time: int
    kind: str
    service: str
    expected: str | None
    ours: str | None

    @property
    def agrees(self) -> bool:
        return self.expected == self.ours


@attrs.define
class _Service:
    node: str
    state: str  # the CRM's service state (request_start, started, migrate, ...)
    requested: str  # the configured state (started, stopped, disabled, ignored)
    target: str | None = None
    group: str | None = None
    failback: Any = None


def _read(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else {}


def _requested(state: str) -> str:
    return "started" if state == "enabled" else state


class _Replay:
    def __init__(self, test: Path, scratch: Path) -> None:
        self.test = test
        self.scratch = scratch
        self.hardware: dict[str, Any] = _read(test / "hardware_status")
        self.stats: dict[str, Any] = _read(test / "static_service_stats")
        crs = _read(test / "datacenter.cfg").get("crs", {})
        self.solver = "proxmox-basic" if crs.get("ha", "basic") == "basic" else "proxmox-static"
        self.auto_rebalance = bool(crs.get("ha-auto-rebalance"))
        self.config: dict[str, dict[str, Any]] = {
            sid: dict(conf) for sid, conf in _read(test / "service_config").items()
        }
        self.nodes: dict[str, str] = {}  # the manager's view: online, maintenance, ...
        self.services: dict[str, _Service] = {}
        # A test may start from a manager status of an earlier run.
        status = _read(test / "manager_status")
        self.nodes.update(status.get("node_status", {}))
        for sid, known in status.get("service_status", {}).items():
            conf = self.config.get(sid, {})
            self.services[sid] = _Service(
                known.get("node", conf.get("node", "")),
                known.get("state", "started"),
                _requested(str(conf.get("state", "started"))),
                known.get("target"),
                conf.get("group"),
                conf.get("failback"),
            )
        self.decisions: list[Decision] = []
        self._round: int | None = None
        self._placed: dict[str, str | None] | None = None
        self._snapshot: dict[str, _Service] = {}
        self._decided: set[str] = set()
        self._commanded: set[str] = set()
        self._unrecoverable: set[str] = set()

    # --- the cluster as Proxmox's tools would show it ----------------------------------

    def _where(self, service: _Service) -> tuple[str, str] | None:
        """(node, pvesh status) the service stands at for the manager, or None."""
        up = {name for name, state in self.nodes.items() if state in ("online", "maintenance")}
        if service.state in _HELD:
            return (service.node, "running") if service.node in up else None
        if service.requested != "started" or service.state in _LEFT_OUT:
            return None
        if service.state in _ON_TARGET:
            node = service.target or service.node
            return (node, "running") if node in up else None
        if service.state == "recovery":
            return service.node, "unknown"
        if service.node not in up:
            return None  # waits to be fenced: the manager does not act on it yet
        return service.node, ("stopped" if service.state == "request_start" else "running")

    def problem(self) -> Problem:
        resources: list[dict[str, Any]] = []
        for name, hardware in sorted(self.hardware.items()):
            up = self.nodes.get(name) in ("online", "maintenance")
            resources.append(
                {
                    "type": "node",
                    "node": name,
                    "status": "online" if up else "offline",
                    # Older tests name them cpus and memory.
                    "maxcpu": hardware.get("maxcpu", hardware.get("cpus")),
                    "maxmem": hardware.get("maxmem", hardware.get("memory")),
                }
            )
        ha: list[dict[str, Any]] = []
        for sid, service in sorted(self.services.items()):
            where = self._where(service)
            if where is None or not _GUEST.match(sid):
                continue
            kind, _, vmid = sid.partition(":")
            usage = self.stats.get(sid, {})
            resources.append(
                {
                    "type": "qemu" if kind == "vm" else "lxc",
                    "vmid": int(vmid),
                    "node": where[0],
                    "status": where[1],
                    "maxcpu": usage.get("maxcpu", 1),
                    "maxmem": usage.get("maxmem", 512 * 1024 * 1024),
                }
            )
            held = service.state in _HELD
            entry: dict[str, Any] = {"sid": sid, "state": "stopped" if held else "started"}
            if service.group is not None:
                entry["group"] = service.group
            if service.failback is not None:
                entry["failback"] = service.failback
            ha.append(entry)
        status = {"manager_status": {"node_status": dict(self.nodes)}}
        files = {"resources": resources, "ha": ha, "status": status}
        paths = {name: self.scratch / f"{name}.json" for name in files}
        for name, document in files.items():
            paths[name].write_text(json.dumps(document))
        rules = self.test / "rules_config"
        groups = self.test / "groups"
        result = import_proxmox(
            paths["resources"],
            ha_resources=paths["ha"],
            ha_rules=rules if rules.is_file() else None,
            ha_groups=groups if groups.is_file() and not rules.is_file() else None,
            datacenter=self.test / "datacenter.cfg",
            ha_status=paths["status"],
        )
        return result.problem

    # --- rounds ------------------------------------------------------------------------

    def _start_round(self, time: int) -> None:
        self._finish_round()
        self._round = time
        self._placed = None
        self._decided = set()
        self._commanded = set()

    def _placement(self) -> dict[str, str | None]:
        if self._placed is None:
            self._snapshot = copy.deepcopy(self.services)
            plan = solve(self.problem(), self.solver, SolveOptions(schedule="all-at-once"))
            self._placed = {a.guest: a.host for a in plan.assignments}
        return self._placed

    def _decide(self, kind: str, sid: str, node: str | None) -> None:
        assert self._round is not None
        if not _GUEST.match(sid):
            return  # the simulator's own resource types (fa:) are no guests
        ours = self._placement().get(sid)
        self._decided.add(sid)
        self.decisions.append(Decision(self.test.name, self._round, kind, sid, node, ours))

    def _finish_round(self) -> None:
        """Running services the round left alone must stay where they are in ours too."""
        if self._placed is None or self._round is None:
            return
        for sid, service in sorted(self._snapshot.items()):
            if sid in self._decided or sid in self._commanded or service.state != "started":
                continue
            if self.nodes.get(service.node) != "online" or sid not in self._placed:
                continue
            if self._placed[sid] != service.node:
                self.decisions.append(
                    Decision(
                        self.test.name, self._round, "stay", sid, service.node, self._placed[sid]
                    )
                )

    def _balancer_move(self) -> tuple[str, str | None] | None:
        """The first move of `proxmox-rebalance` on the cluster now, or None."""
        problem = self.problem()
        hosts = proxmox_rebalance_placement(problem, max_moves=1).hosts
        for guest in problem.guests:
            if problem.runs_now(guest) and hosts.get(guest.name) != guest.current_host:
                return guest.name, hosts.get(guest.name)
        return None

    # --- the log -----------------------------------------------------------------------

    def _command(self, command: str) -> None:
        words = command.split()
        if len(words) >= 3 and words[0] == "service":
            sid, verb = words[1], words[2]
            if verb == "add" and len(words) >= 5:
                self.config[sid] = {"node": words[3], "state": words[4]}
            elif verb == "delete":
                self.config.pop(sid, None)
                self.services.pop(sid, None)
            elif verb in ("started", "stopped", "disabled", "enabled", "ignored"):
                self.config.setdefault(sid, {})["state"] = verb
                if sid in self.services:
                    self.services[sid].requested = _requested(verb)

    def run(self) -> list[Decision]:
        for line in (self.test / "log.expect").read_text().splitlines():
            match = _LINE.match(line)
            if match is None:
                continue
            time, source, message = int(match.group(2)), match.group(3), match.group(4)
            if source == "cmdlist":
                if executed := _EXECUTE.match(message):
                    self._command(executed.group(1))
                continue
            if not source.endswith("/crm"):
                continue
            if time != self._round:
                self._start_round(time)
            self._line(message)
        self._finish_round()
        if self.auto_rebalance:
            self._round = -1
            move = self._balancer_move()
            self.decisions.append(
                Decision(self.test.name, -1, "rebalance", _BALANCER, None, move and move[0])
            )
        return self.decisions

    def _line(self, message: str) -> None:
        if node := _NODE.match(message):
            self.nodes[node.group(1)] = node.group(2)
        elif added := _ADD.match(message):
            sid, node_name = added.groups()
            conf = self.config.get(sid, {})
            # The simulator starts only what is configured started (or enabled).
            requested = _requested(str(conf.get("state", "stopped")))
            state = "request_start" if requested == "started" else "request_stop"
            self.services[sid] = _Service(
                node_name, state, requested, None, conf.get("group"), conf.get("failback")
            )
        elif select := _SELECT.match(message):
            self._decide("start", select.group(1), select.group(2))
        elif auto := _AUTO.match(message):
            sid, target = auto.groups()
            move = self._balancer_move()
            ours = move[1] if move is not None and move[0] == sid else None
            assert self._round is not None
            self.decisions.append(
                Decision(self.test.name, self._round, "rebalance", sid, target, ours)
            )
            self._commanded.add(sid)
        elif command := _COMMAND.match(message):
            self._commanded.add(command.group(1))
        elif moved := _MOVE.match(message):
            sid, target = moved.groups()
            if sid not in self._commanded:
                self._decide("move", sid, target)
        elif recovered := _RECOVER.match(message):
            self._decide("recover", recovered.group(1), recovered.group(2))
        elif lost := _NO_NODE.match(message):
            sid = lost.group(1)
            if sid not in self._unrecoverable:
                self._unrecoverable.add(sid)
                self._decide("recover", sid, None)
        elif changed := _STATE.match(message):
            self._state(*changed.groups())

    def _state(self, sid: str, state: str, params: str | None) -> None:
        service = self.services.get(sid)
        if service is None:
            return
        fields = dict(part.split(" = ", 1) for part in (params or "").split(", ") if " = " in part)
        if (
            service.state == "request_start"
            and state == "started"
            and sid not in self._decided
            and sid not in self._commanded
        ):
            self._decide("start", sid, fields.get("node", service.node))
        if state != "recovery":
            self._unrecoverable.discard(sid)
        service.state = state
        service.node = fields.get("node", service.node)
        service.target = fields.get("target")


def replay(test: Path) -> list[Decision]:
    """Every decision of the test's log next to ours (see the module docstring)."""
    with tempfile.TemporaryDirectory() as scratch:
        return _Replay(test, Path(scratch)).run()


def replay_dirs(folders: Sequence[Path]) -> Iterator[Path]:
    """The test directories in `folders` (each a test, or a folder of tests)."""
    for folder in folders:
        if (folder / "log.expect").is_file():
            yield folder
        else:
            yield from sorted(p for p in folder.iterdir() if (p / "log.expect").is_file())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.proxmox_replay",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("tests", nargs="*", type=Path, default=[DATA], help="test directories")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every decision")
    args = parser.parse_args(argv)
    total = agreed = 0
    print(f"{'test':48} {'agree':>5} / {'decisions':<9}")
    for test in replay_dirs(args.tests):
        decisions = replay(test)
        good = sum(d.agrees for d in decisions)
        total += len(decisions)
        agreed += good
        print(f"{test.name:48} {good:>5} / {len(decisions):<9}")
        for d in decisions:
            if args.verbose or not d.agrees:
                mark = "ok" if d.agrees else "DIFFERS"
                when = "end" if d.time < 0 else f"t={d.time}"
                print(f"  {when} {d.kind} {d.service}: Proxmox {d.expected}, ours {d.ours} {mark}")
    print(f"{'total':48} {agreed:>5} / {total:<9}")
    return 0 if agreed == total else 1


if __name__ == "__main__":
    sys.exit(main())
