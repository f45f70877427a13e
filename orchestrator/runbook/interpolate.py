"""``${...}`` references in runbook text: parse them, check them, and resolve them.

Five namespaces, bound at two times:

- ``${params.NAME}``: a declared parameter; bound when the runbook is loaded, so a step's parameters are
  type-checked with the real values (``transfers: "${params.copies}"`` becomes the integer 4).
- ``${stack.NAME}`` (or ``${stack.NAME.KEY}`` / ``${stack.NAME.0}`` into a mapping or list): an output of the
  stack-outputs contract; ``${steps.ID.outputs.NAME}``: an output of an earlier step; ``${env.VAR}``: an
  environment variable; ``${run.id}`` / ``${run.mode}``: the run's id and mode (``drill`` or ``failover``), so a
  drill can name what it creates after itself. These stay in the text until the executor resolves them at
  run time; environment values are never read at validation time and never printed.

A reference that is the whole text yields the value itself (an integer stays an integer); one embedded in
longer text is rendered as text. ``$${`` is a literal ``${``.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from orchestrator.errors import InvalidInput
from orchestrator.runbook.problems import did_you_mean
from orchestrator.stack_outputs import StackOutputs, contract_field_names

Namespace = Literal["params", "stack", "steps", "env", "run"]
NAMESPACES: tuple[Namespace, ...] = ("params", "stack", "steps", "env", "run")
RUN_FIELDS = ("id", "mode")

_TOKEN = re.compile(r"\$\$\{|\$\{")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_STEP_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\Z")
_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
_FORMS: dict[Namespace, str] = {
    "params": "${params.NAME}",
    "stack": "${stack.NAME}, ${stack.NAME.KEY} or ${stack.NAME.INDEX}",
    "steps": "${steps.STEP_ID.outputs.NAME}",
    "env": "${env.VAR}",
    "run": "${run.id} or ${run.mode}",
}

P = TypeVar("P", bound=BaseModel)


class InterpolationError(InvalidInput):
    """A malformed or unresolvable reference; ``offset`` is where it starts in the text."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True)
class Reference:
    """One ``${namespace.path}`` as written at ``offset`` of its text."""

    namespace: Namespace
    path: tuple[str, ...]
    text: str
    offset: int

    @property
    def name(self) -> str:
        return self.path[0]


