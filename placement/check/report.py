"""What the checker returns: `Violation`, `CheckReport`, and their JSON form."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from placement.rules import RULE_IDS


def _str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class Violation:
    """One breach of one rule.

    `rule`: a stable rule id from the rule catalogue (`placement.rules.RULES`). `message`:
    one line saying what, where, when and by how much. `guests`, `hosts`: the names
    involved. `time_s`: the instant (seconds) the breach is worst at, or None for rules
    about the final state.
    """

    rule: str
    message: str
    guests: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    hosts: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    time_s: int | None = None


def _violation_tuple(value: Iterable[Violation]) -> tuple[Violation, ...]:
    return tuple(value)


@attrs.frozen
class CheckReport:
    """The checker's verdict: every violation found and the plan's metrics.

    `metrics` is plain JSON data: `objectives` (every objective's value), `placed` and
    `unplaced` (guest counts), `actions` (guest count per action), `pools` (per boot pool
    `limit`, `peak` load and `peak_at_s`, boots and migrations together), `hosts` (per
    host and resource, in the final state, `used`, `usable` and `utilisation`, the latter
    None when nothing is usable), `migrations` (`count`, summed `seconds`, `peak_running`
    cluster-wide and its `peak_at_s`, the highest `peak_per_host`, `done_s` when the last
    one ends, and `immovable_running`, the running guests that cannot be migrated), and
    `imbalance`, Proxmox's cluster imbalance in the final state (placement/imbalance.py).
    """

    violations: tuple[Violation, ...] = attrs.field(converter=_violation_tuple)
    metrics: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the plan breaks no rule."""
        return not self.violations


def violations_by_rule(report: CheckReport) -> dict[str, list[Violation]]:
    """The report's violations grouped by rule id, in the order of `RULES`."""
    grouped: dict[str, list[Violation]] = {}
    for rule in RULE_IDS:
        matching = [v for v in report.violations if v.rule == rule]
        if matching:
            grouped[rule] = matching
    return grouped


def violation_to_dict(violation: Violation) -> dict[str, Any]:
    """A violation as JSON data; the keys are the attrs field names."""
    return {
        "rule": violation.rule,
        "message": violation.message,
        "guests": list(violation.guests),
        "hosts": list(violation.hosts),
        "time_s": violation.time_s,
    }


def report_to_dict(report: CheckReport) -> dict[str, Any]:
    """The report as JSON data: `ok`, `violations` (a list) and `metrics`."""
    return {
        "ok": report.ok,
        "violations": [violation_to_dict(v) for v in report.violations],
        "metrics": _plain(report.metrics),
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
