"""A drill and a failover under exactly the IAM policy the stack generates, on an emulator that enforces it.

The lab's seeder builds the estate on a private moto server (``tests.support.moto_iam``) and creates the
orchestrator role with ``stacks.components.orchestrator_identity.orchestrator_policy``, the function the stack
itself calls. Then moto starts enforcing IAM, and drctl runs as that role (its session credentials). Removing
any one action a run needs from the role's policy makes that run fail, naming the refusal.

What moto does not check (see ``tests.support.moto_iam``): conditions and EC2/Route53 resource ARNs. The
policy names those ARNs, so this test hands moto the same statements with ``Resource: "*"`` outside S3 and
SQS (a rewrite that only widens) and leaves conditions as they are (moto treats them as met): it proves every
needed action is granted, not that the resources and conditions are narrow enough. Those are checked on the
policy document by ``tests/stacks/test_stacks_identity.py``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from orchestrator.permissions import actions_by_scope
from orchestrator.stack_outputs import StackOutputs
from tests.support.cli import drctl, process_env
from tests.support.lab import NOT_RUNNING, lab_settings
from tests.support.moto_iam import REPO, MotoServer, moto_server

pytestmark = pytest.mark.skipif(lab_settings() is None, reason=NOT_RUNNING)

RUNBOOKS = Path(__file__).parent / "runbooks"
PREFIX = "drctl-iam"
ROLE_SESSION = "drctl-identity-test"
UNUSED_IP = "192.0.2.1"
"""TEST-NET-1 (RFC 5737): in no subnet of the estate."""

DRILL_NEEDS = {
    "ec2:DescribeImages", "ec2:CopyImage", "ec2:CreateTags", "ec2:DeregisterImage",
    "ec2:DescribeInstances", "ec2:RunInstances", "ec2:TerminateInstances",
    "s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject",
    "route53:ListResourceRecordSets", "route53:ChangeResourceRecordSets", "route53:GetChange",
}  # fmt: skip
"""The actions the drill (``runbooks/identity-drill.yaml``) cannot do without."""
FAILOVER_NEEDS = {
    "ec2:DescribeInstances", "ec2:StartInstances", "ec2:StopInstances",
    "route53:ListResourceRecordSets", "route53:ChangeResourceRecordSets", "route53:GetChange",
}  # fmt: skip
"""The actions the failover and failback (``runbooks/identity-failover.yaml``) cannot do without."""
NOT_EXERCISED = {
    "s3:ListBucketVersions": "reading a point by version, which these runbooks do not",
    "s3:GetObjectVersion": "reading a point by version, which these runbooks do not",
    "s3:AbortMultipartUpload": "only on a failed multipart upload",
    "s3:GetBucketNotification": "drctl protect --setup",
    "s3:PutBucketNotification": "drctl protect --setup",
    "route53:GetHostedZone": "zones given by name",
    "route53:ListHostedZonesByName": "zones given by name; these runbooks pass the id",
    "ec2:DescribeInstanceStatus": "compute.wait_healthy's status checks, which need the lab's instance runner",
    "sqs:CreateQueue": "drctl protect", "sqs:GetQueueUrl": "drctl protect",
    "sqs:GetQueueAttributes": "drctl protect", "sqs:SetQueueAttributes": "drctl protect",
    "sqs:ReceiveMessage": "drctl protect", "sqs:DeleteMessage": "drctl protect",
}  # fmt: skip
"""Actions the policy grants that neither run needs, and why: removing one of them cannot fail this test."""
NOT_IN_THE_LAB = {"kms:GenerateDataKey", "kms:Decrypt"}
"""SSE-KMS's actions: the lab's buckets use SSE-S3, so the seeded policy names no key and has no such grant."""


@dataclass(frozen=True)
class EnforcedEstate:
    moto: MotoServer
    outputs: StackOutputs
    outputs_path: Path
    admin: boto3.session.Session
    """An IAM user allowed everything, made before enforcement: what edits the role's policy afterwards."""
    role_env: dict[str, str]
    """drctl's environment as the orchestrator role (its session credentials)."""
    source_image: str
    policy: dict[str, Any]
    root: Path
    records: dict[tuple[str, str], list[dict[str, Any]]]
    """(zone, name) -> the record sets as seeded, of production's record and the drill's: a run whose cleanup
    or failback was refused leaves them moved."""

    @property
    def role_name(self) -> str:
        return self.outputs.orchestrator_role_arn.rsplit("/", 1)[-1] if self.outputs.orchestrator_role_arn else ""

    def grant(self, policy: Mapping[str, Any]) -> None:
        """Make ``policy`` the role's only policy, as moto can judge it (see the module's docstring)."""
        iam = self.admin.client("iam", endpoint_url=self.moto.url, region_name="us-east-1")
        for name in iam.list_role_policies(RoleName=self.role_name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=self.role_name, PolicyName=name)
        iam.put_role_policy(RoleName=self.role_name, PolicyName="orchestrator", PolicyDocument=json.dumps(policy))

    def reset(self) -> None:
        """Put back what a run that was refused halfway may have left: the db standby running, production's
        record failed over, the drill's record moved. Each case then starts from the seeded estate, whichever
        ran before it."""
        ec2 = self.admin.client("ec2", endpoint_url=self.moto.url, region_name=self.outputs.recovery_region)
        ec2.stop_instances(InstanceIds=list(self.outputs.standby_instance_ids["db"]))
        r53 = self.admin.client("route53", endpoint_url=self.moto.url)
        for (zone, name), seeded in self.records.items():
            changes: Any = [
                {"Action": "DELETE", "ResourceRecordSet": r} for r in record_sets(r53, zone, name) if r not in seeded
            ] + [{"Action": "UPSERT", "ResourceRecordSet": r} for r in seeded]
            if changes:
                r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": changes})

    def run(self, kind: str, case: str) -> subprocess.CompletedProcess[str]:
        self.reset()
        env = {**self.role_env, "DRCTL_STATE_DIR": str(self.root / "state" / case)}
        outputs = ["--stack-outputs", str(self.outputs_path), "--json"]
        if kind == "drill":
            runbook = RUNBOOKS / "identity-drill.yaml"
            return drctl("drill", str(runbook), *outputs, "-p", f"source_image={self.source_image}", env=env)
        return drctl("run", str(RUNBOOKS / "identity-failover.yaml"), *outputs, env=env)


