"""Replay Proxmox's own CRS regression tests through `placement import proxmox` and the
`proxmox-*` re-creations, decision by decision.

    python -m bench.proxmox_replay [TEST_DIR ...]   (default: tests/data/proxmox-ha/*)

Each test directory holds the HA simulator's input (`hardware_status`, `service_config`,
`static_service_stats`, `datacenter.cfg`, `rules_config`, `cmdlist`) and `log.expect`,
the log of the real HA manager. The `cmdlist` is a list of steps, each a list of
commands run at one instant. For every step we

1. apply its commands to the simulated cluster (`power NODE on|off`, `network NODE off`
   fail a node; `shutdown NODE` with `shutdown_policy=migrate` puts it in maintenance;
   `service SID add NODE STATE RUNNING` adds a service),
2. write the cluster as Proxmox's own files would show it (`/cluster/resources`
   JSON, the HA resources and the HA manager's node status, `rules.cfg` as it is, the
   datacenter options) and import them with `import_proxmox`,
3. solve with the re-creation the importer names (`proxmox-static`, or
   `proxmox-basic`), then, with `ha-auto-rebalance`, `proxmox-rebalance` on the result,
4. compare, for every service the log decides in that step, our host with the log's:
   the node of its last change to `started` in the step, or none when the log says
   "no recovery node found". A service we move that the log leaves alone is a
   disagreement too.

The next step starts from the log's decisions, not ours, so that one disagreement does
not count again in every later step. What cannot be expressed is named, never skipped
silently: a command the replay does not know raises `ValueError`.
"""

from __future__ import annotations

import argparse
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

DATA = Path(__file__).parents[1] / "tests" / "data" / "proxmox-ha"

_STEP = re.compile(r"^\w+\s+(\d+)\s+cmdlist: execute (.*)$")
_STARTED = re.compile(
    r"service '([^']+)': state changed from '\w+' to 'started'\s+\(node = ([^,)]+)"
)
_NO_NODE = re.compile(r"recovering service '([^']+)' from fenced node '[^']+' failed")


@attrs.frozen
class Decision:
    """One decision of the real HA manager and ours: `expected` and `ours` are node
    names, or None for "no node"; `moved` marks a service we moved that the log did not
    decide about (its `expected` is where it was)."""

    test: str
    step: int
    service: str
    expected: str | None
    ours: str | None
    moved: bool = False

    @property
    def agrees(self) -> bool:
        return self.expected == self.ours


@attrs.define
class _Service:
    node: str
    state: str  # the requested HA state: started, stopped, ...
    running: bool = False


@attrs.define
class _Cluster:
    nodes: dict[str, dict[str, Any]]
    services: dict[str, _Service]
    node_state: dict[str, str]  # online, failed, maintenance, off


