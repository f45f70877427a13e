"""``Pulumi.yaml`` declares every ``drctl:*`` key the program reads, typed so Pulumi refuses a wrong stack early.

The rules below are the Pulumi CLI's, from ``sdk/go/common/workspace/project.json`` and ``project.go``
(``ValidateConfigValue``) and ``pkg/workspace/config.go`` in pulumi/pulumi:

- a project key is written without the project namespace (or as ``drctl:<key>``); we use the bare form;
- ``type`` is one of string, integer, boolean, array, object (``object`` since CLI v3.187.0); an array names
  its ``items``;
- the other attributes are ``description``, ``default``, ``value`` and ``secret``;
- a declared key with neither ``default`` nor ``value`` must be set in every stack, or the CLI stops with
  "Stack '<stack>' is missing configuration";
- a stack's value is checked against the declared type before the program runs; a default is merged into any
  stack that lacks the key.

stacks/config.py (pydantic) stays the precise check; these types only have to agree with it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any

import pytest
import yaml

from stacks.config import NAMESPACE, StackConfig, load_config
from tests.stacks.pulumi_harness import ROOT, STACK_NAMES, STACKS_DIR
from tests.stacks.samples import checked_in

TYPES = frozenset({"string", "integer", "boolean", "array", "object"})
ATTRIBUTES = frozenset({"type", "items", "description", "default", "value", "secret"})
PREFIX = f"{NAMESPACE}:"


@cache
def declared() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load((ROOT / "Pulumi.yaml").read_text(encoding="utf-8"))
    config = document.get("config")
    assert isinstance(config, dict), "Pulumi.yaml has no config: section"
    return config


def program_keys() -> set[str]:
    """The keys :func:`stacks.config.load_config` asks Pulumi for."""
    return {f.name for f in dataclasses.fields(StackConfig) if f.name != "stack"}


def stack_values(stack: str) -> dict[str, Any]:
    """``stacks/Pulumi.<stack>.yaml``'s drctl keys, as YAML values (what the CLI type-checks)."""
    document = yaml.safe_load((STACKS_DIR / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))
    return {k.removeprefix(PREFIX): v for k, v in document["config"].items() if k.startswith(PREFIX)}


def conforms(type_: str, items: Mapping[str, Any] | None, value: Any) -> bool:
    """The CLI's ``ValidateConfigValue``: whether ``value`` passes as ``type_``."""
    if type_ == "string":
        return isinstance(value, str)
    if type_ == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int):
            return True
        if isinstance(value, float):
            return value == math.trunc(value)
        return isinstance(value, str) and value.lstrip("+-").isdigit()
    if type_ == "boolean":
        return isinstance(value, bool) or value in ("true", "false")
    if type_ == "object":
        return isinstance(value, dict)
    if not isinstance(value, list) or items is None:
        return False
    return all(conforms(items["type"], items.get("items"), item) for item in value)


def json_type(hint: Any) -> str:
    """The Pulumi config type a pydantic field's annotation corresponds to."""
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return json_type(typing.get_args(hint)[0])
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return json_type(inner)
    if origin is typing.Literal or hint is str:
        return "string"
    if hint is bool:
        return "boolean"
    if hint is int:
        return "integer"
    if origin in (tuple, list):
        return "array"
    if origin is dict or dataclasses.is_dataclass(hint):
        return "object"
    raise AssertionError(f"no Pulumi config type for {hint!r}")


def test_every_key_the_program_reads_is_declared_and_nothing_else() -> None:
    assert set(declared()) == program_keys()


def test_keys_are_written_without_the_namespace() -> None:
    assert [key for key in declared() if ":" in key] == []


@pytest.mark.parametrize("key", sorted(program_keys()))
def test_each_declaration_is_one_the_cli_accepts(key: str) -> None:
    spec = declared()[key]
    assert set(spec) <= ATTRIBUTES, f"{key}: unknown attributes {set(spec) - ATTRIBUTES}"
    assert spec.get("type") in TYPES, f"{key}: type {spec.get('type')!r}"
    assert isinstance(spec.get("description"), str), f"{key}: no description"
    assert spec["description"].strip(), f"{key}: empty description"
    assert not ("default" in spec and "value" in spec), f"{key}: both default and value"
    if spec["type"] == "array":
        assert isinstance(spec.get("items"), dict), f"{key}: an array without items"
        assert spec["items"].get("type") in TYPES, f"{key}: items of no known type"
    if "default" in spec:
        assert conforms(spec["type"], spec.get("items"), spec["default"]), f"{key}: default is not a {spec['type']}"


@pytest.mark.parametrize("key", sorted(program_keys()))
def test_each_declared_type_agrees_with_the_pydantic_field(key: str) -> None:
    hints = typing.get_type_hints(StackConfig, include_extras=True)
    assert declared()[key]["type"] == json_type(hints[key])
    if declared()[key]["type"] == "array":
        (element,) = {json_type(a) for a in typing.get_args(typing.get_args(hints[key])[0]) if a is not Ellipsis}
        assert declared()[key]["items"]["type"] == element


def test_a_key_is_required_by_pulumi_exactly_when_pydantic_requires_it() -> None:
    required = {f.name for f in dataclasses.fields(StackConfig) if f.default is dataclasses.MISSING}
    required &= {f.name for f in dataclasses.fields(StackConfig) if f.default_factory is dataclasses.MISSING}
    assert {key for key, spec in declared().items() if "default" not in spec and "value" not in spec} == (
        required - {"stack"}
    )


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_stack_files_set_only_declared_keys_with_values_of_the_declared_type(stack: str) -> None:
    values = stack_values(stack)
    assert set(values) - set(declared()) == set(), "set in the stack but not declared in Pulumi.yaml"
    wrong = {
        key: declared()[key]["type"]
        for key, value in values.items()
        if not conforms(declared()[key]["type"], declared()[key].get("items"), value)
    }
    assert wrong == {}, "values the Pulumi CLI would refuse"
    missing = {key for key, spec in declared().items() if "default" not in spec and key not in values}
    assert missing == set(), "the Pulumi CLI would stop with 'missing configuration'"


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_project_defaults_merged_as_the_cli_does_change_nothing(stack: str) -> None:
    values = stack_values(stack)
    merged = {key: spec["default"] for key, spec in declared().items() if "default" in spec} | values
    # Pulumi hands structured values to the program as JSON text, plain strings verbatim.
    as_program_sees = {k: v if isinstance(v, str) else json.dumps(v) for k, v in merged.items()}
    assert load_config(stack, as_program_sees.get) == checked_in(stack)


def test_the_type_check_catches_what_the_cli_would() -> None:
    assert not conforms("object", None, ["a"])
    assert not conforms("array", {"type": "object"}, [{"name": "db"}, "web"])
    assert conforms("array", {"type": "object"}, [{"name": "db"}])
    assert conforms("integer", None, "3")
    assert not conforms("integer", None, 3.5)
    assert conforms("boolean", None, "false")
    assert not conforms("string", None, 1)