def as_moto_judges(policy: Mapping[str, Any]) -> dict[str, Any]:
    """The policy with EC2 and Route53 resources widened to ``*``: moto matches every action of those services
    against ``*``, so a named ARN would be refused there even though AWS allows it."""
    statements = []
    for statement in policy["Statement"]:
        actions = statement["Action"]
        unscoped = all(a.split(":", 1)[0] in ("ec2", "route53") for a in actions)
        statements.append({**statement, "Resource": ["*"]} if unscoped else dict(statement))
    return {**policy, "Statement": statements}


def without(policy: Mapping[str, Any], action: str) -> dict[str, Any]:
    statements = []
    for statement in policy["Statement"]:
        kept = [a for a in statement["Action"] if a != action]
        if kept:
            statements.append({**statement, "Action": kept})
    return {**policy, "Statement": statements}


def record_sets(r53: Any, zone: str, name: str) -> list[dict[str, Any]]:
    """The record sets called ``name`` in ``zone``."""
    every = r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    return [r for r in every if r["Name"].rstrip(".") == name.rstrip(".")]


def _seed(moto: MotoServer, lab: Mapping[str, str], outputs_path: Path) -> None:
    env = {
        **process_env(lab),
        "AWS_ENDPOINT_URL": moto.url,
        "AWS_ACCESS_KEY_ID": "seed",
        "AWS_SECRET_ACCESS_KEY": "seed",
        # No instance runner plays moto's instances: the estate's production is seeded without one.
        "DRCTL_LAB_RUNNER": "off",
    }
    result = subprocess.run(
        [sys.executable, "-m", "localstack.seed", "--out", str(outputs_path), "--name-prefix", PREFIX],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"seeding moto failed (exit {result.returncode}): {result.stderr.strip()}")


def _primary_only_image(session: boto3.session.Session, url: str, region: str) -> str:
    """An image the primary region holds and the recovery region does not, for the drill to copy."""
    ec2 = session.client("ec2", endpoint_url=url, region_name=region)
    base = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=base, InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]
    return str(ec2.create_image(InstanceId=instance["InstanceId"], Name=f"{PREFIX}-source")["ImageId"])


