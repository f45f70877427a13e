"""The policies' view of a stack: every resource's type token, inputs and (mock) outputs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stacks.naming import ROLE_TAG

# A check returns one message per violation; an empty list means the stack complies.
Check = Callable[[Sequence["RecordedResource"]], list[str]]


@dataclass(frozen=True)
class RecordedResource:
    """One registered resource. ``inputs`` and ``outputs`` use Pulumi's wire (camelCase) property names."""

    type: str
    name: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None
    provider: str | None = None

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


def of_type(resources: Iterable[RecordedResource], *types: str) -> Iterator[RecordedResource]:
    return (r for r in resources if r.type in types)


def pointing_at(
    resources: Iterable[RecordedResource], type_: str, key: str, target: RecordedResource
) -> list[RecordedResource]:
    """Resources of ``type_`` whose input ``key`` names ``target``."""
    refs = target.refs()
    return [r for r in of_type(resources, type_) if r.inputs.get(key) in refs]


def dig(value: Any, *path: str | int) -> Any:
    """``value[path[0]][path[1]]...``, or None as soon as a step is missing."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, Sequence) or isinstance(value, str) or step >= len(value):
                return None
        elif not isinstance(value, Mapping):
            return None
        value = value[step] if isinstance(step, int) else value.get(step)
    return value
