"""Mistakes found in a runbook: first as a place in the document (``Problem``), then as a place in the file
(``Diagnostic``) once the loader has mapped the document path back to a line and column."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from orchestrator.errors import InvalidInput, one_line

DocPath = tuple[str | int, ...]
"""Keys and list indexes from the document root, e.g. ``("spec", "steps", 2, "needs", 0)``."""


@dataclass(frozen=True)
class Problem:
    """One mistake at ``path``. ``at_key`` points at the key rather than its value (unknown or duplicate
    keys); ``offset`` is a character offset inside a text value, for a bad ``${...}`` reference; ``first``
    is where a duplicated thing was first defined (the message gains "(first at line N)")."""

    path: DocPath
    message: str
    at_key: bool = False
    offset: int | None = None
    first: DocPath | None = None


@dataclass(frozen=True, order=True)
class Diagnostic:
    """A mistake with its place in a file; ``str()`` is the one line users see."""

    source: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.column}: {one_line(self.message)}"


class RunbookInvalid(InvalidInput):
    """A runbook failed validation. ``diagnostics`` holds every mistake found, in file order."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        if not diagnostics:
            raise ValueError("RunbookInvalid needs at least one diagnostic")
        self.diagnostics = tuple(sorted(diagnostics))
        more = len(self.diagnostics) - 1
        super().__init__(str(self.diagnostics[0]) + (f" (and {more} more)" if more else ""))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``, or ``""`` when none is close."""
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def describe_value(value: object) -> str:
    """How a YAML value reads to a person: "a list", "text 'x'", "a number (3)"..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{'true' if value else 'false'}"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"text {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"
