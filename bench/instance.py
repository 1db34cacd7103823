"""A benchmark instance and its published reference: the types every family module and
the runner share (`bench.suites` lists the instances; `bench.ha` builds some of them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from placement.model import Problem


@attrs.frozen
class Reference:
    """Published values of the summarised stage: `lower..upper` bracket the optimum (equal
    when it is proven); `heuristic` is the best published heuristic value, where known."""

    lower: float
    upper: float
    source: str
    heuristic: float | None = None

    @property
    def optimal(self) -> bool:
        return self.lower == self.upper


@attrs.frozen
class Instance:
    """One benchmark instance. `build()` makes the problem (in the worker process);
    `stage` is the objective stage the report summarises; `meta` says what the family
    needs to interpret a plan (for HA: the operation and its figures)."""

    name: str
    family: str
    stage: str
    build: Callable[[], Problem] = attrs.field(eq=False, repr=False)
    reference: Reference | None = None
    meta: dict[str, Any] = attrs.field(factory=dict, eq=False)
