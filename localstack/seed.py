"""Seed the local lab with a small, realistic DR estate and write the stack outputs that describe it.

Usage: python -m localstack.seed --out PATH [--name-prefix drctl-lab]

The estate mirrors what ``pulumi up`` of the ``lab`` stack builds (``stacks/Pulumi.lab.yaml`` is read for
tiers, CIDRs, images and DNS names, so the two cannot drift apart), plus data worth recovering:

- us-east-1: ``<prefix>-app-data`` (a sample application: a SQL dump and some files) and the protected backup
  bucket ``<prefix>-backups`` holding a drctl backup set ``sets/app/`` with one full and two incremental
  recovery points of it; ``<prefix>-backups-replica`` in us-west-2 is its replica.
- Azurite: the container ``<prefix>-vault``, an (empty) cross-cloud copy target. The outputs do not name it:
  like the lab stack, which has no Azure control plane to build a vault with, they leave the vault fields null.
- us-west-2: the recovery VPC (public and private subnets in two zones, internet gateway), the isolated drill
  VPC (no gateway), a security group per tier in each, one AMI copy per tier and stopped standby instances
  (``count`` per tier of ``drctl:tiers``).
- Route 53: the production zone with a health check and PRIMARY/SECONDARY failover records, and a private
  drill zone visible only from the drill VPC.
- IAM: the orchestrator role runbooks assume, and the S3 replication role.

Every step finds what already exists (by Name tag, deterministic name, zone comment or caller reference) before
creating anything, so a second run changes nothing and writes the same outputs. Only the local lab is ever
touched: without ``AWS_ENDPOINT_URL`` the seeder refuses to run rather than reach a real AWS account.

Exit codes: 0 seeded, 1 a cloud call failed, 2 bad arguments or config, 6 the lab is not reachable,
130 interrupted. Every failure is one line on stderr; re-running resumes where the failed run stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import yaml
from azure.core.exceptions import AzureError, ResourceExistsError, ServiceRequestError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from pydantic import TypeAdapter, ValidationError

from orchestrator.backup.copy import CopyOptions, execute_copy, plan_copy
from orchestrator.backup.crypto import KeySource
from orchestrator.backup.journal import CopyJournal
from orchestrator.backup.manifest import Mode
from orchestrator.backup.sets import BackupSet, NewSetOptions, open_or_create_set
from orchestrator.errors import DrError, ExitCode
from orchestrator.providers.factory import StoreFactory
from orchestrator.stack_outputs import SCHEMA_VERSION, StackOutputs
from stacks.components.network_types import carve
from stacks.components.orchestrator_identity import orchestrator_policy
from stacks.components.storage_aws import replication_policy
from stacks.config import AwsConfig, ConfigError, NamePrefix, StackConfig, TierConfig, is_ipv4, parse_config
from stacks.naming import STACK_TAG, tags

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.literals import ResourceTypeType
    from mypy_boto3_ec2.type_defs import (
        BlockDeviceMappingTypeDef,
        FilterTypeDef,
        IpPermissionTypeDef,
        TagSpecificationTypeDef,
    )
    from mypy_boto3_route53 import Route53Client
    from mypy_boto3_route53.type_defs import ChangeTypeDef, HealthCheckConfigTypeDef
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sts import STSClient

REPO = Path(__file__).resolve().parent.parent
LAB_STACK = "lab"
LAB_STACK_FILE = REPO / "stacks" / f"Pulumi.{LAB_STACK}.yaml"
DEFAULT_PREFIX = "drctl-lab"
NAMESPACE = "drctl:"
# Marks everything one seeding made, so tests and clean-ups find an estate by prefix, never by guesswork.
SEED_TAG = "drctl:seed-prefix"
MANAGED_BY = "drctl-seed"
ANYWHERE = "0.0.0.0/0"
DNS_TTL = 60

SET_PATH = "sets/app/"
POINTS_WANTED = 3
# Generous for a real region, instant on LocalStack; the loops poll, they never sleep a fixed time.
WAIT_S = 180.0
POLL_S = 0.5
LIVE_STATES = ["pending", "running", "stopping", "stopped"]

LAB_UP_HINT = 'start it with `make lab-up`, then `eval "$(make -s lab-env)"`'


class SeedError(Exception):
    """A seeding failure whose message is the one line shown to the user; ``code`` is the exit code."""

    def __init__(self, message: str, code: ExitCode = ExitCode.FAILED) -> None:
        super().__init__(message)
        self.code = code


# --- names and the pure outputs function ------------------------------------------------------------------


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


# --- configuration --------------------------------------------------------------------------------------------


def load_lab_config(name_prefix: str | None = None, path: Path = LAB_STACK_FILE) -> StackConfig:
    """The lab stack's own configuration, validated by the same code ``pulumi up`` uses."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise SeedError(f"cannot read the lab stack config {path}: {err}", ExitCode.INVALID_INPUT) from None
    raw: dict[str, Any] = {"stack": LAB_STACK}
    for key, value in (document.get("config") or {}).items():
        if key.startswith(NAMESPACE):
            raw[key.removeprefix(NAMESPACE)] = value
    if name_prefix is not None:
        check_prefix(name_prefix)
        raw["name_prefix"] = name_prefix
    try:
        config = parse_config(raw)
    except ConfigError as err:
        raise SeedError(str(err), ExitCode.INVALID_INPUT) from None
    require_aws(config)
    return config


def check_prefix(prefix: str) -> None:
    """The stack's own name-prefix rule, plus no ``--``: the prefix also names an Azure container."""
    try:
        TypeAdapter(NamePrefix).validate_python(prefix)
    except ValidationError:
        valid = False
    else:
        valid = "--" not in prefix
    if not valid:
        raise SeedError(
            f"--name-prefix {prefix!r} is not usable in bucket and container names: give 3 to 16 lower-case "
            "letters, digits and single dashes, starting with a letter and not ending with a dash",
            ExitCode.INVALID_INPUT,
        )


