"""The range of every number in a problem, and what a name may hold: the one place the
JSON Schema (`placement.schema`), the model's validators (`placement.model`) and the
docs (docs/format.md) read them from.

CP-SAT works in 64-bit integers and refuses a model whose sums could overflow, and the
bounds and the checker sum in 64-bit numpy arrays. The limits leave room for that: an
amount times the 10,000 steps of `balance`, summed over every guest, stays below 2^63.
They are far above any real cluster (10^12 MiB is an exbibyte).
"""

from __future__ import annotations

import json
import re

#: Any one amount: capacity, reserved, demand, boot load, boot CPU, boot pool limit,
#: migration bandwidth (integers >= 0; bandwidth >= 1).
MAX_AMOUNT = 10**12
#: A resource's demand summed over all guests, its usable amount summed over all hosts,
#: a boot pool's load summed over all guests.
MAX_TOTAL = 10**14
#: `priority` and `migration_cost` (integers >= 0).
MAX_PRIORITY = 10**6
#: Every duration in seconds: `duration_s`, `stagger_s`, `horizon_s`, `setup_s` (about
#: 115 days).
MAX_SECONDS = 10**7
#: Batch and migration limits and the move budget: `max_starts`, `max_per_host`,
#: `max_total`, `max_moves`.
MAX_COUNT = 10**6
#: `overcommit` ratios (numbers > 0).
MAX_RATIO = 1000.0
#: The `recovery` objective's largest value: (priority + 1) x horizon_s summed over guests.
MAX_WEIGHTED_SECONDS = 10**18
#: `start_s` and `ready_s` in a plan file (a plan may break the horizon: that is a
#: violation, not bad input).
MAX_PLAN_SECONDS = 10**15
#: `runtime_s` and a stage's `value`, `bound` and `gap` in a plan file (a `recovery`
#: value reaches 10^18).
MAX_PLAN_FIGURE = 10**21
#: How deeply a JSON document may nest (the formats need 6 levels).
MAX_DEPTH = 64

#: Names (hosts, guests, resources, pools, classes, groups, labels) hold no control
#: characters (C0, DEL, C1) and no lone surrogates: scripts, logs and terminals break on
#: them. The JSON Schema says it as `"not": {"type": "string", "pattern": BAD_NAME_PATTERN}`.
BAD_NAME_PATTERN = "[\\u0000-\\u001f\\u007f-\\u009f\\ud800-\\udfff]"
_BAD_NAME = re.compile(BAD_NAME_PATTERN)


def bad_name(name: str) -> str | None:
    """Why `name` cannot be a name, or None when it can."""
    found = _BAD_NAME.search(name)
    if found is None:
        return None
    code = ord(found.group())
    what = "a lone surrogate" if 0xD800 <= code <= 0xDFFF else "a control character"
    return f"must not contain {what} (U+{code:04X} at {found.start()})"


def printable(text: str) -> str:
    """`text` with control characters and lone surrogates escaped (`\\n`, `\\u0000`), so
    that a message quoting a user's string stays one line a terminal shows as it is."""
    return _BAD_NAME.sub(lambda found: json.dumps(found.group())[1:-1], text)
