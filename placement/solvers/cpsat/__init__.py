"""The optimiser: a CP-SAT model of every rule the checker knows, solved stage by stage.

`placement solve PROBLEM --solver cpsat` returns the best plan it can prove, with a bound
and a gap per objective stage. A greedy plan comes first (it is the hint and the
fallback); each stage keeps the earlier ones at the values found; every plan goes through
the checker before it is returned.

Modules: `view` indexes the problem (units, candidate hosts, boots, start slots);
`variables` creates the decision variables; `placement_rules` and `schedule_rules` add
one family of constraints per function; `objectives` builds each stage's expression;
`stages` runs the lexicographic solve.
"""

from __future__ import annotations

from placement.model import Problem
from placement.plan import Plan
from placement.solvers import SolveOptions, register


@register(
    "cpsat",
    kind="optimiser",
    summary="CP-SAT placement and boot schedule, lexicographic stages with bounds and gaps",
)
def solve_cpsat(problem: Problem, options: SolveOptions) -> Plan:
    """Solve `problem` with CP-SAT (see the package docstring)."""
    from placement.solvers.cpsat.strategy import solve_lexicographic

    return solve_lexicographic(problem, options)
