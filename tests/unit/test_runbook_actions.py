"""The action registry, each action's parameter model, and the shared field types."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator.actions import backup_copy, backup_restore, http_check, notify, shell, wait
from orchestrator.actions.base import ActionSpec, StepResult, StepStatus, Touch
from orchestrator.actions.registry import ACTION_MODULES, REGISTRY, ActionRegistry
from orchestrator.runbook.fields import format_duration
from orchestrator.runbook.models import Retry

EXPECTED = {
    "backup.copy",
    "backup.verify",
    "backup.restore",
    "db.restore",
    "db.check",
    "wait",
    "http.check",
    "shell",
    "notify",
    "dns.failover",
    "dns.failback",
    "compute.start",
    "compute.stop",
    "compute.launch",
    "compute.terminate",
    "compute.wait_healthy",
    "image.ensure",
}


def test_every_action_is_registered_once_from_its_module() -> None:
    assert set(REGISTRY.names()) == EXPECTED
    assert len(REGISTRY) == len(ACTION_MODULES)
    for module in ACTION_MODULES:
        spec: ActionSpec[Any] = module.SPEC
        assert spec.params is module.Params
        assert spec.run is module.run
        assert spec.description
        assert "\n" not in spec.description
        assert REGISTRY.get(spec.name) is spec


@pytest.mark.parametrize("module", ACTION_MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_params_are_frozen_and_strict_and_idempotence_is_explained(module: Any) -> None:
    assert module.Params.model_config["extra"] == "forbid"
    assert module.Params.model_config["frozen"] is True
    doc = module.__doc__ or ""
    assert ("Not idempotent:" in doc) == (not module.SPEC.idempotent)
    assert ("\nIdempotent:" in doc) == module.SPEC.idempotent


def test_a_name_registered_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="action 'notify' is registered twice"):
        ActionRegistry([notify.SPEC, notify.SPEC])


def test_touches_need_the_actions_own_params() -> None:
    params = notify.Params.model_validate({"message": "hi", "webhook": "https://hooks.example.com/x"})
    assert notify.SPEC.touches_of(params) == (Touch("sends", "a message to https://hooks.example.com/x"),)
    with pytest.raises(TypeError, match="shell expects Params"):
        shell.SPEC.touches_of(params)


def test_step_result_defaults() -> None:
    result = StepResult(StepStatus.SUCCEEDED, {"recovery_point": "rp-1"})
    assert (result.status, result.message, result.retryable) == ("succeeded", "", False)
    assert isinstance(REGISTRY.get("notify"), ActionSpec)


@pytest.mark.parametrize(
    ("module", "params", "message"),
    [
        (backup_copy, {"from": "s3://b-1/", "to": "ftp://x/"}, "unknown scheme 'ftp'"),
        (backup_copy, {"from": "s3://b-1/", "to": "s3://b-2/", "bwlimit": "fast"}, "'fast' is not a rate"),
        (backup_copy, {"from": "s3://b-1/", "to": "s3://b-2/", "transfers": 0}, "greater than or equal to 1"),
        (backup_copy, {"from": "s3://b-1/", "to": "s3://b-2/", "transfers": True}, "valid integer"),
        (backup_copy, {"from": "s3://b-1/", "to": "s3://b-2/", "key_env": "MY-KEY"}, "'MY-KEY' is not a valid name"),
        (backup_restore, {"set": "s3://b-1/", "target": "/tmp/x", "point": "p", "at": "2026-01-01"}, "not both"),
        (wait, {}, "give either 'duration' or 'until'"),
        (wait, {"until": {"tcp": "db:5432"}}, "'until' needs a 'timeout'"),
        (wait, {"duration": "1m", "timeout": "2m"}, "'timeout' only applies to 'until'"),
        (wait, {"until": {"http": "https://x", "tcp": "db:1"}, "timeout": "1m"}, "give one of 'http' or 'tcp'"),
        (wait, {"until": {"tcp": "db"}, "timeout": "1m"}, "'db' is not HOST:PORT"),
        (wait, {"until": {"tcp": "db:70000"}, "timeout": "1m"}, "'db:70000' is not HOST:PORT"),
        (wait, {"until": {"htp": "https://x"}, "timeout": "1m"}, "unknown key 'htp' in 'until'; did you mean 'http'?"),
        (wait, {"duration": 30}, "30 is not a duration; give it a unit, e.g. 30s or 30m"),
        (wait, {"duration": "0"}, "'0' is not a duration longer than 0"),
        (wait, {"duration": ["1m"]}, "expected a duration such as 90s, 15m or 1h30m, got a list"),
        (http_check, {"url": "app.example.com/health"}, "is not an http(s) URL"),
        (http_check, {"url": "https://x", "expect_status": 42}, "greater than or equal to 100"),
        (shell, {"command": ""}, "at least 1 character"),
        (notify, {"message": "x", "webhook": "mailto:ops@example.com"}, "is not an http(s) URL"),
    ],
)
def test_action_params_refuse_mistakes(module: Any, params: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        module.Params.model_validate(params)
    assert message in str(caught.value)


def test_literal_checks_skip_text_with_references() -> None:
    copy = backup_copy.Params.model_validate({"from": "s3://${stack.backup_bucket}/", "to": "${env.DEST}"})
    assert copy.to == "${env.DEST}"
    check = http_check.Params.model_validate({"url": "https://${stack.drill_record_name}/health"})
    assert check.timeout == timedelta(seconds=30)


def test_restore_times_without_a_zone_are_utc() -> None:
    params = backup_restore.Params.model_validate({"set": "s3://b-1/", "target": "/tmp/x", "at": "2026-11-26T09:30"})
    assert params.at == datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


def test_retry_waits_double_up_to_the_cap() -> None:
    assert Retry.model_validate({"attempts": 1}).waits() == ()
    assert Retry.model_validate({"attempts": 3}).waits() == (timedelta(0), timedelta(0))
    capped = Retry.model_validate({"attempts": 5, "backoff": "30s", "max_backoff": "1m"})
    assert capped.waits() == (timedelta(seconds=30), timedelta(minutes=1), timedelta(minutes=1), timedelta(minutes=1))
    with pytest.raises(ValidationError, match="'max_backoff' needs a 'backoff' to cap"):
        Retry.model_validate({"attempts": 2, "max_backoff": "1m"})
    with pytest.raises(ValidationError, match="'max_backoff' is shorter than 'backoff'"):
        Retry.model_validate({"attempts": 2, "backoff": "2m", "max_backoff": "1m"})


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(seconds=0.25), "250ms"),
        (timedelta(days=2, seconds=5), "2d5s"),
        (timedelta(0), "0"),
    ],
)
def test_durations_print_as_they_are_written(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
