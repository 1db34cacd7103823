"""JSON Schemas (draft 2020-12) of the problem and plan formats, schema_version 1.

The schemas are the single source of the structural rules: `placement.codec` validates
every document against them before building the model, and `placement schema` prints
them. What a schema cannot say (references between objects, duplicate names, dependency
cycles) is checked by the model, with the same kind of JSON-path error.
"""

from __future__ import annotations

from typing import Any

from placement.limits import (
    BAD_NAME_PATTERN,
    MAX_AMOUNT,
    MAX_COUNT,
    MAX_PLAN_FIGURE,
    MAX_PLAN_SECONDS,
    MAX_PRIORITY,
    MAX_RATIO,
    MAX_SECONDS,
)
from placement.model import (
    DEFAULT_OBJECTIVES,
    PACEMAKER_INFINITY,
    SCHEMA_VERSION,
    Contention,
    GuestState,
    HostState,
    Objective,
)
from placement.plan import Action, Status

JsonSchema = dict[str, Any]

#: The schemas' identifiers: URNs, stable and versioned, that claim no web address.
PROBLEM_SCHEMA_ID = "urn:placement:schema:problem:v1"
PLAN_SCHEMA_ID = "urn:placement:schema:plan:v1"

# Names: not empty, no control characters or lone surrogates (placement.limits).
# (`"type": "string"` inside the `not`: else null, allowed where a name is optional, would
# match the pattern vacuously and be refused.)
_CLEAN: JsonSchema = {"minLength": 1, "not": {"type": "string", "pattern": BAD_NAME_PATTERN}}
_NAME: JsonSchema = {"type": "string", **_CLEAN}
_OPTIONAL_NAME: JsonSchema = {"type": ["string", "null"], **_CLEAN}
_NAMES: JsonSchema = {"type": "array", "items": _NAME, "uniqueItems": True}
# Every number has a range (placement.limits): CP-SAT sums them in 64-bit integers.
_AMOUNT: JsonSchema = {"type": "integer", "minimum": 0, "maximum": MAX_AMOUNT}
_OPTIONAL_AMOUNT: JsonSchema = {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_AMOUNT}
_COUNT: JsonSchema = {"type": "integer", "minimum": 0, "maximum": MAX_COUNT}
_PRIORITY: JsonSchema = {"type": "integer", "minimum": 0, "maximum": MAX_PRIORITY}
_DURATION: JsonSchema = {"type": "integer", "minimum": 0, "maximum": MAX_SECONDS}
_OPTIONAL_COUNT: JsonSchema = {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_COUNT}
_OPTIONAL_LIMIT: JsonSchema = {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_COUNT}
_SECONDS: JsonSchema = {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_PLAN_SECONDS}
_FIGURE: JsonSchema = {"minimum": -MAX_PLAN_FIGURE, "maximum": MAX_PLAN_FIGURE}


def _amounts(description: str) -> JsonSchema:
    return {
        "type": "object",
        "description": description,
        "propertyNames": _CLEAN,
        "additionalProperties": _AMOUNT,
    }


def _object(properties: dict[str, JsonSchema], required: tuple[str, ...] = ()) -> JsonSchema:
    schema: JsonSchema = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = list(required)
    return schema


def _described(schema: JsonSchema, description: str) -> JsonSchema:
    return {**schema, "description": description}


_HOST_BOOT = _object(
    {
        "cpu": _described(
            _OPTIONAL_AMOUNT, "Summed boot CPU of guests booting here at once (null: no limit)."
        ),
        "max_starts": _described(_OPTIONAL_LIMIT, "Guests booting here at once (null: no limit)."),
    }
)

_HOST = _object(
    {
        "name": _NAME,
        "capacity": _amounts("Physical amount per resource (integers, unit in the name)."),
        "overcommit": {
            "type": "object",
            "description": "Ratio per resource: usable = floor((capacity - reserved) * ratio).",
            "propertyNames": _CLEAN,
            "additionalProperties": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": MAX_RATIO,
            },
        },
        "reserved": _amounts("Amount per resource kept for the hypervisor itself."),
        "state": {"enum": [state.value for state in HostState], "default": "online"},
        "domain": _described(_OPTIONAL_NAME, "Failure domain."),
        "labels": _NAMES,
        "boot": _HOST_BOOT,
    },
    required=("name", "capacity"),
)