def require_aws(config: StackConfig) -> AwsConfig:
    if config.aws is None or config.primary_cloud != "aws" or config.recovery_cloud != "aws":
        raise SeedError("the seeder builds the AWS-to-AWS lab estate; the config is not aws -> aws")
    return config.aws


# --- clients ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clients:
    s3_primary: S3Client
    s3_recovery: S3Client
    ec2: EC2Client  # the recovery region: networks, images and standby live there
    route53: Route53Client
    iam: Any  # boto3-stubs has no IAM extra installed in this project
    sts: STSClient
    blobs: BlobServiceClient
    factory: StoreFactory


def lab_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The lab's settings; refuse to run without an endpoint, because without one boto3 reaches real AWS."""
    missing = [v for v in ("AWS_ENDPOINT_URL", "AZURE_STORAGE_CONNECTION_STRING") if not environ.get(v)]
    if missing:
        raise SeedError(
            f"{' and '.join(missing)} not set: the seeder only runs against the local lab; {LAB_UP_HINT}",
            ExitCode.INVALID_INPUT,
        )
    env = dict(environ)
    # LocalStack accepts any credentials; the emulator's conventional ones spare the user exporting them.
    env.setdefault("AWS_ACCESS_KEY_ID", "test")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    return env


def connect(env: Mapping[str, str], aws: AwsConfig) -> Clients:
    endpoint = env["AWS_ENDPOINT_URL"]
    config = Config(
        connect_timeout=3,
        read_timeout=60,
        retries={"total_max_attempts": 3, "mode": "standard"},
        s3={"addressing_style": "path"},
    )
    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env.get("AWS_SESSION_TOKEN"),
    )
    factory = StoreFactory({**env, "AWS_DEFAULT_REGION": aws.region, "AWS_REGION": aws.region})
    return Clients(
        s3_primary=session.client("s3", region_name=aws.region, endpoint_url=endpoint, config=config),
        s3_recovery=session.client("s3", region_name=aws.recovery_region, endpoint_url=endpoint, config=config),
        ec2=session.client("ec2", region_name=aws.recovery_region, endpoint_url=endpoint, config=config),
        route53=session.client("route53", region_name=aws.region, endpoint_url=endpoint, config=config),
        iam=session.client("iam", region_name=aws.region, endpoint_url=endpoint, config=config),
        sts=session.client("sts", region_name=aws.region, endpoint_url=endpoint, config=config),
        blobs=factory.blob_service(),
        factory=factory,
    )


def preflight(clients: Clients, env: Mapping[str, str]) -> str:
    """Fail fast, with the fix, when either emulator is down; returns the (lab) account id."""
    try:
        account = clients.sts.get_caller_identity()["Account"]
    except BotoConnectionError as err:
        raise SeedError(
            f"LocalStack is not reachable at {env['AWS_ENDPOINT_URL']} ({type(err).__name__}); {LAB_UP_HINT}",
            ExitCode.UNREACHABLE,
        ) from None
    try:
        next(iter(clients.blobs.list_containers(results_per_page=1).by_page()), None)
    except ServiceRequestError:
        raise SeedError(f"Azurite is not reachable; {LAB_UP_HINT}", ExitCode.UNREACHABLE) from None
    return account


def base_tags(config: StackConfig, prefix: str) -> dict[str, str]:
    return {STACK_TAG: config.stack, "drctl:managed-by": MANAGED_BY, SEED_TAG: prefix}


def poll(what: str, done: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    """Re-check ``done`` until it holds; a bounded wait, so a stuck resource is an error, not a hang."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise SeedError(f"gave up after {timeout_s:.0f}s waiting for {what}")
        time.sleep(POLL_S)


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


# --- storage ----------------------------------------------------------------------------------------------------


def ensure_bucket(s3: S3Client, name: str, region: str) -> None:
    try:
        s3.head_bucket(Bucket=name)
    except ClientError as err:
        if error_code(err) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    else:
        return
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)  # us-east-1 rejects an explicit location constraint
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})  # type: ignore[typeddict-item]


def encrypt_and_close(s3: S3Client, name: str, algorithm: str, labels: Mapping[str, str]) -> None:
    """Default encryption on, public access off, and the estate's tags: every bucket the seeder owns gets these."""
    if algorithm != "AES256":
        # LocalStack's KMS emulation does not run in this lab; the lab stack config pins SSE-S3 for that reason.
        raise SeedError(f"drctl:storage.aws_encryption {algorithm!r}: the lab seeder supports only AES256 (SSE-S3)")
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in labels.items()]})


def protect_backup_bucket(s3: S3Client, name: str, config: StackConfig, labels: Mapping[str, str]) -> None:
    """Versioned and tiered like the stack's protected buckets: an overwritten backup is still recoverable."""
    storage = config.storage
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    encrypt_and_close(s3, name, storage.aws_encryption, labels)
    s3.put_bucket_lifecycle_configuration(
        Bucket=name,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "tier-backups",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "Transitions": [
                        {"Days": storage.ia_after_days, "StorageClass": "STANDARD_IA"},
                        {"Days": storage.glacier_after_days, "StorageClass": "GLACIER"},
                    ],
                    "NoncurrentVersionTransitions": [{"NoncurrentDays": 30, "StorageClass": "GLACIER"}],
                    "NoncurrentVersionExpiration": {"NoncurrentDays": storage.noncurrent_expire_days},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                }
            ]
        },
    )


