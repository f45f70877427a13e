"""The whole estate: every resource, found or created, in dependency order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from localstack.seed.clients import Clients, base_tags
from localstack.seed.compute import converge_stopped, ensure_image, ensure_standby
from localstack.seed.config import require_aws
from localstack.seed.dns import ensure_dns
from localstack.seed.identity import ensure_orchestrator_role, ensure_replication_role
from localstack.seed.network import ensure_drill_network, ensure_recovery_network
from localstack.seed.outputs import Names, NetworkIds, SeededEstate
from localstack.seed.production import ensure_production
from localstack.seed.sample_app import ensure_recovery_points, ensure_vault_point
from localstack.seed.storage import (
    encrypt_and_close,
    ensure_bucket,
    ensure_replication,
    ensure_vault,
    protect_backup_bucket,
)
from stacks.config import StackConfig
from stacks.naming import tags


@dataclass(frozen=True)
class SeedReport:
    prefix: str
    estate: SeededEstate
    recovery_points: list[str]
    vault: str
    source_url: str
    set_url: str


def seed_storage(
    clients: Clients, config: StackConfig, names: Names, base: Mapping[str, str], runner_on: bool
) -> list[str]:
    aws = require_aws(config)
    backup_labels = tags(base, "backup")
    ensure_bucket(clients.s3_primary, names.backups, aws.region)
    protect_backup_bucket(clients.s3_primary, names.backups, config, backup_labels)
    ensure_bucket(clients.s3_recovery, names.replica, aws.recovery_region)
    protect_backup_bucket(clients.s3_recovery, names.replica, config, backup_labels)
    ensure_replication(clients.s3_primary, names.backups, names.replica, ensure_replication_role(clients, names, base))
    ensure_bucket(clients.s3_primary, names.app_data, aws.region)
    encrypt_and_close(clients.s3_primary, names.app_data, config.storage.aws_encryption, tags(base, "app-data"))
    ensure_vault(clients.blobs, names.vault)
    # Production writes the database dumps the backup sets are made of: it runs before the first point is taken.
    ensure_production(clients, config, names, base, runner_on)
    points = ensure_recovery_points(clients, names)
    ensure_vault_point(clients, names)
    return points


def seed_compute(
    clients: Clients, config: StackConfig, names: Names, network: NetworkIds, base: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, list[str]]]:
    aws = require_aws(config)
    images = {t: ensure_image(clients.ec2, names.image(t), t, aws, config, base) for t in config.tier_names}
    standby = ensure_standby(clients.ec2, config, names, images, network, base)
    converge_stopped(clients.ec2, [i for ids in standby.values() for i in ids])
    return images, standby


def seed(clients: Clients, config: StackConfig, account: str, runner_on: bool = True) -> SeedReport:
    """Create (or find) every resource of the estate, in dependency order. ``runner_on`` says whether the lab's
    instance runner plays the instances (``DRCTL_LAB_RUNNER``)."""
    names = Names(config.name_prefix)
    base = base_tags(config, names.prefix)
    points = seed_storage(clients, config, names, base, runner_on)
    recovery = ensure_recovery_network(clients.ec2, config, names.prefix, base)
    drill = ensure_drill_network(clients.ec2, config, names.prefix, base)
    images, standby = seed_compute(clients, config, names, recovery, base)
    dns = ensure_dns(clients, config, names, drill.network_id, base)
    role = ensure_orchestrator_role(clients, config, names, account, dns, base)
    estate = SeededEstate(names.backups, names.replica, recovery, drill, images, standby, dns, role)
    return SeedReport(names.prefix, estate, points, names.vault, names.source_url, names.set_url)
