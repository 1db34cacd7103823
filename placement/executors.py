"""Run independent tasks in parallel: in this process, in local worker processes, or on a
Dask distributed cluster. The failure survey and the benchmark runner use the same
executors.

Every task is `function(shared, item) -> result`, where `shared` is sent to each worker
once (a cluster state, say) and `item` is small (the hosts that fail). Results come back
as each task finishes, as `(index, result)` pairs, `index` being the item's position:

    with make_executor(jobs=2) as executor:
        for index, result in executor.map_unordered(function, shared, items):
            ...

- `InlineExecutor`: one task after another in this process (`jobs=1`); no pickling.
- `ProcessExecutor(jobs)`: `jobs` local worker processes (forkserver where the platform
  has it, else spawn: never a fork of a process that may already run solver threads).
- `DaskExecutor(address)`: the workers of a running Dask scheduler
  (`tcp://HOST:PORT`), or a `distributed.Client` given by the caller (a `LocalCluster`
  in tests). `shared` is scattered to every worker once; futures stream back with
  `as_completed`. The `distributed` package is the optional `dask` extra: without it,
  `ExecutorUnavailableError` says how to install it.

`function`, `shared`, `item` and the results must pickle (Dask uses cloudpickle, the local
pool plain pickle: a module-level function, plain data). Executors never print.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, Protocol, TypeVar

logger = logging.getLogger(__name__)

__all__ = [
    "DaskExecutor",
    "Executor",
    "ExecutorUnavailableError",
    "InlineExecutor",
    "ProcessExecutor",
    "make_executor",
]

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")

#: Seconds `make_executor` waits for a Dask scheduler to answer.
CONNECT_TIMEOUT_S = 10.0
#: How to install the optional Dask support.
DASK_HINT = "the Dask executor needs the distributed package: pip install 'placement[dask]'"


class ExecutorUnavailableError(RuntimeError):
    """The executor asked for cannot run here (the `distributed` package is missing, or
    its scheduler cannot be reached)."""


class Executor(Protocol):
    """Runs `function(shared, item)` for every item, yielding `(index, result)` in
    finishing order. A task that raises re-raises its exception in the caller."""

    @property
    def description(self) -> str:
        """One line saying where the tasks run (for reports)."""
        ...

    @property
    def parallelism(self) -> int:
        """How many tasks run at once (worker threads in all)."""
        ...

    def map_unordered(
        self, function: Callable[[S, T], R], shared: S, items: Sequence[T]
    ) -> Iterator[tuple[int, R]]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Executor: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


class _Closing:
    """Context-manager methods shared by the executors."""

    def close(self) -> None:
        """Release the workers (nothing to do by default)."""

    def __enter__(self) -> Any:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class InlineExecutor(_Closing):
    """Every task in this process, in item order."""

    description = "in process"
    parallelism = 1

    def map_unordered(
        self, function: Callable[[S, T], R], shared: S, items: Sequence[T]
    ) -> Iterator[tuple[int, R]]:
        for index, item in enumerate(items):
            yield index, function(shared, item)


# The shared value of the local worker process this code runs in (set by `_install`).
_WORKER_SHARED: Any = None


def _install(shared: Any) -> None:
    global _WORKER_SHARED
    _WORKER_SHARED = shared


def _call(function: Callable[[Any, Any], Any], item: Any) -> Any:
    return function(_WORKER_SHARED, item)


def _process_context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class ProcessExecutor(_Closing):
    """`jobs` local worker processes; `shared` is sent to each one when it starts.

    A pool is started per `map_unordered` call (the shared value is its initialiser's
    argument) and shut down when the call ends, cancelling what has not started when the
    consumer stops early or is interrupted.
    """

    def __init__(self, jobs: int) -> None:
        if jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {jobs}")
        self.jobs = jobs

    @property
    def description(self) -> str:
        return f"{self.jobs} local worker process{'es' if self.jobs > 1 else ''}"

    @property
    def parallelism(self) -> int:
        return self.jobs

    def map_unordered(
        self, function: Callable[[S, T], R], shared: S, items: Sequence[T]
    ) -> Iterator[tuple[int, R]]:
        if not items:
            return
        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=min(self.jobs, len(items)),
            mp_context=_process_context(),
            initializer=_install,
            initargs=(shared,),
        )
        try:
            futures = {pool.submit(_call, function, item): i for i, item in enumerate(items)}
            for future in concurrent.futures.as_completed(futures):
                yield futures[future], future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as error:
        raise ExecutorUnavailableError(DASK_HINT) from error
    return distributed


class DaskExecutor(_Closing):
    """The workers of a Dask distributed cluster.

    `address`: a scheduler (`tcp://HOST:PORT`); the executor connects when built and
    closes its client on `close()`. Or `client`: a `distributed.Client` the caller owns
    (and closes), e.g. on a `LocalCluster`. Each worker must be able to import
    `placement` (and `bench`, for the benchmark runner) at the same version.
    """

    def __init__(
        self, address: str | None = None, *, client: Any = None, timeout_s: float = 10.0
    ) -> None:
        distributed = _distributed()
        if (address is None) == (client is None):
            raise ValueError("give a scheduler address or a client, not both or neither")
        self._owns_client = client is None
        if client is None:
            try:
                client = distributed.Client(address, timeout=timeout_s)
            except (OSError, TimeoutError) as error:
                raise ExecutorUnavailableError(
                    f"cannot reach the Dask scheduler at {address}: {error}"
                ) from error
        self.client = client

    @property
    def description(self) -> str:
        workers = self.client.scheduler_info().get("workers", {})
        return f"Dask scheduler {self.client.scheduler.address} ({len(workers)} worker(s))"

    @property
    def parallelism(self) -> int:
        threads: dict[str, int] = self.client.nthreads()
        return max(1, sum(threads.values()))

    def map_unordered(
        self, function: Callable[[S, T], R], shared: S, items: Sequence[T]
    ) -> Iterator[tuple[int, R]]:
        distributed = _distributed()
        if not items:
            return
        shared_future = self.client.scatter(shared, broadcast=True, hash=False)
        futures = [self.client.submit(function, shared_future, item, pure=False) for item in items]
        index = {future.key: i for i, future in enumerate(futures)}
        try:
            for future in distributed.as_completed(futures):
                result: R = future.result()
                yield index[future.key], result
        finally:
            self.client.cancel([*futures, shared_future])

    def close(self) -> None:
        if self._owns_client:
            self.client.close()


def make_executor(*, jobs: int = 1, scheduler: str | None = None) -> Executor:
    """The executor for `--jobs N` and `--scheduler ADDRESS`: Dask when a scheduler is
    given, else `jobs` local processes, or this process when `jobs` is 1."""
    if scheduler is not None:
        executor: Executor = DaskExecutor(scheduler, timeout_s=CONNECT_TIMEOUT_S)
        return executor
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    if jobs == 1:
        return InlineExecutor()
    return ProcessExecutor(jobs)
