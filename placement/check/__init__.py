"""The independent plan checker: the specification of what a valid plan is.

`check(problem, plan)` verifies every rule of docs/rules.md and returns a `CheckReport`:
the violations found (each with a stable rule id, one human line, the guests and hosts
involved and the instant) and the plan's metrics (objective values, pool peaks, host
utilisation). It imports no solver, so a solver cannot grade its own homework.

How time works: instants are whole seconds from the plan's instant 0. Every interval is
half-open, `[start, end)`: a guest that stops holding a host at t=60 and a guest that
starts holding it at t=60 do not overlap. Every limit is checked by an event sweep, so
the cost is O((guests + events) log events), independent of the horizon.

Where things are: the rules are named once, in the rule catalogue (placement/rules.py).
Each rule's checker function lives in the module of its family, `plan_rules`,
`placement_rules`, `schedule_rules` or `migration_rules` (the CP-SAT model's rule
modules carry the same names), and is registered there in `CHECKERS` under its rule id.
`context` resolves the plan once for all of them; `metrics` measures it; `report` holds
the result types.
"""

from __future__ import annotations

import logging

from placement.check import migration_rules, placement_rules, plan_rules, schedule_rules
from placement.check.context import Checker, occupancies, resolve, resolved
from placement.check.metrics import metrics, objectives
from placement.check.report import (
    CheckReport,
    Violation,
    report_to_dict,
    violation_to_dict,
    violations_by_rule,
)
from placement.model import Problem
from placement.plan import Plan
from placement.rules import RULE_IDS

__all__ = [
    "CHECKERS",
    "RULES",
    "CheckReport",
    "Violation",
    "check",
    "objective_values",
    "report_to_dict",
    "violation_to_dict",
    "violations_by_rule",
]

logger = logging.getLogger(__name__)

#: Every rule id, in the order the checker reports them: the rule catalogue's
#: (`placement.rules.RULES`). docs/rules.md documents each.
RULES: tuple[str, ...] = RULE_IDS

#: The checker function of every rule, by rule id, from the family modules.
CHECKERS: dict[str, Checker] = {
    **plan_rules.CHECKERS,
    **placement_rules.CHECKERS,
    **schedule_rules.CHECKERS,
    **migration_rules.CHECKERS,
}


def check(problem: Problem, plan: Plan) -> CheckReport:
    """Verify `plan` against every rule of `problem`; see docs/rules.md.

    Returns every violation found (one per distinct breach, in the order of `RULES`) and
    the plan's metrics. Raises `InvalidPlanError` listing every assignment or unplaced
    entry that names a guest or host the problem does not have.
    """
    context = resolved(problem, plan)
    violations = [found for rule in RULES for found in CHECKERS[rule](context)]
    if violations:
        logger.debug("plan from %s breaks %d rule(s)", plan.solver, len(violations))
    return CheckReport(violations=violations, metrics=metrics(context))


def objective_values(problem: Problem, plan: Plan) -> dict[str, float]:
    """Every objective's value for `plan`, keyed by `Objective` value (`placed`, ...).

    `placed` is the priority-weighted count of placed guests, `migrations` the summed
    migration cost, `recovery` the priority-weighted sum of ready times (s), `makespan` the
    last ready time (s), `balance` the highest final used/usable ratio on an online host,
    `consolidate` the number of online hosts holding anything, `spread` the sum over online
    hosts of the squared distance of the load in steps from the even load, `imbalance`
    Proxmox's imbalance of the loads in steps (placement/imbalance.py). Computed as `check` does,
    whether or not the plan is valid; raises `InvalidPlanError` for unknown names.
    """
    decisions, _ = resolve(problem, plan)
    return objectives(problem, decisions, occupancies(problem, decisions))