_BOOT_PROFILE = _object(
    {
        "duration_s": _described(_DURATION, "Seconds from start until ready (default 60)."),
        "load": _amounts("Load added to each boot pool while booting."),
        "cpu": _described(_AMOUNT, "Boot CPU used on its host while booting (default 0)."),
        "after": _described(_NAMES, "Guests that must be ready before this one starts."),
        "group": _described(_OPTIONAL_NAME, "Start group: its guests start at one instant."),
    }
)

_GUEST = _object(
    {
        "name": _NAME,
        "demand": _amounts("Demand per resource (integers, unit in the name)."),
        "priority": _described(_PRIORITY, "Counts priority + 1 in the placed objective."),
        "current_host": _OPTIONAL_NAME,
        "state": {"enum": [state.value for state in GuestState], "default": "stopped"},
        "anti_affinity": _described(_NAMES, "Classes: guests sharing one never share a host."),
        "together": _described(_OPTIONAL_NAME, "Group that runs on one host."),
        "follows": _described(
            _OPTIONAL_NAME,
            "A guest this one runs beside: on its host or not at all (it may run alone).",
        ),
        "hosts": _described(
            {"type": ["array", "null"], "items": _NAME, "uniqueItems": True},
            "Allowed hosts (null: all).",
        ),
        "avoid_hosts": _NAMES,
        "labels": _described(_NAMES, "Labels every host it runs on must carry."),
        "migration_cost": _described(_PRIORITY, "Weight of moving it while it runs (default 1)."),
        "movable": _described(
            {"type": "boolean", "default": True},
            "False: cannot be live-migrated; while running it only stays or stops.",
        ),
        "boot": _BOOT_PROFILE,
    },
    required=("name", "demand"),
)

_SCHEDULE = _object(
    {
        "stagger_s": _described(_DURATION, "Minimum seconds between successive start instants."),
        "max_starts": _described(_OPTIONAL_LIMIT, "Batch limit: guests booting at once."),
        "horizon_s": _described(_DURATION, "Every guest must be ready by then."),
    }
)

_MIGRATION = _object(
    {
        "bandwidth_mib_s": _described(
            {"type": "integer", "minimum": 1, "maximum": MAX_AMOUNT},
            "MiB copied per second: a migration takes setup_s + ceil(memory / bandwidth) s.",
        ),
        "setup_s": _described(_DURATION, "Seconds every migration takes on top of the copy."),
        "memory_resource": _described(_NAME, "The resource a migration copies (ram_mib)."),
        "max_per_host": _described(
            _OPTIONAL_LIMIT, "Migrations at once involving one host (null: no limit)."
        ),
        "max_total": _described(
            _OPTIONAL_LIMIT, "Migrations at once cluster-wide (null: no limit)."
        ),
        "max_moves": _described(_OPTIONAL_COUNT, "Most migrations in a plan (null: no limit)."),
        "load": _amounts("Load added to each boot pool while a migration runs."),
    }
)

_RATIO: JsonSchema = {"type": "number", "minimum": 0, "maximum": 1}

