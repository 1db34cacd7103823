"""Stopping a running solve from another thread: a signal handler (Ctrl-C), a user
interface, a supervisor with its own deadline.

    token = StopToken()
    options = SolveOptions(time_limit_s=60, stop=token)
    # in another thread, when the answer is needed now:
    token.stop()
    # the solve returns its best verified plan so far, at once

A solver looks at `stopped` between its steps (greedy seeds, neighbourhood rounds) and
runs each search it cannot split (a CP-SAT solve) under `searching`, which ends that
search when the token is stopped, even when `stop` comes while the search is starting.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator


class StopToken:
    """A flag that ends a solve early: the solve returns the best verified plan it has
    (with `statistics.interrupted` true), not proven. Thread-safe; stopping twice is
    the same as once."""

    # How often a search that is starting is told again to stop (it may not listen yet).
    _REPEAT_S = 0.02

    def __init__(self) -> None:
        self._fresh()

    def _fresh(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._searches: dict[int, Callable[[], None]] = {}
        self._ids = itertools.count()
        self.stopped_at: float | None = None
        """`time.perf_counter()` when `stop` was first called, or None."""

    def __getstate__(self) -> dict[str, object]:
        # Options travel to worker processes (a survey, the bench): a copy keeps whether
        # it was stopped; stopping the original does not reach it.
        return {"stopped_at": self.stopped_at}

    def __setstate__(self, state: dict[str, object]) -> None:
        self._fresh()
        stopped_at = state.get("stopped_at")
        if isinstance(stopped_at, float):
            self.stopped_at = stopped_at
            self._event.set()

    @property
    def stopped(self) -> bool:
        """Whether `stop` has been called."""
        return self._event.is_set()

    def stop(self) -> None:
        """Ask the solve to return now, with its best plan so far."""
        with self._lock:
            if self._event.is_set():
                return
            self.stopped_at = time.perf_counter()
            self._event.set()
            pending = list(self._searches.values())
        for stop_search in pending:
            stop_search()
        if pending:
            # A search registered just before its solver began listening ignores the
            # first call: repeat it until every such search has returned.
            threading.Thread(target=self._repeat, daemon=True).start()

    def _repeat(self) -> None:
        while True:
            time.sleep(self._REPEAT_S)
            with self._lock:
                pending = list(self._searches.values())
            if not pending:
                return
            for stop_search in pending:
                stop_search()

    @contextlib.contextmanager
    def searching(self, stop_search: Callable[[], None]) -> Iterator[bool]:
        """Run a search that `stop_search` ends; yields False when the token is already
        stopped (then do not start it)."""
        with self._lock:
            if self._event.is_set():
                started = False
            else:
                started = True
                key = next(self._ids)
                self._searches[key] = stop_search
        try:
            yield started
        finally:
            if started:
                with self._lock:
                    del self._searches[key]


def is_stopped(token: StopToken | None) -> bool:
    """Whether `token` is given and stopped."""
    return token is not None and token.stopped
