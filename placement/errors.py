"""Errors raised for invalid input. Each problem found carries the JSON path it is at."""

from __future__ import annotations

import attrs


@attrs.frozen
class InputError:
    """One problem in the input: where it is (a JSON path) and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InvalidInputError(ValueError):
    """Input that cannot be used; `errors` lists every problem found, in document order."""

    def __init__(self, errors: list[InputError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(error) for error in self.errors))


class InvalidProblemError(InvalidInputError):
    """A problem document or object that breaks the format or its references."""


class InvalidPlanError(InvalidInputError):
    """A plan document that breaks the format or names what the problem does not have."""
