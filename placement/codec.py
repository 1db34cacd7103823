"""JSON <-> model, schema_version 1.

Loading validates the whole document against `placement.schema` first and reports every
structural error at once, each named by its JSON path
(`guests[3].demand.ram_mib: must be >= 0, got -5`); the model then reports every error in
its references. Dumping omits fields at their defaults, so files stay short; a round trip
`load_problem(dump_problem(p)) == p` changes nothing.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import tempfile
import typing
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import cattrs
import jsonschema

from placement.errors import InputError, InvalidInputError, InvalidPlanError, InvalidProblemError
from placement.limits import MAX_DEPTH, bad_name
from placement.model import (
    SCHEMA_VERSION,
    Problem,
    pacemaker_reference_errors,
    reference_errors,
)
from placement.plan import Plan
from placement.schema import PLAN_SCHEMA, PROBLEM_SCHEMA, JsonSchema
from placement.statistics import SolveStatistics

# --- JSON paths and messages -----------------------------------------------------------

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def json_path(parts: Iterable[str | int]) -> str:
    """`("guests", 3, "demand", "ram_mib")` -> `guests[3].demand.ram_mib`."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


_JSON_TYPE_NAMES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "array": "a list",
    "object": "an object",
    "boolean": "true or false",
    "null": "null",
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _shown(value: Any) -> str:
    """A short rendering of an offending value for an error message."""
    if isinstance(value, dict | list):
        return _json_type(value)
    text = json.dumps(value) if isinstance(value, str | int | float | bool | None) else repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    if isinstance(value, int | float) and not isinstance(value, bool):
        return text
    return f"{_json_type(value)} {text}"


def _quoted(text: str) -> str:
    """'name', or the JSON escape of a name with characters a terminal would act on."""
    return f"'{text}'" if bad_name(text) is None and "'" not in text else json.dumps(text)


def _limit(value: Any) -> str:
    """A limit as people read it: 10^12 rather than 1000000000000."""
    if isinstance(value, int) and value >= 10**6 and str(value).rstrip("0") == "1":
        return f"10^{len(str(value)) - 1}"
    return _shown(value)


def _messages(error: jsonschema.ValidationError) -> Iterator[InputError]:
    """Translate one schema error into one or more path-named input errors."""
    path = list(error.absolute_path)
    kind = error.validator
    value = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    if kind == "additionalProperties" and isinstance(value, dict):
        known = sorted(schema.get("properties", {}))
        for key in sorted(set(value) - set(known)):
            hint = f" (expected one of: {', '.join(known)})" if known else ""
            yield InputError(json_path([*path, key]), f"unknown key{hint}")
        return
    if kind == "required" and isinstance(value, dict):
        for key in error.validator_value:
            if key not in value:
                yield InputError(json_path([*path, key]), "required key is missing")
        return
    if kind == "type":
        expected = error.validator_value
        kinds = [str(option) for option in (expected if isinstance(expected, list) else [expected])]
        wanted = " or ".join(_JSON_TYPE_NAMES.get(option, option) for option in kinds)
        yield InputError(json_path(path), f"must be {wanted}, got {_shown(value)}")
        return
    if kind == "minimum":
        minimum = error.validator_value
        shown = f"-{_limit(-minimum)}" if isinstance(minimum, int) and minimum < 0 else minimum
        yield InputError(json_path(path), f"must be >= {shown}, got {_shown(value)}")
        return
    if kind == "exclusiveMinimum":
        minimum = error.validator_value
        yield InputError(json_path(path), f"must be > {minimum}, got {_shown(value)}")
        return
    if kind == "maximum":
        yield InputError(
            json_path(path), f"must be <= {_limit(error.validator_value)}, got {_shown(value)}"
        )
        return
    if kind == "not" and isinstance(value, str):
        # The only `not` in the schemas: names without control characters (limits.py).
        why = bad_name(value) or "is not allowed"
        if "propertyNames" in error.schema_path:
            yield InputError(json_path(path), f"key {_quoted(value)}: {why}")
        else:
            yield InputError(json_path(path), why)
        return
    if kind == "enum":
        allowed = ", ".join(json.dumps(option) for option in error.validator_value)
        yield InputError(json_path(path), f"must be one of {allowed}, got {_shown(value)}")
        return
    if kind == "const":
        yield InputError(
            json_path(path), f"must be {json.dumps(error.validator_value)}, got {_shown(value)}"
        )
        return
    if kind == "minLength":
        if "propertyNames" in error.schema_path:
            yield InputError(json_path(path), "keys must not be empty")
        else:
            yield InputError(json_path(path), "must not be empty")
        return
    if kind == "uniqueItems" and isinstance(value, list):
        seen: set[str] = set()
        for index, item in enumerate(value):
            marker = json.dumps(item, sort_keys=True)
            if marker in seen:
                yield InputError(json_path([*path, index]), f"duplicate item {_shown(item)}")
            seen.add(marker)
        return
    yield InputError(json_path(path), error.message)  # pragma: no cover - other validators


