"""The rules of the plan's own form (family `plan`): one well-formed assignment per
guest, and a reason for every guest left without a host. Their CP-SAT twin is how a plan
is read back from a solution (placement/solvers/cpsat/plans.py), not a constraint family.
"""

from __future__ import annotations

from collections import defaultdict

from placement.check.context import Checker, Context
from placement.check.report import Violation


def assignment_violations(context: Context) -> list[Violation]:
    """`assignment`: found while resolving the plan (`context.resolve`)."""
    return list(context.malformed)


def unplaced_violations(context: Context) -> list[Violation]:
    plan, decisions = context.plan, context.decisions
    assigned = {a.guest for a in plan.assignments}
    reasons: dict[str, list[str]] = defaultdict(list)
    for unplaced in plan.unplaced:
        reasons[unplaced.guest].append(unplaced.reason)
    violations = []
    for decision in decisions:
        name = decision.guest.name
        listed = reasons.get(name, [])
        if decision.host is not None:
            if listed:
                violations.append(
                    Violation(
                        "unplaced",
                        f"guest {name} is placed on {decision.host} but listed as unplaced",
                        (name,),
                        (decision.host,),
                    )
                )
            continue
        if name not in assigned:
            continue  # already an `assignment` violation
        if not listed:
            violations.append(
                Violation(
                    "unplaced",
                    f"guest {name} has no host but is not listed as unplaced with a reason",
                    (name,),
                )
            )
        elif len(listed) > 1:
            violations.append(
                Violation(
                    "unplaced", f"guest {name} is listed {len(listed)} times as unplaced", (name,)
                )
            )
        elif not (isinstance(listed[0], str) and listed[0].strip()):
            violations.append(
                Violation("unplaced", f"guest {name} is unplaced with an empty reason", (name,))
            )
    return violations


#: The checker of each rule of this family, by rule id.
CHECKERS: dict[str, Checker] = {
    "assignment": assignment_violations,
    "unplaced": unplaced_violations,
}
