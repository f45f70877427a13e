"""Declared parameters bound to values: each one's default, or a ``-p NAME=VALUE`` override parsed to the
parameter's type. Overrides arrive as text from the command line; the declaration says what they mean."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from orchestrator.errors import InvalidInput
from orchestrator.runbook.models import TYPE_NAMES, Parameter, ParamValue
from orchestrator.runbook.problems import Problem, did_you_mean

_INTEGER = re.compile(r"[+-]?\d+\Z")
_BOOLEANS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
PARAMETERS_PATH = ("spec", "parameters")


def parse_assignments(items: Sequence[str]) -> dict[str, str]:
    """``-p NAME=VALUE`` options as a mapping. A malformed one is a usage error, the same for every file."""
    result: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"-p {item!r} is not NAME=VALUE, e.g. -p mode=full")
        name = name.strip()
        if name in result:
            raise InvalidInput(f"-p {name} is given twice; give each parameter once")
        result[name] = value
    return result


def coerce(name: str, declared: Parameter, text: str) -> ParamValue:
    """``text`` as a value of ``declared``'s type; raises ``ValueError`` with the message to show."""
    value: ParamValue
    kind = declared.type
    if kind == "integer" and _INTEGER.match(text.strip()):
        value = int(text)
    elif kind == "number" and _is_finite_number(text):
        value = int(text) if _INTEGER.match(text.strip()) else float(text)
    elif kind == "boolean" and text.strip().lower() in _BOOLEANS:
        value = _BOOLEANS[text.strip().lower()]
    elif kind == "string":
        value = text
    else:
        raise ValueError(f"-p {name}={text}: parameter {name!r} takes {TYPE_NAMES[kind]}; {text!r} is not")
    if declared.enum is not None and value not in declared.enum:
        choices = [str(c) for c in declared.enum]
        raise ValueError(
            f"-p {name}={text}: parameter {name!r} takes one of {', '.join(choices)}{did_you_mean(text, choices)}"
        )
    return value


def _is_finite_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def bind(
    declared: Mapping[str, Parameter], overrides: Mapping[str, str]
) -> tuple[dict[str, ParamValue], list[Problem]]:
    """Every declared parameter's value, and the problems: overrides of undeclared or mistyped parameters,
    and parameters without a default that were not given. Problems point at the declarations."""
    values: dict[str, ParamValue] = {}
    problems: list[Problem] = []
    for name, text in overrides.items():
        if name not in declared:
            names = ", ".join(sorted(declared)) or "none"
            problems.append(
                Problem(
                    PARAMETERS_PATH,
                    f"-p {name}={text}: this runbook has no parameter {name!r}{did_you_mean(name, declared)} "
                    f"(it declares: {names})",
                    at_key=True,
                )
            )
    for name, parameter in declared.items():
        where = (*PARAMETERS_PATH, name)
        if name in overrides:
            try:
                values[name] = coerce(name, parameter, overrides[name])
            except ValueError as err:
                problems.append(Problem(where, str(err), at_key=True))
        elif parameter.default is not None:
            values[name] = parameter.default
        else:
            problems.append(Problem(where, f"parameter {name!r} has no default; pass -p {name}=VALUE", at_key=True))
    return values, problems