def _admin(moto: MotoServer) -> boto3.session.Session:
    seed = boto3.session.Session(aws_access_key_id="seed", aws_secret_access_key="seed", region_name="us-east-1")
    iam = seed.client("iam", endpoint_url=moto.url)
    iam.create_user(UserName="admin")
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(everything))
    key = iam.create_access_key(UserName="admin")["AccessKey"]
    return boto3.session.Session(
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], region_name="us-east-1"
    )


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnforcedEstate]:
    lab = lab_settings()
    assert lab is not None
    root = tmp_path_factory.mktemp("identity")
    with moto_server(root / "moto.log") as moto:
        outputs_path = root / "outputs.json"
        _seed(moto, lab, outputs_path)
        outputs = StackOutputs.model_validate_json(outputs_path.read_text(encoding="utf-8"))
        assert outputs.orchestrator_role_arn is not None
        admin = _admin(moto)
        seed = boto3.session.Session(aws_access_key_id="seed", aws_secret_access_key="seed", region_name="us-east-1")
        image = _primary_only_image(seed, moto.url, outputs.primary_region)
        iam = seed.client("iam", endpoint_url=moto.url)
        role = outputs.orchestrator_role_arn.rsplit("/", 1)[-1]
        (name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
        policy = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        sts = seed.client("sts", endpoint_url=moto.url)
        creds = sts.assume_role(RoleArn=outputs.orchestrator_role_arn, RoleSessionName=ROLE_SESSION)["Credentials"]
        r53 = seed.client("route53", endpoint_url=moto.url)
        # The lab's drill record holds an address of the drill subnet, which moto may hand to the drill's copy:
        # the drill would then find its change already made. An address no subnet has makes every drill move it.
        r53.change_resource_record_sets(
            HostedZoneId=outputs.drill_dns_zone_id,
            ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
                "Name": outputs.drill_record_name, "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": UNUSED_IP}],
            }}]},
        )  # fmt: skip
        records = {
            (zone, name): record_sets(r53, zone, name)
            for zone, name in (
                (outputs.dns_zone_id, outputs.production_record_name),
                (outputs.drill_dns_zone_id, outputs.drill_record_name),
            )
        }
        assert records[(outputs.dns_zone_id, outputs.production_record_name)]
        moto.enforce_iam()
        role_env = {
            **process_env(lab),
            "AWS_ENDPOINT_URL": moto.url,
            "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
            "AWS_SESSION_TOKEN": creds["SessionToken"],
        }
        yield EnforcedEstate(moto, outputs, outputs_path, admin, role_env, image, policy, root, records)


def test_the_seeded_role_holds_exactly_the_stacks_policy(estate: EnforcedEstate) -> None:
    granted = {a for s in estate.policy["Statement"] for a in s["Action"]}
    assert granted == {a for actions in actions_by_scope(ec2=True).values() for a in actions} - NOT_IN_THE_LAB
    assert granted == DRILL_NEEDS | FAILOVER_NEEDS | set(NOT_EXERCISED), "classify each granted action above"


def test_enforcement_is_on(estate: EnforcedEstate) -> None:
    estate.grant(as_moto_judges(without(estate.policy, "ec2:DescribeInstances")))
    ec2 = boto3.session.Session(
        aws_access_key_id=estate.role_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=estate.role_env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=estate.role_env["AWS_SESSION_TOKEN"],
    ).client("ec2", endpoint_url=estate.moto.url, region_name=estate.outputs.recovery_region)
    with pytest.raises(ClientError, match=r"AccessDenied|not authorized"):
        ec2.describe_instances()


@pytest.mark.parametrize("kind", ["drill", "failover"])
def test_runs_under_the_generated_policy(estate: EnforcedEstate, kind: str) -> None:
    estate.grant(as_moto_judges(estate.policy))
    result = estate.run(kind, f"{kind}-granted")
    assert result.returncode == 0, result.stderr + result.stdout[-2000:]


@pytest.mark.parametrize(
    ("kind", "action"),
    [("drill", a) for a in sorted(DRILL_NEEDS)] + [("failover", a) for a in sorted(FAILOVER_NEEDS)],
)
def test_a_run_fails_without_any_one_action_it_needs(estate: EnforcedEstate, kind: str, action: str) -> None:
    estate.grant(as_moto_judges(without(estate.policy, action)))
    result = estate.run(kind, f"{kind}-without-{action.replace(':', '-')}")
    assert result.returncode != 0, f"{kind} succeeded without {action}: {result.stderr}"
    assert "Traceback" not in result.stderr
    # drctl names a refusal "access denied" (S3, Route53) or "not allowed" (EC2), with the fix.
    assert re.search(r"access denied|not allowed", result.stdout + result.stderr), result.stderr[-2000:]