_SIMULATION = _described(
    _object(
        {
            "sigma": _described(
                {"type": "number", "minimum": 0, "maximum": 3},
                "Lognormal spread of each guest's boot-duration multiplier (median 1; "
                "default 0: boots take duration_s).",
            ),
            "contention": _described(
                {"enum": [mode.value for mode in Contention], "default": "share"},
                "share: an overloaded pool splits its capacity among the boots; thrash: "
                "it also delivers less past saturation.",
            ),
            "thrash_slope": _described(
                {"type": "number", "minimum": 0, "maximum": 100},
                "Throughput lost per unit of overload (default 0.5).",
            ),
            "thrash_floor": _described(
                _RATIO, "Least share of its capacity a thrashing resource keeps (0.25)."
            ),
            "start_return_s": _described(
                _DURATION, "Seconds until a start command returns while the boot goes on (5)."
            ),
            "start_failure_probability": _described(
                _RATIO, "Chance that one start attempt fails part-way (0)."
            ),
            "retry_delay_s": _described(
                _DURATION, "Seconds from a failed start to its retry (30)."
            ),
            "max_retries": _described(_COUNT, "Retries after a failed start (1)."),
            "fencing": _described(
                {"type": "boolean", "default": False},
                "Fence a host whose boot pressure stays above fence_ratio for fence_grace_s.",
            ),
            "fence_ratio": _described(
                {"type": "number", "minimum": 1, "maximum": 1e6},
                "Demand over capacity that counts as overload for fencing (1.5).",
            ),
            "fence_grace_s": _described(
                _DURATION, "Seconds of continuous overload before a host is fenced (60)."
            ),
            "host_failures": _described(
                {
                    "type": "array",
                    "items": _object(
                        {
                            "host": _NAME,
                            "at_s": {"type": "number", "minimum": 0, "maximum": 1e9},
                        },
                        ("host", "at_s"),
                    ),
                },
                "Hosts that fail during the recovery, and when.",
            ),
            "random_host_failure_probability": _described(
                _RATIO,
                "Chance per run that one host receiving guests fails at a random instant.",
            ),
            "duration_factors": {
                "type": "object",
                "description": "Fixed boot-duration multiplier per guest name.",
                "propertyNames": _CLEAN,
                "additionalProperties": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": MAX_RATIO,
                },
            },
        }
    ),
    "How `placement simulate` runs a plan: boot-time noise, contention, failures.",
)

_SCORE: JsonSchema = {
    "type": "integer",
    "minimum": -PACEMAKER_INFINITY,
    "maximum": PACEMAKER_INFINITY,
}

_PACEMAKER = _described(
    {
        # null (the default) is the same as leaving it out: running guests stay.
        **_object(
            {
                "stickiness": {
                    "type": "object",
                    "description": "Guest -> resource-stickiness, added to the score of the "
                    "host it runs on (not listed: 0).",
                    "propertyNames": _CLEAN,
                    "additionalProperties": _SCORE,
                },
                "clones": {
                    "type": "object",
                    "description": "Clone id -> the guests that are its interchangeable instances.",
                    "propertyNames": _CLEAN,
                    "additionalProperties": _NAMES,
                },
                "scores": {
                    "type": "object",
                    "description": "Guest -> host -> finite location score.",
                    "propertyNames": _CLEAN,
                    "additionalProperties": {
                        "type": "object",
                        "propertyNames": _CLEAN,
                        "additionalProperties": _SCORE,
                    },
                },
            }
        ),
        "type": ["object", "null"],
    },
    "Pacemaker's scores, read only by the pacemaker-* re-creations: with this block they "
    "assign every guest afresh, running ones included, as Pacemaker does.",
)

_PROXMOX = _described(
    _object(
        {
            "rebalance_on_start": _described(
                {"type": "boolean", "default": False},
                "Proxmox's ha-rebalance-on-start: a guest HA starts goes to the best-scored "
                "node, not the node it is configured on.",
            ),
            "node_affinity": _described(
                {
                    "type": "array",
                    "items": _object(
                        {
                            "guests": _NAMES,
                            "nodes": {
                                "type": "object",
                                "description": "Node name -> priority (higher first).",
                                "propertyNames": _CLEAN,
                                "additionalProperties": _COUNT,
                            },
                            "strict": {"type": "boolean", "default": False},
                        },
                        ("guests", "nodes"),
                    ),
                },
                "Proxmox VE 9 HA node-affinity rules with node priorities.",
            ),
            "no_failback": _described(
                _NAMES,
                "Guests with failback off: they stay on any node their rule allows.",
            ),
            "unmanaged": _described(
                _NAMES,
                "Guests that are not HA resources: Proxmox HA neither counts, starts "
                "nor recovers them.",
            ),
            "cpus": {
                "type": "object",
                "description": "Per guest, the CPUs Proxmox's static scheduler counts where "
                "that is not its vcpus demand (0: every CPU of a node).",
                "propertyNames": _CLEAN,
                "additionalProperties": {"type": "number", "minimum": 0, "maximum": MAX_RATIO},
            },
        }
    ),
    "The Proxmox HA configuration the proxmox-* re-creations follow (other solvers ignore it).",
)

