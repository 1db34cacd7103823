"""The rule catalogue: every rule of a valid plan, named once.

`RULES` lists the checker's rules in the order it reports them: each `Rule` has its
stable id (the `rule` of a `Violation`), its family, a one-line meaning and its section
of docs/rules.md. `MODEL_FAMILIES` lists the constraint families of the CP-SAT model in
the order `build_model` adds them: each names the rule ids it enforces and the phrase an
unplaced guest's reason uses when that family keeps it out.

The mapping between the two lives here only, on the model's side: a family says which
rules it enforces (`host_boot_limits` enforces `host_boot_cpu` and `host_max_starts`;
`capacity` and `capacity_over_time` share `capacity`). A rule no family enforces is held
by the model's variables themselves (their domains, the units, the start slots), and
says how in `Rule.in_variables`; tests/test_rules.py keeps the two sides in step.

The family of a rule is the module its checker function lives in,
`placement/check/<family>_rules.py`; the family of a model family is the module its
`add_<family>` function lives in, `placement/solvers/cpsat/<family>_rules.py`.

This module is the bottom layer: it imports nothing of placement, so `placement.check`,
the solvers and the docs can all read it.
"""

from __future__ import annotations

import enum

import attrs

#: The page that documents every rule, one section per rule id.
RULES_PAGE = "rules.md"


class Family(enum.Enum):
    """What a rule is about; also the module that holds its checker or its model twin."""

    PLAN = "plan"  #: the plan's own form: one well-formed assignment per guest
    PLACEMENT = "placement"  #: where a guest may run, and the room it takes there
    SCHEDULE = "schedule"  #: when guests boot: limits over time, order, gaps, horizon
    MIGRATION = "migration"  #: moves of running guests


@attrs.frozen
class Rule:
    """One rule of a valid plan, as the checker reports it.

    `id`: the stable rule id of its violations and its section in docs/rules.md.
    `family`: what it is about (and the checker module it lives in). `meaning`: one line
    saying what a valid plan does. `in_variables`: for a rule no CP-SAT family enforces,
    how the model's variables hold it; empty when a family of `MODEL_FAMILIES` does.
    `host_filter`: whether the rule only narrows the hosts a guest may use, whatever else
    runs there.
    """

    id: str
    family: Family
    meaning: str
    in_variables: str = ""
    host_filter: bool = False

    @property
    def anchor(self) -> str:
        """The rule's section in the docs, relative to the docs folder."""
        return f"{RULES_PAGE}#{self.id}"


@attrs.frozen
class ModelFamily:
    """One constraint family of the CP-SAT model (one `add_<name>` function).

    `name`: the family's name (what `build_model(without=...)` leaves out). `family`: the
    model module it lives in. `enforces`: the ids of the rules it enforces, wholly or in
    part. `keeps_out`: the phrase naming it in the reason of a guest it keeps unplaced.
    """

    name: str
    family: Family
    enforces: tuple[str, ...]
    keeps_out: str


_P, _S, _M = Family.PLACEMENT, Family.SCHEDULE, Family.MIGRATION
# How the model holds every host filter: it has no variable for a host a guest may not use.
_CANDIDATES = "a unit has host variables for its candidate hosts only"

