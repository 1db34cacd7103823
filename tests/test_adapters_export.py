"""Exported scripts: syntax for every target, per-target name rules, and the `shell` target run
against a fake hook that records its calls and their times (compressed time)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from placement.adapters import (
    TARGETS,
    ExportError,
    ExportOptions,
    export_script,
    import_pacemaker,
    import_proxmox,
)
from placement.check import check
from placement.cli import main
from placement.codec import dump_plan, dump_problem, load_problem, write_json_atomic
from placement.plan import Action, Assignment, Plan, Status
from placement.solvers import SolveOptions, get_solver

DATA = Path(__file__).parent / "data" / "adapters"
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")

# Records every call as NUL-separated words (time, then the arguments), so any name,
# quotes and spaces included, reads back exactly. `start` of a guest listed in
# $FAIL_GUESTS fails; a started guest is running from then on.
FAKE_HOOK = r"""#!/usr/bin/env bash
# Calls run in parallel: a lock keeps each record whole.
exec 9>>"$CALLS.lock"
flock 9
printf '%s\0' "${EPOCHREALTIME}" "$@" >> "$CALLS"
printf '\n' >> "$CALLS"
flock -u 9
case "$1" in
    start)
        if grep -qxF -- "$2" "$FAIL_GUESTS" 2>/dev/null; then exit 1; fi
        printf '%s\n' "$2" >> "$RUNNING" ;;
    migrate) printf '%s\n' "$2" >> "$RUNNING" ;;
    is-running) grep -qxF -- "$2" "$RUNNING" 2>/dev/null ;;