_PROBLEM_SCHEMA: JsonSchema = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": PROBLEM_SCHEMA_ID,
    "title": "placement problem",
    "description": "A cluster (hosts, guests, boot pools) and what to decide: where each "
    "guest runs and when it starts.",
    **_object(
        {
            "schema_version": {"const": SCHEMA_VERSION},
            "hosts": {"type": "array", "items": _HOST},
            "guests": {"type": "array", "items": _GUEST},
            "boot_pools": _amounts("Cluster-wide limit on the summed boot load per pool."),
            "schedule": _SCHEDULE,
            "migration": _MIGRATION,
            "simulation": _SIMULATION,
            "pacemaker": _PACEMAKER,
            "proxmox": _PROXMOX,
            "objective": {
                "type": "array",
                "items": {"enum": [objective.value for objective in Objective]},
                "uniqueItems": True,
            },
        },
        required=("schema_version", "hosts", "guests"),
    ),
}

_STAGE = _object(
    {
        "name": _NAME,
        "value": {"type": "number", **_FIGURE},
        "bound": {"type": ["number", "null"], **_FIGURE},
        "gap": {"type": ["number", "null"], "minimum": 0, "maximum": MAX_PLAN_FIGURE},
    },
    required=("name", "value"),
)

_ASSIGNMENT = _object(
    {
        "guest": _NAME,
        "host": {"type": ["string", "null"], "minLength": 1},
        "action": {"enum": [action.value for action in Action]},
        "start_s": _SECONDS,
        "ready_s": _SECONDS,
    },
    required=("guest", "host", "action"),
)

_SOME_OBJECT: JsonSchema = {"type": ["object", "null"]}
_OBJECTS: JsonSchema = {"type": "array", "items": {"type": "object"}}
# The solver's account of its search (placement.statistics): the records' own fields are
# checked when the plan is read (every key known, every figure of its type).
_STATISTICS = _object(
    {
        "first_plan_s": {"type": ["number", "null"], "minimum": 0, "maximum": MAX_PLAN_FIGURE},
        "returned": {"type": ["string", "null"]},
        "interrupted": {"type": "boolean"},
        "stalled": {"type": "boolean"},
        "wall_cut": {"type": "boolean"},
        "model_skipped": {"type": ["string", "null"]},
        "model": _SOME_OBJECT,
        "seeds": _OBJECTS,
        "incumbents": _OBJECTS,
        "stages": _OBJECTS,
        "type_counts": _SOME_OBJECT,
        "neighbourhoods": _OBJECTS,
        "schedule_search": _SOME_OBJECT,
        "lean": {"type": ["string", "null"]},
        "rebalance": _SOME_OBJECT,
        "portfolio": _SOME_OBJECT,
        "hysteresis": _SOME_OBJECT,
        "note": {"type": ["string", "null"]},
        "extra": {"type": "object"},
    }
)

_PLAN_SCHEMA: JsonSchema = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": PLAN_SCHEMA_ID,
    "title": "placement plan",
    "description": "A solver's answer: per guest its host, action, start and ready time; "
    "the objective stages with bounds and gaps; the guests left unplaced and why.",
    **_object(
        {
            "schema_version": {"const": SCHEMA_VERSION},
            "status": {"enum": [status.value for status in Status]},
            "solver": {"type": "string"},
            "runtime_s": {"type": "number", "minimum": 0, "maximum": MAX_PLAN_FIGURE},
            "stages": {"type": "array", "items": _STAGE},
            "assignments": {"type": "array", "items": _ASSIGNMENT},
            "unplaced": {
                "type": "array",
                "items": _object(
                    {"guest": _NAME, "reason": {"type": "string"}}, ("guest", "reason")
                ),
            },
            "statistics": _STATISTICS,
            "metrics": {"type": "object"},
        },
        required=("schema_version", "status", "solver", "runtime_s", "assignments"),
    ),
}


