"""Parameters: declarations, ``-p`` overrides parsed to the declared type, and binding."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orchestrator.errors import InvalidInput
from orchestrator.runbook.models import Parameter, ParamValue
from orchestrator.runbook.params import bind, coerce, parse_assignments


def declared(**fields: object) -> Parameter:
    return Parameter.model_validate(fields)


def test_assignments() -> None:
    assert parse_assignments(["mode=full", "url=https://x/?a=b", "empty=", " spaced =v"]) == {
        "mode": "full",
        "url": "https://x/?a=b",
        "empty": "",
        "spaced": "v",
    }


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["mode"], "-p 'mode' is not NAME=VALUE"),
        (["=full"], "-p '=full' is not NAME=VALUE"),
        (["a=1", "a=2"], "-p a is given twice"),
    ],
)
def test_malformed_assignments(items: list[str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_assignments(items)


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        ("integer", "42", 42),
        ("integer", "-3", -3),
        ("number", "2.5", 2.5),
        ("number", "7", 7),
        ("boolean", "true", True),
        ("boolean", "No", False),
        ("boolean", "1", True),
        ("string", "anything at all", "anything at all"),
        ("string", "", ""),
    ],
)
def test_overrides_take_the_declared_type(kind: str, text: str, value: ParamValue) -> None:
    result = coerce("x", declared(type=kind), text)
    assert result == value
    assert type(result) is type(value)


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("integer", "4.5", "-p x=4.5: parameter 'x' takes an integer; '4.5' is not"),
        ("integer", "many", "-p x=many: parameter 'x' takes an integer; 'many' is not"),
        ("number", "nan", "-p x=nan: parameter 'x' takes a number; 'nan' is not"),
        ("number", "inf", "-p x=inf: parameter 'x' takes a number; 'inf' is not"),
        ("boolean", "maybe", "-p x=maybe: parameter 'x' takes true or false; 'maybe' is not"),
    ],
)
def test_mistyped_overrides(kind: str, text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        coerce("x", declared(type=kind), text)


def test_enum_overrides() -> None:
    mode = declared(enum=["full", "incremental"])
    assert coerce("mode", mode, "full") == "full"
    with pytest.raises(ValueError, match="takes one of full, incremental; did you mean 'incremental'"):
        coerce("mode", mode, "incremntal")
    assert coerce("n", declared(type="integer", enum=[4, 8]), "8") == 8
    with pytest.raises(ValueError, match=r"takes one of 4, 8$"):
        coerce("n", declared(type="integer", enum=[4, 8]), "5")


def test_bind_uses_defaults_then_overrides() -> None:
    params = {"mode": declared(default="incremental"), "copies": declared(type="integer", default=4)}
    assert bind(params, {}) == ({"mode": "incremental", "copies": 4}, [])
    assert bind(params, {"copies": "8"}) == ({"mode": "incremental", "copies": 8}, [])


def test_bind_problems_point_at_the_declarations() -> None:
    params = {"region": declared(), "copies": declared(type="integer", default=4)}
    values, problems = bind(params, {"copies": "x", "copes": "1"})
    assert values == {}
    assert [(p.path, p.at_key, p.message) for p in problems] == [
        (
            ("spec", "parameters"),
            True,
            "-p copes=1: this runbook has no parameter 'copes'; did you mean 'copies'? (it declares: copies, region)",
        ),
        (("spec", "parameters", "region"), True, "parameter 'region' has no default; pass -p region=VALUE"),
        (("spec", "parameters", "copies"), True, "-p copies=x: parameter 'copies' takes an integer; 'x' is not"),
    ]
    assert "(it declares: none)" in bind({}, {"x": "1"})[1][0].message


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"type": "integer", "default": "4"}, "text '4' is not an integer (type: integer)"),
        ({"type": "integer", "default": True}, "true is not an integer"),
        ({"type": "number", "default": "x"}, "is not a number"),
        ({"type": "boolean", "default": 1}, "is not true or false"),
        ({"enum": []}, "an empty enum allows no value"),
        ({"type": "integer", "enum": [1, "2"]}, "'2' is not an integer, the parameter's type"),
        ({"enum": ["a", "b"], "default": "c"}, "'c' is not one of the enum values (a, b)"),
        ({"type": "text"}, "Input should be 'string', 'integer', 'number' or 'boolean'"),
        ({"default": [1]}, "expected text, a number or true/false, got a list"),
        ({"defualt": 1}, "unknown key 'defualt' in a parameter; did you mean 'default'?"),
    ],
)
def test_bad_declarations(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Parameter.model_validate(fields)


def test_a_number_parameter_takes_integers_too() -> None:
    assert declared(type="number", default=3).default == 3
