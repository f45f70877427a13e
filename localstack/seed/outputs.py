"""An estate's deterministic names, the cloud ids a seeding produced, and the stack outputs made of them."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localstack.seed.config import require_aws
from localstack.seed.errors import SeedError
from orchestrator.stack_outputs import SCHEMA_VERSION, StackOutputs
from stacks.config import StackConfig

SET_PATH = "sets/app/"


@dataclass(frozen=True)
class Names:
    """Every deterministic name of one seeded estate, derived from its prefix alone."""

    prefix: str

    @property
    def backups(self) -> str:
        return f"{self.prefix}-backups"

    @property
    def replica(self) -> str:
        return f"{self.prefix}-backups-replica"

    @property
    def app_data(self) -> str:
        return f"{self.prefix}-app-data"

    @property
    def vault(self) -> str:
        return f"{self.prefix}-vault"

    @property
    def vault_set_url(self) -> str:
        """The vault's copy of the application's backups, as the failover runbooks name it."""
        return f"az://{self.vault}/sets/app/"

    @property
    def source_url(self) -> str:
        return f"s3://{self.app_data}/"

    @property
    def set_url(self) -> str:
        return f"s3://{self.backups}/{SET_PATH}"

    @property
    def orchestrator_role(self) -> str:
        return f"{self.prefix}-orchestrator"

    @property
    def replication_role(self) -> str:
        return f"{self.prefix}-replication"

    @property
    def health_check_reference(self) -> str:
        # Route 53 treats a repeated caller reference with the same settings as the same health check.
        return f"{self.prefix}-primary-health"

    def zone_comment(self, kind: str) -> str:
        # Zone names are shared by every estate on the lab; the comment, set at creation, tells them apart.
        return f"drctl {kind} zone; seeded for {self.prefix}"

    def image(self, tier: str) -> str:
        return f"{self.prefix}-{tier}-dr"

    def standby(self, tier: str, index: int) -> str:
        return f"{self.prefix}-standby-{tier}-{index}"


@dataclass(frozen=True)
class NetworkIds:
    network_id: str
    private_subnet_ids: list[str]
    security_group_ids: dict[str, str]
    public_subnet_ids: list[str]


@dataclass(frozen=True)
class DnsIds:
    zone_id: str
    health_check_id: str
    drill_zone_id: str


@dataclass(frozen=True)
class SeededEstate:
    """The cloud ids one seeding produced: everything :func:`build_outputs` needs, and nothing that needs a network."""

    backup_bucket: str
    replica_bucket: str
    recovery: NetworkIds
    drill: NetworkIds
    image_ids: dict[str, str]
    standby_instance_ids: dict[str, list[str]]
    dns: DnsIds
    orchestrator_role_arn: str


def build_outputs(config: StackConfig, estate: SeededEstate) -> dict[str, Any]:
    """The stack outputs of a seeded estate, field for field and null for null what ``stacks/program.py`` exports."""
    aws = require_aws(config)
    order = list(config.tier_names)
    return {
        "schema_version": SCHEMA_VERSION,
        "stack": config.stack,
        "primary_cloud": config.primary_cloud,
        "recovery_cloud": config.recovery_cloud,
        "primary_region": config.primary_region,
        "recovery_region": config.recovery_region,
        "backup_bucket": estate.backup_bucket,
        "backup_bucket_region": aws.region,
        "backup_replica_bucket": estate.replica_bucket,
        "backup_replica_region": aws.recovery_region,
        # The lab has no Azure control plane, so, like the lab stack, it exports no Azure vault.
        "vault_account": None,
        "vault_container": None,
        "vault_blob_endpoint": None,
        "azure_resource_group": None,
        "recovery_network_id": estate.recovery.network_id,
        "recovery_subnet_ids": estate.recovery.private_subnet_ids,
        "recovery_public_subnet_ids": estate.recovery.public_subnet_ids,
        "security_group_ids": {t: estate.recovery.security_group_ids[t] for t in order},
        "drill_network_id": estate.drill.network_id,
        "drill_subnet_ids": estate.drill.private_subnet_ids,
        "drill_security_group_ids": {t: estate.drill.security_group_ids[t] for t in order},
        "image_ids": {t: estate.image_ids[t] for t in order},
        "standby_mode": config.compute.aws_mode,
        "standby_tier_order": order,
        "standby_instance_ids": {t: estate.standby_instance_ids[t] for t in order},
        "standby_template_ids": {},
        "dns_provider": config.dns.provider,
        "dns_zone_id": estate.dns.zone_id,
        "production_record_name": config.dns.production_fqdn,
        "health_check_id": estate.dns.health_check_id,
        "drill_dns_zone_id": estate.dns.drill_zone_id,
        "drill_record_name": config.dns.drill_fqdn,
        "orchestrator_role_arn": estate.orchestrator_role_arn,
    }


def validated(outputs: Mapping[str, Any]) -> StackOutputs:
    """Outputs a runbook would accept; anything else is a seeder bug and must not reach the file."""
    try:
        return StackOutputs.model_validate(dict(outputs))
    except ValueError as err:
        raise SeedError(f"the seeded outputs do not match the stack-outputs contract: {err}") from None


def write_outputs(path: Path, outputs: StackOutputs) -> None:
    """Write atomically: a reader sees the old file or the new one, never half of one."""
    text = json.dumps(outputs.model_dump(mode="json"), indent=2) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise SeedError(f"cannot write {path}: {err.strerror or err}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as err:
        raise SeedError(f"cannot write {path}: {err.strerror or err}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)  # gone already after a successful replace
