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
    PACEMAKER_INFINITY,
    SCHEMA_VERSION,
    Contention,
    GuestState,
    HostState,
    Objective,
)
from placement.plan import Action, Status

JsonSchema = dict[str, Any]

# Names: not empty, no control characters or lone surrogates (placement.limits).
_CLEAN: JsonSchema = {"minLength": 1, "not": {"pattern": BAD_NAME_PATTERN}}
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
    _object(
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
    "Pacemaker's scores, read only by the pacemaker-* re-creations: with this block they "
    "assign every guest afresh, running ones included, as Pacemaker does.",
)

PROBLEM_SCHEMA: JsonSchema = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://placement.invalid/schema/problem-v1.json",
    "title": "placement problem",
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

PLAN_SCHEMA: JsonSchema = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://placement.invalid/schema/plan-v1.json",
    "title": "placement plan",
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
            "metrics": {"type": "object"},
        },
        required=("schema_version", "status", "solver", "runtime_s", "assignments"),
    ),
}
