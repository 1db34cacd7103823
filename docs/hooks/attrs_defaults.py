"""Griffe extension for the API pages: an attrs field shows its default, not its machinery.

`duration_s: int = attrs.field(default=60, validator=_check_count)` is rendered as
`duration_s: int = 60`; a field with `factory=dict` as `= dict()`; a required field with
no value at all. Other attributes (enum members, constants) keep their values.
"""

from __future__ import annotations

from typing import Any

import griffe


class AttrsFieldDefaults(griffe.Extension):
    """Replace the value of each `attrs.field(...)` attribute by the field's default."""

    def on_attribute_instance(self, *, attr: griffe.Attribute, **kwargs: Any) -> None:
        value = attr.value
        if not isinstance(value, griffe.ExprCall) or str(value.function) not in (
            "attrs.field",
            "attr.ib",
            "field",
        ):
            return
        keywords = {
            argument.name: argument.value
            for argument in value.arguments
            if isinstance(argument, griffe.ExprKeyword)
        }
        if "default" in keywords:
            attr.value = keywords["default"]
        elif "factory" in keywords:
            attr.value = f"{keywords['factory']}()"
        else:
            attr.value = None
