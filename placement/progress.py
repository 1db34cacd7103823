"""Progress lines on the command line (the CLI's; the library only calls `on_progress`).

On a terminal every report is shown as it comes. In a service log or CI (`--progress`
with stderr not a terminal) a line comes when a stage begins and otherwise at most once
every `interval_s`, with a heartbeat that repeats the latest figures when nothing new
came, so a log shows the stage, the incumbent, the bound and the elapsed time every few
seconds without flooding.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any, TextIO

from placement.solvers import Progress

HEARTBEAT_S = 5.0


def _number(value: float) -> str:
    return f"{value:.4g}" if not float(value).is_integer() else str(int(value))


def progress_line(progress: Progress) -> str:
    """`progress  12.3 s  recovery  best 20455  bound 17093  gap 16.43%`."""
    parts = ["progress", f"{progress.elapsed_s:6.1f} s", progress.stage]
    if progress.objective is not None:
        parts.append(f"best {_number(progress.objective)}")
    if progress.bound is not None:
        parts.append(f"bound {_number(progress.bound)}")
    if progress.gap is not None:
        parts.append(f"gap {progress.gap:.2%}")
    return "  ".join(parts)


class ProgressPrinter:
    """An `on_progress` callback that prints `progress_line`s to `stream`: every report
    when `every_report`, else a stage's first and then one every `interval_s`; while
    `running`, a heartbeat line after `interval_s` without one."""

    def __init__(
        self, stream: TextIO, *, every_report: bool, interval_s: float = HEARTBEAT_S
    ) -> None:
        self._stream = stream
        self._every = every_report
        self._interval = interval_s
        self._lock = threading.Lock()
        self._latest: Progress | None = None
        self._printed_at = time.perf_counter()
        self._started = time.perf_counter()
        self._stage: str | None = None

    def __call__(self, progress: Progress) -> None:
        with self._lock:
            self._latest = progress
            due = time.perf_counter() - self._printed_at >= self._interval
            if self._every or due or progress.stage != self._stage:
                self._stage = progress.stage
                self._print(progress_line(progress))

    def _print(self, line: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            print(line, file=self._stream, flush=True)
        self._printed_at = time.perf_counter()

    @contextlib.contextmanager
    def running(self, what: str) -> Iterator[None]:
        """Announce `what` starts, and keep a heartbeat until the block ends."""
        self._started = time.perf_counter()
        with self._lock:
            self._print(f"progress  {0.0:6.1f} s  {what}")
        done = threading.Event()
        thread = threading.Thread(target=self._beat, args=(done,), daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def _beat(self, done: threading.Event) -> None:
        while not done.wait(0.2):
            with self._lock:
                if time.perf_counter() - self._printed_at < self._interval:
                    continue
                elapsed = time.perf_counter() - self._started
                if self._latest is None:
                    self._print(f"progress  {elapsed:6.1f} s  first plans (greedy seeds)")
                else:
                    latest = Progress(
                        elapsed_s=elapsed,
                        stage=self._latest.stage,
                        objective=self._latest.objective,
                        bound=self._latest.bound,
                        gap=self._latest.gap,
                    )
                    self._print(progress_line(latest))


def reporting(on_progress: Any, what: str) -> contextlib.AbstractContextManager[None]:
    """`on_progress.running(what)` for a `ProgressPrinter`, else nothing."""
    if isinstance(on_progress, ProgressPrinter):
        return on_progress.running(what)
    return contextlib.nullcontext()