def schema_errors(document: Any, schema: JsonSchema) -> list[InputError]:
    """Every structural error of `document` against `schema`, in document order."""
    validator = jsonschema.Draft202012Validator(schema)
    errors: list[InputError] = []
    for error in validator.iter_errors(document):
        errors.extend(_messages(error))
    # jsonschema walks the schema's properties in order, which is the documented order.
    return list(dict.fromkeys(errors))


# --- cattrs converter ------------------------------------------------------------------


def _is_frozenset_type(cls: Any) -> bool:
    return cls is frozenset or typing.get_origin(cls) is frozenset


def _is_mapping_type(cls: Any) -> bool:
    return typing.get_origin(cls) is Mapping


def _plain_mapping(value: Mapping[str, Any]) -> dict[str, Any]:
    """A mapping as a dict, nested mappings too (Pacemaker's scores per guest and host)."""
    return {
        key: _plain_mapping(item) if isinstance(item, Mapping) else item
        for key, item in value.items()
    }


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(
        omit_if_default=True, forbid_extra_keys=True, detailed_validation=False
    )
    # Sets are written sorted, so a dump is stable from run to run.
    converter.register_unstructure_hook_func(_is_frozenset_type, sorted)
    converter.register_unstructure_hook_func(_is_mapping_type, _plain_mapping)
    return converter


_converter = _make_converter()


def _structure(
    document: Mapping[str, Any], cls: type[Any], error_class: type[InvalidInputError]
) -> Any:
    body = {key: value for key, value in document.items() if key != "schema_version"}
    try:
        return _converter.structure(body, cls)
    except InvalidInputError:
        raise
    except (
        cattrs.BaseValidationError,
        cattrs.errors.ForbiddenExtraKeysError,
        ValueError,
        TypeError,
    ) as error:
        # The schema admits only what the model accepts; reaching here is a gap between the
        # two, reported as plainly as possible rather than as a traceback.
        raise error_class([InputError("", f"invalid document: {error}")]) from error


# --- public API ------------------------------------------------------------------------


def load_problem(document: Any) -> Problem:
    """Build a `Problem` from a parsed JSON document; raise `InvalidProblemError` listing
    every error found, each with its JSON path."""
    errors = schema_errors(document, PROBLEM_SCHEMA)
    if isinstance(document, Mapping):
        # References are checked in the same pass, so one run lists every error.
        errors.extend(reference_errors(document))
        errors.extend(pacemaker_reference_errors(document))
    if errors:
        raise InvalidProblemError(list(dict.fromkeys(errors)))
    problem: Problem = _structure(document, Problem, InvalidProblemError)
    return problem


def dump_problem(problem: Problem) -> dict[str, Any]:
    """The JSON document of `problem` (fields at their defaults are left out)."""
    body: dict[str, Any] = _converter.unstructure(problem)
    return {"schema_version": SCHEMA_VERSION, **body}


def load_plan(document: Any) -> Plan:
    """Build a `Plan` from a parsed JSON document; raise `InvalidPlanError` listing every
    structural error found, each with its JSON path."""
    errors = schema_errors(document, PLAN_SCHEMA)
    if errors:
        raise InvalidPlanError(errors)
    body = dict(document)
    legacy = body.pop("metrics", None)
    plan: Plan = _structure(body, Plan, InvalidPlanError)
    if legacy and "statistics" not in body:
        # A plan file from before the typed statistics: its free-form figures, typed.
        plan = attrs.evolve(plan, statistics=_legacy_statistics(legacy))
    return plan


def _legacy_statistics(metrics: Mapping[str, Any]) -> SolveStatistics:
    try:
        return SolveStatistics.from_legacy(metrics)
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidPlanError([InputError("metrics", f"unreadable figures: {error}")]) from error


def dump_plan(plan: Plan) -> dict[str, Any]:
    """The JSON document of `plan`. Every assignment keeps all its keys, so a plan file
    reads the same for every guest."""
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "status": plan.status.value,
        "solver": plan.solver,
        "runtime_s": plan.runtime_s,
        "stages": [
            {"name": s.name, "value": s.value, "bound": s.bound, "gap": s.gap} for s in plan.stages
        ],
        "assignments": [
            {
                "guest": a.guest,
                "host": a.host,
                "action": a.action.value,
                "start_s": a.start_s,
                "ready_s": a.ready_s,
            }
            for a in plan.assignments
        ],
        "unplaced": [{"guest": u.guest, "reason": u.reason} for u in plan.unplaced],
        "statistics": _plain(_converter.unstructure(plan.statistics)),
    }
    return document