def ensure_replication(s3: S3Client, source: str, replica: str, role_arn: str) -> None:
    # LocalStack stores the configuration but does not copy objects; on AWS this keeps the replica current.
    s3.put_bucket_replication(
        Bucket=source,
        ReplicationConfiguration={
            "Role": role_arn,
            "Rules": [
                {
                    "ID": "to-recovery-region",
                    "Status": "Enabled",
                    "Priority": 1,
                    "Filter": {"Prefix": ""},
                    "DeleteMarkerReplication": {"Status": "Enabled"},
                    "Destination": {"Bucket": f"arn:aws:s3:::{replica}"},
                }
            ],
        },
    )


def ensure_vault(service: BlobServiceClient, name: str) -> None:
    with contextlib.suppress(ResourceExistsError):  # a second run reuses the container
        service.create_container(name, metadata={"drctl_role": "vault"})


# --- the sample application and its recovery points ----------------------------------------------------------

CUSTOMERS = 20_000
ORDERS = 48_000
ORDERS_ADDED_BY_GENERATION_1 = 4_000
AVATARS = 5


def _token(*parts: object) -> str:
    """A short deterministic hex token, so the sample data is identical on every machine and every run."""
    return hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=6).hexdigest()


def _customer_rows() -> Iterator[str]:
    for i in range(1, CUSTOMERS + 1):
        created = f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}"
        yield f"{i}\tcustomer-{i:05d}\tc{i:05d}@example.test\t{_token('key', i)}\t{created}\n"


def _order_rows(count: int) -> Iterator[str]:
    for i in range(1, count + 1):
        cents = int(_token("amount", i), 16) % 100_000
        status = ("paid", "shipped", "open")[i % 3]
        yield f"{i}\t{1 + i % CUSTOMERS}\t{cents}\t{status}\tord-{_token('ord', i)}\n"


def sql_dump(generation: int) -> bytes:
    """A few MiB in ``pg_dump``'s plain format; generation 1 adds orders, as a day of business would."""
    orders = ORDERS + (ORDERS_ADDED_BY_GENERATION_1 if generation >= 1 else 0)
    parts = [
        "-- drctl demo shop: PostgreSQL database dump of 'shop'\n",
        "CREATE TABLE customers (id integer PRIMARY KEY, name text, email text, api_key text, created date);\n",
        "CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer REFERENCES customers,"
        " amount_cents integer, status text, reference text);\n",
        "COPY customers (id, name, email, api_key, created) FROM stdin;\n",
        *_customer_rows(),
        "\\.\n",
        "COPY orders (id, customer_id, amount_cents, status, reference) FROM stdin;\n",
        *_order_rows(orders),
        "\\.\n",
    ]
    return "".join(parts).encode()


def _binary(name: str, size: int) -> bytes:
    return hashlib.shake_256(name.encode()).digest(size)


def _invoice_csv(month: int) -> bytes:
    rows = [f"{month:02d}-{n:04d},{int(_token('inv', month, n), 16) % 10_000}.00,EUR\n" for n in range(400)]
    return ("invoice,total,currency\n" + "".join(rows)).encode()


def app_data(generation: int) -> dict[str, bytes]:
    """The sample application's objects at a point in its life: 0, then 1 and 2 with some objects changed."""
    release = ("1.4.0", "1.4.0", "1.5.0")[generation]
    objects = {
        "db/shop.sql": sql_dump(generation),
        "config/app.yaml": f"release: {release}\ndatabase: shop\nreplicas: 2\n".encode(),
    }
    for i in range(AVATARS - (1 if generation >= 2 else 0)):  # generation 2: a user deleted their avatar
        objects[f"uploads/avatars/user-{i:04d}.png"] = _binary(f"avatar-{i}", 48 * 1024)
    for month in range(1, 4 + (1 if generation >= 1 else 0)):  # generation 1: April's invoices arrive
        objects[f"uploads/invoices/2026-{month:02d}.csv"] = _invoice_csv(month)
    return objects


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def sync_source(s3: S3Client, bucket: str, wanted: Mapping[str, bytes]) -> None:
    """Make the bucket hold exactly ``wanted``; unchanged objects are not rewritten, so their etags stay put."""
    current: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        current.update({o["Key"]: o["ETag"].strip('"') for o in page.get("Contents", [])})
    for key, data in wanted.items():
        if current.get(key) != _md5(data):
            s3.put_object(Bucket=bucket, Key=key, Body=data)
    stale = sorted(set(current) - set(wanted))
    if stale:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in stale]})


def open_backup_set(factory: StoreFactory, set_url: str) -> BackupSet:
    # Compressed like a production set; unencrypted so a lab drill needs no key to restore it.
    bset = open_or_create_set(
        factory.open(set_url), KeySource(), factory.env, NewSetOptions(compression=True), datetime.now(UTC)
    )
    if bset is None:  # only a dry run (create=False) returns None
        raise SeedError(f"could not open or create the backup set {set_url}")
    return bset


def take_point(factory: StoreFactory, source_url: str, bset: BackupSet, mode: Mode, journal: CopyJournal) -> str:
    source = factory.open(source_url)
    options = CopyOptions(mode=mode)
    return execute_copy(plan_copy(source, bset, options), source, bset, options, journal).recovery_point


def ensure_recovery_points(clients: Clients, names: Names) -> list[str]:
    """One full then incrementals of a changing source, until the set has :data:`POINTS_WANTED` points."""
    bset = open_backup_set(clients.factory, names.set_url)
    have = len(bset.point_ids())
    if have >= POINTS_WANTED:
        return bset.point_ids()
    # The journal only lets a crashed copy resume; a run's own temporary one keeps the seeder stateless.
    with tempfile.TemporaryDirectory(prefix="drctl-seed-") as tmp:
        journal = CopyJournal(Path(tmp) / "journal.sqlite")
        try:
            for generation in range(have, POINTS_WANTED):
                sync_source(clients.s3_primary, names.app_data, app_data(generation))
                mode: Mode = "full" if generation == 0 else "incremental"
                take_point(clients.factory, names.source_url, bset, mode, journal)
        finally:
            journal.close()
    return bset.point_ids()


