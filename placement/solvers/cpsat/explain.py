"""Why a guest stays unplaced when some host still has room for it: relaxation probes.

The pre-checks (`placement.diagnostics`) and the capacity explanation of the baselines
name the rule when a guest fits nowhere. When it does fit somewhere, what keeps it out is
an interaction: the boot pools, the batch limit, a host's boot limits or the stagger gap
leave no start instant within the horizon once the guests already placed are kept.

For small problems CP-SAT answers that precisely. The probe asks for a plan that keeps
every guest the plan placed, places this one too, and otherwise obeys every rule: if
that is infeasible, it is asked again with one rule family left out at a time; the
families whose removal makes it feasible are the ones that block the guest. CP-SAT's
assumption literals cannot do this here: the cumulative and no-overlap constraints that
carry the schedule rules take no enforcement literal, so each family is left out of a
fresh model instead. The phrase that names each family in a reason is the rule
catalogue's (placement/rules.py, `ModelFamily.keeps_out`).
"""

from __future__ import annotations

from ortools.sat.python import cp_model

from placement.rules import model_family
from placement.solvers.budget import Budget
from placement.solvers.cpsat.model import RULE_FAMILIES, build_model
from placement.solvers.cpsat.search import run_search
from placement.solvers.cpsat.view import ProblemView

# Probes build and solve a model per rule family: only small problems are worth it.
MAX_UNITS = 60
MAX_BOOTS = 60


def blocking_families(
    view: ProblemView, placed_units: set[int], unit: int, budget: Budget
) -> tuple[str, ...] | None:
    """The rule families that keep `unit` out while every unit in `placed_units` stays
    placed: a minimal set whose lifting lets it in (found by adding the families back one
    at a time and keeping out each one that makes the probe infeasible).

    None when the probe finds room for all of them with every rule (it was left out for
    a later objective stage or for lack of search time), when the probes ran out of `budget`,
    or when the problem is too large to probe.
    """
    if len(view.units) > MAX_UNITS or len(view.boots) > MAX_BOOTS:
        return None
    required = placed_units | {unit}
    if _probe(view, required, frozenset(), budget) is not False:
        return None
    lifted = set(RULE_FAMILIES)
    if not _probe(view, required, frozenset(lifted), budget):
        return None  # out even with every family lifted (e.g. the horizon): not ours to say
    blocking: list[str] = []
    for name in RULE_FAMILIES:
        lifted.discard(name)
        feasible = _probe(view, required, frozenset(lifted), budget)
        if feasible is None:
            return None
        if not feasible:
            lifted.add(name)
            blocking.append(name)
    return tuple(blocking)


def _probe(
    view: ProblemView, required: set[int], without: frozenset[str], budget: Budget
) -> bool | None:
    """Whether a plan places every unit of `required` with the families in `without`
    left out (None: unknown within what is left of `budget`)."""
    if budget.expired:
        return None
    variables = build_model(view, without=without)
    for u in required:
        variables.model.add(variables.placed[u] == 1)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    budget.limit_cpsat(solver.parameters, budget.remaining())
    status = run_search(solver, variables.model, budget)
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return True
    if status == cp_model.INFEASIBLE:
        return False
    return None


def reason_text(families: tuple[str, ...]) -> str:
    """The unplaced reason for a guest the probe found blocked by `families`."""
    named = "; ".join(model_family(name).keeps_out for name in families)
    if len(families) == 1:
        return (
            f"a host has room, but with every placed guest kept, {named} leaves no way to "
            "add it (placing it would unplace a guest of equal or higher rank)"
        )
    return (
        "a host has room, but with every placed guest kept, it fits only if all of these "
        f"are lifted: {named}"
    )
