"""Ctrl-C on the command line: the first SIGINT stops the solve, which returns its best
verified plan so far (the command writes it and exits 130); a second one exits at once,
without a traceback, leaving every file as it was (plan files are replaced whole).

A CP-SAT search holds the main thread in C++, where Python cannot run a signal handler:
`call_stoppably` runs the solve in a worker thread while the main thread waits, so the
handler runs the moment the signal comes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TypeVar

from placement.solvers.stop import StopToken

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

T = TypeVar("T")


def _exit_at_once() -> None:
    with contextlib.suppress(OSError):
        os.write(2, b"placement: interrupted again: exiting now\n")
    os._exit(EXIT_INTERRUPTED)


@contextlib.contextmanager
def sigint_stops(
    token: StopToken | None, on_second: Callable[[], None] = _exit_at_once
) -> Iterator[None]:
    """While inside, the first SIGINT stops `token` and a second calls `on_second` (by
    default: exit with 130 at once; the bench raises KeyboardInterrupt instead, so its
    children are killed on the way out). Does nothing outside the main thread (where
    Python cannot set signal handlers)."""
    if token is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        if token.stopped:
            on_second()
        token.stop()

    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def call_stoppably(function: Callable[[], T]) -> T:
    """`function()` in a worker thread, the main thread waiting where signal handlers run;
    its exception, if any, is raised here."""
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(function())
        except BaseException as error:  # handed to the caller's thread
            errors.append(error)

    worker = threading.Thread(target=run, name="placement-solve", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
    if errors:
        raise errors[0]
    return results[0]


def interrupted_note(token: StopToken, started: float, *, proven: bool, has_plan: bool) -> str:
    """The one line that says a run was cut short: after how long, and what it kept."""
    after_s = (token.stopped_at or started) - started
    if not has_plan:
        return f"interrupted after {after_s:.1f} s: no plan yet, nothing written"
    kept = "best plan so far, proven optimal" if proven else "best plan so far, not proven"
    return f"interrupted after {after_s:.1f} s: {kept}"