# --- EC2 helpers -------------------------------------------------------------------------------------------------


def tag_spec(kind: ResourceTypeType, name: str, labels: Mapping[str, str]) -> list[TagSpecificationTypeDef]:
    """Tags applied by the create call itself, so no resource ever exists untagged (and so unfindable)."""
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in {**labels, "Name": name}.items()]}]


def named(name: str, *extra: FilterTypeDef) -> list[FilterTypeDef]:
    return [{"Name": "tag:Name", "Values": [name]}, *extra]


def first_id(ids: Sequence[str]) -> str | None:
    # Should a crashed run have left two of something, every later run still picks the same one.
    return sorted(ids)[0] if ids else None


def ensure_vpc(ec2: EC2Client, name: str, cidr: str, labels: Mapping[str, str]) -> str:
    found = first_id([v["VpcId"] for v in ec2.describe_vpcs(Filters=named(name))["Vpcs"]])
    if found is None:
        found = ec2.create_vpc(CidrBlock=cidr, TagSpecifications=tag_spec("vpc", name, labels))["Vpc"]["VpcId"]
    # Private hosted zones resolve only in VPCs with DNS support and host names on.
    ec2.modify_vpc_attribute(VpcId=found, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=found, EnableDnsHostnames={"Value": True})
    return found


def ensure_subnet(ec2: EC2Client, name: str, vpc_id: str, cidr: str, zone: str, labels: Mapping[str, str]) -> str:
    vpc_filter: FilterTypeDef = {"Name": "vpc-id", "Values": [vpc_id]}
    found = first_id([s["SubnetId"] for s in ec2.describe_subnets(Filters=named(name, vpc_filter))["Subnets"]])
    if found is not None:
        return found
    subnet = ec2.create_subnet(
        VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=zone, TagSpecifications=tag_spec("subnet", name, labels)
    )
    return subnet["Subnet"]["SubnetId"]


def ensure_internet_gateway(ec2: EC2Client, name: str, vpc_id: str, labels: Mapping[str, str]) -> str:
    gateways = ec2.describe_internet_gateways(Filters=named(name))["InternetGateways"]
    found = first_id([g["InternetGatewayId"] for g in gateways])
    if found is None:
        created = ec2.create_internet_gateway(TagSpecifications=tag_spec("internet-gateway", name, labels))
        found = created["InternetGateway"]["InternetGatewayId"]
        gateways = [created["InternetGateway"]]
    attached = {a["VpcId"] for g in gateways if g["InternetGatewayId"] == found for a in g.get("Attachments", [])}
    if vpc_id not in attached:
        ec2.attach_internet_gateway(InternetGatewayId=found, VpcId=vpc_id)
    return found


def ensure_route_table(ec2: EC2Client, name: str, vpc_id: str, labels: Mapping[str, str]) -> str:
    vpc_filter: FilterTypeDef = {"Name": "vpc-id", "Values": [vpc_id]}
    tables = ec2.describe_route_tables(Filters=named(name, vpc_filter))["RouteTables"]
    found = first_id([t["RouteTableId"] for t in tables])
    if found is not None:
        return found
    created = ec2.create_route_table(VpcId=vpc_id, TagSpecifications=tag_spec("route-table", name, labels))
    return created["RouteTable"]["RouteTableId"]


def ensure_default_route(ec2: EC2Client, table_id: str, gateway_id: str) -> None:
    routes = ec2.describe_route_tables(RouteTableIds=[table_id])["RouteTables"][0].get("Routes", [])
    if not any(r.get("DestinationCidrBlock") == ANYWHERE for r in routes):
        ec2.create_route(RouteTableId=table_id, DestinationCidrBlock=ANYWHERE, GatewayId=gateway_id)


def ensure_association(ec2: EC2Client, table_id: str, subnet_id: str) -> None:
    # LocalStack accepts a second association of the same pair (AWS refuses it), so look before associating.
    by_subnet: FilterTypeDef = {"Name": "association.subnet-id", "Values": [subnet_id]}
    for table in ec2.describe_route_tables(Filters=[by_subnet])["RouteTables"]:
        for assoc in table.get("Associations", []):
            if assoc.get("SubnetId") != subnet_id:
                continue
            if table["RouteTableId"] == table_id:
                return
            # The subnet moved tables (a hand edit of the lab); put it back where the seeder wants it.
            ec2.replace_route_table_association(AssociationId=assoc["RouteTableAssociationId"], RouteTableId=table_id)
            return
    ec2.associate_route_table(RouteTableId=table_id, SubnetId=subnet_id)


def ensure_security_group(ec2: EC2Client, name: str, vpc_id: str, description: str, labels: Mapping[str, str]) -> str:
    vpc_filter: FilterTypeDef = {"Name": "vpc-id", "Values": [vpc_id]}
    by_name: FilterTypeDef = {"Name": "group-name", "Values": [name]}
    groups = ec2.describe_security_groups(Filters=[vpc_filter, by_name])["SecurityGroups"]
    found = first_id([g["GroupId"] for g in groups])
    if found is not None:
        return found
    created = ec2.create_security_group(
        GroupName=name,
        VpcId=vpc_id,
        Description=description,
        TagSpecifications=tag_spec("security-group", name, labels),
    )
    return created["GroupId"]


def allow(authorize: Callable[..., Any], group_id: str, permission: IpPermissionTypeDef) -> None:
    """Authorize one rule; one rule per call, because AWS rejects a whole batch when any rule already exists."""
    try:
        authorize(GroupId=group_id, IpPermissions=[permission])
    except ClientError as err:
        if error_code(err) != "InvalidPermission.Duplicate":
            raise


