"""PSPLIB single-mode RCPSP (`.sm`) instances as placement problems.

The mapping: every non-dummy job is a guest that boots on the one host for the job's
duration (seconds), loading the boot pools `R1`..`R4` (the renewable resources, pool
capacity = availability) by its requests; a precedence `i -> j` becomes `j.boot.after`
naming `i`. The dummy source and sink (duration 0, no requests) are dropped: every boot
starts at or after 0 anyway, and the sink's start is the makespan, which is exactly the
`makespan` objective (the last ready time). Objective `["placed", "makespan"]`.

Format (Kolisch & Sprecher, PSPLIB): a header with `jobs (incl. supersource/sink ):`,
`horizon :` and `- renewable : 4 R`, then `PRECEDENCE RELATIONS:` (`jobnr #modes
#successors successors...`), `REQUESTS/DURATIONS:` (`jobnr mode duration R1..Rk`) and
`RESOURCEAVAILABILITIES:` (a header line, then one line of capacities).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from placement.model import BootProfile, Guest, Host, Problem, Schedule

HOST_NAME = "site"


class FormatError(ValueError):
    """The text is not a well-formed single-mode PSPLIB file."""


@attrs.frozen
class RcpspInstance:
    """A single-mode RCPSP instance as written in the file, jobs numbered from 1.

    `durations[j - 1]` is job j's duration, `requests[j - 1][r]` its demand for renewable
    resource r, `successors[j - 1]` the jobs that may start only after job j finishes.
    Job 1 is the dummy source and job `num_jobs` the dummy sink.
    """

    name: str
    horizon: int
    durations: tuple[int, ...]
    requests: tuple[tuple[int, ...], ...]
    successors: tuple[tuple[int, ...], ...]
    capacities: tuple[int, ...]

    @property
    def num_jobs(self) -> int:
        """Jobs including the dummy source and sink."""
        return len(self.durations)

    @property
    def resource_names(self) -> tuple[str, ...]:
        return tuple(f"R{index + 1}" for index in range(len(self.capacities)))

    def precedences(self) -> list[tuple[int, int]]:
        """Every (predecessor, successor) pair, including those of the dummies."""
        return [(job, nxt) for job, succ in enumerate(self.successors, 1) for nxt in succ]


_HEADER_INT = re.compile(r"^\s*(?P<key>[^:]+?)\s*:\s*(?P<value>\d+)")


def _ints(line: str, where: str) -> list[int]:
    try:
        return [int(token) for token in line.split()]
    except ValueError:
        raise FormatError(f"{where}: expected integers, got {line.strip()!r}") from None


def _section(lines: list[str], title: str) -> int:
    """The index of the first line after the line starting with `title`."""
    for index, line in enumerate(lines):
        if line.strip().startswith(title):
            return index + 1
    raise FormatError(f"no '{title}' section")


def _rows(lines: list[str], start: int) -> list[str]:
    """The non-empty lines from `start` up to the next line of asterisks."""
    rows = []
    for line in lines[start:]:
        if line.startswith("*"):
            break
        if line.strip():
            rows.append(line)
    return rows


def parse_sm(text: str, name: str) -> RcpspInstance:
    """Parse the text of a PSPLIB single-mode `.sm` file; raise `FormatError` if malformed."""
    lines = text.splitlines()
    header: dict[str, int] = {}
    for line in lines:
        if line.strip().startswith("PRECEDENCE RELATIONS"):
            break
        match = _HEADER_INT.match(line)
        if match:
            key = match.group("key").lstrip("- ").strip()
            header.setdefault(key, int(match.group("value")))
    try:
        num_jobs = header["jobs (incl. supersource/sink )"]
        horizon = header["horizon"]
        num_renewable = header["renewable"]
    except KeyError as missing:
        raise FormatError(f"{name}: header field {missing} missing") from None
    if header.get("nonrenewable", 0) or header.get("doubly constrained", 0):
        raise FormatError(f"{name}: non-renewable resources are not supported")

    precedence_rows = _rows(lines, _section(lines, "PRECEDENCE RELATIONS:") + 1)
    successors: dict[int, tuple[int, ...]] = {}
    for row in precedence_rows:
        values = _ints(row, f"{name}: precedence")
        if len(values) < 3 or values[1] != 1 or len(values) != 3 + values[2]:
            raise FormatError(f"{name}: bad precedence line {row.strip()!r}")
        successors[values[0]] = tuple(values[3:])

    # Skip the column header and the line of dashes.
    request_rows = _rows(lines, _section(lines, "REQUESTS/DURATIONS:") + 2)
    durations: dict[int, int] = {}
    requests: dict[int, tuple[int, ...]] = {}
    for row in request_rows:
        values = _ints(row, f"{name}: request")
        if len(values) != 3 + num_renewable or values[1] != 1:
            raise FormatError(f"{name}: bad request line {row.strip()!r}")
        durations[values[0]] = values[2]
        requests[values[0]] = tuple(values[3:])

    availability_rows = _rows(lines, _section(lines, "RESOURCEAVAILABILITIES:") + 1)
    if not availability_rows:
        raise FormatError(f"{name}: no resource availabilities")
    capacities = tuple(_ints(availability_rows[0], f"{name}: availabilities"))
    if len(capacities) != num_renewable:
        raise FormatError(f"{name}: {len(capacities)} capacities for {num_renewable} resources")

    jobs = range(1, num_jobs + 1)
    for table, what in ((successors, "precedence"), (durations, "request")):
        if sorted(table) != list(jobs):
            raise FormatError(f"{name}: {what} lines do not cover jobs 1..{num_jobs}")
    for job, succ in successors.items():
        if any(not 1 <= other <= num_jobs for other in succ):
            raise FormatError(f"{name}: job {job} has a successor outside 1..{num_jobs}")
    return RcpspInstance(
        name=name,
        horizon=horizon,
        durations=tuple(durations[j] for j in jobs),
        requests=tuple(requests[j] for j in jobs),
        successors=tuple(successors[j] for j in jobs),
        capacities=capacities,
    )


def read_sm(path: str | Path) -> RcpspInstance:
    """Read a `.sm` file; the instance is named after the file without its suffix."""
    path = Path(path)
    return parse_sm(path.read_text(encoding="ascii"), path.stem)


def job_guest(job: int) -> str:
    """The guest name of PSPLIB job `job` (1-based, as in the file)."""
    return f"job{job:03d}"


def _names(values: Iterable[str]) -> Any:
    # mypy's attrs plugin types the `tuple`/`frozenset` converters as taking an unsolved
    # `Iterable[_T_co]`, which no concrete argument matches; the converter does the rest.
    return tuple(values)


def to_problem(instance: RcpspInstance) -> Problem:
    """The placement problem whose best `makespan` (s) is the RCPSP optimum.

    One host takes every guest (it has no resources; guests demand none); the jobs'
    renewable resources are boot pools. The schedule horizon is the file's horizon (the
    sum of durations, so every precedence-feasible serial schedule fits).
    """
    source, sink = 1, instance.num_jobs
    predecessors: dict[int, list[int]] = {job: [] for job in range(1, instance.num_jobs + 1)}
    for before, after in instance.precedences():
        if before != source and after != sink:
            predecessors[after].append(before)
    names = instance.resource_names
    guests = []
    for job in range(2, instance.num_jobs):
        load = {
            pool: amount
            for pool, amount in zip(names, instance.requests[job - 1], strict=True)
            if amount > 0
        }
        guests.append(
            Guest(
                name=job_guest(job),
                demand={},
                hosts=_names([HOST_NAME]),
                boot=BootProfile(
                    duration_s=instance.durations[job - 1],
                    load=load,
                    after=_names(job_guest(p) for p in sorted(predecessors[job])),
                ),
            )
        )
    return Problem(
        hosts=[Host(name=HOST_NAME, capacity={})],
        guests=guests,
        boot_pools=dict(zip(names, instance.capacities, strict=True)),
        schedule=Schedule(horizon_s=max(instance.horizon, 1)),
        objective=["placed", "makespan"],
    )


@attrs.frozen
class RcpspReference:
    """Published bounds on an instance's optimal makespan: `optimal` when they meet."""

    lower: int
    upper: int

    @property
    def optimal(self) -> bool:
        return self.lower == self.upper


def load_reference(path: str | Path) -> Mapping[str, RcpspReference]:
    """Instance name -> best published bounds, from `j30_reference.csv`-style tables
    (columns `instance`, `best_lb`, `best_ub`)."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return {
            row["instance"]: RcpspReference(int(row["best_lb"]), int(row["best_ub"]))
            for row in csv.DictReader(handle)
        }
