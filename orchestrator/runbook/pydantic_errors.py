"""pydantic's validation errors, reworded as runbook problems at document paths.

pydantic locates each error by a ``loc`` of keys and indexes, which is exactly a document path (keys are
validated by alias, so ``with`` is ``with``). The wording is ours: it names the key as written in the file
and what would be accepted.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from orchestrator.runbook.fields import ERROR_TYPE
from orchestrator.runbook.interpolate import has_references
from orchestrator.runbook.problems import DocPath, Problem, describe_value, did_you_mean

_QUOTED = re.compile(r"'([^']*)'")
_TYPED = frozenset(
    {"int_type", "int_parsing", "float_type", "float_parsing", "bool_type", "bool_parsing", "literal_error"}
    | {"datetime_type", "datetime_parsing", "datetime_from_date_parsing"}
)


def problems_from(err: ValidationError, data: object, prefix: DocPath = ()) -> list[Problem]:
    """One problem per error; ``data`` is the validated input (it names steps in messages), ``prefix`` the
    path of that input in the document."""
    seen: set[tuple[DocPath, str]] = set()
    out: list[Problem] = []
    for error in err.errors(include_url=False):
        problem = _problem(error, data, prefix)
        if (problem.path, problem.message) not in seen:
            seen.add((problem.path, problem.message))
            out.append(problem)
    return out


def label(path: DocPath) -> str:
    """How a path is named in a message, relative to its step or compensation: ``retry.attempts``,
    ``with.transfers``, ``needs[1]``, ``metadata.name``."""
    if len(path) > 3 and path[0] == "spec" and path[1] in ("steps", "compensation") and isinstance(path[2], int):
        path = path[3:]
    elif path[:1] == ("spec",) and len(path) > 1:
        path = path[1:]
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "the runbook"


def _problem(error: ErrorDetails, data: object, prefix: DocPath) -> Problem:
    # A defaulted ``with`` is validated under its field name; the document only knows the alias.
    loc: DocPath = (*prefix, *("with" if part == "with_" else part for part in error["loc"]))
    at_key = False
    if loc and loc[-1] == "[key]":
        # An invalid mapping key: point at the key, and name the mapping it is in.
        loc, at_key = loc[:-1], True
        name = label(loc[:-1])
    else:
        name = label(loc)
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error["input"]
    if kind == ERROR_TYPE:
        message = str(ctx["message"])
        if "key" in ctx:
            return Problem((*loc, str(ctx["key"])), message, at_key=True)
        return Problem(loc, f"{name}: {message}" if ctx.get("about_field") else message, at_key=at_key)
    if kind == "missing":
        return Problem(loc, f"missing required key {loc[-1]!r} {_container(loc[:-1], data, prefix)}", at_key=True)
    if kind in _TYPED and isinstance(value, str) and has_references(value):
        return Problem(loc, f"{name}: {value!r} is only known at run time, so it can only be used in a text field")
    if kind == "extra_forbidden":
        return Problem(loc, f"unknown key {loc[-1]!r}", at_key=True)
    describe = _MESSAGES.get(kind)
    message = describe(name, value, ctx) if describe else f"{name}: {error['msg']}"
    return Problem(loc, message, at_key=at_key)


def _container(path: DocPath, data: object, prefix: DocPath) -> str:
    """Where a key is missing: "in step 'copy'", "in 'with' of backup.copy", "at the top level"..."""
    if not path:
        return "at the top level"
    node = _at(data, path[len(prefix) :])
    parent = _at(data, path[len(prefix) : -1])
    if path[-1] in ("with", "compensate") and isinstance(parent, dict) and isinstance(parent.get("action"), str):
        return f"in '{path[-1]}' of {parent['action']}"
    if path[-1] == "with" and isinstance(parent, dict):
        return "in 'with'"
    if isinstance(path[-1], int) and len(path) >= 2 and path[-2] == "steps":
        step_id = node.get("id") if isinstance(node, dict) else None
        return f"in step {step_id!r}" if isinstance(step_id, str) else f"in step {path[-1] + 1}"
    return f"in {label(path)}"


def _at(data: object, path: DocPath) -> object:
    for part in path:
        if isinstance(part, str) and isinstance(data, dict):
            data = data.get(part)
        elif isinstance(part, int) and isinstance(data, list) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def _shown(value: object) -> str:
    return repr(value) if isinstance(value, str) else describe_value(value)


def _quote_hint(value: object) -> str:
    # YAML turns unquoted 42, true and 2026-01-01 into numbers, booleans and dates.
    return "; quote it to make it text" if value is not None and not isinstance(value, dict | list) else ""


def _literal(name: str, value: object, ctx: dict[str, object]) -> str:
    expected = str(ctx.get("expected", ""))
    hint = did_you_mean(value, _QUOTED.findall(expected)) if isinstance(value, str) else ""
    return f"{name} must be {expected}, got {_shown(value)}{hint}"


Describe = Callable[[str, object, dict[str, object]], str]
_MESSAGES: dict[str, Describe] = {
    "string_type": lambda n, v, c: f"{n} must be text, got {describe_value(v)}{_quote_hint(v)}",
    "string_too_short": lambda n, v, c: f"{n} must not be empty",
    "int_type": lambda n, v, c: f"{n} must be an integer, got {_shown(v)}",
    "int_parsing": lambda n, v, c: f"{n} must be an integer, got {_shown(v)}",
    "int_from_float": lambda n, v, c: f"{n} must be an integer, got {_shown(v)}",
    "float_type": lambda n, v, c: f"{n} must be a number, got {_shown(v)}",
    "float_parsing": lambda n, v, c: f"{n} must be a number, got {_shown(v)}",
    "bool_type": lambda n, v, c: f"{n} must be true or false, got {_shown(v)}",
    "bool_parsing": lambda n, v, c: f"{n} must be true or false, got {_shown(v)}",
    "literal_error": _literal,
    "tuple_type": lambda n, v, c: f"{n} must be a list, got {describe_value(v)}",
    "list_type": lambda n, v, c: f"{n} must be a list, got {describe_value(v)}",
    "dict_type": lambda n, v, c: f"{n} must be a mapping (key: value), got {describe_value(v)}",
    "mapping_type": lambda n, v, c: f"{n} must be a mapping (key: value), got {describe_value(v)}",
    "model_type": lambda n, v, c: f"{n} must be a mapping (key: value), got {describe_value(v)}",
    "model_attributes_type": lambda n, v, c: f"{n} must be a mapping (key: value), got {describe_value(v)}",
    "greater_than_equal": lambda n, v, c: f"{n} must be at least {c.get('ge')}, got {v!r}",
    "greater_than": lambda n, v, c: f"{n} must be more than {c.get('gt')}, got {v!r}",
    "less_than_equal": lambda n, v, c: f"{n} must be at most {c.get('le')}, got {v!r}",
    "less_than": lambda n, v, c: f"{n} must be less than {c.get('lt')}, got {v!r}",
    "too_short": lambda n, v, c: f"{n} must have at least {c.get('min_length')} item(s)",
    "too_long": lambda n, v, c: f"{n} must have at most {c.get('max_length')} item(s)",
    "datetime_type": lambda n, v, c: f"{n} must be an ISO 8601 time, e.g. 2026-11-26T09:30:00Z, got {_shown(v)}",
    "datetime_parsing": lambda n, v, c: f"{n} must be an ISO 8601 time, e.g. 2026-11-26T09:30:00Z, got {_shown(v)}",
    "datetime_from_date_parsing": lambda n, v, c: (
        f"{n} must be an ISO 8601 time, e.g. 2026-11-26T09:30:00Z, got {_shown(v)}"
    ),
    "value_error": lambda n, v, c: f"{n}: {c.get('error')}",
    "assertion_error": lambda n, v, c: f"{n}: {c.get('error')}",
}