def tcp(port: int, *, cidr: str | None = None, group: str | None = None, why: str) -> IpPermissionTypeDef:
    permission: IpPermissionTypeDef = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port}
    if cidr is not None:
        permission["IpRanges"] = [{"CidrIp": cidr, "Description": why}]
    if group is not None:
        permission["UserIdGroupPairs"] = [{"GroupId": group, "Description": why}]
    return permission


def restrict_egress(ec2: EC2Client, group_id: str, cidr: str) -> None:
    """Drill groups may only talk inside the drill VPC: swap the default allow-all egress for that CIDR."""
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    everything: IpPermissionTypeDef = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": ANYWHERE}]}
    has_default = any(
        p.get("IpProtocol") == "-1" and any(r.get("CidrIp") == ANYWHERE for r in p.get("IpRanges", []))
        for p in group.get("IpPermissionsEgress", [])
    )
    if has_default:
        ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=[everything])
    allow(ec2.authorize_security_group_egress, group_id, {"IpProtocol": "-1", "IpRanges": [{"CidrIp": cidr}]})


def ensure_tier_groups(
    ec2: EC2Client, config: StackConfig, vpc_id: str, name: str, role: str, labels: Mapping[str, str], internet: str
) -> dict[str, str]:
    """A group per tier with the rules of ``stacks/components/network_aws.py``: tier port, admin port, egress."""
    groups = {
        t.name: ensure_security_group(
            ec2, f"{name}-{t.name}", vpc_id, f"drctl {role} {t.name} tier", tags(labels, role, t.name)
        )
        for t in config.tiers
    }
    for tier in config.tiers:
        group = groups[tier.name]
        if tier.ingress_from == "internet":
            rule = tcp(tier.port, cidr=internet, why=f"{tier.name} traffic")
        else:
            rule = tcp(tier.port, group=groups[tier.ingress_from], why=f"from {tier.ingress_from}")
        allow(ec2.authorize_security_group_ingress, group, rule)
        for cidr in config.network.admin_cidrs:
            allow(ec2.authorize_security_group_ingress, group, tcp(tier.admin_port, cidr=cidr, why="administration"))
        if role == "drill":
            restrict_egress(ec2, group, internet)
    return groups


def availability_zones(ec2: EC2Client, count: int) -> list[str]:
    zones = sorted(
        z["ZoneName"]
        for z in ec2.describe_availability_zones(Filters=[{"Name": "state", "Values": ["available"]}])[
            "AvailabilityZones"
        ]
    )
    if not zones:
        raise SeedError("the recovery region reports no available availability zones")
    # Wraps around when a region has fewer zones than az_count, as the stack does.
    return [zones[i % len(zones)] for i in range(count)]


# --- networks ----------------------------------------------------------------------------------------------------


def ensure_recovery_network(ec2: EC2Client, config: StackConfig, prefix: str, base: Mapping[str, str]) -> NetworkIds:
    """Public subnets behind an internet gateway for failover front ends; private ones for the standby hosts."""
    name, labels, net = f"{prefix}-recovery", tags(base, "recovery"), config.network
    vpc = ensure_vpc(ec2, name, net.recovery_cidr, labels)
    zones = availability_zones(ec2, net.az_count)
    public_cidrs, private_cidrs = carve(net.recovery_cidr, net.az_count)
    gateway = ensure_internet_gateway(ec2, name, vpc, labels)
    public_table = ensure_route_table(ec2, f"{name}-public", vpc, labels)
    ensure_default_route(ec2, public_table, gateway)
    # Private subnets get no default route: standby hosts need nothing from the internet until failover.
    private_table = ensure_route_table(ec2, f"{name}-private", vpc, labels)
    public = [
        ensure_subnet(ec2, f"{name}-public-{i}", vpc, cidr, zones[i], labels) for i, cidr in enumerate(public_cidrs)
    ]
    private = [
        ensure_subnet(ec2, f"{name}-private-{i}", vpc, cidr, zones[i], labels) for i, cidr in enumerate(private_cidrs)
    ]
    for subnet in public:
        ensure_association(ec2, public_table, subnet)
    for subnet in private:
        ensure_association(ec2, private_table, subnet)
    groups = ensure_tier_groups(ec2, config, vpc, name, "recovery", base, internet=ANYWHERE)
    return NetworkIds(vpc, private, groups, public)


def ensure_drill_network(ec2: EC2Client, config: StackConfig, prefix: str, base: Mapping[str, str]) -> NetworkIds:
    """No internet gateway, NAT or peering: the drill VPC's only route is ``local``."""
    name, labels, net = f"{prefix}-drill", tags(base, "drill"), config.network
    vpc = ensure_vpc(ec2, name, net.drill_cidr, labels)
    zones = availability_zones(ec2, net.az_count)
    _, private_cidrs = carve(net.drill_cidr, net.az_count)
    table = ensure_route_table(ec2, name, vpc, labels)
    private = [ensure_subnet(ec2, f"{name}-{i}", vpc, cidr, zones[i], labels) for i, cidr in enumerate(private_cidrs)]
    for subnet in private:
        ensure_association(ec2, table, subnet)
    # Drill copies of internet-facing tiers only accept traffic from inside the drill VPC.
    groups = ensure_tier_groups(ec2, config, vpc, name, "drill", base, internet=net.drill_cidr)
    return NetworkIds(vpc, private, groups, [])


# --- images and standby instances ------------------------------------------------------------------------------


def find_image(ec2: EC2Client, name: str) -> str | None:
    by_name: FilterTypeDef = {"Name": "name", "Values": [name]}
    images = ec2.describe_images(Owners=["self"], Filters=[by_name])["Images"]
    return first_id([i["ImageId"] for i in images if i.get("State") in ("pending", "available")])


