"""The stack-outputs contract: what ``pulumi up`` of ``stacks/`` exports and runbooks read.

Versioned by ``schema_version``. Any change to the field set (adding, removing, renaming or retyping a field)
bumps the version, so a runbook never silently reads outputs from a stack built by another drctl release.
``tests/stacks/test_stacks_contract.py`` keeps the Pulumi program and this model in lock-step.

Fields that do not apply to a stack's clouds are ``None`` (for example ``vault_account`` in an AWS-only
stack). Pulumi's Python SDK drops exports whose value is ``None``, so `pulumi stack output --json` omits such
a field altogether: every field that may be ``None`` therefore defaults to ``None`` here.

Ids are cloud-native: an AWS VPC id or an Azure VNet resource id in ``recovery_network_id``, AMI ids or Azure
gallery image-version ids in ``image_ids``.

Get outputs either from a JSON file written by ``pulumi stack output --json`` (:func:`load_stack_outputs`)
or, where a Pulumi CLI is installed, straight from the stack (:func:`read_stack_outputs`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.errors import InvalidInput

SCHEMA_VERSION = 1
Cloud = Literal["aws", "azure"]


class StackOutputsError(InvalidInput):
    """Stack outputs are missing, unreadable or from another schema; the message names the fix."""


class StackOutputs(BaseModel):
    """Outputs of one DR stack (schema version 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1]
    stack: str = Field(description="Pulumi stack name the outputs came from, e.g. 'lab'.")
    primary_cloud: Cloud
    recovery_cloud: Cloud
    primary_region: str = Field(description="AWS region or Azure location of production.")
    recovery_region: str = Field(description="AWS region or Azure location of the recovery site.")

    backup_bucket: str | None = Field(None, description="S3 bucket drctl writes backups to.")
    backup_bucket_region: str | None = None
    backup_replica_bucket: str | None = Field(None, description="S3 replica of backup_bucket.")
    backup_replica_region: str | None = None
    vault_account: str | None = Field(None, description="Azure storage account holding backups.")
    vault_container: str | None = None
    vault_blob_endpoint: str | None = Field(None, description="https://<account>.blob.core.windows.net/")
    azure_resource_group: str | None = Field(None, description="Resource group of every Azure DR resource.")

    recovery_network_id: str = Field(description="Recovery VPC id or VNet resource id.")
    recovery_subnet_ids: list[str] = Field(description="Private subnets standby hosts run in.")
    recovery_public_subnet_ids: list[str]
    security_group_ids: dict[str, str] = Field(description="Tier name -> security group / NSG id.")
    drill_network_id: str = Field(description="Isolated drill VPC/VNet: no route to production.")
    drill_subnet_ids: list[str]
    drill_security_group_ids: dict[str, str]

    image_ids: dict[str, str] = Field(description="Tier name -> AMI id or gallery image version id.")
    standby_mode: Literal["stopped_instances", "launch_templates", "vmss", "vm"]
    standby_tier_order: list[str] = Field(description="Tiers in the order a failover starts them.")
    standby_instance_ids: dict[str, list[str]] = Field(
        description="Tier name -> stopped EC2 instance ids or deallocated Azure VM ids (empty for templates)."
    )
    standby_template_ids: dict[str, str] = Field(
        description="Tier name -> launch template id or scale-set id (empty for instance modes)."
    )

    dns_provider: Literal["route53", "traffic_manager", "azure_dns"]
    dns_zone_id: str = Field(description="Route 53 zone id, Azure DNS zone id or Traffic Manager profile id.")
    production_record_name: str = Field(description="FQDN users resolve; failover moves it.")
    health_check_id: str | None = Field(
        None, description="Route 53 health check id or Traffic Manager profile id; None for Azure DNS."
    )
    drill_dns_zone_id: str = Field(description="Private zone visible only from the drill network.")
    drill_record_name: str = Field(description="FQDN drills rewrite instead of production_record_name.")
    orchestrator_role_arn: str | None = Field(None, description="IAM role runbooks assume on AWS.")


def contract_field_names() -> frozenset[str]:
    """The exact set of output names a conforming stack exports."""
    return frozenset(StackOutputs.model_fields)


def parse_stack_outputs(data: Any, source: str) -> StackOutputs:
    """Validate already-decoded outputs; ``source`` names where they came from in error messages."""
    if not isinstance(data, dict):
        raise StackOutputsError(
            f"stack outputs in {source} must be a JSON object, got {type(data).__name__}; "
            "regenerate them with `pulumi stack output --json`"
        )
    try:
        return StackOutputs.model_validate(data)
    except ValidationError as err:
        raise StackOutputsError(
            f"stack outputs in {source} do not match schema_version {SCHEMA_VERSION}: {_summarise(err)}; "
            "run `pulumi up` with this drctl version's stacks/, then re-export the outputs"
        ) from None


def load_stack_outputs(path: Path) -> StackOutputs:
    """Load outputs saved with ``pulumi stack output --json --stack <stack> > <path>``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StackOutputsError(
            f"stack outputs file {path} does not exist; create it with "
            f"`pulumi stack output --json --stack <stack> > {path}`"
        ) from None
    except UnicodeDecodeError:
        raise StackOutputsError(f"stack outputs file {path} is not UTF-8 JSON; re-export it") from None
    except OSError as err:
        raise StackOutputsError(f"cannot read stack outputs file {path}: {err.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise StackOutputsError(
            f"stack outputs file {path} is not valid JSON ({err.msg} at line {err.lineno} column {err.colno}); "
            "regenerate it with `pulumi stack output --json`"
        ) from None
    return parse_stack_outputs(data, str(path))


def read_stack_outputs(stack: str, work_dir: Path) -> StackOutputs:
    """Read outputs straight from a stack through the Automation API; needs the Pulumi CLI on PATH."""
    if shutil.which("pulumi") is None:
        raise StackOutputsError(
            f"cannot read stack {stack!r}: no Pulumi CLI on PATH; pass the outputs as a JSON file instead "
            "(`pulumi stack output --json` on a machine with the CLI)"
        )
    # Imported here: the Automation API is only usable with the CLI, and importing it is not free.
    from pulumi import automation as auto

    try:
        selected = auto.select_stack(stack_name=stack, work_dir=str(work_dir))
        outputs = selected.outputs()
    except auto.CommandError as err:
        raise StackOutputsError(f"cannot read outputs of stack {stack!r} in {work_dir}: {_cli_reason(err)}") from None
    return parse_stack_outputs({name: out.value for name, out in outputs.items()}, f"stack {stack!r}")


def _cli_reason(err: Exception) -> str:
    """The CLI's own ``error:`` line from a multi-line CommandError, else its last line."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    errors = [line.split("error:", 1)[1].strip() for line in lines if "error:" in line]
    if errors:
        return errors[0]
    return lines[-1] if lines else type(err).__name__


def _summarise(err: ValidationError) -> str:
    missing, unknown, invalid = [], [], []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "missing":
            missing.append(field)
        elif e["type"] == "extra_forbidden":
            unknown.append(field)
        else:
            invalid.append(f"{field} ({e['msg']})")
    parts = []
    if missing:
        parts.append("missing field(s) " + ", ".join(missing))
    if unknown:
        parts.append("unknown field(s) " + ", ".join(unknown))
    if invalid:
        parts.append("invalid field(s) " + ", ".join(invalid))
    return "; ".join(parts)