# --- annotations ---------------------------------------------------------------------------
# Every property's title, description (when the structure above has none), default (for an
# optional property: what the model assumes when the key is absent) and one example, by
# JSON path. `_annotated` copies them into the schemas; tests/test_schema_docs.py checks
# that every property has them, that each default is the model's, and that docs/format.md
# says the same.
_ABSENT = object()
_ANNOTATIONS: dict[str, tuple[str, str | None, Any, Any]] = {
    # path: (title, description or None, default or _ABSENT when required, example)
    "schema_version": ("Schema version", "The format version; always 1.", _ABSENT, 1),
    "hosts": (
        "Hosts",
        "The hypervisor nodes.",
        _ABSENT,
        [{"name": "kvm08", "capacity": {"ram_mib": 524288}}],
    ),
    "hosts[].name": ("Host name", "Unique host name.", _ABSENT, "kvm08"),
    "hosts[].capacity": ("Capacity", None, _ABSENT, {"ram_mib": 524288, "vcpus": 64}),
    "hosts[].overcommit": ("Overcommit", None, {}, {"vcpus": 4.0}),
    "hosts[].reserved": ("Reserved", None, {}, {"ram_mib": 16384}),
    "hosts[].state": ("Host state", "Only online hosts receive guests.", "online", "failed"),
    "hosts[].domain": ("Failure domain", None, None, "rack-1"),
    "hosts[].labels": ("Host labels", "Properties a guest may require (ssd, gpu).", [], ["ssd"]),
    "hosts[].boot": (
        "Host boot limits",
        "Per-host limits on the guests booting here at once (null: no limit).",
        {},
        {"cpu": 16, "max_starts": 4},
    ),
    "hosts[].boot.cpu": ("Host boot CPU", None, None, 16),
    "hosts[].boot.max_starts": ("Host boot limit", None, None, 4),
    "guests": (
        "Guests",
        "The virtual machines and containers.",
        _ABSENT,
        [{"name": "web01", "demand": {"ram_mib": 4096}}],
    ),
    "guests[].name": ("Guest name", "Unique guest name.", _ABSENT, "web01"),
    "guests[].demand": ("Demand", None, _ABSENT, {"ram_mib": 4096, "vcpus": 2}),
    "guests[].priority": ("Priority", None, 0, 3),
    "guests[].current_host": (
        "Current host",
        "Where it is now (required for running and frozen guests).",
        None,
        "kvm07",
    ),
    "guests[].state": (
        "Guest state",
        "A frozen guest crashed and is kept paused: it holds its demand on its current "
        "host, and its replacement starts elsewhere.",
        "stopped",
        "running",
    ),
    "guests[].anti_affinity": ("Anti-affinity classes", None, [], ["db"]),
    "guests[].together": ("Together group", None, None, "app1"),
    "guests[].follows": ("Follows", None, None, "db1"),
    "guests[].hosts": ("Allowed hosts", None, None, ["kvm01", "kvm02"]),
    "guests[].avoid_hosts": ("Avoided hosts", "Hosts it must not run on.", [], ["kvm03"]),
    "guests[].labels": ("Required labels", None, [], ["ssd"]),
    "guests[].migration_cost": ("Migration cost", None, 1, 5),
    "guests[].movable": ("Movable", None, True, False),
    "guests[].boot": (
        "Boot profile",
        "How it boots: duration, load on the boot pools and its host, dependencies, start group.",
        {},
        {"duration_s": 90, "load": {"san_iops": 3000}, "cpu": 4},
    ),
    "guests[].boot.duration_s": ("Boot duration", None, 60, 90),
    "guests[].boot.load": ("Boot load", None, {}, {"san_iops": 3000}),
    "guests[].boot.cpu": ("Boot CPU", None, 0, 4),
    "guests[].boot.after": ("Dependencies", None, [], ["sql01"]),
    "guests[].boot.group": ("Start group", None, None, "linux-1"),
    "boot_pools": ("Boot pools", None, {}, {"san_iops": 20000}),
    "schedule": (
        "Schedule",
        "Cluster-wide rules of the boot schedule.",
        {},
        {"stagger_s": 45, "max_starts": 8},
    ),
    "schedule.stagger_s": ("Stagger", None, 0, 45),
    "schedule.max_starts": ("Batch limit", None, None, 8),
    "schedule.horizon_s": ("Horizon", None, 86400, 7200),
    "migration": (
        "Migration",
        "How long live migrations take and what limits them.",
        {},
        {"bandwidth_mib_s": 1100, "max_total": 2},
    ),
    "migration.bandwidth_mib_s": ("Migration bandwidth", None, 1000, 1100),
    "migration.setup_s": ("Migration setup", None, 5, 5),
    "migration.memory_resource": ("Memory resource", None, "ram_mib", "ram_mib"),
    "migration.max_per_host": ("Migrations per host", None, None, 1),
    "migration.max_total": ("Migrations at once", None, None, 2),
    "migration.max_moves": ("Migration budget", None, None, 10),
    "migration.load": ("Migration load", None, {}, {"network": 1}),
    "simulation": ("Simulation", None, {}, {"sigma": 0.3, "fencing": True}),
    "simulation.sigma": ("Boot-time spread", None, 0.0, 0.3),
    "simulation.contention": ("Contention", None, "share", "thrash"),
    "simulation.thrash_slope": ("Thrash slope", None, 0.5, 0.5),
    "simulation.thrash_floor": ("Thrash floor", None, 0.25, 0.25),
    "simulation.start_return_s": ("Start returns after", None, 5, 5),
    "simulation.start_failure_probability": ("Start failure chance", None, 0.0, 0.05),
    "simulation.retry_delay_s": ("Retry delay", None, 30, 30),
    "simulation.max_retries": ("Retries", None, 1, 1),
    "simulation.fencing": ("Fencing", None, False, True),
    "simulation.fence_ratio": ("Fence ratio", None, 1.5, 1.5),
    "simulation.fence_grace_s": ("Fence grace", None, 60, 60),
    "simulation.host_failures": ("Host failures", None, [], [{"host": "kvm03", "at_s": 120}]),
    "simulation.host_failures[].host": ("Failing host", "The host that fails.", _ABSENT, "kvm03"),
    "simulation.host_failures[].at_s": (
        "Failure instant",
        "Seconds from instant 0 when it fails.",
        _ABSENT,
        120,
    ),
    "simulation.random_host_failure_probability": ("Random host failure chance", None, 0.0, 0.1),
    "simulation.duration_factors": ("Duration factors", None, {}, {"sql01": 1.5}),
    "pacemaker": (
        "Pacemaker scores",
        None,
        None,
        {"stickiness": {"vm1": 100}, "scores": {"vm1": {"kvm01": 50}}},
    ),
    "pacemaker.stickiness": ("Resource stickiness", None, {}, {"vm1": 100}),
    "pacemaker.scores": ("Location scores", None, {}, {"vm1": {"kvm01": 50}}),
    "pacemaker.clones": ("Clone instances", None, {}, {"cl-dlm": ["dlm:0", "dlm:1"]}),
    "proxmox": (
        "Proxmox HA configuration",
        None,
        {},
        {"rebalance_on_start": True},
    ),
    "proxmox.rebalance_on_start": ("Rebalance on start", None, False, True),
    "proxmox.node_affinity": (
        "Node affinity",
        None,
        [],
        [{"guests": ["vm:100"], "nodes": {"pve1": 2, "pve2": 1}}],
    ),
    "proxmox.node_affinity[].guests": (
        "Rule guests",
        "The guests (HA resources) the rule is for.",
        _ABSENT,
        ["vm:100"],
    ),
    "proxmox.node_affinity[].nodes": ("Rule nodes", None, _ABSENT, {"pve1": 2, "pve2": 1}),
    "proxmox.node_affinity[].strict": (
        "Strict",
        "Strict: never on another node; else any other online node when none of its is.",
        False,
        True,
    ),
    "proxmox.no_failback": ("No failback", None, [], ["vm:100"]),
    "proxmox.unmanaged": ("Not HA resources", None, [], ["vm:200"]),
    "proxmox.cpus": ("Static CPUs", None, {}, {"ct:200": 0.5}),
    "objective": (
        "Objective stages",
        "The lexicographic order of the objective stages.",
        [o.value for o in DEFAULT_OBJECTIVES],
        ["placed", "recovery"],
    ),
}
_PLAN_ANNOTATIONS: dict[str, tuple[str, str | None, Any, Any]] = {
    "schema_version": ("Schema version", "The format version; always 1.", _ABSENT, 1),
    "status": ("Status", "optimal only when every stage was proven optimal.", _ABSENT, "feasible"),
    "solver": ("Solver", "The solver that produced the plan.", _ABSENT, "cpsat"),
    "runtime_s": (
        "Solve time",
        "Wall-clock seconds the whole solve took (what placement solve and show print).",
        _ABSENT,
        10.0,
    ),
    "stages": (
        "Objective stages",
        "Per objective stage, in order: its value, proven bound and gap.",
        [],
        [{"name": "placed", "value": 73, "bound": 73, "gap": 0.0}],
    ),
    "stages[].name": ("Stage", "The objective of the stage.", _ABSENT, "recovery"),
    "stages[].value": ("Value", "The stage's objective value.", _ABSENT, 20320),
    "stages[].bound": ("Bound", "A proven bound on the value (null: none).", None, 17179),
    "stages[].gap": (
        "Gap",
        "Relative distance from the value to the bound (null: no bound).",
        None,
        0.1546,
    ),
    "assignments": (
        "Assignments",
        "Per guest: its host, action, start and ready time.",
        _ABSENT,
        [{"guest": "web01", "host": "kvm08", "action": "start", "start_s": 0, "ready_s": 60}],
    ),
    "assignments[].guest": ("Guest", "The guest the assignment is for.", _ABSENT, "web01"),
    "assignments[].host": (
        "Host",
        "Where the guest runs in the end (null: nowhere).",
        _ABSENT,
        "kvm08",
    ),
    "assignments[].action": ("Action", "start, stay, migrate, stop or none.", _ABSENT, "start"),
    "assignments[].start_s": (
        "Start",
        "Seconds after the plan starts when the start or migration begins (null: no timed action).",
        None,
        0,
    ),
    "assignments[].ready_s": (
        "Ready",
        "Seconds after the plan starts when the guest is ready or the migration done "
        "(null: no timed action).",
        None,
        60,
    ),
    "unplaced": (
        "Unplaced guests",
        "Per guest without a host: the rule that keeps it out.",
        [],
        [{"guest": "elk01", "reason": "needs 32 GiB RAM"}],
    ),
    "unplaced[].guest": ("Guest", "The guest left without a host.", _ABSENT, "elk01"),
    "unplaced[].reason": (
        "Reason",
        "The rule that keeps it out, in words.",
        _ABSENT,
        "needs 32 GiB RAM",
    ),
    "statistics": (
        "Solve statistics",
        "What the solver did: time to the first plan, the search returned, seeds, better "
        "plans found, each stage's search, and the scale strategies' figures.",
        {},
        {"first_plan_s": 0.24, "returned": "cp-sat"},
    ),
    "statistics.first_plan_s": (
        "First plan",
        "Seconds from the start of the solve to the first verified plan (null: not measured).",
        None,
        0.24,
    ),
    "statistics.returned": (
        "Returned",
        "The search whose plan was returned: greedy (the best seed), cp-sat or "
        "neighbourhood search (null: the solver does not say).",
        None,
        "cp-sat",
    ),
    "statistics.interrupted": (
        "Interrupted",
        "The solve was stopped (Ctrl-C, a stop request) and returned its best plan so far.",
        False,
        True,
    ),
    "statistics.stalled": (
        "Stalled",
        "A stage of a large model ended with no solution of its own.",
        False,
        True,
    ),
    "statistics.wall_cut": (
        "Cut by the wall clock",
        "The wall-clock backstop ended the search before its own time limit did.",
        False,
        True,
    ),
    "statistics.model_skipped": (
        "Full model skipped",
        "Why the full model was not built (it would not have fitted the time left), or null.",
        None,
        "building it would take about 12.0 s of the time left",
    ),
    "statistics.schedule_search": (
        "Schedule search",
        "Re-timing the boots of a large problem: boots, units, spread, list_recovery, rules, "
        "recovery, windows, windows_improved, windows_optimal, seconds (null: not run).",
        None,
        {"boots": 400, "units": 176, "spread": True, "list_recovery": 263725, "recovery": 235110},
    ),
    "statistics.lean": (
        "Lean path",
        "The lean path a pure problem took: schedule (the plain RCPSP model) or packing "
        "(the packing seeds, then the stages); null: the full path.",
        None,
        "schedule",
    ),
    "statistics.model": (
        "Model size",
        "The full CP-SAT model: build_s, units, pairs, boots (null: no full model).",
        None,
        {"build_s": 0.05, "units": 40, "pairs": 400, "boots": 40},
    ),
    "statistics.seeds": (
        "Seeds",
        "Per baseline tried for the first plan: name, seconds, valid, kept, values.",
        [],
        [
            {
                "name": "best-fit",
                "seconds": 0.01,
                "valid": True,
                "kept": True,
                "values": {"placed": 40},
            }
        ],
    ),
    "statistics.incumbents": (
        "Better plans",
        "Each better plan kept during the search: seconds since the start, source, and the "
        "stage values held.",
        [],
        [{"seconds": 0.24, "source": "seed", "values": {"placed": 40}}],
    ),
    "statistics.stages": (
        "Stage searches",
        "Per objective stage searched: stage, status, seconds, value, bound, improved.",
        [],
        [{"stage": "placed", "status": "OPTIMAL", "seconds": 0.1, "value": 40}],
    ),
    "statistics.type_counts": (
        "Type counts",
        "The placement stages solved on counts of identical guests (null: not run).",
        None,
        {"types": 4, "units": 15, "pairs": 60, "improved": True},
    ),
    "statistics.neighbourhoods": (
        "Neighbourhood rounds",
        "Per large-neighbourhood round: round, seconds, movers, pairs, improved, values.",
        [],
        [
            {
                "round": 0,
                "seconds": 1.2,
                "movers": 200,
                "pairs": 4000,
                "improved": True,
                "values": {"placed": 40},
            }
        ],
    ),
    "statistics.rebalance": (
        "Rebalance search",
        "The rebalance search of a large cluster: rounds, improved, proven, goal, last_hosts.",
        None,
        {"rounds": 12, "improved": 3, "proven": 9, "goal": "spread", "last_hosts": 6},
    ),
    "statistics.portfolio": (
        "Portfolio choice",
        "The vector-packing heuristic returned: variant, variants_run, placements.",
        None,
        {"variant": "first-fit-decreasing-max", "variants_run": 14, "placements": 6},
    ),
    "statistics.hysteresis": (
        "Hysteresis",
        "A rebalance kept the cluster as it is: min_improvement, rejected_solver, "
        "rejected_imbalance, imbalance.",
        None,
        {
            "min_improvement": 0.1,
            "rejected_solver": "cpsat",
            "rejected_imbalance": 0.2,
            "imbalance": 0.21,
        },
    ),
    "statistics.note": ("Note", "A word on how the plan was found.", None, "rebalance"),
    "statistics.extra": (
        "Extra figures",
        "Figures no field covers (an old plan file's unknown metrics).",
        {},
        {"peak_san": 3},
    ),
    "metrics": (
        "Metrics (old)",
        "Plan files before statistics: the solver's free-form figures, read into "
        "statistics; no longer written.",
        {},
        {"first_plan_s": 0.24},
    ),
}


def _annotated(
    schema: JsonSchema, table: dict[str, tuple[str, str | None, Any, Any]], path: str = ""
) -> JsonSchema:
    """A copy of `schema` with each property's annotations from `table` (by JSON path).
    Copied, never changed in place: properties share their building blocks."""
    result = dict(schema)
    if "properties" in schema:
        properties = {}
        for key, value in schema["properties"].items():
            where = f"{path}.{key}" if path else key
            title, description, default, example = table[where]
            annotated = _annotated(value, table, where)
            annotated["title"] = title
            if description is not None or "description" not in annotated:
                annotated["description"] = description or title
            if default is not _ABSENT:
                annotated["default"] = default
            annotated["examples"] = [example]
            properties[key] = annotated
        result["properties"] = properties
    if isinstance(schema.get("items"), dict):
        result["items"] = _annotated(schema["items"], table, f"{path}[]")
    return result


PROBLEM_SCHEMA: JsonSchema = _annotated(_PROBLEM_SCHEMA, _ANNOTATIONS)
PLAN_SCHEMA: JsonSchema = _annotated(_PLAN_SCHEMA, _PLAN_ANNOTATIONS)