def _plain(value: Any) -> Any:
    """Mappings and tuples as plain dicts and lists, non-finite floats as None (JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- files -----------------------------------------------------------------------------


class _NonFiniteNumberError(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON does not, and no amount can be either.
    raise _NonFiniteNumberError(f"{name} is not a JSON number")


def read_json(
    path: str | os.PathLike[str], error_class: type[InvalidInputError] = InvalidInputError
) -> Any:
    """Parse a JSON file; a missing file or a syntax error becomes `error_class` naming it."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise error_class([InputError(where, error.strerror or str(error))]) from error
    except UnicodeDecodeError as error:
        raise error_class([InputError(where, f"not UTF-8 text ({error.reason})")]) from error
    try:
        document = json.loads(
            text, parse_constant=_reject_constant, object_pairs_hook=_object_with_duplicates
        )
    except _NonFiniteNumberError as error:
        raise error_class([InputError(where, f"invalid JSON: {error}")]) from error
    except json.JSONDecodeError as error:
        raise error_class(
            [
                InputError(
                    where, f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}"
                )
            ]
        ) from error
    except RecursionError as error:
        message = f"invalid JSON: nested deeper than {MAX_DEPTH} levels"
        raise error_class([InputError(where, message)]) from error
    except ValueError as error:  # an integer of more digits than Python reads (4300)
        message = f"invalid JSON: {str(error).split(';')[0]}"
        raise error_class([InputError(where, message)]) from error
    errors = _shape_errors(document)
    if errors:
        raise error_class(errors)
    return document


class _DuplicateKeys(dict[str, Any]):
    """A JSON object that named some keys more than once (the last value is kept)."""

    duplicates: list[str]


def _object_with_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) == len(pairs):
        return value
    marked = _DuplicateKeys(value)
    seen: set[str] = set()
    marked.duplicates = []
    for key, _ in pairs:
        if key in seen and key not in marked.duplicates:
            marked.duplicates.append(key)
        seen.add(key)
    return marked


def _shape_errors(document: Any) -> list[InputError]:
    """Duplicate keys (an error, not last-wins) and nesting deeper than `MAX_DEPTH`, each
    with its JSON path; walked without recursion."""
    errors: list[InputError] = []
    stack: list[tuple[Any, list[str | int]]] = [(document, [])]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_DEPTH:
            errors.append(InputError(json_path(path), f"nested deeper than {MAX_DEPTH} levels"))
            continue
        if isinstance(value, dict):
            for key in getattr(value, "duplicates", ()):
                errors.append(InputError(json_path(path), f"duplicate key {_quoted(key)}"))
            stack.extend((item, [*path, key]) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((item, [*path, i]) for i, item in reversed(list(enumerate(value))))
    return errors


def load_problem_file(path: str | os.PathLike[str]) -> Problem:
    """Read and load a problem file."""
    return load_problem(read_json(path, InvalidProblemError))


def load_plan_file(path: str | os.PathLike[str]) -> Plan:
    """Read and load a plan file."""
    return load_plan(read_json(path, InvalidPlanError))


def write_json_atomic(path: str | os.PathLike[str], document: Any) -> None:
    """Write `document` as JSON to `path`, whole or not at all."""
    write_text_atomic(path, json.dumps(document, indent=2) + "\n")


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` to `path` whole or not at all (UTF-8, see `write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def _new_file_mode(target: Path) -> int:
    """The mode `open(target, "w")` would leave: the file's own when it exists, else
    0666 less the umask (read from /proc where there is one: setting it to read it is
    not thread-safe)."""
    with contextlib.suppress(OSError):
        return target.stat().st_mode & 0o7777
    umask: int | None = None
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                umask = int(line.split()[1], 8)
    if umask is None:
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` whole or not at all: a temporary file in the same folder,
    flushed to disk, then renamed over the target, with the mode a plain `open` would
    give. An error names `path`, never the temporary file."""
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
    try:
        handle, temporary = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or "."
        )
    except OSError as error:
        raise type(error)(error.errno, _folder_problem(error, target), str(path)) from error
    try:
        os.fchmod(handle, _new_file_mode(target))
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise type(error)(error.errno, error.strerror, str(path)) from error
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _folder_problem(error: OSError, target: Path) -> str:
    if isinstance(error, FileNotFoundError):
        return f"no such directory: {target.parent}"
    return error.strerror or str(error)
