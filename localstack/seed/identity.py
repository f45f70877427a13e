"""IAM: the orchestrator role runbooks assume, and the S3 replication role."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from localstack.seed.clients import Clients, error_code
from localstack.seed.config import require_aws
from localstack.seed.outputs import DnsIds, Names
from stacks.components.orchestrator_identity import orchestrator_policy
from stacks.components.storage_aws import replication_policy
from stacks.config import StackConfig
from stacks.naming import tags


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