def image_state(ec2: EC2Client, image_id: str) -> str:
    images = ec2.describe_images(ImageIds=[image_id])["Images"]
    return images[0].get("State", "missing") if images else "missing"


def ensure_image(
    ec2: EC2Client, name: str, tier: str, aws: AwsConfig, config: StackConfig, base: Mapping[str, str]
) -> str:
    """An encrypted copy of the tier's source AMI in the recovery region, as the stack's ``AmiCopy`` makes."""
    found = find_image(ec2, name)
    if found is None:
        found = ec2.copy_image(
            Name=name,
            Description=f"drctl {tier} image for the recovery region",
            SourceImageId=config.images.aws_source_amis[tier],
            SourceRegion=config.images.aws_source_region or aws.region,
            Encrypted=True,
        )["ImageId"]
        # LocalStack ignores CopyImage's TagSpecifications; tag separately (the name already makes it findable).
        labels = {**tags(base, "image", tier), "Name": name}
        ec2.create_tags(Resources=[found], Tags=[{"Key": k, "Value": v} for k, v in labels.items()])
    image_id = found
    poll(f"image {image_id} to become available", lambda: image_state(ec2, image_id) == "available")
    return image_id


def root_volume(ec2: EC2Client, image_id: str) -> BlockDeviceMappingTypeDef:
    """The image's root volume, encrypted. The size is spelled out because LocalStack refuses a mapping without
    one (AWS would take the snapshot's); the image's own size keeps the request valid on both."""
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    device = image.get("RootDeviceName", "/dev/xvda")
    sizes = [m["Ebs"]["VolumeSize"] for m in image.get("BlockDeviceMappings", []) if m.get("DeviceName") == device]
    size = sizes[0] if sizes and sizes[0] else 8
    return {"DeviceName": device, "Ebs": {"Encrypted": True, "VolumeSize": size, "DeleteOnTermination": True}}


def find_instance(ec2: EC2Client, name: str) -> str | None:
    live: FilterTypeDef = {"Name": "instance-state-name", "Values": LIVE_STATES}
    reservations = ec2.describe_instances(Filters=named(name, live))["Reservations"]
    return first_id([i["InstanceId"] for r in reservations for i in r["Instances"]])


def launch_standby(
    ec2: EC2Client, name: str, tier: TierConfig, image_id: str, subnet_id: str, group_id: str, labels: Mapping[str, str]
) -> str:
    """One standby host exactly as ``StandbyCompute`` declares it: private, IMDSv2 only, encrypted root."""
    reservation = ec2.run_instances(
        ImageId=image_id,
        InstanceType=tier.instance_type,  # type: ignore[arg-type]  # a config string, checked by EC2
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet_id,
        SecurityGroupIds=[group_id],
        MetadataOptions={"HttpTokens": "required"},
        BlockDeviceMappings=[root_volume(ec2, image_id)],
        TagSpecifications=[*tag_spec("instance", name, labels), *tag_spec("volume", name, labels)],
    )
    return reservation["Instances"][0]["InstanceId"]


def ensure_standby(
    ec2: EC2Client,
    config: StackConfig,
    names: Names,
    images: Mapping[str, str],
    network: NetworkIds,
    base: Mapping[str, str],
) -> dict[str, list[str]]:
    """``count`` hosts per tier, spread over the private subnets so a tier survives the loss of a zone."""
    subnets = network.private_subnet_ids
    ids: dict[str, list[str]] = {}
    for tier in config.tiers:
        ids[tier.name] = []
        for n in range(tier.count):
            name = names.standby(tier.name, n)
            found = find_instance(ec2, name) or launch_standby(
                ec2,
                name,
                tier,
                images[tier.name],
                subnets[n % len(subnets)],
                network.security_group_ids[tier.name],
                tags(base, "standby", tier.name),
            )
            ids[tier.name].append(found)
    return ids


def instance_states(ec2: EC2Client, ids: Sequence[str]) -> dict[str, str]:
    reservations = ec2.describe_instances(InstanceIds=list(ids))["Reservations"]
    return {i["InstanceId"]: i["State"]["Name"] for r in reservations for i in r["Instances"]}


def converge_stopped(ec2: EC2Client, ids: Sequence[str]) -> None:
    """Stop whatever runs and wait until every instance is ``stopped``, as the stack's ``InstanceState`` does.

    A pending instance cannot be stopped yet, so each round stops only the running ones and polls the rest.
    """

    def all_stopped() -> bool:
        states = instance_states(ec2, ids)
        gone = sorted(i for i in ids if states.get(i) not in LIVE_STATES)
        if gone:
            raise SeedError(f"standby instance(s) {', '.join(gone)} vanished or are terminating; run the seeder again")
        running = [i for i, state in states.items() if state == "running"]
        if running:
            ec2.stop_instances(InstanceIds=running)
        return all(state == "stopped" for state in states.values())

    poll(f"standby instances {', '.join(ids)} to stop", all_stopped)


# --- DNS -----------------------------------------------------------------------------------------------------------


def bare_zone_id(zone_id: str) -> str:
    # The API says "/hostedzone/Z123"; the stack outputs (and every other API parameter) use "Z123".
    return zone_id.rsplit("/", 1)[-1]


def find_zone(r53: Route53Client, name: str, comment: str) -> str | None:
    fqdn = name.rstrip(".") + "."
    return first_id(
        [
            bare_zone_id(z["Id"])
            for page in r53.get_paginator("list_hosted_zones").paginate()
            for z in page["HostedZones"]
            if z["Name"] == fqdn and z.get("Config", {}).get("Comment") == comment
        ]
    )


