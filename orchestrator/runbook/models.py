"""The typed runbook document: ``apiVersion: drctl/v1``, ``kind: Runbook``.

Every model is frozen and refuses unknown keys. A step's ``with`` is validated by the ``Params`` model of its
action, found in the action registry by name, so a validated step holds an instance of exactly that model
(``SerializeAsAny`` keeps its fields when the document is dumped). Cross-step rules (unique ids, needs that
exist, no cycles, tier order) live in ``graph``; references in ``interpolate`` and ``references``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import (
    ConfigDict,
    Field,
    PlainValidator,
    SerializeAsAny,
    StrictInt,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from orchestrator.actions.base import ActionParams, ActionSpec, RunMode
from orchestrator.actions.registry import REGISTRY
from orchestrator.runbook.fields import Duration, Name, Slug, Strict, drctl_error
from orchestrator.runbook.problems import describe_value, did_you_mean

API_VERSION = "drctl/v1"
KIND = "Runbook"

When = Literal["always", "drill", "failover"]
OnError = Literal["fail", "continue"]
Approval = Literal["required", "none"]
ParamType = Literal["string", "integer", "number", "boolean"]
ParamValue = str | int | float | bool

TYPE_NAMES: dict[ParamType, str] = {
    "string": "text",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
}


def conforms(kind: ParamType, value: ParamValue) -> bool:
    """Whether ``value`` is of parameter type ``kind`` (bool is never a number, though Python says it is)."""
    if kind == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == "integer":
        return isinstance(value, int)
    if kind == "number":
        return isinstance(value, int | float)
    return isinstance(value, str)


def _scalar(value: object) -> ParamValue:
    if isinstance(value, str | int | float):
        return value
    raise drctl_error(f"expected text, a number or true/false, got {describe_value(value)}")


Scalar = Annotated[ParamValue, PlainValidator(_scalar), WithJsonSchema({"type": ["string", "number", "boolean"]})]


class Metadata(Strict):
    context_phrase = "in metadata"

    name: Slug
    description: str = ""


class Objectives(Strict):
    """Recovery time and recovery point objectives; ``plan`` compares the critical path with ``rto``."""

    context_phrase = "in objectives"

    rto: Duration | None = None
    rpo: Duration | None = None


class Parameter(Strict):
    """A declared parameter: ``${params.NAME}`` anywhere in ``with`` or providers, ``-p NAME=VALUE`` to set it.
    Without a default, a value must be given on every run."""

    context_phrase = "in a parameter"

    # Order matters: validators of later fields read the earlier ones from ``info.data``.
    type: ParamType = "string"
    enum: tuple[Scalar, ...] | None = None
    default: Scalar | None = None
    description: str = ""

    @field_validator("enum")
    @classmethod
    def _enum_of_type(cls, value: tuple[ParamValue, ...] | None, info: ValidationInfo) -> tuple[ParamValue, ...] | None:
        if value is None:
            return None
        if not value:
            raise drctl_error("an empty enum allows no value; list the allowed values")
        kind = info.data.get("type")
        for item in value:
            if kind is not None and not conforms(kind, item):
                raise drctl_error(f"{item!r} is not {TYPE_NAMES[kind]}, the parameter's type")
        return value

    @field_validator("default")
    @classmethod
    def _default_of_type(cls, value: ParamValue | None, info: ValidationInfo) -> ParamValue | None:
        if value is None:
            return None
        kind = info.data.get("type")
        if kind is not None and not conforms(kind, value):
            raise drctl_error(f"{describe_value(value)} is not {TYPE_NAMES[kind]} (type: {kind})")
        allowed = info.data.get("enum")
        if allowed and value not in allowed:
            choices = ", ".join(str(a) for a in allowed)
            raise drctl_error(f"{value!r} is not one of the enum values ({choices})")
        return value


_AZURE_ONLY = ("account", "subscription", "resource_group")
_AWS_ONLY = ("profile", "role_arn")


class Provider(Strict):
    """A cloud account a runbook acts in. ``region`` is an AWS region or an Azure location."""

    # The rules of ``_fields_of_type`` below, for the JSON Schema (editors cannot run a validator).
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "if": {"properties": {"type": {"const": "aws"}}},
                    "then": {"required": ["region"], "not": {"anyOf": [{"required": [k]} for k in _AZURE_ONLY]}},
                },
                {
                    "if": {"properties": {"type": {"const": "azure"}}},
                    "then": {"not": {"anyOf": [{"required": [k]} for k in _AWS_ONLY]}},
                },
            ]
        }
    )
    context_phrase = "in a provider"

    type: Literal["aws", "azure"]
    region: str | None = None
    profile: str | None = None
    role_arn: str | None = None
    account: str | None = None
    subscription: str | None = None
    resource_group: str | None = None

    @model_validator(mode="after")
    def _fields_of_type(self) -> Self:
        only = {"aws": _AWS_ONLY, "azure": _AZURE_ONLY}
        for cloud, names in only.items():
            for name in names:
                if cloud != self.type and getattr(self, name) is not None:
                    raise drctl_error(f"{name!r} applies to {cloud} providers, not {self.type}", key=name)
        if self.type == "aws" and self.region is None:
            raise drctl_error("an aws provider needs a 'region'")
        return self


class Retry(Strict):
    """``attempts`` counts the first one. Between attempts the executor waits ``backoff``, doubling each
    time up to ``max_backoff``; without ``backoff`` it retries at once."""

    context_phrase = "in retry"

    attempts: StrictInt = Field(default=1, ge=1, le=100)
    backoff: Duration | None = None
    max_backoff: Duration | None = None

    @model_validator(mode="after")
    def _caps(self) -> Self:
        if self.max_backoff is not None:
            if self.backoff is None:
                raise drctl_error("'max_backoff' needs a 'backoff' to cap", key="max_backoff")
            if self.max_backoff < self.backoff:
                raise drctl_error("'max_backoff' is shorter than 'backoff'", key="max_backoff")
        return self

    def waits(self) -> tuple[timedelta, ...]:
        """The pauses between attempts, in order."""
        if self.backoff is None:
            return (timedelta(0),) * (self.attempts - 1)
        cap = self.max_backoff or timedelta.max
        return tuple(min(self.backoff * 2**k, cap) for k in range(self.attempts - 1))


class ActionCall(Strict):
    """An action and its parameters: the shape of a compensation, and the core of a step."""

    context_phrase = "in a compensation"

    # ``action`` first: the validator of ``with`` reads it from ``info.data``.
    action: str
    with_: SerializeAsAny[ActionParams] = Field(default_factory=dict, alias="with", validate_default=True)

    @field_validator("action")
    @classmethod
    def _registered(cls, value: str) -> str:
        if value not in REGISTRY:
            hint = did_you_mean(value, REGISTRY.names()) or f"; actions are: {', '.join(REGISTRY.names())}"
            raise drctl_error(f"unknown action {value!r}{hint}", about_field=False)
        return value

    @field_validator("with_", mode="before")
    @classmethod
    def _params_of_action(cls, value: object, info: ValidationInfo) -> object:
        action = info.data.get("action")
        spec = REGISTRY.get(action) if isinstance(action, str) else None
        if spec is None:
            # The action is already reported as unknown; params of no action would only add noise.
            return ActionParams()
        # A ValidationError raised here keeps its own locations under "with" (pydantic-core #510).
        return spec.params.model_validate({} if value is None else value, context={"action": spec.name})

    @property
    def spec(self) -> ActionSpec[Any]:
        spec = REGISTRY.get(self.action)
        assert spec is not None, "validated against the registry"
        return spec


class Step(ActionCall):
    """One step of the recovery order. See docs/runbooks.md for what each field means to a run."""

    context_phrase = "in step"

    id: Slug
    description: str = ""
    needs: tuple[Slug, ...] = ()
    tier: StrictInt = Field(default=1, ge=1)
    when: When = "always"
    timeout: Duration | None = None
    retry: Retry = Retry()
    on_error: OnError = "fail"
    approval: Approval = "none"
    compensate: ActionCall | None = None

    def runs_in(self, mode: RunMode) -> bool:
        return self.when in ("always", mode)


class Spec(Strict):
    context_phrase = "in spec"

    objectives: Objectives = Objectives()
    parameters: Mapping[Name, Parameter] = Field(default_factory=dict)
    providers: Mapping[Slug, Provider] = Field(default_factory=dict)
    steps: tuple[Step, ...] = Field(json_schema_extra={"minItems": 1})
    compensation: tuple[ActionCall, ...] = ()

    @field_validator("steps", mode="before")
    @classmethod
    def _some_steps(cls, value: object) -> object:
        # Checked before the items: a min_length would also fire when every step merely failed validation.
        if isinstance(value, list | tuple) and not value:
            raise drctl_error("a runbook needs at least one step")
        return value


class Runbook(Strict):
    context_phrase = "at the top level"

    api_version: Literal["drctl/v1"] = Field(alias="apiVersion")
    kind: Literal["Runbook"]
    metadata: Metadata
    spec: Spec

    def step(self, step_id: str) -> Step:
        for step in self.spec.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)
