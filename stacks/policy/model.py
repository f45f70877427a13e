"""A stack as Pulumi's mocks record it: every resource's type token, inputs, (mock) outputs and options."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stacks.naming import ROLE_TAG

# A check returns one message per violation; an empty list means the stack complies.
Check = Callable[[Sequence["RecordedResource"]], list[str]]


@dataclass(frozen=True)
class RecordedResource:
    """One registered resource. ``inputs`` and ``outputs`` use Pulumi's wire (camelCase) property names.

    The options are those the program sent the engine (so ``protect`` includes what a parent passed down);
    ``dependencies`` holds ``depends_on`` and every resource an input was made from, as URNs, and
    ``property_dependencies`` the latter per input. Resources built by hand in tests may leave them empty.
    """

    type: str
    name: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None
    provider: str | None = None
    urn: str | None = None
    parent: str | None = None
    protect: bool = False
    retain_on_delete: bool = False
    dependencies: tuple[str, ...] = ()
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def refs(self) -> set[str]:
        """Every value another resource may use to point at this one: id, name, ARN, bucket name."""
        values = [self.id, *(self.outputs.get(k) for k in ("name", "arn", "bucket"))]
        return {v for v in values if isinstance(v, str) and v}

    def tag(self, key: str) -> str | None:
        tags = self.inputs.get("tags") or {}
        value = tags.get(key) if isinstance(tags, Mapping) else None
        return value if isinstance(value, str) else None

    @property
    def role(self) -> str | None:
        return self.tag(ROLE_TAG)