def ensure_zone(
    r53: Route53Client, name: str, comment: str, labels: Mapping[str, str], private_vpc: tuple[str, str] | None = None
) -> str:
    """A hosted zone identified by name and comment; ``private_vpc`` (region, VPC id) makes it a private zone."""
    found = find_zone(r53, name, comment)
    if found is None:
        # A zone's caller reference can never be reused, even after deletion: make a fresh one per creation.
        reference = f"drctl-seed-{uuid.uuid4().hex}"
        if private_vpc is None:
            zone = r53.create_hosted_zone(Name=name, CallerReference=reference, HostedZoneConfig={"Comment": comment})
        else:
            region, vpc_id = private_vpc
            zone = r53.create_hosted_zone(
                Name=name,
                CallerReference=reference,
                HostedZoneConfig={"Comment": comment, "PrivateZone": True},
                VPC={"VPCRegion": region, "VPCId": vpc_id},  # type: ignore[typeddict-item]  # region is config text
            )
        found = bare_zone_id(zone["HostedZone"]["Id"])
    r53.change_tags_for_resource(
        ResourceType="hostedzone", ResourceId=found, AddTags=[{"Key": k, "Value": v} for k, v in labels.items()]
    )
    return found


def ensure_health_check(r53: Route53Client, reference: str, config: StackConfig, labels: Mapping[str, str]) -> str:
    """HTTPS health check of the primary endpoint; it is what flips the failover records."""
    dns = config.dns
    found = first_id(
        [
            h["Id"]
            for page in r53.get_paginator("list_health_checks").paginate()
            for h in page["HealthChecks"]
            if h["CallerReference"] == reference
        ]
    )
    if found is None:
        check: HealthCheckConfigTypeDef = {
            "Type": "HTTPS",
            "Port": dns.health_check_port,
            "ResourcePath": dns.health_check_path,
            "FailureThreshold": 3,
            "RequestInterval": 30,
        }
        if is_ipv4(dns.primary_endpoint):
            check["IPAddress"] = dns.primary_endpoint
        else:
            check["FullyQualifiedDomainName"] = dns.primary_endpoint
        found = r53.create_health_check(CallerReference=reference, HealthCheckConfig=check)["HealthCheck"]["Id"]
    r53.change_tags_for_resource(
        ResourceType="healthcheck", ResourceId=found, AddTags=[{"Key": k, "Value": v} for k, v in labels.items()]
    )
    return found


def record_type(endpoint: str) -> str:
    return "A" if is_ipv4(endpoint) else "CNAME"


def failover_changes(config: StackConfig, health_check_id: str) -> list[ChangeTypeDef]:
    """PRIMARY answers while its health check passes; SECONDARY (the recovery site) answers otherwise."""
    dns = config.dns
    changes: list[ChangeTypeDef] = []
    for role, endpoint, check in (
        ("PRIMARY", dns.primary_endpoint, health_check_id),
        ("SECONDARY", dns.recovery_endpoint, None),
    ):
        record: dict[str, Any] = {
            "Name": dns.production_fqdn,
            "Type": record_type(endpoint),
            "TTL": DNS_TTL,
            "SetIdentifier": role.lower(),
            "Failover": role,
            "ResourceRecords": [{"Value": endpoint}],
        }
        if check is not None:
            record["HealthCheckId"] = check
        changes.append({"Action": "UPSERT", "ResourceRecordSet": record})  # type: ignore[typeddict-item]
    return changes


def ensure_dns(clients: Clients, config: StackConfig, names: Names, drill_vpc: str, base: Mapping[str, str]) -> DnsIds:
    aws, dns, r53 = require_aws(config), config.dns, clients.route53
    zone = ensure_zone(r53, dns.zone_name, names.zone_comment("production"), tags(base, "dns"))
    check = ensure_health_check(r53, names.health_check_reference, config, tags(base, "dns"))
    # UPSERT is idempotent: a second run rewrites the same records.
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": failover_changes(config, check)})
    # Drills rewrite their own record in a zone only the drill VPC resolves, never the production name.
    drill_zone = ensure_zone(
        r53,
        dns.drill_zone_name,
        names.zone_comment("drill"),
        tags(base, "drill"),
        private_vpc=(aws.recovery_region, drill_vpc),
    )
    drill_record: ChangeTypeDef = {
        "Action": "UPSERT",
        "ResourceRecordSet": {
            "Name": dns.drill_fqdn,
            "Type": "A",
            "TTL": DNS_TTL,
            "ResourceRecords": [{"Value": dns.drill_endpoint}],
        },
    }
    r53.change_resource_record_sets(HostedZoneId=drill_zone, ChangeBatch={"Changes": [drill_record]})
    return DnsIds(zone_id=zone, health_check_id=check, drill_zone_id=drill_zone)


# --- IAM -------------------------------------------------------------------------------------------------------------


def trust(principal: Mapping[str, str]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": dict(principal), "Action": "sts:AssumeRole"}],
        }
    )


def ensure_role(
    iam: Any, name: str, description: str, trust_policy: str, policy: Mapping[str, Any], labels: Mapping[str, str]
) -> str:
    """A role with exactly one inline policy; trust and policy are rewritten each run, so edits converge back."""
    try:
        arn = str(iam.get_role(RoleName=name)["Role"]["Arn"])
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust_policy)
    except ClientError as err:
        if error_code(err) != "NoSuchEntity":
            raise
        arn = str(
            iam.create_role(
                RoleName=name,
                Description=description,
                AssumeRolePolicyDocument=trust_policy,
                Tags=[{"Key": k, "Value": v} for k, v in labels.items()],
            )["Role"]["Arn"]
        )
    iam.put_role_policy(RoleName=name, PolicyName=name, PolicyDocument=json.dumps(policy))
    return arn


def ensure_replication_role(clients: Clients, names: Names, base: Mapping[str, str]) -> str:
    policy = replication_policy(f"arn:aws:s3:::{names.backups}", f"arn:aws:s3:::{names.replica}", None, None)
    return ensure_role(
        clients.iam,
        names.replication_role,
        "S3 replication of drctl backups to the recovery region",
        trust({"Service": "s3.amazonaws.com"}),
        policy,
        tags(base, "replication"),
    )