@dataclass(frozen=True)
class Template:
    """Text split into literal parts (escapes undone) and references."""

    parts: tuple[str | Reference, ...]

    @property
    def references(self) -> tuple[Reference, ...]:
        return tuple(p for p in self.parts if isinstance(p, Reference))

    @property
    def whole(self) -> Reference | None:
        """The reference, when the text is exactly one reference and nothing else."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Reference):
            return self.parts[0]
        return None


def has_references(text: str) -> bool:
    """Whether ``text`` may hold references; checks of literal values (locations, URLs) skip such text."""
    return "${" in text


def parse_template(text: str) -> Template:
    """Split ``text``; raises ``InterpolationError`` at the first malformed reference."""
    parts: list[str | Reference] = []
    literal: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        if match.start() < pos:
            continue  # inside a reference already consumed
        literal.append(text[pos : match.start()])
        if match.group() == "$${":
            literal.append("${")
            pos = match.end()
            continue
        end = text.find("}", match.end())
        if end < 0:
            raise InterpolationError(
                f"unterminated '${{' in {text!r}; close it with '}}' (write '$${{' for a literal '${{')",
                match.start(),
            )
        if "".join(literal):
            parts.append("".join(literal))
        literal = []
        parts.append(_reference(text[match.start() : end + 1], match.start()))
        pos = end + 1
    literal.append(text[pos:])
    if "".join(literal):
        parts.append("".join(literal))
    return Template(tuple(parts))


def _reference(raw: str, offset: int) -> Reference:
    body = raw[2:-1]
    if not body:
        raise InterpolationError("empty reference '${}'; write e.g. ${params.NAME}", offset)
    if body.strip() != body or " " in body:
        raise InterpolationError(f"spaces are not allowed inside {raw!r}", offset)
    namespace, _, rest = body.partition(".")
    if namespace not in NAMESPACES:
        hint = did_you_mean(namespace, NAMESPACES) or "; use params, stack, steps, env or run"
        raise InterpolationError(f"unknown namespace {namespace!r} in {raw!r}{hint}", offset)
    path = tuple(rest.split(".")) if rest else ()
    if not _well_formed(namespace, path):
        raise InterpolationError(f"malformed reference {raw!r}; write {_FORMS[namespace]}", offset)
    return Reference(namespace, path, raw, offset)


def _well_formed(namespace: Namespace, path: tuple[str, ...]) -> bool:
    if namespace in ("params", "env"):
        return len(path) == 1 and bool(_NAME.match(path[0]))
    if namespace == "run":
        return len(path) == 1 and path[0] in RUN_FIELDS
    if namespace == "steps":
        return len(path) == 3 and bool(_STEP_ID.match(path[0])) and path[1] == "outputs" and bool(_NAME.match(path[2]))
    return len(path) >= 1 and bool(_NAME.match(path[0])) and all(_KEY.match(p) for p in path[1:])


# -- checking stack references against the contract --------------------------------------------------------


def stack_reference_problem(ref: Reference, outputs: StackOutputs | None) -> str | None:
    """Why ``ref`` cannot name a text value of the stack outputs contract, or None if it can. The shape is
    checked against the contract's types; values only when ``outputs`` are given."""
    fields = StackOutputs.model_fields
    if ref.name not in fields:
        return f"unknown stack output {ref.name!r} in {ref.text!r}{did_you_mean(ref.name, contract_field_names())}"
    annotation: object = fields[ref.name].annotation
    for depth, segment in enumerate(ref.path[1:], start=1):
        kind, annotation = _shape(annotation)
        where = ".".join(ref.path[:depth])
        if kind == "scalar":
            return f"{ref.text!r}: stack output {where!r} is a single value and has no {segment!r}"
        if kind == "list" and not segment.isdigit():
            return f"{ref.text!r}: stack output {where!r} is a list; {segment!r} is not an index"
    kind, _ = _shape(annotation)
    if kind != "scalar":
        example = "0" if kind == "list" else "KEY"
        return (
            f"{ref.text!r}: stack output {'.'.join(ref.path)!r} is a {'list' if kind == 'list' else 'mapping'}; "
            f"pick one item, e.g. ${{stack.{'.'.join(ref.path)}.{example}}}"
        )
    if outputs is None:
        return None
    try:
        stack_value(outputs, ref)
    except InterpolationError as err:
        return str(err)
    return None


def _shape(annotation: object) -> tuple[Literal["scalar", "list", "dict"], object]:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return _shape(rest[0]) if len(rest) == 1 else ("scalar", annotation)
    if origin is list:
        return "list", args[0]
    if origin is dict:
        return "dict", args[1]
    return "scalar", annotation


def stack_value(outputs: StackOutputs, ref: Reference) -> object:
    """The value ``ref`` names in ``outputs``; raises ``InterpolationError`` when it is absent or null."""
    value: object = getattr(outputs, ref.name, None)
    for depth, segment in enumerate(ref.path[1:], start=1):
        where = ".".join(ref.path[:depth])
        if isinstance(value, dict):
            if segment not in value:
                keys = ", ".join(sorted(value)) or "none"
                raise InterpolationError(
                    f"{ref.text!r}: stack output {where!r} of stack {outputs.stack!r} has no key {segment!r} "
                    f"(it has: {keys})"
                )
            value = value[segment]
        elif isinstance(value, list):
            if not segment.isdigit() or int(segment) >= len(value):
                raise InterpolationError(
                    f"{ref.text!r}: stack output {where!r} of stack {outputs.stack!r} has {len(value)} items; "
                    f"{segment!r} is not one of their indexes"
                )
            value = value[int(segment)]
    if value is None:
        raise InterpolationError(
            f"{ref.text!r}: stack output {'.'.join(ref.path)!r} is null in stack {outputs.stack!r} "
            "(this stack does not provide it)"
        )
    return value


