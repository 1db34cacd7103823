"""Griffe extension for the API pages: an enum's members are one table in the class's
docstring, not one heading each (`HostState.ONLINE`, `HostState.MAINTENANCE`, ...).
"""

from __future__ import annotations

from typing import Any

import griffe

_ENUM_BASES = ("enum.Enum", "Enum", "enum.IntEnum", "IntEnum", "enum.StrEnum", "StrEnum")


class EnumMembersTable(griffe.Extension):
    """Fold the members of each `enum.Enum` subclass into a table of names and values."""

    def on_class_members(self, *, cls: griffe.Class, **kwargs: Any) -> None:
        if not any(str(base) in _ENUM_BASES for base in cls.bases):
            return
        members = [
            (name, member)
            for name, member in cls.members.items()
            if isinstance(member, griffe.Attribute) and not name.startswith("_")
        ]
        if not members:
            return
        rows = ["| member | value |", "|---|---|"]
        for name, member in members:
            rows.append(f"| `{name}` | `{member.value}` |")
            del cls.members[name]
        text = cls.docstring.value if cls.docstring is not None else ""
        cls.docstring = griffe.Docstring(f"{text}\n\nMembers:\n\n" + "\n".join(rows), parent=cls)
