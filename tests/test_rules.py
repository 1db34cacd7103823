"""The rule catalogue (placement/rules.py) is the one place a rule is named: the checker's
registry, the CP-SAT model's families, the unplaced reasons and docs/rules.md are held
to it here, so a rule added, renamed or dropped in one place and not the others fails."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from placement.check import CHECKERS, check
from placement.check import RULES as CHECK_RULES
from placement.rules import (
    MODEL_FAMILIES,
    RULE_IDS,
    RULES,
    Family,
    ModelFamily,
    families_enforcing,
    host_filters,
    model_family,
    rule,
    rules_in_family,
)
from placement.solvers.cpsat import model as cpsat_model
from placement.solvers.cpsat.explain import reason_text
from tests.test_check import guest, host, plan, problem, start

ROOT = Path(__file__).resolve().parent.parent
RULES_PAGE = ROOT / "docs" / "rules.md"


# --- the catalogue itself ----------------------------------------------------------------


def test_rule_ids_and_family_names_are_unique_and_one_line() -> None:
    assert len(set(RULE_IDS)) == len(RULES)
    assert len({f.name for f in MODEL_FAMILIES}) == len(MODEL_FAMILIES)
    for entry in RULES:
        assert re.fullmatch(r"[a-z][a-z_]*", entry.id), entry.id
        assert entry.meaning, entry.id
        assert "\n" not in entry.meaning, entry.id
        assert len(entry.meaning) <= 90, entry.id
    for family in MODEL_FAMILIES:
        assert family.keeps_out, family.name
        assert "\n" not in family.keeps_out, family.name


def test_lookups_read_the_catalogue() -> None:
    assert rule("stagger").family is Family.SCHEDULE
    assert model_family("host_boot_limits").enforces == ("host_boot_cpu", "host_max_starts")
    assert families_enforcing("capacity") == ("capacity", "capacity_over_time")
    assert families_enforcing("labels") == ()
    assert rules_in_family("migration") == rules_in_family(Family.MIGRATION)
    assert set(rules_in_family("migration")) == {
        "movable",
        "migration_time",
        "migration_concurrency",
        "migration_budget",
    }
    assert host_filters() == ("host_state", "allowed_hosts", "avoided_hosts", "labels", "frozen")
    with pytest.raises(KeyError):
        rule("no_such_rule")
    with pytest.raises(ValueError, match="no_such_family"):
        rules_in_family("no_such_family")


def test_the_families_partition_the_rules_in_report_order() -> None:
    by_family = [rule_id for family in Family for rule_id in rules_in_family(family)]
    assert sorted(by_family) == sorted(RULE_IDS)
    for family in Family:
        ids = rules_in_family(family)
        assert ids == tuple(r for r in RULE_IDS if r in ids)  # report order kept


def test_the_catalogue_imports_nothing_of_placement() -> None:
    """It is the bottom layer: the checker and the solvers import it, never the reverse."""
    tree = ast.parse((ROOT / "placement" / "rules.py").read_text(encoding="utf-8"))
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not {name for name in imported if name and name.startswith("placement")}


# --- the mapping between checker rules and model families --------------------------------


def test_every_enforced_id_is_a_rule() -> None:
    for family in MODEL_FAMILIES:
        assert family.enforces, family.name
        assert set(family.enforces) <= set(RULE_IDS), family


def test_every_rule_is_held_by_a_model_family_or_by_the_variables_never_both() -> None:
    """A rule the model must enforce has a family; a rule that says the variables hold it
    has none (else the note is stale)."""
    for entry in RULES:
        families = families_enforcing(entry.id)
        assert bool(families) != bool(entry.in_variables), (entry.id, families)


# --- the checker -------------------------------------------------------------------------


def test_every_rule_has_exactly_one_checker() -> None:
    assert set(CHECKERS) == set(RULE_IDS)
    assert CHECK_RULES == RULE_IDS


@pytest.mark.parametrize("family", list(Family))
def test_each_checker_lives_in_the_module_of_its_family(family: Family) -> None:
    module = importlib.import_module(f"placement.check.{family.value}_rules")
    assert tuple(module.CHECKERS) == rules_in_family(family)
    for rule_id, checker in module.CHECKERS.items():
        assert checker.__module__ == module.__name__, rule_id
        assert CHECKERS[rule_id] is checker


def test_check_reads_every_rule_from_the_registry_in_catalogue_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`check` asks each rule's registered checker, and reports in catalogue order: a
    registry entry replaced is what the report shows for that rule."""
    instance = problem([host("h1", 1000)], [guest("a", 600), guest("b", 600)])
    both = plan(start("a", "h1"), start("b", "h1"))
    assert [v.rule for v in check(instance, both).violations] == ["capacity"]
    monkeypatch.setitem(CHECKERS, "capacity", lambda context: [])
    assert check(instance, both).ok
    asked: list[str] = []
    for rule_id in RULE_IDS:
        monkeypatch.setitem(
            CHECKERS, rule_id, lambda context, rule_id=rule_id: asked.append(rule_id) or []
        )
    check(instance, both)
    assert tuple(asked) == RULE_IDS


# --- the CP-SAT model and its unplaced reasons -------------------------------------------


def test_the_model_adds_the_catalogue_families_in_its_order() -> None:
    assert tuple(cpsat_model.RULE_FAMILIES) == tuple(f.name for f in MODEL_FAMILIES)
    # No adder is registered for a family the catalogue does not have.
    assert set(cpsat_model._ADD_FAMILY) == set(cpsat_model.RULE_FAMILIES)


@pytest.mark.parametrize("family", MODEL_FAMILIES, ids=lambda f: f.name)
def test_each_model_family_lives_in_the_module_of_its_family(family: ModelFamily) -> None:
    add = cpsat_model.RULE_FAMILIES[family.name]
    assert add.__module__ == f"placement.solvers.cpsat.{family.family.value}_rules"


def test_an_unplaced_reason_names_each_blocking_family_by_its_catalogue_phrase() -> None:
    one = reason_text(("stagger",))
    assert model_family("stagger").keeps_out in one
    two = reason_text(("pool_capacity", "max_starts"))
    assert model_family("pool_capacity").keeps_out in two
    assert model_family("max_starts").keeps_out in two


# --- docs/rules.md -----------------------------------------------------------------------

_TABLE_HEADER = "| rule | family | what a valid plan does |"


def _table_rows() -> list[str]:
    """The summary table's rows as the catalogue gives them."""
    return [f"| [`{r.id}`](#{r.id}) | {r.family.value} | {r.meaning} |" for r in RULES]


def test_the_rules_page_has_one_section_per_rule_and_none_other() -> None:
    text = RULES_PAGE.read_text(encoding="utf-8")
    headings = re.findall(r"^### `([^`]+)`$", text, flags=re.M)
    assert sorted(headings) == sorted(RULE_IDS)
    assert len(headings) == len(set(headings))
    for entry in RULES:
        assert entry.anchor == f"rules.md#{entry.id}"


def test_the_rules_page_table_is_the_catalogue() -> None:
    """Every rule's id, family and one-line meaning, in report order; on a mismatch, the
    expected table is in the message, ready to paste."""
    lines = RULES_PAGE.read_text(encoding="utf-8").splitlines()
    start = lines.index(_TABLE_HEADER) + 2
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    expected = _table_rows()
    assert lines[start:end] == expected, "\n".join(expected)