#: Every rule, in the order the checker reports them.
RULES: tuple[Rule, ...] = (
    Rule(
        "assignment",
        Family.PLAN,
        "every guest has one assignment, with the action and times its state implies",
        "a plan is read from the solution, one assignment per guest",
    ),
    Rule(
        "unplaced",
        Family.PLAN,
        "every guest without a host is listed once as unplaced, with a reason",
        "a plan is read from the solution, with a reason per unplaced guest",
    ),
    Rule(
        "host_state",
        _P,
        "a guest runs only on an online host",
        _CANDIDATES,
        host_filter=True,
    ),
    Rule(
        "allowed_hosts",
        _P,
        "a guest that lists allowed hosts runs on one of them",
        _CANDIDATES,
        host_filter=True,
    ),
    Rule(
        "avoided_hosts",
        _P,
        "a guest never runs on a host it avoids",
        _CANDIDATES,
        host_filter=True,
    ),
    Rule(
        "labels",
        _P,
        "a guest runs only on a host with every label it requires",
        _CANDIDATES,
        host_filter=True,
    ),
    Rule(
        "frozen",
        _P,
        "a frozen guest's replacement starts on another host than the frozen copy",
        _CANDIDATES,
        host_filter=True,
    ),
    Rule(
        "movable",
        _M,
        "a guest with movable: false is never migrated",
        "a running guest that is not movable has its current host as only candidate",
    ),
    Rule("anti_affinity", _P, "two placed guests of one anti-affinity class never share a host"),
    Rule(
        "together",
        _P,
        "a together group is placed whole on one host, or not at all",
        "a together group is one unit, with one host",
    ),
    Rule("follows", _P, "a guest that follows another runs on that guest's host, or not at all"),
    Rule("capacity", _P, "at every instant, no host's resource holds more than it can give"),
    Rule("pool_capacity", _S, "at every instant, no boot pool carries more load than its limit"),
    Rule(
        "host_boot_cpu",
        _S,
        "at every instant, the guests booting on a host use at most its boot.cpu",
    ),
    Rule(
        "host_max_starts",
        _S,
        "at every instant, at most a host's boot.max_starts guests boot on it",
    ),
    Rule(
        "max_starts",
        _S,
        "at every instant, at most the schedule's max_starts guests boot in the cluster",
    ),
    Rule("after", _S, "a guest starts only once every guest in its boot.after is placed and ready"),
    Rule(
        "start_group",
        _S,
        "the started guests of one start group start at one instant",
        "the boots of one start group share one start slot",
    ),
    Rule("stagger", _S, "starts of different start groups are at least stagger_s apart"),
    Rule(
        "migration_time",
        _M,
        "a migration lasts exactly its migration time",
        "a move's interval has the move's fixed duration",
    ),
    Rule(
        "migration_concurrency",
        _M,
        "at every instant, at most max_per_host migrations run per host, max_total in all",
    ),
    Rule("migration_budget", _M, "a plan migrates at most max_moves guests"),
    Rule(
        "horizon",
        _S,
        "every started guest is ready, and every migration done, by horizon_s",
        "start and ready variables end at the horizon",
    ),
)

#: Every constraint family of the CP-SAT model, in the order `build_model` adds them.
MODEL_FAMILIES: tuple[ModelFamily, ...] = (
    ModelFamily("capacity", _P, ("capacity",), "host capacity"),
    ModelFamily("anti_affinity", _P, ("anti_affinity",), "anti-affinity"),
    ModelFamily("follows", _P, ("follows",), "running beside the guest it follows"),
    ModelFamily("after_placed", _P, ("after",), "its start dependencies being placed"),
    ModelFamily(
        "pool_capacity",
        _S,
        ("pool_capacity",),
        "the boot pool limits (no start instant leaves room in the pool)",
    ),
    ModelFamily("max_starts", _S, ("max_starts",), "the cluster-wide batch limit"),
    ModelFamily(
        "host_boot_limits",
        _S,
        ("host_boot_cpu", "host_max_starts"),
        "the boot CPU and concurrent-start limits of the hosts with room",
    ),
    ModelFamily("after", _S, ("after",), "the start dependencies (it would be ready too late)"),
    ModelFamily("stagger", _S, ("stagger",), "the stagger gap between start instants"),
    ModelFamily(
        "capacity_over_time",
        _M,
        ("capacity",),
        "host capacity while migrations still hold their source hosts",
    ),
    ModelFamily(
        "migration_concurrency",
        _M,
        ("migration_concurrency",),
        "the migration concurrency limits",
    ),
    ModelFamily("migration_budget", _M, ("migration_budget",), "the migration budget (max_moves)"),
    ModelFamily(
        "migration_load", _M, ("pool_capacity",), "the boot pool limits shared with migrations"
    ),
)

RULE_IDS: tuple[str, ...] = tuple(rule.id for rule in RULES)

_RULE_BY_ID = {rule.id: rule for rule in RULES}
_MODEL_FAMILY_BY_NAME = {family.name: family for family in MODEL_FAMILIES}


def rule(rule_id: str) -> Rule:
    """The rule with id `rule_id`; raises `KeyError` for an unknown id."""
    return _RULE_BY_ID[rule_id]


def rules_in_family(family: Family | str) -> tuple[str, ...]:
    """The ids of the rules of `family` (a `Family` or its value), in report order."""
    wanted = Family(family)
    return tuple(rule.id for rule in RULES if rule.family is wanted)


def host_filters() -> tuple[str, ...]:
    """The ids of the rules that only filter the hosts a guest may use, in report order."""
    return tuple(rule.id for rule in RULES if rule.host_filter)


def model_family(name: str) -> ModelFamily:
    """The CP-SAT constraint family called `name`; raises `KeyError` for an unknown name."""
    return _MODEL_FAMILY_BY_NAME[name]


def families_enforcing(rule_id: str) -> tuple[str, ...]:
    """The names of the CP-SAT families that enforce rule `rule_id`, in model order
    (empty for a rule the model's variables hold)."""
    return tuple(family.name for family in MODEL_FAMILIES if rule_id in family.enforces)