# -- substituting and resolving ------------------------------------------------------------------------------


def _escape(text: str) -> str:
    return text.replace("${", "$${")


def as_text(value: object, ref: Reference) -> str:
    """``value`` as it appears when ``ref`` is embedded in longer text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if value is None:
        raise InterpolationError(f"{ref.text} is null", ref.offset)
    raise InterpolationError(
        f"{ref.text} is a {type(value).__name__}; only text, numbers and true/false can be put into text",
        ref.offset,
    )


def substitute(template: Template, lookup: Callable[[Reference], object | None]) -> object:
    """Replace the references ``lookup`` knows (it returns None for the others, which stay as written). The
    result is text that parses back to the remaining references, or the value itself for a whole reference."""
    whole = template.whole
    if whole is not None:
        value = lookup(whole)
        if value is None:
            return whole.text
        return _escape(value) if isinstance(value, str) else value
    out: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(_escape(part))
            continue
        value = lookup(part)
        out.append(part.text if value is None else _escape(as_text(value, part)))
    return "".join(out)


@dataclass(frozen=True)
class ResolveContext:
    """Everything a run-time reference can name."""

    params: Mapping[str, object] = field(default_factory=dict)
    stack: StackOutputs | None = None
    steps: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    run: Mapping[str, str] = field(default_factory=dict)


def lookup(ref: Reference, context: ResolveContext) -> object:
    """The value of one reference; raises ``InterpolationError`` naming what is missing (never a value)."""
    if ref.namespace == "params":
        if ref.name not in context.params:
            raise InterpolationError(f"{ref.text}: no parameter {ref.name!r} was bound", ref.offset)
        return context.params[ref.name]
    if ref.namespace == "stack":
        if context.stack is None:
            raise InterpolationError(f"{ref.text} needs the stack outputs; pass --stack-outputs FILE", ref.offset)
        try:
            return stack_value(context.stack, ref)
        except InterpolationError as err:
            raise InterpolationError(str(err), ref.offset) from None
    if ref.namespace == "steps":
        step, output = ref.path[0], ref.path[2]
        if step not in context.steps:
            raise InterpolationError(f"{ref.text}: step {step!r} has not produced outputs (has it run?)", ref.offset)
        outputs = context.steps[step]
        if output not in outputs:
            names = ", ".join(sorted(outputs)) or "none"
            raise InterpolationError(
                f"{ref.text}: step {step!r} has no output {output!r} (it has: {names})", ref.offset
            )
        return outputs[output]
    if ref.namespace == "run":
        if ref.name not in context.run:
            raise InterpolationError(f"{ref.text} is known only while a run executes", ref.offset)
        return context.run[ref.name]
    if ref.name not in context.env:
        raise InterpolationError(f"{ref.text}: environment variable {ref.name} is not set", ref.offset)
    return context.env[ref.name]


def render(text: str, context: ResolveContext) -> object:
    """Resolve every reference in ``text``: the value itself for a whole reference, else text."""
    template = parse_template(text)
    whole = template.whole
    if whole is not None:
        return lookup(whole, context)
    return "".join(p if isinstance(p, str) else as_text(lookup(p, context), p) for p in template.parts)


def resolve(value: object, context: ResolveContext) -> object:
    """``value`` with every reference in every text inside it resolved; mapping keys are never interpolated."""
    if isinstance(value, str):
        return render(value, context)
    if isinstance(value, list | tuple):
        return type(value)(resolve(v, context) for v in value)
    if isinstance(value, Mapping):
        return {k: resolve(v, context) for k, v in value.items()}
    return value


def resolve_params(params: P, context: ResolveContext) -> P:
    """A copy of an action's parameters with every run-time reference resolved and re-validated, so a value
    that only exists at run time still gets the model's checks. Resolve once: ``$${`` has become ``${``."""
    raw: Any = resolve(params.model_dump(by_alias=True), context)
    return type(params).model_validate(raw)
