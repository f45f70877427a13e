"""Connecting to the lab: its environment, the cloud clients, a preflight check, and small shared helpers."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from azure.core.exceptions import ServiceRequestError
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from localstack.seed.errors import LAB_UP_HINT, SeedError
from orchestrator.errors import ExitCode
from orchestrator.providers.factory import StoreFactory
from stacks.config import AwsConfig, StackConfig
from stacks.naming import STACK_TAG

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_route53 import Route53Client
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sts import STSClient

# Marks everything one seeding made, so tests and clean-ups find an estate by prefix, never by guesswork.
SEED_TAG = "drctl:seed-prefix"
MANAGED_BY = "drctl-seed"
# Generous for a real region, instant on LocalStack; the loops poll, they never sleep a fixed time.
WAIT_S = 180.0
POLL_S = 0.5


@dataclass(frozen=True)
class Clients:
    s3_primary: S3Client
    s3_recovery: S3Client
    ec2: EC2Client  # the recovery region: networks, images and standby live there
    ec2_primary: EC2Client  # the primary region: the lab's stand-in for production runs there
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
        ec2_primary=session.client("ec2", region_name=aws.region, endpoint_url=endpoint, config=config),
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
