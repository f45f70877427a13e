"""``${...}`` references: parsing, shape checks against the stack contract, binding and run-time resolution."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from orchestrator.actions import backup_copy, shell
from orchestrator.runbook.interpolate import (
    InterpolationError,
    Reference,
    ResolveContext,
    parse_template,
    render,
    resolve,
    resolve_params,
    stack_reference_problem,
    substitute,
)
from orchestrator.stack_outputs import StackOutputs, parse_stack_outputs

OUTPUTS = Path(__file__).resolve().parents[1] / "runbooks" / "stack-outputs"


def lab() -> StackOutputs:
    return parse_stack_outputs(json.loads((OUTPUTS / "lab.json").read_text()), "lab.json")


def ref(text: str) -> Reference:
    whole = parse_template(text).whole
    assert whole is not None
    return whole


def test_parts_of_a_template() -> None:
    template = parse_template("s3://${stack.backup_bucket}/${params.mode}/x")
    assert template.parts == (
        "s3://",
        Reference("stack", ("backup_bucket",), "${stack.backup_bucket}", 5),
        "/",
        Reference("params", ("mode",), "${params.mode}", 28),
        "/x",
    )
    assert template.whole is None
    assert parse_template("${env.HOME}").whole == Reference("env", ("HOME",), "${env.HOME}", 0)
    assert parse_template("no references").parts == ("no references",)
    assert parse_template("").parts == ()


def test_double_dollar_is_a_literal() -> None:
    template = parse_template("echo $${HOME} and $$ and ${env.USER}")
    assert template.parts[0] == "echo ${HOME} and $$ and "
    assert [r.text for r in template.references] == ["${env.USER}"]


@pytest.mark.parametrize(
    ("text", "message", "offset"),
    [
        ("x ${params.mode", "unterminated '${' in 'x ${params.mode'; close it with '}'", 2),
        ("${}", "empty reference '${}'; write e.g. ${params.NAME}", 0),
        ("a${ params.x}", "spaces are not allowed inside '${ params.x}'", 1),
        ("${prams.x}", "unknown namespace 'prams' in '${prams.x}'; did you mean 'params'?", 0),
        ("${secrets.x}", "unknown namespace 'secrets' in '${secrets.x}'; use params, stack, steps, env or run", 0),
        ("${params.a.b}", "malformed reference '${params.a.b}'; write ${params.NAME}", 0),
        ("${params}", "malformed reference '${params}'; write ${params.NAME}", 0),
        ("${env.1X}", "malformed reference '${env.1X}'; write ${env.VAR}", 0),
        (
            "${steps.copy.output.x}",
            "malformed reference '${steps.copy.output.x}'; write ${steps.STEP_ID.outputs.NAME}",
            0,
        ),
        ("${steps.Copy.outputs.x}", "write ${steps.STEP_ID.outputs.NAME}", 0),
        ("${stack.}", "malformed reference '${stack.}'", 0),
        ("${stack.image_ids.a b}", "spaces are not allowed", 0),
    ],
)
def test_malformed_references(text: str, message: str, offset: int) -> None:
    with pytest.raises(InterpolationError) as caught:
        parse_template(text)
    assert message in str(caught.value)
    assert caught.value.offset == offset


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("${stack.backup_bucket}", None),
        ("${stack.image_ids.web}", None),
        ("${stack.standby_instance_ids.web.1}", None),
        ("${stack.bakup_bucket}", "unknown stack output 'bakup_bucket' in '${stack.bakup_bucket}'; did you mean"),
        ("${stack.image_ids}", "stack output 'image_ids' is a mapping; pick one item, e.g. ${stack.image_ids.KEY}"),
        ("${stack.recovery_subnet_ids}", "is a list; pick one item, e.g. ${stack.recovery_subnet_ids.0}"),
        ("${stack.recovery_subnet_ids.first}", "stack output 'recovery_subnet_ids' is a list; 'first' is not an index"),
        ("${stack.stack.name}", "stack output 'stack' is a single value and has no 'name'"),
    ],
)
def test_stack_references_are_checked_against_the_contract(text: str, problem: str | None) -> None:
    found = stack_reference_problem(ref(text), None)
    assert found is None if problem is None else problem in (found or "")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("${stack.image_ids.web}", None),
        (
            "${stack.image_ids.cache}",
            "stack output 'image_ids' of stack 'lab' has no key 'cache' (it has: app, db, web)",
        ),
        ("${stack.drill_subnet_ids.3}", "stack output 'drill_subnet_ids' of stack 'lab' has 1 items"),
        ("${stack.vault_account}", "stack output 'vault_account' is null in stack 'lab'"),
    ],
)
def test_stack_references_are_resolved_against_given_outputs(text: str, problem: str | None) -> None:
    found = stack_reference_problem(ref(text), lab())
    assert found is None if problem is None else problem in (found or "")


def test_substitute_binds_some_references_and_keeps_the_rest_re_parseable() -> None:
    def params_only(r: Reference) -> object | None:
        return {"n": 4, "on": True, "text": "a ${b}"}.get(r.name) if r.namespace == "params" else None

    assert substitute(parse_template("${params.n}"), params_only) == 4
    assert substitute(parse_template("${params.on}"), params_only) is True
    assert substitute(parse_template("${params.text}"), params_only) == "a $${b}"
    mixed = substitute(parse_template("$${X} ${params.n}/${params.on} ${env.Y}"), params_only)
    assert mixed == "$${X} 4/true ${env.Y}"
    assert isinstance(mixed, str)
    assert [r.text for r in parse_template(mixed).references] == ["${env.Y}"]


def test_resolve_all_namespaces() -> None:
    context = ResolveContext(
        params={"copies": 4},
        stack=lab(),
        steps={"copy": {"recovery_point": "rp-1", "bytes": 10}},
        env={"TOKEN": "s3cr3t"},
    )
    assert render("${params.copies}", context) == 4
    assert render("${steps.copy.outputs.bytes}", context) == 10
    assert (
        render("s3://${stack.backup_bucket}/${steps.copy.outputs.recovery_point}", context) == "s3://drctl-backups/rp-1"
    )
    assert resolve({"a": ["$${x} ${env.TOKEN}"], "k": 1}, context) == {"a": ["${x} s3cr3t"], "k": 1}
    assert resolve(("${params.copies}",), context) == (4,)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${params.nope}", "${params.nope}: no parameter 'nope' was bound"),
        ("${steps.verify.outputs.ok}", "step 'verify' has not produced outputs (has it run?)"),
        ("${steps.copy.outputs.size}", "step 'copy' has no output 'size' (it has: recovery_point)"),
        ("${env.MISSING}", "${env.MISSING}: environment variable MISSING is not set"),
        ("x ${stack.backup_bucket}", "needs the stack outputs; pass --stack-outputs FILE"),
    ],
)
def test_resolve_names_what_is_missing(text: str, message: str) -> None:
    context = ResolveContext(steps={"copy": {"recovery_point": "rp-1"}}, env={"SECRET": "hunter2"})
    with pytest.raises(InterpolationError) as caught:
        render(text, context)
    assert message in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_only_scalars_go_into_text() -> None:
    context = ResolveContext(steps={"a": {"list": ["x"], "none": None}})
    with pytest.raises(InterpolationError, match="is a list; only text, numbers and true/false"):
        render("v=${steps.a.outputs.list}", context)
    with pytest.raises(InterpolationError, match="is null"):
        render("v=${steps.a.outputs.none}", context)


def test_resolve_params_revalidates_through_the_action_model() -> None:
    params = backup_copy.Params.model_validate(
        {"from": "s3://${stack.backup_bucket}/db/", "to": "az://${env.CONTAINER}/db/", "transfers": 3}
    )
    context = ResolveContext(stack=lab(), env={"CONTAINER": "backups"})
    resolved = resolve_params(params, context)
    assert isinstance(resolved, backup_copy.Params)
    assert (resolved.from_, resolved.to, resolved.transfers) == ("s3://drctl-backups/db/", "az://backups/db/", 3)
    with pytest.raises(ValidationError, match="not a valid Azure container name"):
        resolve_params(params, ResolveContext(stack=lab(), env={"CONTAINER": "Not_Valid"}))


def test_resolve_params_keeps_escaped_text_literal() -> None:
    params = shell.Params.model_validate({"command": "echo $${HOME}", "env": {"TOKEN": "${env.TOKEN}"}})
    resolved = resolve_params(params, ResolveContext(env={"TOKEN": "t"}))
    assert (resolved.command, dict(resolved.env)) == ("echo ${HOME}", {"TOKEN": "t"})