def _read(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else {}


def log_steps(log: str) -> list[dict[str, str | None]]:
    """Per cmdlist step (commands sharing one instant), service -> the node the HA
    manager decided (None: no recovery node found)."""
    steps: list[dict[str, str | None]] = []
    step_time: str | None = None
    for line in log.splitlines():
        match = _STEP.match(line)
        if match:
            if match.group(1) != step_time:
                steps.append({})
                step_time = match.group(1)
            continue
        if not steps:
            continue
        if started := _STARTED.search(line):
            steps[-1][started.group(1)] = started.group(2).strip()
        elif (failed := _NO_NODE.search(line)) and failed.group(1) not in steps[-1]:
            steps[-1][failed.group(1)] = None
    return steps


def _apply(cluster: _Cluster, command: str, shutdown_policy: str) -> None:
    words = command.split()
    match words:
        case ["power", node, "on"]:
            cluster.node_state[node] = "online"
        case ["power", node, "off"] | ["network", node, "off"]:
            cluster.node_state[node] = "failed"
        case ["shutdown", node] if shutdown_policy == "migrate":
            cluster.node_state[node] = "maintenance"
        case ["service", sid, "add", node, state, running]:
            requested = "started" if state in ("started", "enabled") else state
            cluster.services[sid] = _Service(node, requested, running == "1")
        case _:
            raise ValueError(f"command not replayed: {command!r}")


def _write_inputs(cluster: _Cluster, stats: dict[str, Any], folder: Path) -> dict[str, Path]:
    """The cluster as `pvesh get /cluster/resources` and `/cluster/ha/resources` show it."""
    resources: list[dict[str, Any]] = []
    for name, hardware in sorted(cluster.nodes.items()):
        # A node in HA maintenance is still up: pvesh shows it online, and the HA
        # manager's status says it is in maintenance.
        state = cluster.node_state.get(name, "off")
        status = "online" if state in ("online", "maintenance") else "offline"
        resources.append(
            {
                "type": "node",
                "node": name,
                "status": status,
                "maxcpu": hardware["maxcpu"],
                "maxmem": hardware["maxmem"],
            }
        )
    ha: list[dict[str, Any]] = []
    for sid, service in sorted(cluster.services.items()):
        kind, _, vmid = sid.partition(":")
        up = cluster.node_state.get(service.node) in ("online", "maintenance")
        usage = stats.get(sid, {})
        resources.append(
            {
                "type": "qemu" if kind == "vm" else "lxc",
                "vmid": int(vmid),
                "node": service.node,
                "status": ("running" if service.running else "stopped") if up else "unknown",
                "maxcpu": usage.get("maxcpu", 1),
                "maxmem": usage.get("maxmem", 512 * 1024 * 1024),
            }
        )
        ha.append({"sid": sid, "type": kind, "state": service.state})
    node_status = {name: state for name, state in cluster.node_state.items() if state != "off"}
    manager = {"manager_status": {"node_status": node_status}}
    paths = {
        "resources": folder / "cluster-resources.json",
        "ha": folder / "ha-resources.json",
        "status": folder / "manager-status.json",
    }
    paths["resources"].write_text(json.dumps(resources))
    paths["ha"].write_text(json.dumps(ha))
    paths["status"].write_text(json.dumps(manager))
    return paths


def _problem(cluster: _Cluster, test: Path, stats: dict[str, Any], folder: Path) -> Problem:
    paths = _write_inputs(cluster, stats, folder)
    rules = test / "rules_config"
    result = import_proxmox(
        paths["resources"],
        ha_resources=paths["ha"],
        ha_rules=rules if rules.is_file() else None,
        datacenter=test / "datacenter.cfg",
        ha_status=paths["status"],
    )
    return result.problem


def _solver(test: Path) -> tuple[str, bool]:
    crs = _read(test / "datacenter.cfg").get("crs", {})
    mode = "proxmox-basic" if crs.get("ha", "basic") == "basic" else "proxmox-static"
    return mode, bool(crs.get("ha-auto-rebalance"))


def _placed(problem: Problem, solver: str) -> dict[str, str | None]:
    plan = solve(problem, solver, SolveOptions(schedule="all-at-once"))
    return {a.guest: a.host for a in plan.assignments}


def _running_at(problem: Problem, hosts: dict[str, str | None]) -> Problem:
    """`problem` with every placed guest running where it was placed."""
    guests = [
        attrs.evolve(g, current_host=hosts[g.name], state="running")
        if hosts.get(g.name) is not None
        else g
        for g in problem.guests
    ]
    return attrs.evolve(problem, guests=guests)


def replay(test: Path) -> list[Decision]:
    """Every decision of the test's log next to ours (see the module docstring)."""
    hardware = _read(test / "hardware_status")
    datacenter = _read(test / "datacenter.cfg")
    shutdown_policy = str(datacenter.get("ha", {}).get("shutdown_policy", "conditional"))
    stats = _read(test / "static_service_stats")
    cluster = _Cluster(
        nodes=hardware,
        services={
            sid: _Service(conf["node"], "started" if conf["state"] == "enabled" else conf["state"])
            for sid, conf in _read(test / "service_config").items()
        },
        node_state={},
    )
    solver, auto_rebalance = _solver(test)
    expected_steps = log_steps((test / "log.expect").read_text())
    commands: list[list[str]] = _read(test / "cmdlist")
    decisions: list[Decision] = []
    with tempfile.TemporaryDirectory() as scratch:
        for step, step_commands in enumerate(commands):
            for command in step_commands:
                _apply(cluster, command, shutdown_policy)
            expected = expected_steps[step] if step < len(expected_steps) else {}
            problem = _problem(cluster, test, stats, Path(scratch))
            ours = _placed(problem, solver)
            if auto_rebalance:
                ours = _placed(_running_at(problem, ours), "proxmox-rebalance")
            for sid, node in sorted(expected.items()):
                decisions.append(Decision(test.name, step, sid, node, ours.get(sid)))
            for sid, service in sorted(cluster.services.items()):
                if sid in expected or sid not in ours:
                    continue
                was = service.node if service.running else None
                if was is not None and ours[sid] != was:
                    decisions.append(Decision(test.name, step, sid, was, ours[sid], moved=True))
            # The next step starts from the real manager's decisions.
            for sid, service in cluster.services.items():
                if sid in expected and expected[sid] is not None:
                    service.node = str(expected[sid])
                    service.running = service.state == "started"
                elif service.state == "started" and service.node in ours.values():
                    service.running = service.running or ours.get(sid) == service.node
    return decisions


def replay_dirs(folders: Sequence[Path]) -> Iterator[Path]:
    for folder in folders:
        if (folder / "log.expect").is_file():
            yield folder
        else:
            yield from sorted(p for p in folder.iterdir() if (p / "log.expect").is_file())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.proxmox_replay", description=__doc__)
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
                what = "moved by us, left by Proxmox" if d.moved else "decided"
                print(
                    f"  step {d.step} {d.service}: Proxmox {d.expected}, ours {d.ours} "
                    f"({what}) {mark}"
                )
    print(f"{'total':48} {agreed:>5} / {total:<9}")
    return 0 if agreed == total else 1


if __name__ == "__main__":
    sys.exit(main())
