"""Loading: positions of every node, YAML pitfalls, staged checks, and the typed document that comes out."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from orchestrator.actions import backup_copy, backup_verify, notify
from orchestrator.actions.base import ActionParams
from orchestrator.actions.registry import REGISTRY
from orchestrator.runbook import yamlsource
from orchestrator.runbook.loader import LoadedRunbook, load_runbook, parse_runbook
from orchestrator.runbook.models import Runbook
from orchestrator.runbook.problems import Diagnostic, RunbookInvalid
from orchestrator.runbook.yamlsource import Mark, YamlError, load_yaml
from orchestrator.stack_outputs import parse_stack_outputs

RUNBOOKS = Path(__file__).resolve().parents[1] / "runbooks"
EXAMPLE = RUNBOOKS / "valid" / "failover-aws-to-azure.yaml"

HEADER = "apiVersion: drctl/v1\nkind: Runbook\nmetadata: {name: t}\nspec:\n"


def errors(text: str, **overrides: str) -> list[str]:
    with pytest.raises(RunbookInvalid) as caught:
        parse_runbook(text, "rb.yaml", overrides)
    return [str(d) for d in caught.value.diagnostics]


def load(text: str, **overrides: str) -> LoadedRunbook:
    return parse_runbook(text, "rb.yaml", overrides)


# -- yamlsource ---------------------------------------------------------------------------------------------


def test_every_node_has_its_position() -> None:
    data, sources = load_yaml("a:\n  b: [x, {c: 'quoted'}]\n  d: |\n    block\n")
    assert data == {"a": {"b": ["x", {"c": "quoted"}], "d": "block\n"}}
    assert sources.locate(("a",), at_key=True) == Mark(1, 1)
    assert sources.locate(("a", "b")) == Mark(2, 6)
    assert sources.locate(("a", "b", 1, "c")) == Mark(2, 14)
    assert sources.locate(("a", "b", 1, "c"), offset=2) == Mark(2, 17)  # inside the quotes
    assert sources.locate(("a", "b", 0), offset=0) == Mark(2, 7)
    assert sources.locate(("a", "d"), offset=3) == Mark(3, 6)  # block text: no 1:1 mapping, the node itself
    assert sources.locate(("a", "missing")) == Mark(1, 1)  # a missing key belongs to its parent's key
    assert sources.locate(("a", "b", 1, "c", "deeper")) == Mark(2, 11)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a: 1\nb: 2\na: 3\n", (Mark(3, 1), "duplicate key 'a' (first at line 1)")),
        ("x: {k: 1, k: 2}\n", (Mark(1, 11), "duplicate key 'k' (first at line 1)")),
        ("on: 1\n", (Mark(1, 1), "key 'on' is read by YAML as true/false, not text; quote it")),
        ("3: x\n", (Mark(1, 1), "key '3' is read by YAML as a number, not text; quote it")),
        ("~: x\n", (Mark(1, 1), "key '~' is read by YAML as null, not text; quote it")),
        ("? [a]\n: x\n", (Mark(1, 3), "a key must be text, not a mapping or a list")),
        ("base: &b {x: 1}\nother:\n  <<: *b\n", (Mark(3, 3), "YAML merge keys ('<<') are not supported")),
        ("a: !Ref x\n", (Mark(1, 4), "could not determine a constructor for the tag '!Ref'")),
        ("a: !!set {x}\n", (Mark(1, 4), "unsupported YAML tag 'tag:yaml.org,2002:set'")),
        ("a: &a [1, *a]\n", (Mark(1, 4), "this alias refers to a mapping or list containing it")),
        ("", (Mark(1, 1), "the file is empty")),
        ("# only a comment\n", (Mark(1, 1), "the file is empty")),
        ("a: 1\n---\nb: 2\n", (Mark(2, 1), "a runbook file holds one YAML document; this is a second one")),
        ("a: b: c\n", (Mark(1, 5), "invalid YAML: mapping values are not allowed here")),
        ("a: \x07\n", (Mark(1, 4), "invalid YAML: character '\\x07' (#x0007) is not allowed in YAML; remove it")),
    ],
)
def test_yaml_problems(text: str, problem: tuple[Mark, str]) -> None:
    with pytest.raises(YamlError) as caught:
        load_yaml(text)
    (mark, message), *_ = caught.value.problems
    assert mark == problem[0]
    assert problem[1] in message


def test_every_duplicate_key_is_reported() -> None:
    with pytest.raises(YamlError) as caught:
        load_yaml("a: 1\na: 2\nb: {c: 1, c: 2}\n")
    assert [m for m, _ in caught.value.problems] == [Mark(2, 1), Mark(3, 11)]


def test_alias_expansion_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlsource, "MAX_NODES", 50)
    with pytest.raises(YamlError, match="more than 50 nodes"):
        load_yaml("a: &a [1, 2, 3, 4, 5, 6, 7, 8]\nb: &b [*a, *a, *a, *a]\nc: [*b, *b, *b]\n")


# -- staged checks --------------------------------------------------------------------------------------------


def test_all_problems_of_one_stage_are_reported_in_file_order() -> None:
    text = HEADER + (
        "  steps:\n"
        "    - {id: b, action: notify, timeout: 5x, with: {message: hi}}\n"
        "    - {id: a, action: nope}\n"
        "    - {id: c, action: notify, with: {message: hi, extra: 1}}\n"
    )
    assert errors(text) == [
        "rb.yaml:6:40: timeout: '5x' is not a duration; write e.g. 90s, 15m, 1h30m or 2d",
        f"rb.yaml:7:23: unknown action 'nope'; actions are: {', '.join(sorted(REGISTRY.names()))}",
        "rb.yaml:8:51: unknown key 'extra' in 'with' of notify; expected one of: message, webhook",
    ]


def test_a_bad_reference_is_not_reported_again_as_a_bad_value() -> None:
    text = HEADER + (
        "  steps:\n    - id: a\n      action: backup.copy\n"
        "      with: {from: 's3://b-1/x/', to: 's3://b-2/x/', transfers: '${params.n}'}\n"
    )
    assert errors(text) == ["rb.yaml:8:66: undefined parameter 'n' in '${params.n}'; declare it under spec.parameters"]


def test_graph_problems_wait_for_a_valid_document() -> None:
    text = HEADER + "  steps:\n    - {id: a, needs: [a], action: notify, with: {message: 1}}\n"
    assert errors(text) == ["rb.yaml:6:59: with.message must be text, got a number (1); quote it to make it text"]


def test_missing_keys_point_at_their_parent() -> None:
    assert errors(HEADER + "  steps:\n    - id: a\n      action: notify\n") == [
        "rb.yaml:6:7: missing required key 'message' in 'with' of notify"
    ]
    assert errors("apiVersion: drctl/v1\nkind: Runbook\nspec: {steps: [{id: a, action: wait}]}\n") == [
        "rb.yaml:1:1: missing required key 'metadata' at the top level",
        "rb.yaml:3:16: with: give either 'duration' or 'until'",
    ]
    assert errors("apiVersion: drctl/v1\nkind: Runbook\nmetadata: {name: x}\nspec:\n  steps:\n    - action: notify\n")[
        0
    ] == ("rb.yaml:6:7: missing required key 'id' in step 1")


def test_missing_header() -> None:
    assert errors("metadata: {name: x}\n") == [
        "rb.yaml:1:1: missing 'apiVersion'; a runbook starts with apiVersion: drctl/v1, kind: Runbook",
        "rb.yaml:1:1: missing 'kind'; a runbook starts with apiVersion: drctl/v1, kind: Runbook",
    ]


def test_runbook_invalid_is_an_invalid_input_naming_the_first_problem() -> None:
    err = RunbookInvalid([Diagnostic("f", 9, 1, "later"), Diagnostic("f", 2, 5, "first")])
    assert str(err) == "f:2:5: first (and 1 more)"
    assert err.exit_code == 2


def test_reading_errors(tmp_path: Path) -> None:
    with pytest.raises(RunbookInvalid, match=r"nowhere.yaml:1:1: cannot read this file: No such file"):
        load_runbook(tmp_path / "nowhere.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"apiVersion: drctl/v1\nmetadata: {name: caf\xe9}\n")
    with pytest.raises(RunbookInvalid, match=r"latin1.yaml:2:21: not UTF-8 text \(byte 0xe9\)"):
        load_runbook(bad)
    with pytest.raises(RunbookInvalid, match=r"^shown-as:1:1: cannot read"):
        load_runbook(tmp_path / "nowhere.yaml", source="shown-as")


# -- the typed document -----------------------------------------------------------------------------------------


def test_with_is_the_actions_own_params_model() -> None:
    loaded = load_runbook(EXAMPLE)
    copy, verify = loaded.runbook.spec.steps[0], loaded.runbook.spec.steps[1]
    assert isinstance(copy.with_, backup_copy.Params)
    assert isinstance(verify.with_, backup_verify.Params)
    assert verify.compensate is not None
    assert isinstance(verify.compensate.with_, notify.Params)
    assert isinstance(loaded.runbook.spec.compensation[0].with_, notify.Params)
    assert copy.spec.name == "backup.copy"
    assert copy.timeout == timedelta(minutes=30)
    assert copy.retry.waits() == (
        timedelta(seconds=10),
        timedelta(seconds=20),
        timedelta(seconds=40),
        timedelta(seconds=80),
    )


def test_parameters_are_bound_with_their_types() -> None:
    copy = load_runbook(EXAMPLE).runbook.spec.steps[0].with_
    assert isinstance(copy, backup_copy.Params)
    assert (copy.mode, copy.transfers, copy.to) == ("incremental", 4, "az://${stack.vault_container}/db/")
    overridden = load_runbook(EXAMPLE, {"mode": "full", "copies": "16", "deep": "no"})
    copy = overridden.runbook.spec.steps[0].with_
    verify = overridden.runbook.spec.steps[1].with_
    assert isinstance(copy, backup_copy.Params)
    assert isinstance(verify, backup_verify.Params)
    assert (copy.mode, copy.transfers, verify.deep) == ("full", 16, False)
    assert overridden.parameters == {"mode": "full", "copies": 16, "deep": False}


def test_a_parameter_value_is_never_read_as_a_reference() -> None:
    text = HEADER + (
        "  parameters: {msg: {default: x}}\n"
        "  steps:\n    - {id: a, action: notify, with: {message: 'say ${params.msg} $${literal}'}}\n"
    )
    message = load(text, msg="${env.SECRET}").runbook.spec.steps[0].with_
    assert isinstance(message, notify.Params)
    assert message.message == "say $${env.SECRET} $${literal}"


def test_the_document_is_frozen_and_round_trips_through_json() -> None:
    runbook = load_runbook(EXAMPLE).runbook
    with pytest.raises(ValidationError, match="frozen"):
        runbook.metadata.name = "other"
    dumped = runbook.model_dump(mode="json", by_alias=True)
    assert dumped["spec"]["steps"][0]["with"]["from"] == "s3://${stack.backup_bucket}/db/"
    assert dumped["spec"]["steps"][0]["timeout"] == "30m"
    assert Runbook.model_validate(json.loads(json.dumps(dumped))) == runbook


def test_base_params_never_stand_for_a_real_action() -> None:
    assert ActionParams.known_keys() == ()
    with pytest.raises(ValidationError, match="unknown key 'x' in 'with'"):
        ActionParams.model_validate({"x": 1})


def test_stack_outputs_are_checked_when_given() -> None:
    outputs = parse_stack_outputs(json.loads((RUNBOOKS / "stack-outputs" / "aws-to-azure.json").read_text()), "x")
    loaded = load_runbook(EXAMPLE, stack=outputs)
    assert loaded.stack is outputs
    assert loaded.graph.tiers == (1, 2, 3)


# -- found by the runbook fuzzer (tests/chaos/test_runbook_fuzz.py): each once ended in a traceback or a
# -- second line without a position ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("apiVersion: !!timestamp drctl/v1\n", "rb.yaml:1:13: 'drctl/v1' is not a valid timestamp; quote it"),
        ("a: " + "[" * 495 + "]" * 495 + "\n", "rb.yaml:1:1: the document nests lists or mappings hundreds"),
        ("a: " + "{b: " * 495 + "1" + "}" * 495 + "\n", "rb.yaml:1:1: the document nests lists or mappings hundreds"),
        (
            HEADER + '  steps:\n    - {id: a, action: notify, with: {message: hi}, "\\ud83d\\ude42": 1}\n',
            "rb.yaml:6:52: the text holds the escaped surrogate \\ud83d",
        ),
        (HEADER + '  steps:\n    - {id: a, action: notify, with: {message: "\\ud800"}}\n', "escaped surrogate \\ud800"),
        (
            HEADER + '  steps:\n    - id: a\n      action: compute.start\n      with: {tags: {"a\\nb": 3}}\n',
            "rb.yaml:8:29: with.tags.a\\nb must be text",
        ),
    ],
)
def test_hostile_yaml_gets_one_positioned_line(text: str, expected: str) -> None:
    found = errors(text)
    assert any(expected in line for line in found), found
    assert all("\n" not in line for line in found)


def test_a_line_break_in_an_enum_value_stays_on_one_line() -> None:
    text = (
        "apiVersion: drctl/v1\nkind: Runbook\nmetadata: {name: t}\nspec:\n  parameters:\n"
        '    mode: {type: string, default: z, enum: ["a\\nb"]}\n'
        "  steps:\n    - {id: a, action: notify, with: {message: hi}}\n"
    )
    found = errors(text)
    assert found
    assert all("\n" not in line for line in found), found
