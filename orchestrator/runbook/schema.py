"""The JSON Schema of ``drctl/v1`` runbooks, generated from the models that validate them.

Editors (the YAML language server) use it for completion and inline errors, and CI can check runbooks
with any JSON Schema validator. It is derived, never written by hand: pydantic gives the document's shape
from ``Runbook``; what pydantic cannot see is added here:

- a step's ``with`` depends on its ``action``, so each action's ``Params`` model becomes one ``if``/``then``
  branch, keyed by the action's name;
- a ``with`` or ``providers`` value may be a whole-value reference that drctl binds before it validates
  (``${params.X}``, ``${stack.X}``), so a typed field there also takes such a reference.

A schema can only say what a document looks like. What needs the whole document or the run (references
that exist, ``needs`` that name steps, cycles, tier order, a parameter's type against its default) only
``drctl validate`` checks; docs/runbooks.md lists these.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.actions.registry import REGISTRY
from orchestrator.runbook.models import API_VERSION, Runbook

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "https://drctl.dev/schemas/runbook-v1.schema.json"
"""The schema's name; nothing is served there (editors use the copy in the project, see ``drctl init``)."""
BOUND_REFERENCE = r"^\$\{\s*(params|stack)\.[^}]*\}$"
"""A whole value drctl replaces before validation, so it may stand where a number or a choice is expected."""

Json = dict[str, Any]


def runbook_schema() -> Json:
    """The schema, as a JSON document (deterministic: the same models give the same bytes)."""
    schema: Json = Runbook.model_json_schema(by_alias=True, mode="validation")
    defs: Json = schema["$defs"]
    defs.pop("ActionParams", None)
    defs["BoundReference"] = {
        "type": "string",
        "pattern": BOUND_REFERENCE,
        "description": "${params.NAME} or ${stack.NAME}: replaced by its value before the runbook is validated",
    }
    branches = []
    for name in REGISTRY.names():
        spec = REGISTRY.get(name)
        assert spec is not None, "listed by the registry"
        key = f"with.{name}"
        params: Json = spec.params.model_json_schema(
            by_alias=True, mode="validation", ref_template=f"#/$defs/{key}.{{model}}"
        )
        for nested, body in params.pop("$defs", {}).items():
            defs[f"{key}.{nested}"] = _accept_references(body)
        params["title"] = f"with ({name})"
        params["description"] = spec.description
        defs[key] = _accept_references(params)
        branches.append(
            {
                "if": {"properties": {"action": {"const": name}}, "required": ["action"]},
                "then": {"properties": {"with": {"anyOf": [{"$ref": f"#/$defs/{key}"}, {"type": "null"}]}}},
            }
        )
    for model in ("ActionCall", "Step"):
        _keyed_by_action(defs[model], branches)
    defs["Provider"] = _accept_references(defs["Provider"])
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        "title": f"drctl runbook ({API_VERSION})",
        "description": "A drctl runbook: recovery steps in tiers, their actions and objectives. "
        "`drctl validate RUNBOOK` checks what a schema cannot (references, needs, cycles, tier order).",
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
    }


def schema_text() -> str:
    """The schema as written to ``orchestrator/schemas/runbook-v1.schema.json``."""
    return json.dumps(runbook_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _keyed_by_action(model: Json, branches: list[Json]) -> None:
    model["properties"]["action"] = {"type": "string", "enum": list(REGISTRY.names()), "title": "Action"}
    model["properties"]["with"] = {"type": ["object", "null"], "description": "the action's parameters"}
    model["allOf"] = branches


def _accept_references(model: Json) -> Json:
    """``model`` with every property that is not plain text also taking a whole-value bound reference."""
    properties = model.get("properties", {})
    for name, prop in properties.items():
        if prop != {"type": "string"} and not _plain_text(prop):
            properties[name] = {"anyOf": [prop, {"$ref": "#/$defs/BoundReference"}], **_annotations(prop)}
    return model


def _plain_text(prop: Json) -> bool:
    """Text with no pattern or choice takes any string, references included."""
    options = prop.get("anyOf", [prop])
    return all(o.get("type") in ("string", "null") and set(o) <= {"type", "title", "default"} for o in options)


def _annotations(prop: Json) -> Json:
    # Kept beside the anyOf so that an editor still shows the field's title, default and description.
    return {k: prop[k] for k in ("title", "default", "description") if k in prop}
