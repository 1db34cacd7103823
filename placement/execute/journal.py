"""The journal of a recovery: one JSON object per line, appended and flushed to disk
(fsync) as each thing happens, so that an executor that crashes can be restarted
without starting a guest twice.

A `start` line is written *before* its commands run (write-ahead): a crash between the
two leaves the guest marked started, and a restart asks the tool for its real state
rather than starting it again. docs/running.md lists every field.
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from placement.errors import InputError, InvalidInputError

#: The version of the journal's line format.
JOURNAL_VERSION = 1

#: Every kind of line, in the order they usually come.
KINDS = (
    "begin",
    "adopted",
    "shutdown",
    "decision",
    "start",
    "cancelled",
    "returned",
    "ready",
    "failed",
    "gave_up",
    "lost",
    "host_down",
    "stop",
    "summary",
)


def _tuple_of_argv(value: Any) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(str(word) for word in argv) for argv in value or ())


@attrs.frozen
class Record:
    """One line of the journal. `t_s`: seconds on the recovery's clock (plan seconds,
    from the first run's instant 0); `time`: the wall clock (UTC, ISO 8601); `guest`,
    `host`: names; `action` (for `start`: start, migrate or retry); `attempt`: the
    attempt's number; `why`: the reason in words; `argv`: the commands run, each an
    argument list; `data`: what else a line of its kind carries (the `begin` line's
    identification, the `summary`'s counts)."""

    kind: str
    t_s: float
    time: str = ""
    guest: str | None = None
    host: str | None = None
    action: str | None = None
    attempt: int | None = None
    why: str | None = None
    argv: tuple[tuple[str, ...], ...] = attrs.field(default=(), converter=_tuple_of_argv)
    data: dict[str, Any] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the line: fields that are empty are left out."""
        document: dict[str, Any] = {
            "v": JOURNAL_VERSION,
            "t_s": round(self.t_s, 3),
            "time": self.time,
            "kind": self.kind,
        }
        for key in ("guest", "host", "action", "attempt", "why"):
            value = getattr(self, key)
            if value is not None:
                document[key] = value
        if self.argv:
            document["argv"] = [list(argv) for argv in self.argv]
        document.update(self.data)
        return document

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> Record:
        known = {"v", "t_s", "time", "kind", "guest", "host", "action", "attempt", "why", "argv"}
        return cls(
            kind=str(document["kind"]),
            t_s=float(document["t_s"]),
            time=str(document.get("time", "")),
            guest=document.get("guest"),
            host=document.get("host"),
            action=document.get("action"),
            attempt=document.get("attempt"),
            why=document.get("why"),
            argv=document.get("argv") or (),
            data={k: v for k, v in document.items() if k not in known},
        )


def wall_clock() -> str:
    """Now, UTC, ISO 8601 to the millisecond."""
    now = datetime.datetime.now(datetime.UTC)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fingerprint(document: Any) -> str:
    """A short hash of a JSON document (the problem and the plan a journal is for)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class Journal:
    """An append-only JSON-lines file. `records()` reads what is there (a torn last
    line, from a crash while writing, is ignored); `acquire` holds it for one run;
    `append` writes one line and fsyncs."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file: Any = None

    def records(self) -> list[Record]:
        """Every whole line already in the file (none if it does not exist)."""
        if not self.path.exists():
            return []
        found = []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                document = json.loads(line)
                found.append(Record.from_dict(document))
            except (ValueError, KeyError, TypeError) as error:
                if number == len(lines):
                    break  # the line being written when the executor died
                raise InvalidInputError(
                    [InputError(f"{self.path}: line {number}", f"not a journal line: {error}")]
                ) from error
        return found

    def acquire(self) -> None:
        """Open the journal for appending and hold it (an exclusive lock) until `close`:
        a second executor on the same journal would start guests twice, so it is refused
        (`InvalidInputError`). A line torn by a crash while it was written never counted
        (its commands had not run): it goes."""
        if self._file is not None:
            return
        file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            file.close()
            raise InvalidInputError(
                [InputError(str(self.path), "in use by another placement run (one at a time)")]
            ) from error
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            os.truncate(self.path, data.rfind(b"\n") + 1)
        self._file = file

    def append(self, record: Record) -> None:
        """Write `record` as one line and make it durable before returning."""
        if self._file is None:
            self.acquire()
        self._file.write(json.dumps(record.to_dict(), separators=(",", ":")) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records())


@attrs.frozen
class Resumed:
    """What an earlier run's journal says: the guests it started and that were not lost
    since (name -> the host of their last start), their attempts and the instant of
    their last start, the guests it shut down, the hosts it saw go down, its clock when
    it ended, and its fingerprint."""

    started: dict[str, str]
    attempts: dict[str, int]
    shut_down: set[str]
    end_s: float
    fingerprint: str | None
    runs: int
    started_at: dict[str, float] = attrs.field(factory=dict)
    hosts_down: set[str] = attrs.field(factory=set)


def read_back(records: list[Record]) -> Resumed:
    """Summarise an earlier run's records for a restart."""
    started: dict[str, str] = {}
    started_at: dict[str, float] = {}
    attempts: dict[str, int] = {}
    shut_down: set[str] = set()
    hosts_down: set[str] = set()
    end_s = 0.0
    found: str | None = None
    runs = 0
    for record in records:
        end_s = max(end_s, record.t_s)
        if record.kind == "begin":
            runs += 1
            found = found or record.data.get("fingerprint")
        elif record.kind in ("start", "adopted") and record.guest and record.host:
            started[record.guest] = record.host
            if record.kind == "start":
                started_at[record.guest] = record.t_s
            if record.attempt is not None:
                attempts[record.guest] = record.attempt
        elif record.kind == "shutdown" and record.guest and record.data.get("ok"):
            shut_down.add(record.guest)
        elif record.kind in ("cancelled", "lost") and record.guest:
            # A stop withdrew the start before any of its commands ran, or the guest's
            # host went down under it: either way it does not run.
            started.pop(record.guest, None)
        elif record.kind == "host_down" and record.host:
            hosts_down.add(record.host)
    return Resumed(started, attempts, shut_down, end_s, found, runs, started_at, hosts_down)