def ensure_orchestrator_role(
    clients: Clients, config: StackConfig, names: Names, account: str, dns: DnsIds, base: Mapping[str, str]
) -> str:
    """The role runbooks assume, with the very policy document the stack grants it."""
    aws = require_aws(config)
    policy = orchestrator_policy(
        account_id=account,
        region=aws.recovery_region,
        stack=config.stack,
        bucket_arns=[f"arn:aws:s3:::{names.backups}", f"arn:aws:s3:::{names.replica}"],
        kms_key_arns=[],
        hosted_zone_ids=[dns.zone_id, dns.drill_zone_id],
        health_check_ids=[dns.health_check_id],
        manage_ec2=True,
    )
    principal = aws.orchestrator_trusted_principal or f"arn:aws:iam::{account}:root"
    return ensure_role(
        clients.iam,
        names.orchestrator_role,
        "drctl runbooks: failover, failback and drills",
        trust({"AWS": principal}),
        policy,
        tags(base, "orchestrator"),
    )


# --- the whole estate ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedReport:
    prefix: str
    estate: SeededEstate
    recovery_points: list[str]
    vault: str
    source_url: str
    set_url: str


def seed_storage(clients: Clients, config: StackConfig, names: Names, base: Mapping[str, str]) -> list[str]:
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
    return ensure_recovery_points(clients, names)


def seed_compute(
    clients: Clients, config: StackConfig, names: Names, network: NetworkIds, base: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, list[str]]]:
    aws = require_aws(config)
    images = {t: ensure_image(clients.ec2, names.image(t), t, aws, config, base) for t in config.tier_names}
    standby = ensure_standby(clients.ec2, config, names, images, network, base)
    converge_stopped(clients.ec2, [i for ids in standby.values() for i in ids])
    return images, standby


def seed(clients: Clients, config: StackConfig, account: str) -> SeedReport:
    """Create (or find) every resource of the estate, in dependency order."""
    names = Names(config.name_prefix)
    base = base_tags(config, names.prefix)
    points = seed_storage(clients, config, names, base)
    recovery = ensure_recovery_network(clients.ec2, config, names.prefix, base)
    drill = ensure_drill_network(clients.ec2, config, names.prefix, base)
    images, standby = seed_compute(clients, config, names, recovery, base)
    dns = ensure_dns(clients, config, names, drill.network_id, base)
    role = ensure_orchestrator_role(clients, config, names, account, dns, base)
    estate = SeededEstate(names.backups, names.replica, recovery, drill, images, standby, dns, role)
    return SeedReport(names.prefix, estate, points, names.vault, names.source_url, names.set_url)


# --- command line ---------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m localstack.seed", description="Seed the local lab with a demo DR estate."
    )
    parser.add_argument("--out", required=True, type=Path, help="where to write the stack-outputs JSON")
    parser.add_argument(
        "--name-prefix",
        default=DEFAULT_PREFIX,
        help=f"prefix of every resource name (default {DEFAULT_PREFIX}); give tests their own",
    )
    return parser.parse_args(argv)


def summary(report: SeedReport, outputs: StackOutputs, out: Path, seconds: float) -> str:
    standby = ", ".join(f"{t} {len(ids)}" for t, ids in outputs.standby_instance_ids.items())
    return "\n".join(
        [
            f"seed: lab estate {report.prefix!r} ready in {seconds:.1f}s",
            f"  app data   {report.source_url}",
            f"  backups    {report.set_url} ({len(report.recovery_points)} recovery points), "
            f"replica s3://{outputs.backup_replica_bucket} in {outputs.backup_replica_region}",
            f"  vault      az://{report.vault}/ on Azurite (cross-cloud copy target)",
            f"  recovery   {outputs.recovery_network_id} in {outputs.recovery_region}: "
            f"{len(outputs.recovery_subnet_ids)} private + {len(outputs.recovery_public_subnet_ids)} public subnets; "
            f"standby stopped: {standby}",
            f"  drill      {outputs.drill_network_id}: {len(outputs.drill_subnet_ids)} subnets, no internet gateway",
            f"  dns        {outputs.production_record_name} (zone {outputs.dns_zone_id}, health check "
            f"{outputs.health_check_id}); drill {outputs.drill_record_name} (zone {outputs.drill_dns_zone_id})",
            f"  outputs    {out}",
        ]
    )


def run(out: Path, name_prefix: str, environ: Mapping[str, str]) -> int:
    started = time.monotonic()
    config = load_lab_config(name_prefix)
    env = lab_environment(environ)
    clients = connect(env, require_aws(config))
    account = preflight(clients, env)
    report = seed(clients, config, account)
    outputs = validated(build_outputs(config, report.estate))
    write_outputs(out, outputs)
    print(summary(report, outputs, out, time.monotonic() - started), file=sys.stderr)
    return ExitCode.OK


def one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args.out, args.name_prefix, os.environ)
    except SeedError as err:
        code, message = err.code, one_line(err)
    except DrError as err:
        code, message = err.exit_code, one_line(err)
    except BotoConnectionError as err:
        code, message = ExitCode.UNREACHABLE, f"lost the lab mid-seed ({one_line(err)}); {LAB_UP_HINT}"
    except (ClientError, BotoCoreError, AzureError) as err:
        code, message = ExitCode.FAILED, f"{one_line(err)}; fix it and run the seeder again (it resumes)"
    except OSError as err:
        code, message = ExitCode.FAILED, one_line(err)
    except KeyboardInterrupt:
        code, message = ExitCode.INTERRUPTED, "interrupted; run the seeder again to finish (it resumes)"
    print(f"seed: error: {message}", file=sys.stderr)
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
