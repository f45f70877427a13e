"""Field types shared by the runbook models and the actions' parameter models.

Every check raises a ``drctl`` custom error whose context carries the whole message, so the loader can show
it as written here instead of pydantic's generic wording.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, ClassVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    PlainSerializer,
    PlainValidator,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from orchestrator.durations import parse_duration
from orchestrator.errors import InvalidInput
from orchestrator.providers.location import parse_location
from orchestrator.runbook.interpolate import has_references
from orchestrator.runbook.problems import describe_value, did_you_mean

ERROR_TYPE = "drctl"
SLUG_PATTERN = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"
DURATION_PATTERN = r"\s*(0|([0-9]+(\.[0-9]+)?([mM][sS]|[sSmMhHdDwW]))+)\s*"
"""What ``parse_duration`` reads, for the JSON Schema (which cannot say "longer than 0")."""
_SLUG = re.compile(SLUG_PATTERN + r"\Z")
_NAME = re.compile(NAME_PATTERN + r"\Z")


def drctl_error(message: str, *, key: str | None = None, about_field: bool = True) -> PydanticCustomError:
    """A validation error with our own wording. ``key`` names an offending key inside the value (the loader
    points at it); ``about_field`` prefixes the message with the field's name."""
    context: dict[str, object] = {"message": message, "about_field": about_field}
    if key is not None:
        context["key"] = key
    return PydanticCustomError(ERROR_TYPE, "{message}", context)


class Strict(BaseModel):
    """Base of every runbook model: frozen, no unknown keys, and an unknown key names the closest known one
    (pydantic's own ``extra="forbid"`` stays as a second line of defence)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    context_phrase: ClassVar[str] = "here"
    """Completes "unknown key 'x' ..." for this model, e.g. "in step"."""

    @classmethod
    def known_keys(cls) -> tuple[str, ...]:
        return tuple(f.alias or name for name, f in cls.model_fields.items())

    @classmethod
    def unknown_key_phrase(cls, info: ValidationInfo) -> str:
        return cls.context_phrase

    @model_validator(mode="before")
    @classmethod
    def _known_keys_only(cls, data: object, info: ValidationInfo) -> object:
        if isinstance(data, dict):
            known = cls.known_keys()
            for key in data:
                if key not in known:
                    hint = did_you_mean(str(key), known) or f"; expected one of: {', '.join(known)}"
                    raise drctl_error(
                        f"unknown key {key!r} {cls.unknown_key_phrase(info)}{hint}", key=str(key), about_field=False
                    )
        return data


# -- durations -----------------------------------------------------------------------------------------------


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling ``parse_duration`` reads back: ``1h30m``, ``45s``, ``250ms``."""
    ms = round(value.total_seconds() * 1000)
    if ms == 0:
        return "0"
    out = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, ms = divmod(ms, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = parse_duration(value)
        except InvalidInput as err:
            raise drctl_error(str(err)) from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        raise drctl_error(f"{value} is not a duration; give it a unit, e.g. {value}s or {value}m")
    else:
        raise drctl_error(f"expected a duration such as 90s, 15m or 1h30m, got {describe_value(value)}")
    if parsed <= timedelta(0):
        raise drctl_error(f"{value!r} is not a duration longer than 0")
    return parsed


Duration = Annotated[
    timedelta,
    PlainValidator(_duration, json_schema_input_type=str),
    PlainSerializer(format_duration, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": f"^{DURATION_PATTERN}$", "examples": ["90s", "15m", "1h30m"]}),
]
"""A positive duration written as in ``parse_duration`` (``90s``, ``15m``, ``1h30m``); a bare number is refused
because its unit would be a guess."""


# -- names ---------------------------------------------------------------------------------------------------


def _slug(value: str) -> str:
    if not _SLUG.match(value):
        raise drctl_error(
            f"{value!r} is not a valid id: use lowercase letters, digits and '-', starting and ending with a "
            "letter or digit, at most 63 characters (e.g. copy-db)"
        )
    return value


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise drctl_error(f"{value!r} is not a valid name: use letters, digits and '_', not starting with a digit")
    return value


Slug = Annotated[str, AfterValidator(_slug), WithJsonSchema({"type": "string", "pattern": f"^{SLUG_PATTERN}$"})]
"""Step ids and runbook names: they appear in references, journals and file names."""
Name = Annotated[str, AfterValidator(_name), WithJsonSchema({"type": "string", "pattern": f"^{NAME_PATTERN}$"})]
"""Parameter and environment variable names: they appear in ``${params.NAME}`` and ``${env.NAME}``."""


# -- text values checked when they hold no run-time reference ------------------------------------------------


def _location(value: str) -> str:
    if not has_references(value):
        try:
            parse_location(value)
        except InvalidInput as err:
            raise drctl_error(str(err)) from None
    return value


def _http_url(value: str) -> str:
    if not has_references(value):
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise drctl_error(f"{value!r} is not an http(s) URL, e.g. https://app.example.com/health")
    return value


def _host_port(value: str) -> str:
    if not has_references(value):
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise drctl_error(f"{value!r} is not HOST:PORT, e.g. db.internal:5432")
    return value


LocationText = Annotated[str, AfterValidator(_location)]
"""A backup location (``s3://``, ``az://``, ``file://`` or a path), checked unless it holds a reference."""
HttpUrlText = Annotated[str, AfterValidator(_http_url)]
HostPortText = Annotated[str, AfterValidator(_host_port)]
