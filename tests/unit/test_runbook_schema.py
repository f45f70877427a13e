"""The runbook JSON Schema: generated from the models, published without drift, and held by an independent
validator (``check-jsonschema``) against every runbook the repository has, valid and invalid.

A schema describes shape only; the invalid runbooks it cannot refuse are listed in ``ONLY_DRCTL`` with the
reason, and the test fails if one of them starts being refused (the list must stay true) or if any other
invalid runbook passes. That drctl refuses every one of them is test_runbook_corpus.py's job.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.runbook.schema import runbook_schema, schema_text
from tests.support.cli import drctl

REPO = Path(__file__).resolve().parents[2]
PUBLISHED = REPO / "orchestrator" / "schemas" / "runbook-v1.schema.json"
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")
INVALID = sorted((REPO / "tests" / "runbooks" / "invalid").glob("*.yaml"))
VALID = [
    *sorted((REPO / "runbooks").rglob("*.yaml")),
    *sorted((REPO / "tests" / "runbooks" / "valid").glob("*.yaml")),
    REPO / "tests" / "integration" / "runbooks" / "drill-hold.yaml",
    REPO / "tests" / "chaos" / "runbooks" / "kill9-drill.yaml",
]

ONLY_DRCTL = {
    "bad-location.yaml": "a bucket name's rules are checked by drctl's location parser, not by a pattern",
    "bad-param-override-type.yaml": "a -p value given on the command line is not in the document",
    "cycle.yaml": "a cycle is a property of the whole step graph",
    "duplicate-step-id.yaml": "uniqueness of a field across list items has no JSON Schema keyword",
    "malformed-interpolation.yaml": "the ${...} grammar is drctl's, inside plain text",
    "needs-missing-step.yaml": "a reference to another step's id",
    "null-stack-output.yaml": "stack outputs are known only with --stack-outputs",
    "output-of-other-mode.yaml": "which steps run in which mode is a graph property",
    "param-default-wrong-type.yaml": "a default's type depends on a sibling's value (type:)",
    "param-without-value.yaml": "a value is missing only when no -p gives one",
    "self-dependency.yaml": "a reference to another step's id",
    "stack-output-needs-key.yaml": "a reference inside plain text",
    "step-output-not-needed.yaml": "a reference needs the step graph",
    "tier-backwards.yaml": "tier order across needs is a graph property",
    "undefined-param.yaml": "a reference inside plain text",
    "unknown-namespace.yaml": "a reference inside plain text",
    "unknown-param-override.yaml": "a -p value given on the command line is not in the document",
    "unknown-stack-output.yaml": "stack outputs are known only with --stack-outputs",
    "unknown-step-output.yaml": "a reference needs the step graph",
    "wait-duration-and-until.yaml": "'one of two keys' lives in the action's validator (it could be a oneOf)",
    "yaml-boolean-key.yaml": "YAML 1.1 reads 'on' as true; the validator's YAML 1.2 parser reads text",
}


def check_jsonschema(*paths: Path, schema: Path = PUBLISHED) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--schemafile", str(schema), *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_published_schema_is_the_generated_one() -> None:
    assert PUBLISHED.read_text(encoding="utf-8") == schema_text(), (
        "the models changed: regenerate with `drctl schema runbook --out orchestrator/schemas/runbook-v1.schema.json`"
    )


def test_drctl_schema_runbook_prints_it(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = drctl("schema", "runbook", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == runbook_schema()
    out = tmp_path / "deep" / "schema.json"
    assert drctl("schema", "runbook", "--out", str(out), env=env).returncode == 0
    assert out.read_text(encoding="utf-8") == PUBLISHED.read_text(encoding="utf-8")


def test_the_schema_is_valid_under_its_metaschema() -> None:
    result = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--check-metaschema", str(PUBLISHED)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_valid_runbook_passes_check_jsonschema() -> None:
    result = check_jsonschema(*VALID)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def refused() -> set[str]:
    """The invalid runbooks check-jsonschema refuses, from one run over the whole corpus (one process per file
    would cost half a minute): every file it names in an error or a parse error."""
    result = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--output-format", "json", "--schemafile", str(PUBLISHED), *map(str, INVALID)],
        capture_output=True,
        text=True,
        check=False,
    )
    doc = json.loads(result.stdout)
    return {Path(e["filename"]).name for e in [*doc.get("errors", []), *doc.get("parse_errors", [])]}


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_each_invalid_runbook_a_schema_can_describe_fails_check_jsonschema(path: Path, refused: set[str]) -> None:
    if path.name in ONLY_DRCTL:
        assert path.name not in refused, f"{path.name} is now refused by the schema; take it off ONLY_DRCTL"
    else:
        assert path.name in refused, f"the schema lets {path.name} through"


def test_a_planted_mistake_in_a_valid_runbook_is_named_by_the_validator(tmp_path: Path) -> None:
    text = (REPO / "runbooks" / "drill.yaml").read_text(encoding="utf-8")
    planted = tmp_path / "drill.yaml"
    # A misspelt key inside an action's parameters: the kind of slip an editor should underline.
    planted.write_text(text.replace("      with:\n", "      with:\n        tranfers: 8\n", 1), encoding="utf-8")
    result = check_jsonschema(planted)
    assert result.returncode == 1, result.stdout
    assert "tranfers" in result.stdout


def test_typed_fields_take_a_bound_parameter_but_not_a_run_time_reference(tmp_path: Path) -> None:
    doc = {
        "apiVersion": "drctl/v1",
        "kind": "Runbook",
        "metadata": {"name": "typed"},
        "spec": {
            "parameters": {"n": {"type": "integer", "default": 4}},
            "steps": [
                {
                    "id": "copy",
                    "action": "backup.copy",
                    "with": {"from": "s3://b/x/", "to": "az://c/x/", "transfers": 0},
                }
            ],
        },
    }
    path = tmp_path / "typed.json"
    for value, ok in (("${params.n}", True), (8, True), ("${env.N}", False), ("eight", False)):
        doc["spec"]["steps"][0]["with"]["transfers"] = value  # type: ignore[index]
        path.write_text(json.dumps(doc), encoding="utf-8")
        assert (check_jsonschema(path).returncode == 0) is ok, value


def test_the_example_runbooks_name_the_published_schema() -> None:
    for path in sorted((REPO / "runbooks").rglob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        prefix = "# yaml-language-server: $schema="
        assert first.startswith(prefix), path
        assert (path.parent / first.removeprefix(prefix)).resolve() == PUBLISHED, path
