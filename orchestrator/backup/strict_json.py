"""Strict reading of the JSON documents drctl writes into a set: exact keys, exact types, no coercion.

The set's documents are written by drctl and read back by it, so anything that is not exactly what drctl
writes (a missing or unknown key, a number as a string, a bool as a count) is refused with the path of the
offending field. Hand-written because a model library costs a tenth of a second to import on every backup.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime
from typing import TypeGuard, TypeVar

S = TypeVar("S", bound=str)

HEX64 = re.compile(r"[0-9a-f]{64}")
# The form drctl writes (``moment_to_json``). ``datetime.fromisoformat`` alone would also take week dates, basic
# format, hour-only times and odd separators, none of which drctl writes or the earlier model library accepted.
_MOMENT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})?")
_MISSING = object()


class DocumentError(ValueError):
    """A document that is not the shape drctl writes; the message names the field."""


def parse_json(raw: str | bytes, what: str) -> object:
    """JSON as drctl writes it: UTF-8 (no byte-order mark, no other encoding), any nesting depth refused cleanly."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise DocumentError(f"{what}: not UTF-8 JSON ({type(exc).__name__})") from exc


def moment_to_json(value: datetime) -> str:
    """ISO 8601 with ``Z`` for UTC: the form every manifest so far was written in (its digest covers it)."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class Fields:
    """The fields of one JSON object, read one by one by expected type. Keys outside ``known`` are refused up
    front, so a document with a field this drctl does not understand is never half-read."""

    __slots__ = ("_doc", "_where")

    def __init__(self, doc: object, where: str, known: frozenset[str]) -> None:
        if not isinstance(doc, dict):
            raise DocumentError(f"{where}: expected an object, found {_kind(doc)}")
        if not doc.keys() <= known:
            raise DocumentError(f"{where}: unknown field {sorted(doc.keys() - known)[0]!r}")
        self._doc: dict[str, object] = doc
        self._where = where

    def _take(self, name: str, required: bool) -> object:
        value = self._doc.get(name, _MISSING)
        if value is _MISSING:
            if required:
                raise DocumentError(f"{self._where}.{name}: missing")
            return None
        return value

    def _fail(self, name: str, expected: str, value: object) -> DocumentError:
        return DocumentError(f"{self._where}.{name}: expected {expected}, found {_kind(value)}")

    def text(self, name: str, *, pattern: re.Pattern[str] | None = None) -> str:
        value = self._take(name, True)
        if not _is_text(value) or (pattern is not None and not pattern.fullmatch(value)):
            raise self._fail(name, "a string" if pattern is None else f"a string matching {pattern.pattern}", value)
        return value

    def text_or_none(self, name: str, *, required: bool = False) -> str | None:
        value = self._take(name, required)
        if value is not None and not _is_text(value):
            raise self._fail(name, "a string or null", value)
        return value

    def integer(self, name: str, *, minimum: int | None = None) -> int:
        value = self._take(name, True)
        # bool is an int in Python but never a count in a document.
        if type(value) is not int or (minimum is not None and value < minimum):
            raise self._fail(name, "an integer" if minimum is None else f"an integer >= {minimum}", value)
        return value

    def choice(self, name: str, allowed: tuple[S, ...], *, default: S | None = None) -> S:
        if default is not None and name not in self._doc:
            return default
        value = self._take(name, True)
        found = _one_of(value, allowed)
        if found is None:
            raise self._fail(name, f"one of {', '.join(allowed)}", value)
        return found

    def choice_or_none(self, name: str, allowed: tuple[S, ...], *, required: bool = False) -> S | None:
        value = self._take(name, required)
        found = _one_of(value, allowed)
        if value is not None and found is None:
            raise self._fail(name, f"null or one of {', '.join(allowed)}", value)
        return found

    def format_version(self, name: str, version: int) -> None:
        """A document format number: absent (then the current one) or exactly ``version``."""
        if name not in self._doc:
            return
        value = self._doc[name]
        if type(value) is not int or value != version:
            raise self._fail(name, f"format {version}", value)

    def moment(self, name: str) -> datetime:
        value = self._take(name, True)
        if isinstance(value, str) and _MOMENT.fullmatch(value):
            try:
                return datetime.fromisoformat(value)
            except ValueError:  # a month 13, a day 32, an hour 25
                pass
        raise self._fail(name, "an ISO 8601 date and time", value)

    def value(self, name: str) -> object:
        """A required field of any type, for a reader of its own to check."""
        return self._take(name, True)

    def nested(self, name: str, known: frozenset[str]) -> Fields | None:
        """The object under ``name``, or None when it is null or absent."""
        value = self._take(name, False)
        return None if value is None else Fields(value, f"{self._where}.{name}", known)

    def nested_required(self, name: str, known: frozenset[str]) -> Fields:
        return Fields(self._take(name, True), f"{self._where}.{name}", known)

    def array(self, name: str) -> list[object]:
        value = self._take(name, True)
        if not isinstance(value, list):
            raise self._fail(name, "an array", value)
        return value

    def counts(self, name: str, allowed_keys: tuple[S, ...]) -> dict[S, int]:
        """An object mapping some of ``allowed_keys`` to integers."""
        value = self._take(name, True)
        if not isinstance(value, dict):
            raise self._fail(name, "an object", value)
        out: dict[S, int] = {}
        for key, count in value.items():
            label = _one_of(key, allowed_keys)
            if label is None:
                raise DocumentError(f"{self._where}.{name}: unknown key {key!r}, expected among {allowed_keys}")
            if type(count) is not int:
                raise DocumentError(f"{self._where}.{name}.{key}: expected an integer, found {_kind(count)}")
            out[label] = count
        return out

    def where(self, name: str) -> str:
        return f"{self._where}.{name}"


def _is_text(value: object) -> TypeGuard[str]:
    """A string that is valid Unicode: a JSON escape can smuggle in a lone surrogate, which UTF-8 cannot carry."""
    if not isinstance(value, str):
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _one_of(value: object, allowed: Iterable[S]) -> S | None:
    """The option equal to ``value``; None when there is none (only strings are options)."""
    if isinstance(value, str):
        for option in allowed:
            if value == option:
                return option
    return None


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return "an array" if isinstance(value, list) else "an object"
