"""The optimiser: a CP-SAT model of every rule the checker knows, solved stage by stage.

`placement solve PROBLEM --solver cpsat` returns the best plan it can prove, with a bound
and a gap per objective stage. A greedy plan comes first (it is the hint and the
fallback); each stage keeps the earlier ones at the values found; every plan goes through
the checker before it is returned.

Modules, each importing only those above it:

- `view` indexes the problem (units, candidate hosts, boots, start slots); `variables`
  creates the decision variables; `placement_rules`, `schedule_rules` and
  `migration_rules` add one family of constraints per function; `model` assembles them
  (`build_model`) and holds the solution type, hints and holds; `objectives` builds each
  stage's expression; `imbalance_stage` the imbalance procedure's arithmetic.
- `search`: solver parameters, one stoppable search, progress and the stall watch.
- `explain` (CP-SAT probes), `reasons` (why a guest is unplaced), `plans` (solutions to
  checked plans with stage values and bounds).
- `stage_solver` (the model optimised one objective after another), `consolidate` (its
  host-emptying neighbourhoods), `stages` (the stage loop).
- the strategies: `large` (neighbourhoods of the incumbent), `aggregate` (type counts),
  `rebalance`; `incumbent` (the seed portfolio); `strategy` chooses among them.
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