esac
"""


def _problem(guests: list[dict[str, Any]], hosts: tuple[str, ...] = ("h1", "h2")) -> Any:
    return load_problem(
        {
            "schema_version": 1,
            "hosts": [{"name": h, "capacity": {"ram_mib": 65536}} for h in hosts],
            "guests": guests,
        }
    )


def _plan(assignments: list[Assignment]) -> Plan:
    return Plan(status=Status.FEASIBLE, solver="hand", runtime_s=0.0, assignments=assignments)


def _guest(name: str, after: tuple[str, ...] = (), duration: int = 10) -> dict[str, Any]:
    return {
        "name": name,
        "demand": {"ram_mib": 1024},
        "boot": {"duration_s": duration, "after": list(after)},
    }


def _run(
    script: str, tmp_path: Path, *args: str, fail: tuple[str, ...] = ()
) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    hook = tmp_path / "hook"
    hook.write_text(FAKE_HOOK)
    hook.chmod(0o755)
    path = tmp_path / "run.sh"
    path.write_text(script)
    (tmp_path / "fail").write_text("".join(f"{g}\n" for g in fail))
    env = {
        **os.environ,
        "CALLS": str(tmp_path / "calls"),
        "RUNNING": str(tmp_path / "running"),
        "FAIL_GUESTS": str(tmp_path / "fail"),
    }
    work = tmp_path / "cwd"
    work.mkdir(exist_ok=True)
    completed = subprocess.run(
        ["bash", str(path), "--hook", str(hook), "--poll", "1", *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    calls_path = tmp_path / "calls"
    calls = []
    if calls_path.exists():
        for record in calls_path.read_text().split("\0\n"):
            if record:
                calls.append(record.split("\0"))
    return completed, calls


def _actions(calls: list[list[str]], verb: str) -> list[list[str]]:
    return [call for call in calls if call[1] == verb]


# --- every target ----------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_every_target_passes_bash_n(target: str, tmp_path: Path) -> None:
    guests = [
        {**_guest("vm-1"), "current_host": "h1", "state": "running"},
        {**_guest("vm-2"), "current_host": "h1", "state": "running"},
        _guest("vm-3", after=("vm-1",)),
    ]
    if target == "proxmox":
        for guest, sid in zip(guests, ("vm:101", "ct:102", "vm:103"), strict=True):
            guest["name"] = sid
        guests[2]["boot"]["after"] = ["vm:101"]
    problem = _problem(guests)
    names = [g["name"] for g in guests]
    plan = _plan(
        [
            Assignment(names[0], "h2", Action.MIGRATE, 0, 11),
            Assignment(names[1], None, Action.STOP),
            Assignment(names[2], "h2", Action.START, 20, 30),
        ]
    )
    script = export_script(problem, plan, target, ExportOptions(ready_check="agent"))
    path = tmp_path / "s.sh"
    path.write_text(script)
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("target", "guest", "host", "message"),
    [
        ("pcs", "web 1", "h1", "not a Pacemaker resource id"),
        ("crm", "$(x)", "h1", "not a Pacemaker resource id"),
        ("proxmox", "web1", "pve1", "not a Proxmox service id"),
        ("proxmox", "vm:100", "pve_1", "not a Proxmox node name"),
        ("virsh", "a/b", "kvm1", "contains '/'"),
        ("virsh", "web1", "kvm1;rm", "libvirt URI"),
        ("shell", "-rf", "h1", "starts with '-'"),
        # (A control character in a name is refused sooner, when the problem is built:
        # tests/test_limits.py.)
        ("shell", "web1", "-h", "starts with '-'"),
    ],
)
def test_names_a_target_cannot_take_are_rejected(
    target: str, guest: str, host: str, message: str
) -> None:
    problem = _problem([_guest(guest)], hosts=(host,))
    plan = _plan([Assignment(guest, host, Action.START, 0, 10)])
    with pytest.raises(ExportError, match=message):
        export_script(problem, plan, target)


# --- the shell target, run -------------------------------------------------------------

HOSTILE_GUESTS = ("; rm -rf /", "$(touch x)", "`touch y`", "a'b\"c", "web 1 && touch z", "*")
HOSTILE_HOSTS = ("h$(touch w)", "h;touch v")


def test_hostile_names_reach_the_hook_verbatim_and_run_nothing_else(tmp_path: Path) -> None:
    problem = _problem([_guest(g) for g in HOSTILE_GUESTS], hosts=HOSTILE_HOSTS)
    plan = _plan(
        [
            Assignment(g, HOSTILE_HOSTS[i % 2], Action.START, 5 * i, 5 * i + 10)
            for i, g in enumerate(HOSTILE_GUESTS)
        ]
    )
    script = export_script(problem, plan, "shell")
    completed, calls = _run(script, tmp_path, "--time-scale", "0.01")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    starts = _actions(calls, "start")
    assert sorted(call[2:] for call in starts) == sorted(
        [g, HOSTILE_HOSTS[i % 2]] for i, g in enumerate(HOSTILE_GUESTS)
    )
    assert {call[1] for call in calls} <= {"start", "is-running"}
    # No name ran as a command: nothing was created anywhere we can see.
    assert sorted(p.name for p in (tmp_path / "cwd").iterdir()) == []
    assert not any(Path(name).exists() for name in ("x", "y", "z", "w", "v"))


def test_timeline_offsets_failures_and_dependencies(tmp_path: Path) -> None:
    guests = [_guest("db"), _guest("app", after=("db",)), _guest("web"), _guest("cache")]
    problem = _problem(guests)
    plan = _plan(
        [
            Assignment("db", "h1", Action.START, 0, 10),
            Assignment("web", "h2", Action.START, 100, 110),
            Assignment("app", "h2", Action.START, 150, 160),
            Assignment("cache", "h1", Action.START, 200, 210),
        ]
    )
    assert check(problem, plan).ok
    script = export_script(problem, plan, "shell")
    began = time.time()
    completed, calls = _run(script, tmp_path, "--time-scale", "0.01", fail=("db",))
    assert completed.returncode == 1
    started = {call[2]: float(call[0]) for call in _actions(calls, "start")}
    # db was tried and failed, app (after db) was never started, the others were.
    assert set(started) == {"db", "web", "cache"}
    assert "SKIPPED: app" in completed.stdout
    assert "skipped  app (dependency db did not come up)" in completed.stdout
    assert "failed   db (start command failed)" in completed.stdout
    # Offsets 0, 100 and 200 s at a time scale of 0.01: 0, 1 and 2 s after the first.
    assert started["web"] - started["db"] == pytest.approx(1.0, abs=0.6)
    assert started["cache"] - started["db"] == pytest.approx(2.0, abs=0.6)
    assert started["db"] - began < 5


def test_rerun_skips_running_guests_and_migrates(tmp_path: Path) -> None:
    guests = [_guest("a"), {**_guest("b"), "current_host": "h1", "state": "running"}]
    problem = _problem(guests)
    plan = _plan(
        [Assignment("a", "h1", Action.START, 0, 10), Assignment("b", "h2", Action.MIGRATE, 0, 6)]
    )
    script = export_script(problem, plan, "shell")
    first, calls = _run(script, tmp_path, "--time-scale", "0.01")
    assert first.returncode == 0, first.stdout
    assert [c[2:] for c in _actions(calls, "migrate")] == [["b", "h1", "h2"]]
    (tmp_path / "calls").unlink()
    second, calls = _run(script, tmp_path, "--time-scale", "0.01")
    assert second.returncode == 0
    assert _actions(calls, "start") == []
    assert _actions(calls, "migrate") == []
    assert "already runs on h1: start skipped" in second.stdout


def test_not_ready_in_time_is_a_failure(tmp_path: Path) -> None:
    problem = _problem([_guest("a")])
    plan = _plan([Assignment("a", "h1", Action.START, 0, 10)])
    never = ExportOptions(
        ready_check="command", ready_command='test "$1" = nobody', ready_timeout_s=2
    )
    completed, calls = _run(
        export_script(problem, plan, "shell", never), tmp_path, "--time-scale", "0.1"
    )
    assert completed.returncode == 1
    assert "failed   a (not ready after 2s)" in completed.stdout
    assert len(_actions(calls, "start")) == 1


def test_dry_run_calls_nothing(tmp_path: Path) -> None:
    problem = _problem([_guest("a"), {**_guest("b"), "current_host": "h1", "state": "running"}])
    plan = _plan(
        [Assignment("a", "h1", Action.START, 300, 310), Assignment("b", None, Action.STOP)]
    )
    completed, calls = _run(export_script(problem, plan, "shell"), tmp_path, "--dry-run")
    assert completed.returncode == 0
    assert calls == []
    assert "dry-run: " in completed.stdout
    assert "start a h1" in completed.stdout
    assert "stop b h1" in completed.stdout


# --- the three commands, from the tools' own output ------------------------------------


@pytest.mark.parametrize("tool", ["proxmox", "pacemaker"])
def test_import_solve_export_from_the_samples(tool: str, tmp_path: Path) -> None:
    if tool == "proxmox":
        pve = DATA / "proxmox"
        result = import_proxmox(
            pve / "cluster-resources.json",
            ha_resources=pve / "ha-resources.json",
            ha_rules=pve / "ha-rules.json",
            configs=pve / "configs",
        )
        target = "proxmox"
    else:
        result = import_pacemaker(DATA / "pacemaker" / "cib.xml")
        target = "pcs"
    plan = get_solver("cpsat").function(result.problem, SolveOptions(time_limit_s=2, workers=1))
    assert check(result.problem, plan).ok
    problem_path, plan_path, script_path = (
        tmp_path / "p.json",
        tmp_path / "plan.json",
        tmp_path / "r.sh",
    )
    write_json_atomic(problem_path, dump_problem(result.problem))
    write_json_atomic(plan_path, dump_plan(plan))
    assert (
        main(["export", str(problem_path), str(plan_path), "--to", target, "-o", str(script_path)])
        == 0
    )
    assert os.access(script_path, os.X_OK)
    assert subprocess.run(["bash", "-n", str(script_path)], check=False).returncode == 0
    restarted = [a.guest for a in plan.assignments if a.action is Action.START]
    assert restarted
    rehearsal = subprocess.run(
        [str(script_path), "--dry-run"], capture_output=True, text=True, timeout=60, check=False
    )
    assert rehearsal.returncode == 0, rehearsal.stdout + rehearsal.stderr
    for guest in restarted:
        host = plan.by_guest()[guest].host
        if target == "proxmox":
            tool, vmid = ("qm" if guest.startswith("vm:") else "pct"), guest.split(":")[1]
            assert f"dry-run: on {host}: {tool} start {vmid}" in rehearsal.stdout
        else:
            assert f"dry-run: pcs resource enable {guest}" in rehearsal.stdout
            assert f"pcs constraint location add placement-start-{guest} {guest} {host}" in (
                rehearsal.stdout
            )


def test_cli_export_refuses_a_plan_the_checker_rejects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    problem = _problem([_guest("a"), _guest("b", after=("a",))])
    plan = _plan(
        [Assignment("a", "h1", Action.START, 0, 10), Assignment("b", "h1", Action.START, 0, 10)]
    )
    write_json_atomic(tmp_path / "p.json", dump_problem(problem))
    write_json_atomic(tmp_path / "plan.json", dump_plan(plan))
    args = ["export", str(tmp_path / "p.json"), str(tmp_path / "plan.json"), "--to", "shell"]
    assert main(args) == 1
    assert "not exported" in capsys.readouterr().err
    assert main([*args, "--allow-violations"]) == 0
    bad = _problem([_guest("-x")])
    write_json_atomic(tmp_path / "p.json", dump_problem(bad))
    write_json_atomic(
        tmp_path / "plan.json", dump_plan(_plan([Assignment("-x", "h1", Action.START, 0, 10)]))
    )
    assert main(args) == 2
    assert "starts with '-'" in capsys.readouterr().err


def test_pcs_and_crm_scripts_leave_clone_instances_to_pacemaker(tmp_path: Path) -> None:
    """utilization-order2 imports its clone's instances as `rsc2:0` and `rsc2:1` (not
    Pacemaker resource ids): the script says Pacemaker places them, and acts on the rest."""
    cib = Path(__file__).parent / "data" / "pacemaker-cts" / "utilization-order2.xml"
    problem = import_pacemaker(cib).problem
    plan = get_solver("pacemaker-utilization").function(problem, SolveOptions())
    for target in ("pcs", "crm"):
        script = export_script(problem, plan, target)
        assert "clone instance 'rsc2:0'" in script
        names = [line for line in script.splitlines() if line.startswith("NAMES[")]
        assert names
        assert not any("rsc2:" in line for line in names)
