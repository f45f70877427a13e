"""Loading the stack-outputs contract: valid files load, and every bad input gets a one-line, named error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto

from orchestrator.errors import ExitCode
from orchestrator.stack_outputs import (
    StackOutputs,
    StackOutputsError,
    contract_field_names,
    load_stack_outputs,
    read_stack_outputs,
)

VALID: dict[str, Any] = {
    "schema_version": 1,
    "stack": "lab",
    "primary_cloud": "aws",
    "recovery_cloud": "aws",
    "primary_region": "us-east-1",
    "recovery_region": "us-west-2",
    "backup_bucket": "drctl-backups",
    "backup_bucket_region": "us-east-1",
    "backup_replica_bucket": "drctl-backups-replica",
    "backup_replica_region": "us-west-2",
    "vault_account": None,
    "vault_container": None,
    "vault_blob_endpoint": None,
    "azure_resource_group": None,
    "recovery_network_id": "vpc-1",
    "recovery_subnet_ids": ["subnet-1", "subnet-2"],
    "recovery_public_subnet_ids": ["subnet-3"],
    "security_group_ids": {"db": "sg-1", "web": "sg-2"},
    "drill_network_id": "vpc-2",
    "drill_subnet_ids": ["subnet-9"],
    "drill_security_group_ids": {"db": "sg-8", "web": "sg-9"},
    "image_ids": {"db": "ami-1", "web": "ami-2"},
    "standby_mode": "stopped_instances",
    "standby_tier_order": ["db", "web"],
    "standby_instance_ids": {"db": ["i-1"], "web": ["i-2", "i-3"]},
    "standby_template_ids": {},
    "dns_provider": "route53",
    "dns_zone_id": "Z1",
    "production_record_name": "app.example.com",
    "health_check_id": "hc-1",
    "drill_dns_zone_id": "Z2",
    "drill_record_name": "app.drill.internal",
    "orchestrator_role_arn": "arn:aws:iam::123456789012:role/drctl",
}


def _write(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(content, encoding="utf-8")
    return path


def _error(path: Path) -> str:
    with pytest.raises(StackOutputsError) as caught:
        load_stack_outputs(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_valid_outputs_load_into_the_model(tmp_path: Path) -> None:
    outputs = load_stack_outputs(_write(tmp_path, json.dumps(VALID)))
    assert isinstance(outputs, StackOutputs)
    assert outputs.standby_instance_ids["web"] == ["i-2", "i-3"]
    assert outputs.standby_tier_order == ["db", "web"]
    assert outputs.vault_account is None


def test_the_model_is_frozen(tmp_path: Path) -> None:
    outputs = load_stack_outputs(_write(tmp_path, json.dumps(VALID)))
    with pytest.raises(ValueError, match="frozen"):
        outputs.stack = "prod"


def test_contract_field_names_are_the_model_fields() -> None:
    assert contract_field_names() == set(VALID)


def test_null_optional_outputs_may_be_absent(tmp_path: Path) -> None:
    trimmed = {k: v for k, v in VALID.items() if v is not None}
    assert load_stack_outputs(_write(tmp_path, json.dumps(trimmed))).vault_container is None


def test_missing_file_names_the_command_that_creates_it(tmp_path: Path) -> None:
    message = _error(tmp_path / "nope.json")
    assert "does not exist" in message
    assert "pulumi stack output --json" in message


def test_invalid_json_names_the_position(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, '{"schema_version": 1,,}'))
    assert "is not valid JSON" in message
    assert "line 1 column 22" in message


def test_a_json_array_is_not_outputs(tmp_path: Path) -> None:
    assert "must be a JSON object, got list" in _error(_write(tmp_path, "[]"))


def test_missing_field_is_named(tmp_path: Path) -> None:
    broken = {k: v for k, v in VALID.items() if k != "drill_network_id"}
    message = _error(_write(tmp_path, json.dumps(broken)))
    assert "missing field(s) drill_network_id" in message
    assert "run `pulumi up`" in message


def test_unknown_field_is_named(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, json.dumps(VALID | {"recovery_vpc_id": "vpc-1"})))
    assert "unknown field(s) recovery_vpc_id" in message


def test_other_schema_version_is_rejected(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, json.dumps(VALID | {"schema_version": 2})))
    assert "invalid field(s) schema_version" in message


def test_wrongly_typed_field_is_named(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, json.dumps(VALID | {"standby_instance_ids": {"db": "i-1"}})))
    assert "invalid field(s) standby_instance_ids.db" in message


def test_errors_exit_as_invalid_input() -> None:
    assert StackOutputsError("x").exit_code is ExitCode.INVALID_INPUT


def test_reading_a_stack_without_the_cli_says_to_pass_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("orchestrator.stack_outputs.shutil.which", lambda _: None)
    with pytest.raises(StackOutputsError, match="no Pulumi CLI on PATH; pass the outputs as a JSON file"):
        read_stack_outputs("lab", Path("."))


class _FakeStack:
    def __init__(self, outputs: dict[str, Any]) -> None:
        self._outputs = outputs

    def outputs(self) -> dict[str, auto.OutputValue]:
        return {name: auto.OutputValue(value, secret=False) for name, value in self._outputs.items()}


def test_reading_a_stack_through_the_automation_api(monkeypatch: pytest.MonkeyPatch) -> None:
    selected: list[tuple[str, str]] = []

    def select_stack(stack_name: str, work_dir: str) -> _FakeStack:
        selected.append((stack_name, work_dir))
        return _FakeStack(VALID)

    monkeypatch.setattr("orchestrator.stack_outputs.shutil.which", lambda _: "/usr/local/bin/pulumi")
    monkeypatch.setattr(auto, "select_stack", select_stack)
    outputs = read_stack_outputs("lab", Path("/repo"))
    assert outputs.stack == "lab"
    assert selected == [("lab", "/repo")]


def test_a_cli_failure_is_reported_by_its_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def select_stack(stack_name: str, work_dir: str) -> _FakeStack:
        raise auto.StackNotFoundError(auto.CommandResult("", "error: no stack named 'lab' found", 255))

    monkeypatch.setattr("orchestrator.stack_outputs.shutil.which", lambda _: "/usr/local/bin/pulumi")
    monkeypatch.setattr(auto, "select_stack", select_stack)
    with pytest.raises(StackOutputsError) as caught:
        read_stack_outputs("lab", Path("/repo"))
    assert str(caught.value) == "cannot read outputs of stack 'lab' in /repo: no stack named 'lab' found"


def test_outputs_read_from_a_stack_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("orchestrator.stack_outputs.shutil.which", lambda _: "/usr/local/bin/pulumi")
    monkeypatch.setattr(auto, "select_stack", lambda stack_name, work_dir: _FakeStack({"schema_version": 1}))
    with pytest.raises(
        StackOutputsError, match=r"stack outputs in stack 'lab' do not match .*missing field\(s\) stack"
    ):
        read_stack_outputs("lab", Path("/repo"))
